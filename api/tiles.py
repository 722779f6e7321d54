"""Tile routes: MVT vector tiles with TileJSON 3.0, PNG heat-map tiles, ETag / If-None-Match (瓦片服务).

The ETag of every tile carries the workspace tag (identity and version) and k, so the moment the
workspace changes every tile has a new ETag and the cache a new key; ``Cache-Control: no-cache`` makes
browsers ask each time (answered by 304 while nothing changed).

Example
-------
>>> httpx.get("http://127.0.0.1:8000/tiles/grids/15/26085/13712.mvt").headers["ETag"]
'"ed0e751af084-1.k5"'
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.app import get_layer_cache, get_workspace
from layers.base import DEFAULT_K
from layers.catalog import HEATS, find_heat as declared_heat, find_layer as declared
from layers.features import holds, layer_version
from layers.in_place import describe_layer
from geo.errors import NotFoundError
from layers.tiles import TileCache, heat_tile, tile_address, vector_tile

MVT_TYPE = "application/vnd.mapbox-vector-tile"
#: The TileJSON ``version`` (semver, as TileJSON 3.0 asks): the shape of gridcover's tiles. The workspace
#: version the tiles are drawn from is ``gridcover:workspace``; the ETag changes with it.
TILES_VERSION = "1.0.0"
_JSON_TYPES = {"String": "String", "Number": "Number", "Boolean": "Boolean"}


def _k(request: Request) -> int:
    return int(getattr(request.app.state, "k", DEFAULT_K))


def _tile_layer(layer_id: str):
    layer = declared(layer_id)  # NotFoundError for an unknown one
    if not layer.tiles:
        raise NotFoundError(f"layer {layer_id!r} is not served as tiles (it holds personal data)")
    return layer


def _field_type(dtype) -> str:
    kind = str(dtype).lower()
    if kind.startswith("bool"):
        return "Boolean"
    if kind.startswith(("int", "uint", "float")):
        return "Number"
    return "String"


def _key_and_headers(workspace, k: int, kind: str, name: str, z: int, x: int, y: int) -> tuple[tuple, dict]:
    """The cache key and the caching headers of one tile (one place for both the route and the fast path)."""
    tag = layer_version(workspace, name)
    headers = {"ETag": f'"{tag}.k{k}"', "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
    return (str(workspace.path), tag, k, kind, name, z, x, y), headers


_TILE_PATH = re.compile(r"^/tiles/(heat/)?([A-Za-z0-9_]+)/([0-9]{1,10})/([0-9]{1,10})/([0-9]{1,10})\.(mvt|png)$")


def cached_tile(workspace, k: int, path: str, if_none_match: str | None, *,
                cache: TileCache) -> tuple[int, dict, bytes] | None:
    """A tile answer straight from the app's tile cache (status, headers, body), or ``None`` when the route
    must render it. Serves the hot path in front of the framework (``api.app``): no routing, no validation to
    redo — a cached key exists only for a tile the route already validated and rendered."""
    m = _TILE_PATH.match(path)
    if m is None or (m.group(1) is None) != (m.group(6) == "mvt"):
        return None
    kind = "png" if m.group(1) else "mvt"
    key, headers = _key_and_headers(workspace, k, kind, m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5)))
    data = cache.get(key)
    if data is None:
        return None
    if if_none_match == headers["ETag"]:
        return 304, headers, b""
    headers["Content-Type"] = MVT_TYPE if kind == "mvt" else "image/png"
    return 200, headers, data


def fast_get(state, scope) -> tuple[int, dict, bytes] | None:
    """The tile hot path for :class:`api.app.FastGets`: a tile already in the cache."""
    if not scope["path"].startswith("/tiles/"):
        return None
    from api.app import header

    return cached_tile(state.workspace, int(getattr(state, "k", DEFAULT_K)), scope["path"],
                       header(scope, b"if-none-match"), cache=state.tile_cache)


async def _cached(request: Request, kind: str, name: str, z: int, x: int, y: int, render, media_type: str):
    workspace = get_workspace(request)
    k = _k(request)
    key, headers = _key_and_headers(workspace, k, kind, name, z, x, y)
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    cache: TileCache = request.app.state.tile_cache
    data = cache.get(key)
    if data is None:
        data = await run_in_threadpool(render)
        cache.put(key, data)
    return Response(data, media_type=media_type, headers=headers)


def complete_openapi(doc: dict, app) -> dict:
    """The tiles' media types and the layer and heat-map ids this server draws, in the OpenAPI document."""
    from layers.catalog import LAYERS

    binary = {"schema": {"type": "string", "format": "binary"}}
    paths = doc["paths"]
    paths["/tiles/{layer_id}/{z}/{x}/{y}.mvt"]["get"]["responses"]["200"]["content"] = {MVT_TYPE: binary}
    paths["/tiles/heat/{heat_id}/{z}/{x}/{y}.png"]["get"]["responses"]["200"]["content"] = {"image/png": binary}
    layer_ids = [lay.id for lay in LAYERS if lay.tiles]
    for path, ops in paths.items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if not path.startswith("/tiles/") or param.get("in") != "path":
                    continue
                if param["name"] == "layer_id":
                    param["schema"] = {"type": "string", "enum": layer_ids}
                elif param["name"] == "heat_id":
                    param["schema"] = {"type": "string", "enum": [h.id for h in HEATS]}
                elif param["name"] in ("z", "x", "y"):
                    param["description"] = "tile address (XYZ, EPSG:3857): z in 0..24, x and y in 0..2^z-1"
                    param["schema"] = {"type": "string", "pattern": "^[0-9]{1,10}$"}
    return doc


def build_router() -> APIRouter:
    router = APIRouter(tags=["tiles"])

    @router.get("/tiles/heat/{heat_id}.json", summary="TileJSON 3.0 of a heat map (PNG tiles)")
    def heat_tilejson(heat_id: str, request: Request):
        heat = declared_heat(heat_id)  # NotFoundError for an unknown one
        workspace = get_workspace(request)
        base = str(request.base_url).rstrip("/")
        doc = {"tilejson": "3.0.0", "name": heat.title_en, "description": f"{heat.title_zh} — {heat.title_en}",
               "tiles": [f"{base}/tiles/heat/{heat.id}/{{z}}/{{x}}/{{y}}.png"], "minzoom": 10, "maxzoom": 18,
               "scheme": "xyz", "tileSize": 256, "version": TILES_VERSION, "gridcover:workspace": workspace.tag}
        if workspace.has(declared(heat.layer).source):
            x0, y0, x1, y1 = describe_layer(workspace, get_layer_cache(request), heat.layer).extent_wgs84()
            doc["bounds"] = [x0, y0, x1, y1]
        return JSONResponse(doc)

    @router.get("/tiles/heat/{heat_id}/{z}/{x}/{y}.png", summary="A heat-map tile (PNG, 256 px, transparent)",
                response_class=Response)
    async def heat_png(heat_id: str, z: str, x: str, y: str, request: Request):
        declared_heat(heat_id)  # NotFoundError for an unknown one
        zi, xi, yi = tile_address(z, x, y)
        workspace, layer_cache = get_workspace(request), get_layer_cache(request)
        return await _cached(request, "png", heat_id, zi, xi, yi,
                             lambda: heat_tile(workspace, heat_id, zi, xi, yi, layer_cache=layer_cache), "image/png")

    @router.get("/tiles/{layer_id}.json", summary="TileJSON 3.0 of a layer's vector tiles")
    def tilejson(layer_id: str, request: Request):
        layer = _tile_layer(layer_id)
        workspace = get_workspace(request)
        if not holds(workspace, layer):
            raise NotFoundError(f"the workspace has no layer {layer.source!r} yet")
        source = describe_layer(workspace, get_layer_cache(request), layer.id)
        layer = source.layer  # what tiles show (a layer's public counts where it has them)
        x0, y0, x1, y1 = source.extent_wgs84()
        base = str(request.base_url).rstrip("/")
        fields = {f: _field_type(source.data[f].dtype) for f in layer.tile_fields if f in source.data.columns}
        doc = {
            "tilejson": "3.0.0", "name": layer.id, "description": f"{layer.title_zh} — {layer.title_en}",
            "version": TILES_VERSION, "gridcover:workspace": workspace.tag, "scheme": "xyz", "attribution": "gridcover",
            "tiles": [f"{base}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt"],
            "minzoom": layer.minzoom, "maxzoom": layer.maxzoom,
            "bounds": [x0, y0, x1, y1],
            "center": [(x0 + x1) / 2, (y0 + y1) / 2, max(layer.minzoom, 14)],
            "vector_layers": [{"id": layer.id, "description": layer.title_en, "fields": fields,
                               "minzoom": layer.minzoom, "maxzoom": layer.maxzoom}],
        }
        return JSONResponse(doc, headers={"Cache-Control": "no-cache"})

    @router.get("/tiles/{layer_id}/{z}/{x}/{y}.mvt", summary="A vector tile (MVT, EPSG:3857 XYZ)",
                response_class=Response)
    async def mvt(layer_id: str, z: str, x: str, y: str, request: Request):
        layer = _tile_layer(layer_id)
        zi, xi, yi = tile_address(z, x, y)
        workspace, layer_cache = get_workspace(request), get_layer_cache(request)
        k, tile_cache = _k(request), request.app.state.tile_cache
        return await _cached(request, "mvt", layer.id, zi, xi, yi,
                             lambda: vector_tile(workspace, layer.id, zi, xi, yi, k=k, layer_cache=layer_cache,
                                                 tile_cache=tile_cache),
                             MVT_TYPE)

    return router


__all__ = ["build_router", "HEATS"]
