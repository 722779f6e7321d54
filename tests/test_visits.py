"""Visit records against the calendar rules (geo/visits.py), on hand-made calendars.

Dates used: 2026-11-29 is a Sunday, 2026-11-30 a Monday; 2026 has 53 ISO weeks (W53 = 2026-12-28 to
2027-01-03); 2028 is a leap year (29 February is a Tuesday).
"""

from __future__ import annotations

import doctest
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geo.visits
from geo.errors import ConfigError, InputError
from geo.visits import (completed_periods, evaluate_visits, local_dates, order_visit_list, parse_visit_rules,
                        share_periods_kept, validate_visits, visit_input_error, visits_due)

ROOT = Path(__file__).resolve().parents[1]
WEEKLY = {"elderly_alone": {"period": "iso_week", "at_least": 1}}
RULES = parse_visit_rules({
    "elderly_alone": {"period": "iso_week", "at_least": 1},
    "child_in_difficulty": {"period": "month", "at_least": 2},
    "mental_disorder": {"period": "month", "at_least": 1, "kinds": ["home", "phone"]},
})


def _households(**groups):
    """Households H1.. with the given group flags (lists of booleans)."""
    n = len(next(iter(groups.values())))
    return pd.DataFrame({"id": [f"H{i + 1}" for i in range(n)], **groups})


def _visits(rows):
    """Visit rows as (household_id, visited_at[, kind])."""
    return pd.DataFrame({"household_id": [r[0] for r in rows], "visited_at": [r[1] for r in rows],
                         "worker": "王芳", "kind": [r[2] if len(r) > 2 else "home" for r in rows]})


def _row(result, household="H1", group=None):
    frame = result.by_group if group else result.households
    mask = frame["household_id"].eq(household) & (frame["group"].eq(group) if group else True)
    return frame[mask].iloc[0]


def test_the_module_examples_run():
    assert doctest.testmod(geo.visits, optionflags=doctest.ELLIPSIS).failed == 0


# --- rules -------------------------------------------------------------------------------------------------

def test_the_built_in_rules_are_the_plans_figures():
    table = tomllib.loads((ROOT / "geo" / "risk.toml").read_text(encoding="utf-8"))
    rules = parse_visit_rules(table["visit_rules"], source="geo/risk.toml")
    weekly, child, mental = (rules.by_group[g] for g in ("elderly_alone", "child_in_difficulty", "mental_disorder"))
    assert (weekly.period, weekly.at_least, weekly.kinds) == ("iso_week", 1, ("home",))
    assert (child.period, child.at_least) == ("month", 2)
    assert (mental.period, mental.at_least) == ("month", 1)
    assert rules.zone == "Asia/Shanghai" and rules.long_gap_weeks == 4
    assert table["visits"]["elderly_alone"] == 7  # the old table still serves data without records


@pytest.mark.parametrize("table, where", [
    ({"elderly_alone": {"period": "week", "at_least": 1}}, "[visit_rules.elderly_alone] period: 'week'"),
    ({"elderly_alone": {"period": "iso_week", "at_least": 0}}, "[visit_rules.elderly_alone] at_least: must be"),
    ({"elderly_alone": {"period": "iso_week", "at_least": 1.5}}, "[visit_rules.elderly_alone] at_least"),
    ({"elderly_alone": {"period": "iso_week"}}, "[visit_rules.elderly_alone] at_least: missing"),
    ({"elderly_alone": {"period": "iso_week", "at_least": 1, "kinds": ["sms"]}}, "[visit_rules.elderly_alone] kinds"),
    ({"elderly_alone": {"period": "iso_week", "at_least": 1, "kinds": "phone"}}, "[visit_rules.elderly_alone] kinds"),
    ({"elderly_alone": {"period": "iso_week", "at_least": 1, "every": 7}}, "[visit_rules.elderly_alone] every: unknown key"),
    ({"pensioner": {"period": "month", "at_least": 1}}, "[visit_rules.pensioner]: not a special group"),
    ({"elderly_alone": 7}, "[visit_rules.elderly_alone]: must be a table"),
    ({"time_zone": "Mars/Olympus"}, "[visit_rules] time_zone: 'Mars/Olympus' is not a time zone"),
    ({"long_gap_weeks": 0}, "[visit_rules] long_gap_weeks"),
])
def test_a_bad_rule_is_a_config_error_naming_the_table_and_key(table, where):
    with pytest.raises(ConfigError) as err:
        parse_visit_rules(table, source="data/risk.toml")
    assert str(err.value).startswith("data/risk.toml: ")
    assert where in str(err.value)


# --- local dates and periods ---------------------------------------------------------------------------------

def test_local_dates_sunday_2359_is_sunday_and_a_utc_time_can_be_monday_in_shanghai():
    days = local_dates(pd.Series(["2026-11-29 23:59", "2026-11-30 00:00", "2026-11-29T16:30:00Z",
                                  "2026-11-29T15:59:00+00:00", "2026-11-29T23:59:59+08:00", "2026-11-29"]))
    assert days.dt.strftime("%Y-%m-%d").tolist() == ["2026-11-29", "2026-11-30", "2026-11-30",
                                                     "2026-11-29", "2026-11-29", "2026-11-29"]
    assert local_dates(pd.Series(["2026-11-29T16:30:00Z"]), zone="UTC").dt.strftime("%a").tolist() == ["Sun"]


def test_local_dates_of_a_time_zone_aware_column_are_converted():
    aware = pd.Series(pd.to_datetime(["2026-11-29T16:30:00Z", "2026-11-29T15:00:00Z"], utc=True))
    assert local_dates(aware).dt.strftime("%d").tolist() == ["30", "29"]


def test_a_week_53_year_has_its_week_53():
    weeks = completed_periods("iso_week", "2027-01-10", window_weeks=3)
    assert weeks["label"].tolist() == ["2026-W52", "2026-W53", "2027-W01"]
    assert weeks["first"].dt.strftime("%Y-%m-%d").tolist()[1] == "2026-12-28"
    households = _households(elderly_alone=[True])
    # Saturday 2 January 2027 lies in 2026-W53, so that week is kept; 2027-W01 (4-10 January) is not.
    result = evaluate_visits(households, _visits([("H1", "2027-01-02 18:00"), ("H1", "2026-12-21")]),
                             rules=RULES, as_of="2027-01-10", window_weeks=3)
    assert (_row(result)["periods"], _row(result)["periods_kept"]) == (3, 2)


def test_the_window_holds_the_periods_that_end_by_as_of_and_start_inside_it():
    # 12 weeks ending Monday 30 November 2026: 8 September .. 30 November; the week of 30 November is not over.
    weeks = completed_periods("iso_week", "2026-11-30", window_weeks=12)
    assert len(weeks) == 11 and weeks["last"].max() == pd.Timestamp("2026-11-29")
    # ending Sunday 29 November: exactly twelve weeks.
    assert len(completed_periods("iso_week", "2026-11-29", window_weeks=12)) == 12
    # November ends on 30 November: complete on that day, not on the 29th; October starts inside the window.
    assert completed_periods("month", "2026-11-30")["label"].tolist() == ["2026-10", "2026-11"]
    assert completed_periods("month", "2026-11-29")["label"].tolist() == ["2026-10"]


# --- evaluate ----------------------------------------------------------------------------------------------

def test_a_visit_at_sunday_2359_keeps_that_week_and_one_at_monday_0000_the_next():
    households = _households(elderly_alone=[True, True, True])
    visits = _visits([("H1", "2026-11-29 23:59"), ("H2", "2026-11-30 00:00"), ("H3", "2026-11-29T16:30:00Z")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29", window_weeks=1)
    assert result.households.set_index("household_id")["periods_kept"].to_dict() == {"H1": 1, "H2": 0, "H3": 0}
    # the Monday visits are after as_of (the end of Sunday): not counted, not "visited" either
    assert result.households.set_index("household_id")["never_visited"].to_dict() == {"H1": False, "H2": True,
                                                                                      "H3": True}
    later = evaluate_visits(households, visits, rules=RULES, as_of="2026-12-06", window_weeks=1)
    assert later.households.set_index("household_id")["periods_kept"].to_dict() == {"H1": 0, "H2": 1, "H3": 1}


def test_month_boundaries_in_local_time():
    households = _households(child_in_difficulty=[True, True])
    visits = _visits([("H1", "2026-11-30 23:59"), ("H1", "2026-11-02"),
                      ("H2", "2026-11-02"), ("H2", "2026-11-30T16:00:00Z")])  # 1 December 00:00 in Shanghai
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-30", window_weeks=5)
    assert result.households.set_index("household_id")[["periods", "periods_kept", "visits_done"]].values.tolist() \
        == [[1, 1, 2], [1, 0, 1]]


def test_leap_day_closes_february_2028():
    households = _households(child_in_difficulty=[True])
    visits = _visits([("H1", "2028-02-01"), ("H1", "2028-02-29 23:59")])
    on_the_day = evaluate_visits(households, visits, rules=RULES, as_of="2028-02-29", window_weeks=5)
    months = on_the_day.periods[on_the_day.periods["group"] == "child_in_difficulty"]
    assert months["label"].tolist() == ["2028-02"] and months["last"].iloc[0] == pd.Timestamp("2028-02-29")
    assert _row(on_the_day)["periods_kept"] == 1
    assert _row(on_the_day)["next_visit_due"] == pd.Timestamp("2028-03-31")
    day_before = evaluate_visits(households, visits, rules=RULES, as_of="2028-02-28", window_weeks=5)
    assert day_before.periods.query("group == 'child_in_difficulty'").empty
    assert _row(day_before)["next_visit_due"] == pd.Timestamp("2028-02-29")


def test_a_household_in_two_groups_is_judged_by_each_and_summed():
    households = _households(elderly_alone=[True], child_in_difficulty=[True])
    # weeks of November 2026 (2-8, 9-15, 16-22, 23-29): visits in the first two; two in November for the child
    visits = _visits([("H1", "2026-11-03"), ("H1", "2026-11-10")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-30", window_weeks=5)
    assert _row(result, group="elderly_alone")[["periods", "periods_kept", "visits_done"]].tolist() == [4, 2, 2]
    assert _row(result, group="child_in_difficulty")[["periods", "periods_kept", "visits_done"]].tolist() == [1, 1, 2]
    whole = _row(result)
    assert whole["groups"] == "elderly_alone,child_in_difficulty"
    assert whole[["visits_required", "visits_done", "periods", "periods_kept", "periods_missed"]].tolist() \
        == [6, 4, 5, 3, 2]
    assert len(result.households) == 1


def test_a_phone_call_does_not_count_for_the_elderly_but_does_where_the_rule_says_so():
    households = _households(elderly_alone=[True, False], mental_disorder=[False, True])
    visits = _visits([("H1", "2026-11-25", "phone"), ("H2", "2026-11-25", "电话")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-30", window_weeks=5)
    assert _row(result, "H1", "elderly_alone")["periods_kept"] == 0
    assert _row(result, "H2", "mental_disorder")["periods_kept"] == 1
    assert not _row(result, "H1")["never_visited"]  # a phone call is a record: not "never visited"
    assert pd.isna(_row(result, "H1", "elderly_alone")["last_visit"])  # but no visit that counts
    assert _row(result, "H1")["last_visit"] == pd.Timestamp("2026-11-25")
    assert _row(result, "H1")["long_visit_gap"]  # and no home visit for four weeks: yellow


def test_a_household_without_records_is_never_visited_and_misses_every_period():
    households = _households(elderly_alone=[True, True], migrant=[False, True])
    result = evaluate_visits(households, _visits([("H1", "2026-11-23")]), rules=RULES, as_of="2026-11-29")
    h2 = _row(result, "H2")
    assert h2["never_visited"] and h2["long_visit_gap"]
    assert (h2["periods"], h2["periods_kept"], h2["periods_missed"], h2["visits_done"]) == (12, 0, 12, 0)
    assert pd.isna(h2["last_visit"]) and h2["next_visit_due"] == pd.Timestamp("2026-12-06")
    assert not _row(result, "H1")["long_visit_gap"]


def test_the_long_gap_is_four_completed_iso_weeks_and_the_current_week_without_a_home_visit():
    households = _households(elderly_alone=[True, True, True])
    # as of Wednesday 2 December: the four completed weeks are 2-29 November; the current week began on 30 November
    visits = _visits([("H1", "2026-11-02"), ("H2", "2026-11-01"), ("H3", "2026-12-01")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-12-02")
    assert result.households.set_index("household_id")["long_visit_gap"].to_dict() == {"H1": False, "H2": True,
                                                                                       "H3": False}


def test_households_in_no_rule_group_are_not_listed_and_visits_after_as_of_are_ignored():
    households = _households(elderly_alone=[True, False], rental=[False, True])
    visits = _visits([("H1", "2026-12-25"), ("H2", "2026-11-25")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29")
    assert result.households["household_id"].tolist() == ["H1"]
    assert _row(result)["never_visited"]


def test_the_share_of_periods_kept_per_grid_counts_each_groups_periods():
    households = _households(elderly_alone=[True, True, True], child_in_difficulty=[True, False, False])
    households["grid_id"] = ["G1", "G1", "G2"]
    visits = _visits([("H1", "2026-11-03"), ("H1", "2026-11-10"), ("H2", "2026-11-24")])
    result = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-30", window_weeks=5)
    shares = share_periods_kept(result.households, households, unit="grid_id").set_index("grid_id")
    # G1: H1 kept 2 of 4 weeks and 1 of 1 month, H2 1 of 4 weeks → 4 of 9; G2: H3 never visited → 0 of 4
    assert shares.loc["G1", ["households", "periods", "periods_kept"]].tolist() == [2, 9, 4]
    assert shares.loc["G1", "share_kept"] == round(4 / 9, 4)
    assert shares.loc["G2", ["periods_kept", "share_kept", "never_visited"]].tolist() == [0, 0.0, 1]


# --- due and overdue ---------------------------------------------------------------------------------------

def test_on_the_monday_after_a_missed_week_the_household_is_overdue_by_one_day():
    households = _households(elderly_alone=[True, True])
    visits = _visits([("H1", "2026-11-16"), ("H2", "2026-11-16"), ("H2", "2026-11-30 08:10")])
    due = visits_due(households, visits, rules=RULES, date="2026-11-30")
    assert due["household_id"].tolist() == ["H1"]  # H2 was visited this morning: nothing owed
    row = due.iloc[0]
    assert (row["state"], row["overdue_days"], row["periods_missed"]) == ("overdue", 1, 1)
    assert row["overdue_since"] == pd.Timestamp("2026-11-30")
    assert (row["visits_needed"], row["period_end"], row["days_left"]) == (1, pd.Timestamp("2026-12-06"), 7)
    assert row["last_visit"] == pd.Timestamp("2026-11-16")


def test_an_unbroken_run_of_missed_weeks_dates_the_overdue():
    households = _households(elderly_alone=[True])
    # visited in the week of 2 November, then nothing: weeks of 9, 16, 23 November missed
    due = visits_due(households, _visits([("H1", "2026-11-05")]), rules=RULES, date="2026-12-02")
    row = due.iloc[0]
    assert (row["periods_missed"], row["overdue_since"], row["overdue_days"]) == (3, pd.Timestamp("2026-11-16"), 17)


def test_a_weekly_visit_becomes_due_on_thursday():
    households = _households(elderly_alone=[True])
    visits = _visits([("H1", "2026-11-27")])  # week of 23 November kept; nothing yet in the week of 30 November
    for day, listed in (("2026-12-02", False), ("2026-12-03", True), ("2026-12-06", True)):
        due = visits_due(households, visits, rules=RULES, date=day)
        assert (len(due) == 1) is listed, day
    row = visits_due(households, visits, rules=RULES, date="2026-12-03").iloc[0]
    assert (row["state"], row["days_left"], row["visits_needed"], row["overdue_days"]) == ("due", 4, 1, 0)


def test_a_child_needing_two_visits_is_due_when_fourteen_days_are_left():
    households = _households(child_in_difficulty=[True, True])
    visits = _visits([("H1", "2026-10-05"), ("H1", "2026-10-20"), ("H2", "2026-10-05"), ("H2", "2026-10-20"),
                      ("H2", "2026-11-02")])
    assert visits_due(households, visits, rules=RULES, date="2026-11-16").empty  # 15 days left
    due = visits_due(households, visits, rules=RULES, date="2026-11-17").set_index("household_id")  # 14 left
    assert due.index.tolist() == ["H1"]
    assert due.loc["H1", ["state", "visits_needed", "days_left"]].tolist() == ["due", 2, 14]
    later = visits_due(households, visits, rules=RULES, date="2026-11-24").set_index("household_id")  # 7 left
    assert later.loc["H2", ["state", "visits_needed"]].tolist() == ["due", 1]


def test_on_leap_day_a_child_still_owed_a_visit_has_one_day_left():
    households = _households(child_in_difficulty=[True])
    visits = _visits([("H1", "2028-01-10"), ("H1", "2028-01-20"), ("H1", "2028-02-03")])
    row = visits_due(households, visits, rules=RULES, date="2028-02-29").iloc[0]
    assert (row["state"], row["days_left"], row["period_end"]) == ("due", 1, pd.Timestamp("2028-02-29"))
    overdue = visits_due(households, visits, rules=RULES, date="2028-03-01").iloc[0]
    assert (overdue["state"], overdue["overdue_days"], overdue["visits_needed"]) == ("overdue", 1, 2)


def test_a_worker_list_puts_red_first_then_overdue_days_then_group():
    households = _households(elderly_alone=[True, True, False, True], mental_disorder=[False, False, True, True])
    households["risk"] = ["yellow", "yellow", "red", "blue"]
    visits = _visits([("H2", "2026-11-10"), ("H3", "2026-10-05"), ("H4", "2026-10-20")])
    tasks = visits_due(households, visits, rules=RULES, date="2026-12-04")
    ordered = order_visit_list(tasks)
    # H3 red (4 days overdue); then H1 (never visited: 75 days, the whole lookback) and H2 (12 days); H4 blue
    # last, its two rows together, the more overdue first (elderly alone 33 days, mental disorder 4)
    assert ordered[["household_id", "group", "overdue_days"]].values.tolist() == [
        ["H3", "mental_disorder", 4], ["H1", "elderly_alone", 75], ["H2", "elderly_alone", 12],
        ["H4", "elderly_alone", 33], ["H4", "mental_disorder", 4]]
    assert ordered["risk"].tolist() == ["red", "yellow", "yellow", "blue", "blue"]


# --- validation --------------------------------------------------------------------------------------------

def test_each_bad_row_is_rejected_with_its_row_field_and_reason():
    visits = pd.DataFrame({
        "household_id": ["H1", "", "H9", "H1", "H1", "H1", "H1", "H1"],
        "visited_at": ["2026-11-30 09:00", "2026-11-30", "2026-11-30", None, "30/11/2026", "2026-11-30", "2026-11-30",
                       "2026-11-30T09:00+08:00"],
        "worker": ["王芳", "王芳", "王芳", "王芳", "王芳", "  ", "王芳", "王芳"],
        "kind": ["入户", "home", "home", "home", "home", "home", "walk", None],
        "note": ["ok", None, None, None, None, None, None, "evening"],
    })
    check = validate_visits(visits, pd.Series(["H1", "H2"]), file="visits.csv")
    assert check.rejects[["feature", "field"]].values.tolist() == [
        [1, "household_id"], [2, "household_id"], [3, "visited_at"], [4, "visited_at"], [5, "worker"], [6, "kind"]]
    reasons = check.rejects["reason"].tolist()
    assert reasons[0] == "is empty but required"
    assert reasons[1] == "refers to households 'H9', not in households"
    assert reasons[2] == "is empty but required"
    assert reasons[3].startswith("not a date or date-time") and "'30/11/2026'" in reasons[3]
    assert reasons[4] == "is empty but required"
    assert reasons[5] == "not a visit kind (home, phone, other): 'walk'"
    assert list(check.rejects.columns[:5]) == ["layer", "id", "field", "reason", "feature"]
    assert set(check.rejects["layer"]) == {"visits"} and check.rejects.crs.to_epsg() == 4326
    assert check.rejects.loc[5, ["worker", "kind", "note"]].tolist() == ["王芳", "walk", None]  # the row as given
    clean = check.visits
    assert clean["feature"].tolist() == [0, 7] and clean["kind"].tolist() == ["home", "home"]
    assert clean["visited_on"].dt.strftime("%Y-%m-%d").tolist() == ["2026-11-30", "2026-11-30"]
    assert len(clean) + len(check.rejects) == len(visits)  # nothing dropped without being counted
    error = visit_input_error(check.rejects, file="visits.csv")
    assert str(error) == ("visits.csv: feature 1, field 'household_id': is empty but required; "
                          "--skip-invalid would leave it out")


def test_a_missing_required_column_names_it():
    with pytest.raises(InputError) as err:
        validate_visits(pd.DataFrame({"household_id": ["H1"], "visited_at": ["2026-11-30"]}), ["H1"],
                        file="visits.csv")
    assert str(err.value).startswith("visits.csv: field 'worker': missing column")


def test_numeric_household_ids_match_text_ids():
    visits = pd.DataFrame({"household_id": [101.0, 102.0], "visited_at": ["2026-11-30", "2026-11-30"],
                           "worker": ["王芳", "王芳"]})
    check = validate_visits(visits, pd.Series(["101", "102"]))
    assert check.rejects.empty and check.visits["household_id"].tolist() == ["101", "102"]


def test_evaluate_checks_a_raw_visits_frame_and_stops_at_the_first_bad_row():
    households = _households(elderly_alone=[True])
    with pytest.raises(InputError, match="feature 1, field 'household_id': refers to households 'H7'"):
        evaluate_visits(households, _visits([("H1", "2026-11-25"), ("H7", "2026-11-25")]), rules=RULES,
                        as_of="2026-11-30")


def test_a_configured_zone_moves_the_local_date():
    households = _households(elderly_alone=[True])
    visits = _visits([("H1", "2026-11-29T16:30:00Z")])  # Monday 00:30 in Shanghai, Sunday in UTC
    shanghai = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29", window_weeks=1)
    utc = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29", window_weeks=1, zone="UTC")
    assert (_row(shanghai)["periods_kept"], _row(utc)["periods_kept"]) == (0, 1)
    with pytest.raises(ConfigError, match="not a time zone name"):
        evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29", zone="Asia/Peking-ish")


def test_no_records_and_no_rules_give_empty_answers_with_their_columns():
    households = _households(elderly_alone=[True])
    nothing = pd.DataFrame(columns=["household_id", "visited_at", "worker"])
    assert visits_due(households, nothing, rules=RULES, date="2026-11-30")["state"].tolist() == ["overdue"]
    none = parse_visit_rules({})
    result = evaluate_visits(households, nothing, rules=none, as_of="2026-11-29")
    assert result.households.empty and "periods_kept" in result.households.columns
    assert result.by_group.empty and "next_visit_due" in result.by_group.columns
    tasks = visits_due(households, nothing, rules=none, date="2026-11-30")
    assert tasks.empty and "overdue_days" in tasks.columns and order_visit_list(tasks).empty


def test_results_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    households = _households(elderly_alone=list(rng.random(50) < 0.6), child_in_difficulty=list(rng.random(50) < 0.3))
    days = pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, 100, 400), unit="D")
    visits = pd.DataFrame({"household_id": households["id"].to_numpy()[rng.integers(0, 50, 400)],
                           "visited_at": days.strftime("%Y-%m-%d %H:%M"), "worker": "李强",
                           "kind": rng.choice(["home", "phone"], 400)})
    a = evaluate_visits(households, visits, rules=RULES, as_of="2026-11-29").households
    b = evaluate_visits(households, visits.sample(frac=1, random_state=1), rules=RULES, as_of="2026-11-29").households
    pd.testing.assert_frame_equal(a, b)
