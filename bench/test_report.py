#!/usr/bin/env python3
"""Tests of bench/report.py on recorded outputs: `python3 bench/test_report.py`.

testdata/divan-0.1.21.txt is real divan 0.1.21 output (AllocProfiler on) of a
throwaway bench crate laid out as the ctx-runtime benches are meant to be;
testdata/go-sample.txt is lines of a real `go test -bench` run;
testdata/callgrind/CreateCancelDrop--ctx/ is a real run of the `instructions`
harness under callgrind 3.19 (its stdout and its five window dumps);
testdata/wrk/wrk-ready-on-1.txt is real `wrk --latency` 4.1.0 output against
ctx-bench-server.
"""

import shutil
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import report_instr  # noqa: E402
import report_wrk  # noqa: E402

DIVAN = (HERE / "testdata" / "divan-0.1.21.txt").read_text()
GO = (HERE / "testdata" / "go-sample.txt").read_text()


class ParseDivan(unittest.TestCase):
    def setUp(self):
        self.leaves = {" / ".join(l.path): l for l in report.parse_divan(DIVAN)}

    def test_paths(self):
        self.assertIn("go_twins / ctx / CommonParentCancel / t=2", self.leaves)
        self.assertIn("go_twins / ctx / CancelTree / Root=OpenCanceler / 10", self.leaves)
        self.assertIn("go_twins / tokio_util / CheckCanceled / Err", self.leaves)
        self.assertEqual(len(self.leaves), 8)

    def test_values(self):
        m = report.rust_measure(self.leaves["go_twins / tokio_util / CancelTree / Root=OpenCanceler / 10"], "median")
        self.assertAlmostEqual(m.ns, 131.7)
        self.assertEqual((m.allocs, m.bytes), (2.0, 240.0))
        m = report.rust_measure(self.leaves["go_twins / ctx / CheckCanceled / Err"], "median")
        self.assertAlmostEqual(m.ns, 0.187)
        self.assertEqual((m.allocs, m.bytes), (0.0, 0.0))
        m = report.rust_measure(self.leaves["go_twins / ctx / CheckCanceled / Err"], "mean")
        self.assertAlmostEqual(m.ns, 0.23)

    def test_split_path(self):
        impl, name, threads = report.split_rust_path(["go_twins", "ctx", "CommonParentCancel", "t=2"])
        self.assertEqual((impl, name, threads), ("ctx", "CommonParentCancel", 2))
        self.assertEqual(report.loose_key("CancelTree/Root=OpenCanceler/10"),
                         report.loose_key("CancelTree/depth=10/Root=OpenCanceler"))
        self.assertEqual(report.loose_key("deep_value_same_thread/10"),
                         report.loose_key("DeepValueSameThread/depth=10"))

    def test_units(self):
        self.assertAlmostEqual(report.parse_time("1.5 µs"), 1500)
        self.assertAlmostEqual(report.parse_time("2.053 ms"), 2.053e6)
        self.assertAlmostEqual(report.parse_bytes("1.5 KB"), 1500)
        self.assertAlmostEqual(report.parse_bytes("2 KiB"), 2048)


class Notes(unittest.TestCase):
    def test_parse(self):
        text = "#note\tWaitingDone\tsize_of: 16 B\n# not a note\n#note\tbroken\n"
        self.assertEqual(report.parse_notes(text), [("WaitingDone", "size_of: 16 B")])


class ParseGo(unittest.TestCase):
    def test_lines(self):
        got = report.parse_go(GO)
        self.assertAlmostEqual(got["CheckCanceled/Err"][0].ns, 5.482)
        fan = got["FanoutCancel/n=1000"][0]
        self.assertEqual((fan.ns, fan.bytes, fan.allocs), (978245, 9, 0))
        self.assertEqual(fan.extra["ns/task"], 1079)

    def test_median(self):
        runs = [report.Measure(ns=v, allocs=1) for v in (3, 1, 2)]
        self.assertEqual(report.median_measure(runs).ns, 2)


class EndToEnd(unittest.TestCase):
    def test_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            raw, out = Path(tmp, "raw"), Path(tmp, "out")
            raw.mkdir()
            (raw / "go-sample.txt").write_text(GO)
            (raw / "rust-go_twins.txt").write_text("#note\tCheckCanceled\tA note from a bench binary.\n" + DIVAN)
            (raw / "extra-compile-cost.tsv").write_text(
                "CompileCost/fns=200\tplain\t2000000000\t\t\n"
                "CompileCost/fns=200\tctx\t2500000000\t\t\n"
                "# a comment\n"
                "#note\tCompileCost\tHow it was measured.\n")
            (raw / "rust-status.tsv").write_text("go_twins\tran\t\nfanout\tmissing\tno target yet\n")
            argv = sys.argv
            sys.argv = ["report.py", "--raw", str(raw), "--out", str(out), "--root", str(HERE.parent)]
            try:
                self.assertEqual(report.main(), 0)
            finally:
                sys.argv = argv
            rows = {}
            lines = (out / "bench-results.tsv").read_text().splitlines()
            self.assertEqual(lines[0].split("\t"),
                             ["benchmark", "peer", "ctx_ns", "peer_ns", "ratio", "target_ratio", "met",
                              "ctx_instr", "peer_instr", "instr_ratio", "instr_target"])
            for line in lines[1:]:
                c = line.split("\t")
                self.assertEqual(len(c), 11)
                self.assertIn(c[6], ("yes", "no"))
                rows[(c[0], c[1])] = c
            # Parallel: divan's per-thread median 22.53 ns / 2 threads vs Go's 632.8 ns/op.
            r = rows[("CommonParentCancel", "go")]
            self.assertAlmostEqual(float(r[2]), 22.53 / 2, places=2)
            self.assertEqual(r[6], "yes")
            r = rows[("CancelTree/depth=10/Root=OpenCanceler", "tokio-util")]
            self.assertAlmostEqual(float(r[4]), 51.39 / 131.7, places=3)
            self.assertEqual(r[6], "yes")
            self.assertEqual(rows[("CheckCanceled/Err", "go")][6], "yes")
            r = rows[("WithTimeout/concurrency=40", "go")]
            self.assertEqual((r[2], r[3], r[6]), ("NA", "6774", "no"))
            md = (out / "BENCHMARKS.md").read_text()
            self.assertIn("| concurrency=40 | Go context | 6,774 | 2,720 | 40 |", md)
            self.assertIn("| ctx | not yet measured |", md)
            self.assertIn("`fanout`: missing: no target yet", md)
            r = rows[("CompileCost/fns=200", "plain")]
            self.assertEqual((r[4], r[6]), ("1.2500", "yes"))
            self.assertIn("A note from a bench binary.", md)
            self.assertIn("How it was measured.", md)
            self.assertLess(md.index("## CheckCanceled"), md.index("A note from a bench binary."))
            # t=1 is not what Go measures (-cpu 2): listed apart, not compared.
            self.assertIn("go_twins / ctx / CommonParentCancel / t=1", md)
            all_rows = [line.split("\t") for line in lines[1:]]
            met = sum(1 for r in all_rows if r[6] == "yes")
            self.assertIn(f"**Targets met: {met} of {len(all_rows)}**", md)
            self.assertGreater(met, 0)


class Instructions(unittest.TestCase):
    def test_real_callgrind_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp)
            shutil.copytree(HERE / "testdata" / "callgrind", raw / "callgrind")
            (raw / "callgrind" / "broken").mkdir()
            (raw / "callgrind" / "broken" / "stdout").write_text("")
            got, problems = report_instr.read_instr(raw)
        i = got["CreateCancelDrop"]["ctx"]
        # (3,192,002 - 1,596,002) / 2,000 in both pairs of windows.
        self.assertEqual(i.estimates, (798.0, 798.0))
        self.assertEqual((i.per_op, i.unit, i.n), (798.0, "op", 2000))
        self.assertEqual(len(problems), 1)
        self.assertIn("broken", problems[0])

    def test_per_await(self):
        est = report_instr.per_op({"a": 1000, "b": 31000, "c": 1000, "d": 33000}, 10, 1000)
        self.assertEqual(est, (3.0, 3.2))
        self.assertIsNone(report_instr.per_op({"a": 1, "b": 2}, 10, 1))

    def judge(self, instr_ratio, wall_ratio, c):
        ctx = report.Measure(ns=wall_ratio * 100)
        peer = report.Measure(ns=100)
        ci = report_instr.Instr(instr_ratio * 1000, (0, 0), "op", 1, "")
        pi = report_instr.Instr(1000, (0, 0), "op", 1, "")
        return report.judge(c, ctx, peer, ci, pi)

    def test_contradiction(self):
        tree = report.instr("tokio_util", 0.7, wall=1.0)
        self.assertTrue(self.judge(0.69, 0.99, tree)[1])
        _, met, words = self.judge(0.69, 1.01, tree)
        self.assertFalse(met)
        self.assertIn("contradicts", words)
        _, met, words = self.judge(0.71, 0.5, tree)
        self.assertFalse(met)
        self.assertIn("instructions", words)
        # No wall bound of its own: the target x WALL_SLACK.
        timeout = report.instr("tokio_util", 1.0)
        self.assertEqual(timeout.wall, 1.1)
        self.assertTrue(self.judge(1.0, 1.09, timeout)[1])
        self.assertFalse(self.judge(1.0, 1.11, timeout)[1])
        # Counted but not timed: not met.
        c = report.instr("tokio_util", 0.7, wall=1.0)
        ci = report_instr.Instr(1, (1, 1), "op", 1, "")
        self.assertFalse(report.judge(c, None, report.Measure(ns=1), ci, ci)[1])
        self.assertFalse(report.judge(c, report.Measure(ns=1), report.Measure(ns=1))[1])

    def test_bytes(self):
        c = report.Comparison("tokio_util", "bytes", 1.0)
        self.assertTrue(report.judge(c, report.Measure(ns=5, bytes=112), report.Measure(ns=1, bytes=112))[1])
        ratio, met, _ = report.judge(c, report.Measure(ns=1, bytes=120), report.Measure(ns=5, bytes=112))
        self.assertFalse(met)
        self.assertAlmostEqual(ratio, 120 / 112)


class Wrk(unittest.TestCase):
    def test_parse_real_output(self):
        run = report_wrk.parse_wrk((HERE / "testdata" / "wrk" / "wrk-ready-on-1.txt").read_text(), 1)
        self.assertEqual((run.rps, run.p50_us, run.p99_us, run.problems), (9163.02, 6050.0, 25280.0, []))
        self.assertEqual(run.requests, 18567)

    def test_server_cpu(self):
        # 185 ticks of 1/100 s over 18,567 requests.
        self.assertAlmostEqual(report_wrk.cpu_per_request("1000 1185 100\n", 18567), 1.85e6 / 18567)
        self.assertIsNone(report_wrk.cpu_per_request("", 18567))
        self.assertIsNone(report_wrk.cpu_per_request("1 2 100", None))
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp, "wrk")
            d.mkdir()
            shutil.copy(HERE / "testdata" / "wrk" / "wrk-ready-on-1.txt", d)
            (d / "cpu-ready-on-1.txt").write_text("1000 1185 100\n")
            runs = report_wrk.read_wrk(Path(tmp))
            md = "\n".join(report_wrk.section(runs, {}))
        self.assertAlmostEqual(runs[("ready", "on")][0].cpu_us, 1.85e6 / 18567)
        self.assertIn("| ready | on | 9,163 |", md)

    def test_units_and_errors(self):
        self.assertEqual(report_wrk.parse_latency("484.00us"), 484.0)
        self.assertEqual(report_wrk.parse_latency("1.20s"), 1.2e6)
        run = report_wrk.parse_wrk("  Socket errors: connect 0, read 3, write 0, timeout 0\n"
                                   "  Non-2xx or 3xx responses: 7\n")
        self.assertEqual(len(run.problems), 3)  # both, and no Requests/sec

    def test_verdicts(self):
        R = report_wrk.Run
        runs = {("ready", "off"): [R(1, 100.0, 500.0, 900.0), R(2, 110.0, 480.0, 1000.0), R(3, 90.0, 520.0, 950.0)],
                ("ready", "on"): [R(1, 98.0, 510.0, 940.0), R(2, 97.0, 530.0, 990.0), R(3, 99.0, 505.0, 1100.0)]}
        v = {(x.handler, x.metric): x for x in report_wrk.verdicts(runs)}
        t = v[("ready", "throughput")]
        self.assertEqual((t.ctx, t.peer, t.ratio, t.met), (98.0, 100.0, 0.98, True))
        p50 = v[("ready", "p50")]
        self.assertAlmostEqual(p50.ratio, 510 / 500)
        self.assertTrue(p50.met)
        self.assertTrue(v[("ready", "p99")].met)  # 990 / 950
        self.assertFalse(v[("yield", "throughput")].met)  # not measured
        row = t.tsv
        self.assertEqual(row[0], "CtxLayer/handler=ready/ns_per_request")
        self.assertEqual((row[2], row[3], row[6]), (f"{1e9 / 98:.0f}", f"{1e9 / 100:.0f}", "yes"))
        runs[("ready", "on")][1] = R(2, 90.0, 530.0, 990.0)
        runs[("ready", "on")][2] = R(3, 95.0, 505.0, 1100.0)
        v = {(x.handler, x.metric): x for x in report_wrk.verdicts(runs)}
        self.assertFalse(v[("ready", "throughput")].met)  # median 95 / 100


class ServerInstructions(unittest.TestCase):
    def test_per_request(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp, "wrk")
            d.mkdir()
            real = (HERE / "testdata" / "wrk" / "wrk-ready-on-1.txt").read_text()
            for layer, secs, reqs, instr in (("off", 2, 1000, 13_000_000), ("off", 6, 4000, 49_000_000),
                                             ("on", 2, 900, 14_000_000), ("on", 6, 3900, 59_000_000)):
                (d / f"callgrind-ready-{layer}-{secs}.out").write_text(f"events: Ir\ntotals: {instr}\n")
                (d / f"cgwrk-ready-{layer}-{secs}.txt").write_text(
                    real.replace("18567 requests in", f"{reqs} requests in"))
            got = report_wrk.read_instr_per_request(Path(tmp))
        self.assertEqual(got, {("ready", "off"): 12_000.0, ("ready", "on"): 15_000.0})


class SecondTwin(unittest.TestCase):
    def test_current_thread_twin_gets_gos_figures(self):
        with tempfile.TemporaryDirectory() as tmp:
            raw, out = Path(tmp, "raw"), Path(tmp, "out")
            raw.mkdir()
            (raw / "go-x.txt").write_text(
                "BenchmarkDeepValueNewGoRoutine/depth=10-2  1000  700 ns/op  48 B/op  2 allocs/op\n")
            argv = sys.argv
            sys.argv = ["report.py", "--raw", str(raw), "--out", str(out), "--root", str(HERE.parent)]
            try:
                self.assertEqual(report.main(), 0)
            finally:
                sys.argv = argv
            rows = [l.split("\t") for l in (out / "bench-results.tsv").read_text().splitlines()]
        peers = {r[0]: r[3] for r in rows if r[1] == "go"}
        self.assertEqual(peers["DeepValueNewTask/depth=10"], "700")
        self.assertEqual(peers["DeepValueNewTaskCurrentThread/depth=10"], "700")


if __name__ == "__main__":
    unittest.main()
