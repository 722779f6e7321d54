"""Checking a redraw: validity, balance, shape and who changes grid, against an analysed workspace."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely

from geo.errors import InputError
from geo.redraw import (check_proposal, compare_grids, grids_from_moves, proposal_from_geojson,
                        proposal_frame)
from gridcover.store import open_workspace
from redraw_data import context_of, synthetic_workspace


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    ws = open_workspace(synthetic_workspace(tmp_path_factory.mktemp("redraw")))
    return context_of(ws)


def _current(ctx, cid="C1"):
    return ctx.grids_of({cid}).reset_index(drop=True)


def test_the_current_grids_checked_as_a_proposal_move_nobody(ctx):
    report = check_proposal(ctx, _current(ctx))
    assert report["valid"] and report["moved"]["households"] == 0 and report["moves"] == []
    assert report["created"] == [] and report["removed"] == []
    assert sum(g["households"] for g in report["grids"]) == report["communities"][0]["households"]
    json.dumps(report)  # JSON-ready as it is


def test_a_shrunken_grid_leaves_a_gap_with_its_households(ctx):
    grids = _current(ctx)
    geoms = grids.geometry.to_numpy().copy()
    geoms[0] = shapely.buffer(geoms[0], -40.0)
    report = check_proposal(ctx, grids.set_geometry(geoms))
    assert not report["valid"] and report["gaps"]
    assert sum(g["households"] for g in report["gaps"]) > 0  # points in the gap (their buildings may be in a grid)
    blind = report["blind_spots"]["households_in_no_grid"]
    assert blind["after"] > blind["before"] == 0


def test_overlapping_grids_and_a_cut_building_make_a_proposal_invalid(ctx):
    grids = _current(ctx)
    b = ctx.buildings_of({"C1"}).iloc[0]
    geoms = grids.geometry.to_numpy().copy()
    holder = int(shapely.intersects(geoms, b.geometry.centroid).argmax())
    other = (holder + 1) % len(grids)
    half = shapely.box(*b.geometry.bounds[:2], b.geometry.centroid.x, b.geometry.bounds[3])
    geoms[other] = shapely.union(geoms[other], half)
    report = check_proposal(ctx, grids.set_geometry(geoms))
    assert not report["valid"]
    assert report["overlaps"]
    assert any("overlap" in p for p in report["problems"])


def test_moving_an_estate_reports_its_households_buildings_and_worker_change(ctx):
    grids = _current(ctx)
    estate = ctx.estates_of({"C1"}).iloc[0]
    target = next(g for g in grids["id"] if not shapely.contains(
        grids.set_index("id").geometry[g], estate.geometry.centroid))
    moved = grids_from_moves(ctx, [{"estate_id": estate["id"], "to": target}])
    report = check_proposal(ctx, moved)
    in_estate = set(ctx.buildings.loc[ctx.buildings["estate_id"] == estate["id"], "id"])
    hh = ctx.households
    expected = int(hh["building_id"].isin(in_estate).sum())
    assert report["moved"]["households"] == expected > 0
    assert {m["to_grid"] for m in report["moves"]} == {target}
    assert set(sum((m["buildings"] for m in report["moves"]), [])) <= in_estate
    assert report["split_buildings"] == [] and report["gaps"] == [] and report["overlaps"] == []


def test_a_move_to_a_new_grid_creates_it(ctx):
    b = ctx.buildings_of({"C1"})["id"].iloc[0]
    report = check_proposal(ctx, grids_from_moves(ctx, [{"building_id": b, "to": "C1-NEW"}]))
    assert report["created"] == ["C1-NEW"]


def test_bad_moves_name_the_move_and_field(ctx):
    with pytest.raises(InputError, match=r"moves\[0\]"):
        grids_from_moves(ctx, [{"building_id": "nope", "to": "G1"}])
    other = ctx.grids_of({"C2"})["id"].iloc[0]
    b = ctx.buildings_of({"C1"})["id"].iloc[0]
    with pytest.raises(InputError, match="belongs to community C2"):
        grids_from_moves(ctx, [{"building_id": b, "to": other}])


def test_a_proposal_file_with_a_duplicate_id_or_unknown_community_is_refused(ctx):
    doc = json.loads(_current(ctx).to_crs(4326).to_json())
    doc["features"][1]["properties"]["id"] = doc["features"][0]["properties"]["id"]
    with pytest.raises(InputError, match="duplicate id"):
        proposal_from_geojson(doc, ctx)
    doc = json.loads(_current(ctx).to_crs(4326).to_json())
    doc["features"][0]["properties"]["community_id"] = "C99"
    with pytest.raises(InputError, match="community_id"):
        proposal_from_geojson(doc, ctx)
    doc["features"][0]["geometry"] = {"type": "Point", "coordinates": [104.0, 30.6]}
    with pytest.raises(InputError, match="Polygon"):
        proposal_from_geojson(doc, ctx)


def test_a_grid_drawn_without_community_takes_the_one_holding_it(ctx):
    frame = _current(ctx).to_crs(4326).drop(columns=["community_id"])
    assert set(proposal_frame(frame, ctx)["community_id"]) == {"C1"}


def test_compare_two_versions_finds_merged_grids(ctx):
    before = _current(ctx)
    merged = before.iloc[:2].dissolve().assign(id=before["id"].iloc[0], community_id="C1")
    after = gpd.GeoDataFrame(pd_concat([merged, before.iloc[2:]]), crs=before.crs)
    diff = compare_grids(ctx, before=before, after=after)
    assert diff["removed"] == [before["id"].iloc[1]]
    assert diff["merged"] == [{"into": before["id"].iloc[0], "from": sorted(before["id"].iloc[:2])}]


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _broken(ctx):
    """The context as if its current grids of C1 were drawn badly: half a building given to another grid (a cut
    building, and a grid in two pieces), and the grids that do it."""
    from dataclasses import replace

    grids = _current(ctx)
    b = ctx.buildings_of({"C1"}).iloc[0]
    geoms = grids.geometry.to_numpy().copy()
    holder = int(shapely.intersects(geoms, b.geometry.centroid).argmax())
    other = (holder + 1) % len(grids)
    half = shapely.box(*b.geometry.bounds[:2], b.geometry.centroid.x, b.geometry.bounds[3])
    geoms[holder] = shapely.difference(geoms[holder], half)
    geoms[other] = shapely.union(geoms[other], half)
    bad = grids.set_geometry(geoms)
    whole = pd_concat([ctx.grids[ctx.grids["community_id"] != "C1"], bad])
    return replace(ctx, grids=gpd.GeoDataFrame(whole, crs=ctx.grids.crs), _cells={}, _before={}), bad, str(b["id"])


def test_problems_the_current_grids_already_have_remain_named_and_do_not_block(ctx):
    broken, bad, building = _broken(ctx)
    report = check_proposal(broken, bad)
    assert report["valid"] and not report["clean"] and report["problems"] == []
    kinds = {(r["kind"], r["status"]) for r in report["issues"]}
    assert ("split_building", "remaining") in kinds and ("non_contiguous", "remaining") in kinds
    assert not any(s == "new" for _, s in kinds)
    cut = next(r for r in report["issues"] if r["kind"] == "split_building")
    assert cut["building_id"] == building and cut["id"] == f"split_building:{building}"
    assert building in cut["message"] and "被网格" in cut["message_zh"] and len(cut["grid_ids"]) == 2
    lon0, lat0, lon1, lat1 = cut["bbox"]
    assert 103 < lon0 < lon1 < 106 and 29 < lat0 < lat1 < 32 and cut["geometry"]["type"] == "Polygon"
    json.dumps(report)


def test_a_proposal_that_repairs_the_current_grids_is_clean_and_lists_what_it_fixes(ctx):
    broken, _, building = _broken(ctx)
    report = check_proposal(broken, _current(ctx))
    assert report["valid"] and report["clean"] and report["issues"] == []
    fixed = {(r["kind"], r["status"]) for r in report["fixed"]}
    assert {("split_building", "fixed"), ("non_contiguous", "fixed")} <= fixed
    assert report["issue_counts"]["fixed"] == len(report["fixed"]) >= 2


def test_a_grid_shrunk_beside_an_old_cut_is_refused_for_what_it_adds_only(ctx):
    broken, bad, building = _broken(ctx)
    geoms = bad.geometry.to_numpy().copy()
    far = int(shapely.distance(geoms, geoms[0]).argmax())  # a grid away from the building
    geoms[far] = shapely.buffer(geoms[far], -40.0)
    report = check_proposal(broken, bad.set_geometry(geoms))
    assert not report["valid"] and report["problems"][0].startswith("1 gap(s) no grid covers")
    new = [r for r in report["issues"] if r["status"] == "new"]
    assert {r["kind"] for r in new} >= {"gap"} and all(r["kind"] != "non_contiguous" for r in new)
    gap = next(r for r in new if r["kind"] == "gap")
    assert gap["households"] > 0 and "空隙" in gap["message_zh"]
    # the building cut already is not among the problems the shrinking made, but still listed as remaining
    assert not any(r["kind"] == "split_building" and r["key"] == building for r in new)
    assert any(r["kind"] == "split_building" and r["key"] == building and r["status"] == "remaining"
               for r in report["issues"])


def test_a_gap_that_grows_is_new_and_one_that_shrinks_remains():
    from geo.redraw import judge_problems

    old = [{"kind": "gap", "key": None, "_geom": shapely.box(0, 0, 10, 10)}]
    grown = judge_problems([{"kind": "gap", "key": None, "_geom": shapely.box(0, 0, 12, 10)}], old)
    assert grown["found"][0]["status"] == "new" and grown["found"][0]["new_area_m2"] == 20.0 and grown["fixed"] == []
    shrunk = judge_problems([{"kind": "gap", "key": None, "_geom": shapely.box(0, 0, 10, 4)}], old)
    assert shrunk["found"][0]["status"] == "remaining" and shrunk["fixed"] == []
    # the same building cut between other grids is still the same problem; another building is a new one
    cut = [{"kind": "split_building", "key": "B1"}]
    assert judge_problems([{"kind": "split_building", "key": "B1"}], cut)["found"][0]["status"] == "remaining"
    other = judge_problems([{"kind": "split_building", "key": "B2"}], cut)
    assert other["found"][0]["status"] == "new" and other["fixed"][0]["key"] == "B1"


def test_compare_names_grids_whose_outline_moved_though_nobody_changed_grid(ctx):
    before = _current(ctx)
    geoms = before.geometry.to_numpy().copy()
    nib = shapely.intersection(shapely.buffer(geoms[1], 10.0), geoms[0])  # a strip of grid 0 along grid 1
    geoms[0], geoms[1] = shapely.difference(geoms[0], nib), shapely.union(geoms[1], nib)
    diff = compare_grids(ctx, before=before, after=before.set_geometry(geoms))
    moved = {r["grid_id"]: r for r in diff["reshaped"]}
    assert set(moved) == set(before["id"].iloc[:2])
    assert moved[before["id"].iloc[1]]["gained_m2"] > 50 and moved[before["id"].iloc[0]]["lost_m2"] > 50
    assert compare_grids(ctx, before=before, after=before)["reshaped"] == []
