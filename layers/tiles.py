"""Vector tiles (MVT) and heat-map tiles (PNG) of the declared layers, and their cache (瓦片).

A vector tile of a layer: the features whose Web Mercator geometry meets the tile (STRtree), simplified
for the zoom once per workspace version (``coverage_simplify`` for grids and other coverages, so
neighbours keep sharing their edges and never show slivers), clipped to the tile plus a buffer,
quantised to 4096 units and encoded by :mod:`layers.mvt`. Attributes are the declaration's
``tile_fields`` as the public sees them (special-group counts 1..k-1 withheld; never personal data).

A heat tile: the value of the polygon under each of its 256×256 pixel centres (one vectorised STRtree
query), coloured by the heat declaration's stops; transparent where there is no polygon or no value.

Tiles are cached by (workspace, workspace tag, k, tile) in a :class:`TileCache` its owner makes (the server
one per app, on ``app.state.tile_cache``): a new workspace version is a new key, so no tile outlives the data
it was drawn from.

Example
-------
>>> data = vector_tile(workspace, "grids", 15, 26085, 13712, k=5, layer_cache=LayerCache())  # doctest: +SKIP
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
import shapely
from PIL import Image

from geo.errors import NotFoundError
from layers.catalog import find_heat as declared_heat, find_layer as declared
from gridcover.store.base import TileSpec
from layers.features import LayerCache, holds, public_view, shown_layer
from layers.in_place import database_tile, features_meeting, in_database
from layers.mvt import EXTENT, encode_layer

#: Half the Web Mercator world width (metres).
WORLD = 20037508.342789244
TILE_BUFFER = 64  # tile units (of 4096) around the tile that are drawn too
HEAT_SIZE = 256
MAX_ZOOM = 24
#: Simplification tolerance in tile units (16 units = one pixel of a 256 px tile).
SIMPLIFY_UNITS = 4.0


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (minx, miny, maxx, maxy) of an XYZ tile."""
    size = 2 * WORLD / (1 << z)
    minx = -WORLD + x * size
    maxy = WORLD - y * size
    return minx, maxy - size, minx + size, maxy


def simplify_tolerance(layer, z: int) -> float:
    """The simplification tolerance of ``layer``'s tiles at zoom ``z`` in Web Mercator metres
    (:data:`SIMPLIFY_UNITS` tile units; none from the layer's ``maxzoom`` on). Both backends use it."""
    if z >= layer.maxzoom:
        return 0.0
    return 2 * WORLD / (1 << z) / EXTENT * SIMPLIFY_UNITS


def check_tile(z: int, x: int, y: int) -> None:
    """:class:`~geo.errors.NotFoundError` naming the problem for a tile that does not exist."""
    if not 0 <= z <= MAX_ZOOM:
        raise NotFoundError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise NotFoundError(f"tile {z}/{x}/{y} does not exist (x and y must be in 0..{n - 1} at zoom {z})")


def tile_address(z: str, x: str, y: str) -> tuple[int, int, int]:
    """The tile ``z/x/y`` of a URL as numbers; :class:`~geo.errors.NotFoundError` naming the problem for
    anything that is not an existing tile (not digits, a zoom outside 0..MAX_ZOOM, x or y off the grid).

    >>> tile_address("15", "26085", "13712")
    (15, 26085, 13712)
    """
    parts = (z, x, y)
    if not all(p.isascii() and p.isdigit() and len(p) <= 10 for p in parts):
        shown = "/".join(p[:20] for p in parts)
        raise NotFoundError(f"not a tile address: {shown!r} (z/x/y are whole numbers, z in 0..{MAX_ZOOM})")
    check_tile(int(z), int(x), int(y))
    return int(z), int(x), int(y)


class TileCache:
    """A thread-safe LRU cache of tile bytes, bounded by total size (512 MiB unless told)."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple, data: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def vector_tile(workspace, layer_id: str, z: int, x: int, y: int, *, k: int, layer_cache: LayerCache) -> bytes:
    """The MVT bytes of one layer's tile (empty bytes where the tile holds nothing), drawn from the layer
    ``layer_cache`` prepares."""
    layer = shown_layer(declared(layer_id), None)  # tiles are public: a layer's counts where it has them
    if not layer.tiles:
        raise NotFoundError(f"layer {layer_id!r} is not served as tiles")
    check_tile(z, x, y)
    if z < layer.minzoom or not holds(workspace, layer):
        return b""
    if in_database(workspace, layer):  # PostGIS: cut in SQL, never the whole layer in memory
        spec = TileSpec(extent=EXTENT, buffer=TILE_BUFFER, tolerance=simplify_tolerance(layer, z), kind=layer.geometry)
        return database_tile(workspace, layer, z, x, y, tile=spec, k=k)
    source = layer_cache.prepare(workspace, layer_id)
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    size = maxx - minx
    pad = size * TILE_BUFFER / EXTENT
    rows = np.sort(source.merc_tree.query(shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)))
    if len(rows) == 0:
        return b""
    geoms = source.simplified(z, simplify_tolerance(layer, z))[rows]
    if layer.geometry != "point":
        geoms = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)
    scale = EXTENT / size
    geoms = shapely.transform(geoms, lambda c: (c - (minx, maxy)) * (scale, -scale))
    fields = [f for f in dict.fromkeys(layer.tile_fields or (layer.id_field,)) if f in source.data.columns]
    props = source.properties_cached(public_view(k), fields).iloc[rows].reset_index(drop=True)
    return encode_layer(layer.id, geoms, props, kind=layer.geometry)


def _ramp(stops: tuple[tuple[float, str], ...]) -> tuple[np.ndarray, float, float]:
    values = np.array([s[0] for s in stops], dtype=float)
    rgba = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5, 7)] if len(c) == 9 else
                     [int(c[i:i + 2], 16) for i in (1, 3, 5)] + [255] for _, c in stops], dtype=float)
    lo, hi = float(values[0]), float(values[-1])
    at = np.linspace(lo, hi, 256)
    lut = np.column_stack([np.interp(at, values, rgba[:, i]) for i in range(4)]).round().astype(np.uint8)
    return lut, lo, hi


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


EMPTY_PNG = _png(np.zeros((HEAT_SIZE, HEAT_SIZE, 4), dtype=np.uint8))


def heat_tile(workspace, heat_id: str, z: int, x: int, y: int, *, layer_cache: LayerCache) -> bytes:
    """The PNG bytes of one heat-map tile (transparent where there is nothing), drawn from the layer
    ``layer_cache`` prepares."""
    heat = declared_heat(heat_id)
    check_tile(z, x, y)
    layer = declared(heat.layer)
    if not workspace.has(layer.source):
        return EMPTY_PNG
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    source = features_meeting(workspace, layer_cache, heat.layer, (minx, miny, maxx, maxy))
    if heat.value not in source.data.columns:
        return EMPTY_PNG
    if len(source.merc_tree.query(shapely.box(minx, miny, maxx, maxy))) == 0:
        return EMPTY_PNG
    step = (maxx - minx) / HEAT_SIZE
    centres = minx + (np.arange(HEAT_SIZE) + 0.5) * step
    xs, ys = np.meshgrid(centres, maxy - (np.arange(HEAT_SIZE) + 0.5) * step)
    pixel, poly = source.merc_tree.query(shapely.points(xs.ravel(), ys.ravel()), predicate="intersects")
    values = np.full(HEAT_SIZE * HEAT_SIZE, np.nan)
    polygon_values = source.data[heat.value].to_numpy(dtype=float, na_value=np.nan)
    # where polygons overlap, the highest value wins
    np.fmax.at(values, pixel, polygon_values[poly])
    lut, lo, hi = _ramp(heat.stops)
    known = np.isfinite(values)
    index = np.zeros(values.shape, dtype=np.int64)
    index[known] = np.clip(np.round((values[known] - lo) / ((hi - lo) or 1.0) * 255), 0, 255).astype(np.int64)
    rgba = lut[index]
    rgba[~known] = 0
    return _png(rgba.reshape(HEAT_SIZE, HEAT_SIZE, 4))
