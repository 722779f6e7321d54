"""Benchmark: gridcover's proposed grids vs spopt max-p and GerryChain's recursive_tree_part (never in CI).

On the same synthetic community (``--buildings`` buildings with 0–``--max-households`` households each, in the
estates of ``tools.synthetic``) and on each community of the sample district, with the band 300–500:

- gridcover: ``geo.propose.propose_grids`` (estates whole; split along buildings only above the ceiling);
- spopt ``MaxPHeuristic`` (floor 300, units = buildings, attributes = unit x/y), in a child process stopped
  after ``--time-limit`` seconds;
- GerryChain ``recursive_tree_part`` (units = buildings, as many parts as gridcover made, ε chosen so that
  ideal ± ε lies inside the band where it can), same time limit.

The peers' units are the buildings with their Voronoi cells (``geo.propose.tessellate``), adjacency from shared
cell edges; their grids are the dissolved cells. Preparing units and graph is not timed. For each it prints:
time, grids made / maximum possible (households // 300), min–max households per grid, share of grids inside
the band, mean Polsby-Popper, split buildings, split estates, coverage validity, and the ratio of times. It also
times ``geo.redraw.check_proposal`` on the largest sample community (the < 1 s goal).

    . .venv/bin/activate
    pip install spopt gerrychain          # benchmark only (both BSD-3-Clause), never a runtime dependency
    python bench/bench_redraw.py                         # 10,000 buildings + the sample district
    python bench/bench_redraw.py --buildings 2000 --time-limit 120   # a quick run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.assign import building_grids  # noqa: E402
from geo.propose import dissolve_cells, polsby_popper, propose_grids, tessellate  # noqa: E402

BAND = (300, 500)


def synthetic(buildings: int, max_households: int, seed: int):
    from tools.synthetic import make_district

    layers = make_district(households=1, buildings=buildings, grids=1, grids_per_community=1, seed=seed)
    m = {k: v.to_crs(32648) for k, v in layers.items() if k != "households"}
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_households + 1, len(m["buildings"]))
    hh = pd.DataFrame({"building_id": np.repeat(m["buildings"]["id"].to_numpy(), counts),
                       "persons": rng.integers(1, 5, int(counts.sum())), "x": np.nan, "y": np.nan})
    return m["communities"].iloc[[0]], m["buildings"], m["estates"], hh


def building_units(community, buildings, hh):
    """Buildings of the community as peer units: households, cell polygons, adjacency pairs."""
    cgeom = community.geometry.iloc[0]
    inner = shapely.point_on_surface(buildings.geometry.to_numpy())
    inside = shapely.contains_xy(cgeom, shapely.get_x(inner), shapely.get_y(inner))
    b = buildings[inside].reset_index(drop=True)
    counts = hh["building_id"].astype(str).value_counts()
    w = counts.reindex(b["id"].astype(str)).fillna(0).to_numpy(dtype=np.int64)
    tess = tessellate(cgeom, b.geometry.to_numpy(), np.arange(len(b)))
    order = np.argsort(tess.label, kind="stable")
    bounds = np.searchsorted(tess.label[order], np.arange(len(b) + 1))
    cells = dissolve_cells(tess.cells[order], bounds)
    cells = shapely.intersection(cells, cgeom, grid_size=0.01)
    inner = shapely.point_on_surface(cells)
    return b, w, cells, tess.pairs, shapely.get_x(inner), shapely.get_y(inner)


def measure(name, seconds, labels, w, cells, community, buildings, estates, maximum, note=""):
    if labels is None:
        return {"method": name, "time_s": seconds, "grids": None, "note": note}
    _, labels = np.unique(labels, return_inverse=True)
    k = int(labels.max()) + 1
    hh = np.bincount(labels, weights=w, minlength=k).astype(int)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    polys = dissolve_cells(cells[order], bounds)
    return summarise(name, seconds, polys, hh, community, buildings, estates, maximum, note)


def summarise(name, seconds, polys, hh, community, buildings, estates, maximum, note=""):
    import geopandas as gpd

    grids = gpd.GeoDataFrame({"id": [f"g{i}" for i in range(len(polys))]}, geometry=list(polys), crs=buildings.crs)
    gp = shapely.set_precision(grids.geometry.to_numpy(), 0.01)
    # the check's rule (geo.redraw): no gap or outside piece of 1 m² or more after 1 cm precision, no overlap,
    # no sliver narrower than 1 m between grids
    from geo.redraw import _slivers_between_grids
    from geo.settings import Settings

    union = shapely.union_all(gp, grid_size=0.01)
    cgeom = shapely.set_precision(community.geometry.iloc[0], 0.01)
    gaps = shapely.area(shapely.get_parts(shapely.difference(cgeom, union, grid_size=0.01)))
    outside = shapely.area(shapely.get_parts(shapely.difference(union, cgeom, grid_size=0.01)))
    comm = community.assign(id="c")
    valid = bool(shapely.coverage_is_valid(gp)) and not (gaps >= 1.0).any() and not (outside >= 1.0).any() \
        and not _slivers_between_grids(grids.assign(community_id="c"), comm, "c", Settings())
    split_b = int(building_grids(buildings, grids)["split"].sum())
    split_e = int(building_grids(estates, grids)["split"].sum()) if estates is not None else 0
    inb = (hh >= BAND[0]) & (hh <= BAND[1])
    return {"method": name, "time_s": round(seconds, 2), "grids": len(polys), "maximum": maximum,
            "share_of_max": round(len(polys) / maximum, 3) if maximum else None,
            "hh_min": int(hh.min()), "hh_max": int(hh.max()), "in_band": round(float(inb.mean()), 3),
            "mean_pp": round(float(np.nanmean(polsby_popper(gp))), 3), "split_buildings": split_b,
            "split_estates": split_e, "coverage_valid": valid, "contiguous": bool(
                (shapely.get_num_geometries(gp) == 1).all()), "note": note}


def _maxp(queue, w, x, y, pairs):
    import geopandas as gpd
    import libpysal
    from spopt.region import MaxPHeuristic

    n = len(w)
    neighbours = {i: [] for i in range(n)}
    for a, b in pairs:
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    W = libpysal.weights.W(neighbours, silence_warnings=True)
    gdf = gpd.GeoDataFrame({"households": w, "x": x, "y": y}, geometry=shapely.points(x, y))
    t = time.perf_counter()
    model = MaxPHeuristic(gdf, W, ["x", "y"], "households", BAND[0], top_n=2, max_iterations_construction=99)
    model.solve()
    queue.put((time.perf_counter() - t, np.asarray(model.labels_)))


def _gerry(queue, w, pairs, k):
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.tree import recursive_tree_part

    nxg = nx.Graph()
    nxg.add_nodes_from((i, {"households": int(v)}) for i, v in enumerate(w))
    nxg.add_edges_from((int(a), int(b)) for a, b in pairs)
    g = Graph.from_networkx(nxg)
    ideal = float(w.sum()) / k
    eps = max(min((ideal - BAND[0]) / ideal, (BAND[1] - ideal) / ideal), 0.01)
    t = time.perf_counter()
    part = recursive_tree_part(g, range(k), ideal, "households", eps, node_repeats=1)
    labels = np.array([part[i] for i in range(len(w))])  # node ids of from_networkx keep the original ones
    queue.put((time.perf_counter() - t, labels, eps))


def run_limited(target, args, limit):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, *args))
    start = time.perf_counter()
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None, time.perf_counter() - start, f"did not finish within {limit:.0f} s"
    if queue.empty():
        return None, time.perf_counter() - start, f"failed (exit status {proc.exitcode})"
    out = queue.get()
    return out, out[0], ""


def bench_one(label, community, buildings, estates, hh, *, limit, peers, current=None, roads=None):
    print(f"\n== {label}: {len(hh):,} households, {len(buildings):,} buildings", flush=True)
    maximum = len(hh) // BAND[0]
    t = time.perf_counter()
    p = propose_grids(community, buildings, estates, hh, band=BAND, current_grids=current, roads=roads)
    secs = time.perf_counter() - t
    rows = [summarise("gridcover", secs, p.grids.geometry.to_numpy(), p.grids["households"].to_numpy(), community,
                      buildings, estates, maximum, f"units: {len(p.units)} (estates whole)")]
    if peers:
        b, w, cells, pairs, x, y = building_units(community, buildings, hh)
        out, secs, note = run_limited(_maxp, (w, x, y, pairs), limit)
        rows.append(measure("spopt max-p", secs, None if out is None else out[1], w, cells, community, b, estates,
                            maximum, note or f"units: {len(w)} buildings"))
        k = rows[0]["grids"]
        out, secs, note = run_limited(_gerry, (w, pairs, k), limit)
        rows.append(measure("gerrychain tree", secs, None if out is None else out[1], w, cells, community, b, estates,
                            maximum, note or f"k={k}, eps={out[2]:.3f}"))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False), flush=True)
    base = rows[0]["time_s"]
    for r in rows[1:]:
        print(f"time {r['method']} / gridcover = {r['time_s'] / base:.1f}"
              + (" (peer stopped at the limit: a lower bound)" if r["grids"] is None else ""))
    return rows


def time_check(households: int) -> None:
    """Time geo.redraw.check_proposal on one analysed synthetic community of 50 grids (goal < 1 s)."""
    import tempfile

    from gridcover.engines.single import analyze
    from geo.redraw import check_proposal
    from gridcover.io.outputs import write_outputs
    from tools.synthetic import make_district, write_district
    from gridcover.services.redraw import RedrawService
    from gridcover.store import open_workspace

    root = Path(tempfile.mkdtemp(prefix="bench-redraw-"))
    layers = make_district(households=households, buildings=households // 10, grids=50, grids_per_community=50)
    write_district(layers, root / "data", fmt="geojson")
    write_outputs(analyze(root / "data"), root / "ws")
    ctx = RedrawService(open_workspace(root / "ws")).context()
    grids = ctx.grids_of({"C1"}).reset_index(drop=True)
    check_proposal(ctx, grids)
    best = min(check_proposal(ctx, grids)["timings_s"]["total"] for _ in range(3))
    print(f"check_proposal on a synthetic community of {len(grids)} grids and "
          f"{len(ctx.households_of({'C1'})):,} households: best of 3 {best:.3f} s (goal < 1 s)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--buildings", type=int, default=10_000)
    ap.add_argument("--max-households", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds per peer run")
    ap.add_argument("--sample-time-limit", type=float, default=180.0, help="seconds per peer run on a sample community")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--sample", default="out/sample", help="workspace of the sample district ('' to skip)")
    ap.add_argument("--check-households", type=int, default=15_000,
                    help="households of the synthetic community (50 grids) whose check is timed (0 to skip)")
    args = ap.parse_args(argv)
    peers = not args.no_peers
    if args.check_households:
        time_check(args.check_households)
    comm, b, e, hh = synthetic(args.buildings, args.max_households, args.seed)
    bench_one(f"synthetic community ({args.buildings:,} buildings, 0-{args.max_households} households each)",
              comm, b, e, hh, limit=args.time_limit, peers=peers)
    if args.sample:
        from geo.redraw import check_proposal
        from gridcover.services.redraw import RedrawService
        from gridcover.store import open_workspace

        ws = open_workspace(args.sample)
        ctx = RedrawService(ws).context()
        totals = []
        for cid in ctx.communities["id"].astype(str):
            h = ctx.households_of({cid})
            frame = pd.DataFrame({"building_id": h["building_id"].to_numpy(), "persons": h["persons"].to_numpy(),
                                  "x": h.geometry.x.to_numpy(), "y": h.geometry.y.to_numpy()})
            rows = bench_one(f"sample community {cid}", ctx.community(cid), ctx.buildings_of({cid}),
                             ctx.estates_of({cid}), frame, limit=args.sample_time_limit, peers=peers,
                             current=ctx.grids_of({cid}), roads=ctx.roads)
            totals.extend(dict(r, community=cid) for r in rows)
        t = pd.DataFrame(totals)
        print("\n== sample district, all communities")
        agg = t.groupby("method", sort=False).agg(time_s=("time_s", "sum"), grids=("grids", "sum"),
                                                  maximum=("maximum", "sum"), hh_min=("hh_min", "min"),
                                                  hh_max=("hh_max", "max"), mean_pp=("mean_pp", "mean"),
                                                  split_buildings=("split_buildings", "sum"),
                                                  split_estates=("split_estates", "sum"),
                                                  coverage_valid=("coverage_valid", "all"))
        print(agg.to_string())
        # the check on the largest community: goal < 1 s
        big = ctx.households["community_id"].value_counts().index[0]
        grids = ctx.grids_of({str(big)}).reset_index(drop=True)
        check_proposal(ctx, grids)
        best = min(check_proposal(ctx, grids)["timings_s"]["total"] for _ in range(3))
        print(f"\ncheck_proposal on community {big} ({len(grids)} grids, "
              f"{len(ctx.households_of({str(big)})):,} households): best of 3 {best:.3f} s (goal < 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
