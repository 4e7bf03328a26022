//! Fan-out cancel latency: N tasks on a tokio multi-thread runtime with 2
//! workers, each waiting on its own child of one root; one op is the time from
//! `cancel()` of the root to the last task finished. The twin of
//! `BenchmarkFanoutCancel` in bench/go/fanout_test.go (N goroutines blocked
//! on `<-child.Done()`), for `ctx` (`child.done().await`) and tokio-util
//! (`child.cancelled().await`).
//!
//! Not timed (divan `with_inputs`, one input per sample): the root, the N
//! children and tasks, waiting until every task has counted itself in (just
//! before its await), and 2 ms for them to park, as Go's `settle()` does
//! after its own count. Timed: `cancel()`, then blocking until the last task
//! has counted itself out (Go's `wg.Wait()`). Each task drops its child's
//! `CancelHandle` once woken, the mirror of Go's `defer cancelChild()`.
//! The setup and the timed op are in `common/ops.rs`, shared with the
//! `instructions` harness.

mod common;
use common::ops::{fanout_ctx, fanout_tokio_util};
use common::runtime;

use divan::Bencher;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1_000, 100_000];

#[divan::bench_group(name = "ctx")]
mod ctx {
    use super::*;

    #[divan::bench(name = "FanoutCancel", args = SIZES, sample_size = 1, sample_count = 30)]
    fn fanout_cancel(b: Bencher, n: usize) {
        b.with_inputs(|| fanout_ctx(runtime(), n))
            .bench_local_values(|op| op.cancel_and_wait());
    }
}

#[divan::bench_group(name = "tokio_util")]
mod tokio_util_token {
    use super::*;

    #[divan::bench(name = "FanoutCancel", args = SIZES, sample_size = 1, sample_count = 30)]
    fn fanout_cancel(b: Bencher, n: usize) {
        b.with_inputs(|| fanout_tokio_util(runtime(), n))
            .bench_local_values(|op| op.cancel_and_wait());
    }
}
