"""Standard grid codes (网格编码): new codes in reading order, never a taken one; bad codes are coverage issues."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import InputError
from geo.gridcodes import CODE_ISSUE_KINDS, CodePattern, assign_codes, check_codes, reading_rank
from geo.schema import LAYERS

CRS = "EPSG:32648"
C1, C2 = "510105001001", "510105001002"


def _communities(codes=(C1, C2)) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ["c1", "c2"], "code": list(codes)},
                            geometry=[shapely.box(0, 0, 300, 300), shapely.box(300, 0, 600, 300)], crs=CRS)


def _block(community: str, x0: float, ids: list[str], codes=None, jitter=None) -> gpd.GeoDataFrame:
    """Nine 100 m grids in three rows, ids given north-west to south-east (reading order); ``jitter`` moves
    each grid's south edge by a few metres (rows that are not straight)."""
    boxes = []
    for k in range(9):
        r, c = divmod(k, 3)
        dy = 0 if jitter is None else jitter[k]
        boxes.append(shapely.box(x0 + c * 100, 200 - r * 100 + dy, x0 + c * 100 + 100, 300 - r * 100))
    return gpd.GeoDataFrame({"id": ids, "community_id": community, "code": codes if codes is not None else None},
                            geometry=boxes, crs=CRS)


def test_grids_are_numbered_west_to_east_in_rows_north_to_south():
    grids = _block("c1", 0, [f"g{k}" for k in range(9)], jitter=[0, 8, -6, 3, 0, -9, 5, 0, 7])
    shuffled = grids.sample(frac=1, random_state=3)
    codes = assign_codes(shuffled, _communities())
    assert codes.reindex(grids.index).tolist() == [f"{C1}{k:03d}" for k in range(1, 10)]
    assert reading_rank(grids).tolist() == list(range(9))


def test_new_codes_follow_the_largest_taken_and_never_reuse_one():
    codes = [None, f"{C1}004", None, None, f"{C1}002", None, None, None, None]
    grids = _block("c1", 0, [f"g{k}" for k in range(9)], codes=codes)
    out = assign_codes(grids, _communities(), taken=[f"{C1}007", f"{C2}050"])  # 007: a retired grid's
    assert out.iloc[1] == f"{C1}004" and out.iloc[4] == f"{C1}002"  # kept
    fresh = out[pd.isna(pd.Series(codes))]
    assert fresh.tolist() == [f"{C1}{k:03d}" for k in range(8, 15)]  # after 007, in reading order
    assert out.is_unique


def test_each_community_numbers_its_own_grids():
    grids = pd.concat([_block("c1", 0, [f"a{k}" for k in range(9)]), _block("c2", 300, [f"b{k}" for k in range(9)])],
                      ignore_index=True)
    out = assign_codes(gpd.GeoDataFrame(grids, crs=CRS), _communities())
    assert out.iloc[:9].tolist() == [f"{C1}{k:03d}" for k in range(1, 10)]
    assert out.iloc[9:].tolist() == [f"{C2}{k:03d}" for k in range(1, 10)]
    assert check_codes(gpd.GeoDataFrame(grids.assign(code=out), crs=CRS), _communities()).empty


def test_a_community_without_a_statistical_code_gives_no_codes():
    grids = _block("c1", 0, [f"g{k}" for k in range(9)])
    out = assign_codes(grids, _communities(codes=("5101", C2)))
    assert out.isna().all()


def test_the_pattern_is_configurable():
    pattern = CodePattern(sequence_digits=4, separator="-")
    grids = _block("c1", 0, [f"g{k}" for k in range(9)])
    out = assign_codes(grids, _communities(), pattern=pattern)
    assert out.iloc[0] == f"{C1}-0001" and out.iloc[8] == f"{C1}-0009"
    assert check_codes(grids.assign(code=out), _communities(), pattern=pattern).empty
    assert check_codes(grids.assign(code=out), _communities())["kind"].eq("code_malformed").all()


def test_a_community_out_of_sequence_numbers_is_an_error_naming_it():
    grids = _block("c1", 0, [f"g{k}" for k in range(9)], codes=[f"{C1}998"] + [None] * 8)
    with pytest.raises(InputError, match="community c1: no free grid code left for grid g2"):
        assign_codes(grids, _communities())


def test_bad_codes_are_coverage_issues_a_user_can_read():
    codes = [f"{C1}001", "5101050010010", f"{C1}000", f"{C2}003", f"{C1}005", f"{C1}005", f"{C1}005", None,
             f" {C1}009 "]
    grids = _block("c1", 0, [f"g{k}" for k in range(9)], codes=codes)
    located = pd.DataFrame({"x": [50.0, 150.0, 150.0, 250.0, 250.0], "y": [250.0, 250.0, 250.0, 150.0, 50.0],
                            "persons": [1, 2, 3, 4, 5]})
    issues = check_codes(grids, _communities(), located=located)
    rows = {(r.kind, r.grid_ids): r for r in issues.itertuples()}
    assert set(rows) == {("code_malformed", "g1"), ("code_malformed", "g2"), ("code_outside_community", "g3"),
                         ("code_duplicate", "g4,g5,g6")}
    assert rows[("code_malformed", "g1")].households == 2 and rows[("code_malformed", "g1")].persons == 5
    assert "does not start with its community's code 510105001001" in rows[("code_outside_community", "g3")].detail
    assert rows[("code_duplicate", "g4,g5,g6")].area_m2 == pytest.approx(30000)
    assert set(issues["kind"]) <= set(CODE_ISSUE_KINDS)
    assert issues["id"].str.fullmatch(r"code_\w+-\d+").all()


def test_code_issues_have_the_shape_of_the_coverage_issues():
    from geo.diagnose import _ISSUE_COLUMNS

    grids = _block("c1", 0, [f"g{k}" for k in range(9)], codes=["x"] * 9)
    issues = check_codes(grids, _communities())
    assert set(["id", *_ISSUE_COLUMNS, "geometry"]) <= set(issues.columns)
    assert issues.crs == grids.crs


def test_grids_may_carry_a_code_field():
    field = LAYERS["grids"].field("code")
    assert not field.required and field.nullable
