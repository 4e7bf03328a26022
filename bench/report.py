#!/usr/bin/env python3
"""Turns the raw output of bench/compare into BENCHMARKS.md and bench-results.tsv.

Inputs, all in one raw directory (bench/compare writes them):
  go-*.txt          `go test -bench ... -benchmem` output (Go's context package
                    and ours in bench/go); repeated runs (-count) are reduced to
                    the median.
  rust-*.txt        divan output of one `cargo bench --bench <name>` each.
  extra-*.tsv       measurements that are not benchmarks (compile cost):
                    `benchmark<TAB>impl<TAB>ns<TAB>bytes<TAB>allocs`, '#' comments,
                    empty fields for unknown values.
  #note lines       `#note<TAB>Family<TAB>text` in an extra-*.tsv or a rust-*.txt
                    (a bench binary prints them before divan's table): printed
                    under that family's table in BENCHMARKS.md.
  rust-status.tsv   `target<TAB>status<TAB>message`, one line per Rust bench
                    target bench/compare tried (status: ran, missing, failed).
  meta.tsv          `key<TAB>value` (mode, go binary, toolchain versions...).

How a Rust benchmark is found: the divan tree path (binary / module / fn /
args) holds one implementation segment (ctx, tokio_util, abortable, plain,
select, run_until_cancelled); the other segments, without the binary name
and divan's `t=N` thread nodes, name the benchmark with the same names as
Go's, e.g. `go_twins / ctx / CancelTree / depth=10 / Root=OpenCanceler`.
Matching ignores case and `_`, and `key=value` segments also match a bare
`value` (divan's `args = [10]` prints `10`). See bench/README.md.

Only the standard library: python3 (3.9+) as on Debian.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_instr  # noqa: E402
import report_wrk  # noqa: E402
from report_instr import Instr, fmt_instr  # noqa: E402

# ---------------------------------------------------------------------------
# Implementations and the catalogue of benchmarks and targets.

IMPL_NAMES = {
    "go": "Go context",
    "tokio_util": "tokio-util CancellationToken",
    "plain": "plain (no ctx)",
    "abortable": "futures Abortable",
    "select": "hand-written select! { biased; } on CancellationToken::cancelled()",
    "run_until_cancelled": "CancellationToken::run_until_cancelled",
    "ctx": "ctx",
}
IMPL_ORDER = list(IMPL_NAMES)

# Go benchmark names -> the names used here (and by the Rust twins).
GO_ALIASES = {
    "DeepValueSameGoRoutine": "DeepValueSameThread",
    "DeepValueNewGoRoutine": "DeepValueNewTask",
}

# Benchmarks measured with several threads: Go's RunParallel reports wall time
# divided by all operations of all goroutines, divan reports the time of one
# iteration on one thread. The Rust time is divided by the thread count (the
# `t=N` divan node, else PARALLEL_THREADS) to compare like with like.
PARALLEL_FAMILIES = {"CommonParentCancel", "WithTimeout", "ContextCancelDone"}
PARALLEL_THREADS = 2


@dataclass
class Comparison:
    peer: str
    # kind: "twin"  = Go twin: ratio <= target and fewer allocations than Go
    #       "ratio" = ratio <= target
    #       "lt"    = ratio < target (strictly faster)
    #       "bytes" = ctx's B/op <= target x the peer's
    #       "instr" = instructions (callgrind) ratio <= target, and the
    #                 wall-clock ratio of the same run <= `wall` (else the
    #                 wall clock contradicts the instruction count)
    #       "info"  = shown, no target, not in the TSV
    #       "instr_info" = instruction counts shown, no target, not in the TSV
    kind: str
    target: float | None = None
    wall: float | None = None  # "instr": the wall-clock bound
    max_ns: float | None = None  # absolute bound on ctx's ns/op
    max_allocs: float | None = None  # absolute bound on ctx's allocs/op
    note: str = ""


@dataclass
class Bench:
    name: str
    impls: list[str]
    comparisons: list[Comparison]
    what: str = ""
    go_name: str | None = None  # Go's figures come from this benchmark
    @property
    def family(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def case(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else ""


def twin(**kw) -> Comparison:
    return Comparison("go", "twin", 0.5, **kw)


def info(peer: str) -> Comparison:
    return Comparison(peer, "info")


# How far the wall-clock ratio may be above an instruction target before it
# contradicts the instruction count, when the issue gives no wall-clock bound
# of its own (bench/README.md, "Instruction counts").
WALL_SLACK = 1.10


def instr(peer: str, target: float, wall: float | None = None, note: str = "") -> Comparison:
    """Issue 14: instructions <= target, wall clock <= `wall` (default target x WALL_SLACK)."""
    return Comparison(peer, "instr", target, wall=wall if wall is not None else round(target * WALL_SLACK, 4),
                      note=note)


def instr_info(peer: str) -> Comparison:
    return Comparison(peer, "instr_info")


def catalogue() -> list[Bench]:
    b: list[Bench] = []
    GT = ["go", "tokio_util", "ctx"]
    b.append(Bench("CommonParentCancel", GT, [twin(), info("tokio_util")]))
    for c in (40, 4000, 400000):
        b.append(Bench(f"WithTimeout/concurrency={c}", ["go", "ctx"], [twin()]))
    for d in (1, 10, 100, 1000):
        for root in ("Background", "OpenCanceler", "ClosedCanceler"):
            tok = ([Comparison("tokio_util", "ratio", 0.7, note="cancel of a tree"), instr_info("tokio_util")]
                   if root == "OpenCanceler" else [info("tokio_util")])
            b.append(Bench(f"CancelTree/depth={d}/Root={root}", GT, [twin(), *tok]))
    b.append(Bench("CheckCanceled/Err", GT,
                   [twin(max_ns=1.0), Comparison("tokio_util", "ratio", 0.7, note="is_cancelled")]))
    b.append(Bench("CheckCanceled/Done", GT, [twin(), info("tokio_util")]))
    b.append(Bench("ContextCancelDone", GT, [twin(), info("tokio_util"), instr_info("tokio_util")]))
    for d in (10, 20, 30, 50, 100):
        b.append(Bench(f"DeepValueSameThread/depth={d}", ["go", "ctx"], [twin()]))
    for d in (10, 20, 30, 50, 100):
        b.append(Bench(f"DeepValueNewTask/depth={d}", ["go", "ctx"], [twin()]))
    for d in (10, 20, 30, 50, 100):
        b.append(Bench(f"DeepValueNewTaskCurrentThread/depth={d}", ["go", "ctx"], [twin()],
                       go_name=f"DeepValueNewTask/depth={d}"))
    # Ours (bench/go and their Rust twins).
    b.append(Bench("FanoutCancel/n=1000", GT,
                   [info("go"), Comparison("tokio_util", "ratio", 0.7, note="fan-out cancel"),
                    instr("tokio_util", 0.7, wall=1.0, note="fan-out")]))
    b.append(Bench("FanoutCancel/n=100000", GT,
                   [Comparison("go", "lt", 1.0, note="faster than goroutines"),
                    Comparison("tokio_util", "ratio", 0.7, note="fan-out cancel")]))
    b.append(Bench("ChildContextLive", GT, [twin(max_allocs=1.0), info("tokio_util"),
                                            Comparison("tokio_util", "bytes", 1.0, note="memory per node")]))
    b.append(Bench("DoneWaiter", GT, [twin(), info("tokio_util")]))
    b.append(Bench("WaitingDone", ["tokio_util", "ctx"], [info("tokio_util")]))
    # Rust only.
    b.append(Bench("ChildCreateDrop", ["tokio_util", "ctx"],
                   [Comparison("tokio_util", "ratio", 0.7, note="child creation+drop"),
                    instr("tokio_util", 0.7, wall=1.0, note="create + drop")]))
    b.append(Bench("CreateCancelDrop", ["tokio_util", "ctx"],
                   [instr("tokio_util", 0.7, wall=1.0, note="create + cancel + drop")]))
    b.append(Bench("CancelChildren/n=1000", ["tokio_util", "ctx"],
                   [instr("tokio_util", 0.7, wall=1.0, note="cancel of 1,000 children")]))
    b.append(Bench("TimeoutDrop", ["tokio_util", "ctx"],
                   [instr("tokio_util", 1.0, note="with_timeout vs child_token + sleep")]))
    AW = ["plain", "ctx", "abortable", "select", "run_until_cancelled"]
    b.append(Bench("AwaitOverhead/ready", AW,
                   [Comparison("plain", "ratio", 2.0), info("abortable"),
                    Comparison("select", "ratio", 0.1, note="10x cheaper"),
                    Comparison("run_until_cancelled", "ratio", 0.1, note="10x cheaper"),
                    instr("plain", 2.0, note="per await"), instr_info("abortable"),
                    instr_info("select"), instr_info("run_until_cancelled")]))
    b.append(Bench("AwaitOverhead/yield_now", AW,
                   [Comparison("plain", "ratio", 1.1), info("abortable"),
                    info("select"), info("run_until_cancelled")]))
    b.append(Bench("CompileCost/fns=200", ["plain", "ctx"], [Comparison("plain", "ratio", 1.5)]))
    for form in ("text", "prepared"):
        b.append(Bench(f"PostgresQuery/form={form}", ["plain", "ctx"],
                       [Comparison("plain", "ratio", 1.05, note="query_ctx vs query")]))
    return b


FAMILY_TEXT = {
    "CommonParentCancel": "Go `BenchmarkCommonParentCancel`: parallel (2 threads); per op a child of a shared cancelable parent (under a value), one value lookup, cancel. Go 1.23 folds its `x /= x + 1` loops away (x is provably 0), leaving two empty 100-iteration loops, which the Rust twin runs too.",
    "WithTimeout": "Go `BenchmarkWithTimeout`: parallel (2 threads) with `concurrency` live timeout contexts around; per op 10 `WithTimeout(root, 1h)` then their 10 cancels.",
    "CancelTree": "Go `BenchmarkCancelTree`: per op a chain of `depth` cancelable children built under the root (Background, a live cancelable root cancelled after, or an already-cancelled root).",
    "CheckCanceled": "Go `BenchmarkCheckCanceled`: per op one check of a cancelled context, `Err()` or a non-blocking `select` on `Done()`.",
    "ContextCancelDone": "Go `BenchmarkContextCancelDone`: parallel (2 threads); per op a non-blocking check of `Done()` on a live context.",
    "DeepValueSameThread": "Go `BenchmarkDeepValueSameGoRoutine`: per op a missing-key lookup through `depth` value layers.",
    "DeepValueNewTask": "Go `BenchmarkDeepValueNewGoRoutine`: per op start a goroutine (Rust: a task) that does the missing-key lookup, and wait for it. Rust: a task on the 2-worker runtime, spawned and joined from the bench thread, which is not a worker: **this measures tokio's cross-thread spawn and join** (two futex wake-ups) more than ctx. Go's waiting goroutine is on the scheduler, and its new goroutine usually runs on the same P: see `DeepValueNewTaskCurrentThread`.",
    "DeepValueNewTaskCurrentThread": "The second twin of Go `BenchmarkDeepValueNewGoRoutine` (same Go figures): the task is spawned on a current-thread runtime and joined by `block_on` on the bench thread, so it runs on the thread that waits for it, as Go's new goroutine usually runs on the P of the goroutine that waits. **This measures the spawn, the lookup and the join on one thread.**",
    "FanoutCancel": "bench/go `BenchmarkFanoutCancel`: N waiters (goroutines / tokio tasks on 2 workers), each on its own child of one root; time from `cancel()` of the root to the last waiter finished.",
    "ChildContextLive": "bench/go `BenchmarkChildContextLive`: per op one live child of a common root (kept until the end); allocations and bytes per live child.",
    "DoneWaiter": "bench/go `BenchmarkDoneWaiter`: per op a child plus a waiter blocked on its Done (goroutine / task awaiting `done()`); memory per waiter. The time includes each waiter reaching its wait: Go stops its timer after every goroutine has reached its receive, and the Rust op includes the task's first poll and registration (the last op of each 1,000-op divan sample waits until all of the sample's tasks have been polled once).",
    "ChildCreateDrop": "Rust only: per op create a child of a live root and drop it (dropping a `CancelHandle` cancels it).",
    "CreateCancelDrop": "Rust only: per op create a child of a live root, cancel it, drop it.",
    "CancelChildren": "Rust only: per op 1,000 children of a fresh root (kept), cancel the root, drop everything (a flat tree; `CancelTree` is a chain).",
    "TimeoutDrop": "Rust only: per op ctx `with_timeout(1h)` of a live root and its drop, against tokio-util `child_token()` plus a `tokio::time::sleep(1h)` polled once (so that it is on the timer wheel, as ctx's deadline is), both dropped; in the 2-worker runtime.",
    "WaitingDone": "Rust only: per op one more `done()` future (tokio-util: `cancelled()`) polled once and kept waiting on a context that many already wait on; the heap it adds, beyond its own size.",
    "AwaitOverhead": "Rust only: one call of an async fn doing 1,000 awaits of ready futures or `yield_now()`; ctx = `#[cancellable]`; `select!` races tokio-util's `cancelled()`. ns/op is per call (1,000 awaits); instructions are per await.",
    "PostgresQuery": "Rust only (issue 13): `client.query_ctx(&ctx, \"SELECT 1\", &[])` with a live cancellable context against tokio-postgres's plain `client.query`, on one connection to a local PostgreSQL (a throwaway cluster started by scripts/postgres); `text` sends the SQL (two round trips), `prepared` a prepared `Statement` (one round trip, where the overhead is the largest share). A current-thread runtime runs the call and the connection task. ns/op: medians of alternating pairs (see the note); B/op and allocs/op: divan.",
    "CompileCost": "Rust only: build time of a crate of 200 `#[cancellable]` fns (ctx) vs the same fns without the attribute (plain).",
}


def loose_key(name: str) -> str:
    """Family, then the other segments in any order, each without case, `_`,
    `-` and a `key=` prefix: `CancelTree/depth=10/Root=OpenCanceler` and
    `cancel_tree/OpenCanceler/10` have the same key."""
    segs = []
    for seg in name.split("/"):
        seg = seg.strip()
        if "=" in seg:
            seg = seg.split("=", 1)[1]
        segs.append(seg.lower().replace("_", "").replace("-", "").replace(" ", ""))
    return "/".join(segs[:1] + sorted(segs[1:]))


# ---------------------------------------------------------------------------
# Measurements.


@dataclass
class Measure:
    ns: float | None = None
    bytes: float | None = None
    allocs: float | None = None
    extra: dict[str, float] = field(default_factory=dict)  # Go custom metrics
    source: str = ""
    note: str = ""


GO_LINE = re.compile(r"^Benchmark(\S+)\s+(\d+)\s+(.*)$")


def parse_go(text: str) -> dict[str, list[Measure]]:
    """`go test -bench` output -> {name without Benchmark and -N: [runs]}."""
    out: dict[str, list[Measure]] = {}
    for line in text.splitlines():
        m = GO_LINE.match(line.strip())
        if not m:
            continue
        name = re.sub(r"-\d+$", "", m.group(1))
        fields = m.group(3).split()
        meas = Measure()
        for value, unit in zip(fields[0::2], fields[1::2]):
            try:
                v = float(value)
            except ValueError:
                continue
            if unit == "ns/op":
                meas.ns = v
            elif unit == "B/op":
                meas.bytes = v
            elif unit == "allocs/op":
                meas.allocs = v
            else:
                meas.extra[unit] = v
        out.setdefault(name, []).append(meas)
    return out


def median_measure(runs: list[Measure]) -> Measure:
    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    m = Measure(ns=med([r.ns for r in runs]), bytes=med([r.bytes for r in runs]),
                allocs=med([r.allocs for r in runs]))
    for unit in {u for r in runs for u in r.extra}:
        m.extra[unit] = med([r.extra.get(unit) for r in runs])
    if len(runs) > 1:
        m.note = f"median of {len(runs)} runs"
    return m


TIME_UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9,
              "m": 60e9, "h": 3600e9, "d": 86400e9}
BYTE_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
              "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_time(s: str) -> float | None:
    m = re.match(r"^\s*([0-9.]+)\s*(ps|ns|µs|us|ms|s|m|h|d)\s*$", s)
    return float(m.group(1)) * TIME_UNITS[m.group(2)] if m else None


def parse_bytes(s: str) -> float | None:
    m = re.match(r"^\s*([0-9.]+)\s*([KMGT]?i?B)\s*$", s)
    return float(m.group(1)) * BYTE_UNITS[m.group(2)] if m and m.group(2) in BYTE_UNITS else None


def parse_count(s: str) -> float | None:
    try:
        return float(s.strip())
    except ValueError:
        return None


DIVAN_COLS = ["fastest", "slowest", "median", "mean", "samples", "iters"]
DIVAN_NODE = re.compile(r"^(?P<prefix>(?:│  |   )*)(?P<branch>├─ |╰─ )(?P<name>.*?)(?:\s{2,}(?P<rest>.*))?$")
ALLOC_LABELS = {"max alloc:", "alloc:", "dealloc:", "grow:", "shrink:"}


@dataclass
class DivanLeaf:
    path: list[str]
    stats: dict[str, str]
    allocs: dict[str, tuple[dict[str, str], dict[str, str]]] = field(default_factory=dict)


def parse_divan(text: str) -> list[DivanLeaf]:
    """divan 0.1 tree output -> leaves with their full path and columns."""
    leaves: list[DivanLeaf] = []
    stack: list[str] = []
    current: DivanLeaf | None = None
    label: str | None = None
    pending: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if re.search(r"\bfastest\b.*\bslowest\b.*\bmedian\b", line) and not line.startswith(("│", "├", "╰", " ")):
            stack = [line.split()[0]]  # top level: the bench binary (crate) name
            current, label = None, None
            continue
        if not stack:
            continue  # compiler and cargo chatter, "Timer precision: ..."
        m = DIVAN_NODE.match(line)
        if m:
            depth = len(m.group("prefix")) // 3 + 1
            name = m.group("name").strip()
            del stack[depth:]
            stack.append(name)
            label = None
            cells = [c.strip() for c in line.split("│")]
            rest = (m.group("rest") or "").strip()
            first = rest.split("│", 1)[0].strip()
            if first and parse_time(first) is not None and len(cells) >= 6:
                cols = cells[-5:]
                stats = dict(zip(DIVAN_COLS, [first] + cols))
                current = DivanLeaf(list(stack), stats)
                leaves.append(current)
            else:
                current = None  # a parent node (or an ignored leaf)
            continue
        if current is None:
            continue
        cells = [c.strip() for c in line.split("│")]
        if len(cells) < 6:
            continue
        cols = dict(zip(DIVAN_COLS, cells[-6:]))
        if cols["fastest"] in ALLOC_LABELS:
            label = cols["fastest"].rstrip(":")
            pending = []
            continue
        if label is None:
            continue  # counter (throughput) rows
        pending.append(cols)
        if len(pending) == 2:
            current.allocs[label] = (pending[0], pending[1])
            label = None
    return leaves


def parse_notes(text: str) -> list[tuple[str, str]]:
    """`#note<TAB>Family<TAB>text` lines -> [(family, text)]."""
    out = []
    for line in text.splitlines():
        if line.startswith("#note\t"):
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) == 3 and parts[2].strip():
                out.append((parts[1].strip(), parts[2].strip()))
    return out


def split_rust_path(path: list[str]) -> tuple[str | None, str, int | None]:
    """-> (implementation, benchmark name, thread count) of a divan leaf path."""
    impl = None
    threads = None
    rest = []
    for seg in path[1:]:  # path[0] is the bench binary
        norm = seg.strip().lower().replace("-", "_")
        if impl is None and norm in IMPL_NAMES:
            impl = norm
            continue
        tm = re.fullmatch(r"t=(\d+)", seg.strip())
        if tm:
            threads = int(tm.group(1))
            continue
        rest.append(seg.strip())
    return impl, "/".join(rest), threads


def rust_measure(leaf: DivanLeaf, stat: str) -> Measure:
    m = Measure(ns=parse_time(leaf.stats.get(stat, "")), source="divan " + stat)
    if "alloc" in leaf.allocs:
        counts, sizes = leaf.allocs["alloc"]
        m.allocs = parse_count(counts["mean"])
        m.bytes = parse_bytes(sizes["mean"])
    else:
        m.allocs, m.bytes = 0.0, 0.0  # divan prints no alloc rows for zero allocations
    return m


# ---------------------------------------------------------------------------
# Formatting.


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1 and float(v).is_integer():
        return f"{v:,.0f}" + unit
    if a >= 100:
        s = f"{v:,.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3g}"
    return s + unit


def tsv_num(v: float | None) -> str:
    if v is None:
        return "NA"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.4g}"


def fmt_ratio(r: float | None) -> str:
    return "" if r is None else (f"{r:.3g}×" if r < 10 else f"{r:.0f}×")


def describe_target(c: Comparison) -> str:
    peer = IMPL_NAMES[c.peer]
    if c.kind in ("info", "instr_info"):
        return "none (for information)"
    if c.kind == "instr":
        return (f"instructions ≤ {c.target:g}×" + (f" ({c.note})" if c.note else "")
                + f", wall clock ≤ {c.wall:g}×")
    if c.kind == "bytes":
        return f"B/op ≤ {c.target:g}× ({c.note or 'memory'})"
    parts = []
    if c.kind == "lt":
        parts.append(f"< {c.target:g}× ({c.note or 'faster than ' + peer})")
    else:
        t = f"≤ {c.target:g}×"
        if c.note:
            t += f" ({c.note})"
        parts.append(t)
    if c.kind == "twin":
        parts.append("fewer allocs than Go")
    if c.max_ns is not None:
        parts.append(f"ctx ≤ {c.max_ns:g} ns")
    if c.max_allocs is not None:
        parts.append(f"ctx ≤ {c.max_allocs:g} alloc")
    return ", ".join(parts)


def instr_ratio(ci: Instr | None, pi: Instr | None) -> float | None:
    return ci.per_op / pi.per_op if ci and pi and pi.per_op else None


def judge(c: Comparison, ctx: Measure | None, peer: Measure | None,
          ci: Instr | None = None, pi: Instr | None = None) -> tuple[float | None, bool | None, str]:
    """-> (ratio, met, met in plain words); met None for information rows.
    The ratio is the wall-clock one (B/op for "bytes"); instruction rows
    use `ci` and `pi`, ctx's and the peer's instructions per op."""
    peer_name = IMPL_NAMES[c.peer]
    no_ctx = ctx is None or ctx.ns is None
    no_peer = peer is None or peer.ns is None
    wall = None if no_ctx or no_peer or not peer.ns else ctx.ns / peer.ns
    if c.kind in ("info", "instr_info"):
        return wall, None, "no target"
    if c.kind == "instr":
        ir = instr_ratio(ci, pi)
        if ir is None:
            return wall, False, "no: instructions not counted (run bench/compare without --skip-instr)"
        if ir > c.target:
            return wall, False, f"no: ctx runs {ir:.3g}× the instructions of {peer_name}, target ≤ {c.target:g}×"
        if wall is None:
            return wall, False, f"no: {ir:.3g}× in instructions, but no wall-clock ratio to check it against"
        if wall > c.wall:
            return wall, False, (f"no: {ir:.3g}× in instructions, but the wall clock contradicts it:"
                                 f" {wall:.3g}× > {c.wall:g}×")
        return wall, True, "yes"
    if c.kind == "bytes":
        if ctx is None or peer is None or ctx.bytes is None or peer.bytes is None or not peer.bytes:
            return None, False, "no: bytes per op not measured"
        r = ctx.bytes / peer.bytes
        if r > c.target:
            return r, False, f"no: ctx uses {fmt_num(ctx.bytes)} B/op, {peer_name} {fmt_num(peer.bytes)} ({r:.3g}×)"
        return r, True, "yes"
    if no_ctx and no_peer:
        return None, False, f"no: neither ctx nor {peer_name} measured yet"
    if no_ctx:
        return None, False, "no: ctx not yet measured"
    if no_peer:
        return None, False, f"no: {peer_name} not measured"
    ratio = ctx.ns / peer.ns if peer.ns else None
    misses = []
    if ratio is None:
        misses.append(f"{peer_name} took 0 ns")
    elif c.kind == "lt" and not ratio < c.target:
        misses.append(f"ctx is {fmt_ratio(ratio)} {peer_name}, needs < {c.target:g}×")
    elif c.kind != "lt" and not ratio <= c.target:
        misses.append(f"ctx takes {fmt_ratio(ratio)} the time of {peer_name}, target ≤ {c.target:g}×")
    if c.kind == "twin":
        ca, pa = ctx.allocs, peer.allocs
        if ca is None or pa is None:
            misses.append("allocations not measured")
        elif not (round(ca, 2) < round(pa, 2) or (round(pa, 2) == 0 and round(ca, 2) == 0)):
            misses.append(f"ctx makes {fmt_num(ca)} allocs/op, Go {fmt_num(pa)}")
    if c.max_ns is not None and ctx.ns > c.max_ns:
        misses.append(f"ctx takes {fmt_num(ctx.ns)} ns, target ≤ {c.max_ns:g} ns")
    # Rounded like the "fewer allocs than Go" rule: a parent's list growth,
    # amortised over many children, is not an allocation of the child.
    if c.max_allocs is not None and (ctx.allocs is None or round(ctx.allocs, 2) > c.max_allocs):
        misses.append(f"ctx makes {fmt_num(ctx.allocs)} allocs/op, target ≤ {c.max_allocs:g}")
    if misses:
        return ratio, False, "no: " + "; ".join(misses)
    return ratio, True, "yes"


# ---------------------------------------------------------------------------
# Machine and toolchains.


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_line() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    cores = os.cpu_count() or 0
    osname = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    osname = osname or platform.system()
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError):
        pass
    hv = ""
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Hypervisor vendor:"):
            hv = line.split(":", 1)[1].strip()
    virt = f", {hv} virtual machine" if hv else ""
    return f"{cpu}, {cores} cores{mem}{virt}; {osname}, Linux {platform.release()} {platform.machine()}"


def read_meta(raw: Path) -> dict[str, str]:
    meta: dict[str, str] = {}
    p = raw / "meta.tsv"
    if p.exists():
        for line in p.read_text().splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                meta[k] = v
    return meta


def cargo_lock_version(root: Path, name: str) -> str:
    p = root / "Cargo.lock"
    if not p.exists():
        return ""
    m = re.search(r'\[\[package\]\]\nname = "' + re.escape(name) + r'"\nversion = "([^"]+)"', p.read_text())
    return m.group(1) if m else ""


# ---------------------------------------------------------------------------


def instr_section(benches: list[Bench], results, instrs: dict[str, dict[str, Instr]],
                  problems: list[str], meta: dict[str, str]) -> list[str]:
    """The table of instruction counts, every pair with its wall-clock ratio."""
    if not instrs and not problems:
        return []
    lines = [
        "## Instruction counts (callgrind)",
        "",
        "Instructions per op counted by `valgrind --tool=callgrind` (all threads), per op ="
        " (I(2n) − I(n)) ÷ n, twice (*estimates*); per await for AwaitOverhead. The same code as the"
        " wall-clock twins (`ctx-runtime/benches/common/`), so each instruction ratio stands beside the"
        " wall-clock ratio of the same run. An instruction target is met only when the wall-clock ratio"
        f" does not contradict it: it must be at most the issue's wall-clock bound, or {WALL_SLACK:g}× the"
        " instruction target where the issue gives none (bench/README.md).",
        "",
        "| benchmark | ctx instr/op | against | its instr/op | instructions | wall clock | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in benches:
        gi = instrs.get(b.name, {})
        if not gi:
            continue
        for c, ratio, met, words in results[b.name]:
            if c.kind not in ("instr", "instr_info"):
                continue
            ci, pi = gi.get("ctx"), gi.get(c.peer)
            ir = instr_ratio(ci, pi)

            def est(i: Instr | None) -> str:
                if i is None:
                    return "not counted"
                a, z = i.estimates
                return fmt_instr(i) + ("" if a == z else f" ({a:,.1f} / {z:,.1f})")

            lines.append(f"| {b.name} | {est(ci)} | {IMPL_NAMES[c.peer]} | {est(pi)} | {fmt_ratio(ir) or '—'} |"
                         f" {fmt_ratio(ratio) or '—'} | {describe_target(c)} | {words} |")
    lines.append("")
    if problems:
        lines.append("Not counted: " + "; ".join(problems) + ".")
        lines.append("")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", required=True, type=Path, help="directory of raw outputs")
    ap.add_argument("--out", required=True, type=Path, help="where BENCHMARKS.md and bench-results.tsv go")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--rust-stat", choices=["median", "mean", "fastest"], default="median",
                    help="which divan column is the Rust ns/op (default: median)")
    args = ap.parse_args()
    raw: Path = args.raw
    meta = read_meta(raw)

    # measured[name][impl] = Measure
    measured: dict[str, dict[str, Measure]] = {}
    go_extra: dict[str, dict[str, float]] = {}
    for f in sorted(raw.glob("go-*.txt")):
        for name, runs in parse_go(f.read_text(errors="replace")).items():
            first, _, rest = name.partition("/")
            name = GO_ALIASES.get(first, first) + (("/" + rest) if rest else "")
            m = median_measure(runs)
            m.source = f.name
            measured.setdefault(name, {})["go"] = m
            if m.extra:
                go_extra[name] = m.extra

    benches = catalogue()
    # A second Rust twin of one Go benchmark gets Go's figures too.
    for b in benches:
        if b.go_name and "go" in measured.get(b.go_name, {}):
            measured.setdefault(b.name, {})["go"] = measured[b.go_name]["go"]
    by_loose = {loose_key(b.name): b for b in benches}
    instrs, instr_problems = report_instr.read_instr(raw)
    wrk_runs = report_wrk.read_wrk(raw)
    notes: dict[str, list[str]] = {}
    for f in sorted(raw.glob("rust-*.txt")) + sorted(raw.glob("extra-*.tsv")):
        for fam, text in parse_notes(f.read_text(errors="replace")):
            notes.setdefault(fam, []).append(text)
    unknown_rust: list[tuple[str, str, Measure]] = []
    for f in sorted(raw.glob("rust-*.txt")):
        for leaf in parse_divan(f.read_text(errors="replace")):
            impl, name, threads = split_rust_path(leaf.path)
            m = rust_measure(leaf, args.rust_stat)
            m.source = f"{f.name}: {' / '.join(leaf.path)}"
            bench = by_loose.get(loose_key(name))
            if impl is None or bench is None:
                unknown_rust.append((" / ".join(leaf.path), impl or "?", m))
                continue
            parallel = bench.family in PARALLEL_FAMILIES
            if threads is not None and threads != (PARALLEL_THREADS if parallel else 1):
                # e.g. divan `threads = [1, 2]`: only the thread count Go uses is compared.
                unknown_rust.append((" / ".join(leaf.path), impl, m))
                continue
            if parallel and m.ns is not None:
                t = threads or PARALLEL_THREADS
                m.ns /= t
                m.note = f"divan {args.rust_stat} per thread ÷ {t} threads"
            measured.setdefault(bench.name, {})[impl] = m
    for f in sorted(raw.glob("extra-*.tsv")):
        for line in f.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cols = (line.split("\t") + ["", "", "", ""])[:5]
            name, impl, ns, by, al = cols
            num = lambda s: float(s) if s.strip() else None  # noqa: E731
            bench = by_loose.get(loose_key(name))
            key = bench.name if bench else name
            m = Measure(num(ns), num(by), num(al), source=f.name)
            earlier = measured.get(key, {}).get(impl)
            if earlier is not None:
                # A time measured another way (PostgresQuery's alternating
                # pairs) replaces divan's; divan's allocation figures stay.
                m.bytes = m.bytes if m.bytes is not None else earlier.bytes
                m.allocs = m.allocs if m.allocs is not None else earlier.allocs
            measured.setdefault(key, {})[impl] = m

    status: list[tuple[str, str, str]] = []
    p = raw / "rust-status.tsv"
    if p.exists():
        for line in p.read_text().splitlines():
            parts = (line.split("\t") + ["", ""])[:3]
            if parts[0]:
                status.append((parts[0], parts[1], parts[2]))

    # ---- evaluate
    tsv_rows = []
    results: dict[str, list[tuple[Comparison, float | None, bool | None, str]]] = {}
    for b in benches:
        got = measured.get(b.name, {})
        gi = instrs.get(b.name, {})
        for c in b.comparisons:
            ratio, met, words = judge(c, got.get("ctx"), got.get(c.peer), gi.get("ctx"), gi.get(c.peer))
            results.setdefault(b.name, []).append((c, ratio, met, words))
            if c.kind in ("info", "instr_info"):
                continue
            cm, pm = got.get("ctx"), got.get(c.peer)
            if c.kind == "bytes":
                ctx_v, peer_v = (cm.bytes if cm else None), (pm.bytes if pm else None)
            else:
                ctx_v, peer_v = (cm.ns if cm else None), (pm.ns if pm else None)
            ci, pi = gi.get("ctx"), gi.get(c.peer)
            ir = instr_ratio(ci, pi)
            tsv_rows.append([b.name, c.peer.replace("_", "-"), tsv_num(ctx_v), tsv_num(peer_v),
                             "NA" if ratio is None else f"{ratio:.4f}",
                             f"{c.wall if c.kind == 'instr' else c.target:g}", "yes" if met else "no",
                             tsv_num(ci.per_op if ci else None), tsv_num(pi.per_op if pi else None),
                             "NA" if ir is None else f"{ir:.4f}",
                             f"{c.target:g}" if c.kind == "instr" else "NA"])
    wrk_verdicts = report_wrk.verdicts(wrk_runs) if wrk_runs or meta.get("wrk") == "expected" else []
    for v in wrk_verdicts:
        tsv_rows.append(v.tsv + ["NA", "NA", "NA", "NA"])

    n_targets = len(tsv_rows)
    n_met = sum(1 for r in tsv_rows if r[6] == "yes")
    n_unmeasured = sum(1 for r in tsv_rows if r[2] == "NA")

    # ---- BENCHMARKS.md
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rustc = meta.get("rustc") or run(["rustc", "-V"])
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/compare (bench/report.py); do not edit by hand. -->",
        "",
        f"- **Date:** {date}",
        f"- **Machine:** {meta.get('machine') or machine_line()}"
        + (f"; load average {meta['load_start']} at the start"
           + (f", {meta['load_rust']} when the Rust benchmarks started" if meta.get("load_rust") else "")
           + f", {meta['load_end']} at the end (the machine may be shared)" if meta.get("load_start") else ""),
        f"- **Command:** `{meta.get('command', 'bench/compare')}` ({meta.get('mode', 'full')} mode"
        + (f", {meta['elapsed']} s" if meta.get("elapsed") else "")
        + (f", of which {meta['rust_build_s']} s the release build of the Rust benches"
           if meta.get("rust_build_s") else "")
        + (f", {meta['divan_s']} s the divan benches" if meta.get("divan_s") else "")
        + (f", {meta['wrk_s']} s the wrk step" if meta.get("wrk_s") else "")
        + (f" and {meta['compile_cost_s']} s bench/compile-cost" if meta.get("compile_cost_s") else "")
        + ")",
        *([f"- **Code:** commit {meta['git']}"] if meta.get("git") else []),
        f"- **Go:** {meta.get('go_version', '?')} (`{meta.get('go_binary', '?')}`), GOMAXPROCS=2 / `-cpu 2`,"
        f" {meta.get('go_flags', '')}",
        f"- **Rust:** {rustc or '?'}; divan {cargo_lock_version(args.root, 'divan') or '(not in Cargo.lock yet)'},"
        f" tokio {cargo_lock_version(args.root, 'tokio') or '?'},"
        f" tokio-util {cargo_lock_version(args.root, 'tokio-util') or '(not in Cargo.lock yet)'};"
        f" Rust ns/op = divan {args.rust_stat}, allocs and bytes = divan AllocProfiler mean"
        + (f"; divan flags {meta['divan_flags']}" if meta.get("divan_flags") else ""),
        *([f"- **Instructions:** {meta['instr']}"] if meta.get("instr") else []),
        *([f"- **wrk:** {meta['wrk_line']}"] if meta.get("wrk_line") else []),
        "",
        "ns/op is time per operation; B/op and allocs/op are heap bytes and allocations per operation",
        "(Go: `-benchmem`; Rust: divan's `AllocProfiler`). *ctx ÷ this* is ctx's ns/op divided by that",
        "row's: below 1 means ctx is faster. Parallel benchmarks report Go's wall time ÷ all operations;",
        "the Rust per-thread time is divided by the thread count to match.",
        "",
        f"**Targets met: {n_met} of {n_targets}**"
        + (f" ({n_unmeasured} not yet measured on the Rust side)." if n_unmeasured else "."),
        "",
    ]
    missing = [s for s in status if s[1] != "ran"]
    if missing:
        lines.append("Rust benchmark targets not run in this run:")
        lines.append("")
        for t, st, msg in missing:
            lines.append(f"- `{t}`: {st}: {msg}")
        lines.append("")

    lines.append("## Summary of targets")
    lines.append("")
    lines.append("*ctx ÷ peer* is the wall-clock ratio (B/op for a memory target); *instructions* is the"
                 " ratio of callgrind's instruction counts per op, where the target is on instructions.")
    lines.append("")
    lines.append("| benchmark | against | ctx ÷ peer | instructions | target | met |")
    lines.append("|---|---|---|---|---|---|")
    for b in benches:
        gi = instrs.get(b.name, {})
        for c, ratio, met, words in results[b.name]:
            if c.kind in ("info", "instr_info"):
                continue
            ir = instr_ratio(gi.get("ctx"), gi.get(c.peer)) if c.kind == "instr" else None
            lines.append(f"| {b.name} | {IMPL_NAMES[c.peer]} | {fmt_ratio(ratio) or '—'} |"
                         f" {fmt_ratio(ir)} | {describe_target(c)} | {words} |")
    for v in wrk_verdicts:
        lines.append(f"| CtxLayer (wrk)/handler={v.handler}/{v.metric} | without the layer |"
                     f" {'' if v.ratio is None else f'{v.ratio:.3g}×'} |  | {report_wrk.describe(v)} | {v.words} |")
    lines.append("")
    lines += instr_section(benches, results, instrs, instr_problems, meta)

    families: dict[str, list[Bench]] = {}
    for b in benches:
        families.setdefault(b.family, []).append(b)
    for fam, members in families.items():
        lines.append(f"## {fam}")
        lines.append("")
        if fam in FAMILY_TEXT:
            lines.append(FAMILY_TEXT[fam])
            lines.append("")
        has_instr = any(b.name in instrs for b in members)
        lines.append("| case | implementation | ns/op | B/op | allocs/op |" + (" instr/op |" if has_instr else "")
                     + " ctx ÷ this | target | met |")
        lines.append("|---|---|---|---|---|" + ("---|" if has_instr else "") + "---|---|---|")
        extras = []
        for b in members:
            got = measured.get(b.name, {})
            gi = instrs.get(b.name, {})
            comps: dict[str, list] = {}
            for c, ratio, met, words in results[b.name]:
                if c.kind != "instr_info":
                    comps.setdefault(c.peer, []).append((c, ratio, met, words))
            first = True
            for impl in sorted(b.impls, key=IMPL_ORDER.index):
                m = got.get(impl)
                case = (b.case or b.name) if first else ""
                first = False
                if m is None or m.ns is None:
                    cells = ["not measured" if impl == "go" else "not yet measured", "", ""]
                else:
                    cells = [fmt_num(m.ns), fmt_num(m.bytes), fmt_num(m.allocs)]
                if has_instr:
                    cells.append(fmt_instr(gi.get(impl)))
                rows = comps.get(impl) or [None]
                for k, comp in enumerate(rows):
                    if comp is None:
                        more = ["", "", ""]
                    else:
                        c, ratio, met, words = comp
                        if c.kind == "instr":
                            ir = instr_ratio(gi.get("ctx"), gi.get(impl))
                            shown = f"{fmt_ratio(ir) or '—'} instr, {fmt_ratio(ratio) or '—'} wall"
                        else:
                            shown = fmt_ratio(ratio) or "—"
                        more = [shown, describe_target(c), words]
                    head = [case if k == 0 else "", IMPL_NAMES[impl] if k == 0 else ""]
                    body = cells if k == 0 else [""] * len(cells)
                    lines.append("| " + " | ".join(head + body + more) + " |")
                if m is not None and m.extra:
                    extras.append(f"{b.name}, {IMPL_NAMES[impl]}: " + ", ".join(
                        f"{fmt_num(v)} {u}" for u, v in sorted(m.extra.items())))
        lines.append("")
        if extras:
            lines.append("Other metrics: " + "; ".join(extras) + ".")
            lines.append("")
        for text in notes.pop(fam, []):
            lines.append(text)
            lines.append("")

    lines += report_wrk.section(wrk_runs, meta, raw)

    if notes:
        lines.append("## Other notes")
        lines.append("")
        for fam, texts in notes.items():
            for text in texts:
                lines.append(f"- {fam}: {text}")
        lines.append("")
    if unknown_rust:
        lines.append("## Other Rust measurements")
        lines.append("")
        lines.append("Divan leaves whose name matches no benchmark above (see bench/README.md for the naming).")
        lines.append("")
        lines.append("| divan path | implementation | ns/op | B/op | allocs/op |")
        lines.append("|---|---|---|---|---|")
        for path, impl, m in unknown_rust:
            lines.append(f"| {path} | {impl} | {fmt_num(m.ns)} | {fmt_num(m.bytes)} | {fmt_num(m.allocs)} |")
        lines.append("")
    extra_go = [n for n in measured if n not in {b.name for b in benches}]
    if extra_go:
        lines.append("## Other measurements")
        lines.append("")
        lines.append("| benchmark | implementation | ns/op | B/op | allocs/op |")
        lines.append("|---|---|---|---|---|")
        for n in sorted(extra_go):
            for impl, m in measured[n].items():
                lines.append(f"| {n} | {IMPL_NAMES.get(impl, impl)} | {fmt_num(m.ns)} | {fmt_num(m.bytes)} | {fmt_num(m.allocs)} |")
        lines.append("")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "BENCHMARKS.md").write_text("\n".join(lines))
    with open(args.out / "bench-results.tsv", "w") as f:
        f.write("benchmark\tpeer\tctx_ns\tpeer_ns\tratio\ttarget_ratio\tmet"
                "\tctx_instr\tpeer_instr\tinstr_ratio\tinstr_target\n")
        for r in tsv_rows:
            f.write("\t".join(r) + "\n")
    print(f"report: {n_met}/{n_targets} targets met, {n_unmeasured} not yet measured; "
          f"wrote {args.out / 'BENCHMARKS.md'} and {args.out / 'bench-results.tsv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
