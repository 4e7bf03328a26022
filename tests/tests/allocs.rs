//! Allocation costs, counted by a global allocator (Go's TestAllocs, in Rust).
//!
//! Counts are per thread, so a test counts only what it does itself (these
//! tests allocate and free on their own thread); the
//! async cases run on a current-thread runtime on the test's own thread.
//! Each figure is the average over 100 calls after one warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use ctx_runtime::Context;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn add_live(delta: isize) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
}

fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

// SAFETY: defers every operation to `System`; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        add_live(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        add_live(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Average allocations of `f` over 100 runs, after one warm-up run.
fn allocs_per_run(mut f: impl FnMut()) -> f64 {
    f();
    let before = allocs();
    for _ in 0..100 {
        f();
    }
    (allocs() - before) as f64 / 100.0
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn background_allocates_nothing() {
    let n = allocs_per_run(|| {
        let ctx = Context::background();
        assert!(ctx.err().is_none());
        let todo = Context::todo();
        drop(todo.clone());
    });
    assert_eq!(n, 0.0);
}

#[test]
fn with_value_and_lookup_is_one_allocation() {
    struct Key(u64);
    let root = Context::background();
    let n = allocs_per_run(|| {
        let ctx = root.with_value(Key(3));
        assert_eq!(ctx.value::<Key>().map(|k| k.0), Some(3));
    });
    assert_eq!(n, 1.0);
}

#[test]
fn clone_err_and_check_allocate_nothing() {
    let (ctx, _cancel) = Context::background().with_cancel();
    let valued = ctx.with_value(1u8);
    let n = allocs_per_run(|| {
        let c = valued.clone();
        assert!(c.err().is_none() && c.check().is_ok() && !c.is_done());
    });
    assert_eq!(n, 0.0);
}

#[test]
fn with_cancel_cancel_and_done_is_at_most_two_allocations() {
    let rt = paused_runtime();
    let root = Context::background();
    let n = allocs_per_run(|| {
        rt.block_on(async {
            let (ctx, cancel) = root.with_cancel();
            cancel.cancel();
            ctx.done().await;
        })
    });
    // The issue allows 2 (Go needs 5); we measure 1: the node.
    assert!(n <= 1.0, "{n} allocations per call");
    // A child of a cancellable parent is still one node, no list allocation.
    let (parent, _p) = Context::background().with_cancel();
    let n = allocs_per_run(|| {
        let (ctx, cancel) = parent.with_cancel();
        cancel.cancel();
        assert!(ctx.is_done());
    });
    assert_eq!(n, 1.0, "a child context is one allocation");
}

#[test]
fn a_timeout_that_expires_is_at_most_four_allocations() {
    let rt = paused_runtime();
    let root = Context::background();
    let n = allocs_per_run(|| {
        rt.block_on(async {
            let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
            ctx.done().await;
        })
    });
    // The issue allows 4 (Go needs 12 and 8); we measure 2: the node and the boxed timer.
    assert!(n <= 2.0, "{n} allocations per call");
}

#[test]
fn a_timeout_cancelled_early_is_at_most_four_allocations() {
    let rt = paused_runtime();
    let root = Context::background();
    let n = allocs_per_run(|| {
        rt.block_on(async {
            let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
            cancel.cancel();
            ctx.done().await;
        })
    });
    // The issue allows 4 (Go needs 12 and 8); we measure 2: the node and the boxed timer.
    assert!(n <= 2.0, "{n} allocations per call");
}

#[test]
fn waiting_on_done_allocates_nothing() {
    let rt = paused_runtime();
    let (ctx, cancel) = Context::background().with_cancel();
    let with_done = allocs_per_run(|| {
        rt.block_on(async {
            tokio::select! {
                biased;
                _ = ctx.done() => unreachable!(),
                _ = tokio::task::yield_now() => {}
            }
        })
    });
    // The same select! with a future that never registers anything.
    let without = allocs_per_run(|| {
        rt.block_on(async {
            tokio::select! {
                biased;
                _ = std::future::pending::<()>() => unreachable!(),
                _ = tokio::task::yield_now() => {}
            }
        })
    });
    assert_eq!(
        with_done, without,
        "registering and deregistering a waiter allocates nothing"
    );
    drop(cancel);
}

#[test]
fn a_million_children_of_one_parent_leave_its_memory_where_it_started() {
    let (parent, _cancel) = Context::background().with_cancel();
    let valued = parent.with_value(0u64);
    // Warm up: the first child of each kind.
    drop(valued.with_cancel());
    let baseline = live_bytes();
    for i in 0..1_000_000u32 {
        let (child, cancel) = if i % 2 == 0 {
            parent.with_cancel()
        } else {
            valued.with_cancel()
        };
        if i % 3 == 0 {
            cancel.cancel();
            drop(child);
        } else {
            drop(child);
            drop(cancel);
        }
    }
    let after = live_bytes();
    assert_eq!(
        after,
        baseline,
        "live heap grew by {} bytes",
        after - baseline
    );
}

#[test]
fn a_burst_of_live_children_is_given_back() {
    let (parent, _cancel) = Context::background().with_cancel();
    drop(parent.with_cancel());
    let baseline = live_bytes();
    let burst: Vec<_> = (0..10_000).map(|_| parent.with_cancel()).collect();
    assert!(live_bytes() > baseline);
    drop(burst);
    assert_eq!(live_bytes(), baseline);
}

/// Issue 10: a burst of 100,000 children, waiters or after_funcs under a
/// parent that keeps other entries (one made before the burst, one in the
/// middle of it) gives its memory back once the burst is gone: the parent's
/// memory returns to within 64 KiB of where it was.
#[test]
fn a_burst_under_a_parent_that_keeps_children_is_given_back() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Waker};

    const BURST: usize = 100_000;
    const SLACK: isize = 64 * 1024;
    let (parent, _cancel) = Context::background().with_cancel();
    let _first = parent.with_cancel();
    drop(parent.with_cancel()); // warm-up
    let baseline = live_bytes();

    let mut middle = None;
    let children: Vec<_> = (0..BURST)
        .map(|i| {
            if i == BURST / 2 {
                middle = Some(parent.with_cancel());
            }
            parent.with_cancel()
        })
        .collect();
    drop(children);
    let grown = live_bytes() - baseline;
    assert!(grown <= SLACK, "children: {grown} bytes kept");

    let mut cx = TaskContext::from_waker(Waker::noop());
    let mut waiters: Vec<_> = (0..BURST).map(|_| Box::pin(parent.done())).collect();
    for done in &mut waiters {
        assert!(done.as_mut().poll(&mut cx).is_pending());
    }
    drop(waiters);
    let grown = live_bytes() - baseline;
    assert!(grown <= SLACK, "waiters: {grown} bytes kept");

    let afters: Vec<_> = (0..BURST).map(|_| parent.after_func(|| {})).collect();
    for after in &afters {
        assert!(after.stop());
    }
    drop(afters);
    let grown = live_bytes() - baseline;
    assert!(grown <= SLACK, "after_funcs: {grown} bytes kept");
    drop(middle);
}

/// A context bridged from a token and ended first leaves nothing behind in
/// the token, nor in the context's parent; nor do tokens handed out by a
/// long-lived context (issue 12, item 2).
#[test]
fn bridged_contexts_and_tokens_leave_nothing_behind() {
    let token = tokio_util::sync::CancellationToken::new();
    let (parent, _cancel) = Context::background().with_cancel();
    for _ in 0..2 {
        drop(parent.with_cancellation_token(token.clone()));
        drop(parent.cancellation_token());
    }
    let baseline = live_bytes();
    for _ in 0..10_000 {
        let (ctx, cancel) = parent.with_cancellation_token(token.clone());
        drop(ctx.cancellation_token());
        drop(parent.cancellation_token());
        drop(cancel);
    }
    assert_eq!(live_bytes(), baseline, "live heap grew");
    assert!(!token.is_cancelled());
}
