"""The case store on both backends: a batch all or nothing, an idempotent resend, accept/close under a lock,
filters; and no case lost to a restart or to a new analysis replacing the workspace while intakes go on."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gridcover.store import open_workspace
from gridcover.store.base import CaseConflictError, CaseError, CaseFilter, CaseNotFoundError, case_fingerprints
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: each test runs on GeoPackage and PostGIS
from conftest import tiny_layers, write_layers

T0 = pd.Timestamp("2026-11-30T01:00:00Z")


def cases(ids, *, urgency="general", grid="G1", street="S1", at=T0) -> pd.DataFrame:
    n = len(ids)
    frame = pd.DataFrame({"id": list(ids), "reported_at": [at] * n, "urgency": [urgency] * n, "lon": 104.0,
                          "lat": 30.5, "grid_id": grid, "community_id": "C1", "street_id": street, "covered": True,
                          "response_due": at + pd.Timedelta(hours=2), "closure_due": at + pd.Timedelta(days=5),
                          "received_at": at, "received_by": "hotline"})
    frame["fingerprint"] = case_fingerprints(frame)
    return frame


def analysed(folder: Path, data: Path) -> Path:
    from gridcover.engines.single import analyze_single

    analyze_single(data, folder)
    return folder


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    data = write_layers(tiny_layers(), tmp_path_factory.mktemp("tiny") / "data")
    return data, analysed(tmp_path_factory.mktemp("tinyout") / "out", data)


@pytest.fixture
def ws(backend, tiny_out, tmp_path):
    import shutil

    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    return backend.open(folder)


def test_a_batch_is_stored_whole_and_a_resend_is_not_stored_twice(ws):
    store = ws.cases()
    assert store.count() == 0 and len(store.list()) == 0
    done = store.add(cases(["A", "B"]))
    assert done.stored == ("A", "B") and done.duplicates == ()
    again = store.add(cases(["B", "C"]))
    assert again.stored == ("C",) and again.duplicates == ("B",) and store.count() == 3
    assert store.get("B")["reported_at"] == "2026-11-30T01:00:00Z"


def test_an_id_stored_with_other_content_refuses_the_whole_batch(ws):
    store = ws.cases()
    store.add(cases(["A"]))
    with pytest.raises(CaseConflictError, match="A") as err:
        store.add(pd.concat([cases(["N1", "N2"]), cases(["A"], urgency="urgent")], ignore_index=True))
    assert err.value.problem == "case_id_conflict"
    assert store.count() == 1 and store.count(CaseFilter(ids=frozenset(["N1"]))) == 0


def test_accept_then_close_and_the_rules_of_times(ws):
    store = ws.cases()
    store.add(cases(["A", "B"]))
    with pytest.raises(CaseError, match="before it was reported"):
        store.accept("A", at=T0 - pd.Timedelta(minutes=1), author="李娜")
    rec = store.accept("A", at=T0 + pd.Timedelta(minutes=10), author="李娜")
    assert (rec["accepted_at"], rec["accepted_by"]) == ("2026-11-30T01:10:00Z", "李娜")
    with pytest.raises(CaseConflictError, match="accepted at .* by 李娜"):
        store.accept("A", at=T0 + pd.Timedelta(minutes=20), author="王芳")
    with pytest.raises(CaseError, match="before its acceptance"):
        store.close("A", at=T0 + pd.Timedelta(minutes=5), author="王芳")
    assert store.close("A", at=T0 + pd.Timedelta(hours=3), author="王芳")["closed_by"] == "王芳"
    shut = store.close("B", at=T0 + pd.Timedelta(hours=1), author="王芳")  # nobody accepted it: the close answers
    assert shut["accepted_at"] == shut["closed_at"] == "2026-11-30T02:00:00Z"
    with pytest.raises(CaseNotFoundError):
        store.accept("nope", at=T0, author="x")


def test_filters_status_overdue_place_scope_and_paging(ws):
    store = ws.cases()
    store.add(pd.concat([cases(["A", "B"], grid="G1"), cases(["C"], grid="G2", street="S2"),
                         cases(["D"], urgency="urgent", at=T0 + pd.Timedelta(hours=5))], ignore_index=True))
    store.accept("A", at=T0 + pd.Timedelta(minutes=30), author="x")
    store.close("B", at=T0 + pd.Timedelta(minutes=30), author="x")
    assert store.count(CaseFilter(status=frozenset({"open"}))) == 2
    assert store.count(CaseFilter(status=frozenset({"accepted", "closed"}))) == 2
    late = T0 + pd.Timedelta(hours=3)  # C and D open: C past its response deadline, D not yet due
    assert list(store.list(CaseFilter(overdue_at=late))["id"]) == ["C"]
    assert store.count(CaseFilter(overdue_at=T0 + pd.Timedelta(days=6))) == 3  # A open too, past closure
    assert list(store.list(CaseFilter(grids=frozenset({"G2"})))["id"]) == ["C"]
    assert store.count(CaseFilter(streets=frozenset({"S1"}), communities=frozenset({"C1"}))) == 3
    scope = CaseFilter(scope=True, scope_grids=frozenset({"G2"}), scope_received_by="nobody")
    assert list(store.list(scope)["id"]) == ["C"]
    assert store.count(CaseFilter(scope=True)) == 0
    assert list(store.list(limit=2, offset=1)["id"]) == ["B", "C"]


def test_the_cases_survive_reopening_the_workspace(ws, backend):
    ws.cases().add(cases(["A"]))
    assert backend.again(ws).cases().get("A")["grid_id"] == "G1"


def test_a_new_analysis_keeps_the_stored_cases(backend, tiny_out, tmp_path):
    import shutil

    data, _ = tiny_out
    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    ws = backend.open(folder)
    ws.cases().add(cases(["A", "B"]))
    analysed(folder, data)
    if backend.kind == "postgis":
        from gridcover.store.postgis import load_gpkg

        load_gpkg(folder / "workspace.gpkg", backend.dsn, schema=ws.schema)
    assert sorted(backend.again(ws).cases().list()["id"]) == ["A", "B"]


def _intakes(folder: str, prefix: str, stop, stored) -> None:
    """Store one case at a time into the GeoPackage workspace's store until ``stop`` is set."""
    store = open_workspace(folder).cases()
    i = 0
    while not stop.is_set():
        cid = f"{prefix}{i:05d}"
        store.add(cases([cid]))
        stored.append(cid)
        i += 1


def test_no_intake_is_lost_while_an_analysis_replaces_the_folder(tiny_out, tmp_path):
    import shutil

    data, _ = tiny_out
    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        stop, stored = manager.Event(), manager.list()
        worker = ctx.Process(target=_intakes, args=(str(folder), "P", stop, stored))
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while len(stored) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            for _ in range(2):  # two analyses replace the folder while the other process stores cases
                analysed(folder, data)
            time.sleep(0.2)
        finally:
            stop.set()
            worker.join(30)
        sent = list(stored)
    assert worker.exitcode == 0 and len(sent) > 20
    kept = set(open_workspace(folder).cases().list()["id"])
    assert kept == set(sent), f"lost {len(set(sent) - kept)} of {len(sent)} cases"


def test_no_intake_is_lost_while_analyze_db_reloads_the_schema(backend, tiny_out, tmp_path):
    if backend.kind != "postgis":
        pytest.skip("the GeoPackage folder is covered by the test above")
    import shutil

    from gridcover.store.postgis import load_gpkg

    data, _ = tiny_out
    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    ws = backend.open(folder)
    stop, sent = threading.Event(), []

    def intakes():
        store = backend.again(ws).cases()
        i = 0
        while not stop.is_set():
            store.add(cases([f"Q{i:05d}"]))
            sent.append(f"Q{i:05d}")
            i += 1

    thread = threading.Thread(target=intakes)
    thread.start()
    try:
        for _ in range(2):
            load_gpkg(folder / "workspace.gpkg", backend.dsn, schema=ws.schema)
    finally:
        stop.set()
        thread.join(30)
    assert len(sent) > 5 and set(ws.cases().list()["id"]) == set(sent)


def test_the_next_analysis_counts_the_stored_cases_and_a_stored_case_wins_over_the_folders(tiny_out, tmp_path):
    import shutil

    from gridcover.cli.analyze import _stored_cases
    from gridcover.engines.single import analyze_single

    data, _ = tiny_out
    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    grids = open_workspace(folder).read("grids")
    inside = grids.geometry.iloc[0].representative_point()
    stored = cases(["S1", "S2"], urgency="urgent")
    stored["lon"], stored["lat"] = inside.x, inside.y
    open_workspace(folder).cases().add(stored)
    given = tmp_path / "data"
    shutil.copytree(data, given)
    (given / "cases.csv").write_text("id,reported_at,urgency,lon,lat\n"
                                     f"S2,2026-11-30 09:00,general,{inside.x},{inside.y}\n"
                                     f"F1,2026-11-30 09:00,general,{inside.x},{inside.y}\n", encoding="utf-8")
    found = _stored_cases(folder, db=None, schema="gridcover")
    analysis, _ = analyze_single(given, folder, stored_cases=found)
    judged = analysis.cases.set_index("id")
    assert sorted(judged.index) == ["F1", "S1", "S2"] and judged.loc["S2", "urgency"] == "urgent"
    assert any("stored one is analysed" in w for w in analysis.data.warnings)
    assert sorted(open_workspace(folder).cases().list()["id"]) == ["S1", "S2"]  # and still stored


def _swap(folder: Path) -> Path:
    """Replace ``folder`` as an analysis does (gridcover/io/outputs.py): under the case lock, the store carried
    into a new folder by SQLite's backup, then the folders swapped. Returns where the old folder went."""
    import shutil
    import uuid

    from gridcover.io.outputs import CASES_FILE, carry_cases, cases_lock

    tag = uuid.uuid4().hex[:8]
    new, old = folder.parent / f"{folder.name}.new-{tag}", folder.parent / f"{folder.name}.old-{tag}"
    shutil.copytree(folder, new, ignore=shutil.ignore_patterns(f"{CASES_FILE}*"))
    with cases_lock(folder):
        carry_cases(folder, new)
        folder.rename(old)
        new.rename(folder)
    return old


def _ids_seen_by_another_process(folder: Path) -> set[str]:
    import subprocess
    import sys

    code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "print(' '.join(r[0] for r in db.execute('SELECT id FROM cases ORDER BY id')))")
    out = subprocess.run([sys.executable, "-c", code, str(folder / "cases.sqlite")], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_a_kept_connection_let_go_after_the_folder_was_replaced_leaves_the_new_folders_log_alone(tiny_out, tmp_path):
    import shutil
    import sqlite3

    from gridcover.store.cases import SQLiteCaseStore

    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    server = SQLiteCaseStore(folder)  # a server's store: its connection kept between intakes
    server.add_one(cases(["A"]).iloc[0].to_dict())
    _swap(folder)
    other = SQLiteCaseStore(folder)  # another worker process, already on the new folder: B only in its log
    other.add_one(cases(["B"]).iloc[0].to_dict())
    assert (folder / "cases.sqlite-wal").stat().st_size > 0
    server.add_one(cases(["C"]).iloc[0].to_dict())  # notices the new file: closes the old connection, opens anew
    assert server._kept[1][1] == (folder / "cases.sqlite").stat().st_ino
    server.release()
    assert _ids_seen_by_another_process(folder) == {"A", "B", "C"}
    assert sorted(other.list()["id"]) == ["A", "B", "C"]

    # what the kept connection relies on: a connection closed after its file was moved away (the last one on
    # that file) neither checkpoints nor deletes the write-ahead log by its name, now the new folder's
    other.release()
    raw = sqlite3.connect(folder / "cases.sqlite", isolation_level=None)
    raw.execute("SELECT count(*) FROM cases").fetchone()
    old = _swap(folder)
    third = SQLiteCaseStore(folder)
    third.add_one(cases(["D"]).iloc[0].to_dict())
    raw.close()
    assert (folder / "cases.sqlite-wal").exists() and (old / "cases.sqlite-wal").exists()
    assert _ids_seen_by_another_process(folder) == {"A", "B", "C", "D"}


def _kept_intakes(folder: str, prefix: str, stop, stored) -> None:
    """A server process: one kept store, one case at a time (add_one, as the single intake), until ``stop``."""
    store = open_workspace(folder).cases()
    i = 0
    while not stop.is_set():
        cid = f"{prefix}{i:05d}"
        store.add_one(cases([cid]).iloc[0].to_dict())
        stored.append(cid)
        i += 1


def test_several_processes_with_kept_connections_lose_no_case_while_analyses_replace_the_folder(tiny_out, tmp_path):
    import shutil

    data, _ = tiny_out
    folder = tmp_path / "ws"
    shutil.copytree(tiny_out[1], folder)
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        stop, stored = manager.Event(), manager.list()
        workers = [ctx.Process(target=_kept_intakes, args=(str(folder), p, stop, stored)) for p in ("P", "Q", "R")]
        for w in workers:
            w.start()
        try:
            deadline = time.monotonic() + 30
            while len(stored) < 15 and time.monotonic() < deadline:
                time.sleep(0.02)
            analysed(folder, data)  # a real analysis, then two swaps as quick as the lock allows
            _swap(folder)
            _swap(folder.parent / "ws")
            time.sleep(0.3)
        finally:
            stop.set()
            for w in workers:
                w.join(30)
        sent = list(stored)
    assert all(w.exitcode == 0 for w in workers) and len(sent) > 30
    assert {c[0] for c in sent} == {"P", "Q", "R"}
    kept = _ids_seen_by_another_process(folder)
    assert kept == set(sent), f"lost {len(set(sent) - kept)} of {len(sent)} cases"


def test_one_case_is_stored_as_a_batch_of_it_is(ws):
    store = ws.cases()
    batch = cases(["A", "B"], urgency="urgent")
    batch.loc[1, ["grid_id", "covered", "distance_m", "category"]] = [None, False, 12.5, "噪音扰民"]
    batch["fingerprint"] = case_fingerprints(batch)
    store.add(batch.iloc[[0]].reset_index(drop=True))
    one = batch.iloc[1].to_dict()
    one["distance_m"] = float(one["distance_m"])
    assert store.add_one(one).stored == ("B",)
    assert store.add_one(batch.iloc[0].to_dict()).duplicates == ("A",)  # the same case resent
    with pytest.raises(CaseConflictError):
        store.add_one(dict(batch.iloc[0].to_dict(), urgency="general", fingerprint="0"))
    other = cases(["C"], urgency="urgent")  # the same case as B by the batch path, under another id
    other.loc[0, ["grid_id", "covered", "distance_m", "category"]] = [None, False, 12.5, "噪音扰民"]
    store.add(other)
    stored = store.list().set_index("id").drop(columns=["fingerprint"])
    assert stored.index.tolist() == ["A", "B", "C"] and ws.cases().count() == 3
    pd.testing.assert_series_equal(stored.loc["B"], stored.loc["C"], check_names=False)
