"""CSV and Excel tables of a layer (``GET /collections/{id}/items?f=csv|xlsx``) as a planner opens them."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from serving import SAMPLE_STREET, keys_file, sample_workspace

from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(open_workspace(sample_workspace()), keys=load_keys(keys_file())))


def _csv_rows(body: bytes) -> list[dict]:
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_a_community_s_grids_as_csv_have_chinese_headers_names_and_the_load(client):
    community = client.get("/collections/communities/items").json()["features"][0]
    cid, name = community["id"], community["properties"]["name"]
    r = client.get("/collections/grids/items", params={"f": "csv", "community_id": cid})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="grids_community_id-{cid}.csv"' in r.headers["content-disposition"]
    rows = _csv_rows(r.content)
    geojson = client.get("/collections/grids/items", params={"community_id": cid, "limit": 1000}).json()
    assert len(rows) == geojson["numberMatched"] > 0
    assert {"编号", "名称", "网格员", "户数", "专职网格员", "每名专职网格员户数", "超负荷", "社区", "社区名称",
            "经度（WGS-84）", "纬度（WGS-84）"} <= set(rows[0])
    assert {row["社区名称"] for row in rows} == {name}
    assert {row["超负荷"] for row in rows} <= {"是", "否"}
    assert all(103 < float(row["经度（WGS-84）"]) < 105 and 30 < float(row["纬度（WGS-84）"]) < 31 for row in rows)


def test_the_excel_file_opens_with_a_bold_frozen_chinese_header_and_every_blind_spot(client):
    r = client.get("/collections/blindspots/items", params={"f": "xlsx"})
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    sheet = load_workbook(io.BytesIO(r.content), read_only=False).active
    assert sheet.title == "盲区" and sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["编号", "风险等级", "风险原因"] and sheet["A1"].font.b
    total = client.get("/collections/blindspots/items").json()["numberMatched"]
    assert sheet.max_row == total + 1
    reasons = " ".join(str(sheet.cell(row=i, column=3).value) for i in range(2, sheet.max_row + 1))
    assert "不在任何网格" in reasons or "走访逾期" in reasons
    assert "no_grid" not in reasons and "visit_overdue" not in reasons  # codes are written in Chinese
    assert {sheet.cell(row=i, column=2).value for i in range(2, sheet.max_row + 1)} <= {"红色预警", "黄色预警", "蓝色预警", "无风险"}


def test_small_special_group_counts_stay_withheld_in_the_table(client):
    public = _csv_rows(client.get("/collections/grids/items", params={"f": "csv"}).content)
    office = _csv_rows(client.get("/collections/grids/items", params={"f": "csv"}, headers={"X-API-Key": "k-office"}).content)
    withheld = [row["编号"] for row in public if row["困境儿童"] == "少于5（不公开）"]
    assert withheld, "the sample has grids with 1..4 children in difficulty"
    by_id = {row["编号"]: row for row in office}
    assert all(by_id[g]["困境儿童"].isdigit() and 0 < int(by_id[g]["困境儿童"]) < 5 for g in withheld)


def test_households_export_needs_the_same_key_as_their_geojson(client):
    assert client.get("/collections/households/items", params={"f": "csv"}).status_code == 401
    assert client.get("/collections/households/items", params={"f": "xlsx"},
                      headers={"X-API-Key": "k-other-office"}).content.startswith(b"PK")  # a workbook ...
    other = load_workbook(io.BytesIO(client.get("/collections/households/items", params={"f": "xlsx"},
                                                headers={"X-API-Key": "k-other-office"}).content)).active
    assert other.max_row == 1  # ... with no household of another street in it
    own = _csv_rows(client.get("/collections/households/items", params={"f": "csv", "limit": 3},
                               headers={"X-API-Key": "k-office"}).content)
    assert len(own) == 3 and {row["街道"] for row in own} == {SAMPLE_STREET}


def test_a_table_refuses_a_crs_and_an_unknown_format_naming_the_parameter(client):
    r = client.get("/collections/grids/items", params={"f": "xlsx", "crs": "EPSG:4490"})
    assert r.status_code == 400 and "crs" in r.json()["description"]
    r = client.get("/collections/grids/items", params={"f": "xls"})
    assert r.status_code == 400 and "csv, xlsx" in r.json()["description"]
