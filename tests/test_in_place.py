"""A PostGIS server answers pages, features and tiles in SQL, and a user sees the same as from the GeoPackage.

The sample workspace is served twice, from its GeoPackage (read whole, in memory) and loaded into PostGIS
(answered in the database: ``layers/in_place.py``); every answer is compared, for every kind of caller.

Tiles are compared tile by tile: the same features (ids), the same properties, and geometries within
``2 × SIMPLIFY_UNITS + 1`` tile units (Hausdorff distance, on the visible tile) with at most 2 vertices more or
fewer. Why not equal: both simplify with GEOS' topology-preserving simplifier at the same tolerance, but
PostGIS links its own GEOS (3.11 here) and shapely another (3.14 here), whose simplifiers keep a different
vertex now and then — each result lies within the tolerance of the stored geometry, so the two lie within
twice it — and ``ST_AsMVTGeom`` snaps to the tile's grid before it clips while the GeoPackage path clips and
then rounds (half a unit each way). Measured on the sample: at most 4.2 units apart on the visible tile,
vertex counts ±1; inside the buffer round the tile a sliver cut by the tile edge may differ more (19 units
along that edge, never drawn).
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from serving import SAMPLE_STREET, keys_file, sample_workspace

from api.access import load_keys
from api.app import create_app
from backends import Backend, postgis_dsn  # noqa: F401 - fixture
from layers.catalog import LAYERS
from layers.features import LayerCache, View
from layers.in_place import in_database, select_features
from layers.mvt import EXTENT
from layers.tiles import SIMPLIFY_UNITS

CALLERS = (None, "k-office", "k-other-office", "k-lookup", "k-admin")
#: Geometry of the two backends' tiles may differ by this much (tile units, see the module docstring).
TILE_TOLERANCE = 2 * SIMPLIFY_UNITS + 1


@pytest.fixture(scope="module")
def backends(postgis_dsn):
    gpkg = Backend("gpkg").open(sample_workspace())
    pg_backend = Backend("postgis", postgis_dsn)
    pg = pg_backend.open(sample_workspace())
    yield gpkg, pg
    pg_backend.close()


@pytest.fixture(scope="module")
def clients(backends):
    keys = load_keys(keys_file())
    return tuple(TestClient(create_app(ws, keys=keys)) for ws in backends)


def database_layers(ws):
    return [lay for lay in LAYERS if in_database(ws, lay) and ws.has(lay.source)]


def answer(client, path: str, caller: str | None):
    r = client.get(path, headers={"X-API-Key": caller} if caller else {})
    if r.headers.get("content-type", "").startswith(("application/geo+json", "application/json")) and r.content:
        doc = r.json()
        if isinstance(doc, dict):
            doc.pop("timeStamp", None)
        return r.status_code, doc
    return r.status_code, r.content


def test_the_postgis_workspace_answers_the_row_layers_in_the_database(backends):
    gpkg, pg = backends
    assert not gpkg.in_place and pg.in_place
    names = {lay.id for lay in database_layers(pg)}
    assert {"households", "buildings", "estates", "h3_reach", "blindspots", "facilities"} <= names
    assert not names & {"grids", "communities", "streets", "cases"}  # coverage and live layers stay in memory


def test_items_pages_are_the_same_on_both_backends_for_every_caller(backends, clients):
    gpkg, pg = backends
    for layer in database_layers(pg):
        first = gpkg.read(layer.source)
        x0, y0, x1, y1 = first.total_bounds
        bbox = f"{x0 + (x1 - x0) * 0.3:.6f},{y0 + (y1 - y0) * 0.3:.6f},{x0 + (x1 - x0) * 0.6:.6f},{y0 + (y1 - y0) * 0.6:.6f}"
        queries = [f"limit=7", "limit=5&offset=11", f"limit=50&bbox={bbox}", f"bbox={bbox}&limit=3&offset=2&crs="
                   "http://www.opengis.net/def/crs/EPSG/0/4490"]
        for name in layer.queryables:
            if name in first.columns:
                value = str(first[name].iloc[len(first) // 2])
                queries.append(f"limit=4&{name}={value}")
        for query in queries:
            for caller in CALLERS:
                path = f"/collections/{layer.id}/items?{query}"
                assert answer(clients[0], path, caller) == answer(clients[1], path, caller), (path, caller)


def test_a_street_office_pages_through_its_own_households_only_on_postgis(clients):
    status, doc = answer(clients[1], "/collections/households/items?limit=20&offset=40", "k-office")
    assert status == 200 and doc["numberReturned"] == 20 and doc["numberMatched"] > 60
    assert {f["properties"]["street_id"] for f in doc["features"]} == {SAMPLE_STREET}
    assert answer(clients[1], "/collections/households/items", "k-other-office")[1]["numberMatched"] == 0
    assert answer(clients[1], "/collections/households/items", None)[0] == 401


def test_single_features_collections_and_tilejson_are_the_same_on_both_backends(backends, clients):
    gpkg, pg = backends
    households = gpkg.read("households")["id"].astype(str)
    paths = [f"/collections/households/items/{households.iloc[0]}", f"/collections/households/items/{households.iloc[-1]}",
             "/collections/households/items/no-such-household", "/collections"]
    for layer in database_layers(pg):
        ids = gpkg.read(layer.source)[layer.id_field].astype(str)
        paths += [f"/collections/{layer.id}", f"/collections/{layer.id}/queryables",
                  f"/collections/{layer.id}/items/{ids.iloc[len(ids) // 3]}?crs=http://www.opengis.net/def/crs/EPSG/0/3857"]
        if layer.tiles:
            paths.append(f"/tiles/{layer.id}.json")
    for path in paths:
        for caller in CALLERS:
            assert answer(clients[0], path, caller) == answer(clients[1], path, caller), (path, caller)


def test_equals_filters_compare_numbers_booleans_and_text_as_in_memory(backends):
    gpkg, pg = backends
    admin = View(k=5, roles=frozenset({"public", "lookup", "grid_worker", "street_office", "admin"}), streets=None)
    cases = [("buildings", {"floors": "7"}), ("buildings", {"floors": "7.0"}), ("buildings", {"floors": "seven"}),
             ("buildings", {"floors": "nan"}), ("buildings", {"residential": " TRUE "}),
             ("buildings", {"residential": "false"}), ("buildings", {"residential": "yes"}),
             ("buildings", {"name": ""}), ("households", {"status": "ok"}), ("households", {"status": "OK"})]
    for layer_id, equals in cases:
        found = [select_features(ws, LayerCache(), layer_id, view=admin, equals=equals) for ws in backends]
        ids = [page.source.ids[page.rows].tolist() for page in found]
        assert ids[0] == ids[1] and found[0].matched == found[1].matched, (layer_id, equals)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}


def tiles_over(bounds, z: int, most: int) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = bounds
    n = 1 << z

    def ty(lat):
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    tiles = [(x, y) for x in range(int((x0 + 180) / 360 * n), int((x1 + 180) / 360 * n) + 1)
             for y in range(ty(y1), ty(y0) + 1)]
    return [tiles[i] for i in np.unique(np.linspace(0, len(tiles) - 1, most).astype(int))] if len(tiles) > most else tiles


def _visible(geometry):
    return shapely.clip_by_rect(shapely.make_valid(geometry), 0, 0, EXTENT, EXTENT)


def test_tiles_are_the_same_on_both_backends_tile_by_tile(backends, clients):
    gpkg, pg = backends
    compared = 0
    for layer in database_layers(pg):
        if not layer.tiles:
            continue
        bounds = gpkg.read(layer.source).total_bounds
        for z in range(layer.minzoom, 19):
            for x, y in tiles_over(bounds, z, 24):
                path = f"/tiles/{layer.id}/{z}/{x}/{y}.mvt"
                mine, theirs = (decode(c.get(path).content).get(layer.id, {"features": []})["features"] for c in clients)
                a = {f["properties"][layer.id_field]: f for f in mine}
                b = {f["properties"][layer.id_field]: f for f in theirs}
                assert set(a) == set(b), (path, set(a) ^ set(b))
                for fid, feature in a.items():
                    assert feature["properties"] == b[fid]["properties"], (path, fid)
                    ga, gb = (shapely.geometry.shape(f["geometry"]) for f in (feature, b[fid]))
                    assert abs(shapely.get_num_coordinates(ga) - shapely.get_num_coordinates(gb)) <= 2, (path, fid)
                    va, vb = _visible(ga), _visible(gb)
                    if not (va.is_empty or vb.is_empty):
                        assert shapely.hausdorff_distance(va, vb) <= TILE_TOLERANCE, (path, fid)
                    compared += 1
    assert compared > 5000


def test_heat_map_tiles_are_the_same_pixels_on_both_backends(backends, clients):
    gpkg, _ = backends
    drawn = 0
    for heat, source in (("basic", "h3_reach"), ("tier15", "h3_reach"), ("blindspots", "blindspots")):
        bounds = gpkg.read(source).total_bounds
        for z in (13, 15):
            for x, y in tiles_over(bounds, z, 6):
                path = f"/tiles/heat/{heat}/{z}/{x}/{y}.png"
                mine, theirs = (c.get(path) for c in clients)
                assert mine.status_code == theirs.status_code == 200 and mine.content == theirs.content, path
                drawn += len(mine.content) > 200  # not the empty tile
    assert drawn > 5


def test_special_group_counts_are_withheld_in_postgis_tiles_as_in_the_geopackage(backends, clients):
    gpkg, pg = backends
    spots = gpkg.read("blindspots")
    small = spots[(spots["elderly_alone"] > 0) & (spots["elderly_alone"] < 5)]
    assert len(small)
    lon, lat = small.geometry.iloc[0].representative_point().coords[0]
    z = 15
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    features = decode(clients[1].get(f"/tiles/blindspots/{z}/{x}/{y}.mvt").content)["blindspots"]["features"]
    shown = {f["properties"]["id"]: f["properties"] for f in features}
    assert "elderly_alone" not in shown[str(small["id"].iloc[0])]


def test_a_postgis_server_never_reads_a_whole_row_layer(backends, clients, monkeypatch):
    gpkg, pg = backends
    read = []
    original = type(pg).read

    def recording(self, name):
        read.append(name)
        return original(self, name)
    monkeypatch.setattr(type(pg), "read", recording)
    app = create_app(pg, keys=load_keys(keys_file()))
    client = TestClient(app)
    rows = {lay.source for lay in database_layers(pg)}
    for layer in database_layers(pg):
        for caller in CALLERS:
            client.get(f"/collections/{layer.id}/items?limit=10&offset=3", headers={"X-API-Key": caller} if caller else {})
        client.get(f"/collections/{layer.id}")
        if layer.tiles:
            client.get(f"/tiles/{layer.id}.json")
            client.get(f"/tiles/{layer.id}/16/51714/26897.mvt")
    for heat in ("basic", "blindspots"):
        client.get(f"/tiles/heat/{heat}.json")
        client.get(f"/tiles/heat/{heat}/15/25857/13448.png")
    client.get("/collections")
    assert read and not set(read) & rows, sorted(set(read) & rows)  # the grids etc. are read, no row layer
    tile = client.get("/tiles/buildings/16/51714/26897.mvt").content
    assert len(decode(tile)["buildings"]["features"]) > 10  # the tiles asked hold features (answered, not empty)
