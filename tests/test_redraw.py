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
