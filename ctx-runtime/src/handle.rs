//! [`CancelHandle`]: Go's `CancelFunc`, as an RAII guard.

use std::fmt;
use std::sync::Arc;

use crate::context::{Context, Repr};
use crate::error::{Cause, Error};
use crate::tree::CancelNode;

/// Cancels a context made by [`Context::with_cancel`], [`Context::with_deadline`]
/// or [`Context::with_timeout`]: Go's `CancelFunc`, as an RAII guard.
///
/// Dropping the handle cancels the context, so a handle bound for the length
/// of a scope is Go's `defer cancel()`: the context's resources (its link in
/// the parent, its timer) are released however the scope is left. Cancelling
/// is idempotent, and the first cancellation wins.
///
/// Bind it to a named variable: `let (ctx, _cancel) = ...` keeps it to the end
/// of the scope, while `let (ctx, _) = ...` drops it, and so cancels `ctx`, at
/// once.
///
/// ```
/// use ctx_runtime::{Context, Error};
///
/// let root = Context::background();
/// let child = {
///     let (child, _cancel) = root.with_cancel();
///     assert_eq!(child.err(), None);
///     child
/// }; // `_cancel` dropped here: Go's deferred cancel() ran.
/// assert_eq!(child.err(), Some(Error::Canceled));
/// assert_eq!(root.err(), None);
/// ```
#[doc(alias = "drop_guard")]
#[doc(alias = "DropGuard")]
#[must_use = "dropping a CancelHandle cancels its context at once; bind it: `let (ctx, _cancel) = ...`"]
pub struct CancelHandle {
    node: Arc<CancelNode>,
}

impl CancelHandle {
    pub(crate) fn new(node: Arc<CancelNode>) -> Self {
        CancelHandle { node }
    }

    /// Cancels the context and all its descendants with [`Error::Canceled`].
    ///
    /// Every descendant is cancelled before this returns; waiting tasks are
    /// woken, and `after_func` callbacks are started (never waited for). Does
    /// nothing if the context is already done.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// let (grandchild, _c) = ctx.with_cancel();
    /// cancel.cancel();
    /// assert!(grandchild.is_done());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(Error::Canceled, None);
    }

    /// Cancels with [`Error::Canceled`] and records `cause`, which
    /// [`Context::cause`] then returns here and in every descendant.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// cancel.cancel_with_cause("client disconnected");
    /// assert_eq!(ctx.err(), Some(ctx_runtime::Error::Canceled));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "client disconnected");
    /// ```
    pub fn cancel_with_cause(&self, cause: impl Into<Cause>) {
        self.node.cancel(Error::Canceled, Some(cause.into()));
    }

    /// The context this handle cancels.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// assert!(cancel.context().same(&ctx));
    /// ```
    pub fn context(&self) -> Context {
        Context::from_repr(Repr::Cancel(self.node.clone()))
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        // Go's deferred `cancel()`. Recorded as such, so that `Debug` of a
        // context cancelled at once by `let (ctx, _) = ...` says why.
        if self.node.cancel_dropped() {
            #[cfg(feature = "tracing")]
            tracing::trace!(
                ctx = ?self.context(),
                "context cancelled because its CancelHandle was dropped"
            );
        }
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("err", &self.node.err())
            .finish()
    }
}
