"""The sample's synthetic facilities: the planned and known services a real street would have (``source = synthetic``).

The 2018 OSM extract records few of the services of a central Chengdu street (inside 太升路街道: no
kindergarten, no primary school, one health station), so on OSM alone nobody reaches the basic set and
every heat map is one flat red. This generator adds what a real street of this size has, deterministically
and by rules a planner can check, while keeping the real OSM facilities:

* 5-minute services per community, placed greedily at buildings (the building reaching the most
  households not yet reached within the tier comes first, measured on the real walking network as
  ``gridcover sites`` measures it; the real facilities and the ones placed before count as reaching)
  until the community's *service level* (``SERVICE_LEVEL``, ours: the sample's story) of its households
  is reached: a community complex (社区综合服务站: a service station with a health station),
  a kindergarten, local shops (everywhere: 97%), an elderly day-care centre with a meal point;
* 10-minute services per community (primary school, fresh-food market) and 15-minute ones for the street
  (junior middle school, community health centre, nursing home) to 90% and 95% of households.

Planted service gaps, which the analysis should show: the fringe village of 小关庙社区 gets no 5- or
10-minute service within its reach, and old estates (built in or before 2000) get no day-care centre in
them (the elderly living alone there walk further).

Example
-------
>>> _target("shop", 5, "510105001003"), _target("complex", 5, "510105001003"), _target("market", 10, None)
(0.97, 0.95, 0.9)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.spatial import cKDTree

from geo.lifecircle import household_origins
from geo.reach import ReachModel, load_config
from geo.siting import coverage_matrix, demand_for

#: Share of a community's households its 5-minute services are placed to reach (ours: the sample's story,
#: sample_geojson/README.md "The story"): 德盛路 well served, 太升南路 (old estates) least.
SERVICE_LEVEL = {"510105001001": 0.80, "510105001002": 0.65, "510105001003": 0.95, "510105001004": 0.85,
                 "510105001005": 0.85}
#: Share targets of the other kinds: shops are everywhere; 10- and 15-minute services per community / street.
SHOP_LEVEL, TEN_MINUTE_LEVEL, FIFTEEN_MINUTE_LEVEL = 0.97, 0.90, 0.95
MAX_SITES = 40
#: Every synthetic facility's name ends so (示例: sample), as a popup showing only the name still says it is not
#: a real place (many are named after the estate they stand in, and a few estates bear real OSM names).
SYNTHETIC_MARK = "（示例）"
#: No 5- or 10-minute service is placed within this many metres of a village house (ours): the village's
#: services are missing, not merely far (the planted gap).
VILLAGE_MARGIN_M = 100.0

#: (kind, categories placed together in one building, names, per community?)
KINDS = (
    ("complex", ("community_service", "health_station"), ("{}党群服务站", "{}社区卫生服务站"), True),
    ("kindergarten", ("kindergarten",), ("{}幼儿园",), True),
    ("shop", ("shop",), ("{}便利店",), True),
    ("daycare", ("elderly_daycare", "canteen"), ("{}日间照料中心", "{}长者助餐点"), True),
    ("primary_school", ("primary_school",), ("{}片区小学",), True),
    ("market", ("market",), ("{}生鲜超市",), True),
    ("middle_school", ("middle_school",), ("{}片区初级中学",), False),
    ("health_centre", ("health_centre",), ("{}社区卫生服务中心",), False),
    ("nursing_home", ("nursing_home",), ("{}养老院",), False),
)


def _target(kind: str, tier: int, community: str | None) -> float:
    """Share of the households a kind of service is placed to reach."""
    if kind == "shop":
        return SHOP_LEVEL
    if tier == 5:
        return SERVICE_LEVEL.get(community, 0.85)
    return TEN_MINUTE_LEVEL if tier == 10 else FIFTEEN_MINUTE_LEVEL


def _greedy(cover: sp.csr_matrix, households: np.ndarray, *, already: int, total: int, target: float) -> list[int]:
    """Candidates (rows of ``cover``) picked one by one, each reaching the most demand households not yet
    reached, until ``target`` of ``total`` households are reached (``already`` are) or nothing more is gained."""
    left = households.astype(float).copy()
    a = cover.astype(float).tocsr()
    picks, reached = [], already
    while reached < target * total and len(picks) < MAX_SITES and a.shape[0]:
        gain = a @ left
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        picks.append(j)
        reached += gain[j]
        left[a[j].indices] = 0.0
    return picks


def planned_facilities(existing: gpd.GeoDataFrame, *, layers: dict, village: np.ndarray) -> gpd.GeoDataFrame:
    """The synthetic facilities (metric CRS: ``name``, ``category``, ``source``, ``building_id``, ``geometry``).

    ``existing``: the real facilities (they reach first); ``layers``: the sample's ``buildings`` (with
    ``community``, ``households``, ``year_built``), ``estates``, ``gates``, ``roads`` and ``households``
    (with ``building_id``) in the metric CRS; ``village``: a mask of the fringe village's buildings.
    Sites are buildings; a site reaches a household when the walk on the real network (through the
    estate's gates, at the analysis's speeds) is within the tier, as ``gridcover sites`` measures it.
    """
    buildings, hh = layers["buildings"], layers["households"]
    config = load_config()
    located = hh.geometry.notna().to_numpy()
    hx = np.where(located, shapely.get_x(hh.geometry.to_numpy()), np.nan)
    hy = np.where(located, shapely.get_y(hh.geometry.to_numpy()), np.nan)
    building_id = _building_of(hh, buildings)
    origins, origin_of = household_origins(hx, hy, building_id, buildings=buildings,
                                           estates=layers["estates"], gates=layers["gates"])
    real = existing[existing["category"].isin(config.ids)].assign(id=lambda f: [f"real-{i}" for i in range(len(f))])
    model = ReachModel.build(layers["roads"], real, origins, config=config)
    elderly = hh["elderly_alone"].to_numpy(bool)
    inner = shapely.point_on_surface(buildings.geometry.to_numpy())
    bx, by = shapely.get_x(inner), shapely.get_y(inner)
    b_row = pd.Series(np.arange(len(buildings)), index=buildings["id"].astype(str))
    hb = b_row.reindex(pd.Series(building_id).astype(str)).to_numpy()
    community = buildings["community"].astype(object).to_numpy()
    h_comm = np.where(np.isfinite(hb), community[np.nan_to_num(hb).astype(int)], None)
    old = pd.to_numeric(buildings["year_built"], errors="coerce").fillna(9999).to_numpy() <= 2000
    h_old = np.isfinite(hb) & old[np.nan_to_num(hb).astype(int)]
    h_village = np.isfinite(hb) & village[np.nan_to_num(hb).astype(int)]
    label = _labels(buildings, layers["estates"])
    vill_tree = cKDTree(np.column_stack([bx[village], by[village]])) if village.any() else None
    rows = []
    for kind, cats, names, per_community in KINDS:
        cat = config.category(cats[0])
        near_village = np.zeros(len(bx), dtype=bool)
        if cat.tier <= 10 and vill_tree is not None:  # no 5- or 10-minute service at the village's edge
            near_village = vill_tree.query(np.column_stack([bx, by]), k=1)[0] <= VILLAGE_MARGIN_M
        for c in (sorted(set(community[pd.notna(community)])) if per_community else [None]):
            eligible = ~h_village & ((h_comm == c) if c is not None else np.ones(len(hh), dtype=bool))
            cand = ~village & ~near_village & ((community == c) if c is not None else np.ones(len(bx), dtype=bool))
            if kind == "daycare":  # none in an old estate: the planted gap of the old estates
                eligible &= ~h_old
                cand &= ~old
            mine = np.where(eligible, origin_of, -1)
            demand = demand_for(model, cats[0], origin_of=mine, elderly_alone=elderly, special=elderly, special_weight=0.0)
            total = int((mine >= 0).sum())
            c_idx = np.flatnonzero(cand)
            cover = coverage_matrix(model, demand, bx[c_idx], by[c_idx])
            for j in _greedy(cover, demand.households, already=total - int(demand.households.sum()), total=total,
                             target=_target(kind, cat.tier, c)):
                b = c_idx[j]
                for category, pattern in zip(cats, names):
                    model.add_facility(category, float(bx[b]), float(by[b]))
                    rows.append(dict(name=pattern.format(label[b]) + SYNTHETIC_MARK, category=category, source="synthetic",
                                     building_id=str(buildings["id"].iloc[b]), geometry=shapely.Point(bx[b], by[b])))
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=buildings.crs)


def _labels(buildings: gpd.GeoDataFrame, estates: pd.DataFrame) -> np.ndarray:
    """A place name for each building: its estate's name, else its own name or address."""
    estate_name = buildings["estate_id"].map(estates.set_index("id")["name"])
    return estate_name.fillna(buildings["name"]).fillna(buildings["address"]).fillna("").astype(str).to_numpy()


def _building_of(hh: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Each household's building: its ``building_id``, else the footprint holding its point (None outside)."""
    out = hh["building_id"].to_numpy(object).copy()
    todo = np.flatnonzero(pd.isna(out) & hh.geometry.notna().to_numpy())
    pi, bi = shapely.STRtree(buildings.geometry.to_numpy()).query(hh.geometry.to_numpy()[todo], predicate="within")
    out[todo[pi]] = buildings["id"].astype(str).to_numpy()[bi]
    return out
