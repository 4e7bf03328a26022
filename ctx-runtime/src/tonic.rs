//! Deadlines across gRPC services with tonic: the client side sends the time
//! a [`Context`] has left as `grpc-timeout`; the server side is
//! [`CtxLayer`](crate::http::CtxLayer), which turns it back into a deadline.
//!
//! grpc-go does this by itself; tonic does not. With these helpers, a
//! service that got a request with 2 s left calls the next one with
//! 2 s minus what it spent, and the chain stops as one when time is up.
//!
//! ```no_run
//! # // Stands in for a generated client's method: echoes the request back.
//! # async fn call_next(req: tonic::Request<String>) -> Result<tonic::Response<String>, tonic::Status> {
//! #     Ok(tonic::Response::new(req.into_inner()))
//! # }
//! use ctx_runtime::tonic as ctx_tonic;
//!
//! // Server: tonic::transport::Server::builder().layer(CtxLayer::new(root)).add_service(...)
//! async fn handler(request: tonic::Request<String>) -> Result<tonic::Response<String>, tonic::Status> {
//!     let ctx = ctx_tonic::context(&request)?;                 // the deadline the caller sent
//!     let next = ctx_tonic::request(&ctx, "next".to_owned())?; // grpc-timeout = what is left
//!     ctx_tonic::call(&ctx, call_next(next)).await             // dropped (RST_STREAM) if ctx ends
//! }
//! ```

use std::future::IntoFuture;

use tonic::metadata::MetadataValue;
use tonic::{IntoRequest, Request, Status};

use crate::context::Context;
use crate::error::Error;
use crate::grpc_timeout;

/// An outgoing request carrying `ctx`'s remaining time as `grpc-timeout`;
/// `Err` at once, without sending anything, if `ctx` is done or its deadline
/// has passed.
///
/// The timeout is rounded down (see [`grpc_timeout::encode`]). A context
/// without a deadline sends no `grpc-timeout`. The context itself also rides
/// along in the request's extensions.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ctx_runtime::Context;
/// use std::time::Duration;
///
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1500));
/// let request = ctx_runtime::tonic::request(&ctx, "ping").unwrap();
/// assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "1500000u");
///
/// tokio::time::sleep(Duration::from_secs(2)).await;
/// let status = ctx_runtime::tonic::request(&ctx, "ping").unwrap_err();
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// # }
/// ```
pub fn request<T>(ctx: &Context, message: impl IntoRequest<T>) -> Result<Request<T>, Status> {
    if let Some(err) = ctx.err() {
        return Err(status(ctx, err));
    }
    let mut request = message.into_request();
    if let Some(left) = ctx.remaining() {
        if left.is_zero() {
            return Err(status(ctx, Error::DeadlineExceeded));
        }
        let value = MetadataValue::try_from(grpc_timeout::encode(left))
            .expect("grpc-timeout values are ASCII");
        request.metadata_mut().insert(grpc_timeout::HEADER, value);
    }
    request.extensions_mut().insert(ctx.clone());
    Ok(request)
}

/// The [`Context`] of an incoming request, which
/// [`CtxLayer`](crate::http::CtxLayer) put in its extensions; `INTERNAL` if
/// the server lacks the layer.
///
/// ```
/// let mut request = tonic::Request::new(());
/// assert_eq!(ctx_runtime::tonic::context(&request).unwrap_err().code(), tonic::Code::Internal);
/// request.extensions_mut().insert(ctx_runtime::Context::background());
/// assert!(ctx_runtime::tonic::context(&request).is_ok());
/// ```
pub fn context<T>(request: &Request<T>) -> Result<Context, Status> {
    request.extensions().get::<Context>().cloned().ok_or_else(|| {
        Status::internal("no ctx_runtime::Context in the request: the server lacks ctx_runtime::http::CtxLayer")
    })
}

/// Runs a call until it completes or `ctx` is done: then the call is
/// dropped, which makes tonic reset the HTTP/2 stream, so the server being
/// called stops too. Gives `DEADLINE_EXCEEDED` or `CANCELLED` (with the
/// context's cause as the message) when `ctx` wins.
///
/// tonic's channel also applies the `grpc-timeout` it sends, and reports it
/// as `CANCELLED` ("Timeout expired"); that timer is set a little after the
/// context's deadline, and the context is checked first, so a deadline
/// reaches the caller of `call` as `DEADLINE_EXCEEDED`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::Context;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause("client disconnected");
/// let never = std::future::pending::<Result<(), tonic::Status>>();
/// let status = ctx_runtime::tonic::call(&ctx, never).await.unwrap_err();
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert_eq!(status.message(), "client disconnected");
/// # }
/// ```
pub async fn call<T, F>(ctx: &Context, call: F) -> Result<T, Status>
where
    F: IntoFuture<Output = Result<T, Status>>,
{
    match ctx.run(call).await {
        Ok(result) => result,
        Err(err) => Err(status(ctx, err)),
    }
}

/// The gRPC status for a context that ended with `err`: `DEADLINE_EXCEEDED`
/// or `CANCELLED`, with the context's cause as the message.
///
/// ```
/// use ctx_runtime::{Context, Error};
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause("shutting down");
/// let status = ctx_runtime::tonic::status(&ctx, Error::Canceled);
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert_eq!(status.message(), "shutting down");
/// ```
pub fn status(ctx: &Context, err: Error) -> Status {
    let message = ctx
        .cause()
        .map_or_else(|| err.to_string(), |cause| cause.to_string());
    match err {
        Error::DeadlineExceeded => Status::deadline_exceeded(message),
        Error::Canceled => Status::cancelled(message),
    }
}
