"""The case API: what the hotline, a grid worker and a street office see from POST /cases, /accept, /close and
GET /cases, on both backends."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.access import load_keys
from api.app import create_app
from geo.crs import wgs84_to_gcj02
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from lookup_data import write_workspace, xy

HOTLINE = {"X-API-Key": "k-hotline"}
POLICE = {"X-API-Key": "k-police"}
OFFICE = {"X-API-Key": "k-office"}
OTHER_OFFICE = {"X-API-Key": "k-other"}
WORKER = {"X-API-Key": "k-worker"}
LOOKUP = {"X-API-Key": "k-lookup"}
ADMIN = {"X-API-Key": "k-admin"}
KEYS = {"k-hotline": {"role": "case_intake", "name": "12345热线"}, "k-police": {"role": "case_intake", "name": "派出所"},
        "k-office": {"role": "street_office", "streets": ["S1"], "name": "督院街街道办"},
        "k-other": {"role": "street_office", "streets": ["S9"]},
        "k-worker": {"role": "grid_worker", "grids": ["G3"], "name": "李娜"},
        "k-lookup": {"role": "lookup"}, "k-admin": {"role": "admin", "name": "管理员"}}


def local(hours_ago: float) -> str:
    """A report time ``hours_ago`` hours before now, as Beijing local time without an offset."""
    t = datetime.now(timezone(timedelta(hours=8))) - timedelta(hours=hours_ago)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def case(cid: str, x: float, y: float, *, urgency: str = "general", hours_ago: float = 0.5, **extra) -> dict:
    lon, lat = xy(x, y)
    return {"id": cid, "reported_at": local(hours_ago), "urgency": urgency, "lon": lon, "lat": lat, **extra}


@pytest.fixture(scope="module")
def app_ws(tmp_path_factory, backend):
    folder = write_workspace(tmp_path_factory.mktemp("cases") / "ws")
    keys = folder.parent / "keys.json"
    keys.write_text(json.dumps(KEYS), encoding="utf-8")
    ws = backend.open(folder)
    return TestClient(create_app(ws, keys=load_keys(keys))), ws


@pytest.fixture(scope="module")
def client(app_ws):
    return app_ws[0]


def test_a_case_is_answered_with_the_worker_the_names_and_the_deadlines(client):
    r = client.post("/cases", json=case("T-1", 0.5, 3.5, urgency="urgent", source="12345"), headers=HOTLINE)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["count"], body["stored"], body["duplicates"]) == (1, 1, 0)
    (c,) = body["cases"]
    assert (c["grid_id"], c["grid_name"], c["worker_name"], c["worker_phone"]) == ("G3", "G3网格", "李娜", "028-8000-0002")
    assert (c["community_id"], c["community_name"], c["street_id"], c["street_name"]) == ("C1", "红星社区", "S1", "督院街街道")
    assert c["covered"] is True and c["status"] == "open" and c["received_by"] == "12345热线"
    reported = datetime.fromisoformat(c["reported_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(c["response_due"].replace("Z", "+00:00")) - reported == timedelta(minutes=15)
    assert c["closure_due"] > c["response_due"]
    assert "households" not in c and "elderly_alone" not in c


def test_a_case_on_a_grid_boundary_gets_the_answer_of_lookup(client):
    lon, lat = xy(2, 3)  # the edge between G3 and G4: the tie rule of /lookup decides
    looked = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE).json()
    c = client.post("/cases", json={"id": "T-edge", "reported_at": local(0.2), "urgency": "general", "lon": lon,
                                    "lat": lat}, headers=HOTLINE).json()["cases"][0]
    assert (c["grid_id"], c["method"]) == (looked["grid_id"], looked["method"]) == ("G3", "boundary")


def test_a_gcj02_point_is_converted_as_lookup_converts_it(client):
    lon, lat = wgs84_to_gcj02(*xy(2.5, 1.5))
    c = client.post("/cases", json={"id": "T-gcj", "reported_at": local(0.2), "urgency": "general",
                                    "lon": float(lon), "lat": float(lat), "crs": "gcj02"}, headers=HOTLINE).json()
    assert c["cases"][0]["grid_id"] == "G10" and c["cases"][0]["input_crs"] == "gcj02"
    assert c["cases"][0]["lon"] == pytest.approx(xy(2.5, 1.5)[0], abs=1e-6)


def test_a_case_outside_every_grid_goes_to_the_nearest_grid_and_is_a_blind_spot(app_ws):
    client, ws = app_ws
    before = ws.blind_spots().counts()
    c = client.post("/cases", json=case("T-out", 12, 0.5), headers=HOTLINE).json()["cases"][0]
    assert c["covered"] is False and c["grid_id"] == c["nearest_grid_id"] == "G5" and c["worker_name"] == "陈静"
    assert c["distance_m"] > 0 and c["method"] == "not_covered"
    counts = ws.blind_spots().counts()
    added = counts[counts["reason"] == "case_outside_grids"]["count"].sum() - \
        (before[before["reason"] == "case_outside_grids"]["count"].sum() if len(before) else 0)
    assert added == 1


def test_an_address_and_a_household_are_resolved_as_lookup_resolves_them(client):
    r = client.post("/cases", json=[
        {"id": "T-addr", "reported_at": local(0.2), "urgency": "general", "address": "红星路二段12号锦华苑三号楼2单元501"},
        {"id": "T-home", "reported_at": local(0.2), "urgency": "general", "household_id": "H2"}], headers=HOTLINE)
    assert r.status_code == 201, r.text
    addr, home = r.json()["cases"]
    assert (addr["grid_id"], addr["method"], addr["location"]) == ("G3", "address_building", "address")
    assert home["grid_id"] == "G2" and home["location"] == "household"
    assert home["lon"] is None and home["lat"] is None  # the hotline sees no household's point


def test_a_bad_row_refuses_the_batch_naming_row_and_field_and_nothing_is_stored(client):
    text = ("id,reported_at,urgency,lon,lat\n"
            f"T-csv1,{local(1)},general,{xy(1, 1)[0]},{xy(1, 1)[1]}\n"
            f"T-csv2,{local(1)},soon,{xy(1, 1)[0]},{xy(1, 1)[1]}\n"
            f"T-csv3,yesterday,urgent,{xy(1, 1)[0]},{xy(1, 1)[1]}\n")
    r = client.post("/cases", content=text.encode("utf-8"), headers={**HOTLINE, "Content-Type": "text/csv"})
    assert r.status_code == 400
    body = r.json()
    assert body["problem"] == "invalid_cases" and "第 3 行" in body["message"] and body["error_count"] == 2
    assert [(e["row"], e["field"], e["problem"]) for e in body["errors"]] == \
        [(3, "urgency", "urgency_unknown"), (4, "reported_at", "invalid_time")]
    assert client.get("/cases/T-csv1", headers=ADMIN).status_code == 404
    good = text.splitlines()[:2]
    r = client.post("/cases", content="\n".join(good).encode("gb18030"), headers={**HOTLINE, "Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["cases"][0]["id"] == "T-csv1"


def test_an_unknown_address_or_household_refuses_the_batch(client):
    r = client.post("/cases", json=[case("T-ok", 1, 1), {"id": "T-nowhere", "reported_at": local(1), "urgency": "general",
                                                          "address": "火星路99号"}], headers=HOTLINE)
    assert r.status_code == 400 and r.json()["errors"][0] == {
        "item": 1, "field": "address", "problem": "address_not_found", "message": "地址未匹配到任何楼栋或小区",
        "description": "the address fits no known building or estate"}
    r = client.post("/cases", json={"id": "T-h", "reported_at": local(1), "urgency": "general", "household_id": "H99"},
                    headers=HOTLINE)
    assert r.status_code == 400 and r.json()["problem"] == "household_unknown"
    assert client.get("/cases/T-ok", headers=ADMIN).status_code == 404


def test_the_same_case_resent_is_not_stored_twice_and_a_changed_one_is_a_conflict(client):
    first = case("T-dup", 1, 3)
    assert client.post("/cases", json=first, headers=HOTLINE).status_code == 201
    again = client.post("/cases", json=first, headers=HOTLINE)
    assert again.status_code == 200 and again.json()["duplicates"] == 1 and again.json()["cases"][0]["stored"] is False
    changed = dict(first, urgency="urgent")
    r = client.post("/cases", json=[case("T-new", 1, 3), changed], headers=HOTLINE)
    assert r.status_code == 409 and r.json()["problem"] == "case_id_conflict" and "T-dup" in r.json()["description"]
    assert client.get("/cases/T-new", headers=ADMIN).status_code == 404  # all or nothing


def test_accept_and_close_record_the_time_and_the_caller_as_author(client):
    client.post("/cases", json=case("T-acc", 0.5, 2.5, hours_ago=1), headers=HOTLINE)
    r = client.post("/cases/T-acc/accept", json={"at": local(0.9)}, headers=WORKER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["accepted_by"] == "李娜" and body["response_min"] == pytest.approx(6, abs=1)
    assert body["response_on_time"] is True
    again = client.post("/cases/T-acc/accept", headers=WORKER)
    assert again.status_code == 409 and again.json()["problem"] == "case_accepted" and "李娜" in again.json()["message"]
    early = client.post("/cases/T-acc/close", params={"at": local(0.95)}, headers=OFFICE)
    assert early.status_code == 400 and early.json()["problem"] == "time_before_accepted"
    done = client.post("/cases/T-acc/close", headers=OFFICE).json()
    assert done["status"] == "closed" and done["closed_by"] == "督院街街道办"
    assert client.post("/cases/T-acc/close", headers=OFFICE).json()["problem"] == "case_closed"


def test_closing_a_case_nobody_accepted_records_the_close_as_its_response(client):
    client.post("/cases", json=case("T-shut", 0.5, 2.5, hours_ago=3), headers=HOTLINE)
    body = client.post("/cases/T-shut/close", json={"at": local(2.5)}, headers=ADMIN).json()
    assert body["accepted_at"] == body["closed_at"] and body["accepted_by"] == "管理员"
    assert body["response_min"] == pytest.approx(30, abs=1) and body["response_on_time"] is True
    before = client.post("/cases/T-shut/close", json={"at": local(4)}, headers=ADMIN)
    assert before.status_code == 409  # closed already; a time before the report is refused on an open case:
    client.post("/cases", json=case("T-early", 0.5, 2.5, hours_ago=1), headers=HOTLINE)
    r = client.post("/cases/T-early/accept", json={"at": local(2)}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["problem"] == "time_before_reported"


def test_list_filters_status_overdue_grid_community_street(client):
    client.post("/cases", json=[case("L-late", 1, 3, urgency="urgent", hours_ago=2),
                                case("L-fresh", 1, 3, urgency="general", hours_ago=0.1),
                                case("L-g2", 1, 1, urgency="urgent", hours_ago=2)], headers=HOTLINE)
    overdue = client.get("/cases", params={"status": "open", "overdue": "true", "grid": "G3"}, headers=OFFICE).json()
    ids = {c["id"] for c in overdue["cases"]}
    assert "L-late" in ids and "L-fresh" not in ids and "L-g2" not in ids
    assert all(c["overdue"] and c["status"] == "open" and c["grid_id"] == "G3" for c in overdue["cases"])
    assert overdue["numberMatched"] == len(overdue["cases"])
    fresh = client.get("/cases", params={"overdue": "false", "grid": "G3"}, headers=OFFICE).json()
    assert "L-fresh" in {c["id"] for c in fresh["cases"]} and not any(c["overdue"] for c in fresh["cases"])
    both = client.get("/cases", params={"grid": "G3,G2", "community": "C1", "street": "S1", "limit": 2}, headers=OFFICE)
    assert both.json()["numberReturned"] == 2 and both.json()["numberMatched"] > 2
    assert client.get("/cases", params={"status": "pending"}, headers=OFFICE).json()["problem"] == "status_unknown"
    assert client.get("/cases", params={"limit": "0"}, headers=OFFICE).json()["problem"] == "invalid_parameter"


def test_as_of_judges_the_cases_at_another_time(client):
    client.post("/cases", json=case("L-asof", 1, 3, urgency="urgent", hours_ago=1), headers=HOTLINE)
    then = (datetime.now(timezone.utc) - timedelta(minutes=55)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = client.get("/cases/L-asof", params={"as_of": then}, headers=OFFICE).json()
    assert body["overdue"] is False and body["status"] == "open"
    assert client.get("/cases/L-asof", headers=OFFICE).json()["overdue"] is True


def test_roles_who_may_post_read_accept_and_close(client):
    client.post("/cases", json=case("R-1", 0.5, 3.5), headers=HOTLINE)
    client.post("/cases", json=case("R-2", 0.5, 0.5), headers=POLICE)
    assert client.post("/cases", json=case("R-x", 1, 1)).json()["problem"] == "key_required"
    no = client.post("/cases", json=case("R-x", 1, 1), headers=LOOKUP)
    assert no.status_code == 403 and no.json()["problem"] == "role_not_allowed" and no.json()["message"]
    mine = {c["id"] for c in client.get("/cases", headers=HOTLINE).json()["cases"]}
    assert "R-1" in mine and "R-2" not in mine  # an intake key reads back what it posted, nothing else
    assert client.get("/cases/R-2", headers=HOTLINE).status_code == 404
    assert client.post("/cases/R-1/accept", headers=HOTLINE).status_code == 403
    worker = {c["id"] for c in client.get("/cases", headers=WORKER).json()["cases"]}
    assert "R-1" in worker and "R-2" not in worker  # G3 is the worker's grid, R-2 is in G2
    assert client.post("/cases/R-2/accept", headers=WORKER).status_code == 404
    assert client.get("/cases", headers=OTHER_OFFICE).json()["numberMatched"] == 0
    office = {c["id"] for c in client.get("/cases", headers=OFFICE).json()["cases"]}
    assert {"R-1", "R-2"} <= office
    assert client.post("/cases/R-2/accept", headers=OFFICE).status_code == 200
    assert client.get("/cases/R-2", headers=ADMIN).json()["accepted_by"] == "督院街街道办"


def test_a_street_office_sees_the_household_point_of_its_streets(client):
    home = client.get("/cases/T-home", headers=OFFICE).json()
    assert home["household_id"] == "H2" and home["lon"] == pytest.approx(xy(0.75, 0.75)[0], abs=1e-7)


def test_the_cases_survive_a_restart_of_the_server(app_ws, backend):
    _, ws = app_ws
    again = backend.again(ws)
    client = TestClient(create_app(again, keys=_keys(ws)))
    assert client.get("/cases/T-1", headers=ADMIN).json()["worker_name"] == "李娜"


def _keys(ws):
    from api.access import Caller, Keys

    return Keys({"k-admin": Caller(role="admin", key_name="管理员")})


def test_the_openapi_document_lists_the_case_routes(client):
    paths = client.get("/openapi").json()["paths"]
    assert {"/cases", "/cases/{case_id}", "/cases/{case_id}/accept", "/cases/{case_id}/close"} <= set(paths)
    assert "409" in paths["/cases"]["post"]["responses"] and "text/csv" in paths["/cases"]["post"]["requestBody"]["content"]


def test_the_cases_collection_and_tiles_show_the_public_counts_per_grid_and_offices_the_points(client):
    import math

    import mapbox_vector_tile

    client.post("/cases", json=[case(f"M-{i}", 3, 3.5, urgency="urgent", hours_ago=2) for i in range(5)]
                + [case("M-g10a", 3, 1), case("M-g10b", 3, 1)], headers=HOTLINE)  # k = 5: G4's five are shown
    public = client.get("/collections/cases/items").json()
    assert {f["geometry"]["type"] for f in public["features"]} <= {"Polygon", "MultiPolygon"}
    g4 = next(f["properties"] for f in public["features"] if f["id"] == "G4")
    assert g4["cases"] == 5 and g4["overdue_urgent_cases"] == 5 and "worker_name" not in g4
    shown = {f["id"]: f["properties"]["cases"] for f in public["features"]}
    assert shown["G10"] is None and shown["G6"] == 0  # 1..k-1 withheld, a 0 singles out nobody
    office = client.get("/collections/cases/items", params={"grid_id": "G4"}, headers=OFFICE).json()
    assert office["numberMatched"] == 5 and {f["geometry"]["type"] for f in office["features"]} == {"Point"}
    assert client.get("/collections/cases/items", headers=OTHER_OFFICE).json()["numberMatched"] == 0
    lon, lat = xy(3, 3.5)
    z = 16
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    tile = mapbox_vector_tile.decode(client.get(f"/tiles/cases/{z}/{x}/{y}.mvt").content)
    props = [f["properties"] for f in tile["cases"]["features"]]
    assert {p["id"]: p.get("cases") for p in props}["G4"] == 5 and all("status" not in p for p in props)
    etag = client.get(f"/tiles/cases/{z}/{x}/{y}.mvt").headers["ETag"]
    client.post("/cases", json=case("M-5", 3, 3.5), headers=HOTLINE)
    assert client.get(f"/tiles/cases/{z}/{x}/{y}.mvt").headers["ETag"] != etag  # a new case: a new tile
