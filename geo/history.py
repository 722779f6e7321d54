"""Snapshots of the scorecard over time (指标月度快照): the history rows, the monthly series and what changed.

Every ``analyze --as-of DATE`` keeps its scorecard as the snapshot of that date: the rows of
:func:`snapshot_rows` (one per unit, indicator and as_of) and the members of :func:`snapshot_members` (the
households that were red, the grids that were overloaded, the cases that were overdue: ids, kept only in the
workspace). :func:`merge_history` carries earlier snapshots forward (the same as_of run again replaces that
date), :func:`monthly_snapshots` picks each month's latest, :func:`build_trend` makes the public trend (counts
only) and :func:`what_changed` compares a snapshot with the one of the month before. docs/history.md has the
design. Frames in, frames out: reading and writing them is :mod:`gridcover.io.history`'s.

Example
-------
>>> card = pd.DataFrame({"level": ["community"], "id": ["C1"], "name": ["东社区"], "indicator": ["visits_on_time"],
...                      "value": [0.8], "target": [1.0], "pass": [False], "numerator": [8], "denominator": [10]})
>>> old = snapshot_rows(card, as_of=date(2026, 10, 31))
>>> new = snapshot_rows(card.assign(value=[0.9]), as_of=date(2026, 11, 30))
>>> merge_history(old, new)[["as_of", "value"]].to_dict("records")
[{'as_of': '2026-10-31', 'value': 0.8}, {'as_of': '2026-11-30', 'value': 0.9}]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

#: The columns of a scorecard snapshot row (table ``scorecard_history``), keyed by as_of, level, id, indicator.
HISTORY_COLUMNS = ("as_of", "level", "id", "name", "indicator", "value", "target", "target_year", "pass",
                   "numerator", "denominator", "note", "recorded")
HISTORY_KEY = ("as_of", "level", "id", "indicator")
#: The columns of a snapshot member (table ``scorecard_history_ids``): who or what was red, overloaded, overdue.
MEMBER_COLUMNS = ("as_of", "kind", "id", "name", "grid_id", "community_id", "street_id")
#: Member kinds, and the ``level`` they have in the history CSV (one long file holds rows and members).
MEMBER_KINDS = {"red_household": "household", "overloaded_grid": "grid", "overdue_case": "case"}
#: Levels of the scorecard kept in the trend (zones are kept in history, not drawn).
TREND_LEVELS = ("community", "street")
#: Indicators where a lower value is better (all others: higher is better).
LOWER_IS_BETTER = frozenset({"households_per_worker"})
#: How many monthly points the trend shows.
TREND_MONTHS = 12


@dataclass(frozen=True)
class History:
    """Earlier snapshots: scorecard rows (:data:`HISTORY_COLUMNS`) and members (:data:`MEMBER_COLUMNS`)."""

    rows: pd.DataFrame
    members: pd.DataFrame

    @classmethod
    def empty(cls) -> "History":
        return cls(rows=pd.DataFrame({c: pd.Series([], dtype=object) for c in HISTORY_COLUMNS}),
                   members=pd.DataFrame({c: pd.Series([], dtype=object) for c in MEMBER_COLUMNS}))

    @property
    def dates(self) -> list[str]:
        """The as_of dates held, oldest first."""
        return sorted(set(self.rows["as_of"].astype(str)) | set(self.members["as_of"].astype(str)))

    def merged(self, later: "History") -> "History":
        """These snapshots with ``later``'s added; a date ``later`` holds replaces the same date here."""
        return History(rows=merge_history(self.rows, later.rows), members=merge_history(self.members, later.members,
                                                                                        key=("as_of", "kind", "id")))


def _iso(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)[:10]


def snapshot_rows(scorecard: pd.DataFrame, *, as_of: date, recorded: str = "") -> pd.DataFrame:
    """The history rows of one run's scorecard (every level it has), dated ``as_of``.

    Parameters
    ----------
    scorecard
        :func:`geo.risk.build_scorecard`'s rows (and the zone rows): ``level``, ``id``, ``name``, ``indicator``,
        ``value``, ``target``, ``pass``, ``numerator``, ``denominator``; ``target_year`` and ``note`` if present.
    as_of
        The run's date (``--as-of``).
    recorded
        When the run was made (ISO 8601), for the record.

    Examples
    --------
    >>> card = pd.DataFrame({"level": ["street"], "id": ["S1"], "name": ["街道"], "indicator": ["basic_services"],
    ...                      "value": [1.0], "target": [1.0], "pass": [True], "numerator": [3], "denominator": [3]})
    >>> snapshot_rows(card, as_of=date(2026, 11, 30))[["as_of", "id", "target_year"]].to_dict("records")
    [{'as_of': '2026-11-30', 'id': 'S1', 'target_year': None}]
    """
    out = pd.DataFrame(index=scorecard.index)
    for column in HISTORY_COLUMNS:
        out[column] = scorecard[column].to_numpy(dtype=object) if column in scorecard.columns else None
    out["as_of"] = _iso(as_of)
    out["recorded"] = recorded
    out["id"] = out["id"].astype(str)
    for column in ("value", "target", "numerator", "denominator"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
    out["target_year"] = [None if pd.isna(v) else int(v) for v in out["target_year"]]
    return out.reset_index(drop=True)


def snapshot_members(households: pd.DataFrame, grids: pd.DataFrame, *, as_of: date,
                     cases: pd.DataFrame | None = None) -> pd.DataFrame:
    """Who or what was wrong on ``as_of``: red households, overloaded grids and (with cases) overdue cases.

    ``households`` carry ``id``, ``risk``, ``grid_id``, ``community_id``, ``street_id``; ``grids`` ``id``,
    ``name``, ``community_id`` and ``over_capacity``; ``cases`` (optional) ``id``, ``overdue`` and where known
    ``grid_id``, ``community_id``, ``street_id``. Vectorised: one mask per kind.

    Examples
    --------
    >>> hh = pd.DataFrame({"id": ["H1", "H2"], "risk": ["red", "blue"], "grid_id": ["G1", "G1"],
    ...                    "community_id": ["C1", "C1"], "street_id": ["S1", "S1"]})
    >>> grids = pd.DataFrame({"id": ["G1"], "name": ["一网格"], "community_id": ["C1"], "over_capacity": [True]})
    >>> snapshot_members(hh, grids, as_of=date(2026, 11, 30))[["kind", "id"]].to_dict("records")
    [{'kind': 'red_household', 'id': 'H1'}, {'kind': 'overloaded_grid', 'id': 'G1'}]
    """
    parts = []
    red = households["risk"].astype(str).to_numpy() == "red"
    parts.append(_members(households[red], "red_household", name=None))
    over = grids["over_capacity"].fillna(False).astype(bool).to_numpy() if "over_capacity" in grids.columns \
        else np.zeros(len(grids), bool)
    chosen = grids[over].assign(grid_id=grids.loc[over, "id"])
    parts.append(_members(chosen, "overloaded_grid", name="name"))
    if cases is not None and len(cases) and "overdue" in cases.columns:
        late = cases["overdue"].fillna(False).astype(bool).to_numpy()
        parts.append(_members(cases[late], "overdue_case", name=None))
    out = pd.concat(parts, ignore_index=True)
    out["as_of"] = _iso(as_of)
    return out[list(MEMBER_COLUMNS)]


def _members(frame: pd.DataFrame, kind: str, *, name: str | None) -> pd.DataFrame:
    def column(c):
        if c is None or c not in frame.columns:
            return np.full(len(frame), None, dtype=object)
        values = frame[c].astype("string").to_numpy(dtype=object)
        return np.where(pd.isna(values), None, values)

    return pd.DataFrame({"kind": kind, "id": frame["id"].astype(str).to_numpy(dtype=object), "name": column(name),
                         "grid_id": column("grid_id"), "community_id": column("community_id"),
                         "street_id": column("street_id")})


def merge_history(earlier: pd.DataFrame, later: pd.DataFrame, *, key: tuple = HISTORY_KEY) -> pd.DataFrame:
    """``earlier`` with ``later`` added: every as_of date ``later`` holds replaces that date's earlier rows
    (the same date run twice keeps the second run); sorted by as_of; a duplicate ``key`` keeps the last.

    Examples
    --------
    >>> a = pd.DataFrame({"as_of": ["2026-10-31", "2026-11-30"], "level": "community", "id": "C1",
    ...                   "indicator": "x", "value": [0.5, 0.6]})
    >>> merge_history(a, a.iloc[[1]].assign(value=0.7))["value"].tolist()
    [0.5, 0.7]
    """
    frames = [f for f in (earlier, later) if f is not None and len(f)]
    if not frames:
        return (later if later is not None else earlier).iloc[0:0].copy()
    replaced = set(later["as_of"].astype(str)) if later is not None and len(later) else set()
    kept = earlier[~earlier["as_of"].astype(str).isin(replaced)] if earlier is not None and len(earlier) else None
    both = pd.concat([f for f in (kept, later) if f is not None and len(f)], ignore_index=True)
    both["as_of"] = both["as_of"].astype(str).str[:10]
    present = [k for k in key if k in both.columns]
    both = both.drop_duplicates(present, keep="last")
    return both.sort_values(["as_of"], kind="stable").reset_index(drop=True)


def month_of(day: date | str) -> str:
    """The calendar month (``YYYY-MM``) of a date.

    >>> month_of(date(2026, 11, 30)), month_of("2026-02-01")
    ('2026-11', '2026-02')
    """
    return _iso(day)[:7]


def trend_months(as_of: date | str, *, months: int = TREND_MONTHS) -> list[str]:
    """The ``months`` calendar months ending with ``as_of``'s, oldest first.

    >>> trend_months(date(2026, 11, 30), months=3)
    ['2026-09', '2026-10', '2026-11']
    """
    end = pd.Period(month_of(as_of), freq="M")
    return [str(end - i) for i in range(months - 1, -1, -1)]


def monthly_snapshots(dates, *, as_of: date | str, months: int = TREND_MONTHS) -> dict[str, str | None]:
    """Each of the last ``months`` months (ending with ``as_of``'s) and the snapshot standing for it: the latest
    as_of in that month, not after ``as_of`` (``None``: no run that month).

    >>> monthly_snapshots(["2026-09-30", "2026-11-10", "2026-11-30"], as_of="2026-11-30", months=3)
    {'2026-09': '2026-09-30', '2026-10': None, '2026-11': '2026-11-30'}
    """
    last = _iso(as_of)
    out: dict[str, str | None] = dict.fromkeys(trend_months(as_of, months=months))
    for day in sorted(set(map(_iso, dates))):
        if day <= last and month_of(day) in out:
            out[month_of(day)] = day
    return out


def previous_snapshot(dates, *, as_of: date | str) -> str | None:
    """The snapshot "last month" means for a run on ``as_of``: the latest as_of of an earlier month (``None``
    when there is none).

    >>> previous_snapshot(["2026-09-30", "2026-10-31", "2026-11-10"], as_of="2026-11-30")
    '2026-10-31'
    """
    month = month_of(as_of)
    earlier = [d for d in map(_iso, dates) if month_of(d) < month]
    return max(earlier) if earlier else None


def _suppress(count: int, k: int, *, shown: bool) -> int | None:
    """A count of special-group households as the public sees it: 1..k-1 withheld (``None``), 0 kept."""
    return count if shown or count == 0 or count >= k else None


def what_changed(members: pd.DataFrame, *, current: str, previous: str | None, k: int, cases_measured: bool,
                 names: dict | None = None, sees_street=None) -> dict:
    """What became wrong between the snapshot ``previous`` and ``current``: counts of households that became
    red and cases that became overdue (per community, counts 1..k-1 withheld unless ``sees_street(street_id)``),
    the grids that became overloaded (ids and names: grids are not personal). Never a household or case id.

    Examples
    --------
    >>> m = pd.DataFrame({"as_of": ["2026-10-31", "2026-11-30", "2026-11-30"], "kind": "red_household",
    ...                   "id": ["H1", "H1", "H2"], "name": None, "grid_id": "G1", "community_id": "C1",
    ...                   "street_id": "S1"})
    >>> what_changed(m, current="2026-11-30", previous="2026-10-31", k=1, cases_measured=False
    ...              )["households_became_red"]["total"]
    1
    """
    names = names or {}
    sees_street = sees_street or (lambda street: False)
    if previous is None:
        return {"since": None, "note": "no snapshot of an earlier month: nothing to compare with",
                "households_became_red": None, "grids_became_overloaded": None, "cases_became_overdue": None}
    now = members[members["as_of"].astype(str) == current]
    before = members[members["as_of"].astype(str) == previous]

    def became(kind: str) -> pd.DataFrame:
        mine = now[now["kind"] == kind]
        return mine[~mine["id"].isin(set(before.loc[before["kind"] == kind, "id"]))]

    def counted(frame: pd.DataFrame) -> dict:
        by = frame.groupby([frame["community_id"].fillna(""), frame["street_id"].fillna("")]).size()
        rows = [{"id": cid or None, "name": names.get(cid), "count": _suppress(int(n), k, shown=sees_street(sid or None))}
                for (cid, sid), n in by.items()]
        return {"total": int(len(frame)), "by_community": rows}

    grids = became("overloaded_grid")
    out = {"since": previous, "households_became_red": counted(became("red_household")),
           "grids_became_overloaded": [{"id": r.id, "name": r.name, "community_id": r.community_id,
                                        "community_name": names.get(r.community_id)}
                                       for r in grids.itertuples(index=False)],
           "cases_became_overdue": counted(became("overdue_case")) if cases_measured else None}
    if not cases_measured:
        out["note"] = "no cases in this analysis: cases that became overdue are not measured"
    return out


def _points(rows: pd.DataFrame, snapshots: dict[str, str | None]) -> list[dict]:
    by_date = {r["as_of"]: r for r in rows.to_dict("records")}
    points = []
    for month, day in snapshots.items():
        r = by_date.get(day) if day else None
        points.append({"month": month, "as_of": day,
                       "value": _number(r["value"]) if r else None, "target": _number(r["target"]) if r else None,
                       "target_year": None if not r or pd.isna(r["target_year"]) else int(r["target_year"]),
                       "pass": None if not r or r["pass"] is None or pd.isna(r["pass"]) else _truth(r["pass"])})
    return points


def _number(value):
    return None if value is None or pd.isna(value) else float(value)


def _truth(value) -> bool:
    return value if isinstance(value, (bool, np.bool_)) else str(value).strip().lower() in ("true", "1", "t")


def build_trend(history: History, *, as_of: date | str | None = None, months: int = TREND_MONTHS, k: int = 5,
                sees_street=None) -> dict:
    """The trend (趋势): per community and street, each indicator's last ``months`` monthly snapshots against
    the target in force then, and :func:`what_changed` since last month. Counts only: no household or case id.

    Parameters
    ----------
    history
        Every snapshot, this run's included.
    as_of
        The run's date (default: the latest snapshot).
    k
        Counts of households from 1 to k-1 are withheld per community (``sees_street(street_id)`` true: shown).

    Examples
    --------
    >>> card = pd.DataFrame({"level": ["community"], "id": ["C1"], "name": ["东社区"], "indicator": ["visits_on_time"],
    ...                      "value": [0.8], "target": [1.0], "pass": [False], "numerator": [8], "denominator": [10]})
    >>> h = History(rows=snapshot_rows(card, as_of=date(2026, 11, 30)), members=History.empty().members)
    >>> trend = build_trend(h, months=2)
    >>> [p["value"] for p in trend["units"][0]["indicators"]["visits_on_time"]["points"]]
    [None, 0.8]
    """
    rows = history.rows[history.rows["level"].isin(TREND_LEVELS)]
    dates = history.dates
    if not dates:
        return {"as_of": None, "months": [], "snapshots": {}, "units": [], "changed": None}
    current = _iso(as_of) if as_of is not None else dates[-1]
    snapshots = monthly_snapshots(dates, as_of=current, months=months)
    shown = rows[rows["as_of"].astype(str).isin({d for d in snapshots.values() if d})]
    latest = rows[rows["as_of"].astype(str) == current]
    names = dict(zip(latest["id"].astype(str), latest["name"]))
    units = []
    for (level, uid), unit in latest.groupby(["level", "id"], sort=False):
        past = shown[(shown["level"] == level) & (shown["id"] == uid)]
        indicators = {}
        for indicator, now in unit.groupby("indicator", sort=False):
            row = now.iloc[-1]
            indicators[indicator] = {
                "lower_is_better": indicator in LOWER_IS_BETTER, "value": _number(row["value"]),
                "target": _number(row["target"]),
                "target_year": None if pd.isna(row["target_year"]) else int(row["target_year"]),
                "points": _points(past[past["indicator"] == indicator], snapshots)}
        units.append({"level": level, "id": str(uid), "name": unit["name"].iloc[0], "indicators": indicators})
    cases_measured = bool((latest["indicator"] == "cases_on_time").any())
    changed = what_changed(history.members, current=current, previous=previous_snapshot(dates, as_of=current), k=k,
                           cases_measured=cases_measured, names=names, sees_street=sees_street)
    return {"as_of": current, "months": list(snapshots), "snapshots": snapshots, "k": k, "units": units,
            "changed": changed}
