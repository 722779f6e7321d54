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
