//! [`Group`]: tasks that succeed or fail together (Go's `errgroup`).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;

use crate::context::Context;
use crate::tree::CancelHandle;

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
