"""Risk: each reason code, the three colours by the plan's meaning, registration, the scorecard."""

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import ConfigError
from geo.reach import load_config
from geo.risk import REASONS, build_scorecard, building_registration, grid_risk, household_risk, load_risk_config
from gridcover.io.folder import read_rule_files
from geo.settings import Settings

CATS = load_config()
CFG = load_risk_config(categories=CATS)
TODAY = date(2026, 11, 29)


def _households(rows):
    base = {"status": "ok", "grid_id": "G1", "community_id": "C1", "street_id": "S1", "building_id": "B1",
            "persons": 2, "last_visit": "2026-11-27", "elderly_alone": False, "child_in_difficulty": False,
            "mental_disorder": False, "migrant": False, "rental": False, "old_estate": False, "fringe": False}
    return pd.DataFrame([{**base, **r} for r in rows])


def _reach(n, *, basic=True, elderly_ok=True):
    frame = pd.DataFrame({"basic_complete": [basic] * n})
    for c in CATS.ids:
        frame[f"reach_{c}_min"] = 3.0
        frame[f"reach_{c}_min_elderly"] = 3.5 if elderly_ok else 20.0
    return frame


def _risk(hh, reach=None, **kw):
    return household_risk(hh, reach if reach is not None else _reach(len(hh)), over_capacity_grids=kw.get("over", set()),
                          under_registered=kw.get("under", set()), config=CFG, reference_date=TODAY, categories=CATS)


def test_a_household_with_nothing_wrong_has_no_risk():
    r = _risk(_households([{}]))
    assert r.loc[0, "risk"] == "none" and list(r.loc[0, "risk_reasons"]) == [] and r.loc[0, "served"]


@pytest.mark.parametrize("row,reason", [
    ({"status": "outside_all_grids", "grid_id": None}, "no_grid"),
    ({"status": "in_overlapping_grids"}, "overlapping_grids"),
    ({"grid_id": "G9"}, "grid_over_capacity"),
    ({"building_id": "B7"}, "unregistered_building"),
    ({"elderly_alone": True, "last_visit": "2026-11-01"}, "visit_overdue"),
    ({"child_in_difficulty": True, "last_visit": "2026-11-10"}, "visit_overdue"),
])
def test_each_reason_code(row, reason):
    r = _risk(_households([row]), over={"G9"}, under={"B7"})
    assert reason in list(r.loc[0, "risk_reasons"])


def test_missing_services_and_unreached_special_groups():
    hh = _households([{}, {"elderly_alone": True}])
    r = _risk(hh, _reach(2, basic=False, elderly_ok=False))
    assert list(r.loc[0, "risk_reasons"]) == ["missing_services"] and r.loc[0, "risk"] == "blue"
    assert "special_group_unreached" in list(r.loc[1, "risk_reasons"]) and r.loc[1, "risk"] == "yellow"


def test_red_for_a_mental_disorder_unvisited_or_in_no_grid():
    hh = _households([{"mental_disorder": True, "last_visit": "2026-09-01"},
                      {"mental_disorder": True, "status": "outside_all_grids", "grid_id": None},
                      {"elderly_alone": True, "status": "outside_all_grids", "grid_id": None},
                      {"mental_disorder": True, "last_visit": "2026-11-20"}])
    assert _risk(hh)["risk"].tolist() == ["red", "red", "red", "none"]


def test_yellow_for_an_elderly_person_visited_less_than_once_a_month_blue_for_a_missed_week():
    hh = _households([{"elderly_alone": True, "last_visit": "2026-10-01"},
                      {"elderly_alone": True, "last_visit": "2026-11-15"},
                      {"elderly_alone": True, "last_visit": None}])
    r = _risk(hh)
    assert r["risk"].tolist() == ["yellow", "blue", "yellow"]  # never visited counts as a long gap
    assert r["visit_overdue"].tolist() == [True, True, True]


def test_an_ordinary_household_needs_no_visit():
    r = _risk(_households([{"last_visit": None}]))
    assert not r.loc[0, "visit_overdue"]


def test_grid_risk_is_the_worst_colour_with_counts():
    hh = _households([{}, {"mental_disorder": True, "last_visit": None}, {"grid_id": "G2"}])
    r = _risk(hh)
    g = grid_risk(np.array(["G1", "G2", "G3"]), hh, risk=r).set_index(pd.Index(["G1", "G2", "G3"]))
    assert g.loc["G1", "risk"] == "red" and g.loc["G1", "red_households"] == 1
    assert g.loc["G2", "risk"] == "none" and g.loc["G3", "risk"] == "none"


def test_registration_flags_empty_and_thin_residential_buildings():
    b = gpd.GeoDataFrame({"id": ["B1", "B2", "B3", "B4"], "floors": [6, 6, 6, None], "residential": [True, True, False, True]},
                         geometry=[shapely.box(0, 0, 20, 30)] * 4, crs="EPSG:32648")
    # 6 floors x 600 m² x 0.75 / 90 m² = 30 flats
    hh_building = np.array(["B1"] * 20 + ["B2"] * 10 + ["B4"] * 3, dtype=object)
    reg = building_registration(b, hh_building, config=CFG).set_index("id")
    assert reg.loc["B1", "estimated_flats"] == 30 and not reg.loc["B1", "under_registered"]
    assert reg.loc["B2", "under_registered"]  # 10 of 30
    assert not reg.loc["B3", "under_registered"]  # not residential
    assert not reg.loc["B4", "under_registered"]  # floors unknown: no estimate, but it has records


def test_scorecard_rows_against_the_plans_targets():
    hh = _households([{"elderly_alone": True}, {"elderly_alone": True, "last_visit": "2026-10-01"},
                      {"old_estate": True}, {"old_estate": True, "status": "outside_all_grids", "grid_id": None}])
    r = _risk(hh)
    grids = pd.DataFrame({"id": ["G1"], "community_id": ["C1"], "workers": [1]})
    card = build_scorecard(hh, r, reach=_reach(4), grids=grids,
                           communities=pd.DataFrame({"id": ["C1"], "name": ["一社区"], "street_id": ["S1"]}),
                           streets=pd.DataFrame({"id": ["S1"], "name": ["测试街道"]}), config=CFG)
    row = card[(card["level"] == "community") & (card["indicator"] == "special_groups_served")].iloc[0]
    assert (row["value"], row["target"], row["pass"]) == (0.5, 0.98, False)
    weak = card[(card["level"] == "street") & (card["indicator"] == "weak_areas_served")].iloc[0]
    assert weak["value"] == 0.5 and weak["numerator"] == 1 and weak["denominator"] == 2
    load = card[(card["level"] == "community") & (card["indicator"] == "households_per_worker")].iloc[0]
    assert load["value"] == 4 and load["pass"]
    migrants = card[card["indicator"] == "migrants_registered"].iloc[0]
    assert pd.isna(migrants["value"]) and "not measured" in migrants["note"]


def test_scorecard_measures_full_time_share_and_weighted_workload():
    hh = _households([{"elderly_alone": True}, {}, {}, {}])
    grids = pd.DataFrame({"id": ["G1", "G2"], "community_id": ["C1", "C1"], "workers": [2, 1],
                          "part_time_workers": [1, 0], "part_time_officers": [2, 2]})
    comms = pd.DataFrame({"id": ["C1"], "name": ["一社区"], "street_id": ["S1"]})
    streets = pd.DataFrame({"id": ["S1"], "name": ["测试街道"]})
    card = build_scorecard(hh, _risk(hh), reach=_reach(4), grids=grids, communities=comms, streets=streets, config=CFG)
    share = card[(card["level"] == "street") & (card["indicator"] == "full_time_share")].iloc[0]
    # 3 full-time among 4 grid workers (one part-time 兼职网格员): 75%, below the plan's 80%; the four part-time
    # officers (信息员, 调解员) are not grid workers and do not count
    assert (share["value"], share["target"], share["pass"]) == (0.75, 0.8, False)
    assert (share["numerator"], share["denominator"]) == (3, 4)
    # grids staffed exactly as 一格三员 (1 full-time + 2 part-time officers) are fully professional: 100%
    plain = build_scorecard(hh, _risk(hh), reach=_reach(4), grids=grids.drop(columns="part_time_workers"),
                            communities=comms, streets=streets, config=CFG)
    share = plain[(plain["level"] == "community") & (plain["indicator"] == "full_time_share")].iloc[0]
    assert (share["value"], share["pass"], share["denominator"]) == (1.0, True, 3)
    load = card[(card["level"] == "community") & (card["indicator"] == "households_per_worker")].iloc[0]
    assert (load["value"], load["target"], load["numerator"]) == (round(4 / 3, 1), 300, 4)
    weighed = build_scorecard(hh, _risk(hh), reach=_reach(4), grids=grids, communities=comms, streets=streets, config=CFG,
                        settings=Settings(special_group_weight=4.0, households_per_worker=2))
    load = weighed[(weighed["level"] == "community") & (weighed["indicator"] == "households_per_worker")].iloc[0]
    # the elderly household counts 4: (4 + 3) / 3 workers = 2.3 against a standard of 2
    assert (load["value"], load["target"], load["pass"]) == (2.3, 2, False)


def test_rules_come_from_an_editable_file(tmp_path):
    text = (tmp_path / "risk.toml")
    text.write_text('[visits]\nelderly_alone = 3\n[group_services]\nelderly_alone = ["nope"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="nope"):
        load_risk_config(**read_rule_files(tmp_path)["risk.toml"], categories=CATS)
    text.write_text('[visits]\nelderly_alone = 3\n', encoding="utf-8")
    assert load_risk_config(**read_rule_files(tmp_path)["risk.toml"]).visits == {"elderly_alone": 3}


def test_reason_codes_are_the_documented_ones():
    assert REASONS == ("no_grid", "overlapping_grids", "grid_over_capacity", "missing_services",
                       "special_group_unreached", "visit_overdue", "unregistered_building")


# ---- with visit records (the visits layer): the calendar rules of [visit_rules] --------------------------

def _judged(rows):
    """Households as the pipeline gives them with visit records: judged, periods, kept, last period missed."""
    base = {"visit_judged": True, "visit_periods": 12, "visit_periods_kept": 12, "visit_last_missed": False,
            "never_visited": False, "long_visit_gap": False}
    return _households([{**base, **r} for r in rows])


def test_with_records_overdue_means_the_last_completed_period_was_missed():
    # an old last_visit alone no longer makes an elderly person overdue: the calendar periods decide
    hh = _judged([{"elderly_alone": True, "last_visit": "2026-10-01"},
                  {"elderly_alone": True, "visit_last_missed": True, "visit_periods_kept": 11},
                  {"elderly_alone": True, "visit_periods_kept": 3}])  # many weeks missed, but not the last one
    r = _risk(hh)
    assert r["visit_overdue"].tolist() == [False, True, False]
    assert r["risk"].tolist() == ["none", "blue", "none"]


def test_with_records_a_mental_disorder_that_missed_its_month_is_red_as_before():
    r = _risk(_judged([{"mental_disorder": True, "visit_last_missed": True}]))
    assert r.loc[0, "risk"] == "red" and "visit_overdue" in list(r.loc[0, "risk_reasons"])


def test_with_records_the_elderly_long_missing_service_is_four_weeks_without_a_home_visit():
    hh = _judged([{"elderly_alone": True, "long_visit_gap": True, "visit_last_missed": True},
                  {"elderly_alone": True, "last_visit": "2026-09-01"},  # phoned lately: last_visit is not the test
                  {"child_in_difficulty": True, "last_visit": "2026-09-01"},  # no long_visit_gap rule: days as before
                  {"child_in_difficulty": True, "visit_judged": False, "last_visit": None}])  # not judged: no gap
    r = _risk(hh)
    assert r["long_visit_gap"].tolist() == [True, False, True, False]
    assert r["risk"].tolist() == ["yellow", "none", "yellow", "none"]


def test_the_scorecard_measures_visits_on_time_over_the_periods_against_the_plans_100_percent():
    hh = _judged([{"elderly_alone": True, "visit_periods": 12, "visit_periods_kept": 9},
                  {"elderly_alone": True, "visit_periods": 12, "visit_periods_kept": 12},
                  {"visit_judged": False, "visit_periods": None, "visit_periods_kept": None}])
    card = build_scorecard(hh, _risk(hh), reach=_reach(3), grids=pd.DataFrame({"id": ["G1"], "community_id": ["C1"],
                                                                               "workers": [1]}),
                           communities=pd.DataFrame({"id": ["C1"], "name": ["一社区"], "street_id": ["S1"]}),
                           streets=pd.DataFrame({"id": ["S1"], "name": ["测试街道"]}), config=CFG)
    row = card[(card["level"] == "street") & (card["indicator"] == "visits_on_time")].iloc[0]
    assert (row["numerator"], row["denominator"], row["value"], row["target"], row["pass"]) == (21, 24, 0.875, 1.0, False)


def test_the_visit_rules_of_a_risk_file_are_checked_when_it_is_read():
    with pytest.raises(ConfigError, match=r"risk.toml: \[visit_rules.elderly_alone\] period: 'week' is not a period"):
        load_risk_config(b'[visit_rules.elderly_alone]\nperiod = "week"\nat_least = 1\n', source="risk.toml")
    assert CFG.visit_rules.by_group["child_in_difficulty"].at_least == 2 and CFG.targets["visits_on_time"] == 1.0
