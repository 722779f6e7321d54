"""15-minute life-circle reach (15分钟社区生活圈): walking minutes from every household to each service.

One multi-source Dijkstra per facility category over the walking network
(scipy's C implementation) gives the distance from every node to the nearest
facility of that category; an origin attached to a segment then takes the
shorter way round its segment. Distances do not depend on the walking speed,
so both speed profiles come from the same run. Facilities join the network at
the nearest point on an edge (the network is split there) and their
off-network walk counts; households leave a gated estate by its gates.

:class:`ReachModel` keeps the distances in memory and answers what-if edits
("add a facility here", "remove facility F") by a bounded search from the
changed facility, touching only the origins whose nearest facility changes.

Example
-------
One road, one kindergarten at its west end, two homes: the far one is beyond the 30-minute horizon until
a kindergarten is added next to it.

>>> import geopandas as gpd
>>> import numpy as np
>>> from shapely.geometry import LineString, Point
>>> from geo.lifecircle import household_origins
>>> roads = gpd.GeoDataFrame({"highway": ["residential"]}, geometry=[LineString([(0, 0), (2000, 0)])],
...                          crs=32648)
>>> facilities = gpd.GeoDataFrame({"id": ["F1"], "category": ["kindergarten"]}, geometry=[Point(0, 10)],
...                               crs=32648)
>>> origins, _ = household_origins(np.array([600.0, 1800.0]), np.array([10.0, 10.0]),
...                                np.array([None, None], dtype=object), buildings=None, estates=None, gates=None)
>>> config = ReachConfig(categories=(Category(id="kindergarten", name_zh="幼儿园", name_en="Kindergarten",
...                                           tier=10, basic=True, elderly=False),),
...                      speeds={"general": 1.0, "elderly": 0.92}, detour_factor=1.3)
>>> model = ReachModel.build(roads, facilities, origins, config=config)
>>> model.origin_minutes("kindergarten", "general").round(1)
array([10.3,  nan])
>>> model.add_facility("kindergarten", 1800.0, 10.0)  # the origins whose nearest facility changed
array([1])
>>> model.origin_minutes("kindergarten", "general").round(1)
array([10.3,  0.3])
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.errors import ConfigError
from geo.network import Attachment, NetworkSettings, WalkGraph, attach_points, insert_nodes, walking_graph

CONFIG_NAME = "categories.toml"
METHOD_NETWORK = "network"
METHOD_ESTIMATE = "straight_line_estimate"


@dataclass(frozen=True)
class Category:
    """A facility category of the life circle and the walking time it must be within."""

    id: str
    name_zh: str
    name_en: str
    tier: int  # minutes: 5, 10 or 15
    basic: bool
    elderly: bool


#: Walks longer than this many minutes are not reported (null, "not within the horizon").
DEFAULT_HORIZON_MIN = 30.0


@dataclass(frozen=True)
class ReachConfig:
    """Categories, walking speeds (m/s), the straight-line detour factor and the reporting horizon (minutes)."""

    categories: tuple[Category, ...]
    speeds: dict
    detour_factor: float
    source: str = "built-in"
    horizon_min: float = DEFAULT_HORIZON_MIN

    @property
    def horizon_m(self) -> float:
        """The longest walk (metres) that can be reported: the horizon at the fastest speed."""
        return self.horizon_min * 60.0 * max(self.speeds.values())

    @property
    def life_circle_m(self) -> float:
        """The longest tier's walk (metres) at the fastest speed: how far a settlement's life circle reaches."""
        return max(c.tier for c in self.categories) * 60.0 * max(self.speeds.values())

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def category(self, cid: str) -> Category:
        for c in self.categories:
            if c.id == cid:
                return c
        msg = f"unknown facility category {cid!r} (known: {', '.join(self.ids)})"
        raise ConfigError(msg)


def load_config(text: bytes | None = None, *, source: str = "built-in") -> ReachConfig:
    """The facility categories, speeds and horizon of a ``categories.toml``, checked.

    Parameters
    ----------
    text
        The data folder's ``categories.toml`` as read (the application reads it: :mod:`gridcover.io.folder`);
        ``None``: gridcover's default, ``geo/categories.toml``.
    source
        How messages name the file (its path).

    Examples
    --------
    >>> load_config().source
    'built-in'
    >>> load_config(b"[[category]]\\nid = 'clinic'\\ntier = 15\\n", source="categories.toml").ids
    ['clinic']
    """
    if text is None:
        text, source = resources.files("geo").joinpath(CONFIG_NAME).read_bytes(), "built-in"
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not a valid TOML file: {exc}") from None
    cats = []
    seen = set()
    for i, row in enumerate(doc.get("category", [])):
        try:
            cat = Category(id=str(row["id"]), name_zh=str(row.get("name_zh", row["id"])),
                           name_en=str(row.get("name_en", row["id"])), tier=int(row["tier"]),
                           basic=bool(row.get("basic", False)), elderly=bool(row.get("elderly", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: category {i + 1}: missing or bad field {exc}") from None
        if cat.tier <= 0:
            raise ConfigError(f"{source}: category {cat.id!r}: tier must be a positive number of minutes")
        if cat.id in seen:
            raise ConfigError(f"{source}: category {cat.id!r} is declared twice")
        seen.add(cat.id)
        cats.append(cat)
    if not cats:
        raise ConfigError(f"{source}: declares no [[category]]")
    speeds = doc.get("speeds", {})
    try:
        speeds = {"general": float(speeds.get("general", 1.0)), "elderly": float(speeds.get("elderly", 0.92))}
        detour = float(doc.get("estimate", {}).get("detour_factor", 1.3))
        horizon = float(doc.get("horizon", {}).get("minutes", DEFAULT_HORIZON_MIN))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad speed, detour factor or horizon: {exc}") from None
    if min(speeds.values()) <= 0 or detour < 1:
        raise ConfigError(f"{source}: speeds must be positive and the detour factor at least 1")
    longest = max(c.tier for c in cats)
    if horizon < longest:
        raise ConfigError(f"{source}: [horizon] minutes = {horizon:g} is shorter than the longest tier ({longest} min)")
    return ReachConfig(categories=tuple(cats), speeds=speeds, detour_factor=detour, source=source, horizon_min=horizon)


@dataclass
class Origins:
    """Places households walk from. Each origin has one or more entries onto the network (a building has
    one; a building of a gated estate has one per gate, reached by a straight walk inside the estate)."""

    x: np.ndarray  # the origin's own location (metric)
    y: np.ndarray
    entry_origin: np.ndarray  # origin index of each entry
    entry_x: np.ndarray  # where the entry joins (the origin itself or a gate)
    entry_y: np.ndarray
    entry_extra: np.ndarray  # metres walked before the entry point (inside the estate)

    @classmethod
    def simple(cls, x: np.ndarray, y: np.ndarray) -> "Origins":
        n = len(x)
        return cls(x=x, y=y, entry_origin=np.arange(n), entry_x=x, entry_y=y, entry_extra=np.zeros(n))

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class ReachModel:
    """Distances from every network node to the nearest facility of each category, kept for what-if edits."""

    config: ReachConfig
    method: str
    graph: WalkGraph | None
    origins: Origins
    facilities: gpd.GeoDataFrame  # id, category, geometry (metric); added ones appended
    entry_att: Attachment | None = None
    node_dist: dict = field(default_factory=dict)  # category -> distance per node (network method)
    node_source: dict = field(default_factory=dict)  # category -> facility row per node
    facility_node: np.ndarray | None = None  # leaf node of each facility (-1: not attached)
    facility_attached: np.ndarray | None = None
    origin_dist: dict = field(default_factory=dict)  # category -> metres per origin
    entry_order: np.ndarray | None = None
    entry_starts: np.ndarray | None = None
    settings: NetworkSettings = field(default_factory=NetworkSettings)
    stats: dict = field(default_factory=dict)
    _node_entries: sp.csr_matrix | None = None
    #: what-if facilities' straight walks along their own segment: category -> {facility row: (entries, metres)}
    _direct_walks: dict = field(default_factory=dict)
    #: what-if facilities, which are not nodes of the graph: facility row -> (category, segment, along, off)
    _virtual: dict = field(default_factory=dict)

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, roads: gpd.GeoDataFrame | None, facilities: gpd.GeoDataFrame | None, origins: Origins, *,
              config: ReachConfig, settings: NetworkSettings = NetworkSettings()) -> "ReachModel":
        """Build the network (if roads are given), attach facilities and origins, run one search per category."""
        if facilities is None:
            facilities = gpd.GeoDataFrame({"id": [], "category": []}, geometry=[], crs=None)
        facilities = facilities[["id", "category", "geometry"]].reset_index(drop=True)
        order = np.lexsort((origins.entry_origin,))
        starts = np.r_[0, np.flatnonzero(np.diff(origins.entry_origin[order])) + 1] if len(order) else np.zeros(0, int)
        if roads is None or len(roads) == 0:
            model = cls(config=config, method=METHOD_ESTIMATE, graph=None, origins=origins, facilities=facilities,
                        entry_order=order, entry_starts=starts, settings=settings)
            model.facility_attached = np.ones(len(facilities), bool)
            for cat in config.ids:
                model.origin_dist[cat] = model._straight_line(cat)
            model.stats = {"method": METHOD_ESTIMATE, "detour_factor": config.detour_factor}
            return model
        base = walking_graph(roads, settings=settings)
        fx = shapely.get_x(facilities.geometry.to_numpy()) if len(facilities) else np.zeros(0)
        fy = shapely.get_y(facilities.geometry.to_numpy()) if len(facilities) else np.zeros(0)
        f_att = attach_points(base, fx, fy, max_distance=settings.max_attach_m)
        graph, leaf = insert_nodes(base, f_att)
        entry_att = attach_points(graph, origins.entry_x, origins.entry_y, max_distance=settings.max_attach_m)
        model = cls(config=config, method=METHOD_NETWORK, graph=graph, origins=origins, facilities=facilities,
                    entry_att=entry_att, facility_node=leaf, facility_attached=leaf >= 0,
                    entry_order=order, entry_starts=starts, settings=settings)
        for cat in config.ids:
            model._search(cat)
            model.origin_dist[cat] = model._origin_distance(model.node_dist[cat])
        model.stats = model._network_stats(base)
        return model

    def _search(self, cat: str) -> None:
        rows = np.flatnonzero((self.facilities["category"].to_numpy() == cat) & (self.facility_node >= 0)
                              if len(self.facilities) else np.zeros(0, bool))
        n = self.graph.n_nodes
        if len(rows) == 0:
            self.node_dist[cat] = np.full(n, np.inf)
            self.node_source[cat] = np.full(n, -1, dtype=np.int64)
            return
        dist, _, src = dijkstra(self.graph.matrix, directed=False, indices=self.facility_node[rows],
                                min_only=True, return_predecessors=True)
        node_to_row = np.full(n, -1, dtype=np.int64)
        node_to_row[self.facility_node[rows]] = rows
        self.node_dist[cat] = dist
        self.node_source[cat] = np.where(src >= 0, node_to_row[np.maximum(src, 0)], -1)

    def _entry_distance(self, node_dist: np.ndarray, entries: np.ndarray | None = None) -> np.ndarray:
        att = self.entry_att
        seg = att.segment if entries is None else att.segment[entries]
        along = att.along if entries is None else att.along[entries]
        off = att.off if entries is None else att.off[entries]
        extra = self.origins.entry_extra if entries is None else self.origins.entry_extra[entries]
        g = self.graph
        ok = seg >= 0
        s = np.maximum(seg, 0)
        via_u = node_dist[g.u[s]] + along
        via_v = node_dist[g.v[s]] + (g.length[s] - along)
        d = np.minimum(via_u, via_v) + off + extra
        return np.where(ok, d, np.inf)

    def _origin_distance(self, node_dist: np.ndarray) -> np.ndarray:
        d = self._entry_distance(node_dist)
        return self._reduce_entries(d)

    def _reduce_entries(self, entry_dist: np.ndarray) -> np.ndarray:
        n = len(self.origins)
        out = np.full(n, np.inf)
        if len(entry_dist):
            red = np.minimum.reduceat(entry_dist[self.entry_order], self.entry_starts)
            out[self.origins.entry_origin[self.entry_order][self.entry_starts]] = red
        return out

    def _straight_line(self, cat: str) -> np.ndarray:
        rows = np.flatnonzero(self.facilities["category"].to_numpy() == cat) if len(self.facilities) else np.zeros(0, int)
        n = len(self.origins)
        if len(rows) == 0:
            return np.full(n, np.inf)
        geoms = self.facilities.geometry.to_numpy()[rows]
        tree = cKDTree(np.column_stack([shapely.get_x(geoms), shapely.get_y(geoms)]))
        ok = np.isfinite(self.origins.x)
        out = np.full(n, np.inf)
        if ok.any():
            d, _ = tree.query(np.column_stack([self.origins.x[ok], self.origins.y[ok]]))
            out[ok] = d * self.config.detour_factor
        return out

    def _network_stats(self, base: WalkGraph) -> dict:
        g = self.graph
        att = self.entry_att
        entry_comp = np.where(att.segment >= 0, g.component[g.u[np.maximum(att.segment, 0)]], -1)
        stranded_entry = (att.segment >= 0) & (entry_comp != g.main_component)
        # an origin is stranded when none of its entries reaches the main network
        main_entry = ((att.segment >= 0) & ~stranded_entry).astype(float)
        reaches_main = self._reduce_entries(-main_entry) < 0
        attached_any = self._reduce_entries(np.where(att.segment >= 0, 0.0, np.inf)) == 0
        return {
            "method": METHOD_NETWORK,
            **base.stats,
            "facilities": int(len(self.facilities)),
            "facilities_not_attached": int((~self.facility_attached).sum()),
            "facilities_on_fragments": int(((self.facility_node >= 0) &
                                            (g.component[np.maximum(self.facility_node, 0)] != g.main_component)).sum()),
            "origins": int(len(self.origins)),
            "origins_not_attached": int((~attached_any).sum()),
            "origins_on_fragments": int((attached_any & ~reaches_main).sum()),
            "max_attach_m": self.settings.max_attach_m,
            "snap_tolerance_m": self.settings.snap_tolerance_m,
        }

    # ---- answers ----------------------------------------------------------------------------
    def origin_minutes(self, cat: str, profile: str = "general") -> np.ndarray:
        """Minutes from each origin to the nearest facility of ``cat`` (NaN: none reachable within the
        reporting horizon ``config.horizon_min``)."""
        d = self.origin_dist[cat]
        m = d / self.config.speeds[profile] / 60.0
        return np.where(np.isfinite(m) & (m <= self.config.horizon_min), m, np.nan)

    def origin_attached(self) -> np.ndarray:
        """True for origins with at least one entry on the network (always true for the estimate)."""
        if self.method == METHOD_ESTIMATE:
            return np.isfinite(self.origins.x)
        return self._reduce_entries(np.where(self.entry_att.segment >= 0, 0.0, np.inf)) == 0

    def origin_on_fragment(self) -> np.ndarray:
        """True for attached origins whose every entry lies on a fragment cut off from the main network."""
        if self.method == METHOD_ESTIMATE:
            return np.zeros(len(self.origins), bool)
        g, att = self.graph, self.entry_att
        comp = np.where(att.segment >= 0, g.component[g.u[np.maximum(att.segment, 0)]], -1)
        on_main = np.where((att.segment >= 0) & (comp == g.main_component), -1.0, 0.0)
        return self.origin_attached() & ~(self._reduce_entries(on_main) < 0)

    def use_components(self, component_of) -> None:
        """Take the network's components from a larger network this one is a part of.

        ``component_of(x, y)`` gives, for node coordinates, the component label in the larger network and -1
        for a node it does not hold, and has an attribute ``main`` (the larger network's main component). A
        part's component lies inside one component of the whole, so each takes the label of any of its nodes
        the whole holds; origins are then on a fragment exactly when they are in the whole network.
        """
        g = self.graph
        label = np.asarray(component_of(g.x, g.y))
        found = label >= 0
        first = pd.Series(label[found]).groupby(g.component[found]).first()
        g.component = first.reindex(g.component).fillna(-2).to_numpy(dtype=np.int64)
        g.main_component = int(component_of.main)

    def for_origins(self, origins: Origins) -> "ReachModel":
        """The same network, facilities and distances measured from other origins (no new search)."""
        order = np.lexsort((origins.entry_origin,))
        starts = np.r_[0, np.flatnonzero(np.diff(origins.entry_origin[order])) + 1] if len(order) else np.zeros(0, int)
        other = ReachModel(config=self.config, method=self.method, graph=self.graph, origins=origins,
                           facilities=self.facilities, node_dist=self.node_dist, node_source=self.node_source,
                           facility_node=self.facility_node, facility_attached=self.facility_attached,
                           entry_order=order, entry_starts=starts, settings=self.settings)
        if self.method == METHOD_ESTIMATE:
            for cat in self.config.ids:
                other.origin_dist[cat] = other._straight_line(cat)
            return other
        other.entry_att = attach_points(self.graph, origins.entry_x, origins.entry_y, max_distance=self.settings.max_attach_m)
        for cat in self.config.ids:
            d = other._entry_distance(self.node_dist[cat])
            for row, (vcat, seg, t, off) in self._virtual.items():
                if vcat != cat:
                    continue
                on = other.entry_att.segment == seg
                d[on] = np.minimum(d[on], np.abs(other.entry_att.along[on] - t) + other.entry_att.off[on] + off
                                   + origins.entry_extra[on])
            other.origin_dist[cat] = other._reduce_entries(d)
        return other

    # ---- what-if ------------------------------------------------------------------------------
    def _node_entry_index(self) -> sp.csr_matrix:
        """Sparse node × entry incidence: which entries hang on each segment end."""
        if self._node_entries is None:
            att, g = self.entry_att, self.graph
            ok = np.flatnonzero(att.segment >= 0)
            s = att.segment[ok]
            rows = np.r_[g.u[s], g.v[s]]
            cols = np.r_[ok, ok]
            self._node_entries = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)),
                                               shape=(g.n_nodes, len(att.segment)))
        return self._node_entries

    def _update_entries(self, cat: str, changed_nodes: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Recompute the origins hanging on ``changed_nodes`` (plus ``extra`` entries); return changed origins."""
        inc = self._node_entry_index()
        entries = np.unique(inc[changed_nodes].indices) if len(changed_nodes) else np.zeros(0, int)
        if extra is not None and len(extra):
            entries = np.union1d(entries, extra)
        if len(entries) == 0:
            return np.zeros(0, dtype=np.int64)
        origins = np.unique(self.origins.entry_origin[entries])
        # all entries of those origins (a gated building has several)
        mask = np.isin(self.origins.entry_origin, origins)
        all_entries = np.flatnonzero(mask)
        d = self._entry_distance(self.node_dist[cat], all_entries)
        for bonus_entries, direct in self._direct_walks.get(cat, {}).values():
            hit = np.isin(all_entries, bonus_entries)
            if hit.any():
                pos = pd.Index(bonus_entries).get_indexer(all_entries[hit])
                d[hit] = np.minimum(d[hit], direct[pos])
        best = pd.Series(d).groupby(self.origins.entry_origin[all_entries]).min()
        new = best.reindex(origins).to_numpy()
        old = self.origin_dist[cat][origins]
        changed = origins[~np.isclose(new, old, rtol=0, atol=1e-6) & ~(np.isinf(new) & np.isinf(old))]
        self.origin_dist[cat][origins] = new
        return changed


    def add_facility(self, cat: str, x: float, y: float, *, facility_id: str | None = None) -> np.ndarray:
        """Add a facility of ``cat`` at (x, y) (metric); returns the origins whose distance changed.

        Bounded search: the new facility can only improve nodes whose improved shortest path runs through
        improved nodes, so a limited Dijkstra from its segment ends is extended until its frontier holds no
        improved node.
        """
        self.config.category(cat)
        fid = facility_id or f"whatif-{len(self.facilities) + 1}"
        row = len(self.facilities)
        self.facilities = pd.concat([self.facilities, gpd.GeoDataFrame(
            {"id": [fid], "category": [cat]}, geometry=[shapely.Point(x, y)], crs=self.facilities.crs)], ignore_index=True)
        if self.method == METHOD_ESTIMATE:
            d = np.hypot(self.origins.x - x, self.origins.y - y) * self.config.detour_factor
            improved = d < self.origin_dist[cat]
            self.origin_dist[cat] = np.minimum(self.origin_dist[cat], d)
            self.facility_attached = np.r_[self.facility_attached, True]
            return np.flatnonzero(improved)
        att = attach_points(self.graph, np.array([x]), np.array([y]), max_distance=self.settings.max_attach_m)
        self.facility_node = np.r_[self.facility_node, -1]
        self.facility_attached = np.r_[self.facility_attached, att.attached[0]]
        if not att.attached[0]:
            return np.zeros(0, dtype=np.int64)
        g = self.graph
        s = int(att.segment[0])
        t, off = float(att.along[0]), float(att.off[0])
        self._virtual[row] = (cat, s, t, off)
        starts = np.array([g.u[s], g.v[s]])
        start_cost = np.array([off + t, off + g.length[s] - t])
        old = self.node_dist[cat]
        limit = max(float(np.nanmax(np.where(np.isfinite(old[starts]), old[starts], 0))), 500.0)
        while True:
            dist = dijkstra(g.matrix, directed=False, indices=starts, limit=limit)
            new = np.min(dist + start_cost[:, None], axis=0)
            improved = new < old - 1e-9
            reached = np.isfinite(new) & (new <= limit)
            # frontier: improved nodes with a neighbour not yet reached
            frontier = improved & reached
            if not frontier.any():
                break
            idx = np.flatnonzero(frontier)
            nbrs = g.matrix[idx]
            unreached = ~np.isfinite(new[nbrs.indices]) | (new[nbrs.indices] > limit)
            if not unreached.any() or limit > 1e9:
                break
            limit *= 2.0
        changed_nodes = np.flatnonzero(improved)
        self.node_dist[cat] = np.where(improved, new, old)
        self.node_source[cat] = np.where(improved, row, self.node_source[cat])
        # origins on the facility's own segment can walk straight along it
        ent = np.flatnonzero(self.entry_att.segment == s)
        extra = None
        if len(ent):
            direct = np.abs(self.entry_att.along[ent] - t) + self.entry_att.off[ent] + off + self.origins.entry_extra[ent]
            self._direct_walks.setdefault(cat, {})[row] = (ent, direct)
            extra = ent
        return self._update_entries(cat, changed_nodes, extra)

    def remove_facility(self, facility_id: str) -> np.ndarray:
        """Remove a facility; returns the origins whose distance changed.

        Only the nodes whose nearest facility it was are searched again, from the nodes around them
        (whose distances stay), on the subgraph they span.
        """
        hits = np.flatnonzero(self.facilities["id"].astype(str).to_numpy() == str(facility_id))
        if len(hits) == 0:
            raise KeyError(f"no facility {facility_id!r}")
        row = int(hits[0])
        cat = str(self.facilities["category"].iloc[row])
        self.facility_attached[row] = False
        if self.method == METHOD_ESTIMATE:
            self.facilities.loc[row, "category"] = f"removed:{cat}"
            old = self.origin_dist[cat]
            self.origin_dist[cat] = self._straight_line(cat)
            return np.flatnonzero(~np.isclose(old, self.origin_dist[cat]) & ~(np.isinf(old) & np.isinf(self.origin_dist[cat])))
        walks = self._direct_walks.get(cat, {}).pop(row, None)
        self._virtual.pop(row, None)
        bonus_entries = walks[0] if walks is not None else np.zeros(0, int)
        g = self.graph
        src = self.node_source[cat]
        affected = np.flatnonzero(src == row)
        old = self.node_dist[cat]
        self.facilities.loc[row, "category"] = f"removed:{cat}"
        self.facility_node[row] = -1
        if len(affected):
            new, src_new = old.copy(), src.copy()
            # boundary: unaffected neighbours of affected nodes keep their distance and seed the search
            nbr = np.unique(g.matrix[affected].indices)
            boundary = nbr[(src[nbr] != row) & np.isfinite(old[nbr])]
            # seeds: boundary nodes with their distance, and the ends of other what-if facilities' segments
            # (those facilities are not nodes of the graph) that lie in the affected region
            seed_node = list(boundary)
            seed_cost = list(old[boundary])
            seed_src = list(src[boundary])
            pos_in_affected = pd.Index(affected)
            for other, (ocat, seg, t, off) in self._virtual.items():
                if ocat != cat or other == row:
                    continue
                for end, cost in ((g.u[seg], off + t), (g.v[seg], off + g.length[seg] - t)):
                    if pos_in_affected.get_indexer([end])[0] >= 0:
                        seed_node.append(end)
                        seed_cost.append(cost)
                        seed_src.append(other)
            seed_node = np.asarray(seed_node, dtype=np.int64)
            seed_cost = np.asarray(seed_cost, dtype=float)
            seed_src = np.asarray(seed_src, dtype=np.int64)
            na, nb, ns = len(affected), len(boundary), len(seed_node)
            nodes = np.r_[affected, boundary]
            local = g.matrix[nodes][:, affected].tocoo()  # edges into affected nodes (from affected or boundary)
            target = pd.Index(nodes).get_indexer(seed_node)
            # one seed leaf per seed, weighted by its distance (directed: leaf -> node)
            size = na + nb + ns
            rows_ = np.r_[local.row, na + nb + np.arange(ns)]
            cols_ = np.r_[local.col, target]
            data_ = np.r_[local.data, np.maximum(seed_cost, 1e-9)]
            m = sp.csr_matrix((data_, (rows_, cols_)), shape=(size, size))
            if ns:
                d, _, seeds = dijkstra(m, directed=True, indices=na + nb + np.arange(ns), min_only=True,
                                       return_predecessors=True)
                new[affected] = d[:na]
                via = seeds[:na]
                src_new[affected] = np.where(via >= 0, seed_src[np.maximum(via - na - nb, 0)], -1)
            else:
                new[affected] = np.inf
                src_new[affected] = -1
            self.node_dist[cat] = new
            self.node_source[cat] = src_new
        return self._update_entries(cat, affected, bonus_entries if len(bonus_entries) else None)
