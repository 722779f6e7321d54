"""The street office's report: self-contained, Chinese with English, counts only, suppressed below k."""

import re

import pytest

from layers.report import render_report, suppress


def test_suppress_small_counts():
    assert [suppress(v) for v in (0, 1, 4, 5, 1234)] == ["0", "<5", "<5", "5", "1,234"]


def test_the_report_needs_no_network_and_shows_what_a_planner_needs(sample_analysis):
    analysis, _ = sample_analysis
    page = render_report(analysis)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no script, style or tile from anywhere
    assert "L.map(" in page or "L.map" in page  # Leaflet is inlined
    assert "太升路街道" in page and "盲区" in page and "blind spots" in page  # Chinese, English switchable
    assert "考核表" in page and "未达标" in page  # the scorecard with its verdicts
    assert "老旧小区" in page and "城乡结合部" in page
    assert "<5" in page or "&lt;5" in page  # small special-group counts are withheld
    hh = analysis.households
    for household_id in hh["id"].head(20):
        assert f'"{household_id}"' not in page  # no household appears
    for name in analysis.data.layers["households"].get("address", hh["id"]).head(5):
        assert str(name) not in page


def test_with_visit_records_the_scorecard_counts_periods_and_withholds_a_share_of_fewer_than_k_households(tmp_path):
    from datetime import date

    from conftest import tiny_layers, tiny_visits, write_layers
    from gridcover.engines.single import analyze

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    tiny_visits().to_csv(folder / "visits.csv", index=False)
    analysis = analyze(folder, reference_date=date(2026, 11, 30), window_weeks=5)
    page = render_report(analysis, k=2)  # 3 special-group households: shown with k = 2
    assert "走访频次达标率" in page and "44.4%" in page  # the street's 4 of 9 periods
    assert "(4/9) 周期" in page and "(4 / 9) periods" in page
    assert "走访周期达标率" in page and "periods kept ÷ periods required" in page  # and defined
    assert "visits_kept" in page  # the grids' tooltip field
    assert "\"H2\"" not in page  # no household appears
    withheld = render_report(analysis)  # k = 5: a share of 3 households would single them out
    assert "44.4%" not in withheld and "(4/9) 周期" not in withheld and "&lt;5户" in withheld


def test_a_grids_share_of_visit_periods_is_shown_as_a_percentage_or_withheld_below_k():
    import pandas as pd

    from layers.report import _kept_text, _t

    shown = _kept_text(pd.Series([0.75, 0.5, None]), pd.Series([6, 2, 0]), 5)
    assert shown.tolist() == ["75%", _t("<5户", "<5 households"), "–"]  # in the language the report shows


# ---------------------------------------------------------------- the report as a director reads it
from html.parser import HTMLParser  # noqa: E402


class _Tables(HTMLParser):
    """The Chinese text of every table cell, by the table's class: {class: [[cell, …] per row]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.stack, self.skip, self.row, self.cell = {}, [], 0, None, None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "table":
            self.stack.append(self.tables.setdefault(cls, []))
        elif tag == "tr" and self.stack:
            self.row = []
            self.stack[-1].append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "span" and (self.skip or "en" in cls.split()):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == "table" and self.stack:
            self.stack.pop()
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "span" and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if self.cell is not None and not self.skip:
            self.cell.append(data)


def _tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


@pytest.fixture(scope="module")
def sample_page(sample_analysis):
    from datetime import date

    analysis, _ = sample_analysis
    return render_report(analysis, author="王主任", made=date(2026, 12, 1))


def test_the_scorecard_names_the_street_and_every_community_in_its_unit_column(sample_analysis, sample_page):
    analysis, _ = sample_analysis
    rows = _tables(sample_page)["scorecard"]
    units = [r[0] for r in rows[1:]]
    names = set(analysis.data.layers["communities"]["name"]) | set(analysis.data.layers["streets"]["name"])
    assert units and all(units), units  # no empty 单位
    assert set(units[:len(names)]) == names  # the street first, then every community
    assert {"老旧小区", "城乡结合部", "其他区域"} <= set(units)  # and the zones
    failed = sum(cell.startswith("✗") for r in rows[1:] for cell in r[1:])
    assert failed == int((analysis.scorecard["pass"].astype("boolean") == False).sum())  # noqa: E712


def test_the_blind_spot_table_names_communities_and_grids_and_says_what_is_wrong(sample_analysis, sample_page):
    analysis, _ = sample_analysis
    rows = _tables(sample_page)["spots"]
    assert rows[0][:4] == ["排名", "预警", "位置", "存在问题"]
    spots = analysis.blindspots.head(15)
    assert len(rows) - 1 == len(spots)
    communities = dict(zip(analysis.data.layers["communities"]["id"], analysis.data.layers["communities"]["name"]))
    for row, spot in zip(rows[1:], spots.itertuples()):
        assert not re.search(r"\d{12}", " ".join(row)), row  # names, not 12-digit codes
        assert all(communities[c] in row[2] for c in spot.community_ids.split(",")), row
        assert "网格" in row[2] and row[3] and not re.search(r"[a-z_]{5,}", row[3]), row  # reasons in words


def test_the_overloaded_grids_are_listed_with_their_workers_and_load(sample_analysis, sample_page):
    analysis, _ = sample_analysis
    grids = analysis.grids
    over = grids[grids["over_capacity"] | grids["unstaffed"]]
    rows = _tables(sample_page)["overloaded"]
    assert rows[0][0] == "网格" and "每名专职网格员户数" in rows[0] and "需增配专职网格员" in rows[0]
    # each grid by its name within its community (第15网格), the community in the next column
    assert sorted(r[1] + r[0] for r in rows[1:]) == sorted(over["name"])
    by_name = {r[1] + r[0]: r for r in rows[1:]}
    for g in over.itertuples():
        row = by_name[g.name]
        assert row[2] == (g.worker_name or "–") and row[4] == f"{g.households:,}"
        if g.workers:
            assert row[6] == f"{g.households_per_worker:,.0f}" and row[7].startswith("+")
        else:
            assert row[7] == "无专职网格员"
    assert "每名专职网格员不超过 300 户" in sample_page


def test_every_indicator_of_the_scorecard_is_defined(sample_analysis, sample_page):
    from layers.report import DEFINITIONS, INDICATOR_NAMES

    analysis, _ = sample_analysis
    defs = sample_page[sample_page.index("指标说明"):]
    for indicator in set(analysis.scorecard["indicator"]):
        zh = INDICATOR_NAMES[indicator][0]
        assert zh in defs and DEFINITIONS[indicator][0] in defs, indicator
    assert "÷" in DEFINITIONS["special_groups_served"][0]  # what is counted over what


def test_the_fringe_figures_of_the_two_tables_are_explained(sample_analysis, sample_page):
    analysis, _ = sample_analysis
    hh = analysis.households
    by_zone = analysis.summary["risk"]["by_zone"]["fringe"]["households"]
    both = int((hh["fringe"] & hh["old_estate"]).sum())
    assert both and by_zone == int(hh["fringe"].sum()) - both
    assert f"{by_zone:,} 户" in sample_page and f"全部 {int(hh['fringe'].sum()):,} 户" in sample_page
    assert f"{both:,} 户计入老旧小区" in sample_page


def test_header_and_sign_off_say_who_made_it_and_when(sample_analysis, sample_page):
    analysis, _ = sample_analysis
    head = sample_page[sample_page.index('<header class="cover">'):sample_page.index("</header>")]
    assert "太升路街道" in head and "2026-12-01" in head and "王主任" in head
    assert analysis.summary["risk"]["reference_date"] in head
    sign = sample_page[sample_page.index('class="signoff"'):]
    assert "审核" in sign and "签发" in sign and "王主任" in sign
    assert 'counter(page)' in sample_page and "counter(pages)" in sample_page  # page x of y when printed
    unsigned = render_report(analysis)
    assert 'class="blank"' in unsigned and "打印后手写" in unsigned  # a line to write the name by hand


def test_data_completeness_is_shown_when_the_summary_has_it_and_not_otherwise(sample_analysis):
    import copy

    analysis, _ = sample_analysis
    quiet = copy.copy(analysis)
    quiet.summary = {**analysis.summary, "data_quality": [], "missing_optional_layers": [], "rejected": {}}
    assert "数据完整性说明" not in render_report(quiet)
    noisy = copy.copy(analysis)
    noisy.summary = {**quiet.summary, "data_quality": [
        {"layer": "facilities", "category": "kindergarten", "message": "幼儿园只有 4 所，远低于标准",
         "message_en": "only 4 kindergartens, far below the standard"}]}
    page = render_report(noisy)
    assert "数据完整性说明" in page and "幼儿园只有 4 所，远低于标准" in page
    assert "only 4 kindergartens, far below the standard" in page


def test_no_special_group_person_is_named_or_placed(sample_analysis, sample_page):
    import numpy as np

    analysis, _ = sample_analysis
    hh = analysis.households
    special = hh[hh[["elderly_alone", "child_in_difficulty", "mental_disorder"]].any(axis=1)]
    layer = analysis.data.layers["households"]
    texts = [c for c in ("address", "name", "head_name", "phone") if c in layer.columns]
    for column in texts:
        for value in layer.loc[layer["id"].isin(special["id"]), column].dropna().astype(str).head(200):
            assert value not in sample_page, (column, value)
    for household_id in special["id"].astype(str).head(200):
        assert f'"{household_id}"' not in sample_page and f">{household_id}<" not in sample_page
    points = special.geometry[~special.geometry.is_empty & special.geometry.notna()].to_crs(4326).head(200)
    for x, y in zip(points.x, points.y):  # no household is placed on the map (its layers are areas only)
        pair = re.escape(f"{np.floor(x * 1e5) / 1e5:.5f}") + r"\d*, " + re.escape(f"{np.floor(y * 1e5) / 1e5:.5f}")
        assert not re.search(pair, sample_page), (x, y)


def test_analyze_names_the_reports_author(tmp_path, capsys):
    from conftest import tiny_layers, write_layers
    from gridcover.cli import main

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--report-author", "李明（综治办）",
                 "--as-of", "2026-11-30", "--quiet"]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    head = page[page.index('<header class="cover">'):page.index("</header>")]
    assert "李明（综治办）" in head and "2026-11-30" in head and "测试街道" in head


def test_the_report_of_a_dask_run_without_the_household_frame_is_the_same(sample_analysis, sample_page):
    import copy
    from datetime import date

    analysis, _ = sample_analysis
    parted = copy.copy(analysis)
    parted.households = None  # what the Dask engine hands over
    def same(page):  # folium names its map elements at random
        return re.sub(r"_[0-9a-f]{32}", "_", page)

    assert same(render_report(parted, author="王主任", made=date(2026, 12, 1))) == same(sample_page)
