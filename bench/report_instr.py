"""Instruction counts from the callgrind step of bench/compare (issue 14).

bench/compare runs `instructions run <bench> <impl>` (ctx-runtime/benches/
instructions.rs) under `valgrind --tool=callgrind --instr-atstart=no`, one
directory per run under RAW/callgrind/: `stdout` holds the line
`#instr<TAB>bench<TAB>impl<TAB>n<TAB>divisor<TAB>unit`, and callgrind writes
one dump per window, `callgrind.out.<k>`, whose `desc: Trigger: Client
Request: <label>` names the window (warm, a, b, c, d) and whose `totals:`
line is the instruction count (Ir) of that window, all threads together.

Per op = (I(b) - I(a)) / n and (I(d) - I(c)) / n (b and d run 2n ops, a and
c n ops), divided by `divisor` for figures per await. The figure reported is
the mean of the two estimates; their difference shows how stable it is
(0 for single-threaded ops, a few percent for the fan-out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SPEC = re.compile(r"^#instr\t([^\t]+)\t([^\t]+)\t(\d+)\t(\d+)\t(\S+)\s*$", re.M)
TRIGGER = re.compile(r"^desc: Trigger: Client Request: (\S+)\s*$", re.M)
TOTALS = re.compile(r"^totals:\s+(\d+)", re.M)


@dataclass
class Instr:
    per_op: float
    estimates: tuple[float, float]
    unit: str  # "op" or "await"
    n: int
    source: str

    @property
    def spread(self) -> float:
        """Relative difference of the two estimates (0 = identical)."""
        a, b = self.estimates
        return abs(a - b) / self.per_op if self.per_op else 0.0


def parse_dump(text: str) -> tuple[str | None, int | None]:
    """One callgrind dump -> (window label, instruction count)."""
    label = TRIGGER.search(text)
    total = TOTALS.search(text)
    return (label.group(1) if label else None, int(total.group(1)) if total else None)


def per_op(windows: dict[str, int], n: int, divisor: int) -> tuple[float, float] | None:
    if not all(k in windows for k in "abcd") or n <= 0 or divisor <= 0:
        return None
    return ((windows["b"] - windows["a"]) / n / divisor, (windows["d"] - windows["c"]) / n / divisor)


def read_instr(raw: Path) -> tuple[dict[str, dict[str, Instr]], list[str]]:
    """-> ({bench: {impl: Instr}}, problems in plain words)."""
    out: dict[str, dict[str, Instr]] = {}
    problems: list[str] = []
    base = raw / "callgrind"
    if not base.is_dir():
        return out, problems
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        stdout = d / "stdout"
        spec = SPEC.search(stdout.read_text(errors="replace")) if stdout.exists() else None
        if spec is None:
            problems.append(f"{d.name}: no `#instr` line in its stdout (the run failed? see {d.name}/stderr)")
            continue
        bench, impl, n, divisor, unit = spec.group(1), spec.group(2), int(spec.group(3)), int(spec.group(4)), spec.group(5)
        windows: dict[str, int] = {}
        for f in d.glob("callgrind.out.*"):
            label, total = parse_dump(f.read_text(errors="replace"))
            if label is not None and total is not None:
                windows[label] = total
        est = per_op(windows, n, divisor)
        if est is None:
            problems.append(f"{bench} / {impl}: callgrind dumps of windows a-d missing (found {sorted(windows)})")
            continue
        mean = (est[0] + est[1]) / 2
        out.setdefault(bench, {})[impl] = Instr(mean, est, unit, n, f"callgrind/{d.name}")
    return out, problems


def fmt_instr(i: Instr | None) -> str:
    if i is None:
        return ""
    v = i.per_op
    s = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"
    return s if i.unit == "op" else f"{s} /{i.unit}"
