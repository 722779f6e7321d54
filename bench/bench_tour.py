"""Benchmark: the walking route of each grid's visit list on the sample, OR-Tools against a plain heuristic.

Loads ``sample_geojson/`` as ``analyze`` does (``geo.load.load_data``, the run's metric CRS), assigns the
households (``geo.assign.assign_households``), builds the walking network the reach stage builds
(``geo.network.walking_graph`` of the roads) and, for every grid, the tour from the grid's centroid
(joined to the network) through the buildings of its households in a visited special group
(elderly living alone, children in difficulty, mental disorder; gated estates left by their gates, as
``geo.lifecircle.household_origins`` makes them) and back. Then, in one run:

(a) gridcover: ``geo.tour.walking_tour`` timed per grid (network distances, OR-Tools' order with
    ``--time-limit`` seconds of guided local search, the bound, the legs' lines), its length and the gap to
    the bound (exact Held–Karp up to 12 stops, else the Held–Karp 1-tree bound);
(b) the peer, written here: nearest neighbour from the start, then 2-opt until no move shortens the tour
    (best improving move each pass, numpy over all pairs), on the same distance matrices.

It prints the featured grid (the one with the most stops), a table per stop-count band, and the totals:
both lengths, both ordering times and the ratio. Never run in CI.

Example
-------
    python bench/bench_tour.py
    python bench/bench_tour.py --time-limit 1.0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.assign import assign_households  # noqa: E402
from geo.lifecircle import household_origins  # noqa: E402
from geo.load import load_data  # noqa: E402
from geo.network import walking_graph  # noqa: E402
from geo.reach import Origins  # noqa: E402
from geo.tour import EXACT_STOPS, held_karp, one_tree_bound, order_stops, place_matrix, walking_tour  # noqa: E402

VISITED = ("elderly_alone", "child_in_difficulty", "mental_disorder")


def nearest_neighbour_two_opt(d: np.ndarray) -> np.ndarray:
    """The peer: nearest neighbour from place 0, then best-improvement 2-opt to a local optimum."""
    n = len(d)
    order = [0]
    free = np.ones(n, bool)
    free[0] = False
    for _ in range(n - 1):
        row = np.where(free, d[order[-1]], np.inf)
        nxt = int(np.argmin(row))
        order.append(nxt)
        free[nxt] = False
    t = np.asarray(order)
    if n < 4:
        return t
    while True:
        a, b = t, np.roll(t, -1)
        # reversing t[i+1 .. j] replaces edges (a_i, b_i), (a_j, b_j) by (a_i, a_j), (b_i, b_j)
        delta = d[a[:, None], a[None, :]] + d[b[:, None], b[None, :]] - d[a, b][:, None] - d[a, b][None, :]
        delta = np.triu(delta, 2)
        delta[0, n - 1] = 0  # the same two edges
        i, j = np.unravel_index(np.argmin(delta), delta.shape)
        if delta[i, j] > -1e-7:
            return t
        t = np.r_[t[:i + 1], t[i + 1:j + 1][::-1], t[j + 1:]]


def length_of(d: np.ndarray, order: np.ndarray) -> float:
    return float(d[order, np.roll(order, -1)].sum()) if len(order) > 1 else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "sample_geojson"))
    parser.add_argument("--time-limit", type=float, default=0.1, help="OR-Tools guided local search, seconds")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    data = load_data(args.data)
    layers = data.layers
    households, buildings, grids = layers["households"], layers.get("buildings"), layers["grids"]
    assigned = assign_households(households, buildings, grids, settings=data.settings)
    graph = walking_graph(layers["roads"])
    print(f"sample loaded, assigned and its walking network built in {time.perf_counter() - t0:.2f} s: "
          f"{len(households):,} households, {graph.stats['nodes']:,} nodes, {graph.stats['segments']:,} segments")

    visited = households[list(VISITED)].fillna(False).astype(bool).any(axis=1).to_numpy()
    rows = []
    featured = None
    centroids = shapely.centroid(grids.geometry.to_numpy())
    for k, gid in enumerate(grids["id"].astype(str)):
        mine = visited & (assigned["grid_id"].astype(str).to_numpy() == gid)
        if not mine.any():
            continue
        sub = assigned[mine]
        origins, origin_of = household_origins(sub["x"].to_numpy(), sub["y"].to_numpy(),
                                               sub["building_id"].to_numpy(), buildings=buildings,
                                               estates=layers.get("estates"), gates=layers.get("gates"))
        # one place per building (a household without one: its own point); its id names it
        ids = np.where(pd.notna(sub["building_id"]), sub["building_id"].astype(str), "h" + sub.index.astype(str))
        located = origin_of >= 0
        place_id = np.empty(len(origins), dtype=object)
        place_id[origin_of[located]] = ids[located]
        start = (float(shapely.get_x(centroids[k])), float(shapely.get_y(centroids[k])))
        t1 = time.perf_counter()
        tour = walking_tour(graph, origins, start=start, stop_ids=place_id, crs=data.metric_crs,
                            time_limit_s=args.time_limit)
        tour.legs_wgs84()
        tour_s = time.perf_counter() - t1
        # the same instance for both orderings: start + reachable stops
        places = _with_start(start, origins)
        d = place_matrix(graph, places)
        keep = np.r_[0, 1 + np.flatnonzero(np.isfinite(d[0, 1:]))]
        d = d[np.ix_(keep, keep)]
        t2 = time.perf_counter()
        order, _ = order_stops(d, time_limit_s=args.time_limit)
        ortools_s = time.perf_counter() - t2
        t3 = time.perf_counter()
        peer = nearest_neighbour_two_opt(d)
        peer_s = time.perf_counter() - t3
        stops = len(keep) - 1
        bound = held_karp(d)[0] if stops <= EXACT_STOPS else one_tree_bound(d, upper=length_of(d, order))
        rows.append({"grid": gid, "households": int(mine.sum()), "stops": stops,
                     "unreachable": int(len(tour.unreachable)), "tour_s": tour_s, "tour_m": tour.total_m,
                     "tour_min": tour.total_min, "gap": tour.gap, "bound": tour.bound,
                     "ortools_m": length_of(d, order), "ortools_s": ortools_s, "peer_m": length_of(d, peer),
                     "peer_s": peer_s, "bound_m": bound})
        if featured is None or stops > featured[1]:
            featured = (gid, stops, tour)
    table = pd.DataFrame(rows)
    gid, stops, tour = featured
    print(f"\nfeatured grid {gid}: {stops} stops ({len(tour.unreachable)} unreachable), "
          f"tour {tour.total_m:,.0f} m = {tour.total_min:.0f} min at {tour.speed_m_s} m/s, "
          f"bound {tour.bound} {tour.bound_m:,.0f} m, gap {tour.gap:.2%}, solver {tour.solver}, "
          f"{len(tour.legs)} legs, time {table.loc[table['grid'] == gid, 'tour_s'].iloc[0] * 1000:.0f} ms")
    table["band"] = pd.cut(table["stops"], [0, 5, 12, 25, 1000], labels=["1-5", "6-12", "13-25", ">25"])
    by = table.groupby("band", observed=True)
    summary = pd.DataFrame({
        "grids": by.size(), "stops_mean": by["stops"].mean().round(1),
        "tour_ms_p50": (by["tour_s"].median() * 1000).round(0), "tour_ms_max": (by["tour_s"].max() * 1000).round(0),
        "gap_mean_%": (by["gap"].mean() * 100).round(2), "gap_max_%": (by["gap"].max() * 100).round(2),
        "ortools_km": (by["ortools_m"].sum() / 1000).round(2), "peer_km": (by["peer_m"].sum() / 1000).round(2),
        "peer/ortools": (by["peer_m"].sum() / by["ortools_m"].sum()).round(4),
        "ortools_ms": (by["ortools_s"].mean() * 1000).round(1), "peer_ms": (by["peer_s"].mean() * 1000).round(2),
    })
    print(f"\nper stop-count band (OR-Tools time limit {args.time_limit} s):")
    print(summary.to_string())
    worse = int((table["peer_m"] > table["ortools_m"] + 0.5).sum())
    better = int((table["peer_m"] < table["ortools_m"] - 0.5).sum())
    print(f"\n{len(table)} grids with visits, {int(table['stops'].sum())} stops, "
          f"{int(table['unreachable'].sum())} unreachable")
    print(f"walking_tour: p50 {table['tour_s'].median() * 1000:.0f} ms, p95 {table['tour_s'].quantile(0.95) * 1000:.0f} ms "
          f"per grid; gap to the bound mean {table['gap'].mean():.2%}, max {table['gap'].max():.2%}")
    print(f"OR-Tools {table['ortools_m'].sum() / 1000:.2f} km in {table['ortools_s'].sum():.2f} s; "
          f"nearest neighbour + 2-opt {table['peer_m'].sum() / 1000:.2f} km in {table['peer_s'].sum():.3f} s; "
          f"peer/OR-Tools length {table['peer_m'].sum() / table['ortools_m'].sum():.4f} "
          f"(peer longer on {worse} grids, shorter on {better}); OR-Tools/peer time "
          f"{table['ortools_s'].sum() / max(table['peer_s'].sum(), 1e-9):.0f}×")
    return 0


def _with_start(start, origins: Origins) -> Origins:
    """The start as place 0, then the origins (as walking_tour puts them)."""
    return Origins(x=np.r_[start[0], origins.x], y=np.r_[start[1], origins.y],
                   entry_origin=np.r_[0, origins.entry_origin + 1], entry_x=np.r_[start[0], origins.entry_x],
                   entry_y=np.r_[start[1], origins.entry_y], entry_extra=np.r_[0.0, origins.entry_extra])


if __name__ == "__main__":
    raise SystemExit(main())
