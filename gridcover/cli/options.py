"""What several ``gridcover`` commands share: their common options, declared once, and how they are read.

A command passes its own help text where its meaning differs (``analyze --db`` writes the workspace into PostGIS,
``serve --db`` serves it); the name, metavar and default stay here.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_db(parser)
>>> parser.parse_args(["--db", "postgresql://gis@db/city"])
Namespace(db='postgresql://gis@db/city', schema='gridcover')
>>> parse_date("2026-11-29")
datetime.date(2026, 11, 29)
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

#: The ``workspace`` argument of the commands that read what analyze wrote.
WORKSPACE_HELP = "the folder (or workspace.gpkg) that 'gridcover analyze' wrote (not with --db)"
#: ``--db`` of the commands that read the workspace in PostGIS.
DB_HELP = "the workspace in PostGIS that 'analyze --db' wrote (docs/postgis.md)"
SCHEMA_HELP = "the PostGIS schema of --db (default gridcover)"
QUIET_HELP = "no progress lines"


def add_workspace(parser: argparse.ArgumentParser, help: str = WORKSPACE_HELP) -> None:
    """The optional ``workspace`` argument: a folder or workspace.gpkg (not with ``--db``)."""
    parser.add_argument("workspace", nargs="?", help=help)


def add_db(parser: argparse.ArgumentParser, help: str = DB_HELP) -> None:
    """``--db URL``, a workspace in PostGIS, and ``--schema`` (default gridcover)."""
    parser.add_argument("--db", metavar="URL", help=help)
    parser.add_argument("--schema", default="gridcover", help=SCHEMA_HELP)


def add_store(parser: argparse.ArgumentParser) -> None:
    """The workspace a command reads: the optional ``workspace`` argument or ``--db``/``--schema``."""
    add_workspace(parser)
    add_db(parser)


def add_as_of(parser: argparse.ArgumentParser, help: str | None = None, *, as_text: bool = False) -> None:
    """``--as-of YYYY-MM-DD``, read as a date; ``as_text`` leaves the text to the command (lookup reads it as
    the HTTP API does, its error naming ``as_of``)."""
    if as_text:
        parser.add_argument("--as-of", dest="as_of", help=help)
    else:
        parser.add_argument("--as-of", type=parse_date, default=None, metavar="YYYY-MM-DD", help=help)


def add_crs(parser: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    """``--crs``: the coordinate system of what the command reads (an EPSG code, wgs84, cgcs2000, gcj02 or bd09)."""
    parser.add_argument("--crs", default=default, help=help)


def add_quiet(parser: argparse.ArgumentParser, help: str | None = QUIET_HELP) -> None:
    """``--quiet``: no progress lines (see :func:`progress_of`)."""
    parser.add_argument("--quiet", action="store_true", help=help)


def parse_date(text: str) -> date:
    """A ``YYYY-MM-DD`` option value as a date (argparse's one-line usage error otherwise)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def progress_of(args: argparse.Namespace):
    """The progress callback of a command: a line on stderr per step, none with ``--quiet``."""
    return None if args.quiet else _progress
