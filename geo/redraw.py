"""Check a redraw of grid boundaries (网格调整) and compare it with the current grids.

A proposal is a set of grid polygons for one or more communities (a GeoJSON file, or one drawn in QGIS), or a
list of moves "these buildings/estates go to grid X" (:func:`grids_from_moves`). :func:`check_proposal`
answers, for the communities it touches, with plain JSON-ready data:

- validity: gaps and overlaps (shapely coverage checks after ``set_precision``, gaps narrower than
  ``gap_width_m`` are slivers but still gaps), parts outside the community, grids in several pieces,
  buildings and estates cut by a boundary (an estate above the ceiling may be cut along building lines);
- balance: households and persons per grid against the band, the workload rule per full-time worker
  (geo.workload: ``over_capacity`` as the scorecard has it), the staffing check, special-group load;
- shape: Polsby-Popper compactness, share of the boundary between grids that follows a road centre line;
- the diff against the current grids: every household, building and special-group count that changes
  grid (and so worker), grids created, removed, merged and split, and the blind-spot and 15-minute reach
  figures before and after.

Everything works in the metric CRS of a :class:`RedrawContext` (built once per workspace version).

The frames come from the caller (``gridcover.services.redraw`` reads them from the store).

Example
-------
One grid of two households cut in two halves: valid, and one household changes grid (and worker).

>>> import geopandas as gpd
>>> from shapely.geometry import Point, box
>>> square = box(104.0, 30.0, 104.01, 30.01)
>>> ctx = RedrawContext.from_frames(
...     communities=gpd.GeoDataFrame({"id": ["C1"]}, geometry=[square], crs=4326),
...     grids=gpd.GeoDataFrame({"id": ["G1"], "community_id": ["C1"], "worker_name": ["王芳"],
...                             "full_time_workers": [1]}, geometry=[square], crs=4326),
...     households=gpd.GeoDataFrame({"id": ["H1", "H2"], "building_id": [None, None], "persons": [3, 2],
...                                  "grid_id": ["G1", "G1"], "community_id": ["C1", "C1"]},
...                                 geometry=[Point(104.002, 30.005), Point(104.008, 30.005)], crs=4326))
>>> community = ctx.communities.geometry.iloc[0]
>>> x0, y0, x1, y1 = community.bounds
>>> halves = [community.intersection(box(x0, y0, (x0 + x1) / 2, y1)),
...           community.intersection(box((x0 + x1) / 2, y0, x1, y1))]
>>> proposal = gpd.GeoDataFrame({"id": ["G1", "G2"], "community_id": ["C1", "C1"],
...                              "worker_name": ["王芳", "李强"], "full_time_workers": [1, 1]},
...                             geometry=halves, crs=ctx.metric_crs)
>>> report = check_proposal(ctx, proposal, band=(1, 2))
>>> report["valid"], report["moved"]["households"], [(g["id"], g["households"]) for g in report["grids"]]
(True, 1, [('G1', 1), ('G2', 1)])
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.assign import assign_households, building_grids
from geo.crs import local_metric_crs
from geo.diagnose import community_coverage, grid_coverage_issues, grid_workload, polygonal_parts
from geo.errors import InputError
from geo.gridcodes import CodePattern, check_codes
from geo.propose import (DEFAULT_BAND, _reattach_crumbs, dissolve_cells, exact_coverage, parse_band, polsby_popper,
                          tessellate)
from geo.schema import SPECIAL_GROUPS
from geo.settings import Settings
from geo.workload import staffing_summary

#: A grid boundary within this distance (m) of a road centre line follows the road (half a wide street).
ROAD_FOLLOW_M = 15.0
#: Fields of a grid that a proposal carries (the rest is computed).
GRID_FIELDS = ("id", "name", "community_id", "worker_name", "worker_phone", "full_time_workers",
               "info_officer_name", "info_officer_phone", "mediator_name", "mediator_phone", "part_time_workers", "code")
#: A new grid "merges" old grids that each send it at least this share of their households; an old grid is
#: "split" when at least two new grids each receive this share of its households.
MERGE_SPLIT_SHARE = 0.2
#: A grid kept by id is "reshaped" when it gains or loses at least this area (m²): half a small building's
#: footprint; moves rebuild the community's coverage, which shifts shared edges by a few m² (measured up to 11 m²
#: on the sample) without anything changing hands.
RESHAPED_MIN_M2 = 50.0


@dataclass
class RedrawContext:
    """The current state in one metric CRS: what every check compares against."""

    metric_crs: pyproj.CRS
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame | None
    estates: gpd.GeoDataFrame | None
    households: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    settings: Settings = field(default_factory=Settings)
    version: int | str = 0
    _cells: dict = field(default_factory=dict, repr=False)
    _before: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_frames(cls, *, communities: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, households: gpd.GeoDataFrame,
                    buildings: gpd.GeoDataFrame | None = None, estates: gpd.GeoDataFrame | None = None,
                    roads: gpd.GeoDataFrame | None = None, settings: Settings | None = None,
                    version: int | str = 0, metric_crs: pyproj.CRS | str | None = None) -> "RedrawContext":
        """Build from the workspace's layers in WGS-84 (``None`` for a missing optional layer).

        Parameters
        ----------
        communities, grids, households
            The stored layers (households with at least ``id``, ``building_id``, ``persons``).
        buildings, estates, roads
            Optional layers.
        settings
            Thresholds of the checks; the defaults when ``None``.
        version
            The workspace version the context stands for.
        metric_crs
            The metric CRS to work in; a local one around the grids when ``None``.

        Returns
        -------
        RedrawContext
            Every frame in ``metric_crs``.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely.geometry import Point, box
        >>> square = box(104.0, 30.0, 104.01, 30.01)
        >>> ctx = RedrawContext.from_frames(
        ...     communities=gpd.GeoDataFrame({"id": ["C1"]}, geometry=[square], crs=4326),
        ...     grids=gpd.GeoDataFrame({"id": ["G1"], "community_id": ["C1"]}, geometry=[square], crs=4326),
        ...     households=gpd.GeoDataFrame({"id": ["H1"], "building_id": [None], "persons": [3]},
        ...                                 geometry=[Point(104.005, 30.005)], crs=4326))
        >>> ctx.metric_crs.is_projected, sorted(ctx.community_ids())
        (True, ['C1'])
        """
        if metric_crs is None:
            x0, y0, x1, y1 = grids.total_bounds
            metric_crs = local_metric_crs((x0 + x1) / 2.0, (y0 + y1) / 2.0)
        metric_crs = pyproj.CRS.from_user_input(metric_crs)

        def m(frame):
            return None if frame is None else frame.to_crs(metric_crs)

        hh = households
        keep = [c for c in ("id", "building_id", "grid_id", "community_id", "persons", "status", "basic_complete",
                            *SPECIAL_GROUPS) if c in hh.columns]
        households = m(hh[keep + [hh.geometry.name]])
        for g in SPECIAL_GROUPS:
            if g in households.columns:
                households[g] = households[g].fillna(False).astype(bool)
        households["persons"] = households["persons"].astype(float).fillna(0)
        grid_cols = [c for c in GRID_FIELDS if c in grids.columns]
        return cls(metric_crs=metric_crs, communities=m(communities), grids=m(grids[grid_cols + ["geometry"]]),
                   buildings=m(buildings), estates=m(estates), households=households,
                   roads=m(roads), settings=settings or Settings(), version=version)

    def community_ids(self) -> set[str]:
        return set(self.communities["id"].astype(str))

    def community(self, cid: str) -> gpd.GeoDataFrame:
        rows = self.communities[self.communities["id"].astype(str) == str(cid)]
        if rows.empty:
            raise InputError(f"no community {cid!r} in the workspace (known: {', '.join(sorted(self.community_ids())[:10])})",
                             field="community")
        return rows

    def households_of(self, cids: set[str]) -> gpd.GeoDataFrame:
        return self.households[self.households["community_id"].astype(str).isin(cids).to_numpy()]

    def buildings_of(self, cids: set[str]) -> gpd.GeoDataFrame | None:
        """Buildings whose inside point lies in one of the communities, or holding one of their households."""
        if self.buildings is None:
            return None
        polys = self.communities[self.communities["id"].astype(str).isin(cids)].geometry.to_numpy()
        inner = shapely.point_on_surface(self.buildings.geometry.to_numpy())
        hit = np.zeros(len(self.buildings), dtype=bool)
        bi, _ = shapely.STRtree(polys).query(inner, predicate="intersects")
        hit[bi] = True
        used = self.households_of(cids)["building_id"].dropna().astype(str)
        hit |= self.buildings["id"].astype(str).isin(set(used)).to_numpy()
        return self.buildings[hit]

    def estates_of(self, cids: set[str]) -> gpd.GeoDataFrame | None:
        if self.estates is None:
            return None
        polys = self.communities[self.communities["id"].astype(str).isin(cids)].geometry.to_numpy()
        inner = shapely.point_on_surface(self.estates.geometry.to_numpy())
        ei, _ = shapely.STRtree(polys).query(inner, predicate="intersects")
        return self.estates.iloc[np.unique(ei)]

    def grids_of(self, cids: set[str]) -> gpd.GeoDataFrame:
        return self.grids[self.grids["community_id"].astype(str).isin(cids).to_numpy()]


def proposal_from_geojson(doc: dict, ctx: RedrawContext, *, label: str = "proposal") -> gpd.GeoDataFrame:
    """A proposal from a GeoJSON FeatureCollection (WGS-84 lon/lat) as a dict."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InputError("must be a GeoJSON FeatureCollection of grid polygons", file=label)
    if not doc["features"]:
        raise InputError("holds no feature: a proposal needs at least one grid polygon", file=label)
    for i, feat in enumerate(doc["features"]):
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise InputError("not a GeoJSON feature with a geometry", file=label, index=i)
    try:
        frame = gpd.GeoDataFrame.from_features(doc["features"], crs=4326)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"not valid GeoJSON: {exc}", file=label) from None
    return proposal_frame(frame, ctx, label=label)


def proposal_frame(frame: gpd.GeoDataFrame, ctx: RedrawContext, *, label: str = "proposal") -> gpd.GeoDataFrame:
    """Validate grid polygons and bring them into the context's metric CRS."""
    if len(frame) == 0:
        raise InputError("holds no feature: a proposal needs at least one grid polygon", file=label)
    if "id" not in frame.columns:
        raise InputError("every grid needs an 'id' field", file=label, field="id")
    ids = frame["id"]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise InputError("empty id", file=label, index=i, field="id")
    ids = ids.astype(str)
    dup = ids.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"duplicate id {ids.iloc[i]!r}", file=label, index=i, feature_id=ids.iloc[i], field="id")
    geoms = frame.geometry.to_numpy()
    types = shapely.get_type_id(geoms)
    bad = shapely.is_missing(geoms) | ~np.isin(types, (3, 6))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "no geometry" if shapely.is_missing(geoms[i]) else f"a {shapely.get_type_id(geoms[i])} geometry"
        raise InputError(f"a grid must be a Polygon or MultiPolygon, not {kind}", file=label, index=i,
                         feature_id=ids.iloc[i], field="geometry")
    x0, y0, x1, y1 = frame.to_crs(4326).total_bounds if frame.crs is not None else frame.total_bounds
    if frame.crs is not None and frame.crs.is_geographic and not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError("coordinates are not lon/lat degrees", file=label)
    out = frame.to_crs(ctx.metric_crs)
    out["id"] = ids.to_numpy()
    invalid = ~shapely.is_valid(out.geometry.to_numpy())
    if invalid.any():
        fixed = shapely.make_valid(out.geometry.to_numpy()[invalid])
        out.loc[invalid, "geometry"] = polygonal_parts(fixed)
    known = ctx.community_ids()
    if "community_id" not in out.columns:
        out["community_id"] = None
    _fill_community_ids(out, ctx)
    cid = out["community_id"].astype(str)
    unknown = ~cid.isin(known) | out["community_id"].isna()
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(f"community_id {out['community_id'].iloc[i]!r} is not a community of the workspace",
                         file=label, index=i, feature_id=ids.iloc[i], field="community_id")
    out["community_id"] = cid.to_numpy()
    # a grid id used by another community's current grid would make two grids one
    others = ctx.grids[~ctx.grids["community_id"].astype(str).isin(set(cid))]
    clash = out["id"].isin(set(others["id"].astype(str)))
    if clash.any():
        i = int(np.flatnonzero(clash.to_numpy())[0])
        raise InputError(f"id {out['id'].iloc[i]!r} belongs to a grid of another community", file=label, index=i,
                         feature_id=out["id"].iloc[i], field="id")
    if "name" not in out.columns:
        out["name"] = out["id"]
    out["name"] = out["name"].where(out["name"].notna(), out["id"])
    for f in ("worker_name", "worker_phone"):
        if f not in out.columns:
            # a grid keeping its id keeps its worker unless the proposal says otherwise
            cur = ctx.grids.set_index(ctx.grids["id"].astype(str))
            out[f] = cur[f].reindex(out["id"]).to_numpy() if f in cur.columns else None
    out = carry_codes(ctx, out)
    for f in ("full_time_workers", "part_time_workers"):
        if f not in out.columns:
            continue
        bad = pd.to_numeric(out[f], errors="coerce").isna() & out[f].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"not a whole number: {out[f].iloc[i]!r}", file=label, index=i,
                             feature_id=out["id"].iloc[i], field=f)
        out[f] = _workers_column(out[f])
    keep = [c for c in GRID_FIELDS if c in out.columns]
    return out[keep + ["geometry"]].reset_index(drop=True)


def _fill_community_ids(out: gpd.GeoDataFrame, ctx: RedrawContext) -> None:
    """Give each grid without a ``community_id`` the community holding most of it (in place): a polygon drawn
    in QGIS without the field."""
    cid = out["community_id"]
    need = cid.isna() | (cid.astype(str).str.strip() == "")
    if need.any():
        cg = ctx.communities.geometry.to_numpy()
        pi, ci = shapely.STRtree(cg).query(out.geometry.to_numpy()[need.to_numpy()], predicate="intersects")
        area = shapely.area(shapely.intersection(out.geometry.to_numpy()[need.to_numpy()][pi], cg[ci]))
        best = pd.DataFrame({"p": pi, "c": ci, "a": area}).sort_values("a", ascending=False).drop_duplicates("p")
        fill = np.full(int(need.sum()), None, dtype=object)
        fill[best["p"].to_numpy()] = ctx.communities["id"].astype(str).to_numpy()[best["c"].to_numpy()]
        out.loc[need, "community_id"] = fill


def carry_codes(ctx: RedrawContext, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The proposed grids, each keeping the code of the current grid of its community with the same id where
    the proposal gives none (a layer drawn without the ``code`` field, or with it blank); a copy."""
    out = grids.copy()
    if "code" not in ctx.grids.columns:
        return out
    cur = ctx.grids[ctx.grids["community_id"].astype(str).isin(set(out["community_id"].astype(str)))]
    kept = pd.Series(cur["code"].to_numpy(), index=cur["id"].astype(str).to_numpy())
    kept = kept[~kept.index.duplicated()].reindex(out["id"].astype(str).to_numpy()).to_numpy(dtype=object)
    given = out["code"] if "code" in out.columns else pd.Series(None, index=out.index, dtype=object)
    blank = (given.isna() | (given.astype("string").str.strip() == "")).fillna(True).to_numpy(dtype=bool)
    out["code"] = np.where(blank, kept, given.to_numpy(dtype=object))
    out["code"] = out["code"].where(out["code"].notna(), None)
    return out


# ------------------------------------------------------------------ moves
@dataclass
class UnitCells:
    """Every building and estate of one community with the area nearest to it (a Voronoi tessellation of
    points on their outlines): moving a building moves its cell, so the grids still tile the community."""

    community_id: str
    community: shapely.Geometry
    building_ids: np.ndarray
    estate_ids: np.ndarray
    building_estate: np.ndarray
    cells: np.ndarray   # one per label: buildings first, then estates
    piece_geom: np.ndarray
    piece_label: np.ndarray

    def region(self, *, building_ids=(), estate_ids=()) -> shapely.Geometry:
        """The area (cells and footprints) that moves with these buildings and estates."""
        bpos = pd.Index(self.building_ids).get_indexer([str(b) for b in building_ids])
        epos = pd.Index(self.estate_ids).get_indexer([str(e) for e in estate_ids])
        labels = list(bpos[bpos >= 0])
        if len(epos[epos >= 0]):
            labels += list(len(self.building_ids) + epos[epos >= 0])
            labels += list(np.flatnonzero(np.isin(self.building_estate, epos[epos >= 0])))
        labels = np.unique(np.asarray(labels, dtype=np.int64))
        if not len(labels):
            return shapely.Polygon()
        own = self.piece_geom[np.isin(self.piece_label, labels)]
        return shapely.union_all(np.r_[self.cells[labels], own], grid_size=0.01)


def unit_cells(ctx: RedrawContext, community_id: str, *, spacing_m: float = 10.0) -> UnitCells:
    """The tessellation of a community by its buildings and estates (cached in the context)."""
    key = (str(community_id), spacing_m)
    if key in ctx._cells:
        return ctx._cells[key]
    comm = ctx.community(community_id)
    cgeom = shapely.set_precision(comm.geometry.iloc[0], ctx.settings.precision_m)
    b = ctx.buildings_of({str(community_id)})
    e = ctx.estates_of({str(community_id)})
    b = b if b is not None else gpd.GeoDataFrame({"id": []}, geometry=[], crs=ctx.metric_crs)
    e = e if e is not None else gpd.GeoDataFrame({"id": []}, geometry=[], crs=ctx.metric_crs)
    bids = b["id"].astype(str).to_numpy(dtype=object)
    eids = e["id"].astype(str).to_numpy(dtype=object)
    best = np.full(len(b), -1, dtype=np.int64)
    if "estate_id" in b.columns and len(e):
        has = b["estate_id"].notna().to_numpy()
        best[has] = pd.Index(eids).get_indexer(b["estate_id"][has].astype(str))
    pieces = np.r_[b.geometry.to_numpy(), shapely.intersection(e.geometry.to_numpy(), cgeom)]
    labels = np.r_[np.arange(len(b)), len(b) + np.arange(len(e))]
    if len(pieces) == 0:
        raise InputError(f"community {community_id} holds no building or estate to move", field="moves")
    tess = tessellate(cgeom, pieces, labels, spacing_m=spacing_m)
    n = len(b) + len(e)
    order = np.argsort(tess.label, kind="stable")
    bounds = np.searchsorted(tess.label[order], np.arange(n + 1))
    cells = dissolve_cells(tess.cells[order], bounds, ctx.settings.precision_m)
    cells = shapely.intersection(cells, cgeom, grid_size=ctx.settings.precision_m)
    out = UnitCells(community_id=str(community_id), community=cgeom, building_ids=bids, estate_ids=eids,
                    building_estate=best, cells=cells, piece_geom=pieces, piece_label=labels)
    ctx._cells[key] = out
    return out


def grids_from_moves(ctx: RedrawContext, moves: list[dict], *, base: gpd.GeoDataFrame | None = None,
                     label: str = "moves") -> gpd.GeoDataFrame:
    """The grids after moving buildings/estates: ``[{"building_id" or "estate_id": ..., "to": grid id}, …]``.

    ``base`` are the grids the moves start from (the current grids of the communities by default). A ``to``
    that names no grid yet creates one (with that id) in the unit's community.
    """
    parsed = _parse_moves(ctx, moves, base=base, label=label)
    cids = {p[3] for p in parsed}
    grids = (base if base is not None else ctx.grids_of(cids)).copy()
    grids = grids[grids["community_id"].astype(str).isin(cids)].reset_index(drop=True)
    grids = _move_units(ctx, grids, parsed, cids)
    return _rebuild_coverage(ctx, grids, cids)


def _parse_moves(ctx: RedrawContext, moves: list[dict], *, base: gpd.GeoDataFrame | None,
                 label: str) -> list[tuple[str, str, str, str]]:
    """The moves checked, as ``(kind, unit id, to grid, community)``; ``InputError`` naming the move else."""
    if not isinstance(moves, list) or not moves:
        raise InputError("give a non-empty list of moves [{\"building_id\" or \"estate_id\": …, \"to\": grid id}]",
                         field=label)
    b_comm = {}
    hh = ctx.households
    if ctx.buildings is not None:
        by_b = hh.dropna(subset=["building_id"]).drop_duplicates("building_id")
        b_comm = dict(zip(by_b["building_id"].astype(str), by_b["community_id"].astype(str)))
    grid_comm = dict(zip(ctx.grids["id"].astype(str), ctx.grids["community_id"].astype(str)))
    if base is not None:
        grid_comm.update(zip(base["id"].astype(str), base["community_id"].astype(str)))
    parsed = []
    for i, mv in enumerate(moves):
        if not isinstance(mv, dict):
            raise InputError("each move must be an object", field=f"{label}[{i}]")
        to = mv.get("to")
        kinds = [k for k in ("building_id", "estate_id") if mv.get(k) not in (None, "")]
        if len(kinds) != 1 or to in (None, ""):
            raise InputError('give exactly one of "building_id" or "estate_id", and "to"', field=f"{label}[{i}]")
        kind = kinds[0]
        uid = str(mv[kind])
        if kind == "building_id":
            if ctx.buildings is None or uid not in set(ctx.buildings["id"].astype(str)):
                raise InputError(f"no building {uid!r} in the workspace", field=f"{label}[{i}].building_id")
            cid = b_comm.get(uid) or _community_at(ctx, ctx.buildings[ctx.buildings["id"].astype(str) == uid])
        else:
            if ctx.estates is None or uid not in set(ctx.estates["id"].astype(str)):
                raise InputError(f"no estate {uid!r} in the workspace", field=f"{label}[{i}].estate_id")
            cid = _community_at(ctx, ctx.estates[ctx.estates["id"].astype(str) == uid])
        if cid is None:
            raise InputError(f"{uid} lies in no community", field=f"{label}[{i}]")
        to = str(to)
        if to in grid_comm and grid_comm[to] != cid:
            raise InputError(f"grid {to} belongs to community {grid_comm[to]}, but {uid} lies in {cid}",
                             field=f"{label}[{i}].to")
        parsed.append((kind, uid, to, cid))
    return parsed


def _move_units(ctx: RedrawContext, grids: gpd.GeoDataFrame, parsed: list[tuple[str, str, str, str]],
                cids: set[str]) -> gpd.GeoDataFrame:
    """The grids with each moved unit's area cut from its community's grids and given to its target grid
    (a new grid when the target is new)."""
    for cid in cids:
        cells = unit_cells(ctx, cid)
        for kind, uid, to, c in parsed:
            if c != cid:
                continue
            region = cells.region(**{"building_ids" if kind == "building_id" else "estate_ids": [uid]})
            region = polygonal_parts(np.array([region], dtype=object))[0]  # overlays may leave lines in it
            geoms = grids.geometry.to_numpy()
            in_comm = (grids["community_id"].astype(str) == cid).to_numpy()
            geoms[in_comm] = polygonal_parts(shapely.difference(geoms[in_comm], region, grid_size=ctx.settings.precision_m))
            if to in set(grids["id"].astype(str)):
                j = int(np.flatnonzero(grids["id"].astype(str).to_numpy() == to)[0])
                geoms[j] = polygonal_parts(np.array([shapely.union(geoms[j], region, grid_size=ctx.settings.precision_m)],
                                               dtype=object))[0]
                grids = grids.set_geometry(geoms)
            else:
                grids = grids.set_geometry(geoms)
                row = {c_: None for c_ in grids.columns}
                row.update({"id": to, "name": to, "community_id": cid, "worker_name": "", "worker_phone": "",
                            "geometry": region})
                grids = gpd.GeoDataFrame(pd.concat([grids, gpd.GeoDataFrame([row], geometry="geometry",
                                                                             crs=grids.crs)], ignore_index=True),
                                         geometry="geometry", crs=grids.crs)
    return grids


def _rebuild_coverage(ctx: RedrawContext, grids: gpd.GeoDataFrame, cids: set[str]) -> gpd.GeoDataFrame:
    """Each community's grids as an edge-matched coverage, crumbs given to their neighbours, empty grids dropped."""
    geoms = polygonal_parts(grids.geometry.to_numpy())
    # the moved areas rarely follow the drawn lines: rebuild each community's grids as an edge-matched
    # coverage (no sliver), then give pieces of a grid that hold none of its buildings to their neighbour
    for cid in cids:
        mine = np.flatnonzero(grids["community_id"].astype(str).to_numpy() == cid)
        community = ctx.communities.geometry.to_numpy()[
            np.flatnonzero(ctx.communities["id"].astype(str).to_numpy() == cid)[0]]
        geoms[mine] = exact_coverage(geoms[mine], community, precision_m=ctx.settings.precision_m)
        if ctx.buildings is not None and len(ctx.buildings):
            frame = gpd.GeoDataFrame({"id": grids["id"].to_numpy()[mine]}, geometry=geoms[mine], crs=grids.crs)
            held = building_grids(ctx.buildings, frame, settings=ctx.settings)["grid"].to_numpy()
            fp = ctx.buildings.geometry.to_numpy()
            own = np.array([shapely.union_all(fp[held == g]) if (held == g).any() else shapely.Polygon()
                            for g in range(len(mine))], dtype=object)  # one union per grid
            geoms[mine] = _reattach_crumbs(geoms[mine], own, ctx.settings.precision_m)
    empty = shapely.is_empty(geoms) | (shapely.area(geoms) <= 0)
    grids = grids.set_geometry(geoms)
    return grids[~empty].reset_index(drop=True)


def _community_at(ctx: RedrawContext, rows: gpd.GeoDataFrame) -> str | None:
    pt = shapely.point_on_surface(rows.geometry.iloc[0])
    cg = ctx.communities.geometry.to_numpy()
    hit = np.flatnonzero(shapely.intersects(cg, pt))
    return str(ctx.communities["id"].iloc[hit[0]]) if len(hit) else None


# ------------------------------------------------------------------ the check
def check_proposal(ctx: RedrawContext, proposal: gpd.GeoDataFrame, *, band: str | tuple[int, int] = DEFAULT_BAND,
                   road_follow_m: float = ROAD_FOLLOW_M) -> dict:
    """Validity, balance, shape and the diff of a proposal (metric grids with ``id``, ``community_id``).

    Returns a JSON-ready dict; ``valid`` is true when the proposal makes no new problem: no gap, overlap, part
    outside its community, grid in several pieces, split building, split estate (other than one above the
    ceiling) or grid code problem (``codes``: :func:`check_proposal_codes`) that the current grids of its
    communities do not already have (:func:`judge_problems` says how a problem is recognised across versions).
    ``issues`` lists every problem by name and place, ``new`` or ``remaining``; ``fixed`` those it repairs;
    ``clean`` is true when none is left; ``problems`` names the new ones (an old one does not block a redraw).
    Balance against the band is reported per grid (``in_band``) and in ``all_in_band`` but does not make a
    proposal invalid (a street office may have its reasons; the report shows them). The module docstring
    shows one.
    """
    t0 = time.perf_counter()
    lo, hi = parse_band(band) or DEFAULT_BAND
    s = ctx.settings
    cids = set(proposal["community_id"].astype(str))
    comms = ctx.communities[ctx.communities["id"].astype(str).isin(cids)].reset_index(drop=True)
    new = proposal.reset_index(drop=True)
    old = ctx.grids_of(cids).reset_index(drop=True)
    hh = ctx.households_of(cids).reset_index(drop=True)
    buildings, estates = (f.reset_index(drop=True) if f is not None else None
                          for f in (ctx.buildings_of(cids), ctx.estates_of(cids)))
    t1 = time.perf_counter()

    # ---- where each household goes, and what is wrong with the grids (before and after)
    assigned, bg, located, check = _assess(new, comms, hh, buildings, estates, hi=hi, settings=s)
    new_grid = assigned["grid_id"].astype(object).to_numpy()
    old_grid = hh["grid_id"].astype(object).to_numpy() if "grid_id" in hh.columns else np.full(len(hh), None, object)
    persons = hh["persons"].to_numpy(dtype=float)
    t2 = time.perf_counter()
    gp, coverage = check["gp"], check["coverage"]
    codes = check_proposal_codes(ctx, new)
    issues, fixed, problems = _judged(ctx, check, codes, new=new, old=old, estates=estates, hi=hi)
    t3 = time.perf_counter()

    # ---- balance and shape
    work = grid_workload(new, _workload_input(hh, new_grid, persons), building_grid=bg, settings=s)
    pp = polsby_popper(gp)
    road_share = _road_share(gp, comms, ctx.roads, road_follow_m, s)
    basic_new = _basic_share(hh, new_grid)
    basic_old = _basic_share(hh, old_grid)
    grid_rows = _grid_rows(new, work, pp=pp, road_share=road_share, basic_new=basic_new, basic_old=basic_old,
                           band=(lo, hi))
    t4 = time.perf_counter()

    # ---- the diff
    diff = _diff(hh, assigned, old_grid, new_grid, old, new)
    blind = _blind_counts(hh, assigned)
    blind.update(_risk_blind_spots())
    reach = _reach_diff(hh, old_grid, new_grid)
    t5 = time.perf_counter()
    valid = not problems
    return {
        "valid": valid,
        "problems": problems,
        "clean": not issues,
        "issues": issues,
        "fixed": fixed,
        "issue_counts": {"new": sum(r["status"] == "new" for r in issues),
                         "remaining": sum(r["status"] == "remaining" for r in issues), "fixed": len(fixed)},
        "band": [lo, hi],
        "base_version": ctx.version,
        "communities": _community_rows(cids, old=old, new=new, hh=hh, coverage=coverage),
        "gaps": check["gaps"], "overlaps": check["overlaps"], "outside_community": check["outside"],
        "non_contiguous": check["non_contiguous"], "split_buildings": check["split_b"],
        "split_estates": check["split_estates"],
        "codes": codes,
        "grids": grid_rows,
        "summary": _balance_summary(grid_rows, pp=pp, households=len(hh), lo=lo),
        "all_in_band": bool(all(r["in_band"] for r in grid_rows)),
        **diff,
        "blind_spots": blind,
        "reach": reach,
        "settings": _settings_report(s, road_follow_m=road_follow_m),
        "timings_s": _timings(t0, t1, t2, t3, t4, t5),
    }


def _workload_input(hh: pd.DataFrame, grid_id: np.ndarray, persons: np.ndarray) -> pd.DataFrame:
    """What :func:`geo.diagnose.grid_workload` reads: each household's grid, persons and special groups."""
    work_in = pd.DataFrame({"grid_id": grid_id, "persons": persons})
    for g in SPECIAL_GROUPS:
        work_in[g] = hh[g].to_numpy() if g in hh.columns else False
    return work_in


def _settings_report(s: Settings, *, road_follow_m: float) -> dict:
    """The settings a proposal was checked with, as the report shows them."""
    return {"precision_m": s.precision_m, "gap_width_m": s.gap_width_m,
            "min_issue_area_m2": s.min_issue_area_m2, "split_min_share": s.split_min_share,
            "road_follow_m": road_follow_m, "households_per_worker": s.households_per_worker,
            "special_group_weight": s.special_group_weight}


def _timings(t0: float, t1: float, t2: float, t3: float, t4: float, t5: float) -> dict:
    """Seconds of each step of the check (select, assign, validity, balance and shape, diff) and in all."""
    return {"select": round(t1 - t0, 3), "assign": round(t2 - t1, 3), "validity": round(t3 - t2, 3),
            "balance_shape": round(t4 - t3, 3), "diff": round(t5 - t4, 3), "total": round(t5 - t0, 3)}


def check_proposal_codes(ctx: RedrawContext, proposal: gpd.GeoDataFrame) -> dict:
    """The grid codes (网格编码) of a proposal against the whole grids layer after it (geo.gridcodes).

    A malformed code, a code on two grids (of the proposal, or one of the proposal and one of another
    community) and a code not under its community's statistical code are ``problems`` (the proposal is not
    valid) when the proposal makes them, and ``notes`` when the current grids already have the same issue (the
    redraw did not cause it and need not wait for its repair). Grids without a code are listed in
    ``without_code`` (``redraw check`` and ``apply`` give them the next free codes first).

    Returns
    -------
    dict
        ``issues`` (``kind``, ``grid_ids``, ``code``, ``detail``, ``new``), ``problems``, ``notes``,
        ``without_code`` (grid ids), ``fixed`` (issues of the current grids of these communities that are gone).
    """
    pattern = CodePattern.of(ctx.settings)
    if proposal.crs is not None and proposal.crs != ctx.metric_crs:
        proposal = proposal.to_crs(ctx.metric_crs)
    mine = set(proposal["id"].astype(str))
    own = proposal["code"] if "code" in proposal.columns else pd.Series(None, index=proposal.index, dtype=object)
    text = own.astype("string").str.strip()
    without = proposal["id"].astype(str)[(text.isna() | (text == "")).to_numpy()].tolist()
    out = {"issues": [], "problems": [], "notes": [], "without_code": without, "fixed": []}
    if own.isna().all() and "code" not in ctx.grids.columns:
        return out
    after = grids_after(ctx, proposal)
    if "code" not in after.columns:
        return out
    found = check_codes(after, ctx.communities, pattern=pattern)
    before = (check_codes(ctx.grids, ctx.communities, pattern=pattern) if "code" in ctx.grids.columns
              else found.iloc[:0])
    known = set(zip(before["kind"], before["code"].astype(str)))
    still = set(zip(found["kind"], found["code"].astype(str)))
    replaced = set(ctx.grids_of(set(proposal["community_id"].astype(str)))["id"].astype(str))
    out["fixed"] = [{"kind": r.kind, "grid_ids": r.grid_ids, "code": str(r.code), "detail": r.detail, "new": False}
                    for r in before.itertuples(index=False)
                    if replaced & set(str(r.grid_ids).split(",")) and (r.kind, str(r.code)) not in still]
    for r in found.itertuples(index=False):
        if not mine & set(str(r.grid_ids).split(",")):
            continue
        new = (r.kind, str(r.code)) not in known
        out["issues"].append({"kind": r.kind, "grid_ids": r.grid_ids, "code": str(r.code), "detail": r.detail,
                              "new": new})
        if new:
            out["problems"].append(r.detail)
        else:
            out["notes"].append(f"{r.detail} (as in the current grids)")
    return out


def _community_rows(cids: set[str], *, old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, hh: pd.DataFrame,
                    coverage: pd.DataFrame) -> list[dict]:
    """Grids before and after, households and coverage validity of each community a proposal touches."""
    return [{"id": str(c), "grids_before": int((old["community_id"].astype(str) == c).sum()),
             "grids_after": int((new["community_id"].astype(str) == c).sum()),
             "households": int((hh["community_id"].astype(str) == c).sum()),
             "coverage_valid": bool(coverage.set_index("community_id")["coverage_valid"].get(c, False))}
            for c in sorted(cids)]


def _balance_summary(grid_rows: list[dict], *, pp: np.ndarray, households: int, lo: int) -> dict:
    """The balance of a proposal's grids in a few figures."""
    hh_counts = np.array([r["households"] for r in grid_rows]) if grid_rows else np.zeros(0)
    return {"grids": len(grid_rows), "in_band": int(sum(r["in_band"] for r in grid_rows)),
            "all_in_band": bool(all(r["in_band"] for r in grid_rows)),
            "over_capacity": int(sum(r["over_capacity"] for r in grid_rows)),
            "households_min": int(hh_counts.min()) if len(hh_counts) else 0,
            "households_max": int(hh_counts.max()) if len(hh_counts) else 0,
            "mean_polsby_popper": round(float(np.nanmean(pp)), 3) if len(pp) else None,
            "maximum_grids": int(households // lo)}


def _judged(ctx: RedrawContext, validity: dict, codes: dict, *, new: gpd.GeoDataFrame, old: gpd.GeoDataFrame,
            estates: gpd.GeoDataFrame | None, hi: int) -> tuple[list[dict], list[dict], list[str]]:
    """The proposal's problems judged against the current grids': ``issues`` (new or remaining), ``fixed``, and
    the sentences of the new ones (what makes it invalid)."""
    s = ctx.settings
    cids = set(new["community_id"].astype(str))
    judged = judge_problems(_problem_records(validity, new, estates), problems_before(ctx, cids, hi=hi),
                            min_area_m2=s.min_issue_area_m2)
    issues = _describe(ctx, judged["found"] + _code_records(codes["issues"], new), grids=(new, old))
    fixed = _describe(ctx, judged["fixed"] + _code_records(codes["fixed"], old, status="fixed"), grids=(old, new))
    problems = _sentences([r for r in issues if r["status"] == "new" and not r["kind"].startswith("code_")], s)
    return issues, fixed, problems + codes["problems"]


def _assess(grids: gpd.GeoDataFrame, comms: gpd.GeoDataFrame, hh: pd.DataFrame, buildings: gpd.GeoDataFrame | None,
            estates: gpd.GeoDataFrame | None, *, hi: int, settings: Settings):
    """Households assigned to ``grids`` and the validity part of the check: ``(assigned, building_grid,
    located, validity)``."""
    s = settings
    bg = building_grids(buildings, grids, settings=s) if buildings is not None else None
    assigned = assign_households(hh, buildings, grids, settings=s, building_grid=bg)
    located = pd.DataFrame({"x": assigned["x"].to_numpy(), "y": assigned["y"].to_numpy(),
                            "persons": hh["persons"].to_numpy(dtype=float),
                            "building_id": assigned["building_id"].to_numpy()})
    return assigned, bg, located, _validity(grids, comms, buildings, estates, bg, located, hh, hi=hi, settings=s)


def _validity(new: gpd.GeoDataFrame, comms: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None,
              estates: gpd.GeoDataFrame | None, bg: pd.DataFrame | None, located: pd.DataFrame, hh: pd.DataFrame, *,
              hi: int, settings: Settings) -> dict:
    """The validity part of :func:`check_proposal`: the issues found (rows, and the issue frame for their places)."""
    s = settings
    issues = grid_coverage_issues(new, comms, buildings, bg, located, settings=s, codes=False)
    coverage = community_coverage(new, comms, settings=s)
    gp = shapely.set_precision(new.geometry.to_numpy(), s.precision_m)
    parts = shapely.get_num_geometries(gp)
    non_contiguous = [{"grid_id": g, "parts": int(p)} for g, p in zip(new["id"], parts) if p > 1]
    split_estates = _split_estates(estates, buildings, new, hh, hi, s)
    gaps = _issue_rows(issues, "gap")
    overlaps = _issue_rows(issues, "overlap")
    slivers = {}
    for row in coverage.itertuples(index=False):
        if not row.coverage_valid and not (gaps or overlaps):
            edges = _slivers_between_grids(new, comms, row.community_id, s)
            if edges is not None:
                slivers[str(row.community_id)] = edges
    return {"gp": gp, "coverage": coverage, "issues": issues, "gaps": gaps, "overlaps": overlaps,
            "outside": _issue_rows(issues, "outside_community"), "non_contiguous": non_contiguous,
            "split_b": _issue_rows(issues, "split_building"), "split_estates": split_estates, "slivers": slivers}


# ------------------------------------------------------------------ problems, and how they are known across versions
#: Problems of a piece of ground (a gap, an overlap, a part outside the community) rather than of one building,
#: estate, grid or community: one is the same problem as the current grids' when it lies within their pieces of
#: its kind (it adds no ground), and one of the current grids' is fixed when no piece of its kind is left on it.
GROUND_KINDS = ("gap", "overlap", "outside_community")
#: Problem kinds in Chinese (the API's codes stay English; ``message_zh`` says the whole problem).
KIND_ZH = {"gap": "空隙", "overlap": "网格重叠", "outside_community": "超出社区", "non_contiguous": "网格不连片",
           "split_building": "楼栋被切开", "split_estate": "小区被切开", "not_a_coverage": "网格间有缝隙",
           "code_malformed": "网格编码格式不对", "code_duplicate": "网格编码重复",
           "code_outside_community": "网格编码不在所属社区编码下"}


def problems_before(ctx: RedrawContext, communities: set[str], *, hi: int) -> list[dict]:
    """The problems of the current grids of some communities (records as :func:`judge_problems` takes them),
    computed once per context, communities and ceiling (the ceiling says which cut estates are allowed)."""
    key = (frozenset(map(str, communities)), int(hi))
    if key in ctx._before:
        return ctx._before[key]
    cids = set(key[0])
    comms = ctx.communities[ctx.communities["id"].astype(str).isin(cids)].reset_index(drop=True)
    old = ctx.grids_of(cids).reset_index(drop=True)
    hh = ctx.households_of(cids).reset_index(drop=True)
    buildings, estates = (f.reset_index(drop=True) if f is not None else None
                          for f in (ctx.buildings_of(cids), ctx.estates_of(cids)))
    records = []
    if len(old):
        *_, validity = _assess(old, comms, hh, buildings, estates, hi=int(hi), settings=ctx.settings)
        records = _problem_records(validity, old, estates)
    ctx._before[key] = records
    return records


def _problem_records(validity: dict, grids: gpd.GeoDataFrame, estates: gpd.GeoDataFrame | None) -> list[dict]:
    """One record per problem :func:`_validity` found: ``kind``, ``key`` (what names it across versions: the
    building, estate, grid or community; None for a piece of ground), the grids and households concerned, and
    its place ``_geom`` (metric)."""
    issues = validity["issues"]
    out = []
    for r in issues[issues["kind"].isin(GROUND_KINDS + ("split_building",))].itertuples(index=False):
        rec = {"kind": r.kind, "key": str(r.building_id) if r.kind == "split_building" else None,
               "community_id": str(r.community_id), "grid_ids": _id_list(getattr(r, "grid_ids", None)),
               "households": int(r.households), "area_m2": round(float(r.area_m2), 1), "_geom": r.geometry}
        if r.kind in ("gap", "overlap"):
            rec["sliver"] = bool(r.sliver)
        if r.kind == "split_building":
            rec["building_id"] = str(r.building_id)
        out.append(rec)
    geom_of = dict(zip(grids["id"].astype(str), grids.geometry.to_numpy()))
    comm_of = dict(zip(grids["id"].astype(str), grids["community_id"].astype(str)))
    for r in validity["non_contiguous"]:
        g = str(r["grid_id"])
        out.append({"kind": "non_contiguous", "key": g, "community_id": comm_of.get(g), "grid_ids": [g],
                    "parts": r["parts"], "_geom": geom_of.get(g)})
    e_geom = dict(zip(estates["id"].astype(str), estates.geometry.to_numpy())) if estates is not None else {}
    for r in validity["split_estates"]:
        if not r["allowed"]:
            gids = _id_list(r["grid_ids"])
            out.append({"kind": "split_estate", "key": r["estate_id"], "estate_id": r["estate_id"],
                        "community_id": comm_of.get(gids[0]) if gids else None, "grid_ids": gids,
                        "households": r["households"], "_geom": e_geom.get(r["estate_id"])})
    for cid, edges in validity["slivers"].items():
        out.append({"kind": "not_a_coverage", "key": cid, "community_id": cid, "grid_ids": [], "_geom": edges})
    return out


def judge_problems(found: list[dict], before: list[dict], *, min_area_m2: float = 1.0) -> dict:
    """Which problems of a proposal are new and which the current grids had already, and which of theirs it fixes.

    A problem is known across versions by its kind and what it concerns: a building cut by a boundary by the
    building's id, an estate cut though it fits one grid by the estate's id, a grid in several pieces by the
    grid's id, slivers between grids by the community; a gap, an overlap or a part outside the community by its
    ground (:data:`GROUND_KINDS`: the same problem when it adds less than ``min_area_m2`` to the current grids'
    pieces of its kind, fixed when less than that of them is left).

    Parameters
    ----------
    found, before
        Problem records of the proposal and of the current grids (``kind``, ``key``, ``_geom`` metric).
    min_area_m2
        Ground below this area is noise (the check's ``min_issue_area_m2``).

    Returns
    -------
    dict
        ``found``: the proposal's records, each with ``status`` ``new`` or ``remaining`` (and ``new_area_m2``, the
        ground a grown gap or overlap adds); ``fixed``: the current grids' records it has no more, ``status``
        ``fixed``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> old = [{"kind": "split_building", "key": "B1"}, {"kind": "gap", "key": None, "_geom": box(0, 0, 10, 10)}]
    >>> new = [{"kind": "gap", "key": None, "_geom": box(0, 0, 5, 10)}, {"kind": "split_estate", "key": "E2"}]
    >>> out = judge_problems(new, old)
    >>> [(r["kind"], r["status"]) for r in out["found"]], [r["kind"] for r in out["fixed"]]
    ([('gap', 'remaining'), ('split_estate', 'new')], ['split_building'])
    """
    def ground(records: list[dict], kind: str):
        geoms = [r["_geom"] for r in records if r["kind"] == kind and r.get("_geom") is not None]
        return shapely.union_all(geoms) if geoms else None

    def keys(records: list[dict]) -> set:
        return {(r["kind"], r["key"]) for r in records if r["kind"] not in GROUND_KINDS}

    old_ground = {k: ground(before, k) for k in GROUND_KINDS}
    new_ground = {k: ground(found, k) for k in GROUND_KINDS}
    old_keys, new_keys = keys(before), keys(found)
    out_found = []
    for r in found:
        r = dict(r)
        if r["kind"] in GROUND_KINDS:
            old = old_ground[r["kind"]]
            added = float(shapely.area(r["_geom"] if old is None else shapely.difference(r["_geom"], old)))
            r["status"] = "new" if added >= min_area_m2 else "remaining"
            if r["status"] == "new" and old is not None and shapely.intersects(r["_geom"], old):
                r["new_area_m2"] = round(added, 1)
        else:
            r["status"] = "remaining" if (r["kind"], r["key"]) in old_keys else "new"
        out_found.append(r)
    fixed = []
    for r in before:
        if r["kind"] in GROUND_KINDS:
            now = new_ground[r["kind"]]
            gone = now is None or float(shapely.area(shapely.intersection(r["_geom"], now))) < min_area_m2
        else:
            gone = (r["kind"], r["key"]) not in new_keys
        if gone:
            fixed.append(dict(r, status="fixed"))
    return {"found": out_found, "fixed": fixed}


def _code_records(code_issues: list[dict], grids: gpd.GeoDataFrame, *, status: str | None = None) -> list[dict]:
    """Grid code issues (:func:`check_proposal_codes`) as problem records, placed on their grids."""
    geom_of = dict(zip(grids["id"].astype(str), grids.geometry.to_numpy()))
    comm_of = dict(zip(grids["id"].astype(str), grids["community_id"].astype(str)))
    out = []
    for c in code_issues:
        gids = _id_list(c["grid_ids"])
        mine = [geom_of[g] for g in gids if g in geom_of]
        out.append({"kind": c["kind"], "key": c["code"], "code": c["code"], "detail": c["detail"],
                    "community_id": next((comm_of[g] for g in gids if g in comm_of), None), "grid_ids": gids,
                    "status": status or ("new" if c["new"] else "remaining"),
                    "_geom": shapely.union_all(mine) if mine else None})
    return out


def _id_list(value) -> list[str]:
    """Grid ids given as ``"G1,G2"`` or a list, as a list."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


def _describe(ctx: RedrawContext, records: list[dict], *, grids: tuple[gpd.GeoDataFrame, ...]) -> list[dict]:
    """The records as the check answers them: the names of what each concerns (building name and address,
    estate, grids, community, the estates or buildings on a piece of ground), an English and a Chinese message,
    and the place in WGS-84 (``bbox``, ``geometry``; a building or estate's whole outline, not the cut part)."""
    grid_names = {}
    for frame in reversed(grids):
        if "name" in frame.columns:
            grid_names.update(zip(frame["id"].astype(str), frame["name"].fillna(frame["id"]).astype(str)))
    names = _Names.of(ctx)
    geoms = np.array([names.place(r) for r in records], dtype=object)
    geoms = np.where(pd.isna(geoms), None, geoms)
    wgs = _to_wgs84(geoms, ctx.metric_crs)
    out = []
    for i, r in enumerate(records):
        rec = {k: v for k, v in r.items() if not k.startswith("_")}
        rec["id"] = f"{r['kind']}:{r['key']}" if r.get("key") is not None else f"{r['kind']}:{r.get('community_id')}:{i + 1}"
        rec["grid_names"] = [grid_names.get(g, g) for g in rec.get("grid_ids", [])]
        rec.update(names.of_record(r))
        rec["message"], rec["message_zh"] = _messages(rec)
        g = wgs[i]
        rec["bbox"] = [round(float(v), 7) for v in shapely.bounds(g)] if g is not None and not shapely.is_empty(g) else None
        rec["geometry"] = json.loads(shapely.to_geojson(g)) if rec["bbox"] is not None else None
        out.append(rec)
    return out


def _to_wgs84(geoms: np.ndarray, crs) -> list:
    """Metric places simplified to 0.5 m and brought to WGS-84 with 7 decimals (None stays None)."""
    ok = np.array([g is not None for g in geoms], dtype=bool)
    out = [None] * len(geoms)
    if ok.any():
        simple = shapely.simplify(np.asarray(list(geoms[ok]), dtype=object), 0.5, preserve_topology=True)
        lonlat = gpd.GeoSeries(simple, crs=crs).to_crs(4326).to_numpy()
        lonlat = shapely.set_precision(lonlat, 1e-7)
        for i, g in zip(np.flatnonzero(ok), lonlat):
            out[i] = g
    return out


@dataclass
class _Names:
    """Names of buildings, estates and communities (a problem is shown by name, not by id)."""

    buildings: pd.DataFrame
    estates: pd.DataFrame
    communities: dict
    ctx: RedrawContext

    @classmethod
    def of(cls, ctx: RedrawContext) -> "_Names":
        def table(frame, cols):
            if frame is None:
                return pd.DataFrame(columns=cols)
            return frame.reindex(columns=cols).set_index(frame["id"].astype(str))
        comm = ctx.communities
        return cls(buildings=table(ctx.buildings, ["name", "address", "estate_id"]),
                   estates=table(ctx.estates, ["name", "address"]),
                   communities=dict(zip(comm["id"].astype(str), comm["name"].astype(str)))
                   if "name" in comm.columns else {}, ctx=ctx)

    def _get(self, table: pd.DataFrame, key, col: str):
        if key is None or key not in table.index:
            return None
        v = table.at[key, col]
        return None if pd.isna(v) or str(v).strip() == "" else str(v)

    def place(self, r: dict):
        """The outline to show: the whole building or estate, else the piece itself."""
        if r["kind"] == "split_building" and self.ctx.buildings is not None:
            hit = self.ctx.buildings.geometry[self.ctx.buildings["id"].astype(str) == r["key"]]
            return hit.iloc[0] if len(hit) else r.get("_geom")
        return r.get("_geom")

    def of_record(self, r: dict) -> dict:
        out = {"community_name": self.communities.get(str(r.get("community_id")))}
        if r["kind"] == "split_building":
            b = r["key"]
            est = self._get(self.buildings, b, "estate_id")
            out.update(building_name=self._get(self.buildings, b, "name"),
                       building_address=self._get(self.buildings, b, "address"),
                       estate_id=est, estate_name=self._get(self.estates, est, "name"))
        elif r["kind"] == "split_estate":
            out.update(estate_name=self._get(self.estates, r["key"], "name"),
                       estate_address=self._get(self.estates, r["key"], "address"))
        elif r["kind"] in GROUND_KINDS and r.get("_geom") is not None:
            out["places"] = self.places_in(r["_geom"])
        return out

    def places_in(self, geom, limit: int = 5) -> list[dict]:
        """The estates (or, without any, the buildings) whose inside point lies on a piece of ground."""
        for frame, kind in ((self.ctx.estates, "estate"), (self.ctx.buildings, "building")):
            if frame is None or not len(frame):
                continue
            inner = shapely.point_on_surface(frame.geometry.to_numpy())
            hit = np.flatnonzero(shapely.intersects(geom, inner))
            if len(hit):
                table = self.estates if kind == "estate" else self.buildings
                ids = frame["id"].astype(str).to_numpy()[hit[:limit]]
                return [{"kind": kind, "id": i, "name": self._get(table, i, "name"),
                         "address": self._get(table, i, "address")} for i in ids]
        return []


def _messages(rec: dict) -> tuple[str, str]:
    """The English and Chinese sentence of one problem record (names first, ids in brackets)."""
    gids, gnames = rec.get("grid_ids", []), rec.get("grid_names", [])
    g_en = " / ".join(gids)
    g_zh = " / ".join(f"{n}（{g}）" if n != g else g for g, n in zip(gids, gnames))
    hh = rec.get("households")
    kind = rec["kind"]
    if kind == "split_building":
        name = rec.get("building_name") or rec["key"]
        where = rec.get("building_address") or ""
        return (f"building {rec['key']} {name}{f' ({where})' if where else ''} is cut by the boundary of {g_en} "
                f"({hh} households)",
                f"楼栋 {name}（{where + '，' if where else ''}{rec['key']}）被网格 {g_zh} 的边界切开（{hh} 户）")
    if kind == "split_estate":
        name = rec.get("estate_name") or rec["key"]
        where = rec.get("estate_address") or ""
        return (f"estate {rec['key']} {name}{f' ({where})' if where else ''} is cut by the boundary of {g_en} "
                f"though it fits one grid ({hh} households)",
                f"小区 {name}（{where + '，' if where else ''}{rec['key']}）被网格 {g_zh} 的边界切开，"
                f"本可整体划入一个网格（{hh} 户）")
    if kind in GROUND_KINDS:
        places = rec.get("places") or []
        p_en = ", ".join(f"{p['id']} {p['address'] if p['kind'] == 'building' and p['address'] else p['name'] or ''}"
                         .strip() for p in places)
        p_zh = "、".join((p["address"] if p["kind"] == "building" else None) or p["name"] or p["id"] for p in places)
        area = f"{rec['area_m2']:,.0f}"
        if kind == "gap":
            return (f"a gap of {area} m² no grid covers ({hh} households{f'; {p_en}' if p_en else ''})",
                    f"{area} 平方米空隙无网格覆盖（{hh} 户{f'；{p_zh}' if p_zh else ''}）")
        if kind == "overlap":
            return (f"grids {g_en} overlap over {area} m² ({hh} households{f'; {p_en}' if p_en else ''})",
                    f"网格 {g_zh} 重叠 {area} 平方米（{hh} 户{f'；{p_zh}' if p_zh else ''}）")
        return (f"{area} m² of grid {g_en} lies outside its community",
                f"网格 {g_zh} 有 {area} 平方米超出所属社区")
    if kind == "non_contiguous":
        return (f"grid {g_en} is in {rec['parts']} pieces", f"网格 {g_zh} 分成 {rec['parts']} 块，不连片")
    if kind == "not_a_coverage":
        c = rec.get("community_name") or rec["key"]
        return (f"community {rec['key']}: slivers between grids", f"社区 {c}：网格之间有细缝，不是无缝覆盖")
    return (f"{rec.get('detail') or kind}", f"{KIND_ZH.get(kind, kind)}：{rec.get('code')}（网格 {g_zh}）")


def _sentences(records: list[dict], s: Settings) -> list[str]:
    """One sentence per kind of problem (the check's ``problems``), naming the buildings and estates."""
    by = {k: [r for r in records if r["kind"] == k] for k in
          ("gap", "overlap", "outside_community", "non_contiguous", "split_building", "split_estate", "not_a_coverage")}
    out = []
    hh = lambda rs: sum(r.get("households") or 0 for r in rs)  # noqa: E731
    named = lambda r, name: f"{r['key']} {name}".strip() if name else r["key"]  # noqa: E731
    if by["gap"]:
        out.append(f"{len(by['gap'])} gap(s) no grid covers ({hh(by['gap'])} households)")
    if by["overlap"]:
        out.append(f"{len(by['overlap'])} overlap(s) between grids ({hh(by['overlap'])} households)")
    if by["outside_community"]:
        out.append(f"{len(by['outside_community'])} part(s) of grids outside their community")
    if by["non_contiguous"]:
        out.append(f"{len(by['non_contiguous'])} grid(s) in several pieces: "
                   f"{', '.join(r['key'] for r in by['non_contiguous'][:10])}")
    if by["split_building"]:
        out.append(f"{len(by['split_building'])} building(s) cut by a grid boundary: "
                   + ", ".join(named(r, r.get("building_name")) for r in by["split_building"][:10]))
    if by["split_estate"]:
        out.append(f"{len(by['split_estate'])} estate(s) cut by a grid boundary though they fit one grid: "
                   + ", ".join(named(r, r.get("estate_name")) for r in by["split_estate"][:10]))
    for r in by["not_a_coverage"]:
        out.append(f"community {r['key']}: the grids are not a valid coverage (slivers narrower than {s.gap_width_m} m)")
    return out


def _grid_rows(new: gpd.GeoDataFrame, work: pd.DataFrame, *, pp: np.ndarray, road_share: np.ndarray,
               basic_new: dict, basic_old: dict, band: tuple[int, int]) -> list[dict]:
    """One balance-and-shape row per proposed grid (one per grid, not per household)."""
    lo, hi = band
    grid_rows = []
    for i, r in enumerate(new.itertuples(index=False)):
        w = work.iloc[i]
        row = {"id": r.id, "community_id": r.community_id, "name": getattr(r, "name", r.id),
               "households": int(w["households"]), "persons": int(w["persons"]), "workers": int(w["workers"]),
               "households_per_worker": _num(w["households_per_worker"]),
               "persons_per_worker": _num(w["persons_per_worker"]),
               "workload": _num(w["workload"]), "over_capacity": bool(w["over_capacity"]),
               "staff_missing": w["staff_missing"],
               "in_band": bool(lo <= w["households"] <= hi),
               "polsby_popper": round(float(pp[i]), 3), "road_share": _num(road_share[i], 3),
               "basic_share": _num(basic_new.get(r.id), 4),
               "basic_share_before": _num(basic_old.get(r.id), 4)}
        for g in SPECIAL_GROUPS:
            if g in work.columns:
                row[g] = int(w[g])
        grid_rows.append(row)
    return grid_rows


def _blind_counts(hh: pd.DataFrame, assigned: pd.DataFrame) -> dict:
    """Households in no grid, in overlaps and in split buildings, before and after."""
    before_status = hh["status"].astype(str).to_numpy() if "status" in hh.columns else np.full(len(hh), "", object)
    after_status = assigned["status"].astype(str).to_numpy()
    blind = {
        "households_in_no_grid": {"before": int((before_status == "outside_all_grids").sum()),
                                  "after": int((after_status == "outside_all_grids").sum())},
        "households_in_overlaps": {"before": int((before_status == "in_overlapping_grids").sum()),
                                   "after": int((after_status == "in_overlapping_grids").sum())},
        "households_in_split_buildings": {"before": int((before_status == "building_split").sum()),
                                          "after": int((after_status == "building_split").sum())},
    }
    return blind


def _num(value, digits: int = 1):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return round(v, digits) if np.isfinite(v) else None


def _issue_rows(issues: gpd.GeoDataFrame, kind: str) -> list[dict]:
    rows = issues[issues["kind"] == kind]
    out = []
    for r in rows.itertuples(index=False):
        row = {"community_id": r.community_id, "area_m2": float(r.area_m2), "households": int(r.households),
               "persons": int(r.persons)}
        if kind in ("gap", "overlap"):
            row["sliver"] = bool(r.sliver)
        if kind != "gap":
            row["grid_ids"] = r.grid_ids
        if kind == "split_building":
            row["building_id"] = r.building_id
        out.append(row)
    return out


def _slivers_between_grids(grids: gpd.GeoDataFrame, comms: gpd.GeoDataFrame, cid: str, s: Settings):
    """The edges shapely's coverage check flags away from the community's own outline (real slivers), or None.

    Two grids meeting at a notch of the community narrower than the gap width are flagged too, though no
    household can fall between them; only edges away from the outline are real slivers."""
    gp = shapely.set_precision(grids.geometry.to_numpy()[(grids["community_id"].astype(str) == str(cid)).to_numpy()],
                               s.precision_m)
    edges = shapely.coverage_invalid_edges(gp, gap_width=s.gap_width_m)
    edges = edges[~shapely.is_empty(edges)]
    if not len(edges):
        return None
    comm = comms.geometry.to_numpy()[(comms["id"].astype(str) == str(cid)).to_numpy()]
    outline = shapely.buffer(shapely.boundary(shapely.set_precision(comm[0], s.precision_m)), 10 * s.precision_m)
    off = shapely.difference(edges, outline)
    off = off[shapely.length(off) > 10 * s.precision_m]
    return shapely.union_all(off) if len(off) else None


def _split_estates(estates, buildings, grids, hh, hi: int, s: Settings) -> list[dict]:
    """Estates cut by a grid boundary (allowed when the estate alone holds more than the ceiling)."""
    if estates is None or not len(estates):
        return []
    eg = building_grids(estates, grids, settings=s)
    cut = eg["split"].to_numpy() | eg["in_overlap"].to_numpy()
    if not cut.any():
        return []
    counts = pd.Series(dtype=float)
    if buildings is not None and "estate_id" in buildings.columns:
        b_est = dict(zip(buildings["id"].astype(str), buildings["estate_id"]))
        est = hh["building_id"].astype(object).map(lambda b: b_est.get(str(b)) if pd.notna(b) else None)
        counts = est.value_counts()
    out = []
    for i in np.flatnonzero(cut):
        eid = str(estates["id"].iloc[i])
        n = int(counts.get(eid, 0))
        out.append({"estate_id": eid, "grid_ids": eg["grid_ids"].iloc[i], "households": n, "allowed": n > hi})
    return out


def _road_share(gp: np.ndarray, comms: gpd.GeoDataFrame, roads, follow_m: float, s: Settings) -> np.ndarray:
    """Share of each grid's boundary with another grid (not the community's outline) lying within
    ``follow_m`` of a road centre line; NaN without roads or without such a boundary."""
    out = np.full(len(gp), np.nan)
    if roads is None or not len(roads) or not len(gp):
        return out
    outline = shapely.union_all(shapely.boundary(shapely.set_precision(comms.geometry.to_numpy(), s.precision_m)))
    inner = shapely.difference(shapely.boundary(gp), shapely.buffer(outline, 0.5))
    length = shapely.length(inner)
    box = shapely.box(*shapely.total_bounds(gp))
    near = roads.geometry.to_numpy()[shapely.intersects(roads.geometry.to_numpy(), shapely.buffer(box, follow_m))]
    if not len(near):
        return np.where(length > 0, 0.0, np.nan)
    zone = shapely.buffer(shapely.union_all(near), follow_m)
    along = shapely.length(shapely.intersection(inner, zone))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(length > 1e-6, np.round(along / np.maximum(length, 1e-9), 3), np.nan)


def _basic_share(hh: pd.DataFrame, grid: np.ndarray) -> dict:
    """Share of each grid's households reaching the full basic set of the life circle."""
    if "basic_complete" not in hh.columns:
        return {}
    ok = pd.notna(grid)
    frame = pd.DataFrame({"g": grid[ok].astype(str), "b": hh["basic_complete"].fillna(False).astype(bool).to_numpy()[ok]})
    return frame.groupby("g")["b"].mean().to_dict()


def _reach_diff(hh: pd.DataFrame, old_grid: np.ndarray, new_grid: np.ndarray) -> dict:
    """What the redraw does to the 15-minute figures: each household's own reach does not change (it walks
    from its home), but the grid shares do, and so does which worker answers for households lacking it."""
    if "basic_complete" not in hh.columns:
        return {"available": False, "note": "the workspace holds no reach figures (run gridcover analyze with roads "
                                            "and facilities)"}
    lack = ~hh["basic_complete"].fillna(False).astype(bool).to_numpy()
    changed = pd.Series(old_grid).astype(object).fillna("∅").to_numpy() != pd.Series(new_grid).astype(object).fillna("∅").to_numpy()
    old_s = _basic_share(hh, old_grid)
    new_s = _basic_share(hh, new_grid)
    return {
        "available": True,
        "households_lacking_basic_set": int(lack.sum()),
        "households_lacking_basic_set_changing_grid": int((lack & changed).sum()),
        "grids_basic_share_before": {k: round(float(v), 4) for k, v in sorted(old_s.items())},
        "grids_basic_share_after": {k: round(float(v), 4) for k, v in sorted(new_s.items())},
        "note": "households' walking reach does not depend on grid boundaries; the shares per grid do",
    }


def _risk_blind_spots() -> dict:
    """How the blind spots of geo.risk / geo.blindspots relate to a redraw."""
    return {"note": "of the blind-spot reasons (geo.risk), no_grid and overlapping_grids depend on grid boundaries "
                    "and are counted above; visit_overdue and unregistered_building do not; the blind-spot "
                    "polygons (geo.blindspots) are redrawn by the next gridcover analyze"}


def _diff(hh: pd.DataFrame, assigned: pd.DataFrame, old_grid: np.ndarray, new_grid: np.ndarray,
          old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> dict:
    """Who changes grid: moves per (from, to) with households, persons, buildings and special-group counts."""
    o = pd.Series(old_grid, dtype=object).fillna("").astype(str).to_numpy()
    n = pd.Series(new_grid, dtype=object).fillna("").astype(str).to_numpy()
    frame = pd.DataFrame({"from": o, "to": n, "persons": hh["persons"].to_numpy(dtype=float),
                          "building_id": assigned["building_id"].astype(object).to_numpy()})
    for g in SPECIAL_GROUPS:
        frame[g] = hh[g].to_numpy().astype(int) if g in hh.columns else 0
    moved = frame[frame["from"] != frame["to"]]
    worker_old = dict(zip(old["id"].astype(str), old["worker_name"].fillna("").astype(str))) if "worker_name" in old else {}
    worker_new = dict(zip(new["id"].astype(str), new["worker_name"].fillna("").astype(str))) if "worker_name" in new else {}
    moves = []
    if len(moved):
        agg = moved.groupby(["from", "to"]).agg(households=("persons", "size"), persons=("persons", "sum"),
                                                **{g: (g, "sum") for g in SPECIAL_GROUPS})
        blds = moved.dropna(subset=["building_id"]).groupby(["from", "to"])["building_id"].agg(
            lambda s: sorted(set(map(str, s))))
        for (f, t), r in agg.iterrows():
            b = blds.get((f, t), [])
            moves.append({"from_grid": f or None, "to_grid": t or None,
                          "from_worker": worker_old.get(f, "") or None, "to_worker": worker_new.get(t, "") or None,
                          "worker_changes": (worker_old.get(f, "") or None) != (worker_new.get(t, "") or None),
                          "households": int(r["households"]), "persons": int(r["persons"]),
                          "buildings": b, **{g: int(r[g]) for g in SPECIAL_GROUPS}})
        moves.sort(key=lambda m: -m["households"])
    old_ids = set(old["id"].astype(str))
    new_ids = set(new["id"].astype(str))
    # merged / split: by shares of households
    flows = frame.groupby(["from", "to"]).size().rename("n").reset_index()
    flows = flows[(flows["from"] != "") & (flows["to"] != "")]
    out_tot = flows.groupby("from")["n"].transform("sum")
    flows["share_of_from"] = flows["n"] / out_tot
    big = flows[flows["share_of_from"] >= MERGE_SPLIT_SHARE]
    merged = []
    for t, rows in big.groupby("to"):
        main = rows[rows["share_of_from"] >= 0.5]
        if len(main) >= 2:
            merged.append({"into": t, "from": sorted(main["from"].tolist())})
    split = []
    for f, rows in big.groupby("from"):
        if len(rows) >= 2:
            split.append({"grid": f, "into": sorted(rows["to"].tolist())})
    moved_b = moved.dropna(subset=["building_id"])
    return {
        "moves": moves,
        "moved": {"households": int(len(moved)), "persons": int(moved["persons"].sum()),
                  "buildings": int(moved_b["building_id"].nunique()),
                  "changing_worker": int(sum(m["households"] for m in moves if m["worker_changes"])),
                  **{g: int(moved[g].sum()) for g in SPECIAL_GROUPS}},
        "created": sorted(new_ids - old_ids),
        "removed": sorted(old_ids - new_ids),
        "kept": sorted(new_ids & old_ids),
        "merged": merged,
        "split": split,
    }


def compare_grids(ctx: RedrawContext, *, before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> dict:
    """Compare two versions of the grids (metric): the diff of :func:`check_proposal` between them.

    Households are assigned to both versions afresh (so any two versions from history can be compared).
    """
    cids = set(before["community_id"].astype(str)) | set(after["community_id"].astype(str))
    hh = ctx.households_of(cids).reset_index(drop=True)
    buildings = ctx.buildings_of(cids)
    buildings = buildings.reset_index(drop=True) if buildings is not None else None
    b_bef = before[before["community_id"].astype(str).isin(cids)].reset_index(drop=True)
    b_aft = after[after["community_id"].astype(str).isin(cids)].reset_index(drop=True)
    a1 = assign_households(hh, buildings, b_bef, settings=ctx.settings)
    a2 = assign_households(hh, buildings, b_aft, settings=ctx.settings)
    g1 = a1["grid_id"].astype(object).to_numpy()
    g2 = a2["grid_id"].astype(object).to_numpy()
    out = _diff(hh, a2, g1, g2, b_bef, b_aft)
    out["reach"] = _reach_diff(hh, g1, g2)
    s1 = a1["status"].astype(str).to_numpy()
    s2 = a2["status"].astype(str).to_numpy()
    out["blind_spots"] = {k: {"before": int((s1 == v).sum()), "after": int((s2 == v).sum())}
                          for k, v in (("households_in_no_grid", "outside_all_grids"),
                                       ("households_in_overlaps", "in_overlapping_grids"),
                                       ("households_in_split_buildings", "building_split"))}
    out["reshaped"] = _reshaped(b_bef, b_aft, min_area_m2=RESHAPED_MIN_M2)
    out["communities"] = sorted(cids)
    return out


def _reshaped(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, *, min_area_m2: float) -> list[dict]:
    """Grids kept by id whose outline changed (a boundary moved though nobody changed grid, as when a cut
    building is given wholly to the grid holding its households): id and the area gained and lost (m²)."""
    a = before.drop_duplicates("id").set_index(before.drop_duplicates("id")["id"].astype(str)).geometry
    b = after.drop_duplicates("id").set_index(after.drop_duplicates("id")["id"].astype(str)).geometry
    ids = sorted(set(a.index) & set(b.index))
    if not ids:
        return []
    g1, g2 = a.reindex(ids).to_numpy(), b.reindex(ids).to_numpy()
    gained = shapely.area(shapely.difference(g2, g1))
    lost = shapely.area(shapely.difference(g1, g2))
    return [{"grid_id": i, "gained_m2": round(float(x), 1), "lost_m2": round(float(y), 1)}
            for i, x, y in zip(ids, gained, lost) if x >= min_area_m2 or y >= min_area_m2]


# ------------------------------------------------------------------ applying: the layers after a redraw
def grids_after(ctx: RedrawContext, proposal: gpd.GeoDataFrame, *,
                communities: Iterable[str] | None = None) -> gpd.GeoDataFrame:
    """The whole grids layer after a proposal (metric): the grids of the proposal's communities (or of
    ``communities``, when given) replaced by the proposal's, other communities' grids unchanged."""
    cids = set(map(str, communities)) if communities is not None else set(proposal["community_id"].astype(str))
    keep = ctx.grids[~ctx.grids["community_id"].astype(str).isin(cids)]
    cols = [c for c in GRID_FIELDS if c in keep.columns or c in proposal.columns]
    frames = [f.reindex(columns=cols + ["geometry"]) for f in (keep, proposal)]
    out = pd.concat(frames, ignore_index=True)
    for f in ("full_time_workers", "part_time_workers"):
        if f in out.columns:
            out[f] = _workers_column(out[f])
    return gpd.GeoDataFrame(out, geometry="geometry", crs=ctx.metric_crs)


def _workers_column(values: pd.Series) -> pd.Series:
    """``full_time_workers`` as nullable whole numbers (GeoJSON may bring floats, text or nulls)."""
    return pd.to_numeric(values, errors="coerce").round().astype("Int64")


def reassess(ctx: RedrawContext, households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *,
             summary: dict | None = None) -> tuple[dict[str, gpd.GeoDataFrame], dict]:
    """The output layers after the grids change (what ``analyze`` would write for them), in WGS-84.

    ``households`` is the stored households layer; ``grids`` is the whole new grids layer (metric,
    :data:`GRID_FIELDS`). Households keep every field but
    their ``grid_id``, ``community_id``, ``street_id``, ``status`` and ``flags``, which are assigned afresh;
    the grids get their workload, special-group counts and reach shares; coverage issues are found again.
    Walking reach does not depend on grids and is not recomputed. Returns the layers (``households``,
    ``grids``, ``input_grids``, ``coverage_issues``) and the summary with its counts brought up to date.
    """
    from geo.assign import STATUSES, assign_communities
    from geo.diagnose import ISSUE_KINDS

    s = ctx.settings
    grids = grids.reset_index(drop=True)
    households = households.copy()
    hh = ctx.households
    buildings = ctx.buildings
    bg = building_grids(buildings, grids, settings=s) if buildings is not None else None
    assigned = assign_households(hh, buildings, grids, settings=s, building_grid=bg)
    community, street = assign_communities(assigned["x"].to_numpy(), assigned["y"].to_numpy(),
                                           assigned["grid_id"].to_numpy(), grids, ctx.communities)
    households["grid_id"] = assigned["grid_id"].astype(object).to_numpy()
    households["community_id"] = community
    households["street_id"] = street
    households["status"] = assigned["status"].astype(str).to_numpy()
    households["flags"] = assigned["flags"].astype(str).to_numpy()
    persons = hh["persons"].to_numpy(dtype=float)
    located = pd.DataFrame({"x": assigned["x"].to_numpy(), "y": assigned["y"].to_numpy(), "persons": persons,
                            "building_id": assigned["building_id"].to_numpy()})
    issues = grid_coverage_issues(grids, ctx.communities, buildings, bg, located, settings=s)
    work = grid_workload(grids, _workload_input(hh, assigned["grid_id"].to_numpy(), persons), building_grid=bg,
                         settings=s)
    given = grids.drop(columns=[c for c in work.columns if c in grids.columns] + ["geometry"])
    out_grids = pd.concat([given, work, grids[["geometry"]]], axis=1)
    summary = dict(summary or {})
    _insert_reach_shares(out_grids, households, grids, (summary.get("reach") or {}).get("categories") or [])
    out_grids = gpd.GeoDataFrame(out_grids, geometry="geometry", crs=grids.crs)
    status = households["status"]
    summary["status_counts"] = {k: int((status == k).sum()) for k in STATUSES}
    summary["status_total"] = int(len(households))
    summary["households_without_grid"] = int(households["grid_id"].isna().sum())
    summary["coverage_issues"] = {kind: {"count": int((issues["kind"] == kind).sum()),
                                         "area_m2": round(float(issues.loc[issues["kind"] == kind, "area_m2"].sum()), 1),
                                         "households": int(issues.loc[issues["kind"] == kind, "households"].sum())}
                                  for kind in ISSUE_KINDS}
    hh_per = out_grids["households"]
    summary["grids"] = dict(summary.get("grids") or {}, count=int(len(out_grids)),
                            over_capacity=int(out_grids["over_capacity"].sum()),
                            unstaffed=int(out_grids["unstaffed"].sum()), **staffing_summary(out_grids),
                            households_min=int(hh_per.min()) if len(hh_per) else 0,
                            households_max=int(hh_per.max()) if len(hh_per) else 0)
    summary["per_grid"] = [
        {"id": r.id, "community_id": r.community_id, "households": int(r.households), "persons": int(r.persons),
         "workers": int(r.workers), "over_capacity": bool(r.over_capacity), "split_buildings": int(r.split_buildings),
         "staff_missing": r.staff_missing}
        for r in out_grids[["id", "community_id", "households", "persons", "workers", "over_capacity",
                            "split_buildings", "staff_missing"]].itertuples(index=False)]
    layers = {"households": households, "grids": out_grids.to_crs(4326),
              "input_grids": grids.to_crs(4326), "coverage_issues": issues.to_crs(4326)}
    return layers, summary


def _insert_reach_shares(out_grids: pd.DataFrame, households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                         cats: list[dict]) -> None:
    """Insert (in place, before the geometry) each grid's share of households within each reach category's
    tier (the elderly pace for the elderly categories and for elderly living alone) and its ``basic_share``."""
    gid = households["grid_id"]
    elderly_alone = households["elderly_alone"].fillna(False).astype(bool).to_numpy() \
        if "elderly_alone" in households.columns else np.zeros(len(households), dtype=bool)
    for cat in cats:
        general, elderly = f"reach_{cat['id']}_min", f"reach_{cat['id']}_min_elderly"
        if general not in households.columns or elderly not in households.columns:
            continue
        g_min = pd.to_numeric(households[general], errors="coerce").to_numpy(dtype=float)
        e_min = pd.to_numeric(households[elderly], errors="coerce").to_numpy(dtype=float)
        eff = e_min if cat.get("elderly") else np.where(elderly_alone, e_min, g_min)
        within = np.nan_to_num(eff, nan=np.inf) <= cat["tier"]
        share = pd.Series(within).groupby(gid.to_numpy()).mean().round(4)
        out_grids.insert(len(out_grids.columns) - 1, f"reach_{cat['id']}_share",
                         share.reindex(grids["id"].astype(str)).to_numpy())
    if "basic_complete" in households.columns:
        share = households["basic_complete"].fillna(False).astype(bool).groupby(gid.to_numpy()).mean().round(4)
        out_grids.insert(len(out_grids.columns) - 1, "basic_share", share.reindex(grids["id"].astype(str)).to_numpy())
