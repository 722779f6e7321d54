"""Assignment: every status code on the tiny district, tie rules, and no household dropped."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import TINY_EXPECTED, UTM, tiny_layers
from geo.assign import STATUSES, assign_communities, assign_households, building_grids, points_in_polygons
from geo.settings import Settings


@pytest.fixture(scope="module")
def tiny():
    return {k: v.to_crs(UTM) for k, v in tiny_layers().items()}


@pytest.fixture(scope="module")
def assigned(tiny):
    out = assign_households(tiny["households"], tiny["buildings"], tiny["grids"])
    out.index = tiny["households"]["id"]
    return out


@pytest.mark.parametrize("hid", sorted(TINY_EXPECTED))
def test_each_household_gets_the_expected_building_grid_and_status(assigned, hid):
    building, grid, status = TINY_EXPECTED[hid]
    row = assigned.loc[hid].where(assigned.loc[hid].notna(), None)
    assert (row["building_id"], row["grid_id"], row["status"]) == (building, grid, status)


def test_every_status_code_occurs_and_counts_add_up(assigned):
    assert set(assigned["status"]) == set(STATUSES)
    assert assigned["status"].value_counts().sum() == len(assigned)


def test_household_given_only_by_building_id_is_located_in_that_building(assigned, tiny):
    row = assigned.loc["H7"]
    assert row["location"] == "building"
    b1 = tiny["buildings"].set_index("id").geometry["B1"]
    assert b1.contains(shapely.Point(row["x"], row["y"]))


def test_a_household_in_a_split_building_follows_the_building_not_its_point(assigned):
    # H2's point is in G2 and so is most of B2: both agree here; the flag tells the worker to check
    assert assigned.loc["H2", "flags"] == "building_split"


def test_point_on_a_shared_grid_boundary_takes_the_smallest_grid_id(assigned):
    assert assigned.loc["H10", "grid_id"] == "G1"
    assert assigned.loc["H10", "status"] == "no_building"  # on the boundary is not an overlap


def test_building_id_wins_over_the_point(tiny):
    hh = tiny["households"].copy()
    hh.loc[hh["id"] == "H1", "building_id"] = "B5"
    out = assign_households(hh, tiny["buildings"], tiny["grids"])
    assert out.loc[hh["id"] == "H1", "building_id"].item() == "B5"


def test_snap_tolerance_is_a_setting(tiny):
    out = assign_households(tiny["households"], tiny["buildings"], tiny["grids"], settings=Settings(snap_tolerance_m=2))
    assert out.loc[tiny["households"]["id"] == "H5", "status"].item() == "no_building"


def test_without_buildings_every_located_household_is_no_building_or_worse(tiny):
    out = assign_households(tiny["households"], None, tiny["grids"])
    located = tiny["households"].geometry.notna().to_numpy()
    assert set(out["status"][located]) <= {"no_building", "outside_all_grids", "in_overlapping_grids"}
    assert (out["status"][~located] == "no_location").all()


def test_building_grids_reports_split_and_overlap(tiny):
    bg = building_grids(tiny["buildings"], tiny["grids"])
    bg.index = tiny["buildings"]["id"]
    assert bool(bg.loc["B2", "split"]) and bg.loc["B2", "grid_id"] == "G2"
    assert bg.loc["B2", "grid_share"] == pytest.approx(2 / 3, abs=1e-6)
    assert bg.loc["B2", "grid_ids"] == "G2,G1"
    assert bool(bg.loc["B3", "in_overlap"]) and not bool(bg.loc["B3", "split"])
    assert bg.loc["B4", "grid"] == -1
    assert not bg.loc[["B1", "B5"], "split"].any()


def test_points_in_polygons_counts_interior_hits():
    polys = np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)])
    pts = shapely.points([0.5, 1.5, 2.5, 9.0, 1.0], [1, 1, 1, 9, 1.0])
    idx, interior = points_in_polygons(pts, polys)
    assert idx.tolist() == [0, 0, 1, -1, 0]
    assert interior.tolist() == [1, 2, 1, 0, 1]


def test_communities_and_streets_follow_the_grid_else_the_community_polygon(tiny, assigned):
    comm, street = assign_communities(assigned["x"].to_numpy(), assigned["y"].to_numpy(), assigned["grid_id"].to_numpy(),
                                      tiny["grids"], tiny["communities"])
    got = dict(zip(assigned.index, comm))
    assert got["H1"] == "C1" and got["H4"] == "C1" and got["H9"] == "C2" and pd.isna(got["H8"])
    assert set(pd.Series(street).dropna()) == {"S1"}


def test_many_households_give_the_same_answer_as_one(tiny):
    # vectorised: the answer for a household does not depend on the others
    hh = tiny["households"]
    whole = assign_households(hh, tiny["buildings"], tiny["grids"])
    for i in range(len(hh)):
        one = assign_households(hh.iloc[[i]], tiny["buildings"], tiny["grids"])
        cols = ["building_id", "grid_id", "status"]
        assert one[cols].astype(object).fillna("-").iloc[0].tolist() == whole[cols].astype(object).fillna("-").iloc[i].tolist()
