"""Grid diagnostics: gaps, overlaps, grids outside their community, split buildings, grid codes, workload.

Coverage checks run after snapping coordinates to ``settings.precision_m``
(shapely ``set_precision``), per community: shapely's coverage validation
tells whether a community's grids form a clean coverage; gaps are what the
community holds that no grid does, overlaps what two grids both claim. The
loop runs per community or per issue polygon, never per household.

Example
-------
>>> import geopandas as gpd
>>> import pandas as pd
>>> from shapely.geometry import box
>>> communities = gpd.GeoDataFrame({"id": ["C1"]}, geometry=[box(0, 0, 100, 100)], crs=32648)
>>> grids = gpd.GeoDataFrame({"id": ["G1", "G2"], "community_id": ["C1", "C1"]},
...                          geometry=[box(0, 0, 40, 100), box(60, 0, 100, 100)], crs=32648)
>>> located = pd.DataFrame({"x": [50.0], "y": [50.0], "persons": [3.0], "building_id": [None]})
>>> issues = grid_coverage_issues(grids, communities, None, None, located)
>>> issues[["kind", "area_m2", "households"]].values.tolist()
[['gap', 2000.0, 1]]
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.gridcodes import CODE_ISSUE_KINDS, CodePattern, check_codes
from geo.schema import SPECIAL_GROUPS
from geo.settings import Settings
from geo.workload import grid_part_time_workers, grid_staffing, grid_workers, is_over_capacity, workload_weights

#: Kinds of coverage issue: the geometric ones, then those of the grid codes (geo.gridcodes: malformed,
#: duplicate, not under the community's statistical code).
ISSUE_KINDS = ("gap", "overlap", "outside_community", "split_building", *CODE_ISSUE_KINDS)
_ISSUE_COLUMNS = ["kind", "community_id", "grid_ids", "building_id", "area_m2", "sliver", "households", "persons"]


def polygonal_parts(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (overlays may add lines and points); an array in, an
    array out (a geometry with no polygonal part becomes an empty polygon)."""
    out = np.asarray(geoms, dtype=object).copy()
    for i in np.flatnonzero(~np.isin(shapely.get_type_id(out), (3, 6))):  # only the few mixed results
        parts = [p for p in shapely.get_parts(out[i]) if p.geom_type in ("Polygon", "MultiPolygon")]
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _explode(geoms: np.ndarray, attrs: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    parts, index = shapely.get_parts(geoms, return_index=True)
    return parts, {k: np.asarray(v, dtype=object)[index] for k, v in attrs.items()}


def community_coverage(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *,
                       settings: Settings = Settings()) -> pd.DataFrame:
    """Per community: whether its grids form a valid coverage (no overlaps, no gaps narrower than
    ``gap_width_m``), by shapely's ``coverage_is_valid`` after reducing precision."""
    rows = []
    gp = shapely.set_precision(grids.geometry.to_numpy(), settings.precision_m)
    for cid, positions in grids.groupby("community_id").indices.items():
        rows.append({"community_id": cid, "grids": len(positions),
                     "coverage_valid": bool(shapely.coverage_is_valid(gp[positions], gap_width=settings.gap_width_m))})
    return pd.DataFrame(rows, columns=["community_id", "grids", "coverage_valid"])


def grid_coverage_issues(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame,
                         buildings: gpd.GeoDataFrame | None, building_grid: pd.DataFrame | None,
                         located: pd.DataFrame, *, settings: Settings = Settings(),
                         codes: bool = True) -> gpd.GeoDataFrame:
    """Gap, overlap, outside-community and split-building polygons with the households inside, and (with
    ``codes``) the grids whose given code is malformed, duplicate or not under their community's code
    (:func:`geo.gridcodes.check_codes`, the grid as geometry, ``code`` and ``detail`` set; other rows leave
    them empty).

    ``located`` holds one row per household with ``x``, ``y`` (metric), ``persons`` and ``building_id``.
    """
    crs = grids.crs
    gp = shapely.set_precision(grids.geometry.to_numpy(), settings.precision_m)
    cp = shapely.set_precision(communities.geometry.to_numpy(), settings.precision_m)
    gids = grids["id"].to_numpy().astype(str)
    gcomm = grids["community_id"].to_numpy().astype(str)
    cids = communities["id"].to_numpy().astype(str)
    cpos = pd.Index(cids)
    frames = []

    frames.append(_overlap_issues(gp, gids, gcomm, settings))
    frames.append(_gap_issues(grids, gp, gcomm, cp, cids, settings))

    # grids reaching outside their community
    own = cp[cpos.get_indexer(gcomm)]
    outside = polygonal_parts(shapely.difference(gp, own, grid_size=settings.precision_m))
    parts, attrs = _explode(outside, {"community_id": gcomm, "grid_ids": gids})
    frames.append(_issue_frame("outside_community", parts, attrs, settings))

    # buildings cut by a grid boundary
    if buildings is not None and building_grid is not None and building_grid["split"].any():
        split = building_grid["split"].to_numpy()
        geoms = buildings.geometry.to_numpy()[split]
        attrs = {
            "community_id": pd.Series(gcomm, index=gids).reindex(building_grid["grid_id"].to_numpy()[split].astype(str)).to_numpy(),
            "grid_ids": building_grid["grid_ids"].to_numpy()[split],
            "building_id": buildings["id"].to_numpy()[split],
        }
        frames.append(_issue_frame("split_building", geoms, attrs, settings, min_area=0.0))

    if codes and "code" in grids.columns:
        found = check_codes(grids, communities, pattern=CodePattern.of(settings))
        if len(found):
            frames.append(pd.DataFrame(found.drop(columns=["id", "households", "persons"])))

    issues = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else _issue_frame("gap", np.array([], dtype=object), {}, settings)
    issues = gpd.GeoDataFrame(issues, geometry="geometry", crs=crs)
    for column in ("code", "detail"):
        if column not in issues.columns:
            issues[column] = None
    _count_households(issues, located)
    issues.insert(0, "id", [f"{k}-{i + 1}" for k, i in zip(issues["kind"], issues.groupby("kind").cumcount())])
    return issues


def _overlap_issues(gp: np.ndarray, gids: np.ndarray, gcomm: np.ndarray, settings: Settings) -> pd.DataFrame:
    """Overlaps: every pair of grids whose interiors meet (one grid inside another too), one row per part."""
    tree = shapely.STRtree(gp)
    a, b = tree.query(gp, predicate="overlaps")
    a2, b2 = tree.query(gp, predicate="contains")  # one grid inside another also overlaps
    a = np.concatenate([a, a2])
    b = np.concatenate([b, b2])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo < hi
    pairs = np.unique(np.column_stack([lo[keep], hi[keep]]), axis=0) if keep.any() else np.zeros((0, 2), dtype=np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    if not len(a):
        return pd.DataFrame()  # nothing found: dropped before the issues are joined
    inter = polygonal_parts(shapely.intersection(gp[a], gp[b], grid_size=settings.precision_m))
    parts, attrs = _explode(inter, {"community_id": gcomm[a], "grid_ids": np.char.add(np.char.add(gids[a], ","), gids[b])})
    return _issue_frame("overlap", parts, attrs, settings)


def _gap_issues(grids: gpd.GeoDataFrame, gp: np.ndarray, gcomm: np.ndarray, cp: np.ndarray, cids: np.ndarray,
                settings: Settings) -> pd.DataFrame:
    """Gaps: what a community holds that none of its grids does; a community without any grid is one big gap."""
    cpos = pd.Index(cids)
    gap_geoms, gap_comm = [], []
    for cid, positions in grids.groupby("community_id").indices.items():
        j = cpos.get_loc(cid)
        covered = shapely.union_all(gp[positions], grid_size=settings.precision_m)
        gap = shapely.difference(cp[j], covered, grid_size=settings.precision_m)
        gap_geoms.append(gap)
        gap_comm.append(cid)
    no_grid = np.setdiff1d(cids, np.unique(gcomm))
    for cid in no_grid:  # a community without any grid is one big gap
        gap_geoms.append(cp[cpos.get_loc(cid)])
        gap_comm.append(cid)
    if not gap_geoms:
        return pd.DataFrame()  # nothing found: dropped before the issues are joined
    parts, attrs = _explode(polygonal_parts(np.array(gap_geoms, dtype=object)),
                            {"community_id": np.array(gap_comm, dtype=object), "grid_ids": np.full(len(gap_comm), "", dtype=object)})
    return _issue_frame("gap", parts, attrs, settings)


def _issue_frame(kind: str, geoms: np.ndarray, attrs: dict, settings: Settings, *, min_area: float | None = None) -> pd.DataFrame:
    geoms = np.asarray(geoms, dtype=object)
    area = shapely.area(geoms) if len(geoms) else np.zeros(0)
    keep = area >= (settings.min_issue_area_m2 if min_area is None else min_area)
    geoms = geoms[keep]
    frame = pd.DataFrame({
        "kind": kind,
        "community_id": np.asarray(attrs.get("community_id", np.full(len(keep), None)), dtype=object)[keep],
        "grid_ids": np.asarray(attrs.get("grid_ids", np.full(len(keep), None)), dtype=object)[keep],
        "building_id": np.asarray(attrs.get("building_id", np.full(len(keep), None)), dtype=object)[keep],
        "area_m2": np.round(area[keep], 2),
    })
    if kind in ("gap", "overlap"):
        # a piece thinner than gap_width vanishes when shrunk by half of it
        frame["sliver"] = shapely.is_empty(shapely.buffer(geoms, -settings.gap_width_m / 2.0)) if len(geoms) else []
    else:
        frame["sliver"] = False
    frame["geometry"] = geoms
    return frame


def _count_households(issues: gpd.GeoDataFrame, located: pd.DataFrame) -> None:
    """Households and persons inside each issue polygon (split buildings: those of the building)."""
    n = len(issues)
    households = np.zeros(n, dtype=np.int64)
    persons = np.zeros(n, dtype=np.int64)
    ok = np.isfinite(located["x"].to_numpy())
    pers = located["persons"].fillna(0).to_numpy(dtype=np.int64)
    area_kind = (issues["kind"] != "split_building").to_numpy()
    if area_kind.any() and ok.any():
        pts = shapely.points(located["x"].to_numpy()[ok], located["y"].to_numpy()[ok])
        tree = shapely.STRtree(pts)
        polys = issues.geometry.to_numpy()[area_kind]
        pi, hi = tree.query(polys, predicate="intersects")
        where = np.flatnonzero(area_kind)
        households[where] = np.bincount(pi, minlength=len(polys))
        persons[where] = np.bincount(pi, weights=pers[ok][hi], minlength=len(polys)).astype(np.int64)
    split_rows = np.flatnonzero(~area_kind)
    if len(split_rows):
        by_building = located.groupby("building_id")["persons"].agg(["size", "sum"])
        bid = issues["building_id"].to_numpy()[split_rows]
        households[split_rows] = by_building["size"].reindex(bid).fillna(0).to_numpy(dtype=np.int64)
        persons[split_rows] = by_building["sum"].reindex(bid).fillna(0).to_numpy(dtype=np.int64)
    issues["households"] = households
    issues["persons"] = persons


def grid_workload(grids: gpd.GeoDataFrame, households: pd.DataFrame, *, building_grid: pd.DataFrame | None = None,
                  settings: Settings = Settings()) -> pd.DataFrame:
    """Households, persons, special groups, load per full-time worker and the staffing check of each grid.

    ``households`` holds ``grid_id``, ``persons`` and the special-group flags. ``workload`` is the weighted
    household count (geo.workload: ``special_group_weight``; equal to ``households`` by default) and
    ``households_per_worker``, ``load_ratio`` and ``over_capacity`` are measured on it; ``part_time_workers``
    (兼职网格员, 0 where not given) counts in 网格员专职化比例 only; ``part_time_officers``,
    ``staff_missing`` and ``staffing_complete`` are the 一格三员 check (:func:`geo.workload.grid_staffing`).
    Returns a frame aligned with ``grids``.
    """
    gid = grids["id"].astype(str).to_numpy()
    assigned = households[households["grid_id"].notna()]
    groups = assigned.groupby("grid_id")
    out = pd.DataFrame(index=pd.Index(gid, name="id"))
    out["households"] = groups.size().reindex(gid).fillna(0).astype(np.int64)
    out["persons"] = groups["persons"].sum().reindex(gid).fillna(0).astype(np.int64)
    out["workers"] = grid_workers(grids)
    out["part_time_workers"] = grid_part_time_workers(grids)
    weights = workload_weights(assigned, settings=settings)
    out["workload"] = pd.Series(weights, index=assigned.index).groupby(assigned["grid_id"]).sum() \
        .reindex(gid).fillna(0).round(1).to_numpy()
    w = out["workers"].to_numpy()
    load = out["workload"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(w > 0, load / np.maximum(w, 1), np.nan)
    out["households_per_worker"] = np.round(per, 1)
    out["persons_per_worker"] = np.round(np.where(w > 0, out["persons"].to_numpy() / np.maximum(w, 1), np.nan), 1)
    out["load_ratio"] = np.round(per / settings.households_per_worker, 3)
    out["over_capacity"] = is_over_capacity(load, w, settings=settings)
    out["unstaffed"] = w == 0
    staffing = grid_staffing(grids)
    for column in staffing.columns:
        out[column] = staffing[column].to_numpy()
    for group in SPECIAL_GROUPS:
        if group in assigned.columns:
            out[group] = groups[group].sum().reindex(gid).fillna(0).astype(np.int64)
    if building_grid is not None:
        split = building_grid[building_grid["split"]]
        out["split_buildings"] = split.groupby("grid_id").size().reindex(gid).fillna(0).astype(np.int64)
    else:
        out["split_buildings"] = 0
    return out.reset_index(drop=True).set_index(grids.index)
