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
>>> import pandas as pd
>>> communities = pd.DataFrame({"id": ["510105001001", "510105001002"], "name": ["鼓楼南街社区", "太升南路社区"]})
>>> resolve_id(communities, "鼓楼南街社区", what="community")
'510105001001'
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


def resolve_id(frame, value: str, *, what: str, fields: tuple[str, ...] = ("name",)) -> str:
    """The id a user means by ``value``: an id as it is, else the one row whose name (or other ``fields``, e.g. a
    grid's ``code``) equals it, else the one whose name holds it (鼓楼南街 for 鼓楼南街社区).

    Raises ``ConfigError`` naming the candidates when several rows fit, and some known ids and names when
    none does, so that names work wherever ids do (``--community 鼓楼南街社区``, ``--grid 鼓楼南街社区第1网格``).
    """
    from geo.errors import ConfigError

    value = str(value).strip()
    ids = frame["id"].astype(str)
    if (ids == value).any():
        return value
    names = {f: frame[f].astype("string").fillna("") for f in fields if f in frame.columns}
    for match in ([c == value for c in names.values()], [c.str.contains(value, regex=False) for c in names.values()]):
        hit = ids[_any(match)] if match else ids.iloc[:0]
        if hit.nunique() == 1:
            return str(hit.iloc[0])
        if hit.nunique() > 1:
            listed = ", ".join(_described(frame, i, names) for i in hit.index[:10])
            raise ConfigError(f"{what} {value!r} is ambiguous, {hit.nunique()} fit: {listed}; give one of their ids")
    known = ", ".join(_described(frame, i, names) for i in ids.index[:10])
    more = f" … ({len(ids)} in all)" if len(ids) > 10 else ""
    raise ConfigError(f"no {what} {value!r} in the workspace (by id or name); known: {known}{more}")


def _any(masks: list):
    out = masks[0].to_numpy(dtype=bool).copy()
    for m in masks[1:]:
        out |= m.to_numpy(dtype=bool)
    return out


def _described(frame, i, names: dict) -> str:
    label = " ".join(str(c.loc[i]) for c in names.values() if str(c.loc[i]))
    return f"{frame['id'].loc[i]} ({label})" if label else str(frame["id"].loc[i])


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
