"""The web map's trend panel (api/static/trend.js) in a real headless Chromium, offline: the sample analysed on
2026-11-30 with its eleven earlier monthly snapshots (sample_geojson/scorecard_history.csv)."""

from __future__ import annotations

import re

import tempfile
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest
from serving import REPO, ServerProcess
from test_webmap import ARTEFACTS, CHROMIUM, FLAGS, _browser_or_skip


@pytest.fixture(scope="module")
def november_workspace() -> Path:
    from gridcover.engines.single import analyze
    from gridcover.io.outputs import write_outputs

    out = Path(tempfile.mkdtemp(prefix="gridcover-test-trend-")) / "sample"
    return write_outputs(analyze(REPO / "sample_geojson", reference_date=date(2026, 11, 30)), out)


def test_the_trend_panel_shows_twelve_months_against_the_targets(november_workspace):
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with ServerProcess(november_workspace) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            host = urlparse(server.url).netloc
            blocked, errors = [], []

            def route(r):
                if urlparse(r.request.url).netloc != host:
                    blocked.append(r.request.url)
                    r.abort()
                else:
                    r.continue_()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_function("window.gridcoverTrendReady === true", timeout=60_000)
            panel = page.locator("#trend-panel")
            assert "指标趋势（近12个月）" in panel.inner_text()
            assert page.input_value("#tr-unit").startswith("street:")  # the street first
            sparks = page.locator("#trend-panel svg.tr-spark")
            assert sparks.count() >= 8  # one per indicator
            assert page.locator("#trend-panel [data-indicator=visits_on_time] .tr-target").count() == 12
            dots = page.locator("#trend-panel [data-indicator=visits_on_time] circle").count()
            assert dots == 12  # eleven earlier month-ends and this run
            text = panel.inner_text()
            assert "与上月快照（2026-10-31）相比" in text and "新增红色风险户" in text and "新增超负荷网格" in text
            assert "2025-12 – 2026-11" in text
            panel.scroll_into_view_if_needed()
            panel.screenshot(path=str(ARTEFACTS / "webmap-trend.png"))
            page.screenshot(path=str(ARTEFACTS / "webmap-trend-page.png"))

            community = page.evaluate("Array.from(document.querySelectorAll('#tr-unit option'))"
                                      ".map(o => o.value).find(v => v.startsWith('community:'))")
            page.select_option("#tr-unit", community)
            assert page.locator("#trend-panel svg.tr-spark").count() >= 8
            page.click("#lang")
            assert "Trend (last 12 months)" in page.inner_text("#trend-panel")
            assert "Households that became red" in page.inner_text("#trend-panel")
            assert not re.search(r"[\u3000-\u303f\uff01-\uff1f]", page.inner_text("#trend-panel .tr-changed"))  # no ：，
            panel.scroll_into_view_if_needed()
            panel.screenshot(path=str(ARTEFACTS / "webmap-trend-en.png"))
            assert blocked == [] and errors == [], (blocked, errors)
        finally:
            browser.close()
