//! What the layer reads from a request's headers, and what hyper's rules say
//! about a response's body.

use std::fmt;
use std::time::Duration;

use ::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use ::http::{HeaderMap, Method, StatusCode};

use crate::context::Context;
use crate::task::TaskTracker;
use crate::{grpc_timeout, request_timeout};

/// A [`CtxLayer`](super::CtxLayer)'s settings, shared by its services.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) root: Context,
    pub(super) max_timeout: Option<Duration>,
    pub(super) timeout_header: Option<HeaderName>,
    pub(super) tracker: Option<TaskTracker>,
}

/// Where a request's timeout came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// No timeout at all.
    None,
    /// [`CtxLayer::max_timeout`](super::CtxLayer::max_timeout).
    MaxTimeout,
    /// The `grpc-timeout` header.
    GrpcTimeout,
    /// The request-timeout header (`x-request-timeout` by default).
    RequestTimeout,
}

impl Source {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Source::None => "none",
            Source::MaxTimeout => "max_timeout",
            Source::GrpcTimeout => "grpc-timeout",
            Source::RequestTimeout => "request-timeout header",
        }
    }
}

/// A timeout header the layer cannot read.
#[derive(Clone, Debug)]
pub(super) struct BadTimeout {
    pub(super) header: HeaderName,
    pub(super) value: HeaderValue,
    /// What is wrong with it.
    pub(super) reason: &'static str,
    /// What the header accepts.
    pub(super) accepted: &'static str,
    /// The value would be a valid `grpc-timeout`, sent in the wrong header.
    pub(super) grpc_format: bool,
}

/// At most this much of a bad value is quoted back.
const QUOTED: usize = 40;

impl fmt::Display for BadTimeout {
    /// `malformed x-request-timeout header "250M": unknown unit; expected ...`:
    /// printable ASCII only (the value's other bytes escaped), so that it
    /// fits in a header as well as in a body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.value.as_bytes();
        let shown = &bytes[..bytes.len().min(QUOTED)];
        let more = if bytes.len() > QUOTED { "..." } else { "" };
        write!(
            f,
            "malformed {} header \"{}{more}\": {}; {}",
            self.header,
            shown.escape_ascii(),
            self.reason,
            self.accepted
        )?;
        if self.grpc_format {
            write!(
                f,
                "; this is the gRPC format, which belongs in the {} header",
                grpc_timeout::HEADER
            )?;
        }
        Ok(())
    }
}

/// A request's timeout, and where it came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub(super) timeout: Option<Duration>,
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) source: Source,
}

/// `grpc-timeout`, parsed once.
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static(grpc_timeout::HEADER);

/// What the layer reads from a request's headers.
#[derive(Default)]
pub(super) struct Read<'a> {
    pub(super) grpc: bool,
    grpc_timeout: Option<&'a HeaderValue>,
    request_timeout: Option<&'a HeaderValue>,
}

impl Config {
    /// One pass over the request's headers (a handful, usually) instead of
    /// a hashed lookup per header: `content-type`, `grpc-timeout` and the
    /// request-timeout header, each as its first value.
    pub(super) fn read<'a>(&self, headers: &'a HeaderMap) -> Read<'a> {
        let mut read = Read::default();
        let mut content_type = None;
        for (name, value) in headers {
            if *name == CONTENT_TYPE {
                content_type.get_or_insert(value);
            } else if *name == GRPC_TIMEOUT {
                read.grpc_timeout.get_or_insert(value);
            } else if self.timeout_header.as_ref() == Some(name) {
                read.request_timeout.get_or_insert(value);
            }
        }
        read.grpc = content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
        read
    }

    /// The request's timeout: the earliest of the maximum and its headers.
    pub(super) fn budget(&self, read: &Read<'_>) -> Result<Budget, BadTimeout> {
        let mut budget = Budget {
            timeout: self.max_timeout,
            source: match self.max_timeout {
                Some(_) => Source::MaxTimeout,
                None => Source::None,
            },
        };
        let mut shorten = |t: Duration, source| {
            if budget.timeout.is_none_or(|old| t < old) {
                budget = Budget {
                    timeout: Some(t),
                    source,
                };
            }
        };
        if let Some(value) = read.grpc_timeout {
            let t = grpc_timeout::parse(value.as_bytes()).map_err(|e| BadTimeout {
                header: GRPC_TIMEOUT,
                value: value.clone(),
                reason: e.reason(),
                accepted: grpc_timeout::ACCEPTED,
                grpc_format: false,
            })?;
            shorten(t, Source::GrpcTimeout);
        }
        if let (Some(name), Some(value)) = (&self.timeout_header, read.request_timeout) {
            let t = request_timeout::parse(value.as_bytes()).map_err(|e| BadTimeout {
                header: name.clone(),
                value: value.clone(),
                reason: e.reason(),
                accepted: request_timeout::ACCEPTED,
                grpc_format: grpc_timeout::parse(value.as_bytes()).is_ok(),
            })?;
            shorten(t, Source::RequestTimeout);
        }
        Ok(budget)
    }
}

/// hyper's rule (and HTTP's, RFC 9110 section 6.4.1): whether a response to
/// `method` with `status` has a body on the wire. When it has none, hyper
/// drops the handler's body without polling it, and the request is over
/// when the handler answers.
pub(super) fn carries_body(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || method == Method::CONNECT && status.is_success()
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The response's `Content-Length`, if it has one valid value.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    let len = std::str::from_utf8(first.as_bytes()).ok()?.parse().ok()?;
    values.all(|v| v == first).then_some(len)
}
