"""Synthetic districts: what a user of the generator (tests, benchmarks) relies on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.schema import LAYERS
from tools.synthetic import METRIC_CRS, main, make_district

SIZES = {"households": 2_000, "buildings": 200, "grids": 12}


@pytest.fixture(scope="module")
def district():
    return make_district(**SIZES, seed=7, grids_per_community=4, communities_per_street=2)


@pytest.fixture(scope="module")
def metric(district):
    return {name: layer.to_crs(METRIC_CRS) for name, layer in district.items()}


def _same(a, b):
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert np.array_equal(shapely.to_wkb(a.geometry.values), shapely.to_wkb(b.geometry.values))


def test_same_seed_gives_the_same_district(district):
    again = make_district(**SIZES, seed=7, grids_per_community=4, communities_per_street=2)
    for name in district:
        _same(district[name], again[name])


def test_another_seed_gives_another_district(district):
    other = make_district(**SIZES, seed=8, grids_per_community=4, communities_per_street=2)
    assert not district["households"]["address"].equals(other["households"]["address"])


def test_requested_counts_are_honoured(district):
    assert len(district["households"]) == SIZES["households"]
    assert len(district["buildings"]) == SIZES["buildings"]
    assert len(district["grids"]) == SIZES["grids"]
    assert len(district["communities"]) == 3
    assert len(district["streets"]) == 2


def test_layers_carry_every_required_field_of_the_data_model(district):
    for name, layer in district.items():
        for field in LAYERS[name].fields:
            if field.required:
                assert field.name in layer.columns, f"{name}.{field.name}"
        assert layer.crs.to_epsg() == 4326


def test_ids_are_unique_strings(district):
    for name, layer in district.items():
        assert layer["id"].is_unique, name
        assert layer["id"].map(type).eq(str).all(), name


def test_references_resolve(district):
    for name, layer in district.items():
        for field in LAYERS[name].fields:
            if field.references:
                target, key = field.references.split(".")
                values = layer[field.name].dropna()
                assert values.isin(district[target][key]).all(), f"{name}.{field.name}"
    assert district["households"]["building_id"].notna().any()


def test_no_building_crosses_a_grid_boundary(metric):
    tree = shapely.STRtree(metric["grids"].geometry.values)
    b_idx, _ = tree.query(metric["buildings"].geometry.values, predicate="intersects")
    assert np.bincount(b_idx, minlength=len(metric["buildings"])).max() == 1
    b_idx, _ = tree.query(metric["buildings"].geometry.values, predicate="within")
    assert np.array_equal(np.sort(b_idx), np.arange(len(metric["buildings"])))


@pytest.mark.parametrize(("part", "whole", "key"), [("grids", "communities", "community_id"),
                                                    ("communities", "streets", "street_id")])
def test_parts_tile_their_whole_without_gaps_or_overlaps(metric, part, whole, key):
    parts, wholes = metric[part], metric[whole].set_index("id")
    for whole_id, group in parts.groupby(key):
        outline = wholes.geometry[whole_id]
        union = shapely.union_all(group.geometry.values)
        assert shapely.symmetric_difference(union, outline).area < 0.01  # m², reprojection noise
        assert group.geometry.area.sum() == pytest.approx(outline.area, rel=1e-9)  # no overlaps
    assert shapely.union_all(wholes.geometry.values).area == pytest.approx(parts.geometry.area.sum(), rel=1e-9)


def test_households_mix_points_in_near_and_far_from_buildings(metric):
    households, buildings = metric["households"], metric["buildings"].set_index("id")
    point = households.geometry.notna()
    only_building = ~point & households["building_id"].notna()
    assert 0.02 < only_building.mean() < 0.04
    tree = shapely.STRtree(buildings.geometry.values)
    pts = households.geometry[point].values
    inside = np.zeros(len(pts), bool)
    inside[tree.query(pts, predicate="within")[0]] = True
    _, distance = tree.query_nearest(pts[~inside], return_distance=True, all_matches=False)
    assert inside.mean() > 0.95
    assert (distance <= 10).sum() >= 15  # the ~1% to snap (some land in a neighbour)
    assert (distance > 17).sum() >= 3  # the ~0.2% in the streets, never within the 15 m tolerance
    assert not ((distance > 10) & (distance < 17)).any()
    # a point given with a building_id lies in that building
    both = households[point & households["building_id"].notna()]
    assert shapely.within(both.geometry.values, buildings.geometry[both["building_id"]].values).all()


def test_households_carry_plausible_attributes(district):
    households = district["households"]
    assert (households["persons"] >= 0).all()
    assert (households.loc[households["elderly_alone"], "persons"] == 1).all()
    assert households["last_visit"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert households["address"].str.contains("单元").mean() > 0.99


def test_command_line_writes_one_file_per_layer(tmp_path):
    import geopandas as gpd

    main(["--households", "300", "--buildings", "30", "--grids", "2", "--out", str(tmp_path), "--format", "geojson"])
    names = sorted(p.stem for p in tmp_path.glob("*.geojson"))
    assert names == ["buildings", "communities", "estates", "grids", "households", "streets"]
    households = gpd.read_file(tmp_path / "households.geojson")
    assert len(households) == 300 and households["id"].is_unique


# ---- the whole-city case (issue 11): a street register over a wide area, people in a few places ----------

@pytest.fixture(scope="module")
def city():
    from tools.synthetic import make_city

    return make_city()


def test_the_whole_city_tiles_16000_km2_with_343_streets_and_holds_2300_households(city):
    streets = city["streets"].to_crs(METRIC_CRS).geometry.to_numpy()
    assert len(streets) == 343 and city["streets"]["id"].is_unique
    assert shapely.area(streets).sum() / 1e6 == pytest.approx(16_000, rel=1e-6)
    assert shapely.area(shapely.union_all(streets)) / 1e6 == pytest.approx(16_000, rel=1e-6)  # no overlap, no gap
    assert len(city["households"]) == 2300 and len(city["communities"]) == len(city["grids"]) == 343
    # every household is within 3 km of a building: the people live in a few places, the land is empty
    hh = city["households"].to_crs(METRIC_CRS).geometry.to_numpy()
    b = shapely.STRtree(city["buildings"].to_crs(METRIC_CRS).geometry.to_numpy())
    _, dist = b.query_nearest(hh, return_distance=True)
    assert dist.max() < 3_000
    assert (city["communities"]["ur_code"] == "111").sum() <= 5


def test_the_whole_city_follows_the_data_model_and_the_seed(city):
    from tools.synthetic import make_city

    for name, layer in city.items():
        for field in LAYERS[name].fields:
            if field.required:
                assert field.name in layer.columns, f"{name}.{field.name}"
        assert layer.crs.to_epsg() == 4326
    assert city["communities"]["street_id"].isin(city["streets"]["id"]).all()
    assert city["grids"]["community_id"].isin(city["communities"]["id"]).all()
    again = make_city()
    for name in city:
        _same(city[name], again[name])
    assert not make_city(seed=1)["households"].geometry.equals(city["households"].geometry)


def test_the_command_writes_the_whole_city_case(tmp_path):
    assert main(["--city", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {f"{n}.geojson" for n in (
        "streets", "communities", "grids", "buildings", "households", "facilities", "roads")}
