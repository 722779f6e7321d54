"""Benchmark: gridcover's map server against TiPg over PostGIS, on the same table, in one run.

Data: a synthetic layer of 10,000 grid polygons (≈100 m, 40 vertices each, a coverage whose shared edges
wiggle), and the sample district's grids. For each: z13 and z15 vector tiles (cold and cached) and an
items page of 100 features with a bbox, 8 concurrent clients on loopback (a small asyncio HTTP/1.1
keep-alive client: per-request latency from send to last byte; bounded request counts and time).

Cold tiles: gridcover is restarted for every round and every tile covering the layer at the zoom is asked
for once, the first tile of the zoom included (``gridcover serve`` reads the tiled layers and simplifies
them for every zoom before it answers: the time from start to the first answer is printed as "ready").
TiPg has no tile cache: each of its requests is cold. Cached: the same tiles again (from gridcover's cache).
Both servers run the same number of uvicorn processes (``--workers``, default 2 = the machine's cores);
TiPg's SQL runs in PostgreSQL backend processes besides.

Same tiles: after the timing, every measured tile is fetched once more from both servers and decoded
(mapbox-vector-tile): the features (ids), their attributes (equal, except the special-group counts 1..k-1
that gridcover withholds and TiPg shows), their areas (within 2 % for features over 1,000 tile units²) and
vertex counts are compared and printed; TiPg is asked with the same buffer (TIPG_TILE_BUFFER=64 units of
4096) and gives its tiles unsimplified, gridcover simplifies below z18 (4 units), so it has fewer vertices.

TiPg (never a gridcover dependency) runs from its own venv (default /tmp/tipg-venv: ``python3 -m venv
/tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg uvicorn``) on a throwaway PostGIS cluster that
``.ci/postgis.sh`` starts in its own folder on a free port; both are skipped with a message where they
cannot be had. Never run by CI.

Usage: python bench/bench_server.py [--rounds 3] [--workers 2] [--tipg-python /tmp/tipg-venv/bin/python]
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
import urllib.request
import uuid
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyogrio
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridcover.io.outputs import write_meta  # noqa: E402
from layers.base import SPECIAL_GROUP_COUNTS  # noqa: E402

CONCURRENCY = 8
ORIGIN_UTM = (404000.0, 3390000.0)  # central Chengdu, UTM 48N
FIELDS = ["id", "name", "community_id", "worker_name", "households", "persons", "workers",
          "households_per_worker", "basic_share", "elderly_alone", "child_in_difficulty", "mental_disorder",
          "migrant", "rental"]
SPECIAL = set(SPECIAL_GROUP_COUNTS)
#: Largest relative area difference of a feature (over 1,000 tile units²) between the two servers' tiles.
AREA_TOLERANCE = 0.02


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


def start_gridcover(workspace: Path, workers: int) -> tuple[subprocess.Popen, int, float]:
    """The server on a free port, and the seconds it took from start to its first answer."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gridcover.cli", "serve", str(workspace), "--port", str(port),
                             "--workers", str(workers)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_http(port, "/conformance", proc, timeout=180)
    return proc, port, time.perf_counter() - t0


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


def start_tipg(python: str, dsn: str, workers: int) -> tuple[subprocess.Popen | None, int]:
    if not Path(python).exists():
        print(f"TiPg: no Python at {python} (python3 -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg "
              "uvicorn): TiPg skipped")
        return None, 0
    port = free_port()
    env = dict(os.environ, DATABASE_URL=dsn, TIPG_NAME="tipg", TIPG_TILE_BUFFER="64")
    proc = subprocess.Popen([python, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning", "--no-access-log"], env=env,
                            stdout=subprocess.DEVNULL,
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


def fetch(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as answer:
        return answer.read()


def _features(data: bytes, layer: str) -> dict:
    """The decoded features of one tile layer by id: (properties, geometry)."""
    if not data:
        return {}
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    features = next(iter(decoded.values()))["features"] if decoded else []
    return {str(f["properties"].get("id", f.get("id"))): (f["properties"], shapely.geometry.shape(f["geometry"]))
            for f in features}


def compare_tiles(ours: bytes, theirs: bytes, *, k: int = 5) -> dict:
    """What differs between gridcover's and TiPg's decoding of one tile (see the module docstring)."""
    a, b = _features(ours, "grids"), _features(theirs, "grids")
    common = a.keys() & b.keys()
    out = {"features": len(a), "peer_features": len(b), "only_ours": len(a.keys() - b.keys()),
           "only_peer": len(b.keys() - a.keys()), "withheld": 0, "attribute_differences": 0,
           "vertices": 0, "peer_vertices": 0, "worst_area": 0.0}
    for fid in common:
        (pa, ga), (pb, gb) = a[fid], b[fid]
        for name, value in pb.items():
            if name not in pa:
                if name in SPECIAL and 0 < value < k:
                    out["withheld"] += 1
                else:
                    out["attribute_differences"] += 1
            elif not (pa[name] == value or isinstance(value, float) and math.isclose(pa[name], value, rel_tol=1e-9)):
                out["attribute_differences"] += 1
        out["vertices"] += int(shapely.get_num_coordinates(ga))
        out["peer_vertices"] += int(shapely.get_num_coordinates(gb))
        if gb.area > 1000:
            out["worst_area"] = max(out["worst_area"], abs(ga.area - gb.area) / gb.area)
    return out


def _agreement(label: str, z: int, results: list[dict]) -> str:
    total = {key: sum(r[key] for r in results) for key in results[0] if key != "worst_area"}
    worst = max(r["worst_area"] for r in results)
    ok = (total["only_ours"] == total["only_peer"] == 0 and total["attribute_differences"] == 0
          and worst <= AREA_TOLERANCE and total["vertices"] <= total["peer_vertices"])
    share = total["vertices"] / max(total["peer_vertices"], 1)
    return (f"{label} z{z} same tiles as TiPg ({len(results)} tiles): {total['features']} / {total['peer_features']} "
            f"features, {total['only_ours']} only in gridcover's, {total['only_peer']} only in TiPg's; attributes "
            f"equal but {total['attribute_differences']} (+{total['withheld']} counts below k withheld); areas within "
            f"{worst * 100:.2f}%; vertices {total['vertices']:,} / {total['peer_vertices']:,} = {share:.2f} "
            f"(gridcover simplifies): {'agree' if ok else 'DIFFER'}")


def bench_dataset(label: str, frame: gpd.GeoDataFrame, workdir: Path, *, rounds: int, workers: int,
                  tipg_port: int | None, table: str) -> tuple[list[tuple[str, str, dict]], list[str]]:
    ws = write_workspace(frame, workdir / label)
    bounds = frame.total_bounds
    rows, notes = [], []
    field_list = ",".join(f for f in FIELDS if f in frame.columns)
    for z in (13, 15):
        tiles = tiles_covering(bounds, z)
        paths = [f"/tiles/grids/{t[0]}/{t[1]}/{t[2]}.mvt" for t in tiles]
        tpaths = [f"/collections/public.{table}/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}?properties={field_list}"
                  for t in tiles]
        cold, cached, ready, same = [], [], [], []
        for r in range(rounds):
            proc, port, seconds = start_gridcover(ws, workers)
            ready.append(seconds * 1000)
            try:
                cold.append(measure(port, paths))
                cached.append(measure(port, paths * max(1, 2000 // len(paths)), time_limit=30))
                if tipg_port and r == 0:
                    same = [compare_tiles(fetch(port, p), fetch(tipg_port, tp)) for p, tp in zip(paths, tpaths)]
            finally:
                stop(proc)
        rows.append((f"{label} z{z} server ready (start to answer)", "gridcover",
                     {"n": len(ready), "p50": float(np.median(ready)), "p95": float(np.max(ready)), "rps": 0.0}))
        rows.append((f"{label} z{z} tiles cold ({len(tiles)} tiles)", "gridcover", _merge(cold)))
        rows.append((f"{label} z{z} tiles cached", "gridcover", _merge(cached)))
        if tipg_port:
            measure(tipg_port, tpaths[:2])  # TiPg's catalogue and connection pool warm
            rows.append((f"{label} z{z} tiles (no cache)", "TiPg", measure(tipg_port, tpaths * rounds)))
            notes.append(_agreement(label, z, same))
    boxes = items_boxes(frame, 300)
    proc, port, _ = start_gridcover(ws, workers)
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
    return rows, notes


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
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes of each server (default 2)")
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
    notes: list[str] = []
    try:
        if dsn:
            load_table(dsn, synthetic, "synthetic_grids")
            load_table(dsn, sample[[c for c in sample.columns]].explode(index_parts=False), "sample_grids")
            tipg_proc, tipg_port = start_tipg(args.tipg_python, dsn, args.workers)
        for label, frame, table in (("synthetic", synthetic, "synthetic_grids"), ("sample", sample, "sample_grids")):
            got, said = bench_dataset(label, frame, workdir, rounds=args.rounds, workers=args.workers,
                                      tipg_port=tipg_port, table=table)
            rows, notes = rows + got, notes + said
    finally:
        stop(tipg_proc)
        if dsn:
            subprocess.run(["bash", str(REPO / ".ci" / "postgis.sh"), "purge"], env=pg_env, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.workers} uvicorn process(es) each; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    report(rows)
    print()
    for note in notes:
        print(note)
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
