"""The facilities layer: OSM tags mapped to categories, and data quality (is the data or the service missing?)."""

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from geo.errors import ConfigError
from geo.facilities import data_quality, facility_counts, load_facility_rules, osm_categories
from geo.reach import load_config

CONFIG = load_config()
RULES = load_facility_rules()


def _street(households: int) -> pd.DataFrame:
    return pd.DataFrame({"id": ["S1"], "name": ["太升路街道"], "households": [households]})


def _counts(**per_category) -> pd.DataFrame:
    return pd.DataFrame({"street_id": "S1", "category": list(per_category), "facilities": list(per_category.values())})


def test_a_street_with_almost_no_kindergartens_is_told_its_data_is_probably_incomplete():
    # 29,574 households: GB 50180 wants one kindergarten per 5-minute circle of at most 4,000 homes, so >= 7
    issues = data_quality(_counts(kindergarten=1), _street(29_574), config=CONFIG, rules=RULES)
    kg = next(i for i in issues if i["category"] == "kindergarten")
    assert kg["layer"] == "facilities" and kg["kind"] == "sparse_facilities"
    assert kg["facilities"] == 1 and kg["expected_min"] == 7 and kg["tier"] == 5
    assert "幼儿园仅 1 处" in kg["message"] and "设施数据可能不完整" in kg["message"]
    assert "probably incomplete" in kg["message_en"] and "29,574" in kg["message_en"]


def test_enough_facilities_or_a_small_area_raise_nothing():
    full = {c.id: 40 for c in CONFIG.categories}
    assert data_quality(_counts(**full), _street(29_574), config=CONFIG, rules=RULES) == []
    # half the standard's least count is enough (min_share 0.5): 4 of 7 kindergartens pass, 3 do not
    four = data_quality(_counts(**{**full, "kindergarten": 4}), _street(29_574), config=CONFIG, rules=RULES)
    three = data_quality(_counts(**{**full, "kindergarten": 3}), _street(29_574), config=CONFIG, rules=RULES)
    assert four == [] and [i["category"] for i in three] == ["kindergarten"]
    # 3,000 households fill less than one 5-minute circle: no facility is "missing from the data"
    assert data_quality(_counts(), _street(3_000), config=CONFIG, rules=RULES) == []


def test_a_missing_layer_is_named():
    issues = data_quality(_counts(), _street(100), config=CONFIG, rules=RULES, missing_layers=("facilities", "roads"))
    assert [(i["layer"], i["category"], i["kind"]) for i in issues] == [("facilities", None, "layer_missing"),
                                                                         ("roads", None, "layer_missing")]
    assert all(i["message"] and i["message_en"] for i in issues)


def test_facilities_are_counted_inside_each_street_and_unknown_categories_are_left_out():
    streets = gpd.GeoDataFrame({"id": ["S1", "S2"]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=32648)
    fac = gpd.GeoDataFrame({"category": ["shop", "shop", "shop", "spa"]},
                           geometry=[Point(5, 5), Point(150, 5), Point(900, 5), Point(6, 6)], crs=32648)
    counts = facility_counts(fac, streets, config=CONFIG)
    assert counts.values.tolist() == [["S1", "shop", 1], ["S2", "shop", 1]]


def test_osm_tags_map_to_categories_where_they_are_a_fair_match():
    tags = pd.DataFrame({"amenity": ["kindergarten", "clinic", "pharmacy", "school", "school", None, None],
                         "shop": [None, None, None, None, None, "supermarket", "convenience"],
                         "isced:level": [None, None, None, "1", None, None, None]})
    assert osm_categories(tags, RULES).tolist() == ["kindergarten", "health_station", None, "primary_school", None,
                                                    "market", "shop"]


def test_bad_thresholds_are_refused_naming_the_file():
    with pytest.raises(ConfigError, match="categories.toml: \\[data_quality\\] min_share"):
        load_facility_rules(b"[data_quality]\nmin_share = 0\n", source="categories.toml")
    with pytest.raises(ConfigError, match="osm must be a list of tag tables"):
        load_facility_rules(b"[[category]]\nid = 'shop'\ntier = 5\nosm = ['shop=convenience']\n", source="categories.toml")


def test_the_sample_analysis_flags_only_what_its_data_lacks(sample_analysis):
    # the sample's synthetic layer gives the daily services their real density; OSM alone has no small sports
    # ground inside the street, and nothing was added for them: the data, not the service, is what is missing
    quality = sample_analysis[0].summary["data_quality"]
    assert [(q["layer"], q["category"]) for q in quality] == [("facilities", "small_sports")]
    assert {"layer", "category", "message", "message_en"} <= set(quality[0])
