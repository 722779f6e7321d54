"""A declared layer read from the workspace and prepared for serving: views by caller, queries, GeoJSON.

A :class:`LayerCache` gives the :class:`PreparedLayer` of a layer for the workspace's current version (read
once per version; a new version of the workspace gives a new one); its owner makes it (the server one per
app, on ``app.state.layer_cache``), so there is no module-level cache. Everything the servers answer with is
computed here, over arrays: which properties a caller sees (k-suppression of special-group counts, the
streets of a street office), bbox and property queries (STRtree), GeoJSON in CRS84, CGCS2000 (EPSG:4490,
latitude first), Web Mercator and GCJ-02 (geo.crs).

Example
-------
A store's layer is prepared once (:class:`LayerCache`); a frame can be prepared alike. Small special-group
counts are withheld from the public (here fewer than 5):

>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> from layers.catalog import find_layer
>>> frame = gpd.GeoDataFrame({"id": ["G1", "G2"], "name": ["一网格", "二网格"], "community_id": "C1",
...                           "elderly_alone": [3, 12]},
...                          geometry=[box(104.07, 30.65, 104.075, 30.66), box(104.075, 30.65, 104.08, 30.66)],
...                          crs=4326)
>>> layer = PreparedLayer(find_layer("grids"), frame, street_of=None, tag="v1")
>>> layer.query(view=public_view(5), bbox_wgs84=box(104.071, 30.651, 104.072, 30.652))
array([0])
>>> layer.properties(public_view(5))["elderly_alone"].tolist()
[<NA>, 12]
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.crs import transform_geometries, wgs84_to_gcj02
from geo.errors import ParameterError
from layers.base import MapLayer
from layers.catalog import HEAT_DERIVED, LAYERS, find_layer as declared
from layers.mvt import ValueTable

if TYPE_CHECKING:
    from gridcover.store import Workspace

#: Output coordinate systems: key → (pyproj target or offset name, swap axes to lat/lon, decimals).
OUTPUT_CRS = {
    "CRS84": (None, False, 7),
    "EPSG:4326": (None, True, 7),
    "EPSG:4490": ("EPSG:4490", True, 7),
    "EPSG:3857": ("EPSG:3857", False, 2),
    "GCJ-02": ("gcj02", False, 7),
}

_TO_3857 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
_FROM_3857 = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
_TO_4490 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4490", always_xy=True)


@dataclass(frozen=True)
class View:
    """What one caller sees of a layer: the roles it holds, the streets it answers for, and k.

    ``streets=None`` means every street (admin); counts of special groups in features outside the caller's
    streets are withheld when 0 < count < k.
    """

    k: int
    roles: frozenset[str] = frozenset({"public"})
    streets: frozenset[str] | None = frozenset()

    def at_least(self, role: str) -> bool:
        return role in self.roles

    @property
    def key(self) -> tuple:
        return (self.k, tuple(sorted(self.roles)), None if self.streets is None else tuple(sorted(self.streets)))


def public_view(k: int) -> View:
    """The view of a caller without a key (also what every tile shows)."""
    return View(k=k)


def project(geoms: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    """Every vertex of a geometry array through a pyproj transformer (x, y order)."""
    def _apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])
    return shapely.transform(np.asarray(geoms, dtype=object), _apply)


def to_output_crs(geoms: np.ndarray, crs_key: str) -> np.ndarray:
    """WGS-84 geometries in an output CRS of :data:`OUTPUT_CRS` (axis order and rounding included)."""
    target, swap, decimals = OUTPUT_CRS[crs_key]
    if target == "gcj02":
        geoms = transform_geometries(geoms, wgs84_to_gcj02)
    elif target == "EPSG:3857":
        geoms = project(geoms, _TO_3857)
    elif target == "EPSG:4490":
        geoms = project(geoms, _TO_4490)

    def _finish(coords: np.ndarray) -> np.ndarray:
        coords = np.round(coords, decimals)
        return coords[:, ::-1] if swap else coords
    return shapely.transform(np.asarray(geoms, dtype=object), _finish)


#: Bounds of each output CRS in its x, y order (before any axis swap): lon/lat degrees, Web Mercator metres.
_MERCATOR_X = float(_TO_3857.transform(180.0, 0.0)[0])
CRS_BOUNDS = {
    "CRS84": (-180.0, -90.0, 180.0, 90.0),
    "EPSG:4326": (-180.0, -90.0, 180.0, 90.0),
    "EPSG:4490": (-180.0, -90.0, 180.0, 90.0),
    "EPSG:3857": (-_MERCATOR_X, -_MERCATOR_X, _MERCATOR_X, _MERCATOR_X),
    "GCJ-02": (-180.0, -90.0, 180.0, 90.0),
}


def parse_bbox(text: str, crs_key: str) -> shapely.Geometry:
    """An OGC ``bbox`` parameter (4 or 6 numbers in the axis order of ``crs_key``) as a WGS-84 query area.

    Every number must be finite and inside the CRS's bounds (:data:`CRS_BOUNDS`); the south edge may not lie
    north of the north edge. A west edge east of the east edge is a box across the antimeridian (OGC API –
    Features, 7.15.3): two boxes, one each side of it. A box of zero width or height is a valid query (a point
    or a segment): it finds what it touches. Anything else raises :class:`~geo.errors.ParameterError`.

    >>> parse_bbox("104.07,30.65,104.07,30.65", "CRS84").geom_type
    'Point'
    """
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise ParameterError("bbox", f"{_shown(text)} is not 4 (or 6) comma-separated numbers (it has {len(parts)})")
    numbers = []
    for part in parts:
        try:
            number = float(part)
        except ValueError:
            raise ParameterError("bbox", f"{_shown(part)} is not a number (in {_shown(text)})") from None
        if not np.isfinite(number):
            raise ParameterError("bbox", f"{_shown(part)} is not a finite number (in {_shown(text)})")
        numbers.append(number)
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    _, swap, _ = OUTPUT_CRS[crs_key]
    a0, b0, a1, b1 = numbers
    x0, y0, x1, y1 = (b0, a0, b1, a1) if swap else (a0, b0, a1, b1)
    lo_x, lo_y, hi_x, hi_y = CRS_BOUNDS[crs_key]
    x_name, y_name = ("x", "y") if crs_key == "EPSG:3857" else ("longitude", "latitude")
    for value, lo, hi, name in ((x0, lo_x, hi_x, x_name), (x1, lo_x, hi_x, x_name),
                                (y0, lo_y, hi_y, y_name), (y1, lo_y, hi_y, y_name)):
        if not lo <= value <= hi:
            raise ParameterError("bbox", f"{name} {value:g} is outside {lo:g}..{hi:g}, the bounds of {crs_key} "
                                         f"(in {_shown(text)}; axis order of bbox-crs)")
    if y0 > y1:
        raise ParameterError("bbox", f"the south edge {y0:g} lies north of the north edge {y1:g} (in {_shown(text)}; "
                                     "the lower corner comes first)")
    if x0 > x1:
        return bbox_to_wgs84((x0, y0, hi_x, y1), crs_key, xy=True).union(
            bbox_to_wgs84((lo_x, y0, x1, y1), crs_key, xy=True))
    return bbox_to_wgs84((x0, y0, x1, y1), crs_key, xy=True)


def _shown(text: str, width: int = 60) -> str:
    """A user's value quoted for a message, cut to ``width`` characters."""
    return repr(text if len(text) <= width else text[:width] + "…")


def bbox_to_wgs84(bbox: tuple[float, float, float, float], crs_key: str, *, xy: bool = False) -> shapely.Geometry:
    """A bbox given in an output CRS (its axis order, or x/y with ``xy``) as a WGS-84 geometry (edges densified
    for curved ones); a box of zero width or height is a point or a segment. Use :func:`parse_bbox` for a
    user's values: this one does not check them."""
    target, swap, _ = OUTPUT_CRS[crs_key]
    a0, b0, a1, b1 = bbox
    x0, y0, x1, y1 = (b0, a0, b1, a1) if swap and not xy else (a0, b0, a1, b1)
    if x0 == x1 and y0 == y1:
        box = shapely.Point(x0, y0)
    elif x0 == x1 or y0 == y1:
        box = shapely.LineString([(x0, y0), (x1, y1)])
    else:
        box = shapely.box(x0, y0, x1, y1)
    if not isinstance(box, shapely.Point):
        box = shapely.segmentize(box, max(x1 - x0, y1 - y0) / 16)
    if target == "gcj02":
        from geo.crs import gcj02_to_wgs84
        box = transform_geometries(np.array([box], dtype=object), gcj02_to_wgs84)[0]
    elif target == "EPSG:3857":
        box = project(np.array([box], dtype=object), _FROM_3857)[0]
    return box


def _json_records(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row (nulls as null, text unescaped)."""
    if frame.shape[1] == 0:
        return ["{}"] * len(frame)
    records = json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=10,
                                       date_format="iso", default_handler=str))
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [dumps(r) for r in records]


#: Columns the analysis writes as lists (JSON text in the GeoPackage): served as JSON arrays again.
LIST_FIELDS = ("risk_reasons", "missing_categories", "reasons_ranked", "reason_counts", "reason_units")


def lists_from_json(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The list columns of a layer read back as lists (once per workspace version)."""
    cols = [c for c in LIST_FIELDS  # text columns: object under pandas 2, the string dtype under pandas 3
            if c in frame.columns and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype))]
    if not cols:
        return frame
    frame = frame.copy()
    for c in cols:
        frame[c] = pd.Series([json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in frame[c]],
                             index=frame.index, dtype=object)
    return frame


class PreparedLayer:
    """One declared layer of one workspace version, ready to answer queries and draw tiles."""

    def __init__(self, layer: MapLayer, frame: gpd.GeoDataFrame, *, street_of: np.ndarray | None, tag: str,
                 workspace_path: str = "") -> None:
        self.layer = layer
        self.tag = tag
        self.workspace_path = workspace_path
        extra = {}
        if layer.derived is not None:
            extra.update(layer.derived(frame))
        if layer.id in HEAT_DERIVED:
            extra.update(HEAT_DERIVED[layer.id](frame))
        data = frame.drop(columns=frame.geometry.name)
        data = data.assign(**extra) if extra else data
        if layer.id_field not in data.columns:
            data[layer.id_field] = np.arange(len(data)).astype(str)
        self.data = data.reset_index(drop=True)
        self.geoms = frame.geometry.to_numpy()
        self.ids = self.data[layer.id_field].astype(str).to_numpy()
        self._row_of = pd.Index(self.ids)
        self.street_of = street_of
        self.tree = shapely.STRtree(self.geoms)
        self.bounds = tuple(float(v) for v in frame.total_bounds) if len(frame) else (0.0, 0.0, 0.0, 0.0)
        self._lock = threading.Lock()
        self._features: dict[tuple, np.ndarray] = {}
        self._props: dict[tuple, pd.DataFrame] = {}
        self._merc: np.ndarray | None = None
        self._merc_tree: shapely.STRtree | None = None
        self._simplified: dict[int, np.ndarray] = {}
        self._zoom_locks: dict[int, threading.Lock] = {}
        self._geometry_key: str | None = None

    # --- properties by caller -------------------------------------------------------------------
    def fields(self, view: View) -> list[str]:
        """The properties ``view`` sees, among those the table holds."""
        if self.layer.public_fields == ("*",):
            return [c for c in self.data.columns]
        names = self.layer.fields_for(view.at_least)
        return [n for n in names if n in self.data.columns]

    def properties(self, view: View, *, fields: list[str] | None = None) -> pd.DataFrame:
        """The properties table seen by ``view`` (special-group counts 1..k-1 withheld where not entitled)."""
        cols = fields if fields is not None else self.fields(view)
        out = self.data[cols].copy()
        counts = [c for c in self.layer.counts if c in out.columns]
        if counts:
            if view.streets is None:
                entitled = np.ones(len(out), dtype=bool)
            elif self.street_of is not None and view.streets:
                entitled = np.isin(self.street_of, list(view.streets))
            else:
                entitled = np.zeros(len(out), dtype=bool)
            for c in counts:
                values = pd.to_numeric(out[c], errors="coerce")
                hide = (values > 0) & (values < view.k) & ~entitled
                out[c] = values.astype("Int64").mask(hide)
            for share, count in self.layer.shares.items():
                if share in out.columns and count in self.data.columns:
                    of = pd.to_numeric(self.data[count], errors="coerce").to_numpy()
                    hide = (of > 0) & (of < view.k) & ~entitled
                    out[share] = pd.to_numeric(out[share], errors="coerce").mask(hide)
        return out

    def properties_cached(self, view: View, fields: list[str]) -> pd.DataFrame:
        """:meth:`properties` for a fixed list of fields, computed once per view (tiles ask for it per tile)."""
        key = (view.key, tuple(fields))
        out = self._props.get(key)
        if out is None:
            out = self.properties(view, fields=fields)
            with self._lock:
                self._props[key] = out
        return out

    def value_table(self, view: View, fields: list[str]) -> ValueTable:
        """The MVT keys and values of ``fields`` as ``view`` sees them, encoded once per view (every tile of the
        layer picks its rows' codes from it)."""
        key = ("mvt", view.key, tuple(fields))
        table = self._props.get(key)
        if table is None:
            table = ValueTable(self.properties_cached(view, fields))
            with self._lock:
                self._props[key] = table
        return table

    def visible_rows(self, view: View) -> np.ndarray | None:
        """Rows the view may see at all (``None``: every row); a street office sees its own streets."""
        if self.layer.role == "public" or view.streets is None:
            return None
        if self.street_of is None:
            return np.zeros(len(self.data), dtype=bool)
        return np.isin(self.street_of, list(view.streets))

    # --- GeoJSON ----------------------------------------------------------------------------------
    def feature_strings(self, view: View, crs_key: str) -> np.ndarray:
        """GeoJSON text of every feature as ``view`` sees it in ``crs_key`` (built once, then reused)."""
        key = (view.key, crs_key)
        strings = self._features.get(key)
        if strings is None:
            geoms = to_output_crs(self.geoms, crs_key)
            geometry = shapely.to_geojson(geoms)
            props = _json_records(self.properties(view))
            ids = [json.dumps(i, ensure_ascii=False) for i in self.ids]
            strings = np.array(
                [f'{{"type":"Feature","id":{i},"geometry":{g if g is not None else "null"},"properties":{p}}}'
                 for i, g, p in zip(ids, geometry, props)], dtype=object)
            with self._lock:
                if len(self._features) > 16:
                    self._features.clear()
                self._features[key] = strings
        return strings

    def query(self, *, view: View, bbox_wgs84: shapely.Geometry | None = None,
              equals: dict[str, str] | None = None) -> np.ndarray:
        """Row numbers (in order) matching a WGS-84 area and ``property = value`` filters, within the view."""
        if bbox_wgs84 is not None:
            rows = np.sort(self.tree.query(bbox_wgs84, predicate="intersects"))
        else:
            rows = np.arange(len(self.data))
        visible = self.visible_rows(view)
        if visible is not None:
            rows = rows[visible[rows]]
        for name, value in (equals or {}).items():
            column = self.data[name].iloc[rows]
            if pd.api.types.is_bool_dtype(column) or column.dtype == object and set(column.dropna().map(type)) == {bool}:
                text = column.map(lambda v: "true" if v is True else "false" if v is False else "")
                wanted = value.strip().lower()
            else:
                text = column.astype("string").fillna("")
                wanted = value
                if pd.api.types.is_numeric_dtype(column):
                    try:
                        rows = rows[(pd.to_numeric(column, errors="coerce") == float(value)).to_numpy()]
                        continue
                    except ValueError:
                        return rows[:0]
            rows = rows[(text == wanted).to_numpy()]
        return rows

    def row_of(self, feature_id: str) -> int | None:
        row = self._row_of.get_indexer([feature_id])[0]
        return None if row < 0 else int(row)

    def extent_wgs84(self) -> tuple[float, float, float, float]:
        return self.bounds

    # --- Web Mercator for tiles -------------------------------------------------------------------
    @property
    def merc(self) -> np.ndarray:
        if self._merc is None:
            merc = project(self.geoms, _TO_3857)
            self._merc_tree = shapely.STRtree(merc)
            self._merc = merc
        return self._merc

    @property
    def merc_tree(self) -> shapely.STRtree:
        _ = self.merc
        return self._merc_tree

    def simplified(self, z: int, tolerance: float, *,
                   shared: Callable[[Callable[[], bytes]], bytes | None] | None = None) -> np.ndarray | None:
        """Web Mercator geometries simplified for zoom ``z`` (coverage-preserving for coverages), computed once
        per zoom (one thread computes, the others wait for it).

        ``shared`` hands the computation (as WKB bytes) to a store that several processes share: it returns the
        bytes one of them made, or ``None`` when another is still making them (then so does this method).
        """
        out = self._simplified.get(z)
        if out is not None:
            return out
        with self._lock:
            lock = self._zoom_locks.setdefault(z, threading.Lock())
        with lock:
            out = self._simplified.get(z)
            if out is not None:
                return out
            if shared is None:
                out = self._simplify(tolerance)
            else:
                blob = shared(lambda: _wkb_blob(self._simplify(tolerance)))
                if blob is None:
                    return None
                out = _from_wkb_blob(blob)
            self._simplified[z] = out
        return out

    def use_simplified(self, z: int, geoms: np.ndarray) -> None:
        """Take ``geoms`` as the zoom's simplification (made for the same :attr:`geometry_key`)."""
        self._simplified[z] = geoms

    @property
    def geometry_key(self) -> str:
        """A digest of the layer's Web Mercator geometries and how they are simplified: two layers (or two
        versions) with the same key have the same simplification at every zoom (the cases' counts are drawn
        on the grids' geometries; a new case changes the counts, not the geometries)."""
        if self._geometry_key is None:
            digest = hashlib.blake2b(digest_size=16)
            digest.update(f"{self.layer.geometry}:{self.layer.coverage}:".encode())
            for wkb in shapely.to_wkb(self.merc):
                digest.update(wkb or b"-")
            self._geometry_key = digest.hexdigest()
        return self._geometry_key

    def _simplify(self, tolerance: float) -> np.ndarray:
        merc = self.merc
        if tolerance <= 0 or self.layer.geometry == "point":
            return merc
        if self.layer.coverage:
            return shapely.coverage_simplify(merc, tolerance, simplify_boundary=True)
        return shapely.simplify(merc, tolerance, preserve_topology=True)


def _wkb_blob(geoms: np.ndarray) -> bytes:
    """Geometries as one byte string: their count, each one's WKB length, then the WKB."""
    wkb = [w if w is not None else b"" for w in shapely.to_wkb(geoms)]  # a missing geometry: length 0
    lengths = np.array([len(w) for w in wkb], dtype=np.int64)
    return np.int64(len(wkb)).tobytes() + lengths.tobytes() + b"".join(wkb)


def _from_wkb_blob(blob: bytes) -> np.ndarray:
    """The geometries :func:`_wkb_blob` wrote."""
    n = int(np.frombuffer(blob, dtype=np.int64, count=1)[0])
    lengths = np.frombuffer(blob, dtype=np.int64, count=n, offset=8)
    ends = np.cumsum(lengths) + 8 * (n + 1)
    view = memoryview(blob)
    parts = [view[e - s:e].tobytes() if s else None for s, e in zip(lengths.tolist(), ends.tolist())]
    return shapely.from_wkb(np.array(parts, dtype=object))


def street_from(workspace, layer: MapLayer, columns) -> str | None:
    """Where a layer's rows say their street (what a street office's view and k-suppression follow): ``id``
    for the streets, a ``street_id`` column, a ``community_id`` through the communities, or ``None``. The one
    rule for both paths: in memory (:func:`_street_of`) and in the database (``RowQuery.street_from``)."""
    if layer.id == "streets":
        return "id"
    if "street_id" in columns:
        return "street_id"
    if "community_id" in columns and workspace.has("communities"):
        return "community_id"
    return None


def _street_of(workspace, layer: MapLayer, frame: gpd.GeoDataFrame) -> np.ndarray | None:
    how = street_from(workspace, layer, frame.columns)
    if how == "id":
        return frame["id"].astype(str).to_numpy()
    if how == "street_id":
        return frame["street_id"].astype("string").fillna("").to_numpy(dtype=object)
    if how == "community_id":
        communities = workspace.read("communities")
        mapping = pd.Series(communities["street_id"].astype(str).to_numpy(), index=communities["id"].astype(str).to_numpy())
        return mapping.reindex(frame["community_id"].astype("string").fillna("").to_numpy()).fillna("").to_numpy(dtype=object)
    return None


def version_key(workspace: Workspace) -> str:
    """The workspace's tag plus its stamp: changes with a new analysis *and* with any edit of the stored layers
    in place (QGIS on the GeoPackage, SQL on PostGIS), so no cache or ETag keyed by it can be stale."""
    return f"{workspace.tag}-{workspace.stamp}"


def list_layers(workspace: Workspace) -> list[MapLayer]:
    """The declared layers the workspace holds, in catalogue order (a live layer, such as the cases, wherever
    the workspace has grids)."""
    names = set(workspace.layer_names())
    return [layer for layer in LAYERS if layer.source in names or (layer.live is not None and "grids" in names)]


def holds(workspace: Workspace, layer: MapLayer) -> bool:
    """Whether the workspace serves ``layer`` (a stored table it holds, or a live layer with grids)."""
    return workspace.has(layer.source) or (layer.live is not None and workspace.has("grids"))


def layer_version(workspace: Workspace, layer_id: str) -> str:
    """:func:`version_key`, and for a live layer its :class:`~layers.base.LiveSource` stamp too: what caches,
    tiles and ETags of the layer are keyed by (a name that is no layer, e.g. a heat map: the workspace's)."""
    layer = next((lay for lay in LAYERS if lay.id == layer_id), None)
    if layer is None or layer.live is None:
        return version_key(workspace)
    return f"{version_key(workspace)}-{layer.live.stamp(workspace)}"


def shown_layer(layer: MapLayer, view: View | None) -> MapLayer:
    """The declaration a view gets: the layer, or its ``public_counts`` for a view that may not see its rows
    (every tile, ``view=None``, is drawn for the public)."""
    if layer.public_counts is None:
        return layer
    if view is not None and view.at_least(layer.role) and (view.streets is None or view.streets):
        return layer
    return layer.public_counts


class LayerCache:
    """The prepared layers of the workspaces one owner shows (a server, a command), one per workspace path
    and layer, replaced when the workspace's version (:func:`version_key`) changes. Thread-safe.

    Examples
    --------
    Needs a workspace on disk (``gridcover analyze sample_geojson out/sample``), so not run as a doctest:

    >>> layers = LayerCache()
    >>> grids = layers.prepare(open_workspace("out/sample"), "grids")  # doctest: +SKIP
    >>> layers.prepare(open_workspace("out/sample"), "grids") is grids  # doctest: +SKIP
    True
    """

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], PreparedLayer] = {}
        self._lock = threading.Lock()

    def prepare(self, workspace: Workspace, layer_id: str, *, view: View | None = None) -> PreparedLayer:
        """The prepared layer for the workspace's current version, read and prepared on first use.

        Parameters
        ----------
        workspace
            The store the layer is read from.
        layer_id
            A declared layer's id (:class:`~geo.errors.NotFoundError` for an unknown one).
        view
            Who looks: a layer with ``public_counts`` gives its counts to a view that may not see its rows
            (and to ``None``, the tiles' public view) (:func:`shown_layer`).

        Returns
        -------
        PreparedLayer
            The same object for every call until the workspace's version (a live layer's stamp) changes.
        """
        layer = shown_layer(declared(layer_id), view)
        tag = layer_version(workspace, layer_id)
        key = (str(workspace.path), layer_id, layer is not declared(layer_id))
        hit = self._items.get(key)
        if hit is not None and hit.tag == tag:
            return hit
        frame = lists_from_json(layer.live.read(workspace) if layer.live is not None else workspace.read(layer.source))
        out = PreparedLayer(layer, frame, street_of=_street_of(workspace, layer, frame), tag=tag,
                            workspace_path=str(workspace.path))
        with self._lock:
            self._items[key] = out
        return out

    def described(self, workspace: Workspace, layer_id: str, *, view: View | None, read) -> PreparedLayer:
        """What ``read()`` gives (a layer's columns and extent without its rows: ``layers.in_place``), kept
        like :meth:`prepare`'s layers, once per workspace version."""
        layer = shown_layer(declared(layer_id), view)
        tag = layer_version(workspace, layer_id)
        key = (str(workspace.path), layer_id, layer is not declared(layer_id), "described")
        hit = self._items.get(key)
        if hit is not None and hit.tag == tag:
            return hit
        out = read()
        out.tag = tag
        with self._lock:
            self._items[key] = out
        return out
