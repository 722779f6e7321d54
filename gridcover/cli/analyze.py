"""``gridcover analyze DATA_DIR``: assign households to buildings and grids and diagnose the grids, into an
output folder (``--out``) and/or PostGIS (``--db``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from geo.errors import ConfigError, GridcoverError
from gridcover.cli.options import add_as_of, add_crs, add_db, add_quiet, progress_of


def register(subparsers) -> None:
    """Add the ``analyze`` subcommand."""
    analyze = subparsers.add_parser("analyze", help="assign households to buildings and grids and diagnose the grids")
    analyze.add_argument("data_dir", help="folder of input layers (or a GeoPackage)")
    analyze.add_argument("--out", help="output folder (replaced atomically); required unless --db is given")
    add_db(analyze, help="also write the workspace into PostGIS, e.g. postgresql://user@host/city (one transaction; "
                         "docs/postgis.md)")
    add_crs(analyze, help="coordinate system of every layer: EPSG code, wgs84, cgcs2000, gcj02 or bd09")
    analyze.add_argument("--h3-resolution", type=int, default=10, choices=(9, 10, 11),
                         help="H3 resolution of the reach cells (default 10)")
    add_as_of(analyze, help="the day visits and cases are judged at, to its end (default: [analysis] as_of of the "
                            "data folder's gridcover.toml, else today)")
    analyze.add_argument("--window-weeks", type=_weeks, default=12, metavar="N",
                         help="with visit records (visits.csv): judge the calendar periods completed in the N weeks "
                              "ending with --as-of (default 12; docs/tasks.md)")
    analyze.add_argument("--derive-fringe", action="store_true",
                         help="derive the urban-rural fringe from building heights where the data name none")
    analyze.add_argument("--engine", choices=("single", "dask"), default="single",
                         help="single: one process (default); dask: one task per street on a Dask cluster "
                              "(docs/dask.md)")
    analyze.add_argument("--scheduler", metavar="ADDRESS",
                         help="with --engine dask: a dask.distributed scheduler (e.g. tcp://host:8786); "
                              "default: a local cluster of this machine's cores")
    analyze.add_argument("--assemble", action=argparse.BooleanOptionalAction, default=None,
                         help="with --engine dask: write households.geojson and the workspace's household layers as "
                              "single files (the single-process run's folder); --no-assemble: the households as "
                              "partitioned GeoParquet in OUT/parts instead; default: assemble up to 1,000,000 "
                              "households (docs/dask.md)")
    analyze.add_argument("--skip-invalid", action="store_true",
                         help="leave out features that cannot be used (listed in OUT/rejects.geojson, counted in "
                              "summary.json) instead of stopping; streets, communities and grids always stop the run")
    analyze.add_argument("--history-from", metavar="PREVIOUS",
                         help="carry the scorecard snapshots of an earlier workspace forward into a fresh --out: its "
                              "folder, its workspace.gpkg, or a scorecard_history.csv (docs/history.md; a workspace "
                              "already at --out or --db is carried forward without it)")
    analyze.add_argument("--discard-grid-edits", action="store_true",
                         help="replace a workspace even though it holds grid changes made with 'gridcover redraw' "
                              "(refused without it: they would be lost)")
    analyze.add_argument("--report-author", metavar="NAME",
                         help="who prepares report.html (编制), printed in its header and sign-off; without it the "
                              "report leaves a line to write the name by hand (docs/report.md)")
    add_quiet(analyze)
    analyze.set_defaults(func=cmd_analyze)


def _weeks(text: str) -> int:
    """A whole number of weeks, at least 1 (argparse's message otherwise)."""
    try:
        weeks = int(text)
    except ValueError:
        weeks = 0
    if weeks < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of weeks, at least 1, got {text!r}")
    return weeks


def cmd_analyze(args: argparse.Namespace) -> int:
    from geo.settings import Settings

    started = time.perf_counter()
    progress = progress_of(args)
    settings = Settings(derive_fringe=True) if args.derive_fringe else None
    scratch = _check_before_running(args)
    stored = _stored_cases(None if scratch is not None else args.out, db=args.db, schema=args.schema,
                           state_dir=args.environment.state_dir)
    history = _earlier_history(args)
    analysis, out = _run_engine(args, settings=settings, progress=progress, history=history,
                                stored_cases=stored)
    for warning in analysis.data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.db:  # the workspace the folder holds, into PostGIS in one transaction
        import shutil

        from gridcover.store.postgis import describe, load_gpkg

        try:
            load_gpkg(os.path.join(out, "workspace.gpkg"), args.db, schema=args.schema, progress=progress)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        out = describe(args.db, args.schema) if scratch is not None else f"{out} and {describe(args.db, args.schema)}"
    _print_summary(analysis.summary, skip_invalid=args.skip_invalid)
    print(f"wrote {out} in {time.perf_counter() - started:.1f} s")
    return 0


def _check_before_running(args: argparse.Namespace):
    """Everything that can be refused before the analysis runs: the output folder (never over the data, never
    over the user's files), the PostGIS URL and server, the options that go together. Sets ``args.out`` (a
    scratch folder when only ``--db`` is given) and returns that scratch folder, else None."""
    scratch = None
    if args.out is not None:  # before anything runs: never over the data, never over the user's files
        from gridcover.io.paths import prepare_output_folder, reads_of

        args.out = prepare_output_folder(args.out, reads=reads_of(args.data_dir, "data"))
    if args.db:  # fail before the analysis, not after it, on a wrong URL or an unreachable server
        from gridcover.store.postgis import check_schema_name, connect

        check_schema_name(args.schema)
        connect(args.db).close()
        if args.out is None:  # the folder's files are only a step on the way into PostGIS
            from gridcover.io.paths import prepare_output_folder, scratch_path

            scratch = scratch_path("analyze")  # those of killed runs are removed; made by write_outputs (nothing
            args.out = prepare_output_folder(scratch / "out")  # is left behind when the analysis fails)
    elif args.out is None:
        raise ConfigError("give --out OUT_DIR (the output folder), or --db URL to write into PostGIS")

    if not args.discard_grid_edits:
        _refuse_losing_grid_edits(None if scratch is not None else args.out, db=args.db, schema=args.schema,
                                  state_dir=args.environment.state_dir)
    if args.scheduler and args.engine != "dask":
        raise GridcoverError("--scheduler needs --engine dask")
    if args.assemble is not None and args.engine != "dask":
        raise GridcoverError("--assemble / --no-assemble need --engine dask (one process always writes single files)")
    if args.assemble is False and args.db:
        raise GridcoverError("--no-assemble cannot go with --db: the PostGIS workspace needs the households whole")
    if args.skip_invalid and scratch is not None:
        raise ConfigError("--skip-invalid with --db needs --out OUT_DIR too: rejects.geojson is written there")
    if args.skip_invalid and args.engine == "dask":
        raise GridcoverError("--skip-invalid works with --engine single only")
    if args.engine == "dask" and os.path.isdir(args.data_dir):
        from pathlib import Path

        from gridcover.io.folder import CONFIG_NAME, read_config

        if read_config(Path(args.data_dir)).get("columns"):
            raise GridcoverError(f"[columns] of {CONFIG_NAME} works with --engine single only")
    return scratch


def _stored_cases(out, *, db: str | None, schema: str, state_dir=None):
    """The cases stored through the case API in the workspace this analysis replaces (the folder ``out``, or
    PostGIS at ``db``/``schema``; both: their union, PostGIS's on the same id), as input-layer rows; ``None``
    without any. They are part of the analysed cases (docs/cases.md)."""
    from pathlib import Path

    import pandas as pd

    from gridcover.store import WORKSPACE_FILE, WorkspaceError, open_workspace

    found = []
    places = [{"path": out}] if out is not None and (Path(out) / WORKSPACE_FILE).is_file() else []
    places += [{"db": db, "schema": schema, "state_dir": state_dir}] if db else []
    for place in places:
        try:
            workspace = open_workspace(**place)
        except WorkspaceError:  # nothing there yet
            continue
        try:
            found.append(workspace.cases().input_layer())
        finally:
            workspace.close()
    found = [f for f in found if len(f)]
    if not found:
        return None
    return pd.concat(found[::-1], ignore_index=True).drop_duplicates("id", keep="first")


def _earlier_history(args: argparse.Namespace):
    """The scorecard snapshots to carry forward besides those of ``--out`` and the data folder (which the
    writer reads itself): ``--history-from``, then the PostGIS schema ``--db`` replaces. Read before the
    analysis runs, so a bad file stops it early; ``None`` when there are none."""
    from gridcover.io.history import read_history_from

    given = read_history_from(args.history_from) if args.history_from else None
    if args.db:
        from gridcover.store import WorkspaceError, open_workspace

        try:
            workspace = open_workspace(db=args.db, schema=args.schema, state_dir=args.environment.state_dir)
        except WorkspaceError:  # nothing there yet
            return given
        try:
            stored = workspace.scorecard_history()
        finally:
            workspace.close()
        given = stored if given is None else given.merged(stored)
    return given


def _run_engine(args: argparse.Namespace, *, settings, progress, history=None, stored_cases=None):
    """The analysis on the engine ``--engine`` names, its outputs and the HTML report written into ``args.out``."""
    from layers.report import write_report

    author = getattr(args, "report_author", None)
    report = lambda a: [lambda folder: write_report(a, folder / "report.html", author=author)]  # noqa: E731
    if args.engine == "dask":
        from gridcover.engines.dask import analyze_dask

        return analyze_dask(args.data_dir, args.out, crs=args.crs, settings=settings,
                            h3_resolution=args.h3_resolution, reference_date=args.as_of,
                            scheduler=args.scheduler, progress=progress, extra=report,
                            window_weeks=args.window_weeks, history=history,
                            stored_cases=stored_cases, assemble=True if args.db else args.assemble)
    from gridcover.engines.single import analyze_single

    return analyze_single(args.data_dir, args.out, crs=args.crs, settings=settings,
                          h3_resolution=args.h3_resolution, reference_date=args.as_of,
                          skip_invalid=args.skip_invalid, progress=progress, extra=report,
                          window_weeks=args.window_weeks, history=history,
                          stored_cases=stored_cases)


def _print_summary(s: dict, *, skip_invalid: bool) -> None:
    """The run's figures in a few lines on standard output: statuses, grids, reach, risk, what was left out."""
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
    v = s.get("visits")
    if v:
        share = f" ({v['share_kept']:.1%})" if v["share_kept"] is not None else ""
        print(f"visits ({v['window_weeks']} weeks to {v['as_of']}): {v['periods_kept']:,} of {v['periods']:,} periods "
              f"kept{share} by {v['households']:,} special-group households; {v['overdue']:,} missed the last period")
        print(f"{v['never_visited']:,} special-group household{'' if v['never_visited'] == 1 else 's'} with no visit "
              "record, counted as never visited")
    c = s.get("cases")
    if c:
        share = f" ({c['share_on_time']:.1%})" if c["share_on_time"] is not None else ""
        print(f"cases (to the end of {s['risk']['reference_date']}): {c['on_time']:,} of {c['decided']:,} decided on time"
              f"{share}; {c['overdue']:,} open past a limit ({c['urgent_overdue']:,} urgent); "
              f"{c['outside_grids']:,} outside every grid; {c['not_located']:,} not placed")
    rejected = s.get("rejected") or {}
    if skip_invalid:
        total = sum(rejected.values())
        per_layer = ", ".join(f"{n:,} {layer}" for layer, n in sorted(rejected.items()))
        cleared = sum((s.get("references_cleared") or {}).values())
        print(f"left out {total:,} invalid feature{'' if total == 1 else 's'}"
              + (f" ({per_layer}), listed in rejects.geojson" if total else "")
              + (f"; {cleared:,} references to missing features dropped" if cleared else ""))


def _refuse_losing_grid_edits(out, *, db: str | None, schema: str, state_dir=None) -> None:
    """A new analysis replaces the workspace and its grid history: refuse while the workspace at ``out`` (or in
    PostGIS at ``db``/``schema``) holds grid changes made with ``gridcover redraw``, which would be lost."""
    from pathlib import Path

    from gridcover.store import WORKSPACE_FILE, WorkspaceError, grid_edits, open_workspace

    places = []
    if out is not None and (Path(out) / WORKSPACE_FILE).is_file():
        places.append({"path": out})
    if db:
        places.append({"db": db, "schema": schema, "state_dir": state_dir})
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
