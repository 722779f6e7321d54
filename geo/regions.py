"""Contiguous regions with totals in a band, solved exactly (区域划分的精确解) on small and medium graphs.

The units a grid is made of (whole estates or buildings, ``geo.propose``) and which of them touch form a graph; a
region is a connected set of units whose households lie in the band (floor ≤ total ≤ ceiling). The most regions
in the band is a set-partitioning integer program over *candidate sets*:

- :func:`connected_sets` lists every connected set of units within the ceiling whose total reaches the floor,
  each exactly once (the ESU enumeration of Wernicke 2006: a set is grown from its smallest unit, only by
  neighbours of a larger index not yet next to the set). Contiguity is enforced by this enumeration, not by flow
  constraints: only connected sets are columns of the program.
- :func:`exact_regions` picks sets covering each unit exactly once with HiGHS (``scipy.optimize.milp``), in two
  stages: the most sets in the band, then, with that count fixed, the least spread (distance of each unit to
  its region's centre, plus a cost per touching pair inside a region, e.g. a road crossed). Units without
  households join a touching unit first (they change no total, only multiply the sets). A unit alone above the
  ceiling is a region of its own; a connected piece of the graph below the floor is one region; neither counts.
- :func:`improve_regions` is the large-neighbourhood search for graphs too big for one program: a region and
  its neighbours are solved exactly again, and the answer replaces them when it has more regions in the band.
- :func:`region_bound` is the bound without contiguity: a region without a unit at the floor needs two units.

Example
-------
Six units in a row of 100, 60, 90, 100, 50, 110 households, regions of 150–300: households ÷ floor allows 3,
and the row can be cut into three regions in the band.

>>> import numpy as np
>>> w = np.array([100, 60, 90, 100, 50, 110])
>>> pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
>>> solved = exact_regions(w, pairs, band=(150, 300))
>>> solved.count, solved.optimal, solved.labels.tolist()
(3, True, [0, 0, 1, 1, 2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components

#: Steps of the enumeration (sets grown) after which a graph counts as too big for one program.
MAX_STEPS = 200_000
#: Candidate sets above which the program is not tried (HiGHS slows down well before a million columns).
MAX_SETS = 20_000
#: Branch-and-bound nodes and seconds per stage of the program (the nodes keep the answer the same run to run;
#: the seconds only guard a loaded machine).
NODE_LIMIT = 400
TIME_LIMIT_S = 20.0


@dataclass
class RegionSolution:
    """Regions of a unit graph from :func:`exact_regions`."""

    labels: np.ndarray   # region of each unit, 0..k-1 in order of each region's smallest unit
    count: int           # regions in the band (a unit above the ceiling, a piece below the floor do not count)
    optimal: bool        # HiGHS proved that no division has more regions in the band
    sets: int            # candidate sets the program chose from
    feasible: bool = True  # False: no division puts every region in the band (labels all -1, count 0)


def region_bound(weights, *, band: tuple[int, int]) -> int:
    """The most regions in the band any division into whole units can make, contiguity aside: at most households
    ÷ floor, and at most one per unit at the floor or above plus one per ``m`` smaller units, where ``m`` of the
    largest small unit are needed to reach the floor.

    Examples
    --------
    >>> region_bound([100, 98, 97, 120, 160], band=(150, 300))  # 575 // 150 = 3, but only 1 + 4 // 2
    3
    >>> region_bound([100, 98, 97, 120], band=(150, 300))
    2
    """
    w = np.asarray(weights, dtype=np.int64)
    lo = int(band[0])
    big = int((w >= lo).sum())
    small = w[(w > 0) & (w < lo)]
    per = int(np.ceil(lo / small.max())) if len(small) else 1
    return int(min(int(w.sum()) // lo, big + len(small) // per))


def _neighbour_lists(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Neighbours of each unit, ascending."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    a = np.r_[pairs[:, 0], pairs[:, 1]]
    b = np.r_[pairs[:, 1], pairs[:, 0]]
    m = sp.csr_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    m.sum_duplicates()
    m.sort_indices()
    return [m.indices[m.indptr[i]:m.indptr[i + 1]].tolist() for i in range(n)]


def connected_sets(weights, pairs, *, band: tuple[int, int], max_steps: int = MAX_STEPS) -> list[tuple] | None:
    """Every connected set of units whose total lies in ``band``, each once (units listed ascending), or ``None``
    when listing them takes more than ``max_steps`` steps. Weights must not be negative.

    Examples
    --------
    >>> connected_sets([100, 60, 90], [[0, 1], [1, 2]], band=(150, 200))
    [(0, 1), (1, 2)]
    >>> connected_sets([100, 60, 90], [[0, 1], [1, 2]], band=(150, 300))
    [(0, 1), (0, 1, 2), (1, 2)]
    """
    w = np.asarray(weights, dtype=np.int64).tolist()
    lo, hi = int(band[0]), int(band[1])
    nbrs = _neighbour_lists(len(w), np.asarray(pairs, dtype=np.int64))
    closed = [set(v) | {i} for i, v in enumerate(nbrs)]
    found: list[tuple] = []
    steps = 0
    for v in range(len(w)):
        if w[v] > hi:
            continue
        if w[v] >= lo:
            found.append((v,))
        stack = [((v,), [z for z in nbrs[v] if z > v], w[v], closed[v])]
        while stack:
            sub, ext, total, excl = stack[-1]
            if not ext:
                stack.pop()
                continue
            u = ext.pop()
            steps += 1
            if steps > max_steps:
                return None
            t = total + w[u]
            if t > hi:
                continue
            grown = sub + (u,)
            if t >= lo:
                found.append(tuple(sorted(grown)))
            stack.append((grown, ext + [z for z in nbrs[u] if z > v and z not in excl], t, excl | closed[u]))
    return sorted(found)


def absorb_empty(weights, pairs, contact=None) -> np.ndarray:
    """Each unit's representative after units without households join a touching unit with some: each connected
    empty piece joins the neighbour it shares the longest ``contact`` with (without ``contact``, the smallest
    neighbour); representatives are numbered 0..m-1 in order.

    Examples
    --------
    >>> absorb_empty([5, 0, 0, 7], [[0, 1], [1, 2], [2, 3]]).tolist()
    [0, 0, 0, 1]
    >>> absorb_empty([5, 0, 0, 7], [[0, 1], [1, 2], [2, 3]], contact=[10.0, 50.0, 80.0]).tolist()
    [0, 1, 1, 1]
    """
    w = np.asarray(weights)
    n = len(w)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    empty = w == 0
    rep = np.arange(n)
    if empty.any():
        both = empty[pairs[:, 0]] & empty[pairs[:, 1]]
        m = sp.coo_matrix((np.ones(int(both.sum())), (pairs[both, 0], pairs[both, 1])), shape=(n, n))
        _, comp = connected_components(m, directed=False)
        a = np.r_[pairs[:, 0], pairs[:, 1]]
        b = np.r_[pairs[:, 1], pairs[:, 0]]
        length = np.ones(len(a)) if contact is None else np.r_[contact, contact].astype(float)
        link = np.flatnonzero(empty[a] & ~empty[b])
        # per empty piece and neighbour, the contact they share; the longest wins (ties: the smallest neighbour)
        key = comp[a[link]].astype(np.int64) * (n + 1) + b[link]
        uniq, inv = np.unique(key, return_inverse=True)
        total = np.bincount(inv, weights=length[link])
        piece, nbr = uniq // (n + 1), uniq % (n + 1)
        order = np.lexsort((nbr, -total, piece))
        first = order[np.r_[True, piece[order][1:] != piece[order][:-1]]] if len(order) else order
        target = np.full(n, -1, dtype=np.int64)
        target[piece[first]] = nbr[first]
        has = target[comp] >= 0
        rep = np.where(empty & has, target[comp], np.where(empty, n + comp, rep))
    _, out = np.unique(rep, return_inverse=True)
    return out.astype(np.int64)


def _contract(weights, pairs, x, y, contact=None):
    """The graph after :func:`absorb_empty`: representative of each unit, weights, pairs, points."""
    w = np.asarray(weights, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rep = absorb_empty(w, pairs, contact)
    m = int(rep.max()) + 1 if len(rep) else 0
    cw = np.bincount(rep, weights=w, minlength=m).astype(np.int64)
    size = np.bincount(rep, minlength=m)
    cx = np.bincount(rep, weights=x, minlength=m) / size if x is not None else None
    cy = np.bincount(rep, weights=y, minlength=m) / size if y is not None else None
    ra, rb = rep[pairs[:, 0]], rep[pairs[:, 1]]
    keep = ra != rb
    cp = np.unique(np.column_stack([np.minimum(ra, rb), np.maximum(ra, rb)])[keep], axis=0).reshape(-1, 2)
    return rep, cw, cp, cx, cy


def _candidates(w: np.ndarray, pairs: np.ndarray, *, band: tuple[int, int], max_steps: int):
    """The columns of the program: connected sets in the band (count 1), each unit alone above the ceiling and
    each connected piece below the floor (count 0: regions forced on the division)."""
    lo, hi = band
    n = len(w)
    m = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    ncomp, comp = connected_components(m, directed=False)
    ctotal = np.bincount(comp, weights=w, minlength=ncomp)
    light = ctotal[comp] < lo
    keep = np.flatnonzero(~light)
    sub_pairs = pairs[~light[pairs[:, 0]]] if len(pairs) else pairs
    index = np.full(n, -1, dtype=np.int64)
    index[keep] = np.arange(len(keep))
    found = connected_sets(w[keep], index[sub_pairs], band=band, max_steps=max_steps)
    if found is None:
        return None
    sets = [tuple(keep[list(s)]) for s in found]
    counts = [1] * len(sets)
    for u in np.flatnonzero(~light & (w > hi)):
        sets.append((int(u),))
        counts.append(0)
    for c in np.unique(comp[light]):
        sets.append(tuple(np.flatnonzero(comp == c)))
        counts.append(0)
    return sets, np.asarray(counts, dtype=float)


def _set_costs(matrix: sp.csc_matrix, x, y, pairs: np.ndarray, pair_cost) -> np.ndarray:
    """Spread of each candidate set: distance of its units to their mean point, plus ``pair_cost`` of each
    touching pair inside it."""
    if x is None or y is None:
        return np.zeros(matrix.shape[1])
    coo = matrix.tocoo()
    size = np.bincount(coo.col, minlength=matrix.shape[1])
    mx = np.bincount(coo.col, weights=x[coo.row], minlength=matrix.shape[1]) / np.maximum(size, 1)
    my = np.bincount(coo.col, weights=y[coo.row], minlength=matrix.shape[1]) / np.maximum(size, 1)
    cost = np.bincount(coo.col, weights=np.hypot(x[coo.row] - mx[coo.col], y[coo.row] - my[coo.col]),
                       minlength=matrix.shape[1])
    if pair_cost is not None and len(pairs):
        rows = matrix.tocsr()
        inside = rows[pairs[:, 0]].multiply(rows[pairs[:, 1]])
        cost = cost + np.asarray(inside.T @ np.asarray(pair_cost, dtype=float)).ravel()
    return cost


def _solve(count: np.ndarray, matrix: sp.csc_matrix, cost: np.ndarray, *, node_limit: int, time_limit: float):
    """Stage 1: most sets in the band; stage 2: that many with the least cost. Returns the chosen sets and whether
    stage 1 is proven optimal, ``"infeasible"`` when HiGHS proves no division exists, or ``None`` when none was
    found within the limits."""
    n, s = matrix.shape
    options = {"node_limit": node_limit, "time_limit": time_limit, "presolve": True}
    cover = LinearConstraint(matrix, np.ones(n), np.ones(n))
    first = milp(-count, constraints=cover, integrality=np.ones(s), bounds=Bounds(0, 1), options=options)
    if first.status == 2:
        return "infeasible"
    if first.x is None:
        return None
    chosen = first.x > 0.5
    best = int(round(float(count @ chosen)))
    if cost.any():
        fixed = LinearConstraint(sp.csr_matrix(count[None, :]), best, best)
        second = milp(cost, constraints=[cover, fixed], integrality=np.ones(s), bounds=Bounds(0, 1), options=options)
        if second.x is not None:
            chosen = second.x > 0.5
    return chosen, first.status == 0


def exact_regions(weights, pairs, *, band: tuple[int, int], x=None, y=None, pair_cost=None, contact=None,
                  max_steps: int = MAX_STEPS, max_sets: int = MAX_SETS, node_limit: int = NODE_LIMIT,
                  time_limit: float = TIME_LIMIT_S) -> RegionSolution | None:
    """The division of a unit graph into the most connected regions in ``band`` (the least spread among them when
    ``x``/``y`` are given), or ``None`` when the graph is too big (more than ``max_steps`` enumeration steps or
    ``max_sets`` candidate sets) or no division was found within the limits. When no division puts every region
    in the band (a small unit whose neighbours are all too full to take it), the answer says so: ``feasible``
    False, every label -1.

    Parameters
    ----------
    weights
        Households of each unit (not negative).
    pairs
        ``(m, 2)`` units that touch.
    x, y, pair_cost
        A metric point of each unit and an extra cost of each pair (e.g. a road crossed) for the second stage.
    contact
        Length each pair shares (m): an empty unit joins the neighbour it shares most with (:func:`absorb_empty`).

    Examples
    --------
    >>> exact_regions([100, 100, 100, 100], [[0, 1], [1, 2], [2, 3]], band=(150, 300)).labels.tolist()
    [0, 0, 1, 1]
    >>> exact_regions([100, 100], [[0, 1]], band=(250, 300)).labels.tolist()  # below the floor: one region
    [0, 0]
    """
    w = np.asarray(weights, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if not len(w):
        return RegionSolution(labels=np.zeros(0, dtype=np.int64), count=0, optimal=True, sets=0)
    fx = None if x is None else np.asarray(x, dtype=float)
    fy = None if y is None else np.asarray(y, dtype=float)
    rep, cw, cp, cx, cy = _contract(w, pairs, fx, fy, contact)
    made = _candidates(cw, cp, band=(int(band[0]), int(band[1])), max_steps=max_steps)
    if made is None or len(made[0]) > max_sets:
        return None
    sets, count = made
    lens = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    rows = np.fromiter((u for s in sets for u in s), dtype=np.int64, count=int(lens.sum()))
    matrix = sp.csc_matrix((np.ones(len(rows)), (rows, np.repeat(np.arange(len(sets)), lens))),
                           shape=(len(cw), len(sets)))
    extra = None
    if pair_cost is not None and len(pairs):
        ra, rb = rep[pairs[:, 0]], rep[pairs[:, 1]]
        inner = ra != rb  # pairs inside one contracted unit are inside every set holding it
        cost_pairs = np.column_stack([ra, rb])[inner]
        extra = (cost_pairs, np.asarray(pair_cost, dtype=float)[inner])
    cost = _set_costs(matrix, cx, cy, *(extra if extra else (cp, None)))
    solved = _solve(count, matrix, cost, node_limit=node_limit, time_limit=time_limit)
    if solved is None:
        return None
    if isinstance(solved, str):
        return RegionSolution(labels=np.full(len(w), -1, dtype=np.int64), count=0, optimal=True, sets=len(sets),
                              feasible=False)
    chosen, optimal = solved
    labels = np.full(len(cw), -1, dtype=np.int64)
    picked = np.flatnonzero(chosen)
    first_unit = np.array([sets[i][0] for i in picked], dtype=np.int64)
    for r, i in enumerate(picked[np.argsort(first_unit, kind="stable")]):
        labels[list(sets[i])] = r
    return RegionSolution(labels=labels[rep], count=int(round(float(count[picked].sum()))), optimal=bool(optimal),
                          sets=len(sets))


def _in_band(totals: np.ndarray, band: tuple[int, int]) -> np.ndarray:
    return (totals >= band[0]) & (totals <= band[1])


def _neighbourhood(r: int, region: np.ndarray, graph: sp.csr_matrix, members: dict, cx, cy, *, done: np.ndarray,
                   max_units: int) -> list[int]:
    """Region ``r`` and its touching regions not yet remade in this sweep, nearest centre first, while their units
    stay within ``max_units`` (at least one neighbour)."""
    units = members[r]
    touching = np.unique(region[graph[units].indices])
    touching = touching[(touching != r) & (touching < len(cx))]
    touching = touching[~done[touching]]
    if not len(touching):
        return [r]
    order = touching[np.argsort(np.hypot(cx[touching] - cx[r], cy[touching] - cy[r]), kind="stable")]
    chosen, size = [r], len(units)
    for q in order:
        q = int(q)
        if len(chosen) > 1 and size + len(members[q]) > max_units:
            break
        chosen.append(q)
        size += len(members[q])
    return chosen


def improve_regions(region, weights, pairs, *, band: tuple[int, int], x, y, max_units: int = 40,
                    max_steps: int = 5_000, passes: int = 3) -> np.ndarray:
    """A division into connected regions improved by solving each region with its touching regions exactly again
    (:func:`exact_regions` on their units): the new regions replace the old when more of them lie in ``band``.
    Neighbourhoods whose households cannot make one more region in the band are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([100, 60, 90, 100, 50, 110])
    >>> pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    >>> improve_regions(np.array([0, 0, 0, 1, 1, 1]), w, pairs, band=(150, 300), x=np.arange(6.0),
    ...                 y=np.zeros(6)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    w = np.asarray(weights, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _, region = np.unique(np.asarray(region, dtype=np.int64), return_inverse=True)
    n = len(w)
    graph = sp.csr_matrix((np.ones(2 * len(pairs)), (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                          shape=(n, n))
    for _ in range(passes):
        region, gained = _improve_pass(region, w, pairs, graph, band=band, x=x, y=y,
                                       max_units=max_units, max_steps=max_steps)
        if not gained:
            break
    _, region = np.unique(region, return_inverse=True)
    return region.astype(np.int64)


def _improve_pass(region, w, pairs, graph, *, band, x, y, max_units, max_steps):
    """One sweep of :func:`improve_regions` over the regions; returns the division and whether it gained."""
    lo = int(band[0])
    gained = False
    k = int(region.max()) + 1
    order = np.argsort(region, kind="stable")
    bounds = np.searchsorted(region[order], np.arange(k + 1))
    members = {r: order[bounds[r]:bounds[r + 1]] for r in range(k)}
    totals = np.bincount(region, weights=w, minlength=k)
    size = np.maximum(np.bincount(region, minlength=k), 1)
    cx = np.bincount(region, weights=x, minlength=k) / size
    cy = np.bincount(region, weights=y, minlength=k) / size
    done = np.zeros(k, dtype=bool)
    for r in range(k):
        if done[r] or not len(members.get(r, ())):
            continue
        near = _neighbourhood(r, region, graph, members, cx, cy, done=done, max_units=max_units)
        good = int(_in_band(totals[near], band).sum())
        if int(totals[near].sum()) // lo <= good:
            continue
        units = np.concatenate([members[q] for q in near])
        if region_bound(w[units], band=band) <= good:
            continue
        solved = _solve_units(units, w, pairs, band=band, max_steps=max_steps)
        if solved is None or solved.count <= good:
            continue
        made = int(solved.labels.max()) + 1
        new_ids = np.r_[near, np.arange(k, k + max(made - len(near), 0))].astype(np.int64)
        region[units] = new_ids[solved.labels]
        for q in new_ids:
            members[int(q)] = units[new_ids[solved.labels] == q]
        k = max(k, int(new_ids.max()) + 1)
        done = np.r_[done, np.zeros(k - len(done), dtype=bool)]
        done[new_ids] = True
        gained = True
    return region, gained


def _solve_units(units, w, pairs, *, band, max_steps):
    """:func:`exact_regions` on the graph the ``units`` induce (the most regions in the band only: the spread is
    left to the caller's compactness pass)."""
    index = np.full(len(w), -1, dtype=np.int64)
    index[units] = np.arange(len(units))
    inside = (index[pairs[:, 0]] >= 0) & (index[pairs[:, 1]] >= 0)
    sub = index[pairs[inside]]
    return exact_regions(w[units], sub, band=band, max_steps=max_steps, max_sets=max_steps, time_limit=5.0)
