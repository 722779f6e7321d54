"""Benchmark: gridcover's lookup against PostGIS on a synthetic city of 20,000 grids and 200,000 points.

In one run, on the same data (never in CI; see bench/README.md):

1. gridcover in-process: ``geo.lookup.build_index`` (timed apart) then ``lookup_points`` on all points;
2. gridcover over HTTP on loopback (uvicorn, one worker): ``POST /lookup/batch`` in requests of 100,000
   JSON items; then single ``GET /lookup`` from 8 concurrent clients (keep-alive connections), p50/p95;
3. PostGIS (a throwaway cluster from ``.ci/postgis.sh``): prepared single-point queries from one client —
   plain ``ST_Contains`` (the peer as usually deployed) and ``ST_Covers`` with the tie rule (the same
   answer as gridcover) — and the bulk join of all points, both ways.

Every gridcover answer (grid id) is checked against PostGIS ``ST_Covers`` + ``ORDER BY ST_Contains DESC,
id COLLATE "C"``; a disagreement is printed and makes the exit status 1. Points: uniform over the city and a
2 % margin around it, plus ``--boundary-share`` of them on grid boundaries (half exactly on vertices, half
interpolated along edges). PostGIS is skipped with a message where it cannot be installed.

Example
-------
    python bench/bench_lookup.py                          # 20,000 grids, 200,000 points
    python bench/bench_lookup.py --grids 2000 --points 20000 --single 200    # a quick run
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import tempfile
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.lookup import build_index, lookup_points  # noqa: E402
from gridcover.io.outputs import write_meta  # noqa: E402
from tools.synthetic import GENERATOR_VERSION, make_district  # noqa: E402

DATA_DIR = ROOT / "bench" / "data"
KEY = "k-bench"
CLIENTS = 8
BATCH = 100_000


# ------------------------------------------------------------------ data
def workspace(grids: int, buildings: int, seed: int) -> Path:
    """A workspace folder with a synthetic city (cached under bench/data)."""
    folder = DATA_DIR / f"lookup-v{GENERATOR_VERSION}-g{grids}-b{buildings}-s{seed}"
    gpkg = folder / "workspace.gpkg"
    if gpkg.is_file():
        return folder
    t = time.perf_counter()
    layers = make_district(households=0, buildings=buildings, grids=grids, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.gpkg"
    tmp.unlink(missing_ok=True)
    for name in ("streets", "communities", "grids", "estates", "buildings"):
        pyogrio.write_dataframe(layers[name], tmp, layer=name, driver="GPKG", append=tmp.exists())
    write_meta(tmp, {"workspace_id": uuid.uuid4().hex, "version": "1"})
    tmp.rename(gpkg)
    print(f"generated {grids:,} grids, {buildings:,} buildings in {time.perf_counter() - t:.1f} s -> {folder}")
    return folder


def make_points(grids, n: int, boundary_share: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n_b = int(n * boundary_share)
    n_r = n - n_b
    x0, y0, x1, y1 = grids.total_bounds
    dx, dy = (x1 - x0) * 0.02, (y1 - y0) * 0.02
    rx, ry = rng.uniform(x0 - dx, x1 + dx, n_r), rng.uniform(y0 - dy, y1 + dy, n_r)
    rings = shapely.get_exterior_ring(shapely.get_parts(grids.geometry.to_numpy()))
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    pick_v = rng.integers(0, len(a), n_b // 2)
    pick_e = rng.integers(0, len(a), n_b - n_b // 2)
    t = rng.uniform(0, 1, len(pick_e))[:, None]
    on_edges = a[pick_e] + (b[pick_e] - a[pick_e]) * t
    pts = np.vstack([np.column_stack([rx, ry]), a[pick_v], on_edges])
    order = rng.permutation(len(pts))
    return pts[order, 0], pts[order, 1], n_b


# ------------------------------------------------------------------ HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace
app = create_app(open_workspace({ws!r}), keys=load_keys({keys!r}))
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def start_server(ws: Path, port: int) -> subprocess.Popen:
    keys = ws / "bench-keys.json"
    keys.write_text(json.dumps({KEY: {"role": "lookup"}}), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), ws=str(ws), keys=str(keys),
                                                                 port=port)])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the gridcover server did not start")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
            ctype: str = "application/json") -> bytes:
    headers = {"X-API-Key": KEY}
    if body is not None:
        headers["Content-Type"] = ctype
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
    return data


def http_batch(port: int, lon: np.ndarray, lat: np.ndarray) -> tuple[float, list]:
    bodies = [json.dumps({"crs": "wgs84", "items": [{"lon": float(a), "lat": float(b)} for a, b in
                                                   zip(lon[i:i + BATCH], lat[i:i + BATCH])]}).encode()
              for i in range(0, len(lon), BATCH)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    answers = []
    t = time.perf_counter()
    for body in bodies:
        answers.append(request(conn, "POST", "/lookup/batch", body))
    seconds = time.perf_counter() - t  # the client's decoding is not counted
    grid_ids = [r["grid_id"] for data in answers for r in json.loads(data)["results"]]
    return seconds, grid_ids


def http_single(port: int, lon: np.ndarray, lat: np.ndarray, per_client: int, max_s: float) -> dict:
    lat_ms: list[list[float]] = [[] for _ in range(CLIENTS)]
    answers: list[dict] = [{} for _ in range(CLIENTS)]
    stop_at = time.perf_counter() + max_s
    barrier = threading.Barrier(CLIENTS)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        request(conn, "GET", f"/lookup?lon={float(lon[k])!r}&lat={float(lat[k])!r}")  # connect outside the timing
        barrier.wait()
        for j in range(per_client):
            i = (k * per_client + j) % len(lon)
            t = time.perf_counter()
            data = request(conn, "GET", f"/lookup?lon={float(lon[i])!r}&lat={float(lat[i])!r}")
            lat_ms[k].append((time.perf_counter() - t) * 1000)
            answers[k][i] = json.loads(data)["grid_id"]
            if time.perf_counter() > stop_at:
                break
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    all_ms = np.concatenate([np.asarray(x) for x in lat_ms])
    merged = {}
    for a in answers:
        merged.update(a)
    return {"n": len(all_ms), "wall": wall, "p50": float(np.percentile(all_ms, 50)),
            "p95": float(np.percentile(all_ms, 95)), "p99": float(np.percentile(all_ms, 99)), "answers": merged}


def wrk_run(port: int, paths: list[str], seconds: float) -> dict | None:
    """wrk (Debian's C load generator: 2 threads, 8 keep-alive connections) cycling through ``paths`` for
    ``seconds``: requests, wall time, p50/p95/p99 latency (ms) and errors (non-2xx answers included); ``None``
    where wrk is not installed. A C client leaves the 2 cores to the server, unlike the Python client above."""
    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "paths.lua"
    script.write_text(
        "local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "local i = 0\n"
        f'wrk.headers["X-API-Key"] = "{KEY}"\n'
        "request = function() i = i % #paths + 1; return wrk.format(\"GET\", paths[i]) end\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format(\"RESULT %d %f %f %f %f %d\\n\", summary.requests, summary.duration / 1e6,\n"
        "    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,\n"
        "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))\n"
        "end\n", encoding="utf-8")
    done = subprocess.run(["wrk", "-t2", f"-c{CLIENTS}", f"-d{int(seconds)}s", "-s", str(script),
                           f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    shutil.rmtree(script.parent, ignore_errors=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        print("wrk failed:", done.stdout[-500:], done.stderr[-500:])
        return None
    n, wall, p50, p95, p99, errors = line.split()[1:]
    return {"n": int(n), "wall": float(wall), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(errors)}


def lookup_paths(lon: np.ndarray, lat: np.ndarray) -> list[str]:
    return [f"/lookup?lon={float(a)!r}&lat={float(b)!r}" for a, b in zip(lon[:20000], lat[:20000])]


def http_floor(port: int, lon: np.ndarray, lat: np.ndarray, seconds: float, rounds: int) -> list[dict] | None:
    """The same server's cheapest route (``/conformance``) and single ``GET /lookup`` from wrk, alternately,
    ``rounds`` times: each round's two results and the ratio of their p95."""
    out = []
    for _ in range(rounds):
        floor = wrk_run(port, ["/conformance"], seconds)
        single = wrk_run(port, lookup_paths(lon, lat), seconds)
        if floor is None or single is None:
            return None
        out.append({"floor": floor, "lookup": single, "ratio": single["p95"] / floor["p95"]})
    return out


# ------------------------------------------------------------------ PostGIS
def start_postgis() -> str | None:
    try:
        done = subprocess.run(["bash", str(ROOT / ".ci" / "postgis.sh"), "start"], capture_output=True, text=True,
                              timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"PostGIS skipped: {exc}")
        return None
    if done.returncode != 0:
        print("PostGIS skipped: .ci/postgis.sh failed:\n" + done.stderr[-1500:])
        return None
    return done.stdout.strip().splitlines()[-1]


def postgis_side(dsn: str, grids, lon: np.ndarray, lat: np.ndarray, n_single: int, max_s: float) -> dict:
    import psycopg

    out: dict = {}
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS bench_grids, bench_points")
        db.execute("CREATE TABLE bench_grids (id text PRIMARY KEY, geom geometry(MultiPolygon, 4326))")
        multi = [shapely.MultiPolygon([p]) if p.geom_type == "Polygon" else p for p in grids.geometry]
        t = time.perf_counter()
        with db.cursor().copy("COPY bench_grids (id, geom) FROM STDIN") as copy:
            for gid, wkb in zip(grids["id"], shapely.to_wkb(multi, hex=True)):
                copy.write_row((gid, f"SRID=4326;{wkb}"))
        db.execute("CREATE INDEX ON bench_grids USING gist (geom)")
        db.execute("ANALYZE bench_grids")
        out["load_grids_s"] = time.perf_counter() - t
        t = time.perf_counter()
        db.execute("CREATE TABLE bench_points (i int PRIMARY KEY, geom geometry(Point, 4326))")
        with db.cursor().copy("COPY bench_points (i, geom) FROM STDIN") as copy:
            for i, wkb in enumerate(shapely.to_wkb(shapely.points(lon, lat), hex=True)):
                copy.write_row((i, f"SRID=4326;{wkb}"))
        db.execute("ANALYZE bench_points")
        out["load_points_s"] = time.perf_counter() - t

        contains = ("SELECT id FROM bench_grids WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
                    "LIMIT 1")
        covers = ("SELECT id FROM bench_grids WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
                  "ORDER BY ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) DESC, id COLLATE \"C\" LIMIT 1")
        for name, sql, twice in (("single_contains", contains, False), ("single_covers", covers, True)):
            cur = db.cursor()
            cur.execute(sql, (float(lon[0]), float(lat[0])) * (2 if twice else 1), prepare=True)
            cur.fetchall()
            answers = {}
            t = time.perf_counter()
            stop_at = t + max_s
            for i in range(n_single):
                args = (float(lon[i]), float(lat[i]))
                cur.execute(sql, args * 2 if twice else args, prepare=True)
                row = cur.fetchone()
                answers[i] = row[0] if row else None
                if time.perf_counter() > stop_at:
                    break
            out[name] = {"n": len(answers), "s": time.perf_counter() - t, "answers": answers}

        t = time.perf_counter()
        rows = db.execute("SELECT p.i, g.id FROM bench_points p JOIN bench_grids g ON ST_Contains(g.geom, p.geom)"
                          ).fetchall()
        out["join_contains"] = {"s": time.perf_counter() - t, "rows": len(rows)}
        t = time.perf_counter()
        rows = db.execute("""SELECT DISTINCT ON (p.i) p.i, g.id FROM bench_points p
                             LEFT JOIN bench_grids g ON ST_Covers(g.geom, p.geom)
                             ORDER BY p.i, ST_Contains(g.geom, p.geom) DESC, g.id COLLATE "C" """).fetchall()
        out["join_covers"] = {"s": time.perf_counter() - t}
        answers = [None] * len(lon)
        for i, gid in rows:
            answers[i] = gid
        out["join_covers"]["answers"] = answers
        out["pgbench"] = pgbench_single(dsn, min(len(lon), 20000), max_s)
        db.execute("DROP TABLE bench_grids, bench_points")
    return out


#: The peer of a single ``GET /lookup``: one prepared query with gridcover's tie rule (ST_Covers, interior first,
#: then the smallest id), for a point of the same set (fetched by its key).
PG_SINGLE = """\\set i random(0, {last})
SELECT g.id FROM bench_grids g JOIN bench_points p ON ST_Covers(g.geom, p.geom) WHERE p.i = :i
ORDER BY ST_Contains(g.geom, p.geom) DESC, g.id COLLATE "C" LIMIT 1;
"""


def pgbench_single(dsn: str, n_points: int, seconds: float) -> dict | None:
    """Single-point queries from pgbench (PostgreSQL's C client: 8 connections, 2 threads, prepared statements),
    the like of wrk on ``GET /lookup``: queries/s and the p50/p95/p99 latency (ms) of every query logged."""
    if shutil.which("pgbench") is None:
        return None
    folder = Path(tempfile.mkdtemp())
    script = folder / "single.sql"
    script.write_text(PG_SINGLE.format(last=n_points - 1), encoding="utf-8")
    done = subprocess.run(["pgbench", "-n", "-M", "prepared", f"-c{CLIENTS}", "-j2", f"-T{int(min(seconds, 15))}",
                           "-f", str(script), "-l", "--log-prefix", str(folder / "log"), dsn],
                          capture_output=True, text=True, cwd=folder)
    logs = list(folder.glob("log*"))
    if done.returncode != 0 or not logs:
        print("pgbench failed:", done.stdout[-500:], done.stderr[-500:])
        shutil.rmtree(folder, ignore_errors=True)
        return None
    # per query: client, number, latency (µs), script, epoch s, µs
    ms = np.concatenate([np.loadtxt(f, usecols=2, ndmin=1) for f in logs]) / 1000.0
    tps = next((float(line.split("=")[1].split()[0]) for line in done.stdout.splitlines()
                if line.startswith("tps")), len(ms) / seconds)
    shutil.rmtree(folder, ignore_errors=True)
    return {"n": len(ms), "rate": tps, "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99))}


# ------------------------------------------------------------------ the command line
def cli_single(folder: Path, dsn: str | None, *, before: Path | None, runs: int) -> dict | None:
    """One ``gridcover lookup --lon --lat`` process at a time (hyperfine, the whole process: start, imports,
    index, answer): with the prepared index (``lookup_index.npz``, the case of every call but the first after
    an analysis), without it (removed before each run: every call builds the index, as before it was kept),
    the ``before`` checkout's command, and the peer for a command: ``psql`` sending one query with the same tie
    rule to PostGIS (process start, connection, query). The point is one in a grid and in no building (PostGIS
    holds the grids only); the answers are checked equal."""
    if shutil.which("hyperfine") is None:
        print("CLI: hyperfine is not installed; skipped")
        return None
    from gridcover.services.lookup import build_store_index
    from gridcover.store import open_workspace

    store = open_workspace(folder)
    index = build_store_index(store)
    grids = store.read("grids")
    x, y, _ = make_points(grids, 2000, 0.0, 7)
    cols = lookup_points(index, x, y)
    pick = int(np.flatnonzero(cols["method"] == "grid")[0])
    lon, lat, want = float(x[pick]), float(y[pick]), cols["grid_id"][pick]
    command = f"{sys.executable} -m gridcover.cli lookup {folder} --lon {lon!r} --lat {lat!r}"
    answer = json.loads(subprocess.run(command.split(), capture_output=True, text=True,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout)["grid_id"]
    runs_of = [("gridcover lookup, prepared index", f"env PYTHONPATH={ROOT} {command}", None),
               ("gridcover lookup, index built each call", f"env PYTHONPATH={ROOT} {command}",
                f"rm -f {folder / 'lookup_index.npz'}")]
    if before is not None:
        runs_of.append((f"before ({before})", f"env PYTHONPATH={before} {command}", None))
    theirs = None
    if dsn:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS bench_cli_grids")
            db.execute("CREATE TABLE bench_cli_grids (id text PRIMARY KEY, geom geometry(Geometry, 4326))")
            with db.cursor().copy("COPY bench_cli_grids (id, geom) FROM STDIN") as copy:
                for gid, wkb in zip(grids["id"].astype(str), shapely.to_wkb(grids.geometry.to_numpy(), hex=True)):
                    copy.write_row((gid, f"SRID=4326;{wkb}"))
            db.execute("CREATE INDEX ON bench_cli_grids USING gist (geom)")
            db.execute("ANALYZE bench_cli_grids")
        pt = f"ST_SetSRID(ST_MakePoint({lon!r}, {lat!r}), 4326)"
        sql = (f"SELECT id FROM bench_cli_grids WHERE ST_Covers(geom, {pt}) ORDER BY ST_Contains(geom, {pt}) DESC, "
               f"id COLLATE \"C\" LIMIT 1")
        theirs = subprocess.run(["psql", "-XAtq", dsn, "-c", sql], capture_output=True, text=True).stdout.strip()
        runs_of.append(("psql, one PostGIS query", f"psql -XAtq {dsn} -c '{sql}'", None))
    out_json = Path(tempfile.mkdtemp()) / "cli.json"
    argv = ["hyperfine", "-N", "-w", "2", "-r", str(runs), "--export-json", str(out_json)]
    for name, cmd, prepare in runs_of:
        argv += (["--prepare", prepare] if prepare else ["--prepare", "true"]) + ["-n", name, cmd]
    subprocess.run(argv, capture_output=True, text=True)
    results = json.loads(out_json.read_text())["results"]
    shutil.rmtree(out_json.parent, ignore_errors=True)
    # the last run of "built each call" removed the file: make it again so the folder is as it was
    subprocess.run(command.split(), capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return {"point": (lon, lat), "want": want, "ours": answer, "theirs": theirs,
            "runs": [(r["command"], r["mean"], r["stddev"], r.get("user"), r.get("system")) for r in results]}


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", type=int, default=20_000)
    ap.add_argument("--buildings", type=int, default=0, help="default: 2 per grid")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--boundary-share", type=float, default=0.1)
    ap.add_argument("--single", type=int, default=1_000, help="single HTTP lookups per client (8 clients)")
    ap.add_argument("--pg-single", type=int, default=20_000, help="PostGIS single-point queries per kind")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="bound of each single-lookup phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-postgis", action="store_true")
    ap.add_argument("--dsn", help="a PostGIS database to use (default: the cluster of .ci/postgis.sh)")
    ap.add_argument("--floor-rounds", type=int, default=2, help="wrk rounds of /conformance then /lookup")
    ap.add_argument("--floor-seconds", type=float, default=10.0, help="seconds of each wrk run")
    ap.add_argument("--cli-workspace", type=Path, help="workspace of the command-line runs (default: the "
                                                         "synthetic one)")
    ap.add_argument("--before", type=Path, help="a checkout whose 'gridcover lookup' is timed as before")
    ap.add_argument("--cli-runs", type=int, default=10, help="hyperfine runs of each command line")
    args = ap.parse_args(argv)

    ws = workspace(args.grids, args.buildings or 2 * args.grids, args.seed)
    from gridcover.store import open_workspace
    wsp = open_workspace(ws)
    grids, buildings, estates = wsp.read("grids"), wsp.read("buildings"), wsp.read("estates")
    communities = wsp.read("communities")
    lon, lat, n_boundary = make_points(grids, args.points, args.boundary_share, args.seed)
    n = len(lon)
    print(f"{len(grids):,} grids, {len(buildings):,} buildings, {len(estates):,} estates; {n:,} points "
          f"({n_boundary:,} on boundaries); {os.cpu_count()} cores")

    t = time.perf_counter()
    index = build_index(grids, buildings=buildings, estates=estates, communities=communities, version=1)
    build_s = time.perf_counter() - t
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        res = lookup_points(index, lon, lat)
        best = min(best, time.perf_counter() - t)
    ours = list(res["grid_id"])
    # the grid by the point alone (PostGIS knows no buildings): an index without buildings
    t = time.perf_counter()
    grid_only_index = build_index(grids, communities=communities, version=1)
    t = time.perf_counter()
    grid_only = list(lookup_points(grid_only_index, lon, lat)["grid_id"])
    grid_only_s = time.perf_counter() - t
    rate_inproc = n / best
    print(f"in-process: index built in {build_s:.2f} s; batch {best:.3f} s = {rate_inproc:,.0f} lookups/s "
          f"(grids only: {n / grid_only_s:,.0f}/s); covered {np.mean([g is not None for g in ours]):.1%}")
    if ours != grid_only:
        diff = sum(a != b for a, b in zip(ours, grid_only))
        print(f"  note: {diff:,} points lie in a building whose grid decides (none should in this synthetic city)")

    floor = None
    port = free_port()
    proc = start_server(ws, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t = time.perf_counter()
        request(conn, "GET", f"/lookup?lon={float(lon[0])!r}&lat={float(lat[0])!r}")
        print(f"HTTP: server up; first lookup (builds the index) {time.perf_counter() - t:.2f} s")
        http_s, http_ids = http_batch(port, lon, lat)
        rate_http = n / http_s
        print(f"HTTP batch: {n:,} points in {len(range(0, n, BATCH))} requests, {http_s:.2f} s = {rate_http:,.0f}/s")
        single = http_single(port, lon, lat, args.single, args.max_seconds)
        print(f"HTTP single, {CLIENTS} clients: {single['n']:,} lookups in {single['wall']:.1f} s "
              f"({single['n'] / single['wall']:,.0f}/s); p50 {single['p50']:.2f} ms, p95 {single['p95']:.2f} ms, "
              f"p99 {single['p99']:.2f} ms")
        floor = http_floor(port, lon, lat, args.floor_seconds, args.floor_rounds)
        for k, r in enumerate(floor or []):
            for what in ("floor", "lookup"):
                w = r[what]
                print(f"HTTP wrk round {k + 1}, {'/conformance' if what == 'floor' else 'GET /lookup'}: "
                      f"{w['n']:,} requests in {w['wall']:.1f} s ({w['n'] / w['wall']:,.0f}/s); p50 {w['p50']:.2f} ms, "
                      f"p95 {w['p95']:.2f} ms, p99 {w['p99']:.2f} ms, {w['errors']} errors")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    failures = 0
    if http_ids != ours:
        failures += 1
        print(f"DISAGREE: HTTP batch vs in-process on {sum(a != b for a, b in zip(http_ids, ours)):,} points")
    bad_single = [i for i, g in single["answers"].items() if g != ours[i]]
    if bad_single:
        failures += 1
        print(f"DISAGREE: HTTP single vs in-process on {len(bad_single):,} points")

    pg = dsn = None
    if not args.no_postgis:
        dsn = args.dsn or start_postgis()
        if dsn:
            pg = postgis_side(dsn, grids, lon, lat, args.pg_single, args.max_seconds)
    cli = cli_single(args.cli_workspace or ws, dsn, before=args.before, runs=args.cli_runs)
    rows = [("in-process batch", rate_inproc), ("HTTP batch (100k/request)", rate_http),
            (f"HTTP single ({CLIENTS} clients)", single["n"] / single["wall"])]
    print()
    print(f"{'what':<44}{'points/s':>14}")
    for name, rate in rows:
        print(f"{'gridcover ' + name:<44}{rate:>14,.0f}")
    print(f"{'gridcover HTTP single p50 / p95 (ms)':<44}{single['p50']:>7.2f} / {single['p95']:.2f}   goal p95 ≤ 5 ms: "
          f"{'met' if single['p95'] <= 5 else 'NOT met'} (Python client)")
    for k, r in enumerate(floor or []):
        w, f = r["lookup"], r["floor"]
        print(f"{'gridcover GET /lookup p95, wrk round ' + str(k + 1):<44}{w['p95']:>7.2f} ms; /conformance "
              f"{f['p95']:.2f} ms: {r['ratio']:.2f}x (goal ≤ 1.5x: {'met' if r['ratio'] <= 1.5 else 'NOT met'}; "
              f"≤ 5 ms: {'met' if w['p95'] <= 5 else 'NOT met'})")
    if cli is not None:
        print(f"command line, one lookup at ({cli['point'][0]:.6f}, {cli['point'][1]:.6f}), hyperfine mean ± sd "
              "(user + system CPU):")
        for name, mean, sd, user, system in cli["runs"]:
            print(f"  {name:<52}{mean * 1000:>8.0f} ± {sd * 1000:.0f} ms  ({(user + system) * 1000:.0f} ms CPU)")
        fast = cli["runs"][0][1]
        print(f"  goal < 0.5 s: {'met' if fast < 0.5 else 'NOT met'}; ratio to psql: "
              + (f"{fast / cli['runs'][-1][1]:.1f}x" if cli["theirs"] is not None else "no PostGIS"))
        agree = cli["ours"] == cli["want"] and (cli["theirs"] is None or cli["theirs"] == cli["want"])
        if not agree:
            failures += 1
        print(f"  answers: in-process {cli['want']}, command line {cli['ours']}, psql {cli['theirs']}"
              + ("" if agree else "  DISAGREE"))
    if pg is None:
        print("PostGIS: skipped (see the message above); no ratios")
    else:
        sc, sv = pg["single_contains"], pg["single_covers"]
        jc, jv = pg["join_contains"], pg["join_covers"]
        pg_rates = {"single_contains": sc["n"] / sc["s"], "single_covers": sv["n"] / sv["s"],
                    "join_contains": n / jc["s"], "join_covers": n / jv["s"]}
        print(f"{'PostGIS prepared ST_Contains, 1 client':<44}{pg_rates['single_contains']:>14,.0f}   ({sc['n']:,} queries)")
        print(f"{'PostGIS prepared ST_Covers + tie rule':<44}{pg_rates['single_covers']:>14,.0f}   ({sv['n']:,} queries)")
        print(f"{'PostGIS bulk join ST_Contains':<44}{pg_rates['join_contains']:>14,.0f}   ({jc['rows']:,} rows; "
              f"points loaded in {pg['load_points_s']:.1f} s, not counted)")
        print(f"{'PostGIS bulk join ST_Covers + tie rule':<44}{pg_rates['join_covers']:>14,.0f}")
        pb = pg.get("pgbench")
        if pb is not None:
            print(f"{'PostGIS single, pgbench 8 clients, tie rule':<44}{pb['rate']:>14,.0f}   p50 {pb['p50']:.2f} ms, "
                  f"p95 {pb['p95']:.2f} ms, p99 {pb['p99']:.2f} ms ({pb['n']:,} queries)")
            for k, r in enumerate(floor or []):
                w = r["lookup"]
                print(f"ratio GET /lookup (wrk, round {k + 1}) / PostGIS single (pgbench): rate "
                      f"{w['n'] / w['wall'] / pb['rate']:.2f}x, p95 {w['p95'] / pb['p95']:.2f}x")
        print(f"ratio HTTP batch / PostGIS bulk join ST_Covers + tie rule (like for like): "
              f"{rate_http / pg_rates['join_covers']:.2f}x; in-process batch / same: "
              f"{rate_inproc / pg_rates['join_covers']:.2f}x")
        r1 = rate_inproc / pg_rates["single_contains"]
        r2 = rate_inproc / pg_rates["join_contains"]
        r3 = rate_http / pg_rates["single_contains"]
        print(f"ratio in-process batch / PostGIS single ST_Contains: {r1:.1f}x (goal ≥ 10x: {'met' if r1 >= 10 else 'NOT met'})")
        print(f"ratio in-process batch / PostGIS bulk join ST_Contains: {r2:.1f}x (goal ≥ 2x: {'met' if r2 >= 2 else 'NOT met'})")
        print(f"ratio HTTP batch / PostGIS single ST_Contains: {r3:.1f}x; HTTP batch / bulk join: "
              f"{rate_http / pg_rates['join_contains']:.1f}x")
        theirs = jv["answers"]
        diff = [i for i in range(n) if theirs[i] != grid_only[i]]
        if diff:
            failures += 1
            print(f"DISAGREE: PostGIS ST_Covers + tie rule vs gridcover on {len(diff):,} of {n:,} points, e.g. "
                  + ", ".join(f"#{i} ({lon[i]!r}, {lat[i]!r}): ours {grid_only[i]}, PostGIS {theirs[i]}" for i in diff[:3]))
        else:
            print(f"agreement: all {n:,} points give the same grid as PostGIS ST_Covers + tie rule")
        bad = [i for i, g in sv["answers"].items() if g != grid_only[i]]
        if bad:
            failures += 1
            print(f"DISAGREE: PostGIS single ST_Covers vs gridcover on {len(bad):,} points")
        not_interior = sum(1 for i, g in sc["answers"].items() if g != grid_only[i])
        print(f"(plain ST_Contains leaves {not_interior:,} of its {sc['n']:,} points without the covering grid: "
              "boundary points, by design of ST_Contains)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
