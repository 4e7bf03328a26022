//! The twins of issue 14 against tokio-util's `CancellationToken` that have
//! no Go counterpart, ctx and tokio-util side by side in one binary and one
//! run (the other rows of that table are `CancelTree` in `go_twins`,
//! `FanoutCancel` in `fanout` and `AwaitOverhead` in `await_overhead`, each
//! with both implementations in one binary):
//!
//! - `ChildCreateDrop`: a child of a live parent, made and dropped;
//! - `CreateCancelDrop`: a child of a live parent, made, cancelled, dropped;
//! - `CancelChildren/n=1000`: 1,000 children of a fresh root, the root
//!   cancelled, everything dropped (a flat tree: `CancelTree` is a chain);
//! - `TimeoutDrop`: ctx `with_timeout(1h)` and its drop, against tokio-util
//!   `child_token()` plus a `tokio::time::sleep(1h)` polled once (on the
//!   timer wheel, as ctx's deadline is) and both dropped, inside the 2-worker
//!   runtime (entered by the bench thread).
//!
//! The ops are in `common/ops.rs`, shared with the `instructions` harness
//! that counts their instructions under callgrind.

mod common;
use common::ops;
use common::runtime;

use divan::Bencher;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// `CancelChildren/n=1000`: the "1,000 children, cancel the root".
const CHILDREN: [usize; 1] = [1000];

#[divan::bench_group(name = "ctx")]
mod ctx {
    use super::*;

    #[divan::bench(name = "ChildCreateDrop")]
    fn child_create_drop(b: Bencher) {
        let (root, _cancel) = ops::ctx::live_root();
        b.bench(|| ops::ctx::child_create_drop(&root));
    }

    #[divan::bench(name = "CreateCancelDrop")]
    fn create_cancel_drop(b: Bencher) {
        let (root, _cancel) = ops::ctx::live_root();
        b.bench(|| ops::ctx::create_cancel_drop(&root));
    }

    #[divan::bench(name = "CancelChildren", args = CHILDREN)]
    fn cancel_children(b: Bencher, n: usize) {
        b.with_inputs(|| Vec::with_capacity(n))
            .bench_local_values(|mut children| {
                ops::ctx::cancel_children(n, &mut children);
                children // empty: its buffer is freed outside the timer
            });
    }

    #[divan::bench(name = "TimeoutDrop")]
    fn timeout_drop(b: Bencher) {
        let _rt = runtime().enter();
        let (root, _cancel) = ops::ctx::live_root();
        b.bench(|| ops::ctx::timeout_drop(&root));
    }
}

#[divan::bench_group(name = "tokio_util")]
mod tokio_util_token {
    use super::*;

    #[divan::bench(name = "ChildCreateDrop")]
    fn child_create_drop(b: Bencher) {
        let root = ops::token::live_root();
        b.bench(|| ops::token::child_create_drop(&root));
    }

    #[divan::bench(name = "CreateCancelDrop")]
    fn create_cancel_drop(b: Bencher) {
        let root = ops::token::live_root();
        b.bench(|| ops::token::create_cancel_drop(&root));
    }

    #[divan::bench(name = "CancelChildren", args = CHILDREN)]
    fn cancel_children(b: Bencher, n: usize) {
        b.with_inputs(|| Vec::with_capacity(n))
            .bench_local_values(|mut children| {
                ops::token::cancel_children(n, &mut children);
                children
            });
    }

    #[divan::bench(name = "TimeoutDrop")]
    fn timeout_drop(b: Bencher) {
        let _rt = runtime().enter();
        let root = ops::token::live_root();
        b.bench(|| ops::token::timeout_drop(&root));
    }
}
