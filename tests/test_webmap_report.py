"""The director's path: the report at ``/report``, opened and printed to PDF in a real headless Chromium.

The report is served from a workspace (report.html beside workspace.gpkg, as ``gridcover analyze`` writes
it; made from the workspace's tables where there is no such file, as in PostGIS) under the same rule as the
public layers it shows; printed on A4 it has page numbers, a sign-off, no map control and every page
readable, in the language the reader switched to. The PDF goes to build/test-artefacts/report.pdf and, where poppler's
pdftoppm is installed, its pages to report-page-N.png (.ci/run installs poppler-utils).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from serving import REPO, ServerProcess, keys_file
from test_webmap import CHROMIUM, FLAGS, _browser_or_skip

from backends import backend, postgis_dsn  # noqa: F401 (fixtures)

from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace
from layers.report import render_workspace_report, write_report

ARTEFACTS = REPO / "build" / "test-artefacts"
AUTHOR = "测试编制人"


@pytest.fixture(scope="module")
def report_workspace(sample_analysis, tmp_path_factory) -> Path:
    """A copy of the sample's workspace with its report, as ``gridcover analyze --out`` leaves it."""
    analysis, out = sample_analysis
    folder = tmp_path_factory.mktemp("report-ws")
    shutil.copy2(out / "workspace.gpkg", folder / "workspace.gpkg")
    shutil.copy2(out / "trend.json", folder / "trend.json")  # the trend section, as analyze writes it
    write_report(analysis, folder / "report.html", author=AUTHOR, made=date(2026, 12, 1))
    return folder


def _client(folder: Path, **kw) -> TestClient:
    return TestClient(create_app(open_workspace(folder), keys=load_keys(keys_file()), **kw))


def test_the_report_is_served_from_the_workspace(report_workspace):
    client = _client(report_workspace)
    r = client.get("/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "网格化管理脱管风险报告" in r.text and "测试编制人" in r.text
    assert not re.search(r'(src|href)="(https?:)?//', r.text)  # its script, styles and map are inside it
    assert client.head("/report").status_code == 200
    answers = client.get("/openapi").json()["paths"]["/report"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= set(answers) and "text/html" in answers["200"]["content"]


#: What differs between two renderings of one report that a reader cannot see: folium's random element ids, the
#: coordinates inside the map's frame and the print drawing's path data (the tables and text must be equal).
_INVISIBLE = ((re.compile(r"_[0-9a-f]{32}"), "_X"), (re.compile(r'srcdoc="[^"]*"'), 'srcdoc=""'),
              (re.compile(r' d="[^"]*"'), ' d=""'))


def _visible(text: str) -> str:
    for pattern, repl in _INVISIBLE:
        text = pattern.sub(repl, text)
    return text


def test_a_postgis_workspace_serves_the_same_report_as_the_geopackage_one(backend, sample_analysis, tmp_path):
    """``analyze --db`` writes no report.html: /report makes it from the workspace's tables, the same document
    analyze writes (on both backends: the GeoPackage's report.html removed, and PostGIS)."""
    analysis, out = sample_analysis
    shutil.copy2(out / "trend.json", tmp_path / "trend.json")
    written = write_report(analysis, tmp_path / "report.html", made=date(2026, 12, 1)).read_text(encoding="utf-8")
    assert "趋势" in written  # the trend of the sample's twelve snapshots, from trend.json
    bare = tmp_path / "ws"
    bare.mkdir()
    shutil.copy2(out / "workspace.gpkg", bare / "workspace.gpkg")
    ws = backend.open(bare)
    made = render_workspace_report(ws, made=date(2026, 12, 1))
    assert _visible(made) == _visible(written)
    assert made.count("<path ") == written.count("<path ")  # the print drawing: every polygon drawn
    client = TestClient(create_app(ws, keys=load_keys(keys_file())))
    r = client.get("/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for part in ("网格化管理脱管风险报告", "考核表", "超负荷网格", "重点盲区", "趋势", "审核签发"):
        assert part in r.text, part
    assert client.get("/report").text == r.text  # made once per workspace version and k


def test_a_workspace_with_no_analysis_answers_404_saying_how_to_make_one(report_workspace, tmp_path):
    client = _client(report_workspace)
    client.app.state.workspace = SimpleNamespace(path=tmp_path / "workspace.gpkg", location="test", version=1,
                                                 tag="t-1", stamp="s", has=lambda name: False)
    r = client.get("/report")
    assert r.status_code == 404 and "gridcover analyze" in r.json()["description"]


def test_a_report_with_fewer_counts_withheld_than_the_server_needs_a_key_of_its_street(report_workspace):
    strict = _client(report_workspace, k=10)  # the report withholds 1–4, this server 1–9
    assert strict.get("/report").status_code == 401
    assert strict.get("/report", headers={"X-API-Key": "k-other-office"}).status_code == 403
    assert strict.get("/report", headers={"X-API-Key": "k-lookup"}).status_code == 403
    assert strict.get("/report", headers={"X-API-Key": "k-office"}).status_code == 200
    assert strict.get("/report", headers={"X-API-Key": "k-admin"}).status_code == 200
    assert _client(report_workspace, k=5).get("/report").status_code == 200  # as public as the layers it shows
    assert _client(report_workspace).get("/report", headers={"X-API-Key": "nope"}).status_code == 401


def test_after_a_redraw_the_report_says_its_grids_are_the_analysed_ones(report_workspace):
    client = _client(report_workspace)
    client.app.state.workspace = SimpleNamespace(path=report_workspace / "workspace.gpkg", location="test",
                                                 version=3)
    text = client.get("/report").text
    assert "现行为第 3 版" in text and "version 3" in text


def _route_offline(page, host: str, blocked: list) -> None:
    def route(r):
        if urlparse(r.request.url).netloc not in (host, "") and not r.request.url.startswith(("data:", "about:")):
            blocked.append(r.request.url)
            r.abort()
        else:
            r.continue_()
    page.route("**/*", route)


def test_the_director_opens_the_report_and_prints_it(report_workspace, sample_analysis):
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTEFACTS.glob("report-page-*.png"):
        old.unlink()
    pdf = ARTEFACTS / "report.pdf"
    with ServerProcess(report_workspace, keys=keys_file()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            blocked, errors = [], []
            _route_offline(page, urlparse(server.url).netloc, blocked)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/report")
            page.wait_for_selector("iframe")
            assert "网格化管理脱管风险报告" in page.inner_text("h1")
            assert page.frame_locator("iframe").locator(".leaflet-control-zoom").count() == 1  # on screen: Leaflet
            page.screenshot(path=str(ARTEFACTS / "report-screen.png"))
            page.click(".switch")  # English on a click: every text, the title, the map's frame
            assert "Report on households falling out of care" in page.inner_text("h1")
            _check_all_english(page, sample_analysis[0])
            page.screenshot(path=str(ARTEFACTS / "report-screen-en.png"))
            page.emulate_media(media="print")
            page.pdf(path=str(ARTEFACTS / "report-en.pdf"), prefer_css_page_size=True, print_background=True)
            page.emulate_media(media="screen")
            page.click(".switch")
            assert "网格化管理脱管风险报告" in page.title() and page.evaluate("document.documentElement.lang") == "zh-CN"

            page.emulate_media(media="print")  # on paper: the drawing framed on the street, no control
            assert not page.is_visible("iframe") and not page.is_visible(".switch")
            svg = page.locator("svg.printmap").bounding_box()
            body = page.locator("body").bounding_box()
            assert svg and svg["width"] > 500 and svg["x"] >= body["x"] - 1 and \
                svg["x"] + svg["width"] <= body["x"] + body["width"] + 1
            page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
            assert blocked == [] and errors == [], (blocked, errors)
        finally:
            browser.close()
    pages = _pdf_pages(pdf)
    assert 3 <= pages <= 12, pages
    _check_pdf_text(pdf, pages, sample_analysis[0])
    _check_english_pdf(ARTEFACTS / "report-en.pdf", sample_analysis[0])
    _pdf_to_png(pdf)


#: Chinese characters and punctuation (full-width forms included).
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _names(analysis) -> list[str]:
    """The proper names a report shows as they are in either language: streets, communities, grids, workers,
    estates, its author (longest first, so a grid's name goes before its community's)."""
    layers = analysis.data.layers
    found = {AUTHOR} | set(layers["streets"]["name"]) | set(layers["communities"]["name"]) | set(layers["estates"]["name"])
    found |= set(analysis.grids["name"]) | set(analysis.grids["worker_name"].dropna())
    return sorted((str(n) for n in found if isinstance(n, str) and n), key=len, reverse=True)


def _chinese_left(text: str, analysis) -> list[str]:
    """The lines of ``text`` with Chinese left once the names are taken out."""
    for name in _names(analysis):
        text = text.replace(name, "")
    return [line for line in text.splitlines() if _CJK.search(line)]


def _check_all_english(page, analysis) -> None:
    """In English no Chinese is left but the names: the page, its title, the map's frame (layer box, tooltips)."""
    body = page.inner_text("body").replace("中文 / English", "")  # the switch names both languages
    assert _chinese_left(body, analysis) == []
    assert _chinese_left(page.title(), analysis) == [] and page.evaluate("document.documentElement.lang") == "en"
    frame = page.frame_locator("iframe")
    assert _chinese_left(frame.locator(".leaflet-control-layers").inner_text(), analysis) == []
    tooltip_labels = page.frame_locator("iframe").locator("body").evaluate(
        "b => Array.from(b.ownerDocument.querySelectorAll('.en')).length")
    assert tooltip_labels > 0


def _check_english_pdf(pdf: Path, analysis) -> None:
    """The English print: "page x of y" on every page, the running header in English, no Chinese but names."""
    tool = _poppler("pdftotext")
    if tool is None:
        return
    text = subprocess.run([tool, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    sheets = text.split("\f")[:-1]
    assert sheets and all(f"page {i} of {len(sheets)}" in sheet for i, sheet in enumerate(sheets, 1))
    assert all("report on households falling out of care" in sheet for sheet in sheets[1:])
    assert _chinese_left(text, analysis) == [], _chinese_left(text, analysis)[:10]


def _pdf_pages(pdf: Path) -> int:
    """The page count of a PDF Chromium wrote (its page tree's /Count)."""
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf.read_bytes())]
    counts += [int(n) for n in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", pdf.read_bytes())]
    assert counts, "no page tree in the PDF"
    return max(counts)


def _poppler(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None and os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI: .ci/run must install poppler-utils")
    return found


def _check_pdf_text(pdf: Path, pages: int, analysis) -> None:
    """Every page says which page of how many; the last has the sign-off; the tables are in it, in Chinese."""
    tool = _poppler("pdftotext")
    if tool is None:
        return
    text = subprocess.run([tool, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    sheets = [re.sub(r"\s+", "", sheet) for sheet in text.split("\f")]
    for i in range(1, pages + 1):
        assert f"第{i}页/共{pages}页" in sheets[i - 1], i
    last = "".join(sheets[-2:])
    assert "审核" in last and "签发" in last and "测试编制人" in last
    for heading in ("要点", "重点盲区", "超负荷网格", "考核表", "趋势", "指标说明"):
        assert heading in text, heading
    assert text.count("网格化管理脱管风险报告") >= pages  # the running header from page 2 on, the title on 1
    for name in analysis.data.layers["communities"]["name"]:
        assert name in text, name
    spots = text[text.index("重点盲区"):text.index("超负荷网格")]
    assert not re.search(r"\d{12}", spots), "a 12-digit code in the printed blind-spot table"


def _pdf_to_png(pdf: Path) -> None:
    """The pages as PNG (report-page-1.png …) to look at; skipped without poppler's pdftoppm."""
    tool = _poppler("pdftoppm")
    if tool is None:
        return
    subprocess.run([tool, "-r", "80", "-png", str(pdf), str(ARTEFACTS / "report-page")], check=True)
    assert sorted(ARTEFACTS.glob("report-page-*.png")), "pdftoppm wrote no page"


def test_a_table_longer_than_a_page_repeats_its_header_on_the_next(sample_analysis, tmp_path):
    """Every grid listed as over capacity: the list runs over two pages, each with the column headers."""
    import copy

    from layers.report import render_report

    sync_playwright = _browser_or_skip()
    tool = _poppler("pdftotext")
    if tool is None:
        pytest.skip("pdftotext (poppler-utils) is not installed; CI installs it")
    analysis = copy.copy(sample_analysis[0])
    analysis.grids = analysis.grids.assign(over_capacity=True)
    pdf = tmp_path / "long.pdf"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            blocked = []
            _route_offline(page, "", blocked)
            page.set_content(render_report(analysis))
            page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
            assert blocked == []
        finally:
            browser.close()
    text = subprocess.run([tool, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    sheets = [re.sub(r"\s+", "", s) for s in text.split("\f")]
    workers = [n for n in analysis.grids["worker_name"].dropna().unique() if len(n) >= 2]  # a row names its worker
    with_rows = [i for i, s in enumerate(sheets) if sum(n in s for n in workers) >= 5]
    assert len(with_rows) >= 2, "the list should run over two pages"
    for i in with_rows:
        assert "需增配专职网格员" in sheets[i], f"page {i + 1} of the list has no header"
