"""Each grid worker's visit list and walking route (走访任务) for a date, as the command line and the server
both make it: who is due or overdue (:func:`geo.visits.visits_due`, :func:`geo.visits.order_visit_list`) and
the round walk through their buildings (:func:`geo.tour.walking_tour`). See docs/tasks.md.

A :class:`TasksService` holds one workspace (:class:`gridcover.store.Workspace`, either backend) and what it
builds from the workspace's current version, once per version: the households with their buildings, estates
and risk colours, the walking network of the roads (as the analysis builds it), each grid's start point, the
visit records; and the tours already walked (per grid and set of stops), so a repeated request is fast.

Example
-------
It needs a workspace on disk (``gridcover analyze sample_geojson --out out/sample``), so it is not run as a
doctest (tests/test_services_tasks.py runs it):

>>> tasks = TasksService(open_workspace("out/sample"))  # doctest: +SKIP
>>> page = tasks.grid_tasks("G02-01", date="2026-12-03")  # doctest: +SKIP
>>> page["route"]["total_min"] > 0  # doctest: +SKIP
True
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date as _date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InputError, NotFoundError
from geo.lifecircle import household_origins
from geo.network import WalkGraph, walking_graph
from geo.reach import Origins
from geo.risk import load_risk_config
from geo.tour import DEFAULT_TIME_LIMIT_S, Tour, walking_tour
from geo.visits import VisitRules, order_visit_list, validate_visits, visit_input_error, visits_due
from gridcover.store import Workspace

#: The visit rules of gridcover's ``geo/risk.toml`` (``[visit_rules]``, docs/tasks.md): elderly living alone
#: weekly, children in difficulty twice a month, people with a severe mental disorder monthly (ours); used
#: unless the service is given others (a data folder's own risk.toml, read by the command that has it).
DEFAULT_RULES = load_risk_config().visit_rules
#: The facility category of the community's service station (社区服务站), a grid worker's start point.
STATION_CATEGORY = "community_service"
#: Tours kept per workspace version (a grid and its set of stops each).
TOUR_CACHE_SIZE = 512
#: Grid pages kept per workspace version (a grid and a date each).
PAGE_CACHE_SIZE = 2048


def parse_task_date(value: object, *, name: str = "date") -> _date:
    """The date of a visit list (``YYYY-MM-DD`` text or a date).

    Raises
    ------
    InputError
        naming ``name`` for anything else (a bad ``date`` is a 400 on the server).

    Examples
    --------
    >>> parse_task_date("2026-12-03")
    datetime.date(2026, 12, 3)
    >>> parse_task_date("3/12/2026")
    Traceback (most recent call last):
    ...
    geo.errors.InputError: field 'date': must be a date YYYY-MM-DD, not '3/12/2026'
    """
    if isinstance(value, _date):
        return value
    if value is None or str(value).strip() == "":
        raise InputError("is required (YYYY-MM-DD)", field=name)
    try:
        return _date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"must be a date YYYY-MM-DD, not {str(value)[:40]!r}", field=name) from None


@dataclass
class TasksContext:
    """What one workspace version gives the visit lists: built once per version by :class:`TasksService`."""

    tag: str
    metric_crs: object
    households: pd.DataFrame   # special-group households: id, address, building_id, grid_id, flags, risk, x, y
    buildings: gpd.GeoDataFrame | None
    estates: gpd.GeoDataFrame | None
    gates: gpd.GeoDataFrame | None
    grids: pd.DataFrame        # id, name, community_id, street_id, worker_name, worker_phone, start_*
    graph: WalkGraph | None
    visits: pd.DataFrame
    visits_source: str         # "visits" (the layer) or "last_visit" (the households' column)
    first_visit: _date | None
    last_visit: _date | None
    analysed_on: str | None
    rules: VisitRules
    building_names: pd.Series = None   # building id -> its name
    estate_names: pd.Series = None     # building id -> its estate's name
    starts: dict = None                # grid id -> (start place, start description), made on first use
    roads: gpd.GeoDataFrame | None = None  # the roads (metric), for the local network of a round
    road_tree: shapely.STRtree | None = None


class TasksService:
    """The visit lists and walking routes of one workspace's grids.

    Parameters
    ----------
    store
        The workspace ``gridcover analyze`` wrote (GeoPackage or PostGIS).
    rules
        The visit rules (default :data:`DEFAULT_RULES`).
    time_limit_s
        How long OR-Tools may improve a tour (``geo.tour``).
    """

    def __init__(self, store: Workspace, *, rules: VisitRules | None = None,
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        self.store = store
        self.rules = rules or DEFAULT_RULES
        self.time_limit_s = time_limit_s
        self._context: TasksContext | None = None
        self._tours: OrderedDict = OrderedDict()
        self._pages: OrderedDict = OrderedDict()  # (version tag, grid, date) -> the grid's page
        self._lock = threading.Lock()

    def drop_caches(self) -> None:
        """Forget the context and the tours (the next request builds them again)."""
        with self._lock:
            self._context = None
            self._tours.clear()
            self._pages.clear()

    # -------------------------------------------------------------- the context
    def context(self) -> TasksContext:
        """The context of the workspace's current version (built once per version)."""
        tag = self.store.tag
        hit = self._context
        if hit is not None and hit.tag == tag:
            return hit
        with self._lock:
            hit = self._context
            if hit is not None and hit.tag == tag:
                return hit
            ctx = _build_context(self.store, tag, self.rules)
            self._context = ctx
            self._tours.clear()
            self._pages.clear()
            return ctx

    def grids(self) -> pd.DataFrame:
        """The grids (``id``, ``name``, ``community_id``, ``street_id``, ``worker_name``), for access checks."""
        return self.context().grids[["id", "name", "community_id", "street_id", "worker_name"]].copy()

    def street_of(self, grid_id: str) -> str | None:
        """The street of a grid (``NotFoundError`` for an unknown grid)."""
        grids = self.context().grids
        hit = grids.loc[grids["id"] == str(grid_id), "street_id"]
        if not len(hit):
            raise NotFoundError(f"no grid {grid_id!r} in this workspace")
        value = hit.iloc[0]
        return None if pd.isna(value) else str(value)

    def grids_of_worker(self, worker: str) -> list[str]:
        """The ids of the grids whose grid worker (``worker_name``) is ``worker``; ``NotFoundError`` if none."""
        grids = self.context().grids
        ids = grids.loc[grids["worker_name"].astype(str).str.strip() == str(worker).strip(), "id"].tolist()
        if not ids:
            raise NotFoundError(f"no grid has the grid worker {worker!r} (grids.worker_name)")
        return ids

    # -------------------------------------------------------------- the lists
    def grid_tasks(self, grid_id: str, *, date: object) -> dict:
        """One grid's visit list and route for ``date`` (see :meth:`tasks`)."""
        return self.tasks(date=date, grids=[grid_id])["grids"][0]

    def tasks(self, *, date: object, grids: list[str] | None = None, worker: str | None = None) -> dict:
        """The visit lists and walking routes for ``date``: of ``grids``, of ``worker``'s grids, or of every grid.

        Parameters
        ----------
        date
            The day of the list (its morning: visits recorded on it already count), ``YYYY-MM-DD``.
        grids
            Grid ids (``NotFoundError`` naming an unknown one).
        worker
            A grid worker's name (``grids.worker_name``): the lists of the grids they work.

        Returns
        -------
        dict
            ``date``, ``notes`` (what the data cannot say about that date), ``visits_source``, ``rules``,
            ``grids`` (one page per grid, :func:`_grid_page`), ``outside_grids`` (households due that are in
            no grid: counted, never dropped silently).
        """
        day = parse_task_date(date)
        ctx = self.context()
        if worker is not None:
            wanted = self.grids_of_worker(worker)
            if grids is not None:
                wanted = [g for g in wanted if g in set(map(str, grids))]
        elif grids is not None:
            wanted = [str(g) for g in grids]
            unknown = sorted(set(wanted) - set(ctx.grids["id"]))
            if unknown:
                raise NotFoundError(f"no grid {unknown[0]!r} in this workspace")
        else:
            wanted = ctx.grids["id"].tolist()
        hh = ctx.households
        every = grids is None and worker is None
        todo = [g for g in wanted if (ctx.tag, g, day) not in self._pages]
        mine = hh["grid_id"].isin(todo).to_numpy() | (every & hh["grid_id"].isna().to_numpy())
        due = visits_due(hh.loc[mine].reset_index(drop=True), ctx.visits, rules=ctx.rules, date=day.isoformat())
        due["grid_id"] = hh["grid_id"].to_numpy(object)[mine][_positions_in(due["household_id"], hh.loc[mine, "id"])]
        outside = due.loc[due["grid_id"].isna(), "household_id"].nunique()
        by_grid = dict(tuple(due.groupby("grid_id", sort=False)))
        empty = due.iloc[:0]
        pages = []
        for gid in wanted:
            key = (ctx.tag, gid, day)
            page = self._pages.get(key)
            if page is None:
                page = self._grid_page(ctx, gid, by_grid.get(gid, empty), day)
                with self._lock:
                    self._pages[key] = page
                    while len(self._pages) > PAGE_CACHE_SIZE:
                        self._pages.popitem(last=False)
            pages.append(copy.deepcopy(page))
        return {"date": day.isoformat(), "notes": _date_notes(ctx, day), "visits_source": ctx.visits_source,
                "analysed_on": ctx.analysed_on,
                "rules": {g: {"period": r.period, "at_least": r.at_least, "kinds": list(r.kinds)}
                          for g, r in ctx.rules.by_group.items()},
                "grids": pages, "outside_grids": {"households_due": int(outside)}}

    # -------------------------------------------------------------- one grid
    def _grid_page(self, ctx: TasksContext, gid: str, due: pd.DataFrame, day: _date) -> dict:
        grid = ctx.grids.loc[ctx.grids["id"] == gid].iloc[0]
        ordered = order_visit_list(due.reset_index(drop=True))
        rows = _household_rows(ctx, ordered)
        start_origin, start_info = ctx.starts[gid] if gid in ctx.starts else ctx.starts.setdefault(gid, _start_of(ctx, grid))
        located = rows["has_place"].to_numpy()
        tour = None
        if ctx.graph is not None and located.any():
            tour = self._tour(ctx, gid, rows.loc[located], start_origin)
        rows["visit"] = 0
        if tour is not None:
            rows.loc[located, "visit"] = tour.visit_of
        reasons = {} if tour is None else dict(zip(tour.stops["stop_id"], tour.stops["reason"]))
        no_network = "no_roads" if ctx.graph is None else ""
        stop_reason = rows["stop_id"].map(reasons).astype(object).fillna(no_network).to_numpy(object)
        rows["reason"] = np.where(~located, "no_location", np.where(rows["visit"].to_numpy() == 0, stop_reason, ""))
        # the walking order; the unreachable at the end, in the list's own order
        rows["_order"] = np.where(rows["visit"] > 0, rows["visit"], 10**9)
        rows = rows.sort_values(["_order", "priority"], kind="stable")
        route = _route(tour, start_info, ctx)
        minutes = {} if tour is None else dict(zip(tour.legs["to_id"], tour.legs["minutes"]))
        households, unreachable = [], []
        for rec in rows.to_dict("records"):
            item = {k: _plain(rec[k]) for k in ("household_id", "address", "building_id", "building", "estate",
                                                 "community_id", "risk", "state", "last_visit", "priority")}
            item["groups"] = rec["groups"]
            item["due"] = rec["due"]
            item["stop"] = rec["stop_id"]
            item["visit"] = int(rec["visit"])
            item["walk_min"] = float(minutes[rec["stop_id"]]) if rec["visit"] > 0 else None
            households.append(item)
            if rec["visit"] == 0:
                unreachable.append({"household_id": item["household_id"], "stop": rec["stop_id"],
                                    "reason": rec["reason"]})
        worker = grid["worker_name"]
        return {
            "grid": {"id": gid, "name": _plain(grid["name"]), "community_id": _plain(grid["community_id"]),
                     "street_id": _plain(grid["street_id"]), "worker": _plain(worker),
                     "worker_phone": _plain(grid.get("worker_phone"))},
            "date": day.isoformat(),
            "counts": {"households": len(households), "overdue": int((rows["state"] == "overdue").sum()),
                       "due": int((rows["state"] == "due").sum()),
                       "stops": int(rows.loc[rows["visit"] > 0, "stop_id"].nunique()),
                       "unreachable": len(unreachable)},
            "households": households, "unreachable": unreachable, "route": route,
        }

    def _tour(self, ctx: TasksContext, gid: str, rows: pd.DataFrame, start: Origins | tuple) -> Tour:
        key = (ctx.tag, gid, tuple(rows["stop_id"]))
        hit = self._tours.get(key)
        if hit is not None:
            self._tours.move_to_end(key)
            return hit
        origins, origin_of = household_origins(rows["x"].to_numpy(float), rows["y"].to_numpy(float),
                                               rows["building_id"].to_numpy(object), buildings=ctx.buildings,
                                               estates=ctx.estates, gates=ctx.gates)
        # one row per household: its place's entries
        stops = _rows_of(origins, origin_of)
        ids = rows["stop_id"].to_numpy(object)
        # the round on the network round its places (a city's whole network makes every Dijkstra city-wide);
        # the whole network when a stop is off that piece, so that "cut_off" is only ever the city's answer
        local = _local_graph(ctx, stops, start)
        tour = None
        if local is not None:
            tour = walking_tour(local, stops, start=start, stop_ids=ids, crs=ctx.metric_crs,
                                time_limit_s=self.time_limit_s)
            if (tour.stops["reason"] != "").any():
                tour = None
        if tour is None:
            tour = walking_tour(ctx.graph, stops, start=start, stop_ids=ids, crs=ctx.metric_crs,
                                time_limit_s=self.time_limit_s)
        with self._lock:
            self._tours[key] = tour
            while len(self._tours) > TOUR_CACHE_SIZE:
                self._tours.popitem(last=False)
        return tour


# ------------------------------------------------------------------ building the context
def _build_context(store: Workspace, tag: str, rules: VisitRules) -> TasksContext:
    summary = store.summary()
    metric = summary.get("metric_crs") or store.meta.get("metric_crs")
    if not metric:
        raise InputError("the workspace names no metric CRS: analyse the data again", field="metric_crs")

    def layer(name: str) -> gpd.GeoDataFrame | None:
        if not store.has(name):
            return None
        frame = store.read(name)
        return frame.to_crs(metric) if frame.crs is not None and len(frame) else frame

    households = store.read("households")
    buildings, estates, gates = layer("buildings"), layer("estates"), layer("gates")
    communities, roads, facilities = layer("communities"), layer("roads"), layer("facilities")
    grids = layer("grids")
    groups = list(rules.by_group)
    flags = households.reindex(columns=groups).fillna(False).astype(bool)
    special = flags.any(axis=1).to_numpy()
    hh = households.loc[special]
    geom = hh.geometry.to_crs(metric) if households.crs is not None else hh.geometry
    present = ~(geom.isna() | geom.is_empty).to_numpy()
    x = np.full(len(hh), np.nan)
    y = np.full(len(hh), np.nan)
    if present.any():
        x[present] = shapely.get_x(geom.to_numpy()[present])
        y[present] = shapely.get_y(geom.to_numpy()[present])
    frame = pd.DataFrame({
        "id": hh["id"].astype(str).to_numpy(),
        "address": hh["address"].to_numpy(object) if "address" in hh else None,
        "building_id": hh["building_id"].where(hh["building_id"].notna(), None).astype(object).to_numpy()
        if "building_id" in hh else None,
        "grid_id": hh["grid_id"].where(hh["grid_id"].notna(), None).astype(object).to_numpy(),
        "community_id": hh["community_id"].astype(object).to_numpy() if "community_id" in hh else None,
        "risk": hh["risk"].astype(object).to_numpy() if "risk" in hh else None,
        "x": x, "y": y,
    })
    for g in groups:
        frame[g] = flags.loc[special, g].to_numpy()
    frame["building_id"] = frame["building_id"].where(pd.notna(frame["building_id"]), None)
    # a building id the buildings layer does not hold walks from the household's own point
    if buildings is not None:
        known = frame["building_id"].isin(set(buildings["id"].astype(str)))
        frame.loc[~known, "building_id"] = None
    else:
        frame["building_id"] = None
    frame.loc[frame["grid_id"].astype(str).isin(["", "None", "nan"]), "grid_id"] = None

    names, estate_names = pd.Series(dtype=object), pd.Series(dtype=object)
    if buildings is not None:
        bid = buildings["id"].astype(str).to_numpy()
        names = pd.Series(buildings["name"].to_numpy(object) if "name" in buildings else bid, index=bid)
        if "estate_id" in buildings and estates is not None and "name" in estates:
            e_name = pd.Series(estates["name"].to_numpy(object), index=estates["id"].astype(str).to_numpy())
            e_name = e_name[~e_name.index.duplicated()]
            estate_names = pd.Series(e_name.reindex(buildings["estate_id"].astype(str)).to_numpy(object), index=bid)
        names, estate_names = names[~names.index.duplicated()], estate_names[~estate_names.index.duplicated()]
    visits, source = _visits_of(store, households, rules)
    days = pd.Series(visits["visited_on"]).dropna()
    first = pd.Timestamp(days.min()).date() if len(days) else None
    last = pd.Timestamp(days.max()).date() if len(days) else None
    graph = walking_graph(roads) if roads is not None and len(roads) else None
    return TasksContext(tag=tag, metric_crs=metric, households=frame, buildings=buildings, estates=estates,
                        gates=gates, grids=_grid_table(grids, communities, facilities), graph=graph, visits=visits,
                        visits_source=source, first_visit=first, last_visit=last,
                        analysed_on=(summary.get("risk") or {}).get("reference_date"), rules=rules,
                        building_names=names, estate_names=estate_names, starts={}, roads=roads,
                        road_tree=shapely.STRtree(roads.geometry.to_numpy()) if graph is not None else None)


def _visits_of(store: Workspace, households: pd.DataFrame, rules: VisitRules) -> tuple[pd.DataFrame, str]:
    """The visit records, checked once against every household of the workspace: its ``visits`` layer, else
    one home visit per household's ``last_visit`` (the older single date). Rows the check refuses (the loader
    quarantines them first, so there should be none) stop here with the check's one-line message."""
    if store.has("visits"):
        raw, source = pd.DataFrame(store.read("visits")).drop(columns="geometry", errors="ignore"), "visits"
    elif "last_visit" in households.columns:
        text = households["last_visit"].astype("string").str.strip().str[:10]
        seen = text.notna() & (text != "")
        raw = pd.DataFrame({"household_id": households.loc[seen, "id"].astype(str).to_numpy(),
                            "visited_at": text[seen].to_numpy(object), "worker": "-", "kind": "home"})
        source = "last_visit"
    else:
        raw, source = pd.DataFrame({"household_id": [], "visited_at": [], "worker": [], "kind": []}), "none"
    check = validate_visits(raw, households["id"].astype(str).to_numpy(object), zone=rules.zone)
    error = visit_input_error(check.rejects, file="visits (workspace)")
    if error is not None:
        raise error
    return check.visits, source


def _grid_table(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None,
                facilities: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """The grids with their street and start point: the community's service station nearest the grid's
    centroid (inside the grid first), else the centroid."""
    out = pd.DataFrame({"id": grids["id"].astype(str).to_numpy(),
                        "name": grids.get("name", pd.Series(None, index=grids.index)).to_numpy(object),
                        "community_id": grids["community_id"].astype(str).to_numpy(),
                        "worker_name": grids.get("worker_name", pd.Series(None, index=grids.index)).to_numpy(object),
                        "worker_phone": grids.get("worker_phone", pd.Series(None, index=grids.index)).to_numpy(object)})
    street = {}
    if communities is not None and "street_id" in communities:
        street = dict(zip(communities["id"].astype(str), communities["street_id"].astype(str)))
    out["street_id"] = out["community_id"].map(street).astype(object)
    centroid = shapely.centroid(grids.geometry.to_numpy())
    out["start_kind"] = "grid_centroid"
    out["start_x"], out["start_y"] = shapely.get_x(centroid), shapely.get_y(centroid)
    out["start_id"], out["start_name"] = None, None
    if facilities is None or communities is None or not len(facilities) or "category" not in facilities:
        return out
    stations = facilities.loc[facilities["category"].astype(str) == STATION_CATEGORY]
    stations = stations.loc[~(stations.geometry.isna() | stations.geometry.is_empty)]
    if not len(stations):
        return out
    pts = shapely.point_on_surface(stations.geometry.to_numpy())
    si, ci = shapely.STRtree(communities.geometry.to_numpy()).query(pts, predicate="intersects")
    pairs = pd.DataFrame({"station": si, "community_id": communities["id"].astype(str).to_numpy()[ci]})
    pairs = pairs.merge(pd.DataFrame({"grid": np.arange(len(out)), "community_id": out["community_id"]}),
                        on="community_id")
    if not len(pairs):
        return out
    sp = pts[pairs["station"].to_numpy()]
    gg = grids.geometry.to_numpy()[pairs["grid"].to_numpy()]
    pairs["outside"] = ~shapely.intersects(gg, sp)
    pairs["metres"] = shapely.distance(centroid[pairs["grid"].to_numpy()], sp)
    best = pairs.sort_values(["grid", "outside", "metres", "station"]).drop_duplicates("grid")
    g, s = best["grid"].to_numpy(), best["station"].to_numpy()
    out.loc[g, "start_kind"] = "service_station"
    out.loc[g, "start_x"], out.loc[g, "start_y"] = shapely.get_x(pts[s]), shapely.get_y(pts[s])
    out.loc[g, "start_id"] = stations["id"].astype(str).to_numpy()[s] if "id" in stations else None
    names = stations["name"].to_numpy(object) if "name" in stations else np.full(len(stations), None)
    out.loc[g, "start_name"] = names[s]
    return out


def _start_of(ctx: TasksContext, grid: pd.Series) -> tuple[Origins | tuple, dict]:
    x, y = float(grid["start_x"]), float(grid["start_y"])
    info = {"kind": grid["start_kind"], "id": _plain(grid["start_id"]), "name": _plain(grid["start_name"])}
    lon, lat = gpd.GeoSeries([shapely.Point(x, y)], crs=ctx.metric_crs).to_crs(4326).iloc[0].coords[0]
    info["lon"], info["lat"] = round(lon, 7), round(lat, 7)
    if grid["start_kind"] == "service_station":
        # a station inside a gated estate leaves by its gates
        origins, _ = household_origins(np.array([x]), np.array([y]), np.array([None], dtype=object),
                                       buildings=None, estates=ctx.estates, gates=ctx.gates)
        return origins, info
    return (x, y), info


#: The margin round a round's places within which its walking network is taken, metres (at least; half the
#: diagonal of the places' box when that is more).
LOCAL_MARGIN_M = 1500.0


def _local_graph(ctx: TasksContext, stops: Origins, start: Origins | tuple) -> WalkGraph | None:
    """The walking network of the roads near a round's places (its stops' entries and the start), or ``None``
    when that is (nearly) the whole network anyway."""
    sx = np.r_[stops.entry_x, start.entry_x if isinstance(start, Origins) else [start[0]]]
    sy = np.r_[stops.entry_y, start.entry_y if isinstance(start, Origins) else [start[1]]]
    ok = np.isfinite(sx) & np.isfinite(sy)
    if not ok.any():
        return None
    x0, x1, y0, y1 = sx[ok].min(), sx[ok].max(), sy[ok].min(), sy[ok].max()
    margin = max(LOCAL_MARGIN_M, 0.5 * float(np.hypot(x1 - x0, y1 - y0)))
    near = ctx.road_tree.query(shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin))
    if len(near) > 0.8 * len(ctx.roads):
        return None
    try:
        return walking_graph(ctx.roads.iloc[np.sort(near)])
    except ValueError:  # no walkable road there
        return None


def _rows_of(origins: Origins, origin_of: np.ndarray) -> Origins:
    """One place per row (row ``i`` is origin ``origin_of[i]`` with all its entries)."""
    which = np.asarray(origin_of, dtype=np.int64)
    order = np.argsort(origins.entry_origin, kind="stable")
    counts = np.bincount(origins.entry_origin, minlength=len(origins))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    take = np.concatenate([order[starts[o]:starts[o] + counts[o]] for o in which]) if len(which) else np.zeros(0, int)
    owner = np.repeat(np.arange(len(which)), counts[which])
    return Origins(x=origins.x[which], y=origins.y[which], entry_origin=owner, entry_x=origins.entry_x[take],
                   entry_y=origins.entry_y[take], entry_extra=origins.entry_extra[take])


def _positions_in(values: pd.Series, ids: pd.Series) -> np.ndarray:
    """The position of each value among ``ids`` (every value is one of them)."""
    return pd.Index(ids.astype(str).to_numpy()).get_indexer(values.astype(str).to_numpy())


def _household_rows(ctx: TasksContext, ordered: pd.DataFrame) -> pd.DataFrame:
    """One row per household of an ordered list (groups and what is due joined), with its place and stop."""
    cols = ["household_id", "address", "building_id", "building", "estate", "community_id", "risk", "state",
            "last_visit", "priority", "groups", "due", "stop_id", "x", "y", "has_place"]
    if not len(ordered):
        return pd.DataFrame(columns=cols)
    ordered = ordered.copy()
    ordered["_rank"] = np.arange(len(ordered))
    due = [{"group": g, "state": s, "visits_needed": int(n), "period_end": _plain(p), "days_left": int(d),
            "overdue_days": int(o), "overdue_since": _plain(since)}
           for g, s, n, p, d, o, since in zip(ordered["group"], ordered["state"], ordered["visits_needed"],
                                              ordered["period_end"], ordered["days_left"], ordered["overdue_days"],
                                              ordered["overdue_since"])]
    ordered["_due"] = due
    grouped = ordered.groupby("household_id", sort=False)
    first = grouped.head(1).set_index("household_id")
    rows = pd.DataFrame({"household_id": first.index.to_numpy(),
                         "priority": np.arange(1, len(first) + 1),
                         "state": np.where((ordered["state"] == "overdue").groupby(ordered["household_id"]).any()
                                           .reindex(first.index).to_numpy(), "overdue", "due"),
                         "last_visit": grouped["last_visit"].max().reindex(first.index).to_numpy(),
                         "groups": grouped["group"].agg(list).reindex(first.index).to_numpy(),
                         "due": grouped["_due"].agg(list).reindex(first.index).to_numpy()})
    hh = ctx.households.set_index("id").reindex(rows["household_id"])
    for c in ("address", "building_id", "community_id", "risk", "x", "y"):
        rows[c] = hh[c].to_numpy()
    bid = rows["building_id"]
    rows["building"] = ctx.building_names.reindex(bid.astype(str)).to_numpy(object) if len(ctx.building_names) else None
    rows["estate"] = ctx.estate_names.reindex(bid.astype(str)).to_numpy(object) if len(ctx.estate_names) else None
    rows.loc[bid.isna().to_numpy(), ["building", "estate"]] = None
    rows["has_place"] = bid.notna().to_numpy() | np.isfinite(rows["x"].to_numpy(float))
    rows["stop_id"] = np.where(bid.notna(), "b:" + bid.astype(str), "h:" + rows["household_id"].astype(str))
    return rows[cols]


def _route(tour: Tour | None, start: dict, ctx: TasksContext) -> dict:
    if tour is None:
        return {"start": start, "total_m": 0.0, "total_min": 0.0, "legs": [], "solver": None, "gap": None,
                "bound": "none", "speed_m_s": None}
    legs = tour.legs_wgs84() if len(tour.legs) else tour.legs
    out = []
    for rec, geom in zip(tour.legs.drop(columns="geometry").to_dict("records"), legs.geometry):
        out.append({"leg": int(rec["leg"]), "from": rec["from_id"], "to": rec["to_id"],
                    "metres": float(rec["metres"]), "minutes": float(rec["minutes"]),
                    "line": [[round(x, 6), round(y, 6)] for x, y in geom.coords]})
    return {"start": start, "total_m": round(tour.total_m, 1), "total_min": round(tour.total_min, 1),
            "legs": out, "solver": tour.solver, "gap": round(tour.gap, 4), "bound": tour.bound,
            "speed_m_s": tour.speed_m_s}


def _date_notes(ctx: TasksContext, day: _date) -> list[dict]:
    """What the data cannot say about ``day``: before the first record, after the last one, no records."""
    notes = []
    if ctx.first_visit is None:
        notes.append({"code": "no_visit_records",
                      "text": "no visit records: every special-group household is listed as never visited"})
        return notes
    if ctx.visits_source == "last_visit":
        notes.append({"code": "last_visit_only",
                      "text": "the workspace has no visits layer: each household's last_visit is its only "
                              "record, so earlier missed periods are not known"})
    if day < ctx.first_visit:
        notes.append({"code": "before_records", "date": day.isoformat(), "first": ctx.first_visit.isoformat(),
                      "text": f"{day.isoformat()} is before the first visit record ({ctx.first_visit.isoformat()}): "
                              "no record can count yet, so everyone due is listed as never visited"})
    if day > ctx.last_visit:
        gap = (day - ctx.last_visit).days
        notes.append({"code": "after_records", "date": day.isoformat(), "last": ctx.last_visit.isoformat(),
                      "days": gap,
                      "text": f"{day.isoformat()} is {gap} day{'s' if gap != 1 else ''} after the last visit record "
                              f"({ctx.last_visit.isoformat()}): visits made since are not in the data"})
    return notes


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    if value is pd.NaT or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
