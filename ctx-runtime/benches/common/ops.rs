//! The operations of the twins against tokio-util's `CancellationToken`,
//! written once: the divan benches time them (wall clock) and the
//! `instructions` harness counts their instructions under callgrind, so both
//! figures of a row are of the same code. Each bench binary uses a part.
//!
//! Every op drops what it made inside itself: dropping a `CancelHandle`
//! cancels, and that counts against ctx.

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

/// The `1h` of `with_timeout(1h)` and `sleep(1h)`: never fires during a run.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Polls `fut` once with a no-op waker: one pass of a `select!` with a
/// default arm (Go's `select { case <-ctx.Done(): default: }`).
#[inline(always)]
pub fn poll_once<F: Future>(fut: Pin<&mut F>) -> bool {
    let mut cx = TaskContext::from_waker(Waker::noop());
    matches!(fut.poll(&mut cx), Poll::Ready(_))
}

/// ctx's side.
pub mod ctx {
    use super::*;
    use ctx_runtime::{CancelHandle, Context};

    /// The live parent of the tree ops: `Context::background().with_cancel()`.
    pub fn live_root() -> (Context, CancelHandle) {
        Context::background().with_cancel()
    }

    /// ChildCreateDrop: a child of a live parent, made and dropped (the drop
    /// of its handle cancels it and unlinks it from the parent).
    #[inline(always)]
    pub fn child_create_drop(root: &Context) {
        let (child, cancel) = black_box(root).with_cancel();
        drop(cancel);
        drop(child);
    }

    /// CreateCancelDrop: a child of a live parent, cancelled, then dropped.
    #[inline(always)]
    pub fn create_cancel_drop(root: &Context) {
        let (child, cancel) = black_box(root).with_cancel();
        cancel.cancel();
        drop(cancel);
        drop(child);
    }

    /// Go's `buildContextTree`: `depth` times `root, _ = WithCancel(root)`.
    /// A dropped `CancelHandle` would cancel at once, so the handles are
    /// kept in `handles` (reserved by the caller) until the caller drops them.
    #[inline(always)]
    pub fn build_tree(mut root: Context, depth: usize, handles: &mut Vec<CancelHandle>) -> Context {
        for _ in 0..depth {
            let (child, cancel) = root.with_cancel();
            handles.push(cancel);
            root = child;
        }
        root
    }

    /// CancelTree/Root=OpenCanceler: a chain of `depth` under a fresh
    /// cancellable root, the root cancelled, everything dropped. `handles`
    /// is empty, with room for `depth`, and is left empty.
    #[inline(always)]
    pub fn cancel_tree_open(depth: usize, handles: &mut Vec<CancelHandle>) {
        let (ctx, cancel) = Context::background().with_cancel();
        let leaf = build_tree(ctx, depth, handles);
        cancel.cancel();
        drop((leaf, cancel));
        handles.clear();
    }

    /// CancelChildren: `n` children of a fresh cancellable root (each kept,
    /// with its handle, in `children`), the root cancelled, everything
    /// dropped. `children` is empty, with room for `n`, and is left empty.
    #[inline(always)]
    pub fn cancel_children(n: usize, children: &mut Vec<(Context, CancelHandle)>) {
        let (root, cancel) = Context::background().with_cancel();
        for _ in 0..n {
            children.push(root.with_cancel());
        }
        cancel.cancel();
        drop((root, cancel));
        children.clear();
    }

    /// TimeoutDrop: `with_timeout(1h)` of a live parent, then dropped. The
    /// caller has entered a tokio runtime whose clock runs, so the deadline
    /// goes on ctx's timer thread (`deadline.rs`), as in a server.
    #[inline(always)]
    pub fn timeout_drop(root: &Context) {
        let (child, cancel) = black_box(root).with_timeout(HOUR);
        drop(cancel);
        drop(child);
    }

    /// ContextCancelDone: a fresh `done()` of a live context polled once
    /// (Pending: it registers) and dropped (it deregisters).
    #[inline(always)]
    pub fn cancel_done_poll(ctx: &Context) -> bool {
        let done = pin!(black_box(ctx).done());
        poll_once(done)
    }
}

/// tokio-util's side.
pub mod token {
    use super::*;
    use ::tokio_util::sync::CancellationToken;

    /// The live parent: a token has no uncancellable root.
    pub fn live_root() -> CancellationToken {
        CancellationToken::new()
    }

    #[inline(always)]
    pub fn child_create_drop(root: &CancellationToken) {
        drop(black_box(root).child_token());
    }

    #[inline(always)]
    pub fn create_cancel_drop(root: &CancellationToken) {
        let child = black_box(root).child_token();
        child.cancel();
        drop(child);
    }

    /// `depth` child tokens under `root`, kept in `tokens`.
    #[inline(always)]
    pub fn build_tree(root: &CancellationToken, depth: usize, tokens: &mut Vec<CancellationToken>) {
        let mut parent = root.clone();
        for _ in 0..depth {
            let child = parent.child_token();
            tokens.push(parent);
            parent = child;
        }
        tokens.push(parent);
    }

    /// `tokens` is empty, with room for `depth + 1`, and is left empty.
    #[inline(always)]
    pub fn cancel_tree_open(depth: usize, tokens: &mut Vec<CancellationToken>) {
        let root = CancellationToken::new();
        build_tree(&root, depth, tokens);
        root.cancel();
        drop(root);
        tokens.clear();
    }

    /// `children` is empty, with room for `n`, and is left empty.
    #[inline(always)]
    pub fn cancel_children(n: usize, children: &mut Vec<CancellationToken>) {
        let root = CancellationToken::new();
        for _ in 0..n {
            children.push(root.child_token());
        }
        root.cancel();
        drop(root);
        children.clear();
    }

    /// TimeoutDrop's peer: a child token and a `sleep(1h)` polled once (so
    /// that it is on the timer wheel, as ctx's deadline is), both dropped.
    #[inline(always)]
    pub fn timeout_drop(root: &CancellationToken) {
        let child = black_box(root).child_token();
        let sleep = pin!(tokio::time::sleep(HOUR));
        black_box(poll_once(sleep));
        drop(child);
    }

    #[inline(always)]
    pub fn cancel_done_poll(token: &CancellationToken) -> bool {
        let done = pin!(black_box(token).cancelled());
        poll_once(done)
    }
}

/// The WaitGroup of a fan-out: counts tasks in and out; the last one out
/// wakes the thread in [`Group::wait`].
pub struct Group {
    started: AtomicUsize,
    remaining: Mutex<usize>,
    all_done: Condvar,
}

impl Group {
    pub fn new(n: usize) -> Arc<Group> {
        Arc::new(Group {
            started: AtomicUsize::new(0),
            remaining: Mutex::new(n),
            all_done: Condvar::new(),
        })
    }

    /// A task is about to wait.
    pub fn start(&self) {
        self.started.fetch_add(1, Ordering::Release);
    }

    /// A task has finished.
    pub fn finish(&self) {
        let mut remaining = self.remaining.lock().unwrap();
        *remaining -= 1;
        if *remaining == 0 {
            self.all_done.notify_all();
        }
    }

    /// Go's `wg.Wait()`: blocks until every task has finished.
    pub fn wait(&self) {
        let mut remaining = self.remaining.lock().unwrap();
        while *remaining > 0 {
            remaining = self.all_done.wait(remaining).unwrap();
        }
    }

    /// Not timed: every task has started (it is about to await), then 2 ms
    /// for all to park, as bench/go's `settle()` after its own count.
    pub fn settle(&self, n: usize) {
        while self.started.load(Ordering::Acquire) < n {
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One fan-out, set up: `n` tasks on the 2-worker runtime each waiting on
/// its own child of one root. The op is [`FanOut::cancel_and_wait`].
pub struct FanOut<C> {
    pub cancel: C,
    pub group: Arc<Group>,
}

/// ctx: each task owns `(child, handle) = root.with_cancel()`, awaits
/// `child.done()`, then drops both (Go's `defer cancelChild()`).
pub fn fanout_ctx(rt: &tokio::runtime::Runtime, n: usize) -> FanOut<ctx_runtime::CancelHandle> {
    let (root, cancel) = ctx_runtime::Context::background().with_cancel();
    let group = Group::new(n);
    for _ in 0..n {
        let (child, cancel_child) = root.with_cancel();
        let group = Arc::clone(&group);
        rt.spawn(async move {
            group.start();
            child.done().await;
            drop(cancel_child);
            drop(child);
            group.finish();
        });
    }
    group.settle(n);
    FanOut { cancel, group }
}

/// tokio-util: each task owns `root.child_token()` and awaits `cancelled()`.
pub fn fanout_tokio_util(
    rt: &tokio::runtime::Runtime,
    n: usize,
) -> FanOut<::tokio_util::sync::CancellationToken> {
    let root = ::tokio_util::sync::CancellationToken::new();
    let group = Group::new(n);
    for _ in 0..n {
        let child = root.child_token();
        let group = Arc::clone(&group);
        rt.spawn(async move {
            group.start();
            child.cancelled().await;
            drop(child);
            group.finish();
        });
    }
    group.settle(n);
    FanOut {
        cancel: root,
        group,
    }
}

/// What cancels the root of a fan-out.
pub trait Cancel {
    fn cancel_root(&self);
}

impl Cancel for ctx_runtime::CancelHandle {
    fn cancel_root(&self) {
        self.cancel();
    }
}

impl Cancel for ::tokio_util::sync::CancellationToken {
    fn cancel_root(&self) {
        self.cancel();
    }
}

impl<C: Cancel> FanOut<C> {
    /// The timed part: cancel the root, block until the last task is done.
    /// Returns the root's canceller, to be dropped outside the timer.
    #[inline(never)]
    pub fn cancel_and_wait(self) -> C {
        self.cancel.cancel_root();
        self.group.wait();
        self.cancel
    }
}
