"""OGC API – Features Part 1 and 2 as clients see it: pages, filters, CRSs, keys, k-suppression, GDAL."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from serving import KEYS, SAMPLE_STREET, ServerProcess, keys_file, sample_workspace

from api.access import load_keys
from api.app import create_app
from api.ogc import GCJ02_URI
from geo.crs import wgs84_to_gcj02
from gridcover.store import open_workspace

EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
PUBLIC_COLLECTIONS = {"streets", "communities", "grids", "estates", "buildings", "facilities", "coverage_issues",
                      "h3_reach", "areas"}


@pytest.fixture(scope="module")
def workspace():
    return open_workspace(sample_workspace())


@pytest.fixture(scope="module")
def client(workspace):
    return TestClient(create_app(workspace, keys=load_keys(keys_file())))


def key(name: str) -> dict:
    return {"X-API-Key": name}


def test_landing_page_links_the_openapi_30_definition_and_the_collections(client):
    doc = client.get("/", headers={"Accept": "application/json"}).json()
    rels = {link["rel"]: link for link in doc["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    api = client.get(rels["service-desc"]["href"].replace("http://testserver", ""))
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json;version=3.0")
    definition = api.json()
    assert definition["openapi"] == "3.0.3"
    assert "/collections/grids/items" in definition["paths"]
    text = json.dumps(definition)
    assert '"type": "null"' not in text and '"const"' not in text  # 3.1-only constructs rewritten
    params = {p["name"] for p in definition["paths"]["/collections/grids/items"]["get"]["parameters"]}
    assert {"limit", "bbox", "crs", "bbox-crs", "offset"} <= params
    assert "features-2/1.0/conf/crs" in " ".join(client.get("/conformance").json()["conformsTo"])


def test_public_collections_hide_households_and_admin_sees_them(client, workspace):
    public = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert PUBLIC_COLLECTIONS <= public and "households" not in public
    if workspace.has("blindspots"):
        assert "blindspots" in public
    admin = {c["id"] for c in client.get("/collections", headers=key("k-admin")).json()["collections"]}
    assert admin == public | {"households"}
    grids = client.get("/collections/grids").json()
    assert EPSG4490 in grids["crs"] and GCJ02_URI in grids["crs"] and grids["storageCrs"].endswith("CRS84")


def test_items_page_through_next_links_to_every_feature(client, workspace):
    total = len(workspace.read("buildings"))
    seen = []
    url = "/collections/buildings/items?limit=400"
    while url:
        page = client.get(url).json()
        assert page["numberMatched"] == total and page["numberReturned"] == len(page["features"])
        assert page["timeStamp"].endswith("Z")
        seen += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
    assert len(seen) == total == len(set(seen))
    last = client.get("/collections/buildings/items?limit=400&offset=800").json()
    assert any(link["rel"] == "prev" for link in last["links"])


def test_bad_limit_and_unknown_parameters_are_400_naming_the_parameter(client):
    for query, word in (("limit=0", "limit"), ("limit=abc", "limit"), ("limit=10001", "limit"), ("offset=-1", "offset"),
                        ("colour=red", "colour"), ("bbox=1,2,3", "bbox"), ("crs=EPSG:9999", "crs"), ("f=xml", "f")):
        r = client.get(f"/collections/grids/items?{query}")
        assert r.status_code == 400, query
        assert word in r.json()["description"]
    assert client.get("/collections/nowhere/items").status_code == 404
    assert client.get("/collections/grids/items/no-such-grid").status_code == 404


def test_bbox_and_property_filters_select_the_right_grids(client, workspace):
    grids = workspace.read("grids")
    one = grids.iloc[0]
    x0, y0, x1, y1 = shapely.bounds(one.geometry.centroid.buffer(1e-5))
    page = client.get(f"/collections/grids/items?bbox={x0},{y0},{x1},{y1}").json()
    expected = set(grids.loc[grids.intersects(shapely.box(x0, y0, x1, y1)), "id"])
    assert {f["id"] for f in page["features"]} == expected and one["id"] in expected
    page = client.get("/collections/grids/items", params={"community_id": one["community_id"]}).json()
    assert page["numberMatched"] == int((grids["community_id"] == one["community_id"]).sum())
    queryables = client.get("/collections/grids/queryables").json()
    assert "community_id" in queryables["properties"]


def test_crs_parameters_give_cgcs2000_latitude_first_web_mercator_and_gcj02(client, workspace):
    grid_id = workspace.read("grids").iloc[0]["id"]
    base = client.get(f"/collections/grids/items/{grid_id}").json()["geometry"]["coordinates"][0][0]
    lat_first = client.get(f"/collections/grids/items/{grid_id}?crs={EPSG4490}")
    assert lat_first.headers["content-crs"] == f"<{EPSG4490}>"
    assert lat_first.json()["geometry"]["coordinates"][0][0] == pytest.approx(base[::-1], abs=1e-6)
    merc = client.get(f"/collections/grids/items/{grid_id}?crs={EPSG3857}").json()["geometry"]["coordinates"][0][0]
    assert merc[0] == pytest.approx(base[0] * 20037508.342789244 / 180, abs=0.1)
    gcj = client.get(f"/collections/grids/items/{grid_id}?crs={GCJ02_URI}").json()["geometry"]["coordinates"][0][0]
    expected = np.array(wgs84_to_gcj02(np.array([base[0]]), np.array([base[1]]))).ravel()
    assert gcj == pytest.approx(expected.tolist(), abs=2e-7)
    # a bbox given in Web Mercator selects what the same bbox in CRS84 does
    x0, y0 = base[0] - 1e-4, base[1] - 1e-4
    x1, y1 = base[0] + 1e-4, base[1] + 1e-4
    k = 20037508.342789244 / 180
    merc_box = ",".join(str(v) for v in (x0 * k, np.log(np.tan((90 + y0) * np.pi / 360)) / np.pi * 20037508.342789244,
                                         x1 * k, np.log(np.tan((90 + y1) * np.pi / 360)) / np.pi * 20037508.342789244))
    by_merc = client.get(f"/collections/grids/items?bbox={merc_box}&bbox-crs={EPSG3857}").json()
    by_crs84 = client.get(f"/collections/grids/items?bbox={x0},{y0},{x1},{y1}").json()
    assert {f["id"] for f in by_merc["features"]} == {f["id"] for f in by_crs84["features"]} != set()


def test_households_only_for_street_offices_of_their_streets_and_admins(client, workspace):
    assert client.get("/collections/households/items").status_code == 401
    assert client.get("/collections/households/items", headers=key("k-lookup")).status_code == 403
    assert client.get("/collections/households/items", headers=key("k-nobody")).status_code == 401
    own = client.get("/collections/households/items?limit=5", headers=key("k-office")).json()
    expected = int((workspace.read("households")["street_id"].astype(str) == SAMPLE_STREET).sum())
    assert own["numberMatched"] == expected > 0
    assert {f["properties"]["street_id"] for f in own["features"]} == {SAMPLE_STREET}
    other = client.get("/collections/households/items", headers=key("k-other-office")).json()
    assert other["numberMatched"] == 0
    hid = own["features"][0]["id"]
    assert client.get(f"/collections/households/items/{hid}", headers=key("k-other-office")).status_code == 404
    assert client.get(f"/collections/households/items/{hid}", headers=key("k-admin")).status_code == 200


def test_special_group_counts_below_k_are_withheld_from_the_public(workspace):
    grids = workspace.read("grids").set_index("id")
    counts = ["elderly_alone", "child_in_difficulty", "mental_disorder", "migrant", "rental"]
    for k in (5, 30):
        app = create_app(workspace, keys=load_keys(keys_file()), k=k)
        c = TestClient(app)
        public = {f["id"]: f["properties"] for f in c.get("/collections/grids/items?limit=1000").json()["features"]}
        admin = {f["id"]: f["properties"]
                 for f in c.get("/collections/grids/items?limit=1000", headers=key("k-admin")).json()["features"]}
        hidden = 0
        for gid, props in public.items():
            for name in counts:
                true = int(grids.loc[gid, name])
                assert admin[gid][name] == true
                if 0 < true < k:
                    assert props[name] is None
                    hidden += 1
                else:
                    assert props[name] == true
        assert hidden > 0
    # the part-time officers' phones need a key
    assert "info_officer_phone" not in public[next(iter(public))]
    assert "info_officer_phone" in admin[next(iter(admin))]


def test_items_answer_304_to_their_etag(client):
    r = client.get("/collections/estates/items?limit=3")
    assert r.headers["etag"]
    assert client.get("/collections/estates/items?limit=3", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get("/collections/estates/items?limit=4", headers={"If-None-Match": r.headers["etag"]}).status_code == 200


def test_gdal_lists_every_collection_and_reads_every_feature_through_the_pages():
    ws = open_workspace(sample_workspace())
    with ServerProcess(sample_workspace(), keys=keys_file()) as server:
        url = f"OAPIF:{server.url}/"
        listed = {str(name) for name, _ in pyogrio.list_layers(url)}
        expected = {c for c in PUBLIC_COLLECTIONS | {"blindspots"} if ws.has(c)} | {"cases"}  # cases: counts per grid
        assert listed == expected
        for name in sorted(listed):
            frame = pyogrio.read_dataframe(url, layer=name, PAGE_SIZE=250)
            source = ws.read("grids" if name == "cases" else name)
            id_field = "h3" if name == "h3_reach" else "id"
            assert len(frame) == len(source), name
            assert set(frame[id_field].astype(str)) == set(source[id_field].astype(str)), name
        header = sample_workspace().parent / "gdal-headers.txt"
        header.write_text(f"X-API-Key: {next(k for k, v in KEYS.items() if v['role'] == 'admin')}\n", encoding="utf-8")
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(header)})
        try:
            assert "households" in {str(n) for n, _ in pyogrio.list_layers(url)}
            households = pyogrio.read_dataframe(url, layer="households", PAGE_SIZE=5000, columns=["id", "street_id"])
            assert len(households) == len(ws.read("households"))
        finally:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})


def grid_inside(workspace):
    """A grid and a point inside it (lon, lat)."""
    grid = workspace.read("grids").iloc[0]
    point = grid.geometry.representative_point()
    return grid, point.x, point.y


def test_a_point_bbox_finds_the_grid_under_it_and_a_point_far_away_finds_nothing(client, workspace):
    grid, lon, lat = grid_inside(workspace)
    page = client.get(f"/collections/grids/items?bbox={lon},{lat},{lon},{lat}")
    assert page.status_code == 200 and grid["id"] in {f["id"] for f in page.json()["features"]}
    assert client.get("/collections/grids/items?bbox=0,0,0,0").json()["numberMatched"] == 0
    # the same point in CGCS2000, latitude first; a segment (zero height) finds what it crosses
    assert grid["id"] in {f["id"] for f in client.get(
        f"/collections/grids/items?bbox={lat},{lon},{lat},{lon}&bbox-crs={EPSG4490}").json()["features"]}
    assert grid["id"] in {f["id"] for f in client.get(
        f"/collections/grids/items?bbox={lon - 0.01},{lat},{lon + 0.01},{lat}").json()["features"]}


def test_a_west_edge_east_of_the_east_edge_is_a_box_across_the_antimeridian(client, workspace):
    grids = workspace.read("grids")
    x0, y0, x1, y1 = grids.total_bounds
    middle = (x0 + x1) / 2
    # from the middle of the district east to the antimeridian, and from -180 to the district's west edge
    page = client.get(f"/collections/grids/items?bbox={middle},{y0},{x0 - 0.001},{y1}&limit=10000").json()
    expected = set(grids.loc[grids.intersects(shapely.box(middle, y0, 180, y1)), "id"])
    assert {f["id"] for f in page["features"]} == expected and 0 < len(expected) < len(grids)


@pytest.mark.parametrize("bbox, words", [
    ("-inf,30,104,31", "'-inf' is not a finite number"),
    ("nan,30,104,31", "'nan' is not a finite number"),
    ("104,30,1e400,31", "'1e400' is not a finite number"),
    ("-1e308,-1e308,1e308,1e308", "longitude -1e+308 is outside -180..180"),
    ("104,30,200,31", "longitude 200 is outside -180..180"),
    ("104,-100,105,31", "latitude -100 is outside -90..90"),
    ("104,31,105,30", "the south edge 31 lies north of the north edge 30"),
    ("1,2,3", "not 4 (or 6) comma-separated numbers (it has 3)"),
    ("1,2,3,4,5", "not 4 (or 6) comma-separated numbers (it has 5)"),
    ("1,2,x,4", "'x' is not a number"),
    ("", "not 4 (or 6) comma-separated numbers"),
    ("9" * 5000 + ",1,2,3", "is not a finite number"),
])
def test_a_bad_bbox_is_400_saying_what_is_wrong(client, bbox, words):
    r = client.get("/collections/grids/items", params={"bbox": bbox})
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidParameterValue"
    assert r.json()["description"].startswith("parameter bbox: ") and words in r.json()["description"]
    assert len(r.json()["description"]) < 400


def test_a_bbox_is_checked_against_the_bounds_of_its_crs(client):
    # EPSG:4326 is latitude first: 104 in the first place is a latitude
    r = client.get("/collections/grids/items", params={"bbox": "104,30,105,31",
                                                       "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert r.status_code == 400 and "latitude 104 is outside -90..90" in r.json()["description"]
    r = client.get("/collections/grids/items", params={"bbox": "0,0,3e7,1", "bbox-crs": EPSG3857})
    assert r.status_code == 400 and "x 3e+07 is outside" in r.json()["description"]
    assert client.get("/collections/grids/items", params={"bbox": "0,0,0,0", "bbox-crs": EPSG3857}).status_code == 200
    assert client.get("/collections/grids/items", params={"bbox": "0,0,0,0", "bbox-crs": GCJ02_URI}).status_code == 200
    r = client.get("/collections/grids/items", params={"bbox": "1,2,3,4", "bbox-crs": "EPSG:9999"})
    assert r.status_code == 400 and "parameter bbox-crs: unsupported coordinate system 'EPSG:9999'" in r.json()["description"]
    r = client.get("/collections/grids/items", params={"bbox-crs": EPSG3857})
    assert r.status_code == 400 and r.json()["description"] == "parameter bbox-crs: needs a bbox"


@pytest.mark.parametrize("query, words", [
    ("limit=-1", "parameter limit: -1 is out of range"),
    ("limit=" + "9" * 5000, "parameter limit: "),
    ("offset=-5", "parameter offset: -5 is out of range"),
    ("offset=1.5", "parameter offset: '1.5' is not a whole number"),
    ("offset=" + "9" * 5000, "parameter offset: "),
    ("crs=" + "x" * 5000, "parameter crs: unsupported coordinate system"),
    ("datetime=" + "x" * 5000, "parameter datetime:"),
    ("f=" + "x" * 50, "parameter f:"),
    ("x" * 5000 + "=1", "unknown query parameter"),
])
def test_bad_paging_crs_and_format_are_400_with_a_short_message(client, query, words):
    r = client.get(f"/collections/grids/items?{query}")
    assert r.status_code == 400 and words in r.json()["description"]
    assert len(r.json()["description"]) < 600


def test_a_huge_offset_is_an_empty_page_not_an_error(client):
    page = client.get("/collections/grids/items?offset=" + "9" * 30).json()
    assert page["numberReturned"] == 0 and page["numberMatched"] > 0


def test_unknown_collections_features_and_keys_are_4xx_with_the_error_body(client):
    for path, status, code in (("/collections/nowhere", 404, "NotFound"), ("/collections/%00/items", 404, "NotFound"),
                               ("/collections/grids/items/" + "x" * 5000, 404, "NotFound"),
                               ("/collections/grids/items/%00", 404, "NotFound"),
                               ("/collections/grids/items/G01-01?crs=bad", 400, "InvalidParameterValue"),
                               ("/collections/grids/items/G01-01?f=xml", 400, "InvalidParameterValue"),
                               ("/collections/households/items", 401, "Unauthorized")):
        r = client.get(path)
        assert (r.status_code, r.json()["code"]) == (status, code), path
        assert r.json()["description"] and len(r.json()["description"]) < 600
    r = client.get("/collections/households/items", headers=key("k-lookup"))
    assert (r.status_code, r.json()["code"]) == (403, "Forbidden")
    r = client.get("/collections", headers=key("no-such-key"))
    assert (r.status_code, r.json()["code"]) == (401, "Unauthorized")


def test_every_get_answers_head_with_its_status_and_headers_and_no_body(client):
    for path in ("/", "/conformance", "/collections", "/collections/grids", "/collections/grids/items?limit=2",
                 "/collections/grids/items/G01-01", "/collections/grids/queryables", "/openapi",
                 "/collections/nowhere", "/collections/grids/items?bbox=nan,0,1,1"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if "etag" in get.headers:
            assert head.headers["etag"] == get.headers["etag"], path
    assert client.head("/grids/propose").status_code == client.get("/grids/propose").status_code == 405


def test_the_openapi_document_lists_geojson_answers_errors_queryables_and_crs(client):
    doc = client.get("/openapi").json()
    paths = doc["paths"]
    assert doc["components"]["schemas"]["Error"]["required"] == ["code", "description"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    grids = paths["/collections/grids/items"]["get"]
    assert "application/geo+json" in grids["responses"]["200"]["content"]
    assert {"community_id", "id"} <= {p["name"] for p in grids["parameters"]}
    households = paths["/collections/households/items"]["get"]
    assert {"400", "401", "403"} <= set(households["responses"])
    item = paths["/collections/{collection_id}/items/{feature_id}"]["get"]
    assert "application/geo+json" in item["responses"]["200"]["content"]
    assert {"crs", "f"} <= {p["name"] for p in item["parameters"]}
    assert {"400", "404"} <= set(item["responses"])
    error = {"$ref": "#/components/schemas/Error"}
    for path, ops in paths.items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == error, (method, path)
            if method == "post":
                assert "413" in op["responses"], path
    assert "409" in paths["/grids/proposals/{pid}/apply"]["post"]["responses"]
    assert "image/png" in paths["/tiles/heat/{heat_id}/{z}/{x}/{y}.png"]["get"]["responses"]["200"]["content"]
    assert "application/vnd.mapbox-vector-tile" in paths["/tiles/{layer_id}/{z}/{x}/{y}.mvt"]["get"]["responses"]["200"]["content"]


def test_typed_errors_get_their_status_from_one_table():
    from api.app import status_of
    from geo.errors import (ForbiddenError, InputError, KeyRequiredError, NotFoundError, ParameterError)
    from gridcover.store import ConflictError, WorkspaceError

    assert [status_of(e) for e in (ParameterError("bbox", "x"), InputError("x"), KeyRequiredError("x"),
                                   ForbiddenError("x"), NotFoundError("x"), WorkspaceError("x"),
                                   ConflictError("x"))] == [400, 400, 401, 403, 404, 404, 409]


def test_gdal_reads_the_cases_as_counts_per_grid_for_the_public_and_as_points_for_an_admin(tmp_path):
    import shutil

    from gridcover.services.cases import CasesService, CaseViewer, cases_table

    folder = tmp_path / "ws"
    shutil.copytree(sample_workspace(), folder)
    ws = open_workspace(folder)
    grids = ws.read("grids")
    busy, quiet = (g.representative_point() for g in grids.geometry.iloc[:2])
    items = [{"id": f"C{i}", "reported_at": "2026-11-30 09:00", "urgency": "urgent", "lon": p.x, "lat": p.y}
             for i, p in enumerate([busy] * 6 + [quiet] * 2)]
    CasesService(ws).intake(cases_table(items), viewer=CaseViewer(name="12345"))
    analysed = ws.read("cases") if ws.has("cases") else pd.DataFrame({"id": [], "grid_id": []})  # the sample's log
    before = analysed["grid_id"].value_counts()
    with ServerProcess(folder, keys=keys_file()) as server:
        url = f"OAPIF:{server.url}/"
        counts = pyogrio.read_dataframe(url, layer="cases", PAGE_SIZE=250)
        assert len(counts) == len(grids) and counts.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
        by_grid = counts.set_index("id")
        first, second = grids["id"].iloc[0], grids["id"].iloc[1]
        assert by_grid.loc[first, "cases"] == before.get(first, 0) + 6  # k = 5: shown
        shown = by_grid.loc[second, "cases"]
        assert pd.isna(shown) if before.get(second, 0) + 2 < 5 else shown == before.get(second, 0) + 2
        assert all(0 < before.get(g, 0) < 5 for g, n in by_grid["cases"].items() if pd.isna(n) and g != second)
        assert "household_id" not in counts.columns and "address" not in counts.columns
        header = tmp_path / "gdal-headers.txt"
        header.write_text("X-API-Key: k-admin\n", encoding="utf-8")
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(header)})
        try:
            points = pyogrio.read_dataframe(url, layer="cases", PAGE_SIZE=250)
        finally:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})
        located = int((~analysed.geometry.isna()).sum()) if len(analysed) else 0
        assert len(points) == 8 + located and (points.geometry.geom_type == "Point").all()
        mine = points[points["id"].isin([f"C{i}" for i in range(8)])]
        assert set(mine["grid_id"]) == set(grids["id"].iloc[:2]) and (mine["urgency"] == "urgent").all()
        tile = httpx.get(f"{server.url}/tiles/cases.json").json()
        assert set(tile["vector_layers"][0]["fields"]) == {"id", "name", "cases", "open_cases", "overdue_cases",
                                                            "overdue_urgent_cases"}


def test_list_fields_are_json_arrays_in_the_items_not_text(client):
    """Under pandas 3 a text column has the string dtype: the reasons must still come out as arrays."""
    page = client.get("/collections/blindspots/items", headers=key("k-admin"), params={"limit": 5}).json()
    assert page["features"], page
    for feature in page["features"]:
        reasons = feature["properties"]["risk_reasons"]
        assert isinstance(reasons, list) and reasons and all(isinstance(r, str) for r in reasons), reasons
