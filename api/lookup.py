"""HTTP lookup (责任网格查询): ``GET /lookup`` and ``POST /lookup/batch`` for keys of role ``lookup`` and above.

Routes translate HTTP to the app's :class:`gridcover.services.lookup.LookupService` and back (it builds the
index once per workspace tag, so a new analysis or a redraw is picked up by the next request).
Answers carry the grid worker's work contact and never any household's data. See docs/lookup.md.

Example
-------
    curl -H 'X-API-Key: k-hotline' 'http://localhost:8000/lookup?lon=104.0657&lat=30.6595&crs=gcj02'
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.app import get_workspace
from api.params import as_of_date, require
from geo.errors import GridcoverError, InputError
from gridcover.lookup_batch import FORMATS, json_records
from gridcover.services.lookup import LookupService

#: A batch body is kept in memory up to this size, on disk beyond (it is read twice: checked, then answered).
SPOOL_BYTES = 1 << 20
#: Header of a batch answer: how many answers it holds (one per item, in request order).
COUNT_HEADER = "X-Lookup-Count"
#: Fields of a point answer that are internal to the service (the converted coordinates are kept).
_PUBLIC_EXTRA = ("lon_wgs84", "lat_wgs84")

def get_lookup_service(request: Request) -> LookupService:
    """The app's :class:`gridcover.services.lookup.LookupService` (made once by :func:`api.app.create_app`)."""
    return request.app.state.lookup


def batch_format(f: str | None, accept: str | None) -> str:
    """The answer's format: ``f`` if given, else by the ``Accept`` header (NDJSON, CSV), else JSON."""
    if f:
        if f not in FORMATS:
            raise InputError(f"f must be one of {', '.join(FORMATS)}, not {f!r}", field="f")
        return f
    accept = (accept or "").lower()
    if "ndjson" in accept:
        return "ndjson"
    if "text/csv" in accept:
        return "csv"
    return "json"


def _closing(pieces: Iterator[str], spool) -> Iterator[str]:
    try:
        yield from pieces
    finally:
        spool.close()


_FAST_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")


def fast_get(state, scope) -> tuple[int, dict, bytes] | None:
    """The single-coordinate hot path for :class:`api.app.FastGets`: ``GET /lookup?lon=…&lat=…[&crs=…]`` by a
    caller whose key allows it, once the index is built. Anything else (an address, ``as_of``, a bad value,
    no key) goes to the route, which answers it with its checks and errors."""
    if scope["path"] != "/lookup":
        return None
    from urllib.parse import parse_qsl

    from api.access import HEADER
    from api.app import header

    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    if not {"lon", "lat"} <= set(query) <= {"lon", "lat", "crs"} or query.get("crs", "wgs84") not in _FAST_CRS:
        return None
    caller = state.keys.caller(header(scope, HEADER.lower().encode()))
    if caller is None or not caller.at_least("lookup"):
        return None
    try:
        lon, lat = float(query["lon"]), float(query["lat"])
    except ValueError:
        return None
    service = state.lookup
    if not (math.isfinite(lon) and math.isfinite(lat)) or not service.has_index():
        return None
    try:
        record = service.lookup(lon=[lon], lat=[lat], crs=query.get("crs", "wgs84"))
    except GridcoverError:
        return None  # e.g. outside lon/lat range: the route says why
    body = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return 200, {"Content-Type": "application/json"}, body


def complete_openapi(doc: dict, app) -> dict:
    """The batch body (CSV or JSON) and its three answer formats, in the OpenAPI document."""
    item = {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"},
                                             "address": {"type": "string"}}}
    op = doc["paths"]["/lookup/batch"]["post"]
    op["requestBody"] = {"required": True, "content": {
        "text/csv": {"schema": {"type": "string", "description": "a header row (lon,lat or address) and one row "
                                                                 "per point or address; UTF-8 or GB18030"}},
        "application/json": {"schema": {"type": "object", "required": ["items"], "properties": {
            "crs": {"type": "string"}, "items": {"type": "array", "items": item}}}}}}
    op["responses"]["200"] = {"description": "one answer per row or item, in request order", "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}}}}
    return doc


def build_router() -> APIRouter:
    """The lookup routes."""
    router = APIRouter(tags=["lookup"])

    @router.get("/lookup", summary="Grid and grid worker responsible for a coordinate or an address",
                description="The answer names the grid (and its code), community, street, building and estate "
                            "beside their ids, with the grid worker's name and work phone; `problem` is an "
                            "English code (outside_grids, building_not_found, address_ambiguous …) with a "
                            "Chinese `message` and `message_en` (docs/lookup.md). Never a household's data.")
    async def get_lookup(request: Request,
                   lon: float | None = Query(None, description="longitude"),
                   lat: float | None = Query(None, description="latitude"),
                   crs: str = Query("wgs84", description="wgs84, cgcs2000, gcj02 or bd09"),
                   address: str | None = Query(None, description="a Chinese address"),
                   _caller=Depends(require("lookup")), when=Depends(as_of_date)):
        service = get_lookup_service(request)
        if address is not None and (lon is not None or lat is not None):
            raise InputError("give either lon and lat or address, not both", field="address")
        if address is not None:
            if not address.strip():
                raise InputError("address is empty", field="address")
            kwargs = {"address": address, "as_of": when}
        elif lon is None or lat is None:
            raise InputError("give lon and lat (and crs), or address", field="lon/lat")
        else:
            kwargs = {"lon": [lon], "lat": [lat], "crs": crs, "as_of": when}
        if service.has_index() and address is None and when is None:
            record = service.lookup(**kwargs)  # well under a millisecond: no thread hop
        else:  # building an index (or an address index) takes seconds: not on the event loop
            record = await run_in_threadpool(lambda: service.lookup(**kwargs))
        return JSONResponse(record)

    @router.post("/lookup/batch", summary="Coordinates or addresses (CSV or JSON), answered in request order")
    async def post_batch(request: Request,
                         crs: str | None = Query(None, description="crs of a CSV body (JSON: its 'crs' field)"),
                         f: str | None = Query(None, description="answer as json (default), ndjson or csv "
                                                                 "(or by the Accept header)"),
                         _caller=Depends(require("lookup")), when=Depends(as_of_date)):
        service = get_lookup_service(request)
        fmt = batch_format(f, request.headers.get("accept"))
        ctype = request.headers.get("content-type", "")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            async for piece in request.stream():  # the body limit (api/limits.py) stops a body too large
                spool.write(piece)
            plan, pieces = await run_in_threadpool(service.run_batch, spool, content_type=ctype, crs=crs,
                                                   as_of=when, fmt=fmt)
        except BaseException:  # a BatchError is answered 400 with its rows by api/app.py, like every typed error
            spool.close()
            raise
        # checked whole before the first byte: a streamed answer is never cut by a bad item; the count lets a
        # client of NDJSON or CSV (which have no closing bracket) tell a whole answer from a broken connection
        return StreamingResponse(_closing(pieces, spool), media_type=FORMATS[fmt],
                                 headers={COUNT_HEADER: str(plan.count)})

    @router.get("/lookup/blind_spots", summary="Counts of lookups that fell outside every grid")
    def get_blind_spots(request: Request, _caller=Depends(require("street_office"))):
        workspace = get_workspace(request)
        log = workspace.blind_spots()
        if log is None:
            return JSONResponse({"total": None, "counts": [],
                                 "note": "the workspace folder is not writable: blind spots are not counted"})
        counts = log.counts()
        return JSONResponse({"total": int(counts["count"].sum()) if len(counts) else 0,
                             "counts": json.loads(json_records(counts))})

    return router
