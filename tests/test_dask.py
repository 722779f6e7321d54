"""The Dask engine: a run split by street on a Dask cluster writes what the single-process run writes."""

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

pytest.importorskip("dask.distributed")

from geo.errors import ConfigError  # noqa: E402
from gridcover.engines.partition import plan_parts, read_part  # noqa: E402
from gridcover.engines.single import analyze  # noqa: E402
from gridcover.io.outputs import write_outputs  # noqa: E402
from gridcover.cli import main  # noqa: E402
from gridcover.engines.dask import analyze_dask  # noqa: E402

AS_OF = date(2026, 11, 29)
LAYERS = ("households", "grids", "coverage_issues", "h3_reach", "blindspots", "cases")


def _features(folder: Path, name: str) -> pd.DataFrame:
    doc = json.loads((folder / f"{name}.geojson").read_text(encoding="utf-8"))
    return pd.DataFrame([{**{k: json.dumps(v, sort_keys=True) for k, v in f["properties"].items()},
                          "geometry": json.dumps(f["geometry"])} for f in doc["features"]])


def _differences(single: Path, dask: Path, *, summary_ignore: tuple = ()) -> list[str]:
    """Every difference between two output folders (households compared by id: the Dask run writes them street
    by street; timings and the summary's ``summary_ignore`` keys left out)."""
    out = []
    for name in LAYERS:
        if not (single / f"{name}.geojson").exists() and not (dask / f"{name}.geojson").exists():
            continue  # cases.geojson: only with a case log
        a, b = _features(single, name), _features(dask, name)
        if name == "households":
            a, b = a.sort_values("id").reset_index(drop=True), b.sort_values("id").reset_index(drop=True)
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            out.append(f"{name}: columns or rows differ ({len(a)} vs {len(b)})")
            continue
        for column in a.columns:
            differ = (a[column] != b[column]).to_numpy()
            if differ.any():
                i = int(np.flatnonzero(differ)[0])
                out.append(f"{name}.{column}: {int(differ.sum())} rows differ, e.g. {a[column][i][:60]} vs {b[column][i][:60]}")
    sa, sb = (json.loads((f / "summary.json").read_text(encoding="utf-8")) for f in (single, dask))
    for s in (sa, sb):
        for key in ("timings_s", *summary_ignore):
            s.pop(key, None)
    for key in sorted(set(sa) | set(sb)):
        if sa.get(key) != sb.get(key):
            out.append(f"summary.json {key}: {str(sa.get(key))[:120]} vs {str(sb.get(key))[:120]}")
    for name in ("scorecard.json", "scorecard.csv"):
        if (single / name).read_bytes() != (dask / name).read_bytes():
            out.append(f"{name} differs")
    layers_a = {str(r[0]): int(pyogrio.read_info(single / "workspace.gpkg", layer=str(r[0]))["features"])
                for r in pyogrio.list_layers(single / "workspace.gpkg")}
    layers_b = {str(r[0]): int(pyogrio.read_info(dask / "workspace.gpkg", layer=str(r[0]))["features"])
                for r in pyogrio.list_layers(dask / "workspace.gpkg")}
    if layers_a != layers_b:
        out.append(f"workspace.gpkg layers differ: {layers_a} vs {layers_b}")
    return out


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """Six streets of a synthetic district with roads along the blocks, facilities and gates; a 15-minute
    horizon keeps each street's roads smaller than the city (about 2.4 km across)."""
    from tools.synthetic import make_district, write_district
    from tools.synthetic_network import street_network

    folder = tmp_path_factory.mktemp("city")
    layers = make_district(households=20_000, buildings=2_000, grids=60, seed=3, grids_per_community=5,
                           communities_per_street=2)
    layers.update(street_network(layers, seed=3, unknown_category=True))
    write_district(layers, folder, fmt="gpkg")
    text = (Path(__file__).parents[1] / "geo" / "categories.toml").read_text(encoding="utf-8")
    (folder / "categories.toml").write_text(text.replace("minutes = 30", "minutes = 15"), encoding="utf-8")
    return folder


def test_the_dask_run_of_the_sample_writes_the_single_process_outputs(sample_analysis, tmp_path):
    _, single = sample_analysis
    _, out = analyze_dask("sample_geojson", tmp_path / "dask", reference_date=AS_OF)  # a local cluster of its own
    assert _differences(Path(single), out) == []


@pytest.fixture(scope="module")
def city_single(city, tmp_path_factory):
    """The six streets' single-process output folder."""
    return write_outputs(analyze(city, reference_date=AS_OF), tmp_path_factory.mktemp("single") / "out")


def test_a_city_of_six_streets_gives_the_same_outputs_on_dask(city, city_single, cluster, tmp_path):
    single = city_single
    analysis, out = analyze_dask(city, tmp_path / "dask", reference_date=AS_OF, scheduler=cluster)
    assert analysis.summary["households"] == 20_000 and len(analysis.summary["per_street"]) == 6
    assert analysis.summary["reach"]["method"] == "network"
    assert _differences(single, out) == []
    # the households are all there, street by street
    hh = pyogrio.read_dataframe(out / "households.geojson", read_geometry=False, columns=["id", "street_id"])
    assert hh["id"].is_unique and len(hh) == 20_000


def test_a_street_reads_only_its_part_of_the_city(city):
    plan = plan_parts(str(city))
    assert plan.n_parts == 6
    assert sum(len(f) for f in plan.household_fids) == 20_000  # every household in exactly one part
    assert len(np.unique(np.concatenate(plan.household_fids))) == 20_000
    data, owned_buildings, _, _ = read_part(plan, 0)
    assert len(data.layers["households"]) == len(plan.household_fids[0]) < 20_000 / 3
    assert owned_buildings.sum() < len(data.layers["buildings"]) < 2_000
    # roads and facilities: those within the horizon's walk (here, most of this small city)
    assert len(data.layers["roads"]) <= plan.counts["roads"]
    assert 0 < len(data.layers["facilities"]) <= plan.counts["facilities"]


def test_the_command_runs_on_dask_and_refuses_what_it_cannot_do(city, cluster, tmp_path, capsys):
    assert main(["analyze", str(city), "--out", str(tmp_path / "o"), "--engine", "dask", "--scheduler", cluster,
                 "--as-of", "2026-11-29", "--quiet"]) == 0
    assert "20,000 households" in capsys.readouterr().out
    assert (tmp_path / "o" / "report.html").is_file()
    assert main(["analyze", str(city), "--out", str(tmp_path / "p"), "--scheduler", cluster]) == 2
    assert "--scheduler needs --engine dask" in capsys.readouterr().err
    assert main(["analyze", str(city), "--out", str(tmp_path / "q"), "--engine", "dask", "--derive-fringe",
                 "--scheduler", cluster]) == 2
    assert "--derive-fringe is not available with --engine dask" in capsys.readouterr().err
    assert not (tmp_path / "p").exists() and not (tmp_path / "q").exists()


def test_the_dask_engine_refuses_an_out_over_the_data_before_starting_a_cluster(city, tmp_path, capsys):
    before = sorted(p.name for p in city.iterdir())
    assert main(["analyze", str(city), "--out", str(city), "--engine", "dask"]) == 2
    assert "is the data folder" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="holds the data folder"):
        analyze_dask(city, city.parent)
    assert sorted(p.name for p in city.iterdir()) == before


def test_visit_records_are_judged_part_by_part_as_in_one_process(city, cluster, tmp_path):
    import shutil

    folder = tmp_path / "city"
    shutil.copytree(city, folder)
    groups = ["elderly_alone", "child_in_difficulty", "mental_disorder"]
    hh = pyogrio.read_dataframe(folder / "households.gpkg", read_geometry=False, columns=["id", *groups])
    watched = hh.loc[hh[groups].astype(bool).any(axis=1), "id"].to_numpy()[:-7]  # the last 7: never visited
    rng = np.random.default_rng(5)
    weeks = np.arange(14)
    who = np.repeat(watched, len(weeks))
    week = np.tile(weeks, len(watched))
    keep = rng.random(len(who)) < 0.8
    day = pd.Timestamp("2026-08-31") + pd.to_timedelta(week[keep] * 7 + rng.integers(0, 7, keep.sum()), unit="D")
    kinds = rng.choice(["home", "电话"], keep.sum(), p=[0.9, 0.1])
    pd.DataFrame({"household_id": who[keep], "visited_at": day.strftime("%Y-%m-%d 10:00"), "worker": "王芳",
                  "kind": kinds}).to_csv(folder / "visits.csv", index=False)
    single = write_outputs(analyze(folder, reference_date=AS_OF, window_weeks=10), tmp_path / "single")
    analysis, out = analyze_dask(folder, tmp_path / "dask", reference_date=AS_OF, scheduler=cluster, window_weeks=10)
    v = analysis.summary["visits"]
    assert v["households"] == len(watched) + 7 and v["never_visited"] == 7 and v["window_weeks"] == 10
    assert 0.6 < v["share_kept"] < 0.8 and len(v["per_street"]) == 6
    assert _differences(single, out) == []  # households' visit columns, grids' shares, summary, scorecard, workspace


def test_cases_are_placed_and_judged_as_in_one_process(city, cluster, tmp_path):
    """A case log of the six streets, placed by point (some outside every grid), household and address: the
    Dask run places them in one task with every part's households and gives the single run's outputs."""
    import shutil

    import geopandas as gpd

    folder = tmp_path / "city"
    shutil.copytree(city, folder)
    hh = gpd.read_file(folder / "households.gpkg", engine="pyogrio")
    rng = np.random.default_rng(11)
    n = 600
    pick = hh.iloc[rng.integers(0, len(hh), n)].reset_index(drop=True)
    how = rng.choice(["point", "household", "address"], n)
    points = pick.geometry.to_numpy()
    has = ~gpd.GeoSeries(points).isna().to_numpy()
    how = np.where((how == "point") & ~has, "household", how)
    x0, y0, x1, y1 = gpd.read_file(folder / "streets.gpkg", engine="pyogrio").total_bounds
    lon = np.where(how == "point", [p.x if p is not None else np.nan for p in points], np.nan)
    lat = np.where(how == "point", [p.y if p is not None else np.nan for p in points], np.nan)
    lon[:5], lat[:5] = x1 + 0.002 * (1 + np.arange(5)), (y0 + y1) / 2  # east of every street: outside every grid
    reported = pd.Timestamp("2026-11-02 08:00") + pd.to_timedelta(rng.integers(0, 27 * 24 * 60, n), unit="m")
    accepted = reported + pd.to_timedelta(rng.integers(5, 200, n), unit="m")
    closed = accepted + pd.to_timedelta(rng.integers(60, 6 * 24 * 60, n), unit="m")
    pd.DataFrame({"id": [f"K{i:04d}" for i in range(n)], "reported_at": reported.strftime("%Y-%m-%d %H:%M"),
                  "urgency": rng.choice(["general", "紧急", "cross_department"], n, p=[0.8, 0.05, 0.15]),
                  "lon": lon, "lat": lat, "household_id": np.where(how == "household", pick["id"], None),
                  "address": np.where(how == "address", pick["address"], None),
                  "accepted_at": accepted.strftime("%Y-%m-%d %H:%M"),
                  "closed_at": np.where(rng.random(n) < 0.9, closed.strftime("%Y-%m-%d %H:%M"), None),
                  }).to_csv(folder / "cases.csv", index=False)
    single = write_outputs(analyze(folder, reference_date=AS_OF), tmp_path / "single")
    analysis, out = analyze_dask(folder, tmp_path / "dask", reference_date=AS_OF, scheduler=cluster)
    c = analysis.summary["cases"]
    assert c["judged"] + c["reported_after_as_of"] == n and c["outside_grids"] >= 5 and c["not_located"] < n // 10
    assert set(c["located_by"]) == {"point", "household", "address", "none"} and c["located_by"]["address"] > 100
    assert _differences(single, out) == []  # cases.geojson, the grids' case columns, summary, scorecard, workspace


def test_without_assembly_the_workers_write_the_households_as_geoparquet_by_street(city, city_single, cluster,
                                                                                   tmp_path):
    """``--no-assemble``: no households.geojson; each street's households in OUT/parts/households/street=<id>/
    as GeoParquet (GeoPandas reads the folder), the same rows and values as the single-process run's."""
    import shutil

    import geopandas as gpd
    import pyarrow.parquet as pq

    from gridcover.io.outputs import _write_geojson

    analysis, out = analyze_dask(city, tmp_path / "parted", reference_date=AS_OF, scheduler=cluster, assemble=False)
    assert not (out / "households.geojson").exists()
    files = sorted((out / "parts" / "households").glob("street=*/part.parquet"))
    streets = sorted(str(s) for s in analysis.data.layers["streets"]["id"])
    assert [f.parent.name for f in files] == [f"street={s}" for s in streets]
    geo = json.loads(pq.read_schema(files[0]).metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    whole = gpd.read_parquet(out / "parts" / "households")  # the folder as one dataset (street: Hive's column)
    assert len(whole) == 20_000 and whole["id"].is_unique and whole.crs.to_epsg() == 4326
    kept = {str(r[0]) for r in pyogrio.list_layers(out / "workspace.gpkg")}  # the city-wide layers, not the big ones
    assert {"grids", "h3_reach", "blindspots", "streets"} <= kept and not kept & {"households", "input_households"}
    # the values: the parts written as households.geojson by the same writer equal the single run's file
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(out, rebuilt)
    frame = pd.concat([gpd.read_parquet(f) for f in files], ignore_index=True)
    for column in frame.columns:  # lists come back as arrays
        if frame[column].dtype == object and any(isinstance(v, np.ndarray) for v in frame[column].head(100)):
            frame[column] = [None if v is None else list(v) for v in frame[column]]
    _write_geojson(gpd.GeoDataFrame(frame, geometry="geometry", crs=4326), rebuilt / "households.geojson")
    differences = _differences(city_single, rebuilt, summary_ignore=("outputs",))
    assert [d for d in differences if not d.startswith("workspace.gpkg layers differ")] == []
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "parts" in summary["outputs"] and "households.geojson" not in summary["outputs"]


@pytest.fixture
def cluster_elsewhere(tmp_path):
    """A scheduler and two workers started apart, as a user's cluster is (``dask scheduler``, ``dask worker``),
    each in a folder of its own that holds no data."""
    import os
    import socket
    import subprocess
    import sys

    from dask.distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "workers").mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=tmp_path / "scheduler", env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard", "--memory-limit", "2GiB"],
                                      cwd=tmp_path / "workers", env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
            assert {Path(d) for d in client.run(os.getcwd).values()} == {tmp_path / "workers"}
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_cluster_started_in_another_folder_reads_a_relative_data_path(sample_analysis, cluster_elsewhere,
                                                                         tmp_path, monkeypatch, capsys):
    """``gridcover analyze sample_geojson --engine dask --scheduler tcp://…`` from the checkout, the workers
    running in another folder: the driver resolves the data path (and the output's) before the workers see
    them, and the outputs are the single-process run's, the files named as the user named them."""
    import os

    _, single = sample_analysis
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    out = os.path.relpath(tmp_path / "out")
    assert main(["analyze", "sample_geojson", "--out", out, "--engine", "dask", "--scheduler", cluster_elsewhere,
                 "--as-of", "2026-11-29", "--quiet"]) == 0, capsys.readouterr().err
    assert _differences(Path(single), tmp_path / "out", summary_ignore=("outputs",)) == []  # and a report.html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["sources"]["households"].startswith("sample_geojson")
