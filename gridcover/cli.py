"""The ``gridcover`` command: analyze a data folder (more subcommands arrive with their issues).

Every error a user can cause is printed as one line and exits with status 2;
no traceback reaches a user (``GRIDCOVER_DEBUG=1`` shows it for developers).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
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

    started = time.perf_counter()
    progress = None if args.quiet else _progress
    analysis = analyze(args.data_dir, crs=args.crs, h3_resolution=args.h3_resolution, reference_date=args.as_of,
                       progress=progress)
    for warning in analysis.data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    out = write_outputs(analysis, args.out, progress=progress)
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
    print(f"wrote {out} in {time.perf_counter() - started:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridcover", description="Find households and places that fall out of care (脱管).")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="assign households to buildings and grids and diagnose the grids")
    analyze.add_argument("data_dir", help="folder of input layers (or a GeoPackage)")
    analyze.add_argument("--out", required=True, help="output folder (replaced atomically)")
    analyze.add_argument("--crs", help="coordinate system of every layer: EPSG code, wgs84, cgcs2000, gcj02 or bd09")
    analyze.add_argument("--h3-resolution", type=int, default=10, choices=(9, 10, 11),
                         help="H3 resolution of the reach cells (default 10)")
    analyze.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD",
                         help="the day visits are judged against (default: today)")
    analyze.add_argument("--quiet", action="store_true", help="no progress lines")
    analyze.set_defaults(func=cmd_analyze)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
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
