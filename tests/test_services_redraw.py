"""The redraw service as its callers (the command line, the server) see it: a check, an apply and its history
row, drafts, a conflict; on both backends."""

from __future__ import annotations

import pandas as pd
import pytest

from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from geo.errors import InputError
from gridcover.services.redraw import RedrawService
from gridcover.store import ConflictError, WorkspaceError
from redraw_data import synthetic_workspace


@pytest.fixture
def redraw(tmp_path, backend):
    return RedrawService(backend.open(synthetic_workspace(tmp_path)))


def _grids(redraw, community="C1", worker="新网格员"):
    """The current grids of ``community`` (metric) with ``worker`` in charge of its first grid: a valid proposal."""
    grids = redraw.context().grids_of({community}).reset_index(drop=True)
    grids.loc[0, "worker_name"] = worker
    return grids


def test_a_check_of_the_current_grids_is_valid_and_moves_nobody_and_a_gap_is_not(redraw):
    check = redraw.check(_grids(redraw))
    assert check["valid"] and check["base_version"] == 1 and check["moved"]["households"] == 0
    assert tuple(check["band"]) == (150, 300)  # one full-time worker per grid: the workload rule's band
    assert "from the workload rule" in check["notes"][0]
    gap = _grids(redraw).iloc[:-1]
    check = redraw.check(gap, band=(200, 600))
    assert not check["valid"] and check["gaps"] and tuple(check["band"]) == (200, 600)
    with pytest.raises(InputError, match="not valid and cannot be applied"):
        redraw.apply(gap, author="王芳", reason="试")
    assert redraw.history()["current"] == 1


def test_a_body_is_read_as_grids_or_as_moves(redraw):
    doc = redraw.context().grids_of({"C1"}).to_crs(4326).to_geo_dict(drop_id=True)
    assert set(redraw.parse_proposal(doc)["community_id"]) == {"C1"}
    target = redraw.context().grids_of({"C1"})["id"].iloc[1]
    moved = redraw.parse_proposal({"moves": [{"estate_id": "E01", "to": target}]})
    assert len(moved) and "community_id" in moved
    with pytest.raises(InputError):
        redraw.parse_proposal({"type": "FeatureCollection", "features": []})
    assert redraw.streets()["C1"] == "S1"


def test_an_apply_is_a_new_version_with_its_history_row_and_the_context_follows(redraw):
    before = redraw.context()
    assert redraw.context() is before  # built once per version
    version, check = redraw.apply(_grids(redraw, worker="甲"), author="王芳", reason="均衡工作量")
    assert check["valid"]
    assert {k: version[k] for k in ("version", "author", "reason", "kind", "communities", "parent")} == {
        "version": 2, "author": "王芳", "reason": "均衡工作量", "kind": "apply", "communities": ["C1"], "parent": 1}
    history = redraw.history()
    assert history["current"] == 2 and history["versions"][-1] == version
    assert [v["version"] for v in history["versions"]] == [1, 2]
    after = redraw.context()
    assert after is not before and int(after.version) == 2
    assert "甲" in set(after.grids_of({"C1"})["worker_name"])
    row, grids = redraw.read_version(2)
    assert row == version and set(grids["community_id"]) == {"C1", "C2"} and grids.crs.to_epsg() == 4326
    diff = redraw.compare(1, 2)
    assert (diff["from_version"], diff["to_version"], diff["moved"]["households"]) == (1, 2, 0)
    restored = redraw.restore(1, author="区网格中心", reason="回退")
    assert (restored["version"], restored["kind"], restored["communities"]) == (3, "restore", ["C1"])
    with pytest.raises(WorkspaceError, match="no grid version 9"):
        redraw.read_version(9)


def test_a_second_editor_of_the_same_community_gets_a_conflict_and_a_draft_applies_once(redraw, backend):
    other = RedrawService(backend.again(redraw.store))  # another server on the same workspace
    pid = redraw.save_draft(_grids(redraw, worker="乙"), redraw.check(_grids(redraw, worker="乙")), author="李娜",
                            note="草稿")
    assert [(d["id"], d["status"]) for d in redraw.drafts()] == [(pid, "draft")]
    assert redraw.draft(pid)["communities"] == ["C1"]
    other.apply(_grids(other, worker="甲"), author="王芳", reason="先", expected_version=1)
    with pytest.raises(ConflictError, match=r"conflict: version 2 by 王芳 .*\(先\) changed C1 after version 1"):
        redraw.apply_draft(pid, author="李娜", reason="后")
    version, _ = redraw.apply_draft(pid, author="李娜", reason="后", expected_version=2)
    assert version["version"] == 3 and redraw.draft(pid)["status"] == "applied"
    with pytest.raises(ConflictError, match=f"proposal {pid} was applied already \\(version 3\\)"):
        redraw.apply_draft(pid, author="李娜", reason="再")
    with pytest.raises(WorkspaceError, match="no proposal"):
        redraw.draft("nope")


# ---------------------------------------------------------------- grid codes (网格编码)
def _merge_last_coded(redraw):
    """The current grids of C1 with the grid of the largest code merged into the neighbour sharing most border
    with it (that neighbour also gets two part-time grid workers): a valid proposal retiring the largest code."""
    import shapely

    grids = redraw.context().grids_of({"C1"}).reset_index(drop=True)
    last = int(grids["code"].astype(str).idxmax())
    shared = [shapely.length(shapely.intersection(grids.geometry.iloc[last].boundary, g.boundary)) if i != last
              else -1.0 for i, g in enumerate(grids.geometry)]
    into = int(max(range(len(shared)), key=shared.__getitem__))
    grids.loc[into, "geometry"] = shapely.union(grids.geometry.iloc[into], grids.geometry.iloc[last])
    grids.loc[into, "part_time_workers"] = 2
    return grids.drop(index=last).reset_index(drop=True), str(grids["id"].iloc[last]), str(grids["code"].iloc[last]), \
        str(grids["id"].iloc[into])


def test_grid_codes_and_part_time_workers_are_kept_in_every_version(redraw):
    merged, retired, retired_code, kept = _merge_last_coded(redraw)
    codes_before = dict(zip(redraw.context().grids_of({"C1"})["id"], redraw.context().grids_of({"C1"})["code"]))
    version, check = redraw.apply(merged, author="王芳", reason="合并网格")
    assert check["valid"] and check["codes"]["issues"] == [] and version["version"] == 2
    _, first = redraw.read_version(1)
    _, second = redraw.read_version(2)
    assert dict(zip(first["id"], first["code"]))[retired] == retired_code
    assert retired not in set(second["id"])
    second = second.set_index("id")
    assert second.loc[kept, "code"] == codes_before[kept]  # a kept grid keeps its code
    assert int(second.loc[kept, "part_time_workers"]) == 2
    assert second["code"].notna().all()


def test_a_new_grid_gets_the_next_free_code_and_a_retired_code_is_never_given_again(redraw):
    import shapely

    merged, retired, retired_code, kept = _merge_last_coded(redraw)
    redraw.apply(merged, author="王芳", reason="合并网格")
    grids = redraw.context().grids_of({"C1"}).reset_index(drop=True)
    # the merged grid is cut in two: its west half keeps it, the east half is a new grid without a code
    i = int(grids.index[grids["id"] == kept][0])
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    west, east = (shapely.intersection(grids.geometry.iloc[i], shapely.box(a, y0, b, y1))
                  for a, b in ((x0, (x0 + x1) / 2), ((x0 + x1) / 2, x1)))
    new = grids.iloc[[i]].copy()
    new["id"], new["code"], new["geometry"] = "新网格", None, [east]
    grids.loc[i, "geometry"] = west
    proposal = pd.concat([grids, new], ignore_index=True).set_crs(grids.crs, allow_override=True)
    check = redraw.check(proposal, band=(1, 5000))
    nxt = retired_code[:-3] + f"{int(retired_code[-3:]) + 1:03d}"
    assert f"grid codes given to 1 grid(s) without one: 新网格 {nxt}" in check["notes"]
    assert check["codes"]["problems"] == []
    # a proposal made by gridcover names its new grids by the next free codes: never the retired one
    grids, check, notes = redraw.propose("C1", band=(150, 250))
    fresh = grids[~grids["id"].isin(set(redraw.context().grids["id"]))]
    assert len(fresh) and (fresh["id"] == fresh["code"]).all() and retired_code not in set(grids["code"])
    assert (fresh["code"].str.slice(-3).astype(int) > int(retired_code[-3:])).all()
    assert grids["code"].is_unique and not grids["id"].str.contains("-N").any()


def test_a_proposal_drawn_without_the_code_field_keeps_the_codes_of_the_grids_it_keeps(redraw):
    grids = _grids(redraw)
    codes = dict(zip(grids["id"], grids["code"]))
    check = redraw.check(grids.drop(columns="code"))
    assert check["valid"] and not any(n.startswith("grid codes given") for n in check["notes"])
    redraw.apply(grids.drop(columns="code"), author="王芳", reason="换网格员")
    _, second = redraw.read_version(2)
    kept = dict(zip(second["id"], second["code"]))
    assert {g: kept[g] for g in codes} == codes


def test_a_code_problem_a_proposal_makes_makes_it_invalid_and_is_said_not_raised(redraw):
    grids = _grids(redraw)
    grids["code"] = grids["code"].astype(object)
    grids.loc[0, "code"] = "51010400100X"
    check = redraw.check(grids)
    assert not check["valid"] and any(p.startswith("grid code is not 12+3 digits") for p in check["problems"])
    other = redraw.context().grids_of({"C2"})["code"].iloc[0]
    grids.loc[0, "code"] = other  # the code of a grid of the other community
    check = redraw.check(grids)
    assert not check["valid"] and any(f"grid code {other} is on 2 grids" in p for p in check["problems"])
    # it is also not under C1's code: both are the proposal's doing
    assert sorted(i["kind"] for i in check["codes"]["issues"]) == ["code_duplicate", "code_outside_community"]
    assert all(i["new"] for i in check["codes"]["issues"])
    with pytest.raises(InputError, match="not valid and cannot be applied"):
        redraw.apply(grids, author="王芳", reason="试")


# ---------------------------------------------------------------- the workload rule on the sample (GeoPackage only)
@pytest.fixture(scope="module")
def sample_redraw(sample_analysis):
    from gridcover.store import open_workspace

    return RedrawService(open_workspace(sample_analysis[1]))


def test_a_sample_proposal_takes_its_band_from_staffing_and_names_every_grid_over_the_rule(sample_redraw):
    grids, check, notes = sample_redraw.propose("510105001003")
    assert tuple(check["band"]) == (300, 600) and check["valid"]  # two full-time workers in its typical grid
    assert notes[0].startswith("band 300-600 households per grid from the workload rule: 2 full-time worker(s)")
    staff = next(n for n in notes if n.startswith("full-time workers allotted by the workload rule"))
    assert "the community has 15" in staff
    over = [r for r in check["grids"] if r["over_capacity"]]
    assert check["summary"]["over_capacity"] == len(over)
    for r in over:  # every grid over the rule is in the notes, with why and what it needs
        assert any(n.startswith(f"grid {r['id']} is over the workload rule (300 per worker)") and "needs" in n
                   for n in notes)
    within = [r for r in check["grids"] if not r["over_capacity"]]
    assert within and all(r["workload"] <= 300 * r["workers"] for r in within)


def test_a_sample_proposal_banded_to_whole_two_worker_grids_has_no_grid_over_the_rule(sample_redraw):
    grids, check, notes = sample_redraw.propose("510105001003", band=(450, 600))
    assert check["valid"] and check["summary"]["over_capacity"] == 0
    assert all(r["households_per_worker"] <= 300 for r in check["grids"])
    assert not any("above the workload rule" in n for n in notes)  # 600 is two workers' share: no warning
    assert (grids["full_time_workers"] >= 1).all()


def test_a_band_above_the_rule_is_kept_with_a_warning(sample_redraw):
    current = sample_redraw.context().grids_of({"510105001003"}).reset_index(drop=True)
    check = sample_redraw.check(current, band=(300, 700))
    assert check["band"] == [300, 700]
    assert check["notes"][0] == ("the band 300-700 lets a grid of 2 full-time workers hold up to 700 households, "
                                 "above the workload rule (300 per worker): such grids show as over capacity")
    # the planted cut building and the estate it cuts are left alone: named, they do not block
    assert check["valid"] and [n.split(":")[0] for n in check["notes"][1:]] == ["remains, as in the current grids"] * 2
    # the current grids, checked: the planted overloaded grid G03-04 is over the rule, as the scorecard says
    assert {r["id"] for r in check["grids"] if r["over_capacity"]} == {"G03-04"}


def test_a_code_defect_the_current_grids_already_have_is_a_note_not_a_problem(sample_redraw):
    current = sample_redraw.context().grids_of({"510105001005"}).reset_index(drop=True)
    check = sample_redraw.check(current, band=(300, 700))
    assert check["valid"] and check["codes"]["problems"] == []
    assert ("grid code 510105001004007 does not start with its community's code 510105001005 (as in the current "
            "grids)") in check["notes"]


DESHENG = "510105001003"  # 德盛路社区: its current grids cut building B00021 (2栋) and with it estate E007 福和名都


@pytest.fixture
def desheng(sample_analysis, tmp_path):
    """The redraw service on a copy of the sample workspace (these tests apply changes)."""
    import shutil

    from gridcover.store import open_workspace

    folder = tmp_path / "ws"
    folder.mkdir()
    shutil.copy2(sample_analysis[1] / "workspace.gpkg", folder / "workspace.gpkg")
    return RedrawService(open_workspace(folder))


def _estates_in_one_grid(redraw):
    """(estate, its grid, its buildings) of 德盛路社区 whose households all lie in one grid other than the cut ones,
    largest first."""
    ctx = redraw.context()
    hh = ctx.households_of({DESHENG})
    b = ctx.buildings[["id", "estate_id"]]
    homes = hh[["building_id", "grid_id"]].merge(b, left_on="building_id", right_on="id").dropna(subset=["grid_id"])
    per = homes.groupby("estate_id")["grid_id"].agg(["nunique", "first", "size"])
    per = per[(per["nunique"] == 1) & ~per["first"].isin(["G03-01", "G03-02"])].sort_values("size", ascending=False)
    return [(e, g, sorted(homes.loc[homes["estate_id"] == e, "building_id"].unique())) for e, g in per["first"].items()]


def _neighbours(redraw, grid):
    grids = redraw.context().grids_of({DESHENG}).set_index("id")
    own = grids.geometry[grid]
    shared = grids.geometry.drop(grid).intersection(own.buffer(0.5)).length
    return list(shared[shared > 20].sort_values(ascending=False).index)


def test_in_desheng_the_current_grids_name_their_two_problems_and_do_not_block(desheng):
    check = desheng.check(desheng.context().grids_of({DESHENG}).reset_index(drop=True))
    assert check["valid"] and not check["clean"] and check["problems"] == []
    named = {r["id"]: r for r in check["issues"]}
    assert set(named) == {"split_building:B00021", "split_estate:E007"}
    cut = named["split_building:B00021"]
    assert (cut["status"], cut["building_name"], cut["building_address"], cut["estate_name"]) == \
        ("remaining", "2栋", "西珠市街26号 福和名都 2栋", "福和名都")
    assert cut["grid_names"] == ["德盛路社区第1网格", "德盛路社区第2网格"] and cut["community_name"] == "德盛路社区"
    assert named["split_estate:E007"]["message_zh"].startswith("小区 福和名都（西珠市街26号，E007）被网格")


def test_in_desheng_a_move_that_mends_the_cut_building_applies_and_says_what_it_fixed(desheng):
    check = desheng.check(desheng.parse_proposal({"moves": [{"building_id": "B00021", "to": "G03-01"}]}))
    assert check["valid"] and check["clean"] and check["issues"] == []
    assert {r["id"] for r in check["fixed"]} == {"split_building:B00021", "split_estate:E007"}
    assert any(n.startswith("fixed: building B00021 2栋") for n in check["notes"])
    grids = desheng.parse_proposal({"moves": [{"building_id": "B00021", "to": "G03-01"}]})
    version, _ = desheng.apply(grids, author="德盛路社区", reason="2栋整栋划入第1网格")
    assert version["version"] == 2
    after = desheng.check(desheng.context().grids_of({DESHENG}).reset_index(drop=True))
    assert after["clean"] and after["fixed"] == []  # the new current grids have nothing left to fix


def test_in_desheng_a_move_that_cuts_another_estate_is_refused_naming_it(desheng):
    estate, grid, buildings = next(e for e in _estates_in_one_grid(desheng) if len(e[2]) >= 2)
    name = desheng.context().estates.set_index("id").loc[estate, "name"]
    grids = desheng.parse_proposal({"moves": [{"building_id": buildings[0], "to": _neighbours(desheng, grid)[0]}]})
    check = desheng.check(grids)
    assert not check["valid"]
    new = {r["id"]: r for r in check["issues"] if r["status"] == "new"}
    assert f"split_estate:{estate}" in new and name in new[f"split_estate:{estate}"]["message_zh"]
    assert any(f"{estate} {name}" in p for p in check["problems"])
    old = {r["id"] for r in check["issues"] if r["status"] == "remaining"}
    assert old == {"split_building:B00021", "split_estate:E007"}
    with pytest.raises(InputError, match=f"cannot be applied.*estate {estate} {name}"):
        desheng.apply(grids, author="德盛路社区", reason="试一试")
    assert desheng.history()["current"] == 1  # nothing written


def test_in_desheng_a_move_elsewhere_applies_and_names_the_old_problems_remaining(desheng):
    for estate, grid, _ in _estates_in_one_grid(desheng):
        grids = desheng.parse_proposal({"moves": [{"estate_id": estate, "to": _neighbours(desheng, grid)[0]}]})
        check = desheng.check(grids)
        if check["valid"]:
            break
    assert check["valid"] and check["moved"]["households"] > 0
    assert {(r["id"], r["status"]) for r in check["issues"]} == {("split_building:B00021", "remaining"),
                                                                 ("split_estate:E007", "remaining")}
    assert [n for n in check["notes"] if n.startswith("remains")] == [
        "remains, as in the current grids: building B00021 2栋 (西珠市街26号 福和名都 2栋) is cut by the boundary of "
        "G03-01 / G03-02 (73 households)",
        "remains, as in the current grids: estate E007 福和名都 (西珠市街26号) is cut by the boundary of G03-01 / "
        "G03-02 though it fits one grid (165 households)"]
    version, report = desheng.apply(grids, author="德盛路社区", reason=f"{estate} 划入相邻网格")
    assert version["version"] == 2 and report["issue_counts"] == {"new": 0, "remaining": 2, "fixed": 0}
