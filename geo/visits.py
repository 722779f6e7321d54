"""Visit records (走访记录) against the plan's calendar rules: periods kept, missed, due and overdue.

Frames in, frames out; no file access. docs/tasks.md explains every rule.

* A rule per special group (:class:`VisitRule`, parsed from the ``[visit_rules]`` table of ``risk.toml`` by
  :func:`parse_visit_rules`): at least ``at_least`` visits of the counted ``kinds`` per ``iso_week`` or
  calendar ``month``.
* :func:`validate_visits` checks a visits table (``household_id``, ``visited_at``, ``worker``, ``kind``,
  ``outcome``, ``note``) and returns the clean rows and the rejected ones, each with its row, field and reason;
  :func:`visit_input_error` is the one-line error for the first of them.
* :func:`local_dates`: ``visited_at`` without an offset is local time of the rules' zone (Asia/Shanghai),
  with an offset it is converted to that zone; the local date is the visit's day.
* :func:`evaluate_visits` judges every completed period of the window ending at ``as_of``;
  :func:`share_periods_kept` sums it per grid, community or street.
* :func:`visits_due` lists, for a date, the households whose period is missed (overdue) or about to be
  (due); :func:`order_visit_list` puts a worker's list in its documented order.

Example
-------
>>> rules = parse_visit_rules({"elderly_alone": {"period": "iso_week", "at_least": 1}})
>>> households = pd.DataFrame({"id": ["H1", "H2"], "elderly_alone": [True, True]})
>>> visits = pd.DataFrame({"household_id": ["H1", "H1"], "visited_at": ["2026-11-23 09:00", "2026-11-30 23:59"],
...                        "worker": ["王芳", "王芳"]})
>>> result = evaluate_visits(households, visits, rules=rules, as_of="2026-12-06", window_weeks=2)
>>> result.households[["household_id", "periods", "periods_kept", "never_visited"]].to_string(index=False)
'household_id  periods  periods_kept  never_visited\\n          H1        2             2          False\\n          H2        2             0           True'
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date as _date

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo.errors import ConfigError, InputError
from geo.schema import SPECIAL_GROUPS

#: Local time of visit records without an offset, unless the rules say otherwise.
DEFAULT_ZONE = "Asia/Shanghai"
#: Calendar periods a rule may count over.
PERIODS = ("iso_week", "month")
#: Kinds of visit a record may have (入户 home, 电话 phone, 其他 other); empty means home.
KINDS = ("home", "phone", "other")
#: Spellings of the kinds accepted in the records, besides the English words.
KIND_ALIASES = {"入户": "home", "走访": "home", "上门": "home", "电话": "phone", "其他": "other", "": "home"}
#: Order of the groups in a worker's list when all else ties: the group whose lapse is red first (a severe
#: mental disorder), then the weekly visits (elderly living alone), then children in difficulty, then the rest.
GROUP_ORDER = ("mental_disorder", "elderly_alone", "child_in_difficulty")
#: Order of the risk colours in a worker's list (red first); a household without a colour comes last.
RISK_ORDER = ("red", "yellow", "blue", "none")
#: The columns of a rejected row before the row's own fields, as in the loader's rejects.geojson.
REJECT_COLUMNS = ("layer", "id", "field", "reason", "feature")

_RULE_KEYS = {"period", "at_least", "kinds", "due_within_days"}
_TABLE_KEYS = {"time_zone", "long_gap_weeks"}
_NS_PER_DAY = 86_400 * 10**9
_OFFSET = r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


@dataclass(frozen=True)
class VisitRule:
    """One special group's calendar rule: at least ``at_least`` visits of ``kinds`` per ``period``.

    ``due_within_days``: the current period's visits become *due* when no more days are left in it (today
    included) than ``due_within_days`` for each visit still needed.
    """

    group: str
    period: str
    at_least: int
    kinds: tuple[str, ...] = ("home",)
    due_within_days: int = 4


@dataclass(frozen=True)
class VisitRules:
    """The calendar rules by group, the zone of local dates and the yellow "long gap" in ISO weeks."""

    by_group: dict[str, VisitRule]
    zone: str = DEFAULT_ZONE
    long_gap_weeks: int = 4


@dataclass(frozen=True)
class VisitCheck:
    """A visits table checked: the usable rows and the rejected ones (:data:`REJECT_COLUMNS` + the row's fields)."""

    visits: pd.DataFrame
    rejects: gpd.GeoDataFrame


@dataclass(frozen=True)
class VisitEvaluation:
    """What :func:`evaluate_visits` found.

    ``by_group``: one row per household and rule group; ``households``: one row per special-group household
    (a household in two groups adds up both); ``periods``: the completed periods judged, per group.
    """

    by_group: pd.DataFrame
    households: pd.DataFrame
    periods: pd.DataFrame = field(default_factory=pd.DataFrame)


def parse_visit_rules(table: dict, *, source: str = "risk.toml") -> VisitRules:
    """The ``[visit_rules]`` table of a risk file as :class:`VisitRules`.

    Each sub-table is named after a special group and holds ``period`` (``iso_week`` or ``month``),
    ``at_least`` (a whole number ≥ 1), optionally ``kinds`` (default ``["home"]``: a phone call counts only
    where it is listed) and ``due_within_days`` (default 4 for weeks, 7 for months). Plain keys of the table:
    ``time_zone`` (default Asia/Shanghai) and ``long_gap_weeks`` (default 4).

    Raises
    ------
    ConfigError
        naming the file, the table and the key of a bad rule.

    Examples
    --------
    >>> rules = parse_visit_rules({"child_in_difficulty": {"period": "month", "at_least": 2, "kinds": ["home", "phone"]}})
    >>> rules.by_group["child_in_difficulty"]
    VisitRule(group='child_in_difficulty', period='month', at_least=2, kinds=('home', 'phone'), due_within_days=7)
    >>> parse_visit_rules({"elderly_alone": {"period": "week", "at_least": 1}})
    Traceback (most recent call last):
    ...
    geo.errors.ConfigError: risk.toml: [visit_rules.elderly_alone] period: 'week' is not a period (iso_week, month)
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [visit_rules] must be a table")
    by_group: dict[str, VisitRule] = {}
    for group, spec in table.items():
        if group in _TABLE_KEYS:
            continue
        where = f"{source}: [visit_rules.{group}]"
        if group not in SPECIAL_GROUPS:
            msg = f"{where}: not a special group (known: {', '.join(SPECIAL_GROUPS)}; plain keys: time_zone, long_gap_weeks)"
            raise ConfigError(msg)
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a table with period and at_least")
        unknown = sorted(set(spec) - _RULE_KEYS)
        if unknown:
            raise ConfigError(f"{where} {unknown[0]}: unknown key (known: {', '.join(sorted(_RULE_KEYS))})")
        for key in ("period", "at_least"):
            if key not in spec:
                raise ConfigError(f"{where} {key}: missing")
        period = spec["period"]
        if period not in PERIODS:
            raise ConfigError(f"{where} period: {period!r} is not a period ({', '.join(PERIODS)})")
        at_least = _whole(spec["at_least"], f"{where} at_least")
        kinds = spec.get("kinds", ["home"])
        if isinstance(kinds, str) or not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
            raise ConfigError(f"{where} kinds: {kinds!r} must be a non-empty list of {', '.join(KINDS)}")
        due = _whole(spec.get("due_within_days", 4 if period == "iso_week" else 7), f"{where} due_within_days")
        by_group[group] = VisitRule(group, period, at_least, tuple(dict.fromkeys(kinds)), due)
    zone = table.get("time_zone", DEFAULT_ZONE)
    check_zone(zone, where=f"{source}: [visit_rules] time_zone")
    gap = _whole(table.get("long_gap_weeks", 4), f"{source}: [visit_rules] long_gap_weeks")
    return VisitRules(by_group, zone, gap)


def _whole(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: must be a whole number of at least 1, got {value!r}")
    return int(value)


def check_zone(zone: object, *, where: str = "time zone") -> str:
    """``zone`` if it is an IANA time zone name; else a ConfigError naming ``where``.

    Examples
    --------
    >>> check_zone("Asia/Urumqi")
    'Asia/Urumqi'
    """
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: {zone!r} is not a time zone name (e.g. Asia/Shanghai)") from None
    return str(zone)


def local_dates(values: pd.Series, *, zone: str = DEFAULT_ZONE) -> pd.Series:
    """The local date (midnight, ``datetime64``) of each visit time; NaT where it is empty or not a date.

    A value without an offset (``2026-11-30``, ``2026-11-30 23:59``) is local time of ``zone``; one with an
    offset (``2026-11-29T16:30Z``, ``…+08:00``) or a time-zone-aware column is converted to ``zone`` first.

    Examples
    --------
    >>> local_dates(pd.Series(["2026-11-29 23:59", "2026-11-29T16:30:00Z", "2026-11-30", "30/11/2026"])).dt.strftime("%a %d").tolist()
    ['Sun 29', 'Mon 30', 'Mon 30', nan]
    """
    check_zone(zone)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        wall = values.dt.tz_convert(zone).dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        wall = values
    else:
        null = values.isna().to_numpy()
        text = values.astype(str).str.strip().where(~null)
        offset = text.str.contains(_OFFSET, regex=True, na=False).to_numpy()
        wall = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
        naive = ~offset & ~null
        if naive.any():
            wall[naive] = pd.to_datetime(text[naive], format="ISO8601", errors="coerce").astype("datetime64[us]")
        if offset.any():
            aware = pd.to_datetime(text[offset], format="ISO8601", errors="coerce", utc=True)
            wall[offset] = aware.dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[us]")
    return wall.dt.floor("D").astype("datetime64[s]")


def validate_visits(visits: pd.DataFrame, household_ids: pd.Series | np.ndarray, *, file: str = "visits",
                    zone: str = DEFAULT_ZONE) -> VisitCheck:
    """The usable visit records and the rejected ones, each with its row, field and reason.

    A row is rejected for the first of: ``household_id`` empty, or not among ``household_ids``;
    ``visited_at`` empty, or not a date/date-time (ISO 8601); ``worker`` empty; ``kind`` not home, phone or
    other (入户/走访/上门, 电话, 其他 accepted; empty means home). The clean frame keeps every column, with
    ``household_id`` a categorical of the known ids (evaluation looks each id up once), ``worker`` stripped
    text, ``kind`` a categorical of :data:`KINDS`, ``outcome`` and ``note`` (empty when
    absent), ``visited_on`` the local date (:func:`local_dates`) and ``feature`` the row's position (from 0).
    The rejects are the loader's (``layer``, ``id``, ``field``, ``reason``, ``feature``, then the row's fields
    as text; no geometry), so that they join its rejects.geojson.

    Raises
    ------
    InputError
        when a required column is missing (that is no row's fault).

    Examples
    --------
    >>> check = validate_visits(pd.DataFrame({"household_id": ["H1", "H9", "H1"],
    ...                                       "visited_at": ["2026-11-30", "2026-11-30", "yesterday"],
    ...                                       "worker": ["王芳", "王芳", "王芳"]}), pd.Series(["H1"]), file="visits.csv")
    >>> len(check.visits), check.rejects[["feature", "field", "reason"]].values.tolist()
    (1, [[1, 'household_id', "refers to households 'H9', not in households"], [2, 'visited_at', "not a date or date-time (YYYY-MM-DD, YYYY-MM-DD HH:MM, ISO 8601 with an offset): 'yesterday'"]])
    >>> str(visit_input_error(check.rejects, file="visits.csv"))
    "visits.csv: feature 1, field 'household_id': refers to households 'H9', not in households; --skip-invalid would leave it out"
    """
    missing = [c for c in ("household_id", "visited_at", "worker") if c not in visits.columns]
    if missing:
        msg = f"missing column (required: household_id, visited_at, worker; found: {', '.join(map(str, visits.columns))})"
        raise InputError(msg, file=file, field=missing[0])
    frame = visits.reset_index(drop=True)
    n = len(frame)
    keep = np.ones(n, dtype=bool)
    rows: list[tuple[np.ndarray, str, np.ndarray]] = []

    def reject(mask: np.ndarray, name: str, reason: str, shown: pd.Series | None = None) -> None:
        """Reject the rows of ``mask`` still kept; ``reason`` is followed by the value of ``shown`` when given."""
        mask = mask & keep
        if mask.any():
            where = np.flatnonzero(mask)
            why = np.full(len(where), reason, dtype=object)
            if shown is not None:
                why = why + np.array([repr(v) for v in shown.to_numpy(dtype=object)[where]], dtype=object)
            rows.append((where, name, why))
            keep[mask] = False

    as_given = _text(frame["household_id"])
    reject(as_given.isna().to_numpy(), "household_id", "is empty but required")
    household, codes = _known_households(as_given, household_ids)
    known = codes >= 0
    if not known.all():
        where = np.flatnonzero(~known & keep)
        why = np.array([f"refers to households {v!r}, not in households" for v in as_given.to_numpy()[where]],
                       dtype=object)
        if len(where):
            rows.append((where, "household_id", why))
            keep[where] = False
    time = frame["visited_at"]
    empty_time = time.isna().to_numpy() if pd.api.types.is_datetime64_any_dtype(time.dtype) else \
        _text(time).isna().to_numpy()
    reject(empty_time, "visited_at", "is empty but required")
    day = local_dates(time, zone=zone)
    reject(day.isna().to_numpy(), "visited_at",
           "not a date or date-time (YYYY-MM-DD, YYYY-MM-DD HH:MM, ISO 8601 with an offset): ", time)
    worker = _text(frame["worker"])
    reject(worker.isna().to_numpy(), "worker", "is empty but required")
    given = frame["kind"] if "kind" in frame.columns else pd.Series("", index=frame.index)
    kind = _kind_codes(given)
    reject(kind < 0, "kind", "not a visit kind (home, phone, other): ", given)

    clean = frame.assign(household_id=household, worker=worker,
                         kind=pd.Categorical.from_codes(kind, categories=KINDS),
                         outcome=frame["outcome"] if "outcome" in frame.columns else None,
                         note=frame["note"] if "note" in frame.columns else None,
                         visited_on=day, feature=np.arange(n))
    return VisitCheck(clean[keep].reset_index(drop=True), _rejects_frame(frame, rows))


def _known_households(household: pd.Series, household_ids: pd.Series | np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """``household`` as a categorical of the known ids, and each row's position among them (-1 when unknown)."""
    ids = pd.Index(_text(pd.Series(household_ids)).dropna().unique())
    codes = _positions(household, pd.Series(ids))
    return pd.Series(pd.Categorical.from_codes(codes, categories=ids), index=household.index), codes


def _kind_codes(given: pd.Series) -> np.ndarray:
    """Each row's position in :data:`KINDS` (aliases and case allowed, empty is home), -1 when not a kind."""
    spelling, spellings = pd.factorize(given.astype("string[pyarrow]").str.strip().fillna(""))  # few distinct
    named = pd.Series(spellings, dtype=object).str.lower().replace(KIND_ALIASES)
    return np.append(pd.Index(KINDS).get_indexer(named), -1)[spelling]


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped Arrow text, NA where empty; whole floats lose their ``.0`` (ids read as numbers)."""
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & (values % 1 == 0)
        values = values.astype(object).where(~whole, values[whole].astype("Int64").astype(str))
    text = values.astype("string[pyarrow]").str.strip()
    return text.mask(text.eq("").fillna(True))


def _positions(values: pd.Series, ids: pd.Series) -> np.ndarray:
    """The position of each value among ``ids`` (-1 where absent), hashed by Arrow: on 5M ids against 1M
    it takes a fifth of the time of ``pandas.Index.get_indexer``."""
    found = pc.index_in(pa.array(_text(values).array), value_set=pa.array(_text(ids).array))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _rejects_frame(frame: pd.DataFrame, rows: list) -> gpd.GeoDataFrame:
    if not rows:
        empty = {c: pd.Series([], dtype=object) for c in REJECT_COLUMNS}
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=4326))
    pos = np.concatenate([r[0] for r in rows])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    lead = pd.DataFrame({
        "layer": "visits",
        "id": _text(frame["id"]).to_numpy(dtype=object, na_value=None)[pos] if "id" in frame.columns else None,
        "field": np.concatenate([np.full(len(r[0]), r[1], dtype=object) for r in rows])[order],
        "reason": np.concatenate([r[2] for r in rows])[order],
        "feature": pos,
    })
    props = pd.DataFrame({c: frame[c].astype("string").to_numpy(dtype=object, na_value=None)[pos] for c in frame.columns
                          if c not in REJECT_COLUMNS and c != "geometry"})
    table = pd.concat([lead, props], axis=1)
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries([None] * len(table), crs=4326))


def visit_input_error(rejects: pd.DataFrame, *, file: str = "visits") -> InputError | None:
    """The one-line error for the first rejected visit row (None when there is none), as the loader says it.

    Examples
    --------
    >>> visit_input_error(validate_visits(pd.DataFrame(columns=["household_id", "visited_at", "worker"]), []).rejects) is None
    True
    """
    if rejects is None or not len(rejects):
        return None
    first = rejects.iloc[0]
    return InputError(f"{first['reason']}; --skip-invalid would leave it out", file=file, index=int(first["feature"]),
                      feature_id=first["id"], field=str(first["field"]))


def _day_number(value: object) -> int:
    """Days since 1970-01-01 of a date, a date-time (its date) or an ISO text."""
    stamp = pd.Timestamp(value) if not isinstance(value, _date) else pd.Timestamp(value.isoformat()[:10])
    return int(np.datetime64(stamp.date(), "D").astype(np.int64))


def _keys(period: str, days: np.ndarray) -> np.ndarray:
    """The period each day (days since 1970-01-01) falls in: ISO weeks counted from Monday 1969-12-29, months
    from January 1970."""
    if period == "iso_week":
        return (days + 3) // 7
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _bounds(period: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last day of each period key."""
    keys = np.asarray(keys, dtype=np.int64)
    if period == "iso_week":
        first = keys * 7 - 3
        return first, first + 6
    first = keys.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    last = (keys + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1
    return first, last


def completed_periods(period: str, as_of: object, *, window_weeks: int = 12) -> pd.DataFrame:
    """The periods judged at the end of day ``as_of``: those that end on or before ``as_of`` and start after
    ``as_of − 7 × window_weeks`` days (the window is the 7 × window_weeks days ending with ``as_of``).

    Examples
    --------
    >>> completed_periods("iso_week", "2026-12-02", window_weeks=2)[["label", "first", "last"]].to_string(index=False)
    '   label      first       last\\n2026-W48 2026-11-23 2026-11-29'
    >>> completed_periods("month", "2028-03-31", window_weeks=9)["label"].tolist()
    ['2028-02', '2028-03']
    """
    keys = _completed_keys(period, _day_number(as_of), window_weeks)
    first, last = _bounds(period, keys)
    days = pd.Series(first.astype("datetime64[D]")).astype("datetime64[s]")
    if period == "iso_week":
        iso = days.dt.isocalendar()
        label = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    else:
        label = days.dt.strftime("%Y-%m")
    return pd.DataFrame({"key": keys, "label": label.to_numpy(dtype=object), "first": days,
                         "last": pd.Series(last.astype("datetime64[D]")).astype("datetime64[s]")})


def _completed_keys(period: str, end: int, window_weeks: int) -> np.ndarray:
    """Keys of the periods lying wholly in the 7 × window_weeks days ending with day number ``end``."""
    start = end - 7 * window_weeks + 1
    first_key = int(_keys(period, np.array([start - 1]))[0]) + 1
    last_key = int(_keys(period, np.array([end + 1]))[0]) - 1
    keys = np.arange(first_key, last_key + 1, dtype=np.int64)
    return keys[_bounds(period, keys)[0] >= start]


def _as_dates(days: np.ndarray) -> np.ndarray:
    """Day numbers as datetime64[s] (NaT where the number is the missing marker)."""
    out = days.astype("datetime64[D]").astype("datetime64[s]")
    out[days == _NONE] = np.datetime64("NaT")
    return out


_NONE = np.iinfo(np.int64).min


@dataclass
class _Prepared:
    ids: np.ndarray                 # household ids (text)
    flags: dict                     # group -> bool array over households
    pos: np.ndarray                 # each usable visit's household position
    day: np.ndarray                 # each usable visit's local day number
    kind: np.ndarray                # each usable visit's kind (its position in KINDS)


def _prepare(households: pd.DataFrame, visits: pd.DataFrame, rules: VisitRules, zone: str, upto: int) -> _Prepared:
    """Households' ids and group flags; the visits on or before day ``upto`` matched to household positions.
    A visits frame that did not come through :func:`validate_visits` is checked here (bad rows raise)."""
    ids = _text(households["id"]).to_numpy(dtype=object)
    if "visited_on" not in visits.columns:
        check = validate_visits(visits, ids, zone=zone)
        error = visit_input_error(check.rejects)
        if error is not None:
            raise error
        visits = check.visits
    day = visits["visited_on"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    given = visits["household_id"]
    if isinstance(given.dtype, pd.CategoricalDtype):  # as validate_visits gives it: look up each id once
        codes = given.cat.codes.to_numpy()
        known = _positions(pd.Series(given.cat.categories), pd.Series(ids))
        pos = np.append(known, -1)[np.where(codes < 0, -1, codes)]
    else:
        pos = _positions(given, pd.Series(ids))
    kind = pd.Categorical(visits["kind"], categories=KINDS).codes if "kind" in visits.columns \
        else np.zeros(len(visits), np.int8)
    ok = (pos >= 0) & (day <= upto) & (day != _NONE)
    flags = {g: (households[g].fillna(False).astype(bool).to_numpy() if g in households.columns
                 else np.zeros(len(ids), bool)) for g in rules.by_group}
    return _Prepared(ids, flags, pos[ok], day[ok], kind[ok])


def _counts(prep: _Prepared, rule: VisitRule, member_rank: np.ndarray, n_members: int, first_key: int,
            n_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Visits of the rule's kinds per member and period (``n_members × n_periods``, periods from
    ``first_key``) and each member's last such visit (day number, or the missing marker)."""
    rank = member_rank[prep.pos]
    use = (rank >= 0) & np.isin(prep.kind, [KINDS.index(k) for k in rule.kinds])
    rank, day = rank[use], prep.day[use]
    last = np.full(n_members, _NONE, dtype=np.int64)
    np.maximum.at(last, rank, day)
    col = _keys(rule.period, day) - first_key
    inside = (col >= 0) & (col < n_periods)
    flat = rank[inside] * n_periods + col[inside]
    counts = np.bincount(flat, minlength=n_members * n_periods).reshape(n_members, n_periods)
    return counts, last


def evaluate_visits(households: pd.DataFrame, visits: pd.DataFrame, *, rules: VisitRules, as_of: object,
                    window_weeks: int = 12, zone: str | None = None) -> VisitEvaluation:
    """Each special-group household's visits against its groups' rules, over the completed periods of the
    window ending at ``as_of`` (see :func:`completed_periods`; the day ``as_of`` itself is included).

    ``households`` holds ``id`` and the group flags; ``visits`` the clean frame of :func:`validate_visits`
    (or a raw one, checked here). Visits after ``as_of`` are ignored. Per household and group
    (``by_group``): ``periods`` judged, ``periods_kept`` (at least ``at_least`` visits of the rule's kinds),
    ``periods_missed``, ``visits_required`` (periods × at_least), ``visits_done`` (counted visits, at most
    ``at_least`` per period: a second visit in one week does not make up for a missed week), ``last_visit``
    (last visit of a counted kind), ``next_visit_due`` (the last day of the first period from the current
    one on whose visits are not all made yet), ``last_period_missed`` (the last completed period of the window
    was missed; False when the window holds no whole period of the rule) and ``never_visited`` (no record of
    any kind up to ``as_of``).
    Per household (``households``): the sums over its groups, ``groups`` (comma-separated),
    ``last_visit`` (of any kind), the earliest ``next_visit_due``, ``last_period_missed`` (in any of its
    groups), ``never_visited`` and ``long_visit_gap``:
    an elderly person living alone with no home visit in the last ``long_gap_weeks`` (4) completed ISO weeks
    nor in the current week so far (the plan's yellow "visited less than once a month").

    Examples
    --------
    >>> rules = parse_visit_rules({"elderly_alone": {"period": "iso_week", "at_least": 1},
    ...                            "child_in_difficulty": {"period": "month", "at_least": 2}})
    >>> households = pd.DataFrame({"id": ["H1"], "elderly_alone": [True], "child_in_difficulty": [True]})
    >>> visits = pd.DataFrame({"household_id": ["H1"] * 3, "worker": "李强",
    ...                        "visited_at": ["2026-11-02", "2026-11-16", "2026-11-30"]})
    >>> out = evaluate_visits(households, visits, rules=rules, as_of="2026-11-30", window_weeks=5)
    >>> out.by_group[["group", "periods", "periods_kept", "visits_required", "visits_done"]].values.tolist()
    [['elderly_alone', 4, 2, 4, 2], ['child_in_difficulty', 1, 1, 2, 2]]
    >>> out.households[["groups", "periods_missed", "next_visit_due"]].astype(str).values.tolist()
    [['elderly_alone,child_in_difficulty', '2', '2026-12-13']]
    """
    zone = check_zone(zone or rules.zone)
    as_of_day = _day_number(as_of)
    prep = _prepare(households, visits, rules, zone, as_of_day)
    n = len(prep.ids)
    parts, period_rows = [], []
    for group, rule in rules.by_group.items():
        members = np.flatnonzero(prep.flags[group])
        periods = completed_periods(rule.period, as_of, window_weeks=window_weeks)
        period_rows.append(periods.assign(group=group, period=rule.period))
        current = int(_keys(rule.period, np.array([as_of_day + 1]))[0])
        first_key = int(periods["key"].iloc[0]) if len(periods) else current
        n_periods = current + 2 - first_key  # the judged periods, then the current and the next one
        rank = np.full(n, -1, dtype=np.int64)
        rank[members] = np.arange(len(members))
        counts, last = _counts(prep, rule, rank, len(members), first_key, n_periods)
        judged = counts[:, :len(periods)]
        kept = (judged >= rule.at_least).sum(axis=1)
        now_met = counts[:, n_periods - 2] >= rule.at_least
        _, due_last = _bounds(rule.period, np.array([current, current + 1]))
        parts.append(pd.DataFrame({
            "household_id": prep.ids[members], "group": group, "period": rule.period, "at_least": rule.at_least,
            "periods": len(periods), "periods_kept": kept, "periods_missed": len(periods) - kept,
            "visits_required": len(periods) * rule.at_least,
            "visits_done": np.minimum(judged, rule.at_least).sum(axis=1),
            "last_visit": _as_dates(last), "next_visit_due": _as_dates(np.where(now_met, due_last[1], due_last[0])),
            "last_period_missed": judged[:, -1] < rule.at_least if len(periods) else np.zeros(len(members), bool),
            "_pos": members,
        }))
    if not parts:  # no rules: nothing to judge, the same columns
        parts = [pd.DataFrame({c: pd.Series([], dtype=object if c in ("household_id", "group", "period") else
                                            "datetime64[s]" if c in ("last_visit", "next_visit_due") else np.int64)
                               for c in ("household_id", "group", "period", "at_least", "periods", "periods_kept",
                                         "periods_missed", "visits_required", "visits_done", "last_visit",
                                         "next_visit_due", "last_period_missed", "_pos")})]
    by_group = pd.concat(parts, ignore_index=True)
    seen_any = np.zeros(n, dtype=bool)
    seen_any[prep.pos] = True
    any_last = np.full(n, _NONE, dtype=np.int64)
    np.maximum.at(any_last, prep.pos, prep.day)
    by_group["never_visited"] = ~seen_any[by_group["_pos"].to_numpy(dtype=np.int64)]
    summary = _household_summary(by_group, prep, rules, as_of_day, any_last, seen_any)
    periods = pd.concat(period_rows, ignore_index=True)[["group", "period", "label", "first", "last"]] \
        if period_rows else pd.DataFrame(columns=["group", "period", "label", "first", "last"])
    return VisitEvaluation(by_group.drop(columns="_pos"), summary, periods)


def _household_summary(by_group: pd.DataFrame, prep: _Prepared, rules: VisitRules, as_of_day: int,
                       any_last: np.ndarray, seen_any: np.ndarray) -> pd.DataFrame:
    """One row per special-group household: sums over its groups and the household-wide flags."""
    grouped = by_group.groupby("_pos", sort=True)
    sums = grouped[["visits_required", "visits_done", "periods", "periods_kept", "periods_missed"]].sum()
    pos = sums.index.to_numpy(dtype=np.int64)
    names = np.asarray(list(rules.by_group), dtype=object)
    group_no = pd.Categorical(by_group["group"], categories=names).codes
    member = np.zeros((len(prep.ids), len(names)), dtype=bool)
    member[by_group["_pos"].to_numpy(dtype=np.int64), group_no] = True
    groups = _joined(member[pos], names)
    gap = np.zeros(len(prep.ids), dtype=bool)
    elderly = prep.flags.get("elderly_alone")
    if elderly is not None:
        last_week = int(_keys("iso_week", np.array([as_of_day + 1]))[0]) - 1
        since = int(_bounds("iso_week", np.array([last_week - rules.long_gap_weeks + 1]))[0][0])
        home = (prep.kind == KINDS.index("home")) & (prep.day >= since)
        visited = np.zeros(len(prep.ids), dtype=bool)
        visited[prep.pos[home]] = True
        gap = elderly & ~visited
    return pd.DataFrame({
        "household_id": prep.ids[pos], "groups": groups,
        **{c: sums[c].to_numpy() for c in sums.columns},
        "last_visit": _as_dates(any_last[pos]),
        "next_visit_due": grouped["next_visit_due"].min().to_numpy(),
        "last_period_missed": grouped["last_period_missed"].any().to_numpy(bool),
        "never_visited": ~seen_any[pos], "long_visit_gap": gap[pos],
    })


def _joined(member: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Comma-joined names of the True columns of each row, built per distinct combination (few), not per row."""
    code = member.astype(np.int64) @ (1 << np.arange(member.shape[1], dtype=np.int64))
    uniq, inverse = np.unique(code, return_inverse=True)
    text = np.array([",".join(names[(u >> np.arange(len(names))) & 1 == 1]) for u in uniq], dtype=object)
    return text[inverse]


def share_periods_kept(result: pd.DataFrame, households: pd.DataFrame, *, unit: str) -> pd.DataFrame:
    """The share of periods kept per unit (``grid_id``, ``community_id``, ``street_id`` …): the sum of
    ``periods_kept`` over the sum of ``periods`` of its special-group households (a household in two groups
    counts both groups' periods). ``result`` is :attr:`VisitEvaluation.households` (or ``by_group``);
    ``households`` holds ``id`` and the ``unit`` column. A household in no unit is counted under an empty
    unit (NaN), not dropped.

    Examples
    --------
    >>> result = pd.DataFrame({"household_id": ["H1", "H2", "H3"], "periods": [12, 12, 3], "periods_kept": [12, 6, 0],
    ...                        "never_visited": [False, False, True]})
    >>> households = pd.DataFrame({"id": ["H1", "H2", "H3"], "grid_id": ["G1", "G1", None]})
    >>> share_periods_kept(result, households, unit="grid_id").to_string(index=False)
    'grid_id  households  periods  periods_kept  share_kept  never_visited\\n     G1           2       24            18        0.75              0\\n    NaN           1        3             0        0.00              1'
    """
    ids = pd.Index(_text(households["id"]))
    where = _positions(result["household_id"], pd.Series(ids))
    unit_of = households[unit].to_numpy(dtype=object)
    frame = pd.DataFrame({unit: np.where(where >= 0, unit_of[np.maximum(where, 0)], None),
                          "household_id": result["household_id"].to_numpy(),
                          "periods": result["periods"].to_numpy(), "periods_kept": result["periods_kept"].to_numpy(),
                          "never_visited": result["never_visited"].to_numpy(bool)})
    grouped = frame.groupby(unit, dropna=False, sort=True)
    out = grouped.agg(households=("household_id", "nunique"), periods=("periods", "sum"),
                      periods_kept=("periods_kept", "sum"))
    out["share_kept"] = np.round(out["periods_kept"] / out["periods"].where(out["periods"] > 0), 4)
    out["never_visited"] = frame.drop_duplicates("household_id").groupby(unit, dropna=False)["never_visited"].sum()
    return out.reset_index()


def visits_due(households: pd.DataFrame, visits: pd.DataFrame, *, rules: VisitRules, date: object,
               lookback_weeks: int = 12, zone: str | None = None) -> pd.DataFrame:
    """The visits a grid worker owes on ``date`` (its morning; visits recorded on ``date`` already count):
    one row per household and group that is overdue or due, in no particular order (see
    :func:`order_visit_list`).

    * ``overdue``: the last completed period (ended before ``date``) was missed and the current period's
      visits are not all made yet. ``periods_missed`` is the unbroken run of missed periods up to the current
      one (looked back over ``lookback_weeks``), ``overdue_since`` the day after the first of them ended and
      ``overdue_days`` = ``date`` − its last day (1 on the Monday after a missed week; at most the lookback).
    * ``due``: not overdue, the current period still needs ``visits_needed`` visits and the days left in it
      (today included, ``days_left``) are no more than ``visits_needed × due_within_days`` of the rule.

    Every row says what is due: ``group``, ``visits_needed`` (in the current period), ``period_end`` (its last
    day), ``days_left``, and ``last_visit`` (of a counted kind). A ``risk`` column of ``households`` is carried.

    Examples
    --------
    >>> rules = parse_visit_rules({"elderly_alone": {"period": "iso_week", "at_least": 1}})
    >>> households = pd.DataFrame({"id": ["H1", "H2", "H3"], "elderly_alone": True})
    >>> visits = pd.DataFrame({"household_id": ["H1", "H2", "H3"], "worker": "王芳",
    ...                        "visited_at": ["2026-11-20", "2026-11-27", "2026-12-03"]})
    >>> visits_due(households, visits, rules=rules, date="2026-12-04")[["household_id", "state", "overdue_days", "days_left"]].values.tolist()
    [['H1', 'overdue', 5, 3], ['H2', 'due', 0, 3]]
    """
    zone = check_zone(zone or rules.zone)
    today = _day_number(date)
    prep = _prepare(households, visits, rules, zone, today)
    n = len(prep.ids)
    parts = []
    for group, rule in rules.by_group.items():
        members = np.flatnonzero(prep.flags[group])
        current = int(_keys(rule.period, np.array([today]))[0])
        back = _completed_keys(rule.period, today - 1, lookback_weeks)
        first_key = int(back[0]) if len(back) else current
        n_periods = current + 1 - first_key
        rank = np.full(n, -1, dtype=np.int64)
        rank[members] = np.arange(len(members))
        counts, last = _counts(prep, rule, rank, len(members), first_key, n_periods)
        missed = counts[:, :-1] < rule.at_least
        k = missed.shape[1]
        ok_rev = ~missed[:, ::-1]
        run = np.where(ok_rev.any(axis=1), ok_rev.argmax(axis=1), k) if k else np.zeros(len(members), np.int64)
        needed = np.maximum(rule.at_least - counts[:, -1], 0)
        first_missed = first_key + k - run
        _, first_missed_end = _bounds(rule.period, first_missed)
        _, period_end = _bounds(rule.period, np.array([current]))
        days_left = int(period_end[0]) - today + 1
        overdue = (run > 0) & (needed > 0)
        due = ~overdue & (needed > 0) & (days_left <= needed * rule.due_within_days)
        take = overdue | due
        parts.append(pd.DataFrame({
            "household_id": prep.ids[members[take]], "group": group,
            "state": np.where(overdue[take], "overdue", "due").astype(object),
            "overdue_since": _as_dates(np.where(overdue, first_missed_end + 1, _NONE)[take]),
            "overdue_days": np.where(overdue, today - first_missed_end, 0)[take],
            "periods_missed": np.where(overdue, run, 0)[take],
            "visits_needed": needed[take], "period_end": _as_dates(np.full(int(take.sum()), period_end[0])),
            "days_left": days_left, "last_visit": _as_dates(last[take]), "_pos": members[take],
        }))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[
        "household_id", "group", "state", "overdue_since", "overdue_days", "periods_missed", "visits_needed",
        "period_end", "days_left", "last_visit", "_pos"])
    if "risk" in households.columns:
        out["risk"] = households["risk"].to_numpy(dtype=object)[out["_pos"].to_numpy(dtype=np.int64)]
    return out.drop(columns="_pos").sort_values(["household_id", "group"], kind="stable").reset_index(drop=True)


def order_visit_list(tasks: pd.DataFrame) -> pd.DataFrame:
    """A worker's list in its order: red before yellow before the rest (``risk`` column, when present); then
    overdue before due; then more overdue days first; then fewer days left in the period; then the group
    (:data:`GROUP_ORDER`); then the household id. A household with several rows (several groups) is listed
    once in a block, at the place of its most urgent row.

    Examples
    --------
    >>> tasks = pd.DataFrame({"household_id": ["H1", "H2", "H3", "H2"], "state": ["due", "overdue", "overdue", "due"],
    ...                       "overdue_days": [0, 3, 10, 0], "days_left": [2, 5, 5, 2],
    ...                       "group": ["elderly_alone", "elderly_alone", "child_in_difficulty", "mental_disorder"],
    ...                       "risk": ["red", "yellow", "yellow", "yellow"]})
    >>> order_visit_list(tasks)[["household_id", "group"]].values.tolist()
    [['H1', 'elderly_alone'], ['H3', 'child_in_difficulty'], ['H2', 'elderly_alone'], ['H2', 'mental_disorder']]
    """
    if not len(tasks):
        return tasks.reset_index(drop=True)
    colour = tasks["risk"] if "risk" in tasks.columns else pd.Series("none", index=tasks.index)
    risk_rank = pd.Categorical(colour.fillna("none"), categories=RISK_ORDER).codes
    risk_rank = np.where(risk_rank < 0, len(RISK_ORDER), risk_rank)
    groups = list(GROUP_ORDER) + sorted(set(tasks["group"]) - set(GROUP_ORDER))
    keys = pd.DataFrame({"risk": risk_rank, "state": (tasks["state"] != "overdue").to_numpy(int),
                         "late": -tasks["overdue_days"].to_numpy(), "left": tasks["days_left"].to_numpy(),
                         "group": pd.Categorical(tasks["group"], categories=groups).codes,
                         "id": tasks["household_id"].to_numpy()}, index=tasks.index)
    row_rank = pd.Series(np.arange(len(keys)), index=keys.sort_values(list(keys.columns), kind="stable").index)
    row_rank = row_rank.reindex(tasks.index)
    block = row_rank.groupby(tasks["household_id"].to_numpy()).transform("min").to_numpy()
    order = np.lexsort((row_rank.to_numpy(), block))
    return tasks.iloc[order].reset_index(drop=True)
