"""The layer declarations, the MVT encoder and the prepared layers (views, suppression, simplification)."""

from __future__ import annotations

import re

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import NotFoundError
from geo.reach import load_config
from layers.base import SPECIAL_GROUP_COUNTS, Style, Class
from layers.catalog import HEATS, LAYERS, find_heat, find_layer
from layers.features import PreparedLayer, View, bbox_to_wgs84, public_view, to_output_crs
from layers.mvt import encode_layer, varints

COLLECTION_IDS = {"streets", "communities", "grids", "estates", "buildings", "facilities", "coverage_issues",
                  "h3_reach", "blindspots", "areas", "households", "cases"}
HEX = re.compile(r"^#[0-9a-f]{6}([0-9a-f]{2})?$")


def test_every_collection_the_issue_names_is_declared_once_with_a_bilingual_legend():
    ids = [lay.id for lay in LAYERS]
    assert set(ids) == COLLECTION_IDS and len(ids) == len(set(ids))
    for lay in LAYERS:
        assert lay.title_zh and lay.title_en and lay.geometry in ("polygon", "point", "line")
        assert 0 <= lay.minzoom <= lay.maxzoom <= 24
        for c in lay.style.classes:
            assert HEX.match(c.color) and c.zh and c.en, (lay.id, c)


def test_tiles_carry_no_personal_data_and_households_need_a_street_office():
    households = find_layer("households")
    assert households.role == "street_office" and not households.tiles
    for lay in LAYERS:
        if not lay.tiles:
            continue
        allowed = {lay.id_field, *lay.public_fields, *lay.counts, "old_estate", "fringe", "load", "tier", "intensity"}
        assert set(lay.tile_fields) <= allowed, lay.id
        for needs_role in lay.role_fields.values():
            assert not set(needs_role) & set(lay.tile_fields), lay.id
    cases = find_layer("cases")  # points for street offices; tiles and the public get counts per grid only
    assert cases.role == "street_office" and cases.public_counts.geometry == "polygon" and not cases.tile_fields
    assert set(cases.public_counts.tile_fields) <= {"id", "name", *cases.public_counts.counts}
    assert set(find_layer("grids").counts) == {*SPECIAL_GROUP_COUNTS, "visits_households"}
    assert find_layer("grids").shares == {"visits_kept_share": "visits_households"}


def test_heat_maps_cover_the_basic_set_every_tier_every_category_and_blind_spots():
    ids = {h.id for h in HEATS}
    config = load_config()
    assert {"basic", "blindspots"} | {c.id for c in config.categories} | {f"tier{c.tier}" for c in config.categories} <= ids
    for h in HEATS:
        assert find_layer(h.layer).geometry == "polygon"
        values = [v for v, _ in h.stops]
        assert values == sorted(values) and all(HEX.match(c) for _, c in h.stops)
    with pytest.raises(NotFoundError, match="unknown heat map"):
        find_heat("nothing")


def test_old_estates_and_fringes_are_derived_for_highlighting():
    estates = pd.DataFrame({"year_built": [1995, 2000, 2001, None]})
    assert find_layer("estates").derived(estates)["old_estate"].tolist() == [True, True, False, False]
    communities = pd.DataFrame({"ur_code": ["111", "112", "122", None]})
    assert find_layer("communities").derived(communities)["fringe"].tolist() == [False, True, True, False]


def test_style_colour_of_follows_classes_and_steps():
    steps = Style(kind="fill", field="v", steps=True,
                  classes=(Class("#000001", "a", "a", 0.0), Class("#000002", "b", "b", 0.5)))
    assert steps.color_of(0.2) == "#000001" and steps.color_of(0.9) == "#000002"
    assert find_layer("blindspots").style.color_of("red") == "#d7191c"
    assert find_layer("grids").style.color_of("something else") == find_layer("grids").style.color_of(None)


def test_varints_match_protobuf():
    assert varints(np.array([1, 127, 128, 300, 2 ** 32 - 1])) == bytes(
        [1, 127, 0x80, 1, 0xAC, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])


def test_mvt_encoder_round_trips_through_the_reference_decoder():
    polys = np.array([
        shapely.Polygon([(10, 10), (100, 10), (100, 100), (10, 100)], [[(20, 20), (20, 50), (50, 50), (50, 20)]]),
        shapely.MultiPolygon([shapely.box(200, 200, 300, 300), shapely.box(400, 400, 500, 500)]),
        shapely.box(1, 1, 1.2, 1.2),  # collapses to nothing at tile resolution: left out
        shapely.Polygon([(600, 600), (600, 700), (700, 700), (700, 600)]),  # clockwise input gets re-wound
    ], dtype=object)
    props = pd.DataFrame({"id": ["a", "b", "c", "d"], "n": [1, 2, 3, -4], "share": [0.5, None, 1.0, 0.25],
                          "name": ["网格一", None, "x", "y"], "flag": [True, False, True, False]})
    data = encode_layer("grids", polys, props, kind="polygon")
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})["grids"]
    features = decoded["features"]
    assert [f["properties"]["id"] for f in features] == ["a", "b", "d"]
    assert features[0]["properties"] == {"id": "a", "n": 1, "share": 0.5, "name": "网格一", "flag": True}
    assert "name" not in features[1]["properties"] and "share" not in features[1]["properties"]
    assert features[2]["properties"]["n"] == -4
    for f, source in zip(features, polys[[0, 1, 3]]):
        assert shapely.geometry.shape(f["geometry"]).area == pytest.approx(source.area)
    points = encode_layer("facilities", np.array([shapely.Point(5, 5), shapely.MultiPoint([(1, 1), (3, 7)])]),
                          pd.DataFrame({"id": ["p", "q"]}), kind="point")
    decoded = mapbox_vector_tile.decode(points, default_options={"y_coord_down": True})["facilities"]["features"]
    assert decoded[0]["geometry"]["coordinates"] == [5, 5]
    assert decoded[1]["geometry"]["coordinates"] == [[1, 1], [3, 7]]


def _coverage(n: int = 6, size: float = 100.0, vertices_per_edge: int = 10) -> gpd.GeoDataFrame:
    """n x n grids whose shared edges wiggle (the same vertices on both sides): a valid coverage."""
    rng = np.random.default_rng(1)
    xs = np.arange(n + 1) * size
    wiggle = {}

    def edge(a, b):
        key = (a, b) if a < b else (b, a)
        if key not in wiggle:
            t = np.linspace(0, 1, vertices_per_edge + 1)[1:-1]
            p = np.array(key[0]) + t[:, None] * (np.array(key[1]) - np.array(key[0]))
            normal = np.array([-(key[1][1] - key[0][1]), key[1][0] - key[0][0]]) / size
            wiggle[key] = p + normal * rng.uniform(-3, 3, (len(t), 1))
        pts = wiggle[key]
        return pts if (a, b) == key else pts[::-1]

    polys = []
    for i in range(n):
        for j in range(n):
            c = [(xs[i], xs[j]), (xs[i + 1], xs[j]), (xs[i + 1], xs[j + 1]), (xs[i], xs[j + 1])]
            ring = []
            for a, b in zip(c, c[1:] + c[:1]):
                ring.append(a)
                ring.extend(map(tuple, edge(a, b)))
            polys.append(shapely.Polygon(ring))
    frame = gpd.GeoDataFrame({"id": [f"G{i}" for i in range(len(polys))], "name": "g", "community_id": "C1",
                              "elderly_alone": np.arange(len(polys)) % 8},
                             geometry=polys, crs="EPSG:32648").to_crs(4326)
    return frame


def test_grid_simplification_keeps_neighbours_sharing_their_edges():
    frame = _coverage()
    assert shapely.coverage_is_valid(frame.geometry.to_crs(3857).to_numpy())
    prepared = PreparedLayer(find_layer("grids"), frame, street_of=None, tag="t")
    for z, tolerance in ((12, 40.0), (14, 10.0)):
        simplified = prepared.simplified(z, tolerance)
        assert shapely.get_num_coordinates(simplified).sum() < shapely.get_num_coordinates(prepared.merc).sum()
        assert shapely.coverage_is_valid(simplified)  # no gaps or overlaps between neighbours: no slivers
        union = shapely.union_all(simplified)
        assert union.area == pytest.approx(shapely.union_all(prepared.merc).area, rel=1e-3)


def test_views_withhold_small_counts_except_in_a_street_offices_own_streets():
    frame = _coverage(n=2)
    street_of = np.array(["S1", "S1", "S2", "S2"], dtype=object)
    prepared = PreparedLayer(find_layer("grids"), frame, street_of=street_of, tag="t")
    counts = frame["elderly_alone"].tolist()  # 0, 1, 2, 3
    assert prepared.properties(public_view(5))["elderly_alone"].tolist()[0] == 0
    assert prepared.properties(public_view(5))["elderly_alone"].isna().tolist() == [False, True, True, True]
    office = View(k=5, roles=frozenset({"public", "lookup", "street_office"}), streets=frozenset({"S1"}))
    seen = prepared.properties(office)["elderly_alone"]
    assert seen.tolist()[:2] == counts[:2] and seen.isna().tolist()[2:] == [True, True]
    admin = View(k=5, roles=frozenset({"public", "lookup", "street_office", "admin"}), streets=None)
    assert prepared.properties(admin)["elderly_alone"].tolist() == counts
    assert prepared.properties(View(k=2))["elderly_alone"].isna().tolist() == [False, True, False, False]


def test_output_crs_and_bbox_crs_round_trip():
    box = shapely.box(104.06, 30.65, 104.07, 30.66)
    lat_first = to_output_crs(np.array([box]), "EPSG:4490")[0]
    assert shapely.bounds(lat_first).tolist() == pytest.approx([30.65, 104.06, 30.66, 104.07])
    back = bbox_to_wgs84((30.65, 104.06, 30.66, 104.07), "EPSG:4490")
    assert back.bounds == pytest.approx(box.bounds)
    gcj = to_output_crs(np.array([box]), "GCJ-02")[0]
    assert bbox_to_wgs84(gcj.bounds, "GCJ-02").bounds == pytest.approx(box.bounds, abs=2e-5)


def test_a_grids_share_of_visit_periods_kept_is_withheld_with_its_small_count():
    frame = _coverage(n=2)
    frame["visits_households"] = [0, 1, 6, 4]
    frame["visits_kept_share"] = [np.nan, 0.0, 0.75, 1.0]  # one household never visited: withheld, it would tell
    prepared = PreparedLayer(find_layer("grids"), frame, street_of=np.array(["S1", "S1", "S2", "S2"], dtype=object),
                             tag="t")
    public = prepared.properties(public_view(5))
    assert public["visits_kept_share"].isna().tolist() == [True, True, False, True]
    assert public["visits_kept_share"].tolist()[2] == 0.75 and public["visits_households"].tolist()[2] == 6
    office = View(k=5, roles=frozenset({"public", "lookup", "street_office"}), streets=frozenset({"S1"}))
    assert prepared.properties(office)["visits_kept_share"].tolist()[1] == 0.0  # its own street: shown
    assert "visits_kept_share" in find_layer("grids").popup


def test_the_visit_records_are_no_map_layer_and_households_stay_with_street_offices():
    with pytest.raises(NotFoundError):
        find_layer("visits")
    assert all(layer.source != "visits" for layer in LAYERS)
    assert find_layer("households").role == "street_office"  # their visit columns go where the households go


def test_a_layer_value_table_encoded_once_gives_each_tile_the_same_bytes_as_its_own_rows():
    from layers.mvt import ValueTable

    polys = np.array([shapely.box(100 * i, 0, 100 * i + 90, 90) for i in range(6)], dtype=object)
    props = pd.DataFrame({"id": list("abcdef"), "n": [1, 2, None, 2, 5, 1], "name": ["甲", None, "乙", "甲", "丙", None],
                          "flag": [True, False, True, True, False, None]})
    table = ValueTable(props)
    rows = np.array([1, 3, 4])
    # the same geometries in metres, which the encoder moves into tile units itself ((c - origin) * scale, y down)
    shifted = shapely.transform(polys[rows], lambda c: c / (2.0, -2.0) + (1000.0, -500.0))
    from_table = encode_layer("grids", shifted, table, rows=rows, kind="polygon", origin=(1000.0, -500.0),
                              scale=(2.0, -2.0))
    by_hand = encode_layer("grids", polys[rows], props.iloc[rows].reset_index(drop=True), kind="polygon")
    decode = mapbox_vector_tile.decode
    assert decode(from_table, default_options={"y_coord_down": True}) == decode(by_hand, default_options={"y_coord_down": True})
    assert decode(from_table)["grids"]["features"][1]["properties"] == {"id": "d", "n": 2, "name": "甲", "flag": True}
