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


def wrk_single(port: int, lon: np.ndarray, lat: np.ndarray, seconds: float) -> dict | None:
    """Single lookups from wrk (Debian's C load generator: 2 threads, 8 connections), cycling through the
    points; ``None`` where wrk is not installed. A C client leaves the 2 cores to the server, unlike the
    Python client above."""
    if shutil.which("wrk") is None:
        return None
    paths = [f"/lookup?lon={float(a)!r}&lat={float(b)!r}" for a, b in zip(lon[:20000], lat[:20000])]
    script = Path(tempfile.mkdtemp()) / "lookup.lua"
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
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        print("wrk failed:", done.stdout[-500:], done.stderr[-500:])
        return None
    n, wall, p50, p95, p99, errors = line.split()[1:]
    return {"n": int(n), "wall": float(wall), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(errors)}


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
        db.execute("DROP TABLE bench_grids, bench_points")
    return out


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

    with_wrk = None
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
        with_wrk = wrk_single(port, lon, lat, min(args.max_seconds, 15))
        if with_wrk is not None:
            print(f"HTTP single, wrk {CLIENTS} connections: {with_wrk['n']:,} lookups in {with_wrk['wall']:.1f} s "
                  f"({with_wrk['n'] / with_wrk['wall']:,.0f}/s); p50 {with_wrk['p50']:.2f} ms, "
                  f"p95 {with_wrk['p95']:.2f} ms, p99 {with_wrk['p99']:.2f} ms, {with_wrk['errors']} errors")
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

    pg = None
    if not args.no_postgis:
        dsn = start_postgis()
        if dsn:
            pg = postgis_side(dsn, grids, lon, lat, args.pg_single, args.max_seconds)
    rows = [("in-process batch", rate_inproc), ("HTTP batch (100k/request)", rate_http),
            (f"HTTP single ({CLIENTS} clients)", single["n"] / single["wall"])]
    print()
    print(f"{'what':<44}{'points/s':>14}")
    for name, rate in rows:
        print(f"{'gridcover ' + name:<44}{rate:>14,.0f}")
    print(f"{'gridcover HTTP single p50 / p95 (ms)':<44}{single['p50']:>7.2f} / {single['p95']:.2f}   goal p95 ≤ 5 ms: "
          f"{'met' if single['p95'] <= 5 else 'NOT met'} (Python client)")
    if with_wrk is not None:
        print(f"{'gridcover HTTP single p50 / p95 (ms), wrk':<44}{with_wrk['p50']:>7.2f} / {with_wrk['p95']:.2f}   "
              f"goal p95 ≤ 5 ms: {'met' if with_wrk['p95'] <= 5 else 'NOT met'} (C client)")
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
