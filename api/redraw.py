"""HTTP redraw of grid boundaries (网格调整): check, propose, save drafts, apply, history, compare.

Routes translate HTTP to calls of the app's :class:`gridcover.services.redraw.RedrawService` and back.
A ``street_office`` key acts on the communities of its own streets only; ``admin`` on any (and alone may
restore an old version). Proposals are kept as drafts in the workspace's proposal store
(:meth:`gridcover.store.Workspace.proposals`); applying one writes a new grid version into the workspace
atomically. See docs/redraw.md.

Example
-------
    curl -X POST -H 'X-API-Key: k-office' -H 'Content-Type: application/json' \\
         --data @proposal.geojson http://localhost:8000/grids/proposals
"""

from __future__ import annotations

import json

import geopandas as gpd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.access import Caller
from api.params import date_in_force, require
from geo.errors import ForbiddenError, InputError
from geo.propose import parse_band
from gridcover.io.outputs import _json_default
from gridcover.services.redraw import RedrawService


def geojson(frame: gpd.GeoDataFrame) -> dict:
    return json.loads(frame.to_crs(4326).to_json(drop_id=True, ensure_ascii=False))


def get_redraw(request: Request) -> RedrawService:
    """The app's redraw service (``api.app.create_app`` makes it once)."""
    return request.app.state.redraw


# ------------------------------------------------------------------ access
def allow_communities(caller: Caller, redraw: RedrawService, communities) -> None:
    """``ForbiddenError`` (403) unless the caller answers for the street of every community."""
    street_of = redraw.streets()
    denied = sorted(c for c in map(str, communities) if not caller.may_see_street(street_of.get(c)))
    if denied:
        raise ForbiddenError(f"this key may not change the grids of {', '.join(denied)} "
                             "(a street office key acts on its own streets only)")


def _json(doc) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False, default=_json_default).encode("utf-8"),
                    media_type="application/json")


async def _body(request: Request):
    raw = await request.body()
    if not raw:
        raise InputError("the request body is empty: send JSON", field="body")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not valid UTF-8 JSON: {exc}", field="body") from None
    except RecursionError:
        raise InputError("the body is JSON nested too deeply to be a proposal", field="body") from None


#: The bodies of the redraw routes, for the OpenAPI document (the routes read them with :func:`_body`).
_PROPOSAL_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": 'a GeoJSON FeatureCollection of grid polygons (properties id, community_id), '
                                     'or {"moves": [{...}], "grids": FeatureCollection?}',
    "properties": {"type": {"type": "string"}, "features": {"type": "array", "items": {"type": "object"}},
                   "moves": {"type": "array", "items": {"type": "object"}}}}}}}}
_PROPOSE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["community"],
    "properties": {"community": {"type": "string"}, "target": {"type": "string", "example": "300-500"},
                   "keep_current": {"type": "boolean"}}}}}}}


#: The dependency letting through street offices and admins.
office = require("street_office")


def _check(request: Request, doc, target: str | None, caller: Caller):
    """A proposal's body checked: the service, its grids, its report (403 for communities not the caller's)."""
    redraw = get_redraw(request)
    grids = redraw.parse_proposal(doc)
    allow_communities(caller, redraw, set(grids["community_id"].astype(str)))
    return redraw, grids, redraw.check(grids, band=parse_band(target))


def build_router() -> APIRouter:
    """The redraw routes."""
    router = APIRouter(tags=["redraw"])
    _add_draft_routes(router)
    _add_apply_routes(router)
    _add_version_routes(router)
    return router


def _add_draft_routes(router: APIRouter) -> None:
    """Check a proposal, save it as a draft, list the drafts, read one."""
    @router.post("/grids/proposals/check", summary="Check a proposal or a list of moves without saving it",
                 openapi_extra=_PROPOSAL_BODY)
    async def post_check(request: Request, target: str | None = Query(None, description="band, e.g. 300-500"),
                         caller: Caller = Depends(office)):
        doc = await _body(request)
        _, grids, report = await run_in_threadpool(_check, request, doc, target, caller)
        return _json({"check": report, "grids": geojson(grids) if isinstance(doc, dict) and "moves" in doc else None})

    @router.post("/grids/proposals", summary="Check a proposal (grid polygons or moves) and save it as a draft",
                 openapi_extra=_PROPOSAL_BODY)
    async def post_proposal(request: Request, target: str | None = Query(None, description="band, e.g. 300-500"),
                            note: str = Query("", description="a note kept with the draft"),
                            caller: Caller = Depends(office)):
        doc = await _body(request)
        redraw, grids, report = await run_in_threadpool(_check, request, doc, target, caller)
        pid = redraw.save_draft(grids, report, author=caller.key_name or caller.role, note=note)
        return _json({"id": pid, "status": "draft", "applicable": report["valid"], "check": report})

    @router.get("/grids/proposals", summary="Saved proposals (drafts and applied)")
    def list_proposals(request: Request, caller: Caller = Depends(office)):
        redraw = get_redraw(request)
        street_of = redraw.streets()
        rows = [p for p in redraw.drafts() if all(caller.may_see_street(street_of.get(c)) for c in p["communities"])]
        return _json({"proposals": rows})

    @router.get("/grids/proposals/{pid}", summary="A saved proposal: its grids and its check")
    def get_proposal(pid: str, request: Request, caller: Caller = Depends(office)):
        redraw = get_redraw(request)
        p = redraw.draft(pid)
        allow_communities(caller, redraw, p["communities"])
        return _json(p)


def _add_apply_routes(router: APIRouter) -> None:
    """Apply a saved draft; propose balanced grids for a community."""
    @router.post("/grids/proposals/{pid}/apply", summary="Apply a valid saved proposal as a new grid version")
    def apply(pid: str, request: Request, reason: str = Query(..., min_length=1, description="why"),
              expected_version: int | None = Query(None, description="the version the proposal was checked on "
                                                                     "(default: the one it was saved on)"),
              caller: Caller = Depends(office)):
        redraw = get_redraw(request)
        allow_communities(caller, redraw, redraw.draft(pid)["communities"])
        version, report = redraw.apply_draft(pid, author=caller.key_name or caller.role, reason=reason,
                                             expected_version=expected_version)
        return _json({"applied": True, "version": version, "check": report})

    @router.post("/grids/propose", summary="Propose balanced grids for a community (saved as a draft)",
                 openapi_extra=_PROPOSE_BODY)
    async def post_propose(request: Request, caller: Caller = Depends(office)):
        doc = await _body(request)
        if not isinstance(doc, dict) or not doc.get("community"):
            raise InputError('give {"community": ID, "target": "300-500", "keep_current": false}', field="community")
        def run():
            redraw = get_redraw(request)
            cid = str(doc["community"])
            allow_communities(caller, redraw, [cid])
            if doc.get("target") is not None and not isinstance(doc["target"], str):
                raise InputError(f'target must be a band such as "300-500", not {doc["target"]!r}'[:200], field="target")
            band = parse_band(doc.get("target"))
            grids, report, notes = redraw.propose(cid, band=band, keep_current=bool(doc.get("keep_current")))
            pid = redraw.save_draft(grids, report, author=caller.key_name or caller.role, note="proposed by gridcover")
            return {"id": pid, "status": "draft", "applicable": report["valid"], "notes": notes,
                    "grids": geojson(grids), "check": report}

        return _json(await run_in_threadpool(run))


def _add_version_routes(router: APIRouter) -> None:
    """The grid history: every version, one version, the version in force on a date, a comparison, a restore."""
    @router.get("/grids/versions", summary="Every version of the grids: author, time, reason")
    def versions(request: Request, _caller: Caller = Depends(office)):
        return _json(get_redraw(request).history())

    @router.get("/grids/versions/{version}", summary="The grids of one version (GeoJSON)")
    def version_grids(version: int, request: Request, _caller: Caller = Depends(office)):
        v, grids = get_redraw(request).read_version(version)
        doc = geojson(grids)
        doc["version"] = v
        return _json(doc)

    @router.get("/grids/as_of", summary="The grids in force on a date (GeoJSON)")
    def as_of(request: Request, _caller: Caller = Depends(require("lookup")), when=Depends(date_in_force)):
        v, grids = get_redraw(request).read_as_of(when)
        doc = geojson(grids)
        doc["version"] = v
        return _json(doc)

    @router.get("/grids/compare", summary="Compare two versions: who changes grid, grids created/merged/removed")
    def compare(request: Request, from_version: int = Query(..., alias="from"),
                to_version: int = Query(..., alias="to"), community: str | None = Query(None),
                caller: Caller = Depends(office)):
        redraw = get_redraw(request)
        out = redraw.compare(from_version, to_version, community=community)
        allow_communities(caller, redraw, out["communities"])
        return _json(out)

    @router.post("/grids/versions/{version}/restore", summary="Make an earlier version current again (admin)")
    def restore(version: int, request: Request, reason: str = Query(..., min_length=1),
                caller: Caller = Depends(require("admin"))):
        restored = get_redraw(request).restore(version, author=caller.key_name or "admin", reason=reason)
        return _json({"restored": version, "version": restored})
