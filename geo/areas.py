"""Areas that need attention: old estates (老旧小区) and urban-rural fringes (城乡结合部).

A third way to find the fringe, for data without codes or polygons, is switched on with
``derive_fringe`` (``gridcover analyze --derive-fringe``): :func:`derive_fringe_cells` marks H3 cells
(resolution 9, ~0.1 km²) where low-rise buildings (≤ 3 floors) make up most of the built footprint —
villages — and that lie within 1.5 km of the dense core (cells where buildings of 7 floors or more make up
half the footprint): the transition between the built-up core and the villages.

A household is in an old estate when its building (or, lacking a year, the
building's estate) was built in or before ``OLD_ESTATE_CUTOFF`` (the national
renovation programme's cut-off, the end of 2000), or when it lies in an
``areas`` polygon of kind ``old_estate``. It is in the urban-rural fringe when
its community's urban-rural code is 112 (城乡结合区) or 122 (镇乡结合区), or
when it lies in an ``areas`` polygon of kind ``urban_rural_fringe``.

Example
-------
>>> import geopandas as gpd
>>> import numpy as np
>>> from shapely.geometry import box
>>> buildings = gpd.GeoDataFrame({"id": ["B1", "B2"], "year_built": [1995, 2010]},
...                              geometry=[box(0, 0, 20, 20), box(40, 0, 60, 20)], crs=32648)
>>> communities = gpd.GeoDataFrame({"id": ["C1"], "urban_rural_code": ["111"]}, geometry=[box(0, 0, 100, 100)],
...                                crs=32648)
>>> household_zones(np.array([10.0, 50.0]), np.array([10.0, 10.0]), np.array(["B1", "B2"], dtype=object),
...                 np.array(["C1", "C1"], dtype=object), buildings=buildings, estates=None,
...                 communities=communities, areas=None)
   old_estate  fringe        zone
0        True   False  old_estate
1       False   False        rest
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

OLD_ESTATE_CUTOFF = 2000
FRINGE_CODES = ("112", "122")
#: The three-way breakdown every output uses.
ZONES = ("old_estate", "fringe", "rest")


def _in_area(x: np.ndarray, y: np.ndarray, areas: gpd.GeoDataFrame | None, kind: str) -> np.ndarray:
    out = np.zeros(len(x), dtype=bool)
    if areas is None or len(areas) == 0:
        return out
    polys = areas.geometry.to_numpy()[(areas["kind"] == kind).to_numpy()]
    ok = np.isfinite(x) & np.isfinite(y)
    if len(polys) == 0 or not ok.any():
        return out
    pi, _ = shapely.STRtree(polys).query(shapely.points(x[ok], y[ok]), predicate="intersects")
    out[np.flatnonzero(ok)[np.unique(pi)]] = True
    return out


def building_years(buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None) -> pd.Series:
    """Year built of each building: its own, else its estate's (NaN when neither says)."""
    if buildings is None or len(buildings) == 0:
        return pd.Series(dtype=float)
    own = pd.to_numeric(buildings.get("year_built", pd.Series(np.nan, index=buildings.index)), errors="coerce").astype(float)
    if estates is not None and "year_built" in estates.columns and "estate_id" in buildings.columns:
        estate_year = pd.Series(pd.to_numeric(estates["year_built"], errors="coerce").astype(float).to_numpy(),
                                index=estates["id"].astype(str).to_numpy())
        from_estate = estate_year.reindex(buildings["estate_id"].astype("string").fillna("").to_numpy()).to_numpy()
        own = own.fillna(pd.Series(from_estate, index=buildings.index))
    return pd.Series(own.to_numpy(), index=buildings["id"].astype(str).to_numpy())


@dataclass(frozen=True)
class FringeRule:
    """The documented derivation of the urban-rural fringe from building heights (all tunable)."""

    resolution: int = 9
    low_floors: int = 3  # village houses
    high_floors: int = 7  # the dense core
    village_share: float = 0.6  # of a cell's footprint in low-rise buildings
    core_share: float = 0.5  # of a cell's footprint in high-rise buildings
    distance_m: float = 1500.0  # how far from the core the fringe reaches


def derive_fringe_cells(buildings: gpd.GeoDataFrame, *, rule: FringeRule = FringeRule()) -> np.ndarray:
    """H3 cells (uint64) of the derived urban-rural fringe: village-like cells near the dense core."""
    from scipy.spatial import cKDTree

    from geo.lifecircle import cells_of

    floors = pd.to_numeric(buildings.get("floors", pd.Series(np.nan, index=buildings.index)), errors="coerce").to_numpy(float)
    known = np.isfinite(floors)
    if not known.any():
        return np.zeros(0, dtype=np.uint64)
    inner = gpd.GeoSeries(shapely.point_on_surface(buildings.geometry.to_numpy()[known]), crs=buildings.crs)
    wgs = inner.to_crs(4326)
    cell = cells_of(wgs.x.to_numpy(), wgs.y.to_numpy(), rule.resolution)
    area = shapely.area(buildings.geometry.to_numpy()[known])
    f = floors[known]
    table = pd.DataFrame({"cell": cell, "area": area, "low": area * (f <= rule.low_floors),
                          "high": area * (f >= rule.high_floors), "x": inner.x.to_numpy() * area,
                          "y": inner.y.to_numpy() * area}).groupby("cell").sum()
    village = (table["low"] / table["area"]) >= rule.village_share
    core = (table["high"] / table["area"]) >= rule.core_share
    if not village.any() or not core.any():
        return np.zeros(0, dtype=np.uint64)
    cx, cy = table["x"] / table["area"], table["y"] / table["area"]
    tree = cKDTree(np.column_stack([cx[core], cy[core]]))
    dist, _ = tree.query(np.column_stack([cx[village], cy[village]]))
    return table.index[village].to_numpy()[dist <= rule.distance_m].astype(np.uint64)


def household_zones(x: np.ndarray, y: np.ndarray, building_id: np.ndarray, community_id: np.ndarray, *,
                    buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None,
                    communities: gpd.GeoDataFrame, areas: gpd.GeoDataFrame | None,
                    derive_fringe: bool = False, lonlat: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """``old_estate`` and ``fringe`` flags and the ``zone`` (old_estate, fringe or rest) of each household.

    A household in both counts as ``old_estate`` in ``zone`` (the finer of the two), and keeps both flags.
    With ``derive_fringe`` and neither fringe codes nor fringe areas in the data, the fringe is derived from
    building heights (:func:`derive_fringe_cells`); the frame's ``attrs["fringe_source"]`` says which way.
    """
    years = building_years(buildings, estates)
    by_year = np.zeros(len(x), dtype=bool)
    has_b = pd.notna(building_id)
    if has_b.any() and len(years):
        yr = years.reindex(np.asarray(building_id[has_b]).astype(str)).to_numpy()
        by_year[has_b] = np.nan_to_num(yr, nan=np.inf) <= OLD_ESTATE_CUTOFF
    old = by_year | _in_area(x, y, areas, "old_estate")
    codes = pd.Series(communities.get("ur_code", pd.Series(None, index=communities.index)).astype("string").to_numpy(),
                      index=communities["id"].astype(str).to_numpy())
    comm_code = codes.reindex(pd.Series(community_id).astype("string").fillna("").to_numpy()).to_numpy()
    by_code = pd.Series(comm_code).isin(FRINGE_CODES).to_numpy()
    by_area = _in_area(x, y, areas, "urban_rural_fringe")
    fringe = by_code | by_area
    has_code = codes.isin(FRINGE_CODES).any()
    has_area = areas is not None and len(areas) and (areas["kind"] == "urban_rural_fringe").any()
    source = "ur_code" if has_code else ""
    source = (source + "+areas" if source else "areas") if has_area else source
    if derive_fringe and not (has_code or has_area) and buildings is not None and lonlat is not None:
        from geo.lifecircle import cells_of

        cells = derive_fringe_cells(buildings)
        fringe = np.isin(cells_of(lonlat[0], lonlat[1], FringeRule().resolution), cells) & np.isfinite(x)
        source = "derived"
    elif derive_fringe:
        source = (source or "none") + " (derivation not used: the data name the fringe)"
    zone = np.where(old, "old_estate", np.where(fringe, "fringe", "rest"))
    out = pd.DataFrame({"old_estate": old, "fringe": fringe, "zone": zone})
    out.attrs["fringe_source"] = source or "none"
    return out
