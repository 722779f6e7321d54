"""The ``gridcover`` command: analyze a data folder (more subcommands arrive with their issues).

Every error a user can cause is printed as one line and exits with status 2;
no traceback reaches a user (``GRIDCOVER_DEBUG=1`` shows it for developers).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np
from datetime import date

from geo.errors import ConfigError, GridcoverError, InputError


#: Modules that add a subcommand with ``register(subparsers)``; each sets ``func`` returning an exit status.
COMMAND_MODULES = ("api.serve_cli", "api.lookup_cli", "api.redraw_cli")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_analyze(args: argparse.Namespace) -> int:
    from geo.pipeline import analyze
    from geo.report import write_outputs
    from geo.settings import Settings

    started = time.perf_counter()
    progress = None if args.quiet else _progress
    settings = Settings(derive_fringe=True) if args.derive_fringe else None
    from layers.report import write_report

    scratch = None
    if args.out is not None:  # before anything runs: never over the data, never over the user's files
        from geo.paths import prepare_output_folder, reads_of

        args.out = prepare_output_folder(args.out, reads=reads_of(args.data_dir, "data"))
    if args.db:  # fail before the analysis, not after it, on a wrong URL or an unreachable server
        from gridcover.store.postgis import check_schema_name, connect

        check_schema_name(args.schema)
        connect(args.db).close()
        if args.out is None:  # the folder's files are only a step on the way into PostGIS
            from geo.paths import prepare_output_folder, scratch_path

            scratch = scratch_path("analyze")  # those of killed runs are removed; made by write_outputs (nothing
            args.out = prepare_output_folder(scratch / "out")  # is left behind when the analysis fails)
    elif args.out is None:
        raise ConfigError("give --out OUT_DIR (the output folder), or --db URL to write into PostGIS")

    if not args.discard_grid_edits:
        _refuse_losing_grid_edits(None if scratch is not None else args.out, db=args.db, schema=args.schema)
    if args.scheduler and args.engine != "dask":
        raise GridcoverError("--scheduler needs --engine dask")
    if args.skip_invalid and scratch is not None:
        raise ConfigError("--skip-invalid with --db needs --out OUT_DIR too: rejects.geojson is written there")
    if args.skip_invalid and args.engine == "dask":
        raise GridcoverError("--skip-invalid works with --engine single only")
    if args.engine == "dask" and os.path.isdir(args.data_dir):
        from pathlib import Path

        from geo.load import CONFIG_NAME, read_config

        if read_config(Path(args.data_dir)).get("columns"):
            raise GridcoverError(f"[columns] of {CONFIG_NAME} works with --engine single only")
    if args.engine == "dask":
        from gridcover.engine_dask import analyze_dask

        analysis, out = analyze_dask(args.data_dir, args.out, crs=args.crs, settings=settings,
                                     h3_resolution=args.h3_resolution, reference_date=args.as_of,
                                     scheduler=args.scheduler, progress=progress,
                                     extra=lambda a: [lambda folder: write_report(a, folder / "report.html")])
        for warning in analysis.data.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        analysis = analyze(args.data_dir, crs=args.crs, settings=settings, h3_resolution=args.h3_resolution,
                           reference_date=args.as_of, progress=progress, skip_invalid=args.skip_invalid)
        for warning in analysis.data.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        out = write_outputs(analysis, args.out, progress=progress,
                            extra=[lambda folder: write_report(analysis, folder / "report.html")])
    if args.db:  # the workspace the folder holds, into PostGIS in one transaction
        import shutil

        from gridcover.store.postgis import describe, load_gpkg

        try:
            load_gpkg(os.path.join(out, "workspace.gpkg"), args.db, schema=args.schema, progress=progress)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        out = describe(args.db, args.schema) if scratch is not None else f"{out} and {describe(args.db, args.schema)}"
    s = analysis.summary
    counts = ", ".join(f"{k} {v:,}" for k, v in s["status_counts"].items() if v)
    issues = ", ".join(f"{v['count']} {k}" for k, v in s["coverage_issues"].items() if v["count"])
    print(f"{s['households']:,} households: {counts}")
    print(f"{s['grids']['count']} grids ({s['grids']['over_capacity']} over {s['grids']['households_per_worker_standard']} "
          f"households per worker); coverage issues: {issues or 'none'}")
    r = s.get("reach")
    if r:
        label = "network" if not r["estimate"] else f"straight-line ESTIMATE x{r['detour_factor']}"
        print(f"life circle ({label}): {r['households_basic_complete']:,} of {s['households']:,} households reach the "
              f"full basic set within its tiers; {r['h3_cells']:,} H3 cells")
    k = s.get("risk")
    if k:
        colours = k["households_by_colour"]
        print(f"risk: red {colours['red']:,}, yellow {colours['yellow']:,}, blue {colours['blue']:,} households; "
              f"{k['blind_spots']} blind spots")
    rejected = s.get("rejected") or {}
    if args.skip_invalid:
        total = sum(rejected.values())
        per_layer = ", ".join(f"{n:,} {layer}" for layer, n in sorted(rejected.items()))
        cleared = sum((s.get("references_cleared") or {}).values())
        print(f"left out {total:,} invalid feature{'' if total == 1 else 's'}"
              + (f" ({per_layer}), listed in rejects.geojson" if total else "")
              + (f"; {cleared:,} references to missing features dropped" if cleared else ""))
    print(f"wrote {out} in {time.perf_counter() - started:.1f} s")
    return 0


def _refuse_losing_grid_edits(out, *, db: str | None, schema: str) -> None:
    """A new analysis replaces the workspace and its grid history: refuse while the workspace at ``out`` (or in
    PostGIS at ``db``/``schema``) holds grid changes made with ``gridcover redraw``, which would be lost."""
    from pathlib import Path

    from gridcover.store import WORKSPACE_FILE, WorkspaceError, grid_edits, open_workspace

    places = []
    if out is not None and (Path(out) / WORKSPACE_FILE).is_file():
        places.append({"path": out})
    if db:
        places.append({"db": db, "schema": schema})
    for place in places:
        try:
            workspace = open_workspace(**place)
        except WorkspaceError:  # nothing there yet
            continue
        try:
            edits, where = grid_edits(workspace), workspace.path if "path" in place else workspace.location
        finally:
            workspace.close()
        if edits:
            last = edits[-1]
            msg = (f"{where} holds {len(edits)} grid change{'' if len(edits) == 1 else 's'} made with 'gridcover "
                   f"redraw' (the last: version {last.version} by {last.author}, {last.created[:10]}) that a new "
                   "analysis would discard: put the current grids into the data folder first (e.g. ogr2ogr "
                   "DATA/grids.geojson OUT/workspace.gpkg grids), analyse into another --out, or pass "
                   "--discard-grid-edits")
            raise ConfigError(msg)


def cmd_sites(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from geo.paths import check_output_file, reads_of, write_atomically
    from geo.pipeline import analyze
    from geo.siting import plan_sites

    source = Path(args.source)
    reads = reads_of(source, "data")
    if args.candidates:
        reads.append((f"the candidates {args.candidates}", args.candidates))
    out = Path(args.out)
    for suffix in ("geojson", "json"):  # before the analysis
        check_output_file(out / f"sites_{args.category}.{suffix}", reads=reads, option="--out")
    if source.is_dir() and (source / "workspace.gpkg").is_file():
        source = source / "workspace.gpkg"
    progress = None if args.quiet else _progress
    analysis = analyze(source, reference_date=args.as_of, progress=progress)
    try:
        analysis.reach_model.config.category(args.category)
    except KeyError as exc:
        raise InputError(exc.args[0]) from None
    candidates = None
    if args.candidates:
        from geo.load import _read_vector

        frame = _read_vector(Path(args.candidates), Path(args.candidates).name, None)
        if frame.crs is None:
            frame = frame.set_crs(4326)
        pts = frame.to_crs(analysis.data.metric_crs).geometry.representative_point()
        ids = frame["id"].astype(str).to_numpy() if "id" in frame.columns else np.arange(len(frame)).astype(str)
        candidates = (ids, pts.x.to_numpy(), pts.y.to_numpy())
    rows, report = plan_sites(analysis, args.category, args.k, candidates=candidates)
    out.mkdir(parents=True, exist_ok=True)
    sites = gpd.GeoDataFrame(rows.drop(columns=["scorecard_changes", "x", "y"]),
                             geometry=shapely.points(rows["x"], rows["y"]) if len(rows) else [],
                             crs=analysis.data.metric_crs).to_crs(4326)
    write_atomically(out / f"sites_{args.category}.geojson",
                     lambda tmp: sites.to_file(tmp, driver="GeoJSON", engine="pyogrio"), suffix=".geojson")
    text = json.dumps(report, ensure_ascii=False, indent=1, default=str)
    write_atomically(out / f"sites_{args.category}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"{args.category}: {len(rows)} sites ({report['method']}) bring {report['covered_households']:,} of "
          f"{report['demand_households']:,} households missing it within its tier; weight {report['covered_weight']:,} "
          f"of at most {report['upper_bound_weight']:,}")
    for r in report["sites"]:
        print(f"  {r['order']}. {r['candidate']}: +{r['households_now_within_tier']} households "
              f"({r['special_group_members_now_within_tier']} special-group), blind spots {r['blind_spots_before']} -> "
              f"{r['blind_spots_after']}, {len(r['scorecard_changes'])} scorecard changes")
    print(f"wrote {out / f'sites_{args.category}.geojson'} and .json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridcover", description="Find households and places that fall out of care (脱管).")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="assign households to buildings and grids and diagnose the grids")
    analyze.add_argument("data_dir", help="folder of input layers (or a GeoPackage)")
    analyze.add_argument("--out", help="output folder (replaced atomically); required unless --db is given")
    analyze.add_argument("--db", metavar="URL", help="also write the workspace into PostGIS, e.g. "
                         "postgresql://user@host/city (one transaction; docs/postgis.md)")
    analyze.add_argument("--schema", default="gridcover", help="the PostGIS schema of --db (default gridcover)")
    analyze.add_argument("--crs", help="coordinate system of every layer: EPSG code, wgs84, cgcs2000, gcj02 or bd09")
    analyze.add_argument("--h3-resolution", type=int, default=10, choices=(9, 10, 11),
                         help="H3 resolution of the reach cells (default 10)")
    analyze.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD",
                         help="the day visits are judged against (default: today)")
    analyze.add_argument("--derive-fringe", action="store_true",
                         help="derive the urban-rural fringe from building heights where the data name none")
    analyze.add_argument("--engine", choices=("single", "dask"), default="single",
                         help="single: one process (default); dask: one task per street on a Dask cluster "
                              "(docs/dask.md)")
    analyze.add_argument("--scheduler", metavar="ADDRESS",
                         help="with --engine dask: a dask.distributed scheduler (e.g. tcp://host:8786); "
                              "default: a local cluster of this machine's cores")
    analyze.add_argument("--skip-invalid", action="store_true",
                         help="leave out features that cannot be used (listed in OUT/rejects.geojson, counted in "
                              "summary.json) instead of stopping; streets, communities and grids always stop the run")
    analyze.add_argument("--discard-grid-edits", action="store_true",
                         help="replace a workspace even though it holds grid changes made with 'gridcover redraw' "
                              "(refused without it: they would be lost)")
    analyze.add_argument("--quiet", action="store_true", help="no progress lines")
    analyze.set_defaults(func=cmd_analyze)

    sites = sub.add_parser("sites", help="propose where to add a service of one category")
    sites.add_argument("source", help="data folder, or the output folder / workspace.gpkg of analyze")
    sites.add_argument("--category", required=True, help="facility category id, e.g. elderly_daycare")
    sites.add_argument("--k", type=int, default=3, help="number of sites (default 3)")
    sites.add_argument("--candidates", help="candidate points (GeoJSON/GeoPackage, WGS-84); default: every building")
    sites.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD")
    sites.add_argument("--out", default="out/sites", help="output folder (default out/sites)")
    sites.add_argument("--quiet", action="store_true")
    sites.set_defaults(func=cmd_sites)
    from gridcover.modules import present

    for module in present(COMMAND_MODULES):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ConfigError, GridcoverError) as exc:
        print(f"gridcover: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gridcover: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("GRIDCOVER_DEBUG"):
            traceback.print_exc()
        print(f"gridcover: internal error: {type(exc).__name__}: {exc} (set GRIDCOVER_DEBUG=1 for details; "
              "please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
