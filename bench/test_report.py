#!/usr/bin/env python3
"""Tests of bench/report.py on recorded outputs: `python3 bench/test_report.py`.

testdata/divan-0.1.21.txt is real divan 0.1.21 output (AllocProfiler on) of a
throwaway bench crate laid out as the ctx-runtime benches are meant to be;
testdata/go-sample.txt is lines of a real `go test -bench` run.
"""

import shutil
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402

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
                             ["benchmark", "peer", "ctx_ns", "peer_ns", "ratio", "target_ratio", "met"])
            for line in lines[1:]:
                c = line.split("\t")
                self.assertEqual(len(c), 7)
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


if __name__ == "__main__":
    unittest.main()
