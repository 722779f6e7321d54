"""Life-circle figures: per household, per H3 cell, and shares per grid, community, street and zone.

Takes a :class:`~geo.reach.ReachModel` and turns its per-origin distances into
what planners read: minutes to each category at both speeds, the categories
missing within their tier (缺配清单), cells for the heat map and the shares
of households, persons and special groups within each tier.

Example
-------
Households of one building share its origin (``household_reach(model, origin_of, elderly_alone)`` then
gives their minutes):

>>> import geopandas as gpd
>>> import numpy as np
>>> from shapely.geometry import box
>>> buildings = gpd.GeoDataFrame({"id": ["B1"]}, geometry=[box(0, 0, 20, 20)], crs=32648)
>>> origins, origin_of = household_origins(np.array([5.0, 6.0, 300.0]), np.array([5.0, 6.0, 300.0]),
...                                        np.array(["B1", "B1", None], dtype=object),
...                                        buildings=buildings, estates=None, gates=None)
>>> origin_of.tolist(), origins.x.tolist()
([0, 0, 1], [10.0, 300.0])
"""

from __future__ import annotations

import math

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from h3ronpy import vector as h3v
from scipy.spatial import cKDTree
import h3ronpy

from geo.reach import ReachConfig, ReachModel, Origins
from geo.schema import SPECIAL_GROUPS

#: H3 resolutions offered (10 is the default: cells of about 0.015 km², 65 m across).
H3_RESOLUTIONS = (9, 10, 11)
DEFAULT_H3_RESOLUTION = 10


def household_origins(x: np.ndarray, y: np.ndarray, building_id: np.ndarray, *,
                      buildings: gpd.GeoDataFrame | None, estates: gpd.GeoDataFrame | None,
                      gates: gpd.GeoDataFrame | None) -> tuple[Origins, np.ndarray]:
    """Origins households walk from and the origin of each household (-1: no location).

    A household in a building walks from the building (its inside point); one without a building from its
    own point. When that place lies in an estate with gates (the building's ``estate_id``, else the estate
    polygon holding it), the walk leaves by the nearest-in-total of its gates: a straight walk inside the
    estate, then the network. An estate without gates is entered anywhere along its edge (ordinary roads).
    """
    n = len(x)
    origin_of = np.full(n, -1, dtype=np.int64)
    has_b = pd.notna(building_id)
    bx = by = np.zeros(0)
    b_used = np.zeros(0, dtype=object)
    if has_b.any() and buildings is not None:
        b_used, inverse = np.unique(np.asarray(building_id[has_b]).astype(str), return_inverse=True)
        pos = pd.Index(buildings["id"].astype(str)).get_indexer(b_used)
        inner = shapely.point_on_surface(buildings.geometry.to_numpy()[pos])
        bx, by = shapely.get_x(inner), shapely.get_y(inner)
        origin_of[np.flatnonzero(has_b)] = inverse
    loose = ~has_b & np.isfinite(x)
    nb = len(b_used)
    origin_of[np.flatnonzero(loose)] = nb + np.arange(loose.sum())
    ox = np.r_[bx, x[loose]]
    oy = np.r_[by, y[loose]]

    # which estate each origin is in
    estate_of = np.full(len(ox), None, dtype=object)
    if estates is not None and len(estates):
        if nb and "estate_id" in buildings.columns:
            eid = buildings.set_index(buildings["id"].astype(str))["estate_id"].reindex(b_used).to_numpy()
            estate_of[:nb] = eid
        missing = pd.isna(estate_of)
        if missing.any():
            eg = estates.geometry.to_numpy()
            pi, ei = shapely.STRtree(eg).query(shapely.points(ox[missing], oy[missing]), predicate="intersects")
            first = np.unique(pi, return_index=True)[1]
            estate_of[np.flatnonzero(missing)[pi[first]]] = estates["id"].astype(str).to_numpy()[ei[first]]
    if gates is None or len(gates) == 0:
        return Origins.simple(ox, oy), origin_of
    gate_estate = gates["estate_id"].astype(str).to_numpy()
    gx = shapely.get_x(gates.geometry.to_numpy())
    gy = shapely.get_y(gates.geometry.to_numpy())
    gated = pd.notna(estate_of) & pd.Series(estate_of).astype("string").isin(set(gate_estate)).to_numpy()
    # pair each gated origin with every gate of its estate
    gates_by_estate = pd.Series(np.arange(len(gates))).groupby(gate_estate).apply(np.asarray)
    go = np.flatnonzero(gated)
    counts = gates_by_estate.reindex(estate_of[go].astype(str)).map(len).to_numpy().astype(int) if len(go) else np.zeros(0, int)
    pair_origin = np.repeat(go, counts)
    pair_gate = np.concatenate(gates_by_estate.reindex(estate_of[go].astype(str)).to_numpy()) if len(go) else np.zeros(0, int)
    plain = np.flatnonzero(~gated)
    entry_origin = np.r_[plain, pair_origin]
    entry_x = np.r_[ox[plain], gx[pair_gate]]
    entry_y = np.r_[oy[plain], gy[pair_gate]]
    extra = np.r_[np.zeros(len(plain)), np.hypot(ox[pair_origin] - gx[pair_gate], oy[pair_origin] - gy[pair_gate])]
    return Origins(x=ox, y=oy, entry_origin=entry_origin, entry_x=entry_x, entry_y=entry_y, entry_extra=extra), origin_of


def _lists(mask: np.ndarray, ids: np.ndarray, valid: np.ndarray) -> pd.arrays.ArrowExtensionArray:
    """Per row, the ids whose column is True (null where not ``valid``), as an arrow list column (no Python
    object per row; writers turn it into JSON arrays)."""
    rows, cols = np.nonzero(mask)
    offsets = np.r_[0, np.cumsum(np.bincount(rows, minlength=mask.shape[0]))].astype(np.int32)
    values = pa.array(ids.astype(str), pa.string()).take(pa.array(cols, pa.int64()))
    arr = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))
    return pd.arrays.ArrowExtensionArray(arr)


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    out = np.full(len(index), np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def effective_minutes(config: ReachConfig, general: np.ndarray, elderly: np.ndarray, elderly_alone: np.ndarray,
                      cat) -> np.ndarray:
    """Minutes that count for a category: at the elderly speed for elderly facilities and elderly-alone households."""
    if cat.elderly:
        return elderly
    return np.where(elderly_alone, elderly, general)


def household_reach(model: ReachModel, origin_of: np.ndarray, elderly_alone: np.ndarray) -> pd.DataFrame:
    """Per household: ``reach_<c>_min``, ``reach_<c>_min_elderly`` (NaN: none reachable), ``within_<c>``,
    ``missing_categories`` (list), ``basic_complete``, ``reach_method``."""
    cfg = model.config
    out = {}
    within = {}
    for cat in cfg.categories:
        general = _take(model.origin_minutes(cat.id, "general"), origin_of)
        elderly = _take(model.origin_minutes(cat.id, "elderly"), origin_of)
        out[f"reach_{cat.id}_min"] = np.round(general, 1)
        out[f"reach_{cat.id}_min_elderly"] = np.round(elderly, 1)
        eff = effective_minutes(cfg, general, elderly, elderly_alone, cat)
        within[cat.id] = np.nan_to_num(eff, nan=np.inf) <= cat.tier
    frame = pd.DataFrame(out)
    located = origin_of >= 0
    ids = np.array(cfg.ids, dtype=object)
    matrix = np.column_stack([within[c] for c in cfg.ids]) if cfg.ids else np.zeros((len(origin_of), 0), bool)
    missing = _lists(~matrix, ids, located)
    basic = [c.id for c in cfg.categories if c.basic]
    for c in cfg.ids:
        frame[f"within_{c}"] = within[c]
    frame["missing_categories"] = missing
    frame["basic_complete"] = np.column_stack([within[c] for c in basic]).all(axis=1) if basic else located
    frame["reach_method"] = np.where(located, model.method, None)
    return frame


def reach_shares(groups: dict[str, np.ndarray], reach: pd.DataFrame, *, persons: np.ndarray, special: pd.DataFrame,
                 config: ReachConfig) -> pd.DataFrame:
    """Shares within tier per group level (grid, community, street, zone), per category and for the basic set.

    ``groups`` maps a level name to the group id of each household (None: not in that level). Returns rows
    ``level``, ``id``, ``category`` (a category id or ``basic_set``), ``tier``, ``households``,
    ``households_share``, ``persons_share`` and ``<group>_share`` for each special group (NaN when the
    group has no member there).
    """
    cols = {c: reach[f"within_{c}"].to_numpy() for c in config.ids}
    cols["basic_set"] = reach["basic_complete"].to_numpy()
    tiers = {c.id: c.tier for c in config.categories}
    tiers["basic_set"] = None
    rows = []
    w_persons = np.nan_to_num(persons.astype(float))
    for level, keys in groups.items():
        keys = pd.Series(keys, dtype="object")
        ok = keys.notna().to_numpy()
        if not ok.any():
            continue
        # one factorisation per level, then sums per group with bincount (the weights are whole numbers:
        # the sums are exact, as pandas' groupby gave them)
        codes, ids = pd.factorize(keys[ok].astype(str).to_numpy(), sort=True)
        ids = pd.Index(ids, name="id")
        weights = {"one": np.ones(len(codes)), "persons": w_persons[ok],
                   **{grp: special[grp].to_numpy()[ok].astype(float) for grp in SPECIAL_GROUPS}}
        denom = {name: np.bincount(codes, weights=w, minlength=len(ids)) for name, w in weights.items()}
        for cat, hit in cols.items():
            h = hit[ok].astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = {name: np.round(np.bincount(codes, weights=w * h, minlength=len(ids)) /
                                        np.where(denom[name] == 0, np.nan, denom[name]), 4)
                         for name, w in weights.items()}
            part = pd.DataFrame({
                "level": level, "id": ids, "category": cat, "tier": tiers[cat],
                "households": denom["one"].astype(int),
                "households_share": share["one"], "persons_share": share["persons"],
                **{f"{grp}_share": share[grp] for grp in SPECIAL_GROUPS},
            })
            rows.append(part)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def cells_of(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """The H3 cell (uint64) of each lon/lat point, 0 where a coordinate is missing."""
    out = np.zeros(len(lon), dtype=np.uint64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.any():
        out[ok] = np.asarray(h3v.coordinates_to_cells(lat[ok], lon[ok], resolution))
    return out


def cells_to_strings(cells: np.ndarray) -> np.ndarray:
    """H3 cell ids as hex strings (None for 0)."""
    out = np.full(len(cells), None, dtype=object)
    ok = cells > 0
    if ok.any():
        out[ok] = np.asarray(h3ronpy.cells_to_string(cells[ok]), dtype=object)
    return out


#: Seed cells whose neighbourhoods are expanded at once (bounds the memory of the ring lists).
_SEED_BATCH = 100_000


#: H3 cells of one resolution differ in size over the globe; their edges are longer than this share of the
#: average everywhere (generous), so the rings searched reach at least the distance asked for.
_SMALLEST_EDGE_SHARE = 0.7


def life_circle_reach_m(config: ReachConfig, resolution: int) -> float:
    """How far from the centre of a cell with a household, building or facility the centre of an empty cell
    may lie and be kept: the life circle's walk (``config.life_circle_m``, 900 m) plus one average edge
    length (a point of a cell lies about one edge at most from its centre): 976 m at resolution 10."""
    return config.life_circle_m + h3.average_hexagon_edge_length(resolution, unit="m")


def cells_near(seeds: np.ndarray, rings: int) -> np.ndarray:
    """Sorted unique cells (uint64) within ``rings`` of any seed cell (0 seeds are ignored).

    >>> cell = cells_of(np.array([104.0657]), np.array([30.6595]), 10)
    >>> cells_near(cell, 1).size
    7
    """
    seeds = np.unique(np.asarray(seeds, dtype=np.uint64))
    seeds = seeds[seeds > 0]
    out = np.zeros(0, dtype=np.uint64)
    for start in range(0, len(seeds), _SEED_BATCH):
        disk = np.asarray(h3ronpy.grid_disk(seeds[start:start + _SEED_BATCH], rings, flatten=True), dtype=np.uint64)
        out = np.union1d(out, disk)
    return out


def cells_in_area(cells: np.ndarray, area_wgs84: list) -> np.ndarray:
    """The cells whose centre lies in one of the polygons (WGS-84): H3's own rule for the cells of a polygon."""
    if not len(cells) or not len(area_wgs84):
        return np.zeros(0, dtype=np.uint64)
    points = shapely.points(*_centres(cells))
    inside, _ = shapely.STRtree(np.asarray(area_wgs84, dtype=object)).query(points, predicate="intersects")
    return cells[np.unique(inside)]


def _centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat of the cells' centres."""
    centres = h3v.cells_to_coordinates(cells)
    return np.asarray(centres.column("lng")), np.asarray(centres.column("lat"))


def _metric(lon: np.ndarray, lat: np.ndarray, crs) -> np.ndarray:
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(crs)
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def area_cells_near(seeds: np.ndarray, area_wgs84: list, *, distance_m: float, resolution: int,
                    metric_crs) -> np.ndarray:
    """The cells (sorted uint64) whose centre lies in the area (polygons, WGS-84) and within ``distance_m``
    of the centre of a seed cell. Seeds farther from the area than that are left out first, so a part of a
    city expands only the seeds round it; the work grows with the seeds, not with the area.

    >>> from shapely.geometry import box
    >>> seeds = cells_of(np.array([104.0657]), np.array([30.6595]), 10)
    >>> area = [box(104.06, 30.655, 104.07, 30.665)]
    >>> len(area_cells_near(seeds, area, distance_m=200.0, resolution=10, metric_crs=32648))
    7
    """
    seeds = np.unique(np.asarray(seeds, dtype=np.uint64))
    seeds = seeds[seeds > 0]
    if not len(seeds) or not len(area_wgs84):
        return np.zeros(0, dtype=np.uint64)
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    lon, lat = _centres(seeds)
    margin = (distance_m + 2 * edge) / (111_320.0 * max(math.cos(math.radians(float(np.abs(lat).max()))), 0.1))
    tree = shapely.STRtree(np.asarray(area_wgs84, dtype=object))
    near = np.unique(tree.query(shapely.points(lon, lat), predicate="dwithin", distance=margin)[0])
    if not len(near):
        return np.zeros(0, dtype=np.uint64)
    rings = math.ceil(distance_m / (1.5 * edge * _SMALLEST_EDGE_SHARE))  # ring k's centres are ≥ 1.5·k edges out
    candidates = cells_in_area(cells_near(seeds[near], rings), area_wgs84)
    if not len(candidates):
        return candidates
    d, _ = cKDTree(_metric(lon[near], lat[near], metric_crs)).query(_metric(*_centres(candidates), metric_crs))
    return candidates[d <= distance_m]


def h3_reach(model: ReachModel, *, household_lonlat: tuple[np.ndarray, np.ndarray], reach: pd.DataFrame,
             area_wgs84: list, resolution: int = DEFAULT_H3_RESOLUTION, metric_crs=None,
             seed_cells: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """One feature per H3 cell: households, median minutes per category, shares within tier and of the full
    basic set; empty cells are measured from the cell centre (``from_centre``).

    Every cell with a household is a feature. An empty cell is one when its centre lies in the area
    (``area_wgs84``, polygons in WGS-84) and within :func:`life_circle_reach_m` of the centre of one of
    ``seed_cells`` (the cells of households, buildings and facilities): the life circle round the places
    people live and the services they walk to, so the work and the output grow with the data, not with
    the area (:func:`area_cells_near`). ``seed_cells=None`` takes every cell of the area (the whole area, however empty). Adds the
    centre origins to ``model`` only for the computation (the model is not changed).
    """
    if resolution not in H3_RESOLUTIONS:
        raise ValueError(f"H3 resolution must be one of {H3_RESOLUTIONS}, got {resolution}")
    cfg = model.config
    lon, lat = household_lonlat
    cells = cells_of(lon, lat, resolution)
    located = cells > 0
    frame = reach.loc[located].copy()
    frame["cell"] = cells[located]
    agg = {"households": ("cell", "size")}
    for c in cfg.ids:
        agg[f"reach_{c}_min"] = (f"reach_{c}_min", "median")
        agg[f"within_{c}"] = (f"within_{c}", "mean")
    agg["basic_share"] = ("basic_complete", "mean")
    per_cell = frame.groupby("cell").agg(**agg) if len(frame) else \
        pd.DataFrame(columns=list(agg), index=pd.Index(np.zeros(0, np.uint64), name="cell"))
    # empty cells of the area
    if seed_cells is None:
        area_cells = set()
        for poly in area_wgs84:
            area_cells.update(h3.str_to_int(c) for c in h3.geo_to_cells(poly, resolution))
        area_cells = np.array(sorted(area_cells), dtype=np.uint64)
    else:
        area_cells = area_cells_near(np.r_[np.asarray(seed_cells, dtype=np.uint64), cells[located]], area_wgs84,
                                     distance_m=life_circle_reach_m(cfg, resolution), resolution=resolution,
                                     metric_crs=metric_crs)
    empty = np.setdiff1d(area_cells, per_cell.index.to_numpy().astype(np.uint64))
    if len(empty):
        centres = h3v.cells_to_coordinates(empty)
        clat = np.asarray(centres.column("lat"))
        clon = np.asarray(centres.column("lng"))
        gx, gy = gpd.GeoSeries(gpd.points_from_xy(clon, clat), crs="EPSG:4326").to_crs(metric_crs).pipe(
            lambda s: (s.x.to_numpy(), s.y.to_numpy()))
        centre_model = model.for_origins(Origins.simple(gx, gy))
        empty_rows = {"households": np.zeros(len(empty), int)}
        within_all = []
        for cat in cfg.categories:
            m = centre_model.origin_minutes(cat.id, "general")
            empty_rows[f"reach_{cat.id}_min"] = m
            ok = np.nan_to_num(m if not cat.elderly else centre_model.origin_minutes(cat.id, "elderly"), nan=np.inf) <= cat.tier
            empty_rows[f"within_{cat.id}"] = ok.astype(float)
            if cat.basic:
                within_all.append(ok)
        empty_rows["basic_share"] = np.column_stack(within_all).all(axis=1).astype(float) if within_all else np.ones(len(empty))
        empty_frame = pd.DataFrame(empty_rows, index=pd.Index(empty, name="cell"))
        per_cell["from_centre"] = False
        empty_frame["from_centre"] = True
        per_cell = pd.concat([per_cell, empty_frame]) if len(per_cell) else empty_frame
    else:
        per_cell["from_centre"] = False
    ids = np.asarray(per_cell.index.to_numpy(), dtype=np.uint64)
    for c in cfg.ids:
        per_cell[f"reach_{c}_min"] = per_cell[f"reach_{c}_min"].astype(float).round(1)
        per_cell[f"within_{c}"] = per_cell[f"within_{c}"].astype(float).round(3)
    per_cell["basic_share"] = per_cell["basic_share"].astype(float).round(3)
    polys = shapely.from_wkb(np.asarray(h3v.cells_to_wkb_polygons(ids), dtype=object))
    out = gpd.GeoDataFrame(per_cell.reset_index(drop=True), geometry=polys, crs="EPSG:4326")
    out.insert(0, "h3", np.asarray(h3ronpy.cells_to_string(ids), dtype=object))
    out.insert(1, "resolution", resolution)
    out["reach_method"] = model.method
    return out.sort_values("h3").reset_index(drop=True)
