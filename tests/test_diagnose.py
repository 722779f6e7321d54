"""Grid diagnostics: gaps, overlaps, outside-community parts, split buildings and workload."""

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity

from conftest import UTM, tiny_layers
from geo.assign import assign_households, building_grids
from geo.diagnose import community_coverage, grid_coverage_issues, grid_workload
from geo.settings import Settings


@pytest.fixture(scope="module")
def tiny():
    return {k: v.to_crs(UTM) for k, v in tiny_layers().items()}


@pytest.fixture(scope="module")
def issues(tiny):
    bg = building_grids(tiny["buildings"], tiny["grids"])
    a = assign_households(tiny["households"], tiny["buildings"], tiny["grids"], building_grid=bg)
    located = pd.DataFrame({"x": a["x"], "y": a["y"], "persons": tiny["households"]["persons"].astype(float),
                            "building_id": a["building_id"]})
    return grid_coverage_issues(tiny["grids"], tiny["communities"], tiny["buildings"], bg, located)


def _one(issues, kind, community=None):
    rows = issues[issues["kind"] == kind]
    if community:
        rows = rows[rows["community_id"] == community]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_the_gap_between_grids_is_found_with_its_household(issues):
    gap = _one(issues, "gap", "C1")
    assert gap["area_m2"] == pytest.approx(10 * 100, rel=1e-3)
    assert (gap["households"], gap["persons"]) == (1, 4)
    assert not gap["sliver"]


def test_the_uncovered_village_is_a_gap_of_its_community(issues):
    gap = _one(issues, "gap", "C2")
    assert gap["area_m2"] == pytest.approx(100 * 80, rel=1e-3)
    assert gap["households"] == 1


def test_the_overlap_names_both_grids_and_holds_its_household(issues):
    overlap = _one(issues, "overlap")
    assert overlap["grid_ids"] == "G4,G5"
    assert overlap["area_m2"] == pytest.approx(10 * 120, rel=1e-3)
    assert overlap["households"] == 1


def test_a_grid_reaching_outside_its_community(issues):
    out = _one(issues, "outside_community")
    assert out["grid_ids"] == "G5" and out["area_m2"] == pytest.approx(10 * 120, rel=1e-3)


def test_the_split_building_is_its_footprint_with_its_households(issues):
    split = _one(issues, "split_building")
    assert split["building_id"] == "B2" and split["grid_ids"] == "G2,G1"
    assert (split["households"], split["persons"]) == (1, 2)


def test_issue_ids_are_unique_and_by_kind(issues):
    assert issues["id"].is_unique
    assert set(issues["id"].str.rsplit("-", n=1).str[0]) == set(issues["kind"])


def test_a_sliver_narrower_than_the_gap_width_is_marked(tiny):
    grids = tiny["grids"].copy()
    g4 = grids.geometry[grids["id"] == "G4"].iloc[0]
    grids.loc[grids["id"] == "G4", "geometry"] = shapely.affinity.translate(g4, xoff=0.3)  # a 30 cm sliver at x=200
    located = pd.DataFrame({"x": [], "y": [], "persons": [], "building_id": []})
    issues = grid_coverage_issues(grids, tiny["communities"], None, None, located)
    slivers = issues[(issues["kind"] == "gap") & issues["sliver"]]
    assert len(slivers) == 1 and slivers.iloc[0]["area_m2"] == pytest.approx(0.3 * 200, rel=1e-2)
    assert slivers.iloc[0]["community_id"] == "C2"


def test_precision_noise_is_not_reported(tiny):
    grids = tiny["grids"].copy()
    g1 = grids.geometry[grids["id"] == "G1"].iloc[0]
    grids.loc[grids["id"] == "G1", "geometry"] = shapely.affinity.scale(g1, xfact=1 + 1e-8, origin=(g1.bounds[0], 0))
    located = pd.DataFrame({"x": [], "y": [], "persons": [], "building_id": []})
    issues = grid_coverage_issues(grids, tiny["communities"], None, None, located)
    assert (issues["area_m2"] >= Settings().min_issue_area_m2).all()
    assert (issues["kind"] == "overlap").sum() == 1  # only the planted one


def test_community_coverage_uses_shapely_coverage_validation(tiny):
    cov = community_coverage(tiny["grids"], tiny["communities"]).set_index("community_id")
    assert not cov.loc["C2", "coverage_valid"]  # overlapping grids
    assert not cov.loc["C1", "coverage_valid"]  # G1's edge has no vertex where G2 and G3 meet: not edge-matched
    clean = tiny["grids"][tiny["grids"]["id"].isin(["G1", "G2"])].copy()
    g1 = clean.geometry.iloc[0]
    clean.loc[clean["id"] == "G2", "geometry"] = shapely.affinity.translate(g1, xoff=100)  # edge-matched neighbour
    assert community_coverage(clean, tiny["communities"]).set_index("community_id").loc["C1", "coverage_valid"]


def test_workload_counts_and_capacity(tiny):
    hh = pd.DataFrame({"grid_id": ["G1"] * 301 + ["G2"] * 10 + [None],
                       "persons": [2.0] * 312, "elderly_alone": [True] * 5 + [False] * 307,
                       "child_in_difficulty": False, "mental_disorder": False, "migrant": False, "rental": False})
    w = grid_workload(tiny["grids"], hh)
    w.index = tiny["grids"]["id"]
    assert w.loc["G1", "households"] == 301 and w.loc["G1", "persons"] == 602
    assert bool(w.loc["G1", "over_capacity"]) and not bool(w.loc["G2", "over_capacity"])
    assert w.loc["G1", "load_ratio"] == pytest.approx(301 / 300, abs=1e-3)
    assert w.loc["G1", "elderly_alone"] == 5
    assert bool(w.loc["G5", "unstaffed"]) and w.loc["G5", "workers"] == 0
    assert np.isnan(w.loc["G5", "households_per_worker"])
    assert w["households"].sum() == 311  # the household with no grid is in no grid's count


def test_full_time_workers_field_changes_the_load(tiny):
    grids = tiny["grids"].copy()
    grids["full_time_workers"] = pd.array([2, 1, 1, 1, None], dtype="Int64")
    hh = pd.DataFrame({"grid_id": ["G1"] * 500, "persons": 1.0})
    w = grid_workload(grids, hh)
    assert w.iloc[0]["households_per_worker"] == 250 and not w.iloc[0]["over_capacity"]


def test_workload_weighs_special_groups_only_when_asked(tiny):
    hh = pd.DataFrame({"grid_id": ["G2"] * 280, "persons": 1.0, "elderly_alone": [True] * 40 + [False] * 240})
    plain = grid_workload(tiny["grids"], hh)
    plain.index = tiny["grids"]["id"]
    assert plain.loc["G2", "workload"] == 280 and not plain.loc["G2", "over_capacity"]
    weighed = grid_workload(tiny["grids"], hh, settings=Settings(special_group_weight=1.5))
    weighed.index = tiny["grids"]["id"]
    # 240 + 40 x 1.5 = 300: at the standard, not over; the households themselves are still 280
    assert weighed.loc["G2", "workload"] == 300 and weighed.loc["G2", "households"] == 280
    assert weighed.loc["G2", "households_per_worker"] == 300 and not weighed.loc["G2", "over_capacity"]
    more = grid_workload(tiny["grids"], hh, settings=Settings(special_group_weight=2.0))
    more.index = tiny["grids"]["id"]
    assert more.loc["G2", "workload"] == 320 and more.loc["G2", "over_capacity"]


def test_each_grid_says_which_of_its_three_staff_are_missing(tiny):
    grids = tiny["grids"].copy()
    grids["info_officer_name"] = ["信一", None, "信三", "信四", "信五"]
    grids["mediator_name"] = ["调一", "调二", "", "调四", "调五"]
    w = grid_workload(grids, pd.DataFrame({"grid_id": ["G1"], "persons": 1.0}))
    w.index = grids["id"]
    assert w.loc["G1", "staff_missing"] == "" and w.loc["G1", "staffing_complete"]
    assert w.loc["G2", "staff_missing"] == "info_officer" and w.loc["G2", "part_time_officers"] == 1
    assert w.loc["G3", "staff_missing"] == "mediator"
    assert w.loc["G5", "staff_missing"] == "full_time_worker" and not w.loc["G5", "staffing_complete"]


def test_bad_grid_codes_are_coverage_issues_with_the_households_of_their_grids(tiny):
    grids = tiny["grids"].copy()
    comms = tiny["communities"].assign(code=["510105001001", "510105001002"])
    grids["code"] = None
    ids = grids["id"].tolist()
    grids.loc[grids["id"] == ids[0], "code"] = "5101050010010001"           # 16 digits: malformed
    grids.loc[grids["id"] == ids[1], "code"] = "510105001002001"            # C2's code on a C1 grid
    grids.loc[grids["id"].isin(ids[2:4]), "code"] = "510105001002009"       # one code on two grids
    bg = building_grids(tiny["buildings"], grids)
    a = assign_households(tiny["households"], tiny["buildings"], grids, building_grid=bg)
    located = pd.DataFrame({"x": a["x"], "y": a["y"], "persons": tiny["households"]["persons"].astype(float),
                            "building_id": a["building_id"]})
    issues = grid_coverage_issues(grids, comms, tiny["buildings"], bg, located)
    codes = issues[issues["kind"].str.startswith("code_")].set_index("kind")
    assert set(codes.index) == {"code_malformed", "code_outside_community", "code_duplicate"}
    assert codes.loc["code_malformed", "grid_ids"] == ids[0]
    assert "is not 12+3 digits" in codes.loc["code_malformed", "detail"]
    assert codes.loc["code_duplicate", "grid_ids"] == ",".join(sorted(ids[2:4]))
    inside = a["grid_id"].astype(object).isin([ids[0]]).sum()
    assert codes.loc["code_malformed", "households"] >= inside
    assert issues.loc[~issues["kind"].str.startswith("code_"), "code"].isna().all()
    # a redraw check looks at codes on its own (geo.redraw.check_proposal_codes)
    assert not grid_coverage_issues(grids, comms, tiny["buildings"], bg, located, codes=False)["kind"] \
        .str.startswith("code_").any()
