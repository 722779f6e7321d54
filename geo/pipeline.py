"""The analysis run: load → assign → diagnose, with timings and a summary.

``gridcover.engines.single.analyze("sample_geojson")`` reads the sample folder and runs the whole of it (a few seconds: the test suite
runs it, ``tests/test_pipeline.py``); ``analysis.summary["status_counts"]`` then counts the households of
each status. The parts of a partitioned run meet in :func:`concat_tables`:

>>> import pandas as pd
>>> a = pd.DataFrame({"grid_id": pd.Categorical(["G1", "G2"])})
>>> b = pd.DataFrame({"grid_id": pd.Categorical(["G3"])})
>>> whole = concat_tables([a, b])
>>> whole["grid_id"].tolist(), list(whole["grid_id"].cat.categories)
(['G1', 'G2', 'G3'], ['G1', 'G2', 'G3'])
"""

from __future__ import annotations

import json
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
from geo.facilities import data_quality, facility_counts, load_facility_rules
from geo.areas import ZONES, household_zones
from geo.lifecircle import (DEFAULT_H3_RESOLUTION, cells_of, cells_to_strings, h3_reach, household_origins,
                            household_reach, reach_shares)
from geo.gridcodes import CodePattern, fill_codes
from geo.load import Dataset
from geo.reach import METHOD_NETWORK, ReachModel, load_config
from geo.reach import CONFIG_NAME as CATEGORIES_FILE
from geo.blindspots import PointReason, blind_spots
from geo.cases import (JudgedCases, case_output, case_rules, case_scorecard, case_shares, case_summary, judge_cases,
                       locate_cases)
from geo.lookup import build_index
from geo.risk import (COLOURS, REASONS, RiskConfig, build_scorecard, building_registration, grid_risk,
                      household_risk, load_risk_config)
from geo.risk import CONFIG_NAME as RISK_FILE
from geo.schema import SPECIAL_GROUPS
from geo.settings import Settings
from geo.visits import evaluate_visits
from geo.workload import staffing_summary

#: Columns the assignment adds to each household.
HOUSEHOLD_OUTPUT_COLUMNS = ("building_id", "grid_id", "community_id", "street_id", "status", "flags", "location")
#: Weeks of visit records judged by default (``analyze --window-weeks``): the completed periods of the last 12 weeks.
DEFAULT_WINDOW_WEEKS = 12


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
    #: cases.geojson: the cases judged at the run's as_of (geo.cases.case_output), None without a cases layer
    cases: gpd.GeoDataFrame | None = None


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


def analyze_dataset(data: Dataset, *, h3_resolution: int = DEFAULT_H3_RESOLUTION, reference_date: date | None = None,
                    progress: Callable[[str], None] | None = None, every_cell: bool = False,
                    clock: _Clock | None = None, window_weeks: int = DEFAULT_WINDOW_WEEKS) -> Analysis:
    """Run assignment, grid diagnostics, 15-minute reach and risk on the layers of a data folder, as read.

    ``reference_date`` is the day visits and cases are judged against (default: ``[analysis] as_of`` of the
    folder's gridcover.toml, else today). ``every_cell`` measures every
    H3 cell of the streets, however far from anyone (default: the empty cells round households, buildings
    and facilities, see :func:`geo.lifecircle.h3_reach`). With a ``visits`` layer the records are judged over
    the completed periods of the ``window_weeks`` ending with ``reference_date`` (:func:`visit_columns`). The
    run is the two halves
    that the partitioned engine (``gridcover.engines.dask``) also calls: :func:`local_stages` on the whole
    city as one part, then :func:`global_stages` on its compact per-household table. ``clock`` times the
    stages (one started before the data was read also times the reading, as ``load``). Reading the folder
    is the application's (:func:`gridcover.engines.single.analyze`).
    """
    reference_date = reference_date or data.settings.as_of or date.today()
    clock = clock or _Clock(progress)
    layers = data.layers
    counts = ", ".join(f"{len(v):,} {k}" for k, v in layers.items())
    clock.step("load", f"read {counts} (metric CRS EPSG:{data.metric_crs.to_epsg()})")
    warnings_before = len(data.warnings)
    part = local_stages(data, h3_resolution=h3_resolution, clock=clock, every_cell=every_cell,
                        as_of=reference_date, window_weeks=window_weeks)
    config = part.model.config
    unknown = unknown_categories(layers.get("facilities"), config)
    data.warnings[warnings_before:warnings_before] = unknown_category_warnings(unknown, config)
    run = RunInfo.of(data)
    parts = PartTables(tables=[part.table], buildings=[part.buildings], split_buildings=[part.split_buildings],
                       cells=[part.cells], origins=[part.origins], network_stats=part.model.stats,
                       facilities_unknown=unknown, fringe_source=part.fringe_source,
                       facility_counts=facility_counts(layers.get("facilities"), layers["streets"], config=config))
    cases = None
    if layers.get("cases") is not None:
        cases = locate_case_layer(layers, case_households(part.households, part.table), metric_crs=data.metric_crs)
        clock.step("cases", f"placed {int((cases['located_by'] != 'none').sum()):,} of {len(cases):,} cases")
    result = global_stages(run, parts, city=layers, config=config, h3_resolution=h3_resolution,
                           reference_date=reference_date, clock=clock, window_weeks=window_weeks, cases=cases)
    out_households = add_risk_columns(part.households, result.household_risk)
    ctx = result.risk_context
    ctx.origin_of = part.origin_of
    return Analysis(data=data, households=out_households, grids=result.grids, coverage_issues=result.coverage_issues,
                    building_grid=part.building_grid, summary=result.summary, timings=clock.timings,
                    h3_reach=result.cells, reach_model=part.model, blindspots=result.blindspots,
                    scorecard=result.scorecard, risk_context=ctx, cases=result.cases)


@dataclass
class RunInfo:
    """What the summary says about the run's input: counts, sources, CRS, warnings, settings."""

    input_counts: dict
    missing_optional: list
    sources: dict
    source_crs: dict
    metric_crs: object
    warnings: list
    repaired: list
    settings: Settings
    folder: object = None
    configs: dict = field(default_factory=dict)  # the folder's rule files as read (geo.load.Dataset.configs)
    rejected: dict = field(default_factory=dict)  # layer -> features left out by --skip-invalid
    references_cleared: dict = field(default_factory=dict)  # "layer.field" -> dangling references dropped

    @classmethod
    def of(cls, data: Dataset) -> "RunInfo":
        rejected = data.rejects["layer"].value_counts().to_dict() if data.rejects is not None else {}
        return cls(input_counts={name: int(len(frame)) for name, frame in data.layers.items()},
                   missing_optional=data.missing_optional, sources=data.sources, source_crs=data.source_crs,
                   metric_crs=data.metric_crs, warnings=data.warnings, repaired=data.repaired, settings=data.settings,
                   folder=data.folder, configs=data.configs, rejected={str(k): int(v) for k, v in rejected.items()},
                   references_cleared=dict(data.references_cleared))


@dataclass
class Part:
    """What the local stages computed for one part of the city (the whole city in a single-process run).

    ``households`` are the output rows without the risk columns; ``table`` the compact per-household columns
    the global stages aggregate (no geometry, no text per row); ``buildings`` one row per building the part
    owns (for the registration check); ``split_buildings`` the buildings cut by a grid line it read;
    ``cells`` its H3 cells; ``origins`` one row per origin (``key``, ``attached``, ``on_fragment``).
    """

    households: gpd.GeoDataFrame
    table: pd.DataFrame
    buildings: pd.DataFrame
    split_buildings: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    origins: pd.DataFrame
    model: ReachModel
    origin_of: np.ndarray
    building_grid: pd.DataFrame | None
    fringe_source: str


def to_lonlat(x: np.ndarray, y: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat of metric points (NaN where a coordinate is missing): the one conversion every stage and
    both engines use, so that H3 cells agree to the last bit."""
    lonlat = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=crs).to_crs("EPSG:4326")
    located = np.isfinite(x)
    return np.where(located, lonlat.x.to_numpy(), np.nan), np.where(located, lonlat.y.to_numpy(), np.nan)


def local_stages(data: Dataset, *, h3_resolution: int = DEFAULT_H3_RESOLUTION, clock: "_Clock | None" = None,
                 owned: np.ndarray | None = None, owned_buildings: np.ndarray | None = None,
                 keep_cell: Callable[[np.ndarray], np.ndarray] | None = None, area_wgs84: list | None = None,
                 order: np.ndarray | None = None, building_order: np.ndarray | None = None,
                 component_of: Callable | None = None, seed_cells: np.ndarray | None = None,
                 every_cell: bool = False, as_of: date | None = None,
                 window_weeks: int = DEFAULT_WINDOW_WEEKS) -> Part:
    """Assignment, zones and reach for the households of ``data`` (all of them, or those marked ``owned``).

    The other layers of ``data`` are context: buildings, grids, roads and facilities around those
    households. ``owned_buildings`` marks the buildings this part reports for the registration check
    (default: all); ``keep_cell`` selects the H3 cells it reports (default: all); ``area_wgs84`` are the
    polygons whose empty cells are measured from their centre (default: the streets); ``order`` and
    ``building_order`` give each household and building its position in the whole input (for ordering);
    ``component_of`` maps the part's network components to the whole network's (see
    :meth:`geo.reach.ReachModel.use_components`); ``seed_cells`` adds cells of households and buildings
    elsewhere round which empty cells are kept (a part is given the whole city's); ``every_cell`` keeps every
    empty cell of the area. With a ``visits`` layer (the records of these households) and ``as_of``, the
    visits are judged (:func:`visit_columns`): the households get their visit columns.
    """
    clock = clock or _Clock(None)
    settings = data.settings
    layers = data.layers
    households = layers["households"]
    if owned is not None:
        households = households[owned].reset_index(drop=True)
    buildings = layers.get("buildings")
    grids = layers["grids"]
    communities = layers["communities"]

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

    x, y = assigned["x"].to_numpy(), assigned["y"].to_numpy()
    lon, lat = to_lonlat(x, y, households.crs)
    zones = household_zones(x, y, assigned["building_id"].to_numpy(), assigned["community_id"].to_numpy(),
                            buildings=buildings, estates=layers.get("estates"), communities=communities,
                            areas=layers.get("areas"), derive_fringe=settings.derive_fringe, lonlat=(lon, lat))
    for column in ("old_estate", "fringe", "zone"):
        out_households.insert(len(out_households.columns) - 1, column, zones[column].to_numpy())
    seeds = None if every_cell else settled_cells(data, (lon, lat), resolution=h3_resolution, more=seed_cells)
    reach = household_reach_stage(data, assigned, households, lonlat=(lon, lat), h3_resolution=h3_resolution,
                                  keep_cell=keep_cell, area_wgs84=area_wgs84, order=order, component_of=component_of,
                                  seed_cells=seeds)
    for column in reach.household_columns:
        out_households.insert(len(out_households.columns) - 1, column, reach.households[column].array)
    clock.step("reach", f"measured walking reach to {len(reach.model.config.ids)} categories "
                        f"({reach.model.method}) and {len(reach.cells):,} H3 cells")

    table = household_table(households, assigned, zones=zones, reach=reach, lonlat=(lon, lat), config=reach.model.config,
                            configs=data.configs)
    if layers.get("visits") is not None and as_of is not None:
        visit = visit_columns(households, layers["visits"], configs=data.configs, as_of=as_of,
                              window_weeks=window_weeks)
        add_visit_columns(out_households, table, visit)
        clock.step("visits", f"judged {len(layers['visits']):,} visit records of "
                             f"{int(visit['visit_judged'].sum()):,} special-group households")
    own_b, split_b = _building_outputs(buildings, bg, owned=owned_buildings, order=building_order)
    return Part(households=out_households, table=table, buildings=own_b, split_buildings=split_b, cells=reach.cells,
                origins=reach.origins, model=reach.model, origin_of=reach.origin_of, building_grid=bg,
                fringe_source=zones.attrs.get("fringe_source", "none"))



def _building_outputs(buildings: gpd.GeoDataFrame | None, bg: pd.DataFrame | None, *, owned: np.ndarray | None,
                      order: np.ndarray | None) -> tuple[pd.DataFrame | None, gpd.GeoDataFrame | None]:
    """The buildings a part reports for the registration check (``owned``, default all: id, order, floors,
    area, residential, lon/lat of a point inside) and its buildings cut by a grid boundary; ``None`` for both
    without buildings."""
    if buildings is None:
        return None, None
    keep = np.ones(len(buildings), bool) if owned is None else owned
    inner = shapely.point_on_surface(buildings.geometry.to_numpy()[keep])
    blon, blat = to_lonlat(shapely.get_x(inner), shapely.get_y(inner), buildings.crs)
    border = np.arange(len(buildings)) if order is None else order
    own_b = pd.DataFrame({"id": buildings["id"].astype(str).to_numpy()[keep], "order": border[keep],
                          "floors": buildings["floors"].to_numpy()[keep] if "floors" in buildings.columns else np.nan,
                          "area": shapely.area(buildings.geometry.to_numpy()[keep]),
                          "residential": buildings["residential"].to_numpy()[keep]
                          if "residential" in buildings.columns else True,
                          "lon": blon, "lat": blat})
    split = bg["split"].to_numpy()
    split_b = gpd.GeoDataFrame({"id": buildings["id"].to_numpy()[split], "order": border[split],
                                "grid_id": bg["grid_id"].to_numpy()[split], "grid_ids": bg["grid_ids"].to_numpy()[split],
                                "split": True}, geometry=buildings.geometry.to_numpy()[split], crs=buildings.crs)
    return own_b, split_b

#: The visit columns households.geojson gets with a visits layer (empty for households in no visited group).
VISIT_OUTPUT_COLUMNS = ("visits_required", "visits_done", "periods_missed", "next_visit_due", "never_visited")


def visit_columns(households: pd.DataFrame, visits: pd.DataFrame, *, configs: dict | None, as_of: date,
                  window_weeks: int = DEFAULT_WINDOW_WEEKS) -> pd.DataFrame:
    """Each household's visits judged by :func:`geo.visits.evaluate_visits` (the ``[visit_rules]`` of the
    run's risk file), aligned with ``households``: one row per household, in order.

    Columns: ``visit_judged`` (the household is in a group with a rule), ``visits_required``,
    ``visits_done``, ``periods_missed``, ``visit_periods``, ``visit_periods_kept`` (``Int64``, empty where not
    judged), ``last_visit`` and ``next_visit_due`` (``datetime64``; ``last_visit`` the last record of any kind
    up to ``as_of``), ``never_visited`` (no record at all: counted as missing every period), ``visit_overdue``
    (the window's last completed period was missed, in any of its groups) and ``long_visit_gap`` (an elderly
    person living alone without a home visit in the last ``long_gap_weeks`` ISO weeks nor this week).

    Examples
    --------
    >>> households = pd.DataFrame({"id": ["H1", "H2"], "elderly_alone": [True, False], "child_in_difficulty": False,
    ...                            "mental_disorder": False})
    >>> visits = pd.DataFrame({"household_id": ["H1"], "visited_at": ["2026-11-24"], "worker": ["王芳"]})
    >>> out = visit_columns(households, visits, configs=None, as_of=date(2026, 11, 30), window_weeks=3)
    >>> out[["visit_judged", "visit_periods", "visit_periods_kept", "visit_overdue"]].values.tolist()
    [[True, 2, 1, False], [False, <NA>, <NA>, False]]
    """
    rules = load_risk_config(**(configs or {}).get(RISK_FILE, {})).visit_rules
    flags = pd.DataFrame({"id": households["id"].astype(str).to_numpy()})
    for group in rules.by_group:
        flags[group] = households[group].fillna(False).astype(bool).to_numpy() if group in households.columns \
            else False
    result = evaluate_visits(flags, visits, rules=rules, as_of=as_of, window_weeks=window_weeks).households
    n = len(flags)
    pos = pd.Index(flags["id"]).get_indexer(result["household_id"].astype(str))
    judged = np.zeros(n, bool)
    judged[pos] = True

    def spread(column: str, dtype: str, empty):
        values = np.full(n, empty, dtype=dtype)
        values[pos] = result[column].to_numpy(dtype=dtype)
        return values

    out = pd.DataFrame({"visit_judged": judged}, index=households.index)
    for name, column in (("visits_required", "visits_required"), ("visits_done", "visits_done"),
                         ("periods_missed", "periods_missed"), ("visit_periods", "periods"),
                         ("visit_periods_kept", "periods_kept")):
        out[name] = pd.array(spread(column, "float64", np.nan), dtype="Float64").astype("Int64")
    for name in ("last_visit", "next_visit_due"):
        out[name] = spread(name, "datetime64[s]", np.datetime64("NaT"))
    out["never_visited"] = pd.array(np.where(judged, spread("never_visited", "bool", False), None), dtype="boolean")
    out["visit_overdue"] = spread("last_period_missed", "bool", False)
    out["long_visit_gap"] = spread("long_visit_gap", "bool", False)
    return out


def add_visit_columns(out_households: gpd.GeoDataFrame, table: pd.DataFrame, visit: pd.DataFrame) -> None:
    """The judged visits into the output households (:data:`VISIT_OUTPUT_COLUMNS`, ``last_visit`` from the
    records for the judged households) and the compact table (in place)."""
    judged = visit["visit_judged"].to_numpy(bool)
    last = visit["last_visit"].to_numpy()
    if "last_visit" in table.columns:
        last = np.where(judged, last, table["last_visit"].to_numpy(dtype="datetime64[s]"))
    table["last_visit"] = last
    for column in ("visit_judged", "visit_periods", "visit_periods_kept", "never_visited", "long_visit_gap"):
        table[column] = visit[column].to_numpy() if column != "never_visited" else \
            visit[column].fillna(False).to_numpy(bool)
    table["visit_last_missed"] = visit["visit_overdue"].to_numpy(bool)
    text = _visit_text(pd.Series(last))
    if "last_visit" in out_households.columns:
        out_households["last_visit"] = text
    else:
        out_households.insert(len(out_households.columns) - 1, "last_visit", text)
    for column in VISIT_OUTPUT_COLUMNS:
        values = visit[column]
        if column == "next_visit_due":
            values = _visit_text(values)
        else:
            values = values.array
        out_households.insert(len(out_households.columns) - 1, column, values)


def household_table(households: gpd.GeoDataFrame, assigned: pd.DataFrame, *, zones: pd.DataFrame, reach: "ReachResult",
                    lonlat: tuple[np.ndarray, np.ndarray], config, configs=None) -> pd.DataFrame:
    """The compact per-household columns the global stages need (categoricals, numbers and flags)."""
    lon, lat = lonlat
    table = pd.DataFrame({
        "x": assigned["x"].to_numpy(), "y": assigned["y"].to_numpy(), "lon": lon, "lat": lat,
        "persons": households["persons"].astype(float).to_numpy(),
        "building_id": pd.Categorical(assigned["building_id"]),
        "grid_id": pd.Categorical(assigned["grid_id"]),
        "community_id": pd.Categorical(assigned["community_id"]),
        "street_id": pd.Categorical(assigned["street_id"]),
        "status": assigned["status"].to_numpy(),
        **{g: households[g].astype(bool).to_numpy() for g in SPECIAL_GROUPS},
        "old_estate": zones["old_estate"].to_numpy(), "fringe": zones["fringe"].to_numpy(),
        "zone": pd.Categorical(zones["zone"], categories=list(ZONES)),
        "not_attached": reach.not_attached, "on_fragment": reach.on_fragment,
    })
    table["status"] = pd.Categorical(assigned["status"])
    if "last_visit" in households.columns:
        table["last_visit"] = pd.to_datetime(households["last_visit"], format="%Y-%m-%d", errors="coerce").to_numpy()
    if "migrant_registered" in households.columns:
        table["migrant_registered"] = households["migrant_registered"].to_numpy()
    r = reach.households
    for c in config.ids:
        table[f"within_{c}"] = r[f"within_{c}"].to_numpy()
    table["basic_complete"] = r["basic_complete"].to_numpy()
    for column in _risk_minute_columns(config, configs):
        table[column] = r[column].to_numpy()
    return table


def _risk_minute_columns(config, configs) -> list[str]:
    """The minute columns household_risk reads (group services), and nothing more."""
    risk_config = load_risk_config(**(configs or {}).get(RISK_FILE, {}), categories=None)
    columns = []
    for cats in risk_config.group_services.values():
        for cid in cats:
            if cid in config.ids:
                columns += [f"reach_{cid}_min", f"reach_{cid}_min_elderly"]
    return sorted(set(columns))


@dataclass
class GlobalResult:
    grids: gpd.GeoDataFrame
    coverage_issues: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    blindspots: gpd.GeoDataFrame
    scorecard: pd.DataFrame
    summary: dict
    household_risk: pd.DataFrame
    risk_context: "RiskContext"
    cases: gpd.GeoDataFrame | None = None


def concat_tables(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-household tables of several parts as one, categoricals kept categorical (union of categories)."""
    if len(tables) == 1:
        return tables[0]
    from pandas.api.types import union_categoricals

    out = {}
    for column in tables[0].columns:
        values = [t[column] for t in tables]
        if isinstance(values[0].dtype, pd.CategoricalDtype):
            arrays = [v.array for v in values]
            # a part without households has categories of another dtype (object, not str): take one dtype
            kinds = {a.categories.dtype for a in arrays if len(a.categories)}
            target = kinds.pop() if len(kinds) == 1 else object
            arrays = [a if a.categories.dtype == target else
                      pd.Categorical.from_codes(a.codes, pd.Index(a.categories, dtype=target)) for a in arrays]
            out[column] = pd.Series(union_categoricals(arrays))
        else:
            out[column] = pd.concat(values, ignore_index=True)
    return pd.DataFrame(out)


@dataclass
class PartTables:
    """What the parts of a run hand to :func:`global_stages`: one entry per part in each list (one part for a
    single-process run), and the figures of the whole walking network."""

    tables: list[pd.DataFrame]
    buildings: list
    split_buildings: list
    cells: list
    origins: list
    network_stats: dict
    facilities_unknown: dict
    fringe_source: str
    facility_counts: pd.DataFrame | None = None  # facilities per street and category (geo.facilities.facility_counts)


def global_stages(run: RunInfo, parts: PartTables, *, city: dict[str, gpd.GeoDataFrame], config,
                  h3_resolution: int, reference_date: date, clock: "_Clock | None" = None,
                  window_weeks: int = DEFAULT_WINDOW_WEEKS, cases: pd.DataFrame | None = None) -> GlobalResult:
    """Grid workload, coverage issues, reach shares, risk, blind spots, scorecard and summary of the whole city,
    from the parts' compact tables (the same code for one part or many); ``city`` holds the whole ``grids``,
    ``communities`` and ``streets``. ``cases``: the located cases (:func:`locate_case_layer`), judged at the
    end of ``reference_date``."""
    clock = clock or _Clock(None)
    grids, communities, streets = city["grids"], city["communities"], city["streets"]
    hh = concat_tables(parts.tables)
    out_grids, issues, coverage = _diagnose_city(run, hh, grids, communities, parts.split_buildings)
    clock.step("diagnose", f"found {len(issues):,} coverage issues")
    all_cells, reach, reach_summary = _reach_stage(run, hh, out_grids, parts, config=config,
                                                   h3_resolution=h3_resolution)
    clock.step("shares", f"aggregated reach shares of {len(hh):,} households")
    found = _case_stage(run, cases, out_grids, reference_date=reference_date) if cases is not None else None
    risk, spots, card, ctx, registration, risk_config = _risk_stage(
        run, hh, out_grids, reach, parts.buildings, communities=communities, streets=streets, config=config,
        h3_resolution=h3_resolution, reference_date=reference_date, cases=found)
    all_cells = add_cell_risk(all_cells, hh["lon"].to_numpy(), hh["lat"].to_numpy(), risk, resolution=h3_resolution)
    clock.step("risk", f"found {len(spots):,} blind spots; red {int((risk['risk'] == 'red').sum()):,}, "
                       f"yellow {int((risk['risk'] == 'yellow').sum()):,}, blue {int((risk['risk'] == 'blue').sum()):,} households")

    zones = pd.DataFrame({"zone": hh["zone"].to_numpy()})
    zones.attrs["fringe_source"] = parts.fringe_source
    summary = build_summary(run, hh, grids=out_grids, issues=issues, coverage=coverage, streets=streets,
                            communities=communities)
    summary["reach"] = reach_summary
    summary["risk"] = risk_summary(risk, zones, spots=spots, registration=registration, config=risk_config,
                                   reference_date=reference_date)
    if "visit_judged" in hh.columns:
        summary["visits"] = visit_summary(hh, risk, records=run.input_counts.get("visits", 0), config=risk_config,
                                          as_of=reference_date, window_weeks=window_weeks,
                                          communities=communities, streets=streets)
    out_cases = None
    if found is not None:
        rules = case_rules(risk_config)
        summary["cases"] = case_summary(found, rules=rules, input_cases=len(cases), communities=communities,
                                        streets=streets)
        out_cases = case_output(found.cases, rules=rules)
        clock.step("cases judged", f"judged {len(found.cases):,} cases at the end of {reference_date.isoformat()}: "
                                   f"{summary['cases']['overdue']:,} overdue")
    summary["data_quality"] = input_data_quality(run, hh, streets, parts.facility_counts, config=config)
    summary["timings_s"] = clock.timings
    return GlobalResult(grids=out_grids, coverage_issues=issues, cells=all_cells, blindspots=spots, scorecard=card,
                        summary=summary, household_risk=risk, risk_context=ctx, cases=out_cases)


def input_data_quality(run: RunInfo, hh: pd.DataFrame, streets: gpd.GeoDataFrame, counts: pd.DataFrame | None, *,
                       config) -> list[dict]:
    """``summary["data_quality"]``: facility categories far sparser than GB 50180 implies per street, and missing
    facilities or roads layers (:func:`geo.facilities.data_quality`)."""
    rules = load_facility_rules(**run.configs.get(CATEGORIES_FILE, {}))
    per_street = pd.Series(hh["street_id"].to_numpy()).value_counts()
    table = pd.DataFrame({"id": streets["id"].astype(str).to_numpy(),
                          "name": streets["name"].to_numpy() if "name" in streets.columns else None})
    table["households"] = per_street.reindex(table["id"]).fillna(0).astype(int).to_numpy()
    counts = counts if counts is not None else facility_counts(None, streets, config=config)
    missing = tuple(name for name in ("facilities", "roads") if name in run.missing_optional)
    return data_quality(counts, table, config=config, rules=rules, missing_layers=missing)


def _diagnose_city(run: RunInfo, hh: pd.DataFrame, grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame,
                   split_buildings: list) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """The grids with their workload, the coverage issues and each community's coverage check."""
    settings = run.settings
    grid_id = hh["grid_id"].to_numpy()
    building_id = hh["building_id"].to_numpy()
    persons = hh["persons"].fillna(0).to_numpy()
    split_b = [b for b in split_buildings if b is not None]
    split_b = pd.concat(split_b, ignore_index=True) if split_b else None
    if split_b is not None:
        split_b = split_b.drop_duplicates("id").sort_values("order", kind="stable").reset_index(drop=True)
        split_b = gpd.GeoDataFrame(split_b, geometry="geometry", crs=grids.crs)

    located = pd.DataFrame({"x": hh["x"].to_numpy(), "y": hh["y"].to_numpy(), "persons": persons,
                            "building_id": building_id})
    issues = grid_coverage_issues(grids, communities, split_b, split_b, located, settings=settings)
    workload_input = pd.DataFrame({"grid_id": grid_id, "persons": persons})
    for group in SPECIAL_GROUPS:
        workload_input[group] = hh[group].to_numpy()
    workload = grid_workload(grids, workload_input, building_grid=split_b if split_b is not None else _NO_SPLIT,
                             settings=settings)
    out_grids = grids.drop(columns=[c for c in workload.columns if c in grids.columns])
    out_grids = pd.concat([out_grids.drop(columns="geometry"), workload, out_grids[["geometry"]]], axis=1)
    out_grids = gpd.GeoDataFrame(out_grids, geometry="geometry", crs=grids.crs)
    # every grid gets its standard code (网格编码): a given one as it is, the missing ones made (code_generated)
    out_grids = fill_codes(out_grids, communities, pattern=CodePattern.of(settings))
    coverage = community_coverage(grids, communities, settings=settings)

    return out_grids, issues, coverage


def _reach_stage(run: RunInfo, hh: pd.DataFrame, out_grids: gpd.GeoDataFrame, parts: PartTables, *, config,
                 h3_resolution: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    """The H3 cells of the whole city, the households' reach columns and the reach summary; the grids get
    their reach shares (in place)."""
    grid_id = hh["grid_id"].to_numpy()
    cells, origins = parts.cells, parts.origins
    reach = hh[[f"within_{c}" for c in config.ids] + ["basic_complete"] + _risk_minute_columns(config, run.configs)]
    special = pd.DataFrame({g: hh[g].to_numpy() for g in SPECIAL_GROUPS})
    zone = hh["zone"].to_numpy()
    old, fringe = hh["old_estate"].to_numpy(bool), hh["fringe"].to_numpy(bool)
    groups = {"street": hh["street_id"].to_numpy(), "community": hh["community_id"].to_numpy(), "grid": grid_id,
              "zone": zone.astype(object), "old_estate": np.where(old, "old_estate", None),
              "fringe": np.where(fringe, "fringe", None)}
    shares = reach_shares(groups, reach, persons=hh["persons"].to_numpy(), special=special, config=config)
    for column, values in grid_share_columns(shares[shares["level"] == "grid"], out_grids["id"].astype(str).to_numpy()).items():
        out_grids.insert(len(out_grids.columns) - 1, column, values)
    all_cells = [c for c in cells if c is not None and len(c)]
    all_cells = pd.concat(all_cells, ignore_index=True).sort_values("h3").reset_index(drop=True) if all_cells else cells[0]
    all_cells = gpd.GeoDataFrame(all_cells, geometry="geometry", crs="EPSG:4326")
    origin_rows = pd.concat(origins, ignore_index=True).drop_duplicates("key")
    stats = dict(parts.network_stats)
    if stats.get("method") == "network":
        stats.update({"origins": int(len(origin_rows)),
                      "origins_not_attached": int((~origin_rows["attached"]).sum()),
                      "origins_on_fragments": int(origin_rows["on_fragment"].sum())})
    level_rows = shares[shares["level"].isin(["street", "community", "zone", "old_estate", "fringe"])]
    method = stats.get("method", METHOD_NETWORK)
    reach_summary = {
        "method": method,
        "estimate": method != "network",
        "categories_source": config.source,
        "speeds_m_per_s": config.speeds,
        "detour_factor": config.detour_factor if method != "network" else None,
        "horizon_min": config.horizon_min,
        "categories": [asdict(c) for c in config.categories],
        "network": stats,
        "facilities_unknown_category": parts.facilities_unknown,
        "households_not_attached": int(hh["not_attached"].sum()),
        "households_on_fragments": int(hh["on_fragment"].sum()),
        "households_basic_complete": int(hh["basic_complete"].sum()),
        "h3_resolution": h3_resolution,
        "h3_cells": int(len(all_cells)),
        "h3_cells_from_centre": int(all_cells["from_centre"].sum()) if len(all_cells) else 0,
        "shares": json.loads(level_rows.to_json(orient="records")),
    }

    return all_cells, reach, reach_summary


def _risk_stage(run: RunInfo, hh: pd.DataFrame, out_grids: gpd.GeoDataFrame, reach: pd.DataFrame,
                buildings: list, *, communities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, config,
                h3_resolution: int, reference_date: date, cases: JudgedCases | None = None):
    """Household risk, blind spots and scorecard; the grids get their risk columns (in place)."""
    status = hh["status"].to_numpy()
    grid_id = hh["grid_id"].to_numpy()
    building_id = hh["building_id"].to_numpy()
    old, fringe = hh["old_estate"].to_numpy(bool), hh["fringe"].to_numpy(bool)
    risk_config = load_risk_config(**run.configs.get(RISK_FILE, {}), categories=config, as_of=reference_date)
    own_b = [b for b in buildings if b is not None]
    if own_b:
        own_b = pd.concat(own_b, ignore_index=True).drop_duplicates("id").sort_values("order", kind="stable")
        registration = building_registration(own_b, building_id, config=risk_config, area=own_b["area"].to_numpy())
        registration.index = own_b.index
        under_mask = registration["under_registered"].to_numpy()
        under = set(registration.loc[under_mask, "id"])
        ub_lonlat = (own_b["lon"].to_numpy()[under_mask], own_b["lat"].to_numpy()[under_mask]) if len(under) \
            else (np.zeros(0), np.zeros(0))
    else:
        registration, under, ub_lonlat = None, set(), (np.zeros(0), np.zeros(0))
    risk_input = pd.DataFrame({
        "status": status, "grid_id": grid_id, "community_id": hh["community_id"].to_numpy(),
        "street_id": hh["street_id"].to_numpy(), "building_id": building_id, "persons": hh["persons"].to_numpy(),
        "last_visit": _visit_text(hh["last_visit"]) if "last_visit" in hh.columns else None,
        **{g: hh[g].to_numpy() for g in SPECIAL_GROUPS},
        "old_estate": old, "fringe": fringe,
        **({"migrant_registered": hh["migrant_registered"].to_numpy()} if "migrant_registered" in hh.columns else {}),
        **{c: hh[c].to_numpy() for c in VISIT_RISK_COLUMNS if c in hh.columns},
    })
    over = set(out_grids.loc[out_grids["over_capacity"].astype(bool), "id"].astype(str))
    lon, lat = hh["lon"].to_numpy(), hh["lat"].to_numpy()
    ctx = RiskContext(households=risk_input, grids=out_grids, communities=communities, streets=streets,
                      config=risk_config, categories=config, over_capacity=over, under_registered=under,
                      under_lonlat=ub_lonlat, lon=lon, lat=lat, metric_crs=run.metric_crs, resolution=h3_resolution,
                      reference_date=reference_date, origin_of=np.zeros(0, dtype=np.int64), settings=run.settings,
                      cases=cases.cases if cases is not None else None)
    risk, spots, card = assess_risk(ctx, reach)
    g_risk = grid_risk(out_grids["id"].astype(str).to_numpy(), risk_input, risk=risk,
                       urgent_overdue=_urgent_overdue_grids(ctx.cases))
    for column in g_risk.columns:
        out_grids.insert(len(out_grids.columns) - 1, column, g_risk[column].to_numpy())
    if "visit_judged" in hh.columns:
        kept = visit_shares(hh, "grid_id").reindex(out_grids["id"].astype(str))
        out_grids.insert(len(out_grids.columns) - 1, "visits_households",
                         kept["households"].fillna(0).astype(int).to_numpy())
        out_grids.insert(len(out_grids.columns) - 1, "visits_kept_share", kept["share_kept"].to_numpy())
    return risk, spots, card, ctx, registration, risk_config


#: The compact table's visit columns the risk rules and the scorecard read (with a visits layer).
VISIT_RISK_COLUMNS = ("visit_judged", "visit_periods", "visit_periods_kept", "visit_last_missed", "never_visited",
                      "long_visit_gap")


def visit_shares(hh: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Per ``unit`` (``grid_id``, ``community_id``, ``street_id``) of the compact table: judged special-group
    ``households``, ``periods``, ``periods_kept``, ``share_kept`` (periods kept / periods; empty without a
    period) and ``never_visited``, indexed by the unit's id (households in no unit are not listed)."""
    judged = hh["visit_judged"].to_numpy(bool)
    frame = pd.DataFrame({unit: hh[unit].astype("string").to_numpy()[judged],
                          "households": 1,
                          "periods": hh["visit_periods"].fillna(0).to_numpy(np.int64)[judged],
                          "periods_kept": hh["visit_periods_kept"].fillna(0).to_numpy(np.int64)[judged],
                          "never_visited": hh["never_visited"].to_numpy(bool)[judged]})
    out = frame.groupby(unit, sort=True).sum()
    out["share_kept"] = np.round(out["periods_kept"] / out["periods"].where(out["periods"] > 0), 4)
    out.index = out.index.astype(str)
    return out


def visit_summary(hh: pd.DataFrame, risk: pd.DataFrame, *, records: int, config: RiskConfig, as_of: date,
                  window_weeks: int, communities: pd.DataFrame, streets: pd.DataFrame) -> dict:
    """summary.json's ``visits``: the window judged, its rules, and the periods kept city-wide, per street and
    per community, with the special-group households that have no record (counted as never visited)."""
    judged = hh["visit_judged"].to_numpy(bool)
    periods = int(hh["visit_periods"].fillna(0).to_numpy(np.int64)[judged].sum())
    kept = int(hh["visit_periods_kept"].fillna(0).to_numpy(np.int64)[judged].sum())
    rules = config.visit_rules

    def per(unit: str, table: pd.DataFrame) -> list[dict]:
        shares = visit_shares(hh, unit)
        rows = []
        for uid, name in zip(table["id"].astype(str), table["name"].astype(str)):
            row = shares.loc[uid] if uid in shares.index else None
            rows.append({"id": uid, "name": name,
                         "households": int(row["households"]) if row is not None else 0,
                         "periods": int(row["periods"]) if row is not None else 0,
                         "periods_kept": int(row["periods_kept"]) if row is not None else 0,
                         "share_kept": None if row is None or pd.isna(row["share_kept"]) else float(row["share_kept"]),
                         "never_visited": int(row["never_visited"]) if row is not None else 0})
        return rows

    return {
        "as_of": as_of.isoformat(), "window_weeks": int(window_weeks), "records": int(records),
        "rules": {g: {"period": r.period, "at_least": r.at_least, "kinds": list(r.kinds)} for g, r in rules.by_group.items()},
        "time_zone": rules.zone,
        "households": int(judged.sum()), "periods": periods, "periods_kept": kept,
        "share_kept": round(kept / periods, 4) if periods else None,
        "never_visited": int(hh["never_visited"].to_numpy(bool)[judged].sum()),
        "overdue": int(risk["visit_overdue"].to_numpy(bool)[judged].sum()),
        "long_visit_gap": int(hh["long_visit_gap"].to_numpy(bool)[judged].sum()),
        "per_street": per("street_id", streets),
        "per_community": per("community_id", communities),
    }


#: A building-grid table without split buildings (grid_workload's ``split_buildings`` are then all 0).
_NO_SPLIT = pd.DataFrame({"grid_id": pd.Series([], dtype=object), "split": pd.Series([], dtype=bool)})


def _visit_text(values: pd.Series) -> np.ndarray:
    """Visit dates back as YYYY-MM-DD text (None where missing), as household_risk reads them."""
    out = np.array(pd.Series(values).dt.strftime("%Y-%m-%d"), dtype=object)  # a writable copy under pandas 3
    out[np.array(pd.isna(values), dtype=bool)] = None
    return out


#: The columns risk adds to households.geojson, in order.
RISK_OUTPUT_COLUMNS = ("risk", "risk_reasons", "visit_overdue")


def add_risk_columns(households: gpd.GeoDataFrame, risk: pd.DataFrame) -> gpd.GeoDataFrame:
    """The output households with their risk columns (before the geometry)."""
    out = households.copy() if len(households) else households
    for column in RISK_OUTPUT_COLUMNS:
        out.insert(len(out.columns) - 1, column, risk[column].array)
    return out


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
    settings: Settings = field(default_factory=Settings)
    #: the cases judged at the run's as_of (geo.cases.judge_cases), None without a cases layer
    cases: pd.DataFrame | None = None


def assess_risk(ctx: RiskContext, reach_households: pd.DataFrame) -> tuple[pd.DataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Household risk, blind spots and the scorecard for one state of the life-circle figures."""
    risk = household_risk(ctx.households, reach_households, over_capacity_grids=ctx.over_capacity,
                          under_registered=ctx.under_registered, config=ctx.config, reference_date=ctx.reference_date,
                          categories=ctx.categories)
    points = ()
    if ctx.cases is not None:  # cases reported outside every grid weigh in the blind spots (docs/cases.md)
        away = ctx.cases["outside_grids"].fillna(False).to_numpy(bool) & ctx.cases["lon"].notna().to_numpy()
        points = (PointReason("case_outside_grids", ctx.cases["lon"].to_numpy(float)[away],
                              ctx.cases["lat"].to_numpy(float)[away],
                              weight=ctx.config.weights["case_outside_grids"], unit_zh="件",
                              unit_en="cases"),)
    spots = blind_spots(ctx.lon, ctx.lat, ctx.households, risk, under_registered_lonlat=ctx.under_lonlat,
                        config=ctx.config, metric_crs=ctx.metric_crs, resolution=ctx.resolution,
                        communities=ctx.communities, points=points)
    card = build_scorecard(ctx.households, risk, reach=reach_households, grids=ctx.grids,
                           communities=ctx.communities, streets=ctx.streets, config=ctx.config,
                           settings=ctx.settings)
    card = pd.concat([card, zone_scorecard(ctx.households, risk, reach=reach_households, config=ctx.config)], ignore_index=True)
    if ctx.cases is not None:
        card = pd.concat([card, case_scorecard(ctx.cases, communities=ctx.communities, streets=ctx.streets,
                                               target=ctx.config.targets.get("cases_on_time", 1.0))], ignore_index=True)
    return risk, spots, card


@dataclass
class ReachResult:
    model: ReachModel
    origin_of: np.ndarray
    households: pd.DataFrame
    household_columns: list
    cells: gpd.GeoDataFrame
    not_attached: np.ndarray
    on_fragment: np.ndarray
    origins: pd.DataFrame


def unknown_categories(facilities: gpd.GeoDataFrame | None, config) -> dict[str, int]:
    """Facilities per category that ``categories.toml`` does not declare (left out of the reach)."""
    if facilities is None:
        return {}
    known = facilities["category"].isin(config.ids)
    return {str(k): int(v) for k, v in facilities.loc[~known, "category"].value_counts().items()}


def unknown_category_warnings(unknown: dict[str, int], config) -> list[str]:
    """One warning per facility category the reach configuration does not know, with its count.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> unknown_category_warnings({"gym": 2}, SimpleNamespace(source="built-in"))
    ["facilities: 2 with category 'gym' not in built-in: not used for reach"]
    """
    return [f"facilities: {count} with category {cat!r} not in {config.source}: not used for reach"
            for cat, count in unknown.items()]


def household_reach_stage(data: Dataset, assigned: pd.DataFrame, households: gpd.GeoDataFrame, *,
                          lonlat: tuple[np.ndarray, np.ndarray], h3_resolution: int = DEFAULT_H3_RESOLUTION,
                          keep_cell: Callable | None = None, area_wgs84: list | None = None,
                          order: np.ndarray | None = None, component_of: Callable | None = None,
                          seed_cells: np.ndarray | None = None) -> ReachResult:
    """The 15-minute life-circle stage of one part: network, per-household minutes, its H3 cells (the empty
    ones round ``seed_cells`` and the facilities, or every cell of the area when ``seed_cells`` is None)."""
    layers = data.layers
    config = load_config(**data.configs.get(CATEGORIES_FILE, {}))
    facilities = layers.get("facilities")
    if facilities is not None:
        facilities = facilities[facilities["category"].isin(config.ids).to_numpy()]
    x, y = assigned["x"].to_numpy(), assigned["y"].to_numpy()
    building_id = assigned["building_id"].to_numpy()
    origins, origin_of = household_origins(x, y, building_id, buildings=layers.get("buildings"),
                                           estates=layers.get("estates"), gates=layers.get("gates"))
    model = ReachModel.build(layers.get("roads"), facilities, origins, config=config)
    if component_of is not None and model.graph is not None:
        model.use_components(component_of)
    elderly_alone = households["elderly_alone"].astype(bool).to_numpy()
    reach = household_reach(model, origin_of, elderly_alone)
    not_attached = ~model.origin_attached()
    on_fragment = model.origin_on_fragment()
    hh_not_attached = (origin_of >= 0) & np.where(origin_of >= 0, not_attached[np.maximum(origin_of, 0)], False)
    hh_stranded = (origin_of >= 0) & np.where(origin_of >= 0, on_fragment[np.maximum(origin_of, 0)], False)
    lon, lat = lonlat
    area = area_wgs84 if area_wgs84 is not None else layers["streets"].to_crs("EPSG:4326").geometry.to_list()
    if seed_cells is not None and facilities is not None and len(facilities):
        fpts = facilities.geometry.to_numpy()
        seed_cells = np.r_[seed_cells, cells_of(*to_lonlat(shapely.get_x(fpts), shapely.get_y(fpts), facilities.crs),
                                                h3_resolution)]
    cells = h3_reach(model, household_lonlat=(lon, lat), reach=reach, area_wgs84=area, resolution=h3_resolution,
                     metric_crs=data.metric_crs, seed_cells=seed_cells)
    if keep_cell is not None and len(cells):
        cells = cells[keep_cell(cells["h3"].to_numpy())].reset_index(drop=True)
    # origins by key: a building is one origin wherever its households are counted; a loose household is its own
    has_b = pd.notna(building_id)
    order = np.arange(len(x)) if order is None else order
    key = np.full(len(origins), None, dtype=object)
    located = origin_of >= 0
    key[origin_of[located & has_b]] = np.char.add("b:", building_id[located & has_b].astype(str))
    key[origin_of[located & ~has_b]] = np.char.add("h:", order[located & ~has_b].astype(str))
    origin_rows = pd.DataFrame({"key": key, "attached": ~not_attached, "on_fragment": on_fragment})
    columns = [c for c in reach.columns if not c.startswith("within_")]
    return ReachResult(model=model, origin_of=origin_of, households=reach, household_columns=columns, cells=cells,
                       not_attached=hh_not_attached, on_fragment=hh_stranded, origins=origin_rows)


def settled_cells(data: Dataset, lonlat: tuple[np.ndarray, np.ndarray], *, resolution: int,
                  more: np.ndarray | None = None) -> np.ndarray:
    """The H3 cells of the households (``lonlat``) and of the buildings' inside points, with ``more``: the
    places people live, round which the life circle's empty cells are kept."""
    seeds = [cells_of(*lonlat, resolution)]
    buildings = data.layers.get("buildings")
    if buildings is not None and len(buildings):
        inner = shapely.point_on_surface(buildings.geometry.to_numpy())
        seeds.append(cells_of(*to_lonlat(shapely.get_x(inner), shapely.get_y(inner), buildings.crs), resolution))
    if more is not None:
        seeds.append(np.asarray(more, dtype=np.uint64))
    return np.unique(np.concatenate(seeds))


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


def zone_scorecard(households: pd.DataFrame, risk: pd.DataFrame, *, reach: pd.DataFrame,
                   config: RiskConfig) -> pd.DataFrame:
    """The scorecard's served/coverage indicators for old estates, fringes and the rest (level ``zone``)."""
    t = config.targets
    zone_masks = {"old_estate": households["old_estate"].to_numpy(bool), "fringe": households["fringe"].to_numpy(bool)}
    zone_masks["rest"] = ~(zone_masks["old_estate"] | zone_masks["fringe"])
    names = {"old_estate": "老旧小区 old estates", "fringe": "城乡结合部 urban-rural fringe", "rest": "其他 the rest"}
    special = np.column_stack([households[g].astype(bool).to_numpy() for g in ("elderly_alone", "child_in_difficulty",
                                                                             "mental_disorder")]).any(axis=1)
    rows = []
    for zone, mask in zone_masks.items():
        for name, target, num, den, of in (
            ("households_covered", t.get("weak_areas_served", 0.9), risk["covered"].to_numpy(bool) & mask, mask,
             "weak_areas_served"),
            ("special_groups_served", t.get("special_groups_served", 0.98), risk["served"].to_numpy(bool) & special & mask,
             special & mask, "special_groups_served"),
            ("basic_services", t.get("basic_services", 1.0), reach["basic_complete"].to_numpy(bool) & mask, mask,
             "basic_services"),
        ):
            d, k = int(den.sum()), int(num.sum())
            value = round(k / d, 4) if d else None
            rows.append({"level": "zone", "id": zone, "name": names[zone], "indicator": name, "value": value,
                         "target": target, "target_year": config.target_years.get(of),
                         "pass": (value >= target) if value is not None else None,
                         "numerator": k, "denominator": d})
    return pd.DataFrame(rows)


def risk_summary(risk: pd.DataFrame, zones: pd.DataFrame, *, spots: gpd.GeoDataFrame,
                 registration: pd.DataFrame | None, config: RiskConfig, reference_date: date) -> dict:
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


def build_summary(data: "RunInfo", households: pd.DataFrame, *, grids: gpd.GeoDataFrame, issues: gpd.GeoDataFrame,
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
            **staffing_summary(grids[grids["community_id"] == cid]),
        })
    per_grid = [
        {"id": r.id, "community_id": r.community_id, "households": int(r.households), "persons": int(r.persons),
         "workers": int(r.workers), "over_capacity": bool(r.over_capacity), "split_buildings": int(r.split_buildings),
         "staff_missing": r.staff_missing}
        for r in grids[["id", "community_id", "households", "persons", "workers", "over_capacity", "split_buildings",
                        "staff_missing"]].itertuples(index=False)
    ]
    status_counts = _counts(status, STATUSES)
    total = int(len(households))
    assert sum(status_counts.values()) == total, "every household has exactly one status"
    return {
        "input": dict(data.input_counts),
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
            "special_group_weight": data.settings.special_group_weight,
            **staffing_summary(grids),
            "codes_generated": int(grids["code_generated"].sum()) if "code_generated" in grids.columns else 0,
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
        "rejected": dict(data.rejected),
        "references_cleared": dict(data.references_cleared),
        "settings": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(data.settings).items()},
    }


# ---- cases (事件) ---------------------------------------------------------------------------------

#: The columns of the cases layer the case stage keeps (the data model's fields, geo.schema).
CASE_INPUT_COLUMNS = ("id", "reported_at", "urgency", "category", "accepted_at", "closed_at", "household_id", "source",
                      "address")
#: The columns the grids get with a cases layer (before the geometry).
CASE_GRID_COLUMNS = ("cases", "cases_on_time_share", "cases_open", "cases_overdue", "urgent_cases_overdue")


def case_households(households: gpd.GeoDataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """What locating cases needs of each household: ``id``, its location (``lon``/``lat`` of the compact
    table: its point, else its building's inside point), ``address`` and its assigned ``building_id`` (the
    known addresses the lookup's address index learns from, as the workspace's households give them)."""
    return pd.DataFrame({"id": households["id"].astype(str).to_numpy(dtype=object),
                         "lon": table["lon"].to_numpy(float), "lat": table["lat"].to_numpy(float),
                         "address": households["address"].to_numpy(dtype=object) if "address" in households.columns
                         else None,
                         "building_id": households["building_id"].astype(object).to_numpy()})


def locate_case_layer(layers: dict, households: pd.DataFrame, *, metric_crs) -> pd.DataFrame:
    """The cases layer (metric CRS) placed on the grids as ``/lookup`` would place them
    (:func:`geo.cases.locate_cases`): :data:`CASE_INPUT_COLUMNS` then :data:`geo.cases.LOCATION_COLUMNS`.

    ``layers``: the run's whole layers (``cases``, with its WGS-84 ``lon``/``lat`` as read when it has them,
    ``grids``, ``communities``, ``streets``, and ``buildings``, ``estates`` when present); ``households``: :func:`case_households` of every household. The lookup index
    is built from the layers in WGS-84, the coordinates the workspace stores and ``/lookup`` answers from.
    """
    wgs = {name: layers[name].to_crs("EPSG:4326") for name in ("grids", "communities", "streets", "buildings", "estates")
           if layers.get(name) is not None}
    index = build_index(wgs["grids"], buildings=wgs.get("buildings"), estates=wgs.get("estates"),
                        communities=wgs["communities"], streets=wgs["streets"],
                        households=households[["address", "building_id"]], metric_crs=metric_crs)
    cases = layers["cases"]
    if {"lon", "lat"} <= set(cases.columns):  # the WGS-84 numbers as read (gridcover.io.folder), not a round trip
        lon, lat = cases["lon"].to_numpy(float), cases["lat"].to_numpy(float)
    else:
        geoms = cases.geometry.to_numpy()
        lon, lat = to_lonlat(shapely.get_x(geoms), shapely.get_y(geoms), cases.crs)
    kept = pd.DataFrame({c: (cases[c].to_numpy(dtype=object) if c in cases.columns else None)
                         for c in CASE_INPUT_COLUMNS})
    where = locate_cases(lon, lat, kept["household_id"], kept["address"], index=index, households=households)
    return pd.concat([kept, where], axis=1)


def _case_stage(run: RunInfo, cases: pd.DataFrame, out_grids: gpd.GeoDataFrame, *, reference_date: date) -> JudgedCases:
    """The located cases judged at the end of ``reference_date``; the grids get :data:`CASE_GRID_COLUMNS`
    (in place) and the run's warnings what it noticed (cases not placed, after as_of, years without calendar)."""
    risk_config = load_risk_config(**run.configs.get(RISK_FILE, {}), categories=None)
    found = judge_cases(cases, rules=case_rules(risk_config), as_of=reference_date)
    shares = case_shares(found.cases, "grid_id").reindex(out_grids["id"].astype(str))
    for column, source in zip(CASE_GRID_COLUMNS, ("cases", "share_on_time", "open", "overdue", "urgent_overdue")):
        values = shares[source].to_numpy() if source == "share_on_time" else shares[source].fillna(0).astype(int).to_numpy()
        out_grids.insert(len(out_grids.columns) - 1, column, values)
    unplaced = int((found.cases["located_by"] == "none").sum())
    if unplaced:
        run.warnings.append(f"cases: {unplaced:,} could not be placed (no point, no known household, address not "
                            "matched): counted in summary.json cases.not_located, in no grid")
    if found.reported_after:
        run.warnings.append(f"cases: {found.reported_after:,} reported after {reference_date.isoformat()} "
                            "(--as-of) are not judged")
    for year, k in found.uncovered_years.items():
        run.warnings.append(f"cases: {k:,} reported or due in {year}, a year [cases.calendar] holds no holidays "
                            "for: Monday to Friday counted as working days there")
    return found


def _urgent_overdue_grids(cases: pd.DataFrame | None) -> set:
    """The grids holding an urgent case still open past a deadline (red, ``urgent_case_overdue``)."""
    if cases is None:
        return set()
    mine = cases["overdue"].to_numpy(bool) & (cases["urgency"].to_numpy() == "urgent") & cases["grid_id"].notna().to_numpy()
    return set(cases.loc[mine, "grid_id"].astype(str))
