"""Benchmark: gridcover's proposed grids vs spopt max-p and GerryChain's recursive_tree_part (never in CI).

On the same synthetic community (``--buildings`` buildings with 0–``--max-households`` households each, in the
estates of ``tools.synthetic``) and on each community of the sample district, with the band of the workload rule
(``geo.workload``: households per full-time worker; 150–300 for the synthetic community's one-worker grids, the
community's staffing for the sample, as ``redraw propose`` without ``--target``; ``--target 300-500`` for another):

- gridcover: ``geo.propose.propose_grids`` (estates whole; split along buildings only above the ceiling);
- spopt ``MaxPHeuristic`` (floor of the band, attributes = unit x/y), in a child process stopped after
  ``--time-limit`` seconds;
- GerryChain ``recursive_tree_part`` (as many parts as gridcover made, ε chosen so that ideal ± ε lies inside the
  band where it can), same time limit;
- the exact optimum: ``geo.regions.exact_regions`` (the most contiguous grids in the band, an integer program
  over connected candidate sets solved by HiGHS), with the bound households ÷ floor and the bound without
  contiguity (``geo.regions.region_bound``).

All three get the same units: gridcover's whole estates (and the buildings of estates above the ceiling), the
same Voronoi cells (``geo.propose.tessellate``) and adjacency; each method's grids are made from its labels by
the same ``geo.propose.grid_polygons``, so the table compares the divisions, not the drawing. Preparing units
and graph for the peers is not timed. For each it prints: time, grids made / bound (households // floor), the
exact optimum, min–max households per grid, share of grids inside the band, mean Polsby-Popper, split buildings,
split estates, coverage validity, and the ratio of times. ``--small`` instances (synthetic communities of
20–40 estates) compare gridcover, its greedy path alone and the exact optimum. It also times
``geo.redraw.check_proposal`` on the largest sample community (the < 1 s goal).

    . .venv/bin/activate
    pip install spopt gerrychain          # benchmark only (both BSD-3-Clause), never a runtime dependency
    python bench/bench_redraw.py                         # 10,000 buildings + small instances + the sample
    python bench/bench_redraw.py --buildings 2000 --time-limit 120   # a quick run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.assign import building_grids  # noqa: E402
from geo.propose import (_boundary_roads, grid_polygons, parse_band, polsby_popper, propose_grids,  # noqa: E402
                         tessellate)
from geo.regions import exact_regions, region_bound  # noqa: E402
from geo.workload import staffing_band, workload_band  # noqa: E402


def synthetic(buildings: int, max_households: int, seed: int):
    from tools.synthetic import make_district

    layers = make_district(households=1, buildings=buildings, grids=1, grids_per_community=1, seed=seed)
    m = {k: v.to_crs(32648) for k, v in layers.items() if k != "households"}
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_households + 1, len(m["buildings"]))
    hh = pd.DataFrame({"building_id": np.repeat(m["buildings"]["id"].to_numpy(), counts),
                       "persons": rng.integers(1, 5, int(counts.sum())), "x": np.nan, "y": np.nan})
    return m["communities"].iloc[[0]], m["buildings"], m["estates"], hh


def unit_graph(community, p, roads=None):
    """The proposal's units as the peers get them: households, a point each, the tessellation (cells and the pairs
    of units that touch), as ``propose_grids`` made them (same call, not timed)."""
    cgeom = shapely.make_valid(shapely.set_precision(community.geometry.iloc[0], 0.01))
    tess = tessellate(cgeom, p.units.piece_geom, p.units.piece_unit, roads=_boundary_roads(roads))
    return cgeom, tess


def measure(name, seconds, labels, cgeom, tess, p, community, buildings, estates, band, note=""):
    """The summary of a peer's division: its labels drawn by gridcover's own ``grid_polygons``."""
    if labels is None:
        return {"method": name, "time_s": round(seconds, 2), "grids": None, "note": note}
    _, labels = np.unique(labels, return_inverse=True)
    k = int(labels.max()) + 1
    hh = np.bincount(labels, weights=p.units.households, minlength=k).astype(int)
    polys = grid_polygons(cgeom, tess, labels, k, p.units)
    return summarise(name, seconds, polys, hh, community, buildings, estates, band, p.maximum, note)


def summarise(name, seconds, polys, hh, community, buildings, estates, band, maximum, note=""):
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
    inb = (hh >= band[0]) & (hh <= band[1])
    return {"method": name, "time_s": round(seconds, 2), "grids": len(polys), "bound": maximum,
            "share_of_bound": round(len(polys) / maximum, 3) if maximum else None,
            "hh_min": int(hh.min()), "hh_max": int(hh.max()), "in_band": round(float(inb.mean()), 3),
            "mean_pp": round(float(np.nanmean(polsby_popper(gp))), 3), "split_buildings": split_b,
            "split_estates": split_e, "coverage_valid": valid, "contiguous": bool(
                (shapely.get_num_geometries(gp) == 1).all()), "note": note}


def _maxp(queue, w, x, y, pairs, floor):
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
    model = MaxPHeuristic(gdf, W, ["x", "y"], "households", floor, top_n=2, max_iterations_construction=99)
    model.solve()
    queue.put((time.perf_counter() - t, np.asarray(model.labels_)))


def _gerry(queue, w, pairs, k, band):
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition.initial_partition_generators import recursive_tree_part

    nxg = nx.Graph()
    nxg.add_nodes_from((i, {"households": int(v)}) for i, v in enumerate(w))
    nxg.add_edges_from((int(a), int(b)) for a, b in pairs)
    g = Graph.from_networkx(nxg)
    ideal = float(w.sum()) / k
    eps = max(min((ideal - band[0]) / ideal, (band[1] - ideal) / ideal), 0.01)
    t = time.perf_counter()
    part = recursive_tree_part(g, range(k), ideal, "households", eps, node_repeats=1, rng=0)
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


def exact_row(p, tess, band):
    """The exact optimum on the proposal's own units and adjacency (time includes the candidate sets)."""
    t = time.perf_counter()
    solved = exact_regions(p.units.households, tess.pairs, band=band, contact=tess.contact, max_sets=200_000,
                           time_limit=300.0)
    secs = time.perf_counter() - t
    row = {"optimum": None, "optimal": False, "exact_s": round(secs, 2), "sets": None, "all_in_band_possible": None,
           "bound_no_contiguity": region_bound(p.units.households, band=band)}
    if solved is not None:
        row.update(optimum=solved.count if solved.feasible else None, optimal=solved.optimal, sets=solved.sets,
                   all_in_band_possible=solved.feasible)
    return row


def bench_one(label, community, buildings, estates, hh, *, band, limit, peers, current=None, roads=None):
    print(f"\n== {label}: {len(hh):,} households, {len(buildings):,} buildings, band {band[0]}-{band[1]}",
          flush=True)
    t = time.perf_counter()
    p = propose_grids(community, buildings, estates, hh, band=band, current_grids=current, roads=roads)
    secs = time.perf_counter() - t
    rows = [summarise("gridcover", secs, p.grids.geometry.to_numpy(), p.grids["households"].to_numpy(), community,
                      buildings, estates, band, p.maximum, f"units: {len(p.units)} (estates whole); {p.timings}")]
    cgeom, tess = unit_graph(community, p, roads)
    exact = exact_row(p, tess, band)
    said = {None: "too many candidate sets for one program", False: "no division puts every grid in the band",
            True: f"{'proven' if exact['optimal'] else 'not proven'}, {exact['sets']} candidate sets"}
    print(f"units {len(p.units)}, bound households // floor {p.maximum}, bound without contiguity "
          f"{exact['bound_no_contiguity']}, exact optimum {exact['optimum']} ({said[exact['all_in_band_possible']]}, "
          f"{exact['exact_s']} s)", flush=True)
    if peers:
        w, x, y = p.units.households, p.units.x, p.units.y
        out, secs, note = run_limited(_maxp, (w, x, y, tess.pairs, band[0]), limit)
        rows.append(measure("spopt max-p", secs, None if out is None else out[1], cgeom, tess, p, community,
                            buildings, estates, band, note or f"units: {len(w)}"))
        k = rows[0]["grids"]
        out, secs, note = run_limited(_gerry, (w, tess.pairs, k, band), limit)
        rows.append(measure("gerrychain tree", secs, None if out is None else out[1], cgeom, tess, p, community,
                            buildings, estates, band, note or f"k={k}, eps={out[2]:.3f}"))
    for r in rows:
        r.update(optimum=exact["optimum"])
    table = pd.DataFrame(rows)
    print(table.drop(columns="note").to_string(index=False), flush=True)
    for r in rows:
        print(f"  {r['method']}: {r['note']}")
    base = rows[0]["time_s"]
    for r in rows[1:]:
        print(f"time {r['method']} / gridcover = {r['time_s'] / base:.1f}"
              + (" (peer stopped at the limit: a lower bound)" if r["grids"] is None else ""))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    return rows


def small_row(buildings, most, seed, band):
    """One small instance: gridcover, its greedy path alone and the exact optimum."""
    comm, b, e, hh = synthetic(buildings, most, seed)
    t = time.perf_counter()
    p = propose_grids(comm, b, e, hh, band=band)
    secs = time.perf_counter() - t
    greedy = propose_grids(comm, b, e, hh, band=band, exact_steps=0)
    _, tess = unit_graph(comm, p)
    ex = exact_row(p, tess, band)

    def in_band(g):
        return int(((g["households"] >= band[0]) & (g["households"] <= band[1])).sum())

    return {"buildings": buildings, "max_hh": most, "seed": seed, "units": len(p.units), "households": len(hh),
            "bound": p.maximum, "bound_no_contiguity": ex["bound_no_contiguity"], "optimum": ex["optimum"],
            "all_in_band_possible": ex["all_in_band_possible"], "proven": ex["optimal"], "exact_s": ex["exact_s"],
            "gridcover": len(p.grids),
            "gridcover_in_band": in_band(p.grids), "gridcover_s": round(secs, 2), "greedy": len(greedy.grids),
            "greedy_in_band": in_band(greedy.grids)}


def small_instances(sizes, seeds, max_households):
    """gridcover, its greedy path alone (no exact division) and the exact optimum on synthetic communities of
    20–40 estates, with 0–``m`` households per building for each ``m`` of ``max_households``."""
    band = workload_band(1)
    t = pd.DataFrame([small_row(b, m, s, band) for b in sizes for m in max_households for s in seeds])
    print(f"\n== small instances (band {band[0]}-{band[1]}): gridcover, its greedy path alone, the exact optimum "
          "(HiGHS over connected candidate sets)")
    print(t.to_string(index=False))
    ok = t[t["all_in_band_possible"] == True]  # noqa: E712  (None: too big for one program)
    print(f"{len(ok)} of {len(t)} instances have a division with every grid in the band; on those: bound "
          f"households // floor {ok['bound'].sum()}, bound without contiguity {ok['bound_no_contiguity'].sum()}, "
          f"exact optimum {int(ok['optimum'].sum())}, gridcover {ok['gridcover_in_band'].sum()} grids in band "
          f"({int((ok['gridcover_in_band'] == ok['optimum']).sum())} instances at the optimum, "
          f"{int((ok['gridcover'] == ok['gridcover_in_band']).sum())} with every grid in band), greedy path alone "
          f"{ok['greedy_in_band'].sum()} ({int((ok['greedy_in_band'] == ok['optimum']).sum())} at the optimum). "
          f"On the {len(t) - len(ok)} others gridcover puts {t['gridcover_in_band'].sum() - ok['gridcover_in_band'].sum()}"
          f" of {t['gridcover'].sum() - ok['gridcover'].sum()} grids in the band. "
          f"Load average {os.getloadavg()[0]:.2f}", flush=True)
    return t


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


def sample_district(path, *, target, limit, peers):
    """Each community of the sample district with the band ``redraw propose`` gives it (the workload rule and its
    staffing, unless ``target``), then the sums and the check's time on the largest community."""
    from geo.redraw import check_proposal
    from gridcover.services.redraw import RedrawService
    from gridcover.store import open_workspace

    ctx = RedrawService(open_workspace(path)).context()
    totals = []
    for cid in ctx.communities["id"].astype(str):
        h = ctx.households_of({cid})
        band = target or staffing_band(ctx.grids_of({cid}), h, settings=ctx.settings)[0]
        frame = pd.DataFrame({"building_id": h["building_id"].to_numpy(), "persons": h["persons"].to_numpy(),
                              "x": h.geometry.x.to_numpy(), "y": h.geometry.y.to_numpy()})
        rows = bench_one(f"sample community {cid}", ctx.community(cid), ctx.buildings_of({cid}),
                         ctx.estates_of({cid}), frame, band=band, limit=limit, peers=peers,
                         current=ctx.grids_of({cid}), roads=ctx.roads)
        totals.extend(dict(r, community=cid) for r in rows)
    t = pd.DataFrame(totals)
    t["in_band_grids"] = (t["in_band"].fillna(0) * t["grids"].fillna(0)).round()
    print("\n== sample district, all communities")
    agg = t.groupby("method", sort=False).agg(time_s=("time_s", "sum"), grids=("grids", "sum"),
                                              in_band_grids=("in_band_grids", "sum"), bound=("bound", "sum"),
                                              optimum=("optimum", "sum"), hh_min=("hh_min", "min"),
                                              hh_max=("hh_max", "max"), mean_pp=("mean_pp", "mean"),
                                              split_buildings=("split_buildings", "sum"),
                                              split_estates=("split_estates", "sum"),
                                              coverage_valid=("coverage_valid", "all"),
                                              answered=("grids", "count"))
    print(agg.to_string())
    # the check on the largest community: goal < 1 s
    big = ctx.households["community_id"].value_counts().index[0]
    grids = ctx.grids_of({str(big)}).reset_index(drop=True)
    check_proposal(ctx, grids)
    best = min(check_proposal(ctx, grids)["timings_s"]["total"] for _ in range(3))
    print(f"\ncheck_proposal on community {big} ({len(grids)} grids, "
          f"{len(ctx.households_of({str(big)})):,} households): best of 3 {best:.3f} s (goal < 1 s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--buildings", type=int, default=10_000)
    ap.add_argument("--max-households", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default=None, help="a band such as 300-500 instead of the workload rule")
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds per peer run")
    ap.add_argument("--sample-time-limit", type=float, default=180.0, help="seconds per peer run on a sample community")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--small", type=int, default=10, help="seeds of the small instances per size (0 to skip)")
    ap.add_argument("--sample", default="out/sample", help="workspace of the sample district ('' to skip)")
    ap.add_argument("--check-households", type=int, default=15_000,
                    help="households of the synthetic community (50 grids) whose check is timed (0 to skip)")
    args = ap.parse_args(argv)
    peers = not args.no_peers
    target = parse_band(args.target)
    if args.check_households:
        time_check(args.check_households)
    if args.small:
        small_instances((200, 300, 400), range(args.small), (args.max_households, 30))
    if args.buildings:
        comm, b, e, hh = synthetic(args.buildings, args.max_households, args.seed)
        bench_one(f"synthetic community ({args.buildings:,} buildings, 0-{args.max_households} households each)",
                  comm, b, e, hh, band=target or workload_band(1), limit=args.time_limit, peers=peers)
    if args.sample:
        sample_district(args.sample, target=target, limit=args.sample_time_limit, peers=peers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
