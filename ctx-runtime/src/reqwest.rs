//! Outgoing HTTP calls under a [`Context`] with reqwest: the remaining time
//! becomes the request's timeout and goes to the server in
//! `x-request-timeout`, and the call is dropped (its connection closed, or
//! its HTTP/2 stream reset, so the upstream sees the client leave) the
//! moment the context ends.
//!
//! With [`CtxLayer`](crate::http::CtxLayer) on every server, a chain of HTTP
//! services A -> B -> C then behaves as one: each hop gets what its caller
//! had left, minus the time on the way, and when A's client leaves, B's and
//! C's request contexts are cancelled too.
//!
//! ```no_run
//! # async fn f() -> Result<(), ctx_runtime::reqwest::SendError> {
//! use ctx_runtime::Context;
//! use ctx_runtime::reqwest::RequestBuilderExt;
//! use std::time::Duration;
//!
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
//! let client = reqwest::Client::new();
//! // Sends `x-request-timeout: 1999` (or a little less: what ctx has left).
//! let response = client.get("http://127.0.0.1:8080/slow").send_ctx(&ctx).await?;
//! // Reading the body is another await: race it against ctx too.
//! let body = ctx.run(response.text()).await??;
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::context::Context;
use crate::error::Error;
use crate::request_timeout;

/// `send_ctx(&ctx)` for [`reqwest::RequestBuilder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Error};
/// use ctx_runtime::reqwest::{RequestBuilderExt, SendError};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel();
/// // Fails at once, without connecting.
/// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_ctx(&ctx).await.unwrap_err();
/// assert!(matches!(err, SendError::Context(Error::Canceled)));
/// # }
/// ```
pub trait RequestBuilderExt {
    /// Sends the request under `ctx`: Go's `http.NewRequestWithContext`.
    ///
    /// * If `ctx` is already done, fails with [`SendError::Context`] without
    ///   sending anything.
    /// * The time `ctx` has left becomes the request's timeout (connect to
    ///   the end of the response body; a shorter one set on the builder
    ///   stays), so reading the body is bounded by the deadline too.
    /// * The time left also goes to the server, in whole milliseconds
    ///   rounded down, as `x-request-timeout` (see
    ///   [`request_timeout`]), which
    ///   [`CtxLayer`](crate::http::CtxLayer) turns back into a deadline. A
    ///   shorter value already set on the builder stays. To use another
    ///   header, or none, see [`send_ctx_with`](Self::send_ctx_with).
    /// * The send is raced against `ctx`: when `ctx` ends first, the request
    ///   is dropped, which closes (HTTP/1.1) or resets (HTTP/2) its
    ///   connection, and [`SendError::Context`] is returned. A timeout that
    ///   fires together with the deadline is reported the same way.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// use ctx_runtime::reqwest::RequestBuilderExt;
    /// use std::time::Duration;
    ///
    /// // An upstream that accepts connections and never answers.
    /// let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let url = format!("http://{}/", upstream.local_addr().unwrap());
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
    /// let err = reqwest::Client::new().get(url).send_ctx(&ctx).await.unwrap_err();
    /// assert_eq!(err.context_error(), Some(Error::DeadlineExceeded));
    /// # drop(upstream);
    /// # }
    /// ```
    fn send_ctx(
        self,
        ctx: &Context,
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static + use<Self>;

    /// [`send_ctx`](Self::send_ctx), with the header that carries the time
    /// left chosen by `options`: another name, or none at all.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::reqwest::{RequestBuilderExt, SendOptions};
    /// use reqwest::header::HeaderName;
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::time::Duration;
    ///
    /// // A server that answers 204 and hands over the request's head.
    /// let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("http://{}/", server.local_addr().unwrap());
    /// let head = std::thread::spawn(move || {
    ///     let (stream, _) = server.accept().unwrap();
    ///     let mut head = String::new();
    ///     let mut lines = BufReader::new(&stream);
    ///     while lines.read_line(&mut head).unwrap() > 2 {} // up to the empty line
    ///     (&stream).write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    ///     head
    /// });
    ///
    /// let options = SendOptions::new().timeout_header(HeaderName::from_static("x-budget-ms"));
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    /// let response = reqwest::Client::new().get(url).send_ctx_with(&ctx, &options).await.unwrap();
    /// assert_eq!(response.status(), 204);
    /// let head = head.join().unwrap();
    /// assert!(head.contains("x-budget-ms: 4"), "{head}"); // 4999 or a little less
    /// assert!(!head.contains("x-request-timeout"), "{head}");
    /// # }
    /// ```
    fn send_ctx_with(
        self,
        ctx: &Context,
        options: &SendOptions,
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static + use<Self>;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn send_ctx(
        self,
        ctx: &Context,
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static + use<> {
        self.send_ctx_with(ctx, &SendOptions::new())
    }

    fn send_ctx_with(
        self,
        ctx: &Context,
        options: &SendOptions,
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static + use<> {
        let ctx = ctx.clone();
        let header = options.timeout_header.clone();
        async move {
            ctx.check()?;
            let (client, request) = self.build_split();
            let mut request = request?;
            // Measured once the request is built, just before it is sent.
            if let Some(left) = ctx.remaining() {
                let timeout = request.timeout_mut();
                *timeout = Some(timeout.map_or(left, |set| set.min(left)));
                if let Some(name) = header {
                    send_remaining(request.headers_mut(), name, left);
                }
            }
            match ctx.run(client.execute(request)).await? {
                Ok(response) => Ok(response),
                // reqwest's timer and the context's deadline are set to the
                // same instant on different clocks' timers: whichever fires
                // first, a timeout at the deadline is the deadline.
                Err(err) if err.is_timeout() => match ctx.err() {
                    Some(ctx_err) => Err(SendError::Context(ctx_err)),
                    None if ctx.remaining().is_some_and(|left| left.is_zero()) => {
                        Err(SendError::Context(Error::DeadlineExceeded))
                    }
                    None => Err(SendError::Http(err)),
                },
                Err(err) => Err(SendError::Http(err)),
            }
        }
    }
}

/// Puts `left` in header `name`, unless it already holds a shorter timeout.
fn send_remaining(headers: &mut reqwest::header::HeaderMap, name: HeaderName, left: Duration) {
    let shorter_set = headers
        .get(&name)
        .and_then(|v| request_timeout::parse(v.as_bytes()).ok())
        .is_some_and(|set| set <= left);
    if !shorter_set {
        let value = HeaderValue::from(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        headers.insert(name, value);
    }
}

/// How [`send_ctx_with`](RequestBuilderExt::send_ctx_with) tells the server
/// the time its context has left.
///
/// The default, also what [`send_ctx`](RequestBuilderExt::send_ctx) does:
/// `x-request-timeout`, in whole milliseconds. Build one per client and
/// reuse it.
///
/// ```
/// use ctx_runtime::reqwest::SendOptions;
/// use reqwest::header::HeaderName;
///
/// // What `send_ctx` does.
/// let default = SendOptions::new();
/// assert_eq!(default.header().unwrap(), "x-request-timeout");
/// // A server behind a proxy that reads another name.
/// let renamed = SendOptions::new().timeout_header(HeaderName::from_static("x-envoy-expected-rq-timeout-ms"));
/// // A third-party API that must not see the budget: the timeout still applies locally.
/// let silent = SendOptions::new().without_timeout_header();
/// assert!(silent.header().is_none());
/// # drop(renamed);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOptions {
    timeout_header: Option<HeaderName>,
}

impl SendOptions {
    /// `x-request-timeout`, as [`send_ctx`](RequestBuilderExt::send_ctx)
    /// sends it.
    ///
    /// ```
    /// assert_eq!(ctx_runtime::reqwest::SendOptions::new(), Default::default());
    /// ```
    pub fn new() -> SendOptions {
        SendOptions {
            timeout_header: Some(HeaderName::from_static(request_timeout::HEADER)),
        }
    }

    /// Sends the time left, in milliseconds, in header `name` instead.
    ///
    /// ```
    /// use ctx_runtime::reqwest::SendOptions;
    /// let options = SendOptions::new().timeout_header(reqwest::header::HeaderName::from_static("x-budget-ms"));
    /// assert_eq!(options.header().unwrap(), "x-budget-ms");
    /// ```
    pub fn timeout_header(mut self, name: HeaderName) -> SendOptions {
        self.timeout_header = Some(name);
        self
    }

    /// Sends no header: the time left still bounds the request locally,
    /// but the server is not told.
    ///
    /// ```
    /// let options = ctx_runtime::reqwest::SendOptions::new().without_timeout_header();
    /// assert_eq!(options.header(), None);
    /// ```
    pub fn without_timeout_header(mut self) -> SendOptions {
        self.timeout_header = None;
        self
    }

    /// The header that carries the time left, if any.
    ///
    /// ```
    /// assert_eq!(ctx_runtime::reqwest::SendOptions::new().header().unwrap(), "x-request-timeout");
    /// ```
    pub fn header(&self) -> Option<&HeaderName> {
        self.timeout_header.as_ref()
    }
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions::new()
    }
}

/// Why [`send_ctx`](RequestBuilderExt::send_ctx) failed: the context ended,
/// or the request did.
///
/// It is transparent, one of the two ways the Rust API guidelines allow a
/// wrapper: it displays the error it holds, and its
/// [`source`](std::error::Error::source) is that error's own source, so a
/// chain of errors (anyhow's `{:#}`, a logger walking `source()`) prints
/// each message once. Match on it to tell the two apart.
///
/// ```
/// use ctx_runtime::reqwest::SendError;
/// use std::error::Error as _;
///
/// let err = SendError::from(ctx_runtime::Error::DeadlineExceeded);
/// assert_eq!(err.to_string(), "context deadline exceeded");
/// assert!(err.source().is_none(), "not repeated by its source");
/// assert_eq!(err.context_error(), Some(ctx_runtime::Error::DeadlineExceeded));
/// ```
#[derive(Debug)]
pub enum SendError {
    /// The context was done before the response came.
    Context(Error),
    /// reqwest failed (connection refused, protocol error, ...).
    Http(reqwest::Error),
}

impl SendError {
    /// The context's error, if that is why the request failed.
    ///
    /// ```
    /// let err = ctx_runtime::reqwest::SendError::Context(ctx_runtime::Error::Canceled);
    /// assert!(err.context_error().is_some_and(|e| e.is_canceled()));
    /// ```
    pub fn context_error(&self) -> Option<Error> {
        match self {
            SendError::Context(err) => Some(*err),
            SendError::Http(_) => None,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Context(err) => fmt::Display::fmt(err, f),
            SendError::Http(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Context(err) => err.source(),
            SendError::Http(err) => err.source(),
        }
    }
}

impl From<Error> for SendError {
    fn from(err: Error) -> Self {
        SendError::Context(err)
    }
}

impl From<reqwest::Error> for SendError {
    fn from(err: reqwest::Error) -> Self {
        SendError::Http(err)
    }
}
