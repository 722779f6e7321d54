"""Cases (事件/诉求) against the plan's time limits: response in minutes, closure in working days (首接负责、限时办结).

Frames in, frames out; no file access. docs/cases.md explains every rule.

* :class:`WorkCalendar`: Monday to Friday, minus the public holidays, plus the adjusted working days
  (调休上班日: the weekend days a holiday arrangement makes working days). Vectorised over numpy's business-day
  functions with a week of seven days and every non-working day given as a holiday.
* :class:`CaseRules`: the targets per urgency and the calendar, parsed from ``[cases]`` of ``risk.toml`` by
  :func:`parse_case_rules` (:func:`case_rules` takes them from a :class:`geo.risk.RiskConfig`).
* Counting working days: a working day counts 24 hours. A deadline of N working days is the same local clock
  time on the Nth following working day; a case reported on a non-working day starts the clock at 00:00 of the
  next working day (so its deadline is the end of the Nth working day counted from that one).
* :func:`case_deadlines` gives each case its response and closure deadlines, :func:`evaluate_cases` judges
  every case at an instant (``as_of``): minutes to respond, working days to close, on time, overdue, status.

Example
-------
>>> rules = case_rules(None)  # the packaged rules: 3 working days, National Day 1–7 Oct 2026, Sat 10 Oct worked
>>> cases = pd.DataFrame({"id": ["C1"], "reported_at": ["2026-09-30 10:00"], "urgency": ["cross_department"],
...                       "accepted_at": ["2026-09-30 10:40"], "closed_at": ["2026-10-10 09:00"]})
>>> judged = evaluate_cases(cases, rules=rules, as_of=pd.Timestamp("2026-10-31 00:00", tz="Asia/Shanghai"))
>>> judged[["response_min", "closure_working_days", "on_time", "status"]].to_string(index=False)
' response_min  closure_working_days  on_time status\\n         40.0                 2.958     True closed'
"""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources

import numpy as np
import pandas as pd

from geo.errors import ConfigError

#: The urgencies a case may have: 一般 general, 紧急 urgent, 跨部门 cross-department.
URGENCIES = ("general", "urgent", "cross_department")
#: Spellings of the urgencies accepted in the input, besides the English words (any case).
URGENCY_ALIASES = {"一般": "general", "普通": "general", "紧急": "urgent", "加急": "urgent",
                   "跨部门": "cross_department", "cross-department": "cross_department"}
#: The statuses of a case at ``as_of``: not yet accepted, accepted and not closed, closed.
STATUSES = ("open", "accepted", "closed")
#: Local time of case times without an offset, unless ``[cases] time_zone`` says otherwise.
DEFAULT_ZONE = "Asia/Shanghai"

_DAY = np.timedelta64(1, "D")
_NS_PER_DAY = 86_400 * 10**9
_OFFSET = r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_KEYS = {"time_zone", "response_minutes", "closure_working_days", "calendar"}


@dataclass(frozen=True)
class WorkCalendar:
    """Working days (工作日): Monday–Friday, minus ``holidays``, plus ``workdays`` (weekend days worked, 调休).

    ``years``: the years whose holiday arrangement the calendar holds (a date of another year is judged
    Monday–Friday only; :meth:`covers` tells which).

    Examples
    --------
    >>> cal = WorkCalendar(holidays=frozenset({date(2026, 10, 1)}), workdays=frozenset({date(2026, 10, 10)}))
    >>> cal.is_working_day(np.array(["2026-09-30", "2026-10-01", "2026-10-03", "2026-10-10"], dtype="datetime64[D]")).tolist()
    [True, False, False, True]
    """

    holidays: frozenset[date]
    workdays: frozenset[date]
    years: frozenset[int] = field(default_factory=frozenset)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        holidays = np.array(sorted(self.holidays), dtype="datetime64[D]")
        workdays = np.array(sorted(self.workdays), dtype="datetime64[D]")
        return holidays, workdays

    def is_working_day(self, days) -> np.ndarray:
        """Whether each day is a working day (``days``: ``datetime64[D]`` values, dates or ISO strings)."""
        days = np.asarray(days, dtype="datetime64[D]")
        holidays, workdays = self._arrays()
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        return ((weekday < 5) & ~np.isin(days, holidays)) | np.isin(days, workdays)

    def covers(self, days) -> np.ndarray:
        """Whether the calendar holds the holiday arrangement of each day's year."""
        years = np.asarray(days, dtype="datetime64[Y]").astype(np.int64) + 1970
        return np.isin(years, np.array(sorted(self.years), dtype=np.int64))

    def _busdaycal(self, first: np.datetime64, last: np.datetime64) -> np.busdaycalendar:
        """A numpy calendar of seven-day weeks whose holidays are every non-working day from first to last."""
        span = np.arange(first, last + _DAY, dtype="datetime64[D]")
        return np.busdaycalendar(weekmask="1111111", holidays=span[~self.is_working_day(span)])

    def add_working_days(self, start: pd.Series, n) -> pd.Series:
        """The same local clock time on the ``n``-th following working day (tz-aware in, tz-aware out).

        A start on a non-working day counts from 00:00 of the next working day. ``n``: a whole number ≥ 0,
        or one per row. Times are converted to the zone of ``start`` (naive times are refused).

        Examples
        --------
        >>> cal = WorkCalendar(holidays=frozenset(), workdays=frozenset())
        >>> start = pd.Series(pd.to_datetime(["2026-11-27 16:00", "2026-11-28 10:00"]).tz_localize("Asia/Shanghai"))
        >>> cal.add_working_days(start, 1).dt.strftime("%a %d %H:%M").tolist()
        ['Mon 30 16:00', 'Tue 01 00:00']
        """
        zone = _zone_of(start)
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), (len(start),))
        if len(start) and n.min() < 0:
            raise ValueError("add_working_days: n must be 0 or more")
        local = start.dt.tz_localize(None).to_numpy("datetime64[ns]")
        valid = ~np.isnat(local)
        out = np.full(len(start), np.datetime64("NaT"), dtype="datetime64[ns]")
        if valid.any():
            day = local[valid].astype("datetime64[D]")
            clock = local[valid] - day.astype("datetime64[ns]")
            clock = np.where(self.is_working_day(day), clock, np.timedelta64(0, "ns"))
            span_end = day.max() + int(n[valid].max()) * 2 * _DAY + 60 * _DAY
            cal = self._busdaycal(day.min(), span_end)
            target = np.busday_offset(day, n[valid], roll="forward", busdaycal=cal)
            out[valid] = target.astype("datetime64[ns]") + clock
        return pd.Series(pd.DatetimeIndex(out).tz_localize(zone), index=start.index)

    def working_days_between(self, start: pd.Series, end: pd.Series) -> np.ndarray:
        """Working days elapsed from ``start`` to ``end`` (float; a working day counts 24 h, others 0; NaN
        where either is missing; 0 where ``end`` is not after ``start``). Both tz-aware, in one zone.

        Examples
        --------
        >>> cal = WorkCalendar(holidays=frozenset(), workdays=frozenset())
        >>> t = lambda *v: pd.Series(pd.to_datetime(list(v)).tz_localize("Asia/Shanghai"))
        >>> cal.working_days_between(t("2026-11-27 12:00", "2026-11-28 10:00"), t("2026-11-30 12:00", "2026-12-01 00:00")).tolist()
        [1.0, 1.0]
        """
        zone = _zone_of(start)
        s = start.dt.tz_localize(None).to_numpy("datetime64[ns]")
        e = end.dt.tz_convert(zone).dt.tz_localize(None).to_numpy("datetime64[ns]")
        out = np.full(len(s), np.nan)
        valid = ~np.isnat(s) & ~np.isnat(e)
        if not valid.any():
            return out
        s, e = s[valid], np.maximum(e[valid], s[valid])
        sd, ed = s.astype("datetime64[D]"), e.astype("datetime64[D]")
        fs = (s - sd.astype("datetime64[ns]")).astype(np.int64) / _NS_PER_DAY
        fe = (e - ed.astype("datetime64[ns]")).astype(np.int64) / _NS_PER_DAY
        ws, we = self.is_working_day(sd), self.is_working_day(ed)
        cal = self._busdaycal(sd.min(), ed.max() + _DAY)
        between = np.busday_count(np.minimum(sd + _DAY, ed), ed, busdaycal=cal)
        days = np.where(sd == ed, ws * (fe - fs), ws * (1.0 - fs) + between + we * fe)
        out[valid] = np.round(days, 6)
        return out


@dataclass(frozen=True)
class CaseRules:
    """The time limits of cases: response minutes and closure working days per urgency, the calendar, the zone."""

    response_minutes: dict[str, float]
    closure_working_days: dict[str, float]
    calendar: WorkCalendar
    time_zone: str = DEFAULT_ZONE


def _zone_of(values: pd.Series) -> str:
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError("case times must be time-zone aware (use case_times)")
    return str(values.dt.tz)


def _dates(values, where: str) -> frozenset[date]:
    if not isinstance(values, list):
        raise ConfigError(f"{where}: must be a list of dates (2026-10-01 or \"2026-10-01\")")
    out = set()
    for value in values:
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None
        if not isinstance(value, date):
            raise ConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")
        out.add(value)
    return frozenset(out)


def _limits(table, where: str, *, whole: bool) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of {', '.join(URGENCIES)}")
    unknown = set(table) - set(URGENCIES)
    if unknown:
        raise ConfigError(f"{where}: unknown urgency {', '.join(sorted(unknown))} (known: {', '.join(URGENCIES)})")
    out = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
                or (whole and float(value) != int(value)):
            kind = "a whole number of working days ≥ 1" if whole else "a number of minutes > 0"
            raise ConfigError(f"{where} {key}: {value!r} is not {kind}")
        out[key] = float(value)
    return out


def parse_case_rules(table: dict, *, source: str = "risk.toml", defaults: dict | None = None) -> CaseRules:
    """The ``[cases]`` table of a risk file as :class:`CaseRules`.

    Keys: ``time_zone`` (default Asia/Shanghai); ``response_minutes`` and ``closure_working_days``, tables by
    urgency (:data:`URGENCIES`; closure in whole working days); ``calendar.holidays`` and
    ``calendar.workdays``, lists of dates (TOML dates or ISO strings), and ``calendar.years``, the years they
    cover (default: the years of the holidays). A key missing from ``table`` takes its value from
    ``defaults`` (the packaged ``[cases]``), an urgency missing from a limits table too; a list given
    replaces the default list (``holidays`` given without ``years``: the years of those holidays). Without
    ``defaults`` an urgency without a limit has none.

    Raises
    ------
    ConfigError
        naming the file, the table and the key of a bad value.

    Examples
    --------
    >>> parse_case_rules({"response_minutes": {"urgent": 15}}).response_minutes
    {'urgent': 15.0}
    >>> parse_case_rules({"closure_working_days": {"urgent": 0.5}})
    Traceback (most recent call last):
    ...
    geo.errors.ConfigError: risk.toml: [cases.closure_working_days] urgent: 0.5 is not a whole number of working days ≥ 1
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [cases] must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{source}: [cases] unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_KEYS))})")
    base = defaults or {}
    zone = str(table.get("time_zone", base.get("time_zone", DEFAULT_ZONE)))
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: [cases] time_zone: {zone!r} is not a time zone (e.g. Asia/Shanghai)") from None
    limits = {}
    for key, whole in (("response_minutes", False), ("closure_working_days", True)):
        merged = {**base.get(key, {}), **table.get(key, {})} if isinstance(table.get(key, {}), dict) else table[key]
        limits[key] = _limits(merged, f"{source}: [cases.{key}]", whole=whole)
    own = table.get("calendar", {})
    if not isinstance(own, dict):
        raise ConfigError(f"{source}: [cases.calendar] must be a table with holidays and workdays")
    calendar = {**base.get("calendar", {}), **own}
    if "holidays" in own and "years" not in own:  # the years of the file's own holidays, not the defaults'
        calendar.pop("years", None)
    holidays = _dates(calendar.get("holidays", []), f"{source}: [cases.calendar] holidays")
    workdays = _dates(calendar.get("workdays", []), f"{source}: [cases.calendar] workdays")
    years = calendar.get("years", sorted({d.year for d in holidays}))
    if not isinstance(years, list) or not all(isinstance(y, int) and not isinstance(y, bool) for y in years):
        raise ConfigError(f"{source}: [cases.calendar] years: must be a list of years (2026)")
    weekend_workdays = [d for d in workdays if d.weekday() < 5]
    if weekend_workdays:
        raise ConfigError(f"{source}: [cases.calendar] workdays: {weekend_workdays[0]} is a weekday already "
                          "(workdays lists the weekend days worked, 调休上班)")
    return CaseRules(response_minutes=limits["response_minutes"], closure_working_days=limits["closure_working_days"],
                     calendar=WorkCalendar(holidays=holidays, workdays=workdays, years=frozenset(years)),
                     time_zone=zone)


def packaged_cases_table() -> dict:
    """The ``[cases]`` table of gridcover's own ``geo/risk.toml`` (the defaults of every data folder).

    Examples
    --------
    >>> packaged_cases_table()["response_minutes"]["urgent"]
    15
    """
    text = resources.files("geo").joinpath("risk.toml").read_bytes()
    return tomllib.loads(text.decode("utf-8")).get("cases", {})


def case_rules(config) -> CaseRules:
    """The case rules of a :class:`geo.risk.RiskConfig` (its ``cases``), or the packaged ones without them.

    Examples
    --------
    >>> case_rules(None).closure_working_days["cross_department"]
    3.0
    """
    rules = getattr(config, "cases", None)
    return rules if rules is not None else parse_case_rules(packaged_cases_table(), source="built-in")


def normalise_urgency(values: pd.Series) -> pd.Series:
    """Each urgency as one of :data:`URGENCIES` (Chinese spellings of :data:`URGENCY_ALIASES` accepted, any
    case, spaces ignored); ``<NA>`` where it is none of them or empty.

    Examples
    --------
    >>> normalise_urgency(pd.Series(["紧急", "General", " 跨部门", "soon"])).tolist()
    ['urgent', 'general', 'cross_department', <NA>]
    """
    text = values.astype("string").str.strip()
    mapped = text.map(lambda v: URGENCY_ALIASES.get(v, v), na_action="ignore").astype("string").str.lower()
    mapped = mapped.map(lambda v: URGENCY_ALIASES.get(v, v), na_action="ignore").astype("string")
    return mapped.where(mapped.isin(URGENCIES)).astype("string")


def case_times(values: pd.Series, *, zone: str = DEFAULT_ZONE) -> pd.Series:
    """Each case time as a UTC instant; ``NaT`` where it is empty or not a date-time (ISO 8601).

    A value without an offset (``2026-11-30 09:15``, ``2026-11-30``) is local time of ``zone``; one with an
    offset (``…Z``, ``…+08:00``) or a time-zone-aware column is converted.

    Examples
    --------
    >>> case_times(pd.Series(["2026-11-30 09:15", "2026-11-30T01:15:00Z", "", "30/11/2026"])).dt.strftime("%H:%M").tolist()
    ['01:15', '01:15', nan, nan]
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    null = (text.isna() | (text == "")).to_numpy(bool)
    text = text.where(~null)
    offset = text.str.contains(_OFFSET, regex=True, na=False).to_numpy() & ~null
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    naive = ~offset & ~null
    if naive.any():
        wall = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        out[naive] = wall.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    if offset.any():
        out[offset] = pd.to_datetime(text[offset], format="ISO8601", errors="coerce", utc=True)
    return out


def _limit(urgency: pd.Series, table: dict[str, float]) -> np.ndarray:
    return urgency.astype("string").map(table).astype(float).to_numpy()


def case_deadlines(reported_at: pd.Series, urgency: pd.Series, *, rules: CaseRules) -> pd.DataFrame:
    """Each case's ``response_due`` (reported + the urgency's response minutes, around the clock) and
    ``closure_due`` (the urgency's working days after the report, :meth:`WorkCalendar.add_working_days`),
    tz-aware UTC; ``NaT`` where the urgency has no such limit.

    ``reported_at``: instants (:func:`case_times`) or local text; ``urgency``: :data:`URGENCIES`.

    Examples
    --------
    >>> rules = parse_case_rules({"response_minutes": {"urgent": 15}, "closure_working_days": {"urgent": 1}})
    >>> due = case_deadlines(pd.Series(["2026-11-28 09:00"]), pd.Series(["urgent"]), rules=rules)
    >>> due.apply(lambda c: c.dt.tz_convert("Asia/Shanghai").dt.strftime("%a %d %H:%M")).iloc[0].tolist()
    ['Sat 28 09:15', 'Tue 01 00:00']
    """
    reported = case_times(reported_at, zone=rules.time_zone)
    urgency = pd.Series(urgency, index=reported.index)
    minutes = _limit(urgency, rules.response_minutes)
    response_due = reported + pd.to_timedelta(minutes, unit="min")
    days = _limit(urgency, rules.closure_working_days)
    has = ~np.isnan(days)
    local = reported.dt.tz_convert(rules.time_zone)
    closure = rules.calendar.add_working_days(local, np.where(has, days, 0).astype(np.int64)).dt.tz_convert("UTC")
    closure_due = closure.where(has)
    return pd.DataFrame({"response_due": response_due, "closure_due": closure_due}, index=reported.index)


def evaluate_cases(cases: pd.DataFrame, *, rules: CaseRules, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every case judged at the instant ``as_of`` (naive: local time of the rules' zone).

    Input columns: ``id``, ``reported_at``, ``urgency``, ``accepted_at`` and ``closed_at`` (nullable; text or
    instants). A time after ``as_of`` has not happened yet. Added columns:

    * ``response_due``, ``closure_due`` (:func:`case_deadlines`);
    * ``response_min``: minutes from report to acceptance (a case closed without an acceptance was answered
      at its closure); NaN while not answered;
    * ``closure_working_days``: working days from report to closure; NaN while open;
    * ``response_on_time``, ``closure_on_time`` and ``on_time`` (both): nullable booleans, ``<NA>`` while
      undecided (the step is not done and its deadline has not passed);
    * ``overdue``: a step is not done and its deadline has passed at ``as_of``;
    * ``status``: ``open`` (not accepted), ``accepted``, ``closed`` (:data:`STATUSES`).

    Examples
    --------
    >>> rules = parse_case_rules({"response_minutes": {"urgent": 15}, "closure_working_days": {"urgent": 1}})
    >>> cases = pd.DataFrame({"id": ["A", "B"], "reported_at": ["2026-11-30 09:00"] * 2, "urgency": ["urgent"] * 2,
    ...                       "accepted_at": ["2026-11-30 09:10", None], "closed_at": [None, None]})
    >>> evaluate_cases(cases, rules=rules, as_of=pd.Timestamp("2026-11-30 10:00"))[["on_time", "overdue", "status"]].values.tolist()
    [[<NA>, False, 'accepted'], [False, True, 'open']]
    """
    zone = rules.time_zone
    as_of = pd.Timestamp(as_of)
    as_of = (as_of.tz_localize(zone) if as_of.tzinfo is None else as_of).tz_convert("UTC")
    out = cases.copy()
    reported = case_times(cases["reported_at"], zone=zone)
    empty = pd.Series(pd.NaT, index=cases.index, dtype="datetime64[ns, UTC]")
    accepted = case_times(cases["accepted_at"], zone=zone) if "accepted_at" in cases.columns else empty
    closed = case_times(cases["closed_at"], zone=zone) if "closed_at" in cases.columns else empty
    accepted, closed = accepted.where(accepted <= as_of), closed.where(closed <= as_of)
    answered = accepted.fillna(closed)
    due = case_deadlines(reported, cases["urgency"], rules=rules)
    out["response_due"], out["closure_due"] = due["response_due"], due["closure_due"]
    out["response_min"] = np.round((answered - reported).dt.total_seconds().to_numpy() / 60.0, 1)
    local = reported.dt.tz_convert(zone)
    out["closure_working_days"] = np.round(rules.calendar.working_days_between(local, closed.dt.tz_convert(zone)), 3)
    response_on_time = _step_on_time(answered, due["response_due"], as_of)
    closure_on_time = _step_on_time(closed, due["closure_due"], as_of)
    out["response_on_time"], out["closure_on_time"] = response_on_time, closure_on_time
    out["on_time"] = response_on_time & closure_on_time  # Kleene logic: False wins, NA while undecided
    late_response = answered.isna() & (due["response_due"] < as_of)
    late_closure = closed.isna() & (due["closure_due"] < as_of)
    out["overdue"] = (late_response | late_closure).to_numpy(bool)
    out["status"] = np.where(closed.notna(), "closed", np.where(accepted.notna(), "accepted", "open"))
    return out


def _step_on_time(done: pd.Series, due: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """True: done by its deadline (or no deadline and done); False: done late, or not done and past due;
    ``<NA>``: not done and not yet due. A step without a deadline is on time (True)."""
    no_limit = due.isna()
    decided_late = (done.notna() & (done > due)) | (done.isna() & (due < as_of))
    decided = done.notna() | decided_late | no_limit
    value = ~decided_late.to_numpy(bool) | no_limit.to_numpy(bool)
    return pd.Series(pd.array(value, dtype="boolean"), index=done.index).where(decided.to_numpy(bool), pd.NA)
