"""The walking network: a graph of walkable road segments, and points attached to it.

Built from the ``roads`` layer in the metric CRS. Lines join where they share a
vertex (after rounding to ``NetworkSettings.vertex_precision_m``); a dangling
line end within ``snap_tolerance_m`` of another line is joined to it (to its
nearest vertex if one is that close, else to a new vertex on its nearest
segment). Lines that cross without a shared vertex (bridges, tunnels) stay
apart. Every vertex is a node; edges weigh their length in metres; walking
ignores one-way rules.

Example
-------
>>> import geopandas as gpd
>>> import numpy as np
>>> from shapely.geometry import LineString
>>> roads = gpd.GeoDataFrame({"highway": ["residential", "residential"]},
...                          geometry=[LineString([(0, 0), (100, 0)]), LineString([(100, 0), (100, 100)])],
...                          crs=32648)
>>> graph = walking_graph(roads)
>>> graph.stats["nodes"], graph.stats["length_km"]
(3, 0.2)
>>> att = attach_points(graph, np.array([50.0, 500.0]), np.array([10.0, 500.0]), max_distance=200)
>>> att.segment.tolist(), att.off.tolist()
([0, -1], [10.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: OSM highway classes nobody may walk along (trunk roads become walkable with a footway/sidewalk tag).
NOT_WALKABLE = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "construction", "proposed", "raceway",
    "bus_guideway", "busway", "abandoned", "disused", "planned", "escape",
})
#: Classes that are not walkable unless a footway says so.
NEEDS_FOOTWAY = frozenset({"trunk", "trunk_link"})
_FOOT_YES = {"yes", "designated", "permissive", "official"}
_FOOT_NO = {"no", "private", "use_sidepath"}
_SIDEWALK_YES = {"both", "left", "right", "yes", "separate"}
#: Radius (m) of the first, box-based search for the segment nearest to a point.
_FIRST_RADIUS_M = 30.0


@dataclass(frozen=True)
class NetworkSettings:
    """Tolerances of the walking network (metres)."""

    #: Vertices closer than this are one node (floating-point noise of reprojection).
    vertex_precision_m: float = 0.01
    #: A dangling line end this close to another line is joined to it (OSM near misses).
    snap_tolerance_m: float = 1.0
    #: An origin or facility farther than this from every walkable road is reported, not attached.
    max_attach_m: float = 250.0


@dataclass
class WalkGraph:
    """Nodes, undirected segments and the sparse adjacency of the walking network."""

    x: np.ndarray
    y: np.ndarray
    u: np.ndarray  # segment start node
    v: np.ndarray  # segment end node
    length: np.ndarray  # metres
    matrix: sp.csr_matrix = field(repr=False)
    component: np.ndarray = field(repr=False)  # component id of each node
    main_component: int = 0
    attachable: np.ndarray | None = field(default=None, repr=False)  # segments points may attach to (not leaf edges)
    _tree: shapely.STRtree | None = field(default=None, repr=False)
    _segments: np.ndarray | None = field(default=None, repr=False)
    stats: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.x)

    @property
    def segments(self) -> np.ndarray:
        if self._segments is None:
            coords = np.stack([np.column_stack([self.x[self.u], self.y[self.u]]),
                               np.column_stack([self.x[self.v], self.y[self.v]])], axis=1)
            self._segments = shapely.linestrings(coords)
        return self._segments

    @property
    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            segs = self.segments if self.attachable is None else np.where(self.attachable, self.segments, None)
            self._tree = shapely.STRtree(segs)
        return self._tree


def walkable(roads: gpd.GeoDataFrame) -> np.ndarray:
    """True for each road a person may walk along, from its OSM tags where present."""
    n = len(roads)
    ok = np.ones(n, dtype=bool)

    def col(name):
        if name in roads.columns:
            return roads[name].astype("string").str.strip().str.lower().fillna("").to_numpy()
        return np.full(n, "", dtype=object)

    highway, foot, sidewalk, footway = col("highway"), col("foot"), col("sidewalk"), col("footway")
    has_footway = np.isin(foot, list(_FOOT_YES)) | np.isin(sidewalk, list(_SIDEWALK_YES)) | (footway != "")
    ok &= ~np.isin(highway, list(NOT_WALKABLE - NEEDS_FOOTWAY))
    ok &= ~(np.isin(highway, list(NEEDS_FOOTWAY)) & ~has_footway)
    ok &= ~np.isin(foot, list(_FOOT_NO))
    return ok


def walking_graph(roads: gpd.GeoDataFrame, *, settings: NetworkSettings = NetworkSettings()) -> WalkGraph:
    """Build the walking graph of the walkable roads (metric CRS)."""
    keep = walkable(roads)
    lines = shapely.get_parts(roads.geometry.to_numpy()[keep])
    lines = lines[shapely.get_type_id(lines) == 1]
    coords, line_of = shapely.get_coordinates(lines, return_index=True)
    if len(coords) == 0:
        raise ValueError("no walkable road: the roads layer holds no walkable line")
    q = np.round(coords / settings.vertex_precision_m).astype(np.int64)
    q -= q.min(axis=0)
    span = int(q[:, 1].max()) + 1
    key, first_of, node_of = np.unique(q[:, 0] * span + q[:, 1], return_index=True, return_inverse=True)
    node_of = node_of.ravel()
    xy = np.round(coords[first_of] / settings.vertex_precision_m) * settings.vertex_precision_m
    same_line = line_of[1:] == line_of[:-1]
    u = node_of[:-1][same_line]
    v = node_of[1:][same_line]
    seg_line = line_of[:-1][same_line]
    # dangling ends of lines: first and last vertex of each line
    starts = np.r_[0, np.flatnonzero(~same_line) + 1]
    ends = np.r_[np.flatnonzero(~same_line), len(coords) - 1]
    end_nodes = np.unique(np.r_[node_of[starts], node_of[ends]])
    x, y = xy[:, 0].astype(float), xy[:, 1].astype(float)
    x, y, u, v, snapped = _snap_dangling(x, y, u, v, seg_line, end_nodes, settings.snap_tolerance_m)
    graph = _assemble(x, y, u, v)
    graph.stats.update({"roads": int(len(roads)), "walkable_roads": int(keep.sum()),
                        "not_walkable_roads": int((~keep).sum()), "snapped_ends": int(snapped)})
    return graph


def _assemble(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> WalkGraph:
    """Drop zero-length and duplicate segments and build the adjacency."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    keep = lo != hi
    pairs = np.unique(np.column_stack([lo[keep], hi[keep]]), axis=0)
    u, v = pairs[:, 0], pairs[:, 1]
    length = np.hypot(x[u] - x[v], y[u] - y[v])
    n = len(x)
    matrix = sp.coo_matrix((np.r_[length, length], (np.r_[u, v], np.r_[v, u])), shape=(n, n)).tocsr()
    used = np.zeros(n, dtype=bool)
    used[u] = used[v] = True
    n_comp, labels = connected_components(matrix, directed=False)
    sizes = np.bincount(labels[used], minlength=n_comp) if used.any() else np.zeros(n_comp, int)
    main = int(np.argmax(sizes)) if len(sizes) else 0
    real = np.unique(labels[used])
    stats = {"nodes": int(used.sum()), "segments": int(len(u)), "length_km": round(float(length.sum()) / 1000, 3),
             "components": int(len(real)), "main_component_nodes": int(sizes[main]) if len(sizes) else 0}
    return WalkGraph(x=x, y=y, u=u, v=v, length=length, matrix=matrix, component=labels, main_component=main, stats=stats)


def _snap_dangling(x, y, u, v, seg_line, end_nodes, tol):
    """Join dangling line ends to a node or a segment of another line within ``tol``."""
    if tol <= 0 or len(end_nodes) == 0:
        return x, y, u, v, 0
    degree = np.bincount(np.r_[u, v], minlength=len(x))
    dangling = end_nodes[degree[end_nodes] == 1]
    if len(dangling) == 0:
        return x, y, u, v, 0
    # the line each dangling node ends (degree 1: exactly one segment)
    seg_of_node = np.full(len(x), -1)
    seg_of_node[u] = np.arange(len(u))
    seg_of_node[v] = np.arange(len(v))
    own_line = seg_line[seg_of_node[dangling]]
    # 1) to the nearest node of another line
    node_line = np.full(len(x), -1)
    node_line[u] = seg_line
    node_line[v] = seg_line  # nodes shared by lines keep one of them; enough to exclude the own line's vertices
    tree = cKDTree(np.column_stack([x, y]))
    dist, idx = tree.query(np.column_stack([x[dangling], y[dangling]]), k=4, distance_upper_bound=tol)
    target = np.full(len(dangling), -1)
    for k in range(idx.shape[1]):  # k ≤ 4 candidates, vectorised over nodes
        cand = idx[:, k]
        ok = (target < 0) & np.isfinite(dist[:, k]) & (cand != dangling)
        ok[ok] &= node_line[cand[ok]] != own_line[ok]
        target[ok] = cand[ok]
    remap = np.arange(len(x))
    merged = target >= 0
    # two dangling ends that find each other merge once, the larger id into the smaller: no cycles
    src_nodes, dst_nodes = dangling[merged], target[merged]
    both = np.isin(dst_nodes, dangling)
    lo, hi = np.minimum(src_nodes, dst_nodes), np.maximum(src_nodes, dst_nodes)
    src_nodes = np.where(both, hi, src_nodes)
    dst_nodes = np.where(both, lo, dst_nodes)
    remap[src_nodes] = dst_nodes
    for _ in range(32):  # follow chains a -> b -> c
        nxt = remap[remap]
        if np.array_equal(nxt, remap):
            break
        remap = nxt
    u, v = remap[u], remap[v]
    n_snapped = int(len(np.unique(src_nodes)))
    # 2) the rest: onto the nearest segment of another line, splitting it
    rest = dangling[~merged]
    rest_line = own_line[~merged]
    if len(rest):
        segs = shapely.linestrings(np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1))
        pts = shapely.points(x[rest], y[rest])
        pi, si = shapely.STRtree(segs).query(pts, predicate="dwithin", distance=tol)
        ok = seg_line[si] != rest_line[pi]
        pi, si = pi[ok], si[ok]
        if len(pi):
            d = shapely.distance(pts[pi], segs[si])
            order = np.lexsort((si, d, pi))
            first = np.ones(len(order), bool)
            first[1:] = pi[order][1:] != pi[order][:-1]
            pi, si = pi[order][first], si[order][first]
            t = shapely.line_locate_point(segs[si], pts[pi])
            proj = shapely.line_interpolate_point(segs[si], t)
            new_ids = len(x) + np.arange(len(pi))
            x = np.r_[x, shapely.get_x(proj)]
            y = np.r_[y, shapely.get_y(proj)]
            u, v, seg_line = _split_segments(u, v, seg_line, si, t, new_ids)
            # connect each dangling end to its new vertex
            u = np.r_[u, rest[pi]]
            v = np.r_[v, new_ids]
            seg_line = np.r_[seg_line, rest_line[pi]]
            n_snapped += len(pi)
    return x, y, u, v, n_snapped


def _split_segments(u, v, seg_line, seg, t, new_nodes):
    """Split segments ``seg`` at fractions-by-length ``t`` (metres from u) with ``new_nodes``; several per segment allowed."""
    order = np.lexsort((t, seg))
    seg, new_nodes = seg[order], new_nodes[order]
    first = np.ones(len(seg), bool)
    first[1:] = seg[1:] != seg[:-1]
    last = np.ones(len(seg), bool)
    last[:-1] = seg[1:] != seg[:-1]
    # chain: u -> n1 -> n2 -> ... -> v
    prev = np.where(first, u[seg], np.r_[-1, new_nodes[:-1]])
    pieces_u = np.r_[prev, new_nodes[last]]
    pieces_v = np.r_[new_nodes, v[seg[last]]]
    pieces_line = np.r_[seg_line[seg], seg_line[seg[last]]]
    keep = np.ones(len(u), bool)
    keep[seg] = False
    return np.r_[u[keep], pieces_u], np.r_[v[keep], pieces_v], np.r_[seg_line[keep], pieces_line]


@dataclass
class Attachment:
    """Where points join the network: segment, metres from its start node, metres off the network."""

    segment: np.ndarray  # -1 when farther than max_distance
    along: np.ndarray
    off: np.ndarray

    @property
    def attached(self) -> np.ndarray:
        return self.segment >= 0


def attach_points(graph: WalkGraph, x: np.ndarray, y: np.ndarray, *, max_distance: float) -> Attachment:
    """The nearest point on a walkable segment for each (x, y), within ``max_distance`` metres."""
    n = len(x)
    seg = np.full(n, -1, dtype=np.int64)
    along = np.zeros(n)
    off = np.zeros(n)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any() and len(graph.u):
        where = np.flatnonzero(ok)
        px, py = x[ok], y[ok]
        # first the segments whose boxes meet a small box round each point (most points lie near a street),
        # then a nearest-neighbour search for the few points left; ties go to the lowest segment number
        r = min(_FIRST_RADIUS_M, max_distance)
        pi, si = graph.tree.query(shapely.box(px - r, py - r, px + r, py + r), predicate=None)
        pts = shapely.points(px, py)
        d = shapely.distance(pts[pi], graph.segments[si])
        near = d <= r
        pi, si, d = pi[near], si[near], d[near]
        order = np.lexsort((si, d, pi))
        first = np.ones(len(order), bool)
        first[1:] = pi[order][1:] != pi[order][:-1]
        best = np.full(len(px), -1, dtype=np.int64)
        best[pi[order][first]] = si[order][first]
        rest = np.flatnonzero(best < 0)
        if len(rest) and max_distance > r:
            qi, qs = graph.tree.query_nearest(pts[rest], max_distance=max_distance, all_matches=False)
            best[rest[qi]] = qs
        got = best >= 0
        idx = where[got]
        seg[idx] = best[got]
        along[idx] = shapely.line_locate_point(graph.segments[best[got]], pts[got])
        off[idx] = shapely.distance(graph.segments[best[got]], pts[got])
    return Attachment(segment=seg, along=along, off=off)


def insert_nodes(graph: WalkGraph, att: Attachment) -> tuple[WalkGraph, np.ndarray]:
    """A new graph in which each attached point splits its segment at a new node, and also gets a leaf
    node of its own joined by its off-network distance. Returns the graph and the leaf node per point (-1
    where not attached)."""
    ok = att.attached
    leaf = np.full(len(ok), -1, dtype=np.int64)
    if not ok.any():
        return graph, leaf
    seg = att.segment[ok]
    along = att.along[ok]
    n0 = graph.n_nodes
    k = len(seg)
    split_ids = n0 + np.arange(k)
    leaf_ids = n0 + k + np.arange(k)
    frac = np.where(graph.length[seg] > 0, along / np.maximum(graph.length[seg], 1e-12), 0)
    sx = graph.x[graph.u[seg]] + frac * (graph.x[graph.v[seg]] - graph.x[graph.u[seg]])
    sy = graph.y[graph.u[seg]] + frac * (graph.y[graph.v[seg]] - graph.y[graph.u[seg]])
    # the leaf sits off the segment by the off-network distance; its position is only for display
    x = np.r_[graph.x, sx, sx]
    y = np.r_[graph.y, sy, sy]
    u, v, _ = _split_segments(graph.u, graph.v, np.zeros(len(graph.u), int), seg, along, split_ids)
    lengths_uv = np.hypot(x[u] - x[v], y[u] - y[v])
    # leaf edges carry the off-network distance, not the (zero) distance between drawn positions
    u_all = np.r_[u, split_ids]
    v_all = np.r_[v, leaf_ids]
    w_all = np.r_[lengths_uv, np.maximum(att.off[ok], 1e-9)]
    n = len(x)
    matrix = sp.coo_matrix((np.r_[w_all, w_all], (np.r_[u_all, v_all], np.r_[v_all, u_all])), shape=(n, n)).tocsr()
    # zero-length split pieces (a point exactly on a vertex) must stay connected: csgraph drops explicit zeros
    matrix.data = np.maximum(matrix.data, 1e-9)
    component = np.r_[graph.component, graph.component[graph.u[seg]], graph.component[graph.u[seg]]]
    attachable = np.r_[np.ones(len(u), bool), np.zeros(k, bool)]
    new = WalkGraph(x=x, y=y, u=u_all, v=v_all, length=w_all, matrix=matrix, component=component,
                    main_component=graph.main_component, attachable=attachable, stats=dict(graph.stats))
    leaf[np.flatnonzero(ok)] = leaf_ids
    return new, leaf
