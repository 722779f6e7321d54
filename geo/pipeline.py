"""The analysis run: load → assign → diagnose, with timings and a summary.

Example
-------
>>> analysis = analyze("sample_geojson")
>>> analysis.summary["status_counts"]["outside_all_grids"]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.assign import STATUSES, assign_communities, assign_households, building_grids
from geo.diagnose import ISSUE_KINDS, community_coverage, grid_coverage_issues, grid_workload
from geo.load import Dataset, load_data
from geo.schema import SPECIAL_GROUPS
from geo.settings import Settings

#: Columns the assignment adds to each household.
HOUSEHOLD_OUTPUT_COLUMNS = ("building_id", "grid_id", "community_id", "street_id", "status", "flags", "location")


@dataclass
class Analysis:
    """Everything one run computed, in the metric CRS."""

    data: Dataset
    households: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    coverage_issues: gpd.GeoDataFrame
    building_grid: pd.DataFrame | None
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)


class _Clock:
    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.start = time.perf_counter()
        self.last = self.start
        self.timings: dict[str, float] = {}
        self.progress = progress

    def step(self, name: str, message: str | None = None) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 3)
        self.last = now
        if self.progress and message:
            self.progress(f"[{now - self.start:6.1f}s] {message}")


def analyze(path: str | os.PathLike, *, crs: str | None = None, settings: Settings | None = None,
            progress: Callable[[str], None] | None = None) -> Analysis:
    """Load a data folder and run the assignment and the grid diagnostics."""
    clock = _Clock(progress)
    if progress:
        progress(f"[   0.0s] reading {path}")
    data = load_data(path, crs=crs, settings=settings)
    settings = data.settings
    layers = data.layers
    counts = ", ".join(f"{len(v):,} {k}" for k, v in layers.items())
    clock.step("load", f"read {counts} (metric CRS EPSG:{data.metric_crs.to_epsg()})")

    households = layers["households"]
    buildings = layers.get("buildings")
    grids = layers["grids"]
    communities = layers["communities"]
    streets = layers["streets"]

    bg = building_grids(buildings, grids, settings=settings) if buildings is not None else None
    assigned = assign_households(households, buildings, grids, settings=settings, building_grid=bg)
    community, street = assign_communities(assigned["x"].to_numpy(), assigned["y"].to_numpy(),
                                           assigned["grid_id"].to_numpy(), grids, communities)
    assigned["community_id"] = community
    assigned["street_id"] = street
    clock.step("assign", f"assigned {len(households):,} households")

    out_households = households.drop(columns=[c for c in HOUSEHOLD_OUTPUT_COLUMNS if c in households.columns and c != "building_id"])
    for column in HOUSEHOLD_OUTPUT_COLUMNS:
        out_households[column] = assigned[column].to_numpy()
    out_households = out_households[[c for c in out_households.columns if c != "geometry"] + ["geometry"]]

    located = pd.DataFrame({
        "x": assigned["x"].to_numpy(), "y": assigned["y"].to_numpy(),
        "persons": households["persons"].astype("float").fillna(0).to_numpy(),
        "building_id": assigned["building_id"].to_numpy(),
    })
    issues = grid_coverage_issues(grids, communities, buildings, bg, located, settings=settings)
    workload_input = pd.DataFrame({"grid_id": assigned["grid_id"].to_numpy(),
                                   "persons": households["persons"].astype("float").fillna(0).to_numpy()})
    for group in SPECIAL_GROUPS:
        workload_input[group] = households[group].astype(bool).to_numpy()
    workload = grid_workload(grids, workload_input, building_grid=bg, settings=settings)
    out_grids = grids.drop(columns=[c for c in workload.columns if c in grids.columns])
    out_grids = pd.concat([out_grids.drop(columns="geometry"), workload, out_grids[["geometry"]]], axis=1)
    out_grids = gpd.GeoDataFrame(out_grids, geometry="geometry", crs=grids.crs)
    coverage = community_coverage(grids, communities, settings=settings)
    clock.step("diagnose", f"found {len(issues):,} coverage issues")

    summary = build_summary(data, out_households, out_grids, issues, coverage, streets, communities)
    summary["timings_s"] = clock.timings
    return Analysis(data=data, households=out_households, grids=out_grids, coverage_issues=issues,
                    building_grid=bg, summary=summary, timings=clock.timings)


def _counts(series: pd.Series, keys) -> dict[str, int]:
    vc = series.value_counts()
    return {k: int(vc.get(k, 0)) for k in keys}


def build_summary(data: Dataset, households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, issues: gpd.GeoDataFrame,
                  coverage: pd.DataFrame, streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> dict:
    """The run's figures as plain JSON-ready data (counts only: no household appears by id)."""
    status = households["status"]
    valid = dict(zip(coverage["community_id"], coverage["coverage_valid"]))
    by_comm = households.groupby("community_id")
    hh = by_comm.size()
    pers = by_comm["persons"].sum()
    status_table = pd.crosstab(households["community_id"], status)
    groups_table = by_comm[list(SPECIAL_GROUPS)].sum()
    grid_count = grids.groupby("community_id").size()
    over = grids.groupby("community_id")["over_capacity"].sum()
    per_comm = []
    for row in communities.itertuples(index=False):
        cid = row.id
        statuses = status_table.loc[cid] if cid in status_table.index else pd.Series(dtype=int)
        per_comm.append({
            "id": cid, "name": row.name, "street_id": row.street_id,
            "ur_code": getattr(row, "ur_code", None),
            "households": int(hh.get(cid, 0)), "persons": int(pers.get(cid, 0) or 0),
            "grids": int(grid_count.get(cid, 0)), "coverage_valid": bool(valid.get(cid, False)),
            "status_counts": {k: int(statuses.get(k, 0)) for k in STATUSES if statuses.get(k, 0)},
            "special_groups": {g: int(groups_table.loc[cid, g]) if cid in groups_table.index else 0 for g in SPECIAL_GROUPS},
            "over_capacity_grids": int(over.get(cid, 0)),
        })
    per_grid = [
        {"id": r.id, "community_id": r.community_id, "households": int(r.households), "persons": int(r.persons),
         "workers": int(r.workers), "over_capacity": bool(r.over_capacity), "split_buildings": int(r.split_buildings)}
        for r in grids[["id", "community_id", "households", "persons", "workers", "over_capacity", "split_buildings"]].itertuples(index=False)
    ]
    status_counts = _counts(status, STATUSES)
    total = int(len(households))
    assert sum(status_counts.values()) == total, "every household has exactly one status"
    return {
        "input": {name: int(len(frame)) for name, frame in data.layers.items()},
        "missing_optional_layers": data.missing_optional,
        "sources": data.sources,
        "source_crs": data.source_crs,
        "metric_crs": f"EPSG:{data.metric_crs.to_epsg()}",
        "households": total,
        "persons": int(households["persons"].fillna(0).sum()),
        "status_counts": status_counts,
        "status_total": int(sum(status_counts.values())),
        "households_without_grid": int(households["grid_id"].isna().sum()),
        "special_groups": {grp: int(households[grp].astype(bool).sum()) for grp in SPECIAL_GROUPS},
        "coverage_issues": {
            kind: {"count": int((issues["kind"] == kind).sum()),
                   "area_m2": round(float(issues.loc[issues["kind"] == kind, "area_m2"].sum()), 1),
                   "households": int(issues.loc[issues["kind"] == kind, "households"].sum())}
            for kind in ISSUE_KINDS
        },
        "grids": {
            "count": int(len(grids)),
            "over_capacity": int(grids["over_capacity"].sum()),
            "unstaffed": int(grids["unstaffed"].sum()),
            "households_per_worker_standard": data.settings.households_per_worker,
            "households_min": int(grids["households"].min()) if len(grids) else 0,
            "households_max": int(grids["households"].max()) if len(grids) else 0,
        },
        "per_street": [
            {"id": r.id, "name": r.name,
             "households": int((households["street_id"] == r.id).sum()),
             "communities": int((communities["street_id"] == r.id).sum())}
            for r in streets[["id", "name"]].itertuples(index=False)
        ],
        "per_community": per_comm,
        "per_grid": per_grid,
        "warnings": data.warnings,
        "repaired": [{k: (v if not isinstance(v, np.generic) else v.item()) for k, v in item.items()} for item in data.repaired],
        "settings": asdict(data.settings),
    }
