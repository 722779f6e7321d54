"""The report's trend section (趋势): one small chart per indicator, the last 12 months against the target in
force then, and what changed since last month — from ``trend.json`` (:func:`geo.history.build_trend`).

Charts are drawn with matplotlib (its own object API, no pyplot state) into inline SVG: the report stays one
file that works offline. Text stays text in the SVG (``svg.fonttype = none``), in a CJK font found on the
machine (Noto Sans CJK SC from Debian's fonts-noto-cjk, else WenQuanYi Micro Hei from fonts-wqy-microhei,
else the browser's sans-serif): the page's reader sees the community names in their own fonts. Counts only:
the trend holds no household or case id.

Example
-------
>>> html_text = trend_section(json.loads(Path("out/sample/trend.json").read_text()))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from pathlib import Path

from collections.abc import Callable

#: CJK fonts tried in order (Debian packages fonts-noto-cjk, fonts-wqy-microhei); the SVG names them all.
CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC")
#: The line of each community (colour-blind-safe palette, Okabe–Ito); a street is drawn black and thicker.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
TARGET_COLOUR = "#C0392B"


def _fonts() -> list[str]:
    """The CJK fonts matplotlib finds on this machine, then its default (no warning when none is there)."""
    from matplotlib import font_manager

    present = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in CJK_FONTS if name in present] + ["DejaVu Sans"]


def _series(points: list[dict], key: str) -> list[float]:
    return [math.nan if p.get(key) is None else float(p[key]) for p in points]


def unit_colours(units: list[dict]) -> dict[str, str]:
    """The line colour of each unit (by ``level:id``), the same in every chart: communities from
    :data:`PALETTE`, streets black.

    >>> unit_colours([{"level": "community", "id": "C1"}, {"level": "street", "id": "S1"}])
    {'community:C1': '#0072B2', 'street:S1': '#222222'}
    """
    out, i = {}, 0
    for unit in units:
        key = f"{unit['level']}:{unit['id']}"
        if unit["level"] == "street":
            out[key] = "#222222"
        else:
            out[key], i = PALETTE[i % len(PALETTE)], i + 1
    return out


def trend_chart_svg(indicator: str, units: list[dict], months: list[str], *,
                    colours: dict[str, str] | None = None) -> str:
    """One indicator's chart as inline SVG: a line per unit (communities in colour, streets black), the target
    in force each month as a dashed red step line, shares in per cent.

    Parameters
    ----------
    indicator
        The indicator's code (``visits_on_time`` …).
    units
        The units of :func:`geo.history.build_trend` that have the indicator.
    months
        The months of the trend (``YYYY-MM``), oldest first.
    colours
        The line colour of each unit (:func:`unit_colours`; the legend is the section's, in HTML).

    Examples
    --------
    >>> unit = {"level": "community", "id": "C1", "name": "东社区", "indicators": {"visits_on_time": {
    ...     "lower_is_better": False, "points": [{"value": 0.8, "target": 1.0}, {"value": 0.9, "target": 1.0}]}}}
    >>> trend_chart_svg("visits_on_time", [unit], ["2026-10", "2026-11"]).startswith("<svg")
    True
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    share = indicator != "households_per_worker"
    scale = 100.0 if share else 1.0
    fonts = _fonts()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": f"gridcover-trend-{indicator}",
                     "font.family": "sans-serif", "font.sans-serif": fonts, "font.size": 7}):
        fig = Figure(figsize=(3.4, 1.9), dpi=100)
        FigureCanvasSVG(fig)
        ax = fig.add_axes((0.12, 0.16, 0.85, 0.78))
        x = list(range(len(months)))
        colours = colours or unit_colours(units)
        with_target = [u for u in units if any(p.get("target") is not None
                                               for p in u["indicators"][indicator]["points"])]
        if with_target:  # the target in force each month (the same for every unit: the run's rules)
            targets = [t * scale for t in _series(with_target[0]["indicators"][indicator]["points"], "target")]
            ax.step(x, targets, where="mid", linestyle="--", linewidth=1.2, color=TARGET_COLOUR)
        for unit in units:
            values = [v * scale for v in _series(unit["indicators"][indicator]["points"], "value")]
            street = unit["level"] == "street"
            ax.plot(x, values, marker="o", markersize=3 if street else 2.5, linewidth=2.0 if street else 1.1,
                    color=colours.get(f"{unit['level']}:{unit['id']}", "#888888"))
        ticks = x[::3] if len(x) > 6 else x
        ax.set_xticks(ticks, [months[j][2:] for j in ticks])
        if share:
            ax.set_ylim(0, 105)
            ax.set_yticks([0, 50, 100], ["0%", "50%", "100%"])
        ax.grid(axis="y", linewidth=0.4, color="#dddddd")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        out = io.StringIO()
        fig.savefig(out, format="svg")
    text = out.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], count=1, flags=re.S)
    family = ", ".join(f"'{f}'" for f in (*CJK_FONTS, "DejaVu Sans")) + ", sans-serif"
    return text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(indicator)}" '
                                 f'style="font-family: {family}" class="trend-chart" ', 1)


def _plain(zh: str, en: str) -> str:
    return html.escape(f"{zh} {en}")


def _changed_html(changed: dict | None, k: int, _t: Callable[[str, str], str]) -> str:
    """"What changed since last month" as a short list (counts; grids by name)."""
    if not changed or changed.get("since") is None:
        return (f"<p class=note>{_t('没有上月的快照，暂无对比。', 'No snapshot of an earlier month: nothing to compare with.')}"
                "</p>")

    def counts(block, zh, en):
        if block is None:
            return f"<li>{_t(zh + '：未统计（本次分析没有事件）', en + ': not measured (no cases in this analysis)')}</li>"
        parts = ", ".join(html.escape(f"{r['name'] or r['id'] or '?'} {'<' + str(k) if r['count'] is None else r['count']}")
                          for r in block["by_community"])
        return f"<li>{_t(zh, en)}: <b>{block['total']}</b>{(' (' + parts + ')') if parts else ''}</li>"

    grids = changed.get("grids_became_overloaded") or []
    names = [f"{g['name'] or g['id']}（{g.get('community_name') or g.get('community_id') or ''}）" for g in grids]
    grid_text = html.escape(", ".join(names)) if names else _t("无", "none")
    since = _t(f"与上月快照（{changed['since']}）相比：", f"Since the snapshot of last month ({changed['since']}):")
    red = counts(changed["households_became_red"], "新增红色风险户", "households that became red")
    late = counts(changed.get("cases_became_overdue"), "新增逾期事件", "cases that became overdue")
    return (f"<p>{since}</p><ul class=changed>{red}"
            f"<li>{_t('新增超负荷网格', 'grids that became overloaded')}: <b>{len(grids)}</b> {grid_text}</li>{late}</ul>")


def trend_section(trend: dict, *, names: dict | None = None, both: Callable[[str, str], str] = _plain) -> str:
    """The report's trend section: what changed since last month, then one chart per indicator.

    Parameters
    ----------
    trend
        :func:`geo.history.build_trend`'s answer (trend.json).
    names
        Each indicator's Chinese and English name (the report's ``INDICATOR_NAMES``).
    both
        Renders a text in both languages (the report's ``_t``: spans its language switch shows one of).

    Examples
    --------
    >>> trend_section({"as_of": None, "months": [], "units": [], "changed": None})
    ''
    """
    _t, names = both, names or {}
    units = trend.get("units") or []
    if not units:
        return ""
    months, k = trend["months"], int(trend.get("k", 5))
    shown = sum(1 for day in trend["snapshots"].values() if day)
    indicators = list(dict.fromkeys(i for u in units for i in u["indicators"]))
    colours = unit_colours(units)
    charts = []
    for indicator in indicators:
        having = [u for u in units if indicator in u["indicators"]]
        zh, en = names.get(indicator, (indicator, indicator))
        now = next((u["indicators"][indicator] for u in having if u["level"] == "street"), having[0]["indicators"][indicator])
        year = f"（{now['target_year']}年目标）" if now.get("target_year") else ""
        year_en = f" ({now['target_year']} target)" if now.get("target_year") else ""
        charts.append(f'<figure class="trend" data-indicator="{html.escape(indicator)}">'
                      f"<figcaption>{_t(zh + year, en + year_en)}</figcaption>"
                      f"{trend_chart_svg(indicator, having, months, colours=colours)}</figure>")
    legend = "".join(f'<span class=key><i style="background:{colours[key]}"></i>{html.escape(str(u["name"]))}</span>'
                     for key, u in zip(colours, units))
    legend += (f'<span class=key><i class=target style="border-color:{TARGET_COLOUR}"></i>'
               f"{_t('目标（当月执行）', 'target (in force that month)')}</span>")
    note_zh = f"{months[0]} 至 {months[-1]}，{shown} 个月有快照（每月取最后一次分析）；红色虚线为当月执行的目标。"
    note_en = (f"{months[0]} to {months[-1]}: {shown} months with a snapshot (the last run of each month); "
               "the dashed red line is the target in force that month.")
    title = _t("近12个月趋势（月度快照）", "Trend of the last 12 months (monthly snapshots)")
    return (f'<section id="trend"><h2>{title}</h2><p class=note>{_t(note_zh, note_en)}</p>'
            f"{_changed_html(trend.get('changed'), k, _t)}"
            '<style>.trend{display:inline-block;margin:4px 8px;vertical-align:top}.trend svg{width:340px;height:auto}'
            ".trend figcaption{font-weight:bold;font-size:13px}.trend-legend .key{margin-right:12px;font-size:13px}"
            ".trend-legend i{display:inline-block;width:18px;height:3px;margin-right:4px;vertical-align:middle}"
            ".trend-legend i.target{height:0;border-top:2px dashed}</style>"
            f"<p class=trend-legend>{legend}</p><div class=trends>{''.join(charts)}</div></section>")


def with_trend(page: str, folder: str | Path, *, names: dict | None = None,
               both: Callable[[str, str], str] = _plain) -> str:
    """The report ``page`` with the trend section of ``folder/trend.json`` before its end (unchanged without);
    ``names`` and ``both`` as :func:`trend_section` takes them."""
    path = Path(folder) / "trend.json"
    if not path.is_file():
        return page
    section = trend_section(json.loads(path.read_text(encoding="utf-8")), names=names, both=both)
    at = page.rfind("</body>")
    return page if at < 0 or not section else page[:at] + section + "\n" + page[at:]
