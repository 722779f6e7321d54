"""The committed sample district (sample_geojson/): complete, plausible, with its planted defects.

These tests read the committed files only (a few seconds); regenerating the
sample from the real data is checked by ``test_build_sample_is_deterministic``,
which runs only when the shared data folder is present.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.schema import LAYER_ORDER, LAYERS, TABLE

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_geojson"
DATA = ROOT.parent / "shared" / "data"
UTM = "EPSG:32648"


@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(SAMPLE / f"{name}.geojson", engine="pyogrio") for name in LAYER_ORDER
            if LAYERS[name].geometry != TABLE and name != "cases"}  # visits.csv, cases.csv: checked by their own tests


@pytest.fixture(scope="module")
def metric(sample) -> dict[str, gpd.GeoDataFrame]:
    return {name: gdf.to_crs(UTM) for name, gdf in sample.items() if name != "households"}


def _households_in_buildings(sample, metric) -> pd.Series:
    """Households per building: by building_id, else by the footprint holding the point."""
    hh = sample["households"]
    b = metric["buildings"]
    bid = hh["building_id"].copy()
    pts = hh.geometry.to_crs(UTM)
    todo = bid.isna() & pts.notna().values
    idx, bi = shapely.STRtree(b.geometry.values).query(pts.values[todo.values], predicate="within")
    bid.loc[bid.index[todo.values][idx]] = b["id"].values[bi]
    return bid.value_counts()


def test_every_layer_is_committed_with_its_fields(sample):
    for name in sample:
        gdf = sample[name]
        assert len(gdf) > 0, name
        for f in LAYERS[name].fields:
            if f.required:
                assert f.name in gdf.columns, (name, f.name)


def test_sample_is_small_enough_to_commit():
    total = sum(p.stat().st_size for p in SAMPLE.iterdir())
    assert total < 16_000_000  # the case log and twelve monthly snapshots added 0.6 MB


def test_household_count_is_a_real_street_offices(sample):
    assert 20_000 <= len(sample["households"]) <= 40_000
    assert sample["households"]["persons"].between(1, 5).all()


def test_coordinates_are_wgs84_lonlat_in_chengdu(sample):
    for name, gdf in sample.items():
        x0, y0, x1, y1 = gdf.total_bounds
        assert 103.9 < x0 and x1 < 104.3 and 30.5 < y0 and y1 < 30.9, name


def test_ids_are_unique(sample):
    for name, gdf in sample.items():
        if "id" in gdf:
            assert gdf["id"].is_unique, name


def test_every_reference_resolves(sample):
    ids = {name: set(gdf["id"]) for name, gdf in sample.items()}
    for name in sample:
        for f in LAYERS[name].fields:
            if f.references:
                target = f.references.split(".")[0]
                values = sample[name][f.name].dropna()
                values = values[values != ""]
                assert set(values) <= ids[target], (name, f.name)


def test_street_and_communities_are_real(sample):
    assert sample["streets"]["id"].tolist() == ["510105001000"]
    assert sample["streets"]["name"].tolist() == ["太升路街道"]
    com = sample["communities"]
    assert com["code"].str.fullmatch(r"5101050010\d\d").all()
    assert set(com["ur_code"]) == {"111", "112"}


def test_grids_mostly_hold_200_to_600_households(sample, metric):
    per_building = _households_in_buildings(sample, metric)
    b = metric["buildings"].assign(households=lambda d: d["id"].map(per_building).fillna(0))
    g = metric["grids"]
    gi, bi = shapely.STRtree(g.geometry.values).query(shapely.point_on_surface(b.geometry.values), predicate="within")
    per_grid = pd.Series(b["households"].values[gi]).groupby(g["id"].values[bi]).sum().reindex(g["id"]).fillna(0)
    assert per_grid.between(200, 600).mean() >= 0.85


def test_a_gap_between_grids_holds_households(sample, metric):
    g, com = metric["grids"], metric["communities"]
    covered = shapely.union_all(g.geometry.values)
    hh = sample["households"].to_crs(UTM)
    pts = hh.geometry.values[hh.geometry.notna().values]
    for code, poly in zip(com["id"], com.geometry.values):
        if com.set_index("id").loc[code, "ur_code"] == "112":
            continue  # the fringe village is uncovered on purpose too; look for the gap elsewhere
        hole = shapely.difference(poly, covered)
        if hole.area > 1000:
            assert shapely.contains_xy(hole, shapely.get_x(pts), shapely.get_y(pts)).sum() > 0
            return
    pytest.fail("no uncovered area inside a regular community")


def test_two_grids_overlap_over_a_building_with_households(sample, metric):
    g = metric["grids"]
    i, j = shapely.STRtree(g.geometry.values).query(g.geometry.values, predicate="overlaps")
    keep = i < j
    overlaps = shapely.intersection(g.geometry.values[i[keep]], g.geometry.values[j[keep]])
    overlaps = overlaps[shapely.area(overlaps) > 100]
    assert len(overlaps) >= 1
    per_building = _households_in_buildings(sample, metric)
    b = metric["buildings"]
    bi = shapely.STRtree(b.geometry.values).query(overlaps, predicate="contains")[1]
    assert b["id"].iloc[bi].map(per_building).fillna(0).sum() > 0


def test_a_grid_line_cuts_a_building(metric):
    g, b = metric["grids"], metric["buildings"]
    bi, gi = shapely.STRtree(g.geometry.values).query(b.geometry.values, predicate="intersects")
    share = shapely.area(shapely.intersection(b.geometry.values[bi], g.geometry.values[gi])) / shapely.area(b.geometry.values[bi])
    per = pd.DataFrame({"b": bi, "share": share})
    cut = per[per["share"].between(0.2, 0.8)].groupby("b").size()
    assert (cut >= 2).any()


def test_fringe_community_has_buildings_no_grid_covers(sample, metric):
    com = metric["communities"]
    fringe = com[com["ur_code"] == "112"]
    assert len(fringe) == 1
    covered = shapely.union_all(metric["grids"].geometry.values)
    b = metric["buildings"]
    inside = shapely.within(b.geometry.values, fringe.geometry.iloc[0])
    uncovered = inside & ~shapely.intersects(b.geometry.values, covered)
    assert uncovered.sum() >= 50
    assert (sample["areas"]["kind"] == "urban_rural_fringe").any()


def test_an_old_estate_has_residential_buildings_without_records(sample, metric):
    per_building = _households_in_buildings(sample, metric)
    b = metric["buildings"]
    e = sample["estates"]
    old = set(e.loc[e["year_built"] <= 2000, "id"])
    res_old = b[b["estate_id"].isin(old) & b["residential"].astype(bool)]
    empty = res_old[res_old["id"].map(per_building).fillna(0) <= 2]
    assert len(empty) >= 2
    assert (sample["areas"]["kind"] == "old_estate").any()


def test_special_groups_are_uneven(sample, metric):
    hh = sample["households"]
    assert 0 < hh["mental_disorder"].sum() < 0.01 * len(hh)
    assert 0 < hh["child_in_difficulty"].sum() < 0.01 * len(hh)
    addr_village = hh["address"].str.contains("组", regex=False)
    assert hh.loc[addr_village, "migrant"].mean() > 2 * hh.loc[~addr_village, "migrant"].mean()
    old_estates = sample["estates"].loc[sample["estates"]["year_built"] <= 2000, "name"]
    new_estates = sample["estates"].loc[sample["estates"]["year_built"] > 2010, "name"]
    estate = hh["address"].str.split(" ").str[2]
    assert hh.loc[estate.isin(old_estates), "elderly_alone"].mean() > 2 * hh.loc[estate.isin(new_estates), "elderly_alone"].mean()


def test_households_come_in_every_form(sample):
    hh = sample["households"]
    has_point = hh.geometry.notna()
    has_building = hh["building_id"].notna()
    assert (has_building & ~has_point).sum() > 100
    assert 1 <= (~has_building & ~has_point).sum() <= 10
    overdue = hh["elderly_alone"] & (pd.to_datetime(hh["last_visit"]) < pd.Timestamp("2026-11-22"))
    assert overdue.sum() > 0


def test_one_grid_has_no_worker(sample):
    g = sample["grids"]
    assert (g["worker_name"].fillna("") == "").sum() == 1
    phones = g.loc[g["worker_name"].fillna("") != "", "worker_phone"]
    assert phones.str.fullmatch(r"028-8\d{3}-\d{4}").all()


def test_facilities_mark_their_source(sample):
    f = sample["facilities"]
    assert {"osm", "synthetic"} <= set(f["source"])
    assert {"elderly_daycare", "kindergarten", "primary_school", "street_office"} <= set(f["category"])


@pytest.mark.skipif(not (DATA / "chengdu-central-2018.osm").exists(), reason="shared data not present")
def test_build_sample_is_deterministic_and_matches_the_committed_files(tmp_path):
    from tools.sample import build_sample

    counts = build_sample(DATA, tmp_path)
    layers = [name for name in counts if name not in ("visits", "cases")]
    assert {name: counts[name] for name in layers} == {
        name: len(gpd.read_file(SAMPLE / f"{name}.geojson", engine="pyogrio")) for name in layers}
    assert counts["visits"] == len(pd.read_csv(SAMPLE / "visits.csv"))
    assert counts["cases"] == len(pd.read_csv(SAMPLE / "cases.csv"))
    names = [f"{name}.geojson" for name in layers] + ["visits.csv", "cases.csv", "gridcover.toml", "README.md"]
    match, mismatch, errors = filecmp.cmpfiles(SAMPLE, tmp_path, names, shallow=False)
    assert not mismatch and not errors, mismatch + errors


def test_the_visit_log_covers_16_weeks_of_the_watched_households_with_their_grids_workers(sample):
    visits = pd.read_csv(SAMPLE / "visits.csv", dtype=str, keep_default_na=False)
    assert list(visits.columns) == ["household_id", "visited_at", "worker", "kind", "outcome", "note"]
    at = pd.to_datetime(visits["visited_at"], format="%Y-%m-%d %H:%M")
    assert at.min() >= pd.Timestamp("2026-08-10") and at.max() < pd.Timestamp("2026-11-30")  # up to the as-of date
    assert set(visits["kind"]) == {"home", "phone", "other"}
    assert set(visits["outcome"]) == {"seen", "not_home", "answered", "no_answer"}
    hh = sample["households"].set_index("id")
    watched = hh["elderly_alone"] | hh["child_in_difficulty"] | hh["mental_disorder"]
    assert set(visits["household_id"]) <= set(hh.index[watched])  # special-group households only, all known
    assert set(visits["worker"]) <= set(sample["grids"]["worker_name"]) and "" not in set(visits["worker"])
    # each household's last record is its last_visit date: the log and the households layer agree
    last = at.dt.strftime("%Y-%m-%d").groupby(visits["household_id"]).max()
    assert (last == pd.to_datetime(hh.loc[last.index, "last_visit"]).dt.strftime("%Y-%m-%d")).all()
    never = set(hh.index[watched]) - set(visits["household_id"])
    assert 20 < len(never) < 200  # some watched households were never visited in the window


def test_the_visit_log_has_workers_behind_and_phone_only_elderly(sample):
    visits = pd.read_csv(SAMPLE / "visits.csv", dtype=str, keep_default_na=False)
    hh = sample["households"].set_index("id")
    elderly = visits[hh.loc[visits["household_id"], "elderly_alone"].to_numpy()]
    home = elderly[elderly["kind"] == "home"]
    per_household = home.groupby("household_id").size().groupby(elderly.groupby("household_id")["worker"].first()).mean()
    assert (per_household < 10).sum() >= 3 and per_household.median() > 13  # a few workers keep about half the weeks
    phone_only = elderly["kind"].eq("phone").groupby(elderly["household_id"]).all()
    assert phone_only.sum() >= 20


def test_the_readme_lists_the_planted_staffing_and_visit_defects():
    text = (SAMPLE / "README.md").read_text(encoding="utf-8")
    assert "## Staffing (一格三员) and workload" in text and "## Visit log (`visits.csv`)" in text
    for grid in ("G01-03", "G01-09", "G03-04", "G01-12", "G02-03", "G04-04", "G05-12"):
        assert f"`{grid}`" in text


def test_the_case_log_is_a_year_of_mostly_general_cases_placed_three_ways(sample):
    cases = pd.read_csv(SAMPLE / "cases.csv", dtype=str, keep_default_na=False)
    assert list(cases.columns) == ["id", "reported_at", "urgency", "category", "source", "household_id", "address",
                                   "lon", "lat", "accepted_at", "closed_at"]
    at = pd.to_datetime(cases["reported_at"], format="%Y-%m-%d %H:%M")
    assert at.min() >= pd.Timestamp("2025-12-01") and at.max() < pd.Timestamp("2026-12-01")  # up to the as-of date
    urgency = cases["urgency"].replace({"一般": "general", "紧急": "urgent", "跨部门": "cross_department"})
    shares = urgency.value_counts(normalize=True)
    assert shares["general"] > 0.8 and 0.02 < shares["urgent"] < 0.1 and 0.05 < shares["cross_department"] < 0.2
    assert 2_000 < len(cases) < 5_000 and cases["id"].is_unique  # a few thousand for ~30,000 households
    placed = pd.DataFrame({"point": cases["lon"] != "", "household": cases["household_id"] != "",
                           "address": cases["address"] != ""})
    assert (placed.sum(axis=1) == 1).all() and (placed.sum() > 500).all()
    assert set(cases.loc[placed["household"], "household_id"]) <= set(sample["households"]["id"])
    ill = cases["category"] == "独居老人突发疾病"
    elderly = set(sample["households"].loc[sample["households"]["elderly_alone"], "id"])
    assert ill.sum() > 20 and set(cases.loc[ill, "household_id"]) <= elderly
    assert (cases["closed_at"] == "").sum() < 100  # most are settled
    assert (SAMPLE / "gridcover.toml").read_text(encoding="utf-8").count("as_of = 2026-11-30") == 1


# ----------------------------------------------------------------------------- the story (sample_geojson/README.md)

def _basic_share(summary, level, key):
    rows = [r for r in summary["reach"]["shares"] if r["level"] == level and r["id"] == key and r["category"] == "basic_set"]
    return rows[0]["households_share"]


def test_the_synthetic_facilities_are_labelled_and_stand_in_real_buildings(sample):
    f = sample["facilities"]
    synthetic = f[f["source"] == "synthetic"]
    assert len(synthetic) > 100 and set(f["source"]) == {"osm", "register", "synthetic"}
    assert synthetic["building_id"].isin(set(sample["buildings"]["id"])).all()
    assert synthetic["name"].str.endswith("（示例）").all()  # a popup showing the name alone still says so
    assert f.loc[f["source"] != "synthetic", "building_id"].isna().all()
    village = set(sample["buildings"].loc[sample["buildings"]["address"].fillna("").str.contains("组"), "id"])
    assert not synthetic["building_id"].isin(village).any()  # the fringe village gets no planned service


def test_reach_of_the_basic_set_differs_between_communities(sample_analysis):
    summary = sample_analysis[0].summary
    share = {c["name"]: _basic_share(summary, "community", c["id"]) for c in summary["per_community"]}
    assert max(share.values()) - min(share.values()) > 0.5  # no flat red: from 17% to 84%
    assert max(share, key=share.get) == "德盛路社区" and min(share, key=share.get) == "太升南路社区"
    assert 0.3 < summary["reach"]["households_basic_complete"] / summary["households"] < 0.6
    # the old estates reach less than the rest of the street
    assert _basic_share(summary, "zone", "old_estate") < _basic_share(summary, "zone", "rest") - 0.1


def test_the_planted_problems_are_what_stands_out(sample_analysis):
    analysis, _ = sample_analysis
    hh, spots = analysis.households, analysis.blindspots
    village = hh["address"].fillna("").str.contains("组")
    assert hh.loc[village, "basic_complete"].mean() < 0.02 < hh.loc[~village, "basic_complete"].mean() - 0.3
    # the fringe village's pieces lead the blind spots; then the grid gap, then the overlap
    top = spots.head(6)
    assert (top.head(4)["community_name"] == "小关庙社区").all() and (top.head(4)["main_reason"] == "no_grid").all()
    gap = spots[(spots["community_name"] == "鼓楼南街社区") & (spots["main_reason"] == "no_grid")]
    assert len(gap) == 1 and gap.iloc[0]["rank"] <= 6 and {"G01-01", "G01-02"} & set(gap.iloc[0]["grid_ids"].split(","))
    overlap = spots[spots["main_reason"] == "overlapping_grids"]
    assert overlap.iloc[0]["community_name"] == "太升南路社区" and overlap.iloc[0]["rank"] <= 6
    unregistered = spots[spots["main_reason"].eq("unregistered_building") | spots["unregistered_buildings"].ge(3)]
    assert (unregistered["community_name"] == "玉沙路社区").any()  # 康府小区's three buildings
    assert set(analysis.grids.loc[analysis.grids["over_capacity"].astype(bool), "id"]) >= {"G01-03", "G01-09", "G03-04"}
    assert spots["area_m2"].max() <= 110_000 and spots["community_id"].ne("").all()


def test_the_readme_tells_the_story_with_the_figures_of_the_run(sample_analysis):
    summary = sample_analysis[0].summary
    text = (SAMPLE / "README.md").read_text(encoding="utf-8")
    assert "## The story (what the analysis shows)" in text and "`source = synthetic`" in text
    for c in summary["per_community"]:
        share = f"{_basic_share(summary, 'community', c['id']):.0%}"
        assert f"| {c['name']} ({c['id'][-3:]}) | {c['households']:,} | {share} |" in text
        assert f"**{c['name']}** ({share} reach the basic set)" in text
    for planted in ("`B00021`", "E091", "`G03-04`", "`B00038`", "康府小区", "`G05-19`", "village"):
        assert planted in text
