"""Risk of falling out of care (脱管): reason codes per household, three colours (三色预警), the scorecard.

Rules (docs/risk.md has them in full, with the plan's words):

* reasons: ``no_grid``, ``overlapping_grids``, ``grid_over_capacity``, ``missing_services``,
  ``special_group_unreached``, ``visit_overdue``, ``unregistered_building``;
* red (may cause a serious incident): a person with a severe mental disorder in no grid or not visited on
  time; an elderly person living alone or a child in difficulty in no grid;
* yellow (a service missing for a long time): a special-group member who cannot reach their group's
  services, or whose last visit is older than ``long_gap_days`` (or who was never visited);
* blue (a routine lapse): any other reason;
* none: no reason;
* a grid is red also when it holds an urgent case open past its limit (``urgent_case_overdue``, geo/cases.py).

Visit frequencies, group services, thresholds, weights and targets live in ``geo/risk.toml`` (a data
folder's ``risk.toml`` replaces it).

Example
-------
>>> from datetime import date
>>> import pandas as pd
>>> households = pd.DataFrame({"status": ["ok", "outside_all_grids", "ok"], "grid_id": ["G1", None, "G1"],
...                            "building_id": ["B1", "B2", "B1"],
...                            "last_visit": ["2026-11-20", "2026-11-20", "2026-01-05"],
...                            **{g: [False, False, g == "elderly_alone"] for g in SPECIAL_GROUPS}})
>>> config = RiskConfig(visits={"elderly_alone": 30}, long_gap_days=90, group_services={}, registration={},
...                     weights={}, targets={})
>>> risk = household_risk(households, None, over_capacity_grids=set(), under_registered=set(), config=config,
...                       reference_date=date(2026, 11, 29), categories=None)
>>> [(colour, list(reasons)) for colour, reasons in zip(risk["risk"], risk["risk_reasons"])]
[('none', []), ('blue', ['no_grid']), ('yellow', ['visit_overdue'])]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from geo.cases import CaseRules, packaged_cases_table, parse_case_rules
from geo.errors import ConfigError
from geo.reach import ReachConfig
from geo.schema import SPECIAL_GROUPS
from geo.settings import Settings
from geo.workload import full_time_share, grid_part_time_workers, workload_weights
from geo.visits import VisitRules, parse_visit_rules

REASONS = ("no_grid", "overlapping_grids", "grid_over_capacity", "missing_services", "special_group_unreached",
           "visit_overdue", "unregistered_building")
#: Colours from none to the worst; their position is their severity.
COLOURS = ("none", "blue", "yellow", "red")
#: Reasons that make an H3 cell part of a blind spot: lapses of care. Service gaps (missing services, a
#: special group out of reach of its services) are mapped by the reach layer and answered by "where to add
#: a service"; counted here they would paint whole districts. They still appear among a spot's reasons.
BLIND_SPOT_REASONS = ("no_grid", "overlapping_grids", "visit_overdue", "unregistered_building")
CONFIG_NAME = "risk.toml"
#: Groups the plan watches individually (the ones with visits and group services).
WATCHED_GROUPS = ("elderly_alone", "child_in_difficulty", "mental_disorder")


@dataclass(frozen=True)
class RiskConfig:
    """Visit frequencies (days), group services, registration check, blind-spot weights and plan targets."""

    visits: dict
    long_gap_days: int
    group_services: dict
    registration: dict
    weights: dict
    targets: dict
    min_cell_weight: float = 10.0
    source: str = "built-in"
    #: [blindspots] max_area_m2: a blind spot larger than this is cut into compact pieces (geo.blindspots)
    max_spot_area_m2: float = 110_000.0
    #: the calendar rules of ``[visit_rules]`` (:func:`geo.visits.parse_visit_rules`), used with visit records
    visit_rules: VisitRules | None = None
    #: the time limits and working-day calendar of cases (``[cases]``, :func:`geo.cases.parse_case_rules`)
    cases: CaseRules | None = None
    #: ``[targets]`` as written: per indicator, the figure of each year (``{None: figure}`` for one figure for
    #: every year); ``targets`` holds the figures in force on the run's as_of (:func:`target_in_force`)
    target_plan: dict = field(default_factory=dict)
    #: per indicator, the year whose figure is in force (``None``: one figure for every year)
    target_years: dict = field(default_factory=dict)


def load_risk_config(text: bytes | None = None, *, source: str = "built-in",
                     categories: ReachConfig | None = None, as_of: date | None = None) -> RiskConfig:
    """The visit rules, group services, registration figures, weights and targets of a ``risk.toml``, checked.

    Parameters
    ----------
    text
        The data folder's ``risk.toml`` as read (the application reads it: :mod:`gridcover.io.folder`);
        ``None``: gridcover's default, ``geo/risk.toml``.
    source
        How messages name the file (its path).
    categories
        The run's facility categories: ``[group_services]`` may name only these.
    as_of
        The run's date: the targets in force on it (:func:`target_in_force`; default: today).

    Examples
    --------
    >>> load_risk_config().weights["red"]
    10.0
    >>> load_risk_config(b"[visits]\\nnobody = 7\\n", source="risk.toml")
    Traceback (most recent call last):
    ...
    geo.errors.ConfigError: risk.toml: unknown special group(s) nobody (known: elderly_alone, child_in_difficulty, mental_disorder, migrant, rental)
    """
    if text is None:
        text, source = resources.files("geo").joinpath(CONFIG_NAME).read_bytes(), "built-in"
    try:
        doc = tomllib.loads(text.decode("utf-8"))
        visits = {k: int(v) for k, v in doc.get("visits", {}).items() if k != "long_gap_days"}
        long_gap = int(doc.get("visits", {}).get("long_gap_days", 30))
        group_services = {k: [str(c) for c in v] for k, v in doc.get("group_services", {}).items()}
        registration = {k: float(v) for k, v in doc.get("registration", {}).items()}
        weights = {k: float(v) for k, v in doc.get("weights", {}).items()}
        target_plan = parse_targets(doc.get("targets", {}), source=source)
        min_cell_weight = float(doc.get("blindspots", {}).get("min_cell_weight", 10.0))
        max_spot_area = float(doc.get("blindspots", {}).get("max_area_m2", 110_000.0))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{source}: not a valid risk file: {exc}") from None
    unknown = (set(visits) | set(group_services)) - set(SPECIAL_GROUPS)
    if unknown:
        raise ConfigError(f"{source}: unknown special group(s) {', '.join(sorted(unknown))} (known: {', '.join(SPECIAL_GROUPS)})")
    if categories is not None:
        missing = {c for cats in group_services.values() for c in cats} - set(categories.ids)
        if missing:
            raise ConfigError(f"{source}: [group_services] names categories not in {categories.source}: "
                              f"{', '.join(sorted(missing))}")
    visit_rules = parse_visit_rules(doc.get("visit_rules", {}), source=source)
    cases = parse_case_rules(doc.get("cases", {}), source=source, defaults=packaged_cases_table())
    for key, default in (("min_share", 0.5), ("flat_m2", 90.0), ("efficiency", 0.75)):
        registration.setdefault(key, default)
    for key, default in (("red", 10.0), ("yellow", 3.0), ("blue", 1.0), ("unregistered_building", 5.0),
                         ("case_outside_grids", 5.0)):
        weights.setdefault(key, default)
    year = (as_of or date.today()).year
    in_force = {name: target_in_force(phases, year) for name, phases in target_plan.items()}
    return RiskConfig(visits=visits, long_gap_days=long_gap, group_services=group_services,
                      registration=registration, weights=weights,
                      targets={name: figure for name, (figure, _) in in_force.items()}, min_cell_weight=min_cell_weight,
                      source=source, visit_rules=visit_rules, cases=cases, target_plan=target_plan,
                      max_spot_area_m2=max_spot_area,
                      target_years={name: y for name, (_, y) in in_force.items()})


def parse_targets(table: dict, *, source: str) -> dict[str, dict]:
    """``[targets]`` of a risk file: per indicator one figure (``{None: figure}``) or a figure per year
    (``{year: figure}``, from ``name = { 2024 = 0.90, 2025 = 0.95 }`` or a ``[targets.name]`` table).

    Examples
    --------
    >>> parse_targets({"visits_on_time": 1, "migrants_registered": {"2025": 0.95, "2024": 0.9}}, source="risk.toml")
    {'visits_on_time': {None: 1.0}, 'migrants_registered': {2024: 0.9, 2025: 0.95}}
    >>> parse_targets({"migrants_registered": {"next year": 0.9}}, source="risk.toml")
    Traceback (most recent call last):
    ...
    geo.errors.ConfigError: risk.toml: [targets] migrants_registered: 'next year' is not a year (give e.g. { 2024 = 0.90, 2025 = 0.95 })
    """
    out = {}
    for name, value in table.items():
        if not isinstance(value, dict):
            out[name] = {None: _figure(value, source=source, where=name)}
            continue
        phases = {}
        for year, figure in value.items():
            if not (str(year).isdigit() and 1900 < int(year) < 3000):
                msg = f"{source}: [targets] {name}: {year!r} is not a year (give e.g. {{ 2024 = 0.90, 2025 = 0.95 }})"
                raise ConfigError(msg)
            phases[int(year)] = _figure(figure, source=source, where=f"{name}.{year}")
        if not phases:
            raise ConfigError(f"{source}: [targets] {name}: give a figure, or a figure per year")
        out[name] = dict(sorted(phases.items()))
    return out


def _figure(value, *, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: [targets] {where}: {value!r} is not a number")
    return float(value)


def target_in_force(phases: dict, year: int) -> tuple[float, int | None]:
    """The figure in force in ``year`` and the year it was set for: the latest year not after ``year``; before
    the first year, the first (``None``: one figure for every year).

    Examples
    --------
    >>> plan = {2024: 0.90, 2025: 0.95}
    >>> target_in_force(plan, 2023), target_in_force(plan, 2024), target_in_force(plan, 2027)
    ((0.9, 2024), (0.9, 2024), (0.95, 2025))
    >>> target_in_force({None: 0.98}, 2026)
    (0.98, None)
    """
    if None in phases:
        return phases[None], None
    years = sorted(phases)
    chosen = max((y for y in years if y <= year), default=years[0])
    return phases[chosen], chosen


def building_registration(buildings: pd.DataFrame, building_of_household: np.ndarray, *, config: RiskConfig,
                          area: np.ndarray | None = None) -> pd.DataFrame:
    """Per building: household records, estimated flats, and whether a residential building is
    under-registered (records below ``min_share`` of its estimated flats; 0 records always counts).

    Estimated flats = floors × footprint × efficiency ÷ flat size (only where floors are known). ``area``
    gives the footprints (m²) when ``buildings`` is a table without geometry.
    """
    ids = buildings["id"].astype(str).to_numpy()
    records = pd.Series(building_of_household).dropna().astype(str).value_counts().reindex(ids).fillna(0).to_numpy()
    floors = pd.to_numeric(buildings.get("floors", pd.Series(np.nan, index=buildings.index)), errors="coerce").to_numpy(float)
    area = shapely.area(buildings.geometry.to_numpy()) if area is None else np.asarray(area, dtype=float)
    reg = config.registration
    flats = np.floor(floors * area * reg["efficiency"] / reg["flat_m2"])
    residential = buildings["residential"].fillna(True).astype(bool).to_numpy() if "residential" in buildings.columns \
        else np.ones(len(ids), bool)
    share = np.where(flats > 0, records / np.maximum(flats, 1), np.nan)
    under = residential & ((records == 0) | (np.nan_to_num(share, nan=1.0) < reg["min_share"]))
    return pd.DataFrame({"id": ids, "records": records.astype(int), "estimated_flats": flats,
                         "registered_share": np.round(share, 3), "residential": residential,
                         "under_registered": under})


def _days_since(last_visit: pd.Series, reference: date) -> np.ndarray:
    parsed = pd.to_datetime(last_visit, format="%Y-%m-%d", errors="coerce")
    days = (pd.Timestamp(reference) - parsed).dt.days.to_numpy(dtype=float)
    return days  # NaN: never visited (no date)


def _record_rules(households: pd.DataFrame, flags: dict, days: np.ndarray, *,
                  config: RiskConfig) -> tuple[np.ndarray, np.ndarray]:
    """``visit_overdue`` and the long gap from visit records (columns of :func:`geo.pipeline.visit_columns`).

    Overdue: the household is in a group with a calendar rule and missed the window's last completed period
    of one of its groups (``visit_last_missed``; a household without any record misses every period). Long
    gap: an elderly person living alone with no home visit in the last ``long_gap_weeks`` ISO weeks nor this
    week (``long_visit_gap``); a child in difficulty or a person with a mental disorder whose last record is
    older than ``long_gap_days`` (or who has none).
    """
    judged = households["visit_judged"].to_numpy(bool)
    overdue = judged & households["visit_last_missed"].to_numpy(bool)
    elderly = flags["elderly_alone"]
    others = judged & ~elderly & (np.isnan(days) | (days > config.long_gap_days))
    long_gap = (judged & elderly & households["long_visit_gap"].to_numpy(bool)) | others
    return overdue, long_gap


def household_risk(households: pd.DataFrame, reach: pd.DataFrame | None, *, over_capacity_grids: set,
                   under_registered: set, config: RiskConfig, reference_date: date,
                   categories: ReachConfig | None) -> pd.DataFrame:
    """Reasons, colour and whether each household is served.

    ``households`` holds ``status``, ``grid_id``, ``building_id``, ``last_visit`` and the special-group flags;
    ``reach`` the life-circle frame of :func:`geo.lifecircle.household_reach` (``within_<c>``,
    ``basic_complete``, ``reach_<c>_min_elderly``) or ``None``.
    """
    n = len(households)
    status = households["status"].astype(str).to_numpy()
    grid = households["grid_id"]
    has_grid = grid.notna().to_numpy()
    flags = {g: households[g].astype(bool).to_numpy() for g in SPECIAL_GROUPS}
    reasons = {}
    reasons["no_grid"] = ~has_grid
    reasons["overlapping_grids"] = status == "in_overlapping_grids"
    reasons["grid_over_capacity"] = has_grid & grid.astype("string").isin(over_capacity_grids).fillna(False).to_numpy()
    located = status != "no_location"
    if reach is not None and len(reach):
        reasons["missing_services"] = located & ~reach["basic_complete"].to_numpy(bool)
        unreached = np.zeros(n, bool)
        for group, cats in config.group_services.items():
            member = flags.get(group, np.zeros(n, bool))
            for cid in cats:
                cat = categories.category(cid)
                if group == "elderly_alone" or cat.elderly:
                    minutes = reach[f"reach_{cid}_min_elderly"].to_numpy(float)
                else:
                    minutes = reach[f"reach_{cid}_min"].to_numpy(float)
                unreached |= member & located & ~(np.nan_to_num(minutes, nan=np.inf) <= cat.tier)
        reasons["special_group_unreached"] = unreached
    else:
        reasons["missing_services"] = np.zeros(n, bool)
        reasons["special_group_unreached"] = np.zeros(n, bool)
    days = _days_since(households["last_visit"], reference_date) if "last_visit" in households.columns \
        else np.full(n, np.nan)
    allowed = np.full(n, np.inf)
    for group, every in config.visits.items():
        allowed = np.where(flags.get(group, np.zeros(n, bool)), np.minimum(allowed, every), allowed)
    watched = np.isfinite(allowed)
    overdue = watched & (np.isnan(days) | (days > allowed))
    long_gap = watched & (np.isnan(days) | (days > config.long_gap_days))
    if "visit_judged" in households.columns:  # visit records: the calendar rules of [visit_rules] instead
        overdue, long_gap = _record_rules(households, flags, days, config=config)
    reasons["visit_overdue"] = overdue
    bid = households["building_id"].astype("string").fillna("").to_numpy() if "building_id" in households.columns \
        else np.full(n, "")
    reasons["unregistered_building"] = pd.Series(bid).isin(under_registered).to_numpy()

    mental, elderly, child = flags["mental_disorder"], flags["elderly_alone"], flags["child_in_difficulty"]
    red = (mental & (reasons["no_grid"] | overdue)) | ((elderly | child) & reasons["no_grid"])
    special = elderly | child | mental
    yellow = reasons["special_group_unreached"] | (special & long_gap)
    any_reason = np.column_stack([reasons[r] for r in REASONS]).any(axis=1)
    colour = np.where(red, 3, np.where(yellow, 2, np.where(any_reason, 1, 0)))

    matrix = np.column_stack([reasons[r] for r in REASONS])
    rows, cols = np.nonzero(matrix)
    offsets = np.r_[0, np.cumsum(np.bincount(rows, minlength=n))].astype(np.int32)
    values = pa.array(list(REASONS), pa.string()).take(pa.array(cols, pa.int64()))
    reason_lists = pd.arrays.ArrowExtensionArray(pa.ListArray.from_arrays(pa.array(offsets), values))
    covered = has_grid & ~reasons["overlapping_grids"]
    out = pd.DataFrame({
        "risk": np.asarray(COLOURS, dtype=object)[colour],
        "risk_level": colour,
        "risk_reasons": reason_lists,
        "days_since_visit": days,
        "visit_overdue": overdue,
        "long_visit_gap": long_gap,
        "covered": covered,
        "served": covered & ~overdue,
    }, index=households.index)
    for r in REASONS:
        out[f"reason_{r}"] = reasons[r]
    return out


#: Reasons of a grid's colour that come from its cases, not its households (geo/cases.py).
CASE_REASONS = ("urgent_case_overdue",)


def grid_risk(grid_ids: np.ndarray, households: pd.DataFrame, *, risk: pd.DataFrame,
              urgent_overdue: set | None = None) -> pd.DataFrame:
    """Per grid: households by colour and the worst colour (``risk``) and its reasons (``risk_reasons``).

    A grid in ``urgent_overdue`` (it holds an urgent case still open past its deadline) is red, with the
    reason ``urgent_case_overdue``.

    Examples
    --------
    >>> households = pd.DataFrame({"grid_id": ["G1", "G2"]})
    >>> risk = pd.DataFrame({"risk_level": [1, 0], **{f"reason_{r}": [r == "no_grid", False] for r in REASONS}})
    >>> grid_risk(np.array(["G1", "G2"]), households, risk=risk, urgent_overdue={"G2"})[["risk", "risk_reasons"]].values.tolist()
    [['blue', ['no_grid']], ['red', ['urgent_case_overdue']]]
    """
    frame = pd.DataFrame({"grid_id": households["grid_id"].astype("string").to_numpy(), "level": risk["risk_level"].to_numpy()})
    for r in REASONS:
        frame[r] = risk[f"reason_{r}"].to_numpy()
    frame = frame[frame["grid_id"].notna()]
    by = frame.groupby("grid_id")
    out = pd.DataFrame(index=pd.Index(grid_ids.astype(str), name="grid_id"))
    for i, colour in enumerate(COLOURS[1:], start=1):
        out[f"{colour}_households"] = (frame["level"] == i).groupby(frame["grid_id"]).sum().reindex(out.index).fillna(0).astype(int)
    worst = by["level"].max().reindex(out.index).fillna(0).astype(int).to_numpy()
    urgent = out.index.isin(list(urgent_overdue or ()))
    worst = np.where(urgent, COLOURS.index("red"), worst)
    out["risk"] = np.asarray(COLOURS, dtype=object)[worst]
    present = by[list(REASONS)].any().reindex(out.index).fillna(False).to_numpy(bool)
    names = np.array(REASONS, dtype=object)
    out["risk_reasons"] = [list(names[row]) + (list(CASE_REASONS) if u else [])  # one list per grid
                           for row, u in zip(present, urgent)]
    return out.reset_index(drop=True)


def build_scorecard(households: pd.DataFrame, risk: pd.DataFrame, *, reach: pd.DataFrame | None,
                    grids: pd.DataFrame, communities: pd.DataFrame, streets: pd.DataFrame,
                    config: RiskConfig, settings: Settings = Settings()) -> pd.DataFrame:
    """Rows ``level``, ``id``, ``name``, ``indicator``, ``value``, ``target``, ``target_year``, ``pass``,
    ``numerator``, ``denominator`` for every community and street against the plan's targets in force
    (``config.targets``, chosen by the run's as_of; ``target_year``: the year whose figure that is, ``None``
    for a figure set for every year).

    A value is ``None`` (and ``pass`` too) where the data cannot say: no member of the group, no field.
    ``households_per_worker`` is the workload rule of geo.workload (weighted households ÷ full-time workers
    against ``settings.households_per_worker``); ``full_time_share`` (网格员专职化比例) is full-time workers ÷ all
    grid workers, full-time and part-time (``grids`` carry ``workers`` as :func:`geo.diagnose.grid_workload` gives
    them and ``part_time_workers``, 0 where missing; the part-time officers 信息员 and 调解员 are not grid workers).
    """
    t = config.targets
    weights = workload_weights(households, settings=settings)
    special = np.zeros(len(households), bool)
    for g in WATCHED_GROUPS:
        special |= households[g].astype(bool).to_numpy()
    weak = (households.get("old_estate", pd.Series(False, index=households.index)).astype(bool)
            | households.get("fringe", pd.Series(False, index=households.index)).astype(bool)).to_numpy()
    served = risk["served"].to_numpy(bool)
    covered = risk["covered"].to_numpy(bool)
    on_time = ~risk["visit_overdue"].to_numpy(bool)
    watched = np.zeros(len(households), bool)
    for g in config.visits:
        watched |= households[g].astype(bool).to_numpy()
    visits_kept, visits_due = on_time & watched, watched
    if "visit_judged" in households.columns:  # visit records: periods kept of the periods required
        judged = households["visit_judged"].to_numpy(bool)
        visits_due = np.where(judged, households["visit_periods"].astype("Int64").fillna(0).to_numpy(np.int64), 0)
        visits_kept = np.where(judged, households["visit_periods_kept"].astype("Int64").fillna(0).to_numpy(np.int64), 0)
    unreached = risk["reason_special_group_unreached"].to_numpy(bool)
    basic = reach["basic_complete"].to_numpy(bool) if reach is not None and len(reach) else np.zeros(len(households), bool)
    migrant = households["migrant"].astype(bool).to_numpy()
    registered_col = "migrant_registered" if "migrant_registered" in households.columns else None

    # (indicator, target, higher_is_better, numerator mask, denominator mask)
    indicators = [
        ("special_groups_served", t.get("special_groups_served", 0.98), served & special, special),
        ("weak_areas_served", t.get("weak_areas_served", 0.90), covered & weak, weak),
        ("visits_on_time", t.get("visits_on_time", 1.0), visits_kept, visits_due),
        ("basic_services", t.get("basic_services", 1.0), basic, households["status"].astype(str).to_numpy() != "no_location"),
        ("special_group_services", t.get("special_group_services", 0.95), special & ~unreached, special),
    ]
    if registered_col:
        reg = households[registered_col].astype("boolean").fillna(False).to_numpy(bool)
        indicators.append(("migrants_registered", t.get("migrants_registered", 0.95), migrant & reg, migrant))
    rows = []
    levels = (("community", "community_id", communities), ("street", "street_id", streets))
    for level, key, table in levels:
        keys = households[key].astype("string").fillna("").to_numpy()
        names = dict(zip(table["id"].astype(str), table["name"].astype(str)))
        for uid in table["id"].astype(str):
            mine = keys == uid
            for name, target, num, den in indicators:  # masks (households) or counts (visit periods)
                d = int(den[mine].sum())
                k = int(num[mine].sum())
                value = round(k / d, 4) if d else None
                rows.append({"level": level, "id": uid, "name": names[uid], "indicator": name, "value": value,
                             "target": target, "target_year": config.target_years.get(name),
                             "pass": (value >= target) if value is not None else None,
                             "numerator": k, "denominator": d})
            if not registered_col:
                rows.append({"level": level, "id": uid, "name": names[uid], "indicator": "migrants_registered",
                             "value": None, "target": t.get("migrants_registered", 0.95),
                             "target_year": config.target_years.get("migrants_registered"), "pass": None,
                             "numerator": None, "denominator": None,
                             "note": "no migrant_registered field in households: not measured"})
            if level == "community":
                g = grids[grids["community_id"].astype(str) == uid]
            else:
                comm = communities.loc[communities["street_id"].astype(str) == uid, "id"].astype(str)
                g = grids[grids["community_id"].astype(str).isin(set(comm))]
            row = {"level": level, "id": uid, "name": names[uid]}
            rows += _staffing_rows(row, g, weighted=round(float(weights[mine].sum()), 1), settings=settings,
                                   full_time_target=t.get("full_time_share", 0.80),
                                   full_time_year=config.target_years.get("full_time_share"))
    return pd.DataFrame(rows)


def _staffing_rows(row: dict, g: pd.DataFrame, *, weighted: float, settings: Settings,
                   full_time_target: float, full_time_year: int | None = None) -> list[dict]:
    """The two staffing rows of one community or street (``row``: level, id, name) with grids ``g`` and
    ``weighted`` households (geo.workload): households per full-time worker (lower is better) and
    网格员专职化比例, full-time among the grid workers (full-time and part-time 网格员)."""
    workers = int(g["workers"].sum()) if len(g) else 0
    value = round(weighted / workers, 1) if workers else None
    target = settings.households_per_worker
    per_worker = {**row, "indicator": "households_per_worker",
                  "value": value, "target": target, "target_year": None,
                  "pass": (value <= target) if value is not None else False,
                  "numerator": int(weighted) if weighted == int(weighted) else weighted, "denominator": workers}
    part_time = grid_part_time_workers(g)
    share = full_time_share(g["workers"], part_time)
    full_time = {**row, "indicator": "full_time_share", "value": share, "target": full_time_target,
                 "target_year": full_time_year,
                 "pass": (share >= full_time_target) if share is not None else None,
                 "numerator": workers, "denominator": workers + int(part_time.sum()) if len(g) else 0}
    return [per_worker, full_time]
