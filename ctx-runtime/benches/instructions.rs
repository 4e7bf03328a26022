//! Instruction counts of the twins against tokio-util, for
//! `bench/compare`'s callgrind step (bench/README.md, "Instruction counts").
//!
//! Not a divan bench: `bench/compare` runs this binary under
//! `valgrind --tool=callgrind --instr-atstart=no`, once per twin and
//! implementation:
//!
//! ```text
//! instructions list                    # bench<TAB>impl<TAB>n<TAB>divisor<TAB>unit, one line per twin
//! instructions run <bench> <impl> [n]  # the windows below, for callgrind to count
//! instructions                         # every twin with n = 1: a smoke test (`cargo test --benches`)
//! ```
//!
//! `run` switches callgrind's instrumentation on only around the ops (and,
//! for the fan-out, only around the timed part of each op: the setup of its
//! tasks is left out, as divan leaves it out of the time), and dumps the
//! counts at the end of each window, named in the dump: `warm` (n ops, only
//! to reach a steady state), then `a` (n ops), `b` (2n), `c` (n), `d` (2n).
//! Per op = (I(b) − I(a)) / n and (I(d) − I(c)) / n, so what a window costs
//! whatever its length (the client requests, the loop's start) cancels out;
//! report.py prints the mean of the two and their difference. The ops are
//! the very functions the divan twins time (`common/ops.rs`,
//! `common/await_fns.rs`). Outside valgrind the requests do nothing, so
//! `run` is also a quick smoke test of every op.

mod common;
// The yield_now versions are the divan bench's only.
#[allow(dead_code)]
#[path = "common/await_fns.rs"]
mod await_fns;

use common::ops;
use std::hint::black_box;
use std::process::ExitCode;

/// Callgrind's client requests (valgrind/callgrind.h), issued the way
/// valgrind.h does on x86-64: a no-op sequence that valgrind recognises.
mod callgrind {
    const BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
    const DUMP_STATS_AT: u64 = BASE + 3;
    const START_INSTRUMENTATION: u64 = BASE + 4;
    const STOP_INSTRUMENTATION: u64 = BASE + 5;

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn request(code: u64, arg1: u64) {
        let args: [u64; 6] = [code, arg1, 0, 0, 0, 0];
        // SAFETY: the four rotations of rdi add up to 128 bits (rdi is left
        // as it was) and `xchg rbx, rbx` changes nothing; only the flags
        // change. Under valgrind the sequence is a client request that reads
        // `args` and writes its result in rdx.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") 0u64 => _,
                in("rax") args.as_ptr(),
                options(nostack),
            );
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn request(_code: u64, _arg1: u64) {}

    /// Counting starts (for every thread).
    #[inline(always)]
    pub fn start() {
        request(START_INSTRUMENTATION, 0);
    }

    /// Counting stops (for every thread).
    #[inline(always)]
    pub fn stop() {
        request(STOP_INSTRUMENTATION, 0);
    }

    /// Writes the counts since the last dump to a dump file named `label`,
    /// and zeroes them.
    pub fn dump(label: &str) {
        let c = std::ffi::CString::new(label).expect("a label without NUL");
        request(DUMP_STATS_AT, c.as_ptr() as u64);
    }
}

/// The windows of one run: (label, ops).
fn plan(n: usize) -> [(&'static str, usize); 5] {
    [("warm", n), ("a", n), ("b", 2 * n), ("c", n), ("d", 2 * n)]
}

/// Ops with nothing to set up per op: counting is on for a whole window.
fn windows(n: usize, mut op: impl FnMut()) {
    for (label, count) in plan(n) {
        callgrind::start();
        for _ in 0..count {
            op();
        }
        callgrind::stop();
        callgrind::dump(label);
    }
}

/// Ops whose setup is not part of the op: counting is on for `op` only;
/// what it returns is dropped after counting stops.
fn windows_with_setup<S, R>(n: usize, mut setup: impl FnMut() -> S, mut op: impl FnMut(S) -> R) {
    for (label, count) in plan(n) {
        for _ in 0..count {
            let input = setup();
            callgrind::start();
            let out = op(input);
            callgrind::stop();
            drop(out);
        }
        callgrind::dump(label);
    }
}

struct Twin {
    bench: &'static str,
    imp: &'static str,
    /// Ops in the window `a` (and `c`).
    n: usize,
    /// The unit of the figure: per op, or per await (the op ÷ 1,000).
    divisor: u64,
    unit: &'static str,
    run: fn(usize),
}

const DEPTHS: [usize; 4] = [1, 10, 100, 1000];

fn cancel_tree_ctx(depth: usize, n: usize) {
    let mut handles = Vec::with_capacity(depth);
    windows(n, || ops::ctx::cancel_tree_open(depth, &mut handles));
}

fn cancel_tree_tokio_util(depth: usize, n: usize) {
    let mut tokens = Vec::with_capacity(depth + 1);
    windows(n, || ops::token::cancel_tree_open(depth, &mut tokens));
}

fn twins() -> Vec<Twin> {
    let per_op = |bench, imp, n, run| Twin {
        bench,
        imp,
        n,
        divisor: 1,
        unit: "op",
        run,
    };
    let per_await = |imp, run| Twin {
        bench: "AwaitOverhead/ready",
        imp,
        n: 10,
        divisor: await_fns::AWAITS,
        unit: "await",
        run,
    };
    let mut t = vec![
        per_op("ChildCreateDrop", "ctx", 2000, |n| {
            let (root, _cancel) = ops::ctx::live_root();
            windows(n, || ops::ctx::child_create_drop(&root));
        }),
        per_op("ChildCreateDrop", "tokio_util", 2000, |n| {
            let root = ops::token::live_root();
            windows(n, || ops::token::child_create_drop(&root));
        }),
        per_op("CreateCancelDrop", "ctx", 2000, |n| {
            let (root, _cancel) = ops::ctx::live_root();
            windows(n, || ops::ctx::create_cancel_drop(&root));
        }),
        per_op("CreateCancelDrop", "tokio_util", 2000, |n| {
            let root = ops::token::live_root();
            windows(n, || ops::token::create_cancel_drop(&root));
        }),
        per_op("CancelChildren/n=1000", "ctx", 10, |n| {
            let mut children = Vec::with_capacity(1000);
            windows(n, || ops::ctx::cancel_children(1000, &mut children));
        }),
        per_op("CancelChildren/n=1000", "tokio_util", 10, |n| {
            let mut children = Vec::with_capacity(1000);
            windows(n, || ops::token::cancel_children(1000, &mut children));
        }),
    ];
    // fn pointers cannot capture the depth: one (ctx, tokio-util) pair per depth.
    type Runs = (fn(usize), fn(usize));
    let trees: [Runs; 4] = [
        (
            |n| cancel_tree_ctx(DEPTHS[0], n),
            |n| cancel_tree_tokio_util(DEPTHS[0], n),
        ),
        (
            |n| cancel_tree_ctx(DEPTHS[1], n),
            |n| cancel_tree_tokio_util(DEPTHS[1], n),
        ),
        (
            |n| cancel_tree_ctx(DEPTHS[2], n),
            |n| cancel_tree_tokio_util(DEPTHS[2], n),
        ),
        (
            |n| cancel_tree_ctx(DEPTHS[3], n),
            |n| cancel_tree_tokio_util(DEPTHS[3], n),
        ),
    ];
    let names = [
        "CancelTree/depth=1/Root=OpenCanceler",
        "CancelTree/depth=10/Root=OpenCanceler",
        "CancelTree/depth=100/Root=OpenCanceler",
        "CancelTree/depth=1000/Root=OpenCanceler",
    ];
    for ((name, depth), (ctx_run, tok_run)) in names.into_iter().zip(DEPTHS).zip(trees) {
        let n = (2000 / depth).max(10);
        t.push(per_op(name, "ctx", n, ctx_run));
        t.push(per_op(name, "tokio_util", n, tok_run));
    }
    t.extend([
        per_op("FanoutCancel/n=1000", "ctx", 5, |n| {
            let rt = common::runtime();
            windows_with_setup(n, || ops::fanout_ctx(rt, 1000), |op| op.cancel_and_wait());
        }),
        per_op("FanoutCancel/n=1000", "tokio_util", 5, |n| {
            let rt = common::runtime();
            windows_with_setup(
                n,
                || ops::fanout_tokio_util(rt, 1000),
                |op| op.cancel_and_wait(),
            );
        }),
        per_op("TimeoutDrop", "ctx", 1000, |n| {
            let _rt = common::runtime().enter();
            let (root, _cancel) = ops::ctx::live_root();
            windows(n, || ops::ctx::timeout_drop(&root));
        }),
        per_op("TimeoutDrop", "tokio_util", 1000, |n| {
            let _rt = common::runtime().enter();
            let root = ops::token::live_root();
            windows(n, || ops::token::timeout_drop(&root));
        }),
        per_op("ContextCancelDone", "ctx", 2000, |n| {
            let (ctx, _cancel) = ops::ctx::live_root();
            windows(n, || {
                black_box(ops::ctx::cancel_done_poll(&ctx));
            });
        }),
        per_op("ContextCancelDone", "tokio_util", 2000, |n| {
            let token = ops::token::live_root();
            windows(n, || {
                black_box(ops::token::cancel_done_poll(&token));
            });
        }),
        per_await("plain", |n| {
            let ctx = &await_fns::live().0;
            windows(n, || {
                black_box(await_fns::run_ready(await_fns::ready_plain(black_box(ctx))));
            });
        }),
        per_await("ctx", |n| {
            let ctx = &await_fns::live().0;
            windows(n, || {
                black_box(await_fns::run_ready(await_fns::ready_ctx(black_box(ctx))));
            });
        }),
        per_await("select", |n| {
            let token = &await_fns::live().2;
            windows(n, || {
                black_box(await_fns::run_ready(await_fns::ready_select(black_box(
                    token,
                ))));
            });
        }),
        per_await("run_until_cancelled", |n| {
            let token = &await_fns::live().2;
            windows(n, || {
                black_box(await_fns::run_ready(await_fns::ready_until(black_box(
                    token,
                ))));
            });
        }),
        per_await("abortable", |n| {
            let ctx = &await_fns::live().0;
            windows(n, || {
                black_box(await_fns::run_ready(await_fns::abortable(
                    await_fns::ready_plain(black_box(ctx)),
                )));
            });
        }),
    ]);
    t
}

const USAGE: &str = "usage: instructions list | instructions run <bench> <impl> [n]
(run under valgrind --tool=callgrind --instr-atstart=no by bench/compare; see bench/README.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let twins = twins();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => {
            for t in &twins {
                println!("{}\t{}\t{}\t{}\t{}", t.bench, t.imp, t.n, t.divisor, t.unit);
            }
            ExitCode::SUCCESS
        }
        ["run", bench, imp, rest @ ..] => {
            let Some(twin) = twins.iter().find(|t| t.bench == *bench && t.imp == *imp) else {
                eprintln!("instructions: no twin {bench} / {imp}; `instructions list` shows them");
                return ExitCode::from(2);
            };
            let n = match rest {
                [] => twin.n,
                [n] => match n.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        eprintln!("instructions: n must be a positive integer, not {n:?}");
                        return ExitCode::from(2);
                    }
                },
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            };
            println!(
                "#instr\t{}\t{}\t{}\t{}\t{}",
                twin.bench, twin.imp, n, twin.divisor, twin.unit
            );
            (twin.run)(n);
            ExitCode::SUCCESS
        }
        // `cargo bench -p ctx-runtime` runs every bench target with `--bench`:
        // nothing to time here without valgrind.
        args if args.contains(&"--bench") => {
            eprintln!("instructions: counts instructions only under callgrind; {USAGE}");
            ExitCode::SUCCESS
        }
        // `cargo test --benches` runs it with no arguments: every op, once
        // per window, as a smoke test.
        [] => {
            for t in &twins {
                (t.run)(1);
            }
            println!("instructions: {} twins ran", twins.len());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
