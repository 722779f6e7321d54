"""HTTP lookup: what a hotline's system sees from GET /lookup and POST /lookup/batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.access import load_keys
from api.app import create_app
from geo.crs import wgs84_to_bd09
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from lookup_data import xy, write_workspace

HOTLINE = {"X-API-Key": "k-hotline"}
NAMED = {"grid_id", "grid_name", "community_id", "street_id", "worker_name", "worker_phone", "building_id",
         "estate_id", "version", "covered", "nearest_grid_id", "distance_m"}


@pytest.fixture(scope="module")
def client(tmp_path_factory, backend):
    folder = write_workspace(tmp_path_factory.mktemp("ws") / "ws")
    keys = folder.parent / "keys.json"
    keys.write_text(json.dumps({"k-hotline": {"role": "lookup"},
                                "k-office": {"role": "street_office", "streets": ["S1"]}}), encoding="utf-8")
    return TestClient(create_app(backend.open(folder), keys=load_keys(keys)))


def test_a_lookup_needs_a_key_of_role_lookup(client):
    assert client.get("/lookup", params={"lon": 104.0, "lat": 30.5}).status_code == 401
    assert client.get("/lookup", params={"lon": 104.0, "lat": 30.5}, headers={"X-API-Key": "nope"}).status_code == 401


def test_a_coordinate_gets_grid_worker_and_the_named_fields(client):
    lon, lat = xy(0.3, 3.9)
    r = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE)
    assert r.status_code == 200
    body = r.json()
    assert NAMED <= set(body)
    assert (body["grid_id"], body["worker_name"], body["worker_phone"], body["covered"]) == \
        ("G3", "李娜", "028-8000-0002", True)
    assert "households" not in body and "elderly_alone" not in body


def test_a_bd09_coordinate_is_converted(client):
    lon, lat = wgs84_to_bd09(*xy(2.5, 1.5))
    body = client.get("/lookup", params={"lon": float(lon), "lat": float(lat), "crs": "bd09"}, headers=HOTLINE).json()
    assert body["grid_id"] == "G10"


def test_outside_every_grid_is_not_covered_with_the_nearest_grid(client):
    lon, lat = xy(12, 0.5)
    body = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE).json()
    assert body["covered"] is False and body["nearest_grid_id"] == "G5" and body["distance_m"] > 0


def test_an_address_and_an_ambiguous_address(client):
    body = client.get("/lookup", params={"address": "红星路二段12号锦华苑三号楼2单元501"}, headers=HOTLINE).json()
    assert (body["grid_id"], body["building_id"], body["method"]) == ("G3", "B2", "address_building")
    body = client.get("/lookup", params={"address": "锦华苑3栋"}, headers=HOTLINE).json()
    assert body["grid_id"] is None and len(body["candidates"]) == 2
    assert {"building_id", "grid_id", "score"} <= set(body["candidates"][0])


def test_as_of_before_the_first_version_answers_with_the_first_and_says_so(client):
    lon, lat = xy(1, 1)
    body = client.get("/lookup", params={"lon": lon, "lat": lat, "as_of": "2025-01-01"}, headers=HOTLINE).json()
    assert body["as_of"] == "2025-01-01" and "first recorded" in body["as_of_note"] and body["version"] == 1
    r = client.get("/lookup", params={"lon": lon, "lat": lat, "as_of": "yesterday"}, headers=HOTLINE)
    assert r.status_code == 400 and "as_of" in r.json()["description"]


@pytest.mark.parametrize("params, word", [({"lon": 104.0}, "lat"), ({"lon": 104, "lat": 30.5, "crs": "utm"}, "crs"),
                                          ({"lon": 999, "lat": 30.5}, "lon"), ({"address": " "}, "address")])
def test_bad_parameters_are_a_400_naming_them(client, params, word):
    r = client.get("/lookup", params=params, headers=HOTLINE)
    assert r.status_code == 400 and word in r.json()["description"]


def test_a_json_batch_is_answered_in_request_order(client):
    rng = np.random.default_rng(0)
    units = np.column_stack([rng.uniform(-1, 12, 500), rng.uniform(-1, 5, 500)])
    items = [{"lon": lon, "lat": lat} for lon, lat in (xy(*u) for u in units)]
    items[7] = {"address": "锦华苑5栋"}
    r = client.post("/lookup/batch", json={"crs": "wgs84", "items": items}, headers=HOTLINE)
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 500 and results[7]["building_id"] == "B4"
    for i in (0, 1, 2, 499):
        single = client.get("/lookup", params=items[i], headers=HOTLINE).json()
        assert results[i]["grid_id"] == single["grid_id"] and results[i]["covered"] == single["covered"]


def test_a_csv_batch_with_lon_lat_or_address_columns(client):
    (lon1, lat1), (lon2, lat2) = xy(1, 1), xy(3, 3)
    csv_points = f"lon,lat\n{lon1},{lat1}\n{lon2},{lat2}\n"
    r = client.post("/lookup/batch", content=csv_points, headers={**HOTLINE, "Content-Type": "text/csv"})
    assert [x["grid_id"] for x in r.json()["results"]] == ["G2", "G4"]
    r = client.post("/lookup/batch", content="address\n锦华苑5栋\n翠苑A座\n".encode(),
                    headers={**HOTLINE, "Content-Type": "text/csv"})
    assert [x["building_id"] for x in r.json()["results"]] == ["B4", "B5"]


@pytest.mark.parametrize("body, word", [
    ({"items": [{"lon": 104.0}]}, "item 0"),
    ({"items": [{"lon": 104.0, "lat": 30.5}, {"lon": "east", "lat": 30.5}]}, "item 1"),
    ({"items": "all of them"}, "items"),
    ({"crs": "mars", "items": [{"lon": 104.0, "lat": 30.5}]}, "crs"),
])
def test_a_bad_batch_is_a_400_naming_the_item(client, body, word):
    r = client.post("/lookup/batch", json=body, headers=HOTLINE)
    assert r.status_code == 400 and word in r.json()["description"]


def test_a_batch_above_100000_items_is_refused(client):
    items = [{"lon": 104.0, "lat": 30.5}] * 100_001
    r = client.post("/lookup/batch", json={"items": items}, headers=HOTLINE)
    assert r.status_code == 400 and "100,000" in r.json()["description"]


def test_blind_spot_counts_need_a_street_office_key(client):
    lon, lat = xy(12, 3.5)
    client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE)
    assert client.get("/lookup/blind_spots", headers=HOTLINE).status_code == 403
    body = client.get("/lookup/blind_spots", headers={"X-API-Key": "k-office"}).json()
    assert body["total"] >= 1 and {"nearest_grid_id", "h3", "count"} <= set(body["counts"][0])
