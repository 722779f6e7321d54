"""HTTP lookup (责任网格查询): ``GET /lookup`` and ``POST /lookup/batch`` for keys of role ``lookup`` and above.

Routes translate HTTP to :mod:`geo.lookup` and back. The index is built once per workspace tag (so a new
analysis or a redraw is picked up by the next request) and shared with the CLI (:func:`lookup_index`).
Answers carry the grid worker's work contact and never any household's data. See docs/lookup.md.

Example
-------
    curl -H 'X-API-Key: k-hotline' 'http://localhost:8000/lookup?lon=104.0657&lat=30.6595&crs=gcj02'
"""

from __future__ import annotations

import math

import csv
import io
import json
import os
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.app import get_workspace, require
from geo.errors import GridcoverError, InputError
from geo.lookup import BlindSpotLog, LookupIndex, build_index, lookup_addresses, lookup_points, records
from gridcover.workspace import Workspace

#: Most items one batch request may hold.
MAX_BATCH = 100_000
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
_LOGS: dict[Path, BlindSpotLog | None] = {}


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


def blind_spot_log(workspace: Workspace) -> BlindSpotLog | None:
    """The blind-spot counter next to the workspace (``None`` where its folder is not writable)."""
    key = workspace.path
    if key not in _LOGS:
        try:
            _LOGS[key] = BlindSpotLog(key.resolve().parent / BlindSpotLog.FILE)
        except Exception:  # noqa: BLE001 - a read-only workspace still answers lookups
            _LOGS[key] = None
    return _LOGS[key]


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
    log = blind_spot_log(workspace)
    if log is not None:
        log.record(columns)
    return columns


def answer_items(workspace: Workspace, items: pd.DataFrame, *, crs: str = "wgs84",
                 city: str | None = None, as_of: date | None = None) -> pd.DataFrame:
    """Answers for a batch of items with ``lon``/``lat`` or ``address`` columns, in their order."""
    n = len(items)
    if n > MAX_BATCH:
        raise InputError(f"a batch holds at most {MAX_BATCH:,} items, not {n:,}: split it", field="items")
    has_addr = items["address"].notna().to_numpy() if "address" in items else np.zeros(n, dtype=bool)
    has_lon = items["lon"].notna().to_numpy() if "lon" in items else np.zeros(n, dtype=bool)
    has_lat = items["lat"].notna().to_numpy() if "lat" in items else np.zeros(n, dtype=bool)
    is_point = has_lon | has_lat
    bad = (is_point & has_addr) | (~is_point & ~has_addr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (f"item {i}: give either lon and lat or an address ({int(bad.sum())} item(s) give "
               "neither or both)")
        raise InputError(msg, field="items")
    parts = []
    pts = np.flatnonzero(is_point)
    if len(pts):
        lon = pd.to_numeric(items["lon"].iloc[pts], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(items["lat"].iloc[pts], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            i = int(pts[np.flatnonzero(bad)[0]])
            msg = (f"item {i}: lon and lat must both be numbers (got lon={items['lon'].iloc[i]!s}, "
                   f"lat={items['lat'].iloc[i]!s}; {int(bad.sum())} such item(s))")
            raise InputError(msg, field="items")
        try:
            cols = answer(workspace, lon=lon, lat=lat, crs=crs, city=city, as_of=as_of)
        except InputError as exc:
            if exc.field == "lon/lat" and exc.message.startswith("item "):
                k = int(exc.message.split(":")[0].split()[1])
                raise InputError(f"item {int(pts[k])}:" + exc.message.split(":", 1)[1], field="items") from None
            raise
        parts.append(pd.DataFrame(cols, index=pts))
    adr = np.flatnonzero(~is_point)
    if len(adr):
        cols = answer(workspace, addresses=items["address"].iloc[adr].astype(str).tolist(), city=city, as_of=as_of)
        parts.append(pd.DataFrame(cols, index=adr))
    frame = pd.concat(parts).sort_index() if len(parts) > 1 else parts[0] if parts else pd.DataFrame()
    return frame


def _items_from_body(body: bytes, content_type: str, crs: str | None) -> tuple[pd.DataFrame, str]:
    """The items of a batch request (JSON or CSV) and their CRS."""
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8-sig", errors="strict") if body else ""
    if ctype in ("text/csv", "application/csv") or (ctype not in ("application/json", "") and not
                                                     text.lstrip().startswith("{")):
        reader = csv.reader(io.StringIO(text))
        rows = list(reader)
        if not rows:
            raise InputError("the CSV body is empty: give a header with lon,lat or address", field="body")
        header = [h.strip().lower() for h in rows[0]]
        if not ({"lon", "lat"} <= set(header) or "address" in header):
            msg = f"the CSV header must name lon,lat or address columns (got {','.join(header)})"
            raise InputError(msg, field="body")
        frame = pd.DataFrame(rows[1:], columns=header, dtype=object) if len(rows) > 1 else pd.DataFrame(
            columns=header)
        frame = frame.replace({"": None})
        return frame[[c for c in ("lon", "lat", "address") if c in frame.columns]], crs or "wgs84"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise InputError('the body must be {"crs": "wgs84", "items": [{"lon": …, "lat": …} or {"address": …}]}',
                         field="body")
    items = doc["items"]
    if len(items) > MAX_BATCH:
        raise InputError(f"a batch holds at most {MAX_BATCH:,} items, not {len(items):,}: split it", field="items")
    not_obj = [i for i, it in enumerate(items[:MAX_BATCH]) if not isinstance(it, dict)]
    if not_obj:
        raise InputError(f"item {not_obj[0]}: each item must be an object with lon/lat or address", field="items")
    frame = pd.DataFrame.from_records(items, columns=[c for c in ("lon", "lat", "address")])
    body_crs = doc.get("crs")
    return frame, str(body_crs or crs or "wgs84")


def _json_records(frame: pd.DataFrame) -> str:
    """Records as JSON text in C (pandas), keeping null for missing values and non-ASCII text as is."""
    if len(frame) == 0:
        return "[]"
    return frame.to_json(orient="records", force_ascii=False, double_precision=8)


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

    @router.post("/lookup/batch", summary="Up to 100,000 coordinates or addresses, answered in request order")
    async def post_batch(request: Request,
                         crs: str | None = Query(None, description="crs of a CSV body (JSON: its 'crs' field)"),
                         as_of: str | None = Query(None, description="date YYYY-MM-DD"),
                         _caller=Depends(require("lookup"))):
        workspace = get_workspace(request)
        when = parse_as_of(as_of)
        body = await request.body()
        try:
            items, items_crs = _items_from_body(body, request.headers.get("content-type", ""), crs)
        except UnicodeDecodeError:
            raise InputError("the body must be UTF-8 text", field="body") from None
        frame = await run_in_threadpool(answer_items, workspace, items, crs=items_crs, as_of=when)
        head = {"count": len(frame)}
        head.update(_as_of_fields(when, lookup_index(workspace, as_of=when), workspace))
        prefix = json.dumps(head, ensure_ascii=False)[:-1]
        text = prefix + ', "results": ' + _json_records(frame) + "}"
        return Response(content=text.encode("utf-8"), media_type="application/json")

    @router.get("/lookup/blind_spots", summary="Counts of lookups that fell outside every grid")
    def get_blind_spots(request: Request, _caller=Depends(require("street_office"))):
        workspace = get_workspace(request)
        log = blind_spot_log(workspace)
        if log is None:
            return JSONResponse({"total": None, "counts": [],
                                 "note": "the workspace folder is not writable: blind spots are not counted"})
        counts = log.counts()
        return JSONResponse({"total": int(counts["count"].sum()) if len(counts) else 0,
                             "counts": json.loads(_json_records(counts))})

    return router
