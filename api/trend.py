"""The scorecard's trend (趋势): ``GET /trend`` — per community and street, each indicator's last 12 monthly
snapshots against the target in force then, and what changed since last month (docs/history.md).

Counts only, for every caller: no household or case id ever leaves the workspace. The grids that became
overloaded are named (grids are not personal). Per community, the count of households that became red or of
cases that became overdue is withheld from 1 to k-1 (``null``) unless the caller may see that street (a
``street_office`` key in its own streets, ``admin``), as every special-group count of the API is.

Example
-------
    curl http://localhost:8000/trend
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.access import PUBLIC, Caller
from api.app import get_workspace
from api.params import get_caller
from geo.history import build_trend
from gridcover.io.outputs import _json_default
from layers.base import DEFAULT_K
from layers.report import INDICATOR_NAMES


def trend_for(request: Request, caller: Caller) -> dict:
    """The trend of the app's workspace as ``caller`` may see it."""
    k = int(getattr(request.app.state, "k", DEFAULT_K))
    history = get_workspace(request).scorecard_history()
    trend = build_trend(history, k=k, sees_street=caller.may_see_street)
    used = {code for unit in trend["units"] for code in unit["indicators"]}
    trend["indicator_names"] = {code: list(INDICATOR_NAMES.get(code, (code, code))) for code in sorted(used)}
    return trend


def build_router() -> APIRouter:
    """The trend route."""
    router = APIRouter(tags=["trend"])

    @router.get("/trend", summary="Scorecard trend: 12 monthly snapshots against their targets, what changed "
                                  "since last month (counts only)")
    async def trend(request: Request, caller: Caller = Depends(get_caller)):
        body = await run_in_threadpool(trend_for, request, caller)
        cache = "no-cache" if caller is PUBLIC or caller.role in ("lookup", "grid_worker") else "private, no-store"
        return Response(json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8"),
                        media_type="application/json", headers={"Cache-Control": cache})

    return router
