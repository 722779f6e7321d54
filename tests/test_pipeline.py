"""A whole run on the sample district (太升路街道): the planted defects are found and every household counted."""

import json

import geopandas as gpd
import numpy as np
import pytest

from geo.assign import STATUSES
from geo.pipeline import analyze
from geo.report import read_meta, write_outputs

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
