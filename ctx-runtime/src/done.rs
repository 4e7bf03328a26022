//! Waiting for a context to be done: [`Done`], [`DoneOwned`], the race behind
//! [`Context::run`](crate::Context::run) and `#[cancellable]`, and
//! [`Context::wait_blocking`](crate::Context::wait_blocking).
//!
//! A waiter lists its waker in its node (see `tree.rs` for the protocol:
//! no lost wake-up, no user code under the lock) and removes it when dropped,
//! so `select!` loops over `ctx.done()` do not grow the list. After a cancel
//! the list is empty for good, so a dropped waiter skips the lock altogether.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use crate::error::Error;
use crate::slab::NIL;
use crate::sync::AtomicWaker;
use crate::tree::CancelNode;

/// One registration in a node's entries.
#[derive(Debug)]
pub(crate) struct Waiter {
    slot: u32,
}

impl Waiter {
    pub(crate) const fn new() -> Self {
        Waiter { slot: NIL }
    }

    /// Ready once `node` is done; otherwise makes sure `waker` is registered.
    pub(crate) fn poll(&mut self, node: &Arc<CancelNode>, waker: &Waker) -> Poll<()> {
        node.poll_waiter(&mut self.slot, waker)
    }

    #[inline]
    pub(crate) fn deregister(&mut self, node: &CancelNode) {
        node.remove_waiter(&mut self.slot);
    }
}

/// A future that completes when its context is done, with why: Go's
/// `<-ctx.Done()` followed by `ctx.Err()`.
///
/// Returned by [`Context::done`](crate::Context::done). It resolves to the
/// context's [`Error`] (`Canceled` or `DeadlineExceeded`), so a `select!`
/// branch can return it directly. It borrows the context; use [`DoneOwned`]
/// to move one into a spawned task. For a context that can never be done
/// (`background()`, `without_cancel()`) it never completes. Dropping it
/// before completion deregisters its waker.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_runtime::{Context, Error};
///
/// async fn next_job(ctx: &Context, jobs: &mut tokio::sync::mpsc::Receiver<u32>) -> Result<Option<u32>, Error> {
///     tokio::select! {
///         err = ctx.done() => Err(err),
///         job = jobs.recv() => Ok(job),
///     }
/// }
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
/// cancel.cancel();
/// assert_eq!(next_job(&ctx, &mut rx).await, Err(Error::Canceled));
/// # drop(tx);
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Done<'a> {
    node: Option<&'a Arc<CancelNode>>,
    waiter: Waiter,
}

impl<'a> Done<'a> {
    pub(crate) fn new(node: Option<&'a Arc<CancelNode>>) -> Self {
        Done {
            node,
            waiter: Waiter::new(),
        }
    }
}

impl Future for Done<'_> {
    type Output = Error;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        poll_done(this.node, &mut this.waiter, cx)
    }
}

/// Ready with the node's error once it is done; pending forever without a node.
#[inline]
fn poll_done(
    node: Option<&Arc<CancelNode>>,
    waiter: &mut Waiter,
    cx: &TaskContext<'_>,
) -> Poll<Error> {
    match node {
        // Done already (what a `select!` with a default arm asks of a
        // cancelled context): one load, and no call into the registration.
        // A waker an earlier poll listed was taken by the cancel.
        Some(node) => match node.err() {
            Some(err) => {
                waiter.slot = NIL;
                Poll::Ready(err)
            }
            None => waiter
                .poll(node, cx.waker())
                .map(|()| node.err().unwrap_or(Error::Canceled)),
        },
        None => Poll::Pending,
    }
}

impl Drop for Done<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(node) = self.node {
            self.waiter.deregister(node);
        }
    }
}

/// [`Done`] without the borrow: holds its own reference to the context, so it
/// is `'static` and can move into a spawned task.
///
/// Returned by [`Context::done_owned`](crate::Context::done_owned).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (ctx, cancel) = ctx_runtime::Context::background().with_cancel();
/// let done = ctx.done_owned();
/// let task = tokio::spawn(async move {
///     let why = done.await;
///     format!("stopped: {why}")
/// });
/// cancel.cancel();
/// assert_eq!(task.await.unwrap(), "stopped: context canceled");
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct DoneOwned {
    node: Option<Arc<CancelNode>>,
    waiter: Waiter,
}

impl DoneOwned {
    pub(crate) fn new(node: Option<Arc<CancelNode>>) -> Self {
        DoneOwned {
            node,
            waiter: Waiter::new(),
        }
    }
}

impl Future for DoneOwned {
    type Output = Error;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        poll_done(this.node.as_ref(), &mut this.waiter, cx)
    }
}

impl Drop for DoneOwned {
    #[inline]
    fn drop(&mut self) {
        if let Some(node) = &self.node {
            self.waiter.deregister(node);
        }
    }
}

/// Watches one context for the races of one function call.
///
/// `#[cancellable]` makes one per call and races every `.await` of the body
/// against it. A ready await costs one atomic load. A pending await keeps the
/// task reachable from the context's waiter list, which is kept from one
/// await to the next:
///
/// * usually the task's waker itself is registered once, and later awaits
///   only compare it (`will_wake`) with the waker they are polled with;
/// * if that waker changes between polls (tokio's current-thread `block_on`
///   lends a new one each time), the list gets a waker of a [`WakerSlot`]
///   instead, once, and each pending await swaps the task's waker into the
///   slot: no lock, no allocation.
#[doc(hidden)]
#[derive(Debug)]
pub struct Watch {
    node: Option<Arc<CancelNode>>,
    waiter: Waiter,
    via: Via,
}

/// How a watched task is reached when its context is cancelled.
#[derive(Debug)]
enum Via {
    Nothing,
    /// The node's waiter list holds this waker (a clone).
    Direct(Waker),
    /// The node's waiter list holds a waker of this slot.
    Slot(Arc<WakerSlot>),
}

/// A waker that forwards to whichever waker was last put in it.
#[derive(Debug, Default)]
struct WakerSlot(AtomicWaker);

impl std::task::Wake for WakerSlot {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}

impl Watch {
    /// Starts watching `ctx`.
    pub fn new(ctx: &crate::Context) -> Watch {
        Watch {
            node: ctx.signal().cloned(),
            waiter: Waiter::new(),
            via: Via::Nothing,
        }
    }

    /// `Err` if the context is done.
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        // The hot path of every rewritten await: one load and one compare;
        // which error it is (and an unlinked node's walk) is worked out
        // elsewhere, only when that compare fails.
        match &self.node {
            Some(node) if !node.surely_live() => match node.err() {
                Some(err) => Err(err),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Polls `fut` unless the context is done; registers for cancellation only
    /// if `fut` is pending.
    #[inline]
    pub fn poll_race<F: Future + ?Sized>(
        &mut self,
        fut: Pin<&mut F>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<F::Output, Error>> {
        if let Err(err) = self.check() {
            return Poll::Ready(Err(err));
        }
        match fut.poll(cx) {
            Poll::Ready(output) => Poll::Ready(Ok(output)),
            Poll::Pending => match &self.via {
                Via::Direct(registered) if registered.will_wake(cx.waker()) => Poll::Pending,
                Via::Slot(slot) => {
                    slot.0.register(cx.waker());
                    // A cancel that took the slot's old waker before this
                    // registration is seen here instead.
                    self.pending_unless_done()
                }
                _ => self.register(cx.waker()),
            },
        }
    }

    fn pending_unless_done<T>(&self) -> Poll<Result<T, Error>> {
        match self.check() {
            Ok(()) => Poll::Pending,
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    #[cold]
    fn register<T>(&mut self, waker: &Waker) -> Poll<Result<T, Error>> {
        let Some(node) = &self.node else {
            return Poll::Pending;
        };
        let (listed, via) = match self.via {
            Via::Nothing => (waker.clone(), Via::Direct(waker.clone())),
            // The task's waker changed: from now on go through a slot.
            _ => {
                let slot = Arc::new(WakerSlot::default());
                slot.0.register(waker);
                (Waker::from(Arc::clone(&slot)), Via::Slot(slot))
            }
        };
        match self.waiter.poll(node, &listed) {
            Poll::Ready(()) => Poll::Ready(Err(node.err().unwrap_or(Error::Canceled))),
            Poll::Pending => {
                self.via = via;
                Poll::Pending
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(node) = &self.node {
            self.waiter.deregister(node);
        }
    }
}

pin_project_lite::pin_project! {
    /// The future behind every `.await` that `#[cancellable]` rewrites, and
    /// behind [`Context::run`](crate::Context::run): `fut` raced against a
    /// [`Watch`]'s context.
    ///
    /// Biased: the context is checked before each poll of `fut`, so a
    /// cancelled context wins even against a ready future.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Race<'a, F> {
        watch: &'a mut Watch,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Race<'_, F> {
    type Output = Result<F::Output, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.watch.poll_race(this.fut, cx)
    }
}

/// Races `fut` against `watch`'s context (see [`Race`]). Takes a `Future`:
/// `#[cancellable]` has already called `IntoFuture::into_future` at the
/// user's `.await`, where a non-future is then reported, once.
#[doc(hidden)]
#[inline]
pub fn race<F: Future>(watch: &mut Watch, fut: F) -> Race<'_, F> {
    Race { watch, fut }
}

/// Blocks the current thread until `node` is done or `timeout` passes.
pub(crate) fn wait_blocking(
    node: Option<&Arc<CancelNode>>,
    timeout: Option<std::time::Duration>,
) -> bool {
    use crate::sync::{Parker, park_until};

    struct Unpark(Parker);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    // A timeout too large for `Instant` means "no timeout".
    let give_up = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    let Some(node) = node else {
        // Never done: wait out the timeout (or forever), as the caller asked.
        while park_until(give_up) {}
        return false;
    };
    let waker = Waker::from(Arc::new(Unpark(Parker::current())));
    let mut waiter = Waiter::new();
    loop {
        if waiter.poll(node, &waker).is_ready() {
            return true;
        }
        if !park_until(give_up) {
            waiter.deregister(node);
            return node.is_done();
        }
    }
}
