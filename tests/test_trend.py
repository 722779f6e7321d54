"""The report's trend section (layers/trend.py): one inline SVG chart per indicator with the target drawn,
what changed since last month in counts, no household id."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd

from geo.history import History, build_trend, snapshot_members, snapshot_rows
from layers.report import INDICATOR_NAMES, _t
from layers.trend import trend_section, with_trend


def _trend() -> dict:
    rows, members = [], []
    for day, value, red in ((date(2026, 9, 30), 0.6, ["H1"]), (date(2026, 10, 31), 0.7, ["H1"]),
                            (date(2026, 11, 30), 0.8, ["H1", "H2"])):
        card = pd.DataFrame({"level": ["community", "community", "street"], "id": ["C1", "C1", "S1"],
                             "name": ["一社区", "一社区", "测试街道"],
                             "indicator": ["visits_on_time", "households_per_worker", "visits_on_time"],
                             "value": [value, 250.0, value], "target": [1.0, 300.0, 1.0],
                             "target_year": [2024, None, 2024], "pass": [False, True, False],
                             "numerator": [1, 250, 1], "denominator": [2, 1, 2]})
        rows.append(snapshot_rows(card, as_of=day))
        hh = pd.DataFrame({"id": red, "risk": "red", "grid_id": "G1", "community_id": "C1", "street_id": "S1"})
        grids = pd.DataFrame({"id": ["G1"], "name": ["一网格"], "community_id": ["C1"], "over_capacity": [day.month == 11]})
        members.append(snapshot_members(hh, grids, as_of=day))
    return build_trend(History(rows=pd.concat(rows, ignore_index=True), members=pd.concat(members, ignore_index=True)),
                       k=5)


def test_one_svg_chart_per_indicator_with_the_target_drawn():
    page = trend_section(_trend(), names=INDICATOR_NAMES, both=_t)
    charts = re.findall(r'<figure class="trend" data-indicator="([a-z_]+)">.*?</figure>', page, flags=re.S)
    assert charts == ["visits_on_time", "households_per_worker"]
    assert page.count("<svg") == 2 and "<script" not in page and "<metadata" not in page
    assert not re.search(r"(src|href)=[\"']https?://", page)  # nothing loaded from outside: works offline
    visits = re.search(r'data-indicator="visits_on_time">(.*?)</figure>', page, flags=re.S).group(1)
    assert "#c0392b" in visits.lower() and "stroke-dasharray" in visits  # the target: a dashed red line
    assert "2024年目标" in visits and "2024 target" in visits
    assert "Noto Sans CJK SC" in visits  # the CJK font named, the browser's sans-serif after it


def test_what_changed_is_counted_never_named():
    page = trend_section(_trend(), names=INDICATOR_NAMES, both=_t)
    assert "新增红色风险户" in page and "一社区 &lt;5" in page  # one household: withheld below k
    assert "新增超负荷网格" in page and "一网格" in page  # grids are named: not personal
    assert "H2" not in page and "H1" not in page


def test_the_report_gets_the_section_from_trend_json_beside_it(tmp_path):
    page = "<html><body><h1>报告</h1></body></html>"
    assert with_trend(page, tmp_path) == page  # no trend.json: unchanged
    (tmp_path / "trend.json").write_text(json.dumps(_trend(), ensure_ascii=False), encoding="utf-8")
    out = with_trend(page, tmp_path, names=INDICATOR_NAMES, both=_t)
    assert out.index('<section id="trend">') > out.index("<h1>") and out.endswith("</body></html>")
    assert "走访频次达标率" in out  # the report's own indicator names
