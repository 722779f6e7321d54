"""The FastAPI application: one workspace, one keys file, routers from their modules.

Routers live in their own modules and are included if present (``ROUTER_MODULES``), each exposing
``build_router() -> fastapi.APIRouter``. Routes only translate HTTP to calls into ``geo/`` and
``layers/`` and back; domain errors become HTTP answers here, in one place.

Example
-------
>>> app = create_app(open_workspace("out/sample"), keys=load_keys("keys.json"))
"""

from __future__ import annotations


from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.access import HEADER, PUBLIC, Caller, Keys
from api.limits import DEFAULT_MAX_BODY_MB, MB, BodyLimit
from geo.errors import ConfigError, GridcoverError, InputError
from gridcover.modules import present
from gridcover.workspace import Workspace, WorkspaceError

#: Modules whose ``build_router()`` is included, in order.
ROUTER_MODULES = ("api.ogc", "api.tiles", "api.webmap", "api.lookup", "api.redraw")


def get_workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def get_caller(request: Request) -> Caller:
    """The caller of a request from its ``X-API-Key`` header; 401 for a key that is not configured."""
    keys: Keys = request.app.state.keys
    caller = keys.caller(request.headers.get(HEADER))
    if caller is None:
        raise HTTPException(status_code=401, detail=f"unknown API key in {HEADER}")
    return caller


def require(role: str):
    """A dependency that lets through callers of at least ``role`` (401 without a key, 403 with too weak a one)."""
    def check(caller: Caller = Depends(get_caller)) -> Caller:
        if not caller.at_least(role):
            status = 401 if caller is PUBLIC else 403
            raise HTTPException(status_code=status, detail=f"this needs a key with role {role!r} or above in {HEADER}")
        return caller
    return check


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


def header(scope, name: bytes) -> str | None:
    """One request header from an ASGI scope."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def create_app(workspace: Workspace, *, keys: Keys | None = None, k: int = 5,
               basemap: str | None = None, max_body_mb: float = DEFAULT_MAX_BODY_MB) -> FastAPI:
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
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    app = FastAPI(title="gridcover", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Grid coverage, 15-minute reach and blind spots of a street office (网格化管理).")
    app.state.workspace = workspace
    app.state.keys = keys or Keys()
    app.state.k = k
    app.state.basemap = basemap

    def _openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_30(get_openapi(title=app.title, version=app.version,
                                                        description=app.description, routes=app.routes))
        return app.openapi_schema
    app.openapi = _openapi

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        codes = {400: "InvalidParameterValue", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed"}
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content={"code": codes.get(exc.status_code, "Error"), "description": str(exc.detail)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return JSONResponse(status_code=400, content={"code": "InvalidParameterValue",
                                                      "description": f"parameter {where}: {first.get('msg', 'invalid')}"})

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse(status_code=400, content={"code": "InvalidParameterValue", "description": str(exc)})

    @app.exception_handler(WorkspaceError)
    async def _workspace_error(request: Request, exc: WorkspaceError):
        return JSONResponse(status_code=404, content={"code": "NotFound", "description": str(exc)})

    @app.exception_handler(GridcoverError)
    async def _domain_error(request: Request, exc: GridcoverError):
        return JSONResponse(status_code=400, content={"code": "BadRequest", "description": str(exc)})

    modules = list(present(ROUTER_MODULES))
    app.add_middleware(FastGets, state=app.state,
                       handlers=[m.fast_get for m in modules if hasattr(m, "fast_get")])
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * MB))  # outermost: before anything reads a body
    for module in modules:
        app.include_router(module.build_router())
    return app
