"""The printable page of one grid worker's visit list and walking route (走访任务单).

One self-contained HTML page per grid (no CDN, no script or font from elsewhere, its own CSS inline): the
households in walking order with a tick column, what is due for each, the route on a small inline SVG map of
the stops and legs, and print CSS so it prints on A4. Chinese by default; the page's 中文 / English switch (or
``lang="en"``) shows the English words. It names special-group households: only those entitled may get it
(the server's ``grid_worker`` and street-office keys, docs/server.md).

Example
-------
>>> page = {"grid": {"id": "G1", "name": "第1网格", "worker": "王芳"}, "date": "2026-12-03", "households": [],
...         "unreachable": [], "counts": {"households": 0, "overdue": 0, "due": 0, "stops": 0, "unreachable": 0},
...         "route": {"start": {"kind": "grid_centroid", "lon": 104.0, "lat": 30.6}, "legs": [], "total_min": 0.0,
...                   "total_m": 0.0}}
>>> "<svg" in render_tasks_page(page, notes=[])
True
"""

from __future__ import annotations

import html
import json
import math

#: The words of the page, Chinese and English.
WORDS = {
    "title": ("走访任务单", "Visit list"),
    "grid": ("网格", "Grid"),
    "worker": ("网格员", "Grid worker"),
    "date": ("日期", "Date"),
    "start": ("出发点", "Start"),
    "service_station": ("社区服务站", "community service station"),
    "grid_centroid": ("网格中心（就近道路）", "grid centre (nearest road)"),
    "total": ("步行合计", "Walking in all"),
    "minutes": ("分钟", "min"),
    "households": ("户", "households"),
    "overdue": ("逾期", "overdue"),
    "due": ("待访", "due"),
    "stops": ("站点", "stops"),
    "done": ("已访", "Done"),
    "no": ("序", "No."),
    "address": ("地址", "Address"),
    "building": ("楼栋 / 小区", "Building / estate"),
    "group": ("对象", "Group"),
    "what": ("应访", "What is due"),
    "last": ("上次有效走访", "Last counted visit"),
    "walk": ("步行", "Walk"),
    "risk": ("风险", "Risk"),
    "unreachable": ("无法步行到达（仍须走访）", "Not reachable on foot (visit all the same)"),
    "reason": ("原因", "Reason"),
    "map": ("路线图", "Route map"),
    "none": ("今日无待访户。", "Nobody is due today."),
    "notes": ("说明", "Notes"),
    "print": ("打印", "Print"),
    "back": ("返回出发点", "back to start"),
    "never": ("无", "none"),
    "since": ("逾期自", "overdue since"),
    "left": ("本期剩余", "left in period"),
    "days": ("天", "days"),
    "visits": ("次", "visit(s)"),
    "sign": ("网格员签字", "Grid worker's signature"),
}
GROUPS = {"elderly_alone": ("独居老人", "elderly living alone"),
          "child_in_difficulty": ("困境儿童", "child in difficulty"),
          "mental_disorder": ("严重精神障碍患者", "severe mental disorder")}
RISKS = {"red": ("红", "red"), "yellow": ("黄", "yellow"), "blue": ("蓝", "blue"), "none": ("—", "—")}
REASONS = {"not_on_network": ("离步行道路过远", "too far from any walkable road"),
           "cut_off": ("所在路网与出发点不连通", "on a piece of network cut off from the start"),
           "start_not_on_network": ("出发点不在路网上", "the start is off the network"),
           "no_location": ("无位置（无楼栋、无坐标）", "no location (no building, no point)"),
           "no_roads": ("工作区无道路图层", "the workspace has no roads")}
#: The notes of a date the data cannot fully answer, by code (the service's ``notes``), in Chinese; the
#: English is the service's own text.
NOTES_ZH = {
    "no_visit_records": "没有走访记录：所有特殊群体户均按从未走访列出。",
    "last_visit_only": "工作区没有走访记录表（visits），每户只有“最近走访日期”一条记录，更早的漏访无从得知。",
    "before_records": "{date} 早于第一条走访记录（{first}）：尚无记录可计，应访户均按从未走访列出。",
    "after_records": "{date} 比最后一条走访记录（{last}）晚 {days} 天：此后的走访不在数据中，名单上可能有已访过的户。",
}
_RISK_COLOURS = {"red": "#c62828", "yellow": "#f9a825", "blue": "#1565c0"}

_CSS = """
:root{--ink:#1b1b1b;--mute:#5f6368;--line:#c8c8c8}
*{box-sizing:border-box}
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;color:var(--ink);
margin:0;padding:16px;font-size:13px;line-height:1.4;background:#fff}
html[lang=zh] .en,html[lang=en] .zh{display:none}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:flex-start;gap:12px;border-bottom:2px solid var(--ink);
padding-bottom:6px;margin-bottom:8px}
h1{font-size:20px;margin:0 0 4px}
.meta{display:grid;grid-template-columns:auto auto;gap:1px 10px;font-size:13px}
.meta b{font-weight:600;color:var(--mute)}
.switch{display:flex;gap:4px}
.switch button{font:inherit;padding:4px 10px;border:1px solid var(--ink);background:#fff;cursor:pointer;border-radius:3px}
html[lang=zh] #to-zh,html[lang=en] #to-en{background:var(--ink);color:#fff}
.summary{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0;font-size:14px}
.summary strong{font-size:16px}
.top{display:grid;grid-template-columns:1fr 280px;gap:12px;align-items:start}
.map{border:1px solid var(--line);margin:0}
.map svg{display:block;width:100%;height:auto}
.map figcaption{font-size:11px;color:var(--mute);padding:2px 4px}
table{border-collapse:collapse;width:100%;margin-top:6px}
th,td{border:1px solid var(--line);padding:3px 5px;vertical-align:top;text-align:left}
th{background:#f1f3f4;font-weight:600;font-size:12px}
td.n,th.n{text-align:right;white-space:nowrap}
td.tick,th.tick{width:42px;white-space:nowrap;text-align:center}
.box{display:inline-block;width:16px;height:16px;border:1.5px solid var(--ink);border-radius:2px}
.stopno{display:inline-block;min-width:20px;padding:0 4px;border-radius:10px;background:var(--ink);color:#fff;
text-align:center;font-weight:600}
.overdue{color:#b71c1c;font-weight:600}
.risk{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px;vertical-align:middle}
tr.same td.first{border-top-style:dotted}
td.grp,td.day{white-space:nowrap}
html[lang=zh] td.what div{white-space:nowrap}
.legend{font-size:12px;color:var(--mute);display:flex;gap:10px}
.prefix{font-size:12px;color:var(--mute);margin-top:4px}
.notes{font-size:12px;color:var(--mute);margin:6px 0;padding-left:18px}
.sign{margin-top:14px;font-size:13px}
.sign span{display:inline-block;border-bottom:1px solid var(--ink);width:180px;margin-left:8px}
@page{size:A4 portrait;margin:12mm}
@media print{
 body{padding:0;font-size:11px}
 .switch{display:none}
 .top{grid-template-columns:1fr 62mm}
 td.what div{white-space:normal}
 thead{display:table-header-group}
 tr{break-inside:avoid}
 th{background:#eee !important;-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .stopno,.risk{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
@media screen and (max-width:640px){.top{grid-template-columns:1fr}.map{max-width:340px}}
"""

_SCRIPT = """
(function(){
 var root=document.documentElement;
 function set(l){root.lang=l;try{history.replaceState(null,'',location.pathname+location.search.replace(/([?&])lang=[^&]*/,'$1').replace(/[?&]$/,'')+location.hash)}catch(e){}}
 document.getElementById('to-zh').onclick=function(){set('zh')};
 document.getElementById('to-en').onclick=function(){set('en')};
})();
"""


def _w(key: str, table: dict = WORDS) -> str:
    zh, en = table.get(key, (key, key))
    return f'<span class="zh">{html.escape(zh)}</span><span class="en">{html.escape(en)}</span>'


def _e(value) -> str:
    return "" if value is None else html.escape(str(value))


def render_tasks_page(page: dict, *, notes: list[dict] | None = None, lang: str = "zh") -> str:
    """One grid's visit list and route (:meth:`gridcover.services.tasks.TasksService.grid_tasks`) as a
    self-contained printable HTML page.

    Parameters
    ----------
    page
        The grid's page: ``grid``, ``date``, ``counts``, ``households`` (in walking order), ``unreachable``,
        ``route``.
    notes
        What the data cannot say about the date (the service's ``notes``), printed under the summary.
    lang
        ``"zh"`` (default) or ``"en"``: the language the page opens in (its switch changes it).
    """
    lang = "en" if lang == "en" else "zh"
    grid, route, counts = page["grid"], page["route"], page["counts"]
    start = route.get("start") or {}
    start_label = _w(start.get("kind", "grid_centroid"))
    if start.get("name"):
        start_label += f" {_e(start['name'])}"
    title = f"{_e(grid.get('name') or grid['id'])} · {_e(page['date'])}"
    parts = [f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width,initial-scale=1">'
             f'<title>走访任务单 Visit list · {title}</title><style>{_CSS}</style></head><body>']
    parts.append('<div class="top"><div>')
    parts.append('<header><div>'
                 f'<h1>{_w("title")} · {_e(grid.get("name") or grid["id"])}</h1><div class="meta">'
                 f'<b>{_w("grid")}</b><span>{_e(grid["id"])}</span>'
                 f'<b>{_w("worker")}</b><span>{_e(grid.get("worker") or "—")} {_e(grid.get("worker_phone") or "")}</span>'
                 f'<b>{_w("date")}</b><span>{_e(page["date"])}</span>'
                 f'<b>{_w("start")}</b><span>{start_label}</span></div></div>'
                 '<div class="switch"><button id="to-zh" type="button">中文</button>'
                 '<button id="to-en" type="button">English</button></div></header>')
    parts.append('<div class="summary">'
                 f'<span><strong>{counts["households"]}</strong> {_w("households")}</span>'
                 f'<span class="overdue"><strong>{counts["overdue"]}</strong> {_w("overdue")}</span>'
                 f'<span><strong>{counts["due"]}</strong> {_w("due")}</span>'
                 f'<span><strong>{counts["stops"]}</strong> {_w("stops")}</span>'
                 f'<span>{_w("total")} <strong>{_minutes(route.get("total_min", 0))}</strong> {_w("minutes")} '
                 f'({route.get("total_m", 0) / 1000:.2f} km)</span></div>')
    legend = "".join(f'<span><span class="risk" style="background:{c}"></span>{_w(k, RISKS)}</span>'
                     for k, c in _RISK_COLOURS.items())
    parts.append(f'<div class="legend">{_w("risk")}: {legend}</div>')
    if notes:
        items = []
        for n in notes:
            try:
                zh = NOTES_ZH[n["code"]].format(**n)
            except (KeyError, IndexError):
                zh = n["text"]
            items.append(f'<li><span class="zh">{_e(zh)}</span><span class="en">{_e(n["text"])}</span></li>')
        parts.append('<ul class="notes">' + "".join(items) + "</ul>")
    parts.append(f'</div><figure class="map">{_svg(page)}<figcaption>{_w("map")}: '
                 f'■ {_w("start")} · ● {_w("stops")}</figcaption></figure></div>')
    prefix = _common_prefix([h.get("address") or "" for h in page["households"]])
    if prefix:
        parts.append(f'<div class="prefix">{_w("address")}: {_e(prefix)}…</div>')
    parts.append(_table(page["households"], prefix=prefix))
    if page["unreachable"]:
        parts.append(f'<h3>{_w("unreachable")}</h3><table><thead><tr><th>{_w("address")}</th>'
                     f'<th>{_w("reason")}</th></tr></thead><tbody>')
        address = {h["household_id"]: h.get("address") for h in page["households"]}
        for u in page["unreachable"]:
            parts.append(f'<tr><td>{_e(address.get(u["household_id"]) or u["household_id"])}</td>'
                         f'<td>{_w(u["reason"], REASONS)}</td></tr>')
        parts.append("</tbody></table>")
    parts.append(f'<div class="sign">{_w("sign")}<span></span></div>')
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "".join(parts)


def _common_prefix(addresses: list[str]) -> str:
    """The words every address starts with (up to a space: the city, district and street), shown once."""
    if len(addresses) < 2 or not all(addresses):
        return ""
    first, last = min(addresses), max(addresses)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    cut = first[:n].rfind(" ")
    return first[:cut + 1] if cut > 0 else ""


def _minutes(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _table(households: list[dict], *, prefix: str = "") -> str:
    head = (f'<table><thead><tr><th class="tick">{_w("done")}</th><th class="n">{_w("no")}</th>'
            f'<th>{_w("address")}</th><th>{_w("group")}</th><th>{_w("what")}</th><th>{_w("last")}</th>'
            f'<th class="n">{_w("walk")}</th></tr></thead><tbody>')
    if not households:
        return head + f'<tr><td colspan="7">{_w("none")}</td></tr></tbody></table>'
    rows, previous = [], None
    for h in households:
        visit = h.get("visit") or 0
        same = visit and visit == previous
        previous = visit
        colour = _RISK_COLOURS.get(h.get("risk") or "")
        dot = f'<span class="risk" style="background:{colour}" title="{_e(h.get("risk"))}"></span>' if colour else ""
        groups = "<br>".join(html.escape(GROUPS.get(g, (g, g))[0]) for g in h["groups"])
        groups_en = "<br>".join(html.escape(GROUPS.get(g, (g, g))[1]) for g in h["groups"])
        whats = []
        for d in h["due"]:
            zh_g, en_g = GROUPS.get(d["group"], (d["group"], d["group"]))
            if d["state"] == "overdue":
                zh = f'逾期 {d["overdue_days"]} 天（自 {d["overdue_since"]}）'
                en = f'overdue {d["overdue_days"]} days (since {d["overdue_since"]})'
                cls = ' class="overdue"'
            else:
                zh = f'本期还需 {d["visits_needed"]} 次，剩 {d["days_left"]} 天'
                en = f'{d["visits_needed"]} visit(s) needed, {d["days_left"]} days left'
                cls = ""
            if len(h["due"]) > 1:
                zh, en = f"{zh_g}：{zh}", f"{en_g}: {en}"
            whats.append(f'<div{cls}><span class="zh">{html.escape(zh)}</span><span class="en">{html.escape(en)}</span></div>')
        last = _e(h.get("last_visit")) or _w("never")
        place = " ".join(_e(v) for v in (h.get("estate"), h.get("building")) if v)
        stop = f'<span class="stopno">{visit}</span>' if visit else "—"
        walk = f'{_minutes(h["walk_min"])} {_w("minutes")}' if (h.get("walk_min") is not None and not same) else ""
        rows.append(f'<tr class="{"same" if same else ""}"><td class="tick first"><span class="box"></span></td>'
                    f'<td class="n first">{"" if same else stop}</td>'
                    f'<td class="first">{dot}{_e(_short(h.get("address"), prefix) or h["household_id"])}'
                    f'{"<br><small>" + place + "</small>" if place else ""}</td>'
                    f'<td class="first grp"><span class="zh">{groups}</span><span class="en">{groups_en}</span></td>'
                    f'<td class="first what">{"".join(whats)}</td><td class="first day">{last}</td>'
                    f'<td class="n first">{walk}</td></tr>')
    return head + "".join(rows) + "</tbody></table>"


def _short(address: str | None, prefix: str) -> str | None:
    return address[len(prefix):] if address and prefix and address.startswith(prefix) else address


def _svg(page: dict, *, width: int = 340, height: int = 340, pad: int = 14) -> str:
    """The route as an SVG: legs as lines, stops as numbered circles, the start as a square (lon/lat drawn
    on a local equirectangular plane, north up)."""
    route = page["route"]
    start = route.get("start") or {}
    pts = [(start["lon"], start["lat"])] if "lon" in start else []
    for leg in route.get("legs", []):
        pts.extend(tuple(p) for p in leg["line"])
    if not pts:
        return f'<svg viewBox="0 0 {width} {height}"></svg>'
    lat0 = sum(p[1] for p in pts) / len(pts)
    k = math.cos(math.radians(lat0))
    xs, ys = [p[0] * k for p in pts], [p[1] for p in pts]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-5)
    scale = (min(width, height) - 2 * pad) / span
    ox = pad + ((width - 2 * pad) - (max(xs) - min(xs)) * scale) / 2
    oy = pad + ((height - 2 * pad) - (max(ys) - min(ys)) * scale) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return ox + (lon * k - min(xs)) * scale, oy + (max(ys) - lat) * scale

    out = [f'<svg viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="route map">',
           f'<rect width="{width}" height="{height}" fill="#fafafa"/>']
    for leg in route.get("legs", []):
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(*p) for p in leg["line"]))
        out.append(f'<polyline points="{d}" fill="none" stroke="#1565c0" stroke-width="2" stroke-linejoin="round" '
                   f'stroke-opacity="0.8"><title>{leg["leg"]}: {leg["minutes"]} min</title></polyline>')
    # stops: each leg ends at a stop (the last leg at the start)
    for leg in route.get("legs", [])[:-1]:
        x, y = xy(*leg["line"][-1])
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#1b1b1b" stroke="#fff" stroke-width="1"/>'
                   f'<text x="{x:.1f}" y="{y + 2.8:.1f}" font-size="8" text-anchor="middle" fill="#fff" '
                   f'font-family="sans-serif">{leg["leg"]}</text>')
    if "lon" in start:
        x, y = xy(start["lon"], start["lat"])
        out.append(f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="#c62828"/>')
    out.append("</svg>")
    return "".join(out)


def tasks_json(page: dict, *, notes: list[dict] | None = None) -> str:
    """The same page as JSON text (UTF-8, Chinese as is)."""
    return json.dumps({**page, "notes": notes or []}, ensure_ascii=False, indent=1)
