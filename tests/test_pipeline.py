"""A whole run on the sample district (太升路街道): the planted defects are found and every household counted."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.assign import STATUSES
from gridcover.engines.single import analyze
from gridcover.io.outputs import read_meta, write_outputs

SAMPLE = "sample_geojson"


@pytest.fixture(scope="session")
def sample(sample_analysis):
    return sample_analysis


def _hh(analysis):
    return analysis.households.set_index("id")


def test_every_household_has_one_status_and_the_counts_add_up(sample):
    analysis, _ = sample
    s = analysis.summary
    assert s["households"] == 29574 == s["status_total"] == sum(s["status_counts"].values())
    assert set(analysis.households["status"]) <= set(STATUSES)


def test_the_planted_gap_between_grids_is_found_with_its_95_households(sample):
    analysis, _ = sample
    issues = analysis.coverage_issues
    gaps = issues[(issues["kind"] == "gap") & (issues["community_id"] == "510105001001")]
    assert len(gaps) == 1 and gaps.iloc[0]["households"] == 95
    assert gaps.iloc[0]["area_m2"] == pytest.approx(9515, rel=0.02)


def test_the_fringe_village_no_grid_covers_is_a_gap_of_792_households(sample):
    analysis, _ = sample
    issues = analysis.coverage_issues
    gap = issues[(issues["kind"] == "gap") & (issues["community_id"] == "510105001004")]
    assert gap["households"].sum() == 792
    hh = _hh(analysis)
    village = hh[(hh["community_id"] == "510105001004") & (hh["status"] == "outside_all_grids")]
    assert len(village) == 792 and village["fringe"].all()


def test_the_planted_overlap_and_its_building(sample):
    analysis, _ = sample
    overlap = analysis.coverage_issues[analysis.coverage_issues["kind"] == "overlap"]
    assert len(overlap) == 1 and overlap.iloc[0]["grid_ids"] == "G02-01,G02-02"
    hh = _hh(analysis)
    in_b38 = hh[hh["building_id"] == "B00038"]
    assert len(in_b38) == 57 and (in_b38["status"] == "in_overlapping_grids").all()


def test_the_building_cut_by_a_grid_line(sample):
    analysis, _ = sample
    split = analysis.coverage_issues[analysis.coverage_issues["kind"] == "split_building"]
    assert split["building_id"].tolist() == ["B00021"] and split.iloc[0]["households"] == 73
    assert set(split.iloc[0]["grid_ids"].split(",")) == {"G03-01", "G03-02"}
    assert analysis.summary["status_counts"]["building_split"] == 73


def test_the_planted_grid_code_defects_are_coverage_issues_and_every_grid_has_its_code(sample):
    analysis, out = sample
    issues = analysis.coverage_issues
    codes = issues[issues["kind"].str.startswith("code_")].set_index("kind")
    assert set(codes.index) == {"code_duplicate", "code_outside_community"}
    assert (codes.loc["code_duplicate", "grid_ids"], codes.loc["code_duplicate", "code"]) == ("G02-01,G02-02",
                                                                                              "510105001002002")
    assert codes.loc["code_duplicate", "households"] > 0 and "on 2 grids" in codes.loc["code_duplicate", "detail"]
    assert (codes.loc["code_outside_community", "grid_ids"], codes.loc["code_outside_community", "code"]) == (
        "G05-19", "510105001004007")
    s = analysis.summary
    assert s["coverage_issues"]["code_duplicate"]["count"] == 1 and s["coverage_issues"]["code_malformed"]["count"] == 0
    # the sample gives every grid its code: none is made, none is changed
    grids = analysis.grids.set_index("id")
    assert grids["code"].notna().all() and not grids["code_generated"].any() and s["grids"]["codes_generated"] == 0
    assert grids.loc["G01-01", "code"] == "510105001001001"
    layer = json.loads((out / "grids.geojson").read_text(encoding="utf-8"))["features"]
    assert {"code", "code_generated", "part_time_workers"} <= set(layer[0]["properties"])


def test_missing_grid_codes_are_made_in_reading_order_and_never_taken_from_a_given_one(tmp_path):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    grids = gpd.read_file(data / "grids.geojson")
    # the grids of 510105001003 lose their codes but one (G03-02 keeps 510105001003002)
    blank = (grids["community_id"] == "510105001003") & (grids["id"] != "G03-02")
    grids.loc[blank, "code"] = None
    grids.to_file(data / "grids.geojson", driver="GeoJSON")
    analysis = analyze(str(data))
    out = analysis.grids.set_index("id")
    mine = out[out["community_id"] == "510105001003"]
    assert mine["code"].notna().all() and mine["code"].is_unique
    assert out.loc["G03-02", "code"] == "510105001003002" and not out.loc["G03-02", "code_generated"]
    made = mine[mine["code_generated"]]
    assert len(made) == 7 and sorted(made["code"]) == [f"510105001003{i:03d}" for i in range(3, 10)]
    assert analysis.summary["grids"]["codes_generated"] == 7
    assert not analysis.coverage_issues["kind"].eq("code_malformed").any()


def test_location_quirks_are_counted_not_dropped(sample):
    analysis, _ = sample
    counts = analysis.summary["status_counts"]
    assert counts["no_location"] == 3 and counts["no_building"] == 15 and counts["snapped_to_building"] == 40
    hh = _hh(analysis)
    assert hh.loc["H007123", "status"] == "snapped_to_building"
    assert hh.loc[["H001838", "H005054", "H011242"], "status"].eq("no_location").all()


def test_grid_workload_and_the_grid_without_a_worker(sample):
    analysis, _ = sample
    grids = analysis.grids.set_index("id")
    assert bool(grids.loc["G01-15", "unstaffed"])
    assert grids["households"].sum() == 29574 - analysis.summary["households_without_grid"]
    assert grids["elderly_alone"].sum() > 0 and "basic_share" in grids.columns


def test_the_sample_is_mostly_within_the_workload_rule_with_its_planted_shortfalls(sample):
    analysis, out = sample
    grids = analysis.grids.set_index("id")
    # three grids planted one full-time worker short, and the grid without a worker
    assert set(grids.index[grids["over_capacity"]]) == {"G01-03", "G01-09", "G03-04", "G01-15"}
    staffed = grids[grids["workers"] > 0]
    assert (staffed["households_per_worker"] <= 300).mean() > 0.95
    # 一格三员: the planted grids name what they lack
    missing = grids.loc[grids["staff_missing"] != "", "staff_missing"].to_dict()
    assert missing == {"G01-12": "mediator", "G02-03": "mediator", "G04-04": "info_officer",
                       "G05-12": "info_officer,mediator", "G01-15": "full_time_worker"}
    s = analysis.summary["grids"]
    assert s["staffing_incomplete"] == 5 and s["staff_missing"] == {"full_time_worker": 1, "info_officer": 2,
                                                                    "mediator": 3}
    assert (s["full_time_workers"], s["part_time_workers"], s["part_time_officers"], s["full_time_share"]) \
        == (128, 7, 131, 0.9481)
    layer = json.loads((out / "grids.geojson").read_text(encoding="utf-8"))["features"]
    assert {"staff_missing", "staffing_complete", "part_time_officers", "workload"} <= set(layer[0]["properties"])


def test_the_scorecard_measures_the_full_time_share_per_community_and_street(sample):
    analysis, _ = sample
    card = analysis.scorecard
    share = card[card["indicator"] == "full_time_share"]
    assert set(share["level"]) == {"community", "street"} and (share["target"] == 0.8).all()
    street = share[share["level"] == "street"].iloc[0]
    # 128 full-time among 135 grid workers (7 part-time 兼职网格员; the part-time officers are not grid workers)
    assert (street["numerator"], street["denominator"], street["value"], street["pass"]) == (128, 135, 0.9481, True)
    # the planted community: 15 full-time among 20 grid workers, below the plan's 80%
    below = share[(share["level"] == "community") & ~share["pass"].astype(bool)]
    assert below[["id", "numerator", "denominator", "value"]].values.tolist() == [["510105001003", 15, 20, 0.75]]
    load = card[(card["level"] == "street") & (card["indicator"] == "households_per_worker")].iloc[0]
    assert load["target"] == 300 and load["value"] <= 300 and load["pass"]


def test_the_old_estate_with_unregistered_tenants_is_an_old_estate(sample):
    analysis, _ = sample
    hh = analysis.households
    e156 = hh[hh["building_id"].isin(["B00823", "B00855", "B00856"]) | (hh["zone"] == "old_estate")]
    assert hh["old_estate"].sum() > 5000 and len(e156) > 0


def test_reach_runs_on_the_real_network(sample):
    analysis, _ = sample
    r = analysis.summary["reach"]
    assert r["method"] == "network" and not r["estimate"]
    assert r["network"]["walkable_roads"] > 800 and r["network"]["components"] >= 1
    hh = analysis.households
    assert {"reach_kindergarten_min", "reach_kindergarten_min_elderly", "missing_categories"} <= set(hh.columns)
    located = hh["status"] != "no_location"
    assert hh.loc[located, "reach_street_office_min"].notna().mean() > 0.95
    assert analysis.h3_reach["households"].sum() == located.sum()
    levels = {row["level"] for row in r["shares"]}
    assert {"street", "community", "zone", "old_estate", "fringe"} <= levels


def test_outputs_on_disk(sample):
    _, out = sample
    names = {p.name for p in out.iterdir()}
    assert {"households.geojson", "grids.geojson", "coverage_issues.geojson", "h3_reach.geojson", "summary.json",
            "workspace.gpkg"} <= names
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["timings_s"]["load"] > 0
    assert read_meta(out / "workspace.gpkg")["version"] == "1"
    first = json.loads((out / "households.geojson").read_text(encoding="utf-8"))["features"][0]["properties"]
    assert isinstance(first["missing_categories"], list)  # a JSON array of category ids
    assert all(isinstance(c, str) for c in first["missing_categories"])


def test_blind_spots_put_the_uncovered_fringe_village_first(sample):
    analysis, _ = sample
    spots = analysis.blindspots
    first = spots.iloc[0]
    assert first["rank"] == 1 and first["risk"] == "red" and "no_grid" in first["risk_reasons"]
    assert first["community_ids"] == "510105001004"  # 小关庙: the fringe village no grid covers
    assert spots["weight"].is_monotonic_decreasing


def test_the_old_estate_with_unregistered_tenants_shows_up(sample):
    analysis, _ = sample
    risk = analysis.summary["risk"]
    assert risk["under_registered_buildings"] >= 3
    hh = analysis.households
    in_e156 = hh[hh["building_id"].isin(["B00823", "B00855", "B00856"])]
    assert all("unregistered_building" in list(r) for r in in_e156["risk_reasons"])
    assert analysis.blindspots["unregistered_buildings"].sum() >= 3


def test_scorecard_covers_every_community_street_and_zone(sample):
    analysis, out = sample
    card = analysis.scorecard
    assert set(card["level"]) == {"community", "street", "zone"}
    assert set(card.loc[card["level"] == "community", "id"]) == set(analysis.data.layers["communities"]["id"])
    weak = card[(card["level"] == "zone") & (card["indicator"] == "households_covered") & (card["id"] == "fringe")].iloc[0]
    assert weak["value"] < 0.9 and not weak["pass"]  # the village no grid covers pulls the fringe below 90%
    rows = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert {"level", "id", "indicator", "value", "target", "pass"} <= set(rows[0])
    assert (out / "scorecard.csv").read_text(encoding="utf-8-sig").startswith("level,id,name,indicator")


def test_risk_columns_in_households_and_grids(sample):
    analysis, out = sample
    assert set(analysis.households["risk"]) <= {"red", "yellow", "blue", "none"}
    assert {"risk", "risk_reasons", "red_households"} <= set(analysis.grids.columns)
    assert analysis.summary["risk"]["households_by_colour"]["red"] > 0
    first = json.loads((out / "households.geojson").read_text(encoding="utf-8"))["features"][0]["properties"]
    assert isinstance(first["risk_reasons"], list)


# ---- a whole city: output grows with the households, not with the area (issue 11) -------------------------

def _city_dir(tmp_path, *, drop_settled_grid: bool = False, **sizes):
    from tools.synthetic import make_city, write_district

    city = make_city(**sizes)
    if drop_settled_grid:  # a settled street whose grid was never drawn: a gap full of households
        settled = city["communities"].loc[city["communities"]["ur_code"] == "111", "id"].iloc[0]
        city["grids"] = city["grids"][city["grids"]["community_id"] != settled].reset_index(drop=True)
    folder = tmp_path / "city"
    write_district(city, folder, fmt="geojson")
    return folder


def test_a_whole_city_gives_every_household_the_answers_of_a_run_that_keeps_every_cell(tmp_path):
    """A smaller city (1,000 km², 60 streets) run twice: keeping every H3 cell of the streets, and keeping the
    empty cells round the settlements only. Households, grids and blind spots are the same; every cell the
    second run keeps has the first run's figures; the cells it leaves out are far from everyone."""
    import pandas as pd

    from geo.lifecircle import cells_of
    from geo.pipeline import to_lonlat

    folder = _city_dir(tmp_path, streets=60, area_km2=1_000.0, households=600, settlements=2, seed=3,
                       drop_settled_grid=True)
    every = analyze(folder, reference_date=pd.Timestamp("2025-06-30").date(), every_cell=True)
    near = analyze(folder, reference_date=pd.Timestamp("2025-06-30").date())
    # the gap and the blind spots are found either way
    gaps = near.coverage_issues[near.coverage_issues["kind"] == "gap"]
    assert len(gaps) == 1 and gaps["households"].sum() > 100 and len(near.blindspots) >= 1
    pd.testing.assert_frame_equal(pd.DataFrame(near.households.drop(columns="geometry")),
                                  pd.DataFrame(every.households.drop(columns="geometry")))
    for layer in ("grids", "blindspots", "coverage_issues"):
        a, b = getattr(near, layer), getattr(every, layer)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert near.summary["risk"] == every.summary["risk"]
    cell_counts = ("h3_cells", "h3_cells_from_centre")
    assert ({k: v for k, v in near.summary["reach"].items() if k not in cell_counts}
            == {k: v for k, v in every.summary["reach"].items() if k not in cell_counts})
    all_cells = every.h3_reach.set_index("h3")
    kept = near.h3_reach.set_index("h3")
    assert len(all_cells) > 60_000 and len(kept) < len(all_cells) / 5  # 1,000 km² of 0.015 km² cells
    assert kept.index.isin(all_cells.index).all()
    pd.testing.assert_frame_equal(kept.drop(columns="geometry"), all_cells.loc[kept.index].drop(columns="geometry"))
    assert kept["households"].sum() == len(near.households)  # every household's cell is there
    # a cell left out has no walk to anything within the horizon (there is nothing near it to walk to)
    dropped = all_cells.loc[~all_cells.index.isin(kept.index)]
    minutes = dropped[[c for c in dropped.columns if c.startswith("reach_") and c.endswith("_min")]]
    assert minutes.isna().all().all() and (dropped["households"] == 0).all()
    # and every empty cell within the 15-minute walk (900 m) of a household is kept
    hh = near.households
    hx, hy = hh.geometry.x.to_numpy(), hh.geometry.y.to_numpy()
    import h3ronpy
    from h3ronpy import vector as h3v
    from scipy.spatial import cKDTree

    ll = h3v.cells_to_coordinates(h3ronpy.cells_parse(dropped.index.to_numpy()))
    centres = gpd.GeoSeries(gpd.points_from_xy(ll.column("lng"), ll.column("lat")), crs="EPSG:4326").to_crs(hh.crs)

    d, _ = cKDTree(np.column_stack([hx, hy])).query(np.column_stack([centres.x, centres.y]))
    assert d.min() > 900
    assert set(cells_of(*to_lonlat(hx, hy, hh.crs), 10)) <= set(int(c, 16) for c in kept.index)


def test_the_whole_city_case_writes_cells_in_proportion_to_its_households(tmp_path):
    """Issue 11's case: 343 street polygons over 16,000 km² and 2,300 households in five settlements took
    113 s filling and writing 1.1 million empty cells. Now it writes the cells round the settlements only."""
    from gridcover.cli import main

    folder = _city_dir(tmp_path)
    out = tmp_path / "out"
    assert main(["analyze", str(folder), "--out", str(out), "--as-of", "2025-06-30", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    cells = gpd.read_file(out / "h3_reach.geojson", columns=["h3", "households", "from_centre"])
    assert summary["households"] == 2300 == cells["households"].sum()
    assert summary["reach"]["h3_cells"] == len(cells)
    # five settlements of about 3 km across and their 15-minute surroundings, not 16,000 km² (1.1 million cells)
    assert 5 * 300 < len(cells) < 5 * 6_000
    assert (cells["from_centre"] == (cells["households"] == 0)).all()


def test_parts_without_households_join_the_others_tables():
    """A street with nobody in it (most of a whole city's) gives an empty table whose categories have
    another dtype; the partitioned run puts the tables together all the same."""
    import pandas as pd

    from geo.pipeline import concat_tables

    empty = pd.DataFrame({"grid_id": pd.Categorical(pd.Series([], dtype=object)), "persons": pd.Series([], dtype=float)})
    full = pd.DataFrame({"grid_id": pd.Categorical(pd.Series(["G1", None, "G2"], dtype="str")), "persons": [1.0, 2.0, 3.0]})
    out = concat_tables([empty, full, empty])
    assert out["grid_id"].tolist()[0] == "G1" and pd.isna(out["grid_id"].iloc[1]) and len(out) == 3
    assert isinstance(out["grid_id"].dtype, pd.CategoricalDtype) and out["persons"].sum() == 6.0


# ---- visit records (the visits layer), on the tiny district -------------------------------------------

@pytest.fixture
def tiny_visited(tmp_path):
    from datetime import date

    from conftest import tiny_layers, tiny_visits, write_layers

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    tiny_visits().to_csv(folder / "visits.csv", index=False)
    return analyze(folder, reference_date=date(2026, 11, 30), window_weeks=5)


def test_each_special_group_household_gets_its_visit_figures(tiny_visited):
    hh = _hh(tiny_visited)
    # 5 weeks to Monday 2026-11-30: ISO weeks W45–W48 for the elderly, November for the mental disorder
    h2, h7, h3 = hh.loc["H2"], hh.loc["H7"], hh.loc["H3"]
    assert (h2["visits_required"], h2["visits_done"], h2["periods_missed"]) == (4, 3, 1)
    assert (h2["last_visit"], h2["next_visit_due"], h2["never_visited"]) == ("2026-11-24", "2026-12-06", False)
    assert (h7["visits_done"], h7["periods_missed"], h7["last_visit"]) == (0, 4, "2026-11-20")  # phoned only
    assert (h3["visits_required"], h3["visits_done"], h3["next_visit_due"]) == (1, 1, "2026-12-31")
    assert pd.isna(hh.loc["H1", "visits_required"]) and hh.loc["H1", "last_visit"] == "2026-11-01"  # no group
    assert hh["visit_overdue"].to_dict() == {**{h: False for h in hh.index}, "H7": True}


def test_the_grids_communities_and_street_get_the_share_of_periods_kept(tiny_visited):
    grids = tiny_visited.grids.set_index("id")
    assert grids.loc["G2", "visits_kept_share"] == 0.75  # H2: 3 of 4 weeks
    assert grids.loc["G1", "visits_kept_share"] == 0.0  # H7: no home visit
    assert grids.loc["G4", "visits_kept_share"] == 1.0  # H3: November kept
    v = tiny_visited.summary["visits"]
    assert (v["as_of"], v["window_weeks"], v["records"], v["households"]) == ("2026-11-30", 5, 6, 3)
    assert (v["periods"], v["periods_kept"], v["share_kept"], v["overdue"], v["never_visited"]) == (9, 4, 0.4444, 1, 0)
    assert {c["id"]: c["share_kept"] for c in v["per_community"]} == {"C1": 0.375, "C2": 1.0}
    card = tiny_visited.scorecard
    row = card[(card["level"] == "street") & (card["indicator"] == "visits_on_time")].iloc[0]
    assert (row["numerator"], row["denominator"], row["target"], row["pass"]) == (4, 9, 1.0, False)


def test_a_special_group_household_without_a_record_is_counted_as_never_visited(tmp_path):
    from datetime import date

    from conftest import tiny_layers, tiny_visits, write_layers

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    tiny_visits().query("household_id != 'H3'").to_csv(folder / "visits.csv", index=False)
    analysis = analyze(folder, reference_date=date(2026, 11, 30), window_weeks=5)
    h3 = _hh(analysis).loc["H3"]
    assert h3["never_visited"] and h3["periods_missed"] == 1 and h3["risk"] == "red"  # mental disorder, month missed
    assert analysis.summary["visits"]["never_visited"] == 1


def test_without_a_visits_layer_nothing_about_records_is_added(tiny_dir):
    analysis = analyze(tiny_dir)
    assert "visits" not in analysis.summary and "visits_required" not in analysis.households.columns
    assert "visits_kept_share" not in analysis.grids.columns
