"""The workspace's grid history: versions with author, time and reason, as_of, atomic apply, conflicts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from api.redraw import redraw_context
from geo.redraw import grids_after, reassess
from gridcover.workspace import ConflictError, WorkspaceError, open_workspace
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from redraw_data import synthetic_workspace


@pytest.fixture
def ws(tmp_path, backend):
    return backend.open(synthetic_workspace(tmp_path))


def _commit(ws, community="C1", *, expected=None, fail_after=None, author="王芳", reason="test"):
    ctx = redraw_context(ws)
    grids = ctx.grids_of({community}).reset_index(drop=True)
    grids.loc[0, "worker_name"] = f"新网格员{ws.version}"
    whole = grids_after(ctx, grids)
    layers, summary = reassess(ctx, ws.read, whole, summary=ws.summary())
    return ws.commit_grids(whole, layers=layers, summary=summary, author=author, reason=reason,
                           communities=[community], expected_version=expected, fail_after=fail_after)


def test_the_analysed_grids_are_version_1(ws):
    (v,) = ws.history()
    assert v.version == 1 and v.kind == "analyze" and v.grids == 8 and set(v.communities) == {"C1", "C2"}


def test_a_commit_is_a_new_version_with_author_time_and_reason_and_the_old_one_stays(ws):
    tag = ws.tag
    v = _commit(ws, author="王芳", reason="新楼盘入住")
    assert (v.version, v.author, v.reason, v.parent) == (2, "王芳", "新楼盘入住", 1)
    assert ws.version == 2 and ws.tag != tag
    assert [h.version for h in ws.history()] == [1, 2]
    assert "新网格员1" in set(ws.read("grids")["worker_name"])
    assert "新网格员1" not in set(ws.grids_at(1)["worker_name"].fillna(""))
    assert len(ws.grids_at(1)) == 8


def test_as_of_picks_the_version_in_force(ws):
    _commit(ws)
    first, second = ws.history()
    assert ws.version_as_of(date.today() - timedelta(days=3650)) is None
    assert ws.version_as_of(date.today() + timedelta(days=1)).version == 2
    assert ws.version_as_of(datetime.fromisoformat(first.created)).version == 1
    with pytest.raises(WorkspaceError, match="no grids were recorded"):
        ws.grids_as_of(date(2000, 1, 1))


@pytest.mark.parametrize("step", ["copy", "layers", "history"])
def test_a_crash_in_the_middle_leaves_the_previous_version_intact(ws, step, backend):
    if backend.kind == "postgis":
        pytest.skip("the GeoPackage's copy beside the file; tests/test_postgis.py checks PostGIS's rollback")
    before = ws.read("grids")["worker_name"].tolist()
    with pytest.raises(RuntimeError, match="simulated crash"):
        _commit(ws, fail_after=step)
    again = open_workspace(ws.path)
    assert again.version == 1 and again.read("grids")["worker_name"].tolist() == before
    assert [p.name for p in ws.path.parent.iterdir() if p.name.startswith(".workspace.gpkg.")] == []  # no copy left


def test_two_editors_of_one_community_one_wins_the_other_gets_a_conflict(ws):
    _commit(ws, "C1", expected=1)
    with pytest.raises(ConflictError, match="version 2 by 王芳"):
        _commit(ws, "C1", expected=1)
    assert _commit(ws, "C2", expected=1).version == 3  # another community: no conflict


def test_a_commit_needs_an_author_and_a_reason(ws):
    with pytest.raises(WorkspaceError, match="author and a reason"):
        _commit(ws, author=" ")


def test_a_commit_removes_the_copies_killed_commits_left_and_keeps_the_file_readable(tmp_path):
    from leftovers import dead_owner

    folder = synthetic_workspace(tmp_path)
    gpkg = folder / "workspace.gpkg"
    gpkg.chmod(0o644)  # a server running as another user reads it
    dead = dead_owner()
    ours = folder / f".workspace.gpkg.tmp-{dead}-0a1b2c3d"
    ours.write_bytes(gpkg.read_bytes())  # a whole copy of the workspace, left by a killed apply
    foreign = [folder / ".workspace.gpkg.backup", folder / f".workspace.gpkg.tmp-{dead}", folder / "workspace.gpkg.old"]
    for path in foreign:
        path.write_bytes(b"the user's")
    _commit(open_workspace(folder))
    assert not ours.exists() and all(p.read_bytes() == b"the user's" for p in foreign)
    assert oct(gpkg.stat().st_mode & 0o777) == oct(0o644)
    assert open_workspace(folder).version == 2
