//! [`TaskTracker`]: tokio-util's task tracker, with tasks that run under a
//! context.

use std::fmt;
use std::future::Future;

use super::spawn::{TaskHandle, spawn_tracked};
use crate::context::Context;

/// One unit of work counted by a [`TaskTracker`], until dropped: tokio-util's
/// [`TaskTrackerToken`](tokio_util::task::task_tracker::TaskTrackerToken).
///
/// Cloning a token counts one more unit.
///
/// ```
/// let tracker = ctx_runtime::TaskTracker::new();
/// let token: ctx_runtime::TrackerToken = tracker.token();
/// std::thread::spawn(move || drop(token)).join().unwrap();
/// assert!(tracker.is_empty());
/// ```
pub type TrackerToken = tokio_util::task::task_tracker::TaskTrackerToken;

/// Counts running work so that shutdown can wait for it: a `sync.WaitGroup`
/// that can be closed.
///
/// This is tokio-util's [`TaskTracker`](tokio_util::task::TaskTracker) (the
/// count, `close`, `wait`), with [`spawn`](TaskTracker::spawn) running each
/// task under a child of a [`Context`], as [`spawn`](crate::spawn) does.
/// Convert either way with `From` (clones share one count), so a service
/// that already keeps a tokio-util tracker hands it to `CtxLayer::tracker`
/// (feature `tower`), and [`as_tokio_util`](TaskTracker::as_tokio_util)
/// reaches the rest of its API.
///
/// Track tasks with [`spawn`](TaskTracker::spawn), anything else with a
/// [`token`](TaskTracker::token), and requests by giving the tracker to
/// `CtxLayer`. On shutdown, cancel the server's root context,
/// [`close`](TaskTracker::close) the tracker, and
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
    inner: tokio_util::task::TaskTracker,
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

    /// [`spawn`](crate::spawn), counted by this tracker until the task ends:
    /// the task runs under a child of `ctx`, and dropping the returned handle
    /// aborts it (or [`detach`](TaskHandle::detach) it).
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
        spawn_tracked(ctx, f, Some(self.inner.token()))
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
        self.inner.token()
    }

    /// Closes the tracker: from now on, [`wait`](TaskTracker::wait) returns
    /// as soon as nothing is counted. Work can still be added after closing.
    /// Returns true if this call closed it (it was open).
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// assert!(tracker.close());
    /// assert!(tracker.is_closed());
    /// assert!(!tracker.close(), "already closed");
    /// ```
    pub fn close(&self) -> bool {
        self.inner.close()
    }

    /// Opens a closed tracker again, so that [`wait`](TaskTracker::wait)
    /// waits for [`close`](TaskTracker::close) once more. Returns true if
    /// this call opened it.
    ///
    /// ```
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// tracker.close();
    /// assert!(tracker.reopen());
    /// assert!(!tracker.is_closed());
    /// ```
    pub fn reopen(&self) -> bool {
        self.inner.reopen()
    }

    /// True once [`close`](TaskTracker::close) was called (and not undone by
    /// [`reopen`](TaskTracker::reopen)).
    ///
    /// ```
    /// assert!(!ctx_runtime::TaskTracker::new().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
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
        self.inner.len()
    }

    /// True if nothing is counted.
    ///
    /// ```
    /// assert!(ctx_runtime::TaskTracker::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Waits until the tracker is closed and counts nothing.
    ///
    /// Cancel-safe: dropping this future (a `select!` branch that lost, a
    /// `timeout` that ran out) changes nothing, and any number of waits may
    /// run at once.
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
        self.inner.wait().await;
    }

    /// The tokio-util tracker underneath, for the rest of its API
    /// (`track_future`, `spawn_blocking`, `ptr_eq`, ...): same count.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tracker = ctx_runtime::TaskTracker::new();
    /// let tracked = tracker.as_tokio_util().track_future(async { 7 });
    /// assert_eq!(tracker.len(), 1);
    /// assert_eq!(tracked.await, 7);
    /// assert!(tracker.is_empty());
    /// # }
    /// ```
    pub fn as_tokio_util(&self) -> &tokio_util::task::TaskTracker {
        &self.inner
    }
}

/// Wraps a tokio-util tracker: both count the same work.
///
/// ```
/// let theirs = tokio_util::task::TaskTracker::new();
/// let ours = ctx_runtime::TaskTracker::from(theirs.clone());
/// let _token = ours.token();
/// assert_eq!(theirs.len(), 1);
/// ```
impl From<tokio_util::task::TaskTracker> for TaskTracker {
    fn from(inner: tokio_util::task::TaskTracker) -> TaskTracker {
        TaskTracker { inner }
    }
}

/// The tokio-util tracker underneath: both count the same work.
///
/// ```
/// let ours = ctx_runtime::TaskTracker::new();
/// let theirs = tokio_util::task::TaskTracker::from(ours.clone());
/// let _token = theirs.token();
/// assert_eq!(ours.len(), 1);
/// ```
impl From<TaskTracker> for tokio_util::task::TaskTracker {
    fn from(tracker: TaskTracker) -> tokio_util::task::TaskTracker {
        tracker.inner
    }
}

impl AsRef<tokio_util::task::TaskTracker> for TaskTracker {
    fn as_ref(&self) -> &tokio_util::task::TaskTracker {
        &self.inner
    }
}

impl fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTracker")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}
