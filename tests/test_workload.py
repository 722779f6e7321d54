"""The workload rule and the staffing checks (geo/workload.py): one definition for the scorecard, check and proposals."""

import pandas as pd
import pytest

from geo.risk import WATCHED_GROUPS
from geo.settings import Settings
from geo.workload import (FLOOR_SHARE, WEIGHTED_GROUPS, band_warning, full_time_share, grid_part_time_workers,
                          grid_staffing, grid_workers, is_over_capacity, staffing_band, staffing_summary, workload_band,
                          workload_weights)


def test_full_time_workers_come_from_the_field_else_from_a_named_worker():
    grids = pd.DataFrame({"worker_name": ["王芳", "  ", None, "李强"], "full_time_workers": [2, None, None, 0]})
    assert grid_workers(grids).tolist() == [2, 0, 0, 0]
    assert grid_workers(pd.DataFrame({"worker_name": ["王芳", ""]})).tolist() == [1, 0]


def test_a_grid_over_300_households_per_worker_or_without_a_worker_is_over_capacity():
    assert is_over_capacity([300, 301, 600, 601, 1, 0], [1, 1, 2, 2, 0, 0]).tolist() == [
        False, True, False, True, True, False]
    assert is_over_capacity([250], [1], settings=Settings(households_per_worker=200)).tolist() == [True]


def test_special_group_households_weigh_more_only_when_the_setting_says_so():
    hh = pd.DataFrame({"elderly_alone": [True, False, False, False], "child_in_difficulty": [False, True, False, False],
                       "mental_disorder": [False, False, False, False], "migrant": [False, False, True, False]})
    assert workload_weights(hh).tolist() == [1.0, 1.0, 1.0, 1.0]  # default: off
    assert workload_weights(hh, settings=Settings(special_group_weight=2.0)).tolist() == [2.0, 2.0, 1.0, 1.0]
    assert WEIGHTED_GROUPS == WATCHED_GROUPS  # the groups with visit rules; migrants are not weighed


def test_the_setting_is_read_from_a_data_folder_like_the_others():
    assert Settings().with_overrides({"special_group_weight": 1.5}).special_group_weight == 1.5


def test_the_default_band_keeps_a_grid_within_the_rule():
    assert workload_band(1) == (150, 300) and workload_band(2) == (300, 600)
    assert workload_band(1)[0] == pytest.approx(FLOOR_SHARE * 300)
    # half the households weighing 2: the mean weight is 1.5, so 200 households make 300
    assert workload_band(1, mean_weight=1.5) == (100, 200)


def test_a_communitys_band_assumes_the_workers_of_its_typical_staffed_grid():
    grids = pd.DataFrame({"worker_name": ["甲", "乙", "丙", "丁", ""], "full_time_workers": [3, 2, 1, 2, 0]})
    assert staffing_band(grids, pd.DataFrame(index=range(5))) == ((300, 600), 2)  # lower median of 1, 2, 2, 3
    assert staffing_band(grids.iloc[[2]], pd.DataFrame(index=range(5)))[1] == 1  # nobody staffed: one worker
    hh = pd.DataFrame({"elderly_alone": [True, False]})
    assert staffing_band(grids, hh, settings=Settings(special_group_weight=3.0)) == ((150, 300), 2)


def test_a_band_above_the_rule_gets_a_warning():
    line = band_warning((300, 500), 1)
    assert "300-500" in line and "above the workload rule (300 per worker)" in line
    assert band_warning((300, 500), 2) is None and band_warning((150, 300), 1) is None


def test_yi_ge_san_yuan_names_the_missing_roles():
    grids = pd.DataFrame({"worker_name": ["甲", "乙", "", "丁"], "full_time_workers": [1, 2, 0, 1],
                          "info_officer_name": ["信", None, "信", " "], "mediator_name": ["调", "调", "", None]})
    st = grid_staffing(grids)
    assert st["staff_missing"].tolist() == ["", "info_officer", "full_time_worker,mediator", "info_officer,mediator"]
    assert st["staffing_complete"].tolist() == [True, False, False, False]
    assert st["part_time_officers"].tolist() == [2, 1, 1, 0]
    assert grid_staffing(pd.DataFrame({"worker_name": ["甲"]}))["staff_missing"].tolist() == ["info_officer,mediator"]


def test_the_full_time_share_counts_full_and_part_time_grid_workers_only():
    # 网格员专职化比例: full-time ÷ (full-time + part-time grid workers); a grid of 一格三员 has no part-time
    # grid worker (its information officer and mediator are not grid workers), so its share is 100%
    assert full_time_share([1], [0]) == 1.0
    assert full_time_share([2, 2], [0, 1]) == 0.8
    assert full_time_share([1, 1], [1, 1]) == 0.5
    assert full_time_share([], []) is None
    grids = pd.DataFrame({"workers": [1, 2], "part_time_officers": [2, 2], "part_time_workers": [1, None],
                          "staffing_complete": [True, True], "staff_missing": ["", ""]})
    assert grid_part_time_workers(grids).tolist() == [1, 0]
    summary = staffing_summary(grids)
    assert (summary["part_time_workers"], summary["part_time_officers"], summary["full_time_share"]) == (1, 4, 0.75)
