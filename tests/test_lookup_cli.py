"""``gridcover lookup``: JSON on stdout, one-line errors with exit status 2."""

from __future__ import annotations

import csv
import io
import json

import pytest

from geo.crs import wgs84_to_gcj02
from gridcover.cli import main
from lookup_data import write_workspace, xy


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return write_workspace(tmp_path_factory.mktemp("cli") / "ws")


def test_lookup_a_gcj02_coordinate(ws, capsys):
    lon, lat = wgs84_to_gcj02(*xy(0.3, 3.9))
    assert main(["lookup", str(ws), "--lon", str(float(lon)), "--lat", str(float(lat)), "--crs", "gcj02"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["grid_id"], out["worker_name"], out["covered"]) == ("G3", "李娜", True)


def test_lookup_an_address_with_as_of(ws, capsys):
    assert main(["lookup", str(ws), "--address", "锦华苑五号楼", "--as-of", "2024-05-01"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["building_id"] == "B4" and out["grid_id"] == "G3" and out["as_of"] == "2024-05-01"


def test_lookup_a_csv_batch_in_file_order(ws, tmp_path, capsys):
    csv = tmp_path / "calls.csv"
    rows = [xy(1, 1), xy(12, 0.5), xy(3, 3)]
    csv.write_text("lon,lat\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["grid_id"] for r in out["results"]] == ["G2", None, "G4"]
    assert out["results"][1]["covered"] is False


@pytest.mark.parametrize("args, words", [
    (["--lon", "104"], "--lat"),
    (["--lon", "104", "--lat", "30.5", "--crs", "EPSG:3857"], "crs"),
    (["--batch", "missing.csv"], "missing.csv"),
    ([], "--lon/--lat, --address or --batch"),
    (["--lon", "104", "--lat", "30.5", "--as-of", "2024-13-01"], "as_of"),
])
def test_errors_are_one_line_and_exit_2(ws, capsys, args, words):
    assert main(["lookup", str(ws), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def test_a_csv_without_the_right_columns_names_the_file(ws, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n", encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "lon,lat or address" in err


GOOD = "{},{}".format(*xy(1, 1))


@pytest.mark.parametrize("text, words", [
    (f"lon,lat\n{GOOD}\n104.001\n", "row 3: 1 cell, but the header has 2"),
    (f"lon,lat\n{GOOD}\n{GOOD},3\n", "row 3: 3 cells, but the header has 2"),
    (f"lon,lat,lon\n{GOOD},104.1\n", "row 1: the header names 'lon' twice"),
    (f'lon,lat\n{GOOD}\n"104.001,30.5\n{GOOD}\n', "row 3: a quote (\") opened in this row is never closed"),
    (f"lon,lat\n{'1' * 5000},30.5\n", "row 2, field 'lon': not a number: '11111111111111111111'… (5,000 characters)"),
    (f"lon,lat\n{GOOD}\nNaN,30.5\n104.001,-inf\n", "row 3, field 'lon': not a finite number: 'NaN'; "
                                                     "row 4, field 'lat': not a finite number: '-inf'"),
])
def test_a_malformed_batch_file_names_the_file_and_its_spreadsheet_rows(ws, tmp_path, capsys, text, words):
    calls = tmp_path / "calls.csv"
    calls.write_text(text, encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(calls)]) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert len(err.splitlines()) == 1 and str(calls) in err and words in err and len(err) < 600
    assert out.out == ""  # nothing of a bad batch is answered


def test_several_bad_rows_are_reported_together(ws, tmp_path, capsys):
    calls = tmp_path / "calls.csv"
    calls.write_text(f"lon,lat\n{GOOD}\neast,30.5\n{GOOD}\n\n{GOOD}\n104.001\n{GOOD}\n\n\n", encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(calls)]) == 2
    err = capsys.readouterr().err
    assert "3 problems" in err and "header is row 1" in err
    assert "row 3, field 'lon': not a number: 'east'; row 5: the row is empty" in err and "row 7: 1 cell" in err


def test_a_json_batch_nested_50000_deep_is_refused(ws, tmp_path, capsys):
    calls = tmp_path / "calls.json"
    calls.write_text('{"items": ' + "[" * 50_000 + "]" * 50_000 + "}", encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(calls)]) == 2
    err = capsys.readouterr().err
    assert "calls.json" in err and "item 0: nested too deeply" in err and "Traceback" not in err


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_a_spreadsheet_csv_in_gb18030_or_with_a_bom_is_read(ws, tmp_path, capsys, encoding):
    calls = tmp_path / "calls.csv"
    calls.write_text("address,lon,lat\n锦华苑5栋,,\n翠苑A座,,\n,{},{}\n".format(*xy(1.8, 1.8)), encoding=encoding)
    assert main(["lookup", str(ws), "--batch", str(calls)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["building_id"] for r in out["results"]] == ["B4", "B5", None]
    assert out["results"][2]["grid_id"] == "G2"


def test_a_batch_as_csv_output(ws, tmp_path, capsys):
    calls = tmp_path / "calls.csv"
    rows = [xy(1, 1), xy(12, 0.5), xy(3, 3)]
    calls.write_text("lon,lat\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")
    assert main(["lookup", str(ws), "--batch", str(calls), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["grid_id"] for r in table] == ["G2", "", "G4"] and table[1]["nearest_grid_id"] == "G5"


def test_a_missing_workspace_says_how_to_make_one(tmp_path, capsys):
    assert main(["lookup", str(tmp_path / "none"), "--lon", "104", "--lat", "30.5"]) == 2
    assert "gridcover analyze" in capsys.readouterr().err


# ---------------------------------------------------------------- the sample district, as a hotline sees it
def _ask(out, capsys, *args):
    assert main(["lookup", str(out), *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_sample_address_is_answered_with_names(sample_analysis, capsys):
    r = _ask(sample_analysis[1], capsys, "--address", "西珠市街12号蓉馨华庭2栋")  # 西珠市街 is a street, not a city
    assert (r["building_id"], r["building_name"], r["estate_name"], r["problem"]) == ("B00013", "2栋", "蓉馨华庭", None)
    assert (r["community_name"], r["street_name"]) == ("德盛路社区", "太升路街道")
    assert r["grid_name"] and r["grid_code"] and r["worker_name"] and r["worker_phone"]


def test_a_building_hongcuifu_lacks_is_answered_for_the_estate_with_a_warning(sample_analysis, capsys):
    r = _ask(sample_analysis[1], capsys, "--address", "宏翠府9栋")
    assert (r["method"], r["estate_name"], r["building_id"], r["problem"]) == \
        ("address_estate", "宏翠府", None, "building_not_found")
    assert r["score"] < 1.0 and r["message"] == "宏翠府没有9栋，已按小区回答（该小区有：1栋、2栋、3栋）"


def test_a_sample_address_in_the_grid_gap_gets_the_nearest_grid(sample_analysis, capsys):
    r = _ask(sample_analysis[1], capsys, "--address", "小关庙社区一组1号")  # a village house no grid covers
    assert (r["covered"], r["building_id"], r["problem"]) == (False, "B00180", "outside_grids")
    assert r["nearest_grid_id"] and r["nearest_grid_name"] in r["message"] and r["distance_m"] > 0


def test_a_street_named_with_shi_is_read_in_the_workspace_city(sample_analysis, capsys):
    r = _ask(sample_analysis[1], capsys, "--address", "东珠市街27号")  # was "the address is in 东珠市"
    assert (r["method"], r["estate_name"], r["problem"]) == ("address_estate", "馨翠大厦", None)


def test_swapped_lat_and_lon_are_one_clear_line(sample_analysis, capsys):
    assert main(["lookup", str(sample_analysis[1]), "--lon", "30.6595", "--lat", "104.0657"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lat and lon look swapped" in err
    assert "np.float64" not in err and "lat 104.0657" in err and "lon 30.6595" in err


def _cli(folder, *args, check_pandas=False):
    """``gridcover lookup`` in a fresh process, as a user runs it: its answer, and whether it imported pandas."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import json, sys; from gridcover.cli import main; code = main(sys.argv[1:]); "
            "print(json.dumps({'pandas': 'pandas' in sys.modules}), file=sys.stderr); sys.exit(code)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, "lookup", str(folder), *args], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": f"{root}:{root / 'tests'}"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])["pandas"]


def test_a_second_lookup_loads_the_saved_index_and_no_pandas(tmp_path):
    from lookup_data import write_workspace

    folder = write_workspace(tmp_path / "ws")
    lon, lat = xy(0.3, 3.9)
    first, _ = _cli(folder, "--lon", repr(lon), "--lat", repr(lat))
    assert (folder / "lookup_index.npz").is_file()
    second, pandas = _cli(folder, "--lon", repr(lon), "--lat", repr(lat))
    assert second == first and first["grid_id"] == "G3" and not pandas
    address, _ = _cli(folder, "--address", "锦华苑五号楼")
    assert address["building_id"] == "B4"


def test_a_lookup_after_the_workspace_is_replaced_answers_with_the_new_grids(tmp_path):
    import os

    from lookup_data import layers, write_workspace

    folder = write_workspace(tmp_path / "ws")
    lon, lat = xy(0.3, 3.9)
    assert _cli(folder, "--lon", repr(lon), "--lat", repr(lat))[0]["worker_name"] == "李娜"
    frames = layers()
    frames["grids"].loc[frames["grids"]["id"] == "G3", "worker_name"] = "周杰"
    new = write_workspace(tmp_path / "new", frames)
    os.replace(new / "workspace.gpkg", folder / "workspace.gpkg")  # what a new analysis into the folder does
    assert _cli(folder, "--lon", repr(lon), "--lat", repr(lat))[0]["worker_name"] == "周杰"
