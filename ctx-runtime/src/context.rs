//! [`Context`]: the value passed first to every long call.
//!
//! A `Context` is one of five shapes, each an immutable node that points to
//! its parent:
//!
//! ```text
//!   Background | Todo           roots: no allocation, never done
//!   Cancel(Arc<CancelNode>)     with_cancel / with_deadline / with_timeout (tree.rs)
//!   Value(Arc<ValueNode<..>>)   with_value (value.rs)
//!   WithoutCancel(Arc<Context>) without_cancel: values yes, cancellation no
//! ```
//!
//! The cancellation state of any context is that of its nearest `Cancel`
//! ancestor (its "signal"), found by walking up through `Value` nodes and
//! stopping at a `WithoutCancel` or a root.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use crate::after_func::{self, AfterFunc};
use crate::deadline::Instant;
use crate::done::{Done, DoneOwned, Watch, race};
use crate::error::{Cause, Error};
use crate::handle::CancelHandle;
use crate::tree::{CancelNode, Deadline, Kind};
use crate::value::{self, ErasedValue};

/// A cancellation signal, a deadline and request-scoped values, passed down a
/// tree of calls and tasks: Go's `context.Context`.
///
/// Make a root with [`Context::background`] at the top of a program or
/// request, derive children with [`with_cancel`](Context::with_cancel),
/// [`with_timeout`](Context::with_timeout), [`with_deadline`](Context::with_deadline)
/// or [`with_value`](Context::with_value), and pass them *first* to every
/// function that may block, conventionally as `ctx`. Cancelling a context
/// cancels all its descendants, never its parent.
///
/// A `Context` is immutable, `Clone` (one reference-count bump), `Send`,
/// `Sync` and `'static`. Its `Debug` output names its chain the way Go's
/// `String()` does, and never shows values.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ctx_runtime::{Context, Error};
/// use std::time::Duration;
///
/// async fn slow_upstream(ctx: &Context) -> Result<&'static str, Error> {
///     ctx.run(tokio::time::sleep(Duration::from_secs(10))).await?;
///     Ok("data")
/// }
///
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(100));
/// assert_eq!(slow_upstream(&ctx).await, Err(Error::DeadlineExceeded));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Context {
    pub(crate) repr: Repr,
}

#[derive(Clone, Default)]
pub(crate) enum Repr {
    #[default]
    Background,
    Todo,
    Cancel(Arc<CancelNode>),
    Value(Arc<ErasedValue>),
    WithoutCancel(Arc<Context>),
}

impl Context {
    pub(crate) fn from_repr(repr: Repr) -> Self {
        Context { repr }
    }

    /// The root context: never cancelled, no deadline, no values.
    ///
    /// Use it only at the top of a call tree (in `main`, a server's accept
    /// loop, a test), and derive everything else from it. It allocates nothing.
    ///
    /// ```
    /// let root = ctx_runtime::Context::background();
    /// assert_eq!(root.err(), None);
    /// assert_eq!(root.deadline(), None);
    /// ```
    pub const fn background() -> Context {
        Context {
            repr: Repr::Background,
        }
    }

    /// A placeholder root for code that does not yet have a context to pass.
    ///
    /// It behaves exactly like [`background`](Context::background); only its
    /// `Debug` differs, so it is easy to find and replace later.
    ///
    /// ```
    /// let ctx = ctx_runtime::Context::todo();
    /// assert_eq!(format!("{ctx:?}"), "Context::todo()");
    /// ```
    pub const fn todo() -> Context {
        Context { repr: Repr::Todo }
    }

    /// The nearest cancellable ancestor (or self), whose state this context shares.
    #[inline]
    pub(crate) fn signal(&self) -> Option<&Arc<CancelNode>> {
        let mut cur = self;
        loop {
            match &cur.repr {
                Repr::Cancel(node) => return Some(node),
                Repr::Value(node) => cur = &node.parent,
                Repr::WithoutCancel(_) | Repr::Background | Repr::Todo => return None,
            }
        }
    }

    pub(crate) fn derive(
        &self,
        deadline: Option<Deadline>,
        cause: Option<Cause>,
        kind: Kind,
    ) -> (Context, CancelHandle) {
        let node = CancelNode::new_child(self, deadline, cause, kind);
        let handle = CancelHandle::new(Arc::clone(&node));
        (Context::from_repr(Repr::Cancel(node)), handle)
    }

    /// A child that is cancelled when the returned handle is used or dropped,
    /// or when this context is cancelled.
    ///
    /// Use it to stop a group of tasks by hand. Dropping the
    /// [`CancelHandle`] cancels, so keep it for as long as the work should run.
    ///
    /// ```
    /// use ctx_runtime::{Context, Error};
    ///
    /// let (parent, cancel_parent) = Context::background().with_cancel();
    /// let (child, _cancel_child) = parent.with_cancel();
    /// cancel_parent.cancel();
    /// assert_eq!(child.err(), Some(Error::Canceled));
    /// ```
    #[doc(alias = "child_token")]
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        self.derive(None, None, Kind::Cancel)
    }

    /// A child that is cancelled with [`Error::DeadlineExceeded`] at `deadline`,
    /// or earlier by its handle or its parent.
    ///
    /// Use it when the work must be over by an absolute time. If the parent's
    /// deadline is earlier, the child keeps the parent's; a deadline already
    /// passed gives a context that is done at once. The deadline fires on
    /// time whether or not anyone polls (on tokio's clock inside a runtime, so
    /// `tokio::time::pause()` applies; on a timer thread outside one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error, Instant};
    /// use std::time::Duration;
    ///
    /// let at = Instant::now() + Duration::from_secs(5);
    /// let (ctx, _cancel) = Context::background().with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// ctx.done().await; // time is paused: this jumps 5 s ahead
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// # }
    /// ```
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        self.derive(
            Some(Deadline {
                at: deadline,
                read_at: None,
            }),
            None,
            Kind::Deadline,
        )
    }

    /// A child that is cancelled with [`Error::DeadlineExceeded`] once
    /// `timeout` has elapsed: `with_deadline(Instant::now() + timeout)`.
    ///
    /// Use it when an operation must finish within a duration or count as
    /// failed. A timeout too large to represent as an `Instant` means no
    /// deadline at all (the child is then just `with_cancel`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(200));
    /// tokio::time::sleep(Duration::from_millis(250)).await;
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    ///
    /// let (forever, _c) = Context::background().with_timeout(Duration::MAX);
    /// assert_eq!(forever.deadline(), None);
    /// # }
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        let now = Instant::now();
        let deadline = now.checked_add(timeout).map(|at| Deadline {
            at,
            read_at: Some(now),
        });
        self.derive(deadline, None, Kind::Deadline)
    }

    /// [`with_deadline`](Context::with_deadline) that records `cause` if, and
    /// only if, the deadline is what ends the context (Go's `WithDeadlineCause`).
    ///
    /// Cancelling through the handle records a plain [`Error::Canceled`] cause.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Instant};
    /// use std::time::Duration;
    ///
    /// let at = Instant::now() + Duration::from_millis(10);
    /// let (ctx, _cancel) = Context::background().with_deadline_cause(at, "upstream too slow");
    /// ctx.done().await;
    /// assert_eq!(ctx.cause().unwrap().to_string(), "upstream too slow");
    /// # }
    /// ```
    pub fn with_deadline_cause(
        &self,
        deadline: Instant,
        cause: impl Into<Cause>,
    ) -> (Context, CancelHandle) {
        self.derive(
            Some(Deadline {
                at: deadline,
                read_at: None,
            }),
            Some(cause.into()),
            Kind::Deadline,
        )
    }

    /// [`with_timeout`](Context::with_timeout) that records `cause` if the
    /// timeout is what ends the context (Go's `WithTimeoutCause`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background()
    ///     .with_timeout_cause(Duration::from_millis(10), "request budget spent");
    /// ctx.done().await;
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "request budget spent");
    /// # }
    /// ```
    pub fn with_timeout_cause(
        &self,
        timeout: Duration,
        cause: impl Into<Cause>,
    ) -> (Context, CancelHandle) {
        let now = Instant::now();
        let deadline = now.checked_add(timeout).map(|at| Deadline {
            at,
            read_at: Some(now),
        });
        self.derive(deadline, Some(cause.into()), Kind::Deadline)
    }

    /// A child carrying `value`, found by [`value::<T>()`](Context::value) here
    /// and in every descendant. The child shares this context's cancellation.
    ///
    /// Values are keyed by their type `T`, so use a type of your own (a
    /// newtype) for each piece of request-scoped data: two crates can never
    /// collide, which is what Go's "unexported key type" rule is for. Use
    /// values for request-scoped data (a trace id, the authenticated user),
    /// not for optional parameters.
    ///
    /// ```
    /// use ctx_runtime::Context;
    ///
    /// struct UserId(u64);
    ///
    /// let ctx = Context::background().with_value(UserId(42));
    /// let (child, _cancel) = ctx.with_cancel();
    /// assert_eq!(child.value::<UserId>().map(|u| u.0), Some(42));
    /// ```
    pub fn with_value<T: Send + Sync + 'static>(&self, value: T) -> Context {
        Context::from_repr(Repr::Value(value::new(self, value)))
    }

    /// A child that keeps this context's values but not its cancellation or
    /// deadline: never done, even when this context is (Go's `WithoutCancel`).
    ///
    /// Use it for work that must outlive the request that started it, such as
    /// an audit write that has to happen even if the client left.
    ///
    /// ```
    /// use ctx_runtime::Context;
    ///
    /// struct TraceId(&'static str);
    /// let (req, cancel) = Context::background().with_value(TraceId("abc")).with_cancel();
    /// let detached = req.without_cancel();
    /// cancel.cancel();
    /// assert!(req.is_done());
    /// assert!(!detached.is_done());
    /// assert_eq!(detached.value::<TraceId>().map(|t| t.0), Some("abc"));
    /// ```
    pub fn without_cancel(&self) -> Context {
        Context::from_repr(Repr::WithoutCancel(Arc::new(self.clone())))
    }

    /// The value of type `T` set by the nearest ancestor (or self) that has
    /// one, or `None`.
    ///
    /// ```
    /// use ctx_runtime::Context;
    ///
    /// let ctx = Context::background().with_value(1u32).with_value(2u32);
    /// assert_eq!(ctx.value::<u32>(), Some(&2), "the nearest wins");
    /// assert_eq!(ctx.value::<u64>(), None);
    /// ```
    pub fn value<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let mut cur = self;
        loop {
            cur = match &cur.repr {
                Repr::Value(node) => match node.get::<T>() {
                    Some(value) => return Some(value),
                    None => &node.parent,
                },
                Repr::Cancel(node) => node.parent(),
                Repr::WithoutCancel(parent) => parent,
                Repr::Background | Repr::Todo => return None,
            }
        }
    }

    /// When this context will be cancelled by a deadline: the earliest of its
    /// own and its ancestors' deadlines. `None` if it has none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Instant};
    /// use std::time::Duration;
    ///
    /// let soon = Instant::now() + Duration::from_secs(1);
    /// let (parent, _c1) = Context::background().with_deadline(soon);
    /// let (child, _c2) = parent.with_timeout(Duration::from_secs(60));
    /// assert_eq!(child.deadline(), Some(soon), "a later deadline behaves as the parent's");
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.signal().and_then(|node| node.deadline())
    }

    /// Time left until [`deadline`](Context::deadline): `None` without a
    /// deadline, `Some(Duration::ZERO)` once it has passed.
    ///
    /// Use it to pass a budget on, for example as a request timeout.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let (ctx, _c) = ctx_runtime::Context::background().with_timeout(Duration::from_secs(3));
    /// assert_eq!(ctx.remaining(), Some(Duration::from_secs(3)));
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Why this context is done, or `None` while it is live: Go's `ctx.Err()`.
    ///
    /// One atomic load, no lock. [`Error::DeadlineExceeded`] if its own or an
    /// inherited deadline passed, [`Error::Canceled`] otherwise. Once `Some`,
    /// it never changes: the first cancellation wins.
    ///
    /// ```
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(ctx_runtime::Error::Canceled));
    /// ```
    #[inline]
    pub fn err(&self) -> Option<Error> {
        self.signal().and_then(|node| node.err())
    }

    /// `Err` if this context is done: `ctx.check()?` before expensive work.
    ///
    /// A point-in-time check: it cannot stop work that is already blocked.
    /// For that, race the work against the context with
    /// [`run`](Context::run), [`done`](Context::done) or `#[cancellable]`.
    ///
    /// ```
    /// use ctx_runtime::{Context, Error};
    ///
    /// fn expensive(ctx: &Context) -> Result<u64, Error> {
    ///     ctx.check()?;
    ///     Ok((1..=20).product())
    /// }
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert!(expensive(&ctx).is_ok());
    /// cancel.cancel();
    /// assert_eq!(expensive(&ctx), Err(Error::Canceled));
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        match self.err() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// True once this context is done; `err().is_some()`.
    ///
    /// ```
    /// assert!(!ctx_runtime::Context::background().is_done());
    /// ```
    #[inline]
    #[doc(alias = "is_cancelled")]
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// What cancelled this context, or `None` while it is live: Go's
    /// `context.Cause(ctx)`.
    ///
    /// The cause given to [`CancelHandle::cancel_with_cause`] or a `*_cause`
    /// constructor; for a context cancelled by an ancestor, the ancestor's
    /// cause; otherwise the same as [`err`](Context::err).
    ///
    /// ```
    /// use ctx_runtime::{Context, Error};
    ///
    /// let (parent, cancel) = Context::background().with_cancel();
    /// let (child, _c) = parent.with_cancel();
    /// cancel.cancel_with_cause("shutting down");
    /// assert_eq!(child.err(), Some(Error::Canceled));
    /// assert_eq!(child.cause().unwrap().to_string(), "shutting down");
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.signal().and_then(|node| node.cause())
    }

    /// A future that completes when this context is done, with why: Go's
    /// `<-ctx.Done()` followed by `ctx.Err()`.
    ///
    /// It resolves to the [`Error`] (`Canceled` or `DeadlineExceeded`), so a
    /// `select!` branch reads `err = ctx.done() => return Err(err.into())`.
    /// Use it in `tokio::select!` wherever code is about to block on I/O, a
    /// channel or a timer. It is `Send`, cheap to create, and deregisters
    /// itself when dropped. It never completes for a context that cannot be
    /// cancelled. See [`done_owned`](Context::done_owned) for a `'static` one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    ///
    /// async fn worker(ctx: Context, mut jobs: tokio::sync::mpsc::Receiver<u32>) -> (u32, Error) {
    ///     let mut done = 0;
    ///     loop {
    ///         tokio::select! {
    ///             err = ctx.done() => return (done, err),
    ///             Some(_job) = jobs.recv() => done += 1,
    ///         }
    ///     }
    /// }
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (tx, rx) = tokio::sync::mpsc::channel(8);
    /// tx.send(1).await.unwrap();
    /// let task = tokio::spawn(worker(ctx, rx));
    /// tokio::task::yield_now().await;
    /// cancel.cancel();
    /// let (jobs, why) = task.await.unwrap();
    /// assert!(jobs <= 1);
    /// assert_eq!(why, Error::Canceled);
    /// # }
    /// ```
    #[doc(alias = "cancelled")]
    pub fn done(&self) -> Done<'_> {
        Done::new(self.signal())
    }

    /// Like [`done`](Context::done), but holds its own reference to the
    /// context, so it can be moved into a spawned task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
    /// let waiter = tokio::spawn(ctx.done_owned());
    /// cancel.cancel();
    /// assert_eq!(waiter.await.unwrap(), ctx_runtime::Error::Canceled);
    /// # }
    /// ```
    pub fn done_owned(&self) -> DoneOwned {
        DoneOwned::new(self.signal().cloned())
    }

    /// Runs `fut` until it completes or this context is done, whichever is
    /// first: Go's `select { case r := <-work: ...; case <-ctx.Done(): ... }`.
    ///
    /// Returns `Err` (and drops `fut`) as soon as the context is done; if it
    /// already is, `fut` is never polled. The check comes before each poll of
    /// `fut`, and the context's waker is registered only while `fut` is
    /// pending. The returned future does not borrow `self`.
    ///
    /// Use it for single awaits outside `#[cancellable]` functions, and inside
    /// them for places the attribute does not rewrite (closures, async blocks,
    /// `select!`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use ctx_runtime::{Context, Error};
    /// use std::time::Duration;
    ///
    /// let (ctx, _c) = Context::background().with_timeout(Duration::from_secs(1));
    /// let fast = ctx.run(async { 7 }).await;
    /// assert_eq!(fast, Ok(7));
    /// let slow = ctx.run(tokio::time::sleep(Duration::from_secs(60))).await;
    /// assert_eq!(slow, Err(Error::DeadlineExceeded));
    /// # }
    /// ```
    #[doc(alias = "run_until_cancelled")]
    pub fn run<F: IntoFuture>(
        &self,
        fut: F,
    ) -> impl Future<Output = Result<F::Output, Error>> + use<F> {
        let mut watch = Watch::new(self);
        let fut = fut.into_future();
        async move { race(&mut watch, fut).await }
    }

    /// Runs `f` once this context is done, on a thread of its own (tokio's
    /// blocking pool inside a runtime, a new thread outside): Go's
    /// `context.AfterFunc`.
    ///
    /// If the context is already done, `f` starts at once. On a context that
    /// can never be done (`background()`, `without_cancel()`), `f` never runs.
    /// Cancelling never waits for `f`. [`AfterFunc::stop`] unregisters it.
    ///
    /// ```
    /// use ctx_runtime::Context;
    /// use std::sync::mpsc;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (tx, rx) = mpsc::channel();
    /// ctx.after_func(move || tx.send(()).unwrap());
    /// cancel.cancel();
    /// rx.recv().unwrap(); // f ran
    /// ```
    pub fn after_func<F: FnOnce() + Send + 'static>(&self, f: F) -> AfterFunc {
        after_func::register(self.signal(), Box::new(f))
    }

    /// Blocks the current thread until this context is done or `timeout`
    /// passes; returns whether it is done.
    ///
    /// For threads outside async code (a blocking worker, a C callback).
    /// `None` waits without limit, and so does a timeout too large for
    /// `Instant`. Never call it on an async runtime's worker thread.
    ///
    /// ```
    /// use ctx_runtime::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let waiter = {
    ///     let ctx = ctx.clone();
    ///     std::thread::spawn(move || ctx.wait_blocking(None))
    /// };
    /// cancel.cancel();
    /// assert!(waiter.join().unwrap());
    /// assert!(!Context::background().wait_blocking(Some(Duration::from_millis(1))));
    /// ```
    pub fn wait_blocking(&self, timeout: Option<Duration>) -> bool {
        crate::done::wait_blocking(self.signal(), timeout)
    }

    /// True if `self` and `other` are the same context (clones of one another).
    ///
    /// ```
    /// use ctx_runtime::Context;
    /// let (a, _c) = Context::background().with_cancel();
    /// assert!(a.same(&a.clone()));
    /// assert!(!a.same(&Context::background()));
    /// ```
    pub fn same(&self, other: &Context) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Background, Repr::Background) | (Repr::Todo, Repr::Todo) => true,
            (Repr::Cancel(a), Repr::Cancel(b)) => Arc::ptr_eq(a, b),
            (Repr::Value(a), Repr::Value(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            (Repr::WithoutCancel(a), Repr::WithoutCancel(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// `Context::background().with_cancel().with_value::<app::User>() [canceled]`:
/// the chain from the root, then the state. Values are never shown.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Collected first and printed root-first; a loop, not recursion, so a
        // deep chain cannot overflow the stack.
        let mut chain = Vec::new();
        let mut cur = self;
        let root = loop {
            match &cur.repr {
                Repr::Background => break "background",
                Repr::Todo => break "todo",
                Repr::Cancel(node) => {
                    chain.push(&cur.repr);
                    cur = node.parent();
                }
                Repr::Value(node) => {
                    chain.push(&cur.repr);
                    cur = &node.parent;
                }
                Repr::WithoutCancel(parent) => {
                    chain.push(&cur.repr);
                    cur = parent;
                }
            }
        };
        write!(f, "Context::{root}()")?;
        for link in chain.iter().rev() {
            match link {
                Repr::Cancel(node) => match node.kind() {
                    Kind::Cancel => f.write_str(".with_cancel()")?,
                    // Like Go's String(): a timeout is shown as its deadline.
                    Kind::Deadline => match node.deadline() {
                        Some(at) if at > Instant::now() => {
                            write!(f, ".with_deadline(in {:?})", at - Instant::now())?
                        }
                        Some(_) => f.write_str(".with_deadline(passed)")?,
                        None => f.write_str(".with_deadline(never)")?,
                    },
                    Kind::Token => f.write_str(".with_cancellation_token()")?,
                },
                Repr::Value(node) => write!(f, ".with_value::<{}>()", node.type_name)?,
                Repr::WithoutCancel(_) => f.write_str(".without_cancel()")?,
                Repr::Background | Repr::Todo => {}
            }
        }
        match (&self.repr, self.err()) {
            (Repr::Background | Repr::Todo, _) => Ok(()),
            (_, None) => f.write_str(" [live]"),
            // The footgun of `let (ctx, _) = parent.with_cancel()`, named.
            (_, Some(err)) if self.signal().is_some_and(|node| node.handle_dropped()) => {
                write!(f, " [{err}: its CancelHandle was dropped]")
            }
            (_, Some(err)) => write!(f, " [{err}]"),
        }
    }
}

/// Anything that can lend a [`Context`]: what `#[cancellable]` accepts as the
/// type of its `ctx` parameter.
///
/// Implemented for `Context`, references to it, `Arc<Context>` and
/// `Box<Context>`. Implement it for your own request type to pass that as
/// `ctx` directly.
///
/// ```
/// use ctx_runtime::{AsContext, Context};
///
/// struct Request {
///     ctx: Context,
///     path: String,
/// }
/// impl AsContext for Request {
///     fn as_context(&self) -> &Context {
///         &self.ctx
///     }
/// }
///
/// fn deadline_of(req: &impl AsContext) -> bool {
///     req.as_context().deadline().is_some()
/// }
/// let req = Request { ctx: Context::background(), path: "/".into() };
/// assert!(!deadline_of(&req));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a context",
    label = "expected `Context`, `&Context` or a type implementing `AsContext`",
    note = "a `#[cancellable]` fn takes its context first: `ctx: &Context` (or `ctx: Context`)",
    note = "to pass your own type as `ctx`, implement `ctx_runtime::AsContext` for it"
)]
pub trait AsContext {
    /// The context to watch.
    fn as_context(&self) -> &Context;
}

impl AsContext for Context {
    #[inline]
    fn as_context(&self) -> &Context {
        self
    }
}

impl<T: AsContext + ?Sized> AsContext for &T {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for Arc<T> {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for Box<T> {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}
