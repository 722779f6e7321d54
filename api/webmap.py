"""The planners' web map (规划人员网页地图): the page at ``/``, its files, and what it reads.

Everything the page loads is served from here: the page, its script and style, and the vendored
MapLibre GL JS (BSD-3-Clause, ``static/vendor/maplibre-gl/LICENSE.txt``). No CDN, no web font and no
glyph server (labels are HTML: popups, legend, search), so it works on an intranet with no internet
access. The layer switcher, legend and popups are built from the layer declarations (``layers/``)
that ``/webmap/config.json`` hands over; the base map is optional (``gridcover serve --basemap``).
``/report`` serves the street office's report: report.html of the workspace, or the same document made from its
tables where there is no such file (a PostGIS workspace; :func:`report_response`).

Example
-------
>>> httpx.get("http://127.0.0.1:8000/", headers={"Accept": "text/html"}).text[:15]
'<!doctype html>'
"""

from __future__ import annotations

import dataclasses
import mimetypes
import re
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from api.access import HEADER, PUBLIC, Caller
from api.app import get_layer_cache, get_workspace
from api.params import get_caller
from geo.errors import ForbiddenError, KeyRequiredError, NotFoundError
from layers.base import DEFAULT_K
from geo.reach import load_config
from layers.catalog import FIELD_NAMES, HEATS, VALUE_NAMES
from layers.features import list_layers, public_view, shown_layer

STATIC = Path(__file__).parent / "static"
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def static_files(root: Path = STATIC) -> dict[str, Path]:
    """Every file of the web map by its URL path under ``/static/`` (``vendor/maplibre-gl/maplibre-gl.js``).

    ``/static/{path}`` answers only these: a request's path is looked up here, never handed to the file
    system, so ``..``, NUL bytes, odd encodings or 5,000-character names are a plain 404."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def page_response(request: Request) -> Response:
    """The web map page (``/`` for browsers, also ``/map``)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


#: The report ``gridcover analyze`` writes beside workspace.gpkg (layers/report.py), served at ``/report``.
REPORT_FILE = "report.html"
REPORT_NOTICE = "<!--gridcover:notice-->"


def report_response(request: Request, caller: Caller) -> Response:
    """The street office's report (``/report``): ``report.html`` of the workspace's output folder, as analyze
    wrote it (self-contained: its script, styles and map are inside it); a workspace without that file (PostGIS:
    ``analyze --db`` writes no folder) gets the same document made from its tables
    (:func:`layers.report.render_workspace_report`, with the server's k).

    It holds counts only, special-group counts from 1 to k-1 withheld with the k it was written with: any
    caller may read it when that k is at least the server's (as the public layers it shows), else only a key
    entitled to every street it covers (a street office of those streets, an admin). After a redraw it says
    which of its parts describe the grids as analysed."""
    workspace = get_workspace(request)
    k = int(getattr(request.app.state, "k", DEFAULT_K))
    path = Path(workspace.path).parent / REPORT_FILE
    stored = not path.is_file()
    if stored:
        text = _stored_report(request, workspace, k)
    else:
        text = path.read_text(encoding="utf-8", errors="replace")  # a file edited by hand is still shown
    _check_report_access(text, caller, k=k)
    if workspace.version > 1:
        text = text.replace(REPORT_NOTICE, _redraw_notice(workspace.version, stored=stored), 1)
    return HTMLResponse(text, headers={"Cache-Control": "no-cache"})


def _stored_report(request: Request, workspace, k: int) -> str:
    """The report made from the workspace's tables, kept on the app (``report_cache``) for its version and k."""
    from layers.report import render_workspace_report  # folium and matplotlib: loaded when a report is made

    state = request.app.state
    key = (workspace.tag, workspace.stamp, k)
    cached = getattr(state, "report_cache", None)
    if cached is None or cached[0] != key:
        if not workspace.has("grids") or not workspace.has("communities"):
            raise NotFoundError(f"no analysis in this workspace ({workspace.location}) to make a report of: run "
                                "'gridcover analyze DATA --out OUT' or '--db URL' first (docs/report.md)")
        state.report_cache = cached = (key, render_workspace_report(workspace, k=k))
    return cached[1]


def _redraw_notice(version: int, *, stored: bool) -> str:
    """What a report says after ``gridcover redraw`` changed the grids (both languages, as its switch shows)."""
    if stored:
        zh = (f"本报告由工作区的表生成：网格及其负荷为现行第 {version} 版（gridcover redraw），考核表、盲区、要点和趋势为分析时"
              "（第 1 版）的结果。重新运行 gridcover analyze 可全部按现行网格更新。")
        en = (f"Made from the workspace's tables: the grids and their load are the current version {version} "
              "(gridcover redraw); the scorecard, blind spots, findings and trend are those of the analysis (version "
              "1). Run gridcover analyze again to bring them all up to date.")
    else:
        zh = (f"本报告按分析时的网格（第 1 版）编制；网格已调整，现行为第 {version} 版（gridcover redraw）。"
              "重新运行 gridcover analyze 可按现行网格更新报告。")
        en = (f"This report describes the grids as analysed (version 1); the grids are now version {version}. "
              "Run gridcover analyze again for a report of the current grids.")
    return (f'<p class="quality" role="note"><span class="zh">{zh}</span><span class="en" lang="en">{en}</span></p>')


def _report_meta(text: str, name: str) -> str | None:
    found = re.search(rf'<meta name="gridcover:{name}" content="([^"]*)">', text[:4000])
    return found.group(1) if found else None


def _check_report_access(text: str, caller: Caller, *, k: int) -> None:
    """Let the caller read a report written with its own k (meta ``gridcover:k``) and streets."""
    report_k = int(_report_meta(text, "k") or DEFAULT_K)
    streets = [s for s in (_report_meta(text, "streets") or "").split(",") if s]
    if report_k >= k or (streets and all(caller.may_see_street(s) for s in streets)) or caller.role == "admin":
        return
    msg = (f"this report withholds special-group counts below {report_k}, the server below {k}: it needs an admin "
           f"key or a street_office key of its streets in {HEADER}")
    raise (KeyRequiredError if caller is PUBLIC else ForbiddenError)(msg)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def map_config(request: Request) -> dict:
    """The declarations the page needs: layers present in the workspace, heat maps, extent, base map."""
    workspace = get_workspace(request)
    layers = []
    for layer in list_layers(workspace):
        layer = shown_layer(layer, None)  # the map's tiles are public: a layer's counts where it has them
        if not layer.tiles:
            continue
        style = dataclasses.asdict(layer.style)
        fields = list(dict.fromkeys(layer.popup or layer.tile_fields))
        layers.append({
            "id": layer.id, "title_zh": layer.title_zh, "title_en": layer.title_en, "geometry": layer.geometry,
            "minzoom": layer.minzoom, "maxzoom": layer.maxzoom, "visible": layer.visible, "id_field": layer.id_field,
            "style": _jsonable(style), "popup": fields, "queryables": list(layer.queryables),
        })
    present = {lay["id"] for lay in layers}
    heats = [{"id": h.id, "title_zh": h.title_zh, "title_en": h.title_en, "group": h.group,
              "layer": h.layer, "value": h.value,
              "stops": [list(s) for s in h.stops]} for h in HEATS if h.layer in present]
    return {"layers": layers, "heats": heats, "bounds": street_bounds(request, present),
            "basemap": request.app.state.basemap,
            "k": int(getattr(request.app.state, "k", DEFAULT_K)), "version": workspace.tag,
            "field_names": {k: list(v) for k, v in FIELD_NAMES.items()},
            "value_names": {f: {c: list(n) for c, n in names.items()} for f, names in VALUE_NAMES.items()},
            "categories": [{"id": c.id, "zh": c.name_zh, "en": c.name_en, "tier": c.tier, "basic": c.basic}
                           for c in load_config().categories],
            "communities": _communities(request), "data_quality": _data_quality(workspace)}


def street_bounds(request: Request, present: set[str]) -> list[float] | None:
    """The first view: the extent of the streets, communities and grids together (every community, the
    fringe ones with no grid too), so nothing of the street is cut off."""
    boxes = [get_layer_cache(request).prepare(get_workspace(request), name).extent_wgs84()
             for name in ("streets", "communities", "grids") if name in present]
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _communities(request: Request) -> list[dict]:
    """Every community's id, name, fringe flag and extent (the map's community filter and names in popups)."""
    workspace = get_workspace(request)
    if not workspace.has("communities"):
        return []
    source = get_layer_cache(request).prepare(workspace, "communities")
    props = source.properties_cached(public_view(DEFAULT_K), [c for c in ("id", "name", "fringe")
                                                               if c in source.data.columns])
    bounds = shapely.bounds(source.geoms).round(6).tolist()
    rows = props.astype(object).where(props.notna(), None).to_dict("records")
    return sorted(({**row, "bbox": box} for row, box in zip(rows, bounds)), key=lambda r: str(r.get("id")))


def _data_quality(workspace) -> list[dict]:
    """The analysis' notes on incomplete data (``summary.json``'s ``data_quality``), or none."""
    notes = workspace.summary().get("data_quality") or []
    return [n for n in notes if isinstance(n, dict)]


#: What the map's search box looks through (public fields only): layer and the fields matched.
SEARCHED = (("grids", ("name", "code")), ("communities", ("name",)), ("estates", ("name", "address")),
            ("buildings", ("address", "name")))


def search_places(request: Request, text: str, *, limit: int = 10) -> list[dict]:
    """Grids, communities, estates and buildings whose public name or address holds every word of ``text``
    (spaces ignored), exact names first; each with its extent and, for an estate or a building, the grid its
    centre lies in and that grid's worker (the public fields of the grids layer)."""
    words = [w for w in str(text).split() if w][:8]
    if not words:
        return []
    workspace, cache, view = get_workspace(request), get_layer_cache(request), public_view(DEFAULT_K)
    grids = cache.prepare(workspace, "grids") if workspace.has("grids") else None
    found: list[tuple[bool, dict]] = []
    for layer_id, fields in SEARCHED:
        if not workspace.has(layer_id):
            continue
        source = cache.prepare(workspace, layer_id)
        cols = [f for f in fields if f in source.data.columns]
        if not cols:
            continue
        text_of = source.data[cols[0]].astype("string").fillna("")
        for col in cols[1:]:
            text_of = text_of + "|" + source.data[col].astype("string").fillna("")
        text_of = text_of.str.replace(" ", "", regex=False)
        hit = np.ones(len(text_of), dtype=bool)
        for word in words:
            hit &= text_of.str.contains(word, regex=False).to_numpy(dtype=bool)
        rows = np.flatnonzero(hit)
        exact = source.data[cols[0]].astype("string").iloc[rows].eq("".join(words)).to_numpy(dtype=bool)
        rows = np.concatenate([rows[exact], rows[~exact]])[:limit]
        answers = _search_answers(layer_id, source, rows, view, grids)
        found += [(i >= int(exact.sum()), answer) for i, answer in enumerate(answers)]
    return [answer for _, answer in sorted(found, key=lambda hit: hit[0])][:limit]  # exact names first


def _search_answers(layer_id: str, source, rows, view, grids) -> list[dict]:
    props = source.properties_cached(view, [c for c in ("id", "name", "address", "community_id")
                                            if c in source.data.columns]).iloc[rows]
    records = props.astype(object).where(props.notna(), None).to_dict("records")
    geoms = source.geoms[rows]
    boxes = shapely.bounds(geoms).round(6).tolist()
    grid_rows = np.full(len(rows), -1)
    if grids is not None and layer_id in ("estates", "buildings") and len(rows):
        point_of, grid_of = grids.tree.query(shapely.point_on_surface(geoms), predicate="within")
        grid_rows[point_of[::-1]] = grid_of[::-1]  # the first grid holding the point, where grids overlap
    out = []
    grid_props = (grids.properties_cached(view, [c for c in ("id", "name", "worker_name", "worker_phone")
                                                 if c in grids.data.columns]) if grids is not None else None)
    for record, box, g in zip(records, boxes, grid_rows):
        grid = None
        if g >= 0:
            row = grid_props.iloc[int(g)]
            grid = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        out.append({"layer": layer_id, **record, "bbox": box, "grid": grid})
    return out


def complete_openapi(doc: dict, app) -> dict:
    """The web map's media types in the OpenAPI document."""
    paths = doc["paths"]
    paths["/map"]["get"]["responses"]["200"]["content"] = {"text/html": {"schema": {"type": "string"}}}
    report = paths["/report"]["get"]["responses"]
    report["200"]["content"] = {"text/html": {"schema": {"type": "string"}}}
    report.setdefault("404", {"description": "the workspace holds no analysis to make a report of",
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    paths["/static/{path}"]["get"]["responses"]["200"]["content"] = {"*/*": {"schema": {"type": "string",
                                                                                      "format": "binary"}}}
    return doc


def build_router() -> APIRouter:
    router = APIRouter(tags=["web map"])
    files = static_files()

    @router.get("/map", summary="The web map page", response_class=Response)
    def page(request: Request):
        return page_response(request)

    @router.get("/report", summary="The street office's report (report.html of the analysis, printable)",
                response_class=Response)
    def report(request: Request, caller: Caller = Depends(get_caller)):
        return report_response(request, caller)

    @router.get("/webmap/config.json", summary="Layers, heat maps and extent for the web map")
    def config(request: Request):
        return JSONResponse(map_config(request), headers={"Cache-Control": "no-cache"})

    @router.get("/webmap/grids.json", summary="Grid names and extents for the map's search box")
    def grids(request: Request):
        workspace = get_workspace(request)
        if not workspace.has("grids"):
            return JSONResponse([])
        source = get_layer_cache(request).prepare(workspace, "grids")
        props = source.properties_cached(public_view(DEFAULT_K), [c for c in ("id", "name", "worker_name")
                                                                   if c in source.data.columns])
        bounds = shapely.bounds(source.geoms).round(6).tolist()
        rows = props.astype(object).where(props.notna(), None).to_dict("records")
        return JSONResponse([{**row, "bbox": box} for row, box in zip(rows, bounds)],
                            headers={"Cache-Control": "no-cache"})

    @router.get("/webmap/search", summary="Places for the map's search box: grids, communities, estates, buildings")
    def search(request: Request, q: str = Query("", max_length=200, description="words of a name or address")):
        return JSONResponse({"results": search_places(request, q)}, headers={"Cache-Control": "no-cache"})

    @router.get("/static/{path:path}", summary="Files of the web map (script, style, MapLibre)",
                response_class=Response)
    def static(path: str):
        target = files.get(path)
        if target is None:
            raise NotFoundError(f"no file {path[:100]!r} among the web map's files")
        return FileResponse(target, headers={"Cache-Control": "no-cache"})

    return router
