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
