"""GET /grids/{grid_id}/tasks: who may see a grid's visit list (it names special-group households)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace

KEYS = {"k-worker": {"role": "grid_worker", "grids": ["G02-01"], "name": "方刚芳"},
        "k-office": {"role": "street_office", "streets": ["510105001000"]},
        "k-other-office": {"role": "street_office", "streets": ["999999999999"]},
        "k-admin": {"role": "admin"}, "k-lookup": {"role": "lookup"}}
URL = "/grids/G02-01/tasks?date=2026-12-03"


@pytest.fixture(scope="module")
def client(sample_analysis, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(json.dumps(KEYS), encoding="utf-8")
    return TestClient(create_app(open_workspace(sample_analysis[1]), keys=load_keys(keys)))


def test_a_grid_worker_gets_the_list_and_route_of_their_own_grid(client):
    answer = client.get(URL, headers={"X-API-Key": "k-worker"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "private, no-store"
    doc = answer.json()
    assert doc["grid"]["id"] == "G02-01" and doc["households"] and doc["route"]["total_min"] > 0
    assert doc["households"][0]["visit"] == 1 and doc["date"] == "2026-12-03"


def test_a_grid_worker_may_not_see_another_grid(client):
    answer = client.get("/grids/G02-02/tasks?date=2026-12-03", headers={"X-API-Key": "k-worker"})
    assert answer.status_code == 403 and "grid G02-02" in answer.json()["description"]


def test_street_offices_see_the_grids_of_their_streets_only(client):
    assert client.get(URL, headers={"X-API-Key": "k-office"}).status_code == 200
    assert client.get(URL, headers={"X-API-Key": "k-admin"}).status_code == 200
    assert client.get(URL, headers={"X-API-Key": "k-other-office"}).status_code == 403
    assert client.get(URL, headers={"X-API-Key": "k-lookup"}).status_code == 403


def test_the_public_gets_401_never_a_household(client):
    answer = client.get(URL)
    assert answer.status_code == 401 and "households" not in answer.text
    assert client.get(URL, headers={"X-API-Key": "k-nobody"}).status_code == 401


def test_a_bad_or_missing_date_is_400_naming_it(client):
    bad = client.get("/grids/G02-01/tasks?date=2026-02-30", headers={"X-API-Key": "k-worker"})
    assert bad.status_code == 400 and bad.json()["description"] == "field 'date': must be a date YYYY-MM-DD, not '2026-02-30'"
    missing = client.get("/grids/G02-01/tasks", headers={"X-API-Key": "k-worker"})
    assert missing.status_code == 400 and "field 'date': is required" in missing.json()["description"]


def test_an_unknown_grid_is_404(client):
    answer = client.get("/grids/G99/tasks?date=2026-12-03", headers={"X-API-Key": "k-office"})
    assert answer.status_code == 404 and "G99" in answer.json()["description"]


def test_f_html_is_the_printable_page(client):
    answer = client.get(URL + "&f=html", headers={"X-API-Key": "k-worker"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert '<html lang="zh">' in answer.text and "<svg" in answer.text
    english = client.get(URL + "&f=html&lang=en", headers={"X-API-Key": "k-worker"})
    assert '<html lang="en">' in english.text
    assert client.get(URL + "&f=pdf", headers={"X-API-Key": "k-worker"}).status_code == 400


def test_a_grid_worker_key_needs_its_grids(tmp_path):
    from geo.errors import ConfigError

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-w": {"role": "grid_worker"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="a grid_worker key needs a non-empty 'grids' list"):
        load_keys(keys)
