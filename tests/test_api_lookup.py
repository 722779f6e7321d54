"""HTTP lookup: what a hotline's system sees from GET /lookup and POST /lookup/batch."""

from __future__ import annotations

import csv
import io
import json
import select
import socket

import anyio
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.access import load_keys
from api.app import create_app
from geo.lookup import lookup_points
from gridcover.lookup_batch import CHUNK_ROWS
from geo.crs import wgs84_to_bd09
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from lookup_data import xy, write_workspace
from serving import ServerProcess

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


CSV = {**HOTLINE, "Content-Type": "text/csv"}
GOOD = "{},{}".format(*xy(1, 1))


def csv_batch(client, text: str | bytes, **params):
    return client.post("/lookup/batch", content=text.encode() if isinstance(text, str) else text, headers=CSV,
                       params=params)


@pytest.mark.parametrize("body, row, words", [
    (f"lon,lat\n{GOOD}\n104.001\n", 3, "1 cell, but the header has 2"),
    (f"lon,lat\n{GOOD}\n{GOOD},3\n", 3, "3 cells, but the header has 2"),
    (f"lon,lat,lon\n{GOOD},104.1\n", 1, "names 'lon' twice"),
    (f'lon,lat\n{GOOD}\n"104.001,30.5\n{GOOD}\n', 3, "never closed"),
    (f"lon,lat\n{GOOD}\n{'1' * 5000},30.5\n", 3, "not a number"),
    (f"lon,lat\nnan,30.5\n", 2, "not a finite number: 'nan'"),
    (f"lon,lat\n{GOOD}\n104.001,inf\n", 3, "not a finite number: 'inf'"),
])
def test_a_malformed_csv_row_is_a_400_with_its_spreadsheet_row_number(client, body, row, words):
    r = csv_batch(client, body)
    assert r.status_code == 400
    answer = r.json()
    assert words in answer["description"] and f"row {row}" in answer["description"]
    assert answer["errors"][0]["row"] == row and answer["error_count"] == 1
    assert len(answer["description"]) < 500  # a 5,000-digit number is not echoed whole


def test_every_bad_row_of_a_csv_is_reported_together_up_to_100(client):
    rows = [GOOD] * 300
    for i in range(0, 300, 2):  # 150 bad rows: file lines 2, 4, … hold them (row 1 is the header)
        rows[i] = "east,30.5" if i % 4 == 0 else "104.001"
    r = csv_batch(client, "lon,lat\n" + "\n".join(rows) + "\n")
    assert r.status_code == 400
    answer = r.json()
    assert answer["error_count"] == 150 and len(answer["errors"]) == 100
    assert [e["row"] for e in answer["errors"]] == list(range(2, 202, 2))
    assert answer["errors"][0] == {"row": 2, "field": "lon", "message": "not a number: 'east'"}
    assert answer["errors"][1]["message"] == "1 cell, but the header has 2 (lon,lat)"
    assert "150 problems" in answer["description"] and "and 50 more" in answer["description"]


def test_a_quoted_cell_with_a_line_break_is_one_spreadsheet_row(client):
    r = csv_batch(client, f'address,lon,lat\n"锦华苑\n5栋",,\n,{GOOD}\n,east,30.5\n')
    assert r.status_code == 400 and [e["row"] for e in r.json()["errors"]] == [4]


@pytest.mark.parametrize("body, words", [
    ('{"items": ' + "[" * 50_000 + "]" * 50_000 + "}", "item 0: nested too deeply"),
    ('{"items": [{"lon": 104.0, "lat": 30.5}, {"lon": ' + "1" * 5000 + ', "lat": 30.5}]}', "item 1, field 'lon'"),
    ('{"items": [{"lon": NaN, "lat": 30.5}]}', "not a finite number: 'NaN'"),
    ('{"items": [{"lon": 104.0, "lat": -Infinity}]}', "not a finite number: '-Infinity'"),
    ('{"crs": ' + "[" * 50_000 + "]" * 50_000 + ', "items": []}', "the value of 'crs': nested too deeply"),
    ('{"items": [{"lon": 104.0, "lat": 30.5}', "not valid JSON"),
])
def test_a_malformed_json_batch_is_a_400_naming_the_item(client, body, words):
    r = client.post("/lookup/batch", content=body.encode(), headers={**HOTLINE, "Content-Type": "application/json"})
    assert r.status_code == 400 and words in r.json()["description"]
    assert len(r.json()["description"]) < 500


def test_every_bad_item_of_a_json_batch_is_reported_with_its_index(client):
    items = [{"lon": 104.0, "lat": 30.5}, {"lon": 104.0}, 7, {"address": "锦华苑5栋", "lon": 104.0, "lat": 30.5},
             {"lon": True, "lat": 30.5}, {"lon": 200, "lat": 30.5}]
    r = client.post("/lookup/batch", json={"items": items}, headers=HOTLINE)
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert [(e["item"], e["field"]) for e in errors] == [(1, "lat"), (2, None), (3, None), (4, "lon"), (5, "lon/lat")]


def test_a_gb18030_or_bom_csv_from_a_spreadsheet_is_read(client):
    text = "address\n锦华苑5栋\n翠苑A座\n"
    for body in (text.encode("gb18030"), b"\xef\xbb\xbf" + text.encode()):
        r = csv_batch(client, body)
        assert r.status_code == 200 and [x["building_id"] for x in r.json()["results"]] == ["B4", "B5"]


def test_bytes_that_do_not_decode_are_shown_as_replacement_characters_in_the_400(client):
    r = csv_batch(client, "地址".encode() + b"\xff,x\n1,2\n")  # a header without lon,lat or address
    assert r.status_code == 400 and "地址\ufffd" in r.json()["description"]


def test_a_batch_is_answered_as_ndjson_or_csv_in_request_order(client):
    (lon1, lat1), (lon2, lat2) = xy(1, 1), xy(12, 0.5)
    body = f"lon,lat\n{lon1},{lat1}\n{lon2},{lat2}\n"
    r = csv_batch(client, body, f="ndjson")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert r.headers["x-lookup-count"] == "2" == str(len(lines))  # a cut answer has fewer lines than that
    assert [x["grid_id"] for x in lines] == ["G2", None] and lines[1]["nearest_grid_id"] == "G5"
    r = client.post("/lookup/batch", content=body.encode(), headers={**CSV, "Accept": "text/csv"})
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["grid_id"] for x in table] == ["G2", ""] and table[1]["covered"] == "false"


def test_a_good_100000_row_batch_is_answered_like_single_lookups(client, backend):
    rng = np.random.default_rng(11)
    lon, lat = xy(rng.uniform(-1, 12, 100_000), rng.uniform(-1, 5, 100_000))
    body = "lon,lat\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(lon.tolist(), lat.tolist()))
    r = csv_batch(client, body)
    assert r.status_code == 200
    answer = r.json()
    assert answer["count"] == 100_000 and len(answer["results"]) == 100_000
    index = client.app.state.lookup.get_index()
    expected = lookup_points(index, lon, lat)
    assert [x["grid_id"] for x in answer["results"]] == expected["grid_id"].tolist()
    assert [x["covered"] for x in answer["results"]] == expected["covered"].tolist()
    for i in (0, CHUNK_ROWS - 1, CHUNK_ROWS, 99_999):  # either side of a chunk's edge
        single = client.get("/lookup", params={"lon": lon[i], "lat": lat[i]}, headers=HOTLINE).json()
        assert answer["results"][i]["grid_id"] == single["grid_id"]


@pytest.fixture(scope="module")
def small_limit(client):
    """The same workspace served with a body limit of 0.05 MB (52,428 bytes)."""
    return create_app(client.app.state.workspace, keys=client.app.state.keys, max_body_mb=0.05)


def test_a_body_over_the_limit_by_content_length_is_a_413(small_limit):
    big = "lon,lat\n" + f"{GOOD}\n" * 3000  # about 100 kB
    r = TestClient(small_limit).post("/lookup/batch", content=big.encode(), headers=CSV)
    assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge" and "--max-body-mb" in r.json()["description"]
    assert TestClient(small_limit).post("/lookup/batch", content=big[:20_000].rsplit("\n", 1)[0].encode(),
                                        headers=CSV).status_code == 200


def test_a_chunked_body_over_the_limit_is_a_413_without_reading_it_all(small_limit):
    sent = []

    async def receive():  # 10 MB offered in 64 KiB pieces, without a Content-Length
        sent.append(1)
        return {"type": "http.request", "body": b"104.0,30.5\n" * 6000, "more_body": len(sent) < 160}

    answer = []

    async def send(message):
        answer.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/lookup/batch", "raw_path": b"/lookup/batch", "query_string": b"", "root_path": "",
             "headers": [(b"x-api-key", b"k-hotline"), (b"content-type", b"text/csv"),
                         (b"transfer-encoding", b"chunked")], "client": ("127.0.0.1", 1), "server": ("t", 80)}
    anyio.run(small_limit, scope, receive, send)
    assert answer[0]["type"] == "http.response.start" and answer[0]["status"] == 413
    assert len(sent) == 1  # the first 66 kB passed the 52 kB limit: nothing more was read
    assert json.loads(answer[1]["body"])["code"] == "PayloadTooLarge"


def test_blind_spot_counts_need_a_street_office_key(client):
    lon, lat = xy(12, 3.5)
    client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE)
    assert client.get("/lookup/blind_spots", headers=HOTLINE).status_code == 403
    body = client.get("/lookup/blind_spots", headers={"X-API-Key": "k-office"}).json()
    assert body["total"] >= 1 and {"nearest_grid_id", "h3", "count"} <= set(body["counts"][0])


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``gridcover serve --max-body-mb 8`` in its own process on the lookup workspace."""
    folder = write_workspace(tmp_path_factory.mktemp("live") / "ws")
    keys = folder.parent / "keys.json"
    keys.write_text(json.dumps({"k-hotline": {"role": "lookup"}}), encoding="utf-8")
    with ServerProcess(folder, keys=keys, extra=("--max-body-mb", "8")) as server:
        yield server


def _http(server, head: str, pieces=(), *, chunked=False) -> tuple[int, int]:
    """Send a request head and body pieces over a socket until the server answers; its status, bytes sent."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sent = 0
    try:
        sock.sendall(head.encode("latin-1"))
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += len(piece)
        reply = b""
        while b"\r\n" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
        return int(reply.split(b" ", 2)[1]), sent
    finally:
        sock.close()


def test_the_server_answers_413_to_a_content_length_over_max_body_mb_before_the_body_is_sent(live):
    head = ("POST /lookup/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: k-hotline\r\nContent-Type: text/csv\r\n"
            "Content-Length: 9000000\r\n\r\n")
    assert _http(live, head) == (413, 0)


def test_the_server_answers_413_to_a_chunked_body_as_soon_as_it_passes_max_body_mb(live):
    head = ("POST /lookup/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: k-hotline\r\nContent-Type: text/csv\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    piece = b"104.0,30.5\n" * 6000  # 66 kB
    status, sent = _http(live, head, [piece] * 3000, chunked=True)  # 200 MB offered
    assert status == 413 and sent < 40 * 2**20  # the 8 MB limit, and what the sockets buffer


def test_a_150000_row_batch_is_answered_with_bounded_memory(live):
    rng = np.random.default_rng(5)
    lon, lat = xy(rng.uniform(-1, 12, 150_000), rng.uniform(-1, 5, 150_000))
    body = ("lon,lat\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(lon.tolist(), lat.tolist()))).encode()
    headers = {**CSV}
    httpx.post(live.url + "/lookup/batch", content=f"lon,lat\n{GOOD}\n", headers=headers, timeout=60)
    before = _peak_rss_mb(live.process.pid)
    with httpx.stream("POST", live.url + "/lookup/batch", content=body, headers=headers, params={"f": "ndjson"},
                      timeout=300) as r:
        lines = sum(chunk.count(b"\n") for chunk in r.iter_raw())
        assert r.status_code == 200
    assert lines == 150_000
    # measured: +50 MB for 100,000 rows and for 1,000,000 (docs/lookup.md); all at once it was +243 MB for 100,000
    assert _peak_rss_mb(live.process.pid) - before < 150


def _peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a process so far (Linux VmHWM), MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


# ---------------------------------------------------------------- names and problems, as another system reads them
def test_an_answer_carries_names_beside_the_ids(client):
    lon, lat = xy(0.75, 2.75)
    body = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE).json()
    assert (body["community_name"], body["street_name"], body["estate_name"], body["building_name"]) == \
        ("红星社区", "督院街街道", "锦华苑", "3栋")
    assert {"problem", "message", "message_en", "nearest_grid_name"} <= set(body) and body["problem"] is None


def test_outside_every_grid_the_problem_is_a_code_with_a_chinese_message(client):
    lon, lat = xy(12, 0.5)
    body = client.get("/lookup", params={"lon": lon, "lat": lat}, headers=HOTLINE).json()
    assert (body["problem"], body["nearest_grid_name"]) == ("outside_grids", "G5网格")
    assert body["message"].startswith("该位置不在任何网格内") and body["message_en"].startswith("the place is in no grid")


def test_swapped_lat_and_lon_are_a_400_saying_so(client):
    lon, lat = xy(0.3, 3.9)
    r = client.get("/lookup", params={"lon": lat, "lat": lon}, headers=HOTLINE)
    body = r.json()
    assert r.status_code == 400 and body["problem"] == "lonlat_swapped_out_of_range"
    assert "lat and lon look swapped" in body["description"] and "np.float64" not in r.text
    assert body["message"].startswith("经纬度似乎写反了")


def test_an_address_problem_is_a_code_with_messages_in_a_batch_too(client):
    items = [{"address": "红星路二段12号锦华苑9栋"}, {"address": "长春市朝阳区望京西园3栋"}, {"address": "火星路1号"}]
    body = client.post("/lookup/batch", json={"items": items}, headers=HOTLINE).json()
    problems = [(r["problem"], r["message"]) for r in body["results"]]
    assert problems == [("building_not_found", "锦华苑没有9栋，已按小区回答（该小区有：3栋、5栋）"),
                        ("address_other_city", "地址在长春市，本工作区只负责成都市"),
                        ("address_not_found", "找不到与该地址相符的楼栋或小区")]
    assert body["results"][0]["estate_name"] == "锦华苑" and body["results"][0]["grid_id"] == "G3"


def test_a_batch_row_with_swapped_lat_and_lon_says_so(client):
    lon, lat = xy(0.3, 3.9)
    r = client.post("/lookup/batch", content=f"lon,lat\n{lat},{lon}\n".encode(),
                    headers={**HOTLINE, "Content-Type": "text/csv"})
    assert r.status_code == 400 and "lat and lon look swapped" in r.json()["errors"][0]["message"]
