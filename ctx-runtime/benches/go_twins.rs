//! Rust twins of Go's own context benchmarks (`go test -bench . context`,
//! `$(go env GOROOT)/src/context/benchmark_test.go`), for `ctx` and, where it
//! has the operation, tokio-util's `CancellationToken`.
//!
//! `cargo bench -p ctx-runtime --bench go_twins`; `bench/compare` runs it and
//! lines the results up with Go's (bench/README.md has the shape of each twin).
//! The module under the binary is the implementation (`ctx`, `tokio_util`),
//! the next level Go's benchmark name, and divan's arguments the sub-benchmark
//! (`depth=10`, `concurrency=40`). Parallel benchmarks run on 2 threads, as Go
//! does with GOMAXPROCS=2; report.py divides divan's per-thread time by 2,
//! as Go's RunParallel reports wall time ÷ all operations.
//!
//! Rules that hold for every twin:
//! - the same work per op as Go, nothing hoisted out of the timed loop;
//! - what Go leaves to its garbage collector is dropped inside the timed
//!   iteration (Go's ns/op pays for its GC too), and dropping a `CancelHandle`
//!   cancels, which counts against ctx;
//! - setup that Go does outside the timer (`b.ResetTimer`) is done in the
//!   bench fn or in divan's `with_inputs`, outside the timer and the counts.

mod common;
use common::ops::{HOUR, poll_once};
use common::runtime;
use std::hint::black_box;
use std::pin::pin;
use std::sync::LazyLock;

use divan::Bencher;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const DEPTHS: [usize; 4] = [1, 10, 100, 1000];
const VALUE_DEPTHS: [usize; 5] = [10, 20, 30, 50, 100];
const CONCURRENCY: [usize; 3] = [40, 4000, 400_000];

/// Go's `for i := 0; i < 100; i++ { x /= x + 1 }`, as Go 1.23 compiles it:
/// `x` starts at 0 and stays 0, and Go's constant propagation (SCCP) proves
/// it, so the divisions are folded away and what runs is an empty loop that
/// counts to 100 (`go tool objdump -s BenchmarkCommonParentCancel` on the test
/// binary shows `INCQ AX; CMPQ AX, $0x64; JL`, and no `IDIV`). The twin runs
/// the same empty loop: the empty `asm!` keeps LLVM from deleting it, and
/// adds no instruction.
#[inline(always)]
fn go_folded_division_loop() {
    for i in 0..100usize {
        // SAFETY: an empty asm block that only reads a register.
        unsafe {
            std::arch::asm!("/* {0} */", in(reg) i, options(nomem, nostack, preserves_flags))
        };
    }
}

/// Go: `WithValue(Background(), "key", "value")`.
struct Key(&'static str);

/// Go's `ctx.Value(-1)`: a key nobody stored, so the lookup walks every layer.
struct Missing;

/// Go's `WithValue(ctx, i, i)` chain of `depth` layers on `Background()`.
fn value_chain(depth: usize) -> ctx_runtime::Context {
    let mut ctx = ctx_runtime::Context::background();
    for i in 0..depth {
        ctx = ctx.with_value(i);
    }
    ctx
}

#[divan::bench_group(name = "ctx")]
mod ctx {
    use super::*;
    use ctx_runtime::{CancelHandle, Context};

    /// Go: `shared, sharedcancel := WithCancel(WithValue(Background(), "key", "value"))`.
    static SHARED: LazyLock<(Context, CancelHandle)> =
        LazyLock::new(|| Context::background().with_value(Key("value")).with_cancel());

    #[divan::bench(name = "CommonParentCancel", threads = 2, sample_size = 128)]
    fn common_parent_cancel(b: Bencher) {
        let shared = &SHARED.0;
        b.bench(|| {
            let (ctx, cancel) = shared.with_cancel();
            if ctx.value::<Key>().map(|k| k.0) != Some("value") {
                panic!("should not be reached");
            }
            go_folded_division_loop();
            cancel.cancel();
            go_folded_division_loop();
            drop((ctx, cancel));
        });
    }

    /// Go's setup: GOMAXPROCS goroutines each create `concurrency/GOMAXPROCS`
    /// live `WithTimeout(Background(), time.Hour)`; here 2 threads inside the
    /// tokio runtime, so that every deadline is armed on tokio's timer wheel.
    fn live_timeouts(concurrency: usize) -> Vec<Vec<(Context, CancelHandle)>> {
        std::thread::scope(|s| {
            let per_thread = concurrency / 2;
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(move || {
                        let _rt = runtime().enter();
                        (0..per_thread)
                            .map(|_| Context::background().with_timeout(HOUR))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    #[divan::bench(name = "WithTimeout", threads = 2, args = CONCURRENCY, sample_size = 32)]
    fn with_timeout(b: Bencher, concurrency: usize) {
        let live = live_timeouts(concurrency);
        b.bench(|| {
            // Timers go on tokio's wheel: this thread is inside the runtime.
            let _rt = runtime().enter();
            let children: [(Context, CancelHandle); 10] =
                std::array::from_fn(|_| Context::background().with_timeout(HOUR));
            for (_, cancel) in &children {
                cancel.cancel();
            }
            drop(children);
        });
        drop(live);
    }

    /// Go's `buildContextTree`, in `common/ops.rs` (shared with the
    /// `instructions` harness): the handles are kept in a Vec reserved
    /// outside the timer, and dropped (cancelling) inside it.
    use common::ops::ctx::build_tree;

    #[divan::bench_group(name = "CancelTree")]
    mod cancel_tree {
        use super::*;

        #[divan::bench(name = "Root=Background", args = DEPTHS)]
        fn background(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth))
                .bench_local_values(|mut handles: Vec<CancelHandle>| {
                    let leaf = build_tree(Context::background(), depth, &mut handles);
                    drop(leaf);
                    handles.clear(); // drops (cancels) the chain: Go's GC work
                    handles // an empty Vec: its buffer is freed outside the timer
                });
        }

        #[divan::bench(name = "Root=OpenCanceler", args = DEPTHS)]
        fn open_canceler(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth))
                .bench_local_values(|mut handles: Vec<CancelHandle>| {
                    common::ops::ctx::cancel_tree_open(depth, &mut handles);
                    handles
                });
        }

        #[divan::bench(name = "Root=ClosedCanceler", args = DEPTHS)]
        fn closed_canceler(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth))
                .bench_local_values(|mut handles: Vec<CancelHandle>| {
                    let (ctx, cancel) = Context::background().with_cancel();
                    cancel.cancel();
                    let leaf = build_tree(ctx, depth, &mut handles);
                    drop((leaf, cancel));
                    handles.clear();
                    handles
                });
        }
    }

    /// Go: `ctx, cancel := WithCancel(Background()); cancel()`.
    static CANCELED: LazyLock<(Context, CancelHandle)> = LazyLock::new(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        (ctx, cancel)
    });

    #[divan::bench_group(name = "CheckCanceled")]
    mod check_canceled {
        use super::*;

        #[divan::bench(name = "Err")]
        fn err(b: Bencher) {
            let ctx = &CANCELED.0;
            b.bench(|| black_box(ctx).err());
        }

        #[divan::bench(name = "Done")]
        fn done(b: Bencher) {
            let ctx = &CANCELED.0;
            b.bench(|| {
                let done = pin!(black_box(ctx).done());
                poll_once(done)
            });
        }
    }

    /// Go: a live `WithCancel(Background())`.
    static LIVE: LazyLock<(Context, CancelHandle)> =
        LazyLock::new(|| Context::background().with_cancel());

    /// The twin of Go's `select { case <-ctx.Done(): default: }` on a live
    /// context: one poll of `ctx.done()` (Pending, so it registers the
    /// waker), then the drop of the future (which deregisters it), as one
    /// pass of a `select!` does.
    #[divan::bench(name = "ContextCancelDone", threads = 2, sample_size = 256)]
    fn context_cancel_done(b: Bencher) {
        let ctx = &LIVE.0;
        b.bench(|| common::ops::ctx::cancel_done_poll(ctx));
    }

    /// Not the twin (listed under "Other", per-thread time, 1 thread): the
    /// non-blocking check most Rust code would write instead.
    #[divan::bench(name = "ContextCancelDone_is_done")]
    fn context_cancel_done_is_done(b: Bencher) {
        let ctx = &LIVE.0;
        b.bench(|| black_box(ctx).is_done());
    }

    #[divan::bench(name = "DeepValueSameThread", args = VALUE_DEPTHS)]
    fn deep_value_same_thread(b: Bencher, depth: usize) {
        let ctx = value_chain(depth);
        b.bench(|| black_box(&ctx).value::<Missing>().is_some());
    }

    /// Go: `wg.Add(1); go func() { defer wg.Done(); ctx.Value(-1) }(); wg.Wait()`.
    /// A task on the 2-worker runtime, spawned and awaited from the bench
    /// thread (which is not one of the workers): this measures tokio's
    /// cross-thread spawn and join (two futex wake-ups) more than ctx.
    #[divan::bench(name = "DeepValueNewTask", args = VALUE_DEPTHS, sample_size = 8)]
    fn deep_value_new_task(b: Bencher, depth: usize) {
        let ctx = value_chain(depth);
        let rt = runtime();
        b.bench(|| {
            let ctx = ctx.clone();
            rt.block_on(rt.spawn(async move {
                black_box(black_box(&ctx).value::<Missing>().is_some());
            }))
            .unwrap();
        });
    }

    /// The second twin of `DeepValueNewGoRoutine`: the same on a
    /// current-thread runtime, where the task runs on the bench thread, as
    /// Go's new goroutine usually runs on the P of the goroutine that waits
    /// for it. This one measures the spawn, the lookup and the join on one
    /// thread; `DeepValueNewTask` measures tokio's cross-thread wake-ups.
    #[divan::bench(name = "DeepValueNewTaskCurrentThread", args = VALUE_DEPTHS, sample_size = 32)]
    fn deep_value_new_task_current_thread(b: Bencher, depth: usize) {
        let ctx = value_chain(depth);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.bench(|| {
            let ctx = ctx.clone();
            rt.block_on(rt.spawn(async move {
                black_box(black_box(&ctx).value::<Missing>().is_some());
            }))
            .unwrap();
        });
    }
}

/// The harness floors, listed under "Other". `trivial_op`: an iteration whose
/// work is a `black_box`ed reference and a two-tag comparison (`same()` of
/// two background contexts), like the `CheckCanceled/Err` loop without the
/// atomic load. What divan's loop costs per iteration on this machine matters
/// for the sub-nanosecond target of `CheckCanceled/Err`.
#[divan::bench_group(name = "harness")]
mod harness {
    use super::*;

    #[divan::bench(name = "trivial_op")]
    fn trivial_op(b: Bencher) {
        let ctx = ctx_runtime::Context::background();
        b.bench(|| black_box(&ctx).same(&ctx));
    }

    /// DeepValueNewTaskCurrentThread without the lookup (and without ctx):
    /// tokio's share of that twin, spawning an empty task on a
    /// current-thread runtime and joining it with `block_on`.
    #[divan::bench(name = "spawn_join_current_thread", sample_size = 32)]
    fn spawn_join_current_thread(b: Bencher) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.bench(|| {
            rt.block_on(rt.spawn(async { black_box(()) })).unwrap();
        });
    }
}

/// tokio-util's `CancellationToken`: child_token, cancel, is_cancelled,
/// cancelled(). It has no values, no deadlines and no uncancellable root.
#[divan::bench_group(name = "tokio_util")]
mod tokio_util_token {
    use super::*;
    use tokio_util::sync::CancellationToken;

    static SHARED: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

    /// No value lookup: a token has no values.
    #[divan::bench(name = "CommonParentCancel", threads = 2, sample_size = 128)]
    fn common_parent_cancel(b: Bencher) {
        let shared = &*SHARED;
        b.bench(|| {
            let token = shared.child_token();
            go_folded_division_loop();
            token.cancel();
            go_folded_division_loop();
            drop(token);
        });
    }

    use common::ops::token::build_tree;

    #[divan::bench_group(name = "CancelTree")]
    mod cancel_tree {
        use super::*;

        /// A fresh token stands in for `Background()`: tokens have no
        /// uncancellable root.
        #[divan::bench(name = "Root=Background", args = DEPTHS)]
        fn background(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth + 1))
                .bench_local_values(|mut tokens: Vec<CancellationToken>| {
                    let root = CancellationToken::new();
                    build_tree(&root, depth, &mut tokens);
                    drop(root);
                    tokens.clear();
                    tokens
                });
        }

        #[divan::bench(name = "Root=OpenCanceler", args = DEPTHS)]
        fn open_canceler(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth + 1))
                .bench_local_values(|mut tokens: Vec<CancellationToken>| {
                    common::ops::token::cancel_tree_open(depth, &mut tokens);
                    tokens
                });
        }

        #[divan::bench(name = "Root=ClosedCanceler", args = DEPTHS)]
        fn closed_canceler(b: Bencher, depth: usize) {
            b.with_inputs(|| Vec::with_capacity(depth + 1))
                .bench_local_values(|mut tokens: Vec<CancellationToken>| {
                    let root = CancellationToken::new();
                    root.cancel();
                    build_tree(&root, depth, &mut tokens);
                    drop(root);
                    tokens.clear();
                    tokens
                });
        }
    }

    static CANCELED: LazyLock<CancellationToken> = LazyLock::new(|| {
        let token = CancellationToken::new();
        token.cancel();
        token
    });

    #[divan::bench_group(name = "CheckCanceled")]
    mod check_canceled {
        use super::*;

        #[divan::bench(name = "Err")]
        fn err(b: Bencher) {
            let token = &*CANCELED;
            b.bench(|| black_box(token).is_cancelled());
        }

        #[divan::bench(name = "Done")]
        fn done(b: Bencher) {
            let token = &*CANCELED;
            b.bench(|| {
                let done = pin!(black_box(token).cancelled());
                poll_once(done)
            });
        }
    }

    static LIVE: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

    #[divan::bench(name = "ContextCancelDone", threads = 2, sample_size = 256)]
    fn context_cancel_done(b: Bencher) {
        let token = &*LIVE;
        b.bench(|| common::ops::token::cancel_done_poll(token));
    }

    #[divan::bench(name = "ContextCancelDone_is_cancelled")]
    fn context_cancel_done_is_cancelled(b: Bencher) {
        let token = &*LIVE;
        b.bench(|| black_box(token).is_cancelled());
    }
}
