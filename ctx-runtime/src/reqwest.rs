//! Outgoing HTTP calls under a [`Context`] with reqwest: the remaining time
//! becomes the request's timeout, and the call is dropped (its connection
//! closed, so the upstream sees the client leave) the moment the context
//! ends.
//!
//! ```no_run
//! # async fn f() -> Result<(), ctx_runtime::reqwest::SendError> {
//! use ctx_runtime::Context;
//! use ctx_runtime::reqwest::RequestBuilderExt;
//! use std::time::Duration;
//!
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
//! let client = reqwest::Client::new();
//! let response = client.get("http://127.0.0.1:8080/slow").send_ctx(&ctx).await?;
//! // Reading the body is another await: race it against ctx too.
//! let body = ctx.run(response.text()).await??;
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;

use crate::context::Context;
use crate::error::Error;

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
    ///   the end of the response body), so reading the body is bounded by
    ///   the deadline too.
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
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn send_ctx(
        self,
        ctx: &Context,
    ) -> impl Future<Output = Result<reqwest::Response, SendError>> + Send + 'static {
        let ctx = ctx.clone();
        async move {
            ctx.check()?;
            let builder = match ctx.remaining() {
                Some(left) => self.timeout(left),
                None => self,
            };
            match ctx.run(builder.send()).await? {
                Ok(response) => Ok(response),
                Err(err) => match ctx.err() {
                    Some(ctx_err) if err.is_timeout() => Err(SendError::Context(ctx_err)),
                    _ => Err(SendError::Http(err)),
                },
            }
        }
    }
}

/// Why [`send_ctx`](RequestBuilderExt::send_ctx) failed: the context ended,
/// or the request did.
///
/// ```
/// use ctx_runtime::reqwest::SendError;
/// let err = SendError::from(ctx_runtime::Error::DeadlineExceeded);
/// assert_eq!(err.to_string(), "context deadline exceeded");
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
            SendError::Context(err) => Some(err),
            SendError::Http(err) => Some(err),
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
