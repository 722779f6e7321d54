"""``gridcover serve WORKSPACE``: the map server (地图服务) on one workspace, printing the address to open.

Example
-------
$ gridcover serve out/sample --keys keys.json
$ gridcover serve --db postgresql://gis@db.example/city --keys keys.json     # PostGIS, shared by many servers
$ gridcover serve out/city --workers 2           # two processes: cold tiles drawn on two cores
gridcover: serving out/sample/workspace.gpkg (version 1) — open http://127.0.0.1:8000/ (Ctrl+C stops)

Before it answers, each server process reads the tiled layers and simplifies them for every zoom
(:func:`layers.tiles.prepare_tiles`), so no tile request does. With ``--workers N`` the processes share one
listening socket and a tile cache in a temporary folder (removed at exit; tiles keyed by workspace version,
written atomically), and split the per-zoom simplification between them. Every process applies the same
keys, roles and k.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass

from api.limits import DEFAULT_MAX_BODY_MB
from geo.errors import ConfigError
from gridcover.cli.exits import EXIT_ERROR
from gridcover.cli.options import add_db, add_workspace


def register(subparsers) -> None:
    """Add the ``serve`` subcommand."""
    serve = subparsers.add_parser("serve", help="serve a workspace: OGC API – Features, tiles and the web map")
    add_workspace(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--keys", help="KEYS.json mapping API keys to roles (without it everyone is public)")
    serve.add_argument("--k", type=int, default=5, dest="k",
                       help="withhold counts of special-group members from 1 to k-1 in public outputs (default 5)")
    serve.add_argument("--basemap", help="XYZ raster tile URL template of an optional base map for the web map "
                       "(none by default, so the page works without internet access)")
    add_db(serve, help="serve the workspace 'analyze --db' wrote into PostGIS (postgresql://user@host/db); any number "
                       "of servers may share it (docs/postgis.md)")
    serve.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB, metavar="N", dest="max_body_mb",
                       help=f"refuse request bodies over N MB (2**20 bytes) with 413 before reading them whole "
                            f"(default {DEFAULT_MAX_BODY_MB})")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="server processes (default 1). Each holds the workspace's layers in memory; several "
                            "draw cold tiles in parallel (up to one per core) and share the tiles they draw "
                            "through a temporary folder")
    serve.set_defaults(func=cmd_serve)


@dataclass(frozen=True)
class ServeSettings:
    """What each server process needs to build its app (plain values: sent to worker processes)."""

    workspace: str | None
    db: str | None
    schema: str
    environment: object
    keys: object
    k: int
    basemap: str | None
    max_body_mb: float
    tile_folder: str | None


def serving_app(settings: ServeSettings):
    """The app of one server process, its tiled layers prepared for every zoom before it answers."""
    from api.app import create_app
    from gridcover.store import open_workspace
    from layers.tiles import prepare_tiles

    workspace = open_workspace(settings.workspace, db=settings.db, schema=settings.schema,
                               state_dir=settings.environment.state_dir)
    app = create_app(workspace, keys=settings.keys, k=settings.k, basemap=settings.basemap,
                     max_body_mb=settings.max_body_mb, environment=settings.environment,
                     tile_folder=settings.tile_folder)
    prepare_tiles(workspace, k=settings.k, layer_cache=app.state.layer_cache, tile_cache=app.state.tile_cache)
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.access import load_keys
    from gridcover.store import open_workspace

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: not a port number (1..65535)")
    if args.k < 1:
        raise ConfigError(f"--k {args.k}: must be at least 1")
    if not args.max_body_mb > 0 or args.max_body_mb == float("inf"):
        raise ConfigError(f"--max-body-mb {args.max_body_mb:g}: must be a positive number of MB")
    if not 1 <= args.workers <= 64:
        raise ConfigError(f"--workers {args.workers}: must be 1..64 server processes")
    workspace = open_workspace(args.workspace, db=args.db, schema=args.schema, state_dir=args.environment.state_dir)
    keys = load_keys(args.keys)
    folder = tempfile.mkdtemp(prefix="gridcover-tiles-") if args.workers > 1 else None
    settings = ServeSettings(workspace=args.workspace, db=args.db, schema=args.schema, environment=args.environment,
                             keys=keys, k=args.k, basemap=args.basemap, max_body_mb=args.max_body_mb,
                             tile_folder=folder)
    config = uvicorn.Config(functools.partial(serving_app, settings), factory=True, host=args.host, port=args.port,
                            log_level="warning", access_log=False, workers=args.workers)
    _check_listen(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    processes = f", {args.workers} processes" if args.workers > 1 else ""
    print(f"gridcover: serving {workspace.location} (version {workspace.version}, {len(keys.entries)} API keys"
          f"{processes}) — open http://{host}:{args.port}/ (Ctrl+C stops)", flush=True)
    workspace.close()
    server = uvicorn.Server(config) if args.workers == 1 else None
    try:
        if server is not None:
            server.run()
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    if server is not None and not server.started:
        print(f"gridcover: error: could not listen on {args.host}:{args.port}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _check_listen(host: str, port: int) -> None:
    """One clear line when the address cannot be listened on (in use, or not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            msg = f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? try --port)"
            raise ConfigError(msg) from None
