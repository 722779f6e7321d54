"""The web map's redraw panel (网格调整) in a real headless Chromium: moves, the check, a file, drafts, apply, compare.

A street office opens a community, paints a building into another grid and moves an estate by clicking it
and then its new grid, sees the check's figures change, undoes both, loads a proposal file, saves it as a
draft, is refused (403) with another street's key, applies it with its own, and compares the two versions
side by side. Runs on a temporary copy of the sample workspace; every request off the server is blocked.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pyogrio
import pytest
import shapely
from serving import REPO, ServerProcess, keys_file, sample_workspace
from test_webmap import CHROMIUM, FLAGS, _browser_or_skip

ARTEFACTS = REPO / "build" / "test-artefacts"
#: The community the moves are made in (valid grids in the sample) and the one the proposal file redraws.
MOVES_IN = "510105001005"
FILE_FOR = "510105001003"


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A copy of the sample workspace: applying a version must not change the shared one."""
    folder = tmp_path / "ws"
    folder.mkdir()
    shutil.copy2(sample_workspace() / "workspace.gpkg", folder / "workspace.gpkg")
    return folder


def _units(gpkg: Path) -> dict:
    """A building with households and a neighbouring grid; an estate and a neighbouring grid (community MOVES_IN)."""
    grids = pyogrio.read_dataframe(gpkg, layer="grids", columns=["id", "community_id"])
    grids = grids[grids["community_id"].astype(str) == MOVES_IN].to_crs(32648).reset_index(drop=True)
    homes = pyogrio.read_dataframe(gpkg, layer="households", columns=["building_id", "grid_id"], read_geometry=False)

    def neighbour(grid_id: str) -> str:
        own = grids.loc[grids["id"] == grid_id, "geometry"].iloc[0]
        shared = grids[grids["id"] != grid_id].geometry.intersection(own.buffer(0.5)).length
        return str(grids.loc[shared.idxmax(), "id"])

    counts = homes[homes["grid_id"].isin(grids["id"])].groupby(["building_id", "grid_id"]).size()
    (building, b_grid), b_households = counts.sort_values(ascending=False).index[0], int(counts.max())
    buildings = pyogrio.read_dataframe(gpkg, layer="buildings", columns=["id"])
    b_point = buildings.loc[buildings["id"] == building, "geometry"].iloc[0].representative_point()

    estates = pyogrio.read_dataframe(gpkg, layer="estates", columns=["id"])
    points = estates.geometry.representative_point().to_crs(32648)
    owner = grids.sindex.query(points.values, predicate="within")
    e_index, g_index = owner[0][0], owner[1][0]
    estate, e_grid = str(estates["id"].iloc[e_index]), str(grids["id"].iloc[g_index])
    e_target = neighbour(e_grid)
    target_geom = grids.loc[grids["id"] == e_target, "geometry"].to_crs(4326).iloc[0]
    estate_geom = estates.geometry.iloc[e_index]
    # a point of the target grid clear of the estate (whose area moves with it)
    t_point = shapely.difference(target_geom, estate_geom.buffer(0.0005)).representative_point()
    return {"building": str(building), "b_grid": str(b_grid), "b_target": neighbour(str(b_grid)),
            "b_households": b_households, "b_point": (b_point.x, b_point.y),
            "estate": estate, "e_grid": e_grid, "e_target": e_target,
            "e_point": (estate_geom.representative_point().x, estate_geom.representative_point().y),
            "t_point": (t_point.x, t_point.y)}


def _click_lnglat(page, lnglat, zoom=16) -> None:
    """Centre the map on a place at a zoom where buildings are drawn, then click it as a user would."""
    page.evaluate("([lng, lat, z]) => map.jumpTo({center: [lng, lat], zoom: z})", [*lnglat, zoom])
    page.wait_for_function("map.loaded() && !map.isMoving()", timeout=30_000)
    page.wait_for_timeout(300)
    xy = page.evaluate("([lng, lat]) => { const c = map.getCanvas().getBoundingClientRect(); "
                       "const p = map.project([lng, lat]); return [c.left + p.x, c.top + p.y]; }", list(lnglat))
    page.mouse.click(*xy)


def _settled(page, checks: int) -> None:
    page.wait_for_function(f"Number(document.querySelector('#rd-check').dataset.checks) >= {checks} && "
                           "document.querySelector('#rd-check').dataset.busy === '0'", timeout=60_000)


def _row(page, grid: str) -> int:
    return int(page.get_attribute(f"#rd-check table.rd-grids tr[data-grid='{grid}']", "data-households"))


def test_a_street_office_redraws_grids_in_the_map(workspace, tmp_path):
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    units = _units(workspace / "workspace.gpkg")
    with ServerProcess(workspace, keys=keys_file()) as server, sync_playwright() as p:
        # the proposal file a planner would have made (gridcover redraw propose, or drawn in QGIS)
        proposed = httpx.post(server.url + "/grids/propose", headers={"X-API-Key": "k-office"},
                              json={"community": FILE_FOR}, timeout=120).json()
        assert proposed["applicable"], proposed["check"]["problems"]
        proposal = tmp_path / "proposal.geojson"
        proposal.write_text(json.dumps(proposed["grids"], ensure_ascii=False), encoding="utf-8")
        file_moved = proposed["check"]["moved"]["households"]

        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
            blocked, errors = [], []

            def block(r):
                blocked.append(r.request.url)
                r.abort()

            # Only requests off the server reach Python (matched in the browser driver): routing every tile
            # request through a Python callback costs seconds per map move on a loaded 2-core machine.
            page.route(re.compile("^(?!" + re.escape(server.url + "/") + ")"), block)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_function("window.gridcoverReady === true", timeout=60_000)

            # without a key the panel says one is needed
            page.click("#redraw summary")
            assert "需要街道办或管理员的密钥" in page.inner_text("#rd-status")
            assert not page.is_visible("#rd-body")

            # a street-office key opens it; choosing a community shows its current grids' figures
            page.fill("#rd-key", "k-office")
            page.click("#rd-key-use")
            page.wait_for_selector("#rd-body", state="visible")
            page.wait_for_function(f"document.querySelector('#rd-community option[value=\"{MOVES_IN}\"]')")
            page.select_option("#rd-community", MOVES_IN)
            _settled(page, 1)
            text = page.inner_text("#rd-check")
            # its current grids: valid, or with problems of their own named as there already (a code defect)
            assert "当前网格" in text and ("✔ 有效，无问题" in text or "⚠ 原有" in text) and "✘" not in text, text
            before = {g: _row(page, g) for g in {units["b_grid"], units["b_target"], units["e_grid"], units["e_target"]}}

            # paint: target grid first, then a click on the building
            page.select_option("#rd-target", units["b_target"])
            _click_lnglat(page, units["b_point"])
            _settled(page, 2)
            text = page.inner_text("#rd-check")
            assert "调整后" in text and f"{units['b_households']} 户" in text, text
            assert units["building"] in page.inner_text("#rd-moves")
            assert _row(page, units["b_grid"]) == before[units["b_grid"]] - units["b_households"]
            assert _row(page, units["b_target"]) == before[units["b_target"]] + units["b_households"]
            assert f"(-{units['b_households']})" in page.inner_text(f"tr[data-grid='{units['b_grid']}']")
            assert f"{units['b_grid']} → {units['b_target']}" in page.inner_text("#rd-check table.rd-movetable")
            assert "独居老人" in text  # special groups as counts
            valid = "✔ 有效" in text
            assert page.is_disabled("#rd-apply") != valid
            assert units["building"] in json.dumps(page.evaluate("map.getFilter('rd-moved-buildings')"))

            # Districtr's other way: click an estate, then the grid it goes to
            page.select_option("#rd-target", "")
            page.check("input[name=rd-unit][value=estates]")
            _click_lnglat(page, units["e_point"])
            page.wait_for_function(f"document.querySelector('#rd-hint').textContent.includes('{units['estate']}')")
            _click_lnglat(page, units["t_point"])
            _settled(page, 3)
            moves = page.inner_text("#rd-moves")
            assert units["estate"] in moves and units["building"] in moves, (moves, page.inner_text("#rd-check"))
            assert f"{units['e_grid']} → {units['e_target']}" in page.inner_text("#rd-check table.rd-movetable")
            page.screenshot(path=str(ARTEFACTS / "webmap-redraw-moves.png"))

            # undo both: back to the current grids' figures
            page.click("#rd-undo")
            _settled(page, 4)
            assert units["estate"] not in page.inner_text("#rd-moves")
            assert _row(page, units["b_grid"]) == before[units["b_grid"]] - units["b_households"]
            page.click("#rd-undo")
            _settled(page, 5)
            assert "当前网格" in page.inner_text("#rd-check") and "还没有调整" in page.inner_text("#rd-moves")
            assert _row(page, units["b_grid"]) == before[units["b_grid"]]
            assert page.is_disabled("#rd-apply")

            # a proposal file from disk is checked (and opens its community)
            page.set_input_files("#rd-file", str(proposal))
            page.wait_for_function(f"document.querySelector('#rd-community').value === '{FILE_FOR}' && "
                                   "document.querySelector('#rd-check').dataset.busy === '0' && "
                                   "document.querySelector('#rd-check').textContent.includes('调整后')", timeout=60_000)
            text = page.inner_text("#rd-check")
            assert "✔ 有效" in text and f"{file_moved} 户" in text, text
            assert "proposal.geojson" in page.inner_text("#rd-moves")
            assert page.is_enabled("#rd-apply")

            # saved as a draft
            page.fill("#rd-reason", "均衡工作量")
            page.click("#rd-save")
            page.wait_for_function("document.querySelector('#rd-result').textContent.includes('草稿')")
            assert "有效，可应用" in page.inner_text("#rd-result")
            draft = re.search(r"草稿 (\w+)", page.inner_text("#rd-result")).group(1)

            # another street's office may not apply it: the API's 403 is shown
            page.fill("#rd-key", "k-other-office")
            page.click("#rd-key-use")
            page.wait_for_function("document.querySelector('#rd-status').textContent.includes('密钥可用')")
            page.click("#rd-apply")
            page.wait_for_function("document.querySelector('#rd-result').textContent.includes('未能应用')")
            result = page.inner_text("#rd-result")
            assert "HTTP 403" in result and FILE_FOR in result, result

            # its own office applies it: version 2
            page.fill("#rd-key", "k-office")
            page.click("#rd-key-use")
            page.wait_for_function("document.querySelector('#rd-status').textContent.includes('密钥可用')")
            page.click("#rd-apply")
            page.wait_for_function("document.querySelector('#rd-result').textContent.includes('已应用')", timeout=60_000)
            assert "第 2 版" in page.inner_text("#rd-result")
            listed = httpx.get(server.url + "/grids/proposals", headers={"X-API-Key": "k-office"},
                               timeout=60).json()["proposals"]
            assert next(d for d in listed if d["id"] == draft)["applied_version"] == 2
            page.wait_for_function("document.querySelector('#rd-check').dataset.busy === '0' && "
                                   "document.querySelector('#rd-check').textContent.includes('当前网格')", timeout=60_000)
            assert "✔ 有效" in page.inner_text("#rd-check")  # the community's new current grids

            # versions 1 and 2 side by side, with the diff
            assert page.input_value("#rd-from") == "1" and page.input_value("#rd-to") == "2"
            page.click("#rd-compare-open")
            page.wait_for_function("document.querySelector('#rd-compare').dataset.loaded === '1-2'", timeout=60_000)
            page.wait_for_function("gridcoverRedraw.panes.left.loaded() && gridcoverRedraw.panes.right.loaded()",
                                   timeout=30_000)
            page.wait_for_timeout(500)
            summary = page.inner_text("#rd-compare-summary")
            assert f"{file_moved} 户" in summary, summary
            assert "第 1 版" in page.inner_text("#rd-left-title") and "均衡工作量" in page.inner_text("#rd-right-title")
            left = page.evaluate("new Set(gridcoverRedraw.panes.left.queryRenderedFeatures({layers: ['grids-fill']})"
                                 ".map(f => f.properties.id)).size")
            right = set(page.evaluate("gridcoverRedraw.panes.right.queryRenderedFeatures({layers: ['grids-fill']})"
                                      ".map(f => f.properties.id)"))
            assert left >= 5 and len(right) >= 5 and any(g.startswith(FILE_FOR) for g in right), (left, right)
            page.evaluate("gridcoverRedraw.panes.left.zoomIn({duration: 0})")
            assert page.evaluate("Math.abs(gridcoverRedraw.panes.left.getZoom() - gridcoverRedraw.panes.right.getZoom())") < 1e-6
            page.screenshot(path=str(ARTEFACTS / "webmap-redraw-compare.png"))

            # English on the same switch
            page.click("#lang")
            assert page.inner_text("#redraw summary") == "Redraw grids"
            assert "households change worker" in page.inner_text("#rd-compare-summary")
            page.click("#rd-compare-close")
            assert "Current grids" in page.inner_text("#rd-check")
            page.screenshot(path=str(ARTEFACTS / "webmap-redraw-en.png"))
            assert blocked == [] and errors == [], (blocked, errors)
        finally:
            browser.close()


def test_the_panel_script_is_served_by_gridcover_and_loads_nothing_else():
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gridcover.store import open_workspace

    client = TestClient(create_app(open_workspace(sample_workspace())))
    page = client.get("/", headers={"Accept": "text/html"}).text
    assert 'src="static/redraw.js"' in page and 'id="redraw"' in page
    script = client.get("/static/redraw.js")
    assert script.status_code == 200 and "X-API-Key" in script.text
    assert not re.search(r"https?://", script.text) and "cdn" not in script.text.lower()


#: 德盛路社区: its current grids cut building B00021 (2栋, 西珠市街26号 福和名都) and with it estate E007 福和名都.
DESHENG = "510105001003"
EXAMPLE_KEYS = REPO / "docs" / "keys.example.json"
OFFICE_KEY = "EXAMPLE-ONLY-street-office-taisheng-not-for-production"


def _in_view(page, selector: str) -> None:
    """What the step is about is on the screen as the page left it (the test scrolls nothing): inside the window
    and inside the side panel's visible part."""
    box = page.locator(selector).first.bounding_box()
    panel = page.locator("#panel").bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not shown"
    top, bottom = max(0, panel["y"]), min(size["height"], panel["y"] + panel["height"])
    assert top <= box["y"] and box["y"] + box["height"] <= bottom + 1, (selector, box, panel, size)


def _shot(page, name: str, *, show: tuple[str, ...] = ()) -> None:
    """A screenshot of the step, after checking that ``show`` (the step's answer) is in view without scrolling."""
    for selector in show:
        _in_view(page, selector)
    page.wait_for_function("map.loaded() && !map.isMoving()", timeout=30_000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTEFACTS / f"webmap-redraw-desheng-{name}.png"))


def test_a_street_office_mends_desheng_on_the_map_with_the_example_key(workspace):
    """The README's path: serve with docs/keys.example.json, open the redraw panel with its street-office key,
    see 德盛路社区's old problems by name and on the map, move estate 福和名都 wholly into grid 1, see the check
    say it fixes both, apply, and compare versions 1 and 2."""
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    estates = pyogrio.read_dataframe(workspace / "workspace.gpkg", layer="estates", columns=["id"])
    e_point = estates.loc[estates["id"] == "E007", "geometry"].iloc[0].representative_point()
    with ServerProcess(workspace, keys=EXAMPLE_KEYS) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            blocked, errors = [], []
            page.route(re.compile("^(?!" + re.escape(server.url + "/") + ")"),
                       lambda r: (blocked.append(r.request.url), r.abort()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_function("window.gridcoverReady === true", timeout=60_000)
            shown = ["blindspots", "facilities"]
            assert page.evaluate(f"{shown}.map((id) => gridcoverApp.isVisible(id))") == [True, True]

            # 1. the key from the example file opens the panel
            page.click("#redraw summary")
            page.fill("#rd-key", OFFICE_KEY)
            page.click("#rd-key-use")
            page.wait_for_selector("#rd-body", state="visible")
            assert "密钥可用" in page.inner_text("#rd-status")
            assert page.inner_text("#rd-body label.rd-file-button") == "选择文件…"  # not the browser's "Choose File"
            _shot(page, "1-key")

            # 2. 德盛路社区: its current grids' two problems, by name, and the layers that tell another story step back
            page.wait_for_function(f"document.querySelector('#rd-community option[value=\"{DESHENG}\"]')")
            page.select_option("#rd-community", DESHENG)
            _settled(page, 1)
            text = page.inner_text("#rd-check")
            assert "当前网格" in text and "原有 2 个问题" in text, text
            issues = page.inner_text("#rd-check ul.rd-issues")
            assert "楼栋 2栋（西珠市街26号 福和名都 2栋，B00021）被网格 德盛路社区第1网格（G03-01） / 德盛路社区第2网格（G03-02） 的边界切开" in issues
            assert "小区 福和名都（西珠市街26号，E007）" in issues and issues.count("原有") == 2
            assert page.evaluate(f"{shown}.map((id) => gridcoverApp.isVisible(id))") == [False, False]
            assert sorted(page.evaluate("gridcoverRedraw.steppedBack")) == sorted(shown)
            assert page.evaluate("map.getSource('rd-issues')._data.features.length") == 2
            assert page.evaluate("map.getLayer('rd-issues-line').visibility") == "visible"
            _shot(page, "2-problems", show=("#rd-check p.rd-title", "#rd-check ul.rd-issues"))

            # 3. a click on the cut building flies there and outlines it
            page.click("#rd-check li[data-issue='split_building:B00021']")
            page.wait_for_function("map.loaded() && !map.isMoving()", timeout=30_000)
            chosen = page.evaluate("map.getSource('rd-issues')._data.features.filter(f => f.properties.chosen)"
                                   ".map(f => f.properties.id)")
            assert chosen == ["split_building:B00021"] and page.evaluate("map.getZoom()") >= 16.5
            lng, lat = page.evaluate("[map.getCenter().lng, map.getCenter().lat]")
            assert abs(lng - 104.07419) < 0.001 and abs(lat - 30.67601) < 0.001, (lng, lat)
            assert page.is_visible("#rd-check li.rd-issue.chosen")
            _shot(page, "3-building", show=("#rd-check li.rd-issue.chosen",))

            # 4. move estate 福和名都 wholly into grid 1: the check says it is valid and fixes both problems
            page.select_option("#rd-target", "G03-01")
            page.check("input[name=rd-unit][value=estates]")
            _click_lnglat(page, (e_point.x, e_point.y), zoom=17)
            _settled(page, 2)
            text = page.inner_text("#rd-check")
            assert "调整后" in text and "✔ 有效，没有新增问题" in text and "修复 2 个原有问题" in text, text
            assert page.inner_text("#rd-check ul.rd-issues").count("已修复") == 2
            assert "小区 福和名都 E007 → G03-01 德盛路社区第1网格" in page.inner_text("#rd-moves")
            assert page.is_enabled("#rd-apply")
            _shot(page, "4-check", show=("#rd-check p.rd-title", "#rd-check ul.rd-issues"))

            # 5. apply with a reason: version 2; the community's grids have no problem left
            page.fill("#rd-reason", "福和名都整体划入第1网格，不再切开2栋")
            page.click("#rd-apply")
            page.wait_for_function("document.querySelector('#rd-result').textContent.includes('已应用')", timeout=60_000)
            assert "第 2 版" in page.inner_text("#rd-result")
            page.wait_for_function("document.querySelector('#rd-check').dataset.busy === '0' && "
                                   "document.querySelector('#rd-check').textContent.includes('当前网格')", timeout=60_000)
            assert "✔ 有效，无问题" in page.inner_text("#rd-check")
            _shot(page, "5-applied", show=("#rd-result",))

            # 6. versions 1 and 2 side by side
            page.click("#rd-compare-open")
            page.wait_for_function("document.querySelector('#rd-compare').dataset.loaded === '1-2'", timeout=60_000)
            page.wait_for_function("gridcoverRedraw.panes.left.loaded() && gridcoverRedraw.panes.right.loaded()",
                                   timeout=30_000)
            page.wait_for_timeout(600)
            summary = page.inner_text("#rd-compare-summary")
            assert "第 1 版 → 第 2 版（社区 德盛路社区，510105001003）" in summary, summary
            assert "福和名都整体划入第1网格" in page.inner_text("#rd-right-title")
            assert "分析时的网格" in page.inner_text("#rd-left-title")  # no English in the Chinese titles
            reshaped = re.search(r"边界改动: (.*)", summary).group(1)
            assert re.findall(r"G03-\d\d", reshaped) == ["G03-01", "G03-02"], reshaped  # nobody changed grid
            assert "在被切分楼栋的住户 73 → 0" in summary
            page.screenshot(path=str(ARTEFACTS / "webmap-redraw-desheng-6-compare.png"))
            page.click("#lang")  # the same in English
            assert "boundaries moved: G03-01 (+" in page.inner_text("#rd-compare-summary")
            assert "grids as analysed" in page.inner_text("#rd-left-title")
            page.click("#rd-compare-close")
            assert "valid, no problem" in page.inner_text("#rd-check")
            assert page.get_attribute("#rd-band", "placeholder") == "from the workload rule"
            page.screenshot(path=str(ARTEFACTS / "webmap-redraw-desheng-7-en.png"))

            # closing the panel gives the blind spots and facilities back
            page.click("#redraw summary")
            page.wait_for_function(f"{shown}.every((id) => gridcoverApp.isVisible(id))", timeout=10_000)
            assert blocked == [] and errors == [], (blocked, errors)
        finally:
            browser.close()
