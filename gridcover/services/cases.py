"""Cases (事件) from the hotline and other departments, as both doors take them: intake, accept, close, list.

A :class:`CasesService` holds one store and the app's :class:`gridcover.services.lookup.LookupService`. An
intake checks a whole batch first (every bad row named with its field and an English ``problem`` code; one
bad row refuses the batch and nothing is stored), then resolves each case to grid, worker, community and
street exactly as ``/lookup`` does (the same index and tie rule; GCJ-02/BD-09 points converted; an address
through the address lookup; a ``household_id`` by the household's point), computes its deadlines
(:func:`geo.cases.case_deadlines`) and stores the batch all or nothing (:meth:`gridcover.store.CaseStore.add`).
A case outside every grid goes to the nearest grid (whose worker answers for it, 首接负责) with
``covered: false`` and is counted in the blind-spot log as ``case_outside_grids``. Listing judges every case
at now or ``as_of`` with :func:`geo.cases.evaluate_cases`. See docs/cases.md.

Example
-------
>>> service = CasesService(open_workspace("out/sample"), lookup=LookupService(ws))  # doctest: +SKIP
>>> answer = service.intake(cases_table([{"id": "A1", "reported_at": "2026-03-02 09:00", "urgency": "urgent",
...                                       "lon": 104.0657, "lat": 30.6595, "crs": "gcj02"}]),
...                         viewer=CaseViewer(name="hotline"))  # doctest: +SKIP
>>> answer["cases"][0]["worker"]["name"]  # doctest: +SKIP
'王芳'
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

import numpy as np
import pandas as pd

from geo.cases import (URGENCIES, case_rules, case_time, case_times, evaluate_case, evaluate_cases,
                       normalise_urgency, urgency_of)
from geo.errors import InputError
from geo.lookup import LOOKUP_CRS, lookup_addresses, lookup_points, nearest_grids, valid_lonlat
from geo.risk import load_risk_config
from gridcover.services.lookup import LookupService
from gridcover.store import Workspace
from gridcover.store.base import (CASE_COLUMNS, CaseError, CaseFilter, case_fingerprint, case_fingerprints,
                                  case_not_found, case_records)

#: Fields a case may carry in an intake (others are ignored and named in the answer's ``ignored_fields``).
INTAKE_FIELDS = ("id", "reported_at", "urgency", "lon", "lat", "crs", "address", "household_id", "category",
                 "source", "accepted_at", "closed_at")
#: The fields of a case in an answer, in order (the names other systems rely on first).
ANSWER_FIELDS = ("id", "stored", "status", "overdue", "on_time", "urgency", "reported_at", "response_due",
                 "closure_due", "covered", "grid_id", "grid_name", "worker_name", "worker_phone", "community_id",
                 "community_name", "street_id", "street_name", "nearest_grid_id", "distance_m", "method",
                 "grid_version", "category", "source", "location", "lon", "lat", "input_crs", "address",
                 "household_id", "accepted_at", "accepted_by", "closed_at", "closed_by", "response_min",
                 "response_on_time", "closure_working_days", "closure_on_time", "received_at", "received_by")
#: The fields of a case in the answer of an intake: who must act, where, and by when (not what the sender gave).
INTAKE_ANSWER_FIELDS = tuple(f for f in ANSWER_FIELDS if f not in ("category", "source", "address", "household_id"))
#: Longest id, category or source; longest address.
MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_ADDRESS_CHARS = 64, 200, 1_000
#: Problems listed in a refusal; beyond it they are only counted.
MAX_ROW_ERRORS = 100
#: A case may be reported at most this far in the future (clocks of other systems drift).
FUTURE_SLACK = pd.Timedelta(minutes=10)
#: Rows resolved at a time.
CHUNK_ROWS = 50_000
#: The fields a single case may carry to take :meth:`CasesService.intake_one` (others: :meth:`CasesService.intake`).
_SIMPLE_FIELDS = frozenset({"id", "reported_at", "urgency", "lon", "lat", "crs", "category", "source", "accepted_at",
                            "closed_at"})
_FUTURE_SLACK = FUTURE_SLACK.to_pytimedelta()


@dataclass(frozen=True)
class CaseViewer:
    """Who asks, as the service sees it: a name (recorded as author and as the receiver of an intake) and what
    the caller may see: every case (``every_case``), those of its ``streets`` or ``grids``, and those it
    took in itself. ``sees_streets``: the streets whose household-level data it may see (``None``: all)."""

    name: str
    every_case: bool = False
    streets: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    sees_streets: frozenset[str] | None = frozenset()

    def scope(self) -> dict:
        if self.every_case:
            return {}
        return {"scope": True, "scope_streets": self.streets, "scope_grids": self.grids,
                "scope_received_by": self.name}

    def sees_street(self, street_id) -> bool:
        return self.sees_streets is None or (street_id is not None and str(street_id) in self.sees_streets)


@dataclass
class _Problems:
    """The problems of a batch being checked, each ``(row, field, problem, English, Chinese)``."""

    unit: str
    first: int
    items: list = field(default_factory=list)

    def add(self, mask: np.ndarray, column: str, problem: str, text: str, message: str) -> None:
        for i in np.flatnonzero(mask)[:MAX_ROW_ERRORS]:
            self.items.append((int(i), column, problem, text, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda p: (p[0], p[1]))
        total = len(self.items)
        shown = self.items[:MAX_ROW_ERRORS]
        rows = [{self.unit: i + self.first, "field": f, "problem": p, "message": zh, "description": en}
                for i, f, p, en, zh in shown]
        first = rows[0]
        where = f"{self.unit} {first[self.unit]}, field {first['field']!r}"
        more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
        raise CaseError(rows[0]["problem"] if total == 1 else "invalid_cases",
                        f"{where}: {first['description']}{more}; nothing was stored",
                        f"第 {first[self.unit]} {'行' if self.unit == 'row' else '项'}，字段 {first['field']}："
                        f"{first['message']}" + (f"（另有 {total - 1} 处问题）" if total > 1 else "") + "；本批未保存任何事件",
                        rows=rows, error_count=total)


@dataclass
class CaseTable:
    """An intake as read: one row per case (text or JSON values), how rows are numbered, ignored fields."""

    frame: pd.DataFrame
    unit: str = "item"
    first: int = 0
    crs: str | None = None
    ignored: tuple[str, ...] = ()


def _bad_body(text: str, message: str) -> CaseError:
    return CaseError("invalid_body", text, message)


def cases_table(items, *, crs: str | None = None) -> CaseTable:
    """A JSON intake (one object, a list of them, or ``{"crs": …, "items": [...]}``) as a :class:`CaseTable`;
    items count from 0.

    >>> cases_table([{"id": "A1", "urgency": "urgent", "colour": "red"}]).ignored
    ('colour',)
    """
    if isinstance(items, dict) and "items" in items:
        crs = items.get("crs", crs)
        items = items["items"]
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise _bad_body("give one case (a JSON object), a list of them, or a CSV with a header row",
                        "请求体应为一个事件（JSON 对象）、事件列表或带表头的 CSV")
    bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    if bad:
        raise CaseError("invalid_body", f"item {bad[0]} is not a JSON object", f"第 {bad[0]} 项不是 JSON 对象")
    frame = pd.DataFrame.from_records(items)
    return _table(frame, unit="item", first=0, crs=crs)


def csv_table(body: bytes, *, crs: str | None = None) -> CaseTable:
    """A CSV intake (UTF-8 with or without BOM, or GB18030; a header row) as a :class:`CaseTable`; rows as a
    spreadsheet shows them (the header is row 1)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _bad_body("the CSV is neither UTF-8 nor GB18030 text", "CSV 编码应为 UTF-8 或 GB18030")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _bad_body(f"the CSV cannot be read: {str(exc).strip().splitlines()[0]}", "CSV 无法读取") from None
    if not len(frame):
        raise _bad_body("the CSV has a header row but no case", "CSV 只有表头，没有事件")
    frame.columns = [str(c).strip() for c in frame.columns]
    return _table(frame, unit="row", first=2, crs=crs)


def _table(frame: pd.DataFrame, *, unit: str, first: int, crs: str | None) -> CaseTable:
    ignored = tuple(str(c) for c in frame.columns if c not in INTAKE_FIELDS)
    frame = frame[[c for c in frame.columns if c in INTAKE_FIELDS]].reset_index(drop=True)
    return CaseTable(frame=frame, unit=unit, first=first, crs=crs, ignored=ignored)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped text, ``<NA>`` where missing or empty."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    text = frame[column].astype("string").str.strip()
    return text.mask(text == "")


def parse_when(value: str | None, *, field_name: str, zone: str, end_of_day: bool = True) -> pd.Timestamp | None:
    """A time given to the case API (``at``, ``as_of``): ISO 8601 date-time (no offset: local time of ``zone``)
    or a date (its end, local time, with ``end_of_day``); ``None`` for none. ``CaseError`` naming the field.

    >>> parse_when("2026-03-02", field_name="as_of", zone="Asia/Shanghai").isoformat()
    '2026-03-02T15:59:59+00:00'
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        local = pd.Timestamp(datetime.combine(day, time(23, 59, 59) if end_of_day else time(0)))
        return local.tz_localize(zone).tz_convert("UTC")
    when = case_times(pd.Series([text]), zone=zone).iloc[0]
    if pd.isna(when):
        raise CaseError("invalid_time", f"{field_name} {text[:60]!r} is not an ISO 8601 date or date-time",
                        f"{field_name} 应为 ISO 8601 日期或时间")
    return when.floor("s")


class CasesService:
    """The case operations on one store.

    Parameters
    ----------
    store
        The workspace (GeoPackage or PostGIS): its case store and its layers.
    lookup
        The lookup service whose index resolves the cases (the app's, shared with ``/lookup``).
    rules
        The case rules (:func:`geo.cases.case_rules`); default: the packaged ``risk.toml``.
    """

    def __init__(self, store: Workspace, *, lookup: LookupService | None = None, rules=None) -> None:
        self.store = store
        self.lookup = lookup or LookupService(store)
        self.rules = rules or case_rules(load_risk_config())
        self._names: tuple[str, dict] | None = None

    # -------------------------------------------------------------- intake
    def intake(self, table: CaseTable, *, viewer: CaseViewer, now: pd.Timestamp | None = None) -> dict:
        """Check, resolve and store a batch (all or nothing); the answer of each case, in request order.

        Returns
        -------
        dict
            ``count``, ``stored`` (new), ``duplicates`` (the same case resent: unchanged), ``ignored_fields`` and
            ``cases`` (:meth:`answer` of each).

        Raises
        ------
        CaseError
            Naming every bad row (``errors``); ``CaseConflictError`` for an id stored with other content.
        """
        now = (now or pd.Timestamp.now(tz="UTC")).floor("s")
        cases = self._checked(table, now=now)
        resolved = self._resolve(cases, table)
        judged = evaluate_cases(resolved[["id", "reported_at", "urgency", "accepted_at", "closed_at"]],
                                rules=self.rules, as_of=now)  # the deadlines (geo.cases.case_deadlines) and more
        resolved["response_due"], resolved["closure_due"] = judged["response_due"], judged["closure_due"]
        resolved["received_at"] = now
        resolved["received_by"] = viewer.name
        for step in ("accepted", "closed"):  # times a sender gives are recorded with the sender as author
            resolved[f"{step}_by"] = np.where(resolved[f"{step}_at"].notna().to_numpy(), viewer.name, None)
        resolved["fingerprint"] = case_fingerprints(resolved)
        result = self.case_store.add(resolved[list(CASE_COLUMNS)])
        if result.duplicates:  # answered as stored the first time
            stored = self.case_store.list(CaseFilter(ids=frozenset(result.duplicates)))
            kept = resolved.set_index("id")
            kept.update(stored.set_index("id"))
            resolved, judged = kept.reset_index(), None
        log = self.store.blind_spots()
        outside = ~resolved["covered"].fillna(True).to_numpy(bool) & resolved["lon"].notna().to_numpy()
        if log is not None and outside.any() and len(result.stored):
            new = resolved["id"].isin(set(result.stored)).to_numpy() & outside
            log.record({"covered": np.zeros(int(new.sum()), bool), "lon_wgs84": resolved["lon"].to_numpy()[new],
                        "lat_wgs84": resolved["lat"].to_numpy()[new],
                        "version": resolved["grid_version"].to_numpy()[new],
                        "nearest_grid_id": resolved["nearest_grid_id"].to_numpy(dtype=object)[new]},
                       reason="case_outside_grids")
        resolved["stored"] = ~resolved["id"].isin(set(result.duplicates)).to_numpy()
        answers = self.answers(resolved, viewer=viewer, as_of=now, judged=judged, fields=INTAKE_ANSWER_FIELDS)
        return {"count": len(answers), "stored": len(result.stored), "duplicates": len(result.duplicates),
                "ignored_fields": list(table.ignored), "cases": answers}

    def intake_one(self, item: dict, *, viewer: CaseViewer, now: pd.Timestamp | None = None) -> dict | None:
        """The path of a single case given by a point (``POST /cases`` with one JSON object), without a frame:
        the same checks, index, rules and store as :meth:`intake`, in their one-case forms
        (:func:`geo.cases.case_time`, :func:`geo.cases.evaluate_case`,
        :func:`gridcover.store.base.case_fingerprint`, :meth:`gridcover.store.CaseStore.add_one`); ``None`` for
        anything else (a field it does not take, a value in doubt, a resend), which :meth:`intake` then answers
        with its checks and errors.

        Returns
        -------
        dict or None
            What :meth:`intake` answers for a batch of this one case (tests/test_services_cases_one.py).
        """
        at = _instant_now(now)
        case = _simple_case(item, zone=self.rules.time_zone, now=at)
        if case is None:
            return None
        index = self.lookup.get_index()
        try:
            row = self._placed_one(index, case)
        except InputError:
            return None
        row.update(received_at=at, received_by=viewer.name,
                   accepted_by=viewer.name if row["accepted_at"] is not None else None,
                   closed_by=viewer.name if row["closed_at"] is not None else None)
        try:
            judged = evaluate_case(row, rules=self.rules, as_of=at)  # the deadlines (geo.cases.case_deadline) and more
        except ValueError:  # a deadline a clock change makes ambiguous: as the batch path answers it
            return None
        row["response_due"], row["closure_due"] = judged["response_due"], judged["closure_due"]
        row["fingerprint"] = case_fingerprint(row)
        result = self.case_store.add_one(row)
        if not result.stored:
            return None  # a resend: answered as stored the first time, by the general path
        if row["covered"] is False:
            log = self.store.blind_spots()
            if log is not None:
                log.record({"covered": np.zeros(1, bool), "lon_wgs84": np.array([row["lon"]]),
                            "lat_wgs84": np.array([row["lat"]]), "version": np.array([row["grid_version"]]),
                            "nearest_grid_id": np.array([row["nearest_grid_id"]], dtype=object)},
                           reason="case_outside_grids")
        communities, streets = self._place_names()
        record = {**row, **judged, "stored": True, "community_name": _name(communities, row["community_id"]),
                  "street_name": _name(streets, row["street_id"])}
        answer = {f: _json_value(record.get(f)) for f in INTAKE_ANSWER_FIELDS if f in record}
        return {"count": 1, "stored": 1, "duplicates": 0, "ignored_fields": [], "cases": [answer]}

    def _placed_one(self, index, case: dict) -> dict:
        """One checked case with a point, placed as ``/lookup`` places it (:func:`geo.lookup.lookup_points`: its
        grid, or outside every grid the nearest grid with its distance): a record of :data:`CASE_COLUMNS`."""
        found = lookup_points(index, [case["lon"]], [case["lat"]], crs=case["crs"])
        covered = bool(found["covered"][0])
        fields = {name: found[name][0] for name in ("grid_id", "grid_name", "community_id", "street_id",
                                                      "worker_name", "worker_phone", "method")}
        nearest = found["nearest_grid_id"][0]
        if not covered:  # its worker answers for it (首接负责)
            g = self._grid_position(index, nearest)
            fields.update(grid_id=index.grids.ids[g], grid_name=index.grid_name[g], community_id=index.community_id[g],
                          street_id=index.street_id[g], worker_name=index.worker_name[g],
                          worker_phone=index.worker_phone[g])
        distance = float(found["distance_m"][0])
        return {"id": case["id"], "reported_at": case["reported_at"], "urgency": case["urgency"],
                "category": case["category"], "source": case["source"], "household_id": None, "address": None,
                "location": "point", "input_crs": case["crs"], "lon": float(found["lon_wgs84"][0]),
                "lat": float(found["lat_wgs84"][0]), **{k: _plain(v) for k, v in fields.items()},
                "covered": covered, "nearest_grid_id": _plain(nearest),
                "distance_m": None if distance != distance else distance, "grid_version": str(index.version),
                "accepted_at": case["accepted_at"], "closed_at": case["closed_at"]}

    def _grid_position(self, index, grid_id) -> int:
        """The position of a grid in the lookup index (a map made once per index, kept with it here)."""
        kept = self.__dict__.get("_grid_positions")
        if kept is None or kept[0] is not index:
            kept = (index, {str(g): i for i, g in enumerate(index.grids.ids)})
            self._grid_positions = kept
        return kept[1][str(grid_id)]

    @property
    def case_store(self):
        """The store's cases (:meth:`gridcover.store.Workspace.cases`), one object kept by the service so that
        the GeoPackage store keeps its connection between requests."""
        kept = self.__dict__.get("_case_store")
        if kept is None:
            kept = self._case_store = self.store.cases()
        return kept

    def _checked(self, table: CaseTable, *, now: pd.Timestamp) -> pd.DataFrame:
        """The batch's values checked together (one vectorised pass per rule); a ``CaseError`` naming every
        bad row, nothing stored."""
        frame, problems = table.frame, _Problems(table.unit, table.first)
        out = pd.DataFrame(index=frame.index)
        ids = _text(frame, "id")
        problems.add(ids.isna().to_numpy(), "id", "id_missing", "id is missing", "缺少事件编号")
        problems.add((ids.str.len() > MAX_ID_CHARS).fillna(False).to_numpy(), "id", "id_too_long",
                     f"id is longer than {MAX_ID_CHARS} characters", f"事件编号超过 {MAX_ID_CHARS} 个字符")
        problems.add((ids.duplicated(keep="first") & ids.notna()).to_numpy(), "id", "id_repeated",
                     "the id is given twice in this batch", "同一批中事件编号重复")
        out["id"] = ids
        out["reported_at"] = self._time(frame, "reported_at", problems, required=True, now=now)
        urgency = _text(frame, "urgency")
        normal = normalise_urgency(urgency)
        problems.add(urgency.isna().to_numpy(), "urgency", "urgency_missing", "urgency is missing",
                     f"缺少紧急程度（{'、'.join(URGENCIES)}）")
        problems.add((urgency.notna() & normal.isna()).to_numpy(), "urgency", "urgency_unknown",
                     f"urgency is not one of {', '.join(URGENCIES)}", f"紧急程度应为 {'、'.join(URGENCIES)} 之一")
        out["urgency"] = normal
        for name in ("category", "source"):
            out[name] = _text(frame, name)
            problems.add((out[name].str.len() > MAX_TEXT_CHARS).fillna(False).to_numpy(), name, "text_too_long",
                         f"{name} is longer than {MAX_TEXT_CHARS} characters", f"{name} 超过 {MAX_TEXT_CHARS} 个字符")
        self._check_location(frame, out, problems, default_crs=table.crs)
        for name in ("accepted_at", "closed_at"):
            out[name] = self._time(frame, name, problems, required=False, now=now)
            early = (out[name] < out["reported_at"]).fillna(False).to_numpy()
            problems.add(early, name, "time_before_reported", f"{name} is before reported_at", "时间早于上报时间")
        problems.add((out["closed_at"] < out["accepted_at"]).fillna(False).to_numpy(), "closed_at",
                     "time_before_accepted", "closed_at is before accepted_at", "办结时间早于受理时间")
        problems.raise_if_any()
        return out

    def _time(self, frame: pd.DataFrame, name: str, problems: _Problems, *, required: bool,
              now: pd.Timestamp) -> pd.Series:
        text = _text(frame, name)
        when = case_times(text, zone=self.rules.time_zone).dt.floor("s")
        if required:
            problems.add(text.isna().to_numpy(), name, f"{name}_missing", f"{name} is missing", f"缺少 {name}")
        problems.add((text.notna() & when.isna()).to_numpy(), name, "invalid_time",
                     f"{name} is not an ISO 8601 date-time (without an offset it is {self.rules.time_zone} time)",
                     f"{name} 应为 ISO 8601 时间（不带时区时按 {self.rules.time_zone} 当地时间）")
        problems.add((when > now + FUTURE_SLACK).fillna(False).to_numpy(), name, "time_in_future",
                     f"{name} is in the future", f"{name} 晚于当前时间")
        return when

    def _check_location(self, frame: pd.DataFrame, out: pd.DataFrame, problems: _Problems, *,
                        default_crs: str | None) -> None:
        """``lon``/``lat`` (with ``crs``), ``address`` or ``household_id``: exactly one place per case."""
        lon_text, lat_text = _text(frame, "lon"), _text(frame, "lat")
        lon, lat = pd.to_numeric(lon_text, errors="coerce"), pd.to_numeric(lat_text, errors="coerce")
        for name, text, value in (("lon", lon_text, lon), ("lat", lat_text, lat)):
            problems.add((text.notna() & value.isna()).to_numpy(), name, "invalid_number", f"{name} is not a number",
                         f"{name} 不是数字")
        point = lon.notna() & lat.notna()
        problems.add((lon.notna() ^ lat.notna()).to_numpy(), "lon/lat", "point_incomplete",
                     "give both lon and lat", "经纬度应成对给出")
        bad = point.to_numpy() & ~valid_lonlat(lon.fillna(0).to_numpy(float), lat.fillna(0).to_numpy(float))
        problems.add(bad, "lon/lat", "point_out_of_range", "lon must be within -180..180 and lat within -90..90",
                     "经度应在 -180..180、纬度应在 -90..90 之间")
        crs = _text(frame, "crs").fillna(default_crs or "wgs84").str.lower()
        problems.add((point & ~crs.isin(LOOKUP_CRS)).to_numpy(), "crs", "crs_unknown",
                     f"crs must be one of {', '.join(LOOKUP_CRS)}", f"坐标系应为 {'、'.join(LOOKUP_CRS)} 之一")
        address, household = _text(frame, "address"), _text(frame, "household_id")
        problems.add((point & address.notna()).to_numpy(), "address", "place_twice",
                     "give either lon/lat or address, not both", "经纬度与地址只能给出一种")
        problems.add((~point & address.isna() & household.isna() & lon.isna() & lat.isna()).to_numpy(), "lon/lat",
                     "place_missing", "give lon and lat (and crs), address or household_id",
                     "应给出经纬度（及坐标系）、地址或户编号之一")
        problems.add((address.str.len() > MAX_ADDRESS_CHARS).fillna(False).to_numpy(), "address", "text_too_long",
                     f"address is longer than {MAX_ADDRESS_CHARS} characters", "地址过长")
        out["lon_in"], out["lat_in"] = lon.where(point), lat.where(point)
        out["input_crs"] = crs.where(point)
        out["address"], out["household_id"] = address, household
        out["location"] = np.where(point, "point", np.where(address.notna(), "address", "household"))

    # -------------------------------------------------------------- resolving
    def _resolve(self, cases: pd.DataFrame, table: CaseTable) -> pd.DataFrame:
        """Grid, worker, community, street and the WGS-84 point of every checked case, as ``/lookup`` answers
        (a ``CaseError`` naming an unknown household or an address that fits no building or estate)."""
        index = self.lookup.get_index()
        problems = _Problems(table.unit, table.first)
        n = len(cases)
        lon = cases["lon_in"].to_numpy(float, na_value=np.nan).copy()
        lat = cases["lat_in"].to_numpy(float, na_value=np.nan).copy()
        crs = cases["input_crs"].astype(object).where(cases["input_crs"].notna(), "wgs84").to_numpy(dtype=object).copy()
        household = cases["household_id"]
        if household.notna().any():
            points = self._places("households")
            known = household.isin(points.index).to_numpy()
            problems.add(household.notna().to_numpy() & ~known, "household_id", "household_unknown",
                         "no household with this id in the workspace", "工作区中没有此户编号")
            unplaced = known & points["lon"].reindex(household.fillna("").to_numpy()).isna().to_numpy()
            problems.add(unplaced & (cases["location"] == "household").to_numpy(), "household_id",
                         "household_unlocated", "the household has no point and no building: give lon/lat or address",
                         "此户没有坐标也没有楼栋，请给出经纬度或地址")
            by_household = (cases["location"] == "household").to_numpy() & known
            where = points.reindex(household[by_household].to_numpy())
            lon[by_household], lat[by_household] = where["lon"].to_numpy(), where["lat"].to_numpy()
            crs[by_household] = "wgs84"
        answers = {name: np.full(n, None, dtype=object) for name in
                   ("grid_id", "grid_name", "community_id", "street_id", "worker_name", "worker_phone", "covered",
                    "nearest_grid_id", "method")}
        answers["distance_m"] = np.full(n, np.nan)
        by_address = (cases["location"] == "address").to_numpy()
        if by_address.any():
            lon, lat = self._resolve_addresses(index, cases, by_address, answers, problems, lon=lon, lat=lat)
        problems.raise_if_any()
        located = ~by_address & ~np.isnan(lon)
        for system in pd.unique(crs[located]):
            rows = np.flatnonzero(located & (crs == system))
            for start in range(0, len(rows), CHUNK_ROWS):
                part = rows[start:start + CHUNK_ROWS]
                found = lookup_points(index, lon[part], lat[part], crs=str(system))
                for name in answers:
                    answers[name][part] = found[name]
                lon[part], lat[part] = found["lon_wgs84"], found["lat_wgs84"]
        self._nearest_for_uncovered(index, answers, lon, lat)
        out = cases.drop(columns=["lon_in", "lat_in"]).copy()
        out["lon"], out["lat"] = lon, lat
        for name, values in answers.items():
            out[name] = values
        out["covered"] = pd.array([None if v is None else bool(v) for v in answers["covered"]], dtype="boolean")
        out["grid_version"] = str(index.version)
        return out

    def _resolve_addresses(self, index, cases, rows_mask, answers, problems, *, lon, lat):
        """The address cases through :func:`geo.lookup.lookup_addresses`; the point is the building's (or the
        estate's) representative point."""
        rows = np.flatnonzero(rows_mask)
        found = lookup_addresses(index, cases["address"].to_numpy(dtype=object)[rows])
        placed = np.array([c is not None for c in found["covered"]], dtype=bool)
        method = found["method"].astype(str)
        problems.add(_spread(~placed & (method == "address_ambiguous"), rows, len(cases)), "address",
                     "address_ambiguous", "the address fits several buildings or estates in different grids: give "
                     "lon/lat or a fuller address", "地址对应多个不同网格的楼栋或小区，请给出经纬度或更完整的地址")
        problems.add(_spread(~placed & (method != "address_ambiguous"), rows, len(cases)), "address",
                     "address_not_found", "the address fits no known building or estate", "地址未匹配到任何楼栋或小区")
        for name in answers:
            answers[name][rows] = found[name]
        buildings, estates = self._places("buildings"), self._places("estates")
        for layer, ids in ((estates, found["estate_id"]), (buildings, found["building_id"])):
            has = np.array([v is not None for v in ids], dtype=bool)
            if has.any() and len(layer):
                where = layer.reindex(pd.Index(ids[has]).astype(str))
                lon[rows[has]], lat[rows[has]] = where["lon"].to_numpy(), where["lat"].to_numpy()
        return lon, lat

    @staticmethod
    def _nearest_for_uncovered(index, answers: dict, lon: np.ndarray, lat: np.ndarray) -> None:
        """A case in no grid goes to the nearest grid (its worker answers for it), marked ``covered: false``."""
        covered = np.array([v is not False for v in answers["covered"]], dtype=bool)
        out = np.flatnonzero(~covered & ~np.isnan(lon))
        if not len(out):
            return
        near = pd.Index(index.grids.ids).get_indexer(pd.Series(answers["nearest_grid_id"][out], dtype=object))
        ask = near < 0  # the lookup's own nearest grid and distance where it gave them (/lookup's answer)
        if ask.any():
            near[ask], answers["distance_m"][out[ask]] = nearest_grids(index, lon[out[ask]], lat[out[ask]])
        answers["nearest_grid_id"][out] = index.grids.ids[near]
        for name in ("grid_name", "community_id", "street_id", "worker_name", "worker_phone"):
            answers[name][out] = getattr(index, name)[near]
        answers["grid_id"][out] = index.grids.ids[near]

    def _places(self, layer: str) -> pd.DataFrame:
        """``lon``/``lat`` (WGS-84) of every feature of a layer by id: the point of a household, the
        representative point of a building or estate (read once per store version)."""
        tag = self.store.tag
        cache = self.__dict__.setdefault("_place_cache", {})
        hit = cache.get(layer)
        if hit is not None and hit[0] == tag:
            return hit[1]
        if not self.store.has(layer):
            frame = pd.DataFrame({"lon": [], "lat": []}, index=pd.Index([], dtype=object))
        else:
            source = self.store.read(layer)
            geoms = source.geometry
            points = geoms if layer == "households" else geoms.representative_point()
            frame = pd.DataFrame({"lon": points.x.to_numpy(), "lat": points.y.to_numpy()},
                                 index=pd.Index(source["id"].astype(str).to_numpy()))
            frame = frame[~frame.index.duplicated()]
            if layer == "households" and "building_id" in source.columns:  # a household known by its address only
                unplaced = frame["lon"].isna().to_numpy()
                building = self._places("buildings").reindex(source["building_id"].astype(str).to_numpy()[
                    ~pd.Index(source["id"].astype(str)).duplicated()][unplaced])
                frame.loc[unplaced, "lon"], frame.loc[unplaced, "lat"] = building["lon"].to_numpy(), building["lat"].to_numpy()
        cache[layer] = (tag, frame)
        return frame

    def _place_names(self) -> tuple[pd.Series, pd.Series]:
        """Names of the communities and streets by id (read once per store version)."""
        tag = self.store.tag
        if self._names is None or self._names[0] != tag:
            names = {}
            for layer in ("communities", "streets"):
                frame = self.store.read(layer) if self.store.has(layer) else None
                names[layer] = (pd.Series(frame["name"].astype("string").to_numpy(), index=frame["id"].astype(str).to_numpy())
                                if frame is not None and "name" in frame.columns else pd.Series([], dtype="string"))
                names[layer] = names[layer][~names[layer].index.duplicated()]
            self._names = (tag, names)
        return self._names[1]["communities"], self._names[1]["streets"]

    # -------------------------------------------------------------- answers
    def answers(self, cases: pd.DataFrame, *, viewer: CaseViewer, as_of: pd.Timestamp, judged=None,
                fields: tuple[str, ...] = None) -> list[dict]:
        """Stored (or resolved) cases as the API answers them (``fields``, default :data:`ANSWER_FIELDS`): judged
        at ``as_of`` (status, overdue, on time, response minutes, closure working days; ``judged``: the
        :func:`geo.cases.evaluate_cases` of ``cases`` at ``as_of`` if made already), with the names of
        community and street; a household's point only for callers who may see its street."""
        if judged is None:
            judged = evaluate_cases(cases[["id", "reported_at", "urgency", "accepted_at", "closed_at"]],
                                    rules=self.rules, as_of=as_of)
        out = cases.drop(columns=[c for c in ("fingerprint", "lon_in", "lat_in") if c in cases.columns]).copy()
        for name in ("response_due", "closure_due", "status", "overdue", "on_time", "response_on_time",
                     "closure_on_time", "response_min", "closure_working_days"):
            out[name] = judged[name].to_numpy()
        communities, streets = self._place_names()
        out["community_name"] = communities.reindex(out["community_id"].astype(str).to_numpy()).to_numpy()
        out["street_name"] = streets.reindex(out["street_id"].astype(str).to_numpy()).to_numpy()
        sees = np.isin(out["street_id"].astype(str).to_numpy(), list(viewer.sees_streets)) \
            if viewer.sees_streets is not None else np.ones(len(out), dtype=bool)
        hide = ~sees & (out["location"] == "household").to_numpy()
        out.loc[hide, ["lon", "lat"]] = np.nan
        out.loc[~sees & (out["received_by"] != viewer.name).to_numpy(), "household_id"] = None
        return case_records(out[[c for c in (fields or ANSWER_FIELDS) if c in out.columns]])

    # -------------------------------------------------------------- accept, close, read
    def _visible(self, case_id: str, viewer: CaseViewer) -> None:
        if not self.case_store.count(CaseFilter(ids=frozenset([str(case_id)]), **viewer.scope())):
            raise case_not_found(case_id)

    def _act(self, action: str, case_id: str, *, viewer: CaseViewer, at: str | None, now: pd.Timestamp | None):
        now = (now or pd.Timestamp.now(tz="UTC")).floor("s")
        self._visible(case_id, viewer)
        when = parse_when(at, field_name="at", zone=self.rules.time_zone, end_of_day=False) or now
        if when > now + FUTURE_SLACK:
            raise CaseError("time_in_future", f"at {when.isoformat()} is in the future", "时间晚于当前时间")
        store = self.case_store
        (store.accept if action == "accept" else store.close)(case_id, at=when, author=viewer.name)
        return self.get(case_id, viewer=viewer, now=now)

    def accept(self, case_id: str, *, viewer: CaseViewer, at: str | None = None,
               now: pd.Timestamp | None = None) -> dict:
        """Record the acceptance (受理) of a case by ``viewer`` at ``at`` (default now); the case as answered."""
        return self._act("accept", case_id, viewer=viewer, at=at, now=now)

    def close(self, case_id: str, *, viewer: CaseViewer, at: str | None = None,
              now: pd.Timestamp | None = None) -> dict:
        """Record the closure (办结) of a case by ``viewer`` at ``at`` (default now; also its acceptance if
        nobody accepted it); the case as answered."""
        return self._act("close", case_id, viewer=viewer, at=at, now=now)

    def get(self, case_id: str, *, viewer: CaseViewer, as_of: str | None = None,
            now: pd.Timestamp | None = None) -> dict:
        """One case the viewer may see (``CaseNotFoundError`` otherwise), judged at now or ``as_of``."""
        when = parse_when(as_of, field_name="as_of", zone=self.rules.time_zone) or \
            (now or pd.Timestamp.now(tz="UTC")).floor("s")
        found = self.case_store.list(CaseFilter(ids=frozenset([str(case_id)]), **viewer.scope()), limit=1)
        if not len(found):
            raise case_not_found(case_id)
        return self.answers(found, viewer=viewer, as_of=when)[0]

    def list_cases(self, *, viewer: CaseViewer, status: str | None = None, overdue: bool | None = None,
                   grid: str | None = None, community: str | None = None, street: str | None = None,
                   limit: int = 100, offset: int = 0, as_of: str | None = None,
                   now: pd.Timestamp | None = None) -> dict:
        """The cases the viewer may see, filtered, oldest report first, judged at now or ``as_of``.

        Parameters
        ----------
        status
            ``open``, ``accepted`` or ``closed``, or several with commas.
        overdue
            Only cases open past a deadline (``True``) or not (``False``).
        grid, community, street
            Only the cases of this grid, community or street (ids; several with commas).
        limit, offset
            The page.
        as_of
            A date (its end, local time) or date-time: judge the cases then (times after it have not happened).

        Returns
        -------
        dict
            ``as_of``, ``numberMatched``, ``numberReturned``, ``cases``.
        """
        wanted = _statuses(status)
        current = (now or pd.Timestamp.now(tz="UTC")).floor("s")
        when = parse_when(as_of, field_name="as_of", zone=self.rules.time_zone) or current
        place = {key: (frozenset(s.strip() for s in str(v).split(",") if s.strip()) if v else None)
                 for key, v in (("grids", grid), ("communities", community), ("streets", street))}
        store = self.case_store
        if as_of is None and overdue is not False:  # the store filters and pages
            filters = CaseFilter(status=wanted, overdue_at=current if overdue else None, **place, **viewer.scope())
            matched, page = store.count(filters), store.list(filters, limit=limit, offset=offset)
            cases = self.answers(page, viewer=viewer, as_of=when)
        else:  # judged at another time, or not overdue: judged here, then paged
            every = store.list(CaseFilter(**place, **viewer.scope()))
            judged = evaluate_cases(every[["id", "reported_at", "urgency", "accepted_at", "closed_at"]],
                                    rules=self.rules, as_of=when)
            keep = np.ones(len(every), dtype=bool) if wanted is None else judged["status"].isin(wanted).to_numpy()
            if overdue is not None:
                keep &= judged["overdue"].to_numpy(bool) == bool(overdue)
            chosen = every[keep]
            matched = len(chosen)
            cases = self.answers(chosen.iloc[offset:offset + limit], viewer=viewer, as_of=when)
        return {"as_of": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "numberMatched": int(matched),
                "numberReturned": len(cases), "cases": cases}


def _instant_now(now) -> datetime:
    """``now`` (default: the clock) as an aware UTC ``datetime`` to the second."""
    at = pd.Timestamp(now).to_pydatetime() if now is not None else datetime.now(timezone.utc)
    return at.astimezone(timezone.utc).replace(microsecond=0)


def _simple_case(item: dict, *, zone: str, now: datetime) -> dict | None:
    """A single case :meth:`CasesService.intake_one` takes: a point and the plain fields, every value beyond
    doubt by the same rules as the batch checks (:meth:`CasesService._checked`), in their one-value forms
    (:func:`geo.cases.urgency_of`, :func:`geo.cases.case_time`); ``None`` otherwise."""
    if not isinstance(item, dict) or not set(item) <= _SIMPLE_FIELDS:
        return None
    cid, reported, urgency, lon, lat = (item.get(k) for k in ("id", "reported_at", "urgency", "lon", "lat"))
    crs = item.get("crs") or "wgs84"
    texts = [item.get("category"), item.get("source")]
    if not (isinstance(cid, str) and 0 < len(cid.strip()) <= MAX_ID_CHARS and isinstance(crs, str)
            and crs.lower() in LOOKUP_CRS
            and all(t is None or (isinstance(t, str) and len(t.strip()) <= MAX_TEXT_CHARS) for t in texts)):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lon, lat)) or \
            not valid_lonlat(np.array([float(lon)]), np.array([float(lat)]))[0]:
        return None
    normal, when = urgency_of(urgency), case_time(reported, zone=zone)
    if normal is None or when is None or when.replace(microsecond=0) > now + _FUTURE_SLACK:
        return None
    times = {}
    for name in ("accepted_at", "closed_at"):
        value = item.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            times[name] = None
            continue
        t = case_time(value, zone=zone)
        if t is None or t.replace(microsecond=0) > now + _FUTURE_SLACK or t.replace(microsecond=0) < when.replace(microsecond=0):
            return None
        times[name] = t.replace(microsecond=0)
    if None not in times.values() and times["closed_at"] < times["accepted_at"]:
        return None
    blank = [None if t is None or not t.strip() else t.strip() for t in texts]
    return {"id": cid.strip(), "reported_at": when.replace(microsecond=0), "urgency": normal, "lon": float(lon),
            "lat": float(lat), "crs": crs.lower(), "category": blank[0], "source": blank[1], **times}


def _plain(value):
    """A numpy scalar or missing value of the lookup's answer as a plain Python value (``None`` for none)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _name(names: pd.Series, key) -> str | None:
    return None if key is None else _plain(names.get(str(key)))


def _json_value(value):
    """A value of one answer as :func:`gridcover.store.base.case_records` writes it: times as ISO 8601 UTC text
    to the second, NaN as ``None``."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _plain(value)


def _spread(mask: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows[mask]] = True
    return out


def _statuses(value: str | None) -> frozenset[str] | None:
    """``status`` as a set of :data:`geo.cases.STATUSES` (``CaseError`` naming a wrong one)."""
    from geo.cases import STATUSES

    if value is None or not str(value).strip():
        return None
    wanted = frozenset(s.strip().lower() for s in str(value).split(",") if s.strip())
    wrong = sorted(wanted - set(STATUSES))
    if wrong:
        raise CaseError("status_unknown", f"status {wrong[0]!r} is not one of {', '.join(STATUSES)}",
                        f"状态应为 {'、'.join(STATUSES)} 之一")
    return wanted


def read_intake(body: bytes, *, content_type: str | None, crs: str | None = None) -> CaseTable:
    """An intake body as a :class:`CaseTable`: CSV (``text/csv``, or a body that is not JSON) or JSON."""
    kind = (content_type or "").split(";")[0].strip().lower()
    stripped = body.lstrip()
    if kind in ("text/csv", "application/csv", "text/plain") or (kind not in ("application/json",)
                                                                 and stripped[:1] not in (b"{", b"[")):
        return csv_table(body, crs=crs)
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaseError("invalid_body", f"the body is not JSON: {exc}", "请求体不是有效的 JSON") from None
    return cases_table(doc, crs=crs)

