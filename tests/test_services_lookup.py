"""The lookup service, as the command line and the HTTP app call it: answers, an index kept until a new
version, and the grids in force on a date."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from geo.errors import InputError
from gridcover.services.lookup import LookupService, parse_as_of
from gridcover.store import open_workspace
from lookup_data import write_workspace, xy


@pytest.fixture
def service(tmp_path):
    return LookupService(open_workspace(write_workspace(tmp_path / "ws")))


def test_a_point_is_answered_with_its_grid_and_worker(service):
    lon, lat = xy(0.3, 3.9)
    record = service.lookup(lon=[lon], lat=[lat])
    assert (record["grid_id"], record["worker_name"], record["covered"]) == ("G3", "李娜", True)
    assert "as_of" not in record
    assert service.lookup(address="锦华苑五号楼")["building_id"] == "B4"


def test_the_index_is_built_once_and_again_after_a_new_version(service):
    assert not service.has_index()
    first = service.get_index()
    assert service.has_index() and service.get_index() is first
    ws = service.workspace
    grids = ws.read("grids")
    grids.loc[grids["id"] == "G3", "worker_name"] = "新网格员"
    ws.commit_grids(lambda current: (grids, {"grids": grids}, None), author="王芳", reason="test",
                    communities=sorted(set(grids.loc[grids["id"] == "G3", "community_id"])))
    assert not service.has_index()
    lon, lat = xy(0.3, 3.9)
    record = service.lookup(lon=[lon], lat=[lat])
    assert (record["worker_name"], record["version"]) == ("新网格员", 2)
    assert service.get_index() is not first


def test_as_of_answers_with_the_grids_in_force_and_says_which(service):
    lon, lat = xy(1, 1)
    record = service.lookup(lon=[lon], lat=[lat], as_of=date(2025, 1, 1))
    assert record["as_of"] == "2025-01-01" and "first recorded" in record["as_of_note"] and record["version"] == 1
    assert parse_as_of("") is None
    with pytest.raises(InputError, match="as_of"):
        parse_as_of("yesterday")


def test_a_batch_is_answered_in_order(service):
    rows = [xy(1, 1), xy(12, 0.5), xy(3, 3)]
    body = io.BytesIO(("lon,lat\n" + "".join(f"{a},{b}\n" for a, b in rows)).encode())
    plan, pieces = service.run_batch(body, kind="csv")
    answer = json.loads("".join(pieces))
    assert plan.count == answer["count"] == 3
    assert [r["grid_id"] for r in answer["results"]] == ["G2", None, "G4"]
