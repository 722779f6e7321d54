"""The workspace: what ``gridcover analyze`` wrote, opened for the server, lookups and redraws.

Grid history (网格调整记录): every change of the grids layer is a new version with its author, time and
reason, kept in the GeoPackage's ``gridcover_grid_versions`` table (the grids of every version as GeoJSON);
the version ``analyze`` wrote is version 1 (recorded on first use). :meth:`Workspace.commit_grids` applies
a new grids layer atomically: the whole GeoPackage is written as a copy beside it and moved into place with
``os.replace`` under a lock, so a crash leaves the previous version intact, and a reader sees either the old
or the new file. The meta table's ``version`` changes with it, so tiles and lookups switch at once. Under
the lock the current version is read again and the new layers are built on it (so a change of other
communities made meanwhile is kept); an ``expected_version`` makes a change to the same community in
between a :class:`ConflictError` (:func:`conflict_message`, shared with the PostGIS backend).

The embedded default is the folder (or the ``workspace.gpkg`` in it) that
``analyze`` writes: one GeoPackage that QGIS opens, holding every input and
output layer and a ``gridcover_meta`` table (workspace id, version, summary).
Layers are read into memory once per version; :attr:`Workspace.tag` changes
the moment the file changes, so caches keyed by it (tiles, lookups) are never
stale.

Example
-------
>>> ws = open_workspace("out/sample")
>>> ws.read("grids").crs.to_epsg()
4326
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import sqlite3
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path

import geopandas as gpd
import pyogrio

from geo.errors import ConfigError, GridcoverError
from geo.paths import remove_leftovers, temp_file
from geo.report import META_TABLE, _json_default, _plain, read_meta, write_meta

WORKSPACE_FILE = "workspace.gpkg"


class WorkspaceError(GridcoverError):
    """A workspace that cannot be opened or read."""


class ConflictError(GridcoverError):
    """Someone else changed the same grids since the version a change was checked against."""


#: The table holding every version of the grids layer.
HISTORY_TABLE = "gridcover_grid_versions"
#: Fields of a grid kept in history (what a user draws; the rest is computed).
HISTORY_FIELDS = ("id", "name", "community_id", "worker_name", "worker_phone", "full_time_workers",
                  "info_officer_name", "info_officer_phone", "mediator_name", "mediator_phone")


@dataclass(frozen=True)
class GridVersion:
    """One version of the grids: who, when, why, and which communities it changed."""

    version: int
    created: str          # ISO 8601 UTC
    author: str
    reason: str
    kind: str             # analyze, apply or restore
    communities: tuple[str, ...]
    parent: int | None
    grids: int

    def as_dict(self) -> dict:
        out = asdict(self)
        out["communities"] = list(self.communities)
        return out


#: What :meth:`Workspace.commit_grids` writes, built on the current version: the whole new grids layer, the
#: output layers recomputed for it and the summary (``None``: unchanged).
Change = tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame], dict | None]


def communities_changed_since(history: list[GridVersion], version: int) -> list[str]:
    """The communities whose grids a version after ``version`` changed (what restoring ``version`` changes back).

    >>> communities_changed_since([GridVersion(1, "", "", "", "analyze", ("C1", "C2"), None, 8),
    ...                            GridVersion(2, "", "", "", "apply", ("C2",), 1, 4)], 1)
    ['C2']
    """
    return sorted({str(c) for v in history if v.version > int(version) for c in v.communities})


def conflict_message(history: list[GridVersion], current: int, expected: int, communities) -> str | None:
    """Why a change of ``communities`` checked against version ``expected`` cannot be applied on ``current``
    (``None``: it can): a later version changed one of the same communities (changes to others are merged).

    Both backends call it under their lock, on the history read there, before building the new version."""
    touched = set(map(str, communities))
    if expected > current:
        return f"conflict: version {expected} does not exist (the current one is {current})"
    later = [v for v in history if v.version > expected and set(v.communities) & touched]
    if not later:
        return None
    v = later[-1]
    return (f"conflict: version {v.version} by {v.author} at {v.created} ({v.reason}) changed "
            f"{', '.join(sorted(set(v.communities) & touched))} after version {expected} that this change was "
            f"checked against; check it again on version {current}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _history_frame(grids: gpd.GeoDataFrame) -> str:
    keep = [c for c in HISTORY_FIELDS if c in grids.columns]
    frame = grids[keep + [grids.geometry.name]].to_crs(4326)
    return frame.to_json(drop_id=True, ensure_ascii=False)


class MetaView:
    """What both backends derive from their meta table (``_meta``, kept fresh by ``_refresh()``)."""

    _meta: dict[str, str]

    def _refresh(self) -> None:  # pragma: no cover - each backend has its own
        raise NotImplementedError

    @property
    def tag(self) -> str:
        """Identity and version of the current content: changes with every change of the workspace."""
        self._refresh()
        return f"{self._meta.get('workspace_id', 'x')[:12]}-{self._meta.get('version', '0')}"

    @property
    def version(self) -> int:
        self._refresh()
        return int(self._meta.get("version", "0"))

    @property
    def meta(self) -> dict[str, str]:
        self._refresh()
        return dict(self._meta)

    def summary(self) -> dict:
        return json.loads(self.meta.get("summary", "{}"))


class Workspace(MetaView):
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

    def layer_names(self) -> list[str]:
        self._refresh()
        if self._names is None:  # listed once per version: redraws ask for every optional layer
            self._names = [str(row[0]) for row in pyogrio.list_layers(self.path) if str(row[0]) != META_TABLE]
        return list(self._names)

    def has(self, name: str) -> bool:
        return name in self.layer_names()

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
            if frame.crs is None or frame.crs.to_epsg() != 4326:
                frame = frame.set_crs(4326, allow_override=True) if frame.crs is None else frame.to_crs(4326)
            with self._lock:
                self._cache[name] = frame
        return frame


    # ------------------------------------------------------------ grid history
    def _baseline(self) -> GridVersion:
        meta = self.meta
        grids = self.read("input_grids") if self.has("input_grids") else self.read("grids")
        return GridVersion(version=int(meta.get("version", "1")), created=meta.get("created", _now()),
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

    def grid_version(self, version: int) -> GridVersion:
        for v in self.history():
            if v.version == int(version):
                return v
        known = ", ".join(str(v.version) for v in self.history())
        raise WorkspaceError(f"no grid version {version} (known: {known})")

    def grids_at(self, version: int) -> gpd.GeoDataFrame:
        """The grids (the fields a user draws, WGS-84) of any version."""
        v = self.grid_version(version)
        if v.version == self.version:
            grids = self.read("input_grids") if self.has("input_grids") else self.read("grids")
            return grids[[c for c in HISTORY_FIELDS if c in grids.columns] + [grids.geometry.name]]
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = db.execute(f"SELECT grids FROM {HISTORY_TABLE} WHERE version = ?", (v.version,)).fetchone()
        finally:
            db.close()
        frame = gpd.read_file(io.StringIO(row[0]), engine="pyogrio")
        return frame.set_crs(4326, allow_override=True)

    def version_as_of(self, when: date | datetime) -> GridVersion | None:
        """The version in force at the end of day ``when`` (UTC), or at the moment given; ``None`` before the
        first version."""
        if not isinstance(when, datetime):
            when = datetime.combine(when, time(23, 59, 59), tzinfo=timezone.utc)
        elif when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        found = None
        for v in self.history():
            if datetime.fromisoformat(v.created) <= when:
                found = v
        return found

    def grids_as_of(self, when: date | datetime) -> tuple[GridVersion, gpd.GeoDataFrame]:
        """The version in force on ``when`` and its grids (``WorkspaceError`` before the first version)."""
        v = self.version_as_of(when)
        if v is None:
            first = self.history()[0]
            msg = f"no grids were recorded on {when}: the first version ({first.version}) dates from {first.created}"
            raise WorkspaceError(msg)
        return v, self.grids_at(v.version)

    @contextmanager
    def _write_lock(self):
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def commit_grids(self, build: Callable[[int], Change], *, author: str, reason: str, communities: list[str],
                     kind: str = "apply", expected_version: int | None = None,
                     fail_after: str | None = None) -> GridVersion:
        """Make the grids ``build`` returns the new version, with their recomputed layers, atomically.

        Parameters
        ----------
        build
            Called once under the lock, after the conflict check, with the current version (``read`` answers
            with it meanwhile); returns ``(grids, layers, summary)`` built on that version: the whole new grids
            layer (any CRS; the fields of :data:`HISTORY_FIELDS` are kept in history) — the current grids with
            only ``communities`` replaced —, the output layers to replace (``grids``, ``households``,
            ``coverage_issues`` …, WGS-84) and the summary (``None``: unchanged). A change prepared on an
            older version is built again on the current one, so nobody's change is lost.
        communities
            The communities the change touches.
        expected_version
            The version the change was checked against: if a later version touched one of ``communities``
            the change is refused with :class:`ConflictError` (a change to other communities is merged).
        fail_after
            For tests only: raise after this step (``copy``, ``layers``, ``history``) to simulate a crash.
        """
        author = (author or "").strip()
        reason = (reason or "").strip()
        if not author or not reason:
            raise WorkspaceError("a change of the grids needs an author and a reason")
        with self._write_lock():
            self._stamp = None
            self._refresh()
            current = self.version
            history = self.history()
            if expected_version is not None:
                msg = conflict_message(history, current, int(expected_version), communities)
                if msg:
                    raise ConflictError(msg)
            grids, layers, summary = build(current)
            new_version = current + 1
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
                    created = _now()
                    db.execute(f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (new_version, created, author, reason, kind, json.dumps(sorted(map(str, communities))),
                                current, len(grids), _history_frame(grids)))
                db.close()
                values = {"version": str(new_version), "updated": created}
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
            return self.grid_version(new_version)


def grid_edits(workspace) -> list[GridVersion]:
    """The grid changes made in a workspace after its analysis (``redraw apply`` / ``restore``), oldest first:
    what a new analysis into the same place would discard."""
    return [v for v in workspace.history() if v.kind != "analyze"]


def open_workspace(path: str | os.PathLike | None = None, *, db: str | None = None,
                   schema: str = "gridcover"):
    """Open the workspace ``analyze`` wrote: its folder or its GeoPackage (the embedded default), or with ``db``
    (a PostgreSQL URL) the PostGIS schema ``analyze --db`` wrote (:class:`gridcover.store.postgis.PostGISWorkspace`,
    the same interface)."""
    if db:
        if path is not None:
            raise ConfigError("give a workspace folder or --db URL, not both")
        from gridcover.store.postgis import PostGISWorkspace

        return PostGISWorkspace(db, schema=schema)
    if path is None:
        raise ConfigError("give the workspace folder that 'gridcover analyze' wrote, or --db URL")
    return Workspace(path)
