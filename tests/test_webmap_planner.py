"""A planner's path through the web map in a real headless Chromium (1440×900, every outside host blocked):
open, pick a heat map, search an address, filter a community, export, share the URL, print, English.

Every step saves a screenshot into build/test-artefacts/planner-*.png (look at them: docs/server.md says
what each should show)."""

from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import pytest
from openpyxl import load_workbook
from serving import ServerProcess, keys_file, sample_workspace
from test_webmap import ARTEFACTS, CHROMIUM, FLAGS, _browser_or_skip

VIEWPORT = {"width": 1440, "height": 900}
#: Codes of the analysis that must never reach the Chinese screen.
RAW_CODES = re.compile(r"\b(no_grid|grid_over_capacity|overlapping_grids|missing_services|special_group_unreached|"
                       r"visit_overdue|unregistered_building|outside_community|split_building)\b")
IDLE = "window.map.loaded() && !window.map.isMoving() && document.getElementById('loading').hidden"


@pytest.fixture(scope="module")
def planner():
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with ServerProcess(sample_workspace(), keys=keys_file()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        host = urlparse(server.url).netloc
        log = {"blocked": [], "errors": [], "requested": []}

        def route(r):
            if urlparse(r.request.url).netloc != host:
                log["blocked"].append(r.request.url)
                r.abort()
            else:
                log["requested"].append(r.request.url)
                r.continue_()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda e: log["errors"].append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("window.gridcoverReady === true", timeout=60_000)
        page.wait_for_function(IDLE, timeout=30_000)
        try:
            yield page, context, log
        finally:
            browser.close()
        assert log["blocked"] == [] and log["errors"] == [], log


def shot(page, name: str) -> None:
    page.wait_for_function(IDLE, timeout=30_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTEFACTS / f"planner-{name}.png"))


def click_feature(page, layer: str) -> None:
    """Click the middle of the first ring of a rendered feature of ``layer`` (its vertices' mean)."""
    centre = page.evaluate(f"""(() => {{ const f = map.queryRenderedFeatures({{layers: ['{layer}']}})[0];
        const g = f.geometry, c = g.type === 'MultiPolygon' ? g.coordinates[0][0] : g.coordinates[0];
        const x = c.reduce((s, p) => s + p[0], 0) / c.length, y = c.reduce((s, p) => s + p[1], 0) / c.length;
        const p = map.project([x, y]), r = map.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }})()""")
    page.mouse.click(*centre)


def test_1_the_first_view_holds_the_whole_street_and_the_legend_fits(planner):
    page, _, _ = planner
    inside = page.evaluate("""(() => { const b = map.getBounds(), s = gridcoverApp.cfg.bounds;
        return b.getWest() <= s[0] && b.getSouth() <= s[1] && b.getEast() >= s[2] && b.getNorth() >= s[3]; })()""")
    assert inside, "every community, the fringe one too, is in the first view"
    fringe = page.evaluate("gridcoverApp.cfg.communities.filter(c => c.fringe).map(c => c.id)")
    shown = page.evaluate("map.queryRenderedFeatures({layers: ['communities-fill']}).map(f => String(f.properties.id))")
    assert fringe and set(fringe) <= set(shown)
    box = page.locator("#legend-box").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]
    legend = page.inner_text("#legend")
    assert "每名专职网格员≤300户" in legend and "≤300户/人" not in legend
    assert not RAW_CODES.search(page.inner_text("body"))
    colours = page.evaluate("""Object.fromEntries(gridcoverApp.cfg.layers.map(l => [l.id,
        l.style.classes.filter(c => !l.style.pattern).map(c => c.color.toLowerCase())]))""")
    reds = [lid for lid, cs in colours.items() if "#d7191c" in cs]
    assert reds == ["blindspots"], "red is the red warning and nothing else"
    shot(page, "1-open")
    page.click("#legend-box summary")  # the legend folds away ...
    assert page.locator("#legend").is_hidden()
    page.click("#legend-box summary")  # ... and back
    assert page.locator("#legend").is_visible()


def test_2_a_heat_map_is_drawn_above_the_base_layers_and_switches_without_a_download(planner):
    page, _, log = planner
    page.select_option("#heat", "basic")
    page.wait_for_function("map.getLayer('heat') && map.queryRenderedFeatures({layers: ['heat']}).length > 0", timeout=30_000)
    order = page.evaluate("map.getStyle().layers.map(l => l.id)")
    assert order.index("heat") > max(order.index(f"{lid}-fill") for lid in ("grids", "estates", "buildings", "communities"))
    assert page.evaluate("map.getPaintProperty('estates-fill', 'fill-opacity')") < 0.2, "the layers under it step back"
    assert page.evaluate("window.gridcoverLastLoadMs") is not None, "the loading sign was shown while it loaded"
    shot(page, "2-heat")
    before = len(log["requested"])
    page.select_option("#heat", "kindergarten")
    page.wait_for_function("map.getLayer('heat') && map.getPaintProperty('heat', 'fill-color')[2][1][1] === 'within_kindergarten'")
    page.wait_for_function(IDLE)
    assert not [u for u in log["requested"][before:] if "/tiles/" in u], "another heat map needs no new tile"
    assert "幼儿园" in page.inner_text("#legend")
    # an H3 cell's popup gives minutes and the missing services, not a class
    for layer in ("facilities", "blindspots", "coverage_issues"):
        page.uncheck(f"#toggle-{layer}")
    click_feature(page, "heat")
    page.wait_for_selector(".maplibregl-popup table.reach")
    text = page.inner_text(".maplibregl-popup")
    assert "步行（分钟）" in text and "缺少的基本设施" in text and "幼儿园" in text
    assert re.search(r"\d+\.\d", text), "minutes are shown"
    shot(page, "2b-heat-popup")
    page.click(".maplibregl-popup-close-button")
    for layer in ("blindspots", "coverage_issues"):
        page.check(f"#toggle-{layer}")


def test_3_an_address_finds_its_building_grid_and_worker(planner):
    page, _, log = planner
    page.evaluate("sessionStorage.setItem('gridcover-key', 'k-office')")  # the key a street office uses
    page.select_option("#heat", "")
    page.fill("#search", "白家塘街40号 粮食局宿舍 3栋")
    page.press("#search", "Enter")
    page.wait_for_selector(".found-popup", timeout=15_000)
    assert any("/lookup?address=" in u for u in log["requested"]), "the address goes to GET /lookup"
    text = page.inner_text(".found-popup")
    assert "太升南路社区第1网格" in text and "方刚芳" in text and "028-" in text and "太升南路社区" in text
    assert page.evaluate("window.gridcoverFound") == "G02-01"
    assert page.evaluate("map.getZoom()") >= 16  # the building in its grid
    shot(page, "3-search")
    # without a key the public search still finds the estate's buildings, with their grid
    page.evaluate("sessionStorage.removeItem('gridcover-key')")
    page.click(".maplibregl-popup-close-button")
    page.fill("#search", "粮食局宿舍")
    page.press("#search", "Enter")
    page.wait_for_selector("#search-results li", timeout=15_000)
    assert "粮食局宿舍 3栋" in page.inner_text("#search-results")
    page.click("#search-results li:nth-child(2) button")
    page.wait_for_selector(".found-popup", timeout=15_000)
    assert "网格员" in page.inner_text(".found-popup") and page.evaluate("window.gridcoverFound")


def test_4_a_community_filter_shows_its_grids_alone(planner):
    page, _, _ = planner
    page.keyboard.press("Escape")
    chosen = page.evaluate("gridcoverApp.cfg.communities.find(c => c.fringe) || gridcoverApp.cfg.communities[0]")
    page.select_option("#community", chosen["id"])
    page.wait_for_function(IDLE, timeout=30_000)
    page.wait_for_timeout(400)
    communities = set(page.evaluate("map.queryRenderedFeatures({layers: ['grids-fill']}).map(f => f.properties.community_id)"))
    assert communities <= {chosen["id"]}
    assert chosen["name"] in page.inner_text("#export-scope")
    shot(page, "4-community")
    for layer in ("buildings", "estates", "coverage_issues"):  # so that the click lands on the blind spot
        page.uncheck(f"#toggle-{layer}")
    page.wait_for_function(IDLE, timeout=30_000)
    click_feature(page, "blindspots-fill")
    page.wait_for_selector(".maplibregl-popup .popup")
    text = page.inner_text(".maplibregl-popup")
    assert "风险原因" in text and "预警" in text and not RAW_CODES.search(text), text
    assert chosen["name"] in text, "the spot names its communities"
    shot(page, "4b-blind-spot-popup")
    page.click(".maplibregl-popup-close-button")
    for layer in ("buildings", "estates", "coverage_issues"):
        page.check(f"#toggle-{layer}")


def test_5_export_gives_the_community_s_grids_as_csv_and_excel(planner):
    page, _, _ = planner
    page.select_option("#export-layer", "grids")
    with page.expect_download() as csv_download:
        page.click("#export-csv")
    text = open(csv_download.value.path(), encoding="utf-8-sig").read()
    header, *rows = [line for line in text.splitlines() if line]
    assert header.startswith("编号,名称") and "网格员" in header and rows
    with page.expect_download() as xlsx_download:
        page.click("#export-xlsx")
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(open(xlsx_download.value.path(), "rb").read())).active
    assert [c.value for c in sheet[1]][:2] == ["编号", "名称"] and sheet.max_row == len(rows) + 1
    chosen = page.evaluate("document.getElementById('community').value")
    column = [c.value for c in sheet[1]].index("社区") + 1
    assert {sheet.cell(row=i, column=column).value for i in range(2, sheet.max_row + 1)} == {chosen}
    page.locator("#export").scroll_into_view_if_needed()
    shot(page, "5-export")


def test_6_the_shared_url_opens_the_same_view(planner):
    page, context, _ = planner
    page.select_option("#heat", "basic")
    page.wait_for_function(IDLE, timeout=30_000)
    page.click("#share")
    url = page.input_value("#share-url")
    assert "heat=basic" in url and "community=" in url and "map=" in url
    state = "JSON.stringify([map.getZoom().toFixed(1), map.getCenter().lng.toFixed(4), map.getCenter().lat.toFixed(4), " \
            "document.getElementById('heat').value, document.getElementById('community').value, " \
            "Array.from(document.querySelectorAll('#layers input:checked')).map(i => i.id).sort().join()])"
    want = page.evaluate(state)
    other = context.new_page()
    other.goto(url)
    other.wait_for_function("window.gridcoverReady === true && map.getLayer('heat')", timeout=60_000)
    other.wait_for_function(IDLE, timeout=30_000)
    assert other.evaluate(state) == want
    other.wait_for_timeout(300)
    other.screenshot(path=str(ARTEFACTS / "planner-6-shared.png"))
    other.close()


def test_7_printing_keeps_the_map_and_legend_and_hides_the_controls(planner):
    page, _, _ = planner
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    page.wait_for_timeout(600)
    assert page.locator("#panel").is_hidden() and page.locator(".maplibregl-ctrl-zoom-in").is_hidden()
    assert page.locator("#legend").is_visible() and page.locator("#print-title").is_visible()
    assert "基本服务" in page.inner_text("#print-title")
    shot(page, "7-print")
    page.pdf(path=str(ARTEFACTS / "planner-7-print.pdf"), landscape=True, print_background=True)
    page.emulate_media(media="screen")
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")


def test_8_english_fits_the_panel_and_retranslates_an_open_popup(planner):
    page, _, _ = planner
    page.select_option("#community", "")
    page.wait_for_function(IDLE, timeout=30_000)
    page.select_option("#heat", "")
    grid = page.evaluate("(() => { const f = map.queryRenderedFeatures({layers: ['grids-fill']})[0]; return f.properties.id; })()")
    g = page.evaluate(f"gridcoverApp.cfg && fetch('webmap/grids.json').then(r => r.json()).then(gs => gs.find(x => x.id === '{grid}'))")
    page.fill("#search", g["name"])
    page.press("#search", "Enter")
    page.wait_for_function(IDLE, timeout=30_000)
    for other in page.evaluate("Array.from(document.querySelectorAll('#layers input:checked')).map(i => i.id)"):
        if other not in ("toggle-grids", "toggle-communities", "toggle-streets"):
            page.uncheck("#" + other)
    page.wait_for_function(IDLE, timeout=30_000)
    centre = page.evaluate(f"""(() => {{ const g = {list(g['bbox'])}; const p = map.project([(g[0] + g[2]) / 2, (g[1] + g[3]) / 2]);
        const r = map.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }})()""")
    page.mouse.click(*centre)
    page.wait_for_selector(".maplibregl-popup .popup")
    zh = page.inner_text(".maplibregl-popup")
    assert "社区" in zh and "每名专职网格员户数" in zh and "负荷" in zh
    assert re.search(r"\d+户 ÷ \d+名专职网格员", zh), zh
    page.click("#lang")
    en = page.inner_text(".maplibregl-popup")
    assert "households per full-time worker" in en and "户数" not in en
    select, panel = page.locator("#heat").bounding_box(), page.locator("#panel").bounding_box()
    assert select["x"] + select["width"] <= panel["x"] + panel["width"]
    page.select_option("#heat", "tier15")
    shot(page, "8-english")
    page.click("#lang")


def test_9_notes_on_incomplete_data_are_shown_in_the_panel(planner):
    page, context, _ = planner
    note = {"layer": "facilities", "category": "kindergarten",
            "message": "幼儿园仅4所，按5分钟生活圈每圈1所应约有12所：设施数据可能不全，缺配结论请先核实",
            "message_en": "only 4 kindergartens where one per 5-minute circle means about 12: the facility data "
                          "may be incomplete"}

    def config(route):
        response = route.fetch()
        doc = response.json()
        doc["data_quality"] = [note]
        route.fulfill(response=response, json=doc)

    other = context.new_page()
    other.route("**/webmap/config.json", config)
    other.goto(page.url.split("#")[0])
    other.wait_for_function("window.gridcoverReady === true", timeout=60_000)
    assert other.locator("#data-quality").is_visible()
    assert note["message"] in other.inner_text("#data-quality")
    other.wait_for_function(IDLE, timeout=30_000)
    other.wait_for_timeout(300)
    other.screenshot(path=str(ARTEFACTS / "planner-9-data-quality.png"))
    other.click("#lang")
    assert note["message_en"] in other.inner_text("#data-quality")
    other.click("#lang")
    other.close()
