"""The street office's report (报告): one self-contained HTML page in Chinese (English switchable) that a
street office hands to its director, on screen or printed on A4 (docs/report.md).

Its sections, in :func:`_body`'s order: a header (office, as-of date, date made, author), findings, headline
figures, a data-completeness note, the map, households at risk by zone, the top blind spots by community and
grid name, the grids over the workload rule with their workers, the scorecard (unit × indicator), the
definitions of every indicator and a 审核/签发 sign-off. A section is a function of a :class:`ReportContext`.
The map is folium (Leaflet) on screen and an SVG drawing framed on the street on paper, both from the layer
declarations of :mod:`layers.catalog`. It works on an intranet with no internet: Leaflet is inlined from
``layers/static/leaflet``, the styles from ``layers/static/report``, and no base map is loaded unless one is
configured (``basemap``, off by default). Special-group members appear only as counts, counts from 1 to k-1
are shown as "<k", and a share over fewer than k special-group households is withheld.

Example
-------
>>> write_report(analysis, Path("out/sample/report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.base import DEFAULT_K, SPECIAL_GROUP_COUNTS
from layers.catalog import FIELD_NAMES, VALUE_NAMES, find_layer as layer_decl

STATIC = Path(__file__).parent / "static" / "leaflet"
_JS_MARK = "gridcover-inline://leaflet.js"
_CSS_MARK = "gridcover-inline://leaflet.css"

INDICATOR_NAMES = {
    "special_groups_served": ("特殊群体服务率", "special groups served"),
    "weak_areas_served": ("薄弱区域（老旧小区、城乡结合部）覆盖率", "weak areas (old estates, fringe) covered"),
    "visits_on_time": ("走访频次达标率", "visits on time"),
    "basic_services": ("基本公共服务覆盖率", "basic services within their tier"),
    "special_group_services": ("特殊群体服务可达率", "special-group services within reach"),
    "migrants_registered": ("流动人口登记率", "migrants registered"),
    "households_per_worker": ("每名专职网格员户数", "households per full-time worker"),
    "full_time_share": ("网格员专职化比例", "full-time share of grid workers"),
    "households_covered": ("在网格内户比例", "households in a grid"),
    "cases_on_time": ("事件按时办结率", "cases handled in time"),
}
#: The risk and blind-spot reasons in both languages: the catalog's one table (the map and the export use it too).
REASON_NAMES = VALUE_NAMES["risk_reasons"]
COLOUR_NAMES = {"red": ("红", "red"), "yellow": ("黄", "yellow"), "blue": ("蓝", "blue"), "none": ("无", "none")}
GROUP_NAMES = {"elderly_alone": ("独居老人", "elderly living alone"), "child_in_difficulty": ("困境儿童", "children in difficulty"),
               "mental_disorder": ("严重精神障碍患者", "people with severe mental disorders")}
ZONE_NAMES = {"old_estate": ("老旧小区", "old estates"), "fringe": ("城乡结合部", "urban-rural fringe"), "rest": ("其他区域", "the rest")}


def _t(zh: str, en: str) -> str:
    """Both languages; CSS shows one (the page's language switch)."""
    zh, en = ("" if zh is None else str(zh)), ("" if en is None else str(en))
    return f'<span class="zh">{html.escape(zh)}</span><span class="en">{html.escape(en)}</span>'


def suppress(value, k: int = DEFAULT_K) -> str:
    """A special-group count as shown: 1..k-1 become "<k"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    v = int(value)
    return f"<{k}" if 0 < v < k else f"{v:,}"


def _count(value, k: int) -> str:
    """A special-group count as HTML text (1..k-1 as "&lt;k")."""
    return html.escape(suppress(value, k))


def _style(layer_id: str, props_field: str | None = None):
    decl = layer_decl(layer_id)
    style = decl.style

    def fn(feature):
        value = feature["properties"].get(style.field) if style.field else None
        colour = style.color_of(value)
        if style.kind == "line":
            return {"color": colour, "weight": style.width, "fill": False}
        return {"color": style.outline or colour, "weight": style.width, "fillColor": colour,
                "fillOpacity": style.opacity}
    return fn


def _geojson(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    keep = [c for c in columns if c in frame.columns]
    out = frame[keep + ["geometry"]].to_crs(4326).copy()
    for c in keep:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: ",".join(map(str, v)) if isinstance(v, (list, np.ndarray)) else v)
    return json.loads(out.to_json(na="null", drop_id=True))


def _kept_text(share: pd.Series, households: pd.Series, k: int) -> pd.Series:
    """A grid's share of visit periods kept as shown: a percentage, "–" without periods, and withheld ("<k
    户") where fewer than k special-group households are judged (a share would single them out)."""
    n = pd.to_numeric(households, errors="coerce").fillna(0).to_numpy()
    v = pd.to_numeric(share, errors="coerce")
    text = v.map(lambda x: "–" if pd.isna(x) else f"{x:.0%}").to_numpy(dtype=object)
    text[(n > 0) & (n < k)] = _t(f"<{k}户", f"<{k} households")
    return pd.Series(text, index=share.index)


def _tooltip(frame: gpd.GeoDataFrame, fields: list[str], aliases: list[tuple[str, str]]) -> folium.GeoJsonTooltip:
    """A tooltip of those ``fields`` the frame holds (an optional field, ``ur_code``, ``year_built``, may be
    absent), its labels in both languages (the map's frame follows the report's language switch)."""
    pairs = [(f, a) for f, a in zip(fields, aliases) if f in frame.columns]
    return folium.GeoJsonTooltip([f for f, _ in pairs], aliases=[_t(*a) for _, a in pairs])


#: The names of the areas' kinds (``areas.kind``) in the map's tooltips.
AREA_KINDS = {"old_estate": ("老旧小区", "old estate"), "urban_rural_fringe": ("城乡结合部", "urban-rural fringe")}


def _both(values: pd.Series, names: dict) -> pd.Series:
    """Codes as HTML in both languages (``names``: code → (zh, en)); an unknown code as itself."""
    return values.map(lambda v: _t(*names.get(v, (v, v))) if isinstance(v, str) else v)


def _map(analysis, *, basemap: str | None, k: int) -> folium.Map:
    layers = analysis.data.layers
    bounds = layers["streets"].to_crs(4326).total_bounds
    m = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2], zoom_start=14, tiles=None,
                   control_scale=True, prefer_canvas=True)
    m.default_js = [("leaflet", _JS_MARK)]
    m.default_css = [("leaflet_css", _CSS_MARK)]
    if basemap:
        folium.TileLayer(basemap, attr="base map (configured)", name=_t("底图", "base map")).add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    comm = layers["communities"].copy()
    comm["fringe"] = comm.get("ur_code", pd.Series(None, index=comm.index)).astype("string").isin(["112", "122"]).fillna(False)
    folium.GeoJson(_geojson(comm, ["id", "name", "ur_code", "fringe"]), name=_t("社区 / 城乡结合部", "communities / fringe"),
                   style_function=_style("communities"),
                   tooltip=_tooltip(comm, ["name", "ur_code"], [("社区", "community"),
                                                                ("城乡分类代码", "urban-rural code")])).add_to(m)
    areas = layers.get("areas")
    if areas is not None and len(areas):
        areas = areas.assign(kind_text=_both(areas["kind"], AREA_KINDS)) if "kind" in areas.columns else areas
        folium.GeoJson(_geojson(areas, ["id", "kind", "kind_text", "name"]), name=_t("重点区域", "areas"),
                       style_function=_style("areas"),
                       tooltip=_tooltip(areas, ["name", "kind_text"], [("名称", "name"), ("类型", "kind")])).add_to(m)
    estates = layers.get("estates")
    if estates is not None and len(estates):
        est = estates.copy()
        year = pd.to_numeric(est.get("year_built", pd.Series(np.nan, index=est.index)), errors="coerce")
        est["old_estate"] = (year <= 2000).fillna(False)
        folium.GeoJson(_geojson(est, ["id", "name", "year_built", "old_estate"]), name=_t("小区（老旧小区橙色）", "estates (old ones orange)"),
                       style_function=_style("estates"),
                       tooltip=_tooltip(est, ["name", "year_built"], [("小区", "estate"), ("建成年份", "built")])).add_to(m)
    grids = analysis.grids.copy()
    grids["load"] = np.where(grids["unstaffed"], "unstaffed", np.where(grids["over_capacity"], "over", "ok"))
    if "visits_kept_share" in grids.columns:
        grids["visits_kept"] = _kept_text(grids["visits_kept_share"], grids["visits_households"], k)
    folium.GeoJson(_geojson(grids, ["id", "name", "worker_name", "households", "load", "visits_kept"]),
                   name=_t("网格", "grids"), style_function=_style("grids"),
                   tooltip=_tooltip(grids, ["name", "worker_name", "households", "visits_kept"],
                                    [("网格", "grid"), ("网格员", "grid worker"), ("户数", "households"),
                                     ("走访周期达标率", "visit periods kept")])
                   ).add_to(m)
    spots = analysis.blindspots
    if spots is not None and len(spots):
        shown = spots.copy()
        for g in SPECIAL_GROUP_COUNTS:
            shown[g] = shown[g].map(lambda v: suppress(v, k))
        shown["reasons_text"] = shown["risk_reasons"].map(lambda rs: _t(*_reasons(rs)))
        shown["risk_text"] = _both(shown["risk"], COLOUR_NAMES)
        folium.GeoJson(_geojson(shown, ["id", "rank", "risk", "risk_text", "reasons_text", "households", "persons",
                                        "elderly_alone", "mental_disorder", "child_in_difficulty"]),
                       name=_t("盲区", "blind spots"), style_function=_style("blindspots"),
                       tooltip=_tooltip(shown, ["rank", "risk_text", "households", "elderly_alone", "reasons_text"],
                                        [("排名", "rank"), ("预警", "warning"), ("风险户数", "households at risk"),
                                         ("独居老人", "elderly alone"), ("原因", "reasons")])).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _inline(doc: str) -> str:
    """Replace the local markers by the Leaflet files' contents: nothing is fetched from anywhere."""
    js = (STATIC / "leaflet.js").read_text(encoding="utf-8")
    css = (STATIC / "leaflet.css").read_text(encoding="utf-8")
    doc = re.sub(r'<script src="' + re.escape(_JS_MARK) + r'"></script>', lambda _: f"<script>{js}</script>", doc)
    doc = re.sub(r'<link rel="stylesheet" href="' + re.escape(_CSS_MARK) + r'"\s*/?>', lambda _: f"<style>{css}</style>", doc)
    return doc


def _legend() -> str:
    items = []
    for lid in ("blindspots", "estates", "communities", "grids"):
        decl = layer_decl(lid)
        for c in decl.style.classes:
            items.append(f'<span class="sw" style="background:{c.color}"></span>{_t(c.zh, c.en)}')
    return '<div class="legend">' + " ".join(f"<span class=item>{i}</span>" for i in items) + "</div>"


#: The scorecard's indicators over special-group households: their counts are withheld below k, and so is
#: a share over fewer than k households (it would single them out).
_SPECIAL_HOUSEHOLD_INDICATORS = ("special_groups_served", "special_group_services")


@dataclass
class ReportContext:
    """What every section of the report reads. A section is a function of this context returning its HTML
    ("" leaves it out); :func:`_body` calls them in the report's order.

    ``author`` is who made the report (``gridcover analyze --report-author``; a line to sign by hand when
    None), ``made`` the day it was made (today by default)."""

    analysis: object
    k: int = DEFAULT_K
    author: str | None = None
    made: date = field(default_factory=date.today)
    basemap: str | None = None
    #: :func:`geo.history.build_trend`'s answer (trend.json), or None: the trend section is left out.
    trend: dict | None = None

    @property
    def summary(self) -> dict:
        return self.analysis.summary

    @property
    def as_of(self) -> str:
        s = self.summary
        return str((s.get("risk") or {}).get("reference_date") or (s.get("visits") or {}).get("as_of") or "")

    @cached_property
    def streets(self) -> pd.DataFrame:
        return pd.DataFrame(self.analysis.data.layers["streets"].drop(columns="geometry"))

    @property
    def street_names(self) -> str:
        return "、".join(self.streets["name"].astype(str))

    @cached_property
    def community_names(self) -> dict[str, str]:
        comm = self.analysis.data.layers["communities"]
        return dict(zip(comm["id"].astype(str), comm["name"].astype(str)))

    @cached_property
    def grid_names(self) -> dict[str, str]:
        """Each grid's name without its community's (鼓楼南街社区第1网格 → 第1网格) where it starts with it."""
        g = self.analysis.grids
        comm = g["community_id"].astype(str).map(self.community_names).fillna("")
        return {gid: (name[len(c):] if c and name.startswith(c) and len(name) > len(c) else name)
                for gid, name, c in zip(g["id"].astype(str), g["name"].astype(str), comm)}

    @cached_property
    def grid_community(self) -> dict[str, str]:
        g = self.analysis.grids
        return dict(zip(g["id"].astype(str), g["community_id"].astype(str)))

    @property
    def standard(self) -> float:
        return float(self.summary["grids"].get("households_per_worker_standard", 300))


def _body(ctx: ReportContext) -> str:
    """The report's sections in their order."""
    return "\n".join((
        _cover(ctx),
        _findings(ctx),
        _figures(ctx),
        _data_quality(ctx),
        _zones_section(ctx),
        _map_section(ctx),  # on paper: a page of its own
        _spots_section(ctx),
        _overloaded_section(ctx),
        _scorecard_section(ctx),
        _trend_section(ctx),
        _definitions_section(ctx),
        _signoff(ctx),
        _sources(),
    ))


def _trend_section(ctx: ReportContext) -> str:
    """趋势: the last twelve months against the target in force then (layers/trend.py), "" without a trend."""
    if not ctx.trend:
        return ""
    from layers.trend import trend_section  # matplotlib is imported only where a report is drawn

    return trend_section(_measured_trend(ctx.trend), names=INDICATOR_NAMES, both=_t)


def _measured_trend(trend: dict) -> dict:
    """The trend without the indicators no unit ever measured (流动人口登记率 without the field): no empty chart."""
    def measured(ind: dict) -> bool:
        return ind.get("value") is not None or any(p.get("value") is not None for p in ind.get("points") or [])

    units = [{**u, "indicators": {i: v for i, v in u["indicators"].items() if measured(v)}}
             for u in trend.get("units") or []]
    return {**trend, "units": [u for u in units if u["indicators"]]}


def _cover(ctx: ReportContext) -> str:
    """The header of page 1: whose report, judged on which day, made when and by whom."""
    s = ctx.summary
    ids = "、".join(ctx.streets["id"].astype(str))
    author = html.escape(ctx.author) if ctx.author else (
        f'<span class="blank"></span> {_t("（打印后手写）", "(to be written by hand)")}')
    rows = [
        (("街道", "street office"), f"{html.escape(ctx.street_names)} <small>{_t(f'（{ids}）', f'({ids})')}</small>"),
        (("数据截至（走访判定日）", "data as of (visits judged on)"), html.escape(ctx.as_of) or "–"),
        (("报告生成日期", "report made on"), ctx.made.isoformat()),
        (("编制", "prepared by"), author),
        (("范围", "scope"), _t(f"{len(ctx.community_names)} 个社区、{s['grids']['count']} 个网格、{s['households']:,} 户",
                              f"{len(ctx.community_names)} communities, {s['grids']['count']} grids, "
                              f"{s['households']:,} households")),
    ]
    meta = "".join(f"<tr><th>{_t(*label)}</th><td>{value}</td></tr>" for label, value in rows)
    note = _t(f"特殊群体只以户数、人数出现，1–{ctx.k - 1} 显示为“<{ctx.k}”；本报告不列任何个人。",
              f"Special groups appear only as counts, 1–{ctx.k - 1} shown as “<{ctx.k}”; no person is listed.")
    return (f'<header class="cover"><div class="org">{html.escape(ctx.street_names)}'
            f'{_t("办事处", " street office")}</div>'
            f'<h1>{_t("网格化管理脱管风险报告", "Report on households falling out of care")}</h1>'
            f'<table class="meta">{meta}</table><p class="note">{note}</p></header>')


def _findings(ctx: ReportContext) -> str:
    """要点: what the director should read first, each line pointing to its section."""
    s, risk = ctx.summary, ctx.summary.get("risk", {})
    items = []
    without = s.get("households_without_grid", 0)
    if without:
        per = sorted(((c.get("status_counts", {}).get("outside_all_grids", 0), c["name"]) for c in s.get("per_community", [])),
                     reverse=True)
        where = f"，最多在{per[0][1]}（{per[0][0]:,} 户）" if per and per[0][0] else ""
        where_en = f", most in {per[0][1]} ({per[0][0]:,})" if per and per[0][0] else ""
        items.append(_t(f"{without:,} 户（{without / max(s['households'], 1):.1%}）不在任何网格{where}。",
                        f"{without:,} households ({without / max(s['households'], 1):.1%}) are in no grid{where_en}."))
    g = s["grids"]
    if g.get("over_capacity"):
        items.append(_t(f"{g['over_capacity']} 个网格超负荷（每名专职网格员超过 {ctx.standard:,.0f} 户），其中 "
                        f"{g.get('unstaffed', 0)} 个无专职网格员：见“超负荷网格”。",
                        f"{g['over_capacity']} grids over the workload rule ({ctx.standard:,.0f} households per "
                        f"full-time worker), {g.get('unstaffed', 0)} without a full-time worker: see 'Grids over "
                        "capacity'."))
    card = ctx.analysis.scorecard
    if card is not None and len(card):
        street = card[(card["level"] == "street") & (card["pass"].astype("boolean") == False)]  # noqa: E712
        failed = list(dict.fromkeys(street["indicator"]))
        if failed:
            items.append(_t(f"街道层面未达标的指标：{'、'.join(INDICATOR_NAMES.get(i, (i,))[0] for i in failed)}。",
                            "Failed at street level: " + ", ".join(INDICATOR_NAMES.get(i, (i, i))[1] for i in failed)
                            + "."))
    spots = ctx.analysis.blindspots
    if spots is not None and len(spots):
        top = spots.iloc[0]
        where = "、".join(ctx.community_names.get(c, c) for c in str(top["community_ids"]).split(",") if c)
        items.append(_t(f"{len(spots)} 个盲区共 {risk.get('blind_spot_households', 0):,} 户有风险；最重的在{where}"
                        f"（{_reasons(top['risk_reasons'])[0]}）。",
                        f"{len(spots)} blind spots hold {risk.get('blind_spot_households', 0):,} households at risk; "
                        f"the worst is in {where} ({_reasons(top['risk_reasons'])[1]})."))
    visits = s.get("visits")
    if visits and visits.get("share_kept") is not None and not 0 < visits.get("households", ctx.k) < ctx.k:
        never = suppress(visits["never_visited"], ctx.k)
        items.append(_t(f"走访周期达标率 {visits['share_kept']:.1%}；{never} 户特殊群体户没有有效走访记录。",
                        f"Visit periods kept: {visits['share_kept']:.1%}; {never} special-group households have no "
                        "counted visit."))
    if not items:
        return ""
    return (f"<h2>{_t('要点', 'Findings')}</h2><ul class='findings'>"
            + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def _reasons(reasons) -> tuple[str, str]:
    """A blind spot's or grid's reasons in words, Chinese and English."""
    codes = [str(r) for r in (reasons if isinstance(reasons, (list, tuple, np.ndarray)) else str(reasons).split(","))
             if str(r)]
    return ("、".join(REASON_NAMES.get(r, (r, r))[0] for r in codes),
            ", ".join(REASON_NAMES.get(r, (r, r))[1] for r in codes))


def _figures(ctx: ReportContext) -> str:
    s, k = ctx.summary, ctx.k
    risk = s.get("risk", {})
    colours = risk.get("households_by_colour", {})
    figures = [
        (("户数", "households"), f"{s['households']:,}"),
        (("不在网格内", "in no grid"), f"{s['households_without_grid']:,}"),
        (("红色预警户", "red households"), f"{colours.get('red', 0):,}"),
        (("黄色预警户", "yellow households"), f"{colours.get('yellow', 0):,}"),
        (("盲区", "blind spots"), f"{risk.get('blind_spots', 0):,}"),
        (("超负荷网格", "grids over capacity"), f"{s['grids']['over_capacity']} / {s['grids']['count']}"),
        (("疑似未登记楼栋", "under-registered buildings"), f"{risk.get('under_registered_buildings', 0):,}"),
    ]
    visits = s.get("visits")
    if visits:
        kept = "–" if visits["share_kept"] is None else f"{visits['share_kept']:.1%}"
        if 0 < visits.get("households", k) < k:  # a share over fewer than k households would single them out
            kept = f"<{k}户"
        figures += [(("走访周期达标率", "visit periods kept"), kept),
                    (("无有效走访记录的特殊群体户", "special-group households with no counted visit"),
                     suppress(visits["never_visited"], k))]
    return "<div class=figures>" + "".join(f"<div class=figure>{_t(*label)}<b>{html.escape(value)}</b></div>"
                                           for label, value in figures) + "</div>"


def _data_quality(ctx: ReportContext) -> str:
    """数据完整性说明: what the data lack (``summary["data_quality"]``), layers not given, features left out."""
    s = ctx.summary
    items = [_t(q.get("message", ""), q.get("message_en") or q.get("message", "")) for q in s.get("data_quality") or []]
    missing = s.get("missing_optional_layers") or []
    if missing:
        items.append(_t(f"未提供的可选图层：{'、'.join(missing)}（相关指标未测或按缺省计）。",
                        f"Optional layers not given: {', '.join(missing)} (their figures are not measured)."))
    rejected = {layer: n for layer, n in (s.get("rejected") or {}).items() if n}
    if rejected:
        text = "、".join(f"{layer} {n:,} 个" for layer, n in sorted(rejected.items()))
        items.append(_t(f"因数据无效未参与分析的要素：{text}（见 rejects.geojson）。",
                        f"Features left out as invalid: {', '.join(f'{n:,} {layer}' for layer, n in sorted(rejected.items()))} "
                        "(listed in rejects.geojson)."))
    if not items:
        return ""
    return (f'<div class="quality"><h3>{_t("数据完整性说明", "Data completeness")}</h3>'
            f'<p class="note">{_t("以下情况说明“数据不全”，不等于“服务缺失”：", "These say the data are incomplete, not that a service is missing:")}</p>'
            "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul></div>")


def _map_section(ctx: ReportContext) -> str:
    """The map: Leaflet on screen; on paper a drawing of the same layers framed on the street (no controls)."""
    m = _map(ctx.analysis, basemap=ctx.basemap, k=ctx.k)
    map_doc = _inline(m.get_root().render()).replace("</head>", f"<style>{_MAP_PRINT_CSS}</style></head>", 1)
    return (f'<section class="map-section"><h2>{_t("地图：盲区、老旧小区、城乡结合部、网格", "Map: blind spots, old estates, urban-rural fringe, grids")}</h2>'
            f"{_legend()}"
            f'<iframe title="map" srcdoc="{html.escape(map_doc, quote=True)}"></iframe>'
            f"{_print_map(ctx)}"
            f'<p class="note">{_t("图中数字为盲区排名（见“重点盲区”表）。", "Numbers on the map are the blind spots’ ranks (see the blind-spot table).")}</p>'
            "</section>")


#: Inside the Leaflet map: nothing to click on paper (the printed report uses the drawing, this is for
#: a user who prints the map's frame alone).
_MAP_PRINT_CSS = ("@media print{.leaflet-control-zoom,.leaflet-control-layers{display:none !important}}"
                  "body.lang-en .zh{display:none} body:not(.lang-en) .en{display:none}")
_SVG_WIDTH = 1000.0


def _print_map(ctx: ReportContext) -> str:
    """An SVG drawing of the communities, estates, grids and blind spots, framed on the street, with the
    communities' names and the blind spots' ranks: what the printed report shows instead of the Leaflet map."""
    layers, crs = ctx.analysis.data.layers, ctx.analysis.data.layers["communities"].crs
    spots = ctx.analysis.blindspots
    frames = [layers["streets"].to_crs(crs)] + ([spots.to_crs(crs)] if spots is not None and len(spots) else [])
    x0, y0, x1, y1 = np.array([f.total_bounds for f in frames]).T
    x0, y0, x1, y1 = x0.min(), y0.min(), x1.max(), y1.max()
    pad = 0.02 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    scale = _SVG_WIDTH / (x1 - x0)
    height = (y1 - y0) * scale

    def fx(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - x0) * scale, (y1 - xy[:, 1]) * scale])

    comm = layers["communities"].copy()
    comm["fringe"] = comm.get("ur_code", pd.Series(None, index=comm.index)).astype("string").isin(["112", "122"]).fillna(False)
    parts = [_svg_layer(comm, "communities", "fringe", fx, outline=False)]
    estates = layers.get("estates")
    if estates is not None and len(estates):
        est = estates.copy()
        est["old_estate"] = (pd.to_numeric(est.get("year_built", pd.Series(np.nan, index=est.index)),
                                           errors="coerce") <= 2000).fillna(False)
        parts.append(_svg_layer(est, "estates", "old_estate", fx))
    grids = ctx.analysis.grids.copy()
    grids["load"] = np.where(grids["unstaffed"], "unstaffed", np.where(grids["over_capacity"], "over", "ok"))
    parts.append(_svg_layer(grids.to_crs(crs), "grids", "load", fx))
    if spots is not None and len(spots):
        parts.append(_svg_layer(spots.to_crs(crs), "blindspots", "risk", fx))
    decl = layer_decl("communities").style
    parts.append(_svg_layer(comm, "communities", None, fx, fill=False, colour=decl.outline or "#6a3d9a",
                            width=decl.width * 1.5))
    parts.append(_svg_labels(comm, fx, "name", size=20, cls="lbl"))
    if spots is not None and len(spots):
        ranked = spots.to_crs(crs).head(15)
        parts.append(_svg_labels(ranked, fx, "rank", size=17, cls="rank"))
    style = ("<style>.lbl{font-weight:700;fill:#3b2a55} .rank{font-weight:700;fill:#000}"
             " text{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round;"
             'font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;text-anchor:middle;'
             "dominant-baseline:middle}</style>")
    return (f'<svg class="printmap" viewBox="0 0 {_SVG_WIDTH:.0f} {height:.0f}" xmlns="http://www.w3.org/2000/svg" '
            f'role="img" aria-label="map">{style}{"".join(parts)}</svg>')


def _svg_layer(frame: gpd.GeoDataFrame, layer_id: str, field_name: str | None, fx, *, outline: bool = True,
               fill: bool = True, colour: str | None = None, width: float | None = None) -> str:
    """One layer's polygons as SVG paths in the declaration's colours (``layers/catalog.py``)."""
    style = layer_decl(layer_id).style
    geoms = shapely.simplify(frame.geometry.to_numpy(), 0.5)  # metres: well under a drawn pixel
    values = frame[field_name].to_numpy() if field_name else [None] * len(frame)
    paths = []
    for geom, value in zip(geoms, values):
        d = _svg_path(geom, fx)
        if not d:
            continue
        fill_attr = (f'fill="{style.color_of(value)}" fill-opacity="{style.opacity}"' if fill else 'fill="none"')
        stroke = colour or (style.outline if outline else None)
        stroke_attr = (f' stroke="{stroke}" stroke-width="{(width or style.width) * 0.8:.1f}"' if stroke else "")
        paths.append(f'<path d="{d}" {fill_attr}{stroke_attr} fill-rule="evenodd"/>')
    return f'<g class="{layer_id}">' + "".join(paths) + "</g>"


def _svg_path(geom, fx) -> str:
    """The path data of a (multi)polygon."""
    out = []
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = fx(np.asarray(ring.coords)[:, :2])
            out.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in xy) + "Z")
    return "".join(out)


def _svg_labels(frame: gpd.GeoDataFrame, fx, column: str, *, size: float, cls: str) -> str:
    """A text label per feature at a point inside it."""
    points = shapely.point_on_surface(frame.geometry.to_numpy())
    xy = fx(shapely.get_coordinates(points))
    return "".join(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" class="{cls}">{html.escape(str(v))}</text>'
                   for (x, y), v in zip(xy, frame[column]))


def _table(head: list[tuple[str, str, str]], rows: list[str], cls: str = "") -> str:
    """A table whose header repeats on every printed page: ``head`` is (zh, en, class) per column."""
    cells = "".join(f"<th class='{c}'>{_t(zh, en)}</th>" for zh, en, c in head)
    return f"<table class='{cls}'><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _zones_section(ctx: ReportContext) -> str:
    """Households at risk by zone, and why the fringe has two figures (the three-way split and the flag)."""
    risk = ctx.summary.get("risk", {})
    by_zone = risk.get("by_zone", {})
    if not by_zone:
        return ""
    rows = [f"<tr><td>{_t(*ZONE_NAMES[z])}</td><td class=num>{v['households']:,}</td><td class=num>{v['red']:,}</td>"
            f"<td class=num>{v['yellow']:,}</td><td class=num>{v['blue']:,}</td></tr>" for z, v in by_zone.items()]
    total = sum(v["households"] for v in by_zone.values())
    rows.append(f"<tr><th>{_t('合计', 'total')}</th><th class=num>{total:,}</th>"
                + "".join(f"<th class=num>{sum(v[c] for v in by_zone.values()):,}</th>" for c in ("red", "yellow", "blue"))
                + "</tr>")
    head = [("区域", "zone", ""), ("户数", "households", "num"), ("红", "red", "num"), ("黄", "yellow", "num"),
            ("蓝", "blue", "num")]
    note = _fringe_note(ctx, by_zone)
    return (f"<section class=keep><h2>{_t('按区域的风险户数', 'Households at risk by zone')}</h2>{_table(head, rows)}"
            + (f"<p class=note>{note}</p>" if note else "") + "</section>")


def _fringe_note(ctx: ReportContext, by_zone: dict) -> str:
    """Why the fringe has fewer households in the zone table than in the scorecard: the table puts a household in
    one zone (old estate first), the scorecard's zone rows count every fringe household (its denominator)."""
    card = ctx.analysis.scorecard
    if card is None or not len(card) or "fringe" not in by_zone:
        return ""
    rows = card[(card["level"] == "zone") & (card["id"] == "fringe") & (card["indicator"] == "households_covered")]
    if not len(rows) or pd.isna(rows["denominator"].iloc[0]):
        return ""
    every, here = int(rows["denominator"].iloc[0]), int(by_zone["fringe"]["households"])
    both = every - here
    if both <= 0:
        return ""
    return _t(f"本表每户只计入一个区域：既在老旧小区又在城乡结合部的 {both:,} 户计入老旧小区，所以城乡结合部在本表为 "
              f"{here:,} 户；城乡结合部全部 {every:,} 户（含这些老旧小区户）是考核表“按区域”一栏所用的户数，两数之差就是这些户。",
              f"Each household counts in one zone here: the {both:,} households both in an old estate and in the fringe "
              f"count as old estate, so the fringe has {here:,} here; all {every:,} fringe households (those included) "
              "are what the scorecard's zone rows count.")


def _spots_section(ctx: ReportContext, top: int = 15) -> str:
    """The heaviest blind spots: where (community and grid names), what is wrong, how many at risk."""
    spots, k = ctx.analysis.blindspots, ctx.k
    title = f"<h2>{_t('重点盲区（按权重排序）', 'Top blind spots (by weight)')}</h2>"
    if spots is None or not len(spots):
        return title + f"<p>{_t('未发现盲区。', 'No blind spot found.')}</p>"
    head = [("排名", "rank", "num"), ("预警", "risk", "nowrap"), ("位置", "where", ""), ("存在问题", "what is wrong", ""),
            ("风险户（人）", "households (persons) at risk", "num"), ("独居老人", "elderly alone", "num"),
            ("严重精神障碍", "severe mental disorders", "num"), ("困境儿童", "children in difficulty", "num"),
            ("疑似未登记楼栋", "under-registered buildings", "num"), ("面积（公顷）", "area (ha)", "num")]
    rows = []
    for r in spots.head(top).itertuples(index=False):
        zh, en = COLOUR_NAMES.get(r.risk, (r.risk, r.risk))
        reasons = _reasons(r.risk_reasons)
        comms = [c for c in str(r.community_ids).split(",") if c]
        grids = [g for g in str(r.grid_ids).split(",") if g]
        where = ("、".join(html.escape(ctx.community_names.get(c, c)) for c in comms)
                 + (f"<div class=sub>{_t(*_grid_list(ctx, grids, len(comms) > 1))}</div>"
                    if grids else f"<div class=sub>{_t('不在任何网格', 'in no grid')}</div>"))
        area = getattr(r, "area_m2", None)
        rows.append(f"<tr><td class=num>{r.rank}</td><td class='{r.risk} nowrap'>{_t(zh, en)}</td>"
                    f"<td class=where>{where}</td><td class=reasons>{_t(*reasons)}</td>"
                    f"<td class=num>{r.households:,}<div class=sub>{_t(f'（{r.persons:,} 人）', f'({r.persons:,} persons)')}</div></td>"
                    f"<td class=num>{_count(r.elderly_alone, k)}</td><td class=num>{_count(r.mental_disorder, k)}</td>"
                    f"<td class=num>{_count(r.child_in_difficulty, k)}</td><td class=num>{r.unregistered_buildings}</td>"
                    f"<td class=num>{'–' if area is None or pd.isna(area) else f'{area / 10_000:.1f}'}</td></tr>")
    more = _t(f"共 {len(spots)} 个盲区，列出前 {top} 个（完整列表见 blindspots.geojson 或网页地图）。",
              f"{len(spots)} blind spots; the first {top} are listed (all in blindspots.geojson and on the web map).") \
        if len(spots) > top else ""
    return title + _table(head, rows, "spots") + (f"<p class=note>{more}</p>" if more else "")


def _grid_list(ctx: ReportContext, grid_ids: list[str], by_community: bool) -> tuple[str, str]:
    """Grids by their short names, Chinese and English (第1、3、4网格 / grids 1, 3, 4), each community's after its
    name when ``by_community``."""
    groups: dict[str, list[str]] = {}
    for gid in grid_ids:
        groups.setdefault(ctx.grid_community.get(gid, "") if by_community else "", []).append(ctx.grid_names.get(gid, gid))
    zh, en = [], []
    for community, names in groups.items():
        numbers = [re.fullmatch(r"第(\d+)网格", n) for n in names]
        where = ctx.community_names.get(community, community)
        if all(numbers):
            ordered = [str(v) for v in sorted(int(m.group(1)) for m in numbers)]
            zh.append(where + "第" + "、".join(ordered) + "网格")
            en.append((f"{where}: " if where else "") + ("grid " if len(ordered) == 1 else "grids ") + ", ".join(ordered))
        else:
            more = len(names) > 8
            zh.append(where + "、".join(names[:8]) + (f" 等 {len(names)} 个" if more else ""))
            en.append((f"{where}: " if where else "") + ", ".join(names[:8]) + (f" ({len(names)} in all)" if more else ""))
    return "；".join(zh), "; ".join(en)


def _grid_name(ctx: ReportContext, grid_id: str) -> tuple[str, str]:
    """A grid's name without its community's, Chinese and English (第15网格 / grid 15)."""
    name = ctx.grid_names.get(grid_id, grid_id)
    number = re.fullmatch(r"第(\d+)网格", name)
    return name, (f"grid {number.group(1)}" if number else name)


def _overloaded_section(ctx: ReportContext) -> str:
    """超负荷网格: each grid over the workload rule with its worker, households and the workers it lacks."""
    g = ctx.analysis.grids
    over = g[g["over_capacity"].astype(bool) | g["unstaffed"].astype(bool)].copy()
    title = f"<h2>{_t('超负荷网格', 'Grids over capacity')}</h2>"
    weight = ctx.summary["grids"].get("special_group_weight", 1.0)
    rule = _t(f"工作量规则：每名专职网格员不超过 {ctx.standard:,.0f} 户（有走访要求的特殊群体户每户按 {weight:g} 户计）；"
              "没有专职网格员而有住户的网格一律超负荷。",
              f"Workload rule: at most {ctx.standard:,.0f} households per full-time grid worker (a special-group household "
              f"with visit rules counts {weight:g}); a grid with households and no full-time worker is always over.")
    if not len(over):
        return title + f"<p>{_t('没有超负荷网格。', 'No grid is over capacity.')}</p><p class=note>{rule}</p>"
    workers = pd.to_numeric(over["workers"], errors="coerce").fillna(0).to_numpy()
    load = pd.to_numeric(over["workload"], errors="coerce").fillna(0).to_numpy()
    over["need"] = np.maximum(np.maximum(1, np.ceil(load / ctx.standard)) - workers, 0).astype(int)
    over["ratio"] = np.where(workers > 0, load / np.maximum(workers, 1) / ctx.standard, np.inf)
    over = over.sort_values(["ratio", "workload"], ascending=False)
    head = [("网格", "grid", ""), ("社区", "community", ""), ("网格员", "grid worker", ""),
            ("专职网格员", "full-time workers", "num"), ("户数", "households", "num"),
            ("工作量（户）", "workload", "num"), ("每名专职网格员户数", "households per worker", "num"),
            ("超出标准", "over the rule by", "num"), ("需增配专职网格员", "workers to add", "num")]
    rows = []
    for r in over.itertuples(index=False):
        per = "–" if not r.workers else f"{r.households_per_worker:,.0f}"
        beyond = _t("无专职网格员", "no full-time worker") if not np.isfinite(r.ratio) else f"+{r.ratio - 1:.0%}"
        worker = html.escape(str(r.worker_name)) if isinstance(r.worker_name, str) and r.worker_name else "–"
        rows.append(f"<tr><td class=nowrap>{_t(*_grid_name(ctx, str(r.id)))}</td>"
                    f"<td class=nowrap>{html.escape(ctx.community_names.get(str(r.community_id), str(r.community_id)))}</td>"
                    f"<td class=nowrap>{worker}</td><td class=num>{int(r.workers)}</td><td class=num>{int(r.households):,}</td>"
                    f"<td class=num>{r.workload:,.0f}</td><td class=num>{per}</td><td class=num>{beyond}</td>"
                    f"<td class=num>{r.need}</td></tr>")
    return title + f"<p class=note>{rule}</p>" + _table(head, rows, "overloaded")


def _scorecard_section(ctx: ReportContext) -> str:
    """The scorecard against the plan's targets: one row per unit (the street, each community), one column per
    indicator; then the zones (old estates, the fringe, the rest)."""
    card = ctx.analysis.scorecard
    if card is None or not len(card):
        return ""
    units = card[card["level"].isin(["street", "community"])]
    zones = card[card["level"] == "zone"]
    legend = _t("✓ 达标　✗ 未达标　未测：数据中没有所需字段。数值下方为分子/分母（定义见“指标说明”）。",
                "✓ pass, ✗ fail; not measured: the data lack the field. Below each value: numerator/denominator "
                "(see Definitions).")
    out = [f"<h2>{_t('对照工作方案目标的考核表', 'Scorecard against the plan’s targets')}</h2>",
           f"<p class=note>{legend}</p>",
           _score_matrix(ctx, units.sort_values("level", key=lambda s: s != "street", kind="stable"))]
    if len(zones):
        out += [f"<h3>{_t('按区域', 'By zone')}</h3>", _score_matrix(ctx, zones)]
    return "".join(out)


def _score_matrix(ctx: ReportContext, card: pd.DataFrame) -> str:
    known = list(INDICATOR_NAMES)  # the same column order in every table and however the rows were read
    indicators = sorted(dict.fromkeys(card["indicator"]), key=lambda i: known.index(i) if i in known else len(known))
    targets = card.drop_duplicates("indicator").set_index("indicator")["target"]
    head = [("单位", "unit", "")] + [
        (f"{INDICATOR_NAMES.get(i, (i, i))[0]}\n{_target_text(i, targets[i])}",
         f"{INDICATOR_NAMES.get(i, (i, i))[1]} {_target_text(i, targets[i])}", "num") for i in indicators]
    rows = []
    for (level, uid), unit in card.groupby(["level", "id"], sort=False):
        first = unit.iloc[0]
        name = ZONE_NAMES.get(uid, (first["name"], first["name"])) if level == "zone" else (first["name"], first["name"])
        by = {row["indicator"]: row for row in unit.to_dict("records")}
        cells = "".join(_score_cell(ctx, by.get(i), level=level, uid=str(uid)) for i in indicators)
        tag = "th" if level == "street" else "td"
        rows.append(f"<tr><{tag} class=nowrap>{_t(*name)}</{tag}>{cells}</tr>")
    return _table(head, rows, "scorecard").replace("\\n", "<br>").replace("\n", "<br>")


def _target_text(indicator: str, target) -> str:
    if target is None or pd.isna(target):
        return ""
    return f"≤ {target:,.0f}" if indicator == "households_per_worker" else f"≥ {target:.0%}"


def _score_cell(ctx: ReportContext, row: dict | None, *, level: str, uid: str) -> str:
    """One indicator of one unit: value, verdict, numerator/denominator; special-group counts withheld below k."""
    if row is None:
        return "<td class='num unknown'>–</td>"
    k, ind, value = ctx.k, row["indicator"], row["value"]
    ok = row.get("pass")
    if value is None or pd.isna(value):
        return f"<td class='num unknown'>{_t('未测', 'not measured')}</td>"
    num, den = row.get("numerator"), row.get("denominator")
    households = _judged_households(ctx, row, level=level, uid=uid)
    if households is not None and 0 < households < k:
        return f"<td class='num unknown'>&lt;{k}{_t('户', ' households')}</td>"
    shown = f"{value:,.1f}" if ind == "households_per_worker" else f"{value:.1%}"
    cls = "unknown" if ok is None or pd.isna(ok) else ("pass" if bool(ok) else "fail")
    mark = {"pass": "✓ ", "fail": "✗ "}.get(cls, "")
    sub = ""
    if num is not None and den is not None and not pd.isna(num) and not pd.isna(den):
        if ind in _SPECIAL_HOUSEHOLD_INDICATORS:
            sub = f"{_count(num, k)}/{_count(den, k)}"
        elif ind == "households_per_worker":
            sub = _t(f"{num:,.0f}户/{den:,.0f}人", f"{num:,.0f} / {den:,.0f} workers")
        elif ind == "visits_on_time" and ctx.summary.get("visits"):
            sub = _t(f"({int(num):,}/{int(den):,}) 周期", f"({int(num):,} / {int(den):,}) periods")
        else:
            sub = f"{int(num):,}/{int(den):,}"
    return f"<td class='num {cls}'>{mark}{shown}<div class=sub>{sub}</div></td>"


def _judged_households(ctx: ReportContext, row: dict, *, level: str, uid: str) -> int | None:
    """How many special-group households a share is over (None for other indicators): a share over fewer than k
    of them is withheld."""
    ind = row["indicator"]
    if ind in _SPECIAL_HOUSEHOLD_INDICATORS:
        return int(row["denominator"]) if row.get("denominator") is not None and not pd.isna(row["denominator"]) else None
    if ind != "visits_on_time":
        return None
    visits = ctx.summary.get("visits")
    if not visits:
        return int(row["denominator"]) if row.get("denominator") is not None and not pd.isna(row["denominator"]) else None
    per = visits.get("per_street" if level == "street" else "per_community", [])
    return next((int(v["households"]) for v in per if str(v["id"]) == uid), None)


#: What each indicator counts over what (docs/risk.md, "Scorecard"), in both languages.
DEFINITIONS = {
    "special_groups_served": (
        "有独居老人、困境儿童或严重精神障碍患者的户中，只在一个网格内且按时走访的户 ÷ 这些户。",
        "households with an elderly person living alone, a child in difficulty or a person with a severe mental "
        "disorder that are in exactly one grid and visited on time ÷ those households."),
    "weak_areas_served": (
        "老旧小区和城乡结合部的户中，只在一个网格内的户 ÷ 老旧小区和城乡结合部的户。",
        "old-estate and fringe households in exactly one grid ÷ old-estate and fringe households."),
    "visits_on_time": (
        "有走访记录时：统计期内已达标的走访周期 ÷ 应走访的周期（各特殊群体户按各自的走访要求计；无记录的户每个周期都未达标）；"
        "无走访记录时：在规定间隔内走访过的户 ÷ 有走访要求的户。",
        "with visit records: periods kept ÷ periods required over the window, per the rule of each special-group "
        "household (a household with no record misses every period); without: households visited within their "
        "interval ÷ households with a visit rule."),
    "basic_services": (
        "在各自生活圈层级内（5/10/15 分钟步行）能到达全部基本保障类设施的户 ÷ 有位置的户。",
        "located households reaching every basic-guarantee facility category within its tier (5/10/15 minutes' "
        "walk) ÷ located households."),
    "special_group_services": (
        "特殊群体户中，能在层级内到达本群体所需服务（独居老人：日间照料、卫生服务站；困境儿童：幼儿园、小学；"
        "严重精神障碍：社区卫生服务中心）的户 ÷ 特殊群体户。",
        "special-group households reaching their group's services within the tier ÷ special-group households."),
    "migrants_registered": (
        "已登记的流动人口户 ÷ 流动人口户（住户数据有 migrant_registered 字段时才计算）。",
        "registered migrant households ÷ migrant households (only where the data have migrant_registered)."),
    "households_per_worker": (
        "单位内各网格的户数（按工作量规则加权）÷ 专职网格员人数；越低越好。",
        "the unit's households (weighted by the workload rule) ÷ its full-time grid workers; lower is better."),
    "full_time_share": (
        "专职网格员 ÷ 全部网格员（专职 + 兼职网格员）；信息员、调解员不是网格员，不计入。",
        "full-time grid workers ÷ all grid workers (full-time + part-time); information officers and mediators "
        "are not grid workers."),
    "households_covered": (
        "区域内只在一个网格内的户 ÷ 区域内的户（仅“按区域”一栏）。",
        "households of the zone in exactly one grid ÷ households of the zone (zone rows only)."),
    "cases_on_time": (
        "已有结论的事件（已受理或已办结，或已超过时限）中，在时限内响应并办结的事件 ÷ 这些事件；时限：一般诉求 2 小时内响应，"
        "紧急事件 15 分钟内响应，跨部门事项 3 个工作日内办结（按节假日和调休日历计算工作日，docs/cases.md）。",
        "cases decided (answered and closed, or past a limit) that were answered and closed within their limits ÷ "
        "those cases; limits: a general request answered within 2 h, an urgent one within 15 min, a "
        "cross-department matter closed within 3 working days (counted on the holiday calendar, docs/cases.md)."),
}
TERMS = (
    (("红色预警", "red"), ("严重精神障碍患者不在网格内或走访逾期；独居老人、困境儿童不在任何网格；网格内有紧急事件超过时限仍未办结的，"
                         "该网格为红色。",
                         "a person with a severe mental disorder in no grid or overdue; an elderly person alone or a "
                         "child in difficulty in no grid; a grid holding an urgent case open past its limit is red.")),
    (("黄色预警", "yellow"), ("特殊群体成员到达不了本群体的服务，或长期未走访。",
                            "a special-group member out of reach of their services, or not visited for long.")),
    (("蓝色预警", "blue"), ("其他脱管原因（如不在网格、网格超负荷、基本服务缺配、疑似未登记出租）。",
                          "any other reason (no grid, grid over capacity, missing services, possible unregistered "
                          "rentals).")),
    (("盲区", "blind spot"), ("相邻的风险 H3 单元合并成的区域，限于一个社区；按权重排序（默认：红色预警户 10、黄 3、蓝 1、"
                            "疑似未登记楼栋 5）。",
                            "adjacent H3 cells at risk merged within one community, ranked by weight (by default red "
                            "households 10, yellow 3, blue 1, under-registered buildings 5).")),
    (("疑似未登记楼栋", "under-registered building"), ("住宅楼登记户数不到估算套数（默认：层数×占地×0.75÷90㎡）的一半。",
                                                   "a residential building with fewer household records than half its "
                                                   "estimated flats (by default floors × footprint × 0.75 ÷ 90 m²).")),
    (("老旧小区", "old estate"), ("2000 年及以前建成的小区或楼栋，或数据中标为老旧小区的区域。",
                                "an estate or building built in 2000 or earlier, or an area marked old estate.")),
)
#: How the fringe was found (``summary["risk"]["fringe_source"]``, geo/areas.py), said in the definitions.
FRINGE_SOURCES = {
    "ur_code": ("城乡分类代码为 112（城乡结合区）、122（镇乡结合区）的社区。", "communities with urban-rural code 112 or 122."),
    "areas": ("数据中标为城乡结合部的区域（areas 图层）。", "the areas the data mark as fringe (areas layer)."),
    "derived": ("由楼栋层数推断：低层楼栋为主、距高层密集区 1.5 公里以内的区域（数据未标出城乡结合部）。",
                "derived from building heights: mostly low buildings within 1.5 km of the dense core (the data "
                "name no fringe)."),
    "none": ("数据未标出城乡结合部，本报告中城乡结合部为 0 户。", "the data name no fringe: no household is in it here."),
}


def _definitions_section(ctx: ReportContext) -> str:
    """指标说明: what every indicator counts over what, its target, and the words the report uses."""
    card = ctx.analysis.scorecard
    targets = {} if card is None or not len(card) else card.drop_duplicates("indicator").set_index("indicator")["target"].to_dict()
    shown = [i for i in INDICATOR_NAMES if i in targets] if targets else list(INDICATOR_NAMES)
    items = []
    for ind in shown:
        zh, en = INDICATOR_NAMES[ind]
        d_zh, d_en = DEFINITIONS[ind]
        target = _target_text(ind, targets.get(ind))
        items.append(f"<dt>{_t(zh, en)} <small>{_t('目标 ', 'target ')}{target}</small></dt><dd>{_t(d_zh, d_en)}</dd>")
    visits = ctx.summary.get("visits")
    if visits:
        rules = "；".join(f"{GROUP_NAMES.get(g, (g,))[0]}每{'周' if r['period'] == 'iso_week' else '月'}至少 "
                         f"{r['at_least']} 次{'入户' if list(r.get('kinds', [])) == ['home'] else '走访'}"
                         f"{'（电话也计）' if 'phone' in r.get('kinds', []) else ''}"
                         for g, r in visits.get("rules", {}).items())
        weeks, as_of = visits["window_weeks"], visits["as_of"]
        window = _t(f"截至 {as_of} 的 {weeks} 周内已结束的周期；{rules}。",
                    f"the periods completed in the {weeks} weeks to {as_of}; see docs/tasks.md for the rules.")
        items.append(f"<dt>{_t('走访统计期', 'visit window')}</dt><dd>{window}</dd>")
    source = str((ctx.summary.get("risk") or {}).get("fringe_source") or "none").split(" ")[0]
    fringe = [FRINGE_SOURCES[p] for p in source.split("+") if p in FRINGE_SOURCES] or [FRINGE_SOURCES["none"]]
    fringe_text = ("或".join(zh.rstrip("。") for zh, _ in fringe) + "。", " Or ".join(en for _, en in fringe))
    terms = "".join(f"<dt>{_t(*name)}</dt><dd>{_t(*text)}</dd>"
                    for name, text in (*TERMS, (("城乡结合部", "urban-rural fringe"), fringe_text)))
    rules_source = (ctx.summary.get("risk") or {}).get("rules_source", "built-in")
    if rules_source != "built-in":
        terms += "<p class=note>" + _t(f"本次分析的规则与权重取自 {rules_source}，与上述默认值可能不同。",
                                       f"The rules and weights of this analysis are those of {rules_source}.") + "</p>"
    return (f"<h2>{_t('指标说明', 'Definitions')}</h2><dl class=defs>{''.join(items)}{terms}</dl>")


def _signoff(ctx: ReportContext) -> str:
    """The lines the office signs: prepared by, reviewed by (审核), issued by (签发)."""
    made = html.escape(ctx.author) if ctx.author else '<span class="line"></span>'
    cells = [(("编制", "prepared by"), made), (("审核", "reviewed by"), '<span class="line"></span>'),
             (("签发", "issued by"), '<span class="line"></span>'),
             (("日期", "date"), '<span class="line"></span>')]
    row = "".join(f"<td>{_t(label[0] + '：', label[1] + ':')} {value}</td>" for label, value in cells)
    note = _t(f"{ctx.street_names}办事处　报告生成于 {ctx.made.isoformat()}，数据截至 {ctx.as_of}。",
              f"{ctx.street_names} street office; made on {ctx.made.isoformat()}, data as of {ctx.as_of}.")
    return (f'<div class="signoff"><b>{_t("审核签发", "Review and issue")}</b><table><tr>{row}</tr></table>'
            f'<p class="note">{note}</p></div>')


def _sources() -> str:
    text = _t("数据：© OpenStreetMap 贡献者（ODbL）；社区名录 adcode 数据集（CC BY 4.0）。本报告由 gridcover 生成，无需联网。",
              "Data: © OpenStreetMap contributors (ODbL); community register from the adcode dataset (CC BY 4.0). "
              "Made by gridcover; works without internet access.")
    return f"<p class=note>{text}</p>"


def _page_css(ctx: ReportContext) -> str:
    """The printed page: A4, the running header (title, as-of date) from page 2 on, page x of y at the foot, in
    the language shown (named pages ``zh`` and ``en``: the body's language switch picks one)."""
    street = ctx.street_names.replace('"', "'")
    words = {"zh": (f"{street} 网格化管理脱管风险报告", f"数据截至 {ctx.as_of}", '"第 " counter(page) " 页 / 共 " counter(pages) " 页"'),
             "en": (f"{street}: report on households falling out of care", f"data as of {ctx.as_of}",
                    '"page " counter(page) " of " counter(pages)')}
    box = "font-size:8pt;color:#555"
    out = []
    for lang, (title, as_of, foot) in words.items():
        out.append(f'@page {lang}{{size:A4 portrait;margin:16mm 13mm 17mm 13mm;'
                   f'@top-left{{content:"{title}";{box}}}@top-right{{content:"{as_of}";{box}}}'
                   f'@bottom-center{{content:{foot};font-size:8pt;color:#333}}}}'
                   f"@page {lang}:first{{@top-left{{content:none}}@top-right{{content:none}}}}")
    return "".join(out) + "body{page:zh} body.lang-en{page:en}"


def _titles(ctx: ReportContext) -> tuple[str, str]:
    """The document's title (the browser tab, a saved PDF's name) in Chinese and English."""
    return (f"{ctx.street_names} 网格化管理脱管风险报告 — gridcover",
            f"{ctx.street_names}: report on households falling out of care — gridcover")


#: The language switch: the page, the map inside its frame and the document's title follow it.
_SWITCH_JS = """function gcSwitch(){var en=document.body.classList.toggle('lang-en');
document.documentElement.lang=en?'en':'zh-CN';document.title=document.body.dataset[en?'titleEn':'titleZh'];
document.querySelectorAll('iframe').forEach(function(f){try{f.contentDocument.body.classList.toggle('lang-en',en);}catch(e){}});}"""


def render_report(analysis, *, k: int = DEFAULT_K, basemap: str | None = None, author: str | None = None,
                  made: date | None = None, trend: dict | None = None) -> str:
    """The report as one HTML document (Chinese, English switchable; printable on A4); ``trend`` is
    :func:`geo.history.build_trend`'s answer (the trend section; none without it)."""
    ctx = ReportContext(analysis, k=k, author=author, made=made or date.today(), basemap=basemap, trend=trend)
    css = (STATIC.parent / "report" / "report.css").read_text(encoding="utf-8")
    streets = ",".join(ctx.streets["id"].astype(str))
    title_zh, title_en = (html.escape(t, quote=True) for t in _titles(ctx))
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="gridcover:k" content="{k}"><meta name="gridcover:streets" content="{html.escape(streets)}">
<title>{title_zh}</title>
<style>{css}{_page_css(ctx)}</style><script>{_SWITCH_JS}</script></head>
<body data-title-zh="{title_zh}" data-title-en="{title_en}">
<button class="switch" onclick="gcSwitch()">中文 / English</button>
<!--gridcover:notice-->
{_body(ctx)}
</body></html>
"""


def write_report(analysis, path: str | Path, *, k: int = DEFAULT_K, basemap: str | None = None,
                 author: str | None = None, made: date | None = None) -> Path:
    """Write ``report.html`` (or ``path``); ``author`` is who made it (a line to sign by hand without). The trend
    section comes from ``trend.json`` beside it (docs/history.md), when there is one."""
    path = Path(path)
    trend_file = path.parent / "trend.json"
    trend = json.loads(trend_file.read_text(encoding="utf-8")) if trend_file.is_file() else None
    path.write_text(render_report(analysis, k=k, basemap=basemap, author=author, made=made, trend=trend),
                    encoding="utf-8")
    return path


# ------------------------------------------------------------------ the report of a stored workspace
#: The layers of the analysis the report draws, besides the grids and blind spots.
_REPORT_INPUTS = ("streets", "communities", "estates", "areas")
#: The order of the scorecard's units, as the analysis makes it (communities, then the street, then the zones).
_LEVEL_ORDER = {"community": 0, "street": 1, "zone": 2}


@dataclass
class StoredAnalysis:
    """An analysis as a workspace keeps it (:func:`stored_analysis`): the parts the report reads, in the
    metric CRS the analysis used (``data.layers``: streets, communities, estates, areas)."""

    data: object
    grids: gpd.GeoDataFrame
    blindspots: gpd.GeoDataFrame | None
    scorecard: pd.DataFrame | None
    summary: dict
    history: object


def stored_analysis(workspace) -> StoredAnalysis:
    """The analysis a workspace (GeoPackage or PostGIS: the store contract only) holds, for the report: its layers
    projected back to the analysis' metric CRS, its list fields as lists, the scorecard the latest snapshot of
    ``scorecard_history`` (the one this analysis kept) in the order the analysis made it.

    >>> report = render_report(stored_analysis(open_workspace(db=DSN)))  # doctest: +SKIP
    """
    from types import SimpleNamespace

    from layers.features import LIST_FIELDS

    summary = workspace.summary()
    crs = summary.get("metric_crs") or None

    def read(name: str) -> gpd.GeoDataFrame | None:
        if not workspace.has(name):
            return None
        frame = workspace.read(name)
        frame = frame.to_crs(crs) if crs else frame
        lists = [c for c in LIST_FIELDS if c in frame.columns]
        if lists:
            frame = frame.copy()
            for c in lists:
                frame[c] = [json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in frame[c]]
        return frame

    layers = {name: frame for name in _REPORT_INPUTS if (frame := read(name)) is not None}
    history = workspace.scorecard_history()
    return StoredAnalysis(data=SimpleNamespace(layers=layers), grids=read("grids"), blindspots=read("blindspots"),
                          scorecard=_stored_scorecard(history, _summary_as_of(summary)), summary=summary,
                          history=history)


def _summary_as_of(summary: dict) -> str | None:
    s = summary
    day = (s.get("risk") or {}).get("reference_date") or (s.get("visits") or {}).get("as_of")
    return str(day)[:10] if day else None


def _stored_scorecard(history, as_of: str | None) -> pd.DataFrame | None:
    """The snapshot of ``as_of`` (else the latest) as the analysis' scorecard, in its order."""
    rows = history.rows
    if not len(rows):
        return None
    day = as_of if as_of in set(rows["as_of"]) else max(rows["as_of"])
    card = rows[rows["as_of"] == day].drop(columns=["as_of", "recorded"])
    zones, indicators = list(ZONE_NAMES), list(INDICATOR_NAMES)
    order = pd.DataFrame({
        "level": card["level"].map(_LEVEL_ORDER).fillna(len(_LEVEL_ORDER)),
        "zone": card["id"].map(lambda v: zones.index(v) if v in zones else len(zones)),
        "id": card["id"].astype(str),
        "indicator": card["indicator"].map(lambda v: indicators.index(v) if v in indicators else len(indicators)),
    }, index=card.index)
    card = card.loc[order.sort_values(["level", "zone", "id", "indicator"], kind="stable").index]
    card["pass"] = card["pass"].astype(object)
    return card.reset_index(drop=True)


def render_workspace_report(workspace, *, k: int = DEFAULT_K, made: date | None = None,
                            author: str | None = None) -> str:
    """The report of a workspace made from its tables (a PostGIS workspace has no report.html): the same document
    :func:`write_report` writes from the analysis, the trend built from the stored snapshots."""
    from geo.history import build_trend

    analysis = stored_analysis(workspace)
    trend = build_trend(analysis.history, as_of=_summary_as_of(analysis.summary), k=k) if analysis.scorecard is not None \
        else None
    return render_report(analysis, k=k, author=author, made=made, trend=trend)
