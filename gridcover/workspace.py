"""The workspace: what ``gridcover analyze`` wrote, opened for the server, lookups and redraws.

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

import json
import os
import threading
from pathlib import Path

import geopandas as gpd
import pyogrio

from geo.errors import GridcoverError
from geo.report import META_TABLE, read_meta

WORKSPACE_FILE = "workspace.gpkg"


class WorkspaceError(GridcoverError):
    """A workspace that cannot be opened or read."""


class Workspace:
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
                    self._cache = {}
                    self._stamp = stamp

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

    def layer_names(self) -> list[str]:
        return [str(row[0]) for row in pyogrio.list_layers(self.path) if str(row[0]) != META_TABLE]

    def has(self, name: str) -> bool:
        return name in self.layer_names()

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


def open_workspace(path: str | os.PathLike) -> Workspace:
    """Open the workspace ``analyze`` wrote (its folder or its GeoPackage)."""
    return Workspace(path)
