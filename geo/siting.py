"""Where to add a service (设施选址): k new sites that bring the most at-risk households within their tier.

Demand is every household that misses the category within its tier, weighted by special groups
(``1 + special_weight`` for an elderly person living alone, a child in difficulty or a person with a
severe mental disorder). A candidate covers a household when the walk from the household (through its
estate's gates) to the candidate is within the tier at the household's speed (elderly speed for the
elderly and for elderly facilities). Distances come from limited searches on the same walking network
as the reach analysis.

The maximal covering problem is solved exactly with scipy's ``milp`` (HiGHS) when it is small (at most
``exact_max_pairs`` candidate-household pairs) and otherwise greedily; the greedy answer comes with the
data-dependent bound of Leskovec et al. (2007): the optimum is at most the greedy value plus the sum of
the k largest remaining marginal gains (and never below 1 - 1/e of it).

Example
-------
Three homes along one road lack a kindergarten within 10 minutes; of two candidate sites, the one at the
east end covers two of them:

>>> import geopandas as gpd
>>> import numpy as np
>>> from shapely.geometry import LineString, Point
>>> from geo.lifecircle import household_origins
>>> from geo.reach import Category, ReachConfig
>>> roads = gpd.GeoDataFrame({"highway": ["residential"]}, geometry=[LineString([(0, 0), (2000, 0)])],
...                          crs=32648)
>>> facilities = gpd.GeoDataFrame({"id": ["F1"], "category": ["kindergarten"]}, geometry=[Point(0, 10)],
...                               crs=32648)
>>> origins, origin_of = household_origins(np.array([600.0, 1800.0, 1850.0]), np.full(3, 10.0),
...                                        np.full(3, None, dtype=object), buildings=None, estates=None,
...                                        gates=None)
>>> config = ReachConfig(categories=(Category(id="kindergarten", name_zh="幼儿园", name_en="Kindergarten",
...                                           tier=10, basic=True, elderly=False),),
...                      speeds={"general": 1.0, "elderly": 0.92}, detour_factor=1.3)
>>> model = ReachModel.build(roads, facilities, origins, config=config)
>>> demand = demand_for(model, "kindergarten", origin_of=origin_of, elderly_alone=np.zeros(3, bool),
...                     special=np.zeros(3, bool))
>>> plan = propose_sites(model, "kindergarten", 1, demand=demand,
...                      candidates=(np.array([1000.0, 1800.0]), np.array([10.0, 10.0])))
>>> plan.sites.tolist(), plan.covered_households, plan.method
([1], 2, 'exact')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import dijkstra

from geo.errors import ConfigError
from geo.network import attach_points
from geo.reach import METHOD_ESTIMATE, Category, ReachConfig, ReachModel

EXACT_MAX_PAIRS = 2_000_000
SPECIAL_WEIGHT = 2.0
_CHUNK = 64


@dataclass
class Demand:
    """Households to cover, grouped by origin and speed class: origin index, threshold (m), weight, households."""

    origin: np.ndarray
    threshold_m: np.ndarray
    weight: np.ndarray
    households: np.ndarray


@dataclass
class SitePlan:
    """The chosen sites and the quality of the answer."""

    sites: np.ndarray  # candidate indices, in the order chosen
    covered_weight: float
    covered_households: int
    demand_weight: float
    demand_households: int
    method: str  # "exact" or "greedy"
    upper_bound: float  # the optimum is at most this
    marginal_weight: list = field(default_factory=list)  # weight each site adds, in order
    marginal_households: list = field(default_factory=list)
    seconds: float = 0.0


def demand_for(model: ReachModel, category: str, *, origin_of: np.ndarray, elderly_alone: np.ndarray,
               special: np.ndarray, special_weight: float = SPECIAL_WEIGHT) -> Demand:
    """Households missing ``category`` within its tier, grouped into (origin, speed) demand points."""
    cat = model.config.category(category)
    speeds = model.config.speeds
    use_elderly = elderly_alone | cat.elderly
    speed = np.where(use_elderly, speeds["elderly"], speeds["general"])
    threshold = cat.tier * 60.0 * speed
    dist = np.full(len(origin_of), np.inf)
    ok = origin_of >= 0
    dist[ok] = model.origin_dist[category][origin_of[ok]]
    missing = ok & (dist > threshold)
    frame = pd.DataFrame({"origin": origin_of[missing], "threshold": threshold[missing],
                          "weight": 1.0 + special_weight * special[missing], "n": 1})
    grouped = frame.groupby(["origin", "threshold"], sort=True).sum().reset_index()
    return Demand(origin=grouped["origin"].to_numpy(np.int64), threshold_m=grouped["threshold"].to_numpy(float),
                  weight=grouped["weight"].to_numpy(float), households=grouped["n"].to_numpy(np.int64))


def coverage_matrix(model: ReachModel, demand: Demand, cx: np.ndarray, cy: np.ndarray) -> sp.csr_matrix:
    """Sparse candidates × demand matrix: True where the walk is within the demand point's threshold."""
    n_c, n_d = len(cx), len(demand.origin)
    if n_c == 0 or n_d == 0:
        return sp.csr_matrix((n_c, n_d), dtype=bool)
    limit = float(demand.threshold_m.max())
    if model.method == METHOD_ESTIMATE:
        from scipy.spatial import cKDTree

        ox, oy = model.origins.x[demand.origin], model.origins.y[demand.origin]
        tree = cKDTree(np.column_stack([ox, oy]))
        pairs = tree.query_ball_point(np.column_stack([cx, cy]), r=limit / model.config.detour_factor)
        rows = np.repeat(np.arange(n_c), [len(p) for p in pairs])
        cols = np.fromiter((i for p in pairs for i in p), dtype=np.int64, count=len(rows))
        d = np.hypot(cx[rows] - ox[cols], cy[rows] - oy[cols]) * model.config.detour_factor
        keep = d <= demand.threshold_m[cols]
        return sp.csr_matrix((np.ones(int(keep.sum()), bool), (rows[keep], cols[keep])), shape=(n_c, n_d))
    g = model.graph
    att = attach_points(g, cx, cy, max_distance=model.settings.max_attach_m)
    # the entries of the demand origins
    entry_mask = np.isin(model.origins.entry_origin, demand.origin)
    entries = np.flatnonzero(entry_mask & (model.entry_att.segment >= 0))
    e_origin = model.origins.entry_origin[entries]
    e_seg = model.entry_att.segment[entries]
    e_along = model.entry_att.along[entries]
    e_fixed = model.entry_att.off[entries] + model.origins.entry_extra[entries]
    demand_of_origin = pd.Series(np.arange(n_d)).groupby(demand.origin).apply(np.asarray)
    rows, cols = [], []
    ok = np.flatnonzero(att.segment >= 0)
    for start in range(0, len(ok), _CHUNK):
        chunk = ok[start:start + _CHUNK]
        s = att.segment[chunk]
        ends = np.r_[g.u[s], g.v[s]]
        cost = np.r_[att.off[chunk] + att.along[chunk], att.off[chunk] + g.length[s] - att.along[chunk]]
        d = dijkstra(g.matrix, directed=False, indices=ends, limit=limit) + cost[:, None]
        k = len(chunk)
        node_d = np.minimum(d[:k], d[k:])  # candidates × nodes
        via = np.minimum(node_d[:, g.u[e_seg]] + e_along, node_d[:, g.v[e_seg]] + g.length[e_seg] - e_along) + e_fixed
        # a candidate on the entry's own segment walks straight along it
        same = s[:, None] == e_seg[None, :]
        if same.any():
            direct = np.abs(att.along[chunk][:, None] - e_along[None, :]) + att.off[chunk][:, None] + e_fixed[None, :]
            via = np.where(same, np.minimum(via, direct), via)
        best = pd.DataFrame(via.T).groupby(e_origin).min()  # origins × candidates
        for j in range(k):
            col = best[j].to_numpy()
            hit_origins = best.index.to_numpy()[col <= limit]
            if len(hit_origins) == 0:
                continue
            dem = np.concatenate(demand_of_origin.reindex(hit_origins).to_numpy())
            dist_of = pd.Series(col, index=best.index).reindex(demand.origin[dem]).to_numpy()
            within = dem[dist_of <= demand.threshold_m[dem]]
            rows.append(np.full(len(within), chunk[j]))
            cols.append(within)
    if not rows:
        return sp.csr_matrix((n_c, n_d), dtype=bool)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), bool), (r, c)), shape=(n_c, n_d))


def _merge_alike_demand(cover: sp.csr_matrix, weight: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Demand points covered by exactly the same candidates are one point with the summed weight (and points no
    candidate covers are dropped): the same optimum, a smaller problem. Exact: a hash collision is detected
    and then nothing is merged."""
    n_c, n_d = cover.shape
    if n_d == 0:
        return cover, weight
    rng = np.random.default_rng(12345)
    cols = cover.T.tocsr().astype(float)
    key = np.round(np.column_stack([cols @ rng.random(n_c), cols @ rng.random(n_c), np.diff(cols.indptr)]), 9)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    merged = cover[:, first]
    if (merged[:, inverse] != cover).nnz:  # a collision: keep the problem as it is
        return cover, weight
    w = np.bincount(inverse, weights=weight, minlength=len(first))
    keep = np.diff(merged.tocsc().indptr) > 0
    return merged[:, keep].tocsr(), w[keep]


def _greedy(cover: sp.csr_matrix, weight: np.ndarray, k: int) -> tuple[list, list, np.ndarray]:
    left = weight.astype(float).copy()
    chosen, gains = [], []
    a = cover.astype(float).tocsr()
    for _ in range(min(k, a.shape[0])):
        gain = a @ left
        if chosen:
            gain[chosen] = -1
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        chosen.append(j)
        gains.append(float(gain[j]))
        left[a[j].indices] = 0.0
    return chosen, gains, left


def propose_sites(model: ReachModel, category: str, k: int, *, demand: Demand, candidates: tuple[np.ndarray, np.ndarray],
                  exact_max_pairs: int = EXACT_MAX_PAIRS, time_limit_s: float = 60.0,
                  cover: sp.csr_matrix | None = None) -> SitePlan:
    """Choose ``k`` candidates covering the most demand weight (exact when small, else greedy with a bound)."""
    import time

    t0 = time.perf_counter()
    if k < 1:
        raise ValueError("k must be at least 1")
    cx, cy = candidates
    cover = coverage_matrix(model, demand, cx, cy) if cover is None else cover
    plan = solve_max_cover(cover, demand.weight, k, exact_max_pairs=exact_max_pairs, time_limit_s=time_limit_s)
    plan.demand_households = int(demand.households.sum())
    covered = np.zeros(cover.shape[1], bool)
    plan.marginal_households = []
    for j in plan.sites:
        new = np.setdiff1d(cover[j].indices, np.flatnonzero(covered))
        plan.marginal_households.append(int(demand.households[new].sum()))
        covered[cover[j].indices] = True
    plan.covered_households = int(demand.households[covered].sum())
    plan.seconds = time.perf_counter() - t0
    return plan


def solve_max_cover(cover: sp.csr_matrix, weight: np.ndarray, k: int, *, exact_max_pairs: int = EXACT_MAX_PAIRS,
                    time_limit_s: float = 60.0) -> SitePlan:
    """The maximal covering location problem on a candidates × demand matrix."""
    cover = cover.tocsr().astype(bool)
    full_weight = float(weight.sum())
    cover, weight = _merge_alike_demand(cover, weight)
    n_c, n_d = cover.shape
    useful = np.flatnonzero(np.diff(cover.indptr) > 0)
    greedy_sites, greedy_gains, left = _greedy(cover, weight, k)
    greedy_value = float(sum(greedy_gains))
    # Leskovec et al.: OPT <= f(S) + sum of the k largest marginal gains w.r.t. S
    remaining = np.sort(cover.astype(float) @ left)[::-1][:k]
    bound = greedy_value + float(remaining.sum())
    plan = SitePlan(sites=np.array(greedy_sites, dtype=np.int64), covered_weight=greedy_value, covered_households=0,
                    demand_weight=full_weight, demand_households=0, method="greedy",
                    upper_bound=min(bound, float(weight.sum())), marginal_weight=greedy_gains)
    if cover.nnz == 0 or cover.nnz > exact_max_pairs or len(useful) <= k:
        if len(useful) <= k and cover.nnz:
            plan.method = "exact"  # every useful candidate fits: greedy takes them all, which is optimal
            plan.upper_bound = plan.covered_weight
        return plan
    # a better incumbent: 1-swap local search from the greedy answer
    swapped = _swap_search(cover, weight, list(greedy_sites))
    swapped_value = float(weight[np.asarray(cover[swapped].sum(axis=0)).ravel() > 0].sum()) if swapped else 0.0
    sub = cover[useful]  # only candidates that cover something
    m = len(useful)
    # variables: x (m candidates, binary), y (n_d demand, continuous 0..1)
    c = np.r_[np.zeros(m), -weight.astype(float)]
    a_cover = sp.hstack([-sub.T.astype(float), sp.identity(n_d, format="csr")], format="csr")  # y_i - sum x_j <= 0
    a_k = sp.csr_matrix(np.r_[np.ones(m), np.zeros(n_d)][None, :])
    # the LP relaxation bounds the optimum; when its answer is integral (common for covering problems) or the
    # local search reaches its bound, that answer is optimal and no branch-and-bound is needed
    lp = linprog(c, A_ub=a_cover, b_ub=np.zeros(n_d), A_eq=a_k, b_eq=[k], bounds=(0, 1), method="highs-ipm")
    if lp.status == 0:
        lp_bound = float(-lp.fun)
        xs = lp.x[:m]
        if np.all((xs < 1e-6) | (xs > 1 - 1e-6)):
            res = lp
            res.status = 0
        elif swapped_value >= lp_bound - 1e-6:
            return _ordered_plan(cover, weight, swapped, swapped_value, lp_bound, full_weight, "exact")
        else:
            res = None
    else:
        res = None
    if res is None:
        constraints = [LinearConstraint(a_cover, -np.inf, 0.0), LinearConstraint(a_k, k, k)]
        res = milp(c, constraints=constraints, integrality=np.r_[np.ones(m), np.zeros(n_d)],
                   bounds=Bounds(np.zeros(m + n_d), np.ones(m + n_d)),
                   options={"time_limit": time_limit_s, "mip_rel_gap": 0.0})
    if res.x is None:
        if swapped_value > greedy_value:
            return _ordered_plan(cover, weight, swapped, swapped_value, plan.upper_bound, full_weight, "greedy")
        return plan
    x = res.x[:m] > 0.5
    value = float(-res.fun)
    if value + 1e-9 < max(greedy_value, swapped_value):
        best = swapped if swapped_value >= greedy_value else list(greedy_sites)
        return _ordered_plan(cover, weight, best, max(greedy_value, swapped_value), plan.upper_bound, full_weight, "greedy")
    optimal = res.status == 0
    dual = getattr(res, "mip_dual_bound", None)
    upper = value if optimal else (float(-dual) if dual is not None and np.isfinite(dual) else plan.upper_bound)
    return _ordered_plan(cover, weight, list(useful[x]), value, upper, full_weight,
                         "exact" if optimal else "exact_time_limit")


def _ordered_plan(cover: sp.csr_matrix, weight: np.ndarray, sites: list, value: float, upper: float, full_weight: float,
                  method: str) -> SitePlan:
    """A plan whose sites are listed by the weight each adds to those before it (for the report)."""
    order, gains, left = [], [], weight.astype(float).copy()
    pool = list(sites)
    while pool:  # one step per site (k is small)
        g = [float(left[cover[j].indices].sum()) for j in pool]
        best = int(np.argmax(g))
        j = pool.pop(best)
        order.append(j)
        gains.append(g[best])
        left[cover[j].indices] = 0.0
    return SitePlan(sites=np.array(order, dtype=np.int64), covered_weight=value, covered_households=0,
                    demand_weight=full_weight, demand_households=0, method=method, upper_bound=upper,
                    marginal_weight=gains)


def _swap_search(cover: sp.csr_matrix, weight: np.ndarray, sites: list, *, max_rounds: int = 100) -> list:
    """Improve a set of sites by exchanging one chosen site for one other while that gains weight."""
    if not sites:
        return sites
    sites = list(sites)
    a = cover.astype(float).tocsr()
    for _ in range(max_rounds):  # each round scans every chosen site against every candidate at once
        count = np.asarray(cover[sites].astype(np.int32).sum(axis=0)).ravel()
        add_gain = a @ ((count == 0) * weight)
        best_delta, best_pos, best_new = 1e-9, -1, -1
        for pos, j in enumerate(sites):
            only_j = (count == 1) & (np.asarray(cover[j].todense()).ravel())
            loss = float(weight[only_j].sum())
            gain = add_gain + a @ (only_j * weight)
            gain[sites] = -np.inf
            cand = int(np.argmax(gain))
            if gain[cand] - loss > best_delta:
                best_delta, best_pos, best_new = gain[cand] - loss, pos, cand
        if best_pos < 0:
            break
        sites[best_pos] = best_new
    return sites

def site_effect(newly: np.ndarray, reach: pd.DataFrame, config, *, category: str, changes: pd.DataFrame,
                weights: tuple[float, float]) -> dict:
    """Why a site that brings households within reach changes the scorecard and the blind spots, or not.

    The scorecard counts a household for basic services only when it reaches *every* basic category within
    its tier, and blind spots are made by lapses of care (no grid, overlapping grids, overdue visits,
    unregistered buildings), which a service changes only through the colour of special-group households
    (yellow when out of reach of their services). So the answer names how many of the newly reached
    households now reach the whole basic set, which basic categories the others still miss, and how the
    blind spots' weight moved.

    Examples
    --------
    >>> from geo.reach import load_config
    >>> reach = pd.DataFrame({f"within_{c}": [True, True] for c in load_config().ids})
    >>> reach["within_kindergarten"] = [False, True]
    >>> reach["basic_complete"] = [False, True]
    >>> why = site_effect(np.array([True, True]), reach, load_config(), category="shop",
    ...                   changes=pd.DataFrame({"indicator": ["basic_services"]}), weights=(30.0, 27.0))
    >>> why["households_now_basic_complete"], why["still_missing"]
    (1, [{'category': 'kindergarten', 'households': 1}])
    >>> why["explanation_en"]
    '1 of the 2 households now within reach of shop reach the whole basic set; the others still miss kindergarten (1); blind-spot weight 30 -> 27; changed: basic_services'
    """
    n = int(newly.sum())
    complete = int((newly & reach["basic_complete"].to_numpy(bool)).sum())
    missing = []
    for cat in config.categories:
        if cat.basic and cat.id != category:
            k = int((newly & ~reach[f"within_{cat.id}"].to_numpy(bool)).sum())
            if k:
                missing.append({"category": cat.id, "households": k})
    missing = sorted(missing, key=lambda m: -m["households"])[:3]
    names = {c.id: c.name_zh for c in config.categories}
    miss_en = ", ".join(f"{m['category']} ({m['households']:,})" for m in missing)
    miss_zh = "、".join(f"{names[m['category']]}（{m['households']:,}户）" for m in missing)
    indicators = list(dict.fromkeys(changes["indicator"].astype(str))) if len(changes) else []
    before, after = weights
    en = (f"{complete:,} of the {n:,} households now within reach of {category} reach the whole basic set"
          + (f"; the others still miss {miss_en}" if missing and complete < n else "")
          + f"; blind-spot weight {before:,.0f} -> {after:,.0f}"
          + (f"; changed: {', '.join(indicators)}" if indicators else "; no scorecard indicator changed"))
    zh = (f"新覆盖的 {n:,} 户中 {complete:,} 户补齐全部基本服务"
          + (f"；其余仍缺 {miss_zh}" if missing and complete < n else "")
          + f"；盲区权重 {before:,.0f} → {after:,.0f}"
          + (f"；变化指标：{'、'.join(indicators)}" if indicators else "；记分卡指标无变化"))
    return {"households_now_basic_complete": complete, "still_missing": missing, "explanation": zh,
            "explanation_en": en}


def find_category(config: ReachConfig, name: str) -> Category:
    """The facility category a user means: its id, its Chinese or English name (``categories.toml``'s
    ``name_zh``/``name_en``, or a part of one split at "/": 助餐点), else the one category whose name holds it
    (日间照料中心 is 老年人日间照料中心).

    Parameters
    ----------
    config
        The categories (:func:`geo.reach.load_config`).
    name
        What the user typed.

    Returns
    -------
    Category

    Raises
    ------
    ConfigError
        Naming the candidates when several categories fit, or every category (id and Chinese name) when none does.

    Examples
    --------
    >>> from geo.reach import load_config
    >>> config = load_config()
    >>> find_category(config, "养老院").id, find_category(config, "日间照料中心").id, find_category(config, "助餐点").id
    ('nursing_home', 'elderly_daycare', 'canteen')
    """
    text = str(name).strip()
    folded = text.casefold()
    cats = config.categories
    for fits in (lambda c: c.id == text,
                 lambda c: folded in (c.name_zh.casefold(), c.name_en.casefold(),
                                      *(p.strip().casefold() for p in c.name_zh.split("/"))),
                 lambda c: folded in c.name_zh.casefold() or folded in c.name_en.casefold()):
        hits = [c for c in cats if fits(c)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            listed = ", ".join(f"{c.id} ({c.name_zh})" for c in hits)
            raise ConfigError(f"facility category {text!r} fits {len(hits)} categories: {listed}; give one of them")
    known = ", ".join(f"{c.id} ({c.name_zh})" for c in cats)
    raise ConfigError(f"unknown facility category {text!r} (known: {known})")


def describe_sites(rows: pd.DataFrame, *, metric_crs, buildings: pd.DataFrame | None = None,
                   estates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chosen sites as a person reads them: WGS-84 ``lon``/``lat`` instead of metric x/y, and where a site is a
    building, its ``building_name``, ``address`` and ``estate_id``/``estate_name``.

    Parameters
    ----------
    rows
        The sites of :func:`plan_sites` (``candidate`` ids, metric ``x``, ``y``).
    metric_crs
        The CRS of ``x``, ``y``.
    buildings, estates
        The layers (``id``, ``name``, ``address``, ``estate_id``; ``id``, ``name``), optional.

    Returns
    -------
    pandas.DataFrame
        ``rows`` without ``x``/``y``, with ``lon``, ``lat`` (8 decimals) and the names after ``candidate``.

    Examples
    --------
    >>> rows = pd.DataFrame({"order": [1], "candidate": ["B1"], "x": [500000.0], "y": [3390000.0]})
    >>> b = pd.DataFrame({"id": ["B1"], "name": ["3栋"], "address": ["东华门街83号 宏翠府 3栋"], "estate_id": ["E1"]})
    >>> e = pd.DataFrame({"id": ["E1"], "name": ["宏翠府"]})
    >>> describe_sites(rows, metric_crs=32648, buildings=b, estates=e).iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'order': 1, 'candidate': 'B1', 'building_name': '3栋', 'address': '东华门街83号 宏翠府 3栋', 'estate_id': 'E1',
     'estate_name': '宏翠府', 'lon': 105.0, 'lat': 30.64265295}
    """
    import pyproj

    out = rows.drop(columns=["x", "y"]).copy()
    ids = out["candidate"].astype(str)
    b = _attributes(buildings, ("name", "address", "estate_id")).rename(columns={"name": "building_name"})
    e = _attributes(estates, ("name",)).rename(columns={"name": "estate_name"})
    pos = pd.Index(b["id"]).get_indexer(ids)
    for column in ("building_name", "address", "estate_id"):
        out[column] = np.where(pos >= 0, b[column].to_numpy(dtype=object)[np.maximum(pos, 0)], None) if len(b) \
            else None
    e_pos = pd.Index(e["id"]).get_indexer(out["estate_id"].astype(str))
    out["estate_name"] = np.where(e_pos >= 0, e["estate_name"].to_numpy(dtype=object)[np.maximum(e_pos, 0)], None) \
        if len(e) else None
    lon, lat = pyproj.Transformer.from_crs(metric_crs, 4326, always_xy=True).transform(
        rows["x"].to_numpy(dtype=float), rows["y"].to_numpy(dtype=float))
    out["lon"], out["lat"] = np.round(lon, 8), np.round(lat, 8)
    first = ["order", "candidate", "building_name", "address", "estate_id", "estate_name", "lon", "lat"]
    return out[[c for c in first if c in out] + [c for c in out if c not in first]]


def _attributes(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame:
    """``id`` (text) and ``columns`` of a layer, ``None`` for a column it lacks or a missing value."""
    out = pd.DataFrame({"id": [] if frame is None else frame["id"].astype(str).to_numpy()})
    for c in columns:
        values = frame[c] if frame is not None and c in frame else pd.Series([None] * len(out), dtype=object)
        values = pd.Series(values.to_numpy(dtype=object), dtype=object)
        out[c] = values.where(values.notna(), None).to_numpy(dtype=object)
    return out


def default_candidates(analysis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate sites when none are given: the inside point of every building (a room to convert), else the
    intersections of the walking network. Returns ids, x, y (metric)."""
    import shapely

    buildings = analysis.data.layers.get("buildings")
    if buildings is not None and len(buildings):
        inner = shapely.point_on_surface(buildings.geometry.to_numpy())
        return buildings["id"].astype(str).to_numpy(), shapely.get_x(inner), shapely.get_y(inner)
    g = analysis.reach_model.graph
    if g is None:
        raise ValueError("no buildings and no roads: give candidate sites")
    degree = np.bincount(np.r_[g.u, g.v], minlength=g.n_nodes)
    nodes = np.flatnonzero(degree >= 3)
    return np.array([f"node-{i}" for i in nodes], dtype=object), g.x[nodes], g.y[nodes]


def plan_sites(analysis, category: str, k: int, *, candidates: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               special_weight: float = SPECIAL_WEIGHT, exact_max_pairs: int = EXACT_MAX_PAIRS) -> tuple[pd.DataFrame, dict]:
    """Propose ``k`` sites for ``category`` and say how each changes the blind spots and the scorecard.

    Adds the chosen sites to ``analysis.reach_model`` as what-if facilities, one after the other, and assesses
    the risk again after each. Returns one row per site (the candidate id, its building's name and address and
    its estate where it is a building, WGS-84 ``lon``/``lat``, the gains: :func:`describe_sites`) and a report
    dict whose ``sites`` are those rows.
    """
    from geo.lifecircle import household_reach
    from geo.pipeline import assess_risk

    model = analysis.reach_model
    ctx = analysis.risk_context
    hh = ctx.households
    elderly = hh["elderly_alone"].to_numpy(bool)
    special = (hh["elderly_alone"].to_numpy(bool) | hh["child_in_difficulty"].to_numpy(bool)
               | hh["mental_disorder"].to_numpy(bool))
    demand = demand_for(model, category, origin_of=ctx.origin_of, elderly_alone=elderly, special=special,
                        special_weight=special_weight)
    ids, cx, cy = candidates if candidates is not None else default_candidates(analysis)
    plan = propose_sites(model, category, k, demand=demand, candidates=(cx, cy), exact_max_pairs=exact_max_pairs)

    reach0 = household_reach(model, ctx.origin_of, elderly)
    risk0, spots0, card0 = assess_risk(ctx, reach0)
    before = (reach0, risk0, spots0, card0)
    rows = []
    for order, j in enumerate(plan.sites, start=1):
        model.add_facility(category, float(cx[j]), float(cy[j]), facility_id=f"proposed-{category}-{order}")
        reach1 = household_reach(model, ctx.origin_of, elderly)
        risk1, spots1, card1 = assess_risk(ctx, reach1)
        r0, k0, s0, c0 = before
        newly = reach1[f"within_{category}"].to_numpy(bool) & ~r0[f"within_{category}"].to_numpy(bool)
        merged = c0.merge(card1, on=["level", "id", "indicator"], suffixes=("_before", "_after"))
        changed = merged[merged["value_before"].fillna(-1) != merged["value_after"].fillna(-1)]
        why = site_effect(newly, reach1, model.config, category=category, changes=changed,
                          weights=(float(s0["weight"].sum()) if len(s0) else 0.0,
                                   float(spots1["weight"].sum()) if len(spots1) else 0.0))
        rows.append({
            **why,
            "order": order, "candidate": str(ids[j]), "x": float(cx[j]), "y": float(cy[j]),
            "weight_gained": round(plan.marginal_weight[order - 1], 1),
            "households_now_within_tier": int(newly.sum()),
            "special_group_members_now_within_tier": int((newly & special).sum()),
            "red_before": int((k0["risk"] == "red").sum()), "red_after": int((risk1["risk"] == "red").sum()),
            "yellow_before": int((k0["risk"] == "yellow").sum()), "yellow_after": int((risk1["risk"] == "yellow").sum()),
            "blind_spots_before": int(len(s0)), "blind_spots_after": int(len(s1 := spots1)),
            "blind_spot_weight_before": float(s0["weight"].sum()) if len(s0) else 0.0,
            "blind_spot_weight_after": float(s1["weight"].sum()) if len(s1) else 0.0,
            "scorecard_changes": [
                {"level": r.level, "id": r.id, "indicator": r.indicator, "before": r.value_before, "after": r.value_after,
                 "pass_before": r.pass_before, "pass_after": r.pass_after}
                for r in changed.itertuples(index=False)  # one per changed indicator row, not per household
            ],
        })
        before = (reach1, risk1, spots1, card1)
    layers = analysis.data.layers
    sites = describe_sites(pd.DataFrame(rows, columns=list(rows[0]) if rows else ["order", "candidate", "x", "y"]),
                           metric_crs=analysis.data.metric_crs, buildings=layers.get("buildings"),
                           estates=layers.get("estates"))
    rows = sites.astype(object).where(sites.notna(), None).to_dict("records")
    report = {"category": category, "k": k, "method": plan.method, "candidates": int(len(cx)),
              "demand_households": plan.demand_households, "demand_weight": round(plan.demand_weight, 1),
              "covered_households": plan.covered_households, "covered_weight": round(plan.covered_weight, 1),
              "upper_bound_weight": round(plan.upper_bound, 1),
              "quality": round(plan.covered_weight / plan.upper_bound, 4) if plan.upper_bound else 1.0,
              "seconds": round(plan.seconds, 3), "special_weight": special_weight, "sites": rows}
    return sites, report
