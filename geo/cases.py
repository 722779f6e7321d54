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

import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import ConfigError
from geo.lookup import _grid_fields, lookup_addresses, lookup_points

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
_ONE_DAY = timedelta(days=1)
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

    # ---------------------------------------------------------- one day, one case (the scalar path)
    def working_day(self, day: date) -> bool:
        """Whether one day is a working day (:meth:`is_working_day` for one ``date``).

        Examples
        --------
        >>> WorkCalendar(holidays=frozenset({date(2026, 10, 1)}), workdays=frozenset()).working_day(date(2026, 10, 1))
        False
        """
        return (day.weekday() < 5 and day not in self.holidays) or day in self.workdays

    def add_working_days_one(self, start: datetime, n: int) -> datetime:
        """:meth:`add_working_days` for one local wall time (naive ``datetime`` in, naive out): the same clock
        time on the ``n``-th following working day; a start on a non-working day counts from 00:00 of the next
        working day.

        Examples
        --------
        >>> cal = WorkCalendar(holidays=frozenset(), workdays=frozenset())
        >>> cal.add_working_days_one(datetime(2026, 11, 28, 10, 0), 1).strftime("%a %d %H:%M")
        'Tue 01 00:00'
        """
        if n < 0:
            raise ValueError("add_working_days: n must be 0 or more")
        day = start.date()
        clock = start - datetime.combine(day, time()) if self.working_day(day) else timedelta(0)
        while not self.working_day(day):  # numpy's roll="forward"
            day += _ONE_DAY
        for _ in range(int(n)):
            day += _ONE_DAY
            while not self.working_day(day):
                day += _ONE_DAY
        return datetime.combine(day, time()) + clock

    def working_days_count(self, first: date, last: date) -> int:
        """Working days from ``first`` (included) to ``last`` (excluded), by counting weeks, not days
        (``numpy.busday_count`` with this calendar).

        Examples
        --------
        >>> WorkCalendar(holidays=frozenset(), workdays=frozenset()).working_days_count(date(2026, 11, 27), date(2026, 12, 1))
        2
        """
        if last <= first:
            return 0
        days = (last - first).days
        weeks, rest = divmod(days, 7)
        count = weeks * 5 + sum((first.weekday() + k) % 7 < 5 for k in range(rest))
        count -= sum(1 for h in self.holidays if first <= h < last and h.weekday() < 5)
        count += sum(1 for w in self.workdays if first <= w < last and not (w.weekday() < 5 and w not in self.holidays))
        return count

    def working_days_between_one(self, start: datetime, end: datetime) -> float:
        """:meth:`working_days_between` for one pair of local wall times (naive ``datetime``): the working days
        elapsed, a working day counting 24 h (0 where ``end`` is not after ``start``), in the same float steps.

        Examples
        --------
        >>> WorkCalendar(holidays=frozenset(), workdays=frozenset()).working_days_between_one(
        ...     datetime(2026, 11, 27, 12, 0), datetime(2026, 11, 30, 12, 0))
        1.0
        """
        end = max(end, start)
        sd, ed = start.date(), end.date()
        fs = _ns_of_day(start) / _NS_PER_DAY
        fe = _ns_of_day(end) / _NS_PER_DAY
        ws = 1.0 if self.working_day(sd) else 0.0
        we = 1.0 if self.working_day(ed) else 0.0
        if sd == ed:
            days = ws * (fe - fs)
        else:
            days = ws * (1.0 - fs) + float(self.working_days_count(min(sd + _ONE_DAY, ed), ed)) + we * fe
        return float(np.round(days, 6))


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


# ---------------------------------------------------------------------- one case: the same rules, scalars
# The functions below are the rules above written for one case with ``datetime`` and plain Python values, for
# the case API's single intake (a one-row frame costs a millisecond per call). tests/test_cases_one.py holds
# each equal to its vectorised twin on the sample's case log and on edge cases.

#: The plain forms :func:`case_time` reads: a date, or a date and a time (``T`` or a space; minutes, seconds
#: and up to 6 decimals), with an optional ``Z`` or ``±HH[:MM]`` offset right after the time.
_PLAIN_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
                         r"(Z|[+-]\d{2}(?::?\d{2})?)?)?")


def _ns_of_day(wall: datetime) -> int:
    return ((wall.hour * 60 + wall.minute) * 60 + wall.second) * 10**9 + wall.microsecond * 1000


def _wall(instant: datetime, zone: str) -> datetime:
    """The local wall time (naive) of an aware instant in ``zone``."""
    return instant.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)


def _instant(wall: datetime, zone: str) -> datetime:
    """The UTC instant of a local wall time; ``ValueError`` where the wall time is ambiguous or does not
    exist in ``zone`` (a clock change), where pandas' ``tz_localize`` refuses it too."""
    tz = zoneinfo.ZoneInfo(zone)
    early, late = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if early.utcoffset() != late.utcoffset():
        raise ValueError(f"{wall.isoformat()} is ambiguous or does not exist in {zone}")
    return early.astimezone(timezone.utc)


def urgency_of(value) -> str | None:
    """One urgency as :func:`normalise_urgency` reads it: one of :data:`URGENCIES`, or ``None``.

    Examples
    --------
    >>> urgency_of(" 紧急"), urgency_of("Cross-Department"), urgency_of("soon")
    ('urgent', 'cross_department', None)
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    mapped = URGENCY_ALIASES.get(text, text).lower()
    mapped = URGENCY_ALIASES.get(mapped, mapped)
    return mapped if mapped in URGENCIES else None


def case_time(value, *, zone: str = DEFAULT_ZONE) -> datetime | None:
    """One case time as :func:`case_times` reads it, as an aware UTC ``datetime``, for the plain forms
    (``2026-11-30``, ``2026-11-30 09:15``, ``2026-11-30T09:15:00.5+08:00``, ``…Z``); ``None`` for anything else
    — empty, not a time, another ISO 8601 spelling, more than microseconds, a wall time a clock change makes
    ambiguous — which only :func:`case_times` decides.

    Examples
    --------
    >>> case_time("2026-11-30 09:15").isoformat(), case_time("2026-11-30T01:15:00Z").isoformat()
    ('2026-11-30T01:15:00+00:00', '2026-11-30T01:15:00+00:00')
    >>> case_time("30/11/2026") is None
    True
    """
    if not isinstance(value, str):
        return None
    found = _PLAIN_TIME.fullmatch(value.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    try:
        wall = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
        if offset is None:
            return _instant(wall, zone)
    except ValueError:
        return None
    if offset == "Z":
        return wall.replace(tzinfo=timezone.utc)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    if shift >= timedelta(hours=24):
        return None
    return (wall - sign * shift).replace(tzinfo=timezone.utc)


def case_deadline(reported: datetime, urgency: str, *, rules: CaseRules) -> tuple[datetime | None, datetime | None]:
    """:func:`case_deadlines` for one case: ``(response_due, closure_due)`` as aware UTC ``datetime``
    (``None`` where the urgency has no such limit). ``reported``: an aware instant.

    Examples
    --------
    >>> rules = parse_case_rules({"response_minutes": {"urgent": 15}, "closure_working_days": {"urgent": 1}})
    >>> due = case_deadline(case_time("2026-11-28 09:00"), "urgent", rules=rules)
    >>> [d.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai")).strftime("%a %d %H:%M") for d in due]
    ['Sat 28 09:15', 'Tue 01 00:00']
    """
    reported = reported.astimezone(timezone.utc)
    minutes = rules.response_minutes.get(urgency)
    response = None if minutes is None else reported + timedelta(microseconds=round(float(minutes) * 60_000_000))
    days = rules.closure_working_days.get(urgency)
    closure = None
    if days is not None:
        due = rules.calendar.add_working_days_one(_wall(reported, rules.time_zone), int(days))
        closure = _instant(due, rules.time_zone)
    return response, closure


def _one_step(done: datetime | None, due: datetime | None, as_of: datetime) -> bool | None:
    """:func:`_step_on_time` for one step."""
    if due is None:
        return True
    late = done > due if done is not None else due < as_of
    return False if late else (True if done is not None else None)


def evaluate_case(case: dict, *, rules: CaseRules, as_of: datetime) -> dict:
    """:func:`evaluate_cases` for one case: ``case`` holds ``reported_at`` (an aware instant), ``urgency`` (one
    of :data:`URGENCIES`) and optionally ``accepted_at``, ``closed_at`` (aware instants or ``None``); ``as_of``
    an aware instant. Returns the added fields: ``response_due``, ``closure_due`` (aware UTC or ``None``),
    ``response_min``, ``closure_working_days`` (float or ``None``), ``response_on_time``, ``closure_on_time``,
    ``on_time`` (``True``/``False``/``None`` while undecided), ``overdue``, ``status``.

    Examples
    --------
    >>> rules = parse_case_rules({"response_minutes": {"urgent": 15}, "closure_working_days": {"urgent": 1}})
    >>> judged = evaluate_case({"reported_at": case_time("2026-11-30 09:00"), "urgency": "urgent",
    ...                         "accepted_at": case_time("2026-11-30 09:10")}, rules=rules, as_of=case_time("2026-11-30 10:00"))
    >>> judged["on_time"], judged["overdue"], judged["status"], judged["response_min"]
    (None, False, 'accepted', 10.0)
    """
    reported = case["reported_at"]
    accepted, closed = case.get("accepted_at"), case.get("closed_at")
    accepted = accepted if accepted is not None and accepted <= as_of else None
    closed = closed if closed is not None and closed <= as_of else None
    answered = accepted if accepted is not None else closed
    response_due, closure_due = case_deadline(reported, case["urgency"], rules=rules)
    response_min = None
    if answered is not None:
        ns = (answered - reported) // timedelta(microseconds=1) * 1000
        response_min = float(np.round(float(ns) / 1e9 / 60.0, 1))
    closure_days = None
    if closed is not None:
        elapsed = rules.calendar.working_days_between_one(_wall(reported, rules.time_zone), _wall(closed, rules.time_zone))
        closure_days = float(np.round(elapsed, 3))
    response_on_time = _one_step(answered, response_due, as_of)
    closure_on_time = _one_step(closed, closure_due, as_of)
    on_time = False if False in (response_on_time, closure_on_time) else (
        None if None in (response_on_time, closure_on_time) else True)
    overdue = (answered is None and response_due is not None and response_due < as_of) or \
        (closed is None and closure_due is not None and closure_due < as_of)
    status = "closed" if closed is not None else ("accepted" if accepted is not None else "open")
    return {"response_due": response_due, "closure_due": closure_due, "response_min": response_min,
            "closure_working_days": closure_days, "response_on_time": response_on_time,
            "closure_on_time": closure_on_time, "on_time": on_time, "overdue": bool(overdue), "status": status}


#: How a case was placed: its own point, its household's point, its address (the lookup's matcher), or not.
LOCATED_BY = ("point", "household", "address", "none")
#: The columns :func:`locate_cases` gives, in order.
LOCATION_COLUMNS = ("lon", "lat", "located_by", "grid_id", "grid_name", "worker_name", "worker_phone", "community_id",
                    "street_id", "outside_grids", "distance_m", "lookup_method")


def locate_cases(lon: np.ndarray, lat: np.ndarray, household_id: pd.Series, address: pd.Series, *, index,
                 households: pd.DataFrame) -> pd.DataFrame:
    """Where each case is and whose it is, exactly as ``/lookup`` answers (:mod:`geo.lookup`).

    A case with a point (WGS-84 ``lon``/``lat``, NaN for none) is looked up there; else its household's point
    (``households``: ``id``, ``lon``, ``lat``, the analysis' location of each household); else its ``address``
    by the lookup's address matcher (placed at the matched building's, else estate's, inside point; an
    ambiguous address whose candidates all lie in one grid gets that grid and no point). A point in no grid gets
    the nearest grid and ``outside_grids`` true. A case that cannot be placed keeps ``located_by`` ``none`` and
    no grid (it is counted, not dropped). ``index``: a :class:`geo.lookup.LookupIndex` of the run's layers.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> from geo.lookup import build_index
    >>> grids = gpd.GeoDataFrame({"id": ["G2", "G1"], "name": ["二", "一"], "community_id": ["C1", "C1"],
    ...                           "worker_name": ["李", "王"], "worker_phone": ["2", "1"]},
    ...                          geometry=[box(104.065, 30.655, 104.070, 30.665), box(104.060, 30.655, 104.065, 30.665)], crs=4326)
    >>> homes = pd.DataFrame({"id": ["H1"], "lon": [104.061], "lat": [30.66]})
    >>> where = locate_cases(np.array([104.065, np.nan, 104.09]), np.array([30.66, np.nan, 30.66]),
    ...                      pd.Series([None, "H1", None]), pd.Series([None, None, None]),
    ...                      index=build_index(grids), households=homes)
    >>> where[["located_by", "grid_id", "outside_grids", "lookup_method"]].values.tolist()
    [['point', 'G1', False, 'boundary'], ['household', 'G1', False, 'grid'], ['point', 'G2', True, 'not_covered']]
    """
    n = len(lon)
    lon, lat = np.asarray(lon, dtype=float).copy(), np.asarray(lat, dtype=float).copy()
    by = np.where(np.isfinite(lon) & np.isfinite(lat), "point", "none").astype(object)
    hid = pd.Series(household_id).astype("string").to_numpy(dtype=object, na_value=None)
    todo = (by == "none") & pd.notna(hid)
    if todo.any():
        pos = pd.Index(households["id"].astype(str)).get_indexer(hid[todo])
        hx = np.where(pos >= 0, households["lon"].to_numpy(float)[np.maximum(pos, 0)], np.nan)
        hy = np.where(pos >= 0, households["lat"].to_numpy(float)[np.maximum(pos, 0)], np.nan)
        rows = np.flatnonzero(todo)[np.isfinite(hx)]
        lon[rows], lat[rows] = hx[np.isfinite(hx)], hy[np.isfinite(hx)]
        by[rows] = "household"
    out = pd.DataFrame({c: np.full(n, None, dtype=object) for c in LOCATION_COLUMNS})
    out["outside_grids"] = False
    out["distance_m"] = np.nan
    pointed = np.flatnonzero(by != "none")
    if len(pointed):
        answer = lookup_points(index, lon[pointed], lat[pointed])
        grid = pd.Index(index.grids.ids).get_indexer(np.where(answer["covered"], answer["grid_id"],
                                                              answer["nearest_grid_id"]).astype(object))
        _put(out, pointed, _grid_fields(index, grid), answer, outside=~answer["covered"].astype(bool))
    text = pd.Series(address).astype("string").str.strip()
    ask = np.flatnonzero((by == "none") & text.notna().to_numpy() & (text != "").fillna(False).to_numpy())
    if len(ask) and (index.buildings is not None or index.estates is not None):  # addresses name buildings, estates
        answer = lookup_addresses(index, text.iloc[ask].tolist())
        grid = pd.Index(index.grids.ids).get_indexer(answer["grid_id"].astype(object))
        alon, alat = _address_points(index, answer["building_id"], answer["estate_id"])
        in_grid = grid >= 0
        rows = ask[in_grid]
        _put(out, rows, _grid_fields(index, grid[in_grid]), {k: np.asarray(v, dtype=object)[in_grid]
                                                             for k, v in answer.items()}, outside=np.zeros(len(rows), bool))
        lon[ask], lat[ask] = alon, alat
        by[ask[in_grid | np.isfinite(alon)]] = "address"
        away = ask[~in_grid & np.isfinite(alon)]  # a known building in no grid: the nearest grid, as for a point
        if len(away):
            found = lookup_points(index, lon[away], lat[away])
            near = pd.Index(index.grids.ids).get_indexer(found["nearest_grid_id"].astype(object))
            _put(out, away, _grid_fields(index, near), found, outside=np.ones(len(away), bool))
    out["lon"], out["lat"], out["located_by"] = lon, lat, by
    out.loc[by == "none", ["lon", "lat"]] = np.nan
    out["lon"], out["lat"] = out["lon"].astype(float), out["lat"].astype(float)
    return out


def _put(out: pd.DataFrame, rows: np.ndarray, fields: dict, answer: dict, *, outside: np.ndarray) -> None:
    for column in ("grid_id", "grid_name", "worker_name", "worker_phone", "community_id", "street_id"):
        out.loc[rows, column] = np.asarray(fields[column], dtype=object)
    out.loc[rows, "outside_grids"] = np.asarray(outside, dtype=bool)
    out.loc[rows, "distance_m"] = np.asarray(answer["distance_m"], dtype=float)
    out.loc[rows, "lookup_method"] = np.asarray(answer["method"], dtype=object)


def _address_points(index, building_id: np.ndarray, estate_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inside point (WGS-84) of the building an address matched, else of its estate; NaN for neither."""
    lon, lat = np.full(len(building_id), np.nan), np.full(len(building_id), np.nan)
    for layer, ids in ((index.estates, estate_id), (index.buildings, building_id)):  # the building wins
        if layer is None or not len(ids):
            continue
        pos = pd.Index(layer.ids).get_indexer(pd.Series(ids, dtype=object).astype(str).where(pd.notna(ids), None))
        has = pos >= 0
        if has.any():
            inner = shapely.point_on_surface(layer.geom[pos[has]])
            lon[has], lat[has] = shapely.get_x(inner), shapely.get_y(inner)
    return lon, lat


#: The per-unit figures of :func:`case_shares`.
SHARE_COLUMNS = ("cases", "decided", "on_time", "share_on_time", "open", "overdue", "urgent_overdue")


def case_shares(cases: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Per ``unit`` (``grid_id``, ``community_id``, ``street_id``) of judged cases (:func:`evaluate_cases`):
    ``cases``; ``decided`` (``on_time`` known); ``on_time``; ``share_on_time`` (on time / decided; NaN with
    none decided); ``open`` (not closed); ``overdue``; ``urgent_overdue``. Indexed by the unit's id; cases in
    no unit are not listed.

    Examples
    --------
    >>> judged = pd.DataFrame({"grid_id": ["G1", "G1", "G2"], "on_time": pd.array([True, False, pd.NA]),
    ...                        "status": ["closed", "open", "open"], "overdue": [False, True, False],
    ...                        "urgency": ["general", "urgent", "general"]})
    >>> case_shares(judged, "grid_id").to_dict("index")["G1"]
    {'cases': 2, 'decided': 2, 'on_time': 1, 'share_on_time': 0.5, 'open': 1, 'overdue': 1, 'urgent_overdue': 1}
    """
    on_time = cases["on_time"].astype("boolean")
    overdue = cases["overdue"].to_numpy(bool)
    frame = pd.DataFrame({unit: cases[unit].astype("string").to_numpy(), "cases": 1,
                          "decided": on_time.notna().to_numpy(int), "on_time": on_time.fillna(False).to_numpy(int),
                          "open": (cases["status"].to_numpy() != "closed").astype(int), "overdue": overdue.astype(int),
                          "urgent_overdue": (overdue & (cases["urgency"].to_numpy() == "urgent")).astype(int)})
    out = frame.groupby(unit, sort=True).sum()
    out["share_on_time"] = np.round(out["on_time"] / out["decided"].where(out["decided"] > 0), 4)
    out.index = out.index.astype(str)
    return out[list(SHARE_COLUMNS)]


#: The columns of ``cases.geojson`` and of the workspace layer ``cases``, in order (then the point). No
#: ``household_id``: the household a case concerns stays in the input (``input_cases``); an output names no
#: special-group member, not even by the id of their household.
OUTPUT_COLUMNS = ("id", "reported_at", "urgency", "category", "source", "address", "accepted_at", "closed_at", "status",
                  "on_time", "overdue", "response_min", "closure_working_days", "response_due", "closure_due",
                  "response_on_time", "closure_on_time", "grid_id", "worker_name", "community_id", "street_id",
                  "located_by", "outside_grids", "distance_m")


def as_of_instant(day: date, *, rules: CaseRules) -> pd.Timestamp:
    """The end of ``day`` in the rules' zone (00:00 of the next day), the instant cases are judged at.

    Examples
    --------
    >>> as_of_instant(date(2026, 11, 30), rules=case_rules(None)).isoformat()
    '2026-12-01T00:00:00+08:00'
    """
    return (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(rules.time_zone)


@dataclass(frozen=True)
class JudgedCases:
    """The cases judged at ``as_of`` (located ones with their grid, unlocated ones without) and what was noticed:
    the cases reported after ``as_of`` (not judged) and, per year the calendar does not hold, the cases reported
    or due in it (``uncovered_years``)."""

    cases: pd.DataFrame
    as_of: pd.Timestamp
    reported_after: int
    uncovered_years: dict


def judge_cases(located: pd.DataFrame, *, rules: CaseRules, as_of: date) -> JudgedCases:
    """The located cases (input columns + :data:`LOCATION_COLUMNS`) reported by the end of ``as_of``, judged
    (:func:`evaluate_cases`); cases reported later are counted, not judged.

    Examples
    --------
    >>> located = pd.DataFrame({"id": ["A", "B"], "reported_at": ["2026-11-30 09:00", "2026-12-02 09:00"],
    ...                         "urgency": ["urgent", "general"], "grid_id": ["G1", "G1"]})
    >>> judged = judge_cases(located, rules=case_rules(None), as_of=date(2026, 11, 30))
    >>> judged.cases["overdue"].tolist(), judged.reported_after
    ([True], 1)
    """
    instant = as_of_instant(as_of, rules=rules)
    reported = case_times(located["reported_at"], zone=rules.time_zone)
    now = (reported < instant).to_numpy(bool)
    judged = evaluate_cases(located[now].reset_index(drop=True), rules=rules, as_of=instant)
    days = pd.concat([reported[now].reset_index(drop=True), judged["closure_due"]])  # a case's report and due date
    days = days.dt.tz_convert(rules.time_zone).dt.tz_localize(None).dropna()
    day = days.to_numpy("datetime64[D]")
    pairs = pd.DataFrame({"case": days.index.to_numpy(), "year": day.astype("datetime64[Y]").astype(np.int64) + 1970})
    pairs = pairs[~rules.calendar.covers(day)].drop_duplicates()
    years = {int(y): int(k) for y, k in pairs["year"].value_counts().sort_index().items()}
    return JudgedCases(cases=judged, as_of=instant, reported_after=int((~now).sum()), uncovered_years=years)


def _local_text(values: pd.Series, zone: str) -> np.ndarray:
    """Instants as local ISO 8601 text with the offset (``2026-11-30T11:00:00+08:00``); None where missing."""
    local = values.dt.tz_convert(zone)
    text = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(r"(\d{2})(\d{2})$", r"\1:\2", regex=True)
    return text.to_numpy(dtype=object, na_value=None)


def case_output(judged: pd.DataFrame, *, rules: CaseRules):
    """The judged cases as ``cases.geojson`` holds them: :data:`OUTPUT_COLUMNS` and the point (WGS-84; none
    where the case could not be placed, or was placed by an ambiguous address's grid only).

    Examples
    --------
    >>> located = pd.DataFrame({"id": ["A"], "reported_at": ["2026-11-30 09:00"], "urgency": ["urgent"],
    ...                         "accepted_at": ["2026-11-30 09:05"], "lon": [104.06], "lat": [30.66]})
    >>> out = case_output(judge_cases(located, rules=case_rules(None), as_of=date(2026, 11, 30)).cases, rules=case_rules(None))
    >>> out[["id", "status", "response_min", "response_due"]].values.tolist()
    [['A', 'accepted', 5.0, '2026-11-30T09:15:00+08:00']]
    """
    out = pd.DataFrame(index=judged.index)
    for column in OUTPUT_COLUMNS:
        if column in ("response_due", "closure_due"):
            out[column] = _local_text(judged[column], rules.time_zone)
        elif column in judged.columns:
            out[column] = judged[column].array if column in ("on_time", "response_on_time", "closure_on_time") \
                else judged[column].to_numpy()
        else:
            out[column] = None
    lon = judged["lon"].to_numpy(float) if "lon" in judged.columns else np.full(len(judged), np.nan)
    lat = judged["lat"].to_numpy(float) if "lat" in judged.columns else np.full(len(judged), np.nan)
    points = shapely.points(lon, lat)
    points[~(np.isfinite(lon) & np.isfinite(lat))] = None
    out["outside_grids"] = out["outside_grids"].fillna(False).astype(bool)
    return gpd.GeoDataFrame(out, geometry=points, crs="EPSG:4326")


def case_scorecard(judged: pd.DataFrame, *, communities: pd.DataFrame, streets: pd.DataFrame,
                   target: float) -> pd.DataFrame:
    """The scorecard's ``cases_on_time`` rows: per community and street, cases on time ÷ cases decided
    (:func:`case_shares`), against ``target``; value and pass empty where no case is decided.

    Examples
    --------
    >>> judged = pd.DataFrame({"community_id": ["C1", "C1"], "street_id": ["S1", "S1"], "on_time": pd.array([True, False]),
    ...                        "status": ["closed", "closed"], "overdue": [False, False], "urgency": ["general"] * 2})
    >>> rows = case_scorecard(judged, communities=pd.DataFrame({"id": ["C1"], "name": ["一社区"]}),
    ...                       streets=pd.DataFrame({"id": ["S1"], "name": ["一街道"]}), target=1.0)
    >>> rows[["level", "value", "pass", "numerator", "denominator"]].values.tolist()
    [['community', 0.5, False, 1, 2], ['street', 0.5, False, 1, 2]]
    """
    rows = []
    for level, key, table in (("community", "community_id", communities), ("street", "street_id", streets)):
        shares = case_shares(judged, key)
        for uid, name in zip(table["id"].astype(str), table["name"].astype(str)):
            got = shares.loc[uid] if uid in shares.index else None
            decided = int(got["decided"]) if got is not None else 0
            value = float(got["share_on_time"]) if decided else None
            rows.append({"level": level, "id": uid, "name": name, "indicator": "cases_on_time", "value": value,
                         "target": target, "pass": (value >= target) if value is not None else None,
                         "numerator": int(got["on_time"]) if got is not None else 0, "denominator": decided})
    return pd.DataFrame(rows)


def case_summary(found: JudgedCases, *, rules: CaseRules, input_cases: int, communities: pd.DataFrame,
                 streets: pd.DataFrame) -> dict:
    """summary.json's ``cases``: the rules, the instant judged, counts by urgency, status and location, on time,
    overdue, and the same per street and community (counts only: no case, household or person named)."""
    judged = found.cases

    def per(unit: str, table: pd.DataFrame) -> list[dict]:
        shares = case_shares(judged, unit)
        rows = []
        for uid, name in zip(table["id"].astype(str), table["name"].astype(str)):
            got = shares.loc[uid] if uid in shares.index else None
            figures = {c: (int(got[c]) if got is not None else 0) for c in SHARE_COLUMNS if c != "share_on_time"}
            share = None if got is None or pd.isna(got["share_on_time"]) else float(got["share_on_time"])
            rows.append({"id": uid, "name": name, **figures, "share_on_time": share})
        return rows

    on_time = judged["on_time"].astype("boolean")
    decided = int(on_time.notna().sum())
    kept = int(on_time.fillna(False).sum())
    overdue = judged["overdue"].to_numpy(bool)
    return {
        "as_of": found.as_of.isoformat(), "time_zone": rules.time_zone,
        "rules": {"response_minutes": rules.response_minutes, "closure_working_days": rules.closure_working_days,
                  "calendar_years": sorted(rules.calendar.years)},
        "input": int(input_cases), "judged": int(len(judged)), "reported_after_as_of": found.reported_after,
        "by_urgency": {u: int((judged["urgency"] == u).sum()) for u in URGENCIES},
        "by_status": {s: int((judged["status"] == s).sum()) for s in STATUSES},
        "located_by": {k: int((judged["located_by"] == k).sum()) for k in LOCATED_BY},
        "not_located": int((judged["located_by"] == "none").sum()),
        "outside_grids": int(judged["outside_grids"].fillna(False).astype(bool).sum()),
        "decided": decided, "on_time": kept, "share_on_time": round(kept / decided, 4) if decided else None,
        "overdue": int(overdue.sum()),
        "urgent_overdue": int((overdue & (judged["urgency"] == "urgent").to_numpy()).sum()),
        "years_without_calendar": {str(y): k for y, k in found.uncovered_years.items()},
        "per_street": per("street_id", streets), "per_community": per("community_id", communities),
    }
