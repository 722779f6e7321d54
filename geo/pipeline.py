"""The analysis run: load → assign → diagnose, with timings and a summary.

Example
-------
>>> analysis = analyze("sample_geojson")
>>> analysis.summary["status_counts"]["outside_all_grids"]
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.assign import STATUSES, assign_communities, assign_households, building_grids
from geo.diagnose import ISSUE_KINDS, community_coverage, grid_coverage_issues, grid_workload
from geo.areas import ZONES, household_zones
from geo.lifecircle import (DEFAULT_H3_RESOLUTION, cells_of, cells_to_strings, h3_reach, household_origins,
                            household_reach, reach_shares)
from geo.load import Dataset, load_data
from geo.reach import ReachModel, load_config
from geo.blindspots import blind_spots
from geo.risk import (COLOURS, REASONS, RiskConfig, building_registration, grid_risk, household_risk,
                      load_risk_config, scorecard)
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
    h3_reach: gpd.GeoDataFrame | None = None
    reach_model: ReachModel | None = None
    blindspots: gpd.GeoDataFrame | None = None
    scorecard: pd.DataFrame | None = None
    risk_context: "RiskContext | None" = None


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
            h3_resolution: int = DEFAULT_H3_RESOLUTION, reference_date: date | None = None,
            progress: Callable[[str], None] | None = None) -> Analysis:
    """Load a data folder and run assignment, grid diagnostics, 15-minute reach and risk.

    ``reference_date`` is the day visits are judged against (default: today).
    """
    reference_date = reference_date or date.today()
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

    lonlat = gpd.GeoSeries(gpd.points_from_xy(assigned["x"], assigned["y"]), crs=households.crs).to_crs("EPSG:4326")
    located = np.isfinite(assigned["x"].to_numpy())
    lon = np.where(located, lonlat.x.to_numpy(), np.nan)
    lat = np.where(located, lonlat.y.to_numpy(), np.nan)
    zones = household_zones(assigned["x"].to_numpy(), assigned["y"].to_numpy(), assigned["building_id"].to_numpy(),
                            assigned["community_id"].to_numpy(), buildings=buildings, estates=layers.get("estates"),
                            communities=communities, areas=layers.get("areas"), derive_fringe=settings.derive_fringe,
                            lonlat=(lon, lat))
    for column in ("old_estate", "fringe", "zone"):
        out_households.insert(len(out_households.columns) - 1, column, zones[column].to_numpy())
    reach = run_reach(data, assigned, households, zones, lonlat=(lon, lat), h3_resolution=h3_resolution)
    for column in reach.household_columns:
        out_households.insert(len(out_households.columns) - 1, column, reach.households[column].array)
    grid_shares = reach.shares[reach.shares["level"] == "grid"]
    for column, values in grid_share_columns(grid_shares, out_grids["id"].astype(str).to_numpy()).items():
        out_grids.insert(len(out_grids.columns) - 1, column, values)
    clock.step("reach", f"measured walking reach to {len(reach.model.config.ids)} categories "
                        f"({reach.model.method}) and {len(reach.cells):,} H3 cells")

    risk_config = load_risk_config(data.folder, categories=reach.model.config)
    registration = building_registration(buildings, assigned["building_id"].to_numpy(), risk_config) \
        if buildings is not None else None
    under = set(registration.loc[registration["under_registered"], "id"]) if registration is not None else set()
    risk_input = pd.DataFrame({
        "status": assigned["status"].to_numpy(), "grid_id": assigned["grid_id"].to_numpy(),
        "community_id": assigned["community_id"].to_numpy(), "street_id": assigned["street_id"].to_numpy(),
        "building_id": assigned["building_id"].to_numpy(), "persons": households["persons"].astype(float).to_numpy(),
        "last_visit": households["last_visit"].to_numpy() if "last_visit" in households.columns else None,
        **{g: households[g].astype(bool).to_numpy() for g in SPECIAL_GROUPS},
        "old_estate": zones["old_estate"].to_numpy(), "fringe": zones["fringe"].to_numpy(),
        **({"migrant_registered": households["migrant_registered"].to_numpy()}
           if "migrant_registered" in households.columns else {}),
    })
    over = set(out_grids.loc[out_grids["over_capacity"].astype(bool), "id"].astype(str))
    if registration is not None and len(under):
        inner = shapely.point_on_surface(buildings.geometry.to_numpy()[registration["under_registered"].to_numpy()])
        ub = gpd.GeoSeries(inner, crs=buildings.crs).to_crs("EPSG:4326")
        ub_lonlat = (ub.x.to_numpy(), ub.y.to_numpy())
    else:
        ub_lonlat = (np.zeros(0), np.zeros(0))
    ctx = RiskContext(households=risk_input, grids=out_grids, communities=communities, streets=streets,
                      config=risk_config, categories=reach.model.config, over_capacity=over, under_registered=under,
                      under_lonlat=ub_lonlat, lon=lon, lat=lat, metric_crs=data.metric_crs, resolution=h3_resolution,
                      reference_date=reference_date, origin_of=reach.origin_of)
    risk, spots, card = assess_risk(ctx, reach.households)
    for column in ("risk", "risk_reasons", "visit_overdue"):
        out_households.insert(len(out_households.columns) - 1, column, risk[column].array)
    g_risk = grid_risk(out_grids["id"].astype(str).to_numpy(), risk_input, risk)
    for column in g_risk.columns:
        out_grids.insert(len(out_grids.columns) - 1, column, g_risk[column].to_numpy())
    cells = add_cell_risk(reach.cells, lon, lat, risk, resolution=h3_resolution)
    clock.step("risk", f"found {len(spots):,} blind spots; red {int((risk['risk'] == 'red').sum()):,}, "
                       f"yellow {int((risk['risk'] == 'yellow').sum()):,}, blue {int((risk['risk'] == 'blue').sum()):,} households")

    summary = build_summary(data, out_households, out_grids, issues, coverage, streets, communities)
    summary["reach"] = reach.summary
    summary["risk"] = risk_summary(risk, zones, spots, registration, risk_config, reference_date)
    summary["timings_s"] = clock.timings
    return Analysis(data=data, households=out_households, grids=out_grids, coverage_issues=issues,
                    building_grid=bg, summary=summary, timings=clock.timings, h3_reach=cells,
                    reach_model=reach.model, blindspots=spots, scorecard=card, risk_context=ctx)


@dataclass
class RiskContext:
    """What the risk stage needs, kept so that what-if edits (new sites) can be assessed again."""

    households: pd.DataFrame
    grids: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    config: RiskConfig
    categories: object
    over_capacity: set
    under_registered: set
    under_lonlat: tuple
    lon: np.ndarray
    lat: np.ndarray
    metric_crs: object
    resolution: int
    reference_date: date
    origin_of: np.ndarray


def assess_risk(ctx: RiskContext, reach_households: pd.DataFrame) -> tuple[pd.DataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Household risk, blind spots and the scorecard for one state of the life-circle figures."""
    risk = household_risk(ctx.households, reach_households, over_capacity_grids=ctx.over_capacity,
                          under_registered=ctx.under_registered, config=ctx.config, reference_date=ctx.reference_date,
                          categories=ctx.categories)
    spots = blind_spots(ctx.lon, ctx.lat, ctx.households, risk, under_registered_lonlat=ctx.under_lonlat,
                        config=ctx.config, metric_crs=ctx.metric_crs, resolution=ctx.resolution)
    card = scorecard(ctx.households, risk, reach_households, ctx.grids, ctx.communities, ctx.streets, config=ctx.config)
    card = pd.concat([card, zone_scorecard(ctx.households, risk, reach_households, config=ctx.config)], ignore_index=True)
    return risk, spots, card


@dataclass
class ReachResult:
    model: ReachModel
    origin_of: np.ndarray
    households: pd.DataFrame
    household_columns: list
    shares: pd.DataFrame
    cells: gpd.GeoDataFrame
    summary: dict


def run_reach(data: Dataset, assigned: pd.DataFrame, households: gpd.GeoDataFrame, zones: pd.DataFrame, *,
              lonlat: tuple[np.ndarray, np.ndarray], h3_resolution: int = DEFAULT_H3_RESOLUTION) -> ReachResult:
    """The 15-minute life-circle stage: network, per-household minutes, H3 cells, shares per level."""
    layers = data.layers
    config = load_config(data.folder)
    facilities = layers.get("facilities")
    unknown: dict[str, int] = {}
    if facilities is not None:
        known = facilities["category"].isin(config.ids)
        unknown = {str(k): int(v) for k, v in facilities.loc[~known, "category"].value_counts().items()}
        for cat, count in unknown.items():
            data.warnings.append(f"facilities: {count} with category {cat!r} not in {config.source}: not used for reach")
        facilities = facilities[known.to_numpy()]
    x, y = assigned["x"].to_numpy(), assigned["y"].to_numpy()
    origins, origin_of = household_origins(x, y, assigned["building_id"].to_numpy(), buildings=layers.get("buildings"),
                                           estates=layers.get("estates"), gates=layers.get("gates"))
    model = ReachModel.build(layers.get("roads"), facilities, origins, config=config)
    elderly_alone = households["elderly_alone"].astype(bool).to_numpy()
    reach = household_reach(model, origin_of, elderly_alone)
    not_attached = ~model.origin_attached()
    on_fragment = model.origin_on_fragment()
    hh_not_attached = (origin_of >= 0) & np.where(origin_of >= 0, not_attached[np.maximum(origin_of, 0)], False)
    hh_stranded = (origin_of >= 0) & np.where(origin_of >= 0, on_fragment[np.maximum(origin_of, 0)], False)
    special = pd.DataFrame({g: households[g].astype(bool).to_numpy() for g in SPECIAL_GROUPS})
    groups = {"street": assigned["street_id"].to_numpy(), "community": assigned["community_id"].to_numpy(),
              "grid": assigned["grid_id"].to_numpy(), "zone": zones["zone"].to_numpy(),
              "old_estate": np.where(zones["old_estate"], "old_estate", None),
              "fringe": np.where(zones["fringe"], "fringe", None)}
    shares = reach_shares(groups, reach, households["persons"].astype(float).to_numpy(), special, config)
    lon, lat = lonlat
    area = layers["streets"].to_crs("EPSG:4326").geometry.to_list()
    cells = h3_reach(model, household_lonlat=(lon, lat), reach=reach, area_wgs84=area, resolution=h3_resolution,
                     metric_crs=data.metric_crs)
    columns = [c for c in reach.columns if not c.startswith("within_")]
    level_rows = shares[shares["level"].isin(["street", "community", "zone", "old_estate", "fringe"])]
    summary = {
        "method": model.method,
        "estimate": model.method != "network",
        "categories_source": config.source,
        "speeds_m_per_s": config.speeds,
        "detour_factor": config.detour_factor if model.method != "network" else None,
        "categories": [asdict(c) for c in config.categories],
        "network": model.stats,
        "facilities_unknown_category": unknown,
        "households_not_attached": int(hh_not_attached.sum()),
        "households_on_fragments": int(hh_stranded.sum()),
        "households_basic_complete": int(reach["basic_complete"].sum()),
        "h3_resolution": h3_resolution,
        "h3_cells": int(len(cells)),
        "h3_cells_from_centre": int(cells["from_centre"].sum()) if len(cells) else 0,
        "shares": json.loads(level_rows.to_json(orient="records")),
    }
    return ReachResult(model=model, origin_of=origin_of, households=reach, household_columns=columns, shares=shares, cells=cells, summary=summary)


def add_cell_risk(cells: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, risk: pd.DataFrame, *,
                  resolution: int) -> gpd.GeoDataFrame:
    """The H3 cells with their households by colour and the worst colour (``risk``)."""
    cell_ids = cells_to_strings(cells_of(lon, lat, resolution))
    frame = pd.DataFrame({"h3": cell_ids, "level": risk["risk_level"].to_numpy()})
    frame = frame[frame["h3"].notna()]
    out = cells.copy()
    for i, colour in enumerate(COLOURS[1:], start=1):
        counts = (frame["level"] == i).groupby(frame["h3"]).sum()
        out.insert(len(out.columns) - 1, f"{colour}_households",
                   counts.reindex(out["h3"]).fillna(0).astype(int).to_numpy())
    worst = frame.groupby("h3")["level"].max().reindex(out["h3"]).fillna(0).astype(int).to_numpy()
    out.insert(len(out.columns) - 1, "risk", np.asarray(COLOURS, dtype=object)[worst])
    return out


def zone_scorecard(households: pd.DataFrame, risk: pd.DataFrame, reach: pd.DataFrame, *, config: RiskConfig) -> pd.DataFrame:
    """The scorecard's served/coverage indicators for old estates, fringes and the rest (level ``zone``)."""
    t = config.targets
    zone_masks = {"old_estate": households["old_estate"].to_numpy(bool), "fringe": households["fringe"].to_numpy(bool)}
    zone_masks["rest"] = ~(zone_masks["old_estate"] | zone_masks["fringe"])
    names = {"old_estate": "老旧小区 old estates", "fringe": "城乡结合部 urban-rural fringe", "rest": "其他 the rest"}
    special = np.column_stack([households[g].astype(bool).to_numpy() for g in ("elderly_alone", "child_in_difficulty",
                                                                             "mental_disorder")]).any(axis=1)
    rows = []
    for zone, mask in zone_masks.items():
        for name, target, num, den in (
            ("households_covered", t.get("weak_areas_served", 0.9), risk["covered"].to_numpy(bool) & mask, mask),
            ("special_groups_served", t.get("special_groups_served", 0.98), risk["served"].to_numpy(bool) & special & mask,
             special & mask),
            ("basic_services", t.get("basic_services", 1.0), reach["basic_complete"].to_numpy(bool) & mask, mask),
        ):
            d, k = int(den.sum()), int(num.sum())
            value = round(k / d, 4) if d else None
            rows.append({"level": "zone", "id": zone, "name": names[zone], "indicator": name, "value": value,
                         "target": target, "pass": (value >= target) if value is not None else None,
                         "numerator": k, "denominator": d})
    return pd.DataFrame(rows)


def risk_summary(risk: pd.DataFrame, zones: pd.DataFrame, spots: gpd.GeoDataFrame, registration: pd.DataFrame | None,
                 config: RiskConfig, reference_date: date) -> dict:
    """Risk counts by colour and reason, broken down into old estates / fringe / the rest."""
    out = {"reference_date": reference_date.isoformat(), "rules_source": config.source,
           "fringe_source": zones.attrs.get("fringe_source", "none"),
           "households_by_colour": {c: int((risk["risk"] == c).sum()) for c in COLOURS},
           "households_by_reason": {r: int(risk[f"reason_{r}"].sum()) for r in REASONS},
           "by_zone": {}, "blind_spots": int(len(spots)),
           "blind_spot_households": int(spots["households"].sum()) if len(spots) else 0}
    for zone in ("old_estate", "fringe", "rest"):
        mask = (zones["zone"] == zone).to_numpy()
        out["by_zone"][zone] = {"households": int(mask.sum()),
                                **{c: int(((risk["risk"] == c).to_numpy() & mask).sum()) for c in COLOURS}}
    if registration is not None:
        res = registration[registration["residential"]]
        out["residential_buildings"] = int(len(res))
        out["under_registered_buildings"] = int(res["under_registered"].sum())
        out["buildings_without_records"] = int((res["records"] == 0).sum())
    return out


def grid_share_columns(grid_shares: pd.DataFrame, grid_ids: np.ndarray) -> dict[str, np.ndarray]:
    """``reach_<category>_share`` (households within tier) and ``basic_share`` per grid, aligned with ``grid_ids``."""
    out = {}
    for cat, rows in grid_shares.groupby("category", sort=False):
        name = "basic_share" if cat == "basic_set" else f"reach_{cat}_share"
        out[name] = pd.Series(rows["households_share"].to_numpy(), index=rows["id"].to_numpy()).reindex(grid_ids).to_numpy()
    return out


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
