"""The case API (事件): ``POST /cases``, ``POST /cases/{id}/accept`` and ``/close``, ``GET /cases`` and
``GET /cases/{id}``.

Routes translate HTTP to the app's :class:`gridcover.services.cases.CasesService` and back; every refusal is a
typed error with an English ``problem`` code and a Chinese ``message`` (``api/app.py:ERROR_DETAILS``). Who may
do what (api/access.py): ``case_intake`` and above post cases; grid workers, street offices and admins accept
and close them; what a key sees is scoped (its streets, its grids, what it took in itself). See docs/cases.md.

Example
-------
    curl -H 'X-API-Key: k-hotline' -H 'Content-Type: application/json' http://localhost:8000/cases \\
         -d '{"id": "12345-0001", "reported_at": "2026-11-30 09:00", "urgency": "urgent",
              "lon": 104.0657, "lat": 30.6595, "crs": "gcj02"}'
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.access import HEADER, PUBLIC, Caller
from api.params import get_caller, page_of
from geo.errors import ForbiddenError, KeyRequiredError, ParameterError
from gridcover.services.cases import CasesService, CaseViewer, read_intake
from gridcover.store.base import CaseError


class CaseKeyRequiredError(CaseError, KeyRequiredError):
    """The case API needs a key."""


class CaseForbiddenError(CaseError, ForbiddenError):
    """The caller's key may not do this with cases."""


def get_cases_service(request: Request) -> CasesService:
    """The app's :class:`gridcover.services.cases.CasesService` (made once by :func:`api.app.create_app`)."""
    return request.app.state.cases


def viewer_of(caller: Caller) -> CaseViewer:
    """What a caller sees of the cases: an admin every case, a street office its streets', a grid worker its
    grids', every key the cases it took in itself; household points only in the streets it may see."""
    name = caller.key_name or caller.role
    if caller.role == "admin":
        return CaseViewer(name=name, every_case=True, sees_streets=None)
    if caller.role == "street_office":
        return CaseViewer(name=name, streets=caller.streets, sees_streets=caller.streets)
    if caller.role == "grid_worker":
        return CaseViewer(name=name, grids=caller.grids)
    return CaseViewer(name=name)


def case_role(role: str, what: str):
    """A dependency letting through callers of at least ``role`` (401/403 with a ``problem`` code otherwise)."""
    def check(caller: Caller = Depends(get_caller)) -> Caller:
        if caller is PUBLIC:
            raise CaseKeyRequiredError("key_required", f"{what} needs a key with role {role!r} or above in {HEADER}",
                                       f"需要在 {HEADER} 中提供角色为 {role} 或更高的密钥")
        if not caller.at_least(role):
            raise CaseForbiddenError("role_not_allowed", f"{what} needs a key with role {role!r} or above "
                                     f"(this key is {caller.role!r})", f"此密钥（{caller.role}）无权{_ZH[what]}")
        return caller
    return check


_ZH = {"taking in cases": "上报事件", "reading cases": "查看事件", "accepting or closing cases": "受理或办结事件"}


def _page(request: Request):
    try:
        return page_of(request)
    except ParameterError as exc:
        raise CaseError("invalid_parameter", str(exc), f"参数 {exc.parameter} 无效") from None


def _flag(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise CaseError("invalid_parameter", f"parameter {name}: {value[:40]!r} is not true or false",
                    f"参数 {name} 应为 true 或 false")


async def _body_at(request: Request, at: str | None) -> str | None:
    """``at`` from the query or from a JSON body ``{"at": "…"}`` (the query wins)."""
    if at is not None:
        return at
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CaseError("invalid_body", "the body is not JSON (give {\"at\": \"2026-11-30T09:10:00+08:00\"} or "
                        "nothing)", "请求体应为 JSON，如 {\"at\": \"2026-11-30T09:10:00+08:00\"}，或为空") from None
    if not isinstance(doc, dict):
        raise CaseError("invalid_body", "the body must be a JSON object", "请求体应为 JSON 对象")
    return doc.get("at")


def _intake(service: CasesService, body: bytes, content_type: str | None, crs: str | None, viewer: CaseViewer) -> dict:
    """One plain JSON case by the service's hot path (:meth:`CasesService.intake_one`), anything else, or what
    the hot path leaves, by :meth:`CasesService.intake`."""
    if crs is None and (content_type or "").startswith("application/json") and body.lstrip()[:1] == b"{":
        try:
            item = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            item = None
        answer = service.intake_one(item, viewer=viewer) if isinstance(item, dict) else None
        if answer is not None:
            return answer
    return service.intake(read_intake(body, content_type=content_type, crs=crs), viewer=viewer)


def complete_openapi(doc: dict, app) -> dict:
    """The intake body (one case, a list, or CSV) in the OpenAPI document."""
    case = {"type": "object", "required": ["id", "reported_at", "urgency"], "properties": {
        "id": {"type": "string"}, "reported_at": {"type": "string", "description": "ISO 8601; no offset: local"},
        "urgency": {"type": "string", "enum": ["general", "urgent", "cross_department"]},
        "lon": {"type": "number"}, "lat": {"type": "number"},
        "crs": {"type": "string", "enum": ["wgs84", "cgcs2000", "gcj02", "bd09"]},
        "address": {"type": "string"}, "household_id": {"type": "string"}, "category": {"type": "string"},
        "source": {"type": "string"}, "accepted_at": {"type": "string"}, "closed_at": {"type": "string"}}}
    op = doc["paths"]["/cases"]["post"]
    op["requestBody"] = {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [case, {"type": "array", "items": case}]}},
        "text/csv": {"schema": {"type": "string", "description": "a header row of the fields above, one case a row"}}}}
    for path in ("/cases/{case_id}/accept", "/cases/{case_id}/close"):
        doc["paths"][path]["post"]["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"type": "object", "properties": {"at": {"type": "string"}}}}}}
    return doc


def build_router() -> APIRouter:
    """The case routes."""
    router = APIRouter(tags=["cases"])

    @router.post("/cases", summary="Take in one case or a batch (JSON object, JSON array or CSV), all or nothing")
    async def post_cases(request: Request,
                         crs: str | None = Query(None, description="crs of points that name none (default wgs84)"),
                         caller: Caller = Depends(case_role("case_intake", "taking in cases"))):
        service = get_cases_service(request)
        body = await request.body()  # the body limit (api/limits.py) stops a body too large
        answer = await run_in_threadpool(_intake, service, body, request.headers.get("content-type"), crs,
                                         viewer_of(caller))
        return JSONResponse(answer, status_code=201 if answer["stored"] else 200)

    @router.get("/cases", summary="The cases this key may see: ?status=open&overdue=true&grid=…&community=…&street=…")
    async def get_cases(request: Request,
                        status: str | None = Query(None, description="open, accepted or closed (several with commas)"),
                        overdue: str | None = Query(None, description="true: open past a deadline; false: not"),
                        grid: str | None = Query(None, description="grid id(s), with commas"),
                        community: str | None = Query(None, description="community id(s), with commas"),
                        street: str | None = Query(None, description="street id(s), with commas"),
                        as_of: str | None = Query(None, description="judge at this date (its end) or date-time"),
                        caller: Caller = Depends(case_role("case_intake", "reading cases")), page=Depends(_page)):
        service = get_cases_service(request)
        answer = await run_in_threadpool(
            lambda: service.list_cases(viewer=viewer_of(caller), status=status, overdue=_flag(overdue, "overdue"),
                                       grid=grid, community=community, street=street, limit=page.limit,
                                       offset=page.offset, as_of=as_of))
        return JSONResponse(answer)

    @router.get("/cases/{case_id}", summary="One case, judged now (or at as_of)")
    def get_case(case_id: str, request: Request,
                 as_of: str | None = Query(None, description="judge at this date (its end) or date-time"),
                 caller: Caller = Depends(case_role("case_intake", "reading cases"))):
        return JSONResponse(get_cases_service(request).get(case_id, viewer=viewer_of(caller), as_of=as_of))

    @router.post("/cases/{case_id}/accept", summary="Record that the caller accepted (受理) the case, now or at 'at'")
    async def accept(case_id: str, request: Request, at: str | None = Query(None, description="ISO 8601 time"),
                     caller: Caller = Depends(case_role("grid_worker", "accepting or closing cases"))):
        when = await _body_at(request, at)
        return JSONResponse(await run_in_threadpool(get_cases_service(request).accept, case_id,
                                                    viewer=viewer_of(caller), at=when))

    @router.post("/cases/{case_id}/close", summary="Record that the caller closed (办结) the case, now or at 'at'")
    async def close(case_id: str, request: Request, at: str | None = Query(None, description="ISO 8601 time"),
                    caller: Caller = Depends(case_role("grid_worker", "accepting or closing cases"))):
        when = await _body_at(request, at)
        return JSONResponse(await run_in_threadpool(get_cases_service(request).close, case_id,
                                                    viewer=viewer_of(caller), at=when))

    return router
