//! Tasks under a context: [`spawn`] (Go's `go f(ctx)` with a leash),
//! [`Group`] (Go's `errgroup.WithContext`) and [`TaskTracker`] (a
//! `sync.WaitGroup` for graceful shutdown).
//!
//! A plain `tokio::spawn` forgets where its work came from: when the request
//! that started it ends, it runs on. Every task started here runs under a
//! child of a [`Context`], so cancelling the parent (the client left, the
//! deadline passed, the server is shutting down) reaches it, and its own
//! context ends when it does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle, JoinSet};

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

fn spawn_tracked<F, Fut>(
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
        join: Some(join),
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
#[must_use = "dropping a TaskHandle cancels and aborts its task; `.detach()` it to let it run"]
pub struct TaskHandle<T> {
    /// `None` only once detached.
    join: Option<JoinHandle<T>>,
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
        self.join.as_ref().is_none_or(JoinHandle::is_finished)
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
        self.join
            .take()
            .expect("a TaskHandle is detached only once")
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let join = this
            .join
            .as_mut()
            .expect("a TaskHandle is not polled after detach");
        Pin::new(join).poll(cx)
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if let Some(join) = &self.join {
            self.cancel.cancel_with_cause("task handle dropped");
            join.abort();
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

/// Tasks that succeed or fail together: Go's `errgroup.WithContext`.
///
/// Every task runs under the group's context, a child of the one given to
/// [`with_context`](Group::with_context). The first task to return `Err`
/// cancels that context, with the error as its [cause](Context::cause), so
/// the other tasks stop; [`wait`](Group::wait) returns that first error once
/// *every* task has finished, and then cancels the group's context.
///
/// The error is shared as an `Arc<E>` (the cause holds it too), and
/// `Arc<E>` is itself an error, so `group.wait().await?` works in functions
/// returning `Box<dyn Error>` or `anyhow::Result`. A task that panics makes
/// `wait` cancel the rest and then resume the panic. Dropping the group
/// cancels its context and aborts its tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Group};
/// use std::io;
///
/// let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
/// group.spawn(|ctx| async move {
///     ctx.run(std::future::pending::<()>()).await?; // a slow mirror
///     Ok(())
/// });
/// group.spawn(|_ctx| async { Err(io::Error::other("primary is down")) });
///
/// let err = group.wait().await.unwrap_err();
/// assert_eq!(err.to_string(), "primary is down");
/// assert!(ctx.is_done());
/// assert_eq!(ctx.cause().unwrap().to_string(), "primary is down");
/// assert!(ctx.cause().unwrap().is::<io::Error>());
/// # }
/// ```
pub struct Group<E> {
    ctx: Context,
    shared: Arc<GroupShared<E>>,
    tasks: Mutex<JoinSet<()>>,
}

struct GroupShared<E> {
    first: Mutex<Option<Arc<E>>>,
    cancel: CancelHandle,
}

impl<E> GroupShared<E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn fail(&self, err: E) {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            let err = Arc::new(err);
            *first = Some(Arc::clone(&err));
            drop(first);
            let cause: Arc<dyn std::error::Error + Send + Sync> = err;
            self.cancel.cancel_with_cause(cause);
        }
    }
}

impl<E> Group<E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// A new group under a child of `parent`, and that child: Go's
    /// `g, ctx := errgroup.WithContext(parent)`.
    ///
    /// ```
    /// use ctx_runtime::{Context, Error, Group};
    /// let (parent, cancel) = Context::background().with_cancel();
    /// let (_group, ctx) = Group::<Error>::with_context(&parent);
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn with_context(parent: &Context) -> (Group<E>, Context) {
        let (ctx, cancel) = parent.with_cancel();
        let group = Group {
            ctx: ctx.clone(),
            shared: Arc::new(GroupShared {
                first: Mutex::new(None),
                cancel,
            }),
            tasks: Mutex::new(JoinSet::new()),
        };
        (group, ctx)
    }

    /// The group's context, which every task receives: Go's `ctx` from
    /// `errgroup.WithContext`.
    ///
    /// ```
    /// use ctx_runtime::{Context, Error, Group};
    /// let (group, ctx) = Group::<Error>::with_context(&Context::background());
    /// assert!(group.context().same(&ctx));
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Runs `f(ctx)` as a task of the group, under the group's context: Go's
    /// `g.Go(f)`. Its first `Err` cancels the group.
    ///
    /// Must be called inside a tokio runtime. A task may itself spawn into the
    /// group if the group is shared (`Arc<Group<E>>`); [`wait`](Group::wait)
    /// waits for those too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error, Group};
    /// let (group, _ctx) = Group::<Error>::with_context(&Context::background());
    /// for _ in 0..3 {
    ///     group.spawn(|ctx| async move { ctx.check() });
    /// }
    /// assert!(group.wait().await.is_ok());
    /// # }
    /// ```
    pub fn spawn<F, Fut>(&self, f: F)
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let fut = f(self.ctx.clone());
        let shared = Arc::clone(&self.shared);
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawn(async move {
                if let Err(err) = fut.await {
                    shared.fail(err);
                }
            });
    }

    /// Waits until every task of the group has finished, then cancels the
    /// group's context and returns the first error, if any: Go's `g.Wait()`.
    ///
    /// If a task panicked, the group's context is cancelled at once (cause
    /// `"a task of the group panicked"`), the other tasks are awaited, and
    /// the panic is resumed here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error, Group};
    /// let (group, ctx) = Group::<Error>::with_context(&Context::background());
    /// group.spawn(|_ctx| async { Ok(()) });
    /// assert!(group.wait().await.is_ok());
    /// assert!(ctx.is_done(), "like Go, Wait cancels the group's context");
    /// # }
    /// ```
    pub async fn wait(&self) -> Result<(), Arc<E>> {
        let mut panic = None;
        loop {
            let mut tasks =
                std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
            if tasks.is_empty() {
                break;
            }
            while let Some(joined) = tasks.join_next().await {
                if let Err(err) = joined
                    && err.is_panic()
                {
                    self.shared
                        .cancel
                        .cancel_with_cause("a task of the group panicked");
                    panic.get_or_insert(err.into_panic());
                }
            }
        }
        self.shared.cancel.cancel();
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
        match &*self
            .shared
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(err) => Err(Arc::clone(err)),
            None => Ok(()),
        }
    }
}

impl<E> Drop for Group<E> {
    fn drop(&mut self) {
        // The JoinSet aborts what is left when it drops, right after this.
        self.shared.cancel.cancel_with_cause("group dropped");
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Group")
            .field("ctx", &self.ctx)
            .field("running", &running)
            .finish()
    }
}

/// Counts running work so that shutdown can wait for it: a `sync.WaitGroup`
/// that can be closed.
///
/// Track tasks with [`spawn`](TaskTracker::spawn), anything else with a
/// [`token`](TaskTracker::token), and requests by giving the tracker to
/// `CtxLayer` (feature `tower`). On shutdown, cancel the server's root
/// context, [`close`](TaskTracker::close) the tracker, and
/// [`wait`](TaskTracker::wait): it returns once the tracker is closed and
/// nothing it counts is left. Clones share one count.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, TaskTracker};
///
/// let (server, shutdown) = Context::background().with_cancel();
/// let tracker = TaskTracker::new();
/// for _ in 0..3 {
///     tracker
///         .spawn(&server, |ctx| async move { ctx.done().await })
///         .detach();
/// }
/// shutdown.cancel_with_cause("shutting down");
/// tracker.close();
/// tracker.wait().await; // every task saw the cancellation and returned
/// assert!(tracker.is_empty());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct TaskTracker {
    inner: Arc<TrackerInner>,
}

#[derive(Default)]
struct TrackerInner {
    state: Mutex<TrackerState>,
    idle: Notify,
}

#[derive(Default)]
struct TrackerState {
    count: usize,
    closed: bool,
}

impl TrackerInner {
    fn state(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TaskTracker {
    /// An open tracker that counts nothing yet.
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// assert!(tracker.is_empty() && !tracker.is_closed());
    /// ```
    pub fn new() -> TaskTracker {
        TaskTracker::default()
    }

    /// [`spawn`](crate::spawn), counted by this tracker until the task ends.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// let task = tracker.spawn(&ctx_runtime::Context::background(), |_ctx| async { 42 });
    /// assert_eq!(tracker.len(), 1);
    /// assert_eq!(task.await.unwrap(), 42);
    /// tracker.close();
    /// tracker.wait().await;
    /// # }
    /// ```
    pub fn spawn<F, Fut>(&self, ctx: &Context, f: F) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        spawn_tracked(ctx, f, Some(self.token()))
    }

    /// Counts one piece of work until the returned token is dropped.
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// let token = tracker.token();
    /// assert_eq!(tracker.len(), 1);
    /// drop(token);
    /// assert!(tracker.is_empty());
    /// ```
    pub fn token(&self) -> TrackerToken {
        self.inner.state().count += 1;
        TrackerToken {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Closes the tracker: from now on, [`wait`](TaskTracker::wait) returns
    /// as soon as nothing is counted. Work can still be added after closing.
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// tracker.close();
    /// assert!(tracker.is_closed());
    /// ```
    pub fn close(&self) {
        let mut state = self.inner.state();
        state.closed = true;
        if state.count == 0 {
            drop(state);
            self.inner.idle.notify_waiters();
        }
    }

    /// True once [`close`](TaskTracker::close) was called.
    ///
    /// ```
    /// assert!(!ctx_runtime::TaskTracker::new().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.state().closed
    }

    /// How many tasks, tokens and requests are counted now.
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// let _a = tracker.token();
    /// let _b = tracker.token();
    /// assert_eq!(tracker.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.state().count
    }

    /// True if nothing is counted.
    ///
    /// ```
    /// assert!(ctx_runtime::TaskTracker::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the tracker is closed and counts nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// let token = tracker.token();
    /// tracker.close();
    /// let waiter = tokio::spawn({
    ///     let tracker = tracker.clone();
    ///     async move { tracker.wait().await }
    /// });
    /// drop(token);
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.inner.state();
                if state.closed && state.count == 0 {
                    return;
                }
            }
            notified.await;
        }
    }
}

impl fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state();
        f.debug_struct("TaskTracker")
            .field("len", &state.count)
            .field("closed", &state.closed)
            .finish()
    }
}

/// One unit of work counted by a [`TaskTracker`], until dropped.
///
/// ```
/// let tracker = ctx_runtime::TaskTracker::new();
/// let token = tracker.token();
/// std::thread::spawn(move || drop(token)).join().unwrap();
/// assert!(tracker.is_empty());
/// ```
pub struct TrackerToken {
    inner: Arc<TrackerInner>,
}

impl Drop for TrackerToken {
    fn drop(&mut self) {
        let mut state = self.inner.state();
        state.count -= 1;
        if state.count == 0 && state.closed {
            drop(state);
            self.inner.idle.notify_waiters();
        }
    }
}

impl fmt::Debug for TrackerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrackerToken")
    }
}
