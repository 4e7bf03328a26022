"""The wrk step of bench/compare (issue 14): `CtxLayer` on a real server.

bench/compare starts `ctx-bench-server` (bench/server) on loopback and runs
`wrk -t1 -c64 -d<D>s --latency` against it, alternating the server with and
without the layer, for two handlers (`ready`: returns a short string;
`yield`: awaits `tokio::task::yield_now()` once first). Each run's output is
RAW/wrk/wrk-<handler>-<on|off>-<round>.txt.

Per handler: the median over rounds of requests/s, p50 and p99 latency (wrk's
latency distribution), their spread (min-max), and the layer's ratios of the
medians. Targets: requests/s at least 0.97x, p50 and p99 at most 1.05x
(within 5%). In bench-results.tsv the throughput is written as ns per
request (1e9 / requests per second), so that, as in every other row, the
ratio is ctx ÷ peer and lower is better: requests/s >= 0.97x is
ns/request <= 1/0.97.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

FILE = re.compile(r"^wrk-(?P<handler>[a-z_]+)-(?P<layer>on|off)-(?P<round>\d+)\.txt$")
HANDLERS = {
    "ready": "a handler returning a short string",
    "yield": "a handler that awaits `tokio::task::yield_now()` once, then returns the string",
}
MIN_RPS_RATIO = 0.97
MAX_LATENCY_RATIO = 1.05
TIME = {"us": 1.0, "ms": 1e3, "s": 1e6}


@dataclass
class Run:
    round: int
    rps: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    problems: list[str] = field(default_factory=list)
    requests: int | None = None
    cpu_us: float | None = None  # the server's CPU time per request (µs)


def parse_latency(s: str) -> float | None:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", s.strip())
    return float(m.group(1)) * TIME[m.group(2)] if m else None


def parse_wrk(text: str, round_: int = 0) -> Run:
    run = Run(round_)
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    run.rps = float(m.group(1)) if m else None
    for pct, attr in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)\s*$", text, re.M)
        setattr(run, attr, parse_latency(m.group(1)) if m else None)
    m = re.search(r"^\s+(\d+) requests in ", text, re.M)
    run.requests = int(m.group(1)) if m else None
    m = re.search(r"^\s+Non-2xx or 3xx responses:\s+(\d+)", text, re.M)
    if m:
        run.problems.append(f"{m.group(1)} non-2xx responses")
    m = re.search(r"^\s+Socket errors:(.*)$", text, re.M)
    if m:
        run.problems.append("socket errors:" + m.group(1))
    if run.rps is None:
        run.problems.append("no Requests/sec line")
    return run


def read_wrk(raw: Path) -> dict[tuple[str, str], list[Run]]:
    """-> {(handler, "on"|"off"): [runs, by round]}."""
    out: dict[tuple[str, str], list[Run]] = {}
    d = raw / "wrk"
    if not d.is_dir():
        return out
    for f in sorted(d.iterdir()):
        m = FILE.match(f.name)
        if not m:
            continue
        run = parse_wrk(f.read_text(errors="replace"), int(m.group("round")))
        cpu = f.with_name(f.name.replace("wrk-", "cpu-", 1))
        run.cpu_us = cpu_per_request(cpu.read_text() if cpu.exists() else "", run.requests)
        out.setdefault((m.group("handler"), m.group("layer")), []).append(run)
    for runs in out.values():
        runs.sort(key=lambda r: r.round)
    return out


def cpu_per_request(text: str, requests: int | None) -> float | None:
    """`<ticks before> <ticks after> <CLK_TCK>` (the server's utime + stime
    around the wrk run, from /proc/PID/stat) -> CPU µs per request."""
    parts = text.split()
    if len(parts) != 3 or not requests:
        return None
    try:
        before, after, hz = (float(p) for p in parts)
    except ValueError:
        return None
    return (after - before) / hz * 1e6 / requests if hz > 0 else None


def med(vals: list[float | None]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def spread(vals: list[float | None]) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return ""
    return f"{min(vals):,.0f}-{max(vals):,.0f}"


@dataclass
class Verdict:
    handler: str
    metric: str  # throughput, p50, p99
    ctx: float | None  # with the layer: requests/s or µs
    peer: float | None  # without
    ratio: float | None  # with ÷ without
    met: bool
    words: str

    @property
    def tsv(self) -> list[str]:
        """benchmark, peer, ctx_ns, peer_ns, ratio, target_ratio, met."""
        if self.metric == "throughput":
            c = 1e9 / self.ctx if self.ctx else None
            p = 1e9 / self.peer if self.peer else None
            target = 1 / MIN_RPS_RATIO
        else:
            c = self.ctx * 1e3 if self.ctx is not None else None
            p = self.peer * 1e3 if self.peer is not None else None
            target = MAX_LATENCY_RATIO
        ratio = c / p if c is not None and p else None
        num = lambda v: "NA" if v is None else f"{v:.0f}"  # noqa: E731
        name = f"CtxLayer/handler={self.handler}/" + ("ns_per_request" if self.metric == "throughput" else self.metric)
        return [name, "no-layer", num(c), num(p), "NA" if ratio is None else f"{ratio:.4f}",
                f"{target:.4g}", "yes" if self.met else "no"]


CG_FILE = re.compile(r"^callgrind-(?P<handler>[a-z_]+)-(?P<layer>on|off)-(?P<secs>\d+)\.out$")


def read_instr_per_request(raw: Path) -> dict[tuple[str, str], float]:
    """{(handler, on|off): instructions per request} from the callgrind runs
    of the server: (I(long) - I(short)) / (R(long) - R(short))."""
    d = raw / "wrk"
    points: dict[tuple[str, str], list[tuple[int, int]]] = {}
    if not d.is_dir():
        return {}
    for f in d.iterdir():
        m = CG_FILE.match(f.name)
        if not m:
            continue
        total = re.search(r"^totals:\s+(\d+)", f.read_text(errors="replace"), re.M)
        w = f.with_name(f"cgwrk-{m.group('handler')}-{m.group('layer')}-{m.group('secs')}.txt")
        reqs = re.search(r"^\s+(\d+) requests in ", w.read_text(errors="replace"), re.M) if w.exists() else None
        if total and reqs:
            points.setdefault((m.group("handler"), m.group("layer")), []).append(
                (int(reqs.group(1)), int(total.group(1))))
    out = {}
    for key, pts in points.items():
        if len(pts) >= 2:
            (r1, i1), (r2, i2) = min(pts), max(pts)
            if r2 > r1:
                out[key] = (i2 - i1) / (r2 - r1)
    return out


def verdicts(runs: dict[tuple[str, str], list[Run]]) -> list[Verdict]:
    out = []
    for handler in HANDLERS:
        on, off = runs.get((handler, "on"), []), runs.get((handler, "off"), [])
        for metric, attr in (("throughput", "rps"), ("p50", "p50_us"), ("p99", "p99_us")):
            c = med([getattr(r, attr) for r in on])
            p = med([getattr(r, attr) for r in off])
            ratio = c / p if c is not None and p else None
            if ratio is None:
                out.append(Verdict(handler, metric, c, p, None, False, "no: not measured"))
            elif metric == "throughput":
                ok = ratio >= MIN_RPS_RATIO
                out.append(Verdict(handler, metric, c, p, ratio, ok, "yes" if ok else
                                   f"no: {ratio:.3f}× the requests/s without the layer, target ≥ {MIN_RPS_RATIO}×"))
            else:
                ok = ratio <= MAX_LATENCY_RATIO
                out.append(Verdict(handler, metric, c, p, ratio, ok, "yes" if ok else
                                   f"no: {metric} {ratio:.3f}× without the layer, target ≤ {MAX_LATENCY_RATIO}×"))
    return out


def describe(v: Verdict) -> str:
    return f"≥ {MIN_RPS_RATIO}× requests/s" if v.metric == "throughput" else f"{v.metric} ≤ {MAX_LATENCY_RATIO}×"


def section(runs: dict[tuple[str, str], list[Run]], meta: dict[str, str], raw: Path | None = None) -> list[str]:
    """The BENCHMARKS.md section."""
    if not runs:
        return []
    lines = [
        "## CtxLayer on a real server (wrk)",
        "",
        f"`ctx-bench-server` (bench/server: axum 0.8, {meta.get('wrk_server', 'one tokio worker')}) on loopback,"
        f" loaded by `{meta.get('wrk_command', 'wrk -t1 -c64 -d10s --latency')}`"
        f" ({meta.get('wrk_version', 'wrk')}), with and without `CtxLayer`; the two servers alternate"
        " (each round runs both, in the opposite order from the round before), a fresh server per run."
        " Medians over the rounds; the spread is min-max. Ratios are with the layer ÷ without.",
        "",
        "| handler | layer | requests/s (median) | spread | p50 µs | spread | p99 µs | spread | server CPU µs/request | spread | rounds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    problems = []
    for handler, what in HANDLERS.items():
        for layer in ("off", "on"):
            rs = runs.get((handler, layer), [])
            if not rs:
                lines.append(f"| {handler} | {layer} | not measured | | | | | | 0 |")
                continue
            lines.append(
                f"| {handler} | {layer} | {fmt(med([r.rps for r in rs]))} | {spread([r.rps for r in rs])} |"
                f" {fmt(med([r.p50_us for r in rs]))} | {spread([r.p50_us for r in rs])} |"
                f" {fmt(med([r.p99_us for r in rs]))} | {spread([r.p99_us for r in rs])} |"
                f" {fmt2(med([r.cpu_us for r in rs]))} | {spread2([r.cpu_us for r in rs])} | {len(rs)} |")
            for r in rs:
                problems += [f"{handler}, layer {layer}, round {r.round}: {p}" for p in r.problems]
    lines.append("")
    lines.append("| handler | metric | with CtxLayer | without | ratio | per-round ratios | target | met |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for v in verdicts(runs):
        attr = {"throughput": "rps", "p50": "p50_us", "p99": "p99_us"}[v.metric]
        on = {r.round: getattr(r, attr) for r in runs.get((v.handler, "on"), [])}
        off = {r.round: getattr(r, attr) for r in runs.get((v.handler, "off"), [])}
        paired = sorted(on[k] / off[k] for k in on if k in off and on[k] is not None and off[k])
        pr = f"{paired[0]:.3f}-{paired[-1]:.3f} (median {statistics.median(paired):.3f})" if paired else ""
        unit = " req/s" if v.metric == "throughput" else " µs"
        lines.append(f"| {v.handler} | {v.metric} | {fmt(v.ctx)}{unit} | {fmt(v.peer)}{unit} |"
                     f" {'' if v.ratio is None else f'{v.ratio:.3f}×'} | {pr} | {describe(v)} | {v.words} |")
    lines.append("")
    for handler in HANDLERS:
        on = med([r.cpu_us for r in runs.get((handler, "on"), [])])
        off = med([r.cpu_us for r in runs.get((handler, "off"), [])])
        if on is not None and off:
            lines.append(f"Server CPU time per request, `{handler}`: {fmt2(on)} µs with the layer, {fmt2(off)} µs"
                         f" without ({on / off:.3f}×, {on - off:+.2f} µs; for information: the server's user + system"
                         " time from /proc during the wrk run ÷ the requests wrk counted, less moved by the"
                         " machine's load than requests/s).")
            lines.append("")
    ipr = read_instr_per_request(raw) if raw is not None else {}
    if ipr:
        lines.append("| handler | instructions per request without the layer | with CtxLayer | ratio | added |")
        lines.append("|---|---|---|---|---|")
        for handler in HANDLERS:
            off, on = ipr.get((handler, "off")), ipr.get((handler, "on"))
            if off is None or on is None:
                lines.append(f"| {handler} | {fmt(off) or 'not counted'} | {fmt(on) or 'not counted'} | | |")
            else:
                lines.append(f"| {handler} | {fmt(off)} | {fmt(on)} | {on / off:.3f}× | {on - off:+,.0f} |")
        lines.append("")
        lines.append("Instructions per request: the server run under `valgrind --tool=callgrind` (all threads),"
                     " loaded by `wrk -t1 -c8` for 2 s and for 6 s; per request = the difference of the two"
                     " counts ÷ the difference of the requests wrk counted, so that start-up and shutdown"
                     " cancel. The load of the machine does not move it; for information.")
        lines.append("")
    lines.append("Handlers: " + "; ".join(f"`{h}`: {w}" for h, w in HANDLERS.items()) + ".")
    lines.append("")
    if problems:
        lines.append("wrk reported: " + "; ".join(problems) + ".")
        lines.append("")
    return lines


def fmt2(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def spread2(vals: list[float | None]) -> str:
    vals = [v for v in vals if v is not None]
    return f"{min(vals):.2f}-{max(vals):.2f}" if vals else ""


def fmt(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"
