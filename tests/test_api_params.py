"""The query parameters the routes share (api/params.py): one reading and one message per parameter, everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import keys_file, sample_workspace

from api.access import load_keys
from api.app import create_app
from api.params import MAX_LIMIT, crs_key, whole_number
from geo.errors import ParameterError
from gridcover.store import open_workspace

ROOT = Path(__file__).resolve().parents[1]
ADMIN = {"X-API-Key": "k-admin"}
LOOKUP = {"X-API-Key": "k-lookup"}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(open_workspace(sample_workspace()), keys=load_keys(keys_file())))


@pytest.mark.parametrize("query, message", [
    ("limit=0", f"parameter limit: 0 is out of range (1..{MAX_LIMIT})"),
    ("limit=ten", "parameter limit: 'ten' is not a whole number"),
    ("offset=-1", "parameter offset: -1 is out of range (at least 0)"),
    ("crs=EPSG:2385", "parameter crs: unsupported coordinate system 'EPSG:2385'"),
    ("bbox-crs=EPSG:4490", "parameter bbox-crs: needs a bbox"),
    ("datetime=yesterday", "parameter datetime: 'yesterday' is not an RFC 3339 instant or interval"),
])
def test_a_bad_ogc_parameter_is_400_naming_it(client, query, message):
    answer = client.get(f"/collections/grids/items?{query}")
    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidParameterValue" and answer.json()["description"].startswith(message)


def test_a_single_feature_reads_crs_as_the_items_do(client):
    items = client.get("/collections/grids/items?crs=EPSG:2385").json()["description"]
    item = client.get("/collections/grids/items/anything?crs=EPSG:2385").json()["description"]
    assert item == items


def test_crs_aliases_answer_as_their_uri(client):
    answer = client.get("/collections/grids/items?limit=1&crs=gcj02")
    assert answer.status_code == 200 and answer.headers["Content-Crs"] == "<urn:gridcover:def:crs:GCJ-02>"


def test_a_bad_as_of_gets_the_same_message_from_both_lookup_routes(client):
    one = client.get("/lookup?lon=104.0657&lat=30.6595&as_of=May", headers=LOOKUP)
    batch = client.post("/lookup/batch?as_of=May", content="lon,lat\n104.0657,30.6595\n",
                        headers={**LOOKUP, "Content-Type": "text/csv"})
    assert one.status_code == batch.status_code == 400
    assert one.json()["description"] == batch.json()["description"] == "field 'as_of': as_of must be a date YYYY-MM-DD, not 'May'"


def test_the_key_is_checked_before_any_parameter(client):
    assert client.get("/lookup?lon=104.0657&lat=30.6595&as_of=May").status_code == 401
    assert client.get("/grids/as_of?date=May", headers={"X-API-Key": "nobody"}).status_code == 401


def test_the_paging_links_carry_limit_and_offset(client):
    page = client.get("/collections/grids/items?limit=2&offset=2").json()
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert page["numberReturned"] == 2 and "offset=4" in rels["next"] and "offset=0" in rels["prev"]


def test_the_helpers_say_what_is_wrong():
    assert whole_number(None, "limit", default=100, low=1) == 100
    with pytest.raises(ParameterError, match="parameter offset: 'x' is not a whole number"):
        whole_number("x", "offset", default=0, low=0)
    assert crs_key("[http://www.opengis.net/def/crs/EPSG/0/3857]", "bbox-crs") == "EPSG:3857"


def _is_query_or_headers(node: ast.AST) -> bool:
    """``request.query_params``, ``request.headers``, or a local ``params`` standing for the first."""
    return ((isinstance(node, ast.Attribute) and node.attr in ("query_params", "headers"))
            or (isinstance(node, ast.Name) and node.id == "params"))


def test_no_route_reads_a_shared_parameter_by_hand():
    """``limit``, ``offset``, ``bbox``, ``bbox-crs``, ``crs``, ``datetime`` and the key are read in api/params.py
    only: elsewhere in api/ a ``query_params.get(name)`` or ``headers.get("X-API-Key")`` of one is a second
    reading that would drift from the first."""
    shared = {"limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "as_of", "x-api-key"}
    assert _hand_readings(ROOT / "api", shared) == []


def _hand_readings(folder: Path, shared: set[str]) -> list[str]:
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "params.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and _is_query_or_headers(node.func.value) and node.args
                    and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).lower() in shared):
                found.append(f"{path.name}:{node.lineno} reads {node.args[0].value}")
    return found


def test_the_hand_reading_finder_sees_the_old_way(tmp_path):
    (tmp_path / "old.py").write_text("def items(request):\n    params = request.query_params\n"
                                     "    limit = params.get('limit')\n    crs = request.query_params.get('crs')\n"
                                     "    key = request.headers.get('X-API-Key')\n    f = params.get('f')\n",
                                     encoding="utf-8")
    assert _hand_readings(tmp_path, {"limit", "crs", "x-api-key"}) == [
        "old.py:3 reads limit", "old.py:4 reads crs", "old.py:5 reads X-API-Key"]
