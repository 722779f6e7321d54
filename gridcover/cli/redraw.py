"""``gridcover redraw``: check, propose, apply, list, compare and restore grid boundaries (网格调整).

    gridcover redraw check WORKSPACE PROPOSAL --out REPORT.json [--target 300-600]
    gridcover redraw propose WORKSPACE --community ID|NAME [--target 300-600] [--keep-current] --out FILE.geojson
    gridcover redraw apply WORKSPACE PROPOSAL --author NAME --reason TEXT [--expected-version N]
    gridcover redraw history WORKSPACE
    gridcover redraw compare WORKSPACE FROM TO [--community ID] [--out DIFF.json]
    gridcover redraw restore WORKSPACE VERSION --author NAME --reason TEXT

Every subcommand takes ``--db URL`` (and ``--schema``) instead of WORKSPACE for a workspace in PostGIS:
``gridcover redraw history --db postgresql://gis@db.example/city``.

PROPOSAL is a file of grid polygons (GeoJSON, GeoPackage, Shapefile; ``id`` and ``community_id`` per grid)
or a JSON file ``{"moves": [{"building_id"|"estate_id": ..., "to": grid id}, ...]}``. The commands work on
the embedded workspace as ``POST /grids/proposals`` and ``POST /grids/proposals/{id}/apply`` do on the
server. Errors are one line on stderr with exit status 2; a conflict with another change exits with 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from geo.errors import ConfigError, InputError
from gridcover.io.paths import check_output_file, reads_of, write_atomically
from gridcover.cli.exits import EXIT_CONFLICT
from gridcover.cli.options import add_store, resolve_id


def _proposal(path: str, redraw):
    from gridcover.io.proposal import read_proposal

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"proposal {path}: file not found")
    if p.suffix.lower() in (".json", ".geojson"):
        try:
            doc = json.loads(p.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not valid UTF-8 JSON: {exc}", file=str(p)) from None
        if isinstance(doc, dict) and "moves" in doc:
            return redraw.parse_proposal(doc)
    return read_proposal(p, redraw.context())


def _write_json(doc, out: str | None) -> None:
    from gridcover.io.outputs import _json_default

    text = json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default)
    if out is None:
        print(text)
        return
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _check_outputs(args: argparse.Namespace, *options: str) -> None:
    """Refuse, before any work, an output file that is or lies inside what the command reads (the workspace
    folder, the proposal), that another output of the command names, or that cannot be written."""
    reads = [] if args.db or args.workspace is None else reads_of(args.workspace, "workspace")
    if getattr(args, "proposal", None):
        reads.append((f"the proposal {args.proposal}", args.proposal))
    given = {}
    for option in options:
        value = getattr(args, option)
        if value is None:
            continue
        check_output_file(value, reads=reads, option=f"--{option}")
        same = given.get(os.path.realpath(value))
        if same:
            raise ConfigError(f"--{option} {value} is the file of --{same}: give each output its own file")
        given[os.path.realpath(value)] = option


def _open(args: argparse.Namespace):
    from gridcover.services.redraw import RedrawService
    from gridcover.store import open_workspace

    return RedrawService(open_workspace(args.workspace, db=args.db, schema=args.schema,
                                        state_dir=args.environment.state_dir))


def _community(redraw, value: str | None) -> str | None:
    """The community id ``--community`` means: an id, or a community's name (an ambiguous name is refused)."""
    if value is None or not redraw.store.has("communities"):
        return value
    return resolve_id(redraw.store.read("communities"), value, what="community")


def cmd_check(args: argparse.Namespace) -> int:
    from geo.propose import parse_band

    _check_outputs(args, "out")
    redraw = _open(args)
    grids = _proposal(args.proposal, redraw)
    report = redraw.check(grids, band=parse_band(args.target))
    _write_json(report, args.out)
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    s = report["summary"]
    state = "valid" if report["valid"] else "NOT valid: " + "; ".join(report["problems"])
    print(f"{s['grids']} grids, {s['in_band']} in {report['band'][0]}-{report['band'][1]} households, "
          f"{s['over_capacity']} over the workload rule; "
          f"{report['moved']['households']:,} households change grid; {state}", file=sys.stderr)
    if args.out:
        print(f"wrote {args.out} in {report['timings_s']['total']:.2f} s", file=sys.stderr)
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    from geo.propose import parse_band
    from gridcover.io.outputs import _write_geojson

    _check_outputs(args, "out", "report")
    redraw = _open(args)
    grids, report, notes = redraw.propose(_community(redraw, args.community), band=parse_band(args.target),
                                          keep_current=args.keep_current)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, lambda tmp: _write_geojson(grids, tmp), suffix=".geojson")
    if args.report:
        _write_json(report, args.report)
    s = report["summary"]
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{s['grids']} grids (at most {s['maximum_grids']} with {report['band'][0]} households each), "
          f"{s['in_band']} in {report['band'][0]}-{report['band'][1]}, households {s['households_min']}-"
          f"{s['households_max']}, mean Polsby-Popper {s['mean_polsby_popper']}; "
          f"{'valid' if report['valid'] else 'NOT valid: ' + '; '.join(report['problems'])}; wrote {out}",
          file=sys.stderr)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from geo.propose import parse_band
    from gridcover.store import ConflictError

    redraw = _open(args)
    grids = _proposal(args.proposal, redraw)
    try:
        version, report = redraw.apply(grids, author=args.author, reason=args.reason,
                                       expected_version=args.expected_version, band=parse_band(args.target))
    except ConflictError as exc:
        print(f"gridcover: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    print(f"version {version['version']} by {version['author']} at {version['created']}: "
          f"{report['moved']['households']:,} households changed grid in {', '.join(version['communities'])}",
          file=sys.stderr)
    print(json.dumps(version, ensure_ascii=False))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    history = _open(args).history()
    if args.json:
        print(json.dumps(history, ensure_ascii=False, indent=2))
        return 0
    for v in history["versions"]:
        mark = "*" if v["version"] == history["current"] else " "
        print(f"{mark} {v['version']:>3}  {v['created']}  {v['kind']:<8} {v['grids']:>5} grids  {v['author']}: "
              f"{v['reason']}  [{', '.join(v['communities'][:5])}{' …' if len(v['communities']) > 5 else ''}]")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    _check_outputs(args, "out")
    redraw = _open(args)
    diff = redraw.compare(args.from_version, args.to_version, community=_community(redraw, args.community))
    _write_json(diff, args.out)
    print(f"{diff['moved']['households']:,} households change grid between versions {args.from_version} and "
          f"{args.to_version}; created {len(diff['created'])}, removed {len(diff['removed'])}", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from gridcover.store import ConflictError

    redraw = _open(args)
    try:
        v = redraw.restore(args.version, author=args.author, reason=args.reason)
    except ConflictError as exc:
        print(f"gridcover: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    print(f"version {v['version']}: the grids of version {args.version} are current again", file=sys.stderr)
    print(json.dumps(v, ensure_ascii=False))
    return 0


def register(subparsers) -> None:
    """Add ``gridcover redraw`` and its subcommands."""
    p = subparsers.add_parser("redraw", help="check, propose, apply and keep the history of grid boundaries")
    sub = p.add_subparsers(dest="redraw_command", required=True)

    c = sub.add_parser("check", help="check a proposal (grid polygons or moves) against the current grids")
    add_store(c)
    c.add_argument("proposal", help="GeoJSON/GeoPackage/Shapefile of grids, or JSON {\"moves\": [...]}")
    c.add_argument("--out", help="write the report here (JSON); printed otherwise")
    c.add_argument("--target", help="households per grid, floor-ceiling (default: from the workload rule, full-time workers per grid x 300)")
    c.set_defaults(func=cmd_check)

    q = sub.add_parser("propose", help="propose balanced grids for a community from whole buildings and estates")
    add_store(q)
    q.add_argument("--community", required=True, help="the community, by id or name (e.g. 鼓楼南街社区)")
    q.add_argument("--target", help="households per grid, floor-ceiling (default: from the workload rule, full-time workers per grid x 300)")
    q.add_argument("--keep-current", action="store_true", help="change the current grids as little as the band permits")
    q.add_argument("--out", required=True, help="the proposed grids (GeoJSON)")
    q.add_argument("--report", help="also write the check of the proposal (JSON)")
    q.set_defaults(func=cmd_propose)

    a = sub.add_parser("apply", help="apply a valid proposal as a new version of the grids")
    add_store(a)
    a.add_argument("proposal", help="GeoJSON/GeoPackage/Shapefile of grids, or JSON {\"moves\": [...]}, as for check")
    a.add_argument("--author", required=True, help="who makes the change (kept in the history)")
    a.add_argument("--reason", required=True, help="why the grids change (kept in the history)")
    a.add_argument("--target", help="households per grid, floor-ceiling (default: from the workload rule, full-time workers per grid x 300)")
    a.add_argument("--expected-version", type=int, help="refuse if another change of these communities came after it")
    a.set_defaults(func=cmd_apply)

    h = sub.add_parser("history", help="every version of the grids: who, when, why")
    add_store(h)
    h.add_argument("--json", action="store_true", help="print the history as JSON instead of one line per version")
    h.set_defaults(func=cmd_history)

    m = sub.add_parser("compare", help="who changes grid between two versions")
    add_store(m)
    m.add_argument("from_version", type=int, metavar="FROM", help="the earlier version (a number from 'history')")
    m.add_argument("to_version", type=int, metavar="TO", help="the later version")
    m.add_argument("--community", help="compare this community only, by id or name")
    m.add_argument("--out", help="write the differences here (JSON); printed otherwise")
    m.set_defaults(func=cmd_compare)

    r = sub.add_parser("restore", help="make an earlier version's grids current again (a new version)")
    add_store(r)
    r.add_argument("version", type=int, help="the version whose grids become current again")
    r.add_argument("--author", required=True, help="who restores it (kept in the history)")
    r.add_argument("--reason", required=True, help="why (kept in the history)")
    r.set_defaults(func=cmd_restore)
