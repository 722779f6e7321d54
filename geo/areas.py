"""Areas that need attention: old estates (老旧小区) and urban-rural fringes (城乡结合部).

A household is in an old estate when its building (or, lacking a year, the
building's estate) was built in or before ``OLD_ESTATE_CUTOFF`` (the national
renovation programme's cut-off, the end of 2000), or when it lies in an
``areas`` polygon of kind ``old_estate``. It is in the urban-rural fringe when
its community's urban-rural code is 112 (城乡结合区) or 122 (镇乡结合区), or
when it lies in an ``areas`` polygon of kind ``urban_rural_fringe``.

Example
-------
>>> zone = household_zones(located, buildings, estates, communities, areas)
>>> zone["old_estate"].mean()
"""

from __future__ import annotations

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


def household_zones(x: np.ndarray, y: np.ndarray, building_id: np.ndarray, community_id: np.ndarray, *,
                    buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None,
                    communities: gpd.GeoDataFrame, areas: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """``old_estate`` and ``fringe`` flags and the ``zone`` (old_estate, fringe or rest) of each household.

    A household in both counts as ``old_estate`` in ``zone`` (the finer of the two), and keeps both flags.
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
    fringe = pd.Series(comm_code).isin(FRINGE_CODES).to_numpy() | _in_area(x, y, areas, "urban_rural_fringe")
    zone = np.where(old, "old_estate", np.where(fringe, "fringe", "rest"))
    return pd.DataFrame({"old_estate": old, "fringe": fringe, "zone": zone})
