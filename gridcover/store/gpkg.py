"""The GeoPackage workspace (the embedded default): what ``gridcover analyze`` wrote, as one file.

:class:`GeoPackageWorkspace` implements the store contract (:class:`gridcover.store.base.Workspace`).
Grid history (网格调整记录): every change of the grids layer is a new version with its author, time and
reason, kept in the GeoPackage's ``gridcover_grid_versions`` table (the grids of every version as GeoJSON);
the version ``analyze`` wrote is version 1 (recorded on first use). :meth:`Workspace.commit_grids` applies
a new grids layer atomically: the whole GeoPackage is written as a copy beside it and moved into place with
``os.replace`` under a lock, so a crash leaves the previous version intact, and a reader sees either the old
or the new file. The meta table's ``version`` changes with it, so tiles and lookups switch at once. Under
the lock the current version is read again and the new layers are built on it (so a change of other
communities made meanwhile is kept); an ``expected_version`` makes a change to the same community in
between a :class:`~gridcover.store.base.ConflictError` (:func:`~gridcover.store.base.check_conflict`, shared
with the PostGIS backend). The saved redraw proposals are kept beside the file in ``redraw_proposals.sqlite``
(:class:`~gridcover.store.proposals.SQLiteProposalStore`).

The embedded default is the folder (or the ``workspace.gpkg`` in it) that
``analyze`` writes: one GeoPackage that QGIS opens, holding every input and
output layer and a ``gridcover_meta`` table (workspace id, version, summary).
Layers are read into memory once per version; :attr:`~gridcover.store.base.Workspace.tag` changes
the moment the file changes, so caches keyed by it (tiles, lookups) are never
stale.

Example
-------
>>> ws = GeoPackageWorkspace("out/sample")
>>> ws.read("grids").crs.to_epsg()
4326
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sqlite3
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pyogrio
import pandas as pd

from geo.history import History
from gridcover.io.history import HISTORY_TABLES, read_gpkg_history
from gridcover.io.paths import remove_leftovers, temp_file
from gridcover.io.outputs import META_TABLE, _json_default, _plain, read_meta, write_meta
from gridcover.store.base import (HISTORY_FIELDS, Change, GridVersion, Workspace, WorkspaceError, check_conflict,
                                  new_version, now)
from gridcover.store.cases import SQLiteCaseStore
from gridcover.store.proposals import SQLiteProposalStore

WORKSPACE_FILE = "workspace.gpkg"
#: The table holding every version of the grids layer.
HISTORY_TABLE = "gridcover_grid_versions"


def _history_frame(grids: gpd.GeoDataFrame) -> str:
    keep = [c for c in HISTORY_FIELDS if c in grids.columns]
    frame = grids[keep + [grids.geometry.name]].to_crs(4326)
    return frame.to_json(drop_id=True, ensure_ascii=False)


class GeoPackageWorkspace(Workspace):
    """A GeoPackage workspace, read into memory per version (thread-safe)."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        gpkg = path / WORKSPACE_FILE if path.is_dir() else path
        if not gpkg.is_file():
            msg = f"no workspace at {path}: run 'gridcover analyze DATA_DIR --out {path}' first"
            raise WorkspaceError(msg)
        self.path = gpkg
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._meta: dict[str, str] = {}
        self._cache: dict[str, gpd.GeoDataFrame] = {}
        self._names: list[str] | None = None
        self._refresh()
        if not self._meta:
            raise WorkspaceError(f"{gpkg} was not written by gridcover analyze (no gridcover_meta table)")

    def _file_stamp(self) -> tuple:
        st = os.stat(self.path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._meta = read_meta(self.path)
                    self._cache, self._names = {}, None
                    self._stamp = stamp

    @property
    def location(self) -> str:
        """Where the workspace is, for messages (the PostGIS one names its database and schema)."""
        return str(self.path)

    @property
    def stamp(self) -> str:
        """The file's identity (inode, modification time, size): changes with an edit in place (QGIS) too."""
        st = os.stat(self.path)
        return hashlib.blake2b(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode(), digest_size=4).hexdigest()

    def layer_names(self) -> list[str]:
        self._refresh()
        if self._names is None:  # listed once per version: redraws ask for every optional layer
            self._names = [str(row[0]) for row in pyogrio.list_layers(self.path)
                           if str(row[0]) not in (META_TABLE, *HISTORY_TABLES)]
        return list(self._names)

    def close(self) -> None:
        """Nothing to release (the file is opened per read); here so both backends can be closed alike."""

    def read(self, name: str) -> gpd.GeoDataFrame:
        """A layer in WGS-84, read once per version (callers must not modify it)."""
        self._refresh()
        frame = self._cache.get(name)
        if frame is None:
            if name not in self.layer_names():
                raise WorkspaceError(f"the workspace has no layer {name!r}")
            frame = pyogrio.read_dataframe(self.path, layer=name)
            if not isinstance(frame, gpd.GeoDataFrame):  # an attribute table (visits): no geometry
                frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([None] * len(frame), index=frame.index),
                                         crs=4326)
            if frame.crs is None or frame.crs.to_epsg() != 4326:
                frame = frame.set_crs(4326, allow_override=True) if frame.crs is None else frame.to_crs(4326)
            with self._lock:
                self._cache[name] = frame
        return frame

    def scorecard_history(self) -> History:
        """The snapshots of the scorecard kept in the GeoPackage (:mod:`gridcover.io.history`)."""
        self._refresh()
        return read_gpkg_history(self.path)

    def read_columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Some attribute columns of a layer, read alone (a tenth of the time of the whole households layer)."""
        self._refresh()
        frame = self._cache.get(name)
        if frame is not None:
            return pd.DataFrame(frame[[c for c in columns if c in frame.columns]])
        if name not in self.layer_names():
            raise WorkspaceError(f"the workspace has no layer {name!r}")
        have = set(pyogrio.read_info(self.path, layer=name)["fields"])
        return pyogrio.read_dataframe(self.path, layer=name, columns=[c for c in columns if c in have],
                                      read_geometry=False)

    def proposals(self) -> SQLiteProposalStore:
        """The saved redraw proposals, in ``redraw_proposals.sqlite`` next to the GeoPackage."""
        return SQLiteProposalStore(self.path.resolve().parent)

    def cases(self) -> SQLiteCaseStore:
        """The cases stored through the case API, in ``cases.sqlite`` beside the GeoPackage (carried into every
        new analysis of the folder)."""
        return SQLiteCaseStore(self.path.resolve().parent)

    # ------------------------------------------------------------ grid history
    def _baseline(self) -> GridVersion:
        meta = self.meta
        grids = self._current_grids()
        return GridVersion(version=int(meta.get("version", "1")), created=meta.get("created", now()),
                           author="gridcover analyze", reason="grids as analysed", kind="analyze",
                           communities=tuple(sorted(grids["community_id"].astype(str).unique())), parent=None,
                           grids=len(grids))

    def history(self) -> list[GridVersion]:
        """Every version of the grids, oldest first (the analysed grids are the first)."""
        rows = self._history_rows()
        if not rows:
            return [self._baseline()]
        return [GridVersion(version=int(r[0]), created=r[1], author=r[2], reason=r[3], kind=r[4],
                            communities=tuple(json.loads(r[5])), parent=r[6], grids=int(r[7])) for r in rows]

    def _history_rows(self) -> list[tuple]:
        self._refresh()
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return db.execute(f"SELECT version, created, author, reason, kind, communities, parent, n_grids "
                              f"FROM {HISTORY_TABLE} ORDER BY version").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def _stored_grids(self, version: GridVersion) -> gpd.GeoDataFrame:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = db.execute(f"SELECT grids FROM {HISTORY_TABLE} WHERE version = ?", (version.version,)).fetchone()
        finally:
            db.close()
        frame = gpd.read_file(io.StringIO(row[0]), engine="pyogrio")
        return frame.set_crs(4326, allow_override=True)

    @contextmanager
    def _write_lock(self):
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _commit_grids(self, build: Callable[[int], Change], *, author: str, reason: str, communities: list[str],
                      kind: str, expected_version: int | None, fail_after: str | None) -> GridVersion:
        """The whole GeoPackage is written as a copy beside it and moved into place under a file lock."""
        with self._write_lock():
            self._stamp = None
            self._refresh()
            current = self.version
            history = self.history()
            check_conflict(history, current, expected_version, communities)
            grids, layers, summary = build(current)
            remove_leftovers(self.path)  # copies of the workspace left by killed commits
            tmp = temp_file(self.path)
            try:
                shutil.copyfile(self.path, tmp)
                shutil.copymode(self.path, tmp)
                if fail_after == "copy":
                    raise RuntimeError("simulated crash after copy")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for name, frame in layers.items():
                        pyogrio.write_dataframe(_plain(frame.to_crs(4326)), tmp, layer=name, driver="GPKG")
                if fail_after == "layers":
                    raise RuntimeError("simulated crash after layers")
                rows = [] if self._history_rows() else [history[0]]
                with sqlite3.connect(tmp) as db:
                    db.execute(f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (version INTEGER PRIMARY KEY, "
                               "created TEXT NOT NULL, author TEXT NOT NULL, reason TEXT NOT NULL, kind TEXT NOT NULL, "
                               "communities TEXT NOT NULL, parent INTEGER, n_grids INTEGER NOT NULL, grids TEXT NOT NULL)")
                    for base in rows:  # the analysed grids become version 1 on the first change
                        db.execute(f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   (base.version, base.created, base.author, base.reason, base.kind,
                                    json.dumps(list(base.communities)), None, base.grids,
                                    _history_frame(self.grids_at(base.version))))
                    version = new_version(current, author=author, reason=reason, kind=kind,
                                          communities=communities, grids=grids)
                    db.execute(f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (version.version, version.created, version.author, version.reason, version.kind,
                                json.dumps(list(version.communities)), version.parent, version.grids,
                                _history_frame(grids)))
                db.close()
                values = {"version": str(version.version), "updated": version.created}
                if summary is not None:
                    values["summary"] = json.dumps(summary, ensure_ascii=False, indent=2, default=_json_default)
                write_meta(tmp, values)
                if fail_after == "history":
                    raise RuntimeError("simulated crash after history")
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._stamp = None
            self._refresh()
            return self.grid_version(version.version)

