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
//! | is answered and its response body is sent | cancelled (Go: "when ServeHTTP returns") |
//! | loses its client (hyper drops the response future or body) | cancelled with cause [`ClientDisconnected`] |
//! | passes its deadline | `DeadlineExceeded`; the layer answers 504, or gRPC `DEADLINE_EXCEEDED` |
//! | is in flight when the root is cancelled (shutdown) | cancelled with the root's cause; the layer answers 503, or gRPC `UNAVAILABLE` |
//!
//! # Where the deadline comes from
//!
//! The earliest of:
//!
//! * the configured maximum, [`CtxLayer::max_timeout`];
//! * the `grpc-timeout` header, in the gRPC format (`200m`, `5S`: see
//!   [`grpc_timeout`]);
//! * the request-timeout header, `x-request-timeout` unless configured
//!   otherwise with [`CtxLayer::timeout_header`]: either plain milliseconds
//!   (`250`) or the gRPC format (`250m`).
//!
//! A client can only shorten its deadline, never lengthen it past the
//! maximum. A malformed value is refused: 400 Bad Request, or gRPC
//! `INTERNAL` as grpc-go does.
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
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use ::http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::Context;
use crate::done::DoneOwned;
use crate::error::{Cause, Error};
use crate::grpc_timeout;
use crate::handle::CancelHandle;
use crate::task::{TaskTracker, TrackerToken};

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "axum")]
pub use self::axum::MissingContext;

/// The default request-timeout header, `x-request-timeout`.
///
/// ```
/// assert_eq!(ctx_runtime::http::TIMEOUT_HEADER, "x-request-timeout");
/// ```
pub const TIMEOUT_HEADER: &str = "x-request-timeout";

/// The cause of a request context whose client went away before the
/// response was complete: hyper dropped the response future or the body.
///
/// Downcast a [`Cause`] to tell it apart from a deadline or a shutdown:
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

#[derive(Clone, Debug)]
struct Config {
    root: Context,
    max_timeout: Option<Duration>,
    timeout_header: Option<HeaderName>,
    tracker: Option<TaskTracker>,
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
                timeout_header: Some(HeaderName::from_static(TIMEOUT_HEADER)),
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
    /// Its value is plain milliseconds (`250`) or in the `grpc-timeout`
    /// format (`250m`, `2S`).
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
        CtxService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service made by [`CtxLayer`].
///
/// ```
/// use ctx_runtime::http::{CtxLayer, CtxService};
/// use tower_layer::Layer;
/// let service: CtxService<()> = CtxLayer::new(ctx_runtime::Context::background()).layer(());
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct CtxService<S> {
    inner: S,
    config: Arc<Config>,
}

impl Config {
    /// The request's timeout: the earliest of the maximum and its headers.
    fn timeout(&self, headers: &HeaderMap) -> Result<Option<Duration>, &'static str> {
        let mut timeout = self.max_timeout;
        let mut shorten = |t: Duration| {
            timeout = Some(timeout.map_or(t, |old| old.min(t)));
        };
        if let Some(value) = headers.get(grpc_timeout::HEADER) {
            shorten(grpc_timeout::parse(value.as_bytes()).map_err(|_| "malformed grpc-timeout")?);
        }
        if let Some(name) = &self.timeout_header
            && let Some(value) = headers.get(name)
        {
            shorten(parse_request_timeout(value.as_bytes()).ok_or("malformed request timeout")?);
        }
        Ok(timeout)
    }
}

/// Plain milliseconds, or the grpc-timeout format.
fn parse_request_timeout(value: &[u8]) -> Option<Duration> {
    if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
        let ms = std::str::from_utf8(value).ok()?.parse().ok()?;
        return Some(Duration::from_millis(ms));
    }
    grpc_timeout::parse(value).ok()
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

impl<S, B, ResB> Service<Request<B>> for CtxService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: Body,
{
    type Response = Response<CtxBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let grpc = is_grpc(req.headers());
        let head = req.method() == http::Method::HEAD;
        let early = |early| ResponseFuture {
            guard: None,
            inner: None,
            early: Some(early),
            ctx: Context::background(),
            done: None,
            grpc,
            head,
        };
        let timeout = match self.config.timeout(req.headers()) {
            Ok(timeout) => timeout,
            Err(message) => return early(Early::BadTimeout(message)),
        };
        // Answered at once, without a timer tick: tonic's own grpc-timeout
        // handling would otherwise answer CANCELLED first.
        if timeout.is_some_and(|t| t.is_zero()) {
            return early(Early::Deadline);
        }
        if self.config.root.is_done() {
            return early(Early::Shutdown);
        }
        let root = &self.config.root;
        let (ctx, cancel) = match timeout {
            Some(timeout) => root.with_timeout(timeout),
            None => root.with_cancel(),
        };
        req.extensions_mut().insert(ctx.clone());
        let guard = Guard {
            cancel: Some(cancel),
            _token: self.config.tracker.as_ref().map(TaskTracker::token),
        };
        ResponseFuture {
            guard: Some(guard),
            inner: Some(self.inner.call(req)),
            early: None,
            done: Some(ctx.done_owned()),
            ctx,
            grpc,
            head,
        }
    }
}

/// Owns a request's cancel handle: completing it cancels plainly, dropping
/// it first means the client went away.
struct Guard {
    cancel: Option<CancelHandle>,
    _token: Option<TrackerToken>,
}

impl Guard {
    /// The request is over: cancel its context (Go: ServeHTTP returned).
    fn complete(mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel_with_cause(Cause::new(ClientDisconnected));
        }
    }
}

/// A response the layer makes itself.
#[derive(Clone, Copy, Debug)]
enum Early {
    Deadline,
    Shutdown,
    BadTimeout(&'static str),
}

impl Early {
    fn response<B: Body>(self, grpc: bool) -> Response<CtxBody<B>> {
        let (status, grpc_status, message) = match self {
            Early::Deadline => (
                StatusCode::GATEWAY_TIMEOUT,
                "4",
                "request deadline exceeded",
            ),
            Early::Shutdown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "14",
                "server shutting down",
            ),
            Early::BadTimeout(message) => (StatusCode::BAD_REQUEST, "13", message),
        };
        let mut response = Response::new(CtxBody {
            inner: None,
            guard: None,
        });
        if !grpc {
            *response.status_mut() = status;
        }
        let headers = response.headers_mut();
        if grpc {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from_static(grpc_status));
            headers.insert("grpc-message", HeaderValue::from_static(message));
        } else {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        response
    }
}

pin_project! {
    /// The response future of [`CtxService`].
    ///
    /// Dropping it before it completes cancels the request's context with
    /// [`ClientDisconnected`]: hyper drops it when the client goes away.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::http::{ClientDisconnected, CtxLayer};
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// # #[derive(Clone)] struct Never(tokio::sync::mpsc::UnboundedSender<Context>);
    /// # impl Service<http::Request<()>> for Never {
    /// #     type Response = http::Response<String>;
    /// #     type Error = Infallible;
    /// #     type Future = std::future::Pending<Result<http::Response<String>, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, req: http::Request<()>) -> Self::Future {
    /// #         self.0.send(req.extensions().get::<Context>().unwrap().clone()).unwrap();
    /// #         std::future::pending()
    /// #     }
    /// # }
    /// let (tx, mut contexts) = tokio::sync::mpsc::unbounded_channel();
    /// // `Never` hands its request's context over and never answers.
    /// let mut service = CtxLayer::new(Context::background()).layer(Never(tx));
    /// let response = service.call(http::Request::new(()));
    /// let ctx = contexts.recv().await.unwrap();
    /// drop(response); // the client went away
    /// assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        // Declared first so that it drops first: a handler dropped because its
        // client left already sees its context cancelled.
        guard: Option<Guard>,
        #[pin]
        inner: Option<F>,
        early: Option<Early>,
        ctx: Context,
        done: Option<DoneOwned>,
        grpc: bool,
        // A response to HEAD has no body to send (hyper drops it unread):
        // the request is over when the handler answers.
        head: bool,
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Body,
{
    type Output = Result<Response<CtxBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(early) = this.early.take() {
            return Poll::Ready(Ok(early.response(*this.grpc)));
        }
        // Biased like `Context::run`: a done context wins, even against a
        // ready response.
        let ended = match this.ctx.err() {
            Some(err) => Some(err),
            None => match this.inner.as_mut().as_pin_mut() {
                None => return Poll::Pending, // polled after completion
                Some(inner) => match inner.poll(cx) {
                    Poll::Ready(result) => {
                        let mut guard = this.guard.take();
                        this.inner.set(None);
                        if let Some(guard) = guard.take_if(|_| *this.head) {
                            guard.complete();
                        }
                        return Poll::Ready(match result {
                            Ok(response) => Ok(response.map(|inner| CtxBody {
                                inner: Some(inner),
                                guard,
                            })),
                            Err(err) => {
                                if let Some(guard) = guard {
                                    guard.complete();
                                }
                                Err(err)
                            }
                        });
                    }
                    Poll::Pending => match this.done.as_mut() {
                        Some(done) => match Pin::new(done).poll(cx) {
                            Poll::Ready(err) => Some(err),
                            Poll::Pending => None,
                        },
                        None => None,
                    },
                },
            },
        };
        match ended {
            None => Poll::Pending,
            Some(err) => {
                // Drop the handler (and whatever it awaits) now, then answer.
                this.inner.set(None);
                if let Some(guard) = this.guard.take() {
                    guard.complete();
                }
                let early = match err {
                    Error::DeadlineExceeded => Early::Deadline,
                    Error::Canceled => Early::Shutdown,
                };
                Poll::Ready(Ok(early.response(*this.grpc)))
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response body of [`CtxService`]: the handler's body, which keeps the
    /// request's context alive until it has been sent.
    ///
    /// When the body ends, the context is cancelled (the request is over);
    /// when it is dropped before its end (the client went away in the middle
    /// of a streaming response), the context is cancelled with
    /// [`ClientDisconnected`]. The layer's own responses have an empty body.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::http::CtxLayer;
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// # #[derive(Clone)] struct Hello(tokio::sync::mpsc::UnboundedSender<Context>);
    /// # impl Service<http::Request<()>> for Hello {
    /// #     type Response = http::Response<String>;
    /// #     type Error = Infallible;
    /// #     type Future = std::future::Ready<Result<http::Response<String>, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, req: http::Request<()>) -> Self::Future {
    /// #         self.0.send(req.extensions().get::<Context>().unwrap().clone()).unwrap();
    /// #         std::future::ready(Ok(http::Response::new("hello".to_owned())))
    /// #     }
    /// # }
    /// let (tx, mut contexts) = tokio::sync::mpsc::unbounded_channel();
    /// // `Hello` hands its request's context over and answers "hello".
    /// let mut service = CtxLayer::new(Context::background()).layer(Hello(tx));
    /// let response = service.call(http::Request::new(())).await.unwrap();
    /// let ctx = contexts.recv().await.unwrap();
    /// let mut body = response.into_body(); // a CtxBody<String>
    /// assert!(!ctx.is_done(), "alive while the body is unsent");
    /// let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)).await;
    /// assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "hello");
    /// assert!(ctx.is_done(), "the whole body went out: the request is over");
    /// # }
    /// ```
    pub struct CtxBody<B: Body> {
        #[pin]
        inner: Option<B>,
        guard: Option<Guard>,
    }

    impl<B: Body> PinnedDrop for CtxBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let ended = this.inner.as_ref().get_ref().as_ref().is_none_or(B::is_end_stream);
            if let Some(guard) = this.guard.take() {
                if ended {
                    guard.complete();
                } else {
                    drop(guard); // ClientDisconnected
                }
            }
        }
    }
}

impl<B: Body> CtxBody<B> {
    /// The body's own end has been reached.
    fn end(self: Pin<&mut Self>) {
        if let Some(guard) = self.project().guard.take() {
            guard.complete();
        }
    }
}

impl<B: Body> Body for CtxBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = match self.as_mut().project().inner.as_pin_mut() {
            None => Poll::Ready(None),
            Some(inner) => inner.poll_frame(cx),
        };
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.end(),
            Poll::Ready(Some(Ok(_))) if self.is_end_stream() => self.end(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(B::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), B::size_hint)
    }
}

impl<B: Body> fmt::Debug for CtxBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtxBody")
            .field("streaming", &self.guard.is_some())
            .finish()
    }
}
