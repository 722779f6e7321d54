"""The declarations of gridcover's map layers (图层目录), one per layer, and of the heat maps.

Order matters: the web map draws them bottom to top in this order and its layer switcher lists them so.

Example
-------
>>> [layer.id for layer in LAYERS][:3]
['streets', 'communities', 'areas']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo.blindspots import REASON_NAMES
from geo.areas import FRINGE_CODES, OLD_ESTATE_CUTOFF
from geo.errors import NotFoundError
from geo.reach import load_config
from layers.base import SPECIAL_GROUP_COUNTS, Class, Heat, LiveSource, MapLayer, Style
from layers.cases import COUNT_FIELDS, POINT_FIELDS, case_counts, case_points, case_stamp

#: Chinese and English names of the properties shown in popups and legends.
FIELD_NAMES: dict[str, tuple[str, str]] = {
    "id": ("编号", "id"), "name": ("名称", "name"), "street_id": ("街道", "street"),
    "community_id": ("社区", "community"), "grid_id": ("网格", "grid"), "ur_code": ("城乡分类代码", "urban-rural code"),
    "worker_name": ("网格员", "grid worker"), "worker_phone": ("网格员电话", "grid worker phone"),
    "info_officer_name": ("信息员", "information officer"), "info_officer_phone": ("信息员电话", "information officer phone"),
    "mediator_name": ("调解员", "mediator"), "mediator_phone": ("调解员电话", "mediator phone"),
    "households": ("户数", "households"), "persons": ("人数", "persons"), "workers": ("专职网格员", "full-time workers"),
    "households_per_worker": ("每名专职网格员户数", "households per full-time worker"), "load": ("负荷", "load"),
    "over_capacity": ("超负荷", "over capacity"), "unstaffed": ("无网格员", "unstaffed"),
    "workload": ("工作量（加权户数）", "workload (weighted households)"),
    "part_time_officers": ("兼职信息员、调解员", "part-time officers"),
    "staff_missing": ("一格三员缺员", "missing staff (一格三员)"), "staffing_complete": ("一格三员齐全", "一格三员 complete"),
    "elderly_alone": ("独居老人", "elderly living alone"), "child_in_difficulty": ("困境儿童", "children in difficulty"),
    "mental_disorder": ("严重精神障碍患者", "severe mental disorders"), "migrant": ("流动人口户", "migrant households"),
    "rental": ("出租户", "rental households"), "split_buildings": ("被网格线切分的楼栋", "buildings cut by a grid line"),
    "basic_share": ("基本服务全覆盖户比例", "share reaching the full basic set"),
    "year_built": ("建成年份", "year built"), "old_estate": ("老旧小区", "old estate"), "fringe": ("城乡结合部", "urban-rural fringe"),
    "address": ("地址", "address"), "floors": ("层数", "floors"), "kind": ("类型", "kind"), "category": ("类别", "category"),
    "tier": ("生活圈层级（分钟）", "life-circle tier (minutes)"), "area_m2": ("面积（平方米）", "area (m²)"),
    "grid_ids": ("涉及网格", "grids"), "risk": ("风险等级", "risk"), "risk_reasons": ("风险原因", "risk reasons"),
    "rank": ("排名", "rank"), "h3": ("H3 单元", "H3 cell"), "from_centre": ("按单元中心估算", "measured from the cell centre"),
    "status": ("分配状态", "assignment status"),
    "visits_kept_share": ("走访频次达标率（周期）", "share of visit periods kept"),
    "visits_households": ("应走访特殊群体户数", "special-group households to visit"),
    "code": ("编码", "code"), "code_generated": ("网格编码为自动生成", "grid code generated"),
    "part_time_workers": ("兼职网格员", "part-time grid workers"), "detail": ("说明", "detail"),
    "community_ids": ("涉及社区", "communities"), "persons_per_worker": ("每名专职网格员人数", "persons per full-time worker"),
    "full_time_workers": ("专职网格员（登记）", "full-time workers (registered)"),
    "load_ratio": ("负荷率（户数/300户）", "load ratio (households / 300)"),
    "resolution": ("H3 分辨率", "H3 resolution"), "reach_method": ("可达计算方式", "reach method"),
    "sliver": ("细碎空隙", "sliver"), "building_id": ("楼栋", "building"), "estate_id": ("小区", "estate"),
    "residential": ("住宅", "residential"), "district": ("区", "district"), "cells": ("H3 单元数", "H3 cells"),
    "cases": ("事件数", "cases"), "open_cases": ("未办结事件", "cases not closed"),
    "overdue_cases": ("超时未办事件", "overdue cases"), "overdue_urgent_cases": ("超时紧急事件", "overdue urgent cases"),
    "urgency": ("紧急程度", "urgency"), "overdue": ("超时", "overdue"), "on_time": ("按时", "on time"),
    "reported_at": ("上报时间", "reported"), "response_due": ("响应时限", "response due"),
    "closure_due": ("办结时限", "closure due"), "accepted_at": ("受理时间", "accepted"),
    "closed_at": ("办结时间", "closed"), "source": ("来源", "source"),
}

#: Chinese and English names of coded values (risk reasons, risk colours, issue kinds, grid load): the one
#: table the web map's popups and the CSV/Excel export translate codes with (``{field: {code: (zh, en)}}``).
VALUE_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "risk_reasons": dict(REASON_NAMES),  # geo/blindspots.py holds the one table (the spots' accounts use it)
    "risk": {"red": ("红色预警", "red"), "yellow": ("黄色预警", "yellow"), "blue": ("蓝色预警", "blue"), "none": ("无风险", "none")},
    "reach_method": {"network": ("步行路网", "walking network"), "straight_line": ("直线距离", "straight line")},
}

#: The plan's three colours (三色预警) are solid fills used for risk alone; problems (hatched) and load use
#: other hues, so a red area on the map is a red warning and nothing else.
_RISK_CLASSES = (Class("#d7191c", "红色预警", "red", "red"), Class("#f2c500", "黄色预警", "yellow", "yellow"),
                 Class("#2c7bb6", "蓝色预警", "blue", "blue"), Class("#bbbbbb", "无风险", "none"))
#: Shares of households reaching a service: magenta (few) to green (all), kept apart from the risk colours.
_SHARE_STOPS = ((0.0, "#c51b7dc8"), (0.5, "#f1b6daa8"), (0.8, "#b8e186a8"), (1.0, "#4d9221b8"))


def _year_old(frame: pd.DataFrame) -> pd.Series:
    year = pd.to_numeric(frame.get("year_built", pd.Series(np.nan, index=frame.index)), errors="coerce")
    return (year <= OLD_ESTATE_CUTOFF).fillna(False).astype(bool)


def _estate_derived(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {"old_estate": _year_old(frame)}


def _community_derived(frame: pd.DataFrame) -> dict[str, pd.Series]:
    code = frame.get("ur_code", pd.Series("", index=frame.index)).astype("string").fillna("")
    return {"fringe": code.isin(FRINGE_CODES).astype(bool)}


def _grid_derived(frame: pd.DataFrame) -> dict[str, pd.Series]:
    over = frame.get("over_capacity", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    unstaffed = frame.get("unstaffed", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    load = np.where(unstaffed, "unstaffed", np.where(over, "over", "ok"))
    return {"load": pd.Series(load, index=frame.index)}


def _facility_derived(frame: pd.DataFrame) -> dict[str, pd.Series]:
    tiers = {c.id: c.tier for c in load_config().categories}
    return {"tier": frame.get("category", pd.Series("", index=frame.index)).map(tiers).astype("Int64")}


def _reach_fields() -> tuple[str, ...]:
    """Minutes to the nearest facility and the share within its tier, per category (aggregates of an H3 cell)."""
    return tuple(f"{prefix}_{c.id}{suffix}" for c in load_config().categories
                 for prefix, suffix in (("reach", "_min"), ("within", "")))


def _heat_fields() -> tuple[str, ...]:
    """The H3 values the heat maps colour (the web map draws them from the vector tiles)."""
    config = load_config()
    return (*(f"tier{t}_share" for t in sorted({c.tier for c in config.categories})),
            *(f"within_{c.id}" for c in config.categories))


LAYERS: tuple[MapLayer, ...] = (
    MapLayer(
        id="streets", source="streets", title_zh="街道", title_en="Street offices", geometry="polygon",
        public_fields=("name", "district"), tile_fields=("id", "name"), queryables=("id", "name"),
        style=Style(kind="line", classes=(Class("#333333", "街道边界", "street boundary"),), width=3.0),
        minzoom=8, coverage=True, popup=("name",)),
    MapLayer(
        id="communities", source="communities", title_zh="社区", title_en="Communities", geometry="polygon",
        public_fields=("name", "street_id", "ur_code", "code"), derived=_community_derived,
        tile_fields=("id", "name", "street_id", "ur_code", "fringe"), queryables=("id", "name", "street_id", "ur_code"),
        style=Style(kind="fill", field="fringe", opacity=0.3, outline="#4d4d4d", width=2.0,
                    classes=(Class("#a6a63a", "城乡结合部社区", "urban-rural fringe community", True),
                             Class("#ffffff", "其他社区", "other community", None))),
        minzoom=9, coverage=True, popup=("name", "ur_code", "fringe")),
    MapLayer(
        id="areas", source="areas", title_zh="重点区域", title_en="Areas of attention", geometry="polygon",
        public_fields=("kind", "name"), tile_fields=("id", "kind", "name"), queryables=("id", "kind"),
        style=Style(kind="fill", field="kind", opacity=0.35, outline="#6b4a1f",
                    classes=(Class("#a6761d", "老旧小区（区域）", "old estate (area)", "old_estate"),
                             Class("#a6a63a", "城乡结合部（区域）", "urban-rural fringe (area)", "urban_rural_fringe"),
                             Class("#bdbdbd", "其他重点区域", "other area", None))),
        minzoom=10, visible=False, popup=("name", "kind")),
    MapLayer(
        id="grids", source="grids", title_zh="网格", title_en="Grids", geometry="polygon",
        description="Grids (网格) with their workers and load; special-group counts 1..k-1 are withheld.",
        public_fields=("name", "code", "code_generated", "community_id", "worker_name", "worker_phone",
                       "full_time_workers", "part_time_workers", "households",
                       "persons", "workers", "households_per_worker", "load_ratio", "over_capacity", "unstaffed",
                       "workload", "part_time_officers", "staff_missing", "staffing_complete",
                       "split_buildings", "basic_share", "visits_kept_share"),
        counts=(*SPECIAL_GROUP_COUNTS, "visits_households"), shares={"visits_kept_share": "visits_households"},
        derived=_grid_derived,
        role_fields={"lookup": ("info_officer_name", "info_officer_phone", "mediator_name", "mediator_phone")},
        tile_fields=("id", "name", "code", "community_id", "worker_name", "households", "persons", "workers",
                     "households_per_worker", "load", "basic_share", "visits_kept_share", "visits_households",
                     *SPECIAL_GROUP_COUNTS),
        queryables=("id", "name", "code", "community_id", "worker_name", "over_capacity", "unstaffed"),
        style=Style(kind="fill", field="load", opacity=0.4, outline="#3f4f75", width=1.5, pattern="hatch",
                    classes=(Class("#ffffff00", "负荷正常（每名专职网格员≤300户）",
                                   "within 300 households per full-time worker", "ok"),
                             Class("#7b3294", "超负荷（每名专职网格员>300户）",
                                   "over capacity (> 300 households per full-time worker)", "over"),
                             Class("#252525", "无专职网格员", "no full-time worker", "unstaffed"))),
        minzoom=11, coverage=True,
        popup=("name", "community_id", "code", "worker_name", "worker_phone", "households", "persons", "workers",
               "households_per_worker", "load", "staff_missing", "basic_share", "visits_kept_share",
               *SPECIAL_GROUP_COUNTS)),
    MapLayer(
        id="estates", source="estates", title_zh="小区", title_en="Estates", geometry="polygon",
        public_fields=("name", "year_built", "address"), derived=_estate_derived,
        tile_fields=("id", "name", "year_built", "old_estate"), queryables=("id", "name"),
        style=Style(kind="fill", field="old_estate", opacity=0.4, outline="#8c6d46",
                    classes=(Class("#a6761d", "老旧小区（2000年及以前）", "old estate (built 2000 or earlier)", True),
                             Class("#e6dcc8", "其他小区", "other estate", None))),
        minzoom=13, popup=("name", "year_built", "old_estate")),
    MapLayer(
        id="buildings", source="buildings", title_zh="楼栋", title_en="Buildings", geometry="polygon",
        public_fields=("estate_id", "name", "address", "year_built", "floors", "residential"),
        derived=_estate_derived,
        tile_fields=("id", "name", "address", "floors", "year_built", "old_estate"), queryables=("id", "estate_id"),
        style=Style(kind="fill", field="old_estate", opacity=0.7, outline="#525252", width=0.5,
                    classes=(Class("#8c510a", "老旧楼栋", "old building", True), Class("#bdbdbd", "楼栋", "building", None))),
        minzoom=14, popup=("name", "address", "floors", "year_built")),
    MapLayer(
        id="h3_reach", source="h3_reach", id_field="h3", title_zh="15分钟生活圈（H3）",
        title_en="15-minute reach (H3 cells)", geometry="polygon",
        public_fields=("resolution", "households", "basic_share", "from_centre", "reach_method",
                       *dict.fromkeys((*_reach_fields(), *_heat_fields()))),
        tile_fields=("h3", "households", "basic_share", "from_centre", *_heat_fields()), queryables=("h3",),
        style=Style(kind="fill", field="basic_share", steps=True, opacity=0.45, outline=None,
                    classes=(Class("#c51b7d", "基本服务覆盖 <50%", "basic set reached by < 50%", 0.0),
                             Class("#f1b6da", "50–80%", "50–80%", 0.5), Class("#b8e186", "80–100%", "80–100%", 0.8),
                             Class("#4d9221", "100%", "100%", 1.0))),
        minzoom=12, visible=False, popup=("h3", "households", "basic_share")),
    MapLayer(
        id="coverage_issues", source="coverage_issues", title_zh="网格覆盖问题", title_en="Coverage issues",
        geometry="polygon",
        public_fields=("kind", "community_id", "grid_ids", "building_id", "area_m2", "sliver", "households", "persons",
                       "code", "detail"),
        tile_fields=("id", "kind", "community_id", "grid_ids", "area_m2", "households", "code"),
        queryables=("id", "kind", "community_id"),
        style=Style(kind="fill", field="kind", opacity=0.85, outline="#000000", pattern="hatch",
                    classes=(Class("#000000", "网格空隙", "gap", "gap"), Class("#e7298a", "网格重叠", "overlap", "overlap"),
                             Class("#1b9e77", "超出社区", "outside its community", "outside_community"),
                             Class("#d95f02", "楼栋被切分", "split building", "split_building"),
                             Class("#525252", "网格编码格式错误", "malformed grid code", "code_malformed"),
                             Class("#737373", "网格编码重复", "duplicate grid code", "code_duplicate"),
                             Class("#969696", "网格编码不属于所在社区", "grid code not under its community's code",
                                   "code_outside_community"),
                             Class("#999999", "其他", "other", None))),
        minzoom=12, popup=("kind", "community_id", "grid_ids", "code", "area_m2", "households", "detail")),
    MapLayer(
        id="blindspots", source="blindspots", title_zh="盲区", title_en="Blind spots", geometry="polygon",
        description="Blind spots (盲区): merged H3 cells at risk; special-group counts 1..k-1 are withheld.",
        public_fields=("risk", "risk_reasons", "households", "persons", "rank", "grid_ids", "community_ids",
                       "community_id", "community_name", "main_reason", "reasons_ranked", "account", "account_en",
                       "cells", "area_m2"),
        counts=SPECIAL_GROUP_COUNTS,
        tile_fields=("id", "risk", "risk_reasons", "households", "persons", "rank", "community_ids", "intensity",
                     *SPECIAL_GROUP_COUNTS),
        queryables=("id", "risk"),
        style=Style(kind="fill", field="risk", opacity=0.45, outline="#252525", width=0.5, classes=_RISK_CLASSES),
        minzoom=11, popup=("risk", "risk_reasons", "households", "persons", "rank", "community_ids", "grid_ids",
                           *SPECIAL_GROUP_COUNTS)),
    MapLayer(
        id="facilities", source="facilities", title_zh="服务设施", title_en="Facilities", geometry="point",
        public_fields=("name", "category", "source"), derived=_facility_derived,
        tile_fields=("id", "name", "category", "tier"), queryables=("id", "category"),
        style=Style(kind="circle", field="tier", radius=5.0, opacity=0.9, outline="#ffffff",
                    classes=(Class("#1b9e77", "5分钟生活圈设施", "5-minute facility", 5),
                             Class("#7570b3", "10分钟生活圈设施", "10-minute facility", 10),
                             Class("#d95f02", "15分钟生活圈设施", "15-minute facility", 15),
                             Class("#666666", "其他设施", "other facility", None))),
        minzoom=13, popup=("name", "category", "tier")),
    MapLayer(
        id="cases", source="cases", title_zh="事件", title_en="Cases", geometry="point", role="street_office",
        description="Cases (事件) of the case API: points for street offices (own streets) and admins; "
                    "everyone else gets counts per grid, 1..k-1 withheld.",
        public_fields=POINT_FIELDS, queryables=("id", "status", "urgency", "overdue", "grid_id", "community_id",
                                                "street_id", "source", "category"),
        live=LiveSource(read=case_points, stamp=case_stamp),  # tiles: the public counts below, never points
        style=Style(kind="circle", field="overdue", radius=5.0, opacity=0.9, outline="#ffffff",
                    classes=(Class("#d7191c", "超时未办", "overdue", True), Class("#2c7bb6", "事件", "case", None))),
        minzoom=11, visible=False, popup=("id", "status", "urgency", "overdue", "reported_at", "worker_name"),
        public_counts=MapLayer(
            id="cases", source="grids", title_zh="事件（按网格计数）", title_en="Cases (counts per grid)",
            geometry="polygon", public_fields=("name", "community_id"), counts=COUNT_FIELDS,
            live=LiveSource(read=case_counts, stamp=case_stamp), queryables=("id", "community_id"),
            tile_fields=("id", "name", *COUNT_FIELDS), coverage=True, minzoom=11, visible=False,
            style=Style(kind="fill", field="overdue_cases", steps=True, opacity=0.45, outline="#003c30", width=0.5,
                        classes=(Class("#ffffff", "无超时事件", "no overdue case", 0),
                                 Class("#80cdc1", "有超时事件", "overdue cases", 1),
                                 Class("#01665e", "超时事件 ≥5", "5 or more overdue cases", 5))),
            popup=("name", *COUNT_FIELDS))),
    MapLayer(
        id="households", source="households", title_zh="户（个人数据）", title_en="Households (personal data)",
        geometry="point", role="street_office", public_fields=("*",),
        description="Household-level data (户): only for street_office keys (own streets) and admin keys.",
        queryables=("id", "grid_id", "community_id", "street_id", "status", "building_id"),
        style=Style(kind="circle", classes=(Class("#000000", "户", "household"),)), tiles=False, visible=False),
)

_BY_ID = {layer.id: layer for layer in LAYERS}


def _heats() -> tuple[Heat, ...]:
    config = load_config()
    heats = [Heat(id="basic", layer="h3_reach", value="basic_share", title_zh="基本服务全覆盖（各自层级内）",
                  title_en="full basic set within its tier", stops=_SHARE_STOPS)]
    for tier in sorted({c.tier for c in config.categories}):
        heats.append(Heat(id=f"tier{tier}", layer="h3_reach", value=f"tier{tier}_share", stops=_SHARE_STOPS,
                          title_zh=f"{tier}分钟生活圈（基本设施平均可达比例）",
                          title_en=f"{tier}-minute life circle (mean share of its basic categories reached)"))
    for c in config.categories:
        heats.append(Heat(id=c.id, layer="h3_reach", value=f"within_{c.id}", stops=_SHARE_STOPS,
                          title_zh=f"{c.name_zh}（{c.tier}分钟）", title_en=f"{c.name_en} ({c.tier} min)", group="category"))
    heats.append(Heat(id="blindspots", layer="blindspots", value="intensity", group="blindspots",
                      title_zh="盲区强度", title_en="blind-spot intensity",
                      stops=((0.0, "#2c7bb600"), (0.3, "#2c7bb690"), (0.6, "#f2c500b0"), (1.0, "#d7191cd0"))))
    return tuple(heats)


HEATS: tuple[Heat, ...] = _heats()
_HEAT_BY_ID = {heat.id: heat for heat in HEATS}


def tier_shares(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """``tier<t>_share`` of H3 cells: the mean share of households reaching each basic category of tier t."""
    out = {}
    config = load_config()
    for tier in sorted({c.tier for c in config.categories}):
        cols = [f"within_{c.id}" for c in config.categories if c.tier == tier and c.basic and f"within_{c.id}" in frame]
        if cols:
            out[f"tier{tier}_share"] = frame[cols].astype(float).mean(axis=1).round(3)
    return out


RISK_INTENSITY = {"red": 1.0, "yellow": 0.6, "blue": 0.3, "none": 0.0}


def blindspot_intensity(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """``intensity`` of a blind spot: 1.0 red, 0.6 yellow, 0.3 blue (the plan's three colours), 0 none."""
    risk = frame.get("risk", pd.Series("none", index=frame.index)).astype("string").fillna("none")
    return {"intensity": risk.map(RISK_INTENSITY).fillna(0.0).astype(float)}


#: Columns computed for heat maps, per source layer (kept out of the declarations' public fields).
HEAT_DERIVED = {"h3_reach": tier_shares, "blindspots": blindspot_intensity}


def find_layer(layer_id: str) -> MapLayer:
    """The declaration of ``layer_id``; :class:`~geo.errors.NotFoundError` naming the known ids otherwise."""
    try:
        return _BY_ID[layer_id]
    except KeyError:
        msg = f"unknown layer {layer_id!r} (known: {', '.join(_BY_ID)})"
        raise NotFoundError(msg) from None


def find_heat(heat_id: str) -> Heat:
    """The heat map declaration ``heat_id``; :class:`~geo.errors.NotFoundError` naming the known ids otherwise."""
    try:
        return _HEAT_BY_ID[heat_id]
    except KeyError:
        msg = f"unknown heat map {heat_id!r} (known: {', '.join(_HEAT_BY_ID)})"
        raise NotFoundError(msg) from None
