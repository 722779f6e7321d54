"""Blind spots (盲区): adjacent H3 cells at risk merged into polygons, ranked so the worst come first.

A household counts when it has a blind-spot reason (``geo.risk.BLIND_SPOT_REASONS``), is red, or is a
special-group member not visited for longer than ``long_gap_days``;
a cell is at risk when the weight of such households plus its under-registered residential buildings
reaches ``min_cell_weight`` (``risk.toml`` [blindspots]). Cells touching each other (H3 neighbours) form
one blind spot, inside one community: a cell belongs to the community holding most of its at-risk weight,
and neighbours of two communities are two spots (a spot is a place one community's workers can walk to).
Each carries its reasons, worst colour, counts of households and
persons at risk, special-group counts, the grids and communities it touches, and a rank by weight
(``risk.toml`` [weights]: red × red households + yellow × yellow + blue × blue + unregistered × buildings).

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
[['BS0001', 'red', 2, 5, 20]]
"""

from __future__ import annotations

import geopandas as gpd
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
#: The weight of a case reported outside every grid when ``[weights]`` has no ``case_outside_grids``.
CASE_WEIGHT = 5.0
_COLUMNS = ["id", "rank", "risk", "risk_reasons", "weight", "households", "persons", "households_total",
            "unregistered_buildings", *SPECIAL_GROUPS, "grid_ids", "community_ids", "cells", "area_m2",
            "cases_outside_grids"]


def _hot_cells(cell: np.ndarray, level: np.ndarray, risk: pd.DataFrame, under_registered_lonlat, *,
               config: RiskConfig, resolution: int,
               case_cell: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which households are serious, the sorted hot cells (weight at least ``config.min_cell_weight``) and
    the under-registered buildings' cells among them. ``case_cell``: the cells of cases reported outside
    every grid (each weighs ``[weights] case_outside_grids``)."""
    w = config.weights
    reasoned = np.column_stack([risk[f"reason_{r}"].to_numpy(bool) for r in BLIND_SPOT_REASONS]).any(axis=1)
    serious = (cell > 0) & (reasoned | (level == 3) | risk["long_visit_gap"].to_numpy(bool))
    hh_weight = np.where(level == 3, w["red"], np.where(level == 2, w["yellow"], w["blue"])) * serious
    ub_cell = cells_of(*under_registered_lonlat, resolution)
    ub_cell = ub_cell[ub_cell > 0]
    case_cell = np.zeros(0, np.uint64) if case_cell is None else case_cell
    cell_weight = pd.concat([pd.Series(hh_weight[serious], index=cell[serious]),
                             pd.Series(w["unregistered_building"], index=ub_cell),
                             pd.Series(w.get("case_outside_grids", CASE_WEIGHT), index=case_cell)]).groupby(level=0).sum()
    hot = np.sort(cell_weight.index[cell_weight.to_numpy() >= config.min_cell_weight].to_numpy().astype(np.uint64))
    return serious, hot, ub_cell[np.isin(ub_cell, hot)]


def _cell_communities(hot: np.ndarray, cell: np.ndarray, weight: np.ndarray, community: pd.Series) -> np.ndarray:
    """For each hot cell, a code of the community holding most of its at-risk households' weight (-1: none,
    e.g. a cell with only an under-registered building or households in no community)."""
    inside = (weight > 0) & np.isin(cell, hot) & community.notna().to_numpy()
    if not inside.any():
        return np.full(len(hot), -1)
    codes, _ = pd.factorize(community.to_numpy()[inside], sort=True)  # ties go to the smaller id, in any row order
    table = pd.DataFrame({"cell": cell[inside], "code": codes, "w": weight[inside]})
    best = table.groupby(["cell", "code"])["w"].sum().reset_index().sort_values(
        ["cell", "w", "code"], ascending=[True, False, True], kind="stable").drop_duplicates("cell")
    out = np.full(len(hot), -1)
    out[np.searchsorted(hot, best["cell"].to_numpy().astype(np.uint64))] = best["code"].to_numpy()
    return out


def _hot_components(hot: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """The connected component of each hot cell: neighbours among the hot cells join when they belong to
    the same ``group`` (a community code; -1 joins any)."""
    disk = pa.array(h3ronpy.grid_disk(hot, 1, flatten=False))
    counts = np.diff(disk.offsets.to_numpy())
    src = np.repeat(np.arange(len(hot)), counts)
    dst_cells = disk.flatten().to_numpy().astype(np.uint64)
    pos = np.searchsorted(hot, dst_cells)
    pos = np.clip(pos, 0, len(hot) - 1)
    hit = hot[pos] == dst_cells
    if group is not None:
        a, b = group[src], group[pos]
        hit &= (a == b) | (a < 0) | (b < 0)
    graph = sp.coo_matrix((np.ones(int(hit.sum())), (src[hit], pos[hit])), shape=(len(hot), len(hot)))
    _, comp = connected_components(graph, directed=False)
    return comp


def _located_cells(lonlat: tuple[np.ndarray, np.ndarray] | None, resolution: int) -> np.ndarray:
    """The H3 cells of the points given (none: an empty array); points without a cell are left out."""
    cells = cells_of(*lonlat, resolution) if lonlat is not None else np.zeros(0, np.uint64)
    return cells[cells > 0]


def _per_spot(cells: np.ndarray, hot: np.ndarray, comp: np.ndarray, n_comp: int) -> np.ndarray:
    """How many of ``cells`` (one per point) fall in each blind spot."""
    cells = cells[np.isin(cells, hot)]
    return np.bincount(comp[np.searchsorted(hot, cells)], minlength=n_comp) if len(cells) else np.zeros(n_comp, int)


def blind_spots(lon: np.ndarray, lat: np.ndarray, households: pd.DataFrame, risk: pd.DataFrame, *,
                under_registered_lonlat: tuple[np.ndarray, np.ndarray], config: RiskConfig, metric_crs,
                resolution: int = DEFAULT_RESOLUTION,
                cases_outside_lonlat: tuple[np.ndarray, np.ndarray] | None = None) -> gpd.GeoDataFrame:
    """Blind-spot polygons (WGS-84) from household locations (lon/lat), their risk and the under-registered
    buildings' inside points; ``cases_outside_lonlat``: the points of cases reported outside every grid (reason
    ``case_outside_grids``, counted in ``cases_outside_grids``)."""
    cell = cells_of(lon, lat, resolution)
    level = risk["risk_level"].to_numpy()
    w = config.weights
    case_cell = _located_cells(cases_outside_lonlat, resolution)
    serious, hot, ub_cell = _hot_cells(cell, level, risk, under_registered_lonlat, config=config,
                                       resolution=resolution, case_cell=case_cell)
    at_risk_hh = serious
    if len(hot) == 0:
        return gpd.GeoDataFrame({c: [] for c in _COLUMNS}, geometry=[], crs="EPSG:4326")
    hh_weight = np.where(level == 3, w["red"], np.where(level == 2, w["yellow"], w["blue"])) * serious
    comp = _hot_components(hot, _cell_communities(hot, cell, hh_weight, households["community_id"].astype("string")))

    # households in hot cells (all of them count for totals; at-risk ones for the figures)
    in_hot = (cell > 0) & np.isin(cell, hot)
    hh_comp = np.full(len(cell), -1)
    hh_comp[in_hot] = comp[np.searchsorted(hot, cell[in_hot])]
    n_comp = int(comp.max()) + 1
    frame = pd.DataFrame({"comp": hh_comp, "at_risk": at_risk_hh, "level": level,
                          "persons": households["persons"].astype(float).fillna(0).to_numpy(),
                          "grid": households["grid_id"].astype("string").to_numpy(),
                          "community": households["community_id"].astype("string").to_numpy()})
    for g in SPECIAL_GROUPS:
        frame[g] = households[g].astype(bool).to_numpy()
    for r in REASONS:
        frame[r] = risk[f"reason_{r}"].to_numpy(bool)
    frame = frame[frame["comp"] >= 0]
    risky = frame[frame["at_risk"]]
    by = risky.groupby("comp")
    idx = pd.RangeIndex(n_comp)
    households_n = by.size().reindex(idx).fillna(0).astype(int)
    persons = by["persons"].sum().reindex(idx).fillna(0).astype(int)
    worst = by["level"].max().reindex(idx).fillna(0).astype(int)
    per_level = {lv: (risky["level"] == lv).groupby(risky["comp"]).sum().reindex(idx).fillna(0) for lv in (1, 2, 3)}
    reasons_any = by[list(REASONS)].any().reindex(idx).fillna(False)
    ub_comp = comp[np.searchsorted(hot, ub_cell)] if len(ub_cell) else np.zeros(0, int)
    ub_count = np.bincount(ub_comp, minlength=n_comp)
    reasons_any["unregistered_building"] = reasons_any["unregistered_building"].to_numpy(bool) | (ub_count > 0)
    case_count = _per_spot(case_cell, hot, comp, n_comp)
    weight = (w["red"] * per_level[3] + w["yellow"] * per_level[2] + w["blue"] * per_level[1]
              + w["unregistered_building"] * ub_count
              + (w.get("case_outside_grids", CASE_WEIGHT) * case_count if case_count.any() else 0)
              ).to_numpy()  # the same weights that chose the cells
    # a spot with only an unregistered building (or a case outside every grid) is blue at least
    worst = np.maximum(worst.to_numpy(), np.where((ub_count > 0) | (case_count > 0), 1, 0))

    polys = shapely.from_wkb(np.asarray(h3v.cells_to_wkb_polygons(hot), dtype=object))
    geoms = [shapely.union_all(polys[comp == c]) for c in range(n_comp)]  # one union per blind spot
    names = np.array(REASONS, dtype=object)
    touched_grids = frame.dropna(subset=["grid"]).groupby("comp")["grid"].agg(lambda s: ",".join(sorted(set(s))))
    touched_comms = frame.dropna(subset=["community"]).groupby("comp")["community"].agg(lambda s: ",".join(sorted(set(s))))
    out = gpd.GeoDataFrame({
        "risk": np.asarray(COLOURS, dtype=object)[worst],
        "risk_reasons": [list(names[row]) + (["case_outside_grids"] if k else [])
                         for row, k in zip(reasons_any[list(REASONS)].to_numpy(bool), case_count)],
        "weight": np.round(weight, 1),
        "households": households_n.to_numpy(),
        "persons": persons.to_numpy(),
        "households_total": frame.groupby("comp").size().reindex(idx).fillna(0).astype(int).to_numpy(),
        "unregistered_buildings": ub_count,
        **{g: by[g].sum().reindex(idx).fillna(0).astype(int).to_numpy() for g in SPECIAL_GROUPS},
        "grid_ids": touched_grids.reindex(idx).fillna("").to_numpy(),
        "community_ids": touched_comms.reindex(idx).fillna("").to_numpy(),
        "cells": np.bincount(comp, minlength=n_comp),
    }, geometry=geoms, crs="EPSG:4326")
    out["cases_outside_grids"] = case_count
    out["area_m2"] = np.round(out.to_crs(metric_crs).area.to_numpy(), 0)
    out = out.sort_values(["weight", "households"], ascending=[False, False], kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.insert(0, "id", [f"BS{r:04d}" for r in out["rank"]])
    return out
