"""Benchmark: gridcover's household assignment against the plain geopandas way.

Generates (or reuses, under ``bench/data/``) a synthetic district
(tools.synthetic), projects it to EPSG:32648 once (timed apart, shared by
both sides), then times

(a) gridcover: ``geo.assign.assign_households(households, buildings, grids)``;
(b) geopandas: ``sjoin(households, buildings, predicate="within")``, then
    ``sjoin_nearest(..., max_distance=15)`` for the points in no building, then
    ``sjoin(household locations, grids, predicate="within")``.

and checks that both give every household the same ``building_id`` and
``grid_id``. Any disagreement is printed and makes the exit status 1. The
script never gates CI: it is run by hand (see bench/README.md).

Fairness of the geopandas side (what it does that a careful analyst would do):

- a household's given ``building_id`` wins over its point (as in the data
  model), so only households without one are joined to footprints;
- a point in several footprints, or at the same distance from several, takes
  the smallest building id (the data model's tie rule);
- a household known only by its ``building_id`` is placed at the building's
  ``representative_point()`` for the grid join; every other household by its
  own point. This gives the data model's answer (the grid holding most of the
  footprint) only because no synthetic building crosses a grid line and
  snapped points stay in their building's grid; on real data with split
  buildings the plain way would put households of one building in two grids;
- ``within`` leaves out points on a boundary (gridcover counts them); the
  synthetic data put no point on any boundary, so the two agree;
- both sides get the same projected GeoDataFrames and build their own spatial
  indexes inside the timed call. gridcover does more: it also computes each
  building's grid by area share, split/overlap checks, status and flags.

Example
-------
    python bench/bench_assign.py                       # 1,000,000 households
    python bench/bench_assign.py --households 20000 --buildings 2000 --grids 60
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.synthetic import GENERATOR_VERSION, METRIC_CRS, make_district, write_district  # noqa: E402

DATA_DIR = ROOT / "bench" / "data"
SNAP_TOLERANCE_M = 15.0
GOAL_RATIO = 3.0


# ------------------------------------------------------------------ measuring
class Peak:
    """Wall time and peak resident memory above the starting level of a block of code.

    Memory is sampled from /proc/self/statm every 5 ms by a thread (so it
    sees numpy, GEOS and Python allocations alike); 0 where /proc is missing.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            return 0.0

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self._top = max(self._top, self.rss_mb())

    def __enter__(self) -> "Peak":
        gc.collect()
        self._base = self._top = self.rss_mb()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._top = max(self._top, self.rss_mb())
        self.peak_mb = self._top - self._base


# ---------------------------------------------------------------------- data
def load_district(households: int, buildings: int, grids: int, seed: int, *, cache: bool = True):
    """households, buildings and grids in WGS-84, from the cache or freshly generated."""
    folder = DATA_DIR / f"district-v{GENERATOR_VERSION}-h{households}-b{buildings}-g{grids}-s{seed}"
    names = ("households", "buildings", "grids")
    if cache and all((folder / f"{n}.gpkg").exists() for n in names):
        t0 = time.perf_counter()
        layers = {n: gpd.read_file(folder / f"{n}.gpkg", engine="pyogrio", use_arrow=_has_arrow()) for n in names}
        print(f"read cached district from {folder.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")
        return layers
    t0 = time.perf_counter()
    district = make_district(households=households, buildings=buildings, grids=grids, seed=seed)
    print(f"generated district in {time.perf_counter() - t0:.1f} s")
    if cache:
        t0 = time.perf_counter()
        write_district(district, folder, fmt="gpkg")
        print(f"cached it in {folder.relative_to(ROOT)} ({time.perf_counter() - t0:.1f} s)")
    return {n: district[n] for n in names}


def _has_arrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------- the plain way
def geopandas_assign(households: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame,
                     grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """building_id and grid_id of each household with sjoin / sjoin_nearest (see the module docstring)."""
    right_b = buildings[["id", "geometry"]]
    building = pd.Series(pd.NA, index=households.index, dtype=object)

    given = households["building_id"].notna() & households["building_id"].isin(buildings["id"])
    building[given] = households.loc[given, "building_id"].astype(object)

    has_point = households.geometry.notna() & ~households.geometry.is_empty
    points = households.loc[has_point & ~given, ["geometry"]]
    inside = gpd.sjoin(points, right_b, how="inner", predicate="within")
    inside = inside.groupby(level=0)["id"].min()  # on a shared wall: the smallest id
    building[inside.index] = inside.astype(object)

    rest = points.loc[~points.index.isin(inside.index)]
    near = gpd.sjoin_nearest(rest, right_b, how="inner", max_distance=SNAP_TOLERANCE_M)
    near = near.groupby(level=0)["id"].min()  # equidistant: the smallest id
    building[near.index] = near.astype(object)

    location = households.geometry.copy()
    by_building = ~has_point & building.notna()
    representative = buildings.set_index("id").geometry.representative_point()
    location[by_building] = representative.loc[building[by_building]].to_numpy()
    located = gpd.GeoDataFrame(geometry=location[has_point | by_building], crs=households.crs)
    in_grid = gpd.sjoin(located, grids[["id", "geometry"]], how="inner", predicate="within")
    in_grid = in_grid.groupby(level=0)["id"].min()
    grid = pd.Series(pd.NA, index=households.index, dtype=object)
    grid[in_grid.index] = in_grid.astype(object)
    return pd.DataFrame({"building_id": building, "grid_id": grid})


# ---------------------------------------------------------------------- main
def _text(values: pd.Series) -> np.ndarray:
    """Ids as plain strings, '' for none: comparable across dtypes."""
    return values.astype(object).where(values.notna(), "").astype(str).to_numpy()


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, households: gpd.GeoDataFrame, *, show: int = 5) -> int:
    """Print and count households whose building_id or grid_id differ."""
    bad = np.zeros(len(ours), dtype=bool)
    for column in ("building_id", "grid_id"):
        differ = _text(ours[column]) != _text(theirs[column])
        print(f"  {column}: {int(differ.sum()):,} disagreements")
        bad |= differ
    if bad.any():
        rows = pd.DataFrame({
            "household": households["id"].to_numpy()[bad],
            "gridcover_building": _text(ours["building_id"])[bad],
            "geopandas_building": _text(theirs["building_id"])[bad],
            "gridcover_grid": _text(ours["grid_id"])[bad],
            "geopandas_grid": _text(theirs["grid_id"])[bad],
            "status": ours["status"].to_numpy()[bad] if "status" in ours else "",
        })
        print(rows.head(show).to_string(index=False))
    return int(bad.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--grids", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="time each side this many times, keep the best")
    parser.add_argument("--no-cache", action="store_true", help="generate afresh and do not write bench/data/")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the gridcover side")
    parser.add_argument("--skip-geopandas", action="store_true", help="time gridcover only (no check)")
    args = parser.parse_args(argv)

    from geo.assign import assign_households
    from geo.settings import Settings

    settings = Settings()
    if settings.snap_tolerance_m != SNAP_TOLERANCE_M:
        print(f"note: gridcover's snap tolerance is {settings.snap_tolerance_m} m, the plain way uses {SNAP_TOLERANCE_M} m")

    print(f"district: {args.households:,} households, {args.buildings:,} buildings, {args.grids:,} grids, "
          f"seed {args.seed}")
    layers = load_district(args.households, args.buildings, args.grids, args.seed, cache=not args.no_cache)
    with Peak() as projection:
        households, buildings, grids = (layers[n].to_crs(METRIC_CRS) for n in ("households", "buildings", "grids"))
    del layers
    print(f"projection to {METRIC_CRS} (not counted in either side): {projection.seconds:.2f} s")

    def run_gridcover():
        return assign_households(households, buildings, grids, settings=settings)

    def run_geopandas():
        return geopandas_assign(households, buildings, grids)

    timings = {}
    results = {}
    sides = [("gridcover", run_gridcover)] + ([] if args.skip_geopandas else [("geopandas", run_geopandas)])
    for _ in range(args.repeat):
        for name, run in sides:
            results.pop(name, None)
            with Peak() as p:
                results[name] = run()
            best = timings.get(name)
            if best is None or p.seconds < best.seconds:
                timings[name] = p
            print(f"  {name}: {p.seconds:.2f} s, peak +{p.peak_mb:,.0f} MB")

    ours = results["gridcover"]
    print("gridcover statuses: " + ", ".join(f"{k} {v:,}" for k, v in ours["status"].value_counts().items()))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_gridcover()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())

    import geopandas
    import shapely

    print(f"\ngeopandas {geopandas.__version__}, shapely {shapely.__version__}, "
          f"GEOS {shapely.geos_version_string}, {os.cpu_count()} CPUs")
    t_ours = timings["gridcover"].seconds
    print(f"gridcover assign_households : {t_ours:8.2f} s  peak +{timings['gridcover'].peak_mb:,.0f} MB")
    if args.skip_geopandas:
        return 0
    t_theirs = timings["geopandas"].seconds
    print(f"geopandas sjoin way         : {t_theirs:8.2f} s  peak +{timings['geopandas'].peak_mb:,.0f} MB")
    ratio = t_theirs / t_ours if t_ours else float("inf")
    verdict = "goal met" if ratio >= GOAL_RATIO else f"BELOW the goal of {GOAL_RATIO:.0f}x"
    print(f"ratio (geopandas / gridcover): {ratio:.2f}x ({verdict})")

    print("agreement, household by household:")
    disagreements = compare(ours, results["geopandas"], households)
    if disagreements:
        print(f"\n!!! FAILURE: {disagreements:,} of {len(households):,} households disagree "
              f"on building_id or grid_id !!!", file=sys.stderr)
        return 1
    print(f"  all {len(households):,} households agree")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
