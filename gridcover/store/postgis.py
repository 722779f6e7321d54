"""The workspace in PostGIS (空间数据库): one database shared by a city's servers, lookups and editors.

:class:`PostGISWorkspace` implements the store contract (:class:`gridcover.store.base.Workspace`), as the
GeoPackage :class:`gridcover.store.gpkg.GeoPackageWorkspace` does, over a schema (default ``gridcover``) holding:

* one table per layer, named as the layer (``households``, ``grids``, ``input_grids`` …): typed columns,
  ``fid`` primary key (the order analyze wrote), ``id`` unique where the layer has ids, ``geom``
  ``geometry(<type>, 4326)`` with a GiST index;
* ``gridcover_meta`` (workspace id, version, summary), ``gridcover_layers`` (which layers, in which order),
  ``gridcover_grid_versions`` and ``grid_history`` (every version of the grids, GiST-indexed);
* ``grid_proposals``: saved redraw proposals (:class:`PostGISProposals`, a
  :class:`gridcover.store.base.ProposalStore`);
* ``gridcover_migrations``: the versioned SQL files of ``gridcover/store/migrations`` applied so far.

Several processes share one schema. A change bumps ``gridcover_meta`` in the same transaction, and a trigger
announces it with ``NOTIFY gridcover``; every open workspace LISTENs on its own connection, so its ``tag``
(which tiles and lookups carry) changes within milliseconds of the commit. A layer is read in a
REPEATABLE READ snapshot together with the version it belongs to, so a reader never mixes versions.
:meth:`PostGISWorkspace.commit_grids` takes the version row ``FOR UPDATE`` and builds the new grids on the
version read there: two editors are serialised, the second one's change is built on the first one's grids
(other communities) or refused with :class:`~gridcover.store.base.ConflictError` (the same community), and
an interrupted change rolls back whole.

Example
-------
>>> load_gpkg("out/sample/workspace.gpkg", "postgresql://gis@db.example/city")   # what analyze --db does
>>> ws = PostGISWorkspace("postgresql://gis@db.example/city")
>>> ws.read("grids").crs.to_epsg()
4326
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, datetime, timezone
from hashlib import blake2b
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.errors import ConfigError
from geo.history import HISTORY_COLUMNS, MEMBER_COLUMNS, History
from gridcover.io.history import HISTORY_IDS_TABLE, HISTORY_TABLE, typed_history
from gridcover.io.outputs import META_TABLE, _json_default, _plain
from gridcover.store.base import (HISTORY_FIELDS, Change, GridVersion, ProposalStore, RowQuery, Selection, TileSpec,
                                  Workspace, WorkspaceError, check_conflict, new_version)
from gridcover.store.base import (CASE_COLUMNS, CASE_TIMES, CaseFilter, CaseIntake, CaseStore, case_not_found,
                                  case_update, check_intake, normalise_cases)
from gridcover.store.cases import add_one_sql, case_where
from gridcover.store.gpkg import GeoPackageWorkspace

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_SCHEMA = "gridcover"
#: The NOTIFY channel; the payload is the schema that changed.
CHANNEL = "gridcover"
LAYERS_TABLE = "gridcover_layers"
VERSIONS_TABLE = "gridcover_grid_versions"
GRID_HISTORY = "grid_history"
#: The whole-number fields of grid history (the rest is text).
INT_HISTORY_FIELDS = ("full_time_workers", "part_time_workers")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Seconds between reconnection attempts of the listener.
_RETRY_S = 1.0


def _psycopg():
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a runtime dependency; only a broken install lacks it
        raise ConfigError("--db needs the Python package psycopg (pip install 'psycopg[binary]')") from None
    return psycopg


def describe(dsn: str, schema: str = DEFAULT_SCHEMA) -> str:
    """The database a DSN names, without its password: ``postgresql://user@host:port/db (schema gridcover)``."""
    psycopg = _psycopg()
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"--db {dsn!r} is not a PostgreSQL connection string or URL: "
                          f"{(str(exc).strip().splitlines() or ['?'])[0]}") from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')} (schema {schema})"


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case SQL name (``ConfigError`` otherwise)."""
    if not _NAME.match(schema or ""):
        raise ConfigError(f"schema {schema!r}: use lower-case letters, digits and _ (e.g. gridcover)")
    return schema


def connect(dsn: str, *, autocommit: bool = False):
    """A psycopg connection, or one clear ``WorkspaceError`` naming the database."""
    psycopg = _psycopg()
    describe(dsn)
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WorkspaceError(f"cannot connect to {describe(dsn).split(' (')[0]}: {first}") from None


# ------------------------------------------------------------------ migrations
def migrations() -> list[tuple[int, str, str]]:
    """The SQL migrations in the repository: (version, name, SQL), in order."""
    out = []
    for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        out.append((int(path.name[:4]), path.stem[5:], path.read_text(encoding="utf-8")))
    return out


def migrate(conn, schema: str = DEFAULT_SCHEMA, *, create: bool = True) -> list[int]:
    """Bring ``schema`` up to the newest migration (inside the caller's transaction); returns what was applied.

    Concurrent callers are serialised by an advisory lock. A schema migrated by a newer gridcover is refused.
    ``create=False`` refuses a missing schema instead of creating it.
    """
    from psycopg import sql

    check_schema_name(schema)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridcover migrate ' || %s))", (schema,))
    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if not exists and not create:
        return []
    done: set[int] = set()
    if conn.execute("SELECT to_regclass(%s)", (f"{schema}.gridcover_migrations",)).fetchone()[0] is not None:
        done = {int(r[0]) for r in conn.execute(sql.SQL("SELECT version FROM {}.gridcover_migrations")
                                                .format(sql.Identifier(schema))).fetchall()}
    known = migrations()
    newest = max((v for v, _, _ in known), default=0)
    if done and max(done) > newest:
        msg = (f"schema {schema} was migrated to version {max(done)} by a newer gridcover (this one knows up to "
               f"{newest}): upgrade gridcover")
        raise WorkspaceError(msg)
    pending = [(v, name, text) for v, name, text in known if v not in done]
    if not pending:
        return []
    postgis = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'"
                           ).fetchone()
    if postgis is None:
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION postgis")
        except Exception as exc:  # noqa: BLE001 - any failure: the user must install it
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            msg = (f"the database has no PostGIS and it cannot be added here ({first}): run 'CREATE EXTENSION "
                   "postgis' as the database owner")
            raise WorkspaceError(msg) from None
        postgis = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'"
                               ).fetchone()
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.gridcover_migrations (version integer PRIMARY KEY, "
                         "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())").format(sql.Identifier(schema)))
    applied = []
    path = conn.execute("SHOW search_path").fetchone()[0]
    try:
        conn.execute(sql.SQL("SET search_path TO {}, {}").format(sql.Identifier(schema), sql.SQL(postgis[0])))
        for version, name, text in pending:
            conn.execute(text)
            conn.execute("INSERT INTO gridcover_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(version)
    finally:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.SQL(path)))
    return applied


# ------------------------------------------------------------------ writing layers
def _pg_type(series: pd.Series, hint: str | None = None) -> tuple[str, pd.Series]:
    """The column type for a frame column and the column made ready for COPY (CSV text)."""
    dtype = series.dtype
    if hint is not None and hint.startswith("int") and pd.api.types.is_float_dtype(dtype):
        return "bigint", series.round().astype("Int64")  # an int field with nulls, read as float by pyogrio
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", series
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint", series
    if pd.api.types.is_float_dtype(dtype):
        return "double precision", series
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamptz", series
    if dtype == object:
        kind = pd.api.types.infer_dtype(series, skipna=True)  # one pass in C
        if kind == "boolean":
            return "boolean", series
        if kind in ("date", "datetime", "datetime64"):  # as the GeoPackage driver stores a date in a text field
            return "text", series.map(lambda v: v.isoformat() if isinstance(v, (date, datetime)) else v)
        if kind == "mixed":  # lists (JSON arrays, as in the GeoJSON and GeoPackage outputs) or odd values
            return "text", series.map(lambda v: json.dumps(v, ensure_ascii=False, default=_json_default)
                                      if isinstance(v, (list, tuple, dict)) else v if v is None or isinstance(v, str)
                                      else None if pd.isna(v) else str(v))
    return "text", series.astype("string")


def _geometry_column(geoms: np.ndarray) -> tuple[str, np.ndarray]:
    """The PostGIS geometry type of a layer and its geometries (singles promoted where Multi ones are mixed in,
    as the GeoPackage driver does)."""
    present = ~shapely.is_missing(geoms)
    names = set(shapely.get_type_id(geoms[present]).tolist())
    kinds = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}
    promote = {frozenset({0, 4}): (0, shapely.multipoints, "MultiPoint"),
               frozenset({1, 5}): (1, shapely.multilinestrings, "MultiLineString"),
               frozenset({3, 6}): (3, shapely.multipolygons, "MultiPolygon")}
    if len(names) == 1 and next(iter(names)) in kinds:
        return kinds[next(iter(names))], geoms
    if frozenset(names) in promote:
        single, make, name = promote[frozenset(names)]
        geoms = geoms.copy()
        ids = shapely.get_type_id(geoms)
        pick = np.flatnonzero(ids == single)
        geoms[pick] = make(geoms[pick], indices=np.arange(len(pick)))
        return name, geoms
    return "Geometry", geoms


def write_layer(conn, schema: str, name: str, frame: gpd.GeoDataFrame, *, position: int,
                hints: dict[str, str] | None = None) -> None:
    """Create (or replace) the table of one layer and COPY its rows, inside the caller's transaction."""
    from psycopg import sql

    if not _NAME.match(name):
        raise WorkspaceError(f"layer {name!r} cannot be a table name: use lower-case letters, digits and _")
    frame = _plain(frame.to_crs(4326) if frame.crs is not None else frame.set_crs(4326))
    gname = frame.geometry.name
    geoms = np.asarray(frame.geometry.array, dtype=object)
    gtype, geoms = _geometry_column(geoms)
    table = sql.Identifier(schema, name)
    columns, data = [], {"fid": np.arange(1, len(frame) + 1)}
    for column in frame.columns:
        if column == gname:
            continue
        if column.lower() in ("fid", "geom") or not isinstance(column, str):
            raise WorkspaceError(f"layer {name}: field {column!r} clashes with the table's own fid/geom columns")
        kind, values = _pg_type(frame[column], (hints or {}).get(column))
        columns.append((column, kind))
        data[column] = values.array
    hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    data["geom"] = hexes
    body = pd.DataFrame(data).to_csv(index=False, header=False, na_rep="\\N", lineterminator="\n")
    defs = [sql.SQL("fid bigint PRIMARY KEY")]
    defs += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(k)) for c, k in columns]
    defs.append(sql.SQL("geom geometry({}, 4326)").format(sql.SQL(gtype)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(defs)))
    names = sql.SQL(", ").join(sql.Identifier(c) for c in data)
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(table, names)) as copy:
            step = 1 << 24
            raw = body.encode("utf-8")
            for start in range(0, len(raw), step):
                copy.write(raw[start:start + step])
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(sql.Identifier(f"{name}_geom_gist"), table))
    conn.execute(sql.SQL("ANALYZE {}").format(table))  # the planner's statistics: pages and tiles use the GiST index
    if "id" in frame.columns and frame["id"].notna().all() and frame["id"].is_unique:
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN id SET NOT NULL, ADD CONSTRAINT {} UNIQUE (id)")
                     .format(table, sql.Identifier(f"{name}_id_key")))
    conn.execute(sql.SQL("CREATE TRIGGER gridcover_layer_edited AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                         "FOR EACH STATEMENT EXECUTE FUNCTION {}.gridcover_layer_edited()")
                 .format(table, sql.Identifier(schema)))
    conn.execute(sql.SQL("INSERT INTO {} (name, position, geometry_type, features) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET geometry_type = EXCLUDED.geometry_type, "
                         "features = EXCLUDED.features").format(sql.Identifier(schema, LAYERS_TABLE)),
                 (name, position, gtype, len(frame)))


def _write_history(conn, schema: str, version, grids: gpd.GeoDataFrame) -> None:
    """One row of ``gridcover_grid_versions`` and the grids of that version in ``grid_history``."""
    from psycopg import sql

    conn.execute(sql.SQL("INSERT INTO {} (version, created, author, reason, kind, communities, parent, n_grids) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)").format(sql.Identifier(schema, VERSIONS_TABLE)),
                 (version.version, datetime.fromisoformat(version.created), version.author, version.reason,
                  version.kind, list(version.communities), version.parent, version.grids))
    frame = grids.to_crs(4326)
    data = {"version": np.full(len(frame), version.version), "position": np.arange(len(frame))}
    for field in HISTORY_FIELDS:
        if field in frame.columns:
            values = frame[field]
            if field in INT_HISTORY_FIELDS:
                values = pd.to_numeric(values, errors="coerce").round().astype("Int64")
            else:
                values = values.astype("string")
            data[field] = values.array
    data["geom"] = shapely.to_wkb(shapely.set_srid(np.asarray(frame.geometry.array, dtype=object), 4326),
                                  hex=True, include_srid=True)
    body = pd.DataFrame(data).to_csv(index=False, header=False, na_rep="\\N", lineterminator="\n")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in data)
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')")
                      .format(sql.Identifier(schema, GRID_HISTORY), names)) as copy:
            copy.write(body.encode("utf-8"))


def write_scorecard_history(conn, schema: str, history: History) -> None:
    """Make ``history`` the content of ``scorecard_history`` and ``scorecard_history_ids`` (migration 0005),
    inside the caller's transaction (COPY, as the layers)."""
    from psycopg import sql

    for table, frame, columns in ((HISTORY_TABLE, history.rows, HISTORY_COLUMNS),
                                  (HISTORY_IDS_TABLE, history.members, MEMBER_COLUMNS)):
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, table)))
        data = frame[list(columns)].copy()
        if "target_year" in data.columns:
            data["target_year"] = data["target_year"].astype("Int64")
        if "pass" in data.columns:
            data["pass"] = data["pass"].map(lambda v: None if v is None else ("t" if v else "f")).astype(object)
        body = data.to_csv(index=False, header=False, na_rep="\\N", lineterminator="\n")
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')")
                          .format(sql.Identifier(schema, table), names)) as copy:
                copy.write(body.encode("utf-8"))


def read_scorecard_history(conn, schema: str) -> History:
    """The snapshots kept in ``schema`` (:func:`write_scorecard_history`)."""
    from psycopg import sql

    frames = []
    for table, columns in ((HISTORY_TABLE, HISTORY_COLUMNS), (HISTORY_IDS_TABLE, MEMBER_COLUMNS)):
        select = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
        rows = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY as_of").format(
            select, sql.Identifier(schema, table))).fetchall()
        frames.append(pd.DataFrame(rows, columns=list(columns)))
    return typed_history(History(rows=frames[0], members=frames[1]))


def load_gpkg(gpkg: str | os.PathLike, dsn: str, *, schema: str = DEFAULT_SCHEMA, progress=None) -> str:
    """Make the GeoPackage workspace ``gpkg`` (what ``analyze`` wrote, with its grid history) the content of
    ``schema`` in one transaction: an interrupted load leaves the previous content. Returns the workspace tag.
    """
    from psycopg import sql

    check_schema_name(schema)
    source = GeoPackageWorkspace(gpkg)
    names = source.layer_names()
    history = source.history()
    with connect(dsn) as conn:
        with conn.transaction():
            migrate(conn, schema)
            conn.execute("SET LOCAL lock_timeout = '60s'")
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(schema, META_TABLE)))
            old = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {}").format(sql.Identifier(schema, LAYERS_TABLE)))]
            for name in old:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, name)))
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, LAYERS_TABLE)))
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, VERSIONS_TABLE)))
            for position, name in enumerate(names):
                info = pyogrio.read_info(source.path, layer=name)
                hints = dict(zip(info["fields"], map(str, info["dtypes"])))
                write_layer(conn, schema, name, source.read(name), position=position, hints=hints)
            for v in history:
                _write_history(conn, schema, v, source.grids_at(v.version))
            write_scorecard_history(conn, schema, source.scorecard_history())
            meta = source.meta
            meta["edits"] = "0"
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, META_TABLE)))
            with conn.cursor() as cur:
                cur.executemany(sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s)")
                                .format(sql.Identifier(schema, META_TABLE)), list(meta.items()))
        if progress:
            progress(f"wrote {len(names)} layers and {len(history)} grid version(s) into {describe(dsn, schema)}")
    return f"{meta.get('workspace_id', 'x')[:12]}-{meta.get('version', '0')}"


# ------------------------------------------------------------------ reading
def _columns(conn, schema: str, name: str) -> list[tuple[str, str]]:
    """The attribute columns of a layer table and their SQL types, in order (not ``fid`` and ``geom``)."""
    rows = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s ORDER BY ordinal_position", (schema, name)).fetchall()
    return [(c, t) for c, t in rows if c not in ("fid", "geom")]


def _read_table(conn, schema: str, name: str, *, source=None, geometry=None, extra=(), cols=None,
                crs: int | None = 4326, nullable: set[str] | None = None) -> gpd.GeoDataFrame:
    """A layer table as a GeoDataFrame (WGS-84; dtypes as pyogrio gives them for the GeoPackage).

    ``source`` (composed SQL, ``FROM`` … ``ORDER BY`` …, the table aliased ``t``) reads some rows only,
    ``geometry`` (composed SQL over ``t``) gives the geometry as WKB another way (a tile's), and ``extra``
    (``(name, sql)`` pairs) adds text columns (``fid`` and the street of a row, for :class:`Selection`); a tile's
    geometry is in tile units (``crs=None``). Whole-number and boolean columns are read as pyogrio reads the
    whole layer: as floats (objects) where the column holds a null; ``nullable`` names those columns when only
    some rows are read, so a page has the dtypes of the whole layer."""
    from psycopg import sql

    cols = _columns(conn, schema, name) if cols is None else cols
    select = [sql.SQL("t.{}").format(sql.Identifier(c)) for c, _ in cols] + [expr for _, expr in extra]
    select.append(sql.SQL("encode({}, 'hex')").format(geometry if geometry is not None else sql.SQL("ST_AsBinary(t.geom)")))
    source = source if source is not None else sql.SQL("FROM {} t ORDER BY t.fid").format(sql.Identifier(schema, name))
    query = sql.SQL("COPY (SELECT {} {}) TO STDOUT (FORMAT csv, NULL '\\N')").format(sql.SQL(", ").join(select), source)
    buf = io.BytesIO()
    with conn.cursor() as cur:
        with cur.copy(query) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    names = [c for c, _ in cols] + [n for n, _ in extra] + ["__geom"]
    if buf.getbuffer().nbytes == 0:
        raw = pd.DataFrame({c: pd.Series([], dtype=object) for c in names})
    else:
        raw = pd.read_csv(buf, header=None, names=names, dtype=str, na_values=["\\N"], keep_default_na=False,
                          encoding="utf-8")
    out = {}
    for column, kind in cols:
        values = raw[column]
        if kind in ("bigint", "integer", "smallint"):
            values = pd.to_numeric(values)
            whole = values.notna().all() if nullable is None else column not in nullable
            out[column] = values.astype("int64") if whole else values.astype("float64")
        elif kind in ("double precision", "real", "numeric"):
            out[column] = pd.to_numeric(values).astype("float64")
        elif kind == "boolean":
            mapped = values.map({"t": True, "f": False})
            whole = values.notna().all() if nullable is None else column not in nullable
            out[column] = mapped.astype(bool) if whole else mapped.astype(object)
        elif kind.startswith("timestamp") or kind == "date":
            out[column] = pd.to_datetime(values, utc=kind.endswith("with time zone"))
        else:  # pyogrio's dtypes: str, or object for an empty layer
            out[column] = values.astype("str") if len(values) else values.astype(object)
    for column, _ in extra:
        out[column] = raw[column].astype(object).where(raw[column].notna(), "").to_numpy(dtype=object)
    hexes = raw["__geom"].to_numpy(dtype=object, copy=True)
    hexes[pd.isna(hexes)] = None
    geometry = shapely.from_wkb(hexes)
    return gpd.GeoDataFrame(pd.DataFrame(out, index=pd.RangeIndex(len(raw))), geometry=geometry,
                            crs=crs)


# ------------------------------------------------------------------ rows and tiles in SQL (issue 16)
def _street_sql(schema: str, street_from: str | None):
    """The street of a row of ``t`` as text (``''`` where it has none), as ``layers.features`` reads it in
    memory: its ``id`` (the streets), its ``street_id``, or its community's ``street_id``."""
    from psycopg import sql

    if street_from == "id":
        return sql.SQL("COALESCE(t.id::text, '')")
    if street_from == "street_id":
        return sql.SQL("COALESCE(t.street_id::text, '')")
    if street_from == "community_id":
        return sql.SQL("COALESCE((SELECT c.street_id::text FROM {} c WHERE c.id::text = t.community_id::text "
                       "LIMIT 1), '')").format(sql.Identifier(schema, "communities"))
    raise ValueError(f"unknown street_from {street_from!r} (id, street_id or community_id)")


def _equals_sql(column: str, kind: str | None, value: str):
    """``column = value`` over ``t`` as ``layers.features.PreparedLayer.query`` compares in memory: a boolean
    as ``true``/``false`` (``''`` when missing), a number as a number (a value that is none: no row), text as
    text with a missing value as ``''``; a column the table lacks: no row."""
    from psycopg import sql

    col = sql.SQL("t.{}").format(sql.Identifier(column))
    if kind is None:
        return sql.SQL("FALSE")
    if kind == "boolean":
        return sql.SQL("(CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' ELSE '' END) = {v}").format(
            c=col, v=sql.Literal(str(value).strip().lower()))
    if kind in ("bigint", "integer", "smallint", "double precision", "real", "numeric"):
        try:
            number = float(value)
        except ValueError:
            return sql.SQL("FALSE")
        if number != number:  # NaN equals nothing in memory; PostgreSQL's NaN equals NaN
            return sql.SQL("FALSE")
        return sql.SQL("{} = {}::double precision").format(col, sql.Literal(number))
    return sql.SQL("COALESCE({}::text, '') = {}").format(col, sql.Literal(str(value)))


def _where_sql(schema: str, query: RowQuery, kinds: dict[str, str]):
    """The ``WHERE`` condition over ``t`` of a :class:`RowQuery` (literals composed in: it runs inside COPY)."""
    from psycopg import sql

    parts = [sql.SQL("TRUE")]
    if query.area is not None:
        parts.append(sql.SQL("ST_Intersects(t.geom, ST_GeomFromWKB(decode({}, 'hex'), 4326))").format(
            sql.Literal(shapely.to_wkb(query.area, hex=True))))
    if query.ids is not None:
        key = (sql.SQL("t.{}::text").format(sql.Identifier(query.id_column)) if query.id_column in kinds
               else sql.SQL("(t.fid - 1)::text"))
        parts.append(sql.SQL("{} = ANY({}::text[])").format(key, sql.Literal([str(i) for i in query.ids])))
    for name, value in (query.equals or {}).items():
        parts.append(_equals_sql(name, kinds.get(name), value))
    if query.streets is not None:
        if query.street_from is None:
            parts.append(sql.SQL("FALSE"))
        else:
            parts.append(sql.SQL("{} = ANY({}::text[])").format(_street_sql(schema, query.street_from),
                                                               sql.Literal(sorted(query.streets))))
    return sql.SQL(" AND ").join(parts)


def _nullable(conn, schema: str, name: str, cols: list[tuple[str, str]]) -> set[str]:
    """The whole-number and boolean columns of a layer table holding a null (one scan, in the database)."""
    from psycopg import sql

    typed = [c for c, kind in cols if kind in ("bigint", "integer", "smallint", "boolean")]
    if not typed:
        return set()
    counts = sql.SQL(", ").join(sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in typed)
    row = conn.execute(sql.SQL("SELECT {} FROM {}").format(counts, sql.Identifier(schema, name))).fetchone()
    return {c for c, missing in zip(typed, row) if missing}


def _selection(frame: gpd.GeoDataFrame, matched: int, street_from: str | None) -> Selection:
    """A :class:`Selection` of rows read with the ``fid`` (and ``street``) extra columns."""
    frame["fid"] = pd.to_numeric(frame["fid"]).astype("int64")
    street = frame.pop("__street").to_numpy(dtype=object) if "__street" in frame.columns else None
    return Selection(frame=frame, street_of=street if street_from is not None else None, matched=matched)


def _tile_source(schema: str, name: str, z: int, x: int, y: int, tile: TileSpec):
    """``FROM`` … of a tile's features: those whose box meets the tile and its buffer, simplified in Web
    Mercator, cut by ``ST_AsMVTGeom`` (clipped to the buffer, snapped to the tile's units), the empty ones
    left out, in ``fid`` order; the cut geometry is ``t.mvt``."""
    from psycopg import sql

    margin = sql.Literal(tile.buffer / tile.extent)
    merc = sql.SQL("ST_Transform(t.geom, 3857)")
    if tile.tolerance > 0 and tile.kind != "point":
        merc = sql.SQL("ST_SimplifyPreserveTopology({}, {})").format(merc, sql.Literal(float(tile.tolerance)))
    address = sql.SQL("{}, {}, {}").format(sql.Literal(int(z)), sql.Literal(int(x)), sql.Literal(int(y)))
    return sql.SQL("FROM (SELECT t.*, ST_AsMVTGeom({merc}, ST_TileEnvelope({a}), {e}, {b}, true) AS mvt FROM {tb} t "
                   "WHERE t.geom && ST_Transform(ST_TileEnvelope({a}, margin => {m}), 4326)) t "
                   "WHERE t.mvt IS NOT NULL AND NOT ST_IsEmpty(t.mvt) ORDER BY t.fid").format(
        merc=merc, a=address, e=sql.Literal(int(tile.extent)), b=sql.Literal(int(tile.buffer)), m=margin,
        tb=sql.Identifier(schema, name))


class PostGISWorkspace(Workspace):
    """A workspace in a PostGIS schema, read into memory per version (thread-safe), kept current by LISTEN."""

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, state_dir: str | os.PathLike | None = None) -> None:
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self._location = describe(dsn, schema)
        #: Where files kept beside a workspace go (the redraw drafts, the lookup blind-spot log): a folder per
        #: database and schema under ``state_dir`` (default ~/.local/state/gridcover; the doors pass
        #: GRIDCOVER_STATE_DIR).
        self.path = _state_dir(dsn, schema, state_dir) / "workspace.postgis"
        self._lock = threading.RLock()
        self._stamp: tuple | None = None
        self._meta: dict[str, str] = {}
        self._layers: list[str] = []
        self._cache: dict[str, gpd.GeoDataFrame] = {}
        self._dirty = True
        self._listening = threading.Event()
        self._closed = threading.Event()
        with connect(dsn) as conn:
            with conn.transaction():
                migrate(conn, schema, create=False)
            if not self._exists(conn):
                msg = (f"no gridcover workspace in {self.location}: run 'gridcover analyze DATA_DIR --db URL' "
                       "first (--schema when it is not gridcover)")
                raise WorkspaceError(msg)
        self._listener = threading.Thread(target=_listen, args=(weakref.ref(self), dsn, schema, self._closed),
                                          name=f"gridcover-listen-{schema}", daemon=True)
        self._listener.start()
        self._listening.wait(5.0)
        self._refresh()

    def _exists(self, conn) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{META_TABLE}",)).fetchone()
        if row[0] is None:
            return False
        from psycopg import sql

        return conn.execute(sql.SQL("SELECT 1 FROM {} WHERE key = 'workspace_id'")
                            .format(sql.Identifier(self.schema, META_TABLE))).fetchone() is not None

    def close(self) -> None:
        """Stop listening (the workspace still answers, asking the database each time)."""
        self._closed.set()
        self._listening.clear()

    def __repr__(self) -> str:
        return f"PostGISWorkspace({self.location})"

    @property
    def location(self) -> str:
        """The database and schema, without the password: ``postgresql://user@host:port/db (schema gridcover)``."""
        return self._location

    # -------------------------------------------------------------- version
    def _read_state(self, conn) -> tuple[tuple, dict[str, str], list[str]]:
        from psycopg import sql

        meta = dict(conn.execute(sql.SQL("SELECT key, value FROM {}").format(
            sql.Identifier(self.schema, META_TABLE))).fetchall())
        layers = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {} ORDER BY position, name").format(
            sql.Identifier(self.schema, LAYERS_TABLE))).fetchall()]
        stamp = (meta.get("workspace_id"), meta.get("version"), meta.get("edits"))
        return stamp, meta, layers

    def _adopt(self, stamp: tuple, meta: dict[str, str], layers: list[str]) -> None:
        with self._lock:
            if stamp != self._stamp:
                self._meta, self._layers, self._cache, self._stamp = meta, layers, {}, stamp

    def _refresh(self, *, force: bool = False) -> None:
        """Read the version from the database when a change was announced (or nobody listens)."""
        if not force and self._listening.is_set() and not self._dirty and self._stamp is not None:
            return
        self._dirty = False  # before reading: a change announced meanwhile is read next time
        with connect(self.dsn) as conn:
            self._adopt(*self._read_state(conn))
        if not self._meta:
            raise WorkspaceError(f"the workspace in {self.location} was removed")

    def _changed(self) -> None:
        self._dirty = True

    @property
    def stamp(self) -> str:
        """``e`` and the count of in-place edits of layer tables (kept current by LISTEN/NOTIFY)."""
        self._refresh()
        return f"e{self._meta.get('edits', '0')}"

    def layer_names(self) -> list[str]:
        self._refresh()
        return list(self._layers)

    def read(self, name: str) -> gpd.GeoDataFrame:
        """A layer in WGS-84, read once per version (callers must not modify it).

        The layer and the version it belongs to are read in one snapshot. A snapshot taken just before another
        process replaced the table sees the new table empty (PostgreSQL's DDL is not MVCC-safe); the row count
        recorded with the layer tells, and the read is tried again.
        """
        psycopg = _psycopg()
        self._refresh()
        frame = self._cache.get(name)
        if frame is not None:
            return frame
        from psycopg import sql

        for attempt in range(5):
            try:
                with connect(self.dsn) as conn:
                    with conn.transaction():
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        stamp, _, names = self._read_state(conn)
                        if name not in names:
                            raise WorkspaceError(f"the workspace has no layer {name!r}")
                        expected = conn.execute(sql.SQL("SELECT features FROM {} WHERE name = %s").format(
                            sql.Identifier(self.schema, LAYERS_TABLE)), (name,)).fetchone()[0]
                        frame = _read_table(conn, self.schema, name)
                if len(frame) == expected:
                    break
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
                pass  # replaced between the catalogue and the data: read again
            time.sleep(0.05 * (attempt + 1))
        else:
            raise WorkspaceError(f"layer {name} kept changing while it was read from {self.location}: try again")
        with self._lock:
            if self._stamp == stamp:
                self._cache[name] = frame
            else:  # another version than the one this process knows: look again at the next use
                self._dirty = True
        return frame

    # -------------------------------------------------------------- rows and tiles in SQL
    in_place = True

    @contextmanager
    def _snapshot(self, name: str):
        """A connection in a read-only REPEATABLE READ transaction, for a layer of the current version
        (``WorkspaceError`` for a layer the workspace does not hold)."""
        if name not in self.layer_names():
            raise WorkspaceError(f"the workspace has no layer {name!r}")
        with connect(self.dsn) as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield conn

    def _typed_columns(self, conn, name: str) -> tuple[list[tuple[str, str]], set[str]]:
        """The columns of a layer table with their types, and those holding a null, read once per version."""
        key = f"columns:{name}"
        found = self._cache.get(key)
        if found is None:
            cols = _columns(conn, self.schema, name)
            found = (cols, _nullable(conn, self.schema, name, cols))
            self._cache[key] = found
        return found

    def select(self, name: str, *, query: RowQuery | None = None, limit: int | None = None, offset: int = 0,
               count: bool = True) -> Selection:
        """The rows of ``name`` matching ``query`` in ``fid`` order, one page of them (the bbox on the GiST index,
        ``LIMIT``/``OFFSET``), and their count (``count(*)`` over the same condition)."""
        from psycopg import sql

        query = query or RowQuery()
        with self._snapshot(name) as conn:
            cols, nullable = self._typed_columns(conn, name)
            where = _where_sql(self.schema, query, dict(cols))
            table = sql.Identifier(self.schema, name)
            tail = sql.SQL("")
            if limit is not None:
                tail = sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
            if offset:
                tail = sql.SQL("{} OFFSET {}").format(tail, sql.Literal(int(offset)))
            extra = [("fid", sql.SQL("t.fid::text"))]
            if query.street_from is not None:
                extra.append(("__street", _street_sql(self.schema, query.street_from)))
            source = sql.SQL("FROM {} t WHERE {} ORDER BY t.fid{}").format(table, where, tail)
            frame = _read_table(conn, self.schema, name, source=source, extra=extra, cols=cols, nullable=nullable)
            matched = -1
            if count:
                matched = len(frame) if limit is None and not offset else int(conn.execute(
                    sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(table, where)).fetchone()[0])
        return _selection(frame, matched, query.street_from)

    def tile_features(self, name: str, z: int, x: int, y: int, *, tile: TileSpec) -> Selection:
        """The tile's features cut in the database (``ST_SimplifyPreserveTopology``, ``ST_AsMVTGeom``), every
        column, in ``fid`` order."""
        from psycopg import sql

        with self._snapshot(name) as conn:
            extra = [("fid", sql.SQL("t.fid::text"))]
            if tile.street_from is not None:
                extra.append(("__street", _street_sql(self.schema, tile.street_from)))
            cols, nullable = self._typed_columns(conn, name)
            frame = _read_table(conn, self.schema, name, source=_tile_source(self.schema, name, z, x, y, tile),
                                geometry=sql.SQL("ST_AsBinary(t.mvt)"), extra=extra, crs=None, cols=cols,
                                nullable=nullable)
        return _selection(frame, len(frame), tile.street_from)

    def layer_schema(self, name: str) -> gpd.GeoDataFrame:
        """The layer with no rows (its columns and dtypes), read once per version."""
        from psycopg import sql

        self._refresh()
        key = f"schema:{name}"
        frame = self._cache.get(key)
        if frame is None:
            with self._snapshot(name) as conn:
                cols, nullable = self._typed_columns(conn, name)
                frame = _read_table(conn, self.schema, name, source=sql.SQL("FROM {} t WHERE FALSE").format(
                    sql.Identifier(self.schema, name)), cols=cols, nullable=nullable)
            self._cache[key] = frame
        return frame

    def layer_extent(self, name: str) -> tuple[float, float, float, float]:
        """``ST_Extent`` of the layer (zeros when empty), read once per version."""
        from psycopg import sql

        self._refresh()
        key = f"extent:{name}"
        extent = self._cache.get(key)
        if extent is None:
            with self._snapshot(name) as conn:
                row = conn.execute(sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                           "(SELECT ST_Extent(geom) AS e FROM {}) s").format(
                    sql.Identifier(self.schema, name))).fetchone()
            extent = tuple(float(v) for v in row) if row[0] is not None else (0.0, 0.0, 0.0, 0.0)
            self._cache[key] = extent
        return extent

    def scorecard_history(self) -> History:
        """The snapshots of the scorecard kept in the schema (``scorecard_history``, migration 0005)."""
        with connect(self.dsn) as conn:
            return read_scorecard_history(conn, self.schema)

    def proposals(self) -> PostGISProposals:
        """The saved redraw proposals of this workspace (in the database, shared by every server)."""
        return PostGISProposals(self)

    def cases(self) -> PostGISCases:
        """The cases stored through the case API (table ``gridcover_cases``, kept by every ``analyze --db``)."""
        return PostGISCases(self)

    # -------------------------------------------------------------- grid history
    def _history_rows(self, conn) -> list:
        from psycopg import sql

        return conn.execute(sql.SQL("SELECT version, created, author, reason, kind, communities, parent, n_grids "
                                    "FROM {} ORDER BY version").format(sql.Identifier(self.schema, VERSIONS_TABLE))
                            ).fetchall()

    @staticmethod
    def _version(row) -> GridVersion:
        created = row[1].astimezone(timezone.utc).isoformat(timespec="seconds")
        return GridVersion(version=int(row[0]), created=created, author=row[2], reason=row[3], kind=row[4],
                           communities=tuple(row[5]), parent=row[6], grids=int(row[7]))

    def history(self) -> list[GridVersion]:
        """Every version of the grids, oldest first (the analysed grids are the first)."""
        with connect(self.dsn) as conn:
            return [self._version(r) for r in self._history_rows(conn)]

    def _stored_grids(self, version: GridVersion) -> gpd.GeoDataFrame:
        from psycopg import sql

        with connect(self.dsn) as conn:
            rows = conn.execute(sql.SQL("SELECT {}, ST_AsBinary(geom) FROM {} WHERE version = %s ORDER BY position")
                                .format(sql.SQL(", ").join(map(sql.Identifier, HISTORY_FIELDS)),
                                        sql.Identifier(self.schema, GRID_HISTORY)), (version.version,)).fetchall()
        frame = pd.DataFrame(rows, columns=[*HISTORY_FIELDS, "__geom"])
        geometry = shapely.from_wkb(frame.pop("__geom").to_numpy(dtype=object))
        frame = frame.dropna(axis=1, how="all")
        for column in frame.columns:
            frame[column] = frame[column].astype("int64" if column in INT_HISTORY_FIELDS and frame[column].notna().all()
                                                 else "float64" if column in INT_HISTORY_FIELDS else "str")
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)

    def _commit_grids(self, build: Callable[[int], Change], *, author: str, reason: str, communities: list[str],
                      kind: str, expected_version: int | None, fail_after: str | None) -> GridVersion:
        """Make the grids ``build`` returns the new version, with their recomputed layers, in one transaction.

        The version row is locked ``FOR UPDATE`` first, so concurrent commits (from any process) are
        serialised: each checks ``expected_version`` against what the others committed, and ``build`` runs with
        the workspace refreshed to the current version (other connections see what was committed before the
        lock; nobody commits until this one ends), so a change of other communities made meanwhile is kept. ``fail_after`` (``copy``, ``layers``,
        ``history``; tests only) raises inside the transaction, which rolls back whole.
        """
        from psycopg import sql

        meta = sql.Identifier(self.schema, META_TABLE)
        with connect(self.dsn) as conn:
            with conn.transaction():
                row = conn.execute(sql.SQL("SELECT value FROM {} WHERE key = 'version' FOR UPDATE").format(meta)
                                   ).fetchone()
                if row is None:
                    raise WorkspaceError(f"the workspace in {self.location} was removed")
                current = int(row[0])
                history = [self._version(r) for r in self._history_rows(conn)]
                check_conflict(history, current, expected_version, communities)
                self._refresh(force=True)  # build on the version locked here, not on the last one announced
                grids, layers, summary = build(current)
                if fail_after == "copy":
                    raise RuntimeError("simulated crash after copy")
                positions = dict(conn.execute(sql.SQL("SELECT name, position FROM {}").format(
                    sql.Identifier(self.schema, LAYERS_TABLE))).fetchall())
                for name, frame in layers.items():
                    write_layer(conn, self.schema, name, frame, position=positions.get(name, len(positions)))
                if fail_after == "layers":
                    raise RuntimeError("simulated crash after layers")
                version = new_version(current, author=author, reason=reason, kind=kind, communities=communities,
                                      grids=grids)
                _write_history(conn, self.schema, version, grids)
                values = {"version": str(version.version), "updated": version.created}
                if summary is not None:
                    values["summary"] = json.dumps(summary, ensure_ascii=False, indent=2, default=_json_default)
                with conn.cursor() as cur:
                    cur.executemany(sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO "
                                            "UPDATE SET value = EXCLUDED.value").format(meta), list(values.items()))
                if fail_after == "history":
                    raise RuntimeError("simulated crash after history")
        self._refresh(force=True)
        return version


class PostGISProposals(ProposalStore):
    """Saved redraw proposals (drafts and applied) in the workspace's schema: what
    :class:`gridcover.store.proposals.SQLiteProposalStore` keeps in a SQLite file beside a GeoPackage workspace,
    shared here by every server using the database. Same methods and answers."""

    def __init__(self, workspace: PostGISWorkspace) -> None:
        self.workspace = workspace

    def _table(self):
        from psycopg import sql

        return sql.Identifier(self.workspace.schema, "grid_proposals")

    def save(self, grids: gpd.GeoDataFrame, report: dict, *, author: str, note: str = "") -> str:
        from psycopg import sql

        pid = uuid.uuid4().hex[:12]
        doc = grids.to_crs(4326).to_json(drop_id=True, ensure_ascii=False)
        check = json.dumps(report, ensure_ascii=False, default=_json_default)
        with connect(self.workspace.dsn) as conn:
            conn.execute(sql.SQL("INSERT INTO {} (id, created, author, status, base_version, communities, valid, grids, "
                                 "report, note) VALUES (%s, now(), %s, 'draft', %s, %s, %s, %s, %s, %s)")
                         .format(self._table()),
                         (pid, author, report.get("base_version"), [c["id"] for c in report["communities"]],
                          bool(report["valid"]), doc, check, note))
        return pid

    _COLUMNS = "id, created, author, status, base_version, communities, valid, {}, applied_version, note"

    def get(self, pid: str) -> dict:
        from psycopg import sql

        with connect(self.workspace.dsn) as conn:
            row = conn.execute(sql.SQL("SELECT " + self._COLUMNS.format("grids, report") + " FROM {} WHERE id = %s")
                               .format(self._table()), (pid,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no proposal {pid!r}")
        return self._row(row, full=True)

    def list(self) -> list[dict]:
        from psycopg import sql

        with connect(self.workspace.dsn) as conn:
            rows = conn.execute(sql.SQL("SELECT " + self._COLUMNS.format("NULL, NULL") + " FROM {} ORDER BY created DESC")
                                .format(self._table())).fetchall()
        return [self._row(r, full=False) for r in rows]

    def mark_applied(self, pid: str, version: int) -> None:
        from psycopg import sql

        with connect(self.workspace.dsn) as conn:
            conn.execute(sql.SQL("UPDATE {} SET status = 'applied', applied_version = %s WHERE id = %s")
                         .format(self._table()), (version, pid))

    @staticmethod
    def _row(row, *, full: bool) -> dict:
        out = {"id": row[0], "created": row[1].astimezone(timezone.utc).isoformat(timespec="seconds"),
               "author": row[2], "status": row[3], "base_version": row[4], "communities": list(row[5]),
               "valid": bool(row[6]), "applied_version": row[9], "note": row[10]}
        if full:
            out["grids"] = json.loads(row[7])
            out["check"] = json.loads(row[8])
        return out


CASES_TABLE = "gridcover_cases"


class PostGISCases(CaseStore):
    """The cases of a PostGIS workspace in its schema's ``gridcover_cases`` table (migration 0004): what
    :class:`gridcover.store.cases.SQLiteCaseStore` keeps beside a GeoPackage, shared here by every server
    using the database; ``analyze --db`` replaces the layer tables and keeps this one. An intake locks the
    table against other intakes (``SHARE ROW EXCLUSIVE``: readers go on) and COPYs the batch in one
    transaction; an accept or close locks its row (``FOR UPDATE``)."""

    def __init__(self, workspace: PostGISWorkspace) -> None:
        self.workspace = workspace

    def _table(self):
        from psycopg import sql

        return sql.Identifier(self.workspace.schema, CASES_TABLE)

    @property
    def stamp(self) -> str:
        """The count of cases and the newest change (xmin of the table's rows)."""
        from psycopg import sql

        with connect(self.workspace.dsn) as conn:
            row = conn.execute(sql.SQL("SELECT count(*), COALESCE(max(xmin::text::bigint), 0), "
                                       "count(accepted_at) + count(closed_at) FROM {}").format(self._table())).fetchone()
        return "c{}.{}.{}".format(*row)

    def add(self, cases: pd.DataFrame) -> CaseIntake:
        from psycopg import sql

        rows = normalise_cases(cases)
        rows["id"] = rows["id"].astype(str)
        body = rows[list(CASE_COLUMNS)].to_csv(index=False, header=False, na_rep="\\N", lineterminator="\n",
                                               date_format="%Y-%m-%dT%H:%M:%SZ")
        names = sql.SQL(", ").join(map(sql.Identifier, CASE_COLUMNS))
        with connect(self.workspace.dsn) as conn:
            with conn.transaction():
                conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(self._table()))
                conn.execute(sql.SQL("CREATE TEMP TABLE case_batch (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP")
                             .format(self._table()))
                with conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY case_batch ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(names)) as copy:
                        copy.write(body.encode("utf-8"))
                found = conn.execute(sql.SQL("SELECT c.id, c.fingerprint FROM {} c JOIN case_batch b USING (id)")
                                     .format(self._table())).fetchall()
                duplicates = check_intake(rows, pd.DataFrame(found, columns=["id", "fingerprint"]))
                conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM case_batch b WHERE NOT EXISTS "
                                     "(SELECT 1 FROM {} c WHERE c.id = b.id)")
                             .format(self._table(), names, names, self._table()))
        gone = set(duplicates)
        return CaseIntake(stored=tuple(i for i in rows["id"] if i not in gone), duplicates=duplicates)

    def add_one(self, case: dict) -> CaseIntake:
        with connect(self.workspace.dsn) as conn:  # one INSERT, no frame (gridcover/store/cases.py)
            return add_one_sql(conn, self._table(), case)

    def _update(self, case_id: str, action: str, *, at, author: str) -> dict:
        from psycopg import sql

        with connect(self.workspace.dsn) as conn:
            with conn.transaction():
                found = self._select(conn, CaseFilter(ids=frozenset([str(case_id)])), lock=True)
                if not len(found):
                    raise case_not_found(case_id)
                change = case_update(found.iloc[0].to_dict(), action, at=at, author=author)
                values = [v.to_pydatetime() if k in CASE_TIMES else v for k, v in change.items()]
                conn.execute(sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
                    self._table(), sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in change)),
                    [*values, str(case_id)])
        return change

    def _select(self, conn, filters: CaseFilter, *, limit: int | None = None, offset: int = 0,
                lock: bool = False) -> pd.DataFrame:
        from psycopg import sql

        where, args = case_where(filters, time_text=lambda t: pd.Timestamp(t).to_pydatetime(), mark="%s")
        tail = (f" LIMIT {int(limit)}" if limit is not None else "") + (f" OFFSET {int(offset)}" if offset else "")
        query = sql.SQL("SELECT {} FROM {} WHERE " + where + " ORDER BY reported_at, id" + tail
                        + (" FOR UPDATE" if lock else "")).format(sql.SQL(", ").join(map(sql.Identifier, CASE_COLUMNS)),
                                                                  self._table())
        rows = conn.execute(query, args).fetchall()
        return normalise_cases(pd.DataFrame(rows, columns=list(CASE_COLUMNS)))

    def list(self, filters: CaseFilter = CaseFilter(), *, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
        with connect(self.workspace.dsn) as conn:
            return self._select(conn, filters, limit=limit, offset=offset)

    def count(self, filters: CaseFilter = CaseFilter()) -> int:
        from psycopg import sql

        where, args = case_where(filters, time_text=lambda t: pd.Timestamp(t).to_pydatetime(), mark="%s")
        with connect(self.workspace.dsn) as conn:
            return int(conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(self._table()),
                                    args).fetchone()[0])


def _state_dir(dsn: str, schema: str, root: str | os.PathLike | None) -> Path:
    root = Path(root or Path.home() / ".local" / "state" / "gridcover")
    name = re.sub(r"[^A-Za-z0-9_.@-]+", "_", describe(dsn, schema).replace("postgresql://", ""))[:80]
    folder = root / f"{name}-{blake2b(f'{dsn}#{schema}'.encode(), digest_size=4).hexdigest()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only home: drafts and the blind-spot log say so when used
    return folder


def _listen(ref, dsn: str, schema: str, closed: threading.Event) -> None:
    """LISTEN for changes of ``schema`` and mark the workspace stale at each (reconnects after a failure)."""
    psycopg = _psycopg()
    while not closed.is_set():
        ws = ref()
        if ws is None:
            return
        ws._listening.clear()
        ws._dirty = True
        del ws
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                ws = ref()
                if ws is None:
                    return
                ws._dirty = True  # anything before LISTEN took effect is read afresh
                ws._listening.set()
                del ws
                while not closed.is_set():
                    for note in conn.notifies(timeout=2.0):
                        if note.payload == schema:
                            ws = ref()
                            if ws is None:
                                return
                            ws._changed()
                            del ws
                    if ref() is None:
                        return
        except psycopg.Error:
            time.sleep(_RETRY_S)
    ws = ref()
    if ws is not None:
        ws._listening.clear()
