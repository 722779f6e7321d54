"""Benchmark: a synthetic city, ``gridcover analyze`` single-process vs ``--engine dask`` (local cluster).

Runs the real command on the same data for each size and engine, one after the other, sampling the resident
memory of the whole process tree (the command, the Dask scheduler, nanny and worker processes) every
0.2 s from /proc via psutil; a run whose tree passes ``--limit-gib`` is stopped and reported as out of
memory (the machine has 24 GiB; the limit leaves room for the system). Prints a table, the ratio of the
two engines, a linear fit of peak memory against households for each engine, the size at which each
reaches the machine's memory, and the projection to ``--project`` households (50 million by default).

Data: ``tools.synthetic`` (1 building per 10 households, 1 grid per 333, 10 grids a community, 10
communities a street: 1,000,000 households are 30 streets) plus ``tools.synthetic_network`` (street
centre lines along the block edges, facilities of every category, gates for 30% of the estates), cached
in bench/data/. Never run in CI.

    python bench/bench_dask.py                                  # 1M, 2M, 5M households
    python bench/bench_dask.py --sizes 200000 --engines single dask   # a quick run

Besides the whole tree it keeps each process's own peak: the command's process is the driver (a LocalCluster's
scheduler and nannies run inside it), its child processes are the workers. Where both engines finish at a size,
the two output folders are compared as tests/test_dask.py compares them (households by id, every feature and
field, summary.json but its timings, the scorecard byte for byte, the workspace's layers). The Dask run
assembles the single-file outputs up to 1,000,000 households and writes partitioned GeoParquet above
(``gridcover analyze --engine dask`` without ``--assemble``), so at 5,000,000 it is compared with nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
GIB = 1024 ** 3
MACHINE_GIB = psutil.virtual_memory().total / GIB


def city(households: int, seed: int = 0) -> Path:
    """The cached synthetic city of ``households`` households (generated on first use)."""
    buildings, grids = households // 10, max(1, households // 333)
    folder = DATA / f"city-v1-h{households}-b{buildings}-g{grids}-s{seed}"
    if not (folder / "roads.gpkg").exists():
        print(f"generating {folder.name} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "tools.synthetic", "--households", str(households), "--buildings",
                        str(buildings), "--grids", str(grids), "--seed", str(seed), "--out", str(folder),
                        "--format", "gpkg"], check=True, cwd=ROOT.parent)  # tools/ is not installed: the checkout
        subprocess.run([sys.executable, "-m", "tools.synthetic_network", str(folder), "--seed", str(seed)],
                       check=True, cwd=ROOT.parent)
    return folder


def sample_peaks(proc: psutil.Process, peaks: dict[int, int]) -> int:
    """Resident bytes of the tree now; ``peaks`` keeps each process's own peak (pid -> bytes)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        peaks[p.pid] = max(peaks.get(p.pid, 0), rss)
    return total


def run(data: Path, engine: str, *, limit_gib: float, out_root: Path) -> dict:
    out = out_root / f"{data.name}-{engine}"
    cmd = [sys.executable, "-m", "gridcover.cli", "analyze", str(data), "--out", str(out), "--engine", engine,
           "--as-of", "2026-11-29", "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ps = psutil.Process(proc.pid)
    peak, killed, peaks = 0, False, {}
    shown = time.perf_counter()
    while proc.poll() is None:
        rss = sample_peaks(ps, peaks)
        if time.perf_counter() - shown > 120:  # a long run says how far its peaks have got
            shown = time.perf_counter()
            others = sorted((v / GIB for k, v in peaks.items() if k != proc.pid), reverse=True)[:4]
            print(f"  … {shown - started:7.0f} s: tree {rss / GIB:.2f} GiB now, peak {max(peak, rss) / GIB:.2f}; "
                  f"driver peak {peaks.get(proc.pid, 0) / GIB:.2f}, children {[round(v, 2) for v in others]} GiB; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        peak = max(peak, rss)
        if rss > limit_gib * GIB:
            killed = True
            for child in ps.children(recursive=True):
                child.kill()
            proc.kill()
            break
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    status = "out of memory (stopped at the limit)" if killed else ("ok" if proc.returncode == 0 else
                                                                      f"failed ({proc.returncode})")
    if proc.returncode not in (0, None) and not killed:
        print(stderr[-2000:], file=sys.stderr)
    # the command's own process is the driver; the Dask workers are its child processes (the LocalCluster's
    # scheduler and nannies run inside the driver); the largest children are the workers
    children = sorted((v for k, v in peaks.items() if k != proc.pid), reverse=True)
    return {"households": int(data.name.split("-h")[1].split("-")[0]), "engine": engine, "status": status,
            "seconds": round(seconds, 1), "peak_gib": round(peak / GIB, 2), "out": str(out),
            "driver_peak_gib": round(peaks.get(proc.pid, 0) / GIB, 2),
            "worker_peaks_gib": [round(v / GIB, 2) for v in children[:8] if v > 200 * 1024 ** 2],
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "last_line": stdout.strip().splitlines()[-1] if stdout.strip() else ""}


def compare(single: Path, dask: Path) -> list[str]:
    """Every difference of two output folders, as the tests compare them (tests/test_dask.py)."""
    sys.path.insert(0, str(ROOT.parent))
    from tests.test_dask import _differences

    return _differences(single, dask)


def fit(rows: list[dict]) -> tuple[float, float] | None:
    """Peak GiB = a + b × households (least squares over the runs that finished)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len(ok) < 2:
        return None
    x = np.array([r["households"] for r in ok], float)
    y = np.array([r["peak_gib"] for r in ok], float)
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000])
    parser.add_argument("--engines", nargs="+", default=["single", "dask"], choices=["single", "dask"])
    parser.add_argument("--limit-gib", type=float, default=min(21.0, MACHINE_GIB - 2.5),
                        help="stop a run whose process tree passes this (default: 21 GiB, or the machine less 2.5)")
    parser.add_argument("--project", type=int, default=50_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_dask_out"))
    parser.add_argument("--keep", action="store_true", help="keep the output folders")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        data = city(n)
        for engine in args.engines:
            row = run(data, engine, limit_gib=args.limit_gib, out_root=args.out)
            rows.append(row)
            print(f"{n:>11,} {engine:>6}: {row['status']:<36} {row['seconds']:>8.1f} s  peak {row['peak_gib']:6.2f} GiB"
                  f" (driver {row['driver_peak_gib']:.2f} GiB, workers {row['worker_peaks_gib']} GiB; "
                  f"load average at the end {row['load_average']})", flush=True)
        done = [r for r in rows if r["households"] == n and r["status"] == "ok"]
        if len(done) == 2:  # both engines finished: are the outputs the same?
            differences = compare(Path(done[0]["out"]), Path(done[1]["out"]))
            for r in done:
                r["differences"] = differences
            print(f"{n:>11,} outputs single vs dask: " + ("identical" if not differences else
                                                          f"{len(differences)} differences: {differences[:5]}"),
                  flush=True)
        if not args.keep:
            for r in rows:
                if r["households"] == n:
                    subprocess.run(["rm", "-rf", r["out"]])
    print()
    print(f"machine: {os.cpu_count()} cores, {MACHINE_GIB:.1f} GiB; limit {args.limit_gib:.1f} GiB")
    print(f"{'households':>11} | {'single s':>9} | {'single GiB':>10} | {'dask s':>8} | {'dask GiB':>8} | "
          f"{'driver GiB':>10} | {'workers GiB':>14} | time dask/single")
    for n in args.sizes:
        s = next((r for r in rows if r["households"] == n and r["engine"] == "single"), None)
        d = next((r for r in rows if r["households"] == n and r["engine"] == "dask"), None)
        cell = lambda r, k: (f"{r[k]:.1f}" if r and r["status"] == "ok" else ("OOM" if r and "memory" in r["status"] else "-"))
        ratio = f"{d['seconds'] / s['seconds']:.2f}" if s and d and s["status"] == d["status"] == "ok" else "-"
        workers = ", ".join(f"{w:.2f}" for w in d["worker_peaks_gib"]) if d and d["status"] == "ok" else "-"
        print(f"{n:>11,} | {cell(s, 'seconds'):>9} | {cell(s, 'peak_gib'):>10} | {cell(d, 'seconds'):>8} | "
              f"{cell(d, 'peak_gib'):>8} | {cell(d, 'driver_peak_gib'):>10} | {workers:>14} | {ratio}")
    projection = {}
    for engine in args.engines:
        f = fit([r for r in rows if r["engine"] == engine])
        if f is None:
            continue
        a, b = f
        at = (MACHINE_GIB - a) / b if b > 0 else float("inf")
        projection[engine] = {"intercept_gib": round(a, 3), "gib_per_million": round(b * 1e6, 3),
                              "households_at_machine_memory": int(at),
                              f"peak_gib_at_{args.project}": round(a + b * args.project, 1)}
        print(f"{engine}: peak ≈ {a:.2f} GiB + {b * 1e6:.3f} GiB per million households; reaches {MACHINE_GIB:.0f} GiB "
              f"at ≈ {at / 1e6:.1f} M households; at {args.project / 1e6:.0f} M: ≈ {a + b * args.project:.1f} GiB")
    dask_rows = [dict(r, peak_gib=r["driver_peak_gib"]) for r in rows if r["engine"] == "dask"]
    f = fit(dask_rows)
    if f is not None:
        a, b = f
        projection["dask_driver"] = {"intercept_gib": round(a, 3), "gib_per_million": round(b * 1e6, 3),
                                     f"peak_gib_at_{args.project}": round(a + b * args.project, 1)}
        print(f"dask driver alone: peak ≈ {a:.2f} GiB + {b * 1e6:.3f} GiB per million households; "
              f"at {args.project / 1e6:.0f} M: ≈ {a + b * args.project:.1f} GiB")
    print(f"load average at the end: {os.getloadavg()}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"dask-{stamp}.json").write_text(json.dumps({"runs": rows, "projection": projection,
                                                            "limit_gib": args.limit_gib}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
