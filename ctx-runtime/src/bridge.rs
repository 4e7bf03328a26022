//! The bridge to tokio-util's [`CancellationToken`] (feature `tokio-util`):
//! hand a context to a library that takes a token, or let a token you
//! already have cancel a context.
//!
//! Neither direction spawns a task. A context hands out children of one token
//! it keeps and cancels with itself; a context made from a token registers
//! the token's wait, polled once with a waker that cancels the context, and
//! drops it when the context ends (so nothing is left behind in the token).

use std::fmt;

use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::handle::CancelHandle;
use crate::tree::{CancelNode, Kind};

impl Context {
    /// A [`CancellationToken`] that is cancelled when this context is done,
    /// for a library that takes one (feature `tokio-util`).
    ///
    /// Cheap to call repeatedly: every call returns a new child of one token
    /// the context keeps, so cancelling the token you were given cancels
    /// nothing else (and not the context: the bridge goes one way). For a
    /// context that can never be done (`background()`, `without_cancel()`)
    /// the token is never cancelled; for one that is done already, it is
    /// cancelled already.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// // A library that stops when its token is cancelled.
    /// async fn poll_feed(token: CancellationToken) -> &'static str {
    ///     token.cancelled().await;
    ///     "stopped"
    /// }
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let feed = tokio::spawn(poll_feed(ctx.cancellation_token()));
    /// cancel.cancel();
    /// assert_eq!(feed.await.unwrap(), "stopped");
    /// # }
    /// ```
    #[doc(alias = "CancellationToken")]
    pub fn cancellation_token(&self) -> CancellationToken {
        match self.signal() {
            Some(node) => node.cancellation_token(),
            None => CancellationToken::new(),
        }
    }

    /// A child of this context that is also cancelled when `token` is, with
    /// the cause [`TokenCancelled`] (feature `tokio-util`): bring a service's
    /// existing shutdown token into a context tree.
    ///
    /// No task is spawned: the token's wait is registered with a waker that
    /// cancels the child. It is dropped, and so leaves the token, when the
    /// child ends first (cancelled, or its handle dropped).
    ///
    /// ```
    /// use ctx_runtime::{Context, Error, TokenCancelled};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let shutdown = CancellationToken::new(); // the service's own
    /// let (request, _cancel) = Context::background().with_cancellation_token(shutdown.clone());
    /// assert!(!request.is_done());
    /// shutdown.cancel();
    /// assert_eq!(request.err(), Some(Error::Canceled));
    /// assert!(request.cause().unwrap().is::<TokenCancelled>());
    /// ```
    pub fn with_cancellation_token(&self, token: CancellationToken) -> (Context, CancelHandle) {
        let (ctx, handle) = self.derive(None, None, Kind::Token);
        if let Some(node) = ctx.signal()
            && !node.is_done()
        {
            CancelNode::watch_token(node, token);
        }
        (ctx, handle)
    }
}

/// The cause of a context made by [`Context::with_cancellation_token`] that
/// ended because its token was cancelled (feature `tokio-util`).
///
/// ```
/// use ctx_runtime::TokenCancelled;
/// assert_eq!(TokenCancelled.to_string(), "its CancellationToken was cancelled");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCancelled;

impl fmt::Display for TokenCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("its CancellationToken was cancelled")
    }
}

impl std::error::Error for TokenCancelled {}
