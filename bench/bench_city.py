"""Output proportional to the households, not the area: a whole city's street register (issue 11).

343 street polygons over 16,000 km² with 2,300 households in five settlements (tools.synthetic.make_city).
Runs gridcover's analysis as it is (empty H3 cells kept only near households, buildings and facilities) and
the same analysis filling every H3 cell of the streets (``every_cell=True``, what gridcover did before), in
one run, prints both times, cell counts and the ratio, and checks that every household gets the same answer.

    python bench/bench_city.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcover.engines.single import analyze  # noqa: E402
from tools.synthetic import make_city, write_district  # noqa: E402


def _timed(data: Path, every_cell: bool):
    started = time.perf_counter()
    analysis = analyze(data, every_cell=every_cell)
    return analysis, time.perf_counter() - started


def main() -> None:
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
