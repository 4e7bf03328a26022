//! The answers the layer gives itself, instead of the handler: each says
//! why, in its body (HTTP) or in `grpc-message` (gRPC).

use std::fmt::Write as _;

use ::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use ::http::{Response, StatusCode};
use http_body::Body;

use super::body::CtxBody;
use super::config::BadTimeout;

/// The body of a 504, and the `grpc-message` of a `DEADLINE_EXCEEDED`.
pub(super) const DEADLINE_EXCEEDED: &str = "request deadline exceeded";

/// The body of a 503, and the `grpc-message` of an `UNAVAILABLE`.
pub(super) const SHUTTING_DOWN: &str = "server shutting down";

/// A response the layer makes itself.
#[derive(Debug)]
pub(super) enum Early {
    /// The request's deadline passed (or was zero): 504, `DEADLINE_EXCEEDED`.
    Deadline,
    /// The server's root context is done: 503, `UNAVAILABLE`.
    Shutdown,
    /// A timeout header the layer cannot read: 400, or `INTERNAL` as grpc-go
    /// answers a malformed `grpc-timeout`.
    BadTimeout(BadTimeout),
}

impl Early {
    /// The answer: for gRPC, trailers-only (HTTP 200, `grpc-status`,
    /// `grpc-message`, no body); for HTTP, the status and a short text body.
    pub(super) fn response<B>(self, grpc: bool) -> Response<CtxBody<B>>
    where
        B: Body,
        B::Data: From<String>,
    {
        let (status, grpc_status, message) = match self {
            Early::Deadline => (
                StatusCode::GATEWAY_TIMEOUT,
                "4",
                DEADLINE_EXCEEDED.to_owned(),
            ),
            Early::Shutdown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "14",
                SHUTTING_DOWN.to_owned(),
            ),
            Early::BadTimeout(bad) => (StatusCode::BAD_REQUEST, "13", bad.to_string()),
        };
        if grpc {
            let mut response = Response::new(CtxBody::message(None));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from_static(grpc_status));
            if let Ok(value) = HeaderValue::try_from(percent_encode(&message)) {
                headers.insert("grpc-message", value);
            }
            return response;
        }
        let len = message.len();
        let mut response = Response::new(CtxBody::message(Some(message.into())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        response
    }
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII,
/// and `%` itself (gRPC over HTTP/2, "Responses").
fn percent_encode(message: &str) -> String {
    let mut encoded = String::with_capacity(message.len());
    for &byte in message.as_bytes() {
        if (b' '..=b'~').contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_printable_ascii_and_escapes_the_rest() {
        assert_eq!(percent_encode("a b~"), "a b~");
        assert_eq!(percent_encode("100%"), "100%25");
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }
}
