"""Addresses: the variant forms a caller writes normalise to one form and find the right building."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.address import (AddressSettings, build_address_index, chinese_numeral_to_int, match_addresses,
                         normalise_address, parse_address)

CHENGDU = AddressSettings(city="成都市", districts=("锦江区", "青羊区"))


@pytest.mark.parametrize("text", [
    "锦华苑3栋", "锦华苑3号楼", "锦华苑三栋", "锦华苑３幢", "锦华苑三号楼", "锦华苑3座", "锦华苑3#", "锦华苑 3#楼",
    "锦华苑3栋2单元501", "锦华苑三号楼二单元501室", "锦华苑3-2-501", "锦华苑小区3幢", "锦华苑（3栋）",
    "成都市锦江区锦华苑3栋", "锦江区锦华苑3栋", "成都锦江区锦华苑3栋", "四川省成都市锦江区督院街街道红星社区锦华苑3栋",
])
def test_variant_forms_of_one_building_normalise_alike(text):
    assert normalise_address(text, settings=CHENGDU) == "锦华苑3栋"


def test_full_width_digits_and_chinese_numerals_become_arabic():
    assert normalise_address("红星路二段１２号", settings=CHENGDU) == "红星路2段12号"
    assert normalise_address("红星路十二号锦华苑二十一栋", settings=CHENGDU) == "红星路12号锦华苑21栋"
    assert chinese_numeral_to_int("一百零五") == 105
    assert chinese_numeral_to_int("一零五") == 105
    assert chinese_numeral_to_int("十") == 10


def test_a_district_without_a_city_is_read_in_the_configured_city():
    beijing = AddressSettings(city="北京市", districts=("朝阳区",))
    assert parse_address("朝阳区望京西园三号楼", settings=beijing).problem is None
    assert parse_address("北京朝阳区望京西园3栋", settings=beijing).normalised == "望京西园3栋"
    other_city = parse_address("长春市朝阳区望京西园3栋", settings=beijing)
    assert (other_city.problem, other_city.found, other_city.expected) == ("address_other_city", "长春市", "北京市")
    other_district = parse_address("海淀区望京西园3栋", settings=beijing)
    assert (other_district.problem, other_district.found) == ("address_other_district", "海淀区")


@pytest.mark.parametrize("text, place", [
    ("东珠市街27号", "东珠市街27号"), ("西珠市街12号蓉馨华庭2栋", "西珠市街12号蓉馨华庭"),
    ("成都市青羊区西珠市街12号", "西珠市街12号"), ("青羊区东珠市街9号", "东珠市街9号"), ("米市坝街3号", "米市坝街3号"),
])
def test_a_street_whose_name_holds_shi_is_not_a_city(text, place):
    """东珠市街 and 西珠市街 (Chengdu) are streets: the address is read in the workspace's city, no problem."""
    parsed = parse_address(text, settings=AddressSettings(city="成都市", districts=("青羊区",)))
    assert (parsed.problem, parsed.place) == (None, place)


def test_a_city_really_written_is_still_read_as_one():
    parsed = parse_address("重庆市渝中区解放碑1号", settings=AddressSettings(city="成都市", districts=("青羊区",)))
    assert (parsed.problem, parsed.found) == ("address_other_city", "重庆市")


def test_an_estate_named_like_a_district_is_not_taken_for_one():
    assert parse_address("锦华小区3栋", settings=CHENGDU).problem is None
    assert normalise_address("锦华小区3栋", settings=CHENGDU) == "锦华3栋"


@pytest.fixture
def index():
    buildings = pd.DataFrame({
        "id": ["B1", "B2", "B3", "B4"],
        "estate_id": ["E1", "E1", "E2", None],
        "name": ["3栋", "5栋", "3栋", "1栋"],
        "address": ["红星路二段12号 锦华苑 3栋", "红星路二段12号 锦华苑 5栋", "东大街5号 锦华苑 3栋", "人民南路3号"],
    })
    estates = pd.DataFrame({"id": ["E1", "E2"], "name": ["锦华苑", "锦华苑"], "address": ["红星路二段12号", "东大街5号"]})
    households = pd.DataFrame({"address": ["成都市锦江区 人民南路三号 1单元 101"], "building_id": ["B4"]})
    return build_address_index(buildings=buildings, estates=estates, households=households, settings=CHENGDU)


def test_an_address_that_matches_two_buildings_returns_both_with_scores(index):
    m = match_addresses(index, ["锦华苑三号楼2单元501"])
    assert m.kind[0] == "ambiguous" and m.building[0] == -1
    cand = m.candidates
    assert sorted(cand["building"]) == [0, 2] and (cand["score"] == 1.0).all()


def test_road_and_number_make_the_same_address_unique(index):
    m = match_addresses(index, ["红星路二段12号锦华苑三号楼", "东大街５号 锦华苑 3幢 1单元", "锦华苑5栋"])
    assert list(m.kind) == ["building"] * 3
    assert list(m.building) == [0, 2, 1]


def test_a_household_address_finds_its_building_without_revealing_the_household(index):
    m = match_addresses(index, ["人民南路3号"])
    assert m.kind[0] == "building" and m.building[0] == 3
    assert set(index.entries.columns) == {"place", "bno", "building", "estate"}


def test_an_estate_without_building_number_is_an_estate_answer(index):
    m = match_addresses(index, ["东大街5号锦华苑"])
    assert m.kind[0] == "estate" and m.estate[0] == 1


def test_a_misspelt_address_is_offered_as_a_scored_candidate_or_matched(index):
    m = match_addresses(index, ["红星路2段12号锦华园3栋"])
    assert m.kind[0] in ("building", "ambiguous")
    assert 0.4 <= m.score[0] < 1.0
    if m.kind[0] == "building":
        assert m.building[0] == 0


def test_unknown_and_foreign_addresses_are_not_matched_and_say_why(index):
    m = match_addresses(index, ["火星路1号", "北京市朝阳区望京西园3栋", "3栋2单元"])
    assert list(m.kind) == ["none", "none", "none"]
    assert list(m.problem) == ["address_not_found", "address_other_city", "address_no_place"]
    assert m.found[1] == "北京市"


def test_a_building_the_estate_lacks_is_answered_for_the_estate_with_a_warning(index):
    m = match_addresses(index, ["红星路二段12号锦华苑9栋"])
    assert (m.kind[0], m.problem[0], m.building_asked[0]) == ("estate", "building_not_found", "9")
    assert m.score[0] < 1.0 and m.known_buildings[0] == ["3", "5"]


def test_a_batch_is_answered_in_order(index):
    texts = ["锦华苑5栋", "火星路1号", "红星路二段12号锦华苑3栋"] * 100
    m = match_addresses(index, texts)
    assert list(m.kind[:3]) == ["building", "none", "building"]
    assert (m.building[::3] == 1).all() and (m.building[2::3] == 0).all()
