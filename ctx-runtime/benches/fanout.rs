//! Fan-out cancel latency: N tasks on a tokio multi-thread runtime with 2
//! workers, each waiting on its own child of one root; one op is the time from
//! `cancel()` of the root to the last task finished. The twin of
//! `BenchmarkFanoutCancel` in bench/go/fanout_test.go (N goroutines blocked
//! on `<-child.Done()`), for `ctx` (`child.done().await`) and tokio-util
//! (`child.cancelled().await`).
//!
//! Not timed (divan `with_inputs`, one input per sample): the root, the N
//! children and tasks, waiting until every task has started, and 2 ms for
//! them to park, as Go's `settle()`. Timed: `cancel()`, then blocking until
//! the last task has counted itself out and sent on a oneshot (Go's
//! `wg.Wait()`). Each task drops its child's `CancelHandle` once woken, the
//! mirror of Go's `defer cancelChild()`.

mod common;
use common::runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use divan::Bencher;
use tokio::sync::oneshot;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1_000, 100_000];

/// The WaitGroup: counts tasks in and out; the last one out fires `done`.
struct Group {
    started: AtomicUsize,
    remaining: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl Group {
    fn new(n: usize) -> (Arc<Group>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let group = Group {
            started: AtomicUsize::new(0),
            remaining: AtomicUsize::new(n),
            done: Mutex::new(Some(tx)),
        };
        (Arc::new(group), rx)
    }

    fn start(&self) {
        self.started.fetch_add(1, Ordering::Release);
    }

    fn finish(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(tx) = self.done.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    }

    /// Go's `settle()`: every task has started, then 2 ms for all to park.
    fn settle(&self, n: usize) {
        while self.started.load(Ordering::Acquire) < n {
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What one timed op needs: the root's canceller and the "all done" signal.
struct FanOut<C> {
    cancel: C,
    all_done: oneshot::Receiver<()>,
}

#[divan::bench_group(name = "ctx")]
mod ctx {
    use super::*;
    use ctx_runtime::{CancelHandle, Context};

    fn setup(n: usize) -> FanOut<CancelHandle> {
        let (root, cancel) = Context::background().with_cancel();
        let (group, all_done) = Group::new(n);
        for _ in 0..n {
            let (child, cancel_child) = root.with_cancel();
            let group = Arc::clone(&group);
            runtime().spawn(async move {
                group.start();
                child.done().await;
                drop(cancel_child); // Go: defer cancelChild()
                drop(child);
                group.finish();
            });
        }
        group.settle(n);
        FanOut { cancel, all_done }
    }

    #[divan::bench(name = "FanoutCancel", args = SIZES, sample_size = 1, sample_count = 30)]
    fn fanout_cancel(b: Bencher, n: usize) {
        b.with_inputs(|| setup(n)).bench_local_values(|op| {
            op.cancel.cancel();
            op.all_done.blocking_recv().expect("every task finished");
            op.cancel
        });
    }
}

#[divan::bench_group(name = "tokio_util")]
mod tokio_util_token {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn setup(n: usize) -> FanOut<CancellationToken> {
        let root = CancellationToken::new();
        let (group, all_done) = Group::new(n);
        for _ in 0..n {
            let child = root.child_token();
            let group = Arc::clone(&group);
            runtime().spawn(async move {
                group.start();
                child.cancelled().await;
                drop(child);
                group.finish();
            });
        }
        group.settle(n);
        FanOut {
            cancel: root,
            all_done,
        }
    }

    #[divan::bench(name = "FanoutCancel", args = SIZES, sample_size = 1, sample_count = 30)]
    fn fanout_cancel(b: Bencher, n: usize) {
        b.with_inputs(|| setup(n)).bench_local_values(|op| {
            op.cancel.cancel();
            op.all_done.blocking_recv().expect("every task finished");
            op.cancel
        });
    }
}
