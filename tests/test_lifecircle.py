"""Life-circle figures: origins through gates, minutes and missing lists per household, H3 cells, shares."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.lifecircle import h3_reach, household_origins, household_reach, reach_shares
from geo.reach import Origins, ReachModel, load_config

CONFIG = load_config()
CRS = "EPSG:32648"
X0, Y0 = 404000.0, 3392000.0  # central Chengdu in UTM 48N


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)


@pytest.fixture
def town():
    """A 1 km street with a gated estate north of it and a loose household south of it."""
    roads = _gdf({"highway": ["residential", "residential"]},
                 [shapely.LineString([(X0, Y0), (X0 + 1000, Y0)]), shapely.LineString([(X0 + 1000, Y0), (X0 + 1000, Y0 + 300)])])
    estates = _gdf({"id": ["E1"], "name": ["锦华苑"]}, [shapely.box(X0 + 100, Y0 + 10, X0 + 300, Y0 + 200)])
    gates = _gdf({"id": ["G1"], "estate_id": ["E1"]}, [shapely.Point(X0 + 300, Y0 + 100)])
    buildings = _gdf({"id": ["B1", "B2"], "estate_id": ["E1", None]},
                     [shapely.box(X0 + 190, Y0 + 20, X0 + 210, Y0 + 40), shapely.box(X0 + 790, Y0 - 40, X0 + 810, Y0 - 20)])
    facilities = _gdf({"id": ["K1", "S1", "N1"], "category": ["kindergarten", "shop", "nursing_home"]},
                      [shapely.Point(X0 + 200, Y0 - 5), shapely.Point(X0 + 800, Y0 - 5), shapely.Point(X0 + 1000, Y0 + 300)])
    return roads, estates, gates, buildings, facilities


def test_households_in_a_gated_estate_walk_out_by_the_gate(town):
    roads, estates, gates, buildings, facilities = town
    bid = np.array(["B1", "B1", "B2", None], dtype=object)
    x = np.array([np.nan, np.nan, np.nan, X0 + 500])
    y = np.array([np.nan, np.nan, np.nan, Y0 - 30])
    origins, origin_of = household_origins(x, y, bid, buildings=buildings, estates=estates, gates=gates)
    assert origin_of.tolist() == [0, 0, 1, 2]  # one origin per building, one per loose household
    assert len(origins.entry_origin) == 3 and origins.entry_extra.max() == pytest.approx(np.hypot(100, 70))
    model = ReachModel.build(roads, facilities, origins, config=CONFIG)
    minutes = model.origin_minutes("kindergarten")
    # B1: 122 m to the gate, then round the estate to the street: it does not walk 30 m through the fence
    assert minutes[0] * 60 > 200


def test_household_reach_lists_what_is_missing_within_each_tier(town):
    roads, estates, gates, buildings, facilities = town
    bid = np.array(["B2", "B2"], dtype=object)
    origins, origin_of = household_origins(np.array([np.nan, np.nan]), np.array([np.nan, np.nan]), bid,
                                           buildings=buildings, estates=estates, gates=gates)
    model = ReachModel.build(roads, facilities, origins, config=CONFIG)
    reach = household_reach(model, origin_of, elderly_alone=np.array([False, True]))
    assert reach.loc[0, "reach_shop_min"] == pytest.approx(round((30 + 5) / 60, 1))  # 30 m to the street, 5 m to the shop
    assert np.isnan(reach.loc[0, "reach_mall_min"])  # no mall anywhere: null, not a number
    assert "shop" not in reach.loc[0, "missing_categories"] and "mall" in reach.loc[0, "missing_categories"]
    # the nursing home is 520 m away: 8.7 min general, 9.4 min elderly; both within 15 minutes
    assert reach.loc[1, "reach_nursing_home_min_elderly"] > reach.loc[1, "reach_nursing_home_min"]
    assert "nursing_home" not in reach.loc[1, "missing_categories"]
    assert not reach["basic_complete"].any()
    assert (reach["reach_method"] == "network").all()


def test_elderly_alone_households_are_measured_at_the_elderly_speed():
    roads = _gdf({"highway": ["residential"]}, [shapely.LineString([(X0, Y0), (X0 + 2000, Y0)])])
    fac = _gdf({"id": ["S"], "category": ["shop"]}, [shapely.Point(X0 + 290, Y0)])
    model = ReachModel.build(roads, fac, Origins.simple(np.array([X0]), np.array([Y0])), config=CONFIG)
    reach = household_reach(model, np.array([0, 0]), elderly_alone=np.array([False, True]))
    # 290 m: 4.8 min at 1.0 m/s (within 5), 5.3 min at 0.92 m/s (not within 5)
    assert reach.loc[0, "within_shop"] and not reach.loc[1, "within_shop"]


def test_household_without_location_has_no_figures():
    model = ReachModel.build(None, _gdf({"id": ["S"], "category": ["shop"]}, [shapely.Point(X0, Y0)]),
                             Origins.simple(np.array([X0 + 100]), np.array([Y0])), config=CONFIG)
    reach = household_reach(model, np.array([0, -1]), elderly_alone=np.array([False, False]))
    assert pd.isna(reach.loc[1, "missing_categories"]) and pd.isna(reach.loc[1, "reach_method"])
    assert reach.loc[0, "reach_method"] == "straight_line_estimate"


def test_h3_cells_cover_the_area_and_empty_cells_come_from_their_centre(town):
    roads, estates, gates, buildings, facilities = town
    origins = Origins.simple(np.array([X0 + 500.0]), np.array([Y0 - 30.0]))
    model = ReachModel.build(roads, facilities, origins, config=CONFIG)
    reach = household_reach(model, np.array([0]), elderly_alone=np.array([False]))
    area = gpd.GeoSeries([shapely.box(X0, Y0 - 100, X0 + 1000, Y0 + 300)], crs=CRS).to_crs(4326)
    lonlat = gpd.GeoSeries([shapely.Point(X0 + 500, Y0 - 30)], crs=CRS).to_crs(4326)
    cells = h3_reach(model, household_lonlat=(lonlat.x.to_numpy(), lonlat.y.to_numpy()), reach=reach,
                     area_wgs84=list(area), resolution=10, metric_crs=CRS)
    assert cells["h3"].is_unique and (cells["resolution"] == 10).all()
    assert cells["households"].sum() == 1 and (~cells["from_centre"]).sum() == 1
    assert cells["from_centre"].sum() > 20  # 0.4 km² of res-10 cells (~0.015 km² each)
    inhabited = cells[~cells["from_centre"]].iloc[0]
    assert inhabited["reach_shop_min"] == reach.loc[0, "reach_shop_min"]
    # an empty cell next to the shop reaches it; cells are polygons in WGS-84
    assert cells.crs.to_epsg() == 4326 and (cells.geom_type == "Polygon").all()
    assert cells.loc[cells["from_centre"], "within_shop"].max() == 1.0


def test_h3_resolution_must_be_offered(town):
    roads, *_ , facilities = town
    model = ReachModel.build(roads, facilities, Origins.simple(np.array([X0]), np.array([Y0])), config=CONFIG)
    with pytest.raises(ValueError, match="resolution"):
        h3_reach(model, household_lonlat=(np.array([104.0]), np.array([30.6])), reach=pd.DataFrame(), area_wgs84=[],
                 resolution=7, metric_crs=CRS)


def test_shares_per_level_count_households_persons_and_special_groups():
    reach = pd.DataFrame({f"within_{c}": [True, False, True, False] for c in CONFIG.ids})
    reach["basic_complete"] = [True, False, False, False]
    special = pd.DataFrame({"elderly_alone": [True, True, False, False], "child_in_difficulty": False,
                            "mental_disorder": False, "migrant": [False, False, True, True], "rental": False})
    shares = reach_shares({"grid": np.array(["G1", "G1", "G2", None], dtype=object)}, reach,
                          persons=np.array([1.0, 3.0, 2.0, 2.0]), special=special, config=CONFIG)
    row = shares[(shares["id"] == "G1") & (shares["category"] == "shop")].iloc[0]
    assert row["households"] == 2 and row["households_share"] == 0.5 and row["persons_share"] == 0.25
    assert row["elderly_alone_share"] == 0.5 and np.isnan(row["migrant_share"])  # no migrant in G1: no share
    basic = shares[(shares["id"] == "G2") & (shares["category"] == "basic_set")].iloc[0]
    assert basic["households_share"] == 0.0 and basic["tier"] is None


def test_empty_cells_are_kept_round_the_people_and_services_not_over_the_whole_area(town):
    from geo.lifecircle import area_cells_near, cells_of, life_circle_reach_m

    roads, estates, gates, buildings, facilities = town
    home = shapely.Point(X0 + 500, Y0 - 30)
    origins = Origins.simple(np.array([home.x]), np.array([home.y]))
    model = ReachModel.build(roads, facilities, origins, config=CONFIG)
    reach = household_reach(model, np.array([0]), elderly_alone=np.array([False]))
    # a wide area: 20 × 20 km round the town
    area = list(gpd.GeoSeries([shapely.box(X0 - 10_000, Y0 - 10_000, X0 + 10_000, Y0 + 10_000)], crs=CRS).to_crs(4326))
    lonlat = gpd.GeoSeries([home], crs=CRS).to_crs(4326)
    hh_lonlat = (lonlat.x.to_numpy(), lonlat.y.to_numpy())
    seeds = cells_of(*hh_lonlat, 10)
    every = h3_reach(model, household_lonlat=hh_lonlat, reach=reach, area_wgs84=area, resolution=10, metric_crs=CRS)
    near = h3_reach(model, household_lonlat=hh_lonlat, reach=reach, area_wgs84=area, resolution=10, metric_crs=CRS,
                    seed_cells=seeds)
    assert life_circle_reach_m(CONFIG, 10) == pytest.approx(975.9, abs=0.1)
    # 400 km² of cells against a circle of 976 m round the household's cell: about 3 km²
    assert len(every) > 25_000 and 150 < len(near) < 300
    kept = every.set_index("h3").loc[near["h3"]]
    pd.testing.assert_frame_equal(kept.reset_index().drop(columns="geometry"), near.drop(columns="geometry"))
    # every cell whose centre is within the 15-minute walk (900 m) of the household is kept, none beyond 976 m + a cell
    dist = every.geometry.to_crs(CRS).centroid.distance(home).to_numpy()
    assert set(every.loc[dist <= 900, "h3"]) <= set(near["h3"])
    assert dist[every["h3"].isin(near["h3"]).to_numpy()].max() < 976 + 80
    assert len(area_cells_near(seeds, area, distance_m=976.0, resolution=10, metric_crs=CRS)) == len(near)
    # only the cells of the area: a seed far outside it adds nothing
    far = cells_of(np.array([110.0]), np.array([35.0]), 10)
    assert len(area_cells_near(far, area, distance_m=976.0, resolution=10, metric_crs=CRS)) == 0
