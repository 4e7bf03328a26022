//! Memory: heap bytes and allocations per live child context and per waiter,
//! for `ctx` and tokio-util's `CancellationToken`, counted by divan's
//! `AllocProfiler` (Go: `-benchmem`). The twins of `BenchmarkChildContextLive`
//! and `BenchmarkDoneWaiter` in bench/go/fanout_test.go, plus:
//!
//! - `WaitingDone`: one more waiting `done()` future on a context that many
//!   already wait on, kept alive: the heap it costs beyond its own
//!   `size_of` (printed as a `#note` line that report.py picks up).
//!
//! A value returned from a bench closure is kept alive by divan until the end
//! of the sample, and dropped outside the timer and the counts: that is how
//! "live" objects are kept here. The counts are those of the bench thread:
//! allocations made by tokio's worker threads are not seen by divan, which is
//! why `DoneWaiter` relies on a waiter registration allocating nothing on the
//! worker (ctx stores the first waker of a node inline). `ChildCreateDrop`
//! is in `tokio_twins`.

mod common;
use common::runtime;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use divan::Bencher;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    note_sizes();
    divan::main();
}

/// `#note<TAB>family<TAB>text` lines: report.py prints them under the family.
fn note_sizes() {
    use std::mem::size_of;
    let (ctx, _cancel) = ctx_runtime::Context::background().with_cancel();
    let token = tokio_util::sync::CancellationToken::new();
    println!(
        "#note\tWaitingDone\tsize_of the future itself (inline, in the awaiting task or on the stack): \
         ctx `Done` {} B, `DoneOwned` {} B; tokio-util `WaitForCancellationFuture` {} B, \
         `WaitForCancellationFutureOwned` {} B.",
        size_of_val(&ctx.done()),
        size_of_val(&ctx.done_owned()),
        size_of_val(&token.cancelled()),
        size_of_val(&token.clone().cancelled_owned()),
    );
    println!(
        "#note\tChildContextLive\tsize_of the handles: ctx `Context` {} B + `CancelHandle` {} B; \
         tokio-util `CancellationToken` {} B.",
        size_of::<ctx_runtime::Context>(),
        size_of::<ctx_runtime::CancelHandle>(),
        size_of::<tokio_util::sync::CancellationToken>(),
    );
}

/// Go's `parked` WaitGroup of `BenchmarkDoneWaiter`, one per divan sample:
/// counts the sample's tasks that have been polled once.
struct Parked {
    left: Mutex<usize>,
    all: Condvar,
}

impl Parked {
    fn new(n: usize) -> Arc<Parked> {
        Arc::new(Parked {
            left: Mutex::new(n),
            all: Condvar::new(),
        })
    }

    fn done(&self) {
        let mut left = self.left.lock().unwrap();
        *left -= 1;
        if *left == 0 {
            self.all.notify_all();
        }
    }

    /// Go's `parked.Wait()`.
    fn wait(&self) {
        let mut left = self.left.lock().unwrap();
        while *left > 0 {
            left = self.all.wait(left).unwrap();
        }
    }
}

/// Waiters per divan sample (its fixed `sample_size`).
const WAITERS_PER_SAMPLE: u32 = 1_000;

/// divan's input generator for `DoneWaiter`: divan makes a sample's inputs in
/// order, then runs the ops in the same order, so with a fixed `sample_size`
/// the op given `true` is the last of its sample, and every op of its
/// `Parked` has run before it.
fn sample_inputs() -> impl FnMut() -> (Arc<Parked>, bool) {
    let n = WAITERS_PER_SAMPLE as usize;
    let mut made = 0;
    let mut parked = Parked::new(n);
    move || {
        if made == n {
            made = 0;
            parked = Parked::new(n);
        }
        made += 1;
        (Arc::clone(&parked), made == n)
    }
}

/// Awaits `fut`, counting itself in `parked` right after its first poll
/// (which registered its waker, if it was pending).
async fn after_first_poll<F: Future>(fut: F, parked: &Parked) -> F::Output {
    let mut fut = pin!(fut);
    let mut first = true;
    std::future::poll_fn(|cx| {
        let poll = fut.as_mut().poll(cx);
        if std::mem::take(&mut first) {
            parked.done();
        }
        poll
    })
    .await
}

/// One poll with a no-op waker; the future stays registered while pending.
fn poll_pending<F: Future + ?Sized>(fut: Pin<&mut F>) {
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(matches!(fut.poll(&mut cx), Poll::Pending));
}

#[divan::bench_group(name = "ctx")]
mod ctx {
    use super::*;
    use ctx_runtime::{CancelHandle, Context};

    /// Go: `root, cancel := WithCancel(Background())`, shared by the children.
    fn root() -> &'static (Context, CancelHandle) {
        static ROOT: LazyLock<(Context, CancelHandle)> =
            LazyLock::new(|| Context::background().with_cancel());
        &ROOT
    }

    /// Go: `ctxs[i], cancels[i] = WithCancel(root)`, kept alive, with
    /// `-benchtime 100000x`: 100,000 live children of one root per sample,
    /// so the growth of the root's list is amortised as in Go's run.
    #[divan::bench(name = "ChildContextLive", sample_size = 100_000)]
    fn child_context_live(b: Bencher) {
        let root = &root().0;
        b.bench(|| root.with_cancel());
    }

    /// Go: a child, and a goroutine blocked on `<-child.Done()` that
    /// releases the child once woken. Here a task on the 2-worker runtime;
    /// its JoinHandle is returned, so dropping it (outside the timer) only
    /// detaches the task. The last op of each sample waits until every task
    /// of the sample has been polled once (registered), as Go's timer stops
    /// after `parked.Wait()`. The tasks wait until the bench is over.
    #[divan::bench(name = "DoneWaiter", sample_size = WAITERS_PER_SAMPLE)]
    fn done_waiter(b: Bencher) {
        let (root, cancel_root) = Context::background().with_cancel();
        let rt = runtime();
        b.with_inputs(sample_inputs())
            .bench_local_values(|(parked, last): (Arc<Parked>, bool)| {
                let (child, cancel_child) = root.with_cancel();
                let counted = Arc::clone(&parked);
                let task = rt.spawn(async move {
                    after_first_poll(child.done(), &counted).await;
                    drop(cancel_child);
                });
                if last {
                    parked.wait();
                }
                task
            });
        cancel_root.cancel();
    }

    /// One more `done()` future waiting on a context, kept alive until the
    /// end of the sample; the box it lives in is made outside the counts.
    #[divan::bench(name = "WaitingDone")]
    fn waiting_done(b: Bencher) {
        let ctx = &root().0;
        b.with_inputs(|| Box::pin(ctx.done()))
            .bench_local_values(|mut done| {
                poll_pending(done.as_mut());
                done
            });
    }
}

#[divan::bench_group(name = "tokio_util")]
mod tokio_util_token {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn root() -> &'static CancellationToken {
        static ROOT: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);
        &ROOT
    }

    #[divan::bench(name = "ChildContextLive", sample_size = 100_000)]
    fn child_context_live(b: Bencher) {
        let root = root();
        b.bench(|| root.child_token());
    }

    #[divan::bench(name = "DoneWaiter", sample_size = WAITERS_PER_SAMPLE)]
    fn done_waiter(b: Bencher) {
        let root = CancellationToken::new();
        let rt = runtime();
        b.with_inputs(sample_inputs())
            .bench_local_values(|(parked, last): (Arc<Parked>, bool)| {
                let child = root.child_token();
                let counted = Arc::clone(&parked);
                let task = rt.spawn(async move {
                    after_first_poll(child.cancelled_owned(), &counted).await;
                });
                if last {
                    parked.wait();
                }
                task
            });
        root.cancel();
    }

    #[divan::bench(name = "WaitingDone")]
    fn waiting_done(b: Bencher) {
        let token = root();
        b.with_inputs(|| Box::pin(token.cancelled()))
            .bench_local_values(|mut done| {
                poll_pending(done.as_mut());
                done
            });
    }
}
