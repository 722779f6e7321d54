"""The FastAPI application: one workspace, one keys file, routers from their modules.

Routers live in their own modules and are included if present (``ROUTER_MODULES``), each exposing
``build_router() -> fastapi.APIRouter``. Routes only translate HTTP to calls into ``geo/`` and
``layers/`` and back; domain errors become HTTP answers here, in one place.

Example
-------
>>> app = create_app(open_workspace("out/sample"), keys=load_keys("keys.json"))
"""

from __future__ import annotations

import importlib

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from api.access import HEADER, PUBLIC, Caller, Keys
from geo.errors import GridcoverError, InputError
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


def create_app(workspace: Workspace, *, keys: Keys | None = None) -> FastAPI:
    """The gridcover server for one workspace."""
    app = FastAPI(title="gridcover", version="0.1.0",
                  description="Grid coverage, 15-minute reach and blind spots of a street office (网格化管理).")
    app.state.workspace = workspace
    app.state.keys = keys or Keys()

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse(status_code=400, content={"code": "InvalidParameterValue", "description": str(exc)})

    @app.exception_handler(WorkspaceError)
    async def _workspace_error(request: Request, exc: WorkspaceError):
        return JSONResponse(status_code=404, content={"code": "NotFound", "description": str(exc)})

    @app.exception_handler(GridcoverError)
    async def _domain_error(request: Request, exc: GridcoverError):
        return JSONResponse(status_code=400, content={"code": "BadRequest", "description": str(exc)})

    for module_name in ROUTER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        app.include_router(module.build_router())
    return app
