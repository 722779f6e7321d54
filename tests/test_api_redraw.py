"""HTTP redraw: what a street office sees from /grids/proposals, /grids/propose, /grids/versions."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from api.access import load_keys
from api.app import create_app
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from redraw_data import meanwhile, synthetic_workspace

OFFICE = {"X-API-Key": "k-office"}
OTHER = {"X-API-Key": "k-other"}
ADMIN = {"X-API-Key": "k-admin"}


@pytest.fixture
def client(tmp_path, backend):
    folder = synthetic_workspace(tmp_path)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-office": {"role": "street_office", "streets": ["S1"], "name": "督院街"},
                                "k-other": {"role": "street_office", "streets": ["S9"]},
                                "k-admin": {"role": "admin", "name": "区网格中心"},
                                "k-hotline": {"role": "lookup"}}), encoding="utf-8")
    return TestClient(create_app(backend.open(folder), keys=load_keys(keys)))


def _grids(client, community="C1"):
    doc = client.get("/grids/versions/1", headers=OFFICE).json()
    doc["features"] = [f for f in doc["features"] if f["properties"]["community_id"] == community]
    doc.pop("version")
    return doc


def test_checking_needs_a_street_office_key_for_that_street(client):
    doc = _grids(client)
    assert client.post("/grids/proposals/check", json=doc).status_code == 401
    assert client.post("/grids/proposals/check", json=doc, headers={"X-API-Key": "k-hotline"}).status_code == 403
    r = client.post("/grids/proposals/check", json=doc, headers=OTHER)
    assert r.status_code == 403 and "C1" in r.json()["description"]


def test_a_list_of_moves_is_checked_and_the_moved_grids_come_back(client):
    cur = _grids(client)
    target = cur["features"][1]["properties"]["id"]
    r = client.post("/grids/proposals/check", headers=OFFICE,
                    json={"moves": [{"estate_id": "E01", "to": target}]})
    assert r.status_code == 200
    body = r.json()
    assert body["grids"]["type"] == "FeatureCollection"
    assert body["check"]["moved"]["households"] >= 0 and "valid" in body["check"]


def test_an_invalid_proposal_is_saved_as_a_draft_but_not_applied(client):
    doc = _grids(client)
    doc["features"] = doc["features"][:-1]  # one grid left out: a gap
    saved = client.post("/grids/proposals", headers=OFFICE, json=doc).json()
    assert saved["status"] == "draft" and not saved["applicable"] and saved["check"]["gaps"]
    r = client.post(f"/grids/proposals/{saved['id']}/apply", params={"reason": "试"}, headers=OFFICE)
    assert r.status_code == 400 and "not valid" in r.json()["description"]
    assert [p["id"] for p in client.get("/grids/proposals", headers=OFFICE).json()["proposals"]] == [saved["id"]]


def test_apply_makes_a_new_version_lookups_switch_and_a_second_editor_gets_409(client):
    p1 = client.post("/grids/propose", headers=OFFICE, json={"community": "C1", "target": "300-500"}).json()
    p2 = client.post("/grids/proposals", headers=OFFICE, json=_grids(client)).json()
    r = client.post(f"/grids/proposals/{p1['id']}/apply", params={"reason": "均衡工作量"}, headers=OFFICE)
    assert r.status_code == 200, r.text
    assert r.json()["version"]["version"] == 2 and r.json()["version"]["author"] == "督院街"
    versions = client.get("/grids/versions", headers=OFFICE).json()
    assert versions["current"] == 2 and [v["reason"] for v in versions["versions"]] == ["grids as analysed", "均衡工作量"]
    r = client.post(f"/grids/proposals/{p2['id']}/apply", params={"reason": "另一个方案"}, headers=OFFICE)
    assert r.status_code == 409 and "conflict" in r.json()["description"]
    lon, lat = 104.0005, 30.6005  # inside the district's first block
    hotline = {"X-API-Key": "k-hotline"}
    assert client.get("/lookup", params={"lon": lon, "lat": lat}, headers=hotline).json()["version"] == 2
    today = date.today().isoformat()
    assert client.get("/grids/as_of", params={"date": today}, headers={"X-API-Key": "k-hotline"}).json()[
        "version"]["version"] == 2
    diff = client.get("/grids/compare", params={"from": 1, "to": 2}, headers=OFFICE).json()
    assert diff["from_version"] == 1 and diff["moved"]["households"] == p1["check"]["moved"]["households"]


def test_only_an_admin_restores(client):
    p1 = client.post("/grids/propose", headers=OFFICE, json={"community": "C1"}).json()
    client.post(f"/grids/proposals/{p1['id']}/apply", params={"reason": "x"}, headers=OFFICE)
    assert client.post("/grids/versions/1/restore", params={"reason": "回退"}, headers=OFFICE).status_code == 403
    r = client.post("/grids/versions/1/restore", params={"reason": "回退"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["version"]["version"] == 3


def test_an_apply_overtaken_by_another_community_keeps_it_and_a_restore_overtaken_on_its_community_gets_409(
        client, backend, monkeypatch):
    from gridcover.services.redraw import RedrawService

    ws = client.app.state.workspace
    other = RedrawService(backend.again(ws))  # another server
    later = meanwhile(monkeypatch)

    def edit(community, worker):  # another editor's change, committed while this request computes its layers
        grids = other.context().grids_of({community}).reset_index(drop=True)
        grids.loc[0, "worker_name"] = worker
        return lambda: other.apply(grids, author="王芳", reason="同时")

    doc = _grids(client, "C2")
    doc["features"][0]["properties"]["worker_name"] = "乙"
    draft = client.post("/grids/proposals", headers=OFFICE, json=doc).json()
    later(edit("C1", "甲"))
    r = client.post(f"/grids/proposals/{draft['id']}/apply", params={"reason": "二社区"}, headers=OFFICE)
    assert r.status_code == 200 and (r.json()["version"]["version"], r.json()["version"]["parent"]) == (3, 2)
    features = client.get("/grids/versions/3", headers=OFFICE).json()["features"]
    assert {"甲", "乙"} <= {f["properties"].get("worker_name") for f in features}  # nobody's change lost
    later(edit("C1", "丙"))
    r = client.post("/grids/versions/1/restore", params={"reason": "回退"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["description"].startswith("conflict: version 4 by 王芳")
    assert client.get("/grids/versions", headers=OFFICE).json()["current"] == 4


def test_bad_bodies_get_one_clear_400(client):
    r = client.post("/grids/proposals/check", headers=OFFICE, content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["description"]
    r = client.post("/grids/proposals/check", headers=OFFICE, json={"type": "FeatureCollection", "features": []})
    assert r.status_code == 400 and "no feature" in r.json()["description"]
    r = client.post("/grids/propose", headers=OFFICE, json={"community": "C1", "target": "500-300"})
    assert r.status_code == 400 and "band" in r.json()["description"]
    assert client.get("/grids/versions/7", headers=OFFICE).status_code == 404


def test_bodies_nested_too_deeply_or_with_a_target_that_is_no_band_are_400(client):
    deep = "[" * 50_000 + "]" * 50_000
    for path in ("/grids/proposals/check", "/grids/proposals", "/grids/propose"):
        r = client.post(path, content=deep, headers=OFFICE)
        assert r.status_code == 400 and "nested too deeply" in r.json()["description"], path
    r = client.post("/grids/propose", json={"community": "C1", "target": [1]}, headers=OFFICE)
    assert r.status_code == 400 and "target must be a band" in r.json()["description"]


def test_a_move_cutting_an_estate_is_answered_by_name_and_place_and_its_draft_is_not_applied(client):
    ctx = client.app.state.redraw.context()
    b = ctx.buildings_of({"C1"})
    estate = b["estate_id"].dropna().value_counts().index[0]  # an estate of several buildings, in one grid
    building = str(b.loc[b["estate_id"] == estate, "id"].iloc[0])
    own = ctx.households.loc[ctx.households["building_id"] == building, "grid_id"].iloc[0]
    target = next(g for g in ctx.grids_of({"C1"})["id"] if g != own)
    body = {"moves": [{"building_id": building, "to": target}]}
    check = client.post("/grids/proposals/check", headers=OFFICE, json=body).json()["check"]
    cut = next(r for r in check["issues"] if r["id"] == f"split_estate:{estate}")
    name = ctx.estates.set_index("id").loc[estate, "name"]
    assert cut["status"] == "new" and cut["estate_name"] == name and name in cut["message_zh"]
    assert cut["geometry"]["type"] in ("Polygon", "MultiPolygon") and len(cut["bbox"]) == 4
    assert not check["valid"] and check["issue_counts"]["new"] >= 1 and check["fixed"] == []
    saved = client.post("/grids/proposals", headers=OFFICE, json=body).json()
    assert not saved["applicable"]
    r = client.post(f"/grids/proposals/{saved['id']}/apply", params={"reason": "试"}, headers=OFFICE)
    assert r.status_code == 400 and f"estate {estate} {name}" in r.json()["description"]
