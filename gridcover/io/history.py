"""The scorecard's snapshots on disk: the workspace's ``scorecard_history`` tables, the history CSV, trend.json.

A workspace GeoPackage keeps every snapshot (:mod:`geo.history`) in two plain SQLite tables beside its layers
(not GeoPackage layers: no map lists them): ``scorecard_history`` (one row per as_of, unit and indicator) and
``scorecard_history_ids`` (per as_of, the households that were red, the grids that were overloaded, the cases
that were overdue — ids, kept only in the workspace). ``scorecard_history.csv`` is the same in one long file
(a member row has ``level`` household, grid or case and ``indicator`` red, overloaded or overdue): what a
street office exports to move its history to another machine, read from a data folder or ``--history-from``.
:func:`write_history` is what :func:`gridcover.io.outputs.finish_outputs` calls: the earlier snapshots with
this run's, into the new workspace, and ``trend.json`` (counts only) beside it.

Example
-------
>>> history = read_history_from("out/sample")  # doctest: +SKIP
>>> export_history_csv(history, "scorecard_history.csv")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import ConfigError
from geo.history import HISTORY_COLUMNS, MEMBER_COLUMNS, MEMBER_KINDS, History, build_trend, snapshot_members, \
    snapshot_rows

#: The workspace tables and files of the history.
HISTORY_TABLE = "scorecard_history"
HISTORY_IDS_TABLE = "scorecard_history_ids"
HISTORY_TABLES = (HISTORY_TABLE, HISTORY_IDS_TABLE)
HISTORY_CSV = "scorecard_history.csv"
TREND_JSON = "trend.json"
#: A member's ``indicator`` in the history CSV.
_MEMBER_INDICATOR = {"red_household": "red", "overloaded_grid": "overloaded", "overdue_case": "overdue"}
_KIND_OF = {(level, _MEMBER_INDICATOR[kind]): kind for kind, level in MEMBER_KINDS.items()}
_CSV_COLUMNS = (*HISTORY_COLUMNS, "grid_id", "community_id", "street_id")
_TEXT = ("as_of", "level", "id", "name", "indicator", "note", "recorded")


# ------------------------------------------------------------------ the workspace GeoPackage
def read_gpkg_history(gpkg: str | os.PathLike) -> History:
    """The snapshots a workspace GeoPackage holds (empty for one written before snapshots were kept)."""
    db = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        found = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if HISTORY_TABLE not in found:
            return History.empty()
        rows = pd.read_sql_query(f"SELECT * FROM {HISTORY_TABLE} ORDER BY as_of, rowid", db)
        members = pd.read_sql_query(f"SELECT * FROM {HISTORY_IDS_TABLE} ORDER BY as_of, rowid", db) \
            if HISTORY_IDS_TABLE in found else History.empty().members
    finally:
        db.close()
    return typed_history(History(rows=rows, members=members))


def write_gpkg_history(gpkg: str | os.PathLike, history: History) -> None:
    """Make ``history`` the snapshots of the workspace GeoPackage (one transaction; replaces what it held)."""
    rows, members = _for_sql(history)
    with sqlite3.connect(gpkg) as db:
        db.execute(f"DROP TABLE IF EXISTS {HISTORY_TABLE}")
        db.execute(f"DROP TABLE IF EXISTS {HISTORY_IDS_TABLE}")
        db.execute(f"CREATE TABLE {HISTORY_TABLE} (as_of TEXT NOT NULL, level TEXT NOT NULL, id TEXT NOT NULL, "
                   "name TEXT, indicator TEXT NOT NULL, value REAL, target REAL, target_year INTEGER, pass INTEGER, "
                   "numerator REAL, denominator REAL, note TEXT, recorded TEXT, "
                   "PRIMARY KEY (as_of, level, id, indicator))")
        db.execute(f"CREATE TABLE {HISTORY_IDS_TABLE} (as_of TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, "
                   "name TEXT, grid_id TEXT, community_id TEXT, street_id TEXT, PRIMARY KEY (as_of, kind, id))")
        db.executemany(f"INSERT INTO {HISTORY_TABLE} VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})", rows)
        db.executemany(f"INSERT INTO {HISTORY_IDS_TABLE} VALUES ({', '.join('?' * len(MEMBER_COLUMNS))})", members)
    db.close()


def _for_sql(history: History) -> tuple[list[tuple], list[tuple]]:
    """The rows of both tables as plain Python values (NULL for missing; pass as 0/1)."""
    rows = history.rows[list(HISTORY_COLUMNS)].astype(object)
    rows = rows.where(pd.notna(rows), None)
    rows["pass"] = [None if v is None else int(bool(v)) for v in rows["pass"]]
    rows["target_year"] = [None if v is None else int(v) for v in rows["target_year"]]
    members = history.members[list(MEMBER_COLUMNS)].astype(object)
    members = members.where(pd.notna(members), None)
    return list(rows.itertuples(index=False, name=None)), list(members.itertuples(index=False, name=None))


def typed_history(history: History) -> History:
    """Both frames with the dtypes :mod:`geo.history` works with, whatever they were read from."""
    rows = history.rows.copy()
    for column in HISTORY_COLUMNS:
        if column not in rows.columns:
            rows[column] = None
    rows = rows[list(HISTORY_COLUMNS)]
    for column in ("value", "target", "numerator", "denominator"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    rows["target_year"] = [None if pd.isna(v) else int(float(v)) for v in rows["target_year"]]
    rows["pass"] = [None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == ""
                    else str(v).strip().lower() in ("1", "true", "t", "1.0") for v in rows["pass"]]
    for column in _TEXT:
        values = rows[column].astype(object)
        rows[column] = values.where(pd.notna(values), None).map(lambda v: v if v is None else str(v))
    rows["as_of"] = rows["as_of"].str[:10]
    members = history.members.copy()
    for column in MEMBER_COLUMNS:
        if column not in members.columns:
            members[column] = None
    members = members[list(MEMBER_COLUMNS)].astype(object)
    members = members.where(pd.notna(members), None)
    members["as_of"] = members["as_of"].astype(str).str[:10]
    return History(rows=rows.reset_index(drop=True), members=members.reset_index(drop=True))


# ------------------------------------------------------------------ the history CSV
def export_history_csv(history: History, path: str | os.PathLike) -> Path:
    """Write every snapshot into one CSV (UTF-8 with BOM: Excel opens the Chinese names); returns the path.

    Member rows (level household, grid or case) carry ids: the file is the workspace's own, not a public output."""
    rows = history.rows.copy()
    for column in ("grid_id", "community_id", "street_id"):
        rows[column] = None
    m = history.members
    members = pd.DataFrame({"as_of": m["as_of"], "level": m["kind"].map(MEMBER_KINDS),
                            "id": m["id"], "name": m["name"], "indicator": m["kind"].map(_MEMBER_INDICATOR),
                            "grid_id": m["grid_id"], "community_id": m["community_id"], "street_id": m["street_id"]})
    both = pd.concat([rows, members], ignore_index=True)
    both = both.reindex(columns=list(_CSV_COLUMNS))
    both["target_year"] = both["target_year"].astype("Int64")
    path = Path(path)
    both.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    return path


def read_history_csv(path: str | os.PathLike) -> History:
    """The snapshots of a history CSV (:func:`export_history_csv`'s format), checked: a row without a valid
    as_of date, level, id or indicator, or with a value that is no number, is a ``ConfigError`` naming the
    file, the line and the field; nothing is read from a bad file."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{path}: not a readable scorecard history CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("as_of", "level", "id", "indicator") if c not in raw.columns]
    if missing:
        raise ConfigError(f"{path}: the scorecard history needs the column(s) {', '.join(missing)} "
                          f"(columns: {', '.join(_CSV_COLUMNS)})")
    _check_csv(raw, path)
    raw = raw.replace("", None)
    level, indicator = raw["level"].astype(str), raw["indicator"].astype(str)
    kinds = [_KIND_OF.get(key) for key in zip(level, indicator)]
    is_member = np.array([k is not None for k in kinds], dtype=bool)
    member_rows = raw[is_member]
    members = pd.DataFrame({"as_of": member_rows["as_of"], "kind": [k for k in kinds if k is not None],
                            "id": member_rows["id"], "name": member_rows.get("name"),
                            "grid_id": member_rows.get("grid_id"), "community_id": member_rows.get("community_id"),
                            "street_id": member_rows.get("street_id")})
    return typed_history(History(rows=raw[~is_member], members=members))


def _check_csv(raw: pd.DataFrame, path: Path) -> None:
    """One clear message for the first bad row: line number (the header is line 1), field, value."""
    dates = pd.to_datetime(raw["as_of"], format="%Y-%m-%d", errors="coerce")
    checks = [("as_of", dates.isna(), "is not a date (YYYY-MM-DD)")]
    for column in ("level", "id", "indicator"):
        checks.append((column, raw[column].str.strip() == "", "is empty"))
    for column in ("value", "target", "numerator", "denominator", "target_year"):
        if column in raw.columns:
            text = raw[column].str.strip()
            checks.append((column, (text != "") & pd.to_numeric(text, errors="coerce").isna(), "is not a number"))
    for column, bad, problem in checks:
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            msg = (f"{path}: line {first + 2}: {column} {raw[column].iloc[first]!r} {problem} "
                   f"({int(bad.sum())} such row{'' if bad.sum() == 1 else 's'}); nothing was read from the file")
            raise ConfigError(msg)


# ------------------------------------------------------------------ where earlier snapshots come from
def read_history_from(source: str | os.PathLike) -> History:
    """The snapshots ``--history-from`` names: a workspace folder (its ``workspace.gpkg``, else its
    ``scorecard_history.csv``), a workspace ``.gpkg`` or a history ``.csv``; ``ConfigError`` otherwise."""
    path = Path(source)
    gpkg = path / "workspace.gpkg" if path.is_dir() else path
    if path.is_dir() and not gpkg.is_file():
        gpkg = path / HISTORY_CSV
    if gpkg.suffix.lower() == ".csv" and gpkg.is_file():
        return read_history_csv(gpkg)
    if gpkg.suffix.lower() == ".gpkg" and gpkg.is_file():
        if not _written_by_analyze(gpkg):
            raise ConfigError(f"--history-from {source}: {gpkg} was not written by gridcover analyze")
        return read_gpkg_history(gpkg)
    msg = (f"--history-from {source}: give a workspace folder or workspace.gpkg that 'gridcover analyze' wrote, "
           f"or a {HISTORY_CSV} exported from one")
    raise ConfigError(msg)


def _written_by_analyze(gpkg: Path) -> bool:
    """Does the GeoPackage hold the meta table every workspace has (``gridcover_meta``)?"""
    try:
        db = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
        try:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gridcover_meta'"
                              ).fetchone() is not None
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False


def earlier_history(*, out_dir: str | os.PathLike | None = None, data_folder: str | os.PathLike | None = None,
                    given: History | None = None) -> History:
    """Every earlier snapshot a run carries forward: the data folder's ``scorecard_history.csv``, then the
    workspace the run replaces (``out_dir``), then ``given`` (``--history-from``, PostGIS); a date held by a
    later source replaces the same date of an earlier one."""
    found = History.empty()
    if data_folder is not None and (Path(data_folder) / HISTORY_CSV).is_file():
        found = found.merged(read_history_csv(Path(data_folder) / HISTORY_CSV))
    if out_dir is not None and (Path(out_dir) / "workspace.gpkg").is_file():
        found = found.merged(read_gpkg_history(Path(out_dir) / "workspace.gpkg"))
    if given is not None:
        found = found.merged(given)
    return found


# ------------------------------------------------------------------ this run's snapshot
def run_snapshot(analysis, *, as_of: date | None = None, households: pd.DataFrame | None = None) -> History:
    """The snapshot of one analysis: its scorecard rows and its red households, overloaded grids (and, where
    the analysis has cases, overdue cases); ``households`` where the analysis does not hold them (the
    partitioned engine: read from its parts)."""
    as_of = as_of or analysis_as_of(analysis)
    recorded = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = snapshot_rows(analysis.scorecard, as_of=as_of, recorded=recorded)
    wanted = ["id", "risk", "grid_id", "community_id", "street_id"]
    households = analysis.households if households is None else households
    if households is None or "risk" not in households.columns:
        households = pd.DataFrame({c: pd.Series([], dtype=object) for c in wanted})
    grids = analysis.grids
    cases = getattr(analysis, "cases", None)  # the case loop (issue 14, part 1) once the analysis carries cases
    members = snapshot_members(pd.DataFrame(households[[c for c in wanted if c in households.columns]]),
                               pd.DataFrame(grids[[c for c in ("id", "name", "community_id", "over_capacity")
                                                   if c in grids.columns]]), as_of=as_of, cases=cases)
    return typed_history(History(rows=rows, members=members))


def analysis_as_of(analysis) -> date:
    """The date an analysis judged against (its ``--as-of``)."""
    return date.fromisoformat(analysis.summary["risk"]["reference_date"])


def write_history(analysis, tmp: Path, *, earlier: History | None, k: int = 5,
                  households: pd.DataFrame | None = None) -> History:
    """This run's snapshot (:func:`run_snapshot`, ``households`` as it takes them) added to ``earlier`` (same
    date: replaced), written into ``tmp/workspace.gpkg`` and the trend into ``tmp/trend.json`` (public: counts
    only, k-suppressed). Returns the whole history."""
    if analysis.scorecard is None:
        return earlier or History.empty()
    history = (earlier or History.empty()).merged(run_snapshot(analysis, households=households))
    write_gpkg_history(tmp / "workspace.gpkg", history)
    trend = build_trend(history, as_of=analysis_as_of(analysis), k=k)
    (tmp / TREND_JSON).write_text(json.dumps(trend, ensure_ascii=False, indent=1), encoding="utf-8")
    return history
