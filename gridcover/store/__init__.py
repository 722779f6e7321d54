"""The store: where a workspace lives, behind one contract (:class:`Workspace`) for GeoPackage and PostGIS.

``open_workspace`` picks the backend; everything above the store uses the contract only (:mod:`.base`: the
operations, the proposal store's interface, the shared types and errors, the version logic over history
records). The backends (:mod:`.gpkg`, :mod:`.postgis`, which reads a GeoPackage to load it into a schema)
import the base; the base imports neither.

Example
-------
>>> ws = open_workspace("out/sample")                               # the GeoPackage analyze wrote
>>> ws = open_workspace(db="postgresql://gis@db.example/city")       # the PostGIS schema analyze --db wrote
>>> ws.read("grids").crs.to_epsg()
4326
"""

from __future__ import annotations

import os

from geo.errors import ConfigError
from gridcover.store.base import (ConflictError, GridVersion, ProposalStore, RowQuery, Selection, TileSpec, Workspace,
                                  WorkspaceError,
                                  communities_changed_since, conflict_message, grid_edits)
from gridcover.store.gpkg import WORKSPACE_FILE, GeoPackageWorkspace

__all__ = ["WORKSPACE_FILE", "ConflictError", "GridVersion", "ProposalStore", "RowQuery", "Selection", "TileSpec",
           "Workspace", "WorkspaceError",
           "communities_changed_since", "conflict_message", "grid_edits", "open_workspace"]


def open_workspace(path: str | os.PathLike | None = None, *, db: str | None = None,
                   schema: str = "gridcover", state_dir: str | os.PathLike | None = None) -> Workspace:
    """Open the workspace ``analyze`` wrote: its folder or its GeoPackage (the embedded default,
    :class:`~gridcover.store.gpkg.GeoPackageWorkspace`), or with ``db`` (a PostgreSQL URL) the PostGIS schema
    ``analyze --db`` wrote (:class:`~gridcover.store.postgis.PostGISWorkspace`), whose side files go into a
    folder under ``state_dir`` (default ~/.local/state/gridcover). Both are a :class:`Workspace`."""
    if db:
        if path is not None:
            raise ConfigError("give a workspace folder or --db URL, not both")
        from gridcover.store.postgis import PostGISWorkspace

        return PostGISWorkspace(db, schema=schema, state_dir=state_dir)
    if path is None:
        raise ConfigError("give the workspace folder that 'gridcover analyze' wrote, or --db URL")
    return GeoPackageWorkspace(path)
