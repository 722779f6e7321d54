"""Benchmark: gridcover's 15-minute reach against pandana 0.8 on one synthetic walking network.

Builds a synthetic city street network (a jittered grid with missing links,
``--side`` × ``--side`` intersections; 320 × 320 = 102,400 nodes by default),
17 facility categories placed on intersections, and ``--origins`` building
points. Then, in one run:

(a) gridcover, timed from the road lines to the per-cell results: walking
    graph, facilities joined to the network, one multi-source search per
    category, minutes per origin at both speeds with the missing-category
    lists, and the H3 resolution-10 cells of the whole area;
(b) pandana 0.8: ``Network(...)`` set-up (contraction hierarchies) plus
    ``set_pois`` and ``nearest_pois`` for the same 17 categories, searching as far as gridcover does: its
    30-minute reporting horizon at the fastest speed (``ReachConfig.horizon_m``), not further.

It checks that both give the same walking time from every node to the nearest
facility of every category (within 1 s at 1 m/s), and prints both times and
the ratio (goal: gridcover ≥ 25× faster in total). Then it times ``--whatif``
single what-if edits (add a facility of a random category at a random point)
and prints their p50/p95 (goal: p95 ≤ 50 ms).

pandana is AGPL-3.0: it is installed for this benchmark only
(``pip install pandana==0.8``), never a dependency of gridcover. Never run in CI.

Example
-------
    pip install pandana==0.8
    python bench/bench_reach.py                  # 102,400 nodes
    python bench/bench_reach.py --side 100       # a quick run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.lifecircle import h3_reach, household_reach  # noqa: E402
from geo.reach import Origins, ReachModel, load_config  # noqa: E402

CRS = "EPSG:32648"
X0, Y0 = 400000.0, 3385000.0  # south-west corner, central Chengdu in UTM 48N


def synthetic_network(side: int, *, spacing: float = 70.0, seed: int = 0):
    """Intersections on a jittered grid; street segments between neighbours, 10% left out."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = X0 + jj.ravel() * spacing + rng.uniform(-12, 12, side * side)
    y = Y0 + ii.ravel() * spacing + rng.uniform(-12, 12, side * side)
    idx = np.arange(side * side).reshape(side, side)
    a = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    b = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    keep = rng.random(len(a)) > 0.10
    a, b = a[keep], b[keep]
    lines = shapely.linestrings(np.stack([np.column_stack([x[a], y[a]]), np.column_stack([x[b], y[b]])], axis=1))
    roads = gpd.GeoDataFrame({"highway": np.full(len(a), "residential")}, geometry=lines, crs=CRS)
    return x, y, a, b, roads


def facilities_on_nodes(x, y, config, *, seed: int = 1):
    """For each category a number of facilities on random intersections (fewer for 15-minute ones)."""
    rng = np.random.default_rng(seed)
    rows = []
    n = len(x)
    for cat in config.categories:
        k = max(3, n // {5: 600, 10: 1500, 15: 3000}.get(cat.tier, 1500))
        nodes = rng.choice(n, size=k, replace=False)
        rows.append(pd.DataFrame({"id": [f"{cat.id}-{i}" for i in range(k)], "category": cat.id, "node": nodes}))
    table = pd.concat(rows, ignore_index=True)
    return gpd.GeoDataFrame(table, geometry=shapely.points(x[table["node"]], y[table["node"]]), crs=CRS)


def run_gridcover(roads, facilities, ox, oy, config, area):
    t0 = time.perf_counter()
    model = ReachModel.build(roads, facilities, Origins.simple(ox, oy), config=config)
    reach = household_reach(model, np.arange(len(ox)), elderly_alone=np.zeros(len(ox), bool))
    lonlat = gpd.GeoSeries(shapely.points(ox, oy), crs=CRS).to_crs(4326)
    cells = h3_reach(model, household_lonlat=(lonlat.x.to_numpy(), lonlat.y.to_numpy()), reach=reach,
                     area_wgs84=[area], resolution=10, metric_crs=CRS)
    return time.perf_counter() - t0, model, len(cells)


def run_pandana(x, y, a, b, facilities, config, maxdist):
    import pandana

    t0 = time.perf_counter()
    nodes = pd.DataFrame({"x": x, "y": y})
    length = np.hypot(x[a] - x[b], y[a] - y[b])
    edges = pd.DataFrame({"from": a, "to": b, "length": length})
    net = pandana.Network(nodes["x"], nodes["y"], edges["from"], edges["to"], edges[["length"]], twoway=True)
    t_setup = time.perf_counter() - t0
    out = {}
    for cat in config.ids:
        rows = facilities[facilities["category"] == cat]
        net.set_pois(category=cat, maxdist=maxdist, maxitems=1,
                     x_col=pd.Series(shapely.get_x(rows.geometry.to_numpy())),
                     y_col=pd.Series(shapely.get_y(rows.geometry.to_numpy())))
        res = net.nearest_pois(distance=maxdist, category=cat, num_pois=1, max_distance=np.inf)
        out[cat] = res[1].reindex(np.arange(len(x))).to_numpy()
    return time.perf_counter() - t0, t_setup, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=320, help="intersections per side (nodes = side²)")
    parser.add_argument("--origins", type=int, default=100_000, help="building points walked from")
    parser.add_argument("--whatif", type=int, default=200, help="what-if edits to time")
    parser.add_argument("--maxdist", type=float, default=None,
                        help="pandana's search radius (m); default: gridcover's reporting horizon "
                             "(30 minutes at the fastest speed, ReachConfig.horizon_m)")
    args = parser.parse_args(argv)

    config = load_config()
    if args.maxdist is None:
        args.maxdist = config.horizon_m  # the same horizon gridcover searches and reports within
    x, y, a, b, roads = synthetic_network(args.side)
    facilities = facilities_on_nodes(x, y, config)
    rng = np.random.default_rng(2)
    span = (args.side - 1) * 70.0
    ox = X0 + rng.uniform(0, span, args.origins)
    oy = Y0 + rng.uniform(0, span, args.origins)
    area = gpd.GeoSeries([shapely.box(X0, Y0, X0 + span, Y0 + span)], crs=CRS).to_crs(4326).iloc[0]
    print(f"network: {len(x):,} intersections, {len(roads):,} street segments; {len(facilities):,} facilities in "
          f"{len(config.ids)} categories; {args.origins:,} origins")
    print(f"horizon: gridcover {config.horizon_min:g} minutes = {config.horizon_m:,.0f} m at the fastest speed; "
          f"pandana's maxdist {args.maxdist:,.0f} m")

    t_gc, model, n_cells = run_gridcover(roads, facilities, ox, oy, config, area)
    print(f"gridcover: {t_gc:.2f} s (graph {model.stats['nodes']:,} nodes, {len(config.ids)} categories x 2 speeds, "
          f"{args.origins:,} origins, {n_cells:,} H3 cells)")
    try:
        t_pd, t_setup, pd_dist = run_pandana(x, y, a, b, facilities, config, args.maxdist)
    except ImportError:
        print("pandana is not installed (pip install pandana==0.8; AGPL, benchmark only): no comparison")
        t_pd = None
    if t_pd is not None:
        print(f"pandana 0.8: {t_pd:.2f} s (network set-up {t_setup:.2f} s, then set_pois + nearest_pois x {len(config.ids)})")
        # gridcover's distance at each original intersection: the graph's node at that position
        # (nodes that share a position are joined by zero-length edges: any of them has the same distance)
        from scipy.spatial import cKDTree

        gap, pos = cKDTree(np.column_stack([model.graph.x, model.graph.y])).query(np.column_stack([x, y]))
        in_graph = gap < 0.01  # an intersection all of whose streets were left out is in no street line
        print(f"{(~in_graph).sum()} isolated intersections (no street) left out of the comparison")
        worst = 0.0
        compared = mismatched = at_edge = 0
        for cat in config.ids:
            ours = model.node_dist[cat][pos]
            theirs = pd_dist[cat]
            ours = np.where(ours <= args.maxdist, ours, np.inf)
            both = in_graph & np.isfinite(ours) & (theirs < args.maxdist)
            compared += int(both.sum())
            # within the horizon both must find a facility or neither; a pair within 1 s of walking of the
            # horizon's edge (one finds it at 1,799.9 m, the other stops at 1,800 m) is a tie, counted apart
            one_only = in_graph & (np.isfinite(ours) != (theirs < args.maxdist))
            found = np.where(np.isfinite(ours), ours, theirs)
            edge = one_only & (np.abs(found - args.maxdist) <= config.speeds["general"])
            at_edge += int(edge.sum())
            mismatched += int((one_only & ~edge).sum())
            worst = max(worst, float(np.max(np.abs(ours[both] - theirs[both])) if both.any() else 0.0))
        seconds = worst / config.speeds["general"]
        verdict = "agree" if seconds <= 1.0 and not mismatched else "DISAGREE"
        print(f"times at {compared:,} node-category pairs: max difference {seconds:.3f} s at 1 m/s; {mismatched:,} pairs "
              f"where only one finds a facility within the horizon, {at_edge:,} more within 1 s of its edge "
              f"({verdict}, limit 1 s and 0 pairs away from the edge)")
        ratio = t_pd / t_gc
        print(f"ratio (pandana / gridcover): {ratio:.1f}x ({'goal met' if ratio >= 25 else 'BELOW the goal of 25x'})")

    times = []
    cats = config.ids
    for i in range(args.whatif):
        cat = cats[i % len(cats)]
        px, py = X0 + rng.uniform(0, span), Y0 + rng.uniform(0, span)
        t0 = time.perf_counter()
        model.add_facility(cat, px, py, facility_id=f"w{i}")
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    p95 = np.percentile(ms, 95)
    print(f"what-if add facility ({args.whatif} edits): p50 {np.percentile(ms, 50):.1f} ms, p95 {p95:.1f} ms "
          f"({'goal met' if p95 <= 50 else 'BELOW the goal of <= 50 ms'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
