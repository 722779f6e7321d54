"""Scorecard snapshots over time (docs/history.md): carried forward run after run, in both backends; phased
targets; trend.json and GET /trend, counts only."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from backends import STATE_DIR, drop_schema, new_schema, postgis_dsn  # noqa: F401 - fixture
from api.access import Caller, Keys
from api.app import create_app
from geo.history import History, build_trend, monthly_snapshots, snapshot_rows
from geo.risk import load_risk_config, target_in_force
from gridcover.cli import main
from gridcover.engines.single import analyze
from gridcover.io.history import HISTORY_CSV, export_history_csv, read_gpkg_history, read_history_csv, read_history_from
from gridcover.store import open_workspace

NOV, DEC, JAN = "2026-11-15", "2026-12-15", "2027-01-15"


def _analyze(data, out, as_of, *extra):
    code = main(["analyze", str(data), "--out", str(out), "--as-of", as_of, "--quiet", *map(str, extra)])
    assert code == 0
    return out


def _trend(out) -> dict:
    return json.loads((out / "trend.json").read_text(encoding="utf-8"))


def _overload_g1(data):
    """G1 holds 5 households: with 2 households per worker it becomes overloaded."""
    (data / "gridcover.toml").write_text("[analysis]\nhouseholds_per_worker = 2\n", encoding="utf-8")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny district analysed into one --out on 2026-11-15, then on 2026-12-15 with G1 overloaded."""
    from conftest import tiny_layers, write_layers

    data = write_layers(tiny_layers(), tmp_path_factory.mktemp("tiny") / "data")
    out = _analyze(data, data.parent / "out", NOV)
    _overload_g1(data)
    _analyze(data, out, DEC)
    return data, out


def test_two_runs_into_the_same_out_keep_both_snapshots_and_say_what_changed(two_runs):
    _, out = two_runs
    history = read_gpkg_history(out / "workspace.gpkg")
    assert history.dates == [NOV, DEC]
    trend = _trend(out)
    assert trend["as_of"] == DEC and trend["months"][-2:] == ["2026-11", "2026-12"] and len(trend["months"]) == 12
    assert trend["snapshots"]["2026-11"] == NOV and trend["snapshots"]["2026-01"] is None
    changed = trend["changed"]
    assert changed["since"] == NOV
    # H3 (mental disorder, last visit 2026-11-01) is overdue by December: red; one household, so withheld below k
    assert changed["households_became_red"]["total"] == 1
    assert changed["households_became_red"]["by_community"] == [{"id": "C2", "name": "二村", "count": None}]
    assert [g["id"] for g in changed["grids_became_overloaded"]] == ["G1"]
    assert changed["grids_became_overloaded"][0]["name"] == "G1网格"
    assert changed["cases_became_overdue"] is None  # no cases in the analysis: not measured, not zero
    text = (out / "trend.json").read_text(encoding="utf-8")
    assert '"H' not in text  # never a household id in a public output
    assert "scorecard_history" not in open_workspace(out).layer_names()
    assert "近12个月趋势" in (out / "report.html").read_text(encoding="utf-8")


def test_the_same_as_of_run_twice_replaces_that_date(two_runs, tmp_path):
    data, first = two_runs
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = read_gpkg_history(out / "workspace.gpkg")
    shutil.copytree(data, tmp_path / "data")
    (tmp_path / "data" / "gridcover.toml").unlink()  # December again, with the default workload rule
    _analyze(tmp_path / "data", out, DEC)
    after = read_gpkg_history(out / "workspace.gpkg")
    assert after.dates == [NOV, DEC] and len(after.rows) == len(before.rows)
    dec = after.rows[(after.rows["as_of"] == DEC) & (after.rows["indicator"] == "households_per_worker")
                     & (after.rows["level"] == "street")]
    assert dec["target"].tolist() == [300.0]  # the second run of that date, not the first
    assert "overloaded_grid" not in set(after.members.loc[after.members["as_of"] == DEC, "kind"])


def test_history_from_a_workspace_a_csv_or_the_data_folder(two_runs, tmp_path):
    data, first = two_runs
    fresh = _analyze(data, tmp_path / "fresh", JAN, "--history-from", first)
    assert read_gpkg_history(fresh / "workspace.gpkg").dates == [NOV, DEC, JAN]
    assert read_history_from(first / "workspace.gpkg").dates == [NOV, DEC]
    held = read_gpkg_history(first / "workspace.gpkg")
    csv = export_history_csv(held, tmp_path / HISTORY_CSV)
    back = read_history_csv(csv)
    assert back.dates == [NOV, DEC] and len(back.members) == len(held.members) and len(back.rows) == len(held.rows)
    assert read_history_from(tmp_path).dates == [NOV, DEC]  # a folder holding the CSV
    moved = tmp_path / "moved-data"  # a street office's export, moved with the data to another machine
    shutil.copytree(data, moved)
    (moved / HISTORY_CSV).write_bytes(csv.read_bytes())
    out = _analyze(moved, tmp_path / "moved", JAN)
    assert read_gpkg_history(out / "workspace.gpkg").dates == [NOV, DEC, JAN]


def test_a_bad_history_file_is_one_clear_message_and_nothing_is_written(tiny_dir, tmp_path, capsys):
    bad = tmp_path / HISTORY_CSV
    bad.write_text("as_of,level,id,indicator,value\n2026-10-31,community,C1,visits_on_time,0.5\n"
                   "31/11/2026,community,C1,visits_on_time,0.6\n", encoding="utf-8")
    code = main(["analyze", str(tiny_dir), "--out", str(tmp_path / "out"), "--history-from", str(bad), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and f"{bad}: line 3: as_of '31/11/2026' is not a date" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    code = main(["analyze", str(tiny_dir), "--out", str(tmp_path / "out"), "--history-from", str(tmp_path / "empty"),
                 "--quiet"])
    assert code != 0 and "--history-from" in capsys.readouterr().err


def test_carry_forward_into_postgis(tiny_dir, tmp_path, postgis_dsn):  # noqa: F811
    schema = new_schema()
    try:
        for day in (NOV, DEC):
            code = main(["analyze", str(tiny_dir), "--db", postgis_dsn, "--schema", schema, "--as-of", day, "--quiet"])
            assert code == 0
        ws = open_workspace(db=postgis_dsn, schema=schema, state_dir=STATE_DIR)
        try:
            history = ws.scorecard_history()
            assert history.dates == [NOV, DEC]
            assert set(history.members["kind"]) == {"red_household"}
            assert build_trend(history)["changed"]["households_became_red"]["total"] == 1
        finally:
            ws.close()
    finally:
        drop_schema(postgis_dsn, schema)


def test_the_target_in_force_is_chosen_by_as_of():
    assert target_in_force({2024: 0.90, 2025: 0.95}, 2023) == (0.90, 2024)  # before the first year: the first
    assert target_in_force({2024: 0.90, 2025: 0.95}, 2026) == (0.95, 2025)
    text = b"[targets]\nmigrants_registered = { 2024 = 0.90, 2025 = 0.95 }\n[targets.visits_on_time]\n2026 = 0.99\n"
    early = load_risk_config(text, as_of=date(2024, 6, 30))
    late = load_risk_config(text, as_of=date(2025, 1, 1))
    assert early.targets["migrants_registered"] == 0.90 and late.targets["migrants_registered"] == 0.95
    assert late.target_years == {"migrants_registered": 2025, "visits_on_time": 2026}
    assert load_risk_config(b"[targets]\nbasic_services = 1\n").target_years == {"basic_services": None}


def test_the_scorecard_says_which_years_target(tiny_dir):
    for day, figure, year in ((date(2024, 6, 30), 0.90, 2024), (date(2026, 6, 30), 0.95, 2025)):
        card = analyze(tiny_dir, reference_date=day).scorecard
        row = card[(card["indicator"] == "special_group_services") & (card["level"] == "street")].iloc[0]
        assert (row["target"], row["target_year"]) == (figure, year)
        plain = card[(card["indicator"] == "special_groups_served") & (card["level"] == "street")].iloc[0]
        assert plain["target"] == 0.98 and pd.isna(plain["target_year"])


def test_monthly_points_take_each_months_last_run_and_its_target():
    card = pd.DataFrame({"level": ["community"], "id": ["C1"], "name": ["一社区"], "indicator": ["migrants_registered"],
                         "value": [0.5], "target": [0.9], "target_year": [2024], "pass": [False], "numerator": [1],
                         "denominator": [2]})
    rows = pd.concat([snapshot_rows(card.assign(value=v, target=t, target_year=y), as_of=date.fromisoformat(d))
                      for d, v, t, y in (("2024-12-31", 0.5, 0.9, 2024), ("2025-01-10", 0.6, 0.95, 2025),
                                         ("2025-01-31", 0.7, 0.95, 2025))], ignore_index=True)
    trend = build_trend(History(rows=rows, members=History.empty().members), months=2)
    points = trend["units"][0]["indicators"]["migrants_registered"]["points"]
    assert [(p["as_of"], p["value"], p["target"], p["target_year"]) for p in points] == [
        ("2024-12-31", 0.5, 0.9, 2024), ("2025-01-31", 0.7, 0.95, 2025)]
    assert monthly_snapshots(["2025-01-10", "2025-01-31"], as_of="2025-01-20", months=1) == {"2025-01": "2025-01-10"}


def test_a_public_caller_gets_counts_only_and_a_street_office_its_streets(two_runs):
    _, out = two_runs
    keys = Keys({"k-office": Caller(role="street_office", streets=frozenset({"S1"}), key_name="街道办"),
                 "k-other": Caller(role="street_office", streets=frozenset({"S9"}), key_name="别的街道")})
    client = TestClient(create_app(open_workspace(out), keys=keys))
    public = client.get("/trend")
    assert public.status_code == 200 and public.headers["cache-control"] == "no-cache"
    body = public.json()
    assert body["changed"]["households_became_red"]["by_community"][0]["count"] is None
    assert '"H' not in public.text  # no household id, to anyone
    assert body["indicator_names"]["visits_on_time"] == ["走访频次达标率", "visits on time"]
    office = client.get("/trend", headers={"X-API-Key": "k-office"})
    assert office.json()["changed"]["households_became_red"]["by_community"][0]["count"] == 1
    assert office.headers["cache-control"] == "private, no-store" and '"H' not in office.text
    other = client.get("/trend", headers={"X-API-Key": "k-other"}).json()
    assert other["changed"]["households_became_red"]["by_community"][0]["count"] is None
    assert client.get("/trend", headers={"X-API-Key": "nope"}).status_code == 401
    assert "/trend" in client.get("/openapi").json()["paths"]
