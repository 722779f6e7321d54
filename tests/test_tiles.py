"""Vector and heat-map tiles as a map client sees them: right features, no personal data, fresh ETags."""

from __future__ import annotations

import io
import math
import re
import shutil

import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from serving import sample_workspace

from api.app import create_app
from gridcover.store import open_workspace
from layers.catalog import LAYERS
from layers.tiles import tile_bounds

PERSONAL = {"address", "worker_phone", "info_officer_phone", "mediator_phone", "persons_list", "last_visit"}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def workspace():
    return open_workspace(sample_workspace())


@pytest.fixture(scope="module")
def client(workspace):
    return TestClient(create_app(workspace))


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}


def test_a_grid_tile_holds_exactly_the_grids_it_touches_with_display_attributes(client, workspace):
    grids = workspace.read("grids")
    lon, lat = grids.geometry.iloc[0].representative_point().coords[0]
    for z in (13, 15):
        x, y = tile_of(lon, lat, z)
        r = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        layer = decode(r.content)["grids"]
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        box = shapely.box(minx, miny, maxx, maxy)
        merc = grids.to_crs(3857)
        expected = set(merc.loc[merc.intersects(box), "id"])
        got = {f["properties"]["id"] for f in layer["features"]}
        # the tile buffer may add grids just outside the tile, never drop one inside it
        assert expected <= got and grids["id"].iloc[0] in got
        props = layer["features"][0]["properties"]
        assert {"name", "worker_name", "households", "load"} <= set(props)
        assert not PERSONAL & set(props)
        # geometry in tile units, inside the buffered extent
        coords = np.array(shapely.get_coordinates(shapely.geometry.shape(layer["features"][0]["geometry"])))
        assert coords.min() >= -64 and coords.max() <= 4096 + 64


def test_tiles_withhold_special_group_counts_below_k(workspace):
    client = TestClient(create_app(workspace, k=30))
    grids = workspace.read("grids").set_index("id")
    lon, lat = grids.geometry.iloc[0].representative_point().coords[0]
    x, y = tile_of(lon, lat, 13)
    features = decode(client.get(f"/tiles/grids/13/{x}/{y}.mvt").content)["grids"]["features"]
    checked = 0
    for f in features:
        true = int(grids.loc[f["properties"]["id"], "elderly_alone"])
        if 0 < true < 30:
            assert "elderly_alone" not in f["properties"]
            checked += 1
        else:
            assert f["properties"]["elderly_alone"] == true
    assert checked > 0


def test_households_are_never_tiles(client):
    assert client.get("/tiles/households/15/1/1.mvt").status_code == 404
    assert client.get("/tiles/households.json").status_code == 404
    assert client.get("/tiles/grids/13/0/99999.mvt").status_code == 404
    assert client.get("/tiles/grids/13/a/1.mvt").status_code == 404


def test_tilejson_describes_every_tiled_layer(client, workspace):
    for layer in LAYERS:
        if not layer.tiles or not workspace.has(layer.source):
            continue
        doc = client.get(f"/tiles/{layer.id}.json").json()
        assert doc["tilejson"] == "3.0.0" and doc["tiles"][0].endswith(f"/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt")
        assert doc["vector_layers"][0]["id"] == layer.id
        assert doc["minzoom"] == layer.minzoom and len(doc["bounds"]) == 4


def test_heat_tiles_colour_the_cells_and_leave_the_rest_transparent(client, workspace):
    cells = workspace.read("h3_reach")
    lon, lat = cells.geometry.iloc[0].representative_point().coords[0]
    x, y = tile_of(lon, lat, 14)
    for heat in ("basic", "tier15", "shop"):
        r = client.get(f"/tiles/heat/{heat}/14/{x}/{y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        image = np.asarray(Image.open(io.BytesIO(r.content)))
        assert image.shape == (256, 256, 4)
        alpha = image[:, :, 3]
        assert (alpha > 0).any()
    far = client.get("/tiles/heat/basic/14/0/0.png")
    assert (np.asarray(Image.open(io.BytesIO(far.content)))[:, :, 3] == 0).all()
    assert client.get("/tiles/heat/nothing/14/0/0.png").status_code == 404
    assert client.get("/tiles/heat/basic.json").json()["tiles"][0].endswith("/tiles/heat/basic/{z}/{x}/{y}.png")


def test_etag_answers_304_until_the_workspace_changes(tmp_path):
    folder = tmp_path / "ws"
    shutil.copytree(sample_workspace(), folder)
    workspace = open_workspace(folder)
    client = TestClient(create_app(workspace))
    grids = workspace.read("grids")
    gid = grids["id"].iloc[0]
    lon, lat = grids.geometry.iloc[0].representative_point().coords[0]
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/grids/15/{x}/{y}.mvt"
    first = client.get(url)
    etag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # a planner renames the grid in QGIS: the very next request sees it
    edited = pyogrio.read_dataframe(folder / "workspace.gpkg", layer="grids")
    edited.loc[edited["id"] == gid, "name"] = "改名网格"
    pyogrio.write_dataframe(edited, folder / "workspace.gpkg", layer="grids", driver="GPKG")
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    names = {f["properties"]["id"]: f["properties"]["name"] for f in decode(fresh.content)["grids"]["features"]}
    assert names[gid] == "改名网格"


def test_a_cached_tile_is_answered_before_routing_with_the_same_bytes_and_etag(client, workspace):
    from api.tiles import cached_tile

    grids = workspace.read("grids")
    lon, lat = grids.geometry.iloc[1].representative_point().coords[0]
    x, y = tile_of(lon, lat, 14)
    path = f"/tiles/grids/14/{x}/{y}.mvt"
    first = client.get(path)  # rendered by the route and cached
    cache = client.app.state.tile_cache
    status, headers, body = cached_tile(workspace, 5, path, None, cache=cache)
    assert status == 200 and body == first.content and headers["ETag"] == first.headers["etag"]
    assert cached_tile(workspace, 5, path, first.headers["etag"], cache=cache)[0] == 304
    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert cached_tile(workspace, 5, "/tiles/heat/grids/14/1/1.mvt", None, cache=cache) is None  # not a tile path


def test_each_app_owns_its_caches_so_a_new_app_draws_afresh(client, workspace):
    from api.tiles import cached_tile

    grids = workspace.read("grids")
    lon, lat = grids.geometry.iloc[2].representative_point().coords[0]
    x, y = tile_of(lon, lat, 15)
    path = f"/tiles/grids/15/{x}/{y}.mvt"
    first = client.get(path)
    other = TestClient(create_app(workspace))
    assert other.app.state.tile_cache is not client.app.state.tile_cache
    assert other.app.state.layer_cache is not client.app.state.layer_cache
    assert cached_tile(workspace, 5, path, None, cache=other.app.state.tile_cache) is None  # nothing shared
    again = other.get(path)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert cached_tile(workspace, 5, path, None, cache=other.app.state.tile_cache)[2] == first.content


def test_tile_addresses_that_do_not_exist_are_404_with_a_short_message_never_500(client):
    digits = "9" * 5000
    for path in (f"/tiles/grids/1/1/{digits}.mvt", f"/tiles/grids/{digits}/0/0.mvt", "/tiles/grids/3/-1/1.mvt",
                 "/tiles/grids/99999999999999999999/0/0.mvt", "/tiles/grids/25/0/0.mvt", "/tiles/grids/1/2/0.mvt",
                 "/tiles/grids/%D9%A3/0/0.mvt", "/tiles/grids/1.5/0/0.mvt", f"/tiles/heat/basic/1/1/{digits}.png",
                 "/tiles/heat/basic/30/0/0.png", "/tiles/nowhere/1/0/0.mvt", "/tiles/heat/nowhere/1/0/0.png",
                 "/tiles/nowhere.json", "/tiles/heat/nowhere.json"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["code"] == "NotFound" and len(r.json()["description"]) < 400, path
    assert "zoom 25 is outside 0..24" in client.get("/tiles/grids/25/0/0.mvt").json()["description"]
    assert "x and y must be in 0..1 at zoom 1" in client.get("/tiles/grids/1/2/0.mvt").json()["description"]


def test_a_huge_tile_number_is_404_also_on_the_cached_fast_path(client, workspace):
    grids = workspace.read("grids")
    c = grids.union_all().centroid
    x, y = tile_of(c.x, c.y, 15)
    assert client.get(f"/tiles/grids/15/{x}/{y}.mvt").status_code == 200  # now cached: the fast path is armed
    assert client.get(f"/tiles/grids/15/{x}/{'9' * 5000}.mvt").status_code == 404


def test_tilejson_version_is_semver_and_names_the_workspace_version(client, workspace):
    for path in ("/tiles/grids.json", "/tiles/heat/basic.json"):
        doc = client.get(path).json()
        assert re.fullmatch(r"\d+\.\d+\.\d+", doc["version"]), path
        assert doc["gridcover:workspace"] == workspace.tag, path


def test_tiles_answer_head_with_the_headers_of_get_and_no_body(client, workspace):
    c = workspace.read("grids").union_all().centroid
    x, y = tile_of(c.x, c.y, 14)
    for path in (f"/tiles/grids/14/{x}/{y}.mvt", f"/tiles/heat/basic/14/{x}/{y}.png", "/tiles/grids.json"):
        for _ in range(2):  # rendered, then from the cache (the fast path)
            get, head = client.get(path), client.head(path)
            assert (head.status_code, head.content) == (200, b""), path
            assert head.headers["content-type"] == get.headers["content-type"], path
            assert head.headers.get("etag") == get.headers.get("etag"), path


def _tiles_around(workspace, zooms=(12, 13, 15, 17)) -> list[tuple[int, int, int]]:
    c = workspace.read("grids").union_all().centroid
    out = []
    for z in zooms:
        x, y = tile_of(c.x, c.y, z)
        out += [(z, x, y), (z, x + 1, y), (z, x, y - 1)]
    return out


def test_tiles_prepared_before_the_first_request_are_the_tiles_drawn_on_demand(workspace):
    from layers.features import LayerCache
    from layers.tiles import TileCache, prepare_tiles, vector_tile

    prepared_layers, prepared_tiles = LayerCache(), TileCache()
    done = prepare_tiles(workspace, k=5, layer_cache=prepared_layers, tile_cache=prepared_tiles)
    assert {"grids", "buildings", "cases"} <= set(done) and "households" not in done
    fresh = LayerCache()
    for layer in ("grids", "buildings", "cases", "blindspots"):
        for z, x, y in _tiles_around(workspace):
            ready = vector_tile(workspace, layer, z, x, y, k=5, layer_cache=prepared_layers, tile_cache=prepared_tiles)
            assert ready == vector_tile(workspace, layer, z, x, y, k=5, layer_cache=fresh), (layer, z, x, y)
    # the public counts of cases per grid are drawn on the grids' geometries: simplified once, not twice
    grids, cases = prepared_layers.prepare(workspace, "grids"), prepared_layers.prepare(workspace, "cases")
    assert grids.geometry_key == cases.geometry_key
    assert grids.simplified(13, 1.0) is cases.simplified(13, 1.0)


def test_processes_sharing_a_tile_folder_draw_each_tile_and_each_zoom_once(tmp_path, workspace):
    from layers.tiles import TileCache

    one, other = TileCache(folder=tmp_path), TileCache(folder=tmp_path)
    key = (str(workspace.path), "v1-a", 5, "mvt", "grids", 13, 1, 2)
    one.put(key, b"tile bytes")
    assert other.get(key) == b"tile bytes"  # drawn by one process, answered by the other
    assert not list(tmp_path.rglob(".tmp-*"))  # written through a temporary file moved into place
    made = []
    shared_key = (f"{workspace.path}#simplified-grids", "abc", 13)
    assert one.shared(shared_key, lambda: made.append(1) or b"simplified") == b"simplified"
    assert other.shared(shared_key, lambda: made.append(2) or b"again") == b"simplified" and made == [1]
    # a new workspace version: its tiles in a folder of their own, the old version's folder removed
    newer = (str(workspace.path), "v2-b", 5, "mvt", "grids", 13, 1, 2)
    assert other.get(newer) is None
    other.put(newer, b"new bytes")
    assert one.get(newer) == b"new bytes" and TileCache(folder=tmp_path).get(key) is None


def test_tiles_through_a_shared_folder_are_the_same_tiles(tmp_path, workspace):
    client = TestClient(create_app(workspace, k=30, tile_folder=str(tmp_path)))
    plain = TestClient(create_app(workspace, k=30))
    for z, x, y in _tiles_around(workspace, zooms=(13, 15)):
        path = f"/tiles/grids/{z}/{x}/{y}.mvt"
        assert client.get(path).content == plain.get(path).content, path
    other = TestClient(create_app(workspace, k=30, tile_folder=str(tmp_path)))  # a second process, in effect
    z, x, y = _tiles_around(workspace, zooms=(13,))[0]
    assert other.app.state.tile_cache.get(
        (str(workspace.path), *_key_tail(workspace, z, x, y))) == plain.get(f"/tiles/grids/{z}/{x}/{y}.mvt").content


def _key_tail(workspace, z, x, y):
    from layers.features import layer_version

    return (layer_version(workspace, "grids"), 30, "mvt", "grids", z, x, y)


def test_what_a_tile_holds_is_named_once_for_every_backend():
    from layers.catalog import find_layer
    from layers.tiles import EXTENT, TILE_BUFFER, simplify_tolerance, tile_fields, tile_zooms

    grids = find_layer("grids")
    assert (EXTENT, TILE_BUFFER) == (4096, 64)
    assert simplify_tolerance(grids, 15) == pytest.approx(2 * 20037508.342789244 / 2 ** 15 / 4096 * 4)
    assert simplify_tolerance(grids, grids.maxzoom) == 0 and simplify_tolerance(find_layer("facilities"), 13) == 0
    assert list(tile_zooms(grids)) == list(range(grids.minzoom, grids.maxzoom))
    assert tile_fields(grids, ["households", "id", "worker_phone", "name"]) == ["id", "name", "households"]
