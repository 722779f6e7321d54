"""Assign households to buildings, grids, communities and streets (户 → 楼栋 → 网格 → 社区 → 街道).

Vectorised over arrays: one STRtree query per step, no Python loop per
household. A household takes its building's grid, so the households of one
building always share a grid; the rules and the status codes are in
docs/data-model.md.

Example
-------
>>> import geopandas as gpd
>>> from shapely.geometry import Point, box
>>> grids = gpd.GeoDataFrame({"id": ["G1", "G2"]}, geometry=[box(0, 0, 50, 100), box(50, 0, 100, 100)],
...                          crs=32648)
>>> buildings = gpd.GeoDataFrame({"id": ["B1", "B2"]}, geometry=[box(10, 10, 30, 30), box(40, 60, 60, 80)],
...                              crs=32648)
>>> households = gpd.GeoDataFrame({"id": ["H1", "H2", "H3"]},
...                               geometry=[Point(20, 20), Point(45, 70), Point(150, 50)], crs=32648)
>>> assign_households(households, buildings, grids)[["building_id", "grid_id", "status"]]
  building_id grid_id             status
0          B1      G1                 ok
1          B2      G1     building_split
2         NaN     NaN  outside_all_grids
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.inside import _pick_min, _rank, points_in_polygons  # noqa: F401 (the assignment's tie rule)
from geo.settings import Settings

#: Status codes, most severe first (the order decides a household's single status).
STATUSES = (
    "no_location",
    "outside_all_grids",
    "in_overlapping_grids",
    "building_split",
    "no_building",
    "snapped_to_building",
    "ok",
)


def building_grids(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *,
                   settings: Settings = Settings()) -> pd.DataFrame:
    """For each building: the grid holding most of its footprint, and whether it is split or in an overlap.

    Columns: ``grid`` (position in ``grids``, -1 for none), ``grid_id``, ``grid_share`` (share of the
    footprint in that grid), ``covered_share`` (sum over grids), ``n_grids`` (grids holding at least
    ``split_min_share``), ``split``, ``in_overlap``, ``grid_ids`` (comma-separated, by share).
    """
    n = len(buildings)
    bgeom = buildings.geometry.to_numpy()
    ggeom = grids.geometry.to_numpy()
    gids = grids["id"].to_numpy().astype(str)
    grank = _rank(gids)
    tree = shapely.STRtree(ggeom)
    bi, gi = tree.query(bgeom, predicate="intersects")
    barea = shapely.area(bgeom)
    share = np.zeros(len(bi))
    if len(bi):
        shapely.prepare(ggeom)
        inside = shapely.contains_properly(ggeom[gi], bgeom[bi])
        share[inside] = 1.0
        rest = np.flatnonzero(~inside)
        if len(rest):
            inter = shapely.area(shapely.intersection(bgeom[bi[rest]], ggeom[gi[rest]]))
            share[rest] = inter / np.where(barea[bi[rest]] > 0, barea[bi[rest]], 1.0)
    significant = share >= settings.split_min_share
    bi_s, gi_s, share_s = bi[significant], gi[significant], share[significant]
    # best grid: highest share, ties → smallest id
    best = _pick_min(bi_s, -share_s * 1e6 + grank[gi_s] * 1e-3, gi_s, n) if len(bi_s) else np.full(n, -1)
    n_grids = np.bincount(bi_s, minlength=n)
    covered = np.bincount(bi_s, weights=share_s, minlength=n)
    grid_share = np.zeros(n)
    has = best >= 0
    if has.any():
        pair_best = best[bi_s] == gi_s
        grid_share[bi_s[pair_best]] = share_s[pair_best]
    in_overlap = covered > 1.0 + settings.split_min_share
    split = ~in_overlap & has & ((n_grids >= 2) | (covered < 1.0 - settings.split_min_share))
    # the grids of each building by share: joined as text only for the few buildings in several grids
    grid_ids = np.full(n, None, dtype=object)
    grid_ids[has] = gids[best[has]]
    multi = n_grids[bi_s] >= 2
    if multi.any():
        order = np.lexsort((grank[gi_s[multi]], -share_s[multi], bi_s[multi]))
        joined = pd.Series(gids[gi_s[multi][order]]).groupby(bi_s[multi][order]).agg(",".join)
        grid_ids[joined.index.to_numpy()] = joined.to_numpy()
    out = pd.DataFrame({
        "grid": best,
        "grid_id": np.where(has, gids[np.maximum(best, 0)], None),
        "grid_share": grid_share,
        "covered_share": covered,
        "n_grids": n_grids,
        "split": split,
        "in_overlap": in_overlap,
    }, index=buildings.index)
    out["grid_ids"] = grid_ids
    return out


def assign_households(households: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None,
                      grids: gpd.GeoDataFrame, *, settings: Settings = Settings(),
                      building_grid: pd.DataFrame | None = None) -> pd.DataFrame:
    """Building, grid and status of every household.

    Parameters
    ----------
    households, buildings, grids
        GeoDataFrames in one metric CRS, each with an ``id`` column; households may carry a
        ``building_id`` column (it wins over the point) and null geometries.
    building_grid
        The result of :func:`building_grids` if already computed.

    Returns
    -------
    DataFrame aligned with ``households``: ``building_id``, ``grid_id``, ``status``, ``flags``,
    ``location`` (``point``, ``building`` or ``none``), ``x``, ``y`` (the metric location used).
    """
    n = len(households)
    hgeom = households.geometry.to_numpy()
    has_point = ~(shapely.is_missing(hgeom) | shapely.is_empty(hgeom))
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    if has_point.any():
        x[has_point] = shapely.get_x(hgeom[has_point])
        y[has_point] = shapely.get_y(hgeom[has_point])

    have_buildings = buildings is not None and len(buildings) > 0
    bidx, snapped = _household_buildings(households, buildings, hgeom, has_point, x, y, settings=settings)

    # where each household is: its point, else its building's inside point
    location = np.where(has_point, "point", "none").astype(object)
    if have_buildings:
        from_building = ~has_point & (bidx >= 0)
        if from_building.any():
            inner = shapely.point_on_surface(buildings.geometry.to_numpy()[bidx[from_building]])
            x[from_building] = shapely.get_x(inner)
            y[from_building] = shapely.get_y(inner)
            location[from_building] = "building"

    gids = grids["id"].to_numpy().astype(str)
    with_b = bidx >= 0
    gidx, overlap, split = _household_grids(bidx, x, y, buildings, grids, building_grid=building_grid,
                                            settings=settings)

    no_location = ~np.isfinite(x)
    outside = ~no_location & (gidx < 0)
    no_building = ~no_location & ~with_b
    conditions = {
        "no_location": no_location,
        "outside_all_grids": outside,
        "in_overlapping_grids": overlap & ~outside,
        "building_split": split & ~outside,
        "no_building": no_building,
        "snapped_to_building": snapped,
    }
    status, flags = _status_codes(conditions, n)
    building_id = pd.Categorical.from_codes(bidx, buildings["id"].to_numpy().astype(str)) if have_buildings \
        else pd.Categorical.from_codes(np.full(n, -1), categories=pd.Index([], dtype=object))
    grid_id = pd.Categorical.from_codes(gidx, gids)
    location = pd.Categorical.from_codes(np.where(location == "point", 0, np.where(location == "building", 1, 2)),
                                         ["point", "building", "none"])
    return pd.DataFrame({
        "building_id": building_id,
        "grid_id": grid_id,
        "status": status,
        "flags": flags,
        "location": location,
        "x": x,
        "y": y,
    }, index=households.index)


def _household_buildings(households: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None, hgeom: np.ndarray,
                         has_point: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                         settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Each household's building index (its ``building_id``, else the building holding its point, else the
    nearest within ``snap_tolerance_m``; -1 for none) and whether it was snapped."""
    n = len(households)
    bidx = np.full(n, -1, dtype=np.int64)
    snapped = np.zeros(n, dtype=bool)
    if buildings is None or len(buildings) == 0:
        return bidx, snapped
    bgeom = buildings.geometry.to_numpy()
    bids = buildings["id"].to_numpy().astype(str)
    brank = _rank(bids)
    if "building_id" in households.columns:
        given = households["building_id"].to_numpy()
        has_given = pd.notna(given)
        if has_given.any():
            pos = pd.Index(bids).get_indexer(given[has_given].astype(str))
            bidx[np.flatnonzero(has_given)[pos >= 0]] = pos[pos >= 0]
    todo = (bidx < 0) & has_point
    if todo.any():
        idx_todo = np.flatnonzero(todo)
        found, _ = points_in_polygons(hgeom[idx_todo], bgeom, tie_rank=brank, xy=(x[idx_todo], y[idx_todo]))
        bidx[idx_todo] = found
        left = idx_todo[found < 0]
        if len(left) and settings.snap_tolerance_m > 0:
            pi, bi = shapely.STRtree(bgeom).query_nearest(hgeom[left], max_distance=settings.snap_tolerance_m,
                                                          all_matches=True)
            near = _pick_min(pi, brank[bi], bi, len(left))
            bidx[left] = near
            snapped[left[near >= 0]] = True
    return bidx, snapped


def _household_grids(bidx: np.ndarray, x: np.ndarray, y: np.ndarray, buildings: gpd.GeoDataFrame | None,
                     grids: gpd.GeoDataFrame, *, building_grid: pd.DataFrame | None,
                     settings: Settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each household's grid index (its building's grid, else the grid holding its location), whether it lies
    in overlapping grids and whether its building is split."""
    n = len(bidx)
    ggeom = grids.geometry.to_numpy()
    gids = grids["id"].to_numpy().astype(str)
    gidx = np.full(n, -1, dtype=np.int64)
    overlap = np.zeros(n, dtype=bool)
    split = np.zeros(n, dtype=bool)
    with_b = bidx >= 0
    if buildings is not None and len(buildings) > 0 and with_b.any():
        if building_grid is None:
            used = np.flatnonzero(np.bincount(bidx[with_b], minlength=len(buildings)))
            sub = building_grids(buildings.iloc[used], grids, settings=settings)
            bg_grid = np.full(len(buildings), -1, dtype=np.int64)
            bg_over = np.zeros(len(buildings), dtype=bool)
            bg_split = np.zeros(len(buildings), dtype=bool)
            bg_grid[used] = sub["grid"].to_numpy()
            bg_over[used] = sub["in_overlap"].to_numpy()
            bg_split[used] = sub["split"].to_numpy()
        else:
            bg_grid = building_grid["grid"].to_numpy()
            bg_over = building_grid["in_overlap"].to_numpy()
            bg_split = building_grid["split"].to_numpy()
        gidx[with_b] = bg_grid[bidx[with_b]]
        overlap[with_b] = bg_over[bidx[with_b]]
        split[with_b] = bg_split[bidx[with_b]]
    loose = ~with_b & np.isfinite(x)
    if loose.any():
        found, interior = points_in_polygons(shapely.points(x[loose], y[loose]), ggeom, tie_rank=_rank(gids))
        gidx[loose] = found
        overlap[loose] = interior >= 2
    return gidx, overlap, split


def _status_codes(conditions: dict[str, np.ndarray], n: int) -> tuple[pd.Categorical, pd.Categorical]:
    """The single status (most severe first) and the flags (every condition met) of each household."""
    # codes, not strings: one categorical per column (a million strings would cost more than the geometry)
    code = np.full(n, len(STATUSES) - 1, dtype=np.int8)
    bits = np.zeros(n, dtype=np.int16)
    for i, name in reversed(list(enumerate(STATUSES[:-1]))):
        code[conditions[name]] = i
    for i, name in enumerate(STATUSES[:-1]):
        bits |= conditions[name].astype(np.int16) << i
    status = pd.Categorical.from_codes(code, STATUSES)
    combos = np.flatnonzero(np.bincount(bits, minlength=1 << (len(STATUSES) - 1)))
    inverse = np.searchsorted(combos, bits)
    labels = [",".join(nm for i, nm in enumerate(STATUSES[:-1]) if c >> i & 1) for c in combos]  # one per combination
    flags = pd.Categorical.from_codes(inverse.ravel(), labels)
    return status, flags


def assign_communities(x: np.ndarray, y: np.ndarray, grid_id: np.ndarray, grids: gpd.GeoDataFrame,
                       communities: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Community and street id of each located household: its grid's, else the community polygon holding it."""
    n = len(x)
    grid_comm = pd.Series(grids["community_id"].to_numpy(), index=grids["id"].astype(str).to_numpy())
    comm_street = pd.Series(communities["street_id"].to_numpy(), index=communities["id"].astype(str).to_numpy())
    community = np.full(n, None, dtype=object)
    has_grid = pd.notna(grid_id)
    if has_grid.any():
        community[has_grid] = grid_comm.reindex(grid_id[has_grid].astype(str)).to_numpy()
    loose = ~has_grid & np.isfinite(x)
    if loose.any():
        cids = communities["id"].to_numpy().astype(str)
        found, _ = points_in_polygons(shapely.points(x[loose], y[loose]), communities.geometry.to_numpy(),
                                      tie_rank=_rank(cids))
        community[np.flatnonzero(loose)[found >= 0]] = cids[found[found >= 0]]
    street = np.full(n, None, dtype=object)
    has_comm = pd.notna(community)
    if has_comm.any():
        street[has_comm] = comm_street.reindex(community[has_comm].astype(str)).to_numpy()
    return community, street
