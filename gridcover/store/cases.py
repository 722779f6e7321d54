"""The cases (事件) of a GeoPackage workspace in SQLite, beside it: ``cases.sqlite`` in the output folder.

:meth:`gridcover.store.base.Workspace.cases` gives a workspace's :class:`~gridcover.store.base.CaseStore`:
:class:`SQLiteCaseStore` here (not inside the GeoPackage, whose change would make every cache of the layers
stale), :class:`gridcover.store.postgis.PostGISCases` in the database. Every write takes the folder's case lock
(:func:`gridcover.io.outputs.cases_lock`), which an analysis replacing the folder takes too while it copies
the store into the new folder (:func:`gridcover.io.outputs.carry_cases`): the store survives a restart and a
new analysis, and no intake made meanwhile is lost.

Example
-------
>>> store = open_workspace("out/sample").cases()                                   # doctest: +SKIP
>>> store.add(resolved).stored                                                      # doctest: +SKIP
('12345-0001',)
>>> store.accept("12345-0001", at="2026-03-02T08:10:00Z", author="王芳")["accepted_by"]  # doctest: +SKIP
'王芳'
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd

from gridcover.io.outputs import CASES_FILE, cases_lock
from gridcover.store.base import (CASE_COLUMNS, CASE_TIMES, CaseFilter, CaseIntake, CaseStore, WorkspaceError,
                                  case_columns, case_not_found, case_update, check_intake, normalise_cases)

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_REAL = ("lon", "lat", "distance_m")


def _schema() -> str:
    cols = []
    for c in CASE_COLUMNS:
        kind = "REAL" if c in _REAL else "INTEGER" if c == "covered" else "TEXT"
        cols.append(f"{c} {kind}{' PRIMARY KEY' if c == 'id' else ''}"
                    f"{' NOT NULL' if c in ('reported_at', 'urgency', 'fingerprint', 'received_at') else ''}")
    return f"CREATE TABLE IF NOT EXISTS cases ({', '.join(cols)})"


def case_where(filters: CaseFilter, *, time_text=lambda t: pd.Timestamp(t).tz_convert("UTC").strftime(_TIME_FORMAT),
               mark: str = "?") -> tuple[str, list]:
    """The SQL condition (``WHERE`` text, without the word) and its parameters for ``filters``; shared by the
    SQLite and PostGIS stores (``mark``: the parameter mark, ``time_text``: how a time is passed)."""
    parts, args = [], []

    def within(column: str, values) -> None:
        values = sorted(map(str, values))
        if not values:
            parts.append("1 = 0")
            return
        parts.append(f"{column} IN ({', '.join([mark] * len(values))})")
        args.extend(values)

    if filters.ids is not None:
        within("id", filters.ids)
    if filters.status is not None:
        states = {"open": "(accepted_at IS NULL AND closed_at IS NULL)",
                  "accepted": "(accepted_at IS NOT NULL AND closed_at IS NULL)", "closed": "(closed_at IS NOT NULL)"}
        parts.append("(" + " OR ".join(states[s] for s in sorted(filters.status)) + ")" if filters.status else "1 = 0")
    if filters.overdue_at is not None:
        at = time_text(filters.overdue_at)
        parts.append(f"((accepted_at IS NULL AND closed_at IS NULL AND response_due < {mark}) OR "
                     f"(closed_at IS NULL AND closure_due < {mark}))")
        args += [at, at]
    for column, values in (("grid_id", filters.grids), ("community_id", filters.communities),
                           ("street_id", filters.streets)):
        if values is not None:
            within(column, values)
    if filters.scope:
        alternatives, scope_args = [], []
        for column, values in (("street_id", filters.scope_streets), ("grid_id", filters.scope_grids)):
            if values:
                alternatives.append(f"{column} IN ({', '.join([mark] * len(values))})")
                scope_args += sorted(map(str, values))
        if filters.scope_received_by:
            alternatives.append(f"received_by = {mark}")
            scope_args.append(filters.scope_received_by)
        parts.append("(" + " OR ".join(alternatives) + ")" if alternatives else "1 = 0")
        args += scope_args
    return (" AND ".join(parts) if parts else "1 = 1"), args


class SQLiteCaseStore(CaseStore):
    """The cases of the GeoPackage workspace in ``folder``, in ``cases.sqlite`` there."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / CASES_FILE
        self._kept: tuple[sqlite3.Connection, tuple[int, int]] | None = None

    def _db(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # the carried copy is SQLite's backup
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a crash of the process, not of the machine
            db.execute(_schema())
        except sqlite3.Error as exc:
            raise WorkspaceError(f"cannot keep cases next to the workspace ({self.path}): {exc}") from None
        return db

    def _writer(self) -> sqlite3.Connection:
        """The connection writes go through, kept open between writes; called under the case lock only.

        Opening a connection per write costs a checkpoint of the write-ahead log and a sync of the file when it
        closes as the last one (about 20 ms here). The kept one is checked against the file now at the path on
        every write: an analysis replacing the folder (it holds the same lock while it copies the store and
        swaps the folders) leaves a new file there, and the kept connection is closed and a new one opened on
        the new file. Closing a connection whose file was moved away neither checkpoints nor deletes the log by
        its name, which is now the new folder's (SQLite checks that the file is unmoved; tested in
        tests/test_store_cases.py).
        """
        try:
            st = os.stat(self.path)
            here = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            here = None
        if self._kept is not None and self._kept[1] == here:
            return self._kept[0]
        self.release()
        writer = self._db()
        st = os.stat(self.path)
        self._kept = (writer, (st.st_dev, st.st_ino))
        return writer

    def release(self) -> None:
        """Close the kept connection (it closes by itself when the store is collected)."""
        if self._kept is not None:
            self._kept[0].close()
            self._kept = None

    @property
    def stamp(self) -> str:
        """The file's inode, modification time and size, and those of its write-ahead log with the log's index
        header (``0`` before the first case). A commit through a kept connection changes only the log (the file
        itself changes at a checkpoint); the index header's change counter and frame count change with every
        commit (SQLite's WAL-index format), where a file time may not (a coarse clock)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "0"
        stamp = f"{st.st_ino:x}.{st.st_mtime_ns:x}.{st.st_size:x}"
        try:
            wal = os.stat(f"{self.path}-wal")
            with open(f"{self.path}-shm", "rb") as shm:
                header = shm.read(48)
        except FileNotFoundError:
            return stamp
        return f"{stamp}.{wal.st_mtime_ns:x}.{wal.st_size:x}.{header.hex()}"

    def add(self, cases: pd.DataFrame) -> CaseIntake:
        rows = _rows(cases)
        with cases_lock(self.folder):
            db = self._writer()
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TEMP TABLE IF NOT EXISTS batch_ids (id TEXT PRIMARY KEY)")
                db.execute("DELETE FROM batch_ids")
                db.executemany("INSERT OR IGNORE INTO batch_ids VALUES (?)", ((i,) for i in rows[0]))
                held = db.execute("SELECT id, fingerprint FROM cases WHERE id IN (SELECT id FROM batch_ids)").fetchall()
                duplicates = check_intake(pd.DataFrame({"id": rows[0], "fingerprint": rows[CASE_COLUMNS.index(
                    "fingerprint")]}), pd.DataFrame(held, columns=["id", "fingerprint"])) if held else ()
                new = ~np.isin(rows[0], list(duplicates)) if duplicates else np.ones(len(rows[0]), dtype=bool)
                db.executemany(_INSERT, zip(*(column[new] for column in rows)))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return CaseIntake(stored=tuple(rows[0][new]), duplicates=duplicates)

    def add_one(self, case: dict) -> CaseIntake:
        """One case without a frame: the same row :meth:`add` writes for a batch of it (:func:`_row`)."""
        row = _row(case)
        with cases_lock(self.folder):
            db = self._writer()
            try:
                db.execute("BEGIN IMMEDIATE")
                held = db.execute("SELECT id, fingerprint FROM cases WHERE id = ?", (row[0],)).fetchall()
                duplicates = check_intake(pd.DataFrame({"id": [row[0]], "fingerprint": [row[-1]]}),
                                          pd.DataFrame(held, columns=["id", "fingerprint"])) if held else ()
                if not duplicates:
                    db.execute(_INSERT, row)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return CaseIntake(stored=() if duplicates else (row[0],), duplicates=duplicates)

    def _update(self, case_id: str, action: str, *, at, author: str) -> dict:
        with cases_lock(self.folder):
            db = self._writer()
            try:
                db.execute("BEGIN IMMEDIATE")
                found = _read(db, "SELECT * FROM cases WHERE id = ?", [str(case_id)])
                if not len(found):
                    raise case_not_found(case_id)
                change = case_update(found.iloc[0].to_dict(), action, at=at, author=author)
                values = [_text_time(v) if k in CASE_TIMES else v for k, v in change.items()]
                db.execute(f"UPDATE cases SET {', '.join(f'{k} = ?' for k in change)} WHERE id = ?",
                           [*values, str(case_id)])
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return change

    def list(self, filters: CaseFilter = CaseFilter(), *, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
        if not self.path.is_file():
            return normalise_cases(pd.DataFrame(columns=list(CASE_COLUMNS)))
        where, args = case_where(filters)
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else (f" LIMIT -1 OFFSET {int(offset)}"
                                                                                       if offset else "")
        db = self._db()
        try:
            return _read(db, f"SELECT * FROM cases WHERE {where} ORDER BY reported_at, id{page}", args)
        finally:
            db.close()

    def count(self, filters: CaseFilter = CaseFilter()) -> int:
        if not self.path.is_file():
            return 0
        where, args = case_where(filters)
        db = self._db()
        try:
            return int(db.execute(f"SELECT COUNT(*) FROM cases WHERE {where}", args).fetchone()[0])
        finally:
            db.close()


def _text_time(value) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert("UTC").strftime(_TIME_FORMAT)


def _row(case: dict) -> tuple:
    """One case as the SQLite values :func:`_rows` gives for a batch of it: times as ISO text to the second (UTC),
    missing values and NaN as NULL, ``id`` as text."""
    out = []
    for c in CASE_COLUMNS:
        value = case.get(c)
        if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
            out.append(None)
        elif c in CASE_TIMES:
            out.append(value.astimezone(timezone.utc).strftime(_TIME_FORMAT))
        elif isinstance(value, (bool, np.bool_)):
            out.append(bool(value))
        elif isinstance(value, (float, np.floating)):
            out.append(float(value))
        else:
            out.append(str(value))
    return tuple(out)


def add_one_sql(conn, table, case: dict) -> CaseIntake:
    """:meth:`CaseStore.add_one` in PostGIS on an open psycopg connection (``table``: the cases table's
    ``psycopg.sql`` identifier): one transaction, the table locked against other intakes as a batch locks it
    (readers go on), the id's fingerprint checked (:func:`check_intake`), one ``INSERT``; the values those
    :meth:`gridcover.store.postgis.PostGISCases.add` copies for a batch of that case (times as ``timestamptz``
    to the second)."""
    from psycopg import sql

    row = list(_row(case))
    for i, c in enumerate(CASE_COLUMNS):
        if c in CASE_TIMES and row[i] is not None:
            row[i] = case[c].astimezone(timezone.utc).replace(microsecond=0)
    names = sql.SQL(", ").join(map(sql.Identifier, CASE_COLUMNS))
    with conn.transaction():
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table))
        held = conn.execute(sql.SQL("SELECT id, fingerprint FROM {} WHERE id = %s").format(table), [row[0]]).fetchall()
        duplicates = check_intake(pd.DataFrame({"id": [row[0]], "fingerprint": [row[-1]]}),
                                  pd.DataFrame(held, columns=["id", "fingerprint"])) if held else ()
        if not duplicates:
            conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table, names, sql.SQL(", ").join([sql.Placeholder()] * len(CASE_COLUMNS))), row)
    return CaseIntake(stored=() if duplicates else (row[0],), duplicates=duplicates)


def _rows(cases: pd.DataFrame) -> list:
    """The batch as SQLite values, one object array per column of :data:`CASE_COLUMNS` (times as ISO text,
    missing as NULL), vectorised; ``id`` as text."""
    frame = cases.reindex(columns=list(CASE_COLUMNS))
    for c in CASE_TIMES:
        frame[c] = pd.to_datetime(frame[c], utc=True)
    columns = case_columns(frame)
    columns["id"] = frame["id"].astype(str).to_numpy(dtype=object)
    return [columns[c] for c in CASE_COLUMNS]


_INSERT = f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join('?' * len(CASE_COLUMNS))})"


def _read(db: sqlite3.Connection, query: str, args) -> pd.DataFrame:
    return normalise_cases(pd.read_sql_query(query, db, params=args))
