"""OGC API – Features Part 1 (Core) and Part 2 (CRS) over the declared layers (要素服务).

Routes only translate HTTP to calls into :mod:`layers.features` and back: read the query through the shared
dependencies of :mod:`api.params` (400 for an invalid ``limit``, ``bbox``, ``crs``; here, an unknown
parameter or ``f``), pick the caller's view
(households only for street offices — their own streets — and admins; special-group counts 1..k-1
withheld), and write the GeoJSON pages with their paging links.

Output CRSs (``crs``, ``bbox-crs``): CRS84 (default), EPSG:4326 and EPSG:4490 (latitude first, as
their EPSG definitions say), EPSG:3857, and GCJ-02 under :data:`GCJ02_URI` for overlays on Amap or
Tencent base maps.

Example
-------
>>> httpx.get("http://127.0.0.1:8000/collections/grids/items", params={"bbox": "104.07,30.65,104.08,30.66"})
"""

from __future__ import annotations

import hashlib
import html
import json
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.access import PUBLIC, ROLES, Caller
from api.app import get_layer_cache, get_workspace
from api.params import (BBOX_PARAMETERS, CRS_PARAMETER, CRS_URIS, DATETIME_PARAMETER, GCJ02_URI, PAGE_PARAMETERS,
                        Page, bbox_area, check_datetime, get_caller, output_crs, page_of, query_parameter, uri_of)
from layers.base import DEFAULT_K
from layers.catalog import FIELD_NAMES, find_layer as declared
from geo.errors import ForbiddenError, KeyRequiredError, NotFoundError, ParameterError
from layers.export import EXPORT_TYPES, export_table, table_csv, table_xlsx
from layers.features import View, holds, layer_version, list_layers, shown_layer, version_key
from layers.in_place import describe_layer, find_feature, select_features

__all__ = ["GCJ02_URI", "build_router", "complete_openapi", "queryable_properties", "view_of"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS_PARAMS = frozenset({"limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "f"})
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
]
GEOJSON = "application/geo+json"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"


def view_of(caller: Caller, k: int) -> View:
    """The view a caller gets: its roles, its streets (every street for admin), and k."""
    roles = frozenset(r for r in ROLES if caller.at_least(r))
    if caller.role == "admin":
        return View(k=k, roles=roles, streets=None)
    if caller.role == "street_office":
        return View(k=k, roles=roles, streets=frozenset(caller.streets))
    return View(k=k, roles=roles, streets=frozenset())


def _k(request: Request) -> int:
    return int(getattr(request.app.state, "k", DEFAULT_K))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _may_see(caller: Caller, layer) -> bool:
    if layer.role == "public" or layer.public_counts is not None:  # the public gets its counts
        return True
    return caller.sees_households and caller.at_least(layer.role)


def visible_layer(collection_id: str, request: Request, caller: Caller = Depends(get_caller)):
    """The dependency resolving ``collection_id`` to the declared layer the caller may see: 404 for a collection
    the workspace does not hold, 401/403 for one with personal data the caller's key does not open."""
    workspace = get_workspace(request)
    try:
        layer = declared(collection_id)
    except NotFoundError:
        layer = None
    if layer is None or not holds(workspace, layer):
        names = ", ".join(lay.id for lay in list_layers(workspace) if _may_see(caller, lay))
        raise NotFoundError(f"no collection {collection_id!r} (collections: {names})")
    if not _may_see(caller, layer):
        error = KeyRequiredError if caller is PUBLIC else ForbiddenError
        raise error(f"collection {collection_id!r} holds personal data: it needs an "
                    "X-API-Key of a street_office (own streets) or admin")
    return layer


def _etag(request: Request, view: View, *parts: object) -> str:
    digest = hashlib.blake2b(repr((str(request.url), view.key, parts)).encode(), digest_size=8).hexdigest()
    return f'W/"{version_key(get_workspace(request))}-{digest}"'


def _not_modified(request: Request, etag: str) -> Response | None:
    if request.headers.get("if-none-match") in (etag, "*"):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache", "Vary": "X-API-Key"})
    return None


def _json(doc: dict, *, etag: str | None = None, media_type: str = "application/json") -> Response:
    headers = {"Cache-Control": "no-cache", "Vary": "X-API-Key"}
    if etag:
        headers["ETag"] = etag
    return Response(json.dumps(doc, ensure_ascii=False), media_type=media_type, headers=headers)


def _check_f(request: Request, allowed=("json", "geojson")) -> None:
    f = request.query_params.get("f")
    if f is not None and f not in allowed:
        raise ParameterError("f", f"{f!r} is not offered (offered: {', '.join(allowed)})")


def _json_format(request: Request) -> None:
    _check_f(request)


def _items_query(request: Request, layer=Depends(visible_layer), crs: str = Depends(output_crs)) -> None:
    """The dependency refusing what an items query may not carry: an unknown parameter (the OGC ones and the
    layer's queryables are known), then an ``f`` other than json/geojson."""
    allowed = ITEMS_PARAMS | set(layer.queryables)
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        raise ParameterError(unknown[0][:100], f"unknown query parameter (allowed: {', '.join(sorted(allowed))})")
    _check_f(request, ("json", "geojson", *EXPORT_TYPES))
    if request.query_params.get("f") in EXPORT_TYPES and crs != "CRS84":
        raise ParameterError("crs", "a CSV or Excel table gives WGS-84 longitude and latitude; crs is for GeoJSON")


def _feature_query(request: Request, layer=Depends(visible_layer)) -> None:
    """The dependency refusing what a single-feature query may not carry (anything but ``crs`` and ``f``)."""
    unknown = sorted(set(request.query_params.keys()) - {"crs", "f"})
    if unknown:
        raise ParameterError(unknown[0][:100], "unknown query parameter (allowed: crs, f)")
    _check_f(request)


def _collection_doc(request: Request, layer, prepared_layer) -> dict:
    layer = prepared_layer.layer  # as the caller sees it (a layer's counts where it may not see the features)
    base = _base(request)
    url = f"{base}/collections/{layer.id}"
    x0, y0, x1, y1 = prepared_layer.extent_wgs84()
    return {
        "id": layer.id, "title": f"{layer.title_zh} {layer.title_en}",
        "description": layer.description or f"{layer.title_en} ({layer.title_zh})",
        "itemType": "feature",
        "extent": {"spatial": {"bbox": [[x0, y0, x1, y1]], "crs": CRS84}},
        "crs": list(CRS_URIS), "storageCrs": CRS84,
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": "this collection"},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "items as GeoJSON"},
            {"href": f"{url}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json", "title": "queryables"},
            *([{"href": f"{base}/tiles/{layer.id}.json", "rel": "tiles", "type": "application/json",
                "title": "vector tiles (TileJSON)"}] if layer.tiles else []),
        ],
    }


def build_router() -> APIRouter:
    """The OGC API – Features routes: the service documents, the collections, their features."""
    router = APIRouter(tags=["OGC API – Features"])
    _add_service_routes(router)
    _add_collection_routes(router)
    _add_feature_routes(router)
    return router


def _add_service_routes(router: APIRouter) -> None:
    """The landing page, the API definition and its page, the conformance classes."""
    @router.get("/", summary="Landing page (JSON); browsers asking for HTML get the web map")
    def landing(request: Request):
        wants_html = request.query_params.get("f") == "html" or (
            request.query_params.get("f") is None and "text/html" in request.headers.get("accept", ""))
        if wants_html:
            try:
                from api.webmap import page_response
            except ImportError:
                pass
            else:
                return page_response(request)
        _check_f(request, ("json", "html"))
        base = _base(request)
        summary = get_workspace(request).summary()
        return _json({
            "title": "gridcover", "description": "Grid coverage, 15-minute reach and blind spots (网格化管理 脱管 分析). "
            f"{summary.get('households', '?')} households.",
            "links": [
                {"href": f"{base}/", "rel": "self", "type": "application/json", "title": "this document"},
                {"href": f"{base}/openapi", "rel": "service-desc", "type": OPENAPI_TYPE, "title": "the API definition"},
                {"href": f"{base}/api.html", "rel": "service-doc", "type": "text/html", "title": "the API documentation"},
                {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
                 "title": "conformance classes"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json", "title": "the collections"},
                {"href": f"{base}/?f=html", "rel": "alternate", "type": "text/html", "title": "the web map"},
            ],
        })

    @router.get("/openapi", summary="The API definition (OpenAPI 3.0)", response_class=Response)
    def openapi(request: Request):
        return Response(json.dumps(request.app.openapi(), ensure_ascii=False), media_type=OPENAPI_TYPE)

    @router.get("/api.html", summary="The API documentation (a page listing every operation)", response_class=Response)
    def api_doc(request: Request):
        doc = request.app.openapi()
        rows = "".join(f"<tr><td>{m.upper()}</td><td><code>{html.escape(path)}</code></td>"
                       f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
                       for path, ops in doc["paths"].items() for m, op in ops.items())
        page = (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>gridcover API</title>"
                f"<h1>gridcover API</h1><p>OpenAPI 3.0 definition: <a href='openapi'>openapi</a>. "
                f"Collections: <a href='collections'>collections</a>.</p><table>{rows}</table></html>")
        return Response(page, media_type="text/html")

    @router.get("/conformance", summary="Conformance classes")
    def conformance(request: Request):
        _check_f(request)
        return _json({"conformsTo": CONFORMANCE})


def _add_collection_routes(router: APIRouter) -> None:
    """The collections the caller may see, one collection, its queryables."""
    @router.get("/collections", summary="The collections this caller may see")
    def collections(request: Request, caller: Caller = Depends(get_caller)):
        _check_f(request)
        workspace = get_workspace(request)
        layers = [lay for lay in list_layers(workspace) if _may_see(caller, lay)]
        layer_cache = get_layer_cache(request)
        view = view_of(caller, _k(request))
        docs = [_collection_doc(request, lay, describe_layer(workspace, layer_cache, lay.id, view=view)) for lay in layers]
        base = _base(request)
        return _json({"links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json",
                                 "title": "the collections"}],
                      "collections": docs, "crs": list(CRS_URIS)})

    @router.get("/collections/{collection_id}", summary="One collection")
    def collection(request: Request, caller: Caller = Depends(get_caller), _f=Depends(_json_format),
                   layer=Depends(visible_layer)):
        return _json(_collection_doc(request, layer, describe_layer(
            get_workspace(request), get_layer_cache(request), layer.id, view=view_of(caller, _k(request)))))

    @router.get("/collections/{collection_id}/queryables", summary="Properties usable as filters")
    def queryables(request: Request, caller: Caller = Depends(get_caller), _f=Depends(_json_format),
                   layer=Depends(visible_layer)):
        source = describe_layer(get_workspace(request), get_layer_cache(request), layer.id,
                                view=view_of(caller, _k(request)))
        props = queryable_properties(source.layer, source.data)
        return _json({"$schema": "https://json-schema.org/draft/2019-09/schema",
                      "$id": f"{_base(request)}/collections/{layer.id}/queryables",
                      "type": "object", "title": layer.title_en, "properties": props},
                     media_type="application/schema+json")


def _add_feature_routes(router: APIRouter) -> None:
    """The features of a collection (paged, filtered by bbox and queryables) and one feature."""
    @router.get("/collections/{collection_id}/items", summary="Features (GeoJSON), paged",
                response_class=Response, openapi_extra={"parameters": _ITEMS_PARAMETERS})
    async def items(request: Request, caller: Caller = Depends(get_caller), area=Depends(bbox_area),
                    layer=Depends(visible_layer), _checked=Depends(_items_query), page: Page = Depends(page_of),
                    crs_key: str = Depends(output_crs), _datetime=Depends(check_datetime)):
        view = view_of(caller, _k(request))
        equals = {name: request.query_params[name] for name in shown_layer(layer, view).queryables
                  if name in request.query_params}
        etag = _etag(request, view, layer_version(get_workspace(request), layer.id))
        if (hit := _not_modified(request, etag)) is not None:
            return hit
        fmt = request.query_params.get("f")
        if fmt in EXPORT_TYPES:
            return await run_in_threadpool(_export_response, request, layer, view, area, equals, fmt, etag)
        body, returned = await run_in_threadpool(_items_body, request, layer.id, view, crs_key, area, equals, page)
        headers = {"Content-Crs": f"<{uri_of(crs_key)}>", "ETag": etag, "Cache-Control": "no-cache",
                   "Vary": "X-API-Key"}
        return Response(body, media_type=GEOJSON, headers=headers)

    @router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature (GeoJSON)",
                response_class=Response)
    def item(collection_id: str, feature_id: str, request: Request, caller: Caller = Depends(get_caller),
             layer=Depends(visible_layer), _checked=Depends(_feature_query), crs_key: str = Depends(output_crs)):
        view = view_of(caller, _k(request))
        found = find_feature(get_workspace(request), get_layer_cache(request), layer.id, feature_id, view=view)
        if found is None:
            raise NotFoundError(f"collection {layer.id!r} has no feature {feature_id[:100]!r}")
        source, row = found
        etag = _etag(request, view, layer_version(get_workspace(request), layer.id))
        if (hit := _not_modified(request, etag)) is not None:
            return hit
        base = _base(request)
        url = f"{base}/collections/{layer.id}"
        links = [{"href": f"{url}/items/{feature_id}", "rel": "self", "type": GEOJSON, "title": "this feature"},
                 {"href": url, "rel": "collection", "type": "application/json", "title": "the collection"}]
        text = source.feature_strings(view, crs_key)[row]
        body = text[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
        return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{uri_of(crs_key)}>", "ETag": etag,
                                                           "Cache-Control": "no-cache", "Vary": "X-API-Key"})


def queryable_properties(layer, data) -> dict[str, dict]:
    """The JSON Schema of each queryable of a layer that its table holds (title in Chinese and English, type)."""
    props = {}
    for name in layer.queryables:
        if name not in data.columns:
            continue
        kind = ("boolean" if str(data[name].dtype) in ("bool", "boolean") else
                "integer" if str(data[name].dtype).lower().startswith("int") else
                "number" if str(data[name].dtype).startswith("float") else "string")
        zh, en = FIELD_NAMES.get(name, (name, name))
        props[name] = {"title": f"{zh} {en}", "type": kind}
    return props


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_FEATURE_SCHEMA = {"type": "object", "required": ["type", "geometry", "properties"],
                   "properties": {"type": {"type": "string", "enum": ["Feature"]},
                                  "id": {"type": "string"}, "geometry": {"type": "object", "nullable": True},
                                  "properties": {"type": "object", "nullable": True},
                                  "links": {"type": "array", "items": {"type": "object"}}}}
_COLLECTION_SCHEMA = {"type": "object", "required": ["type", "features", "numberReturned", "links"],
                      "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                                     "features": {"type": "array", "items": _FEATURE_SCHEMA},
                                     "numberMatched": {"type": "integer", "minimum": 0},
                                     "numberReturned": {"type": "integer", "minimum": 0},
                                     "timeStamp": {"type": "string", "format": "date-time"},
                                     "links": {"type": "array", "items": {"type": "object"}}}}


def _geojson_ok(schema: dict, what: str) -> dict:
    headers = {"Content-Crs": {"description": "the CRS of the coordinates, as <URI>", "schema": {"type": "string"}},
               "ETag": {"description": "the workspace version, the caller's view and the URL", "schema": {"type": "string"}}}
    return {"description": what, "headers": headers, "content": {GEOJSON: {"schema": schema}}}


def complete_openapi(doc: dict, app) -> dict:
    """What FastAPI cannot say of these routes: GeoJSON answers of items and features, ``crs`` and ``f`` of a
    single feature, the collection ids this workspace serves, and an items operation per collection with its
    queryables as parameters (``/collections/grids/items?community_id=…``, OGC API – Features Part 3)."""
    paths = doc["paths"]
    workspace = app.state.workspace
    layers = list_layers(workspace)
    ids = [lay.id for lay in layers]
    for path, ops in paths.items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("name") == "collection_id" and param.get("in") == "path":
                    param["schema"] = {"type": "string", "enum": ids, "title": "Collection Id"}
    paths["/"]["get"]["responses"]["200"]["content"]["text/html"] = {"schema": {"type": "string"}}
    paths["/openapi"]["get"]["responses"]["200"]["content"] = {OPENAPI_TYPE: {"schema": {"type": "object"}}}
    paths["/api.html"]["get"]["responses"]["200"]["content"] = {"text/html": {"schema": {"type": "string"}}}
    paths["/collections/{collection_id}/queryables"]["get"]["responses"]["200"]["content"] = {
        "application/schema+json": {"schema": {"type": "object"}}}
    item = paths["/collections/{collection_id}/items/{feature_id}"]["get"]
    item["parameters"] += [p for p in _ITEMS_PARAMETERS if p["name"] in ("crs", "f")]
    item["responses"]["200"] = _geojson_ok(_FEATURE_SCHEMA, "the feature (GeoJSON)")
    template = paths.pop("/collections/{collection_id}/items")["get"]
    template["responses"]["200"] = _geojson_ok(_COLLECTION_SCHEMA, "a page of features (GeoJSON FeatureCollection)")
    template["responses"]["200"]["content"].update(
        {media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}} for media in EXPORT_TYPES.values()})
    for layer in layers:
        op = json.loads(json.dumps(template))
        op["operationId"] = f"items_{layer.id}"
        op["summary"] = f"{layer.title_en} ({layer.title_zh}): features (GeoJSON), paged"
        op["parameters"] = [p for p in op["parameters"] if p["name"] != "collection_id"]
        described = describe_layer(workspace, app.state.layer_cache, layer.id)
        for name, prop in queryable_properties(layer, described.data).items():
            op["parameters"].append(query_parameter(name, f"only features whose {name} equals this ({prop['title']})",
                                           {"type": prop["type"]}))
        paths[f"/collections/{layer.id}/items"] = {"get": op}
    return doc


def _items_body(request: Request, layer_id: str, view: View, crs_key: str, area, equals: dict,
                paging: Page) -> tuple[str, int]:
    limit, offset = paging.limit, paging.offset
    found = select_features(get_workspace(request), get_layer_cache(request), layer_id, view=view, area=area,
                            equals=equals, limit=limit, offset=offset)
    page = found.rows
    strings = found.source.feature_strings(view, crs_key)
    url = request.url
    links = [{"href": str(url), "rel": "self", "type": GEOJSON, "title": "this page"},
             {"href": f"{_base(request)}/collections/{layer_id}", "rel": "collection", "type": "application/json",
              "title": "the collection"}]
    if offset + limit < found.matched:
        links.append({"href": str(url.include_query_params(offset=offset + limit, limit=limit)), "rel": "next",
                      "type": GEOJSON, "title": "next page"})
    if offset > 0:
        links.append({"href": str(url.include_query_params(offset=max(offset - limit, 0), limit=limit)),
                      "rel": "prev", "type": GEOJSON, "title": "previous page"})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = ('{"type":"FeatureCollection","features":[' + ",".join(strings[page]) + "]"
            f',"numberMatched":{found.matched},"numberReturned":{len(page)},"timeStamp":"{stamp}",'
            f'"links":{json.dumps(links, ensure_ascii=False)}}}')
    return body, len(page)


def _export_response(request: Request, layer, view: View, area, equals: dict, fmt: str, etag: str) -> Response:
    """The matching features as one CSV or Excel table (every match: ``limit`` and ``offset`` apply only when
    given), with the same view as the GeoJSON items (k-suppression, a street office's own streets)."""
    params = request.query_params
    workspace = get_workspace(request)
    page = page_of(request) if "offset" in params or "limit" in params else None
    found = select_features(workspace, get_layer_cache(request), layer.id, view=view, area=area, equals=equals,
                            limit=None if page is None else page.limit, offset=0 if page is None else page.offset)
    source, rows = found.source, found.rows
    names = None
    if workspace.has("communities"):
        communities = get_layer_cache(request).prepare(workspace, "communities")
        if "name" in communities.data.columns:
            names = dict(zip(communities.ids, communities.data["name"].astype("string").fillna("")))
    table = export_table(source, rows, view, community_names=names)
    body = table_csv(table) if fmt == "csv" else table_xlsx(table, title=layer.title_zh)
    stem = "_".join([layer.id, *(f"{k}-{v}" for k, v in sorted(equals.items()))])[:100]
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in stem)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "X-API-Key",
               "Content-Disposition": f'attachment; filename="{safe}.{fmt}"'}
    return Response(body, media_type=EXPORT_TYPES[fmt], headers=headers)


_ITEMS_PARAMETERS = [*PAGE_PARAMETERS, *BBOX_PARAMETERS, CRS_PARAMETER, DATETIME_PARAMETER,
                     query_parameter("f", "format: json/geojson (a page of GeoJSON), csv or xlsx (every matching "
                                     "feature as a table with Chinese column names)",
                                     {"type": "string", "enum": ["json", "geojson", *EXPORT_TYPES]})]
