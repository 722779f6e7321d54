"""Output proportional to the households, not the area: a whole city's street register (issue 11).

343 street polygons over 16,000 km² with 2,300 households in five settlements (tools.synthetic.make_city).
Runs gridcover's analysis as it is (empty H3 cells kept only near households, buildings and facilities) and
the same analysis filling every H3 cell of the streets (``every_cell=True``, what gridcover did before), in
one run, prints both times, cell counts and the ratio, and checks that every household gets the same answer.

    python bench/bench_city.py

``--households N --baseline CHECKOUT`` (issue 16): the whole analysis of the synthetic city of N households
that bench/bench_dask.py makes (streets, roads, gates, facilities; cached in bench/data/), ``gridcover analyze``
single-process run by another checkout (the peer: e.g. main before the speed-ups, ``PYTHONPATH=CHECKOUT``) and
by this one, one after the other, each timed with the peak resident memory of its process sampled every
0.2 s; then every output file of the two runs compared (GeoJSON and CSV byte for byte, report.html but
for folium's random element ids; summary.json and trend.json without the run's timings and workspace id;
every layer of workspace.gpkg by its fields, types and rows, the snapshot's ``recorded`` time aside). Prints both, the ratio, and the differences (goal: ≥ 2× faster, no difference).

    python bench/bench_city.py --households 1000000 --baseline /work/main
    python bench/bench_city.py --households 200000 --baseline /work/main --keep /tmp/city-out
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gridcover.engines.single import analyze  # noqa: E402
from tools.synthetic import make_city, write_district  # noqa: E402


def _timed(data: Path, every_cell: bool):
    started = time.perf_counter()
    analysis = analyze(data, every_cell=every_cell)
    return analysis, time.perf_counter() - started


def _run_checkout(checkout: Path, data: Path, out: Path) -> dict:
    """``gridcover analyze data --out out`` with ``checkout`` first on the path: seconds and peak GiB of the tree."""
    import psutil

    from bench_dask import tree_rss

    env = dict(os.environ, PYTHONPATH=str(checkout))
    cmd = [sys.executable, "-m", "gridcover.cli", "analyze", str(data), "--out", str(out), "--as-of", "2026-11-29",
           "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.2)
    _, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{checkout}: analyze failed ({proc.returncode}):\n{stderr[-2000:]}")
    return {"seconds": time.perf_counter() - started, "peak_gib": peak / 1024 ** 3}


#: What a report holds that differs from run to run: folium's element ids (a uuid4 hex each).
_FOLIUM_ID = re.compile(rb"_[0-9a-f]{32}(?![0-9a-f])")


def _without_run(value):
    """A summary/trend document without what differs from run to run (timings, workspace id, creation time)."""
    if isinstance(value, dict):
        return {k: _without_run(v) for k, v in value.items() if k not in ("timings_s", "workspace_id", "created")}
    if isinstance(value, list):
        return [_without_run(v) for v in value]
    return value


def _gpkg_differences(a: Path, b: Path) -> list[str]:
    import pyogrio

    out = []
    layers_a = [tuple(row) for row in pyogrio.list_layers(a)]
    if layers_a != [tuple(row) for row in pyogrio.list_layers(b)]:
        return [f"{a.name}: layers differ"]
    for name, _ in layers_a:
        if name == "gridcover_meta":
            ra = dict(sqlite3.connect(a).execute("SELECT key, value FROM gridcover_meta").fetchall())
            rb = dict(sqlite3.connect(b).execute("SELECT key, value FROM gridcover_meta").fetchall())
            ra["summary"], rb["summary"] = (_without_run(json.loads(r["summary"])) for r in (ra, rb))
            if {k: v for k, v in ra.items() if k not in ("workspace_id", "created")} != \
                    {k: v for k, v in rb.items() if k not in ("workspace_id", "created")}:
                out.append(f"{a.name}:{name} differs")
            continue
        ia, ib = pyogrio.read_info(a, layer=name), pyogrio.read_info(b, layer=name)
        if list(ia["fields"]) != list(ib["fields"]) or list(ia["dtypes"]) != list(ib["dtypes"]) or \
                ia["geometry_type"] != ib["geometry_type"] or ia["features"] != ib["features"]:
            out.append(f"{a.name}:{name}: fields, types or counts differ")
        else:
            rows_a, rows_b = (pyogrio.read_dataframe(p, layer=name) for p in (a, b))
            if name == "scorecard_history":  # when this run's snapshot was recorded
                rows_a, rows_b = (r.drop(columns="recorded", errors="ignore") for r in (rows_a, rows_b))
            if not rows_a.equals(rows_b):
                out.append(f"{a.name}:{name}: rows differ")
    return out


def compare_outputs(a: Path, b: Path) -> list[str]:
    """Every difference between two output folders of ``gridcover analyze`` but the run's own timings and ids."""
    names_a, names_b = sorted(p.name for p in a.iterdir()), sorted(p.name for p in b.iterdir())
    if names_a != names_b:
        return [f"files differ: {sorted(set(names_a) ^ set(names_b))}"]
    out = []
    for name in names_a:
        pa, pb = a / name, b / name
        if name.endswith(".gpkg"):
            out += _gpkg_differences(pa, pb)
        elif name in ("summary.json", "trend.json"):
            if _without_run(json.loads(pa.read_text())) != _without_run(json.loads(pb.read_text())):
                out.append(f"{name} differs")
        elif name.endswith(".html"):
            if _FOLIUM_ID.sub(b"_ID", pa.read_bytes()) != _FOLIUM_ID.sub(b"_ID", pb.read_bytes()):
                out.append(f"{name} differs (beyond folium's element ids)")
        elif pa.read_bytes() != pb.read_bytes():
            out.append(f"{name} differs")
    return out


def compare_checkouts(households: int, baseline: Path, keep: Path | None) -> None:
    """The 1,000,000-household city analysed by ``baseline`` and by this checkout (issue 16)."""
    from bench_dask import city

    data = city(households)
    with tempfile.TemporaryDirectory(prefix="bench-city-") as tmp:
        root = keep or Path(tmp)
        outs = {"baseline": root / "baseline", "this": root / "this"}
        for out in outs.values():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        rows = {}
        for label, checkout in (("baseline", baseline), ("this", ROOT)):
            rows[label] = _run_checkout(checkout, data, outs[label])
            load = os.getloadavg()
            print(f"{label:>8} ({checkout}): {rows[label]['seconds']:.1f} s, peak {rows[label]['peak_gib']:.2f} GiB; "
                  f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
        differences = compare_outputs(outs["baseline"], outs["this"])
        ratio = rows["baseline"]["seconds"] / rows["this"]["seconds"]
        print(f"{households:,} households ({data.name}): this checkout {ratio:.2f}x faster than the baseline; "
              f"outputs {'identical' if not differences else 'DIFFER: ' + '; '.join(differences)}; goal >= 2x and "
              f"identical: {'met' if ratio >= 2 and not differences else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, help="the bench_dask city of this size, against --baseline")
    parser.add_argument("--baseline", type=Path, help="the checkout to compare with (PYTHONPATH)")
    parser.add_argument("--keep", type=Path, help="keep both output folders here")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("OUT_A", "OUT_B"),
                        help="only compare two output folders (as the run does)")
    args = parser.parse_args()
    if args.compare:
        differences = compare_outputs(*args.compare)
        print("identical" if not differences else "DIFFER: " + "; ".join(differences))
        return
    if args.households:
        if not args.baseline:
            parser.error("--households needs --baseline")
        compare_checkouts(args.households, args.baseline.resolve(), args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="bench-city-") as tmp:
        data = Path(tmp) / "city"
        write_district(make_city(), data, fmt="geojson")
        ours, t_ours = _timed(data, False)
        full, t_full = _timed(data, True)
        cells_ours, cells_full = len(ours.h3_reach), len(full.h3_reach)
        a = ours.households.drop(columns="geometry").sort_index(axis=1)
        b = full.households.drop(columns="geometry").sort_index(axis=1)
        same = a.equals(b)
        print(f"gridcover (cells near the data): {t_ours:.1f} s, {cells_ours:,} H3 cells")
        print(f"every cell of the streets:       {t_full:.1f} s, {cells_full:,} H3 cells")
        print(f"ratio {t_full / t_ours:.1f}x; households answered alike: {same}; goal < 30 s: "
              f"{'met' if t_ours < 30 and same else 'NOT met'}")


if __name__ == "__main__":
    main()
