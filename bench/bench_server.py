"""Benchmark: gridcover's map server against TiPg over PostGIS, on the same table, in one run.

Data: a synthetic layer of 10,000 grid polygons (≈100 m, 40 vertices each, a coverage whose shared edges
wiggle), and the sample district's grids. For each: z13 and z15 vector tiles (cold and cached) and an
items page of 100 features with a bbox, 8 concurrent clients on loopback (a small asyncio HTTP/1.1
keep-alive client: per-request latency from send to last byte; bounded request counts and time).

Cold tiles: gridcover is restarted for every round, warmed only by one tile per zoom outside the measured
set (reading the layer and simplifying it for that zoom happen once per workspace version; that first
tile's time is printed separately), then every measured tile is asked for once. TiPg has no tile cache:
each of its requests is cold. Cached: the same tiles again (gridcover answers from its cache).

TiPg (never a gridcover dependency) runs from its own venv (default /tmp/tipg-venv: ``python3 -m venv
/tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg uvicorn``) on a throwaway PostGIS cluster that
``.ci/postgis.sh`` starts in its own folder on a free port; both are skipped with a message where they
cannot be had. Never run by CI.

Usage: python bench/bench_server.py [--rounds 3] [--tipg-python /tmp/tipg-venv/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridcover.io.outputs import write_meta  # noqa: E402

CONCURRENCY = 8
ORIGIN_UTM = (404000.0, 3390000.0)  # central Chengdu, UTM 48N
FIELDS = ["id", "name", "community_id", "worker_name", "households", "persons", "workers",
          "households_per_worker", "basic_share", "elderly_alone", "child_in_difficulty", "mental_disorder",
          "migrant", "rental"]


# --- data -------------------------------------------------------------------------------------------
def synthetic_grids(n_side: int = 100, cell: float = 100.0, per_edge: int = 10, seed: int = 0) -> gpd.GeoDataFrame:
    """n_side² grid polygons of ``cell`` metres with 4×``per_edge`` vertices, sharing wiggly edges."""
    rng = np.random.default_rng(seed)
    m = n_side + 1
    corners = np.stack(np.meshgrid(np.arange(m) * cell, np.arange(m) * cell, indexing="ij"), axis=-1)
    corners = corners + rng.uniform(-8, 8, corners.shape)
    t = np.linspace(0, 1, per_edge + 1)[1:-1]
    # horizontal edges (i,j)->(i+1,j) and vertical edges (i,j)->(i,j+1), each with per_edge-1 inner vertices
    h = corners[:-1, :, None, :] + t[None, None, :, None] * (corners[1:, :, None, :] - corners[:-1, :, None, :])
    h[..., 1] += rng.uniform(-4, 4, h.shape[:-1])
    v = corners[:, :-1, None, :] + t[None, None, :, None] * (corners[:, 1:, None, :] - corners[:, :-1, None, :])
    v[..., 0] += rng.uniform(-4, 4, v.shape[:-1])
    i, j = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
    i, j = i.ravel(), j.ravel()
    ring = np.concatenate([
        corners[i, j][:, None], h[i, j],                # bottom, left to right
        corners[i + 1, j][:, None], v[i + 1, j],        # right, upwards
        corners[i + 1, j + 1][:, None], h[i, j + 1][:, ::-1],   # top, right to left
        corners[i, j + 1][:, None], v[i, j][:, ::-1],   # left, downwards
    ], axis=1)
    ring = ring + np.array(ORIGIN_UTM)
    polys = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
    n = len(polys)
    households = rng.integers(100, 700, n)
    frame = gpd.GeoDataFrame({
        "id": [f"G{k:05d}" for k in range(n)], "name": [f"合成社区第{k}网格" for k in range(n)],
        "community_id": [f"C{k // 100:03d}" for k in range(n)], "worker_name": "网格员",
        "worker_phone": "028-0000-0000", "full_time_workers": 1, "households": households,
        "persons": households * 2, "workers": 1, "households_per_worker": households.astype(float),
        "load_ratio": households / 300, "over_capacity": households > 300, "unstaffed": False,
        "split_buildings": 0, "basic_share": rng.uniform(0, 1, n).round(3),
        **{g: rng.integers(0, 12, n) for g in ("elderly_alone", "child_in_difficulty", "mental_disorder", "migrant", "rental")},
    }, geometry=polys, crs="EPSG:32648").to_crs(4326)
    return frame


def write_workspace(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = folder / "workspace.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    pyogrio.write_dataframe(frame, gpkg, layer="grids", driver="GPKG")
    write_meta(gpkg, {"workspace_id": uuid.uuid4().hex, "version": "1", "summary": "{}"})
    return folder


# --- servers ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port} within {timeout} s")


def start_gridcover(workspace: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gridcover.cli", "serve", str(workspace), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_http(port, "/conformance", proc)
    return proc, port


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_postgis() -> tuple[str | None, dict]:
    env = dict(os.environ, GRIDCOVER_PG_DIR="/tmp/gridcover-bench-pg", GRIDCOVER_PG_PORT=str(free_port()),
               GRIDCOVER_PG_DB="bench")
    try:
        out = subprocess.run(["bash", str(REPO / ".ci" / "postgis.sh"), "start"], env=env, capture_output=True,
                             text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"PostGIS: cannot start ({exc}): TiPg skipped")
        return None, env
    if out.returncode != 0:
        print(f"PostGIS: cannot start ({out.stderr.strip().splitlines()[-1:]}): TiPg skipped")
        return None, env
    return out.stdout.strip(), env


def load_table(dsn: str, frame: gpd.GeoDataFrame, table: str) -> None:
    import psycopg

    cols = [c for c in frame.columns if c != "geometry"]
    types = {c: ("double precision" if frame[c].dtype.kind == "f" else "bigint" if frame[c].dtype.kind in "iu"
                 else "boolean" if frame[c].dtype.kind == "b" else "text") for c in cols}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (" + ", ".join(f'"{c}" {types[c]}' for c in cols)
                     + ", geom geometry(Polygon, 4326))")
        wkb = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
        with conn.cursor().copy(f"COPY {table} (" + ", ".join(f'"{c}"' for c in cols) + ", geom) FROM STDIN") as copy:
            for row, g in zip(frame[cols].itertuples(index=False), wkb):
                copy.write_row([*(v.item() if hasattr(v, "item") else v for v in row), g])
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
        conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
        conn.execute(f"ANALYZE {table}")


def start_tipg(python: str, dsn: str) -> tuple[subprocess.Popen | None, int]:
    if not Path(python).exists():
        print(f"TiPg: no Python at {python} (python3 -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg "
              "uvicorn): TiPg skipped")
        return None, 0
    port = free_port()
    env = dict(os.environ, DATABASE_URL=dsn, TIPG_NAME="tipg")
    proc = subprocess.Popen([python, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    try:
        wait_http(port, "/collections", proc)
    except RuntimeError as exc:
        print(f"TiPg: did not start ({exc}): TiPg skipped")
        stop(proc)
        return None, 0
    return proc, port


# --- load generator ---------------------------------------------------------------------------------
async def _fetch(reader, writer, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length, chunked = None, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _run(port: int, paths: list[str], concurrency: int, time_limit: float) -> tuple[np.ndarray, float, int]:
    queue = list(reversed(paths))
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + time_limit

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue and time.perf_counter() < deadline:
                path = queue.pop()
                t0 = time.perf_counter()
                status = await _fetch(reader, writer, path)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return np.array(latencies), time.perf_counter() - started, errors


def measure(port: int, paths: list[str], *, time_limit: float = 120) -> dict:
    lat, elapsed, errors = asyncio.run(_run(port, paths, CONCURRENCY, time_limit))
    if len(lat) == 0:
        return {"n": 0}
    return {"n": len(lat), "p50": float(np.percentile(lat, 50) * 1000), "p95": float(np.percentile(lat, 95) * 1000),
            "rps": len(lat) / elapsed, "errors": errors}


# --- tiles and pages --------------------------------------------------------------------------------
def tiles_covering(bounds, z: int) -> list[tuple[int, int, int]]:
    def xy(lon, lat):
        n = 2 ** z
        return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    x0, y1 = xy(bounds[0], bounds[1])
    x1, y0 = xy(bounds[2], bounds[3])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def items_boxes(frame: gpd.GeoDataFrame, n: int, seed: int = 1) -> list[tuple[float, float, float, float]]:
    """bboxes around random grids holding ~100+ features (so a page of 100 is full)."""
    rng = np.random.default_rng(seed)
    centres = frame.geometry.centroid.to_numpy()
    x0, y0, x1, y1 = frame.total_bounds
    half = max((x1 - x0), (y1 - y0)) * (0.06 if len(frame) > 1000 else 0.5)
    picks = rng.integers(0, len(frame), n)
    return [(c.x - half, c.y - half, c.x + half, c.y + half) for c in centres[picks]]


def report(rows: list[tuple[str, str, dict]]) -> None:
    print(f"{'case':<34} {'server':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
    for case, server, r in rows:
        if r.get("n"):
            print(f"{case:<34} {server:<10} {r['n']:>5} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['rps']:>8.1f}"
                  + (f"  ({r['errors']} non-200)" if r.get("errors") else ""))
        else:
            print(f"{case:<34} {server:<10}   (not measured)")


def bench_dataset(label: str, frame: gpd.GeoDataFrame, workdir: Path, *, rounds: int, tipg_port: int | None,
                  table: str) -> list[tuple[str, str, dict]]:
    ws = write_workspace(frame, workdir / label)
    bounds = frame.total_bounds
    rows = []
    field_list = ",".join(f for f in FIELDS if f in frame.columns)
    for z in (13, 15):
        tiles = tiles_covering(bounds, z)
        warm, measured = tiles[0], tiles[1:] or tiles
        cold, cached, first = [], [], []
        for _ in range(rounds):
            proc, port = start_gridcover(ws)
            try:
                t0 = time.perf_counter()
                measure(port, [f"/tiles/grids/{warm[0]}/{warm[1]}/{warm[2]}.mvt"])
                first.append((time.perf_counter() - t0) * 1000)
                paths = [f"/tiles/grids/{t[0]}/{t[1]}/{t[2]}.mvt" for t in measured]
                cold.append(measure(port, paths))
                cached.append(measure(port, paths * max(1, 2000 // len(paths)), time_limit=30))
            finally:
                stop(proc)
        rows.append((f"{label} z{z} first tile (prepares zoom)", "gridcover",
                     {"n": len(first), "p50": float(np.median(first)), "p95": float(np.max(first)), "rps": 0.0}))
        rows.append((f"{label} z{z} tiles cold ({len(measured)} tiles)", "gridcover", _merge(cold)))
        rows.append((f"{label} z{z} tiles cached", "gridcover", _merge(cached)))
        if tipg_port:
            tpaths = [f"/collections/public.{table}/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}?properties={field_list}"
                      for t in measured]
            measure(tipg_port, tpaths[:2])  # TiPg's catalogue and connection pool warm
            rows.append((f"{label} z{z} tiles (no cache)", "TiPg", measure(tipg_port, tpaths * rounds)))
    boxes = items_boxes(frame, 300)
    proc, port = start_gridcover(ws)
    try:
        gpaths = [f"/collections/grids/items?limit=100&bbox={b[0]:.6f},{b[1]:.6f},{b[2]:.6f},{b[3]:.6f}" for b in boxes]
        measure(port, gpaths[:5])
        rows.append((f"{label} items 100 + bbox", "gridcover", measure(port, gpaths)))
    finally:
        stop(proc)
    if tipg_port:
        tpaths = [f"/collections/public.{table}/items?limit=100&bbox={b[0]:.6f},{b[1]:.6f},{b[2]:.6f},{b[3]:.6f}"
                  for b in boxes]
        measure(tipg_port, tpaths[:5])
        rows.append((f"{label} items 100 + bbox", "TiPg", measure(tipg_port, tpaths)))
    return rows


def _merge(results: list[dict]) -> dict:
    """Pool rounds: recompute from the per-round figures weighted by count (p95 = max over rounds' p95)."""
    results = [r for r in results if r.get("n")]
    if not results:
        return {"n": 0}
    n = sum(r["n"] for r in results)
    return {"n": n, "p50": float(np.median([r["p50"] for r in results])), "p95": float(max(r["p95"] for r in results)),
            "rps": float(np.mean([r["rps"] for r in results])), "errors": sum(r.get("errors", 0) for r in results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="server restarts for cold tiles (default 3)")
    parser.add_argument("--tipg-python", default="/tmp/tipg-venv/bin/python")
    parser.add_argument("--no-tipg", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gridcover-bench-server-"))
    synthetic = synthetic_grids()
    print(f"synthetic: {len(synthetic):,} grids, {int(shapely.get_num_coordinates(synthetic.geometry.to_numpy()).mean()) - 1} "
          "vertices each")
    sample_ws = REPO / "out" / "sample" / "workspace.gpkg"
    if not sample_ws.exists():
        subprocess.run([sys.executable, "-m", "gridcover.cli", "analyze", "sample_geojson", "--out", "out/sample",
                        "--quiet"], cwd=REPO, check=True)
    sample = pyogrio.read_dataframe(sample_ws, layer="grids")
    dsn, pg_env = (None, {}) if args.no_tipg else start_postgis()
    tipg_proc, tipg_port = None, None
    rows: list = []
    try:
        if dsn:
            load_table(dsn, synthetic, "synthetic_grids")
            load_table(dsn, sample[[c for c in sample.columns]].explode(index_parts=False), "sample_grids")
            tipg_proc, tipg_port = start_tipg(args.tipg_python, dsn)
        rows += bench_dataset("synthetic", synthetic, workdir, rounds=args.rounds, tipg_port=tipg_port,
                              table="synthetic_grids")
        rows += bench_dataset("sample", sample, workdir, rounds=args.rounds, tipg_port=tipg_port, table="sample_grids")
    finally:
        stop(tipg_proc)
        if dsn:
            subprocess.run(["bash", str(REPO / ".ci" / "postgis.sh"), "purge"], env=pg_env, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    report(rows)
    print()
    for label in ("synthetic", "sample"):
        for z in (13, 15):
            g = next((r for c, s, r in rows if c.startswith(f"{label} z{z} tiles cold") and s == "gridcover"), None)
            t = next((r for c, s, r in rows if c.startswith(f"{label} z{z} tiles (no cache)") and s == "TiPg"), None)
            c = next((r for c, s, r in rows if c == f"{label} z{z} tiles cached" and s == "gridcover"), None)
            if g and t and g.get("n") and t.get("n"):
                ratio = g["p95"] / t["p95"]
                print(f"{label} z{z} cold tiles p95: gridcover {g['p95']:.1f} ms / TiPg {t['p95']:.1f} ms = {ratio:.2f}x "
                      f"(goal <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")
            if c and c.get("n"):
                print(f"{label} z{z} cached tiles p95: {c['p95']:.1f} ms (goal <= 5 ms: {'met' if c['p95'] <= 5 else 'NOT met'})")
        g = next((r for c, s, r in rows if c == f"{label} items 100 + bbox" and s == "gridcover"), None)
        t = next((r for c, s, r in rows if c == f"{label} items 100 + bbox" and s == "TiPg"), None)
        if g and t and g.get("n") and t.get("n"):
            ratio = g["p95"] / t["p95"]
            print(f"{label} items p95: gridcover {g['p95']:.1f} ms / TiPg {t['p95']:.1f} ms = {ratio:.2f}x "
                  f"(goal <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
