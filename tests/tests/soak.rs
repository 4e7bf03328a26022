//! Soak and stress: large, bounded workloads with invariants checked after.
//!
//! Memory is the process's live heap, counted by a global allocator, so this
//! binary has its own `main` (no libtest harness, whose threads allocate
//! concurrently) and runs the checks one after another, printing the figures
//! that RELIABILITY.md quotes. `cargo test --test soak -- <filter>` runs a
//! subset.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use ctx_runtime::{CancelHandle, Context, Error};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: defers every operation to `System`; the bookkeeping is two atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Resets the peak to the current live heap and returns it.
fn reset_peak() -> isize {
    let now = live();
    PEAK.store(now, Ordering::SeqCst);
    now
}

fn peak() -> isize {
    PEAK.load(Ordering::SeqCst)
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

fn a_million_children_across_two_threads_return_memory_to_baseline() {
    let (parent, _cancel) = Context::background().with_cancel();
    // Warm-up: two live children at once size the parent's child list (a
    // few spare slots it keeps); the baseline is the parent after that.
    drop((parent.with_cancel(), parent.with_cancel()));
    let baseline = reset_peak();
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let parent = parent.clone();
            std::thread::spawn(move || {
                for i in 0..500_000u32 {
                    let (child, cancel) = parent.with_cancel();
                    if (i + w) % 2 == 0 {
                        cancel.cancel();
                    }
                    drop(child);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let end = live();
    println!(
        "1,000,000 children on 2 threads in {:?}; peak +{} B, end +{} B",
        started.elapsed(),
        peak() - baseline,
        end - baseline
    );
    assert_eq!(end, baseline, "the parent kept {} bytes", end - baseline);
}

fn a_hundred_thousand_waiting_tasks_all_finish_on_one_cancel() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    const TASKS: usize = 100_000;
    let finished = rt.block_on(async {
        let (root, cancel) = Context::background().with_cancel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let all_waiting = Arc::new(tokio::sync::Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..TASKS {
            let ctx = if i % 2 == 0 {
                root.clone()
            } else {
                root.with_value(i)
            };
            let (waiting, all_waiting) = (Arc::clone(&waiting), Arc::clone(&all_waiting));
            tasks.spawn(async move {
                let mut done = std::pin::pin!(ctx.done());
                // Register before counting in, so the cancel cannot come first.
                std::future::poll_fn(|cx| {
                    let _ = done.as_mut().poll(cx);
                    std::task::Poll::Ready(())
                })
                .await;
                if waiting.fetch_add(1, Ordering::SeqCst) + 1 == TASKS {
                    all_waiting.notify_one();
                }
                done.await;
                ctx.err()
            });
        }
        all_waiting.notified().await;
        let started = Instant::now();
        cancel.cancel();
        let mut finished = 0;
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap(), Some(Error::Canceled));
            finished += 1;
        }
        println!(
            "{finished} waiting tasks finished {:?} after one cancel()",
            started.elapsed()
        );
        finished
    });
    assert_eq!(finished, TASKS);
}

fn a_ten_thousand_deep_chain_cancels_from_the_root_on_a_worker_thread() {
    // tokio's worker threads have 2 MiB stacks; cancel and drop must not recurse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(512 * 1024)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async {
            let (root, cancel) = Context::background().with_cancel();
            let mut handles: Vec<CancelHandle> = Vec::with_capacity(10_000);
            let mut leaf = root.clone();
            for _ in 0..10_000 {
                let (child, handle) = leaf.with_cancel();
                handles.push(handle);
                leaf = child;
            }
            let waiter = tokio::spawn(leaf.done_owned());
            cancel.cancel();
            waiter.await.unwrap();
            assert_eq!(leaf.err(), Some(Error::Canceled));
            drop(handles);
            drop(root);
            drop(leaf);
            println!("10,000-deep chain cancelled and dropped on a 512 KiB stack");
        })
        .await
        .unwrap();
    });
}

fn a_million_select_iterations_over_done_do_not_grow_memory() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    let (baseline, after, peak_growth, yields) = rt.block_on(async {
        // Each iteration: done() registers (the yield is pending), then the
        // yield wins and done() is dropped, deregistering.
        let mut yields = 0u32;
        let mut iteration = async || {
            tokio::select! {
                biased;
                _ = ctx.done() => unreachable!("never cancelled here"),
                _ = tokio::task::yield_now() => yields += 1,
            }
        };
        iteration().await;
        let baseline = reset_peak();
        for _ in 1..1_000_000 {
            iteration().await;
        }
        (baseline, live(), peak() - baseline, yields)
    });
    println!(
        "1,000,000 select! iterations over done(): peak +{peak_growth} B, end +{} B",
        after - baseline
    );
    assert_eq!(yields, 1_000_000);
    assert_eq!(after, baseline);
    assert!(
        peak_growth < 1024,
        "waiter registration grew the heap by {peak_growth} B"
    );
    cancel.cancel();
}

fn cancel_storms_on_a_random_tree_keep_the_tree_consistent() {
    const NODES: usize = 10_000;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    // parents[i] < i: node 0 is the root, each node a random earlier parent.
    let mut parents = vec![0usize; NODES];
    let mut nodes: Vec<(Context, CancelHandle)> = Vec::with_capacity(NODES);
    nodes.push(Context::background().with_cancel());
    for (i, parent) in parents.iter_mut().enumerate().skip(1) {
        *parent = rng.below(i);
        let base = &nodes[*parent].0;
        // Mix in value nodes, which share their parent's cancellation.
        let child = if i % 5 == 0 {
            base.with_value(i).with_cancel()
        } else {
            base.with_cancel()
        };
        nodes.push(child);
    }
    let nodes = Arc::new(nodes);
    let started = Instant::now();
    let storms: Vec<_> = (0..8)
        .map(|t| {
            let nodes = Arc::clone(&nodes);
            std::thread::spawn(move || {
                let mut rng = Rng(0xC0FFEE ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut cancelled = Vec::new();
                for _ in 0..200 {
                    // Skip the root, so most of the tree stays live.
                    let victim = 1 + rng.below(NODES - 1);
                    nodes[victim].1.cancel_with_cause(format!("storm {t}"));
                    cancelled.push(victim);
                }
                cancelled
            })
        })
        .collect();
    let mut cancelled = vec![false; NODES];
    for storm in storms {
        for victim in storm.join().unwrap() {
            cancelled[victim] = true;
        }
    }
    // A node must be done iff it or one of its ancestors was cancelled.
    let mut expect_done = vec![false; NODES];
    for i in 0..NODES {
        expect_done[i] = cancelled[i] || (i != 0 && expect_done[parents[i]]);
    }
    let mut done_count = 0;
    for (i, (ctx, _)) in nodes.iter().enumerate() {
        assert_eq!(ctx.is_done(), expect_done[i], "node {i}: {ctx:?}");
        if ctx.is_done() {
            done_count += 1;
            assert_eq!(ctx.err(), Some(Error::Canceled));
            assert!(ctx.cause().unwrap().to_string().starts_with("storm "));
        }
    }
    println!(
        "8 threads x 200 cancels on a {NODES}-node tree in {:?}: {done_count} nodes done, invariants hold",
        started.elapsed()
    );
    assert!(done_count > 0 && done_count < NODES);
}

fn main() {
    let checks: [(&str, fn()); 5] = [
        (
            "a_million_children_across_two_threads_return_memory_to_baseline",
            a_million_children_across_two_threads_return_memory_to_baseline,
        ),
        (
            "a_hundred_thousand_waiting_tasks_all_finish_on_one_cancel",
            a_hundred_thousand_waiting_tasks_all_finish_on_one_cancel,
        ),
        (
            "a_ten_thousand_deep_chain_cancels_from_the_root_on_a_worker_thread",
            a_ten_thousand_deep_chain_cancels_from_the_root_on_a_worker_thread,
        ),
        (
            "a_million_select_iterations_over_done_do_not_grow_memory",
            a_million_select_iterations_over_done_do_not_grow_memory,
        ),
        (
            "cancel_storms_on_a_random_tree_keep_the_tree_consistent",
            cancel_storms_on_a_random_tree_keep_the_tree_consistent,
        ),
    ];
    // libtest-style arguments: the first free argument filters by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut ran = 0;
    for (name, check) in checks {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let started = Instant::now();
        check();
        println!("ok   {name} ({:?})", started.elapsed());
        ran += 1;
    }
    println!("soak: {ran} checks passed");
}
