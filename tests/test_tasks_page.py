"""The printable visit list (layers/tasks_page.py) in a real headless Chromium, offline: language switch,
the route map, the A4 print layout."""

from __future__ import annotations

from pathlib import Path

from test_webmap import ARTEFACTS, CHROMIUM, FLAGS, _browser_or_skip

from gridcover.services.tasks import TasksService
from gridcover.store import open_workspace
from layers.tasks_page import render_tasks_page


def _page_file(sample_analysis, folder: Path) -> Path:
    result = TasksService(open_workspace(sample_analysis[1])).tasks(date="2026-12-03", grids=["G02-01"])
    path = folder / "tasks_G02-01.html"
    path.write_text(render_tasks_page(result["grids"][0], notes=result["notes"]), encoding="utf-8")
    return path


def test_the_page_switches_language_and_prints_on_a4_offline(sample_analysis, tmp_path):
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = _page_file(sample_analysis, tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            elsewhere, errors = [], []

            def route(r):
                if not r.request.url.startswith("file://"):
                    elsewhere.append(r.request.url)
                    r.abort()
                else:
                    r.continue_()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            assert page.inner_text("h1").startswith("走访任务单")
            assert page.locator("svg polyline").count() >= 2 and page.locator("svg circle").count() >= 2
            ticks = page.locator("td.tick .box").count()
            assert ticks == page.locator("tbody tr").count() and ticks > 10
            assert page.locator("th span.zh", has_text="已访").is_visible()
            assert "最后一条走访记录" in page.inner_text(".notes")  # the notes speak Chinese too
            page.screenshot(path=str(ARTEFACTS / "tasks_page_zh.png"), full_page=False)
            page.click("#to-en")
            assert page.inner_text("h1").startswith("Visit list")
            assert page.locator("th", has_text="Done").is_visible() and not page.locator("th span.zh", has_text="已访").is_visible()
            page.screenshot(path=str(ARTEFACTS / "tasks_page_en.png"), full_page=False)
            page.click("#to-zh")
            assert page.inner_text("h1").startswith("走访任务单")
            # the print layout: A4, the switch hidden, every row on the page
            page.emulate_media(media="print")
            assert not page.locator(".switch").is_visible()
            page.set_viewport_size({"width": 718, "height": 1032})  # A4 less 12 mm margins, at 96 dpi
            page.screenshot(path=str(ARTEFACTS / "tasks_page_print.png"))
            pdf = page.pdf(format="A4", print_background=True)
            assert pdf[:4] == b"%PDF" and len(pdf) > 10_000
            assert not elsewhere and not errors, (elsewhere, errors)
        finally:
            browser.close()


def test_a_household_without_a_counted_visit_is_not_called_never_visited(sample_analysis):
    # the sample's phone-only elderly were called: the list says no counted visit, not "never visited"
    result = TasksService(open_workspace(sample_analysis[1])).tasks(date="2026-12-03")
    page = next(g for g in result["grids"] if any(not h.get("last_visit") for h in g["households"]))
    text = render_tasks_page(page, notes=result["notes"])
    assert "上次有效走访" in text and "Last counted visit" in text
    assert "从未走访" not in text and "never visited" not in text
