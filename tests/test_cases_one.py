"""One case by the scalar rules (geo/cases.py: urgency_of, case_time, case_deadline, evaluate_case, the calendar's
one-day methods) equals the vectorised rules to the last bit: on the sample's whole case log, on thousands of
seeded random cases around the holidays and adjusted working days, and on the edge cases a user meets."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.cases import (URGENCIES, WorkCalendar, case_deadline, case_deadlines, case_rules, case_time, case_times,
                       evaluate_case, evaluate_cases, normalise_urgency, parse_case_rules, urgency_of)
from geo.risk import load_risk_config

ROOT = Path(__file__).resolve().parents[1]
ZONE = "Asia/Shanghai"
JUDGED = ("response_due", "closure_due", "response_min", "closure_working_days", "response_on_time",
          "closure_on_time", "on_time", "overdue", "status")


@pytest.fixture(scope="module")
def rules():
    return case_rules(load_risk_config())


def _plain(value):
    """A value of evaluate_cases' frame as evaluate_case gives it (NaT/NaN/<NA> → None, Timestamp → datetime)."""
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


def _one_by_one(frame: pd.DataFrame, *, rules, as_of: pd.Timestamp) -> list[dict]:
    out = []
    for row in frame.itertuples(index=False):
        case = {"reported_at": case_time(row.reported_at, zone=rules.time_zone), "urgency": urgency_of(row.urgency),
                "accepted_at": case_time(row.accepted_at, zone=rules.time_zone),
                "closed_at": case_time(row.closed_at, zone=rules.time_zone)}
        out.append(evaluate_case(case, rules=rules, as_of=as_of.to_pydatetime()))
    return out


def assert_equal_to_the_vectorised(frame: pd.DataFrame, *, rules, as_of: pd.Timestamp) -> int:
    judged = evaluate_cases(frame, rules=rules, as_of=as_of)
    scalar = _one_by_one(frame, rules=rules, as_of=as_of)
    for i, one in enumerate(scalar):
        many = {k: _plain(judged[k].iloc[i]) for k in JUDGED}
        assert one == many, f"case {frame['id'].iloc[i]}: scalar {one} != vectorised {many}"
    return len(scalar)


def random_cases(n: int, seed: int, *, first: str = "2025-12-20", days: int = 330) -> pd.DataFrame:
    """Cases reported at any minute (some at a second, some at a microsecond) over ``days`` days from
    ``first``, each urgency, answered and closed after random delays (some never, some late)."""
    rng = np.random.default_rng(seed)
    base = pd.Timestamp(first)
    reported = base + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s")
    reported = reported + pd.to_timedelta(np.where(rng.random(n) < 0.1, rng.integers(0, 10**6, n), 0), unit="us")
    response = pd.to_timedelta(rng.choice([1, 10, 14, 15, 16, 90, 120, 121, 600, 3000], n), unit="min")
    closure = pd.to_timedelta(rng.integers(0, 12 * 86_400, n), unit="s")
    accepted = reported + response
    closed = accepted + closure
    text = lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f").to_numpy(dtype=object)  # noqa: E731
    acc, clo = text(accepted), text(closed)
    acc[rng.random(n) < 0.2] = None
    clo[rng.random(n) < 0.3] = None
    return pd.DataFrame({"id": [f"R{seed}-{i}" for i in range(n)], "reported_at": text(reported),
                         "urgency": rng.choice(list(URGENCIES), n), "accepted_at": acc, "closed_at": clo})


def test_the_samples_whole_case_log_is_judged_alike_one_by_one(rules):
    log = pd.read_csv(ROOT / "sample_geojson" / "cases.csv", dtype=str, keep_default_na=False)
    log = log.replace({"": None})
    log["urgency"] = normalise_urgency(log["urgency"]).astype(object)  # as the run reads them (一般, 紧急, 跨部门)
    for as_of in ("2026-11-30 23:59:59", "2026-06-15 12:00", "2026-01-01 00:00"):  # the end, mid-year, early
        instant = pd.Timestamp(as_of, tz=ZONE)
        assert assert_equal_to_the_vectorised(log, rules=rules, as_of=instant) == 3253


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thousands_of_random_cases_are_judged_alike_one_by_one(rules, seed):
    cases = random_cases(2000, seed)
    for as_of in ("2026-05-06 10:00", "2026-10-09 18:00", "2026-12-31 00:00"):
        assert_equal_to_the_vectorised(cases, rules=rules, as_of=pd.Timestamp(as_of, tz=ZONE))


def test_random_cases_around_the_national_day_holiday_and_its_adjusted_saturdays(rules):
    cases = random_cases(3000, 7, first="2026-09-15", days=40)  # 1-7 Oct off, Sun 20 Sep and Sat 10 Oct worked
    assert_equal_to_the_vectorised(cases, rules=rules, as_of=pd.Timestamp("2026-10-20 00:00", tz=ZONE))


@pytest.mark.parametrize("reported, urgency, due", [
    ("2026-09-30 10:00", "cross_department", "2026-10-10 10:00"),  # across the holiday, due on the worked Saturday
    ("2026-10-03 15:00", "cross_department", "2026-10-12 00:00"),  # on a holiday: Thu 8, Fri 9, worked Sat 10
    ("2026-09-20 09:00", "general", "2026-09-28 09:00"),           # on the worked Sunday; Mid-Autumn 25-27 off
    ("2026-11-28 09:00", "urgent", "2026-12-01 00:00"),            # urgent on a Saturday: the end of Monday
    ("2026-11-30 23:59:59", "urgent", "2026-12-01 23:59:59"),
    ("2026-12-31 18:00", "cross_department", "2027-01-05 18:00"),  # into 2027, not held: Monday to Friday
])
def test_the_edge_deadlines_are_the_vectorised_ones(rules, reported, urgency, due):
    one = case_deadline(case_time(reported), urgency, rules=rules)
    many = case_deadlines(pd.Series([reported]), pd.Series([urgency]), rules=rules).iloc[0]
    assert [d.isoformat() for d in one] == [d.isoformat() for d in many]
    assert one[1] == pd.Timestamp(due, tz=ZONE)


def test_working_days_between_one_pair_is_the_vectorised_count_over_a_random_calendar():
    rng = np.random.default_rng(5)
    span = pd.date_range("2026-01-01", "2026-12-31").date
    holidays = frozenset(rng.choice(span, 40, replace=False))
    weekend = [d for d in span if d.weekday() >= 5]
    calendar = WorkCalendar(holidays=holidays, workdays=frozenset(rng.choice(weekend, 8, replace=False)))
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 360 * 86_400, 3000), unit="s")
    end = start + pd.to_timedelta(rng.integers(-86_400, 40 * 86_400, 3000), unit="s")
    local = lambda t: pd.Series(t.tz_localize(ZONE))  # noqa: E731
    many = calendar.working_days_between(local(start), local(end))
    one = [calendar.working_days_between_one(s.to_pydatetime(), e.to_pydatetime()) for s, e in zip(start, end)]
    assert one == many.tolist()
    after = calendar.add_working_days(local(start), 4)
    assert [calendar.add_working_days_one(s.to_pydatetime(), 4) for s in start] == \
        [t.to_pydatetime().replace(tzinfo=None) for t in after]


def test_the_plain_time_forms_read_alike_and_others_are_left_to_the_vectorised_reader():
    plain = ["2026-11-30", "2026-11-30 09:15", "2026-11-30T09:15", "2026-11-30 09:15:07", "2026-11-30T09:15:07.5",
             "2026-11-30T09:15:07.123456", " 2026-11-30 09:15 ", "2026-11-30T01:15:00Z", "2026-11-30T09:15:00+08:00",
             "2026-11-30T09:15:00+0800", "2026-11-30T09:15:00+08", "2026-11-29T20:15:00-05:00", "2024-02-29 12:00",
             "2026-11-30T09:15:00+05:45"]
    many = case_times(pd.Series(plain))
    assert [case_time(t) for t in plain] == [t.to_pydatetime() for t in many]
    others = ["", "30/11/2026", "2026-11-30 9:15", "2026-11-30T09:15:00.123456789", "2026-02-30", "2026-11-30 24:00",
              "2026-11-30 09:15 +08:00", "tomorrow", None, 20261130]
    assert all(case_time(t) is None for t in others)
    known = case_times(pd.Series(others[:9]))
    assert known.isna().tolist() == [True, True, False, False, True, True, False, True, True]  # decided there


def test_a_clock_change_in_another_zone_is_left_to_the_vectorised_reader():
    assert case_time("2026-03-08 02:30", zone="America/New_York") is None  # does not exist
    assert case_time("2026-11-01 01:30", zone="America/New_York") is None  # happens twice
    assert case_times(pd.Series(["2026-03-08 02:30", "2026-11-01 01:30"]), zone="America/New_York").isna().all()
    assert case_time("2026-07-01 09:00", zone="America/New_York") == datetime(2026, 7, 1, 13, 0, tzinfo=timezone.utc)


def test_every_urgency_spelling_reads_alike():
    spellings = ["general", "GENERAL", " urgent ", "紧急", "加急", "一般", "普通", "跨部门", " 跨部门", "Cross-Department",
                 "cross_department", "CROSS-DEPARTMENT", "\u3000urgent", "soon", "", None, "緊急", "urgent!", "Urgent\t"]
    many = normalise_urgency(pd.Series(spellings, dtype=object)).tolist()
    assert [urgency_of(s) for s in spellings] == [None if v is pd.NA else v for v in many]


def test_a_case_without_a_limit_for_its_urgency_is_judged_alike():
    rules = parse_case_rules({"response_minutes": {"urgent": 15}, "closure_working_days": {"general": 2}})
    cases = random_cases(500, 11)
    assert_equal_to_the_vectorised(cases, rules=rules, as_of=pd.Timestamp("2026-07-01 00:00", tz=ZONE))


def test_a_time_after_as_of_has_not_happened_and_an_open_case_past_due_is_overdue(rules):
    case = {"reported_at": case_time("2026-11-30 09:00"), "urgency": "urgent",
            "accepted_at": case_time("2026-11-30 09:20"), "closed_at": None}
    before = evaluate_case(case, rules=rules, as_of=case_time("2026-11-30 09:16"))
    assert (before["status"], before["overdue"], before["response_on_time"]) == ("open", True, False)
    after = evaluate_case(case, rules=rules, as_of=case_time("2026-11-30 10:00"))
    assert (after["status"], after["response_min"], after["response_on_time"]) == ("accepted", 20.0, False)
    assert after["on_time"] is False and after["closure_on_time"] is None


def test_a_calendar_given_weekday_workdays_counts_like_the_vectorised_one():
    calendar = WorkCalendar(holidays=frozenset({date(2026, 5, 1), date(2026, 5, 4)}),
                            workdays=frozenset({date(2026, 5, 4), date(2026, 5, 9)}))
    days = pd.date_range("2026-04-25", "2026-05-20").date
    assert [calendar.working_day(d) for d in days] == calendar.is_working_day(np.array(days, "datetime64[D]")).tolist()
    for first in days:
        for last in days:
            expected = np.busday_count(first, last, busdaycal=calendar._busdaycal(np.datetime64(days[0]),
                                                                                    np.datetime64(days[-1])))
            assert calendar.working_days_count(first, last) == max(int(expected), 0)
    assert calendar.add_working_days_one(datetime(2026, 4, 30, 9), 1) == datetime(2026, 5, 4, 9)
