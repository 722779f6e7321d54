"""HTTP lookup (责任网格查询): ``GET /lookup`` and ``POST /lookup/batch`` for keys of role ``lookup`` and above.

Routes translate HTTP to :mod:`geo.lookup` and back. The index is built once per workspace tag (so a new
analysis or a redraw is picked up by the next request) and shared with the CLI (:func:`lookup_index`).
Answers carry the grid worker's work contact and never any household's data. See docs/lookup.md.

Example
-------
    curl -H 'X-API-Key: k-hotline' 'http://localhost:8000/lookup?lon=104.0657&lat=30.6595&crs=gcj02'
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.app import get_workspace, require
from geo.errors import GridcoverError, InputError
from geo.lookup import LookupIndex, build_index, lookup_addresses, lookup_points, records, to_wgs84
from gridcover.lookup_batch import (FORMATS, BatchError, BatchPlan, answer_batch, charset_of, check_batch,
                                    json_records, write_answers)
from gridcover.store import Workspace

#: A batch body is kept in memory up to this size, on disk beyond (it is read twice: checked, then answered).
SPOOL_BYTES = 1 << 20
#: Environment variable naming the city addresses are read in (e.g. 成都市); inferred from the data if unset.
CITY_ENV = "GRIDCOVER_CITY"
AS_OF_NOTE = "answered with the grids in force on {date}: version {version} of {created}"
AS_OF_BEFORE_NOTE = ("no grid version is recorded on or before {date}: answered with the first recorded, "
                     "version {version} of {created}")
#: Fields of a point answer that are internal to the service (the converted coordinates are kept).
_PUBLIC_EXTRA = ("lon_wgs84", "lat_wgs84")

_CACHE: dict[Path, tuple[str, str | None, LookupIndex]] = {}
_CACHE_LOCK = threading.Lock()
_BUILD_LOCKS: dict[Path, threading.Lock] = {}


def lookup_index(workspace: Workspace, *, city: str | None = None, as_of: date | None = None) -> LookupIndex:
    """The lookup index of a workspace's current version (built on first use per workspace tag and city), or of
    the grid version in force on ``as_of`` (the first version for a date before it)."""
    city = city or os.environ.get(CITY_ENV) or None
    key = workspace.path
    tag = workspace.tag
    if as_of is not None:
        v = workspace.version_as_of(as_of) or workspace.history()[0]
        if v.version != workspace.version:
            key = Path(f"{workspace.path}@{v.version}")
            tag = f"{tag}@{v.version}"
    hit = _CACHE.get(key)
    if hit and hit[0] == tag and hit[1] == city:
        return hit[2]
    with _CACHE_LOCK:
        lock = _BUILD_LOCKS.setdefault(key, threading.Lock())
    with lock:
        hit = _CACHE.get(key)
        if hit and hit[0] == tag and hit[1] == city:
            return hit[2]
        index = index_of(workspace, city=city, version=None if key == workspace.path else int(tag.split("@")[1]))
        _CACHE[key] = (tag, city, index)
        return index


def index_ready(workspace: Workspace, *, city: str | None = None) -> bool:
    """Is the index of the workspace's current version built already?"""
    city = city or os.environ.get(CITY_ENV) or None
    hit = _CACHE.get(workspace.path)
    return bool(hit and hit[0] == workspace.tag and hit[1] == city)


def index_of(workspace: Workspace, *, city: str | None = None, version: int | None = None) -> LookupIndex:
    """Build the lookup index of a workspace's layers (grids of the current version, or of ``version``)."""
    def optional(name: str):
        return workspace.read(name) if workspace.has(name) else None

    households = None
    if workspace.has("households"):
        frame = workspace.read("households")
        if {"address", "building_id"} <= set(frame.columns):
            households = frame[["address", "building_id"]]
    grids = workspace.read("grids") if version is None else workspace.grids_at(version)
    return build_index(grids, buildings=optional("buildings"), estates=optional("estates"),
                       communities=optional("communities"), streets=optional("streets"), households=households,
                       version=workspace.version if version is None else version, city=city)


def parse_as_of(value: str | None) -> date | None:
    """``as_of`` as a date (``InputError`` naming the parameter for anything but YYYY-MM-DD)."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"as_of must be a date YYYY-MM-DD, not {value!r}", field="as_of") from None


def _as_of_fields(as_of: date | None, index: LookupIndex, workspace: Workspace | None = None) -> dict:
    if as_of is None:
        return {}
    created = "?"
    note = AS_OF_NOTE
    if workspace is not None:
        created = workspace.grid_version(int(index.version)).created
        if workspace.version_as_of(as_of) is None:
            note = AS_OF_BEFORE_NOTE
    return {"as_of": as_of.isoformat(), "as_of_note": note.format(date=as_of.isoformat(), version=index.version,
                                                                  created=created)}


def answer(workspace: Workspace, *, lon=None, lat=None, addresses=None, crs: str = "wgs84",
           city: str | None = None, as_of: date | None = None) -> dict[str, np.ndarray]:
    """Answers for points or addresses (columns); not-covered points are counted as blind spots."""
    index = lookup_index(workspace, city=city, as_of=as_of)
    if addresses is not None:
        return lookup_addresses(index, addresses)
    columns = lookup_points(index, lon, lat, crs=crs)
    log = workspace.blind_spots()
    if log is not None:
        log.record(columns)
    return columns


def run_batch(workspace: Workspace, stream: BinaryIO, *, kind: str | None = None, content_type: str | None = None,
              crs: str | None = None, city: str | None = None, as_of: date | None = None, fmt: str = "json",
              file: str | None = None) -> tuple[BatchPlan, Iterator[str]]:
    """Check a whole batch (:class:`gridcover.lookup_batch.BatchError` naming every bad row), then the text
    pieces of its answer, computed chunk by chunk as they are taken (the CLI and the route share this)."""
    plan = check_batch(stream, kind=kind, content_type=content_type, encoding=charset_of(content_type), file=file)
    crs = plan.crs or crs or "wgs84"
    to_wgs84(np.zeros(0), np.zeros(0), crs)  # an unknown crs is refused before anything is answered
    index = lookup_index(workspace, city=city, as_of=as_of)
    log = workspace.blind_spots()
    head = {"count": plan.count, **_as_of_fields(as_of, index, workspace)}
    frames = answer_batch(index, stream, plan, crs=crs, record=None if log is None else log.record)
    return plan, write_answers(frames, plan, fmt=fmt, head=head)


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
    workspace = state.workspace
    if not (math.isfinite(lon) and math.isfinite(lat)) or not index_ready(workspace):
        return None
    try:
        record = records(answer(workspace, lon=[lon], lat=[lat], crs=query.get("crs", "wgs84")))[0]
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

    @router.get("/lookup", summary="Grid and grid worker responsible for a coordinate or an address")
    async def get_lookup(request: Request,
                   lon: float | None = Query(None, description="longitude"),
                   lat: float | None = Query(None, description="latitude"),
                   crs: str = Query("wgs84", description="wgs84, cgcs2000, gcj02 or bd09"),
                   address: str | None = Query(None, description="a Chinese address"),
                   as_of: str | None = Query(None, description="date YYYY-MM-DD"),
                   _caller=Depends(require("lookup"))):
        workspace = get_workspace(request)
        when = parse_as_of(as_of)
        if address is not None and (lon is not None or lat is not None):
            raise InputError("give either lon and lat or address, not both", field="address")
        if address is not None:
            if not address.strip():
                raise InputError("address is empty", field="address")
            kwargs = {"addresses": [address], "as_of": when}
        elif lon is None or lat is None:
            raise InputError("give lon and lat (and crs), or address", field="lon/lat")
        else:
            kwargs = {"lon": [lon], "lat": [lat], "crs": crs, "as_of": when}
        if index_ready(workspace) and address is None and when is None:
            cols = answer(workspace, **kwargs)  # well under a millisecond: no thread hop
        else:  # building an index (or an address index) takes seconds: not on the event loop
            cols = await run_in_threadpool(lambda: answer(workspace, **kwargs))
        record = records(cols)[0]
        record.update(_as_of_fields(when, lookup_index(workspace, as_of=when), workspace))
        return JSONResponse(record)

    @router.post("/lookup/batch", summary="Coordinates or addresses (CSV or JSON), answered in request order")
    async def post_batch(request: Request,
                         crs: str | None = Query(None, description="crs of a CSV body (JSON: its 'crs' field)"),
                         as_of: str | None = Query(None, description="date YYYY-MM-DD"),
                         f: str | None = Query(None, description="answer as json (default), ndjson or csv "
                                                                 "(or by the Accept header)"),
                         _caller=Depends(require("lookup"))):
        workspace = get_workspace(request)
        when = parse_as_of(as_of)
        fmt = batch_format(f, request.headers.get("accept"))
        ctype = request.headers.get("content-type", "")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            async for piece in request.stream():  # the body limit (api/limits.py) stops a body too large
                spool.write(piece)
            _, pieces = await run_in_threadpool(run_batch, workspace, spool, content_type=ctype, crs=crs,
                                                as_of=when, fmt=fmt)
        except BatchError as exc:
            spool.close()
            return JSONResponse(status_code=400, content={"code": "InvalidParameterValue",
                                                          "description": str(exc), **exc.as_json()})
        except BaseException:
            spool.close()
            raise
        return StreamingResponse(_closing(pieces, spool), media_type=FORMATS[fmt])

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
