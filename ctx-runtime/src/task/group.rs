//! [`Group`]: tasks that succeed or fail together (Go's `errgroup`), with a
//! cancel-safe [`wait`](Group::wait).

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};

use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};

use super::waiters::{Waiter, Waiters};
use crate::context::Context;
use crate::error::Cause;
use crate::handle::CancelHandle;

/// Tasks that succeed or fail together: Go's `errgroup.WithContext`.
///
/// Every task runs under the group's context, a child of the one given to
/// [`with_context`](Group::with_context). The first task to return `Err`
/// cancels that context so that the other tasks stop; [`wait`](Group::wait)
/// returns that first error, as the `E` the task returned, once *every* task
/// has ended, and then cancels the group's context. A task that panics makes
/// `wait` cancel the rest and, once they have ended, resume the panic.
/// Dropping the group cancels its context (cause `"group dropped"`) and aborts
/// its tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Group, TaskFailed};
/// use std::io;
///
/// let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
/// group.spawn(|ctx| async move {
///     ctx.run(std::future::pending::<()>()).await?; // a slow mirror
///     Ok(())
/// });
/// group.spawn(|_ctx| async { Err(io::Error::other("primary is down")) });
///
/// let err: io::Error = group.wait().await.unwrap_err(); // the error itself
/// assert_eq!(err.to_string(), "primary is down");
/// assert!(ctx.is_done());
/// let cause = ctx.cause().unwrap(); // why the mirror was stopped
/// assert_eq!(cause.to_string(), "primary is down");
/// assert!(cause.is::<TaskFailed>());
/// # }
/// ```
///
/// # The error type
///
/// `E` is any `Display + Send + 'static` type: `io::Error`, your own
/// thiserror enum, `anyhow::Error` (which is not a `std::error::Error`), or
/// [`Error`](crate::Error) for tasks that only stop on their context. `wait`
/// moves the error out, so `group.wait().await?` converts it with `From`
/// like any other. Go's `context.Cause(ctx)` *is* the first error; here the
/// error goes to `wait` and cannot also be shared without `E: Clone`, so the
/// group's context gets a [`TaskFailed`] as its cause: the first error's
/// message, taken when it is returned (hence `E: Display`).
///
/// # Waiting is cancel-safe
///
/// A `wait` that is dropped before it completes (it lost a `select!`, a
/// `timeout` ran out) changes nothing: the tasks run on, the group's context is
/// untouched, and the first error or a panic it already saw stays for the
/// next `wait`, which returns once every task has ended. `wait` takes `&self`
/// so that a group shared as `Arc<Group<E>>` can be waited on while its own
/// tasks spawn more work into it; two waits at once each return only when
/// every task has ended. The outcome is handed out once, like a
/// `JoinSet`'s results: the first wait to complete gets the first error (or
/// resumes the panic); any other wait returns `Ok(())` after every task has
/// ended, and the context's cause still tells what happened.
pub struct Group<E> {
    ctx: Context,
    shared: Arc<Shared<E>>,
    tasks: Mutex<Tasks>,
    waiters: Arc<Waiters>,
    /// `waiters` as a waker: the one the task set keeps.
    wake_waiters: Waker,
}

/// What the group's tasks reach: where the first error goes and the cancel.
struct Shared<E> {
    first: Mutex<First<E>>,
    cancel: CancelHandle,
}

enum First<E> {
    /// No task has failed yet.
    None,
    /// The first failing task is taking its error's message for the cause.
    Failing,
    /// The first error, kept until a wait returns it.
    Failed(E),
    /// A wait returned the first error; later errors are not first.
    Reported,
}

/// The tasks, and the first panic seen among them until a wait resumes it.
struct Tasks {
    set: JoinSet<()>,
    panic: Option<Box<dyn Any + Send>>,
}

/// What a lock-holder found that must be done after unlocking (it runs user code).
#[derive(Default)]
struct AfterUnlock {
    /// A panic was seen: cancel the rest.
    cancel: bool,
    /// Payloads of panics after the first.
    dropped: Vec<Box<dyn Any + Send>>,
}

impl AfterUnlock {
    fn run(self, cancel: &CancelHandle) {
        if self.cancel {
            cancel.cancel_with_cause(Cause::new(TaskFailed::panicked()));
        }
    }
}

impl Tasks {
    fn record(&mut self, joined: Result<(), JoinError>, after: &mut AfterUnlock) {
        // A task is aborted only when the group drops (no wait is left then)
        // or its runtime shuts down: only panics are news.
        if let Err(err) = joined
            && err.is_panic()
        {
            after.cancel = true;
            let payload = err.into_panic();
            if self.panic.is_none() {
                self.panic = Some(payload);
            } else {
                after.dropped.push(payload);
            }
        }
    }
}

impl<E> Shared<E> {
    fn lock_first(&self) -> MutexGuard<'_, First<E>> {
        // No user code runs under this lock, so it is never poisoned in a
        // state that matters; recover the data either way.
        self.first.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, err: E)
    where
        E: fmt::Display,
    {
        {
            let mut first = self.lock_first();
            if !matches!(*first, First::None) {
                drop(first);
                drop(err); // user code: outside the lock
                return;
            }
            *first = First::Failing;
        }
        let cause = TaskFailed::error(&err); // user code (Display): outside the lock
        *self.lock_first() = First::Failed(err);
        self.cancel.cancel_with_cause(Cause::new(cause));
    }

    fn take_first(&self) -> Result<(), E> {
        let mut first = self.lock_first();
        if !matches!(*first, First::Failed(_)) {
            return Ok(());
        }
        match mem::replace(&mut *first, First::Reported) {
            First::Failed(err) => Err(err),
            _ => Ok(()),
        }
    }
}

impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
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
        let waiters = Arc::new(Waiters::default());
        let group = Group {
            ctx: ctx.clone(),
            shared: Arc::new(Shared {
                first: Mutex::new(First::None),
                cancel,
            }),
            tasks: Mutex::new(Tasks {
                set: JoinSet::new(),
                panic: None,
            }),
            wake_waiters: Waker::from(Arc::clone(&waiters)),
            waiters,
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
    /// `f` is called at once; the future it returns runs as a tokio task, so
    /// this must be called inside a tokio runtime. A task may itself spawn
    /// into the group if the group is shared (`Arc<Group<E>>`);
    /// [`wait`](Group::wait) waits for those too.
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
        self.spawn_task(async move {
            if let Err(err) = fut.await {
                shared.fail(err);
            }
        });
    }

    /// [`spawn`](Group::spawn) for a task that returns a value: await the
    /// [`TaskOutput`] for it.
    ///
    /// Go's errgroup has no values (goroutines write into a slice). Here the
    /// fan-out, fail-fast, fan-in shape reads as it runs: spawn each part,
    /// `wait()?` for all of them (or the first error), then take each value.
    /// Dropping the `TaskOutput` does nothing to the task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> anyhow::Result<()> {
    /// use ctx_runtime::{Context, Group};
    ///
    /// async fn fetch(ctx: Context, what: &str) -> anyhow::Result<String> {
    ///     ctx.check()?;
    ///     Ok(format!("{what} data"))
    /// }
    ///
    /// let (group, _ctx) = Group::<anyhow::Error>::with_context(&Context::background());
    /// let user = group.spawn_with_output(|ctx| fetch(ctx, "user"));
    /// let orders = group.spawn_with_output(|ctx| fetch(ctx, "orders"));
    /// group.wait().await?; // every part succeeded, or the first error is here
    /// assert_eq!(user.await.as_deref(), Some("user data"));
    /// assert_eq!(orders.await.as_deref(), Some("orders data"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_with_output<F, Fut, T>(&self, f: F) -> TaskOutput<T>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.ctx.clone());
        let shared = Arc::clone(&self.shared);
        let (tx, rx) = oneshot::channel();
        self.spawn_task(async move {
            match fut.await {
                // Nobody listening is fine: the value is simply dropped.
                Ok(value) => drop(tx.send(value)),
                Err(err) => shared.fail(err),
            }
        });
        TaskOutput { rx: Some(rx) }
    }

    fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut after = AfterUnlock::default();
        {
            let mut tasks = self.lock_tasks();
            // Join what has ended, so that a long-lived group holds only what
            // runs (and sees a panic without waiting for a wait).
            while let Some(joined) = tasks.set.try_join_next() {
                tasks.record(joined, &mut after);
            }
            tasks.set.spawn(task);
        }
        after.run(&self.shared.cancel);
    }

    /// Waits until every task of the group has ended, then cancels the
    /// group's context and returns the first error, if any: Go's `g.Wait()`.
    ///
    /// Cancel-safe: dropping this future before it completes changes nothing
    /// (see [the type's docs](Group#waiting-is-cancel-safe)). If a task
    /// panicked, the group's context is cancelled as soon as a wait (or a
    /// `spawn`) sees it, with a [`TaskFailed`] cause that
    /// [is a panic](TaskFailed::is_panic); the wait then awaits the other
    /// tasks and resumes the panic.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Group};
    /// use std::{io, time::Duration};
    ///
    /// let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    /// group.spawn(|_ctx| async {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     Err(io::Error::other("too late"))
    /// });
    /// // Giving up on a wait leaves the group as it was...
    /// let gave_up = tokio::time::timeout(Duration::from_millis(10), group.wait()).await;
    /// assert!(gave_up.is_err() && !ctx.is_done());
    /// // ...and the next wait still gets the error.
    /// assert_eq!(group.wait().await.unwrap_err().to_string(), "too late");
    /// assert!(ctx.is_done(), "like Go, Wait cancels the group's context");
    /// # }
    /// ```
    pub async fn wait(&self) -> Result<(), E> {
        // Dropped with this future: the only state a wait owns is its place
        // among the waiters; everything it learns goes into the group first.
        let waiter = self.waiters.waiter();
        poll_fn(|cx| self.poll_wait(cx, &waiter)).await
    }

    fn poll_wait(&self, cx: &mut TaskContext<'_>, waiter: &Waiter) -> Poll<Result<(), E>> {
        let mut after = AfterUnlock::default();
        let mut resume = None;
        let ended = {
            let _polling = waiter.enter(cx.waker());
            let mut tasks = self.lock_tasks();
            let mut set_cx = TaskContext::from_waker(&self.wake_waiters);
            let ended = loop {
                match tasks.set.poll_join_next(&mut set_cx) {
                    Poll::Ready(Some(joined)) => tasks.record(joined, &mut after),
                    Poll::Ready(None) => break true,
                    Poll::Pending => break false,
                }
            };
            if ended {
                resume = tasks.panic.take();
            }
            ended
            // `tasks` unlocks here, then `_polling` delivers the wakes it held back.
        };
        after.run(&self.shared.cancel);
        if !ended {
            return Poll::Pending;
        }
        // Go: the context is cancelled the first time Wait returns.
        self.shared.cancel.cancel();
        if let Some(payload) = resume {
            std::panic::resume_unwind(payload);
        }
        Poll::Ready(self.shared.take_first())
    }
}

impl<E> Group<E> {
    fn lock_tasks(&self) -> MutexGuard<'_, Tasks> {
        // No user code runs under this lock (futures are built before it and
        // run on tokio's tasks): recover the data if it was ever poisoned.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
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
        let tasks = self.lock_tasks().set.len();
        let failed = !matches!(*self.shared.lock_first(), First::None);
        f.debug_struct("Group")
            .field("ctx", &self.ctx)
            .field("tasks", &tasks)
            .field("failed", &failed)
            .finish()
    }
}

/// Why a [`Group`]'s context was cancelled by one of its tasks: the first
/// error's message, or a panic. Read it back with
/// [`Context::cause`](crate::Context::cause).
///
/// The error itself goes to [`Group::wait`]; the cause keeps its message
/// (its `{:#}` `Display`, which for `anyhow::Error` includes the context
/// chain), so whoever watches the context learns why it ended.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Group, TaskFailed};
///
/// let (group, ctx) = Group::<anyhow::Error>::with_context(&Context::background());
/// group.spawn(|_ctx| async { Err(anyhow::anyhow!("disk full").context("saving the report")) });
/// let err = group.wait().await.unwrap_err();
/// assert_eq!(err.to_string(), "saving the report");
///
/// let cause = ctx.cause().unwrap();
/// let failed = cause.downcast_ref::<TaskFailed>().unwrap();
/// assert_eq!(failed.message(), "saving the report: disk full");
/// assert!(!failed.is_panic());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailed {
    message: Box<str>,
    panicked: bool,
}

impl TaskFailed {
    fn error(err: &impl fmt::Display) -> TaskFailed {
        TaskFailed {
            message: format!("{err:#}").into_boxed_str(),
            panicked: false,
        }
    }

    fn panicked() -> TaskFailed {
        TaskFailed {
            message: "a task of the group panicked".into(),
            panicked: true,
        }
    }

    /// The first error's message, or `"a task of the group panicked"`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Group, TaskFailed};
    /// let (group, ctx) = Group::<std::io::Error>::with_context(&Context::background());
    /// group.spawn(|_ctx| async { Err(std::io::Error::other("no route to host")) });
    /// let _ = group.wait().await;
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<TaskFailed>().unwrap().message(), "no route to host");
    /// # }
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True if a task panicked (rather than returned an error).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error, Group, TaskFailed};
    /// let (group, ctx) = Group::<Error>::with_context(&Context::background());
    /// group.spawn(|_ctx| async { panic!("bug") });
    /// let panicked = tokio::spawn(async move { group.wait().await }).await;
    /// assert!(panicked.unwrap_err().is_panic()); // wait resumed the panic
    /// assert!(ctx.cause().unwrap().downcast_ref::<TaskFailed>().unwrap().is_panic());
    /// # }
    /// ```
    pub fn is_panic(&self) -> bool {
        self.panicked
    }
}

impl fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskFailed {}

/// The value of a task started with [`Group::spawn_with_output`]: `Some`
/// once the task returned `Ok(value)`, `None` if it returned an error (that
/// went to the group), panicked or was aborted.
///
/// Awaiting it is cancel-safe; dropping it does nothing to the task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Error, Group};
///
/// let (group, _ctx) = Group::<Error>::with_context(&Context::background());
/// let answer = group.spawn_with_output(|_ctx| async { Ok(42) });
/// let failed = group.spawn_with_output(|_ctx| async { Err::<u8, _>(Error::Canceled) });
/// assert_eq!(group.wait().await, Err(Error::Canceled));
/// assert_eq!(answer.await, Some(42));
/// assert_eq!(failed.await, None);
/// # }
/// ```
pub struct TaskOutput<T> {
    /// `None` once it has resolved.
    rx: Option<oneshot::Receiver<T>>,
}

impl<T> Future for TaskOutput<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        let value = std::task::ready!(Pin::new(rx).poll(cx)).ok();
        self.rx = None;
        Poll::Ready(value)
    }
}

impl<T> fmt::Debug for TaskOutput<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskOutput")
            .field("resolved", &self.rx.is_none())
            .finish()
    }
}
