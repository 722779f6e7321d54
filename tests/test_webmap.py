"""The planners' web map in a real headless Chromium, with every request off the server blocked."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from serving import REPO, ServerProcess, sample_workspace

from api.app import create_app
from gridcover.store import open_workspace

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
ARTEFACTS = REPO / "build" / "test-artefacts"
STATIC = REPO / "api" / "static"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(open_workspace(sample_workspace())))


def test_the_page_and_everything_it_loads_come_from_gridcover(client):
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'lang="zh-CN"' in page.text
    own = [STATIC / "index.html", STATIC / "app.js", STATIC / "app.css"]
    for path in own:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=[\"']https?://", text), path
        assert "cdn" not in text.lower() and "fonts.googleapis" not in text, path
    for asset in ("static/vendor/maplibre-gl/maplibre-gl.js", "static/vendor/maplibre-gl/maplibre-gl.css",
                  "static/vendor/maplibre-gl/LICENSE.txt", "static/app.js", "static/app.css"):
        assert client.get("/" + asset).status_code == 200, asset
    assert "BSD" in (STATIC / "vendor/maplibre-gl/LICENSE.txt").read_text() or "Redistribution" in (
        STATIC / "vendor/maplibre-gl/LICENSE.txt").read_text()
    assert client.get("/static/../app.py").status_code == 404


def test_config_hands_the_declarations_to_the_page(client):
    cfg = client.get("/webmap/config.json").json()
    ids = [lay["id"] for lay in cfg["layers"]]
    assert {"grids", "buildings", "estates", "communities", "facilities"} <= set(ids)
    assert "households" not in ids
    grids = next(lay for lay in cfg["layers"] if lay["id"] == "grids")
    assert grids["style"]["classes"][0]["zh"] and grids["style"]["classes"][0]["en"]
    assert {"basic", "tier15"} <= {h["id"] for h in cfg["heats"]}
    assert cfg["basemap"] is None and len(cfg["bounds"]) == 4
    names = client.get("/webmap/grids.json").json()
    assert names and {"id", "name", "bbox"} <= set(names[0])


def test_config_names_the_communities_frames_the_whole_street_and_translates_codes(client):
    cfg = client.get("/webmap/config.json").json()
    communities = client.get("/collections/communities/items").json()["features"]
    assert {c["id"] for c in cfg["communities"]} == {f["id"] for f in communities}
    assert all(c["name"] and len(c["bbox"]) == 4 for c in cfg["communities"])
    x0, y0, x1, y1 = cfg["bounds"]
    e = 1e-6  # the boxes are rounded to 6 decimals
    assert all(x0 - e <= c["bbox"][0] and y0 - e <= c["bbox"][1] and c["bbox"][2] <= x1 + e and c["bbox"][3] <= y1 + e
               for c in cfg["communities"]), "the first view holds every community, not only the grids"
    assert cfg["value_names"]["risk_reasons"]["no_grid"][0] == "不在任何网格"
    assert cfg["data_quality"] == [] or {"layer", "category", "message"} <= set(cfg["data_quality"][0])
    heat = next(h for h in cfg["heats"] if h["id"] == "kindergarten")
    assert (heat["layer"], heat["value"]) == ("h3_reach", "within_kindergarten")
    h3 = next(lay for lay in cfg["layers"] if lay["id"] == "h3_reach")
    assert "within_kindergarten" in client.get("/tiles/h3_reach.json").json()["vector_layers"][0]["fields"]
    assert h3["queryables"] == ["h3"]


def test_the_public_search_finds_a_building_by_its_address_with_its_grid_and_worker(client):
    hits = client.get("/webmap/search", params={"q": "粮食局宿舍 3栋"}).json()["results"]
    building = next(h for h in hits if h["layer"] == "buildings")
    assert building["address"] == "白家塘街40号 粮食局宿舍 3栋" and len(building["bbox"]) == 4
    assert building["grid"]["name"] == "太升南路社区第1网格" and building["grid"]["worker_name"]
    assert client.get("/webmap/search", params={"q": "太升南路社区"}).json()["results"][0]["layer"] == "communities"
    assert client.get("/webmap/search", params={"q": "  "}).json() == {"results": []}
    assert client.get("/webmap/search", params={"q": "不存在的地方"}).json() == {"results": []}
    assert client.get("/webmap/search", params={"q": "x" * 300}).status_code == 400


def _browser_or_skip():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright
    return sync_playwright


def test_the_map_shows_the_grids_in_chromium_offline():
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with ServerProcess(sample_workspace()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            host = urlparse(server.url).netloc
            blocked, errors, requested = [], [], []

            def route(r):
                if urlparse(r.request.url).netloc != host:
                    blocked.append(r.request.url)
                    r.abort()
                else:
                    requested.append(r.request.url)
                    r.continue_()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_function("window.gridcoverReady === true", timeout=60_000)
            grids = page.evaluate("map.queryRenderedFeatures({layers: ['grids-fill']}).map(f => f.properties.id)")
            assert len(set(grids)) >= 10, grids
            assert page.evaluate("map.queryRenderedFeatures({layers: ['estates-fill']}).length") > 0
            assert page.inner_text("#panel h1") == "网格覆盖地图"
            assert "老旧小区" in page.inner_text("#legend")
            page.screenshot(path=str(ARTEFACTS / "webmap.png"))

            # search by grid name zooms to it and outlines it
            name = page.evaluate("document.querySelector('#grid-names option').value")
            page.fill("#search", name)
            page.press("#search", "Enter")
            page.wait_for_function("window.gridcoverFound !== undefined")
            page.wait_for_function("window.map.loaded() && !window.map.isMoving()", timeout=30_000)
            page.wait_for_timeout(500)
            found = page.evaluate("window.gridcoverFound")
            assert found in page.evaluate("map.queryRenderedFeatures({layers: ['grids-fill']}).map(f => f.properties.id)")

            # with the layers above the grids switched off, a click on the grid opens a popup with its worker
            for other in page.evaluate("Array.from(document.querySelectorAll('#layers input:checked')).map(i => i.id)"):
                if other not in ("toggle-grids", "toggle-communities", "toggle-streets"):
                    page.uncheck("#" + other)
            centre = page.evaluate("(() => { const c = map.getCanvas().getBoundingClientRect(); "
                                   "const p = map.project(map.getCenter()); return [c.left + p.x, c.top + p.y]; })()")
            page.mouse.click(*centre)
            page.wait_for_selector(".maplibregl-popup .popup", timeout=10_000)
            assert "网格员" in page.inner_text(".maplibregl-popup")

            # a heat map of coverage is drawn from the H3 cells' vector tiles (switching needs no new PNG tiles)
            page.select_option("#heat", "basic")
            page.wait_for_function("map.getLayer('heat') && map.isSourceLoaded('h3_reach')", timeout=30_000)
            assert any("/tiles/h3_reach/" in u for u in requested)

            # English on a click
            page.click("#lang")
            assert page.inner_text("#panel h1") == "Grid coverage map"
            page.screenshot(path=str(ARTEFACTS / "webmap-en.png"))
            assert blocked == [] and errors == [], (blocked, errors)
            assert all(urlparse(u).netloc == host for u in requested)
        finally:
            browser.close()


def test_static_paths_that_are_no_file_of_the_map_are_404_never_500(client):
    for path in ("/static/%00", "/static/app.js%00", "/static/" + "a" * 5000, "/static/" + "a/" * 3000,
                 "/static/..%2f..%2fapi%2fapp.py", "/static/%2e%2e/app.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
                 "/static/%ff%fe", "/static/%C0%AE%C0%AE/app.py", "/static/vendor", "/static/",
                 "/static/vendor//maplibre-gl/LICENSE.txt", "/static/..\\app.py", "/static/APP.JS"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["code"] == "NotFound" and len(r.json()["description"]) < 300, path


def test_static_files_answer_head_with_their_length_and_no_body(client):
    get, head = client.get("/static/app.js"), client.head("/static/app.js")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == get.headers["content-type"]
