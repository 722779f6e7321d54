"""A city split into parts by street (街道分区) for a partitioned run: who owns what, and what each part reads.

The partitioned engine (``gridcover analyze --engine dask``) runs the local stages of
:mod:`geo.pipeline` (assignment, zones, reach, H3 cells) once per street and the global stages once on
the parts' compact per-household tables. For its outputs to equal the single-process run's:

* every household, building and H3 cell belongs to exactly one part. An H3 cell (the run's resolution)
  belongs to the street whose polygon holds its centre (ties: the smallest street id), else to the
  nearest street; a household to the cell of its location (its point, else its building's inside
  point), a building to the cell of its inside point. So each part's cells hold all their households,
  and the cell layer is the parts' cells put together. Households without any location go to part 0.
* a part reads only what its households need: buildings around them (plus the ones they name), the
  estates and gates of those buildings, and the roads and facilities within the reporting horizon
  (``categories.toml`` [horizon], 30 minutes) of them. Walks up to the horizon stay inside that area,
  so their minutes are the single-process minutes; longer walks are reported as null by both engines.
* network components come from the whole walking network (:class:`WholeNetwork`), so "on a fragment"
  means the same in a part as in the whole city.

:func:`plan_parts` reads the big layers once, in batches, without keeping their attributes, to route
households and buildings to their parts and to check ids and references across the whole city.

Example
-------
>>> plan = plan_parts("data/city")
>>> part = read_part(plan, 3)
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import h3ronpy
import numpy as np
import pandas as pd
import pyogrio
import shapely
from h3ronpy import vector as h3v

from geo.assign import _pick_min, _rank, points_in_polygons
from geo.errors import InputError
from geo.lifecircle import DEFAULT_H3_RESOLUTION, cells_of
from geo.load import LAYERS, _as_str, _check_geometry, _check_ids, _check_references, _source_crs, _to_wgs84
from geo.network import NetworkSettings, walking_graph
from geo.pipeline import to_lonlat
from geo.reach import CONFIG_NAME as REACH_CONFIG, load_config
from geo.settings import Settings
from gridcover.io.folder import _locate, _read_csv, _read_visits, _visit_zone, read_layers, read_rule_files

#: Layers every part receives whole (small: thousands of features for a city).
WHOLE_LAYERS = ("streets", "communities", "grids", "areas")
#: Layers read in batches by the planner, with the columns it needs (ids and references).
ROUTED_COLUMNS = {"households": ["id", "building_id"], "buildings": ["id", "estate_id"], "estates": ["id"],
                  "gates": ["estate_id"]}
#: Features per batch when the planner reads a big layer.
BATCH = 500_000
#: Metres around a part's households within which its buildings are read (snapping reaches 5 m by default).
BUILDING_MARGIN_M = 50.0
#: Extra metres on top of the horizon (rounding, dangling-end snapping).
MARGIN_M = 50.0


@dataclass
class CellOwner:
    """The part of each H3 cell: the street holding its centre, else the nearest street (ties: smallest id)."""

    streets: np.ndarray  # street polygons, metric CRS
    rank: np.ndarray
    metric_crs: object
    resolution: int = DEFAULT_H3_RESOLUTION

    def of_cells(self, cells: np.ndarray) -> np.ndarray:
        cells = np.asarray(cells, dtype=np.uint64)
        out = np.zeros(len(cells), dtype=np.int64)
        ok = cells > 0
        if not ok.any():
            return out
        uniq, inverse = np.unique(cells[ok], return_inverse=True)
        centres = h3v.cells_to_coordinates(uniq)
        clat, clon = np.asarray(centres.column("lat")), np.asarray(centres.column("lng"))
        pts = gpd.GeoSeries(gpd.points_from_xy(clon, clat), crs="EPSG:4326").to_crs(self.metric_crs).to_numpy()
        owner, _ = points_in_polygons(pts, self.streets, tie_rank=self.rank)
        rest = np.flatnonzero(owner < 0)
        if len(rest):
            pi, si = shapely.STRtree(self.streets).query_nearest(pts[rest], all_matches=True)
            owner[rest] = _pick_min(pi, self.rank[si], si, len(rest))
        out[ok] = owner[inverse.ravel()]
        return out

    def of_lonlat(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Part of each point (part 0 for a missing one)."""
        return self.of_cells(cells_of(lon, lat, self.resolution))

    def of_strings(self, cells: np.ndarray) -> np.ndarray:
        if not len(cells):
            return np.zeros(0, np.int64)
        return self.of_cells(np.asarray(h3ronpy.cells_parse(pd.Series(cells).astype(str).to_numpy()), dtype=np.uint64))


@dataclass
class WholeNetwork:
    """Component label of each node of the whole walking network, looked up by node coordinates."""

    keys: np.ndarray  # sorted node keys
    labels: np.ndarray
    main: int
    precision: float = NetworkSettings().vertex_precision_m

    @classmethod
    def of(cls, graph) -> "WholeNetwork":
        keys = _node_keys(graph.x, graph.y, NetworkSettings().vertex_precision_m)
        order = np.argsort(keys, kind="stable")
        return cls(keys=keys[order], labels=graph.component[order], main=int(graph.main_component))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        keys = _node_keys(x, y, self.precision)
        pos = np.clip(np.searchsorted(self.keys, keys), 0, max(len(self.keys) - 1, 0))
        hit = (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        return np.where(hit, self.labels[pos] if len(self.keys) else -1, -1)


def _node_keys(x: np.ndarray, y: np.ndarray, precision: float) -> np.ndarray:
    xi = np.round(np.asarray(x) / precision).astype(np.int64) + (1 << 31)
    yi = np.round(np.asarray(y) / precision).astype(np.int64) + (1 << 31)
    return (xi.astype(np.uint64) << np.uint64(32)) | yi.astype(np.uint64)


@dataclass
class Plan:
    """Where each part's households and buildings are in the input, and what every part shares."""

    path: str
    crs: str | None
    settings: Settings
    metric_crs: object
    h3_resolution: int
    whole: dict  # WHOLE_LAYERS present, metric CRS
    owner: CellOwner
    household_fids: list  # per part: feature ids of its households, in input order
    household_order: list  # per part: their positions in the input
    building_fids: list  # per part: feature ids of the buildings it owns
    building_order: list
    named_building_fids: list  # per part: feature ids of buildings its households name
    estate_fid: pd.Series | None  # estate id -> feature id
    gate_fids: pd.Series | None  # estate id -> array of gate feature ids
    counts: dict  # features per layer
    sources: dict
    source_crs: dict
    missing_optional: list
    warnings: list = field(default_factory=list)
    repaired: list = field(default_factory=list)
    folder: Path | None = None
    configs: dict = field(default_factory=dict)  # the folder's rule files as read (geo.load.Dataset.configs)
    layer_crs: dict = field(default_factory=dict)  # layer -> SourceCRS of its file
    seed_cells: np.ndarray | None = None  # H3 cells of every household and building (empty cells are kept round them)
    visits: gpd.GeoDataFrame | None = None  # the checked visit records, whole (a part judges its households' own)
    cases: gpd.GeoDataFrame | None = None  # the checked cases, whole, metric CRS (located once every part is done)

    @property
    def n_parts(self) -> int:
        return len(self.household_fids)


def _batches(file: Path, label: str, gpkg_layer: str | None, columns: list[str], layer) -> "iter":
    """(fids, attribute frame, geometries) of a layer, a batch at a time (CSV: one batch)."""
    if file.suffix.lower() == ".csv":
        frame = _read_csv(file, layer, label)
        yield np.arange(len(frame)), frame[[c for c in columns if c in frame.columns]], frame.geometry.to_numpy()
        return
    info = pyogrio.read_info(file, layer=gpkg_layer)
    present = [c for c in columns if c in list(info["fields"])]
    n = int(info["features"])
    for start in range(0, max(n, 1), BATCH):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(file, layer=gpkg_layer, columns=present, skip_features=start,
                                           max_features=BATCH, fid_as_index=True)
        yield frame.index.to_numpy(), pd.DataFrame(frame[present]).reset_index(drop=True), frame.geometry.to_numpy()
        if len(frame) < BATCH:
            break


def _routed_layer(src, name: str, columns: list[str], metric) -> pd.DataFrame:
    """A big layer read in batches, without its attributes: each feature's id, the ``columns`` that route it,
    its feature id and (households, buildings) its metric location; ids checked unique across the city."""
    file, label, gpkg_layer = src.files[name]
    layer = LAYERS[name]
    parts = {"fid": [], **{c: [] for c in columns}, "x": [], "y": []}
    for fids, attrs, geoms in _batches(file, label, gpkg_layer, columns, layer):
        ids = _as_str(attrs["id"]) if "id" in attrs.columns else pd.Series([None] * len(attrs))
        for c in columns:
            parts[c].append(_as_str(attrs[c]).astype("str") if c in attrs.columns
                            else pd.Series([None] * len(attrs), dtype="str"))
        parts["fid"].append(np.asarray(fids, dtype=np.int64))
        if name in ("households", "buildings"):
            geoms, _ = _check_geometry(np.asarray(geoms, dtype=object), layer, label, ids)
            source = _source_crs(gpd.GeoDataFrame(geometry=[], crs=pyogrio.read_info(file, layer=gpkg_layer)["crs"]
                                                  if file.suffix.lower() != ".csv" else None),
                                 src.user_crs[name], label)
            wgs = gpd.GeoSeries(_to_wgs84(geoms, source, label, ids), crs="EPSG:4326").to_crs(metric).to_numpy()
            if name == "buildings":
                wgs = shapely.point_on_surface(wgs)
            present = ~shapely.is_missing(wgs)
            x = np.full(len(wgs), np.nan)
            y = np.full(len(wgs), np.nan)
            x[present], y[present] = shapely.get_x(wgs[present]), shapely.get_y(wgs[present])
            parts["x"].append(x)
            parts["y"].append(y)
    frame = pd.DataFrame({"fid": np.concatenate(parts["fid"]),
                          **{c: pd.concat(parts[c], ignore_index=True) for c in columns}})
    if parts["x"]:
        frame["x"], frame["y"] = np.concatenate(parts["x"]), np.concatenate(parts["y"])
    if "id" in frame.columns:
        _check_ids(frame["id"].astype(object).where(frame["id"].notna(), None), label)
    return frame


def _route_to_parts(routed: dict, owner: CellOwner, *, metric, h3_resolution: int, n_parts: int) -> dict:
    """Which part owns each household and building (the cell of its location, or of the building it names), as
    :class:`Plan`'s per-part feature ids and positions, and the H3 cells they are in (``seed_cells``)."""
    # buildings: owned by the cell of their inside point
    b = routed.get("buildings")
    if b is not None:
        b_lonlat = to_lonlat(b["x"].to_numpy(), b["y"].to_numpy(), metric)
        b_owner = owner.of_lonlat(*b_lonlat)
        b_pos = pd.Series(np.arange(len(b)), index=b["id"].astype(object).to_numpy())
    h = routed["households"]
    hx, hy = h["x"].to_numpy(), h["y"].to_numpy()
    h_lonlat = to_lonlat(hx, hy, metric)
    h_owner = owner.of_lonlat(*h_lonlat)
    seed_cells = np.unique(np.concatenate([cells_of(*h_lonlat, h3_resolution)]
                                          + ([cells_of(*b_lonlat, h3_resolution)] if b is not None else [])))
    named = h["building_id"].notna().to_numpy() if b is not None else np.zeros(len(h), bool)
    named_pos = np.full(len(h), -1, dtype=np.int64)
    if named.any():
        named_pos[named] = b_pos.reindex(h["building_id"].astype(object).to_numpy()[named]).to_numpy(dtype=np.int64)
        by_building = named & ~np.isfinite(hx)
        h_owner[by_building] = b_owner[named_pos[by_building]]
    household_fids, household_order, building_fids, building_order, named_fids = [], [], [], [], []
    h_fid = h["fid"].to_numpy()
    for p in range(n_parts):
        mine = np.flatnonzero(h_owner == p)
        household_fids.append(h_fid[mine])
        household_order.append(mine)
        if b is not None:
            owned = np.flatnonzero(b_owner == p)
            building_fids.append(b["fid"].to_numpy()[owned])
            building_order.append(owned)
            ref = np.unique(named_pos[mine][named_pos[mine] >= 0])
            named_fids.append(b["fid"].to_numpy()[ref])
        else:
            building_fids.append(None)
            building_order.append(None)
            named_fids.append(None)
    return {"household_fids": household_fids, "household_order": household_order, "building_fids": building_fids,
            "building_order": building_order, "named_building_fids": named_fids, "seed_cells": seed_cells}


def plan_parts(path: str, *, crs: str | None = None, settings: Settings | None = None,
               h3_resolution: int = DEFAULT_H3_RESOLUTION) -> Plan:
    """Read the small layers whole and the big ones in batches; route households and buildings to parts.

    Checks what a part cannot check alone: duplicate ids and references across the whole input.
    """
    src = _locate(path, crs=crs, settings=settings)
    whole = read_layers(path, [n for n in WHOLE_LAYERS], crs=crs, settings=settings)
    metric = whole.metric_crs
    streets = whole.layers["streets"]
    owner = CellOwner(streets=streets.geometry.to_numpy(), rank=_rank(streets["id"].astype(str).to_numpy()),
                      metric_crs=metric, resolution=h3_resolution)
    n_parts = len(streets)
    counts = {name: int(len(frame)) for name, frame in whole.layers.items()}
    repaired = list(whole.repaired)
    warnings = list(src.warnings) + list(whole.warnings)
    routed: dict[str, dict] = {}
    for name, columns in ROUTED_COLUMNS.items():
        if name not in src.files:
            continue
        routed[name] = _routed_layer(src, name, columns, metric)
        counts[name] = int(len(routed[name]))
    raw = {name: frame for name, frame in whole.layers.items()}
    raw.update({name: frame.drop(columns=["fid", "x", "y"], errors="ignore") for name, frame in routed.items()})
    cases = None
    if "cases" in src.files:  # small (a year of cases is thousands): read whole, its household ids checked below
        read = read_layers(path, ["cases"], crs=crs, settings=settings, metric_crs=metric)
        cases, raw["cases"] = read.layers["cases"], read.layers["cases"]
        counts["cases"] = int(len(cases))
        warnings += read.warnings
    sources = {name: str(src.files[name][0]) for name in src.files}
    _check_references(raw, sources)
    configs = read_rule_files(src.data_dir)
    visits = None
    if "visits" in src.files:  # a table: read whole, checked against every household id
        file, label, gpkg_layer = src.files["visits"]
        visits = _read_visits(file, label, gpkg_layer=gpkg_layer, households=routed["households"],
                              columns=src.columns.get("visits"), config_label=src.config_label, skip_invalid=False,
                              rejects=[], notes=warnings, zone=_visit_zone(configs))
        counts["visits"] = int(len(visits))

    route = _route_to_parts(routed, owner, metric=metric, h3_resolution=h3_resolution, n_parts=n_parts)
    e = routed.get("estates")
    g = routed.get("gates")
    estate_fid = pd.Series(e["fid"].to_numpy(), index=e["id"].astype(object).to_numpy()) if e is not None else None
    gate_fids = (pd.Series(g["fid"].to_numpy()).groupby(g["estate_id"].astype(object).to_numpy()).apply(np.asarray)
                 if g is not None and len(g) else None)
    for name in ("roads", "facilities"):
        if name in src.files and src.files[name][0].suffix.lower() != ".csv":
            counts[name] = int(pyogrio.read_info(src.files[name][0], layer=src.files[name][2])["features"])
    ordered = {name: counts[name] for name in LAYERS if name in counts and name in src.files}
    layer_crs = {}
    for name, (file, label, gpkg_layer) in src.files.items():
        file_crs = pyogrio.read_info(file, layer=gpkg_layer)["crs"] if file.suffix.lower() != ".csv" else None
        layer_crs[name] = _source_crs(gpd.GeoDataFrame(geometry=[], crs=file_crs), src.user_crs[name], label)
    return Plan(path=str(path), crs=crs, settings=whole.settings, metric_crs=metric, h3_resolution=h3_resolution,
                whole=whole.layers, owner=owner, estate_fid=estate_fid, gate_fids=gate_fids, counts=ordered, sources=sources,
                source_crs={name: layer_crs[name].text for name in src.files if name != "visits"}, missing_optional=src.missing, warnings=warnings,
                repaired=repaired, folder=src.data_dir, configs=configs, layer_crs=layer_crs, visits=visits,
                cases=cases, **route)


def _box(bounds: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    return (bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin)


def _union_bounds(*arrays) -> np.ndarray | None:
    boxes = [shapely.bounds(a) for a in arrays if a is not None and len(a)]
    boxes = [b[np.isfinite(b).all(axis=1)] for b in boxes]
    boxes = [b for b in boxes if len(b)]
    if not boxes:
        return None
    allb = np.vstack(boxes)
    return np.array([allb[:, 0].min(), allb[:, 1].min(), allb[:, 2].max(), allb[:, 3].max()])


#: Degrees added round a box for layers in an offset datum (GCJ-02 moves points up to ~700 m, BD-09 ~1.2 km).
OFFSET_PAD_DEG = 0.03


def _layer_bbox(bounds: np.ndarray, plan: "Plan", name: str) -> tuple[float, float, float, float]:
    """A box in the layer's own coordinates (GDAL filters in those) holding a metric box."""
    source = plan.layer_crs.get(name)
    box = shapely.segmentize(shapely.box(*bounds), max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 16 + 1.0)
    target = source.crs if source is not None and source.crs is not None and not source.offset else "EPSG:4326"
    out = gpd.GeoSeries([box], crs=plan.metric_crs).to_crs(target).total_bounds
    pad = OFFSET_PAD_DEG if source is not None and source.offset else (1e-6 if pyproj_geographic(target) else 0.01)
    return (out[0] - pad, out[1] - pad, out[2] + pad, out[3] + pad)


def pyproj_geographic(crs) -> bool:
    """Is ``crs`` (anything pyproj reads) a geographic (lon/lat) CRS?"""
    import pyproj

    return pyproj.CRS.from_user_input(crs).is_geographic


def _part_buildings(plan: Plan, p: int, hpts: np.ndarray, *, warnings: list, repaired: list):
    """The buildings part ``p`` owns or its households name, plus those round its households, in feature order;
    which of them it owns and their positions in the input (None, None, None without a buildings layer). What
    the reading noticed is appended to ``warnings`` and ``repaired``."""
    if plan.building_fids[p] is None:
        return None, None, None
    metric = plan.metric_crs
    wanted = np.union1d(plan.building_fids[p], plan.named_building_fids[p])
    near = _union_bounds(hpts[~shapely.is_missing(hpts)])
    parts = [read_layers(plan.path, ["buildings"], crs=plan.crs, metric_crs=metric,
                         options={"buildings": {"fids": wanted}})]
    if near is not None:
        parts.append(read_layers(plan.path, ["buildings"], crs=plan.crs, metric_crs=metric,
                                 options={"buildings": {"bbox": _layer_bbox(_box(near, BUILDING_MARGIN_M), plan, "buildings")}}))
    frames, fids = [], []
    for part in parts:
        frame = part.layers["buildings"]
        frames.append(frame)
        fids.append(part.fids["buildings"])
        warnings += part.warnings
        repaired += part.repaired
    fid = np.concatenate(fids)
    buildings = pd.concat(frames, ignore_index=True)
    keep = ~pd.Series(fid).duplicated().to_numpy()
    buildings, fid = buildings[keep], fid[keep]
    order = np.argsort(fid, kind="stable")
    buildings = gpd.GeoDataFrame(buildings.iloc[order].reset_index(drop=True), geometry="geometry", crs=metric)
    fid = fid[order]
    owned_b = np.isin(fid, plan.building_fids[p])
    b_order = np.full(len(fid), -1, dtype=np.int64)
    b_order[owned_b] = plan.building_order[p][np.searchsorted(plan.building_fids[p], fid[owned_b])] \
        if np.all(np.diff(plan.building_fids[p]) >= 0) else \
        pd.Series(plan.building_order[p], index=plan.building_fids[p]).reindex(fid[owned_b]).to_numpy()
    return buildings, owned_b, b_order


def _part_estates(plan: Plan, hpts: np.ndarray, buildings: gpd.GeoDataFrame | None) -> dict:
    """The estates holding or named by a part's buildings and households, and their gates (``{}`` without an
    estates layer)."""
    if plan.estate_fid is None:
        return {}
    metric = plan.metric_crs
    layers = {}
    near = _union_bounds(hpts[~shapely.is_missing(hpts)], buildings.geometry.to_numpy() if buildings is not None else None)
    fids = []
    if buildings is not None and "estate_id" in buildings.columns:
        named = buildings["estate_id"].dropna().astype(str).unique()
        fids.append(plan.estate_fid.reindex(named).dropna().to_numpy(dtype=np.int64))
    options = {"estates": {"fids": np.unique(np.concatenate(fids)) if fids else np.zeros(0, np.int64)}}
    frames = [read_layers(plan.path, ["estates"], crs=plan.crs, metric_crs=metric, options=options)]
    if near is not None:
        frames.append(read_layers(plan.path, ["estates"], crs=plan.crs, metric_crs=metric,
                                  options={"estates": {"bbox": _layer_bbox(_box(near, 1.0), plan, "estates")}}))
    est = pd.concat([f.layers["estates"] for f in frames], ignore_index=True)
    est_fid = np.concatenate([f.fids["estates"] for f in frames])
    keep = ~pd.Series(est_fid).duplicated().to_numpy()
    order = np.argsort(est_fid[keep], kind="stable")
    layers["estates"] = gpd.GeoDataFrame(est[keep].iloc[order].reset_index(drop=True), geometry="geometry", crs=metric)
    if plan.gate_fids is not None:
        g = plan.gate_fids.reindex(layers["estates"]["id"].astype(str).to_numpy()).dropna()
        gfids = np.sort(np.concatenate(g.to_list())) if len(g) else np.zeros(0, np.int64)
        layers["gates"] = read_layers(plan.path, ["gates"], crs=plan.crs, metric_crs=metric,
                                      options={"gates": {"fids": gfids}}).layers["gates"]
    return layers


def read_part(plan: Plan, p: int):
    """The layers one part needs, validated and in the run's metric CRS (a :class:`geo.load.Dataset`), and
    which of its households and buildings it owns (with their positions in the input)."""
    from geo.load import Dataset

    metric = plan.metric_crs
    opts = {"households": {"fids": plan.household_fids[p]}}
    hh = read_layers(plan.path, ["households"], crs=plan.crs, settings=plan.settings, metric_crs=metric, options=opts)
    households = hh.layers["households"]
    layers = {"households": households}
    warnings, repaired = list(hh.warnings), list(hh.repaired)
    hpts = households.geometry.to_numpy()
    buildings, owned_b, b_order = _part_buildings(plan, p, hpts, warnings=warnings, repaired=repaired)
    if buildings is not None:
        layers["buildings"] = buildings
    layers.update(_part_estates(plan, hpts, buildings))
    layers.update({name: frame for name, frame in plan.whole.items()})
    # roads and facilities within the horizon of everything the part measures from
    config = load_config(**plan.configs.get(REACH_CONFIG, {}))
    street = plan.whole["streets"].geometry.to_numpy()[p:p + 1]
    around = _union_bounds(hpts[~shapely.is_missing(hpts)], street,
                           buildings.geometry.to_numpy() if buildings is not None else None,
                           layers["gates"].geometry.to_numpy() if "gates" in layers else None)
    reach_m = config.horizon_m + MARGIN_M
    road_m = reach_m + NetworkSettings().max_attach_m + NetworkSettings().snap_tolerance_m + MARGIN_M
    for name, margin in (("facilities", reach_m), ("roads", road_m)):
        if name in plan.sources:
            part = read_layers(plan.path, [name], crs=plan.crs, metric_crs=metric,
                               options={name: {"bbox": _layer_bbox(_box(around, margin), plan, name)}})
            layers[name] = part.layers[name]
            warnings += part.warnings
    data = Dataset(layers=layers, metric_crs=metric, sources=plan.sources, source_crs=plan.source_crs,
                   missing_optional=plan.missing_optional, warnings=warnings, repaired=repaired,
                   settings=plan.settings, folder=plan.folder, configs=plan.configs)
    # the streets whose empty cells may be this part's (its own and its neighbours)
    streets = plan.whole["streets"]
    touching = shapely.intersects(streets.geometry.to_numpy(), shapely.buffer(street[0], 200.0))
    area = streets[touching].to_crs("EPSG:4326").geometry.to_list()
    return data, owned_b, b_order, area


def whole_network(plan: Plan):
    """The walking network of all roads with all facilities: its statistics (as the single-process run reports
    them), its components, the facilities of unknown categories, the warnings, and the facilities per street
    and category (for the data-quality check)."""
    from geo.facilities import facility_counts
    from geo.pipeline import unknown_categories
    from geo.reach import Origins, ReachModel

    config = load_config(**plan.configs.get(REACH_CONFIG, {}))
    data = read_layers(plan.path, ["roads", "facilities"], crs=plan.crs, metric_crs=plan.metric_crs)
    roads, facilities = data.layers.get("roads"), data.layers.get("facilities")
    unknown = unknown_categories(facilities, config)
    counts = facility_counts(facilities, plan.whole["streets"], config=config)
    if facilities is not None:
        facilities = facilities[facilities["category"].isin(config.ids).to_numpy()]
    model = ReachModel.build(roads, facilities, Origins.simple(np.zeros(0), np.zeros(0)), config=config)
    components = None
    if roads is not None and len(roads):
        components = WholeNetwork.of(walking_graph(roads))
    return model.stats, components, unknown, data.warnings, counts
