"""The query parameters the routes share, as FastAPI dependencies: the caller's key, paging, bbox, crs, dates.

Each parameter is declared here once, with its OpenAPI description, and read by every route that takes it
through ``Depends``. A bad value raises a typed error (:class:`~geo.errors.ParameterError`,
:class:`~geo.errors.InputError`, :class:`~geo.errors.KeyRequiredError`, :class:`~geo.errors.ForbiddenError`)
that ``api/app.py:ERROR_STATUS`` turns into the status, in one place.

The OGC parameters (``limit``, ``offset``, ``bbox``, ``bbox-crs``, ``crs``, ``datetime``) are read from the
query string by the dependency itself, so that a bad value gets gridcover's message naming it; their OpenAPI
declarations are :data:`PAGE_PARAMETERS`, :data:`BBOX_PARAMETERS`, :data:`CRS_PARAMETER` and
:data:`DATETIME_PARAMETER`, which the routes hand to ``openapi_extra``.

Example
-------
>>> @router.get("/collections/{collection_id}/items")  # doctest: +SKIP
... def items(page: Page = Depends(page_of), crs_key: str = Depends(output_crs), area=Depends(bbox_area)): ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
import datetime as dt

import shapely
from fastapi import Depends, Query, Request

from api.access import HEADER, PUBLIC, Caller, Keys
from geo.errors import ForbiddenError, InputError, KeyRequiredError, ParameterError
from gridcover.services.lookup import parse_as_of
from layers.features import parse_bbox

#: The documented URI of GCJ-02 (not an EPSG system): lon/lat degrees with the published offset.
GCJ02_URI = "urn:gridcover:def:crs:GCJ-02"
#: The output CRSs of the OGC routes (``crs``, ``bbox-crs``), by URI: their keys in :mod:`layers.features`.
CRS_URIS = {
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84": "CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326": "EPSG:4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490": "EPSG:4490",
    "http://www.opengis.net/def/crs/EPSG/0/3857": "EPSG:3857",
    GCJ02_URI: "GCJ-02",
}
_CRS_ALIASES = {"EPSG:4326": "EPSG:4326", "EPSG:4490": "EPSG:4490", "EPSG:3857": "EPSG:3857", "CRS84": "CRS84",
                "OGC:CRS84": "CRS84", "GCJ-02": "GCJ-02", "GCJ02": "GCJ-02"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_DATETIME = re.compile(r"^(\.\.|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9:]+)?)?)?"
                       r"(/(\.\.|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9:]+)?)?)?)?$")


def query_parameter(name: str, description: str, schema: dict, *, style: str | None = None,
                    explode: bool | None = None) -> dict:
    """The OpenAPI declaration of an optional query parameter."""
    doc = {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
    if style:
        doc["style"] = style
    if explode is not None:
        doc["explode"] = explode
    return doc


# ------------------------------------------------------------------ the caller's key
def get_caller(request: Request) -> Caller:
    """The caller of a request from its ``X-API-Key`` header; 401 for a key that is not configured."""
    keys: Keys = request.app.state.keys
    caller = keys.caller(request.headers.get(HEADER))
    if caller is None:
        raise KeyRequiredError(f"unknown API key in {HEADER}")
    return caller


def require(role: str):
    """A dependency that lets through callers of at least ``role`` (401 without a key, 403 with too weak a one)."""
    def check(caller: Caller = Depends(get_caller)) -> Caller:
        if not caller.at_least(role):
            error = KeyRequiredError if caller is PUBLIC else ForbiddenError
            raise error(f"this needs a key with role {role!r} or above in {HEADER}")
        return caller
    return check


# ------------------------------------------------------------------ paging
@dataclass(frozen=True)
class Page:
    """One page of features: how many (``limit``) after how many skipped (``offset``)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0


def whole_number(value: str | None, name: str, *, default: int, low: int, high: int | None = None) -> int:
    """A whole-number query parameter within ``low..high``; :class:`~geo.errors.ParameterError` naming it.

    >>> whole_number("20", "limit", default=100, low=1, high=10_000)
    20
    >>> whole_number("0", "limit", default=100, low=1, high=10_000)
    Traceback (most recent call last):
    geo.errors.ParameterError: parameter limit: 0 is out of range (1..10000)
    """
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ParameterError(name, f"{value[:100]!r} is not a whole number") from None
    if number < low or (high is not None and number > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ParameterError(name, f"{value[:100]} is out of range ({span})")
    return number


def page_of(request: Request) -> Page:
    """The dependency reading ``limit`` (1..:data:`MAX_LIMIT`) and ``offset`` (0 or more) of a request."""
    params = request.query_params
    return Page(limit=whole_number(params.get("limit"), "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
                offset=whole_number(params.get("offset"), "offset", default=0, low=0))


PAGE_PARAMETERS = [
    query_parameter("limit", f"features per page (default {DEFAULT_LIMIT})",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    style="form", explode=False),
    query_parameter("offset", "features to skip (the next/prev links carry it)",
                    {"type": "integer", "minimum": 0, "default": 0}),
]


# ------------------------------------------------------------------ coordinate systems and the bbox
def crs_key(value: str | None, name: str) -> str:
    """The output CRS a ``crs`` or ``bbox-crs`` value names (a URI of :data:`CRS_URIS` or an alias such as
    ``EPSG:4490``); CRS84 for none; :class:`~geo.errors.ParameterError` naming the parameter otherwise.

    >>> crs_key("http://www.opengis.net/def/crs/EPSG/0/4490", "crs"), crs_key(None, "crs"), crs_key("gcj02", "crs")
    ('EPSG:4490', 'CRS84', 'GCJ-02')
    """
    if value is None:
        return "CRS84"
    key = CRS_URIS.get(value.strip().strip("[]")) or _CRS_ALIASES.get(value.strip().strip("[]").upper())
    if key is None:
        raise ParameterError(name, f"unsupported coordinate system {value[:100]!r} (supported: {', '.join(CRS_URIS)})")
    return key


def uri_of(key: str) -> str:
    """The URI of an output CRS key (``Content-Crs``)."""
    return next(uri for uri, k in CRS_URIS.items() if k == key)


def output_crs(request: Request) -> str:
    """The dependency reading ``crs``: the key of the CRS to answer in (CRS84 by default)."""
    return crs_key(request.query_params.get("crs"), "crs")


def bbox_area(request: Request) -> shapely.Geometry | None:
    """The dependency reading ``bbox`` and ``bbox-crs`` of a request: the WGS-84 area to query, or ``None``.

    The one place a bbox is read (:func:`layers.features.parse_bbox` checks the numbers against the CRS);
    a ``bbox-crs`` without a ``bbox`` is refused."""
    params = request.query_params
    bbox_crs = crs_key(params.get("bbox-crs"), "bbox-crs")
    if params.get("bbox") is None:
        if params.get("bbox-crs") is not None:
            raise ParameterError("bbox-crs", "needs a bbox")
        return None
    return parse_bbox(params["bbox"], bbox_crs)


BBOX_PARAMETERS = [
    query_parameter("bbox", "minx,miny,maxx,maxy in bbox-crs (axis order of that CRS)",
                    {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                    style="form", explode=False),
    query_parameter("bbox-crs", "CRS of bbox", {"type": "string", "format": "uri", "enum": list(CRS_URIS)}),
]
CRS_PARAMETER = query_parameter("crs", "CRS of the answer", {"type": "string", "format": "uri", "enum": list(CRS_URIS)})


# ------------------------------------------------------------------ dates
def check_datetime(request: Request) -> str | None:
    """The dependency reading OGC ``datetime`` (an RFC 3339 instant or interval): checked, then ignored, as no
    collection has a time property."""
    value = request.query_params.get("datetime")
    if value is not None and not _DATETIME.match(value):
        raise ParameterError("datetime", f"{value[:100]!r} is not an RFC 3339 instant or interval")
    return value


DATETIME_PARAMETER = query_parameter("datetime", "accepted and ignored: no collection has a time property",
                                     {"type": "string"})


def as_of_date(as_of: str | None = Query(None, description="date YYYY-MM-DD")) -> dt.date | None:
    """The dependency reading ``as_of``: the date whose grids answer (``None``: the current grids)."""
    return parse_as_of(as_of)


def date_in_force(date: str = Query(..., description="YYYY-MM-DD")) -> dt.date:
    """The dependency reading the required ``date`` of ``/grids/as_of``."""
    when = parse_as_of(date)
    if when is None:
        raise InputError("date is empty", field="date")
    return when


def visit_date(date: str | None = Query(None, description="the day of the visit list, YYYY-MM-DD")) -> dt.date:
    """The dependency reading the required ``date`` of a visit list (``/grids/{grid_id}/tasks``): 400 naming
    ``date`` when it is missing or not ``YYYY-MM-DD``."""
    from gridcover.services.tasks import parse_task_date

    return parse_task_date(date)
