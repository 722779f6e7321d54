"""Lookup batches (批量查询): a CSV or JSON of coordinates and addresses, read streaming, every bad row named.

Both doors — ``POST /lookup/batch`` and ``gridcover lookup --batch FILE.csv`` — go through here, in two
passes over a seekable binary stream (the server's spooled body, the CLI's file), so that a bad batch is
refused whole with all its problems and a good one is answered with memory bounded by a chunk, not the batch:

1. :func:`check_batch` reads it :data:`CHUNK_ROWS` rows at a time and checks every row; it returns a
   :class:`BatchPlan` (how many items, of which kinds, the CRS a JSON body names) or raises
   :class:`BatchError` with the first :data:`MAX_ROW_ERRORS` problems and how many there are in all;
2. :func:`answer_batch` reads it again, answers each chunk with the vectorised lookups of :mod:`geo.lookup`
   and yields frames in request order; :func:`write_answers` turns them into JSON, NDJSON or CSV text.

Row numbers are those a user can find: a CSV row as a spreadsheet shows it (the header is row 1, the first
data row is row 2, a quoted cell holding a line break is still one row); a JSON item by its index in
``items``, from 0. CSV text is UTF-8 (with or without BOM) or GB18030, detected as :mod:`gridcover.io.textio` does;
JSON is UTF-8.

Example
-------
>>> with open("calls.csv", "rb") as f:
...     plan = check_batch(f)                       # BatchError naming every bad row
...     pieces = write_answers(answer_batch(index, f, plan), plan, head={"count": plan.count})
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import itemgetter, methodcaller
from typing import BinaryIO

import numpy as np
import pandas as pd

from geo.errors import InputError
from geo.lookup import ADDRESS_FIELDS, ANSWER_FIELDS, LookupIndex, lookup_addresses, lookup_points, valid_lonlat
from gridcover.io.textio import ALIASES, UNDECODABLE, EncodingError, detect_encoding, open_text

#: Rows handed to the lookups at a time (memory is bounded by a chunk, not by the batch).
CHUNK_ROWS = 10_000
#: Problems listed in a refusal; beyond it they are only counted.
MAX_ROW_ERRORS = 100
#: Longest lon/lat cell read as a number (more digits say nothing about a place).
MAX_NUMBER_CHARS = 40
#: Longest address.
MAX_ADDRESS_CHARS = 1_000
#: Longest single JSON value (an item, the crs) in a JSON body.
MAX_JSON_VALUE_CHARS = 1 << 16
#: Output formats of :func:`write_answers` and their media types.
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
COLUMNS = ("lon", "lat", "address")
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")
_JSON_TYPES = ("application/json",)
_READ_CHARS = 1 << 16
_WS = re.compile(r"[ \t\n\r]*")
_UNDECODABLE = re.compile(UNDECODABLE)  # in messages, shown as U+FFFD


# ------------------------------------------------------------------ errors and the plan
@dataclass(frozen=True)
class RowError:
    """One problem of a batch: the row (CSV, header = 1) or item (JSON, from 0), the field, what is wrong."""

    row: int | None
    field: str | None
    message: str
    unit: str = "row"

    def __str__(self) -> str:
        where = f"{self.unit} {self.row}" if self.row is not None else ""
        if self.field:
            where += f"{', ' if where else ''}field {self.field!r}"
        return f"{where}: {self.message}" if where else self.message

    def as_json(self) -> dict:
        return {self.unit: self.row, "field": self.field, "message": self.message}


class BatchError(InputError):
    """A batch refused whole: its first :data:`MAX_ROW_ERRORS` problems, and how many there are in all."""

    def __init__(self, errors: list[RowError], *, total: int | None = None, file: str | None = None) -> None:
        self.errors = list(errors)
        self.total = len(self.errors) if total is None else total
        unit = self.errors[0].unit if self.errors else "row"
        rows = "rows as a spreadsheet shows them, the header is row 1" if unit == "row" else "items count from 0"
        listed = "; ".join(str(e) for e in self.errors)
        if self.total == 1 and self.errors:
            message = f"{listed} ({rows})" if self.errors[0].row is not None else listed
        else:
            more = f"; and {self.total - len(self.errors):,} more" if self.total > len(self.errors) else ""
            message = f"{self.total:,} problems ({rows}): {listed}{more}"
        super().__init__(message, file=file)

    def as_json(self) -> dict:
        """The refusal as the HTTP answer's extra fields."""
        return {"errors": [e.as_json() for e in self.errors], "error_count": self.total}


class _Fatal(Exception):
    """A problem after which the rest of the body cannot be read (an open quote, broken JSON)."""

    def __init__(self, row: int | None, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.row, self.message, self.field = row, message, field


@dataclass
class BatchPlan:
    """What :func:`check_batch` found in a good batch; :func:`answer_batch` reads the batch again with it."""

    kind: str
    encoding: str
    count: int = 0
    points: int = 0
    addresses: int = 0
    crs: str | None = None
    columns: tuple[str, ...] = field(default=ANSWER_FIELDS)


@dataclass
class ItemChunk:
    """Checked items of one chunk: their row numbers, lon/lat (NaN for addresses) and addresses (None)."""

    rows: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    address: np.ndarray
    is_point: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


# ------------------------------------------------------------------ reading
def batch_kind(content_type: str | None, stream: BinaryIO) -> str:
    """``"json"`` or ``"csv"``: by the media type, else by the stream's first character (``{`` is JSON)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _JSON_TYPES or ctype.endswith("+json"):
        return "json"
    if ctype in _CSV_TYPES:
        return "csv"
    start = stream.tell()
    stream.seek(0)
    head = stream.read(64)
    stream.seek(start)
    return "json" if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{") else "csv"


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` of a media type, as a codec :mod:`gridcover.io.textio` knows (``InputError`` for another)."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            value = value.strip().strip('"').lower()
            if value not in ALIASES:
                raise InputError(f"charset {value!r}: give UTF-8 or GB18030 text", field="Content-Type")
            return ALIASES[value]
    return None


def _shown(value) -> str:
    """A cell's value as a message shows it (long text cut, its length said)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 30 else f"{value[:20]!r}… ({len(value):,} characters)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {list: "a list", dict: "an object"}.get(type(value), repr(value))


def _csv_chunks(text, *, chunk_rows: int, errors: list) -> Iterator[tuple[np.ndarray, dict[str, list]]]:
    """Raw cells of a CSV, chunk by chunk: row numbers and the lon/lat/address cells of well-formed rows.
    Rows that are not (too few or too many cells, a stray quote, an empty row between others) go to
    ``errors``; a quote left open stops the reading (:class:`_Fatal`)."""
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _Fatal(1, _csv_message(str(exc))) from None
    if header is None:
        raise _Fatal(None, "the CSV is empty: give a header with lon,lat or address columns")
    names = [str(h).strip().lower() for h in header]
    where = {}
    for i, name in enumerate(names):
        if name in COLUMNS:
            if name in where:
                raise _Fatal(1, f"the header names {name!r} twice (columns {where[name] + 1} and {i + 1}): "
                                "which one is meant?")
            where[name] = i
    if ("lon" in where) != ("lat" in where):
        have, lack = ("lon", "lat") if "lon" in where else ("lat", "lon")
        raise _Fatal(1, f"the header has a {have} column but no {lack} column")
    if not ({"lon", "lat"} <= set(where) or "address" in where):
        raise _Fatal(1, f"the header must name lon,lat or address columns (got {','.join(names)})")
    width = len(names)
    described = f"{width} ({','.join(names)})" if width <= 6 else f"{width}"
    last = 1  # row number of the last record read (the header)
    pending_blank: list[int] = []
    eof = False
    while not eof:
        rows: list = []
        broken: dict[int, str] = {}
        fatal = None
        while len(rows) < chunk_rows:
            want = chunk_rows - len(rows)
            before = len(rows)
            try:
                rows.extend(islice(reader, want))
            except csv.Error as exc:
                message = str(exc)
                if _csv_fatal(message):
                    fatal = _Fatal(last + 1 + len(rows), _csv_message(message))
                    eof = True
                    break
                broken[len(rows)] = _csv_message(message)
                rows.append([])
                continue
            if len(rows) - before < want:
                eof = True
                break
        n = len(rows)
        numbers = np.arange(last + 1, last + 1 + n, dtype=np.int64)
        last += n
        lens = np.fromiter(map(len, rows), dtype=np.int64, count=n)
        is_broken = np.zeros(n, dtype=bool)
        is_broken[list(broken)] = True
        blank = ~np.fromiter(map(any, rows), dtype=bool, count=n) & ~is_broken
        wrong = (lens != width) & ~blank & ~is_broken
        used = np.flatnonzero(~blank)
        if len(used):  # empty rows before a used one are errors; trailing empty rows are not rows
            stray = pending_blank + numbers[np.flatnonzero(blank[:used[-1]])].tolist()
            errors.extend((r, 0, None, "the row is empty (delete it: every row is answered in order)")
                          for r in stray)
            pending_blank = numbers[np.flatnonzero(blank[used[-1]:]) + used[-1]].tolist()
        else:
            pending_blank += numbers[blank].tolist()
        errors.extend((int(numbers[i]), 0, None, msg) for i, msg in broken.items())
        for i in np.flatnonzero(wrong):
            word = "cell" if lens[i] == 1 else "cells"
            errors.append((int(numbers[i]), 0, None, f"{lens[i]} {word}, but the header has {described}"))
        good = np.flatnonzero(~blank & ~wrong & ~is_broken)
        cells: dict[str, list] = {}
        if len(good):
            good_rows = [rows[i] for i in good] if len(good) < n else rows
            for name, i in where.items():
                cells[name] = list(map(itemgetter(i), good_rows))
        yield numbers[good], cells
        if fatal is not None:
            raise fatal


def _csv_fatal(message: str) -> bool:
    return message.startswith("unexpected end of data") or message.startswith("field larger than field limit")


def _csv_message(message: str) -> str:
    if message.startswith("unexpected end of data"):
        return ('a quote (") opened in this row is never closed: every line after it would be one cell '
                '(close it, or double a quote that is part of the text: "")')
    if message.startswith("field larger than field limit"):
        return (f"a cell longer than {csv.field_size_limit():,} characters: is a quote (\") left open in this "
                "row?")
    if "expected after" in message:
        return ('text after the closing quote (") of a cell: quote the whole cell, and double a quote that is '
                'part of the text ("")')
    return f"not valid CSV: {message}"


class _JsonItems:
    """The items of a JSON body ``{"crs": …, "items": [...]}``, one at a time.

    The envelope is walked here; each value (an item, the crs) is decoded by :mod:`json`'s C scanner, at most
    :data:`MAX_JSON_VALUE_CHARS` long, with numbers kept as their text (so a 5,000-digit number is never
    turned into an int) and nesting bounded (a body nested 50,000 deep is an error, not a crash).
    """

    def __init__(self, text) -> None:
        self.text = text
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.crs: str | None = None
        self.decoder = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=str)

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.text.read(_READ_CHARS)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def _char(self) -> str:
        """The next character after white space ("" at the end)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def _value(self, row: int | None, what: str = ""):
        """The JSON value at the position (``what`` names it in errors: an item has its row)."""
        where = f"{what}: " if what else ""
        self._char()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_JSON_VALUE_CHARS:
                    raise _Fatal(row, f"{where}not valid JSON ({exc.msg}) or longer than "
                                      f"{MAX_JSON_VALUE_CHARS:,} characters") from None
                if self._fill():
                    continue
                raise _Fatal(row, f"{where}not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise _Fatal(row, f"{where}nested too deeply (lists or objects more than "
                                  f"{sys.getrecursionlimit():,} levels deep)") from None
            if end == len(self.buf) and self._fill():
                continue  # a number may go on in the next block
            self.pos = end
            return value

    def _expect(self, chars: str, row: int | None, after: str) -> str:
        c = self._char()
        if not c or c not in chars:
            got = "the end of the body" if not c else repr(c)
            raise _Fatal(row, f"not valid JSON: expected {' or '.join(chars)} after {after}, got {got}")
        self.pos += 1
        return c

    def __iter__(self) -> Iterator:
        shape = 'the body must be a JSON object {"crs": "wgs84", "items": [{"lon": …, "lat": …} or {"address": …}]}'
        if self._char() != "{":
            raise _Fatal(None, shape, field="body")
        self.pos += 1
        keys: set[str] = set()
        if self._char() == "}":
            self.pos += 1
        else:
            while True:
                if self._char() != '"':
                    raise _Fatal(None, "not valid JSON: expected a key in double quotes", field="body")
                key = self._value(None, "a key")
                if key in keys:
                    raise _Fatal(None, f"the body gives {key!r} twice", field=key)
                keys.add(key)
                self._expect(":", None, f"the key {key!r}")
                if key == "items":
                    if self._char() != "[":
                        raise _Fatal(None, "items must be a list of {lon, lat} or {address} objects", field="items")
                    self.pos += 1
                    yield from self._items()
                else:
                    value = self._value(None, f"the value of {key!r}")
                    if key == "crs":
                        if value is not None and not isinstance(value, str):
                            raise _Fatal(None, "crs must be text, e.g. \"gcj02\"", field="crs")
                        self.crs = value
                if self._expect(",}", None, f"the value of {key!r}") == "}":
                    break
        if self._char():
            raise _Fatal(None, "not valid JSON: text after the end of the body's object", field="body")
        if "items" not in keys:
            raise _Fatal(None, shape, field="body")

    def _items(self) -> Iterator:
        if self._char() == "]":
            self.pos += 1
            return
        i = 0
        while True:
            yield self._value(i)
            if self._expect(",]", i, "the item") == "]":
                return
            i += 1


def _json_chunks(items: Iterator, *, chunk_rows: int, errors: list) -> Iterator[tuple[np.ndarray, dict[str, list]]]:
    """Raw values of a JSON body's items, chunk by chunk; items that are not objects go to ``errors``."""
    first = 0
    eof = False
    while not eof:
        chunk: list = []
        fatal = None
        try:
            chunk.extend(islice(items, chunk_rows))
        except _Fatal as exc:
            fatal = exc
        eof = fatal is not None or len(chunk) < chunk_rows
        n = len(chunk)
        numbers = np.arange(first, first + n, dtype=np.int64)
        first += n
        is_obj = np.fromiter(map(isinstance, chunk, repeat(dict)), dtype=bool, count=n)
        for i in np.flatnonzero(~is_obj):
            errors.append((int(numbers[i]), 0, None,
                           f"each item must be an object with lon and lat or an address, not {_shown(chunk[i])}"))
        objects = [chunk[i] for i in np.flatnonzero(is_obj)] if not is_obj.all() else chunk
        cells = {name: list(map(methodcaller("get", name), objects)) for name in COLUMNS}
        yield numbers[is_obj], cells
        if fatal is not None:
            raise fatal


# ------------------------------------------------------------------ checking
_EMPTY, _NUMBER, _NOT_NUMBER, _INFINITE = range(4)


def _cell(value) -> tuple[int, float]:
    """What a lon/lat cell holds: empty, a finite number, not a number, or a number that is not finite."""
    if value is None:
        return _EMPTY, math.nan
    if type(value) is not str:
        return _NOT_NUMBER, math.nan
    text = value.strip()
    if not text:
        return _EMPTY, math.nan
    if len(text) > MAX_NUMBER_CHARS:
        return _NOT_NUMBER, math.nan
    try:
        number = float(text)
    except ValueError:
        return _NOT_NUMBER, math.nan
    return (_NUMBER, number) if math.isfinite(number) else (_INFINITE, math.nan)


def _numbers(values: list | None, rows: np.ndarray, name: str, errors: list) -> tuple[np.ndarray, np.ndarray]:
    """Cells as float (NaN where empty) and where one is given; a cell that is not a finite number is an error."""
    n = len(rows)
    if values is None:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    try:  # the common case, in C: every cell a short number
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        if n and lengths.min() > 0 and lengths.max() <= MAX_NUMBER_CHARS:
            number = np.fromiter(map(float, values), dtype=float, count=n)
            if np.isfinite(number).all():
                return number, np.ones(n, dtype=bool)
    except (TypeError, ValueError):
        pass
    kinds, number = (np.array(v) for v in zip(*map(_cell, values))) if n else (np.zeros(0, int), np.zeros(0))
    for i in np.flatnonzero((kinds == _NOT_NUMBER) | (kinds == _INFINITE)):
        what = "not a finite number" if kinds[i] == _INFINITE else "not a number"
        errors.append((int(rows[i]), 1 if name == "lon" else 2, name, f"{what}: {_shown(values[i])}"))
    return number.astype(float), kinds != _EMPTY


def _check(rows: np.ndarray, cells: dict[str, list], errors: list) -> ItemChunk:
    """The rules every item follows (one vectorised pass per chunk); problems go to ``errors``."""
    n = len(rows)
    lon, has_lon = _numbers(cells.get("lon"), rows, "lon", errors)
    lat, has_lat = _numbers(cells.get("lat"), rows, "lat", errors)
    if cells.get("address") is None:
        address = pd.Series(np.full(n, None, dtype=object))
        is_text = has_addr = np.zeros(n, dtype=bool)
        text = address
    else:
        address = pd.Series(cells["address"], dtype=object)
        is_text = address.map(type).eq(str).to_numpy()
        text = address.where(is_text).str.strip()
        has_addr = ~address.isna().to_numpy() & ~(is_text & text.eq("").to_numpy())
    is_point = has_lon | has_lat
    checks = [
        (is_point & has_addr, None, lambda i: "give either lon and lat or an address, not both"),
        (~is_point & ~has_addr, None, lambda i: "gives neither lon and lat nor an address"),
        (has_lon & ~has_lat & ~has_addr, "lat", lambda i: "lon without lat"),
        (has_lat & ~has_lon & ~has_addr, "lon", lambda i: "lat without lon"),
        (has_addr & ~is_text, "address", lambda i: f"must be text, not {_shown(address.iloc[i])}"),
    ]
    if has_addr.any():
        length = text.str.len().to_numpy(dtype=float)
        checks.append((has_addr & is_text & (length > MAX_ADDRESS_CHARS), "address",
                       lambda i: f"longer than {MAX_ADDRESS_CHARS:,} characters ({int(length[i]):,})"))
        checks.append((has_addr & is_text & text.str.contains(UNDECODABLE, regex=True, na=False).to_numpy(),
                       "address", lambda i: "holds bytes that are not UTF-8 or GB18030 text"))
    finite = np.isfinite(lon) & np.isfinite(lat)
    swapped = valid_lonlat(lat, lon)
    checks.append((finite & ~valid_lonlat(lon, lat), "lon/lat", lambda i: "must be -180 ≤ lon ≤ 180 and "
                   f"-90 ≤ lat ≤ 90 (got {float(lon[i])!r}, {float(lat[i])!r})"
                   + ("; lat and lon look swapped: give lon (east) first" if swapped[i] else "")))
    for mask, name, message in checks:
        for i in np.flatnonzero(mask):
            errors.append((int(rows[i]), 3, name, message(i)))
    addr = np.full(n, None, dtype=object)
    addr[has_addr & is_text] = text.to_numpy(dtype=object)[has_addr & is_text]
    return ItemChunk(rows=rows, lon=lon, lat=lat, address=addr, is_point=is_point)


def _chunks(stream: BinaryIO, plan: BatchPlan, *, chunk_rows: int, errors: list) -> Iterator[ItemChunk]:
    """Checked chunks of the batch (from the stream's start); problems go to ``errors``."""
    stream.seek(0)
    text = open_text(stream, plan.encoding)
    try:
        if plan.kind == "csv":
            raw = _csv_chunks(text, chunk_rows=chunk_rows, errors=errors)
        else:
            items = _JsonItems(text)
            raw = _json_chunks(iter(items), chunk_rows=chunk_rows, errors=errors)
        try:
            for rows, cells in raw:
                yield _check(rows, cells, errors)
        except _Fatal as exc:
            errors.append((exc.row, 0, exc.field, exc.message))
        if plan.kind == "json":
            plan.crs = items.crs
    finally:
        text.detach()


def check_batch(stream: BinaryIO, *, kind: str | None = None, content_type: str | None = None,
                encoding: str | None = None, chunk_rows: int | None = None,
                max_errors: int | None = None, file: str | None = None) -> BatchPlan:
    """Read a whole batch once and check every row; the plan of a good batch, else :class:`BatchError`.

    Parameters
    ----------
    stream
        Seekable binary stream of the batch (read from its start).
    kind
        ``"csv"`` or ``"json"``; from ``content_type`` and the first character when ``None``.
    encoding
        Of a CSV (a codec of :data:`gridcover.io.textio.ENCODINGS`); detected when ``None``. JSON is UTF-8.
    chunk_rows
        Rows read at a time (:data:`CHUNK_ROWS` by default).
    max_errors
        Problems listed in the error, :data:`MAX_ROW_ERRORS` by default (all are counted).
    file
        Named in the error (the CLI's file).
    """
    kind = kind or batch_kind(content_type, stream)
    chunk_rows = chunk_rows or CHUNK_ROWS
    max_errors = MAX_ROW_ERRORS if max_errors is None else max_errors
    unit = "row" if kind == "csv" else "item"
    if kind == "json":
        encoding = "utf-8-sig"
    elif encoding is None:
        try:
            stream.seek(0)
            encoding = detect_encoding(stream)
        except EncodingError as exc:
            raise InputError(str(exc), file=file, field=None if file else "body") from None
    plan = BatchPlan(kind=kind, encoding=encoding)
    problems: list = []
    kept: list = []
    total = 0

    def keep() -> None:  # the first max_errors problems by row, and how many in all
        nonlocal total, kept
        if problems:
            total += len(problems)
            kept = sorted(kept + problems, key=_order)[:max_errors]
            problems.clear()

    for chunk in _chunks(stream, plan, chunk_rows=chunk_rows, errors=problems):
        plan.count += len(chunk)
        plan.points += int(chunk.is_point.sum())
        keep()
    keep()
    if total:
        errors = [RowError(row, name, _UNDECODABLE.sub("\ufffd", message), unit) for row, _, name, message in kept]
        raise BatchError(errors, total=total, file=file)
    plan.addresses = plan.count - plan.points
    plan.columns = answer_columns(points=plan.points > 0, addresses=plan.addresses > 0)
    return plan


def _order(problem: tuple) -> tuple:
    row, rank, _, _ = problem
    return (-1 if row is None else row, rank)


def answer_columns(*, points: bool, addresses: bool) -> tuple[str, ...]:
    """The fields of every answer of a batch: :data:`geo.lookup.ANSWER_FIELDS`, then the converted
    coordinates if it holds points, then :data:`geo.lookup.ADDRESS_FIELDS` if it holds addresses."""
    return ANSWER_FIELDS + (("lon_wgs84", "lat_wgs84") if points else ()) + (ADDRESS_FIELDS if addresses else ())


# ------------------------------------------------------------------ answering
def answer_batch(index: LookupIndex, stream: BinaryIO, plan: BatchPlan, *, crs: str = "wgs84",
                 record: Callable[[dict], object] | None = None,
                 chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """Answers of a checked batch (:func:`check_batch`), one frame of :attr:`BatchPlan.columns` per chunk, in
    request order. ``crs`` is the batch's CRS (a JSON body's own ``crs`` wins); ``record`` gets the point
    answers of each chunk (the blind-spot counter)."""
    crs = plan.crs or crs
    errors: list = []
    for chunk in _chunks(stream, plan, chunk_rows=chunk_rows or CHUNK_ROWS, errors=errors):
        if errors:  # the stream changed since it was checked
            unit = "row" if plan.kind == "csv" else "item"
            raise BatchError([RowError(r, name, _UNDECODABLE.sub("\ufffd", m), unit)
                              for r, _, name, m in sorted(errors, key=_order)[:MAX_ROW_ERRORS]])
        yield answer_chunk(index, chunk, columns=plan.columns, crs=crs, record=record)


def answer_chunk(index: LookupIndex, chunk: ItemChunk, *, columns: tuple[str, ...], crs: str = "wgs84",
                 record: Callable[[dict], object] | None = None) -> pd.DataFrame:
    """The answers of one chunk of checked items, as a frame of ``columns`` in the chunk's order."""
    n = len(chunk)
    parts = []
    pts = np.flatnonzero(chunk.is_point)
    if len(pts):
        cols = lookup_points(index, chunk.lon[pts], chunk.lat[pts], crs=crs)
        if record is not None:
            record(cols)
        parts.append((pts, cols))
    adr = np.flatnonzero(~chunk.is_point)
    if len(adr):
        parts.append((adr, lookup_addresses(index, chunk.address[adr].tolist())))
    out = {}
    for name in columns:
        given = [(pos, cols[name]) for pos, cols in parts if name in cols]
        numeric = given and all(np.asarray(v).dtype.kind == "f" for _, v in given)
        values = np.full(n, np.nan) if numeric else np.full(n, None, dtype=object)
        for pos, v in given:
            values[pos] = v
        out[name] = values
    return pd.DataFrame(out, columns=list(columns))


# ------------------------------------------------------------------ writing
def json_records(frame: pd.DataFrame) -> str:
    """Records as JSON text in C (pandas), keeping null for missing values and non-ASCII text as is."""
    if len(frame) == 0:
        return "[]"
    return frame.to_json(orient="records", force_ascii=False, double_precision=8)


def write_answers(frames: Iterable[pd.DataFrame], plan: BatchPlan, *, fmt: str = "json",
                  head: dict | None = None) -> Iterator[str]:
    """Text pieces of the answer: ``json`` (``{**head, "results": [...]}``), ``ndjson`` (one answer a line)
    or ``csv`` (a header of :attr:`BatchPlan.columns`, one answer a row; ``candidates`` as JSON text)."""
    if fmt not in FORMATS:
        raise InputError(f"f must be one of {', '.join(FORMATS)}, not {fmt!r}", field="f")
    if fmt == "json":
        prefix = json.dumps(head or {}, ensure_ascii=False)[:-1]
        yield (prefix + ", " if len(prefix) > 1 else prefix) + '"results": ['
        first = True
        for frame in frames:
            if len(frame):
                yield ("" if first else ",") + json_records(frame)[1:-1]
                first = False
        yield "]}\n"
    elif fmt == "ndjson":
        for frame in frames:
            if len(frame):
                yield frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=8)
    else:
        yield ",".join(plan.columns) + "\n"
        for frame in frames:
            yield _csv_text(frame)


def _csv_text(frame: pd.DataFrame) -> str:
    frame = frame.copy()
    if "candidates" in frame:
        c = frame["candidates"]
        has = c.notna()
        frame.loc[has, "candidates"] = [json.dumps(v, ensure_ascii=False) for v in c[has]]
    if "covered" in frame:
        frame["covered"] = frame["covered"].map({True: "true", False: "false"})
    return frame.to_csv(index=False, header=False, lineterminator="\n")
