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
