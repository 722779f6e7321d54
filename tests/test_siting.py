"""Where to add a service: exact and greedy answers, their bounds, and the effect of each site."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from geo.siting import _merge_alike_demand, plan_sites, solve_max_cover


def _brute_force(cover, weight, k):
    dense = cover.toarray()
    best = 0.0
    for sites in itertools.combinations(range(dense.shape[0]), k):
        best = max(best, float(weight[dense[list(sites)].any(axis=0)].sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_exact_answer_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    cover = sp.csr_matrix(rng.random((12, 40)) < 0.15)
    weight = rng.integers(1, 6, 40).astype(float)
    plan = solve_max_cover(cover, weight, 3)
    assert plan.method == "exact"
    assert plan.covered_weight == pytest.approx(_brute_force(cover, weight, 3))
    assert len(plan.sites) == 3 and len(set(plan.sites)) == 3


def test_large_problems_are_greedy_with_a_valid_bound():
    rng = np.random.default_rng(9)
    cover = sp.csr_matrix(rng.random((12, 40)) < 0.2)
    weight = rng.integers(1, 6, 40).astype(float)
    plan = solve_max_cover(cover, weight, 3, exact_max_pairs=1)  # force the greedy path
    best = _brute_force(cover, weight, 3)
    assert plan.method == "greedy"
    assert plan.covered_weight >= (1 - 1 / np.e) * best - 1e-9
    assert plan.upper_bound >= best - 1e-9  # the bound holds


def test_alike_demand_points_merge_without_changing_the_answer():
    cover = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0]], dtype=bool))
    merged, weight = _merge_alike_demand(cover, np.array([1.0, 2.0, 4.0, 8.0]))
    assert merged.shape == (2, 2) and sorted(weight.tolist()) == [3.0, 4.0]  # the uncoverable point is dropped


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        from geo.siting import propose_sites, Demand
        propose_sites(None, "shop", 0, demand=Demand(*(np.zeros(0),) * 4), candidates=(np.zeros(0), np.zeros(0)))


def test_sites_for_elderly_day_care_on_the_sample(sample_analysis):
    import copy

    analysis, _ = sample_analysis
    analysis = copy.copy(analysis)
    analysis.reach_model = copy.deepcopy(analysis.reach_model)  # the plan adds what-if facilities to its model
    rows, report = plan_sites(analysis, "elderly_daycare", 2)
    assert report["method"] == "exact" and len(rows) == 2
    assert report["covered_households"] > 0 and report["covered_weight"] <= report["upper_bound_weight"] + 1e-6
    first = report["sites"][0]
    assert first["households_now_within_tier"] > 0 and first["special_group_members_now_within_tier"] > 0
    assert first["weight_gained"] >= report["sites"][1]["weight_gained"]  # listed by what each adds
    assert {"blind_spots_before", "blind_spots_after", "scorecard_changes"} <= set(first)
    # every site says why the scorecard moved or did not: the newly reached households that now have the whole
    # basic set, and what the others still miss
    for site in report["sites"]:
        assert 0 <= site["households_now_basic_complete"] <= site["households_now_within_tier"]
        assert "households now within reach of elderly_daycare" in site["explanation_en"]
        if not site["scorecard_changes"]:
            assert "no scorecard indicator changed" in site["explanation_en"]
        assert all(m["households"] > 0 for m in site["still_missing"])
    assert any(s["scorecard_changes"] for s in report["sites"])  # on the sample a day-care site changes the scorecard
    # a person reads the sites by building, address and estate, in WGS-84 degrees (not UTM metres)
    assert {"building_name", "address", "estate_name", "lon", "lat"} <= set(first) and "x" not in first
    assert 104.0 < first["lon"] < 104.2 and 30.6 < first["lat"] < 30.8
    assert first["building_name"] and first["address"]


@pytest.mark.parametrize("typed, expected", [
    ("养老院", "nursing_home"), ("日间照料中心", "elderly_daycare"), ("老年人日间照料中心", "elderly_daycare"),
    ("助餐点", "canteen"), ("Kindergarten", "kindergarten"), ("kindergarten", "kindergarten"),
])
def test_a_category_is_found_by_its_chinese_or_english_name(typed, expected):
    from geo.reach import load_config
    from geo.siting import find_category

    assert find_category(load_config(), typed).id == expected


def test_an_ambiguous_or_unknown_category_name_is_refused_naming_the_candidates():
    from geo.errors import ConfigError
    from geo.reach import load_config
    from geo.siting import find_category

    with pytest.raises(ConfigError, match="fits 3 categories: small_sports .*medium_sports .*large_sports"):
        find_category(load_config(), "运动场地")
    with pytest.raises(ConfigError, match=r"unknown facility category '火葬场' \(known: .*nursing_home \(养老院\)"):
        find_category(load_config(), "火葬场")
