"""Who is responsible for this place (责任网格查询): coordinates and addresses to grid and grid worker.

One :class:`LookupIndex` is built per version of the grids layer (``build_index``) and answers any number of
points or addresses, one or a hundred thousand at a time, with numpy and shapely array calls:

- **grid**: the building holding the point decides, as in the household assignment (docs/data-model.md):
  a point in a footprint takes the building's grid (the grid holding most of the footprint); any other
  point takes the grid covering it (boundary included) by :func:`geo.assign.points_in_polygons` — a grid
  whose interior holds the point first, then the smallest grid id. That is PostGIS ``ST_Covers`` plus
  ``ORDER BY ST_Contains(geom, pt) DESC, id COLLATE "C" LIMIT 1``. Point-in-polygon runs in WGS-84 lon/lat,
  the coordinates the workspace stores (so a point on a stored edge or vertex is exactly on it);
- **building / estate**: the footprint (and the estate polygon) covering the point, with the same tie rule;
  a building's own ``estate_id`` wins;
- **not covered**: the nearest grid and the distance to it in metres, in the workspace's metric CRS
  (UTM); every such answer is a blind spot, counted by the store (``gridcover.store.blindspot_log``);
- **addresses**: :mod:`geo.address` matches them to a building (→ its grid) or an estate (→ the grid
  holding most of it).

Inputs may be WGS-84, CGCS2000 (EPSG:4490), GCJ-02 or BD-09 lon/lat (:mod:`geo.crs` converts them).
The answers carry the grid's full-time worker's work contact and never any household's data.

Example
-------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> grids = gpd.GeoDataFrame({"id": ["G01-01", "G01-02"], "name": ["一网格", "二网格"], "community_id": ["C01", "C01"]},
...                          geometry=[box(104.060, 30.655, 104.065, 30.665), box(104.065, 30.655, 104.070, 30.665)],
...                          crs=4326)
>>> index = build_index(grids, version=3)
>>> lookup_points(index, [104.0657], [30.6595])["grid_id"]
array(['G01-02'], dtype=object)
>>> lookup_points(index, [104.0657], [30.6595], crs="gcj02")["grid_id"]  # the same numbers on a GCJ-02 map
array(['G01-01'], dtype=object)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

import geopandas as gpd
import numpy as np
from numpy.typing import ArrayLike
import pandas as pd
import pyproj
import shapely

from geo.address import AddressSettings, LazyAddressIndex, build_address_index, infer_settings, match_addresses
from geo.assign import _pick_min, _rank, building_grids, points_in_polygons
from geo.crs import local_metric_crs, offset_to_wgs84, parse_crs
from geo.errors import InputError
from geo.settings import Settings

#: Coordinate systems a caller may give (lon/lat degrees).
LOOKUP_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
#: The fields of every answer, in order (the names other systems rely on come first).
ANSWER_FIELDS = ("grid_id", "grid_name", "grid_code", "community_id", "street_id", "worker_name", "worker_phone",
                 "building_id", "estate_id", "version", "covered", "nearest_grid_id", "distance_m", "method")
#: Extra fields of an address answer.
ADDRESS_FIELDS = ("address_normalised", "score", "candidates", "problem")
#: Below this many points a batch first narrows the grids with the prebuilt tree (single lookups).
_SMALL_BATCH = 2048

METHODS = {
    "building": "the point is in a building: the grid holding most of its footprint",
    "grid": "the point is inside one grid",
    "boundary": "the point is on a grid boundary: the grid with the smallest id among those touching it",
    "overlap": "the point is inside two or more overlapping grids: the one with the smallest id",
    "not_covered": "the point is in no grid: nearest grid and distance given; counted as a blind spot",
    "address_building": "the address names a known building: its grid",
    "address_estate": "the address names a known estate: the grid holding most of it",
    "address_ambiguous": "the address fits several buildings or estates: candidates with scores, no guess",
    "address_not_found": "the address fits no known building or estate",
}


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84", *,
             cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Convert lon/lat arrays in one of :data:`LOOKUP_CRS` to WGS-84 (``InputError`` for anything else).

    ``cache`` (e.g. :attr:`LookupIndex.crs_cache`) keeps the parsed ``crs`` and its transformer between calls;
    without it they are made afresh.
    """
    key = str(crs or "wgs84").strip().lower()
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        source = _lookup_crs(key)
        transformer = None
        if source is not None and source.crs is not None and source.crs.to_epsg() not in (4326, None):
            transformer = pyproj.Transformer.from_crs(source.crs.to_epsg(), 4326, always_xy=True)
        hit = (source, transformer)
        if cache is not None and source is not None and len(cache) < _CRS_CACHE_SIZE:
            cache[key] = hit
    source, transformer = hit
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if source is None:
        msg = f"crs must be one of {', '.join(LOOKUP_CRS)} (lon/lat degrees), not {crs!r}"
        raise InputError(msg, field="crs")
    if source.offset is not None:
        return offset_to_wgs84(lon, lat, source.offset)
    if transformer is not None:
        return transformer.transform(lon, lat)
    return lon, lat


#: Most ``crs`` spellings a :class:`LookupIndex` keeps parsed.
_CRS_CACHE_SIZE = 64


def _lookup_crs(key: str):
    """The parsed CRS of a caller's ``crs`` parameter, or ``None`` if it is not lon/lat degrees."""
    try:
        source = parse_crs(key)
    except ValueError:
        return None
    return source if source.is_geographic else None


def valid_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Where lon/lat are finite numbers with -180 ≤ lon ≤ 180 and -90 ≤ lat ≤ 90."""
    return np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)


def check_lonlat(lon: np.ndarray, lat: np.ndarray) -> None:
    """Raise ``InputError`` naming the first item whose lon/lat is missing or out of range."""
    bad = ~valid_lonlat(lon, lat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"item {i}: " if len(lon) > 1 else ""
        msg = (f"{where}lon/lat must be numbers with -180 ≤ lon ≤ 180 and -90 ≤ lat ≤ 90 "
               f"(got lon={lon[i]!r}, lat={lat[i]!r}; {int(bad.sum())} such item(s))")
        raise InputError(msg, field="lon/lat")


def _text(values) -> np.ndarray:
    """Object array of str with None for missing/empty."""
    out = pd.Series(values, dtype=object).to_numpy(dtype=object, copy=True)
    missing = pd.isna(out)
    out[~missing] = [str(v) for v in out[~missing]]
    out[missing] = None
    empty = np.array([v == "" for v in out], dtype=bool) if len(out) else np.zeros(0, dtype=bool)
    out[empty] = None
    return out


@dataclass
class _Polygons:
    """One polygon layer ready for point queries: ids, tie ranks, prepared WGS-84 geometries and their tree."""

    ids: np.ndarray
    geom: np.ndarray
    rank: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame) -> "_Polygons":
        ids = frame["id"].astype(str).to_numpy(dtype=object)
        geom = frame.geometry.to_numpy()
        shapely.prepare(geom)
        return cls(ids=ids, geom=geom, rank=_rank(ids), tree=shapely.STRtree(geom))

    def covering(self, x: np.ndarray, y: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Polygon covering each point by :func:`geo.assign.points_in_polygons` (-1 for none), interior counts."""
        if len(self.geom) == 0:
            return np.full(len(x), -1, dtype=np.int64), np.zeros(len(x), dtype=np.int64)
        if len(x) > _SMALL_BATCH:
            return points_in_polygons(points, self.geom, tie_rank=self.rank, xy=(x, y))
        cand = np.unique(self.tree.query(points)[1])
        if len(cand) == 0:
            return np.full(len(x), -1, dtype=np.int64), np.zeros(len(x), dtype=np.int64)
        best, interior = points_in_polygons(points, self.geom[cand], tie_rank=self.rank[cand], xy=(x, y))
        return np.where(best >= 0, cand[np.maximum(best, 0)], -1), interior


@dataclass
class LookupIndex:
    """Everything a lookup needs for one version of the grids (build with :func:`build_index`)."""

    version: int | str
    grids: _Polygons
    grid_name: np.ndarray
    grid_code: np.ndarray
    community_id: np.ndarray
    street_id: np.ndarray
    worker_name: np.ndarray
    worker_phone: np.ndarray
    grid_metric_tree: shapely.STRtree
    metric_crs: pyproj.CRS
    to_metric: pyproj.Transformer
    buildings: _Polygons | None
    building_grid: np.ndarray
    building_estate: np.ndarray
    estates: _Polygons | None
    estate_grid: np.ndarray
    address: LazyAddressIndex | None
    #: Parsed ``crs`` spellings and their transformers (:func:`to_wgs84`), kept with the index.
    crs_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_grids(self) -> int:
        return len(self.grids.ids)


def build_index(grids: gpd.GeoDataFrame, *, buildings: gpd.GeoDataFrame | None = None,
                estates: gpd.GeoDataFrame | None = None, communities: gpd.GeoDataFrame | None = None,
                households: pd.DataFrame | None = None, version: int | str = 0,
                settings: Settings = Settings(), address_settings: AddressSettings | None = None,
                streets: gpd.GeoDataFrame | None = None, city: str | None = None,
                metric_crs: pyproj.CRS | None = None) -> LookupIndex:
    """Index one version of the grids (and the buildings and estates) for lookups.

    Parameters
    ----------
    grids
        WGS-84 polygons with ``id``, ``name``, ``community_id``, ``worker_name``, ``worker_phone`` (and the
        standard grid code ``code`` where the grids have one).
    buildings, estates
        WGS-84 polygons (``id``; buildings may carry ``estate_id``, ``name``, ``address``), optional.
    communities
        ``id`` and ``street_id``: gives each grid its street.
    households
        ``address`` and ``building_id`` only: known addresses of buildings (no household leaves the index).
    version
        The boundary version the answers report.
    address_settings
        City and districts for addresses; inferred from the data (and ``city``, ``streets``) when ``None``.
    metric_crs
        CRS of distances; the UTM zone holding the grids' centre by default (as the analysis).
    """
    grids = grids.reset_index(drop=True)
    if len(grids) == 0:
        raise InputError("the grids layer is empty: nothing to look up", field="grids")
    gp = _Polygons.of(grids)
    street_of = {}
    if communities is not None and "street_id" in communities:
        street_of = dict(zip(communities["id"].astype(str), communities["street_id"]))
    community = _text(grids["community_id"]) if "community_id" in grids else np.full(len(grids), None, dtype=object)
    street = _text([street_of.get(c) if c is not None else None for c in community])
    if metric_crs is None:
        x0, y0, x1, y1 = grids.total_bounds
        metric_crs = local_metric_crs((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    to_metric = pyproj.Transformer.from_crs(4326, metric_crs, always_xy=True)
    grids_m = grids.to_crs(metric_crs)
    metric_tree = shapely.STRtree(grids_m.geometry.to_numpy())

    bp = ep = None
    b_grid = b_estate = e_grid = np.zeros(0, dtype=np.int64)
    if estates is not None and len(estates):
        estates = estates.reset_index(drop=True)
        ep = _Polygons.of(estates)
        e_grid = building_grids(estates.to_crs(metric_crs), grids_m, settings=settings)["grid"].to_numpy()
    if buildings is not None and len(buildings):
        buildings = buildings.reset_index(drop=True)
        bp = _Polygons.of(buildings)
        b_grid = building_grids(buildings.to_crs(metric_crs), grids_m, settings=settings)["grid"].to_numpy()
        b_estate = np.full(len(buildings), -1, dtype=np.int64)
        if "estate_id" in buildings and ep is not None:
            b_estate = pd.Index(ep.ids).get_indexer(buildings["estate_id"].astype(str))

    return LookupIndex(
        version=version, grids=gp, grid_name=_text(grids["name"]),
        grid_code=_text(grids["code"]) if "code" in grids else np.full(len(grids), None, object),
        community_id=community, street_id=street,
        worker_name=_text(grids["worker_name"]) if "worker_name" in grids else np.full(len(grids), None, object),
        worker_phone=_text(grids["worker_phone"]) if "worker_phone" in grids else np.full(len(grids), None, object),
        grid_metric_tree=metric_tree, metric_crs=metric_crs, to_metric=to_metric,
        buildings=bp, building_grid=b_grid, building_estate=b_estate, estates=ep, estate_grid=e_grid,
        address=LazyAddressIndex(partial(_make_address_index, buildings=buildings, estates=estates,
                                         communities=communities, households=households, streets=streets,
                                         city=city, address_settings=address_settings)))


def _make_address_index(*, buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None,
                        communities: gpd.GeoDataFrame | None, households: pd.DataFrame | None,
                        streets: gpd.GeoDataFrame | None, city: str | None,
                        address_settings: AddressSettings | None):
    """The address index of :func:`build_index` (built on the first address lookup): known addresses of the
    households and buildings, settings inferred from them unless given."""
    known = pd.concat([s for s in (
        households["address"] if households is not None and "address" in households else None,
        buildings["address"] if buildings is not None and "address" in buildings else None,
    ) if s is not None] or [pd.Series([], dtype=object)], ignore_index=True)
    a_settings = address_settings or infer_settings(
        known, city=city,
        districts=tuple(streets["district"].dropna().astype(str).unique()) if streets is not None
        and "district" in streets else (),
        street_offices=tuple(streets["name"].dropna().astype(str)) if streets is not None and "name" in streets
        else (),
        communities=tuple(communities["name"].dropna().astype(str)) if communities is not None
        and "name" in communities else ())
    hh = None
    if households is not None and {"address", "building_id"} <= set(households.columns):
        hh = pd.DataFrame({"address": households["address"].to_numpy(),
                           "building_id": households["building_id"].to_numpy()})
    return build_address_index(buildings=None if buildings is None else pd.DataFrame(buildings.drop(
        columns=buildings.geometry.name)), estates=None if estates is None else pd.DataFrame(
        estates.drop(columns=estates.geometry.name)), households=hh, settings=a_settings)


def _grid_fields(index: LookupIndex, g: np.ndarray) -> dict[str, np.ndarray]:
    has = g >= 0
    safe = np.maximum(g, 0)

    def take(values: np.ndarray) -> np.ndarray:
        out = np.full(len(g), None, dtype=object)
        out[has] = values[safe[has]]
        return out

    return {"grid_id": take(index.grids.ids), "grid_name": take(index.grid_name), "grid_code": take(index.grid_code),
            "community_id": take(index.community_id), "street_id": take(index.street_id),
            "worker_name": take(index.worker_name), "worker_phone": take(index.worker_phone)}


def nearest_grids(index: LookupIndex, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest grid (position; ties → smallest id) and the distance to it in metres (metric CRS)."""
    n = len(lon)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    x, y = index.to_metric.transform(lon, lat)
    pts = shapely.points(x, y)
    pi, gi = index.grid_metric_tree.query_nearest(pts, all_matches=True)
    best = _pick_min(pi, index.grids.rank[gi], gi, n)
    dist = shapely.distance(pts, index.grid_metric_tree.geometries[best])
    return best, np.round(dist, 1)


def lookup_points(index: LookupIndex, lon: ArrayLike, lat: ArrayLike, *, crs: str = "wgs84") -> dict[str, np.ndarray]:
    """Grid, worker, building and estate of each point (see the module docstring for the rules).

    Returns columns (arrays aligned with the input): :data:`ANSWER_FIELDS` plus ``lon_wgs84``, ``lat_wgs84``.
    Raises ``InputError`` for an unknown ``crs`` or a coordinate that is missing or out of range.
    """
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    check_lonlat(lon, lat)
    x, y = to_wgs84(lon, lat, crs, cache=index.crs_cache)
    n = len(x)
    points = shapely.points(x, y)
    b = np.full(n, -1, dtype=np.int64)
    grid = np.full(n, -1, dtype=np.int64)
    method = np.full(n, "grid", dtype=object)
    if index.buildings is not None:
        b, _ = index.buildings.covering(x, y, points)
        with_b = b >= 0
        grid[with_b] = index.building_grid[b[with_b]]
        method[grid >= 0] = "building"
    todo = np.flatnonzero(grid < 0)
    if len(todo):
        found, interior = index.grids.covering(x[todo], y[todo], points[todo])
        grid[todo] = found
        method[todo] = np.where(interior == 0, "boundary", np.where(interior >= 2, "overlap", "grid"))
    covered = grid >= 0
    method[~covered] = "not_covered"
    estate = np.full(n, -1, dtype=np.int64)
    if index.buildings is not None and index.estates is not None:
        has_b = b >= 0
        estate[has_b] = index.building_estate[b[has_b]]
    if index.estates is not None:
        rest = np.flatnonzero(estate < 0)
        if len(rest):
            estate[rest], _ = index.estates.covering(x[rest], y[rest], points[rest])
    nearest = np.full(n, None, dtype=object)
    distance = np.full(n, np.nan)
    out_idx = np.flatnonzero(~covered)
    if len(out_idx):
        near, dist = nearest_grids(index, x[out_idx], y[out_idx])
        nearest[out_idx] = index.grids.ids[near]
        distance[out_idx] = dist
    out = _grid_fields(index, grid)
    out["building_id"] = _take_ids(index.buildings, b)
    out["estate_id"] = _take_ids(index.estates, estate)
    out["version"] = np.full(n, index.version, dtype=object)
    out["covered"] = covered
    out["nearest_grid_id"] = nearest
    out["distance_m"] = distance
    out["method"] = method
    out["lon_wgs84"] = np.round(x, 8)
    out["lat_wgs84"] = np.round(y, 8)
    return out


def _take_ids(layer: _Polygons | None, pos: np.ndarray) -> np.ndarray:
    out = np.full(len(pos), None, dtype=object)
    if layer is not None:
        has = pos >= 0
        out[has] = layer.ids[pos[has]]
    return out


def lookup_addresses(index: LookupIndex, addresses: Iterable[str | None]) -> dict[str, np.ndarray]:
    """Grid and worker for each address, via the building or estate it names (see :mod:`geo.address`).

    Returns :data:`ANSWER_FIELDS` plus :data:`ADDRESS_FIELDS`. An ambiguous address has ``candidates``
    (a list of ``{building_id, estate_id, grid_id, score}``) and no grid unless every candidate is in the
    same grid; ``covered`` is ``None`` when the address was not placed.
    """
    texts = [("" if a is None else str(a)) for a in addresses]
    n = len(texts)
    if index.address is None:
        raise InputError("this workspace has no buildings or estates: addresses cannot be looked up", field="address")
    matches = match_addresses(index.address.get(), texts)
    grid = np.full(n, -1, dtype=np.int64)
    is_b = matches.building >= 0
    grid[is_b] = index.building_grid[matches.building[is_b]] if len(index.building_grid) else -1
    is_e = (matches.kind == "estate") & (matches.estate >= 0)
    grid[is_e] = index.estate_grid[matches.estate[is_e]] if len(index.estate_grid) else -1
    estate = matches.estate.copy()
    estate[is_b & (estate < 0)] = index.building_estate[matches.building[is_b & (estate < 0)]] \
        if len(index.building_estate) else -1
    candidates = np.full(n, None, dtype=object)
    cand = matches.candidates
    if len(cand):
        cb = cand["building"].to_numpy().astype(np.int64)
        ce = cand["estate"].to_numpy().astype(np.int64)
        cg = np.where(cb >= 0, index.building_grid[np.maximum(cb, 0)] if len(index.building_grid) else -1,
                      index.estate_grid[np.maximum(ce, 0)] if len(index.estate_grid) else -1)
        frame = pd.DataFrame({
            "query": cand["query"].to_numpy().astype(np.int64),
            "building_id": _take_ids(index.buildings, cb),
            "estate_id": _take_ids(index.estates, ce),
            "grid_id": _take_ids(index.grids, cg),
            "score": cand["score"].round(3).to_numpy(),
        })
        plain = frame.drop(columns="query").astype(object)
        records = plain.where(plain.notna(), None).to_dict("records")
        grouped: dict[int, list] = {}
        for q, rec in zip(frame["query"].to_numpy(), records):
            grouped.setdefault(int(q), []).append(rec)
        for q, recs in grouped.items():
            candidates[q] = recs
        # every candidate in one grid: who is responsible is known even if the building is not
        one_grid = frame.groupby("query")["grid_id"].agg(lambda s: s.iloc[0] if s.notna().all() and s.nunique() == 1
                                                         else None).dropna()
        if len(one_grid):
            q = one_grid.index.to_numpy()
            grid[q] = pd.Index(index.grids.ids).get_indexer(one_grid.to_numpy())
    out = _grid_fields(index, grid)
    out["building_id"] = _take_ids(index.buildings, matches.building)
    out["estate_id"] = _take_ids(index.estates, estate)
    out["version"] = np.full(n, index.version, dtype=object)
    placed = (matches.kind == "building") | (matches.kind == "estate")
    covered = np.full(n, None, dtype=object)
    covered[placed] = grid[placed] >= 0
    covered[(matches.kind == "ambiguous") & (grid >= 0)] = True
    out["covered"] = covered
    out["nearest_grid_id"] = np.full(n, None, dtype=object)
    out["distance_m"] = np.full(n, np.nan)
    out["method"] = np.array(["address_" + ("not_found" if k == "none" else k) for k in matches.kind], dtype=object)
    out["address_normalised"] = matches.normalised
    out["score"] = matches.score
    out["candidates"] = candidates
    out["problem"] = matches.problem
    return out


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def columns_to_records(columns: dict[str, np.ndarray]) -> list[dict]:
    """The answers as a list of JSON-ready dicts (NaN → None, numpy scalars → Python)."""
    if all(len(v) == 1 for v in columns.values()):  # a single answer: no frame needed
        return [{k: _plain(v[0]) for k, v in columns.items()}]
    frame = pd.DataFrame(columns)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")
