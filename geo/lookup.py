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
The answers carry the grid's full-time worker's work contact and never any household's data; every id
comes with its name (community, street, building, estate, nearest grid), and every answer with ``problem``
(a code of :data:`geo.problems.PROBLEMS`), ``message`` (Chinese) and ``message_en``.

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

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
import shapely

from geo.crs import offset_to_wgs84, parse_crs
from geo.errors import InputError
from geo.inside import _pick_min, _rank, best_polygons, points_in_polygons
from geo.problems import ProblemError, problem_messages
from geo.settings import Settings

if TYPE_CHECKING:  # a point lookup loads numpy, shapely and pyproj only: pandas and geopandas build the index
    import geopandas as gpd
    import pandas as pd
    import pyproj

    from geo.address import AddressIndex, AddressSettings

#: Coordinate systems a caller may give (lon/lat degrees).
LOOKUP_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
#: The fields of every answer, in order (the names other systems rely on come first).
#: Every id comes with its name (``community_name`` …), and every answer with ``problem`` (a code of
#: :data:`geo.problems.PROBLEMS` or ``None``), ``message`` (Chinese) and ``message_en``.
ANSWER_FIELDS = ("grid_id", "grid_name", "grid_code", "community_id", "community_name", "street_id", "street_name",
                 "worker_name", "worker_phone", "building_id", "building_name", "building_address", "estate_id",
                 "estate_name", "version", "covered", "nearest_grid_id", "nearest_grid_name", "distance_m", "method",
                 "problem", "message", "message_en")
#: Extra fields of an address answer.
ADDRESS_FIELDS = ("address_normalised", "score", "candidates")
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
            import pyproj

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
    """Raise :class:`geo.problems.ProblemError` naming the first item whose lon/lat is missing or out of range
    (``lonlat_swapped_out_of_range`` when lat is out of range but the two swapped are valid).

    Examples
    --------
    >>> check_lonlat(np.array([30.66]), np.array([104.06]))
    Traceback (most recent call last):
    ...
    geo.problems.ProblemError: field 'lon/lat': lat and lon look swapped: lat 104.06 is outside -90 to 90 while lon 30.66 looks like a latitude; give lon (east, 73 to 135 in China) first, then lat (north)
    """
    bad = ~valid_lonlat(lon, lat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"item {i}: " if len(lon) > 1 else ""
        more = f" ({int(bad.sum())} such items)" if bad.sum() > 1 else ""
        x, y = float(lon[i]), float(lat[i])
        swapped = bool(valid_lonlat(np.array([y]), np.array([x]))[0])
        code = "lonlat_swapped_out_of_range" if swapped else "lonlat_out_of_range"
        raise ProblemError(code, field="lon/lat", prefix=where, lon=f"{x:.10g}", lat=f"{y:.10g}" + more)


def _text(values) -> np.ndarray:
    """Object array of str with None for missing/empty."""
    import pandas as pd

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
        return cls.of_arrays(ids, geom)

    @classmethod
    def of_arrays(cls, ids: np.ndarray, geom: np.ndarray) -> "_Polygons":
        """From ids (str) and WGS-84 polygons, aligned."""
        shapely.prepare(geom)
        return cls(ids=ids, geom=geom, rank=_rank(ids), tree=shapely.STRtree(geom))

    def covering(self, x: np.ndarray, y: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Polygon covering each point by :func:`geo.assign.points_in_polygons` (-1 for none), interior counts."""
        if len(self.geom) == 0:
            return np.full(len(x), -1, dtype=np.int64), np.zeros(len(x), dtype=np.int64)
        if len(x) > _SMALL_BATCH:
            return points_in_polygons(points, self.geom, tie_rank=self.rank, xy=(x, y))
        pi, gi = self.tree.query(points)  # few points: the prebuilt tree of the polygons gives the pairs
        return best_polygons(pi, gi, x[pi], y[pi], self.geom, tie_rank=self.rank, n=len(x))

    def cover_point(self, point, x: float, y: float) -> tuple[int, int]:
        """:meth:`covering` of one point (a shapely Point at ``x``, ``y``): the polygon covering it (-1 for none)
        and how many interiors hold it. The tree gives the polygons that cover it (``intersects``: the boundary
        included); when only one does, it is the answer, else the tie rule of :func:`geo.inside.best_polygons`."""
        cand = self.tree.query(point, predicate="intersects")
        if len(cand) == 0:
            return -1, 0
        if len(cand) == 1:
            return int(cand[0]), int(shapely.contains_xy(self.geom[cand[0]], x, y))
        best, interior = best_polygons(np.zeros(len(cand), dtype=np.int64), cand, np.full(len(cand), x),
                                       np.full(len(cand), y), self.geom, tie_rank=self.rank, n=1)
        return int(best[0]), int(interior[0])


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
    #: The CRS of distances (a pyproj CRS, or its text, e.g. ``EPSG:32648``).
    metric_crs: "pyproj.CRS | str"
    buildings: _Polygons | None
    building_grid: np.ndarray
    building_estate: np.ndarray
    estates: _Polygons | None
    estate_grid: np.ndarray
    address: LazyAddressIndex | None
    #: Per grid: its community's and its street's names.
    community_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    street_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    #: Per building: name, address and a WGS-84 point inside it (lon, lat); per estate: name and point.
    building_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    building_address: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    building_xy: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
    estate_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    estate_xy: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
    #: The grids' WGS-84 bounds (minx, miny, maxx, maxy): a point outside that lands inside swapped is swapped.
    bounds: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)
    #: Parsed ``crs`` spellings and their transformers (:func:`to_wgs84`), kept with the index.
    crs_cache: dict = field(default_factory=dict, repr=False)
    #: The answer fields of each grid, building and estate as records, made on the first :func:`lookup_point`.
    parts: dict = field(default_factory=dict, repr=False)

    @property
    def n_grids(self) -> int:
        return len(self.grids.ids)

    @property
    def to_metric(self) -> "pyproj.Transformer":
        """WGS-84 lon/lat to :attr:`metric_crs`, made on first use (only a point in no grid needs it)."""
        hit = self.crs_cache.get(_METRIC)
        if hit is None:
            import pyproj

            hit = self.crs_cache[_METRIC] = pyproj.Transformer.from_crs(4326, self.metric_crs, always_xy=True)
        return hit


#: Key of the metric transformer in :attr:`LookupIndex.crs_cache` (not a ``crs`` a caller can give).
_METRIC = "\0metric"


class LazyAddressIndex:
    """Makes an :class:`geo.address.AddressIndex` on first use (thread-safe), so point lookups never pay for it."""

    def __init__(self, build: Callable[[], "AddressIndex"]) -> None:
        self._build = build
        self._index: AddressIndex | None = None
        self._lock = threading.Lock()

    def get(self) -> "AddressIndex":
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._build()
        return self._index


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
        ``address`` and ``building_id`` only: known addresses of buildings (no household leaves the index);
        or a function of no arguments returning them, called on the first address lookup (a point lookup
        then never reads the households).
    version
        The boundary version the answers report.
    address_settings
        City and districts for addresses; inferred from the data (and ``city``, ``streets``) when ``None``.
    metric_crs
        CRS of distances; the UTM zone holding the grids' centre by default (as the analysis).
    """
    import pandas as pd

    from geo.assign import building_grids
    from geo.crs import local_metric_crs

    grids = grids.reset_index(drop=True)
    if len(grids) == 0:
        raise InputError("the grids layer is empty: nothing to look up", field="grids")
    gp = _Polygons.of(grids)
    community = _text(grids["community_id"]) if "community_id" in grids else np.full(len(grids), None, dtype=object)
    names = _area_names(community, communities, streets)
    if metric_crs is None:
        x0, y0, x1, y1 = grids.total_bounds
        metric_crs = local_metric_crs((x0 + x1) / 2.0, (y0 + y1) / 2.0)
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
        community_id=community, street_id=names["street_id"], community_name=names["community_name"],
        street_name=names["street_name"], bounds=tuple(float(v) for v in grids.total_bounds),
        building_name=_column(buildings, "name"), building_address=_column(buildings, "address"),
        building_xy=_inner_points(buildings), estate_name=_column(estates, "name"), estate_xy=_inner_points(estates),
        worker_name=_text(grids["worker_name"]) if "worker_name" in grids else np.full(len(grids), None, object),
        worker_phone=_text(grids["worker_phone"]) if "worker_phone" in grids else np.full(len(grids), None, object),
        grid_metric_tree=metric_tree, metric_crs=metric_crs,
        buildings=bp, building_grid=b_grid, building_estate=b_estate, estates=ep, estate_grid=e_grid,
        address=LazyAddressIndex(partial(_make_address_index, buildings=buildings, estates=estates,
                                         communities=communities, households=households, streets=streets,
                                         city=city, address_settings=address_settings)))


def _area_names(community: np.ndarray, communities: gpd.GeoDataFrame | None,
                streets: gpd.GeoDataFrame | None) -> dict[str, np.ndarray]:
    """Per grid (its ``community_id`` given): the street id and the community's and street's names."""
    import pandas as pd

    c_frame = pd.DataFrame(communities.drop(columns=communities.geometry.name, errors="ignore")) \
        if communities is not None else pd.DataFrame({"id": []})
    c_index = pd.Index(c_frame["id"].astype(str))
    pos = c_index.get_indexer(pd.Series(community, dtype=object).fillna("\0").astype(str))
    street = _take_values(_column(c_frame, "street_id"), pos)
    s_frame = pd.DataFrame(streets.drop(columns=streets.geometry.name, errors="ignore")) \
        if streets is not None and "id" in streets else pd.DataFrame({"id": []})
    s_pos = pd.Index(s_frame["id"].astype(str)).get_indexer(pd.Series(street, dtype=object).fillna("\0").astype(str))
    return {"street_id": street,
            "community_name": _take_values(_column(c_frame, "name"), pos),
            "street_name": _take_values(_column(s_frame, "name"), s_pos)}


def _column(frame: pd.DataFrame | None, name: str) -> np.ndarray:
    """A text column of a layer (``None`` for missing values), or all ``None`` if the layer lacks it."""
    if frame is None:
        return np.zeros(0, dtype=object)
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    return _text(frame[name].reset_index(drop=True))


def _take_values(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values[pos]`` with ``None`` where ``pos`` is -1."""
    out = np.full(len(pos), None, dtype=object)
    has = pos >= 0
    out[has] = values[pos[has]]
    return out


def _inner_points(frame: gpd.GeoDataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """A WGS-84 point inside each polygon (lon, lat): where an address placed on it is, for the nearest grid."""
    if frame is None or len(frame) == 0:
        return np.zeros(0), np.zeros(0)
    pts = shapely.point_on_surface(frame.geometry.to_numpy())
    return shapely.get_x(pts), shapely.get_y(pts)


def _make_address_index(*, buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None,
                        communities: gpd.GeoDataFrame | None, households: pd.DataFrame | None,
                        streets: gpd.GeoDataFrame | None, city: str | None,
                        address_settings: AddressSettings | None):
    """The address index of :func:`build_index` (built on the first address lookup): known addresses of the
    households and buildings, settings inferred from them unless given."""
    import pandas as pd

    from geo.address import build_address_index, infer_settings

    if callable(households):
        households = households()
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


#: Per-grid, per-building and per-estate text columns of a :class:`LookupIndex` (``None`` for none).
_TEXT_FIELDS = ("grid_name", "grid_code", "community_id", "street_id", "worker_name", "worker_phone", "community_name",
                "street_name", "building_name", "building_address", "estate_name")
_INT_FIELDS = ("building_grid", "building_estate", "estate_grid")
_LAYERS = ("grids", "buildings", "estates")


def index_arrays(index: LookupIndex) -> dict[str, np.ndarray]:
    """The whole index as plain arrays — numbers, fixed-width text, geometries as WKB bytes, no Python objects —
    for :func:`index_of_arrays` to make it again, answering exactly as ``index`` does (the address index is
    built first if it is not yet). A file written with ``numpy.savez`` and read with ``allow_pickle=False``
    holds them.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"id": ["G1"], "name": ["一网格"]}, geometry=[box(104.06, 30.65, 104.07, 30.66)],
    ...                          crs=4326)
    >>> again = index_of_arrays(index_arrays(build_index(grids, version=2)))
    >>> lookup_points(again, [104.065], [30.655])["grid_name"], again.version
    (array(['一网格'], dtype=object), 2)
    """
    out: dict[str, np.ndarray] = {"version": np.asarray(index.version), "bounds": np.asarray(index.bounds, float)}
    crs = index.metric_crs
    out["metric_crs"] = np.asarray(crs if isinstance(crs, str) else
                                   f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_wkt())
    for name in _TEXT_FIELDS:
        out[name], out[name + "_none"] = _text_arrays(getattr(index, name))
    for name in _INT_FIELDS:
        out[name] = np.asarray(getattr(index, name), dtype=np.int64)
    for name in _LAYERS:
        layer = getattr(index, name)
        if layer is not None:
            out[name + "_ids"] = np.asarray(list(layer.ids), dtype=str).reshape(-1)
            out[name + "_wkb"], out[name + "_wkb_at"] = _wkb_arrays(layer.geom)
    out["grids_metric_wkb"], out["grids_metric_wkb_at"] = _wkb_arrays(index.grid_metric_tree.geometries)
    out["building_x"], out["building_y"] = (np.asarray(v, dtype=float) for v in index.building_xy)
    out["estate_x"], out["estate_y"] = (np.asarray(v, dtype=float) for v in index.estate_xy)
    if index.address is not None:
        from geo.address import address_index_arrays

        out.update({"address_" + k: v for k, v in address_index_arrays(index.address.get()).items()})
    return out


def index_of_arrays(arrays: dict[str, np.ndarray]) -> LookupIndex:
    """The :class:`LookupIndex` of :func:`index_arrays`' arrays (the trees are built again; the address index is
    made on the first address lookup)."""
    layers = {name: _Polygons.of_arrays(arrays[name + "_ids"].astype(object),
                                        _of_wkb(arrays[name + "_wkb"], arrays[name + "_wkb_at"]))
              if name + "_ids" in arrays else None for name in _LAYERS}
    address = {k[len("address_"):]: arrays[k] for k in arrays if k.startswith("address_")}
    return LookupIndex(
        version=arrays["version"].item(), grids=layers["grids"], buildings=layers["buildings"],
        estates=layers["estates"], bounds=tuple(float(v) for v in arrays["bounds"]),
        grid_metric_tree=shapely.STRtree(_of_wkb(arrays["grids_metric_wkb"], arrays["grids_metric_wkb_at"])),
        metric_crs=str(arrays["metric_crs"]),
        **{name: _of_text(arrays[name], arrays[name + "_none"]) for name in _TEXT_FIELDS},
        **{name: arrays[name].astype(np.int64) for name in _INT_FIELDS},
        building_xy=(arrays["building_x"], arrays["building_y"]), estate_xy=(arrays["estate_x"], arrays["estate_y"]),
        address=LazyAddressIndex(partial(_address_of_arrays, address)) if address else None)


def _address_of_arrays(arrays: dict[str, np.ndarray]) -> "AddressIndex":
    from geo.address import address_index_of_arrays

    return address_index_of_arrays(arrays)


def _text_arrays(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Text (``None`` → "") as a fixed-width array, and where it was ``None``."""
    none = np.equal(values, None)
    return np.asarray(np.where(none, "", values).tolist(), dtype=str).reshape(-1), np.asarray(none, dtype=bool)


def _of_text(text: np.ndarray, none: np.ndarray) -> np.ndarray:
    out = text.astype(object)
    out[none] = None
    return out


def _wkb_arrays(geom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometries as one byte array of their WKB and the offsets where each starts (and the last ends)."""
    wkb = shapely.to_wkb(geom)
    at = np.zeros(len(wkb) + 1, dtype=np.int64)
    at[1:] = np.cumsum(np.fromiter(map(len, wkb), dtype=np.int64, count=len(wkb)))
    return np.frombuffer(b"".join(wkb), dtype=np.uint8), at


def _of_wkb(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    raw = data.tobytes()
    return shapely.from_wkb(np.array([raw[a:b] for a, b in zip(at[:-1].tolist(), at[1:].tolist())], dtype=object))


def _grid_fields(index: LookupIndex, g: np.ndarray) -> dict[str, np.ndarray]:
    """The grid's fields of each answer (grid ``g``, -1 for none): ids, names, code, worker."""
    take = partial(_take_values, pos=g)
    return {"grid_id": take(index.grids.ids), "grid_name": take(index.grid_name), "grid_code": take(index.grid_code),
            "community_id": take(index.community_id), "community_name": take(index.community_name),
            "street_id": take(index.street_id), "street_name": take(index.street_name),
            "worker_name": take(index.worker_name), "worker_phone": take(index.worker_phone)}


def _place_fields(index: LookupIndex, grid: np.ndarray, building: np.ndarray, estate: np.ndarray) -> dict:
    """Every answer's grid, building and estate fields, ids with their names, in :data:`ANSWER_FIELDS` order."""
    out = _grid_fields(index, grid)
    out["building_id"] = _take_ids(index.buildings, building)
    out["building_name"] = _take_values(index.building_name, building)
    out["building_address"] = _take_values(index.building_address, building)
    out["estate_id"] = _take_ids(index.estates, estate)
    out["estate_name"] = _take_values(index.estate_name, estate)
    out["version"] = np.full(len(grid), index.version, dtype=object)
    return out


def _nearest_fields(index: LookupIndex, where: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict:
    """``nearest_grid_id``, ``nearest_grid_name`` and ``distance_m`` for the answers ``where`` is true (the
    points ``x``, ``y`` of those answers, WGS-84)."""
    n = len(where)
    out = {"nearest_grid_id": np.full(n, None, dtype=object), "nearest_grid_name": np.full(n, None, dtype=object),
           "distance_m": np.full(n, np.nan)}
    idx = np.flatnonzero(where)
    if len(idx):
        near, dist = nearest_grids(index, x, y)
        out["nearest_grid_id"][idx] = index.grids.ids[near]
        out["nearest_grid_name"][idx] = index.grid_name[near]
        out["distance_m"][idx] = dist
    return out


def _with_messages(out: dict, problem: np.ndarray, **params) -> dict:
    """``problem``, ``message`` and ``message_en`` of the answers (:mod:`geo.problems`); the fields of
    ``outside_grids`` (the nearest grid, its distance) are taken from ``out``."""
    outside = np.asarray(problem == "outside_grids", dtype=bool)
    distance = np.full(len(problem), None, dtype=object)
    distance[outside] = np.round(out["distance_m"][outside]).astype(np.int64).astype(str)
    nearest = np.where(np.equal(out["nearest_grid_name"], None), out["nearest_grid_id"], out["nearest_grid_name"])
    zh, en = problem_messages(problem, {"nearest_grid": nearest, "distance_m": distance, **params})
    out["problem"], out["message"], out["message_en"] = problem, zh, en
    return out


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


def lookup_point(index: LookupIndex, lon: float, lat: float, *, crs: str = "wgs84") -> dict | None:
    """The answer for one point, as the record :func:`lookup_points` gives for it, assembled from the grid's,
    building's and estate's fields made once per index (a hotline's single lookup, without per-answer arrays);
    a point in no grid gets the nearest grid and its problem from the functions :func:`lookup_points` uses.
    ``None`` for a coordinate that is missing or out of range, which :func:`lookup_points` refuses, saying why.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"id": ["G1"], "name": ["一网格"]}, geometry=[box(104.06, 30.65, 104.07, 30.66)],
    ...                          crs=4326)
    >>> index = build_index(grids, version=2)
    >>> lookup_point(index, 104.065, 30.655) == columns_to_records(lookup_points(index, [104.065], [30.655]))[0]
    True
    >>> lookup_point(index, 104.08, 30.655)["nearest_grid_id"]  # in no grid
    'G1'
    >>> lookup_point(index, 30.655, 200.0) is None  # out of range: lookup_points says so
    True
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        return None
    xs, ys = to_wgs84(np.array([lon], dtype=float), np.array([lat], dtype=float), crs, cache=index.crs_cache)
    x, y = float(xs[0]), float(ys[0])
    point = shapely.Point(x, y)
    b = e = -1
    if index.buildings is not None:
        b = index.buildings.cover_point(point, x, y)[0]
    g = int(index.building_grid[b]) if b >= 0 else -1
    method = "building"
    if g < 0:
        g, interior = index.grids.cover_point(point, x, y)
        method = _GRID_METHOD.get(interior, "overlap")
    if b >= 0 and index.estates is not None:
        e = int(index.building_estate[b])
    if e < 0 and index.estates is not None:
        e = index.estates.cover_point(point, x, y)[0]
    parts = _answer_parts(index)
    record = {**parts["grid"][g], **parts["building"][b], **parts["estate"][e], "version": _plain(index.version),
              "covered": True, "nearest_grid_id": None, "nearest_grid_name": None, "distance_m": None,
              "method": method, "problem": None, "message": None, "message_en": None}
    if g < 0:
        record.update(_outside_fields(index, xs, ys, lon, lat))
    record["lon_wgs84"], record["lat_wgs84"] = (float(v[0]) for v in (np.round(xs, 8), np.round(ys, 8)))
    return record


def _outside_fields(index: LookupIndex, x: np.ndarray, y: np.ndarray, lon: float, lat: float) -> dict:
    """The fields of :func:`lookup_point`'s answer for a point in no grid (WGS-84 ``x``, ``y``; as given ``lon``,
    ``lat``): the nearest grid and the problem, by the functions :func:`lookup_points` uses."""
    out = _nearest_fields(index, np.ones(1, dtype=bool), x, y)
    given = (np.array([lon]), np.array([lat]))
    swapped = _looks_swapped(index, *given)
    problem = np.where(swapped, "lonlat_swapped", "outside_grids").astype(object)
    texts = [np.where(swapped, v.astype(str), None).astype(object) for v in given]
    _with_messages(out, problem, lon=texts[0], lat=texts[1])
    return {"covered": False, **{k: _plain(v[0]) for k, v in out.items()}, "method": "not_covered"}


#: The method of a point in a grid but in no building, by how many grids' interiors hold it (2 or more: overlap).
_GRID_METHOD = {0: "boundary", 1: "grid"}


def _answer_parts(index: LookupIndex) -> dict[str, list[dict]]:
    """Per grid, building and estate, its answer fields as a record (the last record of each: none)."""
    parts = index.parts
    if not parts:  # made whole, then set: another thread sees none or all of it
        parts, none = {}, np.array([-1])
        for name, layer, take in (("grid", index.grids, lambda pos: _grid_fields(index, pos)),
                                  ("building", index.buildings, lambda pos: {
                                      "building_id": _take_ids(index.buildings, pos),
                                      "building_name": _take_values(index.building_name, pos),
                                      "building_address": _take_values(index.building_address, pos)}),
                                  ("estate", index.estates, lambda pos: {
                                      "estate_id": _take_ids(index.estates, pos),
                                      "estate_name": _take_values(index.estate_name, pos)})):
            pos = np.r_[np.arange(0 if layer is None else len(layer.ids)), none]
            columns = take(pos)
            parts[name] = [{k: _plain(v[i]) for k, v in columns.items()} for i in range(len(pos))]
        index.parts = parts
    return parts


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
    out = _place_fields(index, grid, b, estate)
    out["covered"] = covered
    out.update(_nearest_fields(index, ~covered, x[~covered], y[~covered]))
    out["method"] = method
    problem = np.where(covered, None, "outside_grids").astype(object)
    swapped = _looks_swapped(index, lon, lat) & ~covered
    problem[swapped] = "lonlat_swapped"
    lon_text, lat_text = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    lon_text[swapped], lat_text[swapped] = lon[swapped].astype(str), lat[swapped].astype(str)
    _with_messages(out, problem, lon=lon_text, lat=lat_text)
    out["lon_wgs84"] = np.round(x, 8)
    out["lat_wgs84"] = np.round(y, 8)
    return out


def _looks_swapped(index: LookupIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points outside the grids' bounds that would fall inside them with lon and lat swapped."""
    x0, y0, x1, y1 = index.bounds
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    swapped = (y >= x0) & (y <= x1) & (x >= y0) & (x <= y1)
    return swapped & ~inside


def _take_ids(layer: _Polygons | None, pos: np.ndarray) -> np.ndarray:
    out = np.full(len(pos), None, dtype=object)
    if layer is not None:
        has = pos >= 0
        out[has] = layer.ids[pos[has]]
    return out


def lookup_addresses(index: LookupIndex, addresses: Iterable[str | None]) -> dict[str, np.ndarray]:
    """Grid and worker for each address, via the building or estate it names (see :mod:`geo.address`).

    Returns :data:`ANSWER_FIELDS` plus :data:`ADDRESS_FIELDS`. An ambiguous address has ``candidates``
    (a list of ``{building_id, building_name, estate_id, estate_name, grid_id, grid_name, score}``) and no grid
    unless every candidate is in the same grid; ``covered`` is ``None`` when the address was not placed. A
    placed address in no grid is ``covered: false`` with the nearest grid (``problem`` ``outside_grids``), as a
    coordinate there is; a building number its estate lacks is answered for the estate with the warning
    ``building_not_found`` (naming the estate's buildings).
    """
    import pandas as pd

    from geo.address import match_addresses

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
    candidates = _address_candidates(index, matches.candidates, grid)
    out = _place_fields(index, grid, matches.building, estate)
    placed = (matches.kind == "building") | (matches.kind == "estate")
    covered = np.full(n, None, dtype=object)
    covered[placed] = grid[placed] >= 0
    covered[(matches.kind == "ambiguous") & (grid >= 0)] = True
    out["covered"] = covered
    outside = placed & (grid < 0)
    x, y = _address_points(index, matches.building, estate, outside)
    out.update(_nearest_fields(index, outside, x, y))
    out["method"] = np.array(["address_" + ("not_found" if k == "none" else k) for k in matches.kind], dtype=object)
    problem = matches.problem.copy()
    problem[outside] = "outside_grids"
    known = pd.Series(matches.known_buildings, dtype=object)
    has_known = known.notna().to_numpy()
    listed = pd.Series([None] * n, dtype=object)
    listed[has_known] = known[has_known].map(lambda numbers: "、".join(f"{b}栋" for b in numbers))
    listed = listed.fillna("")
    _with_messages(out, problem, found=matches.found, expected=matches.expected, building=matches.building_asked,
                   estate=out["estate_name"], known=(np.where(has_known, "（该小区有：" + listed + "）", ""),
                                                     np.where(has_known, " (its buildings: " + listed + ")", "")))
    out["address_normalised"] = matches.normalised
    out["score"] = matches.score
    out["candidates"] = candidates
    return out


def _address_points(index: LookupIndex, building: np.ndarray, estate: np.ndarray,
                    where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A WGS-84 point inside the building (else the estate) of each answer ``where`` is true."""
    idx = np.flatnonzero(where)
    b, e = building[idx], estate[idx]
    bx, by = index.building_xy
    ex, ey = index.estate_xy
    x = np.where(b >= 0, bx[np.maximum(b, 0)] if len(bx) else np.nan, ex[np.maximum(e, 0)] if len(ex) else np.nan)
    y = np.where(b >= 0, by[np.maximum(b, 0)] if len(by) else np.nan, ey[np.maximum(e, 0)] if len(ey) else np.nan)
    return x, y


def _address_candidates(index: LookupIndex, cand: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """The candidates of each ambiguous address as lists of records (``None`` elsewhere); where every candidate
    lies in one grid, that grid is written into ``grid`` (who is responsible is known, the building is not)."""
    import pandas as pd

    candidates = np.full(len(grid), None, dtype=object)
    if len(cand) == 0:
        return candidates
    cb = cand["building"].to_numpy().astype(np.int64)
    ce = cand["estate"].to_numpy().astype(np.int64)
    cg = np.where(cb >= 0, index.building_grid[np.maximum(cb, 0)] if len(index.building_grid) else -1,
                  index.estate_grid[np.maximum(ce, 0)] if len(index.estate_grid) else -1)
    ce = np.where((ce < 0) & (cb >= 0), index.building_estate[np.maximum(cb, 0)] if len(index.building_estate)
                  else -1, ce)
    frame = pd.DataFrame({
        "query": cand["query"].to_numpy().astype(np.int64),
        "building_id": _take_ids(index.buildings, cb), "building_name": _take_values(index.building_name, cb),
        "building_address": _take_values(index.building_address, cb),
        "estate_id": _take_ids(index.estates, ce), "estate_name": _take_values(index.estate_name, ce),
        "grid_id": _take_ids(index.grids, cg), "grid_name": _take_values(index.grid_name, cg),
        "score": cand["score"].round(3).to_numpy(),
    })
    plain = frame.drop(columns="query").astype(object)
    records = plain.where(plain.notna(), None).to_dict("records")
    grouped: dict[int, list] = {}
    for q, rec in zip(frame["query"].to_numpy(), records):
        grouped.setdefault(int(q), []).append(rec)
    for q, recs in grouped.items():
        candidates[q] = recs
    one_grid = frame.groupby("query")["grid_id"].agg(lambda s: s.iloc[0] if s.notna().all() and s.nunique() == 1
                                                     else None).dropna()
    if len(one_grid):
        q = one_grid.index.to_numpy()
        grid[q] = pd.Index(index.grids.ids).get_indexer(one_grid.to_numpy())
    return candidates


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
    import pandas as pd

    frame = pd.DataFrame(columns)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")
