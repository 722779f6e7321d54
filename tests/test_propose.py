"""Proposed grids: whole buildings and estates, every grid in the band, contiguous, compact, a clean coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.assign import building_grids
from geo.propose import ProposalError, parse_band, partition_units, polsby_popper, propose_grids, tessellate
from geo.regions import exact_regions, region_bound
from geo.workload import workload_band
from redraw_data import community_frames


@pytest.fixture(scope="module")
def community():
    return community_frames(buildings=2000, seed=0)


@pytest.fixture(scope="module")
def proposal(community):
    comm, buildings, estates, hh = community
    return propose_grids(comm, buildings, estates, hh, band=(300, 500))


def test_every_grid_is_inside_the_band_and_the_households_add_up(proposal, community):
    g = proposal.grids
    assert g["households"].between(300, 500).all()
    assert g["households"].sum() == len(community[3])
    assert len(g) >= 0.85 * proposal.maximum  # whole estates of ~100 households cost some grids (see bench)


def test_the_grids_tile_the_community_without_gap_or_overlap(proposal, community):
    geoms = shapely.set_precision(proposal.grids.geometry.to_numpy(), 0.01)
    assert shapely.coverage_is_valid(geoms, gap_width=1.0)
    comm = community[0].geometry.iloc[0]
    assert abs(shapely.union_all(geoms).area - comm.area) < 1.0
    assert shapely.difference(comm, shapely.union_all(geoms)).area < 1.0


def test_no_building_or_estate_is_cut_and_every_grid_is_one_piece(proposal, community):
    _, buildings, estates, _ = community
    grids = proposal.grids
    assert not building_grids(buildings, grids)["split"].any()
    assert not building_grids(estates, grids)["split"].any()
    assert (shapely.get_num_geometries(grids.geometry.to_numpy()) == 1).all()


def test_grids_are_compact(proposal):
    assert np.nanmean(polsby_popper(proposal.grids.geometry.to_numpy())) >= 0.35


def test_an_estate_above_the_ceiling_is_split_along_building_lines(community):
    comm, buildings, estates, hh = community
    big = estates["id"].iloc[0]
    in_big = buildings.loc[buildings["estate_id"] == big, "id"].to_numpy()
    extra = pd.DataFrame({"building_id": np.repeat(in_big, 60), "persons": 2, "x": np.nan, "y": np.nan})
    p = propose_grids(comm, buildings, estates, pd.concat([hh, extra], ignore_index=True), band=(300, 500))
    assert big in p.units.split_estates
    assert not building_grids(buildings, p.grids)["split"].any()
    assert p.grids["households"].between(300, 500).all()


@pytest.fixture(scope="module")
def workload_proposal(community):
    comm, buildings, estates, hh = community
    return propose_grids(comm, buildings, estates, hh, band=workload_band(1))


def test_with_the_workload_rule_the_grids_are_as_many_as_whole_estates_allow(workload_proposal, community):
    # 150-300 households per one-worker grid: estates of ~100 households pair up, so households // 150 is out of
    # reach; the exact optimum over the same units (geo.regions) is what a division into whole estates can make
    comm, buildings, estates, _ = community
    p = workload_proposal
    assert p.grids["households"].between(150, 300).all()
    cgeom = shapely.make_valid(shapely.set_precision(comm.geometry.iloc[0], 0.01))
    tess = tessellate(cgeom, p.units.piece_geom, p.units.piece_unit)
    best = exact_regions(p.units.households, tess.pairs, band=(150, 300))
    assert best.optimal and len(p.grids) == best.count
    assert best.count <= region_bound(p.units.households, band=(150, 300)) < 0.95 * p.maximum
    assert not building_grids(buildings, p.grids)["split"].any()
    assert not building_grids(estates, p.grids)["split"].any()
    assert (shapely.get_num_geometries(p.grids.geometry.to_numpy()) == 1).all()
    assert shapely.coverage_is_valid(shapely.set_precision(p.grids.geometry.to_numpy(), 0.01), gap_width=1.0)


def test_without_the_exact_division_the_greedy_and_local_search_stay_in_band_near_the_optimum(workload_proposal,
                                                                                              community):
    comm, buildings, estates, hh = community
    greedy = propose_grids(comm, buildings, estates, hh, band=workload_band(1), exact_steps=0)
    assert greedy.grids["households"].between(150, 300).all()
    assert len(greedy.grids) >= 0.95 * len(workload_proposal.grids)


def test_keeping_current_grids_that_are_in_band_changes_nothing():
    # four units in a row, two grids of 2 units each already inside the band
    w = np.array([160, 160, 170, 170])
    x = np.arange(4) * 100.0
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    start = np.array([0, 0, 1, 1])
    assert (partition_units(w, x, np.zeros(4), pairs, band=(300, 500), start=start) == start).all()


def test_repair_moves_a_unit_from_an_overfull_grid_to_its_neighbour():
    w = np.array([200, 200, 150, 150, 100])
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    start = np.array([0, 0, 0, 1, 1])  # 550 | 250
    out = partition_units(w, np.arange(5) * 100.0, np.zeros(5), pairs, band=(300, 500), start=start)
    totals = np.bincount(out, weights=w)
    assert ((totals >= 300) & (totals <= 500)).all() and len(totals) == 2


@pytest.mark.parametrize("text", ["500-300", "abc", "300", "0-10"])
def test_a_bad_band_is_refused_with_its_text(text):
    with pytest.raises(ProposalError, match="band"):
        parse_band(text)


def test_a_band_reads_as_floor_and_ceiling():
    assert parse_band("300-500") == (300, 500)
    assert parse_band(None) is None  # no band given: the caller takes the workload rule's (geo.workload)


def test_new_grids_are_named_by_the_next_free_codes_in_reading_order_after_the_taken_ones(community):
    from geo.gridcodes import reading_rank

    comm, buildings, estates, hh = community
    code = str(comm["code"].iloc[0])
    p = propose_grids(comm, buildings, estates, hh, band=(300, 500), taken_codes=[f"{code}007", "999999999999999"])
    grids = p.grids
    # a new grid's id is its standard code: the community's code + the next numbers after the largest taken (007)
    assert (grids["id"] == grids["code"]).all() and not grids["id"].str.contains("-N").any()
    seq = grids["code"].str.slice(len(code)).astype(int).to_numpy()
    assert grids["code"].str.startswith(code).all() and sorted(seq) == list(range(8, 8 + len(grids)))
    # numbered west to east, north to south: the sequence follows the reading order
    assert (np.argsort(np.argsort(seq)) == reading_rank(grids)).all()


def test_a_community_without_a_statistical_code_names_new_grids_as_before_and_says_so(community):
    comm, buildings, estates, hh = community
    p = propose_grids(comm.drop(columns="code"), buildings, estates, hh, band=(300, 500))
    cid = str(comm["id"].iloc[0])
    assert p.grids["id"].str.startswith(f"{cid}-N").all() and p.grids["code"].isna().all()
    assert any("has no 12-digit statistical code" in n for n in p.notes)
