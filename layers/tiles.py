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
it was drawn from. With a folder (``gridcover serve --workers N``) the cache is also on disk, shared by the
server's processes: each tile is written once (atomically), and so is each layer's simplification for a
zoom, which :func:`prepare_tiles` computes for every zoom before the server answers.

What a tile holds is defined here once, for every backend (the PostGIS one makes the same tiles with
``ST_AsMVT``): :data:`EXTENT`, :data:`TILE_BUFFER`, :func:`simplify_tolerance` (and :data:`SIMPLIFY_UNITS`),
:func:`tile_zooms` (the zooms that are simplified) and :func:`tile_fields`.

Example
-------
>>> data = vector_tile(workspace, "grids", 15, 26085, 13712, k=5, layer_cache=LayerCache())  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from PIL import Image

from geo.errors import NotFoundError
from gridcover.store.base import TileSpec
from layers.base import MapLayer
from layers.catalog import LAYERS, find_heat as declared_heat, find_layer as declared
from layers.features import LayerCache, PreparedLayer, holds, public_view, shown_layer
from layers.in_place import database_tile, features_meeting, in_database
from layers.mvt import EXTENT, encode_layer

#: Half the Web Mercator world width (metres).
WORLD = 20037508.342789244
TILE_BUFFER = 64  # tile units (of 4096) around the tile that are drawn too
HEAT_SIZE = 256
MAX_ZOOM = 24
#: Simplification tolerance in tile units (16 units = one pixel of a 256 px tile).
SIMPLIFY_UNITS = 4.0


def simplify_tolerance(layer: MapLayer, z: int) -> float:
    """The simplification tolerance (Web Mercator metres) of ``layer``'s tiles at zoom ``z``: :data:`SIMPLIFY_UNITS`
    tile units below the layer's ``maxzoom``, none from it on (coverage-preserving for a coverage layer,
    topology-preserving otherwise, over the whole layer at once; points are never simplified).

    >>> round(simplify_tolerance(declared("grids"), 13), 3), simplify_tolerance(declared("grids"), 18)
    (4.777, 0.0)
    """
    if z >= layer.maxzoom or layer.geometry == "point":
        return 0.0
    return 2 * WORLD / (1 << z) / EXTENT * SIMPLIFY_UNITS


def tile_zooms(layer: MapLayer) -> range:
    """The zooms at which ``layer``'s tiles hold simplified geometries (those :func:`prepare_tiles` computes)."""
    return range(layer.minzoom, layer.maxzoom) if layer.geometry != "point" else range(0)


def tile_fields(layer: MapLayer, columns) -> list[str]:
    """The attributes a tile of ``layer`` carries, in order: its ``tile_fields`` (or its id) that the table has."""
    return [f for f in dict.fromkeys(layer.tile_fields or (layer.id_field,)) if f in columns]


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (minx, miny, maxx, maxy) of an XYZ tile."""
    size = 2 * WORLD / (1 << z)
    minx = -WORLD + x * size
    maxy = WORLD - y * size
    return minx, maxy - size, minx + size, maxy


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


#: How many per-zoom simplifications a :class:`TileCache` keeps in memory for reuse (the zooms of every
#: tiled layer of a version, and those of the version before).
KEPT_SIMPLIFICATIONS = 96


class TileCache:
    """A thread-safe LRU cache of tile bytes, bounded by total size (512 MiB unless told), and optionally a
    folder on disk the server's processes share (tiles and per-zoom simplifications, written atomically).

    Keys start with the workspace path and its version tag; on disk every version has its own folder, and
    the first write of a new version removes the folders of the workspace's older versions.
    """

    def __init__(self, max_bytes: int = 512 * 1024 * 1024, *, folder: str | os.PathLike | None = None) -> None:
        self.max_bytes = max_bytes
        self.folder = Path(folder) if folder is not None else None
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._versions: set[str] = set()
        self._geometries: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                return data
        if self.folder is None:
            return None
        try:
            data = self._file(key).read_bytes()
        except OSError:
            return None
        self._remember(key, data)
        return data

    def put(self, key: tuple, data: bytes) -> None:
        self._remember(key, data)
        if self.folder is not None:
            self._write(self._file(key), data)

    def shared(self, key: tuple, make: Callable[[], bytes], *, wait: bool = True) -> bytes | None:
        """The bytes stored on disk under ``key``, made by ``make`` in the one process that gets there first
        (the others wait for it, or get ``None`` at once without ``wait``). No folder: ``make()``."""
        if self.folder is None:
            return make()
        path = self._file(key)
        if path.exists():
            return path.read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return None
            try:
                if path.exists():
                    return path.read_bytes()
                data = make()
                self._write(path, data)
                return data
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def geometries(self, key: tuple) -> np.ndarray | None:
        """A layer's simplification for a zoom kept by :meth:`keep_geometries` (``None`` if not kept)."""
        with self._lock:
            return self._geometries.get(key)

    def keep_geometries(self, key: tuple, geoms: np.ndarray) -> None:
        """Keep a simplification (the last :data:`KEPT_SIMPLIFICATIONS` of them)."""
        with self._lock:
            self._geometries[key] = geoms
            self._geometries.move_to_end(key)
            while len(self._geometries) > KEPT_SIMPLIFICATIONS:
                self._geometries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._geometries.clear()
            self._bytes = 0
        if self.folder is not None:
            for child in self.folder.glob("*"):
                shutil.rmtree(child, ignore_errors=True)

    def _remember(self, key: tuple, data: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def _file(self, key: tuple) -> Path:
        workspace = hashlib.blake2b(str(key[0]).encode(), digest_size=6).hexdigest()
        version = hashlib.blake2b(str(key[1]).encode(), digest_size=6).hexdigest()
        name = hashlib.blake2b(repr(key[2:]).encode(), digest_size=12).hexdigest()
        return self.folder / f"{workspace}-{version}" / name

    def _write(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (a temporary file moved into place); the first write of a
        version removes the workspace's older versions. A failed write only costs a later redraw."""
        version_dir = path.parent
        try:
            if version_dir.name not in self._versions:
                version_dir.mkdir(parents=True, exist_ok=True)
                workspace = version_dir.name.split("-")[0]
                for old in version_dir.parent.glob(f"{workspace}-*"):
                    if old != version_dir:
                        shutil.rmtree(old, ignore_errors=True)
                self._versions.add(version_dir.name)
            fd, temp = tempfile.mkstemp(dir=version_dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, path)
        except OSError:
            self._versions.discard(version_dir.name)


def zoom_geometries(source: PreparedLayer, z: int, *, cache: TileCache | None = None,
                    wait: bool = True) -> np.ndarray | None:
    """The layer's Web Mercator geometries as its tiles show them at zoom ``z`` (simplified below its
    ``maxzoom``), computed once per zoom for the same geometries (:attr:`~PreparedLayer.geometry_key`: a new
    version, or another layer, on the same geometries reuses it through ``cache``), and with a shared
    ``cache`` once for all the server's processes (``None`` when another process is computing it and ``wait``
    is false)."""
    layer = source.layer
    tolerance = simplify_tolerance(layer, z)
    if tolerance <= 0:
        return source.merc
    if cache is None:
        return source.simplified(z, tolerance)
    memo = (source.geometry_key, z)
    known = cache.geometries(memo)
    if known is not None:
        source.use_simplified(z, known)
        return known
    shared = None
    if cache.folder is not None:
        key = (f"{source.workspace_path}#simplified-{layer.id}", source.geometry_key, z)
        shared = lambda make: cache.shared(key, make, wait=wait)  # noqa: E731
    out = source.simplified(z, tolerance, shared=shared)
    if out is not None:
        cache.keep_geometries(memo, out)
    return out


def prepare_tiles(workspace, *, k: int, layer_cache: LayerCache, tile_cache: TileCache | None = None) -> list[str]:
    """Read, project and simplify (for each of its zooms) every tiled layer the workspace holds, and encode
    their MVT values, so that no tile request does it; the ids of the layers prepared.

    With a shared ``tile_cache`` (several server processes) each zoom is simplified by one process: a
    process first takes the zooms nobody else is computing, then waits for the rest.
    """
    prepared = []
    for declaration in LAYERS:
        if not declaration.tiles or not holds(workspace, declaration):
            continue
        source = layer_cache.prepare(workspace, declaration.id)
        layer = source.layer
        pending = list(tile_zooms(layer))
        for wait in (False, True):
            pending = [z for z in pending if zoom_geometries(source, z, cache=tile_cache, wait=wait) is None]
        source.value_table(public_view(k), tile_fields(layer, source.data.columns))
        prepared.append(layer.id)
    return prepared


def vector_tile(workspace, layer_id: str, z: int, x: int, y: int, *, k: int, layer_cache: LayerCache,
                tile_cache: TileCache | None = None) -> bytes:
    """The MVT bytes of one layer's tile (empty bytes where the tile holds nothing), drawn from the layer
    ``layer_cache`` prepares (its simplification for the zoom shared through ``tile_cache``'s folder)."""
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
    geoms = zoom_geometries(source, z, cache=tile_cache)[rows]
    if layer.geometry != "point":
        geoms = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)
    scale = EXTENT / size
    values = source.value_table(public_view(k), tile_fields(layer, source.data.columns))
    return encode_layer(layer.id, geoms, values, rows=rows, kind=layer.geometry, origin=(minx, maxy),
                        scale=(scale, -scale))


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
