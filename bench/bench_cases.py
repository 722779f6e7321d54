"""Benchmark: the case API on the sample — single intakes under load, a batch of 100,000, and PostGIS as a peer.

In one run, on the sample district (``sample_geojson`` analysed once into a temporary folder; never in CI; see
bench/README.md):

1. single ``POST /cases`` through a real uvicorn server (one worker, as ``gridcover serve`` runs it, or
   ``--workers N`` processes) from 8 concurrent keep-alive clients, every case a new id at a random place of the
   district: p50/p95/p99, with the same server's ``GET /conformance`` in the same run as the floor (what any
   request costs there); on the GeoPackage workspace, and on PostGIS with ``--db``. With wrk (Debian's C load
   generator) when it is installed, else a Python client of 8 threads;
2. a batch of 100,000 cases resolved (grid, worker, community, street, deadlines) and stored by
   :meth:`gridcover.services.cases.CasesService.intake`, on the GeoPackage workspace and on PostGIS (goal
   < 10 s), and over HTTP (one ``POST /cases`` of 100,000 JSON items, GeoPackage);
3. the peer: the same 100,000 points resolved by PostGIS in one ``INSERT … SELECT`` (the building holding the
   point decides its grid, else ``ST_Covers`` with the tie rule, else the nearest grid), timed against step 2;
   the grid of every case is checked equal (differences printed; exit status 1).

Example
-------
    python bench/bench_cases.py                          # 8 clients for 20 s, a batch of 100,000
    python bench/bench_cases.py --seconds 5 --batch 10000   # a quick run
    python bench/bench_cases.py --singles-only --workers 1 2 --db "$GRIDCOVER_TEST_PG"   # the single intakes only
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcover.services.cases import CasesService, CaseViewer, cases_table  # noqa: E402
from gridcover.store import open_workspace  # noqa: E402

KEY = "k-bench"
CLIENTS = 8
SERVER = """
import sys
sys.path.insert(0, {root!r})
import uvicorn
from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace


def app():
    store = open_workspace(db={db!r}, schema={schema!r}) if {db!r} else open_workspace({ws!r})
    return create_app(store, keys=load_keys({keys!r}))


if __name__ == "__main__":
    uvicorn.run("bench_server:app", factory=True, app_dir={here!r}, host="127.0.0.1", port={port},
                workers={workers}, log_level="warning", access_log=False)
"""


# ------------------------------------------------------------------ data
def sample_workspace(root: Path) -> Path:
    from gridcover.engines.single import analyze_single

    out = root / "sample"
    analyze_single(ROOT / "sample_geojson", out)
    return out


def places(ws, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points: uniform over the grids' bounds with a 2 % margin (some outside every grid)."""
    x0, y0, x1, y1 = ws.read("grids").total_bounds
    mx, my = (x1 - x0) * 0.02, (y1 - y0) * 0.02
    rng = np.random.default_rng(seed)
    return rng.uniform(x0 - mx, x1 + mx, n), rng.uniform(y0 - my, y1 + my, n)


def batch_items(lon: np.ndarray, lat: np.ndarray, prefix: str) -> list[dict]:
    urgencies = np.array(["general", "urgent", "cross_department"])[np.arange(len(lon)) % 3]
    reported = (pd.Timestamp("2026-11-30 09:00") - pd.to_timedelta(np.arange(len(lon)) % 5000, unit="min")
                ).strftime("%Y-%m-%d %H:%M").to_numpy()
    ids = np.char.add(prefix, np.arange(len(lon)).astype(str))
    return pd.DataFrame({"id": ids, "reported_at": reported, "urgency": urgencies, "lon": lon, "lat": lat,
                         "source": "12345"}).to_dict("records")


# ------------------------------------------------------------------ the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ws: Path, port: int, *, workers: int = 1, db: str | None = None,
                 schema: str | None = None) -> subprocess.Popen:
    """uvicorn with ``workers`` processes (each its own app, as ``uvicorn --workers`` runs them) on the
    GeoPackage workspace ``ws``, or on the PostGIS schema when ``db`` is given."""
    keys = ws / "bench-keys.json"
    keys.write_text(json.dumps({KEY: {"role": "case_intake", "name": "bench"}}), encoding="utf-8")
    here = Path(tempfile.mkdtemp(prefix="bench-server-"))
    (here / "bench_server.py").write_text(SERVER.format(root=str(ROOT), ws=str(ws), keys=str(keys), port=port,
                                                        workers=int(workers), db=db, schema=schema, here=str(here)),
                                          encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(here / "bench_server.py")])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the gridcover server did not start")


def call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"} if body is not None else {"X-API-Key": KEY}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def python_clients(port: int, method: str, path: str, bodies, seconds: float) -> dict:
    """8 threads with one keep-alive connection each, for ``seconds``; ``bodies(k, j)`` gives each request's."""
    times: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    barrier = threading.Barrier(CLIENTS)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        call(conn, "GET", "/conformance")
        barrier.wait()
        stop_at = time.perf_counter() + seconds
        j = 0
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            status, _ = call(conn, method, path, bodies(k, j) if bodies else None)
            times[k].append((time.perf_counter() - t) * 1000)
            errors[k] += status >= 400
            j += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ms = np.concatenate([np.asarray(x) for x in times])
    return {"n": len(ms), "rps": len(ms) / seconds, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)), "errors": int(sum(errors)),
            "client": "python"}


def wrk_clients(port: int, method: str, path: str, seconds: float, lon=None, lat=None,
                reported: str = "") -> dict | None:
    """wrk: 2 threads, 8 connections; for POST /cases each request a new id (thread number and counter: the
    thread number a global of each thread, so that the two threads never send the same id) at one
    of 20,000 places, reported a minute before the run (a case the hotline passes on now). ``None`` where wrk
    is not installed."""
    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "cases.lua"
    lines = [f'wrk.headers["X-API-Key"] = "{KEY}"', 'wrk.headers["Content-Type"] = "application/json"',
             "local n = 0", "thread_id = 0", "local counter = 1",  # thread_id: a global, set per thread by setup
             "function setup(thread) counter = counter + 1; thread:set('thread_id', counter) end"]
    if method == "POST":
        pts = ",".join(f"{{{float(a)!r},{float(b)!r}}}" for a, b in zip(lon[:20000], lat[:20000]))
        lines += [f"local pts = {{{pts}}}", f'local run = "{uuid.uuid4().hex[:6]}"',
                  "request = function() n = n + 1; local p = pts[(n % #pts) + 1]\n"
                  "  local body = string.format('{\"id\":\"w%s-%d-%d\",\"reported_at\":\"" + reported + "\","
                  "\"urgency\":\"general\",\"lon\":%.8f,\"lat\":%.8f}', run, thread_id, n, p[1], p[2])\n"
                  f'  return wrk.format("POST", "{path}", nil, body) end']
    else:
        lines += [f'request = function() return wrk.format("GET", "{path}") end']
    lines += ["done = function(summary, latency, requests)",
              '  io.write(string.format("RESULT %d %f %f %f %f %d\\n", summary.requests, summary.duration / 1e6,',
              "    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,",
              "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))",
              "end"]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(["wrk", "-t2", f"-c{CLIENTS}", f"-d{int(seconds)}s", "-s", str(script),
                           f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        print("wrk failed:", done.stdout[-500:], done.stderr[-500:])
        return None
    n, wall, p50, p95, p99, errors = line.split()[1:]
    return {"n": int(n), "rps": int(n) / float(wall), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(errors), "client": "wrk"}


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children now alive (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def singles(ws: Path, seconds: float, seed: int, *, workers: int = 1, db: str | None = None,
            schema: str | None = None) -> tuple[dict, dict]:
    """Single POST /cases and GET /conformance on one server, one after the other."""
    port = free_port()
    proc = start_server(ws, port, workers=workers, db=db, schema=schema)
    try:
        lon, lat = places(open_workspace(ws), 20000, seed)
        for k in range(4 * workers):  # every worker builds its lookup index before the timing
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            warm = json.dumps({"id": f"warm-up-{k}", "reported_at": "2026-11-30 09:00", "urgency": "general",
                               "lon": float(lon[k]), "lat": float(lat[k])}).encode()
            status, body = call(conn, "POST", "/cases", warm)
            assert status in (200, 201), body[:300]
            conn.close()
        run = uuid.uuid4().hex[:6]
        now = (pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")

        def body_of(k: int, j: int) -> bytes:
            i = (k * 7919 + j) % len(lon)
            return json.dumps({"id": f"p{run}-{k}-{j}", "reported_at": now, "urgency": "general",
                               "lon": float(lon[i]), "lat": float(lat[i])}).encode()

        cpu = server_cpu_seconds(proc.pid)
        post = wrk_clients(port, "POST", "/cases", seconds, lon, lat, reported=now) or python_clients(port, "POST", "/cases",
                                                                                         body_of, seconds)
        post["server_cpu_ms"] = (server_cpu_seconds(proc.pid) - cpu) * 1000 / max(post["n"], 1)
        cpu = server_cpu_seconds(proc.pid)
        floor = wrk_clients(port, "GET", "/conformance", seconds) or python_clients(port, "GET", "/conformance",
                                                                                     None, seconds)
        floor["server_cpu_ms"] = (server_cpu_seconds(proc.pid) - cpu) * 1000 / max(floor["n"], 1)
        return post, floor
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ the batch
def intake(store, items: list[dict]) -> tuple[float, dict]:
    service = CasesService(store)
    service.lookup.get_index()  # the index is built once per workspace version, before any intake: apart
    service._place_names()
    t = time.perf_counter()
    answer = service.intake(cases_table(items), viewer=CaseViewer(name="bench"))
    return time.perf_counter() - t, answer


def http_batch(ws: Path, items: list[dict]) -> float:
    port = free_port()
    proc = start_server(ws, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        warm = json.dumps(dict(items[0], id="warm-up-batch")).encode()
        call(conn, "POST", "/cases", warm)
        body = json.dumps(items).encode()
        t = time.perf_counter()
        status, data = call(conn, "POST", "/cases", body)
        seconds = time.perf_counter() - t
        assert status == 201, data[:300]
        return seconds
    finally:
        proc.terminate()
        proc.wait(30)


PEER_SQL = """
INSERT INTO peer_cases (id, grid_id)
SELECT p.id, COALESCE(
    (SELECT bg.grid_id FROM peer_buildings b JOIN peer_building_grid bg ON bg.building_id = b.id
      WHERE ST_Covers(b.geom, p.geom) ORDER BY ST_Contains(b.geom, p.geom) DESC, b.id COLLATE "C" LIMIT 1),
    (SELECT g.id FROM peer_grids g WHERE ST_Covers(g.geom, p.geom)
      ORDER BY ST_Contains(g.geom, p.geom) DESC, g.id COLLATE "C" LIMIT 1),
    (SELECT g.id FROM peer_grids g ORDER BY ST_Distance(ST_Transform(g.geom, {epsg}), ST_Transform(p.geom, {epsg})),
      g.id COLLATE "C" LIMIT 1))
FROM peer_points p
"""


def peer(dsn: str, ws, lon: np.ndarray, lat: np.ndarray, *, epsg: int) -> tuple[float, float, pd.Series]:
    """The PostGIS peer: grids and buildings loaded with GiST indexes, the building → grid table made (apart,
    as gridcover's index), the points COPYed (apart), then one INSERT … SELECT resolving them (timed)."""
    import psycopg

    grids, buildings = ws.read("grids"), ws.read("buildings")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS peer_grids, peer_buildings, peer_building_grid, peer_points, peer_cases")
        db.execute("CREATE TABLE peer_grids (id text PRIMARY KEY, geom geometry(Geometry, 4326))")
        db.execute("CREATE TABLE peer_buildings (id text PRIMARY KEY, geom geometry(Geometry, 4326))")
        for table, frame in (("peer_grids", grids), ("peer_buildings", buildings)):
            hexes = shapely.to_wkb(shapely.set_srid(frame.geometry.to_numpy(), 4326), hex=True, include_srid=True)
            with db.cursor() as cur:  # the exact coordinates (WKT text would round them to 6 decimals)
                with cur.copy(f"COPY {table} (id, geom) FROM STDIN") as copy:
                    for i, g in zip(frame["id"].astype(str), hexes):
                        copy.write_row((i, g))
            db.execute(f"CREATE INDEX ON {table} USING gist (geom)")
        t = time.perf_counter()
        db.execute("CREATE TABLE peer_building_grid AS SELECT DISTINCT ON (b.id) b.id AS building_id, g.id AS grid_id "
                   "FROM peer_buildings b JOIN peer_grids g ON ST_Intersects(b.geom, g.geom) "
                   "ORDER BY b.id, ST_Area(ST_Intersection(b.geom, g.geom)) DESC, g.id COLLATE \"C\"")
        db.execute("CREATE INDEX ON peer_building_grid (building_id)")
        db.execute("CREATE TABLE peer_points (id text PRIMARY KEY, geom geometry(Point, 4326))")
        with db.cursor() as cur:
            with cur.copy("COPY peer_points (id, geom) FROM STDIN") as copy:
                for i, (a, b) in enumerate(zip(lon, lat)):
                    copy.write_row((f"b{i}", f"SRID=4326;POINT({float(a)!r} {float(b)!r})"))
        db.execute("ANALYZE peer_grids; ANALYZE peer_buildings; ANALYZE peer_points")
        db.execute("CREATE TABLE peer_cases (id text PRIMARY KEY, grid_id text)")
        prepared = time.perf_counter() - t
        t = time.perf_counter()
        db.execute(PEER_SQL.format(epsg=int(epsg)))  # the nearest grid in metres, in the workspace's metric CRS
        seconds = time.perf_counter() - t
        rows = db.execute("SELECT id, grid_id FROM peer_cases").fetchall()
        db.execute("DROP TABLE peer_grids, peer_buildings, peer_building_grid, peer_points, peer_cases")
    return seconds, prepared, pd.Series(dict(rows))


# ------------------------------------------------------------------ report
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load per single-request run")
    parser.add_argument("--batch", type=int, default=100_000, help="cases in the batch")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="uvicorn worker processes of the single-intake server, one run each (e.g. 1 2)")
    parser.add_argument("--singles-only", action="store_true", help="measure the single intakes only")
    parser.add_argument("--db", default=os.environ.get("GRIDCOVER_TEST_PG"),
                        help="PostgreSQL URL for the PostGIS store and the peer (default $GRIDCOVER_TEST_PG)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-cases-"))
    try:
        return run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_singles(post: dict, floor: dict, where: str) -> None:
    print(f"POST /cases single, {CLIENTS} clients ({post['client']}), {where}: {post['n']:,} requests, "
          f"{post['rps']:.0f}/s, p50 {post['p50']:.1f} ms, p95 {post['p95']:.1f} ms, p99 {post['p99']:.1f} ms, "
          f"{post['errors']} errors (goal p95 < 20 ms: {'met' if post['p95'] < 20 else 'NOT met'}); "
          f"server CPU {post['server_cpu_ms']:.2f} ms a request; load average {os.getloadavg()[0]:.2f}")
    print(f"GET /conformance (the floor), same server ({floor['client']}): {floor['rps']:.0f}/s, "
          f"p50 {floor['p50']:.1f} ms, p95 {floor['p95']:.1f} ms; server CPU {floor['server_cpu_ms']:.2f} ms a request")


def pg_singles(args, root: Path, fresh) -> None:
    """The single intakes on a PostGIS workspace (a schema of its own, dropped after)."""
    import psycopg

    from gridcover.store.postgis import load_gpkg

    folder = fresh("pg-singles")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    load_gpkg(folder / "workspace.gpkg", args.db, schema=schema)
    try:
        for workers in args.workers:
            post, floor = singles(folder, args.seconds, args.seed, workers=workers, db=args.db, schema=schema)
            print_singles(post, floor, f"PostGIS, {workers} uvicorn worker{'s' if workers > 1 else ''}")
    finally:
        with psycopg.connect(args.db, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(args, root: Path) -> int:
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores")
    base = sample_workspace(root)
    fresh = lambda name: Path(shutil.copytree(base, root / name))  # noqa: E731 - a workspace with no cases
    for workers in args.workers:
        post, floor = singles(fresh(f"singles-{workers}"), args.seconds, args.seed, workers=workers)
        print_singles(post, floor, f"GeoPackage, {workers} uvicorn worker{'s' if workers > 1 else ''}")
    if args.db:
        pg_singles(args, root, fresh)
    if args.singles_only:
        return 0
    ws = open_workspace(fresh("batch"))
    lon, lat = places(ws, args.batch, args.seed + 1)
    items = batch_items(lon, lat, "b")
    seconds, answer = intake(ws, items)
    assert answer["stored"] == args.batch and ws.cases().count() == args.batch
    print(f"batch of {args.batch:,} cases resolved and stored, GeoPackage: {seconds:.2f} s "
          f"({args.batch / seconds:,.0f} cases/s; goal < 10 s: {'met' if seconds < 10 else 'NOT met'})")
    print(f"  over HTTP (one POST /cases of {args.batch:,} JSON items, GeoPackage): "
          f"{http_batch(fresh('http'), batch_items(lon, lat, 'h')):.2f} s")
    ours = pd.Series({c["id"]: c["grid_id"] for c in answer["cases"]})
    ws.blind_spots().flush()  # before the temporary folder goes
    status = 0
    if not args.db:
        print("PostGIS skipped: no --db (or GRIDCOVER_TEST_PG)")
        return status
    from gridcover.store.postgis import load_gpkg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    load_gpkg(fresh("pg") / "workspace.gpkg", args.db, schema=schema)
    try:
        pg = open_workspace(db=args.db, schema=schema, state_dir=root / "state")
        pg_seconds, _ = intake(pg, items)
        print(f"batch of {args.batch:,} cases resolved and stored, PostGIS: {pg_seconds:.2f} s "
              f"(goal < 10 s: {'met' if pg_seconds < 10 else 'NOT met'})")
        epsg = CasesService(ws).lookup.get_index().metric_crs.to_epsg()
        peer_seconds, prepared, theirs = peer(args.db, ws, lon, lat, epsg=epsg)
        print(f"peer: PostGIS INSERT … SELECT (building, ST_Covers + tie rule, nearest) of {args.batch:,} points: "
              f"{peer_seconds:.2f} s (tables, indexes, building → grid and the points' COPY apart: {prepared:.2f} s)")
        print(f"ratio (peer / gridcover, GeoPackage): {peer_seconds / seconds:.2f}x; "
              f"(peer / gridcover, PostGIS store): {peer_seconds / pg_seconds:.2f}x")
        differ = ours.index[ours.to_numpy() != theirs.reindex(ours.index).to_numpy()]
        print(f"answers: {len(ours) - len(differ):,} of {len(ours):,} grids equal")
        if len(differ):
            print("  differing:", ", ".join(f"{i}: {ours[i]} vs {theirs.get(i)}" for i in differ[:10]))
            status = 1
        pg.blind_spots().flush()
        pg.close()
    finally:
        import psycopg

        with psycopg.connect(args.db, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
