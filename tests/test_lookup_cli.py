"""``gridcover lookup``: JSON on stdout, one-line errors with exit status 2."""

from __future__ import annotations

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


def test_a_missing_workspace_says_how_to_make_one(tmp_path, capsys):
    assert main(["lookup", str(tmp_path / "none"), "--lon", "104", "--lat", "30.5"]) == 2
    assert "gridcover analyze" in capsys.readouterr().err
