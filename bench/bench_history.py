"""What the monthly snapshot costs `gridcover analyze` on the sample (goal: under 10%, issue 14).

Runs `gridcover analyze sample_geojson --out OUT --as-of 2026-11-30` as a user does (a fresh process each
time, wall clock), alternating two ways, on the same data:

* without: the snapshot switched off (no scorecard_history tables, no trend.json, no trend section in
  report.html): analyze as it was before snapshots were kept;
* with: the snapshot on, carrying forward the sample's eleven earlier month-ends (scorecard_history.csv) into
  an --out that already holds a workspace: the history read, merged, written, trend.json and the report's
  twelve-month charts (matplotlib).

Then, in one fresh process, the snapshot's own steps timed against the analysis without them (less exposed
to the load of a shared machine). Prints each run, the medians and the ratio. Usage::

    PYTHONPATH=. python bench/bench_history.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-30"


def _one(mode: str, out: str) -> int:
    """One analyze in this process, with the snapshot ``on`` or ``off``."""
    if mode == "off":
        import gridcover.io.outputs as outputs
        import layers.trend as trend
        from geo.history import History

        outputs.write_history = lambda *args, **kwargs: History.empty()
        trend.with_trend = lambda page, folder, **kwargs: page
    from gridcover.cli import main

    return main(["analyze", str(REPO / "sample_geojson"), "--out", out, "--as-of", AS_OF, *(["--quiet"] if not __import__("os").environ.get("BENCH_VERBOSE") else [])])


def _parts(out: str) -> int:
    """In one fresh process: the analysis and its outputs with the snapshot off, then the snapshot's own steps
    on the same analysis (history read and merged, tables written, trend.json, the report's charts including
    matplotlib's import): their time and share, less exposed to the machine's load than two whole runs."""
    import json
    import shutil

    import gridcover.io.outputs as outputs
    from geo.history import History
    from gridcover.engines.single import analyze
    from gridcover.io.history import earlier_history, write_history
    from layers.report import INDICATOR_NAMES, _t

    started = time.perf_counter()
    analysis = analyze(REPO / "sample_geojson", reference_date=__import__("datetime").date(2026, 11, 30))
    real = outputs.write_history
    outputs.write_history = lambda *args, **kwargs: History.empty()
    folder = outputs.write_outputs(analysis, Path(out) / "off")
    outputs.write_history = real
    base = time.perf_counter() - started
    scratch = Path(out) / "scratch"
    shutil.copytree(folder, scratch)
    started = time.perf_counter()
    earlier = earlier_history(out_dir=scratch, data_folder=REPO / "sample_geojson")
    write_history(analysis, scratch, earlier=earlier)
    from layers.trend import trend_section

    trend_section(json.loads((scratch / "trend.json").read_text(encoding="utf-8")), names=INDICATOR_NAMES, both=_t)
    snap = time.perf_counter() - started
    print(f"in one process: analyze + outputs without the snapshot {base:.2f} s; the snapshot's steps "
          f"({len(earlier.dates)} earlier snapshots read, tables, trend.json, charts) {snap:.2f} s: "
          f"+{snap / base * 100:.1f}%")
    return 0


def _timed(mode: str, out: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--one", mode, str(out)], capture_output=True, text=True,
                          cwd=REPO)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"analyze ({mode}) failed:\n{done.stderr[-2000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return _one(*args.one) if args.one[0] != "parts" else _parts(args.one[1])
    with tempfile.TemporaryDirectory(prefix="gridcover-bench-history-") as tmp:
        out = {"off": Path(tmp) / "off", "on": Path(tmp) / "on"}
        _timed("on", out["on"])  # warm the disk cache; --out now holds a workspace to carry forward
        _timed("off", out["off"])
        times = {"off": [], "on": []}
        for r in range(args.rounds):
            for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                times[mode].append(_timed(mode, out[mode]))
                print(f"round {r + 1}: snapshot {mode:>3}: {times[mode][-1]:6.2f} s", flush=True)
        import json

        trend = json.loads((out["on"] / "trend.json").read_text(encoding="utf-8"))
        months = sum(1 for day in trend["snapshots"].values() if day)
        parts = subprocess.run([sys.executable, __file__, "--one", "parts", tmp], capture_output=True, text=True,
                               cwd=REPO)
        print(parts.stdout.strip() or parts.stderr[-2000:])
    without, with_ = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"analyze sample_geojson, median of {args.rounds}: without the snapshot {without:.2f} s, with it "
          f"({months} monthly snapshots carried forward, trend.json, report charts) {with_:.2f} s: "
          f"ratio {with_ / without:.3f} (+{(with_ / without - 1) * 100:.1f}%; goal < +10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
