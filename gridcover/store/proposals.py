"""Saved redraw proposals (网格调整方案) in SQLite, beside a GeoPackage workspace.

:meth:`gridcover.store.base.Workspace.proposals` gives a workspace's store, a
:class:`~gridcover.store.base.ProposalStore`: :class:`SQLiteProposalStore` in
``redraw_proposals.sqlite`` next to a GeoPackage (not inside it, whose change would make every cache stale),
:class:`gridcover.store.postgis.PostGISProposals` in the database, shared by every server using it. Both
answer alike.

Example
-------
>>> store = open_workspace("out/sample").proposals()
>>> pid = store.save(grids, report, author="王芳", note="草稿")
>>> store.get(pid)["status"]
'draft'
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd

from gridcover.io.outputs import _json_default
from gridcover.store.base import ProposalStore, WorkspaceError


class SQLiteProposalStore(ProposalStore):
    """Drafts and applied proposals in ``redraw_proposals.sqlite`` in ``folder`` (next to the workspace)."""

    FILE = "redraw_proposals.sqlite"

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / self.FILE
        try:
            with self._db() as db:
                db.execute("CREATE TABLE IF NOT EXISTS proposals (id TEXT PRIMARY KEY, created TEXT NOT NULL, "
                           "author TEXT NOT NULL, status TEXT NOT NULL, base_version INTEGER, communities TEXT, "
                           "valid INTEGER, grids TEXT NOT NULL, report TEXT NOT NULL, applied_version INTEGER, "
                           "note TEXT)")
        except sqlite3.Error as exc:
            raise WorkspaceError(f"cannot keep drafts next to the workspace ({self.path}): {exc}") from None

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def save(self, grids: gpd.GeoDataFrame, report: dict, *, author: str, note: str = "") -> str:
        pid = uuid.uuid4().hex[:12]
        with self._db() as db:
            db.execute("INSERT INTO proposals VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, NULL, ?)",
                       (pid, datetime.now(timezone.utc).isoformat(timespec="seconds"), author,
                        report.get("base_version"), json.dumps([c["id"] for c in report["communities"]]),
                        int(report["valid"]), grids.to_crs(4326).to_json(drop_id=True, ensure_ascii=False),
                        json.dumps(report, ensure_ascii=False, default=_json_default), note))
        return pid

    def get(self, pid: str) -> dict:
        with self._db() as db:
            row = db.execute("SELECT id, created, author, status, base_version, communities, valid, grids, report, "
                             "applied_version, note FROM proposals WHERE id = ?", (pid,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no proposal {pid!r}")
        return self._row(row, full=True)

    def list(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT id, created, author, status, base_version, communities, valid, NULL, NULL, "
                              "applied_version, note FROM proposals ORDER BY created DESC").fetchall()
        return [self._row(r, full=False) for r in rows]

    def mark_applied(self, pid: str, version: int) -> None:
        with self._db() as db:
            db.execute("UPDATE proposals SET status = 'applied', applied_version = ? WHERE id = ?", (version, pid))

    @staticmethod
    def _row(row, *, full: bool) -> dict:
        out = {"id": row[0], "created": row[1], "author": row[2], "status": row[3], "base_version": row[4],
               "communities": json.loads(row[5] or "[]"), "valid": bool(row[6]), "applied_version": row[9],
               "note": row[10]}
        if full:
            out["grids"] = json.loads(row[7])
            out["check"] = json.loads(row[8])
        return out
