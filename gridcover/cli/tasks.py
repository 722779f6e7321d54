"""``gridcover tasks``: each grid worker's visit list (走访任务) for a date, in walking order with minutes.

    gridcover tasks out/sample --date 2026-12-03                     # every grid
    gridcover tasks out/sample --date 2026-12-03 --grid G02-01
    gridcover tasks out/sample --date 2026-12-03 --worker 方刚芳 --out tasks/   # printable pages + JSON
    gridcover tasks --db postgresql://gis@db/city --date 2026-12-03 --grid G02-01

Prints each grid's list (the households due or overdue, in walking order, the minutes of each leg and the
whole round, the households no walk reaches). With ``--out FOLDER`` it writes per grid
``tasks_<grid>.html`` (a printable page, Chinese; ``--lang en`` for English) and ``tasks_<grid>.json``, and
``summary.json`` listing them. See docs/tasks.md.
"""

from __future__ import annotations

import argparse
import json
import re

from gridcover.cli.options import add_store, parse_date, resolve_id


def _file_part(grid_id: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-.]+", "_", grid_id) or "grid"


def _print_page(page: dict) -> None:
    grid, route, counts = page["grid"], page["route"], page["counts"]
    start = route["start"]
    where = start.get("name") or ("grid centre" if start["kind"] == "grid_centroid" else start["kind"])
    print(f"{grid['id']} {grid.get('name') or ''} · {grid.get('worker') or 'no grid worker'} · {page['date']}: "
          f"{counts['households']} households ({counts['overdue']} overdue, {counts['due']} due), "
          f"{counts['stops']} stops, {route['total_min']:.0f} min walking ({route['total_m'] / 1000:.2f} km) "
          f"from {where}")
    shown = set()
    for h in page["households"]:
        visit = h["visit"]
        leg = f"{h['walk_min']:5.1f} min" if visit and visit not in shown else " " * 9
        shown.add(visit)
        groups = ",".join(h["groups"])
        mark = "!" if h["state"] == "overdue" else " "
        number = f"{visit:3d}" if visit else "  -"
        print(f"  {number} {leg} {mark} {h['household_id']:<10} {groups:<28} {h.get('risk') or '':<6} "
              f"last counted {h.get('last_visit') or 'none':<10} {h.get('address') or ''}")
    if route["legs"]:
        print(f"      {route['legs'][-1]['minutes']:5.1f} min   back to the start")
    for u in page["unreachable"]:
        print(f"  unreachable: {u['household_id']} ({u['reason']})")


def cmd_tasks(args: argparse.Namespace) -> int:
    from geo.errors import ConfigError
    from gridcover.io.paths import prepare_output_folder, reads_of, write_atomically
    from gridcover.services.tasks import TasksService
    from gridcover.store import open_workspace
    from layers.tasks_page import render_tasks_page, tasks_json

    if args.workspace is None and not args.db:
        raise ConfigError("give the workspace (the folder analyze wrote) or --db")
    if args.grid and args.worker:
        raise ConfigError("give --grid or --worker, not both")
    out = None
    if args.out:
        reads = [] if args.db else reads_of(args.workspace, "workspace")
        out = prepare_output_folder(args.out, reads=reads)
    store = open_workspace(args.workspace, db=args.db, schema=args.schema, state_dir=args.environment.state_dir)
    service = TasksService(store)
    grid = resolve_id(store.read("grids"), args.grid, what="grid", fields=("name", "code")) if args.grid else None
    result = service.tasks(date=args.date, grids=[grid] if grid else None, worker=args.worker)
    for note in result["notes"]:
        print(f"note: {note['text']}")
    for page in result["grids"]:
        _print_page(page)
    outside = result["outside_grids"]["households_due"]
    if outside:
        print(f"note: {outside} households due are in no grid (no list holds them: see the coverage issues)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for page in result["grids"]:
            stem = f"tasks_{_file_part(page['grid']['id'])}"
            html_text = render_tasks_page(page, notes=result["notes"], lang=args.lang)
            json_text = tasks_json(page, notes=result["notes"])
            write_atomically(out / f"{stem}.html", lambda tmp, t=html_text: tmp.write_text(t, encoding="utf-8"))
            write_atomically(out / f"{stem}.json", lambda tmp, t=json_text: tmp.write_text(t, encoding="utf-8"))
            written += [f"{stem}.html", f"{stem}.json"]
        index = {"command": "tasks", "date": result["date"], "notes": result["notes"],
                 "grids": [p["grid"]["id"] for p in result["grids"]], "outputs": written + ["summary.json"]}
        text = json.dumps(index, ensure_ascii=False, indent=1)
        write_atomically(out / "summary.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"wrote {len(result['grids'])} printable pages and their JSON to {out}")
    return 0


def register(subparsers) -> None:
    """Add ``gridcover tasks`` to the command line."""
    p = subparsers.add_parser("tasks", help="each grid worker's visit list and walking route for a date",
                              description=__doc__.split("\n\n")[0])
    add_store(p)
    p.add_argument("--date", required=True, type=parse_date, metavar="YYYY-MM-DD",
                   help="the day of the list (its morning: visits recorded on it already count)")
    p.add_argument("--grid", metavar="ID|NAME", help="one grid's list: its id, name or grid code")
    p.add_argument("--worker", metavar="NAME", help="the lists of the grids this grid worker works (grids.worker_name)")
    p.add_argument("--out", metavar="FOLDER", help="write per grid a printable page (HTML) and its JSON here")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language the pages open in (default zh)")
    p.set_defaults(func=cmd_tasks)
