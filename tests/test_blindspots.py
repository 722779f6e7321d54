"""Blind spots: cells at risk merged into polygons with their figures, ranked worst first."""

import numpy as np
import pandas as pd
import pytest

from geo.blindspots import blind_spots
from geo.risk import REASONS, load_risk_config

CFG = load_risk_config()


def _case(points):
    """Households at lon/lat points with a colour and reasons."""
    rows = []
    for lon, lat, level, reasons in points:
        rows.append({"lon": lon, "lat": lat, "risk_level": level,
                     **{f"reason_{r}": r in reasons for r in REASONS}, "long_visit_gap": "long_gap" in reasons})
    frame = pd.DataFrame(rows)
    hh = pd.DataFrame({"persons": 2, "grid_id": "G1", "community_id": "C1", "elderly_alone": False,
                       "child_in_difficulty": False, "mental_disorder": frame["risk_level"] == 3, "migrant": False,
                       "rental": False}, index=frame.index)
    return frame["lon"].to_numpy(), frame["lat"].to_numpy(), hh, frame


def test_two_separate_clusters_make_two_spots_ranked_by_weight():
    # cluster A: two red households; cluster B (2 km away): one red; scattered blue lapses elsewhere don't count
    pts = [(104.060, 30.660, 3, {"no_grid"}), (104.0601, 30.6601, 3, {"no_grid"}),
           (104.080, 30.660, 3, {"visit_overdue"}),
           (104.070, 30.670, 1, {"grid_over_capacity"})]
    lon, lat, hh, risk = _case(pts)
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert len(spots) == 2
    assert spots["rank"].tolist() == [1, 2] and spots["weight"].tolist() == [20.0, 10.0]
    assert spots.loc[0, "households"] == 2 and spots.loc[0, "mental_disorder"] == 2
    assert spots.loc[0, "risk"] == "red" and "no_grid" in spots.loc[0, "risk_reasons"]
    assert (spots.geom_type == "Polygon").all() and spots.crs.to_epsg() == 4326


def test_a_lone_routine_lapse_is_no_blind_spot():
    lon, lat, hh, risk = _case([(104.06, 30.66, 1, {"visit_overdue"})])
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert len(spots) == 0


def test_neighbouring_cells_merge_and_unregistered_buildings_count():
    # two unregistered buildings in one cell weigh 10: a blind spot with no household in it
    lon, lat, hh, risk = _case([(104.10, 30.70, 1, {"visit_overdue"})])
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.array([104.06, 104.06001]), np.array([30.66, 30.66001])),
                        config=CFG, metric_crs="EPSG:32648")
    assert len(spots) == 1 and spots.loc[0, "unregistered_buildings"] == 2
    assert spots.loc[0, "households"] == 0 and "unregistered_building" in spots.loc[0, "risk_reasons"]
    # a line of red households 50 m apart spans several adjacent res-10 cells: one spot
    line = [(104.06 + i * 0.0005, 30.66, 3, {"no_grid"}) for i in range(8)]
    lon, lat, hh, risk = _case(line)
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert len(spots) == 1 and spots.loc[0, "cells"] >= 3 and spots.loc[0, "households"] == 8


def test_a_spot_stays_inside_one_community():
    # the same line of red households, the west half in C1 and the east half in C2: two spots, one per
    # community, so each is a place one community's workers answer for (a cell holding households of both
    # goes with the community holding most of its weight; its households are counted in that spot)
    line = [(104.06 + i * 0.0005, 30.66, 3, {"no_grid"}) for i in range(8)]
    lon, lat, hh, risk = _case(line)
    hh["community_id"] = ["C1"] * 4 + ["C2"] * 4
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert len(spots) == 2 and spots["households"].sum() == 8
    assert sorted(s.split(",")[0] for s in spots["community_ids"]) == ["C1", "C2"]
    assert "C2" in set(spots["community_ids"])  # the east spot holds C2's households alone


def _cluster(lon0, lat0, n, step=0.0006):
    """n × n red households in no grid on a square lattice (``step`` degrees apart, about 60 m)."""
    return [(lon0 + i * step, lat0 + j * step, 3, {"no_grid"}) for i in range(n) for j in range(n)]


def test_a_district_sized_cluster_is_cut_into_spots_a_worker_can_walk_round():
    # 12 x 12 red households 60 m apart: about 0.5 km² of one community at risk, one cluster of neighbours
    lon, lat, hh, risk = _case(_cluster(104.06, 30.66, 12))
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert len(spots) > 3
    assert spots["area_m2"].max() <= CFG.max_spot_area_m2 and spots["cells"].max() <= 7
    assert spots["households"].sum() == 144  # every household in exactly one spot
    assert (spots.geom_type == "Polygon").all()  # each piece is one compact, connected place
    # with a cap above the cluster it stays one spot
    from dataclasses import replace
    whole = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)),
                        config=replace(CFG, max_spot_area_m2=5e6), metric_crs="EPSG:32648")
    assert len(whole) == 1 and whole.loc[0, "households"] == 144


def test_the_cap_reads_from_risk_toml():
    from geo.risk import load_risk_config

    assert load_risk_config().max_spot_area_m2 == 110_000
    assert load_risk_config(b"[blindspots]\nmax_area_m2 = 50000\n").max_spot_area_m2 == 50_000


def test_a_spot_says_what_is_wrong_in_it_main_reason_first():
    # one cell: three households in no grid (blue), one with an overdue visit (red: a person with a mental disorder)
    pts = [(104.06, 30.66, 1, {"no_grid"}), (104.06001, 30.66, 1, {"no_grid"}), (104.06002, 30.66, 1, {"no_grid"}),
           (104.06, 30.66001, 3, {"visit_overdue", "missing_services"})]
    lon, lat, hh, risk = _case(pts)
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.array([104.06003]), np.array([30.66])),
                        config=CFG, metric_crs="EPSG:32648")
    s = spots.iloc[0]
    # weight: visit_overdue 10 (a red household) > unregistered building 5 > no_grid 3 x 1
    assert s["main_reason"] == "visit_overdue"
    assert s["reasons_ranked"] == ["visit_overdue", "unregistered_building", "no_grid", "missing_services"]
    assert s["reason_counts"] == [1, 1, 3, 1] and s["reason_units"] == ["户", "栋", "户", "户"]
    assert s["account"] == "C1：需关注 4户；主要：走访逾期 若干户；疑似未登记出租 1栋；不在任何网格 3户；基本服务缺配 1户"
    assert s["account_en"].startswith("C1: 4 households at risk; mainly: visit overdue (special groups, count withheld)")
    assert s["community_id"] == "C1" and s["households_red"] == 1 and s["households_blue"] == 3


def test_places_of_another_reason_slot_in_beside_households():
    # a caller's own places (e.g. hotline cases outside every grid) weigh and count like unregistered buildings
    from geo.blindspots import PointReason

    lon, lat, hh, risk = _case([(104.10, 30.70, 1, {"visit_overdue"})])
    cases = PointReason("no_grid", np.array([104.06, 104.06001]), np.array([30.66, 30.66]), weight=5.0,
                        unit_zh="件", unit_en="cases", community_id=np.array(["C9", "C9"], dtype=object))
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648", points=(cases,))
    assert len(spots) == 1 and spots.loc[0, "weight"] == 10.0 and spots.loc[0, "community_id"] == "C9"
    assert spots.loc[0, "reasons_ranked"] == ["no_grid"] and spots.loc[0, "account"] == "C9：需关注 0户；主要：不在任何网格 2件"


def test_a_spot_is_clipped_to_its_community_and_named():
    import geopandas as gpd
    from shapely.geometry import box

    # the community's edge runs through the middle of the households' cell: the spot keeps its own side
    lon, lat, hh, risk = _case([(104.06, 30.66, 3, {"no_grid"})])
    community = gpd.GeoDataFrame({"id": ["C1"], "name": ["德盛路社区"]}, geometry=[box(104.0, 30.6, 104.06005, 30.7)],
                                 crs="EPSG:4326").to_crs("EPSG:32648")
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648", communities=community)
    whole = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=CFG,
                        metric_crs="EPSG:32648")
    assert spots.loc[0, "community_name"] == "德盛路社区" and spots.loc[0, "account"].startswith("德盛路社区：")
    assert 0 < spots.loc[0, "area_m2"] < whole.loc[0, "area_m2"]
    assert spots.geometry.iloc[0].bounds[2] <= 104.06005 + 1e-9


def test_a_place_in_a_cell_of_no_known_community_is_no_community_of_its_own():
    # an unregistered building far from every household and outside every community polygon: its spot has no
    # community ("" ), never a community called "nan"
    lon, lat, hh, risk = _case([(104.10, 30.70, 1, {"visit_overdue"})])
    spots = blind_spots(lon, lat, hh, risk, under_registered_lonlat=(np.array([104.06, 104.06001]), np.array([30.66, 30.66])),
                        config=CFG, metric_crs="EPSG:32648")
    assert spots["community_id"].tolist() == [""] and spots.loc[0, "unregistered_buildings"] == 2
    assert spots.loc[0, "account"] == "社区不明：需关注 0户；主要：疑似未登记出租 2栋"
