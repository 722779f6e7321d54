"""Points inside polygons (点在面内), boundary included, with the one tie rule both the assignment and the lookup use.

A point on a shared edge, or inside two overlapping polygons, takes the polygon whose interior holds it, then
the one with the lowest tie rank (the smallest id: :func:`_rank`) — PostGIS ``ST_Covers`` with ``ORDER BY
ST_Contains(geom, pt) DESC, id COLLATE "C" LIMIT 1``. numpy and shapely only, so that a single lookup
(:mod:`geo.lookup`) loads no pandas.

Example
-------
>>> from shapely.geometry import Point, box
>>> points_in_polygons(np.array([Point(50, 50)]), np.array([box(0, 0, 50, 100), box(50, 0, 100, 100)]),
...                    tie_rank=_rank(np.array(["G2", "G1"])))
(array([1]), array([0]))
"""

from __future__ import annotations

import numpy as np
import shapely


def _rank(ids: np.ndarray) -> np.ndarray:
    """Position of each id in sorted order: the deterministic tie-breaker (smallest id wins)."""
    order = np.argsort(ids.astype(str), kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank


def _pick_min(left: np.ndarray, key: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    """For each left index in 0..n-1, the ``right`` of its pair with the smallest ``key`` (-1 if none)."""
    out = np.full(n, -1, dtype=np.int64)
    if len(left) == 0:
        return out
    one = np.bincount(left, minlength=n)[left] == 1  # a single candidate needs no sort
    out[left[one]] = right[one]
    left, key, right = left[~one], key[~one], right[~one]
    if len(left) == 0:
        return out
    order = np.lexsort((key, left))
    left_sorted = left[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = left_sorted[1:] != left_sorted[:-1]
    out[left_sorted[first]] = right[order][first]
    return out


def points_in_polygons(points: np.ndarray, polygons: np.ndarray, *, tie_rank: np.ndarray | None = None,
                       xy: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Polygon index covering each point (boundary included; ties → lowest ``tie_rank``; -1 for none or a
    missing point) and the number of polygons whose interior holds it.

    The tree is built on the points and queried with the polygons' boxes (cheaper than the other way round
    when points outnumber polygons), then each candidate pair is tested with prepared polygons.

    >>> from shapely.geometry import Point, box
    >>> points = np.array([Point(20, 20), Point(50, 70), Point(150, 50)])
    >>> points_in_polygons(points, np.array([box(0, 0, 50, 100), box(50, 0, 100, 100)]))
    (array([ 0,  0, -1]), array([1, 0, 0]))
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    tie_rank = np.arange(len(polygons)) if tie_rank is None else tie_rank
    if n == 0 or len(polygons) == 0:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    gi, pi = shapely.STRtree(points).query(polygons, predicate=None)
    px, py = xy if xy is not None else (shapely.get_x(points), shapely.get_y(points))
    return best_polygons(pi, gi, px[pi], py[pi], polygons, tie_rank=tie_rank, n=n)


def best_polygons(pi: np.ndarray, gi: np.ndarray, x: np.ndarray, y: np.ndarray, polygons: np.ndarray, *,
                  tie_rank: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The step of :func:`points_in_polygons` after the boxes: of candidate pairs (point ``pi`` at ``x``, ``y``;
    polygon ``gi``), the polygon covering each of the ``n`` points by the tie rule (-1 for none) and how many
    polygons' interiors hold it. A caller that has the pairs already (a tree of the polygons) starts here.

    >>> from shapely.geometry import box
    >>> polygons = np.array([box(0, 0, 50, 100), box(50, 0, 100, 100)])
    >>> best_polygons(np.array([0, 0]), np.array([0, 1]), np.array([50.0, 50.0]), np.array([5.0, 5.0]), polygons,
    ...               tie_rank=np.array([1, 0]), n=1)
    (array([1]), array([0]))
    """
    cand = polygons[gi]
    shapely.prepare(cand)  # the candidates only (the same objects): a single point does not touch every polygon
    inside = shapely.contains_xy(cand, x, y)
    keep = inside.copy()
    # the boundary counts as covered: test only pairs whose box matched but interior did not
    maybe = np.flatnonzero(~inside)
    if len(maybe):
        keep[maybe[shapely.intersects_xy(cand[maybe], x[maybe], y[maybe])]] = True
    # prefer a polygon whose interior holds the point, then the lowest rank
    key = np.where(inside, 0, 1) * (len(polygons) + 1) + tie_rank[gi]
    best = _pick_min(pi[keep], key[keep], gi[keep], n)
    interior_count = np.bincount(pi[inside], minlength=n)
    return best, interior_count
