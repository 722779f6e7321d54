"""``gridcover redraw``: what a user sees from propose, check, apply, history, compare and restore."""

from __future__ import annotations

import json
import os

import pytest

from gridcover.cli import main
from leftovers import dead_owner, unwritable_folder
from redraw_data import meanwhile, synthetic_workspace


@pytest.fixture
def ws(tmp_path):
    return synthetic_workspace(tmp_path)


def test_propose_check_apply_history(ws, tmp_path, capsys):
    out = tmp_path / "p.geojson"
    assert main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(out)]) == 0
    feats = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert feats and all({"id", "community_id", "households", "persons"} <= set(f["properties"]) for f in feats)
    err = capsys.readouterr().err
    assert "households per grid from the workload rule" in err
    for f in feats:  # within the workload rule, or named in the notes with why
        p = f["properties"]
        workers = p["full_time_workers"] if p.get("full_time_workers") is not None else int(bool(p.get("worker_name")))
        assert p["households"] <= 300 * workers or f"grid {p['id']} is over the workload rule" in err
    report = tmp_path / "r.json"
    assert main(["redraw", "check", str(ws), str(out), "--out", str(report)]) == 0
    r = json.loads(report.read_text(encoding="utf-8"))
    assert {"valid", "gaps", "overlaps", "split_buildings", "grids", "moves"} <= set(r)
    assert r["valid"] and all({"households", "in_band"} <= set(g) for g in r["grids"])
    assert main(["redraw", "apply", str(ws), str(out), "--author", "张三", "--reason", "调整"]) == 0
    capsys.readouterr()
    assert main(["redraw", "history", str(ws)]) == 0
    text = capsys.readouterr().out
    assert "张三: 调整" in text and text.splitlines()[-1].startswith("*   2")
    assert main(["redraw", "compare", str(ws), "1", "2", "--out", str(tmp_path / "d.json")]) == 0
    assert main(["redraw", "restore", str(ws), "1", "--author", "李四", "--reason", "回退"]) == 0


def test_an_explicit_target_wins_with_a_note_when_it_exceeds_the_workload_rule(ws, tmp_path, capsys):
    out = tmp_path / "p.geojson"
    assert main(["redraw", "propose", str(ws), "--community", "C1", "--target", "300-500", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "note: the band 300-500 lets a grid of 1 full-time worker hold up to 500 households, above the " \
           "workload rule (300 per worker)" in err
    assert main(["redraw", "check", str(ws), str(out), "--target", "300-500", "--out", str(tmp_path / "r.json")]) == 0
    assert "note: the band 300-500" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["band"] == [300, 500]


def test_moves_file_and_conflict_exit_status(ws, tmp_path, capsys):
    moves = tmp_path / "moves.json"
    moves.write_text(json.dumps({"moves": [{"estate_id": "E01", "to": "C1-NEW"}]}), encoding="utf-8")
    assert main(["redraw", "check", str(ws), str(moves), "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["created"] == ["C1-NEW"]
    out = tmp_path / "p.geojson"
    main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(out)])
    main(["redraw", "apply", str(ws), str(out), "--author", "a", "--reason", "b"])
    capsys.readouterr()
    assert main(["redraw", "apply", str(ws), str(out), "--author", "c", "--reason", "d", "--expected-version", "1"]) == 3
    assert "conflict" in capsys.readouterr().err


def test_a_bad_proposal_is_one_line_and_exit_2(ws, tmp_path, capsys):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
                   '"geometry": {"type": "Point", "coordinates": [104, 30.6]}}]}', encoding="utf-8")
    assert main(["redraw", "check", str(ws), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.geojson" in err and "id" in err
    assert main(["redraw", "propose", str(ws), "--community", "C9", "--out", str(tmp_path / "x.geojson")]) == 2
    assert "no community 'C9'" in capsys.readouterr().err
    assert not (tmp_path / "x.geojson").exists()


# ---- outputs never harm what a command reads (gridcover/io/paths.py) ------------------------------------------

def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_out_in_or_over_the_workspace_or_the_proposal_is_refused_before_any_work(ws, tmp_path, capsys):
    proposal = tmp_path / "p.geojson"
    assert main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(proposal)]) == 0
    capsys.readouterr()
    before, proposed = _files(ws), proposal.read_bytes()
    gpkg = ws / "workspace.gpkg"
    cases = [
        (["propose", str(ws), "--community", "C1", "--out", str(ws / "p.geojson")], "is inside the workspace folder"),
        (["propose", str(gpkg), "--community", "C1", "--out", str(ws / "p.geojson")],
         f"is inside the output folder {ws} holding the workspace file"),
        (["propose", str(ws), "--community", "C1", "--out", str(gpkg)], "is inside the workspace folder"),
        (["propose", str(gpkg), "--community", "C1", "--out", str(gpkg)], "is the workspace file"),
        (["propose", str(ws), "--community", "C1", "--out", str(ws)], "is the workspace folder"),
        (["propose", str(ws), "--community", "C1", "--out", str(tmp_path / "q.geojson"), "--report", str(gpkg)],
         "--report"),
        (["check", str(ws), str(proposal), "--out", str(proposal)], "is the proposal"),
        (["check", str(ws), str(proposal), "--out", str(ws / "report.json")], "is inside the workspace folder"),
        (["compare", str(ws), "1", "1", "--out", str(gpkg)], "is inside the workspace folder"),
    ]
    for argv, says in cases:
        assert main(["redraw", *argv]) == 2, argv
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("gridcover: error: --") and says in line, (argv, line)
        assert "never writes" in line or "writes nothing" in line
    assert _files(ws) == before and proposal.read_bytes() == proposed
    assert not (tmp_path / "q.geojson").exists()


def test_two_outputs_of_one_command_cannot_be_the_same_file(ws, tmp_path, capsys):
    out = tmp_path / "p.geojson"
    assert main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(out), "--report", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"gridcover: error: --report {out} is the file of --out: give each "
                                               "output its own file")
    assert not out.exists()


def test_an_unwritable_out_is_refused_before_any_work(ws, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["redraw", "compare", str(ws), "1", "1", "--out", str(tmp_path / "notes.txt" / "d.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"gridcover: error: --out {tmp_path}/notes.txt/d.json: {tmp_path}/notes.txt "
                                               "is a file, not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    with unwritable_folder(locked):
        assert main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(locked / "p.geojson")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gridcover: error: --out {locked}/p.geojson: cannot write in the folder {locked} (")
    assert len(err.splitlines()) == 1 and list(locked.iterdir()) == []


def test_the_temporary_files_of_a_killed_write_are_removed_by_the_next_and_nothing_else(ws, tmp_path, capsys):
    from gridcover.io.paths import owner

    out, dead = tmp_path / "p.geojson", dead_owner()
    ours = [tmp_path / f".p.geojson.tmp-{dead}-0a1b2c3d.geojson", tmp_path / f".p.geojson.tmp-{dead}-9f8e7d6c"]
    foreign = [tmp_path / ".p.geojson.tmp-mine.geojson", tmp_path / f".p.geojson.tmp-{owner()}-0a1b2c3d.geojson",
               tmp_path / f".q.geojson.tmp-{dead}-0a1b2c3d.geojson", tmp_path / f"p.geojson.tmp-{dead}-0a1b2c3d"]
    for path in ours + foreign:
        path.write_text("half a file", encoding="utf-8")
    assert main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["features"]
    assert not any(p.exists() for p in ours) and all(p.read_text() == "half a file" for p in foreign)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # an ordinary file, not mkstemp's 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
def test_a_restore_overtaken_on_its_community_exits_3_and_restoring_the_current_version_exits_2(ws, tmp_path, capsys,
                                                                                                  monkeypatch):
    from gridcover.services.redraw import RedrawService
    from gridcover.store import open_workspace

    out = tmp_path / "p.geojson"
    main(["redraw", "propose", str(ws), "--community", "C1", "--out", str(out)])
    assert main(["redraw", "apply", str(ws), str(out), "--author", "a", "--reason", "b"]) == 0
    other = RedrawService(open_workspace(ws))  # another editor, committing while the restore computes its layers
    grids = other.context().grids_of({"C1"}).reset_index(drop=True)
    grids.loc[0, "worker_name"] = "甲"
    meanwhile(monkeypatch)(lambda: other.apply(grids, author="王芳", reason="同时"))
    capsys.readouterr()
    assert main(["redraw", "restore", str(ws), "1", "--author", "李四", "--reason", "回退"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("gridcover: conflict: version 3 by 王芳") and err.count("\n") == 1
    assert main(["redraw", "restore", str(ws), "3", "--author", "李四", "--reason", "回退"]) == 2
    assert "the grids of version 3 are the current ones: nothing to restore" in capsys.readouterr().err
    assert open_workspace(ws).version == 3


def test_propose_and_compare_take_a_community_name(ws, tmp_path, capsys):
    import geopandas as gpd

    communities = gpd.read_file(ws / "workspace.gpkg", layer="communities")
    first = communities.iloc[0]
    out = tmp_path / "p.geojson"
    assert main(["redraw", "propose", str(ws), "--community", str(first["name"]), "--out", str(out)]) == 0
    feats = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert {f["properties"]["community_id"] for f in feats} == {str(first["id"])}
    capsys.readouterr()
    assert main(["redraw", "compare", str(ws), "1", "1", "--community", str(first["name"])]) == 0
    assert json.loads(capsys.readouterr().out)["moved"]["households"] == 0


def test_an_ambiguous_or_unknown_community_name_is_refused_naming_the_candidates(ws, tmp_path, capsys):
    import geopandas as gpd

    communities = gpd.read_file(ws / "workspace.gpkg", layer="communities")
    out = str(tmp_path / "p.geojson")
    assert communities["name"].str.endswith("社区").all()
    assert main(["redraw", "propose", str(ws), "--community", "社区", "--out", out]) == 2  # every name holds it
    err = capsys.readouterr().err
    assert "is ambiguous" in err and all(f"{i} (" in err for i in communities["id"])
    assert main(["redraw", "propose", str(ws), "--community", "不存在社区", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "no community '不存在社区'" in err and str(communities["id"].iloc[0]) in err and "Traceback" not in err
