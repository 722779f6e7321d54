"""Propose balanced grids (网格划分方案) for a community from whole buildings (楼栋) and estates (小区).

The steps, each a function over arrays:

1. :func:`build_units` — the pieces a grid is made of: an estate with its buildings is one unit; an estate
   whose households alone exceed the ceiling is split along building lines (each of its buildings is a
   unit); a building outside any estate is a unit. Households without a building join the nearest unit.
2. :func:`tessellate` — points sampled along every unit's outline (``spacing_m`` apart); their Voronoi
   cells, clipped to the community, tile it, and the cells of one unit are the area nearest to it — between
   two estates that is the centre line of the street between them. The Delaunay triangulation of the same
   points gives which units touch (and whether the touching crosses a road).
3. :func:`partition_units` — the most grids in the band: solved exactly where the community's connected
   candidate sets are few enough (:func:`geo.regions.exact_regions`: an integer program over connected sets of
   units, the most grids in the band, then the least spread with a cost per road crossed inside a grid);
   otherwise region growing along a Hilbert sweep: each grid grows from the first unassigned unit of the sweep,
   adding the nearest touching unit (a road crossing counts as ``road_penalty_m`` more distance) until it
   reaches the floor, the last unit chosen among the nearest few to land as close to the floor as possible;
   pockets cut off from the rest are absorbed. Repair steps then bring every grid into the band (steal a
   boundary unit from a neighbour with room, else merge with or dissolve into neighbours, split a grid above
   the ceiling), a local search solves each grid with its neighbours exactly again
   (:func:`geo.regions.improve_regions`), and a compactness pass hands boundary units to the neighbour they
   are nearer to, always keeping every grid contiguous.
   With ``keep_current`` the current grids are the start and only the repair steps run (least change).
4. :func:`grid_polygons` — the Voronoi cells dissolved per grid, their shared edges simplified as a
   coverage (``simplify_m``; the community's outline is kept), then every unit footprint is given to its
   grid exactly: the grids tile the community with no gap or overlap and cut no building.

Example
-------
Four buildings of three households each, in grids of 5 to 7 households:

>>> import geopandas as gpd
>>> import numpy as np
>>> import pandas as pd
>>> from shapely.geometry import box
>>> community = gpd.GeoDataFrame({"id": ["C1"]}, geometry=[box(0, 0, 200, 100)], crs=32648)
>>> buildings = gpd.GeoDataFrame({"id": ["B0", "B1", "B2", "B3"]},
...                              geometry=[box(20 + 45 * i, 40, 40 + 45 * i, 60) for i in range(4)], crs=32648)
>>> households = pd.DataFrame({"building_id": np.repeat(buildings["id"], 3).to_numpy(), "persons": 2,
...                            "x": np.nan, "y": np.nan})
>>> result = propose_grids(community, buildings, None, households, band=(5, 7))
>>> result.grids[["id", "households"]].values.tolist()
[['C1-N01', 6], ['C1-N02', 6]]
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay

from geo.diagnose import polygonal_parts
from geo.errors import GridcoverError
from geo.gridcodes import STANDARD, CodePattern, assign_codes
from geo.regions import MAX_STEPS, exact_regions, improve_regions
from geo.workload import workload_band

#: Default band of households per grid: a grid of one full-time worker within the workload rule (geo.workload:
#: ceiling 300, the plan's one worker per 300 households; floor half of it). ``redraw propose`` and ``check``
#: without ``--target`` derive the band from each community's staffing instead (:func:`geo.workload.staffing_band`).
DEFAULT_BAND = workload_band(1)
#: OSM classes of roads a grid boundary should follow (crossing one is penalised while growing).
BOUNDARY_ROADS = ("motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
                  "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link", "living_street")


class ProposalError(GridcoverError):
    """A proposal that cannot be made (no units, a bad band)."""


def parse_band(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"300-500"`` (or a pair) as a checked (floor, ceiling) of households per grid; ``None`` (no band given)
    stays ``None``: the caller then derives the band from the workload rule and the staffing.

    >>> parse_band("300-500")
    (300, 500)
    >>> parse_band(None) is None
    True
    """
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.replace("–", "-").split("-")
        try:
            lo, hi = (int(p.strip()) for p in parts)
        except ValueError:
            msg = f"the target band must look like 300-500 (households per grid), not {text!r}"
            raise ProposalError(msg) from None
    else:
        lo, hi = (int(v) for v in text)
    if not 0 < lo <= hi:
        msg = f"the target band needs 0 < floor ≤ ceiling, not {lo}-{hi}"
        raise ProposalError(msg)
    return lo, hi


# ------------------------------------------------------------------ units
@dataclass
class Units:
    """The whole pieces grids are made of (estates, or buildings where an estate is too big)."""

    ids: np.ndarray            # unit id: the estate's or the building's id
    kind: np.ndarray           # "estate" or "building"
    households: np.ndarray     # households of the unit (with the loose ones nearest to it)
    persons: np.ndarray
    x: np.ndarray              # a point inside the unit (metric)
    y: np.ndarray
    piece_geom: np.ndarray     # footprints (estate polygons, buildings), several per unit
    piece_unit: np.ndarray     # unit of each piece
    piece_is_building: np.ndarray  # a building footprint (else an estate polygon)
    building_unit: np.ndarray  # unit of each building of the input (-1: not in the community)
    split_estates: list = field(default_factory=list)   # estates above the ceiling, split along buildings
    oversized_buildings: list = field(default_factory=list)  # buildings alone above the ceiling

    def __len__(self) -> int:
        return len(self.ids)


def build_units(community: shapely.Geometry, buildings: gpd.GeoDataFrame, estates: gpd.GeoDataFrame | None,
                building_households: np.ndarray, building_persons: np.ndarray, *,
                loose_xy: tuple[np.ndarray, np.ndarray] | None = None, loose_persons: np.ndarray | None = None,
                ceiling: int = DEFAULT_BAND[1]) -> Units:
    """Units of one community (metric CRS).

    Parameters
    ----------
    community
        The community polygon.
    buildings, estates
        All buildings (``id``, optional ``estate_id``) and estates (``id``); those whose inside point lies
        in the community are used.
    building_households, building_persons
        Households and persons of each building (aligned with ``buildings``).
    loose_xy, loose_persons
        Households without a building (metric points): each joins the nearest unit.
    ceiling
        An estate with more households than this is split into its buildings.
    """
    bgeom = buildings.geometry.to_numpy()
    shapely.prepare(community)
    inner = shapely.point_on_surface(bgeom)
    in_comm = shapely.contains_xy(community, shapely.get_x(inner), shapely.get_y(inner))
    b_idx = np.flatnonzero(in_comm)
    hh = np.asarray(building_households, dtype=np.int64)
    pp = np.asarray(building_persons, dtype=np.float64)
    e_geom, e_ids, be, whole, split = _community_estates(community, buildings, estates, b_idx, hh,
                                                         ceiling=ceiling)

    e_list = np.flatnonzero(whole)
    unit_of_estate = np.full(len(e_geom), -1, dtype=np.int64)
    unit_of_estate[e_list] = np.arange(len(e_list))
    # buildings in a whole estate join its unit; the others are units of their own
    b_in_whole = (be >= 0) & np.isin(be, e_list)
    own = b_idx[~b_in_whole]
    n_units = len(e_list) + len(own)
    building_unit = np.full(len(buildings), -1, dtype=np.int64)
    building_unit[b_idx[b_in_whole]] = unit_of_estate[be[b_in_whole]]
    building_unit[own] = len(e_list) + np.arange(len(own))

    ids = np.concatenate([e_ids[e_list], buildings["id"].astype(str).to_numpy(dtype=object)[own]])
    kind = np.array(["estate"] * len(e_list) + ["building"] * len(own), dtype=object)
    households = np.bincount(building_unit[b_idx], weights=hh[b_idx], minlength=n_units)
    persons = np.bincount(building_unit[b_idx], weights=pp[b_idx], minlength=n_units)
    piece_geom, piece_unit, is_b = _unit_pieces(community, bgeom, b_idx, e_geom, e_list, be=be,
                                                b_in_whole=b_in_whole, building_unit=building_unit,
                                                n_units=n_units)
    if n_units == 0:
        raise ProposalError("the community holds no building or estate: there is nothing to group into grids")
    # footprints that overlap cannot go to two grids without a cut: their units become one
    piece_unit, building_unit, households, persons, ids, kind = _merge_overlapping_units(
        piece_geom, piece_unit, building_unit, households=households, persons=persons, ids=ids, kind=kind)
    n_units = len(ids)
    x, y, households, persons = _unit_points(community, piece_geom, piece_unit, households=households,
                                             persons=persons, loose_xy=loose_xy, loose_persons=loose_persons)
    big = b_idx[hh[b_idx] > ceiling]
    return Units(ids=ids, kind=kind, households=households.astype(np.int64), persons=persons.round().astype(np.int64),
                 x=x, y=y, piece_geom=piece_geom, piece_unit=piece_unit, piece_is_building=is_b,
                 building_unit=building_unit,
                 split_estates=[str(e) for e in e_ids[split]],
                 oversized_buildings=[str(b) for b in buildings["id"].astype(str).to_numpy()[big]])


def _community_estates(community: shapely.Geometry, buildings: gpd.GeoDataFrame, estates: gpd.GeoDataFrame | None,
                       b_idx: np.ndarray, hh: np.ndarray, *, ceiling: int):
    """The estates' polygons and ids, the estate of each of the community's buildings, which estates stay
    whole (at most ``ceiling`` households) and which are split."""
    b_estate = np.full(len(buildings), -1, dtype=np.int64)
    e_geom = np.zeros(0, dtype=object)
    e_ids = np.zeros(0, dtype=object)
    if estates is not None and len(estates):
        e_geom = estates.geometry.to_numpy()
        e_ids = estates["id"].astype(str).to_numpy(dtype=object)
        if "estate_id" in buildings.columns:
            eid = buildings["estate_id"]
            has = eid.notna().to_numpy()
            b_estate[has] = pd.Index(e_ids).get_indexer(eid[has].astype(str))
    # estates of the community: holding one of its buildings, or lying in it
    e_inner = shapely.point_on_surface(e_geom) if len(e_geom) else np.zeros(0, dtype=object)
    e_in = shapely.contains_xy(community, shapely.get_x(e_inner), shapely.get_y(e_inner)) if len(e_geom) \
        else np.zeros(0, dtype=bool)
    used_e = np.zeros(len(e_geom), dtype=bool)
    be = b_estate[b_idx]
    used_e[be[be >= 0]] = True
    used_e |= e_in
    e_hh = np.bincount(be[be >= 0], weights=hh[b_idx][be >= 0], minlength=len(e_geom))
    whole = used_e & (e_hh <= ceiling)
    split = np.flatnonzero(used_e & (e_hh > ceiling))
    return e_geom, e_ids, be, whole, split


def _unit_pieces(community: shapely.Geometry, bgeom: np.ndarray, b_idx: np.ndarray, e_geom: np.ndarray,
                 e_list: np.ndarray, *, be: np.ndarray, b_in_whole: np.ndarray, building_unit: np.ndarray,
                 n_units: int):
    """The pieces of the units: estate polygons clipped to the community and the buildings not inside their
    estate's polygon; a unit clipped away entirely keeps its buildings."""
    # pieces: estate polygons (clipped to the community), and buildings not inside their estate's polygon
    e_pieces = shapely.intersection(e_geom[e_list], community) if len(e_list) else np.zeros(0, dtype=object)
    b_pieces_idx = b_idx
    if len(e_list):
        est = np.where(b_in_whole, be, -1)
        inside = np.zeros(len(b_idx), dtype=bool)
        wb = np.flatnonzero(est >= 0)
        if len(wb):
            inside[wb] = shapely.within(bgeom[b_idx[wb]], e_geom[est[wb]])
        b_pieces_idx = b_idx[~inside]
    piece_geom = np.concatenate([e_pieces, bgeom[b_pieces_idx]])
    piece_unit = np.concatenate([np.arange(len(e_list)), building_unit[b_pieces_idx]])
    is_b = np.r_[np.zeros(len(e_pieces), dtype=bool), np.ones(len(b_pieces_idx), dtype=bool)]
    keep = ~shapely.is_empty(piece_geom) & (shapely.area(piece_geom) > 0)
    piece_geom, piece_unit, is_b = piece_geom[keep], piece_unit[keep], is_b[keep]
    # every unit needs a piece; an estate clipped away entirely keeps its buildings
    missing = np.setdiff1d(np.arange(n_units), piece_unit)
    if len(missing):
        extra = np.flatnonzero(np.isin(building_unit, missing))
        piece_geom = np.concatenate([piece_geom, bgeom[extra]])
        piece_unit = np.concatenate([piece_unit, building_unit[extra]])
        is_b = np.concatenate([is_b, np.ones(len(extra), dtype=bool)])
    return piece_geom, piece_unit, is_b


def _merge_overlapping_units(piece_geom: np.ndarray, piece_unit: np.ndarray, building_unit: np.ndarray, *,
                             households: np.ndarray, persons: np.ndarray, ids: np.ndarray, kind: np.ndarray):
    """Units whose pieces overlap (village houses drawn over each other, a building across an estate's line)
    become one: the first unit of each group keeps its id."""
    n_units = len(ids)
    pi, pj = shapely.STRtree(piece_geom).query(piece_geom, predicate="intersects")
    other = (pi < pj) & (piece_unit[pi] != piece_unit[pj])
    pi, pj = pi[other], pj[other]
    if len(pi):
        area = shapely.area(shapely.intersection(piece_geom[pi], piece_geom[pj]))
        real = area > 0.01 * np.minimum(shapely.area(piece_geom[pi]), shapely.area(piece_geom[pj]))
        if real.any():
            m = sp.coo_matrix((np.ones(int(real.sum())), (piece_unit[pi[real]], piece_unit[pj[real]])),
                              shape=(n_units, n_units))
            _, comp = connected_components(m, directed=False)
            first_of = np.full(comp.max() + 1, -1)
            first_of[comp[::-1]] = np.arange(n_units)[::-1]  # the component's first unit keeps its id
            keep_u = np.flatnonzero(first_of[comp] == np.arange(n_units))
            new_of = np.searchsorted(keep_u, first_of[comp])
            piece_unit = new_of[piece_unit]
            building_unit = np.where(building_unit >= 0, new_of[np.maximum(building_unit, 0)], -1)
            households = np.bincount(new_of, weights=households, minlength=len(keep_u))
            persons = np.bincount(new_of, weights=persons, minlength=len(keep_u))
            ids, kind = ids[keep_u], kind[keep_u]
            n_units = len(keep_u)
    return piece_unit, building_unit, households, persons, ids, kind


def _unit_points(community: shapely.Geometry, piece_geom: np.ndarray, piece_unit: np.ndarray, *,
                 households: np.ndarray, persons: np.ndarray, loose_xy, loose_persons):
    """A point inside each unit (of its largest piece); households without a building join the nearest unit."""
    n_units = len(households)
    area = shapely.area(piece_geom)
    order = np.lexsort((-area, piece_unit))
    first = order[np.r_[True, piece_unit[order][1:] != piece_unit[order][:-1]]]
    rep = shapely.point_on_surface(piece_geom[first])
    x = np.zeros(n_units)
    y = np.zeros(n_units)
    x[piece_unit[first]] = shapely.get_x(rep)
    y[piece_unit[first]] = shapely.get_y(rep)
    if loose_xy is not None and len(loose_xy[0]):
        lx, ly = (np.asarray(v, dtype=float) for v in loose_xy)
        ok = np.isfinite(lx) & np.isfinite(ly) & shapely.contains_xy(community, lx, ly)
        if ok.any():
            pts = shapely.points(lx[ok], ly[ok])
            pi, gi = shapely.STRtree(piece_geom).query_nearest(pts, all_matches=False)
            unit = piece_unit[gi]
            households += np.bincount(unit, minlength=n_units)
            lp = np.ones(len(lx)) if loose_persons is None else np.nan_to_num(np.asarray(loose_persons, float))
            persons += np.bincount(unit, weights=lp[ok][pi], minlength=n_units)
    return x, y, households, persons


# ------------------------------------------------------------------ tessellation
@dataclass
class Tessellation:
    """Voronoi cells of points sampled on unit outlines, and which units touch."""

    cells: np.ndarray        # one cell per sample point (clipped to the community envelope)
    label: np.ndarray        # unit of each point
    pairs: np.ndarray        # (m, 2) touching units, a < b
    contact: np.ndarray      # length of the cell boundary the two share (m)
    road_share: np.ndarray   # share of those edges crossing a road


def tessellate(community: shapely.Geometry, piece_geom: np.ndarray, piece_unit: np.ndarray, *,
               spacing_m: float = 10.0, roads: np.ndarray | None = None, max_points: int = 400_000) -> Tessellation:
    """Voronoi cells of points sampled along the pieces' outlines, labelled with their unit.

    ``spacing_m`` grows (with a note in nothing but the cost) when the outlines would need more than
    ``max_points`` points.
    """
    rings = shapely.boundary(piece_geom)
    total = float(shapely.length(rings).sum())
    spacing = max(spacing_m, total / max_points)
    dense = shapely.segmentize(rings, spacing)
    coords, index = shapely.get_coordinates(dense, return_index=True)
    label = piece_unit[index]
    key = np.round(coords, 2)
    _, first = np.unique(key, axis=0, return_index=True)
    first.sort()
    coords, label = coords[first], label[first]
    if len(coords) < 3:
        coords = np.vstack([coords, coords + [[0.5, 0.0]], coords + [[0.0, 0.5]]])[:3]
        label = np.resize(label, 3)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=community,
                                                       ordered=True))
    bad = ~shapely.is_valid(cells)  # GEOS may return a few self-touching cells
    if bad.any():
        cells[bad] = polygonal_parts(shapely.make_valid(cells[bad]))
    # who touches whom: Delaunay edges between points of two units, inside the community
    tri = Delaunay(coords)
    s = tri.simplices
    edges = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [2, 0]]])
    a, b = label[edges[:, 0]], label[edges[:, 1]]
    cross = a != b
    edges, a, b = edges[cross], a[cross], b[cross]
    mid = (coords[edges[:, 0]] + coords[edges[:, 1]]) / 2.0
    shapely.prepare(community)
    inside = shapely.contains_xy(community, mid[:, 0], mid[:, 1])
    edges, a, b = edges[inside], a[inside], b[inside]
    crosses = np.zeros(len(edges), dtype=bool)
    if roads is not None and len(roads) and len(edges):
        lines = shapely.linestrings(np.stack([coords[edges[:, 0]], coords[edges[:, 1]]], axis=1))
        li, _ = shapely.STRtree(roads).query(lines, predicate="intersects")
        crosses[np.unique(li)] = True
    # the length of cell boundary each edge's two points share (0 where cells meet only at a corner)
    shared = shapely.length(shapely.intersection(cells[edges[:, 0]], cells[edges[:, 1]])) if len(edges) \
        else np.zeros(0)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    n1 = int(label.max()) + 1
    pair_key = lo.astype(np.int64) * n1 + hi
    uniq, inv = np.unique(pair_key, return_inverse=True)
    contact = np.bincount(inv, weights=shared, minlength=len(uniq))
    road = np.bincount(inv, weights=shared * crosses, minlength=len(uniq)) / np.maximum(contact, 1e-9)
    pairs = np.column_stack([uniq // n1, uniq % n1]).astype(np.int64)
    # units whose cells meet along less than a metre (a corner, e.g. diagonal blocks at a crossing) do not touch
    keep = contact >= 1.0
    pairs, contact, road = pairs[keep], contact[keep], road[keep]
    return Tessellation(cells=cells, label=label, pairs=pairs, contact=contact, road_share=road)


# ------------------------------------------------------------------ partition
class _Graph:
    """Unit adjacency (CSR) with a growing cost per edge."""

    def __init__(self, n: int, pairs: np.ndarray, cost: np.ndarray) -> None:
        a = np.r_[pairs[:, 0], pairs[:, 1]]
        b = np.r_[pairs[:, 1], pairs[:, 0]]
        c = np.r_[cost, cost]
        m = sp.csr_matrix((c + 1e-9, (a, b)), shape=(n, n))
        m.sum_duplicates()
        self.n = n
        self.matrix = m
        self.indptr = m.indptr
        self.indices = m.indices
        self.cost = m.data
        self.nbrs = [self.indices[self.indptr[i]:self.indptr[i + 1]] for i in range(n)]

    def connected(self, members: list[int] | np.ndarray, without: int | None = None) -> bool:
        """Are ``members`` (minus ``without``) one connected piece?"""
        nodes = set(int(v) for v in members)
        if without is not None:
            nodes.discard(int(without))
        if len(nodes) <= 1:
            return True
        start = next(iter(nodes))
        seen = {start}
        stack = [start]
        while stack:
            v = stack.pop()
            for u in self.nbrs[v]:
                u = int(u)
                if u in nodes and u not in seen:
                    seen.add(u)
                    stack.append(u)
        return len(seen) == len(nodes)


def _hilbert_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pts = gpd.GeoSeries(shapely.points(x, y))
    return np.argsort(pts.hilbert_distance().to_numpy(), kind="stable")


def partition_units(weights: np.ndarray, x: np.ndarray, y: np.ndarray, pairs: np.ndarray, *,
                    band: tuple[int, int] = DEFAULT_BAND, road_share: np.ndarray | None = None,
                    road_penalty_m: float = 60.0, start: np.ndarray | None = None, lookahead: int = 6,
                    compact_passes: int = 3, exact_steps: int = MAX_STEPS,
                    contact: np.ndarray | None = None) -> np.ndarray:
    """Grid of each unit: contiguous groups with households in ``band``, as many as the band allows.

    Without ``start`` the division is solved exactly (:func:`geo.regions.exact_regions`: the most grids in the
    band, then the least spread) when the community's connected candidate sets are few enough (``exact_steps``
    enumeration steps, 0 never); otherwise, or when the program gives fewer grids in the band than the greedy,
    grids grow along a Hilbert sweep, are repaired into the band and improved by solving each grid with its
    neighbours exactly (:func:`geo.regions.improve_regions`).

    Parameters
    ----------
    weights, x, y
        Households and a metric point of each unit.
    pairs
        ``(m, 2)`` units that touch.
    road_share
        Share of each pair's contact crossing a road: growing across it (or keeping it inside a grid) costs
        ``road_penalty_m`` more.
    start
        Current grid of each unit (-1: none): keep it and only repair (least change).
    contact
        Length of cell boundary each pair shares (m): units without households go with the neighbour they share
        most with in the exact division.
    """
    lo, hi = band
    w = np.asarray(weights, dtype=np.int64)
    n = len(w)
    dist = np.hypot(x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]]) if len(pairs) else np.zeros(0)
    extra = road_penalty_m * road_share if road_share is not None else np.zeros(len(pairs))
    graph = _Graph(n, pairs, dist + extra)
    if start is not None:
        region = np.asarray(start, dtype=np.int64).copy()
        # units without a current grid join a touching grid (or start their own)
        region = _fill_unassigned(region, graph)
        region = _split_disconnected(region, graph)
        region = _repair(region, w, x, y, graph, lo, hi)
        region = _compact(region, w, x, y, graph, lo, hi, passes=compact_passes)
    else:
        solved = exact_regions(w, pairs, band=band, x=x, y=y, pair_cost=extra, contact=contact,
                               max_steps=exact_steps) \
            if exact_steps > 0 else None
        region = solved.labels if solved is not None and solved.feasible else None
        if region is None or not solved.optimal:
            greedy = _repair(_grow(w, x, y, graph, lo, hi, lookahead), w, x, y, graph, lo, hi)
            greedy = improve_regions(greedy, w, pairs, band=band, x=x, y=y)
            greedy = _compact(greedy, w, x, y, graph, lo, hi, passes=compact_passes)
            if region is None or _grids_in_band(greedy, w, band) > _grids_in_band(region, w, band):
                region = greedy
    _, region = np.unique(region, return_inverse=True)
    return region


def _grids_in_band(region: np.ndarray, w: np.ndarray, band: tuple[int, int]) -> int:
    """How many grids of a division hold households within the band."""
    totals = np.bincount(region, weights=w)
    return int(((totals >= band[0]) & (totals <= band[1])).sum())


def _grow(w, x, y, graph: _Graph, lo: int, hi: int, lookahead: int) -> np.ndarray:
    n = len(w)
    region = np.full(n, -1, dtype=np.int64)
    order = _hilbert_order(x, y)
    ptr = 0
    r = 0
    free = np.ones(n, dtype=bool)
    matrix = graph.matrix
    while True:
        while ptr < n and not free[order[ptr]]:
            ptr += 1
        if ptr == n:
            break
        s = int(order[ptr])
        members = [s]
        region[s] = r
        free[s] = False
        total = int(w[s])
        sx, sy = x[s], y[s]
        heap: list[tuple[float, int]] = []
        queued = {s}

        def push(v: int) -> None:
            lo_, hi_ = graph.indptr[v], graph.indptr[v + 1]
            for u, c in zip(graph.indices[lo_:hi_], graph.cost[lo_:hi_]):
                u = int(u)
                if free[u] and u not in queued:
                    queued.add(u)
                    key = np.hypot(x[u] - sx, y[u] - sy) + (c - np.hypot(x[u] - x[v], y[u] - y[v]))
                    heapq.heappush(heap, (float(key), u))

        push(s)
        while total < lo and heap:
            cand = []
            while heap and len(cand) < lookahead:
                key, u = heapq.heappop(heap)
                if free[u]:
                    cand.append((key, u))
            if not cand:
                break
            near = cand[0][0]
            finishing = [(total + w[u] - lo + 0.02 * (key - near), key, u) for key, u in cand
                         if lo <= total + w[u] <= hi and key <= near + 150.0]
            if finishing:
                _, key, pick = min(finishing)
            else:
                key, pick = cand[0]
            for item in cand:
                if item[1] != pick:
                    heapq.heappush(heap, item)
            members.append(pick)
            region[pick] = r
            free[pick] = False
            total += int(w[pick])
            push(pick)
        # pockets cut off from the rest by this grid join it while it stays under the ceiling
        if free.any():
            idx = np.flatnonzero(free)
            sub = matrix[idx][:, idx]
            ncomp, comp = connected_components(sub, directed=False)
            if ncomp > 1:
                cw = np.bincount(comp, weights=w[idx], minlength=ncomp)
                touching = set()
                for v in members:
                    for u in graph.nbrs[v]:
                        if free[u]:
                            touching.add(int(u))
                pos = pd.Index(idx).get_indexer(list(touching)) if touching else np.zeros(0, dtype=np.int64)
                for c in np.unique(comp[pos]) if len(pos) else []:
                    if cw[c] < lo and total + cw[c] <= hi:
                        pocket = idx[comp == c]
                        region[pocket] = r
                        free[pocket] = False
                        total += int(cw[c])
                        members.extend(int(v) for v in pocket)
        r += 1
    return region


def _fill_unassigned(region: np.ndarray, graph: _Graph) -> np.ndarray:
    todo = np.flatnonzero(region < 0)
    for _ in range(len(todo) + 1):
        todo = np.flatnonzero(region < 0)
        if not len(todo):
            break
        changed = False
        for v in todo:
            near = [region[u] for u in graph.nbrs[v] if region[u] >= 0]
            if near:
                region[v] = pd.Series(near).mode().iloc[0]
                changed = True
        if not changed:
            nxt = region.max() + 1
            for v in todo:
                region[v] = nxt
                nxt += 1
            break
    return region


def _split_disconnected(region: np.ndarray, graph: _Graph) -> np.ndarray:
    """A grid whose units fall apart becomes one grid per connected piece."""
    keep = region[graph.matrix.tocoo().row] == region[graph.matrix.tocoo().col]
    coo = graph.matrix.tocoo()
    m = sp.csr_matrix((np.ones(keep.sum()), (coo.row[keep], coo.col[keep])), shape=graph.matrix.shape)
    _, comp = connected_components(m, directed=False)
    _, out = np.unique(np.column_stack([region, comp]), axis=0, return_inverse=True)
    return out.ravel().astype(np.int64)


class _State:
    """Members and totals of each grid while repairing."""

    def __init__(self, region: np.ndarray, w: np.ndarray) -> None:
        self.region = region
        self.w = w
        self.members: dict[int, set[int]] = {}
        for v, r in enumerate(region):
            self.members.setdefault(int(r), set()).add(v)
        self.total = {r: int(w[list(m)].sum()) for r, m in self.members.items()}

    def move(self, v: int, to: int) -> None:
        src = int(self.region[v])
        self.members[src].discard(v)
        self.total[src] -= int(self.w[v])
        if not self.members[src]:
            del self.members[src]
            del self.total[src]
        self.members.setdefault(to, set()).add(v)
        self.total[to] = self.total.get(to, 0) + int(self.w[v])
        self.region[v] = to

    def neighbours(self, r: int, graph: _Graph) -> dict[int, int]:
        """Neighbouring grids of ``r`` and how many unit contacts they share."""
        out: dict[int, int] = {}
        for v in self.members[r]:
            for u in graph.nbrs[v]:
                q = int(self.region[u])
                if q != r:
                    out[q] = out.get(q, 0) + 1
        return out

    def boundary_units(self, r: int, q: int, graph: _Graph) -> list[int]:
        """Units of ``r`` touching grid ``q``."""
        return [v for v in self.members[r] if any(int(self.region[u]) == q for u in graph.nbrs[v])]


def _repair(region, w, x, y, graph: _Graph, lo: int, hi: int, rounds: int = 60) -> np.ndarray:
    st = _State(region.copy(), w)
    for _ in range(rounds):
        bad = sorted((t, r) for r, t in st.total.items() if t < lo or t > hi)
        if not bad:
            break
        progress = False
        for _, r in bad:
            if r not in st.total:
                continue
            t = st.total[r]
            if t < lo:
                progress |= _fix_under(st, r, graph, x, y, lo, hi)
            elif t > hi:
                progress |= _fix_over(st, r, graph, x, y, lo, hi)
        if not progress:
            break
    return st.region


def _centroid(st: _State, r: int, x, y) -> tuple[float, float]:
    m = list(st.members[r])
    return float(x[m].mean()), float(y[m].mean())


def _fix_under(st: _State, r: int, graph: _Graph, x, y, lo: int, hi: int) -> bool:
    need = lo - st.total[r]
    nbrs = st.neighbours(r, graph)
    cx, cy = _centroid(st, r, x, y)
    # 1. take boundary units from neighbours that can spare them (nearest first)
    offers = []
    for q in nbrs:
        for v in st.boundary_units(q, r, graph):
            wv = int(st.w[v])
            if st.total[q] - wv >= lo and st.total[r] + wv <= hi:
                offers.append((np.hypot(x[v] - cx, y[v] - cy), v, q))
    offers.sort()
    moved = False
    for _, v, q in offers:
        if st.total[r] >= lo:
            break
        if st.region[v] != q or st.total[q] - st.w[v] < lo or st.total[r] + st.w[v] > hi:
            continue
        if graph.connected(st.members[q], without=v):
            st.move(v, r)
            moved = True
    if st.total[r] >= lo:
        return True
    # 2. merge with the neighbour giving the smallest total within the ceiling
    fits = [(st.total[q] + st.total[r], -c, q) for q, c in st.neighbours(r, graph).items()
            if st.total[q] + st.total[r] <= hi]
    if fits:
        _, _, q = min(fits)
        for v in list(st.members[r]):
            st.move(v, q)
        return True
    # 3. dissolve: hand units one by one to touching grids with room
    changed = True
    while changed and r in st.members:
        changed = False
        for v in sorted(st.members.get(r, ()), key=lambda v: st.w[v]):
            room = [(st.total[q], q) for q in {int(st.region[u]) for u in graph.nbrs[v]} - {r}
                    if st.total[q] + st.w[v] <= hi]
            if room and graph.connected(st.members[r], without=v):
                st.move(v, min(room)[1])
                changed = True
    if r in st.members and st.total[r] < lo and not changed:
        # 4. no room nearby: merge with the smallest neighbour anyway; the next round sheds the excess
        # onto that neighbour's other neighbours (or splits it)
        nbrs = st.neighbours(r, graph)
        if nbrs:
            q = min(nbrs, key=lambda q: (st.total[q], -nbrs[q]))
            for v in list(st.members[r]):
                st.move(v, q)
            return True
    return moved or changed or need != lo - st.total.get(r, lo)


def _fix_over(st: _State, r: int, graph: _Graph, x, y, lo: int, hi: int) -> bool:
    moved = False
    # 1. split in two when both halves can reach the floor
    if st.total[r] >= 2 * lo and len(st.members[r]) > 1:
        if _split(st, r, graph, x, y, lo, hi):
            return True
    # 2. shed boundary units to neighbours with room (farthest from the centre first)
    cx, cy = _centroid(st, r, x, y)
    cand = []
    for q in st.neighbours(r, graph):
        for v in st.boundary_units(r, q, graph):
            cand.append((-np.hypot(x[v] - cx, y[v] - cy), v, q))
    cand.sort()
    for _, v, q in cand:
        if st.total[r] <= hi:
            break
        if st.region[v] != r or st.total[q] + st.w[v] > hi or st.total[r] - st.w[v] < lo:
            continue
        if graph.connected(st.members[r], without=v):
            st.move(v, q)
            moved = True
    return moved


def _split(st: _State, r: int, graph: _Graph, x, y, lo: int, hi: int) -> bool:
    """Grow a new grid inside ``r`` from its farthest unit until it reaches the floor."""
    members = st.members[r]
    m = np.array(sorted(members))
    cx, cy = x[m].mean(), y[m].mean()
    s = int(m[np.argmax(np.hypot(x[m] - cx, y[m] - cy))])
    part = {s}
    tot = int(st.w[s])
    heap = [(0.0, s)]
    seen = {s}
    frontier = []
    for u in graph.nbrs[s]:
        if int(u) in members:
            heapq.heappush(frontier, (float(np.hypot(x[u] - x[s], y[u] - y[s])), int(u)))
            seen.add(int(u))
    del heap
    total_r = st.total[r]
    while tot < lo and frontier:
        _, v = heapq.heappop(frontier)
        if total_r - tot - st.w[v] < lo and tot + st.w[v] < lo:
            continue
        part.add(v)
        tot += int(st.w[v])
        for u in graph.nbrs[v]:
            u = int(u)
            if u in members and u not in seen:
                seen.add(u)
                heapq.heappush(frontier, (float(np.hypot(x[u] - x[s], y[u] - y[s])), u))
    rest = members - part
    if tot < lo or total_r - tot < lo or tot > hi or not rest or not graph.connected(list(rest)):
        return False
    new = max(st.members) + 1
    for v in part:
        st.move(v, new)
    return True


def _compact(region, w, x, y, graph: _Graph, lo: int, hi: int, passes: int = 3) -> np.ndarray:
    """Hand boundary units to the touching grid whose centre they are clearly nearer, keeping the band."""
    st = _State(region.copy(), w)
    for _ in range(passes):
        cent = {r: _centroid(st, r, x, y) for r in st.members}
        moved = 0
        for v in range(len(w)):
            r = int(st.region[v])
            others = {int(st.region[u]) for u in graph.nbrs[v]} - {r}
            if not others:
                continue
            d_own = np.hypot(x[v] - cent[r][0], y[v] - cent[r][1])
            best = min(others, key=lambda q: np.hypot(x[v] - cent[q][0], y[v] - cent[q][1]))
            d_best = np.hypot(x[v] - cent[best][0], y[v] - cent[best][1])
            t_r, t_q = st.total[r], st.total[best]
            in_band = lo <= t_r <= hi and lo <= t_q <= hi
            if d_best < 0.8 * d_own and len(st.members[r]) > 1 and (not in_band or (
                    t_r - w[v] >= lo and t_q + w[v] <= hi)) and lo <= t_r - w[v] and t_q + w[v] <= hi:
                if graph.connected(st.members[r], without=v):
                    st.move(v, best)
                    moved += 1
        if not moved:
            break
    return st.region


# ------------------------------------------------------------------ polygons
def grid_polygons(community: shapely.Geometry, tess: Tessellation, unit_grid: np.ndarray, n_grids: int,
                  units: Units, *, simplify_m: float = 5.0, precision_m: float = 0.01) -> np.ndarray:
    """One polygon per grid, tiling ``community`` exactly with every unit footprint whole in its grid."""
    point_grid = unit_grid[tess.label]
    order = np.argsort(point_grid, kind="stable")
    bounds = np.searchsorted(point_grid[order], np.arange(n_grids + 1))
    cells = tess.cells[order]
    raw = dissolve_cells(cells, bounds, precision_m)
    raw = shapely.intersection(raw, community, grid_size=precision_m)
    raw = polygonal_parts(raw)
    if simplify_m > 0:
        simple = shapely.coverage_simplify(raw, simplify_m, simplify_boundary=False)
        if shapely.coverage_is_valid(shapely.set_precision(simple, precision_m)):
            raw = simple
    # every footprint goes wholly to its grid
    piece_grid = unit_grid[units.piece_unit]
    fp = shapely.intersection(units.piece_geom, community, grid_size=precision_m)
    all_fp = shapely.union_all(fp, grid_size=precision_m)
    def per_grid(mask):
        sel = np.flatnonzero(mask)
        order = sel[np.argsort(piece_grid[sel], kind="stable")]
        pb = np.searchsorted(piece_grid[order], np.arange(n_grids + 1))
        return np.array([shapely.union_all(fp[order][a:b], grid_size=precision_m) if b > a else shapely.Polygon()
                         for a, b in zip(pb[:-1], pb[1:])], dtype=object)

    own_b = per_grid(units.piece_is_building)
    own_e = per_grid(~units.piece_is_building)
    # buildings win over estate polygons drawn across them; between two grids' overlapping footprints of the
    # same kind the first grid keeps the overlap (only the few grids whose footprints meet are looked at)
    own = shapely.union(own_b, own_e, grid_size=precision_m)
    gi, gj = shapely.STRtree(own).query(own, predicate="intersects")
    pair = gi < gj
    gi, gj = gi[pair], gj[pair]
    if len(gi):
        meet = shapely.area(shapely.intersection(own[gi], own[gj], grid_size=precision_m)) > 0
        involved = np.unique(np.r_[gi[meet], gj[meet]])
        if len(involved):
            all_b = shapely.union_all(own_b[involved], grid_size=precision_m)
            taken = shapely.Polygon()
            for g in involved:
                e = shapely.difference(own_e[g], shapely.difference(all_b, own_b[g], grid_size=precision_m),
                                       grid_size=precision_m)
                b_ = shapely.difference(own_b[g], taken, grid_size=precision_m)
                e = shapely.difference(e, taken, grid_size=precision_m)
                own[g] = shapely.union(b_, e, grid_size=precision_m)
                taken = shapely.union(taken, own[g], grid_size=precision_m)
    # overlays may leave lines beside the polygons (GEOS refuses a mixed-dimension input): polygons only
    out = shapely.union(polygonal_parts(shapely.difference(raw, all_fp, grid_size=precision_m)),
                        polygonal_parts(own), grid_size=precision_m)
    out = polygonal_parts(out)
    out = _reattach_crumbs(out, own, precision_m)
    return exact_coverage(_fill_gaps(out, community, precision_m), community, precision_m=precision_m)


def exact_coverage(grids: np.ndarray, community: shapely.Geometry, *, precision_m: float) -> np.ndarray:
    """The grids rebuilt from the faces of their noded boundaries (with the community outline), each face
    given to the grid holding most of it, faces no grid holds to the neighbour sharing the longest edge:
    an edge-matched coverage with no gap and no sliver, whatever small offsets the overlay left."""
    geoms = shapely.set_precision(np.r_[np.asarray(grids, dtype=object), [community]], precision_m)
    lines = shapely.union_all(shapely.boundary(geoms), grid_size=precision_m)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    if not len(faces):
        return grids
    faces = faces[shapely.area(shapely.intersection(faces, geoms[-1])) > 0.5 * shapely.area(faces)]
    fi, gi = shapely.STRtree(geoms[:-1]).query(faces, predicate="intersects")
    area = shapely.area(shapely.intersection(faces[fi], geoms[:-1][gi]))
    owner = np.full(len(faces), -1, dtype=np.int64)
    order = np.lexsort((-area, fi))
    first = np.r_[True, fi[order][1:] != fi[order][:-1]] if len(order) else np.zeros(0, bool)
    held = area[order][first] > 0
    owner[fi[order][first][held]] = gi[order][first][held]
    for _ in range(10):  # faces in no grid take the owner of the neighbouring face sharing the longest edge
        free = np.flatnonzero(owner < 0)
        if not len(free):
            break
        a, b = shapely.STRtree(faces).query(faces[free], predicate="touches")
        shared = shapely.length(shapely.intersection(faces[free][a], faces[b]))
        keep = (owner[b] >= 0) & (shared > 0)
        a, b, shared = a[keep], b[keep], shared[keep]
        if not len(a):
            break
        order = np.lexsort((-shared, a))
        first = np.r_[True, a[order][1:] != a[order][:-1]]
        owner[free[a[order][first]]] = owner[b[order][first]]
    out = np.empty(len(grids), dtype=object)
    for g in range(len(grids)):  # one union per grid
        mine = faces[owner == g]
        out[g] = shapely.coverage_union_all(mine) if len(mine) else shapely.Polygon()
    return polygonal_parts(out)


def _fill_gaps(grids: np.ndarray, community: shapely.Geometry, precision_m: float) -> np.ndarray:
    """Give any piece of the community no grid holds (overlay slivers) to the grid sharing the longest edge."""
    grids = grids.copy()
    gaps = shapely.get_parts(shapely.difference(community, shapely.union_all(grids, grid_size=precision_m),
                                                grid_size=precision_m))
    gaps = gaps[np.isin(shapely.get_type_id(gaps), (3, 6))] if len(gaps) else gaps
    if not len(gaps):
        return grids
    tree = shapely.STRtree(grids)
    take: dict[int, list] = {}
    for gap in gaps:
        near = tree.query(shapely.buffer(gap, precision_m * 2), predicate="intersects")
        if not len(near):
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(gap), shapely.buffer(grids[near], precision_m * 2)))
        take.setdefault(int(near[np.argmax(shared)]), []).append(gap)
    for g, ps in take.items():
        grids[g] = shapely.union_all([grids[g], *ps], grid_size=precision_m)
    return polygonal_parts(grids)


def dissolve_cells(cells: np.ndarray, bounds: np.ndarray, precision_m: float = 0.01) -> np.ndarray:
    """Union of ``cells[bounds[i]:bounds[i+1]]`` for each i: the fast coverage union, or an ordinary union on
    the precision grid where GEOS finds the Voronoi cells not exactly noded."""
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b <= a:
            out.append(shapely.Polygon())
            continue
        try:
            out.append(shapely.coverage_union_all(cells[a:b]))
        except shapely.errors.GEOSException:
            out.append(shapely.union_all(cells[a:b], grid_size=precision_m))
    return np.array(out, dtype=object)


def _reattach_crumbs(grids: np.ndarray, own: np.ndarray, precision_m: float) -> np.ndarray:
    """A part of a grid holding none of its footprints (and not its largest part) goes to the neighbour
    sharing the longest edge with it, so that every grid is one piece where its units are."""
    grids = grids.copy()
    for _ in range(3):
        parts, idx = shapely.get_parts(grids, return_index=True)
        counts = np.bincount(idx, minlength=len(grids))
        multi = counts[idx] > 1
        if not multi.any():
            break
        area = shapely.area(parts)
        largest = np.zeros(len(parts), dtype=bool)
        order = np.lexsort((-area, idx))
        largest[order[np.r_[True, idx[order][1:] != idx[order][:-1]]]] = True
        holds = shapely.intersects(parts, own[idx]) & (shapely.area(shapely.intersection(parts, own[idx])) > 0)
        crumbs = np.flatnonzero(multi & ~largest & ~holds)
        if not len(crumbs):
            break
        tree = shapely.STRtree(grids)
        give: dict[int, list] = {}
        take: dict[int, list] = {}
        for c in crumbs:
            near = tree.query(parts[c], predicate="intersects")
            near = near[near != idx[c]]
            if not len(near):
                continue
            shared = shapely.length(shapely.intersection(shapely.boundary(parts[c]), grids[near]))
            q = int(near[np.argmax(shared)])
            if shared.max() <= 0:
                continue
            give.setdefault(q, []).append(parts[c])
            take.setdefault(int(idx[c]), []).append(parts[c])
        if not give:
            break
        for g, ps in take.items():
            grids[g] = shapely.difference(grids[g], shapely.union_all(ps), grid_size=precision_m)
        for q, ps in give.items():
            grids[q] = shapely.union(grids[q], shapely.union_all(ps), grid_size=precision_m)
        grids = polygonal_parts(grids)
    return grids


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby-Popper compactness 4πA/P² of each polygon (1 for a circle)."""
    perim = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perim > 0, 4 * np.pi * shapely.area(geoms) / perim ** 2, np.nan)


# ------------------------------------------------------------------ the whole proposal
@dataclass
class Proposal:
    """Proposed grids of one community and how they were made."""

    grids: gpd.GeoDataFrame   # metric CRS: id, name, community_id, households, persons, units + worker fields
    unit_grid: np.ndarray
    units: Units
    band: tuple[int, int]
    maximum: int              # floor(households / floor): the most grids any division can make
    notes: list[str]
    timings: dict[str, float]


def propose_grids(community: gpd.GeoSeries | gpd.GeoDataFrame, buildings: gpd.GeoDataFrame,
                  estates: gpd.GeoDataFrame | None, households: pd.DataFrame, *,
                  band: str | tuple[int, int] = DEFAULT_BAND,
                  current_grids: gpd.GeoDataFrame | None = None, keep_current: bool = False,
                  roads: gpd.GeoDataFrame | None = None, spacing_m: float = 10.0, simplify_m: float = 5.0,
                  road_penalty_m: float = 60.0, precision_m: float = 0.01, code_pattern: CodePattern = STANDARD,
                  taken_codes=(), exact_steps: int = MAX_STEPS) -> Proposal:
    """Balanced grids for one community (all inputs in one metric CRS).

    Parameters
    ----------
    community
        A one-row GeoDataFrame of the community (``id``) or its polygon with ``.name`` as id.
    households
        ``building_id`` (may be null), ``persons``, ``x``, ``y`` (metric location) of the community's households.
    band
        Floor and ceiling of households per grid.
    current_grids
        The community's current grids (``id``, ``name`` and worker fields): the proposal reuses the id (and
        worker) of the current grid each new grid shares most households with; with ``keep_current`` the
        current grids are the start and are changed only as much as the band needs.
    roads
        Road centre lines: growing a grid across one costs ``road_penalty_m`` more, so boundaries follow them.
    code_pattern, taken_codes
        New grids are named by the next free standard codes of the community (its ``code`` column; geo.gridcodes,
        in reading order, after every code in ``taken_codes``, e.g. those of the grid history, so a retired code
        is never reused); a grid keeping a current grid's id keeps its code. Without a community code new grids
        are ``<community>-N01`` … and a note says so.
    exact_steps
        Enumeration steps allowed for the exact division (:func:`partition_units`); 0 uses only the greedy
        growth, repairs and local search.
    """
    import time

    t0 = time.perf_counter()
    lo, hi = parse_band(band) or DEFAULT_BAND
    if isinstance(community, gpd.GeoDataFrame):
        cid = str(community["id"].iloc[0])
        cgeom = community.geometry.iloc[0]
    else:
        cid = str(community.name)
        cgeom = community.geometry if hasattr(community, "geometry") else community
    cgeom = shapely.make_valid(shapely.set_precision(cgeom, precision_m))
    notes: list[str] = []
    units = _community_units(cgeom, buildings, estates, households, ceiling=hi)
    t1 = time.perf_counter()
    tess = tessellate(cgeom, units.piece_geom, units.piece_unit, spacing_m=spacing_m, roads=_boundary_roads(roads))
    t2 = time.perf_counter()
    total = int(units.households.sum())
    maximum = total // lo
    start = None
    if keep_current and current_grids is not None and len(current_grids):
        start = _current_unit_grid(units, current_grids, precision_m)
    if total < lo:
        unit_grid = np.zeros(len(units), dtype=np.int64)
        notes.append(f"the community holds {total} households, fewer than the floor {lo}: one grid")
    else:
        unit_grid = partition_units(units.households, units.x, units.y, tess.pairs, band=(lo, hi),
                                    road_share=tess.road_share, road_penalty_m=road_penalty_m, start=start,
                                    exact_steps=exact_steps, contact=tess.contact)
    n_grids = int(unit_grid.max()) + 1
    t3 = time.perf_counter()
    polys = grid_polygons(cgeom, tess, unit_grid, n_grids, units, simplify_m=simplify_m, precision_m=precision_m)
    t4 = time.perf_counter()
    hh = np.bincount(unit_grid, weights=units.households, minlength=n_grids).astype(np.int64)
    pp = np.bincount(unit_grid, weights=units.persons, minlength=n_grids).astype(np.int64)
    nunits = np.bincount(unit_grid, minlength=n_grids)
    frame = gpd.GeoDataFrame({"community_id": cid, "households": hh, "persons": pp, "units": nunits},
                             geometry=polys, crs=buildings.crs)
    frame = _name_grids(frame, cid, current_grids, precision_m, community=community if isinstance(
        community, gpd.GeoDataFrame) else None, pattern=code_pattern, taken=taken_codes)
    if frame["code"].isna().any():
        notes.append(f"community {cid} has no {code_pattern.community_digits}-digit statistical code "
                     f"(communities.code): its new grids get no standard code and are named {cid}-N01 …")
    notes += _balance_notes(units, hh, band=(lo, hi))
    return Proposal(grids=frame, unit_grid=unit_grid, units=units, band=(lo, hi), maximum=maximum, notes=notes,
                    timings={"units": round(t1 - t0, 3), "tessellate": round(t2 - t1, 3),
                             "partition": round(t3 - t2, 3), "polygons": round(t4 - t3, 3)})


def _community_units(cgeom: shapely.Geometry, buildings: gpd.GeoDataFrame, estates: gpd.GeoDataFrame | None,
                     households: pd.DataFrame, *, ceiling: int) -> Units:
    """The units of one community from its households (counted per building; those without a known building
    join the nearest unit)."""
    bid = buildings["id"].astype(str)
    hb = households["building_id"]
    has_b = hb.notna().to_numpy()
    pos = pd.Index(bid).get_indexer(hb[has_b].astype(str))
    ok = pos >= 0
    persons = households["persons"].astype(float).fillna(0).to_numpy()
    b_hh = np.bincount(pos[ok], minlength=len(buildings))
    b_pp = np.bincount(pos[ok], weights=persons[has_b][ok], minlength=len(buildings))
    loose = ~has_b
    loose[np.flatnonzero(has_b)[~ok]] = True
    units = build_units(cgeom, buildings, estates, b_hh, b_pp,
                        loose_xy=(households["x"].to_numpy()[loose], households["y"].to_numpy()[loose]),
                        loose_persons=persons[loose], ceiling=ceiling)
    return units


def _boundary_roads(roads: gpd.GeoDataFrame | None) -> np.ndarray | None:
    """The road lines a grid boundary should follow (:data:`BOUNDARY_ROADS` when roads carry ``highway``)."""
    road_lines = None
    if roads is not None and len(roads):
        keep = np.ones(len(roads), dtype=bool)
        if "highway" in roads.columns:
            keep = roads["highway"].astype("string").isin(BOUNDARY_ROADS).fillna(False).to_numpy()
        road_lines = roads.geometry.to_numpy()[keep]
    return road_lines


def _balance_notes(units: Units, hh: np.ndarray, *, band: tuple[int, int]) -> list[str]:
    """Notes on what kept grids out of the band: split estates, oversized buildings, grids outside it."""
    lo, hi = band
    notes: list[str] = []
    if units.split_estates:
        notes.append(f"{len(units.split_estates)} estate(s) hold more than {hi} households alone and were split "
                     f"along building lines: {', '.join(units.split_estates[:10])}")
    if units.oversized_buildings:
        notes.append(f"{len(units.oversized_buildings)} building(s) alone hold more than {hi} households and "
                     f"cannot be split: {', '.join(units.oversized_buildings[:10])}")
    out_band = int(((hh < lo) | (hh > hi)).sum())
    if out_band:
        notes.append(f"{out_band} grid(s) stay outside {lo}-{hi}: the whole units around them leave no way "
                     "to balance them without splitting an estate or a building")
    return notes


def _current_unit_grid(units: Units, grids: gpd.GeoDataFrame, precision_m: float) -> np.ndarray:
    """The current grid (position) holding most of each unit's footprint (-1: none)."""
    geoms = grids.geometry.to_numpy()
    pi, gi = shapely.STRtree(geoms).query(units.piece_geom, predicate="intersects")
    area = shapely.area(shapely.intersection(units.piece_geom[pi], geoms[gi], grid_size=precision_m))
    frame = pd.DataFrame({"unit": units.piece_unit[pi], "grid": gi, "area": area})
    best = frame.groupby(["unit", "grid"])["area"].sum().reset_index().sort_values(["unit", "area"],
                                                                                    ascending=[True, False])
    best = best.drop_duplicates("unit")
    out = np.full(len(units), -1, dtype=np.int64)
    out[best["unit"].to_numpy()] = best["grid"].to_numpy()
    return out


#: Fields copied from the current grid whose id a proposed grid takes.
CARRIED_FIELDS = ("name", "worker_name", "worker_phone", "full_time_workers", "info_officer_name",
                  "info_officer_phone", "mediator_name", "mediator_phone", "part_time_workers", "code")


def _name_grids(frame: gpd.GeoDataFrame, cid: str, current: gpd.GeoDataFrame | None,
                precision_m: float, *, community: gpd.GeoDataFrame | None = None,
                pattern: CodePattern = STANDARD, taken=()) -> gpd.GeoDataFrame:
    """Give each proposed grid the id (and name, workers, code) of the current grid it overlaps most, one to one;
    every grid without a code gets the next free code of the community (geo.gridcodes) and a new grid takes
    its code as id (``<community>-N01`` … where the community has no code)."""
    n = len(frame)
    ids = np.full(n, None, dtype=object)
    carried = {f: np.full(n, None, dtype=object) for f in CARRIED_FIELDS}
    if current is not None and len(current):
        cur = current.reset_index(drop=True)
        pi, gi = shapely.STRtree(cur.geometry.to_numpy()).query(frame.geometry.to_numpy(), predicate="intersects")
        area = shapely.area(shapely.intersection(frame.geometry.to_numpy()[pi], cur.geometry.to_numpy()[gi],
                                                 grid_size=precision_m))
        taken_new, taken_old = set(), set()
        for k in np.argsort(-area, kind="stable"):
            if area[k] <= 0:
                break
            p, g = int(pi[k]), int(gi[k])
            if p in taken_new or g in taken_old:
                continue
            taken_new.add(p)
            taken_old.add(g)
            ids[p] = str(cur["id"].iloc[g])
            for f in CARRIED_FIELDS:
                if f in cur.columns:
                    carried[f][p] = cur[f].iloc[g]
    used = set(str(v) for v in ids if v is not None)
    if current is not None:
        used |= set(current["id"].astype(str))
    if community is not None and "code" in community.columns:
        named = gpd.GeoDataFrame({"id": [f"{i:06d}" for i in range(n)], "community_id": cid,
                                  "code": carried["code"]}, geometry=frame.geometry.to_numpy(), crs=frame.crs)
        codes = assign_codes(named, community.assign(id=cid), pattern=pattern, taken=taken)
        carried["code"] = codes.astype(object).where(codes.notna(), None).to_numpy()
    k = 1
    for i in range(n):
        if ids[i] is None and isinstance(carried["code"][i], str) and carried["code"][i] not in used:
            ids[i] = carried["code"][i]
            used.add(ids[i])
        if ids[i] is None:
            while f"{cid}-N{k:02d}" in used:
                k += 1
            ids[i] = f"{cid}-N{k:02d}"
            used.add(ids[i])
    out = frame.copy()
    out.insert(0, "id", ids)
    for f, values in carried.items():
        out[f] = values
    out["name"] = [nm if isinstance(nm, str) and nm else f"{i}网格" for nm, i in zip(out["name"], ids)]
    out["worker_name"] = out["worker_name"].where(out["worker_name"].notna(), "")
    out["worker_phone"] = out["worker_phone"].where(out["worker_phone"].notna(), "")
    return out.sort_values("id").reset_index(drop=True)
