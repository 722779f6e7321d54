"""Blind spots (盲区): places at risk a grid worker can walk to, each inside one community, ranked worst first.

A household counts when it has a blind-spot reason (``geo.risk.BLIND_SPOT_REASONS``), is red, or is a
special-group member not visited for longer than ``long_gap_days``; places count too (under-registered
residential buildings, and any :class:`PointReason` a caller adds). The unit is an H3 cell *of one
community*: the weight of that community's households and places in the cell (``risk.toml`` [weights]:
red × red households + yellow × yellow + blue × blue + unregistered × buildings) must reach
``min_cell_weight`` ([blindspots]). Neighbouring units of the same community form one blind spot; a spot
larger than ``max_area_m2`` ([blindspots], ours) is cut along the H3 cells one resolution coarser (pieces of
at most 7 cells, compact) so that no spot is a district. Each spot carries its figures, its community, the
grids it touches, its polygon (clipped to the community when the communities are given) and an account of
what is wrong in it: counts by reason, the main reason (the lapse of care weighing most) first, in
Chinese (``account``) and English (``account_en``), the codes kept as fields (``main_reason``,
``reasons_ranked``, ``reason_counts``, ``reason_units``). The account is public text: reasons only special
groups have (``WITHHELD_REASONS``) appear without their count, and the colours' counts
(``households_red`` …) stay fields, as special-group counts are withheld from the public below k.

Example
-------
Two red households in no grid, side by side, make one blind spot; a third one, safe, makes none:

>>> import numpy as np
>>> import pandas as pd
>>> from geo.risk import REASONS, RiskConfig
>>> households = pd.DataFrame({"persons": [3, 2, 1], "grid_id": [None, None, "G1"], "community_id": ["C1"] * 3,
...                            **{g: [False] * 3 for g in SPECIAL_GROUPS}})
>>> risk = pd.DataFrame({"risk_level": [3, 3, 0], "long_visit_gap": [False] * 3,
...                      **{f"reason_{r}": [r == "no_grid", r == "no_grid", False] for r in REASONS}})
>>> config = RiskConfig(visits={}, long_gap_days=90, group_services={}, registration={}, targets={},
...                     weights={"red": 10, "yellow": 3, "blue": 1, "unregistered_building": 5})
>>> spots = blind_spots(np.array([104.0657, 104.0658, 104.08]), np.array([30.6595, 30.6595, 30.67]),
...                     households, risk, under_registered_lonlat=(np.zeros(0), np.zeros(0)), config=config,
...                     metric_crs=32648)
>>> spots[["id", "risk", "households", "persons", "weight"]].values.tolist()
[['BS0001', 'red', 2, 5, 20.0]]
>>> spots.loc[0, "account"]
'C1：需关注 2户；主要：不在任何网格 2户'
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import h3
import h3ronpy
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
import shapely
from h3ronpy import vector as h3v
from scipy.sparse.csgraph import connected_components

from geo.lifecircle import cells_of
from geo.risk import BLIND_SPOT_REASONS, COLOURS, REASONS, RiskConfig
from geo.schema import SPECIAL_GROUPS

DEFAULT_RESOLUTION = 10
#: The reasons in Chinese and English, for a spot's account (a reason without a name shows its code).
REASON_NAMES = {
    "no_grid": ("不在任何网格", "in no grid"), "overlapping_grids": ("网格重叠", "overlapping grids"),
    "grid_over_capacity": ("网格超负荷", "grid over capacity"), "missing_services": ("基本服务缺配", "missing basic services"),
    "special_group_unreached": ("特殊群体服务不可达", "special group out of reach of its services"),
    "visit_overdue": ("走访逾期", "visit overdue"), "unregistered_building": ("疑似未登记出租", "possibly unregistered rentals"),
    "urgent_case_overdue": ("紧急事件超时未办结", "urgent case overdue"),
    "case_outside_grids": ("网格外上报事件", "case reported outside every grid"),
}
#: Reasons only special-group households have: the account names them without their count (the count of
#: special-group households is withheld from the public below k; ``reason_counts`` has it for entitled roles).
WITHHELD_REASONS = ("visit_overdue", "special_group_unreached")
_COLUMNS = ["id", "rank", "risk", "risk_reasons", "main_reason", "reasons_ranked", "reason_counts", "reason_units", "account",
            "account_en", "weight", "households", "households_red", "households_yellow", "households_blue", "persons",
            "households_total", "unregistered_buildings", *SPECIAL_GROUPS, "community_id", "community_name",
            "grid_ids", "community_ids", "cells", "area_m2", "cases_outside_grids"]


@dataclass(frozen=True)
class PointReason:
    """Places, not households, that weigh in a blind spot: each point adds ``weight`` to its cell and counts
    under ``reason`` (a code of :data:`geo.risk.REASONS`) in the spot's account, in ``unit``.

    ``community_id`` (one per point) says whose the place is; None: found from the communities' polygons
    when :func:`blind_spots` is given them.
    """

    reason: str
    lon: np.ndarray
    lat: np.ndarray
    weight: float
    unit_zh: str = "处"
    unit_en: str = "places"
    community_id: np.ndarray | None = None


def _household_weight(level: np.ndarray, risk: pd.DataFrame, config: RiskConfig) -> tuple[np.ndarray, np.ndarray]:
    """Which households are serious (they can make a blind spot) and the weight each adds."""
    w = config.weights
    reasoned = np.column_stack([risk[f"reason_{r}"].to_numpy(bool) for r in BLIND_SPOT_REASONS]).any(axis=1)
    serious = reasoned | (level == 3) | risk["long_visit_gap"].to_numpy(bool)
    weight = np.where(level == 3, w["red"], np.where(level == 2, w["yellow"], w["blue"])) * serious
    return serious, weight.astype(float)


def _point_communities(points: PointReason, communities: gpd.GeoDataFrame | None) -> np.ndarray:
    """The community of each point: given, else the community polygon holding it, else None."""
    if points.community_id is not None:
        return np.array(points.community_id, dtype=object)  # a copy: filled in by the caller
    out = np.full(len(points.lon), None, dtype=object)
    if communities is None or not len(communities) or not len(out):
        return out
    xy = gpd.GeoSeries(gpd.points_from_xy(points.lon, points.lat), crs="EPSG:4326").to_crs(communities.crs)
    pi, ci = shapely.STRtree(communities.geometry.to_numpy()).query(xy.to_numpy(), predicate="within")
    out[pi] = communities["id"].astype(str).to_numpy()[ci]
    return out


def _heaviest_community(cell: np.ndarray, community: pd.Series, weight: np.ndarray) -> pd.Series:
    """Per cell (index, uint64) the community whose serious households weigh most there (ties: the smaller id)."""
    table = pd.DataFrame({"cell": cell, "community": community.astype("string").to_numpy(), "w": weight})
    table = table[(table["w"] > 0) & table["community"].notna() & (table["cell"] > 0)]
    best = table.groupby(["cell", "community"])["w"].sum().reset_index().sort_values(
        ["cell", "w", "community"], ascending=[True, False, True], kind="stable").drop_duplicates("cell")
    return pd.Series(best["community"].astype(object).to_numpy(), index=best["cell"].to_numpy(np.uint64))


@dataclass
class _Units:
    """The hot units (cell × community), sorted by (community code, cell), and who falls in which."""

    cell: np.ndarray        # uint64
    code: np.ndarray        # community code (-1: none)
    names: np.ndarray       # community id of each code
    of_household: np.ndarray  # unit of each household (-1: none)
    of_point: list          # per PointReason, the unit of each point (-1: none)


def _hot_units(cell: np.ndarray, community: pd.Series, hh_weight: np.ndarray, points: list[PointReason],
               point_comm: list[np.ndarray], point_cell: list[np.ndarray], *, min_weight: float) -> _Units:
    """Cells of one community whose weight reaches ``min_weight``."""
    comm_h = community.astype(object).where(community.notna(), None).to_numpy(object)
    every = np.concatenate([comm_h, *point_comm]) if point_comm else comm_h
    names = np.array(sorted(pd.Series(every, dtype=object).dropna().astype(str).unique()), dtype=object)
    code_of = {c: i for i, c in enumerate(names)}

    def codes(values: np.ndarray) -> np.ndarray:
        text = pd.Series(values, dtype=object).astype("string")
        return text.map(code_of).astype("float").fillna(-1).astype(np.int64).to_numpy()

    h_code = codes(comm_h)
    p_code = [codes(c) for c in point_comm]
    table = pd.concat([pd.DataFrame({"code": h_code, "cell": cell, "w": hh_weight})]
                      + [pd.DataFrame({"code": c, "cell": pc, "w": p.weight}) for p, c, pc in zip(points, p_code, point_cell)])
    table = table[(table["cell"] > 0) & (table["w"] > 0)]
    summed = table.groupby(["code", "cell"], sort=True)["w"].sum()
    hot = summed[summed.to_numpy() >= min_weight].index
    index = pd.MultiIndex.from_arrays([hot.get_level_values(0).to_numpy(np.int64),
                                       hot.get_level_values(1).to_numpy(np.uint64)])

    def unit_of(c: np.ndarray, cl: np.ndarray) -> np.ndarray:
        return index.get_indexer(pd.MultiIndex.from_arrays([c.astype(np.int64), cl.astype(np.uint64)])) if len(c) \
            else np.zeros(0, np.int64)

    return _Units(cell=index.get_level_values(1).to_numpy(np.uint64), code=index.get_level_values(0).to_numpy(np.int64),
                  names=names, of_household=unit_of(h_code, cell),
                  of_point=[unit_of(c, pc) for c, pc in zip(p_code, point_cell)])


def _components(units: _Units, *, resolution: int, max_area_m2: float) -> np.ndarray:
    """The spot of each unit: neighbouring units of one community join; a spot over ``max_area_m2`` is cut
    along the cells one resolution coarser (its pieces of one coarser cell stay whole when connected)."""
    n = len(units.cell)
    disk = pa.array(h3ronpy.grid_disk(units.cell, 1, flatten=False))
    src = np.repeat(np.arange(n), np.diff(disk.offsets.to_numpy()))
    nbr = disk.flatten().to_numpy().astype(np.uint64)
    index = pd.MultiIndex.from_arrays([units.code, units.cell])
    dst = index.get_indexer(pd.MultiIndex.from_arrays([units.code[src], nbr]))
    src, dst = src[dst >= 0], dst[dst >= 0]

    def label(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        return connected_components(graph, directed=False)[1]

    comp = label(src, dst)
    too_big = np.bincount(comp) * h3.average_hexagon_area(resolution, "m^2") > max_area_m2
    if not too_big.any() or resolution == 0:
        return comp
    parent = pa.array(h3ronpy.change_resolution(units.cell, resolution - 1)).to_numpy().astype(np.uint64)
    cut = too_big[comp[src]] & (parent[src] != parent[dst])
    return label(src[~cut], dst[~cut])


def _reason_text(r: str, households: int, places: int, unit: tuple[str, str]) -> tuple[str, str, int, str]:
    """One reason of an account in Chinese and English, its count and its unit: places first when the reason
    counts places (1栋（47户）), else households."""
    zh_name, en_name = REASON_NAMES.get(r, (r, r))
    if r in WITHHELD_REASONS:
        return f"{zh_name} 若干户", f"{en_name} (special groups, count withheld)", households, "户"
    if places and households:
        return (f"{zh_name} {places}{unit[0]}（涉及 {households}户）", f"{en_name} {places} {unit[1]} ({households} households)",
                places, unit[0])
    if places:
        return f"{zh_name} {places}{unit[0]}", f"{en_name} {places} {unit[1]}", places, unit[0]
    return f"{zh_name} {households}户", f"{en_name} {households} households", households, "户"


def _account(counts: pd.DataFrame, places: pd.DataFrame, contribution: pd.DataFrame,
             units: dict[str, tuple[str, str]], figures: pd.DataFrame, names: np.ndarray) -> pd.DataFrame:
    """Per spot: the reasons ranked (the lapse of care weighing most first, then the others by count), their
    counts and units, and the account in Chinese and English."""
    lapses = list(contribution.columns)
    rows = []
    for spot in counts.index:  # one row per spot (a few dozen), not per household
        c, p, w = counts.loc[spot], places.loc[spot], contribution.loc[spot]
        total = {r: int(c.get(r, 0)) + int(p.get(r, 0)) for r in set(counts.columns) | set(places.columns)}
        first = sorted((r for r in lapses if total.get(r, 0) > 0), key=lambda r: (-w[r], -total[r], r))
        rest = sorted((r for r in total if r not in lapses and total[r] > 0), key=lambda r: (-total[r], r))
        texts = [_reason_text(r, int(c.get(r, 0)), int(p.get(r, 0)), units.get(r, ("处", "places"))) for r in first + rest]
        n = int(figures.loc[spot, "households"])  # by colour only in the fields: red and yellow are special groups
        zh, en = (names[spot], names[spot]) if names[spot] else ("社区不明", "no community")
        head_zh, head_en = f"{zh}：需关注 {n}户", f"{en}: {n} households at risk"
        rows.append({"main_reason": (first + rest)[0] if texts else None, "reasons_ranked": first + rest,
                     "reason_counts": [t[2] for t in texts], "reason_units": [t[3] for t in texts],
                     "account": head_zh + ("；主要：" + "；".join(t[0] for t in texts) if texts else ""),
                     "account_en": head_en + ("; mainly: " + "; ".join(t[1] for t in texts) if texts else "")})
    return pd.DataFrame(rows, index=counts.index)


def _household_frame(comp_of_hh: np.ndarray, households: pd.DataFrame, risk: pd.DataFrame, level: np.ndarray,
                     serious: np.ndarray, hh_weight: np.ndarray) -> pd.DataFrame:
    """The households inside spots, with what the figures need."""
    frame = pd.DataFrame({"comp": comp_of_hh, "at_risk": serious, "level": level, "w": hh_weight,
                          "persons": households["persons"].astype(float).fillna(0).to_numpy(),
                          "grid": households["grid_id"].astype("string").to_numpy()})
    for g in SPECIAL_GROUPS:
        frame[g] = households[g].astype(bool).to_numpy()
    for r in REASONS:
        frame[r] = risk[f"reason_{r}"].to_numpy(bool)
    return frame[frame["comp"] >= 0]


def _spot_table(frame: pd.DataFrame, point_comp: list[np.ndarray], points: list[PointReason], *, n_comp: int,
                config: RiskConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per spot: the figures, the households by reason, the places by point reason and each lapse's weight
    contribution."""
    idx = pd.RangeIndex(n_comp)
    risky = frame[frame["at_risk"]]
    by = risky.groupby("comp")
    colours = pd.DataFrame({name: (risky["level"] == lv).groupby(risky["comp"]).sum().reindex(idx).fillna(0)
                            for lv, name in ((3, "red"), (2, "yellow"), (1, "blue"))})
    counts = by[list(REASONS)].sum().reindex(idx).fillna(0)
    lapse = list(BLIND_SPOT_REASONS)
    contribution = pd.DataFrame({r: (risky["w"] * risky[r]).groupby(risky["comp"]).sum().reindex(idx).fillna(0)
                                 for r in lapse})
    point_weight = np.zeros(n_comp)
    places = pd.DataFrame(index=idx)
    for p, pc in zip(points, point_comp):
        n = np.bincount(pc[pc >= 0], minlength=n_comp)
        places[p.reason] = places.get(p.reason, 0) + n
        contribution[p.reason] = contribution.get(p.reason, 0) + n * p.weight
        point_weight += n * p.weight
    w = config.weights
    figures = pd.DataFrame({
        "weight": np.round((w["red"] * colours["red"] + w["yellow"] * colours["yellow"] + w["blue"] * colours["blue"]
                            ).to_numpy() + point_weight, 1),
        "households": by.size().reindex(idx).fillna(0).astype(int).to_numpy(),
        "households_red": colours["red"].astype(int).to_numpy(), "households_yellow": colours["yellow"].astype(int).to_numpy(),
        "households_blue": colours["blue"].astype(int).to_numpy(),
        "persons": by["persons"].sum().reindex(idx).fillna(0).astype(int).to_numpy(),
        "households_total": frame.groupby("comp").size().reindex(idx).fillna(0).astype(int).to_numpy(),
        **{g: by[g].sum().reindex(idx).fillna(0).astype(int).to_numpy() for g in SPECIAL_GROUPS},
        "worst": np.maximum(by["level"].max().reindex(idx).fillna(0).astype(int).to_numpy(),
                            (point_weight > 0).astype(int)),  # a spot of places only is blue at least
    }, index=idx)
    return figures, counts.astype(int), places.astype(int), contribution


def blind_spots(lon: np.ndarray, lat: np.ndarray, households: pd.DataFrame, risk: pd.DataFrame, *,
                under_registered_lonlat: tuple[np.ndarray, np.ndarray], config: RiskConfig, metric_crs,
                resolution: int = DEFAULT_RESOLUTION, communities: gpd.GeoDataFrame | None = None,
                points: tuple[PointReason, ...] = ()) -> gpd.GeoDataFrame:
    """Blind-spot polygons (WGS-84) from household locations (lon/lat), their risk, the under-registered
    buildings' inside points and any further ``points``; ``communities`` (``id``, ``name``, polygons) name
    the spots, place the points and clip the polygons."""
    cell = cells_of(lon, lat, resolution)
    level = risk["risk_level"].to_numpy()
    serious, hh_weight = _household_weight(level, risk, config)
    hh_weight = np.where(cell > 0, hh_weight, 0.0)
    sources = [PointReason("unregistered_building", *under_registered_lonlat, weight=config.weights["unregistered_building"],
                           unit_zh="栋", unit_en="buildings"), *points]
    point_cell = [cells_of(np.asarray(p.lon, float), np.asarray(p.lat, float), resolution) for p in sources]
    heaviest = _heaviest_community(cell, households["community_id"], hh_weight)
    point_comm = [_point_communities(p, communities) for p in sources]
    for comm, pc in zip(point_comm, point_cell):  # a place of no known community: its cell's heaviest one
        loose = pd.isna(comm) & (pc > 0)
        comm[loose] = heaviest.reindex(pc[loose]).to_numpy(object)
    units = _hot_units(cell, households["community_id"], hh_weight, sources, point_comm, point_cell,
                       min_weight=config.min_cell_weight)
    if len(units.cell) == 0:
        return gpd.GeoDataFrame({c: [] for c in _COLUMNS}, geometry=[], crs="EPSG:4326")
    comp = _components(units, resolution=resolution, max_area_m2=config.max_spot_area_m2)
    n_comp = int(comp.max()) + 1
    of_hh = np.where(units.of_household >= 0, comp[np.maximum(units.of_household, 0)], -1)
    point_comp = [np.where(u >= 0, comp[np.maximum(u, 0)], -1) for u in units.of_point]
    frame = _household_frame(of_hh, households, risk, level, serious, hh_weight)
    figures, counts, places, contribution = _spot_table(frame, point_comp, sources, n_comp=n_comp, config=config)
    code = np.zeros(n_comp, np.int64)
    code[comp] = units.code
    community_id = np.array([units.names[c] if c >= 0 else "" for c in code], dtype=object)  # one per spot
    names = _community_names(community_id, communities)
    account = _account(counts, places, contribution, {p.reason: (p.unit_zh, p.unit_en) for p in sources}, figures, names)
    both = counts.add(places, fill_value=0)
    order = np.array([r for r in REASONS if r in both.columns] + [r for r in places.columns if r not in REASONS],
                     dtype=object)
    present = both[list(order)].to_numpy() > 0
    pairs = frame[["comp", "grid"]].dropna().drop_duplicates().sort_values(["comp", "grid"])
    grids = pairs.groupby("comp")["grid"].agg(",".join)  # one join per spot, over its distinct grids
    out = gpd.GeoDataFrame({
        "risk": np.asarray(COLOURS, dtype=object)[figures["worst"].to_numpy()],
        "risk_reasons": [list(order[row]) for row in present],
        **{c: account[c].to_list() for c in ("main_reason", "reasons_ranked", "reason_counts", "reason_units", "account",
                                             "account_en")},
        **{c: figures[c].to_numpy() for c in figures.columns if c != "worst"},
        "unregistered_buildings": places["unregistered_building"].to_numpy(),
        "cases_outside_grids": (places["case_outside_grids"] if "case_outside_grids" in places else
                                pd.Series(0, index=places.index)).to_numpy(int),
        "community_id": community_id, "community_name": names,
        "grid_ids": grids.reindex(pd.RangeIndex(n_comp)).fillna("").to_numpy(), "community_ids": community_id,
        "cells": np.bincount(comp, minlength=n_comp),
    }, geometry=_spot_polygons(units.cell, comp, n_comp, community_id, communities), crs="EPSG:4326")
    out["area_m2"] = np.round(out.to_crs(metric_crs).area.to_numpy(), 0)
    out = out.sort_values(["weight", "households"], ascending=[False, False], kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.insert(0, "id", [f"BS{r:04d}" for r in out["rank"]])
    return out[_COLUMNS + ["geometry"]]


def _community_names(community_id: np.ndarray, communities: gpd.GeoDataFrame | None) -> np.ndarray:
    """The name of each spot's community (its id when the communities have no name)."""
    if communities is None or "name" not in communities.columns:
        return community_id.astype(object)
    name = pd.Series(communities["name"].to_numpy(), index=communities["id"].astype(str).to_numpy())
    found = pd.Series(community_id).map(name)
    return found.where(found.notna() & (found != ""), pd.Series(community_id)).to_numpy(object)


def _spot_polygons(cell: np.ndarray, comp: np.ndarray, n_comp: int, community_id: np.ndarray,
                   communities: gpd.GeoDataFrame | None) -> list:
    """One polygon per spot: the union of its cells, clipped to its community's polygon when given (and
    left whole where the clip would leave nothing)."""
    polys = shapely.from_wkb(np.asarray(h3v.cells_to_wkb_polygons(cell), dtype=object))
    order = np.argsort(comp, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(comp, minlength=n_comp))]
    geoms = np.array([shapely.union_all(polys[order[bounds[c]:bounds[c + 1]]]) for c in range(n_comp)], dtype=object)
    if communities is None or not len(communities):
        return list(geoms)
    shapes = communities.to_crs("EPSG:4326").set_index(communities["id"].astype(str)).geometry
    mine = pd.Series(community_id).map(shapes).to_numpy(object)
    has = np.array([g is not None and not (isinstance(g, float)) for g in mine])
    clipped = geoms.copy()
    clipped[has] = shapely.intersection(geoms[has], np.array(list(mine[has]), dtype=object))
    keep = has & ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    return list(np.where(keep, clipped, geoms))
