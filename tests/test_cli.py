"""The gridcover command as a user runs it: outputs, exit codes, messages, atomic writes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from backends import postgis_dsn  # noqa: F401 - fixture
from conftest import TINY_EXPECTED, rewrite_geojson
from gridcover.cli import main
from leftovers import dead_owner, plant, unwritable_folder

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "gridcover.cli", *map(str, args)], capture_output=True, text=True)


def test_analyze_writes_every_output(tiny_dir, tmp_path):
    out = tmp_path / "out"
    result = _run("analyze", tiny_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "10 households" in result.stdout and "wrote" in result.stdout
    assert "read 1 streets" in result.stderr  # progress goes to stderr
    assert {p.name for p in out.iterdir()} == {"households.geojson", "grids.geojson", "coverage_issues.geojson", "h3_reach.geojson",
                                               "blindspots.geojson", "scorecard.json", "scorecard.csv", "report.html",
                                               "summary.json", "workspace.gpkg", "trend.json"}
    hh = gpd.read_file(out / "households.geojson")
    for column in ("building_id", "grid_id", "community_id", "street_id", "status", "address", "persons", "elderly_alone"):
        assert column in hh.columns
    got = {r.id: r.status for r in hh.itertuples()}
    assert got == {h: v[2] for h, v in TINY_EXPECTED.items()}
    assert hh.crs.to_epsg() == 4326
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status_total"] == summary["households"] == 10
    assert summary["coverage_issues"]["gap"]["count"] == 2
    assert summary["coverage_issues"]["overlap"]["households"] == 1
    assert {"load", "assign", "diagnose"} <= set(summary["timings_s"])
    layers = {row[0] for row in pyogrio.list_layers(out / "workspace.gpkg")}
    assert {"streets", "communities", "input_grids", "buildings", "input_households", "households", "grids", "coverage_issues"} <= layers


def test_grids_output_has_workload_and_special_group_columns(tiny_dir, tmp_path):
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    grids = gpd.read_file(tmp_path / "o" / "grids.geojson").set_index("id")
    assert grids.loc["G1", "households"] == 5 and grids.loc["G1", "persons"] == 9
    assert grids.loc["G1", "elderly_alone"] == 1 and grids.loc["G4", "mental_disorder"] == 1
    assert bool(grids.loc["G5", "unstaffed"])


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tiny_dir, tmp_path):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][6]["properties"].__setitem__("id", "H2"))
    out = tmp_path / "out"
    result = _run("analyze", tiny_dir, "--out", out)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "gridcover: error: households.geojson: feature 6 (id=H2), field 'id': duplicate id 'H2' (also feature 1); "
        "--skip-invalid would leave it out")
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_a_failed_run_leaves_the_previous_output_intact(tiny_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    before = (out / "summary.json").read_text(encoding="utf-8")
    (tiny_dir / "streets.geojson").write_text("not json", encoding="utf-8")
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 2
    assert (out / "summary.json").read_text(encoding="utf-8") == before


def test_an_interrupted_write_leaves_no_half_output(tiny_dir, tmp_path, monkeypatch):
    import gridcover.io.outputs as outputs

    calls = {"n": 0}
    real = outputs._write_gpkg_layer

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "_write_gpkg_layer", crash)
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 130
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_unknown_crs_option_is_a_clear_error(tiny_dir, tmp_path, capsys):
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "o"), "--crs", "gcj03"]) == 2
    assert capsys.readouterr().err.strip().endswith("gridcover: error: --crs: unknown coordinate system 'gcj03': give an EPSG code "
                                                    "(e.g. EPSG:4490 for CGCS2000), wgs84, cgcs2000, gcj02 or bd09")


def test_internal_errors_show_no_traceback(tiny_dir, tmp_path, monkeypatch, capsys):
    import gridcover.engines.single

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gridcover.engines.single, "analyze", boom)
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: disk on fire" in err and "Traceback" not in err


# ---- the user's files are sacred (gridcover/io/paths.py) -------------------------------------------------------

def _files(folder):
    """Every file under ``folder`` with its bytes: what must survive a refused run unchanged."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where, says", [
    ("{data}", "is the data folder"),
    ("{data}/", "is the data folder"),
    ("{data}/../tiny", "is the data folder"),
    ("{link}", "is the data folder"),
    ("{root}", "holds the data folder"),
    ("{data}/out", "is inside the data folder"),
    ("{link}/sub/out", "is inside the data folder"),
])
def test_an_out_that_is_inside_or_holds_the_data_is_refused_before_anything_runs(tiny_dir, tmp_path, where, says,
                                                                                  capsys):
    (tmp_path / "link").symlink_to(tiny_dir)
    before = _files(tmp_path)
    out = where.format(data=tiny_dir, link=tmp_path / "link", root=tmp_path)
    assert main(["analyze", str(tiny_dir), "--out", out]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()  # one line, no progress: nothing ran
    assert line.startswith("gridcover: error: --out ") and says in line and str(tiny_dir) in line
    assert _files(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["link", "tiny"]


def test_a_relative_out_naming_the_data_folder_is_refused(tiny_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "gridcover.cli", "analyze", "tiny", "--out", "."],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("gridcover: error: --out . holds the data folder tiny: replacing the output would "
                                     "delete it; choose a folder elsewhere")
    assert (tiny_dir / "households.geojson").is_file()


def test_an_out_folder_with_files_gridcover_did_not_write_is_not_wiped(tiny_dir, tmp_path):
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes", encoding="utf-8")
    result = _run("analyze", tiny_dir, "--out", mine)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"gridcover: error: --out {mine} holds files gridcover did not write (notes.txt); "
                                     "it is not replaced, nothing was changed: choose a new or empty folder, or a "
                                     "previous output of gridcover analyze")
    assert _files(mine) == {"notes.txt": b"my notes"}


def test_a_previous_output_is_replaced_but_not_when_the_user_added_a_file(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    (out).mkdir()  # an empty folder is fine
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    (out / "workspace.gpkg.lock").touch()  # what redraw apply and the server add: gridcover's own
    (out / "redraw_proposals.sqlite").touch()
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    (out / "my-map.qgz").write_bytes(b"a QGIS project")
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 2
    assert "holds files gridcover did not write (my-map.qgz)" in capsys.readouterr().err
    assert (out / "my-map.qgz").read_bytes() == b"a QGIS project" and (out / "summary.json").is_file()


def test_an_out_that_is_the_workspace_read_is_refused(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    before = _files(out)
    for where, says in ((out, "holds the data file"), (out / "again", "is inside the output folder")):
        assert main(["analyze", str(out / "workspace.gpkg"), "--out", str(where)]) == 2
        assert says in capsys.readouterr().err
    assert _files(out) == before


def test_an_out_under_a_file_is_refused_before_the_analysis(tiny_dir, tmp_path, capsys):
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "report.pdf" / "out")]) == 2
    assert capsys.readouterr().err.strip() == (f"gridcover: error: --out {tmp_path}/report.pdf/out: {tmp_path}/report.pdf is a "
                                     "file, not a folder")


def test_an_unwritable_out_folder_is_refused_before_the_analysis(tiny_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    with unwritable_folder(locked):
        result = _run("analyze", tiny_dir, "--out", locked / "city" / "out")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()  # no progress line: the analysis did not run
    assert line.startswith(f"gridcover: error: --out {locked}/city/out: cannot write in the folder {locked} (")
    assert line.endswith("); choose a folder you can write") and "internal error" not in line
    assert list(locked.iterdir()) == []


def test_the_leftovers_of_a_killed_run_are_removed_by_the_next_run_and_nothing_else(tiny_dir, tmp_path):
    from gridcover.io.paths import owner

    out, dead, alive = tmp_path / "out", dead_owner(), owner()
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    ours = [plant(tmp_path / f".out.tmp-{dead}-k2j4x9qz"), plant(tmp_path / f".out.old-{dead}-a8c0_d1e"),
            plant(tmp_path / f".out.parts-{dead}-zz0pqr7m")]
    foreign = [plant(tmp_path / ".out.tmp-mine"),                   # not a name gridcover makes
               plant(tmp_path / f"out.tmp-{dead}-k2j4x9qz"),         # not hidden
               plant(tmp_path / f".other.tmp-{dead}-k2j4x9qz"),      # beside another output
               plant(tmp_path / f".out.tmp-{alive}-k2j4x9qz"),       # its run is still going
               plant(tmp_path / f".out.backup-{dead}-k2j4x9qz"),     # not a kind gridcover makes
               plant(tmp_path / f".out.tmp-elsewhere-{dead.rsplit('-', 1)[1]}-k2j4x9qz")]  # another machine's
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    assert not any(p.exists() for p in ours)
    assert all((p / "households.geojson").stat().st_size == 1 << 20 for p in foreign)
    assert (out / "summary.json").is_file()


def test_a_previous_output_left_between_the_two_renames_comes_back(tiny_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 0
    before = _files(out)
    dead = dead_owner()
    out.rename(tmp_path / f".out.old-{dead}-q1w2e3r4")  # killed after moving the old output aside
    plant(tmp_path / f".out.tmp-{dead}-t5y6u7i8")        # and before moving the new one in
    (tiny_dir / "streets.geojson").write_text("not json", encoding="utf-8")
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 2  # the next run fails on its input
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny"]


def test_analyze_db_removes_the_scratch_folders_of_killed_runs(tiny_dir, tmp_path, postgis_dsn, monkeypatch):
    import tempfile

    from backends import drop_schema, new_schema

    scratch = tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    from gridcover.io.paths import owner

    dead = dead_owner()
    ours = plant(scratch / f"gridcover-analyze-{dead.rsplit('-', 1)[1]}-1764625000123456789")  # the name before
    ours2 = plant(scratch / f"gridcover-analyze-{dead}-9f8e7d6c")
    foreign = [plant(scratch / "gridcover-analyze-notes"), plant(scratch / f"gridcover-analyzer-{dead}-9f8e7d6c"),
               plant(scratch / f"gridcover-analyze-{owner()}-9f8e7d6c")]
    schema = new_schema()
    try:
        assert main(["analyze", str(tiny_dir), "--db", postgis_dsn, "--schema", schema, "--quiet"]) == 0
    finally:
        drop_schema(postgis_dsn, schema)
    assert not ours.exists() and not ours2.exists()
    assert all(p.is_dir() for p in foreign)
    assert sorted(p.name for p in scratch.iterdir()) == sorted(p.name for p in foreign)  # its own is gone too


def test_sites_refuses_to_write_into_the_data_folder_before_the_analysis(tiny_dir, capsys):
    before = _files(tiny_dir)
    assert main(["sites", str(tiny_dir), "--category", "elderly_daycare", "--out", str(tiny_dir)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()  # no progress: the analysis did not run
    assert line == (f"gridcover: error: --out {tiny_dir}/sites_elderly_daycare.geojson is inside the data folder "
                    f"{tiny_dir}: gridcover writes nothing into what it reads; choose a file outside it")
    assert _files(tiny_dir) == before
def _required_only(tmp_path):
    """The tiny district with only the fields the data model requires: no ur_code, footprints without floors,
    households without building_id, flags, address or visits (a register of points)."""
    from conftest import tiny_layers, write_layers

    layers = tiny_layers()
    layers["communities"] = layers["communities"][["id", "name", "street_id", "geometry"]]
    layers["grids"] = layers["grids"][["id", "name", "community_id", "geometry"]]
    layers["buildings"] = layers["buildings"][["id", "geometry"]]
    layers["households"] = layers["households"][["id", "persons", "geometry"]]
    return write_layers(layers, tmp_path / "required")


def test_a_folder_of_only_required_fields_is_analysed_reported_served_and_redrawn(tmp_path, capsys):
    import math

    import mapbox_vector_tile
    from fastapi.testclient import TestClient

    from api.app import create_app
    from geo.redraw import check_proposal
    from redraw_data import context_of
    from gridcover.store import open_workspace

    out = tmp_path / "out"
    assert main(["analyze", str(_required_only(tmp_path)), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "10 households: no_location 2" in captured.out  # H7 (building only, now without it) and H8
    assert "warning: grids.geojson: no 'worker_name' column: read as empty in every row" in captured.err
    assert "社区" in (out / "report.html").read_text(encoding="utf-8")  # the report no longer needs ur_code
    ws = open_workspace(out)
    client = TestClient(create_app(ws))
    for collection in ("communities", "grids", "buildings", "coverage_issues"):
        r = client.get(f"/collections/{collection}/items", headers={"Accept": "application/geo+json"})
        assert r.status_code == 200, (collection, r.text)
        assert r.json()["features"]
    lon, lat = ws.read("grids").geometry.iloc[0].representative_point().coords[0]
    z = 15
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    for layer in ("grids", "communities", "buildings"):
        r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        assert r.status_code == 200, (layer, r.text)
    assert mapbox_vector_tile.decode(client.get(f"/tiles/grids/{z}/{x}/{y}.mvt").content)["grids"]["features"]
    ctx = context_of(ws)
    report = check_proposal(ctx, ctx.grids_of({"C1"}).reset_index(drop=True))
    assert report["moved"]["households"] == 0 and sum(g["households"] for g in report["grids"]) == 5
    capsys.readouterr()
    assert main(["lookup", str(out), "--lon", str(lon), "--lat", str(lat)]) == 0
    assert json.loads(capsys.readouterr().out)["grid_id"] == ws.read("grids")["id"].iloc[0]


def test_skip_invalid_writes_the_rejects_counts_them_and_says_so(tiny_dir, tmp_path):
    def buildings(doc):
        doc["features"][0]["geometry"]["coordinates"] = [[[104.0, 30.6], [104.001, 30.6], [104.0, 30.6]]]
    rewrite_geojson(tiny_dir / "buildings.geojson", buildings)
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][3]["properties"].__setitem__("persons", "x"))
    out = tmp_path / "out"
    refused = _run("analyze", tiny_dir, "--out", out)
    assert refused.returncode == 2 and not out.exists()
    assert refused.stderr.strip().splitlines()[-1].endswith("; --skip-invalid would leave it out")
    result = _run("analyze", tiny_dir, "--out", out, "--skip-invalid", "--quiet")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()
    assert last[-2] == ("left out 2 invalid features (1 buildings, 1 households), listed in rejects.geojson; "
                        "1 references to missing features dropped")
    assert last[-1].startswith(f"wrote {out}")
    rejects = gpd.read_file(out / "rejects.geojson")
    assert sorted(zip(rejects["layer"], rejects["id"], rejects["field"])) == [("buildings", "B1", "geometry"),
                                                                             ("households", "H4", "persons")]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rejected"] == {"buildings": 1, "households": 1}
    assert summary["references_cleared"] == {"households.building_id": 1}
    # H7 was recorded in B1: it lost its building, and is still counted under a status (no point: no_location)
    assert summary["households"] == summary["status_total"] == 9
    hh = gpd.read_file(out / "households.geojson").set_index("id")
    assert hh.loc["H7", "status"] == "no_location"
    assert hh.loc["H1", "status"] in ("no_building", "snapped_to_building")  # its footprint B1 was left out
    assert "rejects.geojson" in summary["outputs"]


def test_skip_invalid_on_clean_data_writes_an_empty_rejects_file(tiny_dir, tmp_path):
    out = tmp_path / "out"
    result = _run("analyze", tiny_dir, "--out", out, "--skip-invalid", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2] == "left out 0 invalid features"
    assert len(gpd.read_file(out / "rejects.geojson")) == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["rejected"] == {}


def test_communities_without_ur_code_get_their_report(tiny_dir, tmp_path):
    # the report used to crash after the whole run: "The field ur_code is not available in the data"
    def drop(doc):
        for f in doc["features"]:
            f["properties"].pop("ur_code")
    rewrite_geojson(tiny_dir / "communities.geojson", drop)
    out = tmp_path / "out"
    result = _run("analyze", tiny_dir, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "communities / fringe" in html and "城乡分类代码" not in html  # the layer is there, without the code


# ---- real data as users have it (tests/data, rebuilt by tests/data/make_fixtures.py) ----------------

RAW = Path(__file__).resolve().parent / "data" / "chengdu_raw"
VARIANTS = RAW.parent / "variants"


def _raw_copy(tmp_path) -> Path:
    folder = tmp_path / "chengdu_raw"
    shutil.copytree(RAW, folder)
    return folder


def test_the_raw_osm_and_spreadsheet_folder_stops_at_its_broken_footprint_and_names_the_flag(tmp_path):
    result = _run("analyze", _raw_copy(tmp_path), "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        "gridcover: error: buildings.geojson: feature 111 (id=way/314875622), field 'geometry': invalid polygon that "
        "cannot be repaired (Too few points in geometry component[104.055 30.6541]); --skip-invalid would leave it out")


def test_the_raw_folder_with_skip_invalid_is_analysed_and_nothing_is_lost(tmp_path):
    out = tmp_path / "out"
    result = _run("analyze", _raw_copy(tmp_path), "--out", out, "--quiet", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    for line in ("warning: grids.shp: column 'community_' read as 'community_id' (Shapefile field names are cut to 10 "
                 "characters)",
                 "warning: buildings.geojson: no 'floors' column: read as empty in every row",
                 "warning: households.csv: read as GB18030 text (not UTF-8)",
                 "warning: buildings.geojson: feature 3 (id=relation/7777957): invalid polygon (Self-intersection"):
        assert line in err
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("644 households: no_location 15")
    assert lines[-2] == ("left out 1 invalid feature (1 buildings), listed in rejects.geojson; 5 references to missing "
                         "features dropped")
    rows = pd.read_csv(RAW / "households.csv", encoding="gb18030", dtype=str)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["households"] == summary["status_total"] == len(rows) == 644  # every row of the sheet counted
    assert summary["rejected"] == {"buildings": 1}
    assert summary["references_cleared"] == {"households.building_id": 5}
    rejects = gpd.read_file(out / "rejects.geojson")
    assert rejects[["layer", "id", "field"]].values.tolist() == [["buildings", "way/314875622", "geometry"]]
    assert "@id" in rejects.columns and rejects["building"].iloc[0] == "house"  # the original OSM properties
    hh = gpd.read_file(out / "households.geojson").set_index("id")
    assert hh.loc["HH0373", "status"] in ("no_building", "snapped_to_building", "no_location")
    assert hh.loc["HH0002", "address"].startswith("汪家拐街道") and hh["elderly_alone"].any()  # 是/否 read


def test_the_register_without_ur_code_and_the_points_only_households_shapefile(tmp_path):
    folder = _raw_copy(tmp_path)
    (folder / "communities.gpkg").unlink()
    shutil.copy(VARIANTS / "communities_no_ur_code.geojson", folder / "communities.geojson")
    (folder / "households.csv").unlink()
    for part in VARIANTS.glob("households.*"):
        shutil.copy(part, folder / part.name)
    config = (folder / "gridcover.toml").read_text(encoding="utf-8")
    config = config[:config.index("[crs]")] + config[config.index("[columns.buildings]"):]  # data-model names, WGS-84
    (folder / "gridcover.toml").write_text(config, encoding="utf-8")
    out = tmp_path / "out"
    result = _run("analyze", folder, "--out", out, "--quiet", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert ("warning: households.shp: column 'building_i' read as 'building_id' (Shapefile field names are cut to 10 "
            "characters)") in result.stderr
    assert "warning: households.shp: column 'elderly_al' read as 'elderly_alone'" in result.stderr
    assert result.stdout.startswith("150 households:")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert all(c["ur_code"] is None for c in summary["per_community"])
    assert (out / "report.html").stat().st_size > 0


def test_the_register_of_community_points_is_not_a_communities_layer(tmp_path):
    folder = _raw_copy(tmp_path)
    (folder / "communities.gpkg").unlink()
    shutil.copy(VARIANTS / "communities_register.csv", folder / "communities.csv")
    result = _run("analyze", folder, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "gridcover: error: communities.csv: layer 'communities' holds polygons: CSV is read for point layers only")


def test_the_dask_engine_refuses_what_it_does_not_do_yet(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["analyze", str(RAW), "--out", out, "--engine", "dask", "--skip-invalid"]) == 2
    assert capsys.readouterr().err.strip() == "gridcover: error: --skip-invalid works with --engine single only"
    assert main(["analyze", str(RAW), "--out", out, "--engine", "dask"]) == 2
    assert capsys.readouterr().err.strip() == "gridcover: error: [columns] of gridcover.toml works with --engine single only"
    assert not (tmp_path / "out").exists()


def test_estates_and_areas_with_only_their_required_fields_get_their_report(tiny_dir, tmp_path):
    import shapely

    from conftest import write_layers

    box = shapely.box(103.999, 30.645, 104.003, 30.66)
    write_layers({"estates": gpd.GeoDataFrame({"id": ["E1"], "name": ["锦华苑"]}, geometry=[box], crs=4326),
                  "areas": gpd.GeoDataFrame({"id": ["A1"], "kind": ["old_estate"]}, geometry=[box], crs=4326)}, tiny_dir)
    out = tmp_path / "out"
    result = _run("analyze", tiny_dir, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    report = (out / "report.html").read_text(encoding="utf-8")
    for name in ("小区（老旧小区橙色）", "estates (old ones orange)"):  # the map layer's name, in both languages
        assert json.dumps(name)[1:-1] in report, name


def test_skip_invalid_into_postgis_alone_is_refused_before_the_run(tiny_dir, capsys):
    import os

    url = os.environ.get("GRIDCOVER_TEST_PG")
    if not url:
        pytest.skip("GRIDCOVER_TEST_PG not set")
    assert main(["analyze", str(tiny_dir), "--db", url, "--schema", "intake_refused", "--skip-invalid", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == ("gridcover: error: --skip-invalid with --db needs --out OUT_DIR too: "
                                               "rejects.geojson is written there")


# ---- no edit lost: a new analysis does not silently discard grid changes -------------------------------

def test_a_new_analysis_over_a_workspace_with_grid_changes_is_refused_until_asked(tmp_path, capsys):
    from tools.synthetic import make_district, write_district

    data, out, proposal = tmp_path / "data", tmp_path / "out", tmp_path / "p.geojson"
    write_district(make_district(households=3000, buildings=300, grids=8, grids_per_community=4, seed=1), data,
                   fmt="geojson")
    assert main(["analyze", str(data), "--out", str(out), "--quiet"]) == 0
    assert main(["analyze", str(data), "--out", str(out), "--quiet"]) == 0  # nothing changed yet: replaced
    assert main(["redraw", "propose", str(out), "--community", "C1", "--out", str(proposal)]) == 0
    assert main(["redraw", "apply", str(out), str(proposal), "--author", "张三", "--reason", "调整"]) == 0
    capsys.readouterr()
    before = (out / "workspace.gpkg").read_bytes()
    assert main(["analyze", str(data), "--out", str(out), "--quiet"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "holds 1 grid change made with 'gridcover redraw'" in line and "by 张三" in line
    assert "--discard-grid-edits" in line
    assert (out / "workspace.gpkg").read_bytes() == before
    assert main(["analyze", str(data), "--out", str(out), "--quiet", "--discard-grid-edits"]) == 0
    assert (out / "workspace.gpkg").read_bytes() != before


# ---- visit records: --as-of, --window-weeks, the last lines, the rejects ---------------------------------

def _with_visits(folder, table=None):
    from conftest import tiny_visits

    (tiny_visits() if table is None else table).to_csv(folder / "visits.csv", index=False)
    return folder


def test_analyze_judges_the_visit_records_over_the_window_and_says_so(tiny_dir, tmp_path):
    out = tmp_path / "out"
    result = _run("analyze", _with_visits(tiny_dir), "--out", out, "--as-of", "2026-11-30", "--window-weeks", "5",
                  "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-3] == ("visits (5 weeks to 2026-11-30): 4 of 9 periods kept (44.4%) by 3 special-group households; "
                         "1 missed the last period")
    assert lines[-2] == "0 special-group households with no visit record, counted as never visited"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["visits"]["window_weeks"] == 5 and summary["input"]["visits"] == 6
    hh = gpd.read_file(out / "households.geojson").set_index("id")
    assert hh.loc["H2", "periods_missed"] == 1 and str(hh.loc["H2", "last_visit"])[:10] == "2026-11-24"
    grids = gpd.read_file(out / "grids.geojson").set_index("id")
    assert grids.loc["G2", "visits_kept_share"] == 0.75
    longer = _run("analyze", tiny_dir, "--out", out, "--as-of", "2026-11-30", "--quiet")  # 12 weeks by default
    assert "visits (12 weeks to 2026-11-30): 4 of 24 periods kept" in longer.stdout


def test_a_window_of_no_weeks_is_refused(tiny_dir, tmp_path):
    result = _run("analyze", tiny_dir, "--out", tmp_path / "out", "--window-weeks", "0")
    assert result.returncode == 2 and "--window-weeks: must be a whole number of weeks, at least 1, got '0'" in result.stderr


def test_a_bad_visit_record_exits_2_naming_it_and_skip_invalid_counts_it(tiny_dir, tmp_path):
    from conftest import tiny_visits

    table = tiny_visits()
    table.loc[4, "visited_at"] = "20/11/2026"
    _with_visits(tiny_dir, table)
    out = tmp_path / "out"
    refused = _run("analyze", tiny_dir, "--out", out)
    assert refused.returncode == 2 and not out.exists()
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "gridcover: error: visits.csv: feature 4, field 'visited_at': not a date or date-time")
    result = _run("analyze", tiny_dir, "--out", out, "--skip-invalid", "--quiet", "--as-of", "2026-11-30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2] == "left out 1 invalid feature (1 visits), listed in rejects.geojson"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rejected"] == {"visits": 1} and summary["visits"]["records"] == 5
    rejects = gpd.read_file(out / "rejects.geojson")
    assert rejects[["layer", "feature", "field"]].values.tolist() == [["visits", 4, "visited_at"]]



def _options_without_help(parser, path):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options_without_help(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            yield f"{path}: {'/'.join(action.option_strings) or action.dest}"


def test_every_option_and_argument_of_every_command_has_a_help_text():
    from gridcover.cli import build_parser

    assert list(_options_without_help(build_parser(), "gridcover")) == []


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"gridcover {version('gridcover')}"


def test_sites_takes_a_chinese_category_name_and_names_the_sites(tiny_dir, tmp_path, capsys):
    out = tmp_path / "sites"
    assert main(["sites", str(tiny_dir), "--category", "日间照料中心", "--k", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("elderly_daycare (老年人日间照料中心): 1 sites")
    report = json.loads((out / "sites_elderly_daycare.json").read_text(encoding="utf-8"))
    site = report["sites"][0]
    assert "x" not in site and -180 <= site["lon"] <= 180 and 30 < site["lat"] < 60  # WGS-84, not UTM metres
    assert site["building_name"] and f"{site['building_name']}" in text and f"{site['lon']:.6f}" in text
    feature = json.loads((out / "sites_elderly_daycare.geojson").read_text(encoding="utf-8"))["features"][0]
    assert feature["geometry"]["coordinates"] == pytest.approx([site["lon"], site["lat"]])


def test_sites_refuses_an_ambiguous_category_name(tiny_dir, tmp_path, capsys):
    assert main(["sites", str(tiny_dir), "--category", "运动场地", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fits 3 categories" in err and "small_sports (小型多功能运动场地)" in err and "Traceback" not in err


def test_the_readme_first_command_prints_its_progress_with_a_case_log_and_no_stored_cases(tmp_path):
    """The sample holds a case log and a fresh --out holds no stored case: the progress lines must not crash."""
    out = tmp_path / "sample"
    result = _run("analyze", ROOT / "sample_geojson", "--out", out, "--as-of", "2026-11-30")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "cases stored in the workspace" not in result.stderr  # nothing stored: nothing said about it
    assert (out / "cases.geojson").is_file() and (out / "report.html").is_file()
