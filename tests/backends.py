"""The workspace's two backends for tests: GeoPackage (the embedded default) and PostGIS.

A test module that takes the ``backend`` fixture runs once per backend; ``backend.open(folder)`` opens the
workspace that ``analyze`` wrote into ``folder`` as that backend (for PostGIS: loaded into a schema of its
own, dropped when the module ends, so tests never share one). The tests then use the store contract
(:class:`gridcover.store.Workspace`) only; what differs between the backends (where the workspace is, for
another process or the command line) is answered here. PostGIS comes from ``postgis_dsn``
(tests/pg_fixture.py: skipped outside CI when none runs, a failure in CI).

Example
-------
    from backends import backend, postgis_dsn  # noqa: F401 (fixtures)

    def test_lookup(backend, tmp_path):
        ws = backend.open(write_workspace(tmp_path / "ws"))
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

from pg_fixture import postgis_dsn  # noqa: F401 - a fixture the modules importing this one need

BACKENDS = ("gpkg", "postgis")
#: Files kept beside a PostGIS workspace (the blind-spot log) go to a throwaway folder, not ~/.local/state: the
#: tests hand it to the store (``state_dir=STATE_DIR``), and commands they run read it from the environment.
STATE_DIR = Path(os.environ.setdefault("GRIDCOVER_STATE_DIR", tempfile.mkdtemp(prefix="gridcover-test-state-")))


def new_schema() -> str:
    """A schema name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Backend:
    """Opens analyzed workspaces as one backend; remembers what to clean up."""

    def __init__(self, kind: str, dsn: str | None = None) -> None:
        self.kind = kind
        self.dsn = dsn
        self.schemas: list[str] = []
        self.opened: list = []

    def __repr__(self) -> str:
        return self.kind

    def open(self, folder: str | os.PathLike):
        """The workspace in ``folder`` (what analyze wrote), as this backend."""
        from gridcover.store import open_workspace

        if self.kind == "gpkg":
            return open_workspace(folder)
        from gridcover.store.postgis import load_gpkg

        schema = new_schema()
        self.schemas.append(schema)
        gpkg = Path(folder) / "workspace.gpkg" if Path(folder).is_dir() else Path(folder)
        load_gpkg(gpkg, self.dsn, schema=schema)
        ws = open_workspace(db=self.dsn, schema=schema, state_dir=STATE_DIR)
        self.opened.append(ws)
        return ws

    def again(self, ws):
        """The workspace ``ws`` opened again, as another process (another server, another editor) has it."""
        from gridcover.store import open_workspace

        if self.kind == "gpkg":
            return open_workspace(ws.path)
        other = open_workspace(db=self.dsn, schema=ws.schema, state_dir=STATE_DIR)
        self.opened.append(other)
        return other

    def cli_args(self, ws) -> list[str]:
        """Where ``ws`` is, as the command line names it (a folder, or ``--db URL --schema NAME``)."""
        return [str(ws.path)] if self.kind == "gpkg" else ["--db", self.dsn, "--schema", ws.schema]

    def close(self) -> None:
        for ws in self.opened:
            ws.close()
        for schema in self.schemas:
            drop_schema(self.dsn, schema)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    """``gpkg`` then ``postgis``: the tests of a module using it run on both."""
    dsn = request.getfixturevalue("postgis_dsn") if request.param == "postgis" else None
    b = Backend(request.param, dsn)
    yield b
    if dsn:
        b.close()
