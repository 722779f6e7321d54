"""The cases of the case API as map layers: points for keys that may see the street, counts per grid for
everyone else (事件图层).

Read from the store's case store (:meth:`gridcover.store.Workspace.cases`) and the last analysis's cases (the
workspace layer ``cases``, the data folder's, where the store does not hold the id), and judged
at the moment they are read (:func:`geo.cases.evaluate_cases`): :func:`case_points` and :func:`case_counts`
are the :class:`layers.base.LiveSource` of the ``cases`` declaration in :mod:`layers.catalog`, keyed by
:func:`case_stamp` (the store's stamp and the minute, so an overdue case turns overdue on the map within a
minute).

Example
-------
>>> case_counts(open_workspace("out/sample"))[["id", "cases", "overdue_cases"]].head(1)  # doctest: +SKIP
"""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.cases import case_rules, case_times, evaluate_cases
from geo.risk import load_risk_config
from gridcover.store.base import iso_utc

#: Fields of a case point (street offices of its street and admins only).
POINT_FIELDS = ("status", "overdue", "on_time", "urgency", "category", "source", "reported_at", "response_due",
                "closure_due", "accepted_at", "accepted_by", "closed_at", "closed_by", "grid_id", "community_id",
                "street_id", "worker_name", "covered", "address", "response_min", "closure_working_days")
#: Counts per grid (public, suppressed below k).
COUNT_FIELDS = ("cases", "open_cases", "overdue_cases", "overdue_urgent_cases")


def case_stamp(workspace) -> str:
    """The case store's stamp and the current minute."""
    return f"{workspace.cases().stamp}-m{int(time.time() // 60)}"


def _analysed(workspace, stored: pd.DataFrame) -> pd.DataFrame:
    """The cases of the last analysis (the workspace layer ``cases``: the data folder's) not in the case store,
    as the store's columns (their WGS-84 points; no household)."""
    if not workspace.has("cases"):
        return stored.iloc[:0]
    layer = workspace.read("cases")
    layer = layer[~layer["id"].astype(str).isin(set(stored["id"].astype(str)))]
    zone = case_rules(load_risk_config()).time_zone
    out = pd.DataFrame({"id": layer["id"].astype(str).to_numpy()})
    for name in ("reported_at", "accepted_at", "closed_at"):
        out[name] = case_times(layer[name], zone=zone).to_numpy() if name in layer.columns else pd.NaT
    for name in ("urgency", "category", "source", "address", "grid_id", "worker_name", "community_id", "street_id"):
        out[name] = layer[name].to_numpy(dtype=object) if name in layer.columns else None
    for name in ("accepted_by", "closed_by"):
        out[name] = None
    out["covered"] = ~layer["outside_grids"].fillna(False).astype(bool).to_numpy() \
        if "outside_grids" in layer.columns else True
    geoms = layer.geometry
    present = (~geoms.isna() & ~geoms.is_empty).to_numpy()
    out["lon"] = np.where(present, geoms.x.where(present), np.nan)
    out["lat"] = np.where(present, geoms.y.where(present), np.nan)
    return out


def _judged(workspace) -> pd.DataFrame:
    stored = workspace.cases().list()
    cases = pd.concat([stored, _analysed(workspace, stored)], ignore_index=True)
    judged = evaluate_cases(cases[["id", "reported_at", "urgency", "accepted_at", "closed_at"]],
                            rules=case_rules(load_risk_config()), as_of=pd.Timestamp.now(tz="UTC"))
    for name in ("status", "overdue", "on_time", "response_min", "closure_working_days"):
        cases[name] = judged[name].to_numpy()
    return cases


def case_points(workspace) -> gpd.GeoDataFrame:
    """Every stored case with a point, judged now, as WGS-84 points."""
    cases = _judged(workspace)
    cases = cases[cases["lon"].notna() & cases["lat"].notna()].reset_index(drop=True)
    frame = cases[["id", *POINT_FIELDS]].copy()
    for name in ("reported_at", "response_due", "closure_due", "accepted_at", "closed_at"):
        frame[name] = iso_utc(frame[name])
    frame["on_time"] = frame["on_time"].astype(object).where(frame["on_time"].notna(), None)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(cases["lon"], cases["lat"]), crs=4326)


def case_counts(workspace) -> gpd.GeoDataFrame:
    """Per grid: the cases, those not closed, those open past a deadline, the urgent ones among them."""
    grids = workspace.read("grids")
    cases = _judged(workspace)
    keys = grids["id"].astype(str)
    grid = cases["grid_id"].astype(str)
    overdue = cases["overdue"].to_numpy(bool)
    counts = pd.DataFrame({
        "cases": grid.value_counts(),
        "open_cases": grid[(cases["status"] != "closed").to_numpy()].value_counts(),
        "overdue_cases": grid[overdue].value_counts(),
        "overdue_urgent_cases": grid[overdue & (cases["urgency"] == "urgent").to_numpy()].value_counts(),
    }).reindex(keys.to_numpy()).fillna(0).astype(np.int64)
    frame = pd.DataFrame({"id": keys.to_numpy(), "name": grids.get("name"),
                          "community_id": grids.get("community_id")})
    for name in COUNT_FIELDS:
        frame[name] = counts[name].to_numpy()
    return gpd.GeoDataFrame(frame, geometry=grids.geometry.to_numpy(), crs=grids.crs)
