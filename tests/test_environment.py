"""The environment variables, read once at the door: what each says, and that the doors hand it down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.app import create_app
from geo.crs import wgs84_to_gcj02
from gridcover.cli import main
from gridcover.environment import VARIABLES, Environment
from gridcover.store import open_workspace
from lookup_data import write_workspace, xy


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return write_workspace(tmp_path_factory.mktemp("env") / "ws")


def test_each_variable_fills_its_field_and_an_unset_one_is_none():
    env = Environment.from_os({"GRIDCOVER_CITY": "成都市", "GRIDCOVER_WORKSPACE": "out/city",
                               "GRIDCOVER_STATE_DIR": "/var/lib/gridcover", "GRIDCOVER_DEBUG": "1", "HOME": "/root"})
    assert env == Environment(city="成都市", workspace="out/city", state_dir=Path("/var/lib/gridcover"), debug=True)
    assert Environment.from_os({}) == Environment(city=None, workspace=None, state_dir=None, debug=False)
    assert set(VARIABLES.values()) == {"city", "workspace", "state_dir", "debug"}


def test_an_empty_city_state_dir_or_debug_counts_as_unset():
    env = Environment.from_os({"GRIDCOVER_CITY": "", "GRIDCOVER_STATE_DIR": "", "GRIDCOVER_DEBUG": ""})
    assert (env.city, env.state_dir, env.debug) == (None, None, False)


def test_the_environment_cannot_be_changed_once_read():
    with pytest.raises(AttributeError):
        Environment().city = "北京市"


def test_the_app_reads_the_city_once_when_made_and_hands_it_to_the_lookup(ws, monkeypatch):
    monkeypatch.setenv("GRIDCOVER_CITY", "成都市")
    app = create_app(open_workspace(ws))
    monkeypatch.setenv("GRIDCOVER_CITY", "北京市")  # read at the door: a later change does not reach the app
    assert app.state.lookup.city == "成都市"
    given = create_app(open_workspace(ws), environment=Environment(city="重庆市"))
    assert given.state.lookup.city == "重庆市"


def test_lookup_without_a_workspace_uses_gridcover_workspace(ws, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCOVER_WORKSPACE", str(ws))
    lon, lat = wgs84_to_gcj02(*xy(0.3, 3.9))
    assert main(["lookup", "--lon", str(float(lon)), "--lat", str(float(lat)), "--crs", "gcj02"]) == 0
    assert json.loads(capsys.readouterr().out)["grid_id"] == "G3"


def test_lookup_names_the_workspace_gridcover_workspace_points_to_when_there_is_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCOVER_WORKSPACE", str(tmp_path / "nowhere"))
    assert main(["lookup", "--lon", "104.0", "--lat", "30.6"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "\n" not in err.strip()
