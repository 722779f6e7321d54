"""The lookup blind-spot log (盲区计数): where lookups fell outside every grid, kept beside a workspace.

:meth:`gridcover.store.base.Workspace.blind_spots` opens it once per workspace; the lookup service records
the not-covered answers of :mod:`geo.lookup` into it and ``GET /lookup/blind_spots`` reads the counts.
"""

from __future__ import annotations

import atexit
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

#: H3 resolution of the blind-spot counts (about 0.1 km² a cell): where, never who.
BLIND_SPOT_H3_RESOLUTION = 9


class BlindSpotLog:
    """Counts of "not covered" answers: a lookup outside every grid is itself a blind spot (盲区).

    Kept in a small SQLite file next to the workspace (``lookup_blind_spots.sqlite``; not inside the
    GeoPackage, whose change would make every cache stale), one row per workspace version, nearest grid,
    H3 cell (resolution 9, about 0.1 km²) and reason (:data:`REASONS`: a lookup, or a case taken in through
    the case API, outside every grid): where, never who — no coordinates or callers are stored.
    Counts are gathered in memory and written in one transaction at most every ``flush_seconds`` (by a
    background thread, so no lookup waits for the disk) and whenever they are read; SQLite's locking makes
    the file safe for several processes.
    """

    FILE = "lookup_blind_spots.sqlite"
    #: Why a place is counted: a lookup outside every grid, a case (事件) reported outside every grid.
    REASONS = ("lookup_outside_grids", "case_outside_grids")

    def __init__(self, path: str | Path, *, flush_seconds: float = 2.0) -> None:
        self.path = Path(path)
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str, str], int] = {}
        self._last_flush = time.monotonic()
        self._flushing = False
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            _create_table(db)
        atexit.register(self.flush)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, answers: dict[str, np.ndarray], *, reason: str = "lookup_outside_grids") -> int:
        """Count the not-covered point answers of a batch as ``reason`` (:data:`REASONS`); returns how many were
        counted."""
        if reason not in self.REASONS:
            raise ValueError(f"unknown blind-spot reason {reason!r}")
        covered = answers.get("covered")
        if covered is None or "lon_wgs84" not in answers:
            return 0
        out = np.flatnonzero(~np.asarray(covered, dtype=bool))
        if len(out) == 0:
            return 0
        from h3ronpy import vector as h3v
        import h3ronpy

        lat = np.asarray(answers["lat_wgs84"][out], dtype=float)
        lon = np.asarray(answers["lon_wgs84"][out], dtype=float)
        cells = np.asarray(h3ronpy.cells_to_string(h3v.coordinates_to_cells(lat, lon, BLIND_SPOT_H3_RESOLUTION)),
                           dtype=object)
        version = np.asarray(answers["version"][out]).astype(str)
        nearest = answers["nearest_grid_id"][out].astype(str)
        if len(out) > 64:
            counts = pd.DataFrame({"v": version, "g": nearest, "h": cells}).value_counts()
            items = zip(counts.index, counts.to_numpy())
        else:
            items = Counter(zip(version, nearest, cells)).items()
        with self._lock:
            for key, c in items:
                key = (*(str(k) for k in key), reason)
                self._pending[key] = self._pending.get(key, 0) + int(c)
            due = not self._flushing and time.monotonic() - self._last_flush >= self.flush_seconds
            if due:
                self._flushing = True
        if due:
            threading.Thread(target=self.flush, daemon=True).start()
        return len(out)

    def flush(self) -> None:
        """Write the counts gathered in memory (one transaction)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        try:
            if pending:
                now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                rows = [(v, g, h, c, now, now, r) for (v, g, h, r), c in pending.items()]
                with self._connect() as db:
                    db.executemany("INSERT INTO blind_spots (version, nearest_grid_id, h3, count, first_seen, last_seen, "
                                   "reason) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(version, nearest_grid_id, h3, "
                                   "reason) DO UPDATE SET count = count + excluded.count, last_seen = excluded.last_seen",
                                   rows)
        finally:
            with self._lock:
                self._flushing = False

    def counts(self) -> pd.DataFrame:
        """All counts: ``version``, ``nearest_grid_id``, ``h3``, ``count``, ``first_seen``, ``last_seen``,
        ``reason``."""
        self.flush()
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM blind_spots ORDER BY count DESC, nearest_grid_id, h3", db)

    def total(self) -> int:
        self.flush()
        with self._connect() as db:
            return int(db.execute("SELECT COALESCE(SUM(count), 0) FROM blind_spots").fetchone()[0])


def _create_table(db: sqlite3.Connection) -> None:
    """The counts table, keyed by reason too; a log written before reasons were kept gets the column (its
    rows are lookups), in one transaction."""
    if "reason" in {r[1] for r in db.execute("PRAGMA table_info(blind_spots)").fetchall()}:
        return
    db.execute("BEGIN IMMEDIATE")  # another process may be doing the same: look again under the lock
    columns = {r[1] for r in db.execute("PRAGMA table_info(blind_spots)").fetchall()}
    if "reason" in columns:
        db.execute("COMMIT")
        return
    db.execute("CREATE TABLE IF NOT EXISTS blind_spots_new (version TEXT NOT NULL, nearest_grid_id TEXT NOT NULL,"
               " h3 TEXT NOT NULL, count INTEGER NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,"
               " reason TEXT NOT NULL DEFAULT 'lookup_outside_grids', PRIMARY KEY (version, nearest_grid_id, h3, reason))")
    if columns:
        db.execute("INSERT INTO blind_spots_new (version, nearest_grid_id, h3, count, first_seen, last_seen) "
                   "SELECT version, nearest_grid_id, h3, count, first_seen, last_seen FROM blind_spots")
        db.execute("DROP TABLE blind_spots")
    db.execute("ALTER TABLE blind_spots_new RENAME TO blind_spots")
    db.execute("COMMIT")
