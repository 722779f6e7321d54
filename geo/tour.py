"""The walking route of a visit list (走访路线): a round tour from a start through every stop and back.

Distances are walks over the walking network of :mod:`geo.network` (the graph the reach module builds):
each place joins the network at its entries (a building its nearest street, a building of a gated estate
each gate of its estate, after a straight walk inside, as :func:`geo.lifecircle.household_origins` makes
them), and two places behind the same gate walk straight to each other inside their estate. One Dijkstra
per entry of the start and the stops (scipy's C implementation, never from every node) gives the place ×
place matrix; OR-Tools' routing solver orders the stops (first solution by the cheapest arc from the
current end of the path, ``PATH_CHEAPEST_ARC``, then its local search to a local optimum), and the tour is
measured against a lower bound: the exact optimum (Held–Karp dynamic programming) up to
:data:`EXACT_STOPS` stops, else the Held–Karp 1-tree bound (a minimum spanning tree of the stops plus the
start's two shortest edges, with node penalties raised by subgradient steps). Only a tour short of the
optimum, or farther than ``accept_gap`` from the 1-tree bound, goes on to guided local search for
``time_limit_s``; up to :data:`EXACT_STOPS` stops the exact tour is kept if the solver still misses it.

A stop that no walk reaches (farther than ``max_attach_m`` from every walkable road, or on a piece of
network not joined to the start's) is reported in :attr:`Tour.unreachable` with its reason, never dropped.
Stops with the same id (several households of one building) are one stop.

Example (see :func:`walking_tour` for one that runs)::

    tour = walking_tour(graph, stops, start=(x0, y0), stop_ids=building_ids, crs=metric_crs)
    tour.order, tour.total_min, tour.gap
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree

from geo.network import NetworkSettings, WalkGraph, attach_points, insert_nodes
from geo.reach import Origins, ReachConfig, load_config

#: Up to this many stops the bound is the exact optimum (Held–Karp: 2^12 × 12 states, milliseconds).
EXACT_STOPS = 12
#: The solver's default time limit (seconds): guided local search always runs until it.
DEFAULT_TIME_LIMIT_S = 0.1
#: A first tour this close to the 1-tree bound is kept without guided local search.
DEFAULT_ACCEPT_GAP = 0.005
#: Entries searched from at once (memory: this many rows of the node count).
_CHUNK = 32
#: The solver works in whole decimetres.
_SCALE = 10
#: Why a stop is not on the tour.
UNREACHABLE_REASONS = {
    "not_on_network": "farther than max_attach_m from every walkable road",
    "cut_off": "on a piece of the walking network not joined to the start's",
    "start_not_on_network": "the start is farther than max_attach_m from every walkable road",
}


@dataclass(frozen=True)
class Tour:
    """A round walk start → stops → start and how it was found.

    ``stops`` has one row per distinct stop (``stop_id``, ``x``, ``y`` metric, ``visit``: its place in the
    walking order from 1, 0 when unreachable, ``reason``); ``legs`` one row per leg (``leg`` from 1,
    ``from_id``, ``to_id``, ``metres``, ``minutes``, a line in the graph's CRS; the start's id is
    ``"start"``); ``visit_of`` the visit number of each stop row given (0: unreachable).
    """

    order: np.ndarray
    stops: pd.DataFrame
    legs: gpd.GeoDataFrame
    visit_of: np.ndarray
    total_m: float
    total_min: float
    bound_m: float
    bound: str  # "exact", "held_karp_1tree" or "none" (no stop reached)
    gap: float  # (total − bound) / bound, 0 when the tour is optimal or empty
    solver: str  # "ortools", "ortools_gls", "held_karp" (the exact tour was shorter) or "trivial" (≤ 2 stops)
    speed_m_s: float

    @property
    def unreachable(self) -> pd.DataFrame:
        """The stops not on the tour and why (``stop_id``, ``reason``)."""
        return self.stops.loc[self.stops["visit"] == 0, ["stop_id", "reason"]].reset_index(drop=True)

    def legs_wgs84(self) -> gpd.GeoDataFrame:
        """The legs in WGS84 (longitude, latitude) for a map."""
        if self.legs.crs is None:
            raise ValueError("the tour's legs have no CRS: pass crs= to walking_tour")
        return self.legs.to_crs("EPSG:4326")


def walking_tour(graph: WalkGraph, stops: Origins | np.ndarray, *, start: int | tuple[float, float] | Origins,
                 stop_ids: np.ndarray | None = None, crs=None, pace: str = "general",
                 config: ReachConfig | None = None, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 accept_gap: float = DEFAULT_ACCEPT_GAP, settings: NetworkSettings = NetworkSettings()) -> Tour:
    """The round walking tour from ``start`` through every reachable stop and back.

    Parameters
    ----------
    graph
        The walking network (:func:`geo.network.walking_graph`, metric CRS).
    start
        A node of ``graph``, a point ``(x, y)`` to join to the network, or a one-place :class:`Origins`
        (a station inside a gated estate leaves by its gates).
    stops
        Places to visit (:class:`Origins`, e.g. buildings from :func:`geo.lifecircle.household_origins`) or
        node numbers of ``graph``.
    stop_ids
        One id per stop row; rows with the same id are one stop (its first row's place). Default: rows at
        the same point are one stop.
    crs
        The graph's CRS, given to the legs (needed for :meth:`Tour.legs_wgs84`).
    pace
        The walking speed of ``config.speeds`` the minutes are at (``"general"`` or ``"elderly"``).
    time_limit_s
        How long guided local search may improve the order.
    accept_gap
        The first tour (OR-Tools' local search to a local optimum) is kept when it is within this fraction
        of the bound (the exact optimum up to :data:`EXACT_STOPS` stops: then only the optimum is kept);
        otherwise guided local search runs for ``time_limit_s``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from geo.network import walking_graph
    >>> roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (300, 0)]),
    ...                                    shapely.LineString([(300, 0), (300, 200)])])
    >>> stops = Origins.simple(np.array([300.0, 300.0]), np.array([0.0, 200.0]))
    >>> tour = walking_tour(walking_graph(roads), stops, start=(0, 0), stop_ids=np.array(["b1", "b2"]))
    >>> tour.order.tolist(), round(tour.total_m), tour.gap
    (['b1', 'b2'], 1000, 0.0)
    """
    config = config if config is not None else load_config()
    speed = float(config.speeds[pace])
    start_places = _as_origins(graph, start)
    if len(start_places) != 1:
        raise ValueError(f"the start must be one place, got {len(start_places)}")
    rows = _as_origins(graph, stops)
    key, first, visit_row = _group_stops(_stop_keys(rows, stop_ids))
    places = _concat(start_places, _take(rows, first))
    matrix, direct, entry_pick = _place_matrix(graph, places, settings)
    n_stops = len(first)
    reachable = np.isfinite(matrix[0, 1:])
    reason = _reasons(graph, places, entry_pick["attached_place"], reachable)
    sub = np.r_[0, 1 + np.flatnonzero(reachable)]
    d = matrix[np.ix_(sub, sub)]
    order_local, length, bound, bound_kind, solver = _solve_order(d, time_limit_s=time_limit_s,
                                                                  accept_gap=accept_gap)
    gap = 0.0 if bound <= 0 else max(0.0, (length - bound) / bound)
    path = sub[order_local]  # place numbers, starting at the start (0)
    visit = np.zeros(n_stops, dtype=np.int64)
    visit[path[1:] - 1] = np.arange(1, len(path))
    labels = np.r_[np.array(["start"], dtype=object), key.astype(object)]
    legs = _legs(entry_pick["graph"], entry_pick["leaf"], places, matrix, direct, path, labels, speed, crs)
    stops_frame = pd.DataFrame({"stop_id": key, "x": places.x[1:], "y": places.y[1:], "visit": visit,
                                "reason": reason})
    return Tour(order=key[path[1:] - 1], stops=stops_frame, legs=legs, visit_of=visit[visit_row],
                total_m=float(length), total_min=float(length / speed / 60.0), bound_m=float(bound),
                bound=bound_kind, gap=float(gap), solver=solver, speed_m_s=speed)


def _group_stops(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct stop ids in the order first given, each one's first row, and each row's stop number."""
    key, first, visit_row = np.unique(ids, return_index=True, return_inverse=True)
    # keep the stops in the order they were first given
    by_given = np.argsort(first, kind="stable")
    rank = np.empty_like(by_given)
    rank[by_given] = np.arange(len(by_given))
    return key[by_given], first[by_given], rank[visit_row.ravel()]


def _solve_order(d: np.ndarray, *, time_limit_s: float, accept_gap: float) -> tuple[np.ndarray, float, float, str, str]:
    """The tour order over the distance matrix ``d`` (place 0 the start), its length, the bound, its kind and
    the solver that found the order.

    First OR-Tools' local search to a local optimum (milliseconds); guided local search only when that tour is
    farther than ``accept_gap`` from the bound; up to :data:`EXACT_STOPS` stops only the exact optimum is kept.
    """
    order_local, solver = order_stops(d, time_limit_s=time_limit_s, guided=False)
    length = _tour_length(d, order_local)
    bound_kind, bound, exact_order = "none", 0.0, None
    if len(d) > 1:
        if len(d) - 1 <= EXACT_STOPS:
            bound_kind, (bound, exact_order) = "exact", held_karp(d)
        else:
            bound_kind, bound = "held_karp_1tree", one_tree_bound(d, upper=length)
        if length > bound * (1 + accept_gap) + 1e-6 and solver == "ortools":
            target = bound if bound_kind == "exact" else bound * (1 + accept_gap)
            order_gls, solver_gls = order_stops(d, time_limit_s=time_limit_s, guided=True, target_m=target)
            if _tour_length(d, order_gls) < length - 1e-9:
                order_local, solver, length = order_gls, solver_gls, _tour_length(d, order_gls)
            if bound_kind == "held_karp_1tree":  # a shorter tour steers the subgradient steps better
                bound = max(bound, one_tree_bound(d, upper=length))
        if exact_order is not None and length > bound + 1e-6:  # short of the optimum: keep the exact tour
            order_local, length, solver = exact_order, bound, "held_karp"
    return order_local, length, bound, bound_kind, solver


# ---- places and their distances ---------------------------------------------------------------------------
def place_matrix(graph: WalkGraph, places: Origins, *, settings: NetworkSettings = NetworkSettings()) -> np.ndarray:
    """Walking metres between every two places (inf: no walk joins them), as :func:`walking_tour` measures
    them: the best pair of their entries over the network, or straight inside an estate they share.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from geo.network import walking_graph
    >>> graph = walking_graph(gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (300, 0)])]))
    >>> place_matrix(graph, Origins.simple(np.array([0.0, 300.0, 100.0]), np.array([0.0, 0.0, 900.0])))[:2]
    array([[  0., 300.,  inf],
           [300.,   0.,  inf]])
    """
    return _place_matrix(graph, places, settings)[0]


def _as_origins(graph: WalkGraph, where) -> Origins:
    if isinstance(where, Origins):
        return where
    if isinstance(where, tuple):
        return Origins.simple(np.array([float(where[0])]), np.array([float(where[1])]))
    nodes = np.atleast_1d(np.asarray(where, dtype=np.int64))
    bad = (nodes < 0) | (nodes >= graph.n_nodes)
    if bad.any():
        msg = f"node {int(nodes[bad][0])} is not a node of the walking network (0 … {graph.n_nodes - 1})"
        raise ValueError(msg)
    return Origins.simple(graph.x[nodes].astype(float), graph.y[nodes].astype(float))


def _stop_keys(rows: Origins, stop_ids) -> np.ndarray:
    if stop_ids is not None:
        ids = np.asarray(stop_ids).astype(str)
        if len(ids) != len(rows):
            raise ValueError(f"stop_ids holds {len(ids)} ids for {len(rows)} stops")
        return ids
    return np.char.add(np.char.add(np.round(rows.x, 2).astype(str), ","), np.round(rows.y, 2).astype(str))


def _take(origins: Origins, which: np.ndarray) -> Origins:
    """The places ``which`` of ``origins`` (renumbered 0 … len(which)-1) with all their entries."""
    new_of = np.full(len(origins), -1, dtype=np.int64)
    new_of[which] = np.arange(len(which))
    keep = new_of[origins.entry_origin] >= 0
    return Origins(x=origins.x[which], y=origins.y[which], entry_origin=new_of[origins.entry_origin[keep]],
                   entry_x=origins.entry_x[keep], entry_y=origins.entry_y[keep], entry_extra=origins.entry_extra[keep])


def _concat(a: Origins, b: Origins) -> Origins:
    return Origins(x=np.r_[a.x, b.x], y=np.r_[a.y, b.y], entry_origin=np.r_[a.entry_origin, b.entry_origin + len(a)],
                   entry_x=np.r_[a.entry_x, b.entry_x], entry_y=np.r_[a.entry_y, b.entry_y],
                   entry_extra=np.r_[a.entry_extra, b.entry_extra])


def _entry_distances(g: WalkGraph, leaf: np.ndarray) -> np.ndarray:
    """Network metres between every two entries (inf: not attached or not joined), one Dijkstra per
    attached entry, in chunks so memory stays at ``_CHUNK`` rows of the node count."""
    n = len(leaf)
    out = np.full((n, n), np.inf)
    on = np.flatnonzero(leaf >= 0)
    for lo in range(0, len(on), _CHUNK):
        rows = on[lo:lo + _CHUNK]
        dist = dijkstra(g.matrix, directed=False, indices=leaf[rows])
        out[np.ix_(rows, on)] = dist[:, leaf[on]]
    return out


def _place_matrix(graph: WalkGraph, places: Origins, settings: NetworkSettings):
    """Place × place metres (the best pair of entries, or the straight walk inside a shared estate), which
    pairs walk straight, and the entry graph with each place's attachment."""
    att = attach_points(graph, places.entry_x, places.entry_y, max_distance=settings.max_attach_m)
    g, leaf = insert_nodes(graph, att)
    e = _entry_distances(g, leaf) + places.entry_extra[:, None] + places.entry_extra[None, :]
    n = len(places)
    order = np.argsort(places.entry_origin, kind="stable")
    owner = places.entry_origin[order]
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    m = np.full((n, n), np.inf)
    if len(order):
        e = e[np.ix_(order, order)]
        reduced = np.minimum.reduceat(np.minimum.reduceat(e, starts, axis=0), starts, axis=1)
        m[np.ix_(owner[starts], owner[starts])] = reduced
    # places behind one gate are in one estate: they may walk straight to each other inside it
    gated = places.entry_extra > 0
    gate_key = pd.factorize(pd.Series(np.round(places.entry_x[gated], 2)).astype(str) + ","
                            + pd.Series(np.round(places.entry_y[gated], 2)).astype(str))[0]
    inside = sp.csr_matrix((np.ones(int(gated.sum())), (places.entry_origin[gated], gate_key)),
                           shape=(n, int(gate_key.max()) + 1 if len(gate_key) else 0))
    shared = (inside @ inside.T).toarray() > 0
    straight = np.hypot(places.x[:, None] - places.x[None, :], places.y[:, None] - places.y[None, :])
    direct = shared & (straight < m)
    m = np.where(direct, straight, m)
    np.fill_diagonal(m, 0.0)
    attached_place = np.zeros(n, bool)
    attached_place[places.entry_origin[leaf >= 0]] = True
    return m, direct, {"graph": g, "leaf": leaf, "attached_place": attached_place}


def _reasons(graph: WalkGraph, places: Origins, attached: np.ndarray, reachable: np.ndarray) -> np.ndarray:
    reason = np.full(len(reachable), "", dtype=object)
    if not attached[0]:
        reason[~reachable] = "start_not_on_network"
        return reason
    reason[~reachable & ~attached[1:]] = "not_on_network"
    reason[~reachable & attached[1:]] = "cut_off"
    return reason


# ---- the order and its bound -----------------------------------------------------------------------------
def _tour_length(matrix: np.ndarray, order: np.ndarray) -> float:
    if len(order) < 2:
        return 0.0
    return float(matrix[order, np.roll(order, -1)].sum())


def order_stops(matrix: np.ndarray, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, guided: bool = True,
                target_m: float | None = None) -> tuple[np.ndarray, str]:
    """The walking order of a round tour over a symmetric metres matrix whose place 0 is the start.

    OR-Tools' routing solver (one vehicle, depot 0): first solution ``PATH_CHEAPEST_ARC``, improved by
    ``GUIDED_LOCAL_SEARCH`` until ``time_limit_s`` (``guided=False``: by ``GREEDY_DESCENT``, local search
    to the first local optimum, within the same limit); costs in whole decimetres. Two stops or fewer need
    no search. The search stops early at a tour of ``target_m`` metres or less (a known optimum or a tour
    close enough to the bound). Returns the places in visiting order from 0 and the solver's name
    (``"ortools"``, ``"ortools_gls"`` with guided local search).

    Examples
    --------
    >>> d = np.array([[0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]], dtype=float)
    >>> order, solver = order_stops(d)
    >>> _tour_length(d, order), solver
    (4.0, 'ortools_gls')
    """
    n = len(matrix)
    if n <= 3:
        return np.arange(n), "trivial"
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    finite = np.isfinite(matrix)
    big = float(np.max(matrix[finite], initial=0.0)) * n + 1.0
    cost = np.rint(np.where(finite, matrix, big) * _SCALE).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(n, 1, 0)
    routing = pywrapcp.RoutingModel(manager)
    arc = routing.RegisterTransitMatrix(cost.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    meta = routing_enums_pb2.LocalSearchMetaheuristic
    params.local_search_metaheuristic = meta.GUIDED_LOCAL_SEARCH if guided else meta.GREEDY_DESCENT
    params.time_limit.FromMilliseconds(max(1, int(round(time_limit_s * 1000))))
    if target_m is not None:
        target = int(np.floor(target_m * _SCALE + n * 0.5))  # each arc rounds by half a decimetre at most

        def stop_at_target() -> None:
            if routing.CostVar().Max() <= target:
                routing.solver().FinishCurrentSearch()

        routing.AddAtSolutionCallback(stop_at_target)
    solution = routing.SolveWithParameters(params)
    if solution is None:  # no solution within the limit: the exact tour when small, else the given order
        return (held_karp(matrix)[1], "held_karp") if n - 1 <= EXACT_STOPS else (np.arange(n), "given_order")
    order, index = [], routing.Start(0)
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    return np.asarray(order, dtype=np.int64), "ortools_gls" if guided else "ortools"


def held_karp(matrix: np.ndarray) -> tuple[float, np.ndarray]:
    """The shortest round tour from place 0 through all others, exactly (Held–Karp dynamic programming,
    vectorised over the subsets of each size; up to about 15 places).

    Examples
    --------
    >>> d = np.array([[0, 2, 9, 10], [1, 0, 6, 4], [15, 7, 0, 8], [6, 3, 12, 0]], dtype=float)
    >>> length, order = held_karp(d)
    >>> length, order.tolist()
    (21.0, [0, 2, 3, 1])
    """
    d = np.asarray(matrix, dtype=float)
    m = len(d) - 1
    if m <= 0:
        return 0.0, np.zeros(len(d), dtype=np.int64)
    full = 1 << m
    bit = 1 << np.arange(m)
    dp = np.full((full, m), np.inf)
    parent = np.full((full, m), -1, dtype=np.int16)
    dp[bit, np.arange(m)] = d[0, 1:]
    masks = np.arange(full)
    size = ((masks[:, None] & bit[None, :]) > 0).sum(axis=1)
    inner = d[1:, 1:]
    for s in range(1, m):
        group = masks[size == s]
        cand = dp[group][:, :, None] + inner[None, :, :]  # (mask, last, next)
        best_last = cand.argmin(axis=1)
        best = np.take_along_axis(cand, best_last[:, None, :], axis=1)[:, 0, :]
        rows, nxt = np.nonzero((group[:, None] & bit[None, :]) == 0)
        new = group[rows] | bit[nxt]  # each (new, next) comes from exactly one (group, next)
        dp[new, nxt] = best[rows, nxt]
        parent[new, nxt] = best_last[rows, nxt]
    closing = dp[full - 1] + d[1:, 0]
    last = int(np.argmin(closing))
    length = float(closing[last])
    path, mask = [last], full - 1
    while mask & (mask - 1):
        prev = int(parent[mask, last])
        mask ^= 1 << last
        last = prev
        path.append(last)
    return length, np.r_[0, np.asarray(path[::-1]) + 1].astype(np.int64)


def one_tree_bound(matrix: np.ndarray, *, upper: float, iterations: int = 200) -> float:
    """The Held–Karp lower bound of a symmetric round tour: the best 1-tree (a minimum spanning tree of
    places 1 … n-1 plus the two shortest edges of place 0) under node penalties π, raised by subgradient
    steps ``t = λ (upper − L) / ‖deg − 2‖²`` (λ from 2, halved after 20 steps without a better bound).

    Examples
    --------
    >>> xy = np.array([[0, 0], [0, 1], [1, 1], [1, 0], [0.5, 2]])
    >>> d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    >>> bound = one_tree_bound(d, upper=held_karp(d)[0])
    >>> bool(bound <= held_karp(d)[0] + 1e-9), round(bound, 3)
    (True, 5.236)
    """
    d = np.asarray(matrix, dtype=float)
    n = len(d)
    if n < 3:
        return _tour_length(d, np.arange(n))
    pi = np.zeros(n)
    best, lam, stale = -np.inf, 2.0, 0
    for _ in range(iterations):
        c = d + pi[:, None] + pi[None, :]
        sub = c[1:, 1:]
        shift = float(sub.min()) - 1.0  # csgraph reads a zero as "no edge": make every weight positive
        w = sub - shift
        np.fill_diagonal(w, 0.0)
        tree = minimum_spanning_tree(w).tocoo()
        two = np.argpartition(c[0, 1:], 1)[:2]
        value = float(tree.data.sum() + (n - 2) * shift + c[0, 1:][two].sum() - 2 * pi.sum())
        degree = np.zeros(n)
        np.add.at(degree, np.r_[tree.row, tree.col] + 1, 1)
        degree[0] = 2
        degree[two + 1] += 1
        if value > best + 1e-9:
            best, stale = value, 0
        else:
            stale += 1
            if stale >= 20:
                lam, stale = lam / 2, 0
        g = degree - 2
        norm = float(g @ g)
        if norm == 0 or upper - value <= 1e-9 or lam < 1e-4:
            break
        pi += lam * (upper - value) / norm * g
    return min(best, upper)


# ---- the legs drawn ---------------------------------------------------------------------------------------
def _legs(g: WalkGraph, leaf: np.ndarray, places: Origins, matrix: np.ndarray, direct: np.ndarray,
          path: np.ndarray, labels: np.ndarray, speed: float, crs) -> gpd.GeoDataFrame:
    """Each leg of the round ``path`` as metres, minutes and a line: from the place to its entry, along the
    network's shortest path to the next place's entry, on to the place (straight inside a shared estate)."""
    columns = {"leg": [], "from_id": [], "to_id": [], "metres": [], "minutes": []}
    if len(path) < 2:
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    a, b = path, np.roll(path, -1)
    metres = matrix[a, b]
    # the entry pair of each leg: every (leg, entry of a, entry of b), the shortest first
    ent_of = pd.Series(np.arange(len(places.entry_origin))).groupby(places.entry_origin).apply(np.asarray)
    ea, eb = ent_of.reindex(a).to_numpy(), ent_of.reindex(b).to_numpy()
    na, nb = np.array([len(x) for x in ea]), np.array([len(x) for x in eb])  # entries per leg end: a few
    leg_idx = np.repeat(np.arange(len(a)), na * nb)
    ia = np.concatenate([np.repeat(x, k) for x, k in zip(ea, nb)])
    ib = np.concatenate([np.tile(y, k) for y, k in zip(eb, na)])
    ok = (leaf[ia] >= 0) & (leaf[ib] >= 0)
    leg_idx, ia, ib = leg_idx[ok], ia[ok], ib[ok]
    sources = np.unique(leaf[ia])
    net = np.full(len(ia), np.inf)
    preds = {}
    for lo in range(0, len(sources), _CHUNK):
        chunk = sources[lo:lo + _CHUNK]
        dist, pred = dijkstra(g.matrix, directed=False, indices=chunk, return_predecessors=True)
        pos = np.searchsorted(chunk, leaf[ia])
        hit = np.isin(leaf[ia], chunk)
        net[hit] = dist[pos[hit], leaf[ib[hit]]]
        preds.update({int(s): pred[k] for k, s in enumerate(chunk)})
    total = net + places.entry_extra[ia] + places.entry_extra[ib]
    pick = np.lexsort((total, leg_idx))
    first = np.r_[True, leg_idx[pick][1:] != leg_idx[pick][:-1]]
    chosen = np.full((len(a), 2), -1, dtype=np.int64)
    chosen[leg_idx[pick][first]] = np.column_stack([ia[pick][first], ib[pick][first]])
    lines = []
    for k in range(len(a)):  # one line per leg (a building's stop), not per household
        start_xy = (places.x[a[k]], places.y[a[k]])
        end_xy = (places.x[b[k]], places.y[b[k]])
        i, j = chosen[k]
        if direct[a[k], b[k]] or i < 0 or a[k] == b[k]:
            coords = [start_xy, end_xy]
        else:
            nodes = _trace(preds[int(leaf[i])], int(leaf[i]), int(leaf[j]))
            coords = ([start_xy, (places.entry_x[i], places.entry_y[i])]
                      + list(zip(g.x[nodes], g.y[nodes])) + [(places.entry_x[j], places.entry_y[j]), end_xy])
        lines.append(coords)
    geoms = [shapely.LineString(_dedupe(c)) for c in lines]
    return gpd.GeoDataFrame({"leg": np.arange(1, len(a) + 1), "from_id": labels[a], "to_id": labels[b],
                             "metres": np.round(metres, 1), "minutes": np.round(metres / speed / 60.0, 1)},
                            geometry=geoms, crs=crs)


def _trace(pred: np.ndarray, source: int, target: int) -> np.ndarray:
    """The nodes of the shortest path source → target from a predecessor row."""
    out = [target]
    while out[-1] != source and out[-1] >= 0:
        out.append(int(pred[out[-1]]))
    return np.asarray(out[::-1], dtype=np.int64)


def _dedupe(coords: list) -> list:
    xy = np.asarray(coords, dtype=float)
    keep = np.r_[True, np.any(np.abs(np.diff(xy, axis=0)) > 1e-6, axis=1)]
    xy = xy[keep]
    return xy.tolist() if len(xy) >= 2 else [xy[0].tolist(), xy[0].tolist()]
