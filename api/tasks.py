"""HTTP visit lists (走访任务): ``GET /grids/{grid_id}/tasks?date=YYYY-MM-DD`` — the grid's households due or
overdue and the walking route through them, as JSON, or with ``f=html`` as the printable page.

Routes translate HTTP to calls of the app's :class:`gridcover.services.tasks.TasksService` and back. The lists
name special-group households, so they are never public: a key is needed (401 without), a ``grid_worker`` key
sees its own grids, a ``street_office`` key the grids of its streets, ``admin`` every grid (403 otherwise).
See docs/tasks.md and docs/server.md.

Example
-------
    curl -H 'X-API-Key: k-worker' 'http://localhost:8000/grids/G02-01/tasks?date=2026-12-03'
"""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.access import Caller
from api.params import require, visit_date
from geo.errors import ForbiddenError, ParameterError
from gridcover.io.outputs import _json_default
from gridcover.services.tasks import TasksService
from layers.tasks_page import render_tasks_page

#: The dependency letting through grid workers, street offices and admins (401 without a key).
worker_or_office = require("grid_worker")


def get_tasks(request: Request) -> TasksService:
    """The app's visit-list service (``api.app.create_app`` makes it once; it owns the walking network and
    the tours of the workspace's current version)."""
    return request.app.state.tasks


def allow_grid(caller: Caller, tasks: TasksService, grid_id: str) -> None:
    """``NotFoundError`` (404) for an unknown grid; ``ForbiddenError`` (403) unless the caller may see it."""
    street = tasks.street_of(grid_id)
    if not caller.may_see_grid(grid_id, street):
        raise ForbiddenError(f"this key may not see the visit list of grid {grid_id} (a grid worker key sees "
                             "its own grids, a street office key the grids of its streets)")


def build_router() -> APIRouter:
    """The visit-list route."""
    router = APIRouter(tags=["tasks"])

    @router.get("/grids/{grid_id}/tasks", summary="A grid's visit list and walking route for a date",
                responses={200: {"content": {"application/json": {}, "text/html": {}}}})
    async def grid_tasks(grid_id: str, request: Request, caller: Caller = Depends(worker_or_office),
                         date: dt.date = Depends(visit_date),
                         f: str = Query("json", description="json (default) or html (the printable page)"),
                         lang: str = Query("zh", description="language of the html page: zh (default) or en")):
        if f not in ("json", "html"):
            raise ParameterError("f", f"{f[:20]!r} is not a format (json, html)")
        if lang not in ("zh", "en"):
            raise ParameterError("lang", f"{lang[:20]!r} is not a language (zh, en)")
        tasks = get_tasks(request)

        def answer():
            allow_grid(caller, tasks, grid_id)
            return tasks.tasks(date=date, grids=[grid_id])

        result = await run_in_threadpool(answer)
        page = result["grids"][0]
        if f == "html":
            return HTMLResponse(render_tasks_page(page, notes=result["notes"], lang=lang),
                                headers={"Cache-Control": "private, no-store"})
        body = {**page, "notes": result["notes"], "visits_source": result["visits_source"],
                "rules": result["rules"]}
        return Response(json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8"),
                        media_type="application/json", headers={"Cache-Control": "private, no-store"})

    return router
