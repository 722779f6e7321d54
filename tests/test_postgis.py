"""The PostGIS workspace: migrations, typed and indexed tables, several processes, concurrent editors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from backends import STATE_DIR, drop_schema, new_schema, postgis_dsn  # noqa: F401 - fixture
from geo.redraw import grids_after, reassess
from gridcover.services.redraw import RedrawService
from gridcover.store import ConflictError, WorkspaceError, open_workspace, postgis
from gridcover.store.postgis import PostGISWorkspace, load_gpkg, migrate, migrations
from layers.features import version_key
from redraw_data import synthetic_workspace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def schema(postgis_dsn):
    name = new_schema()
    yield name
    drop_schema(postgis_dsn, name)


@pytest.fixture
def folder(tmp_path):
    return synthetic_workspace(tmp_path)


@pytest.fixture
def ws(postgis_dsn, schema, folder):
    load_gpkg(folder / "workspace.gpkg", postgis_dsn, schema=schema)
    out = PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    yield out
    out.close()


def _edit(ws, community="C1", *, worker=None):
    """A change of one community's grids (a new worker in its first grid) and the layers recomputed for it."""
    ctx = RedrawService(ws).context()
    grids = ctx.grids_of({community}).reset_index(drop=True)
    grids.loc[0, "worker_name"] = worker or f"新网格员{ws.version}"
    whole = grids_after(ctx, grids)
    layers, summary = reassess(ctx, ws.read("households"), whole, summary=ws.summary())
    return whole, layers, summary


def _commit(ws, community="C1", *, expected=None, worker=None, fail_after=None):
    whole, layers, summary = _edit(ws, community, worker=worker)
    return ws.commit_grids(lambda current: (whole, layers, summary), author="王芳", reason="test",
                           communities=[community], expected_version=expected, fail_after=fail_after)


def _sql(dsn, query, *params):
    with psycopg.connect(dsn) as db:
        return db.execute(query, params).fetchall()


# ------------------------------------------------------------------ schema
def test_migrations_are_versioned_files_applied_once(postgis_dsn, schema):
    files = migrations()
    assert [v for v, _, _ in files] == list(range(1, len(files) + 1))
    with psycopg.connect(postgis_dsn) as db:
        assert migrate(db, schema) == [v for v, _, _ in files]
        assert migrate(db, schema) == []
    rows = _sql(postgis_dsn, f'SELECT version, name FROM "{schema}".gridcover_migrations ORDER BY version')
    assert rows == [(v, name) for v, name, _ in files]


def test_a_schema_migrated_by_a_newer_gridcover_is_refused(postgis_dsn, schema):
    with psycopg.connect(postgis_dsn) as db:
        migrate(db, schema)
        db.execute(f'INSERT INTO "{schema}".gridcover_migrations (version, name) VALUES (9999, %s)', ("future",))
        with pytest.raises(WorkspaceError, match="newer gridcover"):
            migrate(db, schema)


def test_layers_are_tables_named_as_the_layers_with_typed_columns_keys_and_gist_indexes(ws, postgis_dsn, schema):
    tables = {r[0] for r in _sql(postgis_dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                 schema)}
    assert set(ws.layer_names()) | {"gridcover_meta", "gridcover_grid_versions", "grid_history"} <= tables
    assert {"households", "grids", "input_grids", "buildings", "coverage_issues"} <= set(ws.layer_names())
    types = dict(((t, c), d) for t, c, d in _sql(
        postgis_dsn, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                     "WHERE table_schema = %s", schema))
    assert types["households", "persons"] == "bigint"
    assert types["households", "elderly_alone"] == "boolean"
    assert types["households", "grid_id"] == "text"
    assert types["grids", "load_ratio"] == "double precision"
    geometry = dict(((t, c), (g, s)) for t, c, g, s in _sql(
        postgis_dsn, "SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns "
                     "WHERE f_table_schema = %s", schema))
    assert geometry["households", "geom"] == ("POINT", 4326)
    assert geometry["grid_history", "geom"][1] == 4326
    keys = {r[0] for r in _sql(postgis_dsn, "SELECT conrelid::regclass::text FROM pg_constraint "
                                            "WHERE contype = 'p' AND connamespace = %s::regnamespace", schema)}
    gist = {r[0] for r in _sql(postgis_dsn, "SELECT tablename FROM pg_indexes WHERE schemaname = %s "
                                            "AND indexdef LIKE '%%USING gist (geom)%%'", schema)}
    for table in [*ws.layer_names(), "grid_history"]:
        assert f"{schema}.{table}" in keys, table
        assert table in gist, table
    unique_ids = {r[0] for r in _sql(postgis_dsn, "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'u' "
                                                  "AND connamespace = %s::regnamespace", schema)}
    assert f"{schema}.households" in unique_ids and f"{schema}.grids" in unique_ids


def test_every_layer_reads_back_as_the_geopackage_gives_it(ws, folder):
    gpkg = open_workspace(folder)
    assert ws.tag == gpkg.tag and ws.version == gpkg.version == 1 and ws.summary() == gpkg.summary()
    assert ws.layer_names() == gpkg.layer_names()
    for name in gpkg.layer_names():
        a, b = ws.read(name), gpkg.read(name)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
        assert a.crs.to_epsg() == 4326
        assert bool((a.geometry.geom_equals_exact(b.geometry, 0) | (a.geometry.isna() & b.geometry.isna())).all()), name
    assert [v.as_dict() for v in ws.history()] == [v.as_dict() for v in gpkg.history()]


def test_a_missing_workspace_or_database_is_one_clear_message(postgis_dsn, schema):
    with pytest.raises(WorkspaceError, match=f"no gridcover workspace in .*schema {schema}.*gridcover analyze"):
        PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    with pytest.raises(WorkspaceError, match="cannot connect to postgresql://postgres@127.0.0.1:1/x"):
        PostGISWorkspace("postgresql://postgres@127.0.0.1:1/x")


def test_an_interrupted_load_leaves_the_previous_content(ws, postgis_dsn, schema, folder, monkeypatch):
    tag, grids = ws.tag, ws.read("grids")
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    real = postgis.write_layer
    monkeypatch.setattr(postgis, "write_layer", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        load_gpkg(folder / "workspace.gpkg", postgis_dsn, schema=schema)
    again = PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    assert again.tag == tag and again.layer_names() == ws.layer_names()
    pd.testing.assert_frame_equal(again.read("grids"), grids)
    again.close()


# ------------------------------------------------------------------ grid history
def test_a_commit_is_a_new_version_in_one_transaction(ws, postgis_dsn, schema):
    tag = ws.tag
    v = _commit(ws, worker="赵敏")
    assert (v.version, v.author, v.reason, v.parent, v.communities) == (2, "王芳", "test", 1, ("C1",))
    assert ws.version == 2 and ws.tag != tag
    assert "赵敏" in set(ws.read("grids")["worker_name"]) and "赵敏" not in set(ws.grids_at(1)["worker_name"].fillna(""))
    assert [h.version for h in ws.history()] == [1, 2]
    rows = _sql(postgis_dsn, f'SELECT version, count(*) FROM "{schema}".grid_history GROUP BY version ORDER BY version')
    assert rows == [(1, 8), (2, 8)]


@pytest.mark.parametrize("step", ["copy", "layers", "history"])
def test_a_crash_in_the_middle_of_a_commit_rolls_back_whole(ws, step):
    before = ws.read("grids")["worker_name"].tolist()
    with pytest.raises(RuntimeError, match="simulated crash"):
        _commit(ws, fail_after=step)
    assert ws.version == 1 and [v.version for v in ws.history()] == [1]
    assert ws.read("grids")["worker_name"].tolist() == before


def test_two_editors_of_one_community_at_the_same_time_one_wins_the_other_gets_a_conflict(ws, postgis_dsn, schema):
    a, b = ws, PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    prepared = {"a": _edit(a, worker="甲"), "b": _edit(b, worker="乙")}  # both checked against version 1
    start, results = threading.Barrier(2), {}

    def apply(name, workspace):
        whole, layers, summary = prepared[name]
        start.wait()
        try:
            results[name] = workspace.commit_grids(lambda current: (whole, layers, summary), author=name,
                                                   reason="同时", communities=["C1"], expected_version=1)
        except ConflictError as exc:
            results[name] = exc

    threads = [threading.Thread(target=apply, args=(n, w)) for n, w in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    conflicts = [n for n, r in results.items() if isinstance(r, ConflictError)]
    (winner,) = [n for n, r in results.items() if not isinstance(r, Exception)]
    assert len(conflicts) == 1, results
    assert f"version 2 by {winner}" in str(results[conflicts[0]]) and "check it again on version 2" in str(results[conflicts[0]])
    # no lost update, no mixed version: everyone sees the winner's grids, households and history, version 2
    for w in (a, b):
        assert w.version == 2 and [v.version for v in w.history()] == [1, 2]
        workers = set(w.read("grids")["worker_name"])
        assert {"甲", "乙"} & workers == {"甲" if winner == "a" else "乙"}
        assert set(w.read("input_grids")["worker_name"]) == workers - {None}
    assert _commit(b, "C2", expected=1).version == 3  # another community: no conflict
    b.close()


def test_a_reader_during_a_commit_sees_the_old_version_or_the_new_one_never_a_mix(ws, postgis_dsn, schema):
    households, old = len(ws.read("households")), set(ws.read("grids")["worker_name"].dropna())
    reader = PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    whole, layers, summary = _edit(ws, worker="吴刚")
    done, seen = threading.Event(), []

    def read():
        while not done.is_set() or len(seen) < 3:  # a few reads however slow the machine
            reader._cache.clear()  # read from the database every time, as a process would after each change
            seen.append((len(reader.read("households")), frozenset(reader.read("grids")["worker_name"].dropna())))

    thread = threading.Thread(target=read)
    thread.start()
    ws.commit_grids(lambda current: (whole, layers, summary), author="a", reason="b", communities=["C1"])
    time.sleep(0.5)
    done.set()
    thread.join(120)
    assert {n for n, _ in seen} == {households}
    assert {w for _, w in seen} <= {frozenset(old), frozenset(set(whole["worker_name"].dropna()))}
    assert seen[-1][1] == frozenset(set(whole["worker_name"].dropna()))
    reader.close()


def test_saved_proposals_are_kept_in_the_database_and_read_as_the_sqlite_store_gives_them(ws, folder):
    from geo.redraw import check_proposal

    ctx = RedrawService(ws).context()
    grids = ctx.grids_of({"C1"}).to_crs(4326)
    report = check_proposal(ctx, grids)
    stores = {"db": ws.proposals(), "file": open_workspace(folder).proposals()}
    ids = {k: s.save(grids, report, author="王芳", note="草稿") for k, s in stores.items()}
    got = {k: s.get(ids[k]) for k, s in stores.items()}
    for doc in got.values():
        doc.pop("id"), doc.pop("created")
    assert got["db"] == json.loads(json.dumps(got["file"]))
    stores["db"].mark_applied(ids["db"], 2)
    (row,) = stores["db"].list()
    assert (row["id"], row["status"], row["applied_version"], row["communities"]) == (ids["db"], "applied", 2, ["C1"])
    with pytest.raises(WorkspaceError, match="no proposal"):
        stores["db"].get("nope")


# ------------------------------------------------------------------ several processes
_WATCHER = textwrap.dedent("""
    import json, sys, time
    from gridcover.store.postgis import PostGISWorkspace
    from gridcover.services.lookup import LookupService
    ws = PostGISWorkspace(sys.argv[1], schema=sys.argv[2], state_dir=sys.argv[3])
    first = ws.tag
    service = LookupService(ws)
    service.get_index()
    print(json.dumps({"ready": first}), flush=True)
    deadline = time.time() + 120
    while ws.tag == first and time.time() < deadline:
        time.sleep(0.002)
    seen = time.time()
    index = service.get_index()
    print(json.dumps({"tag": ws.tag, "seen": seen, "index_version": index.version}), flush=True)
""")


def test_an_edit_in_one_process_is_seen_by_the_others_within_a_second(ws, postgis_dsn, schema, folder):
    watchers = [subprocess.Popen([sys.executable, "-c", _WATCHER, postgis_dsn, schema, str(STATE_DIR)], cwd=ROOT,
                                 text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        for w in watchers:
            assert json.loads(w.stdout.readline())["ready"] == ws.tag
        whole, layers, summary = _edit(ws, worker="周杰")
        v = ws.commit_grids(lambda current: (whole, layers, summary), author="a", reason="b", communities=["C1"])
        committed = time.time()
        for w in watchers:
            line = w.stdout.readline()
            assert line, w.stderr.read()
            seen = json.loads(line)
            assert seen["tag"] == ws.tag and seen["index_version"] == v.version == 2
            assert seen["seen"] - committed < 1.0
    finally:
        for w in watchers:
            w.kill()
            w.wait()


def test_an_edit_of_a_table_in_place_changes_the_cache_key(ws, postgis_dsn, schema):
    key = version_key(ws)
    rows = ws.read("grids")
    with psycopg.connect(postgis_dsn) as db:
        db.execute(f"UPDATE \"{schema}\".grids SET worker_name = '孙丽' WHERE id = %s", (rows["id"].iloc[0],))
    deadline = time.time() + 5
    while version_key(ws) == key and time.time() < deadline:
        time.sleep(0.01)
    assert version_key(ws) != key and ws.version == 1
    assert ws.read("grids")["worker_name"].iloc[0] == "孙丽"


def test_a_listener_that_lost_its_connection_still_answers_current_versions(ws, postgis_dsn, schema):
    ws.close()  # no LISTEN: every question asks the database
    other = PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    _commit(other)
    assert ws.version == 2 and ws.tag == other.tag
    other.close()


# ------------------------------------------------------------------ the command line
def test_analyze_db_writes_the_workspace_into_postgis_and_out_becomes_optional(tiny_dir, tmp_path, postgis_dsn, schema,
                                                                              monkeypatch):
    import tempfile

    from gridcover.cli import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert main(["analyze", str(tiny_dir), "--db", postgis_dsn, "--schema", schema, "--quiet"]) == 0
    ws = PostGISWorkspace(postgis_dsn, schema=schema, state_dir=STATE_DIR)
    assert ws.version == 1 and len(ws.read("households")) == 10 and ws.summary()["households"] == 10
    assert not list(Path(tmp_path).glob("gridcover-analyze-*"))
    first = ws.tag
    out = tmp_path / "out"
    assert main(["analyze", str(tiny_dir), "--out", str(out), "--db", postgis_dsn, "--schema", schema, "--quiet"]) == 0
    assert (out / "workspace.gpkg").is_file()
    deadline = time.monotonic() + 2.0  # the change reaches an open workspace by NOTIFY: within a second
    while ws.tag == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws.tag == open_workspace(out).tag != first  # the new analysis replaced the schema's content
    ws.close()


def test_analyze_db_with_a_bad_url_stops_before_the_analysis(tiny_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "gridcover.cli", "analyze", str(tiny_dir), "--out", str(tmp_path / "o"),
                           "--db", "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("gridcover: error: cannot connect to "
                                                           "postgresql://nobody@127.0.0.1:1/none")
    assert not (tmp_path / "o").exists()
    done = subprocess.run([sys.executable, "-m", "gridcover.cli", "analyze", str(tiny_dir)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and "give --out OUT_DIR" in done.stderr


# ------------------------------------------------------------------ two servers on one database
def test_two_servers_on_one_database_an_apply_on_one_is_seen_by_the_other_and_a_second_editor_gets_409(
        ws, postgis_dsn, schema, tmp_path):
    import httpx

    from serving import ServerProcess

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-office": {"role": "street_office", "streets": ["S1"], "name": "督院街"},
                                "k-admin": {"role": "admin", "name": "区网格中心"}}), encoding="utf-8")
    office = {"X-API-Key": "k-office"}
    extra = ("--schema", schema)
    with ServerProcess(f"--db={postgis_dsn}", keys=keys, extra=extra) as a, \
            ServerProcess(f"--db={postgis_dsn}", keys=keys, extra=extra) as b:
        assert f"(schema {schema}) (version 1" in a.first_line
        items = "/collections/grids/items"
        etag = httpx.get(b.url + items, timeout=60).headers["etag"]
        assert httpx.get(b.url + "/tiles/grids.json", timeout=60).json()["gridcover:workspace"] == ws.tag
        doc = httpx.get(a.url + "/grids/versions/1", headers=office, timeout=60).json()
        doc.pop("version")
        doc["features"] = [f for f in doc["features"] if f["properties"]["community_id"] == "C1"]
        doc["features"][0]["properties"]["worker_name"] = "郑爽"
        first = httpx.post(a.url + "/grids/proposals", headers=office, json=doc, timeout=120).json()
        second = httpx.post(b.url + "/grids/proposals", headers=office, json=doc, timeout=120).json()
        assert first["applicable"] and second["applicable"]
        r = httpx.post(a.url + f"/grids/proposals/{first['id']}/apply", params={"reason": "换网格员"}, headers=office,
                       timeout=120)
        applied = time.time()
        assert r.status_code == 200, r.text
        while httpx.get(b.url + items, timeout=60).headers["etag"] == etag and time.time() - applied < 5:
            time.sleep(0.01)
        assert time.time() - applied < 1.0
        assert httpx.get(b.url + "/tiles/grids.json", timeout=60).json()["gridcover:workspace"] == ws.tag != etag
        grids = httpx.get(b.url + items, params={"limit": 100}, timeout=60).json()
        assert "郑爽" in {f["properties"].get("worker_name") for f in grids["features"]}
        # the second editor checked the same community against version 1: a clear conflict, nothing written
        r = httpx.post(b.url + f"/grids/proposals/{second['id']}/apply", params={"reason": "另一个方案"}, headers=office,
                       timeout=120)
        assert r.status_code == 409 and "conflict: version 2 by 督院街" in r.json()["description"]
        assert httpx.get(a.url + "/grids/versions", headers=office, timeout=60).json()["current"] == 2


def test_lookup_db_answers_as_the_geopackage_does(tmp_path, postgis_dsn, schema, capsys):
    from gridcover.cli import main
    from lookup_data import write_workspace, xy

    folder = write_workspace(tmp_path / "ws")
    load_gpkg(folder / "workspace.gpkg", postgis_dsn, schema=schema)
    lon, lat = xy(0.3, 3.9)
    answers = []
    for where in ([str(folder)], ["--db", postgis_dsn, "--schema", schema]):
        assert main(["lookup", *where, "--lon", str(lon), "--lat", str(lat)]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0] == answers[1] and answers[1]["grid_id"] == "G3"


def test_redraw_db_applies_keeps_history_and_a_second_apply_is_a_conflict(ws, postgis_dsn, schema, tmp_path, capsys):
    from gridcover.cli import main

    db = ["--db", postgis_dsn, "--schema", schema]
    out = tmp_path / "p.geojson"
    assert main(["redraw", "propose", *db, "--community", "C1", "--out", str(out)]) == 0
    assert main(["redraw", "apply", *db, str(out), "--author", "张三", "--reason", "调整"]) == 0
    capsys.readouterr()
    assert main(["redraw", "history", *db]) == 0
    text = capsys.readouterr().out
    assert "张三: 调整" in text and text.splitlines()[-1].startswith("*   2")
    assert main(["redraw", "apply", *db, str(out), "--author", "c", "--reason", "d", "--expected-version", "1"]) == 3
    assert "conflict: version 2 by 张三" in capsys.readouterr().err
    assert ws.version == 2


def test_serve_needs_a_workspace_or_db_not_both(tmp_path, capsys):
    from gridcover.cli import main

    assert main(["serve"]) == 2
    assert capsys.readouterr().err.strip() == ("gridcover: error: give the workspace folder that 'gridcover analyze' "
                                               "wrote, or --db URL")
    assert main(["serve", str(tmp_path), "--db", "postgresql://x@127.0.0.1:1/y"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["serve", "--db", "postgresql://x@127.0.0.1:1/y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gridcover: error: cannot connect to postgresql://x@127.0.0.1:1/y") and "\n" not in err


def test_a_layer_with_lists_nullable_numbers_and_dates_is_written_with_types_and_read_back(postgis_dsn, schema):
    from datetime import date

    import geopandas as gpd
    import shapely

    frame = gpd.GeoDataFrame({
        "id": ["a", "b", "c"],
        "grid_ids": pd.Series([["G1", "G2"], None, []], dtype=object),
        "floors": pd.array([3, None, 7], dtype="Int64"),
        "share": [0.5, None, 1.0],
        "residential": pd.Series([True, None, False], dtype=object),
        "last_visit": pd.Series([date(2026, 11, 1), None, date(2025, 1, 2)], dtype=object),
    }, geometry=[shapely.Point(104.0, 30.6), None, shapely.Point(104.1, 30.7)], crs=4326)
    with psycopg.connect(postgis_dsn) as db:
        migrate(db, schema)
        postgis.write_layer(db, schema, "sites", frame, position=0)
        back = postgis._read_table(db, schema, "sites")
        types = dict(db.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                                "AND table_name = 'sites'", (schema,)).fetchall())
    assert (types["floors"], types["share"], types["residential"], types["grid_ids"]) == (
        "bigint", "double precision", "boolean", "text")
    assert back["grid_ids"].tolist()[0] == '["G1", "G2"]' and pd.isna(back["grid_ids"][1]) and back["grid_ids"][2] == "[]"
    assert back["floors"].tolist()[0] == 3 and pd.isna(back["floors"][1])
    assert back["residential"][0] is True and pd.isna(back["residential"][1]) and back["residential"][2] is False
    assert back["last_visit"].tolist()[0] == "2026-11-01" and pd.isna(back["last_visit"][1])
    assert back.geometry[1] is None and back.geometry[2].equals(shapely.Point(104.1, 30.7))


def test_analyze_db_over_a_schema_with_grid_changes_is_refused_until_asked(ws, postgis_dsn, schema, tiny_dir,
                                                                           capsys):
    from gridcover.cli import main

    _commit(ws, "C1")
    capsys.readouterr()
    db = ["--db", postgis_dsn, "--schema", schema]
    assert main(["analyze", str(tiny_dir), *db, "--quiet"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "holds 1 grid change made with 'gridcover redraw'" in line and "by 王芳" in line
    assert ws.version == 2 and len(ws.history()) == 2
    assert main(["analyze", str(tiny_dir), *db, "--quiet", "--discard-grid-edits"]) == 0
