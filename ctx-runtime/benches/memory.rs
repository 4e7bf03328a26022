//! Memory: heap bytes and allocations per live child context and per waiter,
//! for `ctx` and tokio-util's `CancellationToken`, counted by divan's
//! `AllocProfiler` (Go: `-benchmem`). The twins of `BenchmarkChildContextLive`
//! and `BenchmarkDoneWaiter` in bench/go/fanout_test.go, plus:
//!
//! - `ChildCreateDrop`: a child made and dropped (the short-lived case);
//! - `WaitingDone`: one more waiting `done()` future on a context that many
//!   already wait on, kept alive: the heap it costs beyond its own
//!   `size_of` (printed as a `#note` line that report.py picks up).
//!
//! A value returned from a bench closure is kept alive by divan until the end
//! of the sample, and dropped outside the timer and the counts: that is how
//! "live" objects are kept here. The counts are those of the bench thread:
//! allocations made by tokio's worker threads are not seen by divan, which is
//! why `DoneWaiter` relies on a waiter registration allocating nothing on the
//! worker (ctx stores the first waker of a node inline).

mod common;
use common::runtime;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
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

    #[divan::bench(name = "ChildCreateDrop")]
    fn child_create_drop(b: Bencher) {
        let root = &root().0;
        b.bench(|| {
            let (child, cancel) = root.with_cancel();
            drop(cancel);
            drop(child);
        });
    }

    /// Go: a child, and a goroutine blocked on `<-child.Done()` that
    /// releases the child once woken. Here a task on the 2-worker runtime;
    /// its JoinHandle is returned, so dropping it (outside the timer) only
    /// detaches the task. The tasks wait until the bench is over.
    #[divan::bench(name = "DoneWaiter")]
    fn done_waiter(b: Bencher) {
        let (root, cancel_root) = Context::background().with_cancel();
        let rt = runtime();
        b.bench(|| {
            let (child, cancel_child) = root.with_cancel();
            rt.spawn(async move {
                child.done().await;
                drop(cancel_child);
            })
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

    #[divan::bench(name = "ChildCreateDrop")]
    fn child_create_drop(b: Bencher) {
        let root = root();
        b.bench(|| drop(root.child_token()));
    }

    #[divan::bench(name = "DoneWaiter")]
    fn done_waiter(b: Bencher) {
        let root = CancellationToken::new();
        let rt = runtime();
        b.bench(|| {
            let child = root.child_token();
            rt.spawn(child.cancelled_owned())
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
