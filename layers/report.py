"""The street office's report (报告): one self-contained HTML page in Chinese (English switchable).

Maps drawn with folium from the layer declarations of :mod:`layers.catalog` (blind spots, old estates,
the urban-rural fringe, grids), the scorecard against the plan's targets and the top-ranked blind spots.
It works on an intranet with no internet: Leaflet is inlined from ``layers/static/leaflet`` and no base map
is loaded unless one is configured (``basemap``, off by default). Special-group members appear only as
counts, and counts from 1 to k-1 are shown as "<k".

Example
-------
>>> write_report(analysis, Path("out/sample/report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from layers.base import DEFAULT_K, SPECIAL_GROUP_COUNTS
from layers.catalog import FIELD_NAMES, find_layer as layer_decl

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
}
REASON_NAMES = {
    "no_grid": ("不在任何网格", "in no grid"), "overlapping_grids": ("网格重叠", "overlapping grids"),
    "grid_over_capacity": ("网格超负荷", "grid over capacity"), "missing_services": ("基本服务缺配", "missing basic services"),
    "special_group_unreached": ("特殊群体服务不可达", "special group out of reach of its services"),
    "visit_overdue": ("走访逾期", "visit overdue"), "unregistered_building": ("疑似未登记出租", "possibly unregistered rentals"),
}
COLOUR_NAMES = {"red": ("红", "red"), "yellow": ("黄", "yellow"), "blue": ("蓝", "blue"), "none": ("无", "none")}
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
    text[(n > 0) & (n < k)] = f"<{k}户"
    return pd.Series(text, index=share.index)


def _tooltip(frame: gpd.GeoDataFrame, fields: list[str], aliases: list[str]) -> folium.GeoJsonTooltip:
    """A tooltip of those ``fields`` the frame holds: an optional field (``ur_code``, ``year_built``) may be absent."""
    pairs = [(f, a) for f, a in zip(fields, aliases) if f in frame.columns]
    return folium.GeoJsonTooltip([f for f, _ in pairs], aliases=[a for _, a in pairs])


def _map(analysis, *, basemap: str | None, k: int) -> folium.Map:
    layers = analysis.data.layers
    bounds = layers["streets"].to_crs(4326).total_bounds
    m = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2], zoom_start=14, tiles=None,
                   control_scale=True, prefer_canvas=True)
    m.default_js = [("leaflet", _JS_MARK)]
    m.default_css = [("leaflet_css", _CSS_MARK)]
    if basemap:
        folium.TileLayer(basemap, attr="base map (configured)", name="底图 base map").add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    comm = layers["communities"].copy()
    comm["fringe"] = comm.get("ur_code", pd.Series(None, index=comm.index)).astype("string").isin(["112", "122"]).fillna(False)
    folium.GeoJson(_geojson(comm, ["id", "name", "ur_code", "fringe"]), name="社区 / 城乡结合部 communities / fringe",
                   style_function=_style("communities"),
                   tooltip=_tooltip(comm, ["name", "ur_code"], ["社区", "城乡分类代码"])).add_to(m)
    areas = layers.get("areas")
    if areas is not None and len(areas):
        folium.GeoJson(_geojson(areas, ["id", "kind", "name"]), name="重点区域 areas", style_function=_style("areas"),
                       tooltip=_tooltip(areas, ["name", "kind"], ["名称", "类型"])).add_to(m)
    estates = layers.get("estates")
    if estates is not None and len(estates):
        est = estates.copy()
        year = pd.to_numeric(est.get("year_built", pd.Series(np.nan, index=est.index)), errors="coerce")
        est["old_estate"] = (year <= 2000).fillna(False)
        folium.GeoJson(_geojson(est, ["id", "name", "year_built", "old_estate"]), name="小区（老旧小区橙色） estates",
                       style_function=_style("estates"),
                       tooltip=_tooltip(est, ["name", "year_built"], ["小区", "建成年份"])).add_to(m)
    grids = analysis.grids.copy()
    grids["load"] = np.where(grids["unstaffed"], "unstaffed", np.where(grids["over_capacity"], "over", "ok"))
    if "visits_kept_share" in grids.columns:
        grids["visits_kept"] = _kept_text(grids["visits_kept_share"], grids["visits_households"], k)
    folium.GeoJson(_geojson(grids, ["id", "name", "worker_name", "households", "load", "visits_kept"]),
                   name="网格 grids", style_function=_style("grids"),
                   tooltip=_tooltip(grids, ["name", "worker_name", "households", "visits_kept"],
                                    ["网格", "网格员", "户数", "走访周期达标率"])
                   ).add_to(m)
    spots = analysis.blindspots
    if spots is not None and len(spots):
        shown = spots.copy()
        for g in SPECIAL_GROUP_COUNTS:
            shown[g] = shown[g].map(lambda v: suppress(v, k))
        shown["risk_reasons"] = shown["risk_reasons"].map(lambda rs: "、".join(REASON_NAMES.get(r, (r,))[0] for r in rs))
        folium.GeoJson(_geojson(shown, ["id", "rank", "risk", "risk_reasons", "households", "persons", "elderly_alone",
                                        "mental_disorder", "child_in_difficulty"]),
                       name="盲区 blind spots", style_function=_style("blindspots"),
                       tooltip=folium.GeoJsonTooltip(["rank", "risk", "households", "elderly_alone", "risk_reasons"],
                                                     aliases=["排名", "预警", "风险户数", "独居老人", "原因"])).add_to(m)
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


def _scorecard_table(card: pd.DataFrame, *, periods: bool = False) -> str:
    """The scorecard as a table; ``periods``: visits_on_time is measured over visit periods (visit records),
    its value followed by the periods kept of the periods required."""
    rows = []
    for row in card.to_dict("records"):  # "pass" is a keyword: no itertuples here
        r = pd.Series(row)
        zh, en = INDICATOR_NAMES.get(r.indicator, (r.indicator, r.indicator))
        value = "–" if r.value is None or pd.isna(r.value) else (
            f"{r.value:,.1f}" if r.indicator == "households_per_worker" else f"{r.value:.1%}")
        if r.indicator == "visits_on_time" and pd.notna(r.value):
            count = f" ({int(r.numerator):,} / {int(r.denominator):,})"
            value += _t(f"{count.replace(' / ', '/')} 周期", f"{count} periods") if periods else \
                _t(f"{count.replace(' / ', '/')} 户", f"{count} households")
        target = f"≤ {r.target:,.0f}" if r.indicator == "households_per_worker" else f"≥ {r.target:.0%}"
        ok = row.get("pass")
        unknown = ok is None or (isinstance(ok, float) and np.isnan(ok))
        verdict = _t("未测", "not measured") if unknown else (_t("达标", "pass") if bool(ok) else _t("未达标", "fail"))
        cls = "" if unknown else ("pass" if bool(ok) else "fail")
        name = ZONE_NAMES[r.id][0] if r.level == "zone" else r.name
        name_en = ZONE_NAMES[r.id][1] if r.level == "zone" else r.name
        rows.append(f"<tr class='{cls}'><td>{_t(name, name_en)}</td><td>{_t(zh, en)}</td><td>{value}</td>"
                    f"<td>{target}</td><td>{verdict}</td></tr>")
    head = (f"<tr><th>{_t('单位', 'unit')}</th><th>{_t('指标', 'indicator')}</th><th>{_t('数值', 'value')}</th>"
            f"<th>{_t('目标', 'target')}</th><th>{_t('结论', 'result')}</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _spots_table(spots: gpd.GeoDataFrame, k: int, top: int = 15) -> str:
    if spots is None or not len(spots):
        return f"<p>{_t('未发现盲区。', 'No blind spot found.')}</p>"
    head = "".join(f"<th>{_t(zh, en)}</th>" for zh, en in (
        ("排名", "rank"), ("预警", "risk"), ("原因", "reasons"), ("风险户数", "households at risk"), ("人数", "persons"),
        ("独居老人", "elderly alone"), ("严重精神障碍", "mental disorders"), ("困境儿童", "children in difficulty"),
        ("疑似未登记楼栋", "under-registered buildings"), ("涉及社区", "communities")))
    rows = []
    for r in spots.head(top).itertuples(index=False):
        zh, en = COLOUR_NAMES.get(r.risk, (r.risk, r.risk))
        reasons = "、".join(REASON_NAMES.get(x, (x, x))[0] for x in r.risk_reasons)
        reasons_en = ", ".join(REASON_NAMES.get(x, (x, x))[1] for x in r.risk_reasons)
        rows.append(f"<tr><td>{r.rank}</td><td class='{r.risk}'>{_t(zh, en)}</td><td>{_t(reasons, reasons_en)}</td>"
                    f"<td>{r.households:,}</td><td>{r.persons:,}</td><td>{suppress(r.elderly_alone, k)}</td>"
                    f"<td>{suppress(r.mental_disorder, k)}</td><td>{suppress(r.child_in_difficulty, k)}</td>"
                    f"<td>{r.unregistered_buildings}</td><td>{html.escape(str(r.community_ids))}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:24px} h2{font-size:19px;border-bottom:2px solid #225ea8;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 6px;text-align:left}
th{background:#eef3fa} tr.fail td:last-child{color:#b2182b;font-weight:bold} tr.pass td:last-child{color:#1a7837}
td.red{background:#d7191c;color:#fff} td.yellow{background:#fdae61} td.blue{background:#2c7bb6;color:#fff}
.figures{display:flex;flex-wrap:wrap;gap:12px} .figure{border:1px solid #ccc;border-radius:6px;padding:8px 12px;min-width:150px}
.figure b{font-size:20px;display:block} iframe{width:100%;height:620px;border:1px solid #aaa}
.legend{font-size:12px;margin:6px 0} .legend .item{margin-right:12px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle;border:1px solid #888}
.switch{float:right} body.lang-en .zh{display:none} body:not(.lang-en) .en{display:none}
.note{font-size:12px;color:#555}
@media print{.switch{display:none} iframe{height:480px} h2{page-break-after:avoid} table{page-break-inside:auto}}
"""


def render_report(analysis, *, k: int = DEFAULT_K, basemap: str | None = None) -> str:
    """The report as one HTML document."""
    s = analysis.summary
    risk = s.get("risk", {})
    colours = risk.get("households_by_colour", {})
    street_names = "、".join(analysis.data.layers["streets"]["name"].astype(str))
    m = _map(analysis, basemap=basemap, k=k)
    map_doc = _inline(m.get_root().render())
    srcdoc = html.escape(map_doc, quote=True)
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
        figures += [(("走访周期达标率", "visit periods kept"), kept),
                    (("无走访记录的特殊群体户", "special-group households never visited"),
                     suppress(visits["never_visited"], k))]
    fig_html = "".join(f"<div class=figure>{_t(*label)}<b>{value}</b></div>" for label, value in figures)
    zone_rows = "".join(
        f"<tr><td>{_t(*ZONE_NAMES[z])}</td><td>{v['households']:,}</td><td>{v['red']:,}</td><td>{v['yellow']:,}</td>"
        f"<td>{v['blue']:,}</td></tr>" for z, v in risk.get("by_zone", {}).items())
    zone_table = (f"<table><tr><th>{_t('区域', 'zone')}</th><th>{_t('户数', 'households')}</th><th>{_t('红', 'red')}</th>"
                  f"<th>{_t('黄', 'yellow')}</th><th>{_t('蓝', 'blue')}</th></tr>{zone_rows}</table>")
    card = analysis.scorecard if analysis.scorecard is not None else pd.DataFrame()
    visit_note_zh = visit_note_en = ""
    if visits:
        visit_note_zh = (f"（走访记录：截至当日的 {visits['window_weeks']} 周内已结束的周期，"
                         f"走访频次达标率 = 已达标周期 / 应走访周期）")
        visit_note_en = (f" (visit records: the periods completed in the {visits['window_weeks']} weeks to that day; "
                         "visits on time = periods kept / periods required)")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>gridcover 脱管风险报告 — {html.escape(street_names)}</title>
<style>{_CSS}</style></head>
<body>
<button class="switch" onclick="document.body.classList.toggle('lang-en')">中文 / English</button>
<h1>{_t(f"{street_names} 网格化管理脱管风险报告", f"{street_names}: report on households falling out of care")}</h1>
<p class=note>{_t(f"走访以 {risk.get('reference_date', '')} 为准{visit_note_zh}；特殊群体只以人数出现，1–{k - 1} 人显示为“<{k}”。",
                  f"Visits judged on {risk.get('reference_date', '')}{visit_note_en}; special groups appear only as "
                  f"counts, 1–{k - 1} shown as “<{k}”.")}</p>
<div class=figures>{fig_html}</div>
<h2>{_t("地图：盲区、老旧小区、城乡结合部、网格", "Map: blind spots, old estates, urban-rural fringe, grids")}</h2>
{_legend()}
<iframe title="map" srcdoc="{srcdoc}"></iframe>
<h2>{_t("按区域的风险户数", "Households at risk by zone")}</h2>
{zone_table}
<h2>{_t("重点盲区（按权重排序）", "Top blind spots (by weight)")}</h2>
{_spots_table(analysis.blindspots, k)}
<h2>{_t("对照工作方案目标的考核表", "Scorecard against the plan's targets")}</h2>
{_scorecard_table(card, periods=bool(visits)) if len(card) else ''}
<p class=note>{_t("数据：© OpenStreetMap 贡献者（ODbL）；社区名录 adcode 数据集（CC BY 4.0）。本报告由 gridcover 生成，无需联网。",
                  "Data: © OpenStreetMap contributors (ODbL); community register from the adcode dataset (CC BY 4.0). "
                  "Made by gridcover; works without internet access.")}</p>
</body></html>
"""


def write_report(analysis, path: str | Path, *, k: int = DEFAULT_K, basemap: str | None = None) -> Path:
    """Write ``report.html`` (or ``path``)."""
    from layers.trend import with_trend  # the trend section, from trend.json beside the report (docs/history.md)
    path = Path(path)
    path.write_text(with_trend(render_report(analysis, k=k, basemap=basemap), path.parent, names=INDICATOR_NAMES,
                               both=_t), encoding="utf-8")
    return path
