"""HTTP redraw of grid boundaries (网格调整): check, propose, save drafts, apply, history, compare.

Routes translate HTTP to :mod:`geo.redraw` / :mod:`geo.propose` and the workspace's grid history and back.
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
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.access import Caller
from api.app import get_workspace, require
from geo.errors import InputError
from geo.propose import parse_band, propose_grids
from geo.redraw import (RedrawContext, check_proposal, compare_grids, grids_after, grids_from_moves,
                        proposal_from_geojson, proposal_frame, reassess)
from geo.report import _json_default
from gridcover.store import ConflictError, Workspace, communities_changed_since

_CTX: dict[Path, tuple[str, RedrawContext]] = {}
_CTX_LOCK = threading.Lock()


# ------------------------------------------------------------------ shared with the CLI
def redraw_context(workspace: Workspace) -> RedrawContext:
    """The redraw context of the workspace's current version (built once per version)."""
    tag = workspace.tag
    hit = _CTX.get(workspace.path)
    if hit and hit[0] == tag:
        return hit[1]
    with _CTX_LOCK:
        hit = _CTX.get(workspace.path)
        if hit and hit[0] == tag:
            return hit[1]
        metric = workspace.summary().get("metric_crs") or None
        ctx = RedrawContext.from_layers(lambda name: workspace.read(name) if workspace.has(name) else None,
                                        version=workspace.version, metric_crs=metric)
        _CTX[workspace.path] = (tag, ctx)
        return ctx


def proposal_from_body(ctx: RedrawContext, doc) -> gpd.GeoDataFrame:
    """Grid polygons from a request/file body: a FeatureCollection, or ``{"moves": [...], "grids": FC?}``."""
    if isinstance(doc, dict) and "moves" in doc:
        base = None
        if doc.get("grids") is not None:
            base = proposal_from_geojson(doc["grids"], ctx, label="grids")
        return grids_from_moves(ctx, doc["moves"], base=base)
    return proposal_from_geojson(doc, ctx, label="proposal")


def _commit(workspace: Workspace, ctx: RedrawContext, replace: gpd.GeoDataFrame, communities: list[str], *,
            expected_version: int | None, author: str, reason: str, kind: str) -> dict:
    """Make ``replace`` the grids of ``communities`` in a new version, keeping every other community's grids as
    they are when the change is written (not as they were when it was checked).

    The layers are recomputed on ``ctx`` beforehand; if another change came in between, the workspace's
    ``commit_grids`` finds a newer version under its lock and they are recomputed on that one (a change of the
    same communities is refused there with ``ConflictError``)."""
    def assess(c: RedrawContext):
        whole = grids_after(c, replace, communities=communities)
        layers, summary = reassess(c, workspace.read, whole, summary=workspace.summary())
        return whole, layers, summary

    prepared = assess(ctx)

    def build(current: int):
        return prepared if current == int(ctx.version) else assess(redraw_context(workspace))

    version = workspace.commit_grids(build, author=author, reason=reason, communities=communities, kind=kind,
                                     expected_version=expected_version)
    return version.as_dict()


def apply_proposal(workspace: Workspace, grids: gpd.GeoDataFrame, *, author: str, reason: str,
                   expected_version: int | None = None, band=None, kind: str = "apply",
                   allow_invalid: bool = False) -> tuple[dict, dict]:
    """Check ``grids`` (metric, some communities) and, if valid, make them the new version atomically.

    Returns the new version (as a dict) and the check. ``InputError`` for an invalid proposal,
    ``ConflictError`` when another change of the same communities came first (a change of other communities
    made meanwhile is kept: the new version is the current grids with only these communities replaced).
    """
    ctx = redraw_context(workspace)
    report = check_proposal(ctx, grids, band=band or (300, 500))
    if not report["valid"] and not allow_invalid:
        msg = "the proposal is not valid and cannot be applied (save it as a draft): " + "; ".join(report["problems"])
        raise InputError(msg, field="proposal")
    version = _commit(workspace, ctx, grids, sorted(set(grids["community_id"].astype(str))),
                      expected_version=expected_version if expected_version is not None else report["base_version"],
                      author=author, reason=reason, kind=kind)
    return version, report


def restore_version(workspace: Workspace, version: int, *, author: str, reason: str) -> dict:
    """Make an earlier version's grids the current ones again (as a new version; history keeps all).

    The communities restored are those a later version changed; one of them changed again while restoring
    is a ``ConflictError``, a change of another community made meanwhile is kept."""
    history = workspace.history()
    old = workspace.grids_at(version)
    changed = communities_changed_since(history, version)
    if not changed:
        raise InputError(f"the grids of version {version} are the current ones: nothing to restore", field="version")
    ctx = redraw_context(workspace)
    old = old[old["community_id"].astype(str).isin(changed)].to_crs(ctx.metric_crs)
    return _commit(workspace, ctx, old, changed, expected_version=history[-1].version, author=author,
                   reason=reason or f"restore version {version}", kind="restore")


def compare_versions(workspace: Workspace, a: int, b: int, *, community: str | None = None) -> dict:
    """The diff between two versions of the grids (households assigned to both afresh)."""
    ctx = redraw_context(workspace)
    before = workspace.grids_at(a).to_crs(ctx.metric_crs)
    after = workspace.grids_at(b).to_crs(ctx.metric_crs)
    if community is not None:
        ctx.community(community)
        before = before[before["community_id"].astype(str) == str(community)]
        after = after[after["community_id"].astype(str) == str(community)]
    out = compare_grids(ctx, before, after)
    out.update({"from_version": int(a), "to_version": int(b)})
    return out


def geojson(frame: gpd.GeoDataFrame) -> dict:
    return json.loads(frame.to_crs(4326).to_json(drop_id=True, ensure_ascii=False))


# ------------------------------------------------------------------ access
def _street_of(ctx: RedrawContext) -> dict[str, str]:
    return dict(zip(ctx.communities["id"].astype(str), ctx.communities["street_id"].astype(str)))


def allow_communities(caller: Caller, ctx: RedrawContext, communities) -> None:
    """403 unless the caller answers for the street of every community."""
    street_of = _street_of(ctx)
    denied = sorted(c for c in map(str, communities) if not caller.may_see_street(street_of.get(c)))
    if denied:
        raise HTTPException(status_code=403, detail=f"this key may not change the grids of {', '.join(denied)} "
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


def build_router() -> APIRouter:
    """The redraw routes."""
    router = APIRouter(tags=["redraw"])
    office = require("street_office")

    def _check(request: Request, doc, target: str | None, caller: Caller):
        workspace = get_workspace(request)
        ctx = redraw_context(workspace)
        grids = proposal_from_body(ctx, doc)
        allow_communities(caller, ctx, set(grids["community_id"].astype(str)))
        return workspace, grids, check_proposal(ctx, grids, band=parse_band(target))

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
        workspace, grids, report = await run_in_threadpool(_check, request, doc, target, caller)
        pid = workspace.proposals().save(grids, report, author=caller.key_name or caller.role, note=note)
        return _json({"id": pid, "status": "draft", "applicable": report["valid"], "check": report})

    @router.get("/grids/proposals", summary="Saved proposals (drafts and applied)")
    def list_proposals(request: Request, caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        ctx = redraw_context(workspace)
        street_of = _street_of(ctx)
        rows = [p for p in workspace.proposals().list()
                if all(caller.may_see_street(street_of.get(c)) for c in p["communities"])]
        return _json({"proposals": rows})

    @router.get("/grids/proposals/{pid}", summary="A saved proposal: its grids and its check")
    def get_proposal(pid: str, request: Request, caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        p = workspace.proposals().get(pid)
        allow_communities(caller, redraw_context(workspace), p["communities"])
        return _json(p)

    @router.post("/grids/proposals/{pid}/apply", summary="Apply a valid saved proposal as a new grid version")
    def apply(pid: str, request: Request, reason: str = Query(..., min_length=1, description="why"),
              expected_version: int | None = Query(None, description="the version the proposal was checked on "
                                                                     "(default: the one it was saved on)"),
              caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        store = workspace.proposals()
        p = store.get(pid)
        ctx = redraw_context(workspace)
        allow_communities(caller, ctx, p["communities"])
        if p["status"] == "applied":
            raise HTTPException(status_code=409, detail=f"proposal {pid} was applied already (version "
                                                        f"{p['applied_version']})")
        grids = proposal_from_geojson(p["grids"], ctx, label=f"proposal {pid}")
        expected = expected_version if expected_version is not None else p["base_version"]
        try:
            version, report = apply_proposal(workspace, grids, author=caller.key_name or caller.role, reason=reason,
                                             expected_version=expected, band=tuple(p["check"]["band"]))
        except ConflictError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        store.mark_applied(pid, version["version"])
        return _json({"applied": True, "version": version, "check": report})

    @router.post("/grids/propose", summary="Propose balanced grids for a community (saved as a draft)",
                 openapi_extra=_PROPOSE_BODY)
    async def post_propose(request: Request, caller: Caller = Depends(office)):
        doc = await _body(request)
        if not isinstance(doc, dict) or not doc.get("community"):
            raise InputError('give {"community": ID, "target": "300-500", "keep_current": false}', field="community")
        def run():
            workspace = get_workspace(request)
            ctx = redraw_context(workspace)
            cid = str(doc["community"])
            allow_communities(caller, ctx, [cid])
            if doc.get("target") is not None and not isinstance(doc["target"], str):
                raise InputError(f'target must be a band such as "300-500", not {doc["target"]!r}'[:200], field="target")
            band = parse_band(doc.get("target"))
            grids, report, notes = propose_for(ctx, cid, band=band, keep_current=bool(doc.get("keep_current")))
            pid = workspace.proposals().save(grids, report, author=caller.key_name or caller.role,
                                                note="proposed by gridcover")
            return {"id": pid, "status": "draft", "applicable": report["valid"], "notes": notes,
                    "grids": geojson(grids), "check": report}

        return _json(await run_in_threadpool(run))

    @router.get("/grids/versions", summary="Every version of the grids: author, time, reason")
    def versions(request: Request, _caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        return _json({"current": workspace.version, "versions": [v.as_dict() for v in workspace.history()]})

    @router.get("/grids/versions/{version}", summary="The grids of one version (GeoJSON)")
    def version_grids(version: int, request: Request, _caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        v = workspace.grid_version(version)
        doc = geojson(workspace.grids_at(version))
        doc["version"] = v.as_dict()
        return _json(doc)

    @router.get("/grids/as_of", summary="The grids in force on a date (GeoJSON)")
    def as_of(request: Request, date: str = Query(..., description="YYYY-MM-DD"),
              _caller: Caller = Depends(require("lookup"))):
        from gridcover.services.lookup import parse_as_of

        workspace = get_workspace(request)
        when = parse_as_of(date)
        if when is None:
            raise InputError("date is empty", field="date")
        v, grids = workspace.grids_as_of(when)
        doc = geojson(grids)
        doc["version"] = v.as_dict()
        return _json(doc)

    @router.get("/grids/compare", summary="Compare two versions: who changes grid, grids created/merged/removed")
    def compare(request: Request, from_version: int = Query(..., alias="from"),
                to_version: int = Query(..., alias="to"), community: str | None = Query(None),
                caller: Caller = Depends(office)):
        workspace = get_workspace(request)
        ctx = redraw_context(workspace)
        out = compare_versions(workspace, from_version, to_version, community=community)
        allow_communities(caller, ctx, out["communities"])
        return _json(out)

    @router.post("/grids/versions/{version}/restore", summary="Make an earlier version current again (admin)")
    def restore(version: int, request: Request, reason: str = Query(..., min_length=1),
                caller: Caller = Depends(require("admin"))):
        workspace = get_workspace(request)
        try:
            restored = restore_version(workspace, version, author=caller.key_name or "admin", reason=reason)
        except ConflictError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return _json({"restored": version, "version": restored})

    return router


def propose_for(ctx: RedrawContext, community: str, *, band=(300, 500), keep_current: bool = False):
    """Propose grids for one community of the context and check them: (grids, check, notes)."""
    comm = ctx.community(community)
    hh = ctx.households_of({str(community)})
    x = hh.geometry.x.to_numpy() if len(hh) else []
    y = hh.geometry.y.to_numpy() if len(hh) else []
    frame = pd.DataFrame({"building_id": hh["building_id"].to_numpy(), "persons": hh["persons"].to_numpy(),
                          "x": x, "y": y})
    buildings = ctx.buildings_of({str(community)})
    if buildings is None or not len(buildings):
        raise InputError(f"community {community} has no buildings: grids are made of whole buildings",
                         field="community")
    result = propose_grids(comm, buildings, ctx.estates_of({str(community)}), frame, band=band,
                           current_grids=ctx.grids_of({str(community)}), keep_current=keep_current, roads=ctx.roads,
                           precision_m=ctx.settings.precision_m)
    grids = proposal_frame(result.grids.to_crs(4326), ctx, label="proposal")
    report = check_proposal(ctx, grids, band=band)
    out = grids.copy()
    per = {r["id"]: r for r in report["grids"]}
    out["households"] = [per[i]["households"] for i in out["id"]]
    out["persons"] = [per[i]["persons"] for i in out["id"]]
    return out, report, result.notes
