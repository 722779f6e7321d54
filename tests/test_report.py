"""The street office's report: self-contained, Chinese with English, counts only, suppressed below k."""

import re

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

    from layers.report import _kept_text

    shown = _kept_text(pd.Series([0.75, 0.5, None]), pd.Series([6, 2, 0]), 5)
    assert shown.tolist() == ["75%", "<5户", "–"]
