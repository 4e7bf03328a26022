//! A [`Context`] per HTTP request, for any tower service of
//! `http::Request<B>` (axum, tonic's server, plain hyper): Go's `r.Context()`.
//!
//! [`CtxLayer`] gives every request a child of one server-wide root context,
//! with a deadline taken from the request's headers, and puts it in the
//! request's extensions. Handlers read it there (with the `axum` feature, as
//! an extractor: `ctx: Context`) and pass it to everything they start.
//!
//! | the request... | its context |
//! |---|---|
//! | is answered and its response delivered in full | cancelled (Go: "when ServeHTTP returns") |
//! | loses its client (hyper drops the response future, or the body before its end) | cancelled with cause [`ClientDisconnected`] |
//! | passes its deadline | `DeadlineExceeded`; the layer answers 504, or gRPC `DEADLINE_EXCEEDED` |
//! | is in flight when the root is cancelled (shutdown) | cancelled with the root's cause; the layer answers 503, or gRPC `UNAVAILABLE` |
//!
//! A response is delivered in full when its body ended, or sent every byte
//! its `Content-Length` (or exact size hint) promised, or has no body on
//! the wire at all (a response to HEAD, a 204 or a 304, a 2xx to CONNECT):
//! hyper drops such bodies without polling their end, and that is no
//! disconnect.
//!
//! # Where the deadline comes from
//!
//! The earliest of:
//!
//! * the configured maximum, [`CtxLayer::max_timeout`];
//! * the `grpc-timeout` header, in the gRPC format (`200m`, `5S`: see
//!   [`grpc_timeout`](crate::grpc_timeout));
//! * the request-timeout header, `x-request-timeout` unless configured
//!   otherwise with [`CtxLayer::timeout_header`]: milliseconds (`250`), or
//!   a number with the unit `ms` or `s` (`250ms`, `5s`, `1.5s`: see
//!   [`request_timeout`]). The gRPC format belongs
//!   to `grpc-timeout` only: `250m` here is refused, never taken as minutes.
//!
//! A client can only shorten its deadline, never lengthen it past the
//! maximum. A malformed value is refused before the handler runs: 400 Bad
//! Request with a short text body that names the header, the value and the
//! accepted format, or gRPC `INTERNAL` (as grpc-go does) with the same text
//! in `grpc-message`. The layer's 504 and 503 say "request deadline
//! exceeded" and "server shutting down" the same way.
//!
//! # Tracing
//!
//! With the feature `tracing`, each request gets a `request` span (target
//! `ctx_runtime::http`, level INFO, so that the events below carry it) with
//! its `method`, `path`, the `timeout_ms` the layer set and where it came
//! from (`timeout_from`), and a request that ends other than by completing
//! gets one event, with an
//! `outcome` (`client disconnected` at DEBUG, `deadline exceeded` or
//! `shutting down` at INFO), its `cause`, `timeout_ms` and `elapsed_ms`. A
//! refused timeout header is one DEBUG event. The handler and its body are
//! polled inside the span. Without the feature, none of this is compiled.
//!
//! # gRPC or HTTP
//!
//! A request whose `content-type` starts with `application/grpc` gets its
//! errors the gRPC way: HTTP 200, `content-type: application/grpc`, and a
//! `grpc-status` header (a "trailers-only" response).
//!
//! tonic's server also applies `grpc-timeout` by itself, from the same
//! header, a few microseconds before this layer does. Both timers usually
//! fire on the same tick of tokio's clock, and then this layer answers
//! `DEADLINE_EXCEEDED`; when tonic's fires a tick earlier, the client gets
//! tonic's `CANCELLED` ("Timeout expired") instead. Either way the handler is
//! dropped and the request's context is done. A zero timeout (`0n`) is
//! always answered by this layer, at once.
//!
//! # A known limitation of hyper
//!
//! hyper notices that an HTTP/1.1 client went away only when it reads from
//! the connection. While a request body is left unread, it does not read, so
//! a client that disconnects in the middle of uploading a large body is not
//! noticed until the handler finishes. Read (or drop) the body before slow
//! work, or send the client something; HTTP/2 is not affected (a stream reset
//! is its own frame). `tests/tests/web_disconnect.rs` shows both.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ctx_runtime::Context;
//! use ctx_runtime::http::CtxLayer;
//! use std::convert::Infallible;
//! use std::future::Future;
//! use std::time::Duration;
//! use tower_service::Service;
//! use tower_layer::Layer;
//!
//! let (root, _shutdown) = Context::background().with_cancel();
//! let layer = CtxLayer::new(root).max_timeout(Duration::from_secs(30));
//!
//! // Any tower service of http::Request<B> works; here, a plain function.
//! let handler = tower_service_fn(|req: http::Request<()>| async move {
//!     let ctx = req.extensions().get::<Context>().unwrap();
//!     let left = ctx.remaining().unwrap();
//!     Ok::<_, Infallible>(http::Response::new(format!("{} ms left", left.as_millis())))
//! });
//! let mut service = layer.layer(handler);
//!
//! let request = http::Request::builder().header("x-request-timeout", "250").body(()).unwrap();
//! let response = service.call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # fn tower_service_fn<F>(f: F) -> Fn_<F> { Fn_(f) }
//! # #[derive(Clone)] struct Fn_<F>(F);
//! # impl<F, Fut> Service<http::Request<()>> for Fn_<F>
//! # where F: FnMut(http::Request<()>) -> Fut, Fut: Future<Output = Result<http::Response<String>, Infallible>> {
//! #     type Response = http::Response<String>;
//! #     type Error = Infallible;
//! #     type Future = Fut;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, req: http::Request<()>) -> Fut { (self.0)(req) }
//! # }
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::http::header::HeaderName;
use tower_layer::Layer;

use crate::context::Context;
use crate::request_timeout;
use crate::task::TaskTracker;

mod body;
mod config;
mod early;
mod service;
mod trace;

pub use self::body::CtxBody;
use self::config::Config;
pub use self::service::{CtxService, ResponseFuture};

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "axum")]
pub use self::axum::MissingContext;

/// The default request-timeout header, `x-request-timeout`.
///
/// ```
/// assert_eq!(ctx_runtime::http::TIMEOUT_HEADER, "x-request-timeout");
/// ```
pub const TIMEOUT_HEADER: &str = request_timeout::HEADER;

/// The cause of a request context whose client went away before the
/// response was complete: hyper dropped the response future or the body.
///
/// Downcast a [`Cause`](crate::Cause) to tell it apart from a deadline or a shutdown:
///
/// ```
/// use ctx_runtime::Context;
/// use ctx_runtime::http::ClientDisconnected;
///
/// fn log_why(ctx: &Context) -> &'static str {
///     match ctx.cause() {
///         Some(cause) if cause.is::<ClientDisconnected>() => "the client left",
///         Some(_) => "stopped for another reason",
///         None => "still running",
///     }
/// }
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause(ctx_runtime::Cause::new(ClientDisconnected));
/// assert_eq!(log_why(&ctx), "the client left");
/// assert_eq!(ctx.cause().unwrap().to_string(), "client disconnected");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientDisconnected;

impl fmt::Display for ClientDisconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client disconnected")
    }
}

impl std::error::Error for ClientDisconnected {}

/// A tower layer that gives every request a [`Context`]: a child of a
/// server-wide root, with a deadline from the request's headers, cancelled
/// when the client leaves or the response is complete.
///
/// See [the module documentation](self) for the rules. The request's context
/// is in its extensions (`req.extensions().get::<Context>()`, or the axum
/// extractor `ctx: Context` with the `axum` feature).
///
/// ```
/// use ctx_runtime::{Context, TaskTracker};
/// use ctx_runtime::http::CtxLayer;
/// use std::time::Duration;
///
/// let (root, _shutdown) = Context::background().with_cancel();
/// let requests = TaskTracker::new();
/// let layer = CtxLayer::new(root)
///     .max_timeout(Duration::from_secs(10))
///     .timeout_header(http::HeaderName::from_static("x-budget-ms"))
///     .tracker(requests.clone());
/// // axum: Router::new().route(...).layer(layer)
/// // tonic: Server::builder().layer(layer).add_service(...)
/// # drop(layer);
/// ```
#[derive(Clone, Debug)]
pub struct CtxLayer {
    config: Arc<Config>,
}

impl CtxLayer {
    /// A layer whose request contexts are children of `root`.
    ///
    /// Cancel `root` to cancel every request in flight (graceful shutdown).
    /// No maximum timeout; `grpc-timeout` and `x-request-timeout` are read.
    ///
    /// ```
    /// let layer = ctx_runtime::http::CtxLayer::new(ctx_runtime::Context::background());
    /// # drop(layer);
    /// ```
    pub fn new(root: Context) -> CtxLayer {
        CtxLayer {
            config: Arc::new(Config {
                root,
                max_timeout: None,
                timeout_header: Some(HeaderName::from_static(request_timeout::HEADER)),
                tracker: None,
            }),
        }
    }

    /// The longest any request may take, whatever its headers ask for.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = ctx_runtime::http::CtxLayer::new(ctx_runtime::Context::background())
    ///     .max_timeout(Duration::from_secs(30));
    /// # drop(layer);
    /// ```
    pub fn max_timeout(mut self, timeout: Duration) -> CtxLayer {
        Arc::make_mut(&mut self.config).max_timeout = Some(timeout);
        self
    }

    /// Reads the request timeout from `name` instead of `x-request-timeout`.
    ///
    /// Its value is read as [`request_timeout`] reads it: milliseconds
    /// (`250`), or a number with the unit `ms` or `s` (`250ms`, `1.5s`).
    /// Pair it with `ctx_runtime::reqwest::SendOptions::timeout_header` on
    /// the calling side (feature `reqwest`).
    ///
    /// ```
    /// let layer = ctx_runtime::http::CtxLayer::new(ctx_runtime::Context::background())
    ///     .timeout_header(http::HeaderName::from_static("x-deadline-ms"));
    /// # drop(layer);
    /// ```
    pub fn timeout_header(mut self, name: HeaderName) -> CtxLayer {
        Arc::make_mut(&mut self.config).timeout_header = Some(name);
        self
    }

    /// Ignores request-timeout headers other than `grpc-timeout`.
    ///
    /// ```
    /// let layer = ctx_runtime::http::CtxLayer::new(ctx_runtime::Context::background())
    ///     .without_timeout_header();
    /// # drop(layer);
    /// ```
    pub fn without_timeout_header(mut self) -> CtxLayer {
        Arc::make_mut(&mut self.config).timeout_header = None;
        self
    }

    /// Counts every request in `tracker` until its response is complete (or
    /// its client is gone), so that shutdown can wait for them.
    ///
    /// ```
    /// let requests = ctx_runtime::TaskTracker::new();
    /// let layer = ctx_runtime::http::CtxLayer::new(ctx_runtime::Context::background())
    ///     .tracker(requests.clone());
    /// # drop(layer);
    /// ```
    pub fn tracker(mut self, tracker: TaskTracker) -> CtxLayer {
        Arc::make_mut(&mut self.config).tracker = Some(tracker);
        self
    }
}

impl<S> Layer<S> for CtxLayer {
    type Service = CtxService<S>;

    fn layer(&self, inner: S) -> CtxService<S> {
        CtxService::new(inner, Arc::clone(&self.config))
    }
}
