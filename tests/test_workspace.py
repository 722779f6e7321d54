"""The workspace's grid history: versions with author, time and reason, as_of, atomic apply, conflicts, and no
lost update when editors (processes) apply at the same time."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from datetime import date, datetime, timedelta

import pytest

from geo.errors import InputError
from geo.redraw import grids_after, reassess
from gridcover.services.redraw import RedrawService
from gridcover.store import ConflictError, WorkspaceError, open_workspace
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from redraw_data import meanwhile, synthetic_workspace


@pytest.fixture
def ws(tmp_path, backend):
    return backend.open(synthetic_workspace(tmp_path))


def _commit(ws, community="C1", *, expected=None, fail_after=None, author="王芳", reason="test"):
    ctx = RedrawService(ws).context()
    grids = ctx.grids_of({community}).reset_index(drop=True)
    grids.loc[0, "worker_name"] = f"新网格员{ws.version}"
    whole = grids_after(ctx, grids)
    layers, summary = reassess(ctx, ws.read("households"), whole, summary=ws.summary())
    return ws.commit_grids(lambda current: (whole, layers, summary), author=author, reason=reason,
                           communities=[community], expected_version=expected, fail_after=fail_after)


def test_both_backends_are_the_one_workspace_contract_with_its_proposals_and_blind_spot_log(ws):
    from gridcover.store import ProposalStore, Workspace

    assert isinstance(ws, Workspace) and isinstance(ws.proposals(), ProposalStore)
    assert ws.has("grids") and not ws.has("nope") and ws.tag.endswith("-1") and ws.version == 1
    assert isinstance(ws.stamp, str) and ws.stamp and ws.location
    assert ws.proposals().list() == []
    log = ws.blind_spots()
    assert log is ws.blind_spots() and log.total() == 0
    with pytest.raises(WorkspaceError, match="no layer 'nope'"):
        ws.read("nope")
    with pytest.raises(WorkspaceError, match=r"no grid version 7 \(known: 1\)"):
        ws.grid_version(7)


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
# ------------------------------------------------------------------ no lost update
def _proposal(ws, community, worker):
    """The current grids of ``community`` with ``worker`` in charge of its first grid (a valid proposal)."""
    grids = ws.grids_at(ws.version)
    grids = grids[grids["community_id"].astype(str) == community].reset_index(drop=True)
    grids.loc[0, "worker_name"] = worker
    return grids.to_crs(RedrawService(ws).context().metric_crs)


def _workers(ws, version=None):
    grids = ws.grids_at(ws.version if version is None else version)
    return dict(zip(grids["id"], grids["worker_name"]))


@pytest.fixture
def later(monkeypatch):
    return meanwhile(monkeypatch)


def _another(ws, backend):
    """The same workspace opened again, as another process has it."""
    return backend.again(ws)


def test_an_apply_keeps_a_change_of_another_community_committed_while_it_was_computed(ws, backend, later):
    other = RedrawService(_another(ws, backend))
    c1, c2 = _proposal(ws, "C1", "甲"), _proposal(ws, "C2", "乙")
    first = {}
    later(lambda: first.update(other.apply(c1, author="王芳", reason="一社区", expected_version=1)[0]))
    second, _ = RedrawService(ws).apply(c2, author="李娜", reason="二社区", expected_version=1)
    assert (first["version"], second["version"], second["parent"]) == (2, 3, 2)
    workers = _workers(ws)
    assert workers[c1["id"][0]] == "甲" and workers[c2["id"][0]] == "乙"  # both changes are in the grids
    for layer in ("grids", "input_grids"):
        assert dict(zip(ws.read(layer)["id"], ws.read(layer)["worker_name"])) == workers, layer
    assert [(v.version, v.author, v.reason, v.communities, v.parent) for v in ws.history()] == [
        (1, "gridcover analyze", "grids as analysed", ("C1", "C2"), None),
        (2, "王芳", "一社区", ("C1",), 1), (3, "李娜", "二社区", ("C2",), 2)]


def test_an_apply_is_refused_when_its_community_was_changed_while_it_was_computed(ws, backend, later):
    other = _another(ws, backend)
    c1 = _proposal(other, "C1", "甲")
    later(lambda: RedrawService(other).apply(c1, author="王芳", reason="先", expected_version=1))
    with pytest.raises(ConflictError, match=r"conflict: version 2 by 王芳 .*\(先\) changed C1 after version 1"):
        RedrawService(ws).apply(_proposal(ws, "C1", "乙"), author="李娜", reason="后", expected_version=1)
    assert ws.version == 2 and "乙" not in set(ws.read("grids")["worker_name"])


def test_a_restore_undoes_only_the_communities_changed_since_and_keeps_a_change_made_meanwhile(ws, backend, later):
    redraw = RedrawService(ws)
    redraw.apply(_proposal(ws, "C1", "甲"), author="王芳", reason="换人")
    other = _another(ws, backend)
    elsewhere = RedrawService(other)
    c2 = _proposal(ws, "C2", "乙")
    later(lambda: elsewhere.apply(c2, author="李娜", reason="二社区"))
    v = redraw.restore(1, author="区网格中心", reason="回退一社区")
    assert (v["version"], v["parent"], v["communities"], v["kind"]) == (4, 3, ["C1"], "restore")
    expected = _workers(ws, 1) | {c2["id"][0]: "乙"}  # C1 as in version 1, C2's change of version 3 kept
    assert _workers(ws) == expected and dict(zip(ws.read("grids")["id"], ws.read("grids")["worker_name"])) == expected
    # restoring while the same community changes again is a conflict, and there is nothing left to restore
    later(lambda: elsewhere.apply(_proposal(other, "C1", "丙"), author="王芳", reason="又换"))
    with pytest.raises(ConflictError, match="version 5 by 王芳"):
        redraw.restore(3, author="区网格中心", reason="回退")
    assert ws.version == 5
    with pytest.raises(InputError, match="nothing to restore"):
        redraw.restore(5, author="区网格中心", reason="回退")


# ------------------------------------------------------------------ several processes applying at once
#: Children forked from a server that has imported gridcover once: separate processes, each opening the
#: workspace itself as ``gridcover redraw apply`` does, started within milliseconds of each other.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(["gridcover.cli", "gridcover.services.redraw", "gridcover.store.postgis"])


def _gridcover(argv: list[str], log: str, start) -> None:
    """``gridcover ARGV`` in this process, its stdout and stderr into ``log``.out/.err, its status the exit code."""
    from gridcover.cli import main

    with open(log + ".out", "w", encoding="utf-8") as out, open(log + ".err", "w", encoding="utf-8") as err:
        sys.stdout, sys.stderr = out, err
        start.wait(60)
        code = main(argv)
        out.flush(), err.flush()
    sys.exit(code)


def _race(ws, backend, tmp_path, plan: tuple[str, ...], r: int) -> list[dict]:
    """Round ``r``: one ``gridcover redraw apply`` process per community of ``plan``, all started at once, each
    applying the round's first grids with a worker of its own in the community's first grid and
    ``--expected-version`` the round's first version. Checks the round; returns the accepted changes."""
    where = backend.cli_args(ws)
    base = ws.version
    before = _workers(ws)
    start, runs = _PROCESSES.Barrier(len(plan)), []
    for i, community in enumerate(plan):
        grids = ws.grids_at(base)
        grids = grids[grids["community_id"] == community].reset_index(drop=True)
        worker = f"{community}-{r}-{i}"
        grids.loc[0, "worker_name"] = worker
        path = tmp_path / f"r{r}-p{i}.geojson"
        path.write_text(grids.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")
        argv = ["redraw", "apply", *where, str(path), "--author", f"editor{i}", "--reason", f"round {r}",
                "--expected-version", str(base)]
        log = str(tmp_path / f"r{r}-p{i}")
        runs.append({"community": community, "grid": grids["id"][0], "worker": worker, "log": log,
                     "process": _PROCESSES.Process(target=_gridcover, args=(argv, log, start))})
    for run in runs:
        run["process"].start()
    for run in runs:
        run["process"].join(120)
        run["code"] = run["process"].exitcode
        run["err"] = open(run["log"] + ".err", encoding="utf-8").read()
        run["out"] = open(run["log"] + ".out", encoding="utf-8").read()
    assert {run["code"] for run in runs} <= {0, 3}, [run["err"] for run in runs]
    won = [run for run in runs if run["code"] == 0]
    # one change per community is accepted (the first to reach the lock), every other one is a conflict
    assert sorted(run["community"] for run in won) == sorted(set(plan)), [run["err"] for run in runs]
    for run in won:
        run["version"] = json.loads(run["out"])
    versions = sorted(run["version"]["version"] for run in won)
    assert versions == list(range(base + 1, base + 1 + len(won)))
    by = {run["community"]: run["version"] for run in won}
    for run in runs:
        if run["code"] == 3:  # one line naming the change that came first, nothing written
            first = by[run["community"]]
            assert run["err"].startswith(f"gridcover: conflict: version {first['version']} by {first['author']} at "
                                         f"{first['created']} (round {r}) changed {run['community']} after version "
                                         f"{base} that this change was checked against")
            assert run["err"].count("\n") == 1 and run["out"] == ""
    deadline = time.monotonic() + 5  # PostGIS: the commits reach this process by NOTIFY
    while ws.version != base + len(won) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ws.version == base + len(won)
    # the grids are the round's first ones with exactly the accepted changes, in every layer written
    expected = before | {run["grid"]: run["worker"] for run in won}
    assert _workers(ws) == expected
    for layer in ("grids", "input_grids"):
        frame = ws.read(layer)
        assert dict(zip(frame["id"], frame["worker_name"])) == expected, layer
    won.sort(key=lambda run: run["version"]["version"])
    for n, run in enumerate(won):  # each version holds its own change and those accepted before it
        assert _workers(ws, run["version"]["version"]) == before | {w["grid"]: w["worker"] for w in won[:n + 1]}
    return [run["version"] for run in won]


#: The processes of each round, one per community named: two on two communities (both accepted), two on one
#: (one accepted, one conflict), three (one accepted per community, one conflict); cycled over the rounds.
PLANS = (("C1", "C2"), ("C1", "C1"), ("C2", "C1", "C2"))
ROUNDS = 10


def test_processes_applying_at_once_lose_no_change_and_the_history_records_every_accepted_one(backend, tmp_path):
    ws = backend.open(synthetic_workspace(tmp_path, households=600, buildings=60))  # small: the race is the point
    accepted = []
    for r in range(ROUNDS):
        accepted += _race(ws, backend, tmp_path, PLANS[r % len(PLANS)], r)
    history = ws.history()
    assert [v.version for v in history] == list(range(1, len(accepted) + 2))
    keys = ("version", "author", "reason", "kind", "communities", "parent")
    assert [{k: v.as_dict()[k] for k in keys} for v in history[1:]] == [{k: a[k] for k in keys} for a in accepted]
    assert all(v.parent == v.version - 1 for v in history[1:])


def test_the_visit_records_a_table_without_geometry_are_kept_in_the_workspace(tmp_path, backend):
    from conftest import tiny_layers, tiny_visits, write_layers
    from gridcover.engines.single import analyze_single

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    tiny_visits().to_csv(folder / "visits.csv", index=False)
    analyze_single(folder, tmp_path / "out", reference_date=date(2026, 11, 30))
    ws = backend.open(tmp_path / "out")
    visits = ws.read("visits")
    assert ws.has("visits") and visits.crs.to_epsg() == 4326 and visits.geometry.isna().all()
    assert visits["household_id"].tolist() == ["H2", "H2", "H2", "H7", "H7", "H3"]
    assert visits["visited_at"].tolist()[2] == "2026-11-24 16:30"
    assert visits["kind"].tolist()[3:5] == ["phone", "phone"] and visits["note"].tolist()[1] == "门口有积水"
