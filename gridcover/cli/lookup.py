"""``gridcover lookup``: the grid and grid worker responsible for a coordinate, an address or a CSV of them.

    gridcover lookup [WORKSPACE] --lon 104.0657 --lat 30.6595 [--crs gcj02]
    gridcover lookup [WORKSPACE] --address "锦华苑三号楼2单元501"
    gridcover lookup [WORKSPACE] --batch points.csv [--crs bd09] [--format csv]   # columns lon,lat or address
    gridcover lookup --db postgresql://gis@db.example/city --lon 104.0657 --lat 30.6595   # PostGIS

WORKSPACE defaults to ``out/sample`` (what ``gridcover analyze sample_geojson --out out/sample`` writes), or
``$GRIDCOVER_WORKSPACE`` when set. Prints JSON (one answer, or ``{"count", "results": [...]}`` in the file's
order; ``--format ndjson|csv`` for a batch). Errors are one line on stderr with exit status 2; a bad batch
names all its bad rows (``gridcover.lookup_batch``, the same code as ``POST /lookup/batch``).

A GeoPackage workspace's lookup index is kept beside it (``lookup_index.npz``, :mod:`gridcover.io.lookup_index`):
the first call after an analysis or a redraw builds and saves it, every later one loads it and answers without
opening the store (a point in no grid opens it, to count the blind spot). See docs/lookup.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from geo.errors import ConfigError
from gridcover.cli.options import add_as_of, add_crs, add_db, add_workspace

DEFAULT_WORKSPACE = "out/sample"


def cmd_lookup(args: argparse.Namespace) -> int:
    from gridcover.services.lookup import LookupService, parse_as_of

    def open_workspace(*args, **kwargs):  # the store (and pandas) only when the prepared index cannot answer
        from gridcover.store import open_workspace

        return open_workspace(*args, **kwargs)

    given = [args.address is not None, args.batch is not None, args.lon is not None or args.lat is not None]
    if sum(given) != 1:
        raise ConfigError("give one of --lon/--lat, --address or --batch FILE.csv")
    when = parse_as_of(args.as_of)
    path, environment = args.workspace, args.environment
    if path is None and not args.db:
        path = DEFAULT_WORKSPACE if environment.workspace is None else environment.workspace
    if args.db:
        service = LookupService(open_workspace(path, db=args.db, schema=args.schema, state_dir=environment.state_dir),
                                city=environment.city)
    else:
        from gridcover.io.lookup_index import PreparedIndex

        service = LookupService(lambda: open_workspace(path, state_dir=environment.state_dir), city=environment.city,
                                prepared=PreparedIndex(path))
    if args.batch is not None:
        batch = Path(args.batch)
        if not batch.is_file():
            raise ConfigError(f"--batch {batch}: " + ("not a file" if batch.exists() else "file not found"))
        with open(batch, "rb") as stream:
            _, pieces = service.run_batch(stream, kind="json" if batch.suffix.lower() == ".json" else "csv",
                                          crs=args.crs, city=args.city, as_of=when, fmt=args.format,
                                          file=str(batch))
            for piece in pieces:
                sys.stdout.write(piece)
        return 0
    if args.address is not None:
        if not args.address.strip():
            raise ConfigError("--address is empty")
        record = service.lookup(address=args.address, city=args.city, as_of=when)
    else:
        if args.lon is None or args.lat is None:
            raise ConfigError("give both --lon and --lat")
        record = service.lookup(lon=[args.lon], lat=[args.lat], crs=args.crs, city=args.city, as_of=when)
    print(json.dumps(record, ensure_ascii=False, indent=2))
    return 0


def register(subparsers) -> None:
    """Add ``gridcover lookup`` to the command line."""
    p = subparsers.add_parser("lookup", help="grid and grid worker responsible for a coordinate or an address",
                              description=__doc__.split("\n\n")[0])
    add_workspace(p, help=f"workspace folder or .gpkg written by analyze (default $GRIDCOVER_WORKSPACE, else "
                          f"{DEFAULT_WORKSPACE}; not with --db)")
    add_db(p)
    p.add_argument("--lon", type=float, help="longitude")
    p.add_argument("--lat", type=float, help="latitude")
    add_crs(p, help="wgs84 (default), cgcs2000, gcj02 or bd09", default="wgs84")
    p.add_argument("--address", help="a Chinese address, e.g. 锦华苑三号楼2单元501")
    p.add_argument("--batch", metavar="FILE.csv", help="CSV with lon,lat or address columns (UTF-8 or GB18030), "
                                                       "or a .json {\"items\": [...]}; every bad row is named")
    p.add_argument("--format", choices=("json", "ndjson", "csv"), default="json",
                   help="of a --batch answer: json {count, results} (default), ndjson or csv, in file order")
    add_as_of(p, help="date YYYY-MM-DD: the grids in force on that day (grid history)", as_text=True)
    p.add_argument("--city", help="city addresses are read in, e.g. 成都市 (default: $GRIDCOVER_CITY, else the "
                                  "city most addresses in the workspace name)")
    p.set_defaults(func=cmd_lookup)
