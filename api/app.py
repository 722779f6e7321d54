"""The FastAPI application: one workspace, one keys file, routers from their modules.

Routers live in their own modules and are included if present (``ROUTER_MODULES``), each exposing
``build_router() -> fastapi.APIRouter``. Routes only translate HTTP to calls into ``geo/`` and
``layers/`` and back; domain errors become HTTP answers here, in one place.

Example
-------
>>> app = create_app(open_workspace("out/sample"), keys=load_keys("keys.json"))
"""

from __future__ import annotations


from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.access import Keys
from api.limits import DEFAULT_MAX_BODY_MB, MB, BodyLimit
from api.params import get_caller
from geo.errors import (ConfigError, ForbiddenError, GridcoverError, InputError, KeyRequiredError, NotFoundError,
                        ParameterError)
from geo.problems import ProblemError
from gridcover.environment import Environment
from gridcover.lookup_batch import BatchError
from gridcover.modules import present
from gridcover.services.cases import CasesService
from gridcover.services.lookup import LookupService
from gridcover.services.redraw import RedrawService
from gridcover.services.tasks import TasksService
from gridcover.store import ConflictError, Workspace, WorkspaceError
from gridcover.store.base import CaseError
from layers.features import LayerCache
from layers.tiles import TileCache

#: The HTTP answer of each typed error (the first class of an error's MRO found here wins) — the one table;
#: routes raise typed errors, never status codes.
ERROR_STATUS: dict[type[Exception], int] = {
    ParameterError: 400,
    InputError: 400,
    KeyRequiredError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    WorkspaceError: 404,
    ConflictError: 409,
    GridcoverError: 400,
}
#: The fields an error body carries beyond ``code`` and ``description``, for the typed errors that have more
#: to say (a refused batch lists its bad rows).
ERROR_DETAILS = {
    BatchError: BatchError.as_json,
    ProblemError: ProblemError.as_json,
    CaseError: CaseError.as_json,  # an English problem code and a Chinese message (the case API)
}
#: The ``code`` of the error body (OGC API exception style) for each status.
ERROR_CODES = {400: "InvalidParameterValue", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 409: "Conflict", 413: "PayloadTooLarge", 422: "InvalidParameterValue"}


def status_of(exc: Exception) -> int:
    """The HTTP status of a typed error, from :data:`ERROR_STATUS`."""
    return next(ERROR_STATUS[cls] for cls in type(exc).__mro__ if cls in ERROR_STATUS)


def error_body(status: int, description: str, details: dict | None = None) -> JSONResponse:
    """The error answer every route gives: ``{"code", "description"}`` and the error's ``details``, if any."""
    return JSONResponse(status_code=status, content={"code": ERROR_CODES.get(status, "Error"),
                                                     "description": description, **(details or {})})


#: Modules whose ``build_router()`` is included, in order.
ROUTER_MODULES = ("api.ogc", "api.tiles", "api.webmap", "api.lookup", "api.redraw", "api.tasks", "api.trend", "api.cases")


def get_workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def get_layer_cache(request: Request) -> LayerCache:
    return request.app.state.layer_cache


def openapi_30(doc: dict) -> dict:
    """An OpenAPI 3.1 document (what FastAPI writes) rewritten as 3.0.3 (what GDAL and the OGC suite read)."""
    def fix(node):
        if isinstance(node, list):
            return [fix(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: fix(v) for k, v in node.items() if k not in ("$schema", "contentMediaType", "contentEncoding")}
        for key in ("anyOf", "oneOf"):
            options = node.get(key)
            if isinstance(options, list) and any(o == {"type": "null"} for o in options):
                rest = [o for o in options if o != {"type": "null"}]
                node.pop(key)
                if len(rest) == 1:
                    node.update(rest[0])
                else:
                    node[key] = rest
                node["nullable"] = True
        if isinstance(node.get("type"), list):
            types = [t for t in node["type"] if t != "null"]
            if len(types) < len(node["type"]):
                node["nullable"] = True
            node["type"] = types[0] if len(types) == 1 else "string"
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if isinstance(node.get("examples"), list) and "in" not in node and "schema" not in node:
            examples = node.pop("examples")
            if examples:
                node["example"] = examples[0]
        for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(node.get(bound), (int, float)) and not isinstance(node.get(bound), bool):
                node[flag] = node.pop(bound)
                node[bound] = True
        return node

    out = fix(doc)
    out["openapi"] = "3.0.3"
    return out


#: The error body of every 4xx answer, in the OpenAPI document.
ERROR_SCHEMA = {"type": "object", "required": ["code", "description"],
                "properties": {"code": {"type": "string", "example": "InvalidParameterValue"},
                               "description": {"type": "string", "example": "parameter bbox: 'nan' is not a finite number"}}}
_ERROR_TEXT = {400: "a bad parameter or body (the description names it)", 401: "no API key, or one not configured",
               403: "the key's role does not allow it", 404: "no such collection, feature, tile, file or proposal",
               409: "a conflict with the current grids (someone changed them since), or with a stored case",
               413: "the request body is over the server's limit"}


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def complete_openapi(doc: dict, routes) -> dict:
    """The error answers of every operation, from what its route can raise: 400 for every operation, 401 and
    403 where the caller's key is read, 404 where a parameter names something, 409 where the grids are written,
    413 where a body is sent; all with the one error body (``components/schemas/Error``). FastAPI's 422 goes
    (validation errors are answered 400)."""
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)
    by_path = {(r.path, m.lower()): r for r in routes if isinstance(r, APIRoute) for m in r.methods}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            route = by_path.get((path, method))
            statuses = [400]
            if route is not None and _depends_on(route.dependant, get_caller):
                statuses += [401, 403]
            if op.get("parameters"):
                statuses.append(404)
            if path.endswith(("/apply", "/restore", "/accept", "/close")) or (path == "/cases" and method == "post"):
                statuses.append(409)
            if method in ("post", "put", "patch"):
                statuses.append(413)
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status in statuses:
                responses.setdefault(str(status), {"description": _ERROR_TEXT[status], "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    return doc


class FastGets:
    """ASGI middleware for the two hot paths — a tile already in the cache, a single coordinate lookup —
    answered before routing by the ``fast_get(state, scope)`` of the router modules that have one, which
    call the same functions as their routes and give up (``None``) on anything unusual, leaving it to the
    full route with its validation and errors."""

    def __init__(self, app, *, state, handlers) -> None:
        self.app = app
        self.state = state
        self.handlers = handlers

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            for handler in self.handlers:
                hit = handler(self.state, scope)
                if hit is not None:
                    status, headers, body = hit
                    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
                    raw.append((b"content-length", str(len(body)).encode()))
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


class HeadAsGet:
    """ASGI middleware answering HEAD wherever GET is answered: the GET's status and headers, no body."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)
        await self.app(dict(scope, method="GET"), receive, headers_only)


def header(scope, name: bytes) -> str | None:
    """One request header from an ASGI scope."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def create_app(workspace: Workspace, *, keys: Keys | None = None, k: int = 5,
               basemap: str | None = None, max_body_mb: float = DEFAULT_MAX_BODY_MB,
               environment: Environment | None = None, tile_folder: str | None = None) -> FastAPI:
    """The gridcover server for one workspace.

    Parameters
    ----------
    workspace
        What ``gridcover analyze`` wrote.
    keys
        API keys and roles (everyone is public without).
    k
        Counts of special-group members from 1 to k-1 are withheld from callers not entitled to the street.
    basemap
        Optional XYZ raster tile URL template for the web map's base map (none by default: works offline).
    max_body_mb
        Request bodies over this many MB (2**20 bytes) get 413 before they are read whole (api/limits.py).
    environment
        The environment variables (:class:`gridcover.environment.Environment`; read from this process's
        environment here, once, if not given): ``GRIDCOVER_CITY`` is the lookup's city.
    tile_folder
        A folder the tile cache also keeps its tiles in, shared by the server's processes (``serve --workers``);
        memory only without it.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    app = FastAPI(title="gridcover", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Grid coverage, 15-minute reach and blind spots of a street office (网格化管理).")
    app.state.workspace = workspace
    environment = Environment.from_os() if environment is None else environment
    # owns the lookup indexes of the workspace's versions; the city from GRIDCOVER_CITY
    app.state.lookup = LookupService(workspace, city=environment.city)
    app.state.redraw = RedrawService(workspace)  # owns the redraw context of the workspace's versions
    app.state.tasks = TasksService(workspace)  # owns the walking network and the tours of the workspace's versions
    app.state.cases = CasesService(workspace, lookup=app.state.lookup)  # resolves cases with the lookup's index
    app.state.layer_cache = LayerCache()  # the workspace's layers, prepared once per version (layers/features.py)
    app.state.tile_cache = TileCache(folder=tile_folder)  # tiles drawn, by workspace version (layers/tiles.py; api/tiles.py keys it)
    app.state.keys = keys or Keys()
    app.state.k = k
    app.state.basemap = basemap

    def _openapi() -> dict:
        if app.openapi_schema is None:
            doc = complete_openapi(get_openapi(title=app.title, version=app.version, description=app.description,
                                               routes=app.routes), [r for router in routers for r in router.routes])
            for module in modules:
                if hasattr(module, "complete_openapi"):
                    doc = module.complete_openapi(doc, app)
            app.openapi_schema = openapi_30(doc)
        return app.openapi_schema
    app.openapi = _openapi

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        answer = error_body(exc.status_code, str(exc.detail))
        answer.headers.update(getattr(exc, "headers", None) or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return error_body(400, f"parameter {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(GridcoverError)
    async def _domain_error(request: Request, exc: GridcoverError):
        details = next((ERROR_DETAILS[cls](exc) for cls in type(exc).__mro__ if cls in ERROR_DETAILS), None)
        return error_body(status_of(exc), str(exc), details)

    modules = list(present(ROUTER_MODULES))
    app.add_middleware(FastGets, state=app.state,
                       handlers=[m.fast_get for m in modules if hasattr(m, "fast_get")])
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * MB))  # outermost: before anything reads a body
    routers = [module.build_router() for module in modules]
    for router in routers:
        app.include_router(router)
    return app
