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
