"""A pytest plugin giving tests a real PostGIS: the ``postgis_dsn`` fixture.

The DSN comes from ``GRIDCOVER_TEST_PG`` (``.ci/run`` sets it from ``.ci/postgis.sh start``), else from a
cluster that ``.ci/postgis.sh`` already runs. Outside CI (``CI`` unset) a missing PostGIS or psycopg skips
the test with the reason; in CI it fails the test. Register with ``pytest_plugins = ["tests.pg_fixture"]``
(or in tests/conftest.py).

Example
-------
    pytest_plugins = ["tests.pg_fixture"]

    def test_covers(postgis_dsn):
        with psycopg.connect(postgis_dsn) as db: ...
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ENV = "GRIDCOVER_TEST_PG"
SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgis.sh"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostGIS is required in CI and is not available: {reason}", pytrace=False)
    pytest.skip(f"PostGIS not available ({reason}); run 'bash .ci/postgis.sh start' and set {ENV} to the DSN it "
                "prints")


def _running_dsn() -> str | None:
    if not SCRIPT.is_file():
        return None
    try:
        done = subprocess.run(["bash", str(SCRIPT), "dsn"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@pytest.fixture(scope="session")
def postgis_dsn() -> str:
    """DSN of a PostgreSQL database with the postgis extension (skip/fail as the module docstring says)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("the Python package psycopg is not installed (pip install -e '.[test]')")
    dsn = os.environ.get(ENV) or _running_dsn()
    if not dsn:
        _unavailable(f"{ENV} is not set and no cluster of .ci/postgis.sh is running")
    try:
        with psycopg.connect(dsn, connect_timeout=10) as db:
            db.execute("SELECT postgis_version()").fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostGIS means "unavailable"
        _unavailable(f"cannot use {dsn}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
    return dsn
