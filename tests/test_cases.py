"""Cases (事件) against their time limits: the working-day calendar, deadlines, on time, overdue (geo/cases.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from geo.cases import (URGENCIES, WorkCalendar, case_deadlines, case_rules, case_times, evaluate_cases,
                       normalise_urgency, parse_case_rules)
from geo.errors import ConfigError
from geo.risk import load_risk_config

ZONE = "Asia/Shanghai"


def local(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)).tz_localize(ZONE))


def shown(series: pd.Series) -> list[str]:
    return series.dt.tz_convert(ZONE).dt.strftime("%Y-%m-%d %a %H:%M").tolist()


@pytest.fixture(scope="module")
def rules():
    return case_rules(load_risk_config())


def test_the_packaged_calendar_holds_the_state_councils_arrangements(rules):
    cal = rules.calendar
    days = np.array(["2026-02-14", "2026-02-16", "2026-02-23", "2026-02-28", "2026-10-08", "2026-10-10",
                     "2025-01-26", "2025-10-08", "2024-02-09", "2024-02-18"], dtype="datetime64[D]")
    # Sat 14 Feb 2026 worked, the Spring Festival off to Mon 23, Sat 28 worked; Thu 8 Oct back at work, Sat 10
    # Oct worked; Sun 26 Jan 2025 worked, 8 Oct 2025 off; 2024's New Year's Eve (9 Feb) a normal Friday.
    assert cal.is_working_day(days).tolist() == [True, False, False, True, True, True, True, False, True, True]
    assert sorted(cal.years) == [2024, 2025, 2026]
    assert cal.covers(np.array(["2026-12-31", "2027-01-04"], dtype="datetime64[D]")).tolist() == [True, False]
    assert rules.response_minutes == {"general": 120.0, "urgent": 15.0, "cross_department": 120.0}
    assert rules.closure_working_days == {"general": 5.0, "urgent": 1.0, "cross_department": 3.0}


def test_a_deadline_in_working_days_skips_a_holiday_and_counts_an_adjusted_working_saturday(rules):
    start = local("2026-09-30 10:00",   # Wed before National Day: Thu 8, Fri 9, Sat 10 Oct (worked)
                  "2026-10-03 10:00",   # on the holiday: the clock starts Thu 8 Oct 00:00, runs Thu, Fri, Sat
                                        # and stops at the start of the next working day (Sunday is not)
                  "2026-02-13 15:00",   # Fri before the Spring Festival: Sat 14 (worked), Tue 24, Wed 25
                  "2026-11-27 16:00")   # an ordinary Friday: Mon, Tue, Wed
    due = rules.calendar.add_working_days(start, 3)
    assert shown(due) == ["2026-10-10 Sat 10:00", "2026-10-12 Mon 00:00", "2026-02-25 Wed 15:00",
                          "2026-12-02 Wed 16:00"]
    assert rules.calendar.working_days_between(start, due).tolist() == [3.0, 3.0, 3.0, 3.0]


def test_working_days_between_counts_only_working_time_and_agrees_with_the_deadlines(rules):
    rng = np.random.default_rng(7)
    start = pd.Series(pd.Timestamp("2024-01-01", tz=ZONE)
                      + pd.to_timedelta(rng.integers(0, 1000 * 24 * 60, 500), unit="min"))
    n = rng.integers(0, 8, 500)
    due = rules.calendar.add_working_days(start, n)
    assert np.allclose(rules.calendar.working_days_between(start, due), n)
    # the National Day week of 2026 (1-7 Oct) counts nothing; an hour on a working day is 1/24
    span = rules.calendar.working_days_between(local("2026-10-01 00:00", "2026-10-09 09:00"),
                                               local("2026-10-08 00:00", "2026-10-09 10:00"))
    assert span.round(4).tolist() == [0.0, round(1 / 24, 4)]


def test_a_case_reported_on_a_holiday_starts_at_the_next_working_days_start(rules):
    due = case_deadlines(pd.Series(["2026-10-02 20:00", "2026-10-02 20:00"]),
                         pd.Series(["urgent", "general"]), rules=rules)
    assert shown(due["response_due"]) == ["2026-10-02 Fri 20:15", "2026-10-02 Fri 22:00"]  # around the clock
    assert shown(due["closure_due"]) == ["2026-10-09 Fri 00:00", "2026-10-14 Wed 00:00"]  # Thu 8, Fri 9, Sat 10, Mon 12, Tue 13


def cases(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = {"id": [f"C{i}" for i in range(n)], "accepted_at": [None] * n, "closed_at": [None] * n}
    return pd.DataFrame({**frame, **columns})


def test_an_urgent_case_accepted_within_15_minutes_is_on_time_and_one_accepted_later_is_late(rules):
    judged = evaluate_cases(cases(reported_at=["2026-11-30 09:00"] * 2, urgency=["urgent", "紧急"],
                                  accepted_at=["2026-11-30 09:15", "2026-11-30 09:16"],
                                  closed_at=["2026-11-30 12:00", "2026-11-30 12:00"]).assign(
                                      urgency=lambda f: normalise_urgency(f["urgency"])),
                            rules=rules, as_of=pd.Timestamp("2026-12-01 00:00"))
    assert judged["response_min"].tolist() == [15.0, 16.0]
    assert judged["on_time"].tolist() == [True, False]
    assert judged["response_on_time"].tolist() == [True, False]
    assert judged["closure_on_time"].tolist() == [True, True]
    assert judged["status"].tolist() == ["closed", "closed"]
    assert not judged["overdue"].any()


def test_an_open_case_past_its_deadline_is_overdue_and_one_within_it_is_undecided(rules):
    judged = evaluate_cases(cases(reported_at=["2026-11-30 09:00", "2026-11-30 23:00", "2026-11-25 09:00"],
                                  urgency=["general", "general", "cross_department"],
                                  accepted_at=[None, None, "2026-11-25 09:30"]),
                            rules=rules, as_of=pd.Timestamp("2026-12-01 00:00", tz=ZONE))
    assert judged["overdue"].tolist() == [True, False, True]  # 2 h passed; 1 h left; 3 working days passed
    assert judged["on_time"].isna().tolist() == [False, True, False]
    assert judged["on_time"].iloc[[0, 2]].tolist() == [False, False]
    assert judged["status"].tolist() == ["open", "open", "accepted"]
    assert np.isnan(judged["closure_working_days"]).all()


def test_a_time_after_as_of_has_not_happened_yet_and_a_closure_counts_as_the_answer(rules):
    judged = evaluate_cases(cases(reported_at=["2026-11-30 09:00", "2026-11-30 09:00"], urgency=["general"] * 2,
                                  accepted_at=["2026-12-01 08:00", None], closed_at=[None, "2026-11-30 10:00"]),
                            rules=rules, as_of=pd.Timestamp("2026-12-01 00:00"))
    assert judged["status"].tolist() == ["open", "closed"]
    assert judged["overdue"].tolist() == [True, False]
    assert judged["response_min"].fillna(-1).tolist() == [-1.0, 60.0]


def test_case_times_read_local_and_offset_times():
    times = case_times(pd.Series(["2026-11-30 08:00", "2026-11-30T00:00:00Z", "2026-11-30T08:00+08:00", "yesterday"]))
    assert times.iloc[:3].nunique() == 1 and pd.isna(times.iloc[3])


def test_urgency_accepts_the_chinese_spellings():
    assert normalise_urgency(pd.Series(["一般", "普通", "紧急", "跨部门", "URGENT", "", None])).tolist() == \
        ["general", "general", "urgent", "cross_department", "urgent", pd.NA, pd.NA]
    assert URGENCIES == ("general", "urgent", "cross_department")


def test_a_data_folders_risk_file_overrides_the_limits_and_keeps_the_rest():
    config = load_risk_config(b"[cases.response_minutes]\ngeneral = 60\n[cases.calendar]\nholidays = [2027-01-01]\n",
                              source="data/risk.toml")
    rules = case_rules(config)
    assert rules.response_minutes == {"general": 60.0, "urgent": 15.0, "cross_department": 120.0}
    assert rules.calendar.holidays == frozenset({date(2027, 1, 1)}) and rules.calendar.years == frozenset({2027})
    assert rules.calendar.workdays  # the packaged adjusted working days stay
    assert case_rules(load_risk_config(b"[weights]\nred = 9\n", source="old/risk.toml")).closure_working_days[
        "cross_department"] == 3.0  # a risk file written before cases keeps the packaged limits


@pytest.mark.parametrize("text, message", [
    (b"[cases.closure_working_days]\nurgent = 0.5\n", "[cases.closure_working_days] urgent: 0.5 is not a whole number"),
    (b"[cases.response_minutes]\nsoon = 5\n", "[cases.response_minutes]: unknown urgency soon"),
    (b"[cases.calendar]\nworkdays = [2026-10-09]\n", "workdays: 2026-10-09 is a weekday already"),
    (b"[cases.calendar]\nholidays = [\"1 Oct\"]\n", "holidays: '1 Oct' is not a date"),
    (b"[cases]\ntime_zone = \"Mars/Olympus\"\n", "time_zone: 'Mars/Olympus' is not a time zone"),
    (b"[cases]\ndeadline = 3\n", "[cases] unknown key(s) deadline"),
])
def test_a_bad_cases_table_names_the_file_and_the_key(text, message):
    with pytest.raises(ConfigError, match="^data/risk.toml: ") as raised:
        load_risk_config(text, source="data/risk.toml")
    assert message in str(raised.value)


def test_rules_without_defaults_have_no_limit_for_an_urgency_not_listed():
    rules = parse_case_rules({"response_minutes": {"urgent": 15}})
    due = case_deadlines(pd.Series(["2026-11-30 09:00"] * 2), pd.Series(["urgent", "general"]), rules=rules)
    assert due["response_due"].notna().tolist() == [True, False]
    assert due["closure_due"].isna().all()


# ---- cases in the analysis (the tiny district of conftest.py: G1 x 0–100 | G2 x 100–200, y 0–100 …) ----------

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import geopandas as gpd  # noqa: E402
import shapely  # noqa: E402

from geo.errors import InputError  # noqa: E402
from gridcover.engines.single import analyze  # noqa: E402
from gridcover.io.folder import load_data  # noqa: E402
from gridcover.io.outputs import write_outputs  # noqa: E402
from tests.conftest import ORIGIN, UTM  # noqa: E402


def lonlat(x: float, y: float) -> tuple[float, float]:
    p = gpd.GeoSeries([shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y)], crs=UTM).to_crs(4326).iloc[0]
    return p.x, p.y


def shared_corner(folder: Path, a: str, b: str, *, stored: bool = True) -> tuple[float, float]:
    """The vertex two grids share: as the workspace stores it (``stored``: read, into the metric CRS and back to
    WGS-84, exactly on both grids' stored boundaries) or as the grids file holds it."""
    if stored:
        grids = load_data(folder).layers["grids"].to_crs(4326).set_index("id").geometry
        rings = {g: {tuple(p) for p in grids[g].exterior.coords} for g in (a, b)}
    else:
        doc = json.loads((folder / "grids.geojson").read_text(encoding="utf-8"))
        rings = {f["properties"]["id"]: {tuple(p) for p in f["geometry"]["coordinates"][0]} for f in doc["features"]}
    [corner] = rings[a] & rings[b]
    return corner


def tiny_cases(folder: Path) -> pd.DataFrame:
    """Cases of the tiny district: one on the corner G1 and G2 share, one by household (H7, in B1 of G1), one by
    address (B5, 测试路5号, in G1), two from the village no grid covers, an urgent one overdue in G3, an urgent
    one still in time in G2, one that cannot be placed, and one on the corner as the grids file (not the workspace) holds it."""
    corner = shared_corner(folder, "G1", "G2")  # (100, 0)
    v1, v2 = lonlat(350, 185), lonlat(351, 186)
    g3, g2 = lonlat(150, 150), lonlat(150, 50)
    rows = [
        ("K1", "2026-11-30 09:00", "general", corner, None, None, "2026-11-30 09:30", "2026-11-30 15:00"),
        ("K2", "2026-11-30 09:00", "一般", (None, None), "H7", None, "2026-11-30 12:00", None),
        ("K3", "2026-11-26 09:00", "general", (None, None), None, "测试路5号", "2026-11-26 09:20", "2026-11-27 10:00"),
        ("K4", "2026-11-20 09:00", "general", v1, None, None, "2026-11-20 10:00", "2026-11-23 10:00"),
        ("K5", "2026-11-21 09:00", "general", v2, None, None, "2026-11-21 10:00", "2026-11-24 10:00"),
        ("K6", "2026-11-27 10:00", "紧急", g3, None, None, "2026-11-27 10:10", None),
        ("K7", "2026-11-30 09:00", "urgent", g2, None, None, "2026-11-30 09:05", None),
        ("K8", "2026-11-30 09:00", "跨部门", (None, None), None, "不存在的路999号", None, None),
        ("K9", "2026-11-30 09:00", "general", shared_corner(folder, "G1", "G2", stored=False), None, None,
         "2026-11-30 09:30", "2026-11-30 15:00"),
    ]
    return pd.DataFrame([{"id": i, "reported_at": r, "urgency": u, "lon": p[0], "lat": p[1], "household_id": h,
                          "address": a, "accepted_at": acc, "closed_at": c, "source": "12345"}
                         for i, r, u, p, h, a, acc, c in rows])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.conftest import tiny_layers, write_layers

    folder = write_layers(tiny_layers(), tmp_path_factory.mktemp("tiny") / "tiny")
    tiny_cases(folder).to_csv(folder / "cases.csv", index=False)
    (folder / "gridcover.toml").write_text("[analysis]\nas_of = 2026-11-30\n", encoding="utf-8")
    analysis = analyze(folder)
    out = write_outputs(analysis, tmp_path_factory.mktemp("tiny_out") / "out")
    cases = gpd.read_file(out / "cases.geojson").set_index("id")
    return folder, analysis, out, cases


def test_a_case_on_a_shared_grid_corner_gets_the_answer_of_lookup(tiny_run):
    from gridcover.services.lookup import LookupService
    from gridcover.store import open_workspace

    folder, _, out, cases = tiny_run
    service = LookupService(open_workspace(out))
    lon, lat = shared_corner(folder, "G1", "G2")
    answer = service.lookup(lon=[lon], lat=[lat])
    assert answer["method"] == "boundary" and answer["grid_id"] == "G1"  # the smaller id of the grids touching it
    assert (cases.loc["K1", "grid_id"], cases.loc["K1", "worker_name"]) == (answer["grid_id"], answer["worker_name"])
    assert cases.loc["K1", "located_by"] == "point" and not cases.loc["K1", "outside_grids"]
    # the same corner as the grids file writes it is a nanodegree off the stored edges: /lookup finds it in no
    # grid (nearest G1, 0 m), and so does the case
    lon, lat = shared_corner(folder, "G1", "G2", stored=False)
    answer = service.lookup(lon=[lon], lat=[lat])
    assert cases.loc["K9", "outside_grids"] == (not answer["covered"])
    assert cases.loc["K9", "grid_id"] == (answer["grid_id"] if answer["covered"] else answer["nearest_grid_id"])


def test_cases_are_placed_by_household_and_by_address(tiny_run):
    _, _, _, cases = tiny_run
    assert cases.loc["K2", ["located_by", "grid_id", "community_id", "street_id"]].tolist() == ["household", "G1", "C1", "S1"]
    assert cases.loc["K3", ["located_by", "grid_id"]].tolist() == ["address", "G1"]
    assert cases.loc["K3"].geometry.within(gpd.read_file(tiny_run[0] / "buildings.geojson").set_index("id").loc["B5"].geometry)
    assert "household_id" not in cases.columns  # an output names no household (special groups stay internal)


def test_a_case_outside_every_grid_gets_the_nearest_grid_and_makes_a_blind_spot(tiny_run):
    _, analysis, out, cases = tiny_run
    assert cases.loc[["K4", "K5"], "outside_grids"].tolist() == [True, True]
    assert cases.loc["K4", "grid_id"] in ("G4", "G5") and cases.loc["K4", "distance_m"] > 0
    spots = gpd.read_file(out / "blindspots.geojson")
    mine = spots[spots.contains(cases.loc["K4"].geometry)]  # the village: H9 (blue, no grid) and the two cases
    assert len(mine) == 1 and mine.iloc[0]["cases_outside_grids"] == 2
    assert "case_outside_grids" in json.loads(mine.iloc[0]["risk_reasons"]) if isinstance(mine.iloc[0]["risk_reasons"], str) \
        else "case_outside_grids" in list(mine.iloc[0]["risk_reasons"])
    assert analysis.summary["cases"]["outside_grids"] == 2 + int(cases.loc["K9", "outside_grids"])


def test_an_urgent_case_open_past_its_day_makes_its_grid_red_and_one_in_time_does_not(tiny_run):
    _, analysis, _, cases = tiny_run
    assert cases.loc["K6", ["urgency", "status", "overdue"]].tolist() == ["urgent", "accepted", True]
    # reported Fri 27 Nov 10:00 + 1 working day: Mon 30 Nov 10:00 (counted from the report, not the acceptance)
    assert pd.Timestamp(cases.loc["K6", "closure_due"]) == pd.Timestamp("2026-11-30T10:00:00+08:00")
    assert cases.loc["K7", "overdue"] == False and pd.isna(cases.loc["K7", "on_time"])  # noqa: E712
    grids = analysis.grids.set_index("id")
    assert grids.loc["G3", "risk"] == "red" and "urgent_case_overdue" in grids.loc["G3", "risk_reasons"]
    assert "urgent_case_overdue" not in grids.loc["G2", "risk_reasons"]
    assert grids.loc["G3", ["cases", "cases_overdue", "urgent_cases_overdue"]].tolist() == [1, 1, 1]


def test_a_case_that_cannot_be_placed_is_counted_not_dropped(tiny_run):
    _, analysis, _, cases = tiny_run
    assert cases.loc["K8", "located_by"] == "none" and pd.isna(cases.loc["K8", "grid_id"]) and cases.loc["K8"].geometry is None
    s = analysis.summary["cases"]
    assert (s["input"], s["judged"], s["not_located"]) == (9, 9, 1)
    assert any("1 could not be placed" in w for w in analysis.summary["warnings"])


def test_the_scorecard_and_summary_count_cases_per_community_and_street(tiny_run):
    _, analysis, out, _ = tiny_run
    card = analysis.scorecard[analysis.scorecard["indicator"] == "cases_on_time"].set_index(["level", "id"])
    # decided in C1: K1, K3, K9 (closed in time), K6 (past its closure), K2 (accepted after 3 h, not 2);
    # K7 undecided (open, in time); K8 in no community
    c1 = card.loc[("community", "C1")]
    assert (c1["numerator"], c1["denominator"], c1["target"]) == (3, 5, 1.0)
    per = {r["id"]: r for r in analysis.summary["cases"]["per_community"]}
    assert per["C1"]["cases"] == 6 and per["C1"]["overdue"] == 1
    assert analysis.summary["cases"]["as_of"] == "2026-12-01T00:00:00+08:00"  # gridcover.toml's as_of, end of day
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["settings"]["as_of"] == "2026-11-30"


def test_the_as_of_given_wins_over_the_folders(tiny_run):
    folder = tiny_run[0]
    analysis = analyze(folder, reference_date=date(2026, 11, 29))
    s = analysis.summary["cases"]
    assert s["as_of"] == "2026-11-30T00:00:00+08:00" and s["reported_after_as_of"] == 5  # K1, K2, K7, K8, K9 of the 30th


@pytest.mark.parametrize("column, value, message", [
    ("urgency", "soon", "field 'urgency': unknown urgency 'soon' (allowed: general, urgent, cross_department; 一般/普通, 紧急, 跨部门)"),
    ("reported_at", "30/11/2026", "field 'reported_at': not a date-time (YYYY-MM-DD HH:MM, ISO 8601): '30/11/2026'"),
    ("accepted_at", "2026-11-29 08:00", "field 'accepted_at': '2026-11-29 08:00' is before reported_at '2026-11-30 09:00'"),
    ("household_id", "H99", "field 'household_id': refers to households 'H99', not in households"),
])
def test_a_bad_case_row_stops_the_run_with_one_message_naming_file_feature_and_field(tiny_run, tmp_path, column, value,
                                                                                       message):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_run[0], folder)
    table = tiny_cases(tiny_run[0])
    table.loc[0, column] = value
    table.to_csv(folder / "cases.csv", index=False)
    with pytest.raises(InputError) as raised:
        load_data(folder)
    assert str(raised.value).startswith("cases.csv: feature 0 (id=K1), ") and message in str(raised.value)
    data = load_data(folder, skip_invalid=True)  # --skip-invalid: left out and counted in rejects
    assert len(data.layers["cases"]) == 8 or column == "household_id"
    if column != "household_id":
        assert data.rejects["layer"].tolist() == ["cases"] and data.rejects["field"].tolist() == [column]


def test_a_case_table_without_points_and_gcj02_points_are_read(tiny_run, tmp_path):
    from geo.crs import wgs84_to_gcj02

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_run[0], folder)
    table = tiny_cases(tiny_run[0])
    table[table["lon"].isna()].drop(columns=["lon", "lat"]).to_csv(folder / "cases.csv", index=False)
    assert load_data(folder).layers["cases"].geometry.isna().all()  # a table: placed by household or address
    gx, gy = wgs84_to_gcj02(table["lon"].to_numpy(float), table["lat"].to_numpy(float))
    table.assign(lon=gx, lat=gy).to_csv(folder / "cases.csv", index=False)
    (folder / "gridcover.toml").write_text('[analysis]\nas_of = 2026-11-30\n[crs]\ncases = "gcj02"\n', encoding="utf-8")
    got = load_data(folder).layers["cases"].to_crs(4326)
    original = gpd.GeoSeries(shapely.points(table["lon"], table["lat"]), crs=4326)
    placed = got.geometry.notna().to_numpy()
    shift = got.geometry[placed].to_crs(UTM).distance(original[placed].to_crs(UTM))
    assert (shift < 0.05).all()  # GCJ-02 read back to WGS-84 (the iterative inverse: centimetres)


def test_the_samples_case_log_gives_the_figures_its_readme_states():
    """README's first command (no --as-of: the sample's gridcover.toml says 2026-11-30), as docs/cases.md and
    sample_geojson/README.md state its figures."""
    analysis = analyze("sample_geojson")
    s = analysis.summary["cases"]
    assert s["as_of"] == "2026-12-01T00:00:00+08:00" and s["input"] == s["judged"] == 3253
    assert s["by_urgency"] == {"general": 2813, "urgent": 139, "cross_department": 301}
    assert s["located_by"] == {"point": 1154, "household": 1325, "address": 774, "none": 0}
    assert (s["decided"], s["on_time"], s["share_on_time"]) == (3240, 3015, 0.9306)
    assert (s["overdue"], s["urgent_overdue"], s["outside_grids"]) == (11, 2, 91)
    grids = analysis.grids.set_index("id")
    red = sorted(g for g, reasons in grids["risk_reasons"].items() if "urgent_case_overdue" in reasons)
    assert red == ["G01-13", "G03-07"] and (grids.loc[red, "risk"] == "red").all()
    spots = analysis.blindspots.set_index("id")
    assert spots["cases_outside_grids"].sum() == 91  # every case outside the grids lies in a blind spot
    assert spots.loc["BS0001", "cases_outside_grids"] == 27 and "case_outside_grids" in spots.loc["BS0001", "risk_reasons"]
    out = analysis.cases
    assert "household_id" not in out.columns and out.crs.to_epsg() == 4326 and len(out) == 3253


def test_cases_in_a_year_the_calendar_does_not_hold_are_counted_and_said():
    from geo.cases import judge_cases

    located = pd.DataFrame({"id": ["A", "B", "C"], "reported_at": ["2027-01-05 09:00", "2026-12-30 09:00", "2026-12-01 09:00"],
                            "urgency": ["general", "cross_department", "general"], "grid_id": ["G1"] * 3})
    found = judge_cases(located, rules=case_rules(load_risk_config()), as_of=date(2027, 3, 1))
    assert found.uncovered_years == {2027: 2}  # A reported in 2027; B due on 4 Jan 2027; C all in 2026


def test_the_command_prints_the_cases_line_and_a_bad_as_of_in_gridcover_toml_is_refused(tiny_run, tmp_path, capsys):
    from gridcover.cli import main

    folder = tiny_run[0]
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert ("cases (to the end of 2026-11-30): 5 of 8 decided on time (62.5%); 2 open past a limit (1 urgent); "
            "3 outside every grid; 1 not placed") in out
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "gridcover.toml").write_text('[analysis]\nas_of = "30 Nov"\n', encoding="utf-8")
    assert main(["analyze", str(bad), "--out", str(tmp_path / "out2")]) == 2
    assert capsys.readouterr().err.strip().endswith("[analysis]: as_of must be a date YYYY-MM-DD, not '30 Nov'")
