"""The gridcover command as a user runs it: outputs, exit codes, messages, atomic writes."""

import json
import subprocess
import sys

import geopandas as gpd
import pyogrio
import pytest

from conftest import TINY_EXPECTED, rewrite_geojson
from gridcover.cli import main


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
                                               "summary.json", "workspace.gpkg"}
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
        "gridcover: error: households.geojson: feature 6 (id=H2), field 'id': duplicate id 'H2' (also feature 1)")
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
    import geo.report as report

    calls = {"n": 0}
    real = report._write_gpkg_layer

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "_write_gpkg_layer", crash)
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--quiet"]) == 130
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_unknown_crs_option_is_a_clear_error(tiny_dir, tmp_path, capsys):
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "o"), "--crs", "gcj03"]) == 2
    assert capsys.readouterr().err.strip().endswith("gridcover: error: --crs: unknown coordinate system 'gcj03': give an EPSG code "
                                                    "(e.g. EPSG:4490 for CGCS2000), wgs84, cgcs2000, gcj02 or bd09")


def test_internal_errors_show_no_traceback(tiny_dir, tmp_path, monkeypatch, capsys):
    import geo.pipeline

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(geo.pipeline, "analyze", boom)
    assert main(["analyze", str(tiny_dir), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: disk on fire" in err and "Traceback" not in err
