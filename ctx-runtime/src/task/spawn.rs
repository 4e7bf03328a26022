//! [`spawn`] and [`TaskHandle`]: one task under a child context, aborted
//! when its handle drops (tokio-util's `AbortOnDropHandle`, plus the context).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use tokio::task::{JoinError, JoinHandle};
use tokio_util::task::AbortOnDropHandle;

use super::tracker::TrackerToken;
use crate::context::Context;
use crate::error::Cause;
use crate::handle::CancelHandle;

/// Runs `f(ctx)` as a tokio task under a child of `ctx`, and returns a
/// handle that cancels and aborts it when dropped: Go's `go f(ctx)` on a leash.
///
/// * The task's context is a [`with_cancel`](Context::with_cancel) child of
///   `ctx`: cancelling `ctx` (or any ancestor) cancels the task's context.
/// * The task's context is cancelled when the task ends, like Go's
///   `defer cancel()`, so whatever it started under that context stops too.
/// * Dropping the [`TaskHandle`] cancels the task's context (cause
///   `"task handle dropped"`) and aborts the task. Call
///   [`detach`](TaskHandle::detach) to let it run on its own; it still stops
///   when `ctx` is cancelled, if it watches its context.
/// * Awaiting the handle gives the task's output, or a [`JoinError`] if it
///   panicked or was aborted.
///
/// `f` is called at once, on the caller's thread; the future it returns runs
/// on the tokio runtime (so this must be called inside one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Error};
///
/// let (request, client_gone) = Context::background().with_cancel();
/// let task = ctx_runtime::spawn(&request, |ctx| async move {
///     ctx.run(std::future::pending::<()>()).await // an upstream that never answers
/// });
/// client_gone.cancel_with_cause("client disconnected");
/// assert_eq!(task.await.unwrap(), Err(Error::Canceled));
/// # }
/// ```
pub fn spawn<F, Fut>(ctx: &Context, f: F) -> TaskHandle<Fut::Output>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    spawn_tracked(ctx, f, None)
}

pub(super) fn spawn_tracked<F, Fut>(
    ctx: &Context,
    f: F,
    token: Option<TrackerToken>,
) -> TaskHandle<Fut::Output>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let (child, cancel) = ctx.with_cancel();
    let cancel = Arc::new(cancel);
    let fut = f(child.clone());
    let on_exit = CancelOnDrop(Arc::clone(&cancel));
    let join = tokio::spawn(async move {
        // Dropped when the task ends, panics or is aborted: the task's context
        // ends with it, and a tracker stops counting it.
        let _on_exit = on_exit;
        let _token = token;
        fut.await
    });
    TaskHandle {
        join: Some(AbortOnDropHandle::new(join)),
        ctx: child,
        cancel,
    }
}

/// Cancels the shared handle when dropped.
struct CancelOnDrop(Arc<CancelHandle>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// `ctx.spawn(f)`: [`spawn`] as a method of [`Context`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, SpawnExt};
///
/// let (ctx, _cancel) = Context::background().with_cancel();
/// let task = ctx.spawn(|ctx| async move { ctx.is_done() });
/// assert_eq!(task.await.unwrap(), false);
/// # }
/// ```
pub trait SpawnExt {
    /// Runs `f(child)` as a task under a child of this context; see [`spawn`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error, SpawnExt};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let task = ctx.spawn(|ctx| async move { ctx.run(std::future::pending::<()>()).await });
    /// cancel.cancel();
    /// assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    /// # }
    /// ```
    fn spawn<F, Fut>(&self, f: F) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static;
}

impl SpawnExt for Context {
    fn spawn<F, Fut>(&self, f: F) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        spawn(self, f)
    }
}

/// A task started by [`spawn`]: await it for its output; drop it to cancel
/// and abort the task.
///
/// The abort-on-drop is tokio-util's [`AbortOnDropHandle`]; what this handle
/// adds is the task's context: dropping it first cancels that context with
/// the cause `"task handle dropped"`, so that whatever the task started under
/// it stops too. Awaiting it is cancel-safe, like awaiting a [`JoinHandle`]:
/// a `select!` that gives up on it leaves the task running.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::Context;
///
/// let task = ctx_runtime::spawn(&Context::background(), |ctx| async move {
///     ctx.run(std::future::pending::<()>()).await
/// });
/// let task_ctx = task.context().clone();
/// drop(task); // cancels the task's context and aborts it
/// assert!(task_ctx.is_done());
/// assert_eq!(task_ctx.cause().unwrap().to_string(), "task handle dropped");
/// # }
/// ```
#[must_use = "dropping a TaskHandle aborts its task and cancels its context; \
              call `.detach()` to let the task run on"]
pub struct TaskHandle<T> {
    /// Aborts the task when dropped. `None` only inside `detach`, which
    /// takes it out before this handle drops.
    join: Option<AbortOnDropHandle<T>>,
    ctx: Context,
    cancel: Arc<CancelHandle>,
}

impl<T> TaskHandle<T> {
    /// The task's context: a child of the one it was spawned under.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// struct TraceId(u32);
    /// let ctx = Context::background().with_value(TraceId(7));
    /// let task = ctx_runtime::spawn(&ctx, |ctx| async move { ctx.value::<TraceId>().map(|t| t.0) });
    /// assert!(!task.context().is_done());
    /// assert_eq!(task.await.unwrap(), Some(7));
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Cancels the task's context with [`Error::Canceled`](crate::Error::Canceled),
    /// without aborting it: the task sees `ctx` done and winds down itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// let task = ctx_runtime::spawn(&Context::background(), |ctx| async move {
    ///     ctx.done().await;
    ///     "cleaned up"
    /// });
    /// task.cancel();
    /// assert_eq!(task.await.unwrap(), "cleaned up");
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// [`cancel`](TaskHandle::cancel) with a cause the task can read with
    /// [`Context::cause`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// let task = ctx_runtime::spawn(&Context::background(), |ctx| async move {
    ///     ctx.done().await;
    ///     ctx.cause().unwrap().to_string()
    /// });
    /// task.cancel_with_cause("no longer needed");
    /// assert_eq!(task.await.unwrap(), "no longer needed");
    /// # }
    /// ```
    pub fn cancel_with_cause(&self, cause: impl Into<Cause>) {
        self.cancel.cancel_with_cause(cause);
    }

    /// Cancels the task's context and aborts the task at its next `.await`;
    /// awaiting the handle then gives a cancelled [`JoinError`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = ctx_runtime::spawn(&ctx_runtime::Context::background(), |_ctx| {
    ///     std::future::pending::<()>()
    /// });
    /// task.abort();
    /// assert!(task.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort(&self) {
        self.cancel.cancel();
        if let Some(join) = &self.join {
            join.abort();
        }
    }

    /// True once the task has ended (finished, panicked or aborted).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = ctx_runtime::spawn(&ctx_runtime::Context::background(), |_ctx| async {});
    /// tokio::task::yield_now().await;
    /// assert!(task.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.join
            .as_ref()
            .is_none_or(AbortOnDropHandle::is_finished)
    }

    /// Lets the task run on without this handle: Go's plain `go f(ctx)`.
    ///
    /// The task still runs under its context, so it stops when the context it
    /// was spawned under is cancelled (if it watches it), and its context is
    /// still cancelled when it ends. The returned tokio [`JoinHandle`] can be
    /// awaited for the output; dropping it does nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    ///
    /// let (request, cancel) = Context::background().with_cancel();
    /// let join = ctx_runtime::spawn(&request, |ctx| async move {
    ///     ctx.run(std::future::pending::<()>()).await
    /// })
    /// .detach();
    /// cancel.cancel(); // the request ends: the detached task stops with it
    /// assert_eq!(join.await.unwrap(), Err(Error::Canceled));
    /// # }
    /// ```
    pub fn detach(mut self) -> JoinHandle<T> {
        // Taken out before `self` drops: our `Drop` then neither cancels the
        // context nor aborts the task.
        let Some(join) = self.join.take() else {
            unreachable!("only detach takes the handle out, and it consumes the TaskHandle")
        };
        join.detach()
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let Some(join) = self.get_mut().join.as_mut() else {
            unreachable!("only detach takes the handle out, and it consumes the TaskHandle")
        };
        Pin::new(join).poll(cx)
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        // What is ours: the context learns why. The abort is the
        // `AbortOnDropHandle`'s, as the field drops right after this.
        if self.join.is_some() {
            self.cancel.cancel_with_cause("task handle dropped");
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("ctx", &self.ctx)
            .field("finished", &self.is_finished())
            .finish()
    }
}
