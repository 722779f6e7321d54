"""`gridcover serve --db` as the tables grow: the server's peak memory, and cold tiles against TiPg (issue 16.2).

For each size (default 100,000 and 1,000,000 synthetic households, ``tools.synthetic``: 10 households a
building, 333 a grid), the schema ``hh<N>`` of ``--dsn`` is written once by ``gridcover analyze DATA --db DSN
--schema hh<N>`` (or named with ``--schemas``, already written). Then one ``gridcover serve --db`` per size is
started with an admin key and asked, one client after another:

- items pages of 100: households (the admin key) at offsets spread over the whole table, with and without a
  bbox; buildings, estates and H3 cells with a bbox;
- vector tiles: buildings z14–z16, estates z13–z15, H3 cells z12–z14, grids z11–z15 over the whole extent;

and its peak resident memory (``VmHWM`` of the server process) is printed per size with the ratio (goal: the
larger ≤ 1.2× the smaller).

Cold tiles: TiPg (``--tipg-python``, its own venv, ``bench/README.md``) serves the same schema of the largest
size. The same building tiles (z15 and z16, each once: cold for gridcover's tile cache; TiPg has none) are
asked of both, in alternating halves so that neither warms PostgreSQL's cache for the other; p50/p95 and the
ratio (goal ≤ 1×) are printed, and each tile's feature ids are checked to agree (TiPg does not simplify;
gridcover draws buildings from z14 on, simplified below z18, so the ids must match, not the vertices).

Usage: python bench/bench_postgis_server.py --dsn postgresql://…/db [--sizes 100000 1000000]
       [--schemas s100k s1m] [--tiles 200] [--tipg-python /tmp/tipg-venv/bin/python]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"
ADMIN_KEY = "bench-admin-key-not-for-production"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"no answer on port {port} within {timeout} s")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def schema_exists(dsn: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT to_regclass(%s)", (f"{schema}.gridcover_meta",)).fetchone()[0] is not None


def write_schema(dsn: str, schema: str, households: int) -> None:
    """``gridcover analyze`` of a synthetic district of ``households`` into ``schema``."""
    folder = DATA / f"pg_district_{households}"
    if not folder.exists():
        subprocess.run([sys.executable, "-m", "tools.synthetic", "--households", str(households), "--buildings",
                        str(households // 10), "--grids", str(max(households // 333, 1)), "--seed", "0", "--out",
                        str(folder)], cwd=REPO, check=True)
    subprocess.run([sys.executable, "-m", "gridcover.cli", "analyze", str(folder), "--db", dsn, "--schema", schema],
                   cwd=REPO, check=True)


def start_gridcover(dsn: str, schema: str, keys: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gridcover.cli", "serve", "--db", dsn, "--schema", schema,
                             "--port", str(port), "--keys", str(keys)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_http(port, "/conformance", proc)
    return proc, port


def start_tipg(python: str, dsn: str, schema: str) -> tuple[subprocess.Popen | None, int]:
    if not Path(python).exists():
        print(f"TiPg: no Python at {python} (python3 -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg "
              "uvicorn): TiPg skipped")
        return None, 0
    port = free_port()
    env = dict(os.environ, DATABASE_URL=dsn, TIPG_NAME="tipg", TIPG_DB_SCHEMAS=json.dumps([schema]))
    proc = subprocess.Popen([python, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    wait_http(port, "/collections", proc)
    return proc, port


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get(conn: http.client.HTTPConnection, path: str, headers: dict | None = None) -> tuple[int, bytes, float]:
    for attempt in (0, 1):  # a keep-alive connection the server closed while idle is opened again
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            return r.status, body, (time.perf_counter() - t) * 1000
        except (http.client.RemoteDisconnected, ConnectionError):
            conn.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


def tiles_over(bounds, z: int) -> list[tuple[int, int, int]]:
    x0, y0, x1, y1 = bounds

    def tx(lon):
        return int((lon + 180) / 360 * (1 << z))

    def ty(lat):
        r = math.radians(lat)
        return int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * (1 << z))
    return [(z, x, y) for x in range(tx(x0), tx(x1) + 1) for y in range(ty(y1), ty(y0) + 1)]


def pick(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def workload(port: int, tiles_per_zoom: int) -> dict:
    """Items pages and tiles over the whole extent; returns counts and the households matched."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    admin = {"X-API-Key": ADMIN_KEY}
    status, body, _ = get(conn, "/collections/buildings", admin)
    bounds = json.loads(body)["extent"]["spatial"]["bbox"][0]
    status, body, _ = get(conn, "/collections/households/items?limit=1", admin)
    matched = json.loads(body)["numberMatched"]
    asked, failed = 0, 0
    x0, y0, x1, y1 = bounds
    boxes = [(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, x0 + (x1 - x0) * (f + 0.05), y0 + (y1 - y0) * (f + 0.05))
             for f in np.linspace(0, 0.9, 10)]
    for offset in np.linspace(0, max(matched - 100, 0), 20).astype(int):
        s, _, _ = get(conn, f"/collections/households/items?limit=100&offset={offset}", admin)
        asked, failed = asked + 1, failed + (s != 200)
    for b in boxes:
        bbox = ",".join(f"{v:.6f}" for v in b)
        for layer in ("households", "buildings", "estates", "h3_reach"):
            s, _, _ = get(conn, f"/collections/{layer}/items?limit=100&bbox={bbox}", admin)
            asked, failed = asked + 1, failed + (s != 200)
    for layer, zooms in (("buildings", (14, 15, 16)), ("estates", (13, 14, 15)), ("h3_reach", (12, 13, 14)),
                         ("grids", (11, 12, 13, 14, 15))):
        for z in zooms:
            for tz, tx, ty in pick(tiles_over(bounds, z), tiles_per_zoom):
                s, _, _ = get(conn, f"/tiles/{layer}/{tz}/{tx}/{ty}.mvt")
                asked, failed = asked + 1, failed + (s != 200)
    return {"requests": asked, "failed": failed, "households": matched, "bounds": bounds}


def tile_ids(data: bytes, layer: str) -> set:
    import mapbox_vector_tile

    if not data:
        return set()
    decoded = mapbox_vector_tile.decode(data)
    found = next(iter(decoded.values()), {"features": []}) if layer not in decoded else decoded[layer]
    return {f["properties"].get("id") for f in found["features"]}


def cold_tiles(gc_port: int, tipg_port: int, schema: str, tiles: list) -> dict:
    """Each tile once from both, in alternating halves; latencies and id agreement."""
    gc = http.client.HTTPConnection("127.0.0.1", gc_port, timeout=120)
    tp = http.client.HTTPConnection("127.0.0.1", tipg_port, timeout=120)
    get(tp, f"/collections/{schema}.buildings/tiles/WebMercatorQuad/{tiles[0][0]}/{tiles[0][1]}/{tiles[0][2]}"
            "?properties=id")  # TiPg's catalogue and pool warm
    times = {"gridcover": [], "TiPg": []}
    disagree = 0
    half = len(tiles) // 2
    for part, order in ((tiles[:half], ("gridcover", "TiPg")), (tiles[half:], ("TiPg", "gridcover"))):
        got = {}
        for who in order:
            got[who] = []
            for z, x, y in part:
                if who == "gridcover":
                    s, body, ms = get(gc, f"/tiles/buildings/{z}/{x}/{y}.mvt")
                else:
                    s, body, ms = get(tp, f"/collections/{schema}.buildings/tiles/WebMercatorQuad/{z}/{x}/{y}"
                                          "?properties=id")
                assert s in (200, 204), (who, s, z, x, y)
                times[who].append(ms)
                got[who].append(tile_ids(body, "buildings") if who == "gridcover" else tile_ids(body, "default"))
        disagree += sum(a != b for a, b in zip(got["gridcover"], got["TiPg"]))
    return {who: (float(np.percentile(t, 50)), float(np.percentile(t, 95))) for who, t in times.items()} | {
        "disagree": disagree, "tiles": len(tiles)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="a PostgreSQL URL of a database with PostGIS")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--schemas", nargs="+", help="schemas already written by analyze --db, one per size")
    parser.add_argument("--tiles", type=int, default=200, help="tiles per zoom asked (cold comparison: per zoom too)")
    parser.add_argument("--tipg-python", default="/tmp/tipg-venv/bin/python")
    parser.add_argument("--no-tipg", action="store_true")
    args = parser.parse_args()
    schemas = args.schemas or [f"hh{n}" for n in args.sizes]
    for n, schema in zip(args.sizes, schemas):
        if not schema_exists(args.dsn, schema):
            write_schema(args.dsn, schema, n)
    keys = Path(tempfile.mkdtemp()) / "keys.json"
    keys.write_text(json.dumps({ADMIN_KEY: {"role": "admin", "name": "bench"}}))
    peaks, bounds = {}, None
    for n, schema in zip(args.sizes, schemas):
        proc, port = start_gridcover(args.dsn, schema, keys)
        try:
            started = peak_rss_mib(proc.pid)
            t = time.perf_counter()
            done = workload(port, args.tiles)
            seconds = time.perf_counter() - t
            peaks[n] = peak_rss_mib(proc.pid)
            bounds = done["bounds"]
            print(f"{done['households']:>9,} households ({schema}): {done['requests']} requests ({done['failed']} "
                  f"failed) in {seconds:.1f} s; server RSS after start {started:.0f} MiB, peak {peaks[n]:.0f} MiB; "
                  f"load average {os.getloadavg()[0]:.2f}")
        finally:
            stop(proc)
    if len(peaks) > 1:
        small, large = peaks[min(peaks)], peaks[max(peaks)]
        print(f"peak RSS {max(peaks):,} / {min(peaks):,} households: {large:.0f} / {small:.0f} MiB = {large / small:.3f}"
              f" (goal ≤ 1.2: {'met' if large / small <= 1.2 else 'NOT met'})")
    if args.no_tipg:
        return 0
    schema = schemas[-1]
    tipg, tipg_port = start_tipg(args.tipg_python, args.dsn, schema)
    if tipg is None:
        return 0
    proc, port = start_gridcover(args.dsn, schema, keys)
    try:
        tiles = [t for z in (15, 16) for t in pick(tiles_over(bounds, z), args.tiles)]
        out = cold_tiles(port, tipg_port, schema, tiles)
        (g50, g95), (t50, t95) = out["gridcover"], out["TiPg"]
        print(f"cold building tiles z15+z16 ({out['tiles']} tiles, {schema}): gridcover p50 {g50:.1f} ms p95 {g95:.1f} "
              f"ms; TiPg p50 {t50:.1f} ms p95 {t95:.1f} ms; ratio p95 {g95 / t95:.2f} (goal ≤ 1: "
              f"{'met' if g95 / t95 <= 1 else 'NOT met'}); tiles whose feature ids differ: {out['disagree']}; "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        stop(proc)
        stop(tipg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
