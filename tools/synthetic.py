"""Synthetic districts: seeded, vectorised test and benchmark data of any size.

A regular city of blocks separated by streets, in the data model of
``docs/data-model.md``: 街道 street → 社区 community → 网格 grid → 小区 estate
(one per block) → 楼栋 building → 户 household. Everything is built with numpy
and shapely's array constructors, so ten million households take no Python loop
per household or per building; the only loops run over communities and streets
(to dissolve them).

Layout (metres, EPSG:32648 UTM 48N, returned in WGS-84):

- The city is a lattice of *cells*; each cell holds one block (an estate) and
  the half of the 30 m wide street around it, so cells tile the plane.
- A grid is a box of whole cells (``blocks_per_grid`` of them, chosen so that a
  block holds about ten buildings). Grids follow a Hilbert curve, so every run
  of consecutive grids is compact and connected: a community is a run of
  grids, a street a run of communities. Hence no building crosses a grid line
  and grids tile their community (and communities their street) without gaps
  or overlaps.
- Buildings are rectangles (a third turned by up to 6°) in a lattice of slots
  inside their block, at least 2 m apart and 5 m from the street.
- Households: most are points inside their footprint; 2 % also carry that
  building's id; 3 % have only a ``building_id`` and no point; 1 % are points
  0.5–9.5 m outside a footprint (to exercise snapping; a point may land nearer
  another footprint, or inside it); 0.2 % are points in a street, at least
  17 m from any building (``no_building``); 0.05 % have neither point nor
  building id (``no_location``).

Example
-------
>>> layers = make_district(households=2_000, buildings=200, grids=6, seed=1)
>>> len(layers["households"]), layers["grids"].crs.to_epsg()
(2000, 4326)

Command line::

    python -m tools.synthetic --households 1000000 --buildings 100000 \
        --grids 3000 --seed 0 --out data/district
    python -m tools.synthetic --city --out data/city   # the whole-city case, make_city()
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

try:  # pyarrow keeps text columns as compact Arrow buffers, not Python objects
    import pyarrow as pa
except ImportError:  # pragma: no cover - exercised only without pyarrow
    pa = None

#: Bumped whenever the same arguments would give a different district (names caches).
GENERATOR_VERSION = 1

#: CRS the district is built in (UTM 48N: Chengdu) and the one it is returned in.
METRIC_CRS = "EPSG:32648"
OUTPUT_CRS = "EPSG:4326"

#: Half the width of a street between two blocks (m); streets are 30 m wide.
STREET_HALF_WIDTH_M = 15.0
#: Distance from a block's edge to its first building slot (m).
BLOCK_MARGIN_M = 5.0
#: Size of the slot holding one building (m).
SLOT_W_M, SLOT_H_M = 34.0, 28.0
#: Footprint sizes (m) and the largest turn of a footprint (degrees).
FOOTPRINT_W_M, FOOTPRINT_H_M = (14.0, 28.0), (10.0, 18.0)
MAX_TURN_DEG = 6.0
TURNED_SHARE = 0.3
#: About this many buildings per block decides how many blocks a grid has.
BUILDINGS_PER_BLOCK = 10
#: Defaults of the hierarchy: ~10 grids (≈3,300 households, ≈8,000 residents at
#: 333 households per grid) make a community of the 3,000–10,000 residents
#: of docs/domain.md; ~10 communities make a street.
GRIDS_PER_COMMUNITY = 10
COMMUNITIES_PER_STREET = 10

#: Shares of the household location kinds (the rest: a point inside its footprint).
SHARE_BUILDING_ONLY = 0.03  # building_id, no point
SHARE_POINT_AND_BUILDING = 0.02  # point inside the footprint and its building_id
SHARE_SNAP = 0.01  # point 0.5–9.5 m outside a footprint, no building_id
SHARE_FAR = 0.002  # point in a street, ≥ 17 m from every footprint
SHARE_NO_LOCATION = 0.0005  # neither point nor building_id
SNAP_OFFSET_M = (0.5, 9.5)
#: Special groups 特殊群体: share of households flagged.
GROUP_SHARES = {
    "elderly_alone": 0.04,
    "child_in_difficulty": 0.003,
    "mental_disorder": 0.004,
    "migrant": 0.12,
    "rental": 0.15,
}
SHARE_NEVER_VISITED = 0.08
VISIT_REFERENCE_DATE = "2025-06-30"
RESIDENTIAL_SHARE = 0.96
FLOORS = np.array([6, 7, 9, 11, 18, 24, 32])
FLOORS_P = np.array([0.25, 0.2, 0.1, 0.15, 0.15, 0.1, 0.05])
SHARE_FLOORS_UNKNOWN = 0.01
SHARE_UNSTAFFED_GRIDS = 0.03

_STREET_NAMES = ("督院街", "春熙路", "书院街", "合江亭", "水井坊", "牛市口", "龙舟路", "双桂路",
                 "莲新", "沙河", "东光", "狮子山", "成龙路", "柳江", "三圣", "盐市口")
_COMMUNITY_NAMES = ("红星", "锦华", "新华", "和平", "东风", "光明", "玉林", "桂花", "望江", "致民",
                    "金沙", "青石", "芳草", "兴隆", "太平", "紫荆", "莲花", "龙泉", "安顺", "永丰")
_ESTATE_NAMES = ("锦华苑", "翠苑", "花园", "新村", "家园", "雅居", "名都", "佳苑", "广场", "公寓")
_ROADS = ("红星路", "东大街", "人民南路", "蜀都大道", "玉林路", "科华北路", "建设路", "锦华路",
          "永丰路", "二环路", "滨江路", "书院街")
_SECTIONS = ("一段", "二段", "三段", "四段")
_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
_GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰")

_S = np.dtypes.StringDType()


# --------------------------------------------------------------- text helpers
def _text(values) -> np.ndarray:
    """Values (numbers, strings, a tuple of names) as a variable-width string array."""
    return np.asarray(values).astype(_S)


def _num(values, width: int = 0) -> np.ndarray:
    """Integers as decimal strings, zero-padded to ``width``."""
    out = np.asarray(values).astype(_S)
    return np.strings.zfill(out, width) if width else out


def _cat(*parts) -> np.ndarray:
    """Element-wise concatenation of string arrays and scalars."""
    out = parts[0] if isinstance(parts[0], np.ndarray) else np.asarray(parts[0], dtype=_S)
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return out


def _pick(names: tuple[str, ...], index: np.ndarray) -> np.ndarray:
    """``names[index]`` as a string array (index wraps around)."""
    return np.asarray(names, dtype=_S)[np.asarray(index) % len(names)]


def _ids(prefix: str, n: int) -> np.ndarray:
    """``prefix`` + 1..n zero-padded to one width, so text order is number order."""
    return _cat(prefix, _num(np.arange(1, n + 1), len(str(max(n, 1)))))


def _column(values: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    """A text column; Arrow-backed (no Python object per row) when pyarrow is there."""
    if pa is not None:
        return pd.Series(pa.array(values, mask=null), dtype="str")
    objects = values.astype(object)
    if null is not None:
        objects[null] = None
    return pd.Series(objects, dtype="str")


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` two- or three-character Chinese personal names."""
    name = _cat(_pick(_SURNAMES, rng.integers(0, len(_SURNAMES), n)),
                _pick(_GIVEN, rng.integers(0, len(_GIVEN), n)))
    third = rng.random(n) < 0.6
    name[third] = _cat(name[third], _pick(_GIVEN, rng.integers(0, len(_GIVEN), int(third.sum()))))
    return name


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` Chengdu landline work numbers (028-8xxxxxxx)."""
    return _cat("028-8", _num(rng.integers(0, 10_000_000, n), 7))


# ------------------------------------------------------------------ geometry
def _hilbert_xy(d: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell (x, y) of positions ``d`` along the Hilbert curve over a ``side``² square."""
    t = d.astype(np.int64)
    x = np.zeros_like(t)
    y = np.zeros_like(t)
    s = 1
    while s < side:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        x = x + s * rx
        y = y + s * ry
        t = t // 4
        s *= 2
    return x, y


def _dissolve(geoms: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Union of ``geoms`` per group 0..n_groups-1 (groups are runs of a sorted key)."""
    bounds = np.searchsorted(group, np.arange(n_groups + 1))
    return np.array([shapely.union_all(geoms[a:b]) for a, b in zip(bounds[:-1], bounds[1:])], dtype=object)


def _counts_even(rng: np.random.Generator, total: int, n: int) -> np.ndarray:
    """``total`` items over ``n`` bins, as even as possible, extras in random bins."""
    counts = np.full(n, total // n, dtype=np.int64)
    counts[rng.permutation(n)[: total % n]] += 1
    return counts


def _rank_in_run(owner: np.ndarray, n_owners: int) -> np.ndarray:
    """Position of each item within its owner's run (``owner`` sorted)."""
    starts = np.searchsorted(owner, np.arange(n_owners))
    return np.arange(len(owner)) - starts[owner]


def _origin_utm(origin: tuple[float, float]) -> tuple[float, float]:
    to_utm = pyproj.Transformer.from_crs(OUTPUT_CRS, METRIC_CRS, always_xy=True)
    x, y = to_utm.transform(*origin)
    return float(np.floor(x)), float(np.floor(y))


# --------------------------------------------------------------- the district
def make_district(
    *,
    households: int,
    buildings: int,
    grids: int,
    seed: int = 0,
    origin: tuple[float, float] = (104.00, 30.60),
    grids_per_community: int = GRIDS_PER_COMMUNITY,
    communities_per_street: int = COMMUNITIES_PER_STREET,
) -> dict[str, gpd.GeoDataFrame]:
    """A synthetic district: the layers of docs/data-model.md, in WGS-84.

    Parameters
    ----------
    households, buildings, grids
        Exact numbers of rows of those layers (households ≥ 0, the others ≥ 1).
    seed
        Same seed, same district (same rows, same order, same bytes).
    origin
        Lon/lat of the south-west corner of the city.
    grids_per_community, communities_per_street
        Average sizes of the upper levels (there is always at least one).

    Returns
    -------
    dict
        ``streets``, ``communities``, ``grids``, ``estates``, ``buildings``,
        ``households``: GeoDataFrames in EPSG:4326 with string ids.

    Example
    -------
    >>> d = make_district(households=500, buildings=50, grids=2)
    >>> d["buildings"]["id"].iloc[0]
    'B01'
    """
    if households < 0 or buildings < 1 or grids < 1:
        msg = f"need households ≥ 0, buildings ≥ 1, grids ≥ 1 (got {households}, {buildings}, {grids})"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    x0, y0 = _origin_utm(origin)

    # ---- hierarchy sizes
    n_comm = max(1, round(grids / grids_per_community))
    n_comm = min(n_comm, grids)
    n_street = min(max(1, round(n_comm / communities_per_street)), n_comm)
    blocks_per_grid = max(1, round(buildings / (grids * BUILDINGS_PER_BLOCK)))
    kx = math.ceil(math.sqrt(blocks_per_grid))
    ky = math.ceil(blocks_per_grid / kx)
    n_blocks = grids * kx * ky

    # ---- buildings per block decide the slot lattice and the cell size
    per_block = _counts_even(rng, buildings, n_blocks)
    slots = int(per_block.max())
    sx = math.ceil(math.sqrt(slots))
    sy = math.ceil(slots / sx)
    cell_w = 2 * (STREET_HALF_WIDTH_M + BLOCK_MARGIN_M) + sx * SLOT_W_M
    cell_h = 2 * (STREET_HALF_WIDTH_M + BLOCK_MARGIN_M) + sy * SLOT_H_M
    grid_w, grid_h = kx * cell_w, ky * cell_h

    # ---- grids along a Hilbert curve; communities and streets are runs of it
    side = 1
    while side * side < grids:
        side *= 2
    gx, gy = _hilbert_xy(np.arange(grids), side)
    gx0 = x0 + gx * grid_w
    gy0 = y0 + gy * grid_h
    grid_geom = shapely.box(gx0, gy0, gx0 + grid_w, gy0 + grid_h)
    grid_comm = np.arange(grids) * n_comm // grids
    comm_street = np.arange(n_comm) * n_street // n_comm

    comm_geom = _dissolve(grid_geom, grid_comm, n_comm)
    street_geom = _dissolve(comm_geom, comm_street, n_street)

    street_ids = _ids("S", n_street)
    street_names = _cat(_pick(_STREET_NAMES, np.arange(n_street)),
                        np.where(np.arange(n_street) < len(_STREET_NAMES), "",
                                 _num(np.arange(n_street) // len(_STREET_NAMES) + 1)).astype(_S), "街道")
    streets = gpd.GeoDataFrame({"id": _column(street_ids), "name": _column(street_names)},
                               geometry=street_geom, crs=METRIC_CRS)

    comm_ids = _ids("C", n_comm)
    comm_in_street = _rank_in_run(comm_street, n_street)
    comm_names = _cat(_pick(_COMMUNITY_NAMES, np.arange(n_comm)),
                      np.where(np.arange(n_comm) < len(_COMMUNITY_NAMES), "",
                               _num(np.arange(n_comm) // len(_COMMUNITY_NAMES) + 1)).astype(_S), "社区")
    fringe = rng.random(n_comm) < 0.15
    communities = gpd.GeoDataFrame(
        {
            "id": _column(comm_ids),
            "name": _column(comm_names),
            "street_id": _column(street_ids[comm_street]),
            "ur_code": _column(np.where(fringe, "112", "111").astype(_S)),
            "code": _column(_cat("510104", _num(comm_street + 1, 3), _num(comm_in_street + 1, 3))),
        },
        geometry=comm_geom, crs=METRIC_CRS,
    )

    grid_in_comm = _rank_in_run(grid_comm, n_comm)
    staffed = rng.random(grids) >= SHARE_UNSTAFFED_GRIDS
    no_mediator = rng.random(grids) < 0.2
    grid_table = {
        "id": _column(_ids("G", grids)),
        "name": _column(_cat(comm_names[grid_comm], "第", _num(grid_in_comm + 1), "网格")),
        "community_id": _column(comm_ids[grid_comm]),
        "worker_name": _column(np.where(staffed, _names(rng, grids), "").astype(_S)),
        "worker_phone": _column(np.where(staffed, _phones(rng, grids), "").astype(_S)),
        "full_time_workers": staffed.astype(np.int64),
        "info_officer_name": _column(_names(rng, grids)),
        "info_officer_phone": _column(_phones(rng, grids)),
        "mediator_name": _column(_names(rng, grids), null=no_mediator),
        "mediator_phone": _column(_phones(rng, grids), null=no_mediator),
    }
    grids_gdf = gpd.GeoDataFrame(grid_table, geometry=grid_geom, crs=METRIC_CRS)

    # ---- blocks (= estates): block b is cell (b % kx, b // kx % ky) of grid b // (kx*ky)
    b = np.arange(n_blocks)
    b_grid = b // (kx * ky)
    local = b % (kx * ky)
    cx0 = gx0[b_grid] + (local % kx) * cell_w
    cy0 = gy0[b_grid] + (local // kx) * cell_h
    estate_geom = shapely.box(cx0 + STREET_HALF_WIDTH_M, cy0 + STREET_HALF_WIDTH_M,
                              cx0 + cell_w - STREET_HALF_WIDTH_M, cy0 + cell_h - STREET_HALF_WIDTH_M)
    estate_ids = _ids("E", n_blocks)
    estate_names = _cat(_pick(_COMMUNITY_NAMES, rng.integers(0, len(_COMMUNITY_NAMES), n_blocks)),
                        _pick(_ESTATE_NAMES, rng.integers(0, len(_ESTATE_NAMES), n_blocks)))
    estate_address = _cat(_pick(_ROADS, rng.integers(0, len(_ROADS), n_blocks)),
                          _pick(_SECTIONS, rng.integers(0, len(_SECTIONS), n_blocks)),
                          _num(rng.integers(1, 300, n_blocks)), "号")
    estate_year = rng.integers(1980, 2021, n_blocks)
    estates = gpd.GeoDataFrame(
        {
            "id": _column(estate_ids),
            "name": _column(estate_names),
            "year_built": estate_year,
            "address": _column(estate_address),
        },
        geometry=estate_geom, crs=METRIC_CRS,
    )

    # ---- buildings: slot j of their block, a rectangle turned by up to 6°
    bl = np.repeat(b, per_block)
    j = _rank_in_run(bl, n_blocks)
    scx = cx0[bl] + STREET_HALF_WIDTH_M + BLOCK_MARGIN_M + (j % sx + 0.5) * SLOT_W_M
    scy = cy0[bl] + STREET_HALF_WIDTH_M + BLOCK_MARGIN_M + (j // sx + 0.5) * SLOT_H_M
    w = rng.uniform(*FOOTPRINT_W_M, buildings)
    h = rng.uniform(*FOOTPRINT_H_M, buildings)
    turn = np.where(rng.random(buildings) < TURNED_SHARE,
                    np.radians(rng.uniform(-MAX_TURN_DEG, MAX_TURN_DEG, buildings)), 0.0)
    cos, sin = np.cos(turn), np.sin(turn)
    half_x = (w * cos + h * np.abs(sin)) / 2  # half extent of the turned rectangle
    half_y = (w * np.abs(sin) + h * cos) / 2
    room_x = np.maximum(SLOT_W_M / 2 - half_x - 1.0, 0.0)  # stay 1 m inside the slot
    room_y = np.maximum(SLOT_H_M / 2 - half_y - 1.0, 0.0)
    bcx = scx + rng.uniform(-1, 1, buildings) * room_x
    bcy = scy + rng.uniform(-1, 1, buildings) * room_y
    corner_u = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    corner_v = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    ring = np.empty((buildings, 5, 2))
    ring[:, :, 0] = bcx[:, None] + (corner_u * w[:, None]) * cos[:, None] - (corner_v * h[:, None]) * sin[:, None]
    ring[:, :, 1] = bcy[:, None] + (corner_u * w[:, None]) * sin[:, None] + (corner_v * h[:, None]) * cos[:, None]
    building_geom = shapely.polygons(ring)
    del ring

    floors = rng.choice(FLOORS, size=buildings, p=FLOORS_P)
    floors_unknown = rng.random(buildings) < SHARE_FLOORS_UNKNOWN
    residential = rng.random(buildings) < RESIDENTIAL_SHARE
    if not residential.any():
        residential[0] = True
    building_ids = _ids("B", buildings)
    building_names = _cat(_num(j + 1), "栋")
    building_address = _cat(estate_address[bl], " ", estate_names[bl], " ", building_names)
    buildings_gdf = gpd.GeoDataFrame(
        {
            "id": _column(building_ids),
            "estate_id": _column(estate_ids[bl]),
            "name": _column(building_names),
            "address": _column(building_address),
            "year_built": estate_year[bl],
            "floors": pd.array(np.where(floors_unknown, 0, floors), dtype="Int64"),
            "residential": residential,
        },
        geometry=building_geom, crs=METRIC_CRS,
    )
    buildings_gdf.loc[floors_unknown, "floors"] = pd.NA
    del building_names, estate_geom, grid_geom

    households_gdf = _households(
        rng, households, buildings, n_blocks,
        building_ids=building_ids, building_address=building_address,
        floors=floors, residential=residential,
        w=w, h=h, bcx=bcx, bcy=bcy, cos=cos, sin=sin,
        cx0=cx0, cy0=cy0, cell_w=cell_w,
    )

    layers = {
        "streets": streets,
        "communities": communities,
        "grids": grids_gdf,
        "estates": estates,
        "buildings": buildings_gdf,
    }
    out = {name: layer.to_crs(OUTPUT_CRS) for name, layer in layers.items()}
    out["households"] = households_gdf
    return out


def _households(
    rng: np.random.Generator,
    n: int,
    n_buildings: int,
    n_blocks: int,
    *,
    building_ids: np.ndarray,
    building_address: np.ndarray,
    floors: np.ndarray,
    residential: np.ndarray,
    w: np.ndarray,
    h: np.ndarray,
    bcx: np.ndarray,
    bcy: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    cx0: np.ndarray,
    cy0: np.ndarray,
    cell_w: float,
) -> gpd.GeoDataFrame:
    """The households layer (built in UTM, returned in WGS-84)."""
    # Homes: residential buildings get households in proportion to floors × area.
    weight = floors * w * h * residential
    per_building = rng.multinomial(n, weight / weight.sum()) if n else np.zeros(n_buildings, np.int64)
    home = np.repeat(np.arange(n_buildings), per_building)
    k = _rank_in_run(home, n_buildings)
    fl = floors[home]
    unit = k // (2 * fl) + 1
    room = ((k // 2) % fl + 1) * 100 + k % 2 + 1
    del k, fl
    # Rows in random order (as a register would come); ids follow that order.
    shuffle = rng.permutation(n)
    home, unit, room = home[shuffle], unit[shuffle], room[shuffle]
    del shuffle

    # Location kinds, exact counts, on a random subset each.
    kinds = np.zeros(n, dtype=np.int8)  # 0 inside, 1 building only, 2 point+building, 3 snap, 4 far, 5 none
    shares = (SHARE_BUILDING_ONLY, SHARE_POINT_AND_BUILDING, SHARE_SNAP, SHARE_FAR, SHARE_NO_LOCATION)
    counts = [round(s * n) for s in shares]
    order = rng.permutation(n)
    start = 0
    for kind, count in enumerate(counts, start=1):
        kinds[order[start:start + count]] = kind
        start += count
    del order

    # Points in the building's own frame: (u, v) in [-1/2, 1/2]² is the footprint.
    u = rng.uniform(-0.45, 0.45, n)
    v = rng.uniform(-0.45, 0.45, n)
    snap = np.flatnonzero(kinds == 3)
    side = rng.integers(0, 4, snap.size)  # 0 east, 1 west, 2 north, 3 south
    offset = rng.uniform(*SNAP_OFFSET_M, snap.size)
    hw, hh = w[home[snap]], h[home[snap]]
    u[snap] = np.where(side == 0, 0.5 + offset / hw, np.where(side == 1, -0.5 - offset / hw, u[snap]))
    v[snap] = np.where(side == 2, 0.5 + offset / hh, np.where(side == 3, -0.5 - offset / hh, v[snap]))
    del side, offset, hw, hh, snap
    lu = u * w[home]
    lv = v * h[home]
    del u, v
    c, s = cos[home], sin[home]
    x = bcx[home] + lu * c - lv * s
    y = bcy[home] + lu * s + lv * c
    del lu, lv, c, s

    # Far: 1–3 m inside the south edge of a random cell, in the street, ≥ 17 m from any footprint.
    far = np.flatnonzero(kinds == 4)
    cell = rng.integers(0, n_blocks, far.size)
    edge = STREET_HALF_WIDTH_M + BLOCK_MARGIN_M
    x[far] = cx0[cell] + rng.uniform(edge, cell_w - edge, far.size)
    y[far] = cy0[cell] + rng.uniform(1.0, 3.0, far.size)
    del far, cell

    has_point = (kinds != 1) & (kinds != 5)
    has_building = (kinds == 1) | (kinds == 2)

    to_wgs = pyproj.Transformer.from_crs(METRIC_CRS, OUTPUT_CRS, always_xy=True)
    lon, lat = to_wgs.transform(x[has_point], y[has_point])
    del x, y
    geometry = np.full(n, None, dtype=object)
    geometry[has_point] = shapely.points(lon, lat)
    del lon, lat

    table = {"id": _column(_ids("H", n))}
    address = _cat(building_address[home], " ", _num(unit), "单元", _num(room))
    del unit, room
    address[kinds == 4] = ""  # a street stall: the address may be empty
    table["address"] = _column(address)
    del address
    table["building_id"] = _column(building_ids[home], null=~has_building)
    del home

    group = {g: rng.random(n) < p for g, p in GROUP_SHARES.items()}
    persons = rng.choice(np.arange(0, 7), size=n, p=[0.005, 0.195, 0.3, 0.25, 0.15, 0.07, 0.03])
    persons[group["elderly_alone"]] = 1
    visited_days_ago = rng.integers(0, 180, n)
    visited_days_ago[group["elderly_alone"]] //= 6  # visited weekly-ish
    last_visit = (np.datetime64(VISIT_REFERENCE_DATE) - visited_days_ago.astype("timedelta64[D]")).astype(_S)
    del visited_days_ago
    never = rng.random(n) < SHARE_NEVER_VISITED
    table["persons"] = persons.astype(np.int64)
    table.update(group)
    table["last_visit"] = _column(last_visit, null=never)
    del last_visit
    return gpd.GeoDataFrame(table, geometry=geometry, crs=OUTPUT_CRS)


# ---------------------------------------------------------------- a whole city
#: The whole-city case (issue 11): a city's street register over its whole area, people in a few places.
CITY_STREETS = 343
CITY_AREA_KM2 = 16_000.0
CITY_HOUSEHOLDS = 2_300
CITY_SETTLEMENTS = 5
CITY_CENTRE = (104.07, 30.66)
#: Per settlement: buildings on a lattice, a square of streets round them, one facility per category.
CITY_BUILDINGS_PER_SETTLEMENT = 16
CITY_ROAD_SPACING_M = 150.0
CITY_ROAD_SPAN_M = 3_000.0
CITY_FACILITIES = ("community_service", "shop", "kindergarten", "primary_school", "health_centre", "canteen")


def make_city(
    *,
    streets: int = CITY_STREETS,
    area_km2: float = CITY_AREA_KM2,
    households: int = CITY_HOUSEHOLDS,
    settlements: int = CITY_SETTLEMENTS,
    seed: int = 0,
    centre: tuple[float, float] = CITY_CENTRE,
) -> dict[str, gpd.GeoDataFrame]:
    """A whole city's street register over a wide, mostly empty area, with households in a few settlements.

    ``streets`` street polygons are the Voronoi cells of random seeds clipped to a square of ``area_km2``
    round ``centre`` (as a city's register of 街道 covers its whole land, fields and hills included); each
    street is one community and one grid (a register of streets gives nothing finer), of urban-rural code
    111 where a settlement is and 220 (village) elsewhere. ``households``
    points cluster round ``settlements`` places; each place has a few buildings (most households are in
    one), a square of walkable streets every 150 m and one facility of each of :data:`CITY_FACILITIES`.

    Returns the layers of docs/data-model.md in WGS-84: ``streets``, ``communities``, ``grids``,
    ``buildings``, ``households``, ``facilities``, ``roads``.

    Example
    -------
    >>> city = make_city(streets=40, area_km2=400, households=300, settlements=2)
    >>> len(city["streets"]), len(city["households"])
    (40, 300)
    """
    if streets < 1 or area_km2 <= 0 or households < 0 or settlements < 1:
        msg = f"need streets ≥ 1, area > 0, households ≥ 0, settlements ≥ 1 (got {streets}, {area_km2}, {households}, {settlements})"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    cx, cy = _origin_utm(centre)
    half = math.sqrt(area_km2) * 500.0
    square = shapely.box(cx - half, cy - half, cx + half, cy + half)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(cx - half, cx + half, streets),
                                                 rng.uniform(cy - half, cy + half, streets)]))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=square, ordered=True))
    street_geom = shapely.intersection(cells, square)
    n_streets = len(street_geom)
    sids, cids, gids = _ids("S", n_streets), _ids("C", n_streets), _ids("G", n_streets)

    def frame(table: dict, geometry) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(table, geometry=np.asarray(geometry, dtype=object), crs=METRIC_CRS).to_crs(OUTPUT_CRS)

    layers = {
        "streets": frame({"id": _column(sids), "name": _column(_cat(_pick(_STREET_NAMES, np.arange(n_streets)),
                                                                      _num(np.arange(1, n_streets + 1)), "街道"))},
                         street_geom),
        "communities": frame({"id": _column(cids), "name": _column(_cat(_pick(_COMMUNITY_NAMES, np.arange(n_streets)),
                                                                          _num(np.arange(1, n_streets + 1)), "社区")),
                              "street_id": _column(sids)}, street_geom),
        "grids": frame({"id": _column(gids), "name": _column(_cat(gids, "网格")), "community_id": _column(cids),
                        "worker_name": _column(_names(rng, n_streets)), "worker_phone": _column(_phones(rng, n_streets))},
                       street_geom),
    }
    # settlements, kept 5 km inside the square so their streets and walks stay in the city
    inner = max(half - 5_000.0, 0.0)
    px = rng.uniform(cx - inner, cx + inner, settlements)
    py = rng.uniform(cy - inner, cy + inner, settlements)
    # urban-rural codes: 111 (core) for the streets holding a settlement, 220 (village) for the rest
    settled = np.zeros(n_streets, bool)
    settled[shapely.STRtree(street_geom).query(shapely.points(px, py), predicate="intersects")[1]] = True
    layers["communities"].insert(3, "ur_code", _column(np.where(settled, "111", "220").astype(_S)))
    # buildings: a 4 × 4 lattice of 40 × 20 m footprints, 80 m apart, round each settlement's centre
    per = CITY_BUILDINGS_PER_SETTLEMENT
    side = math.ceil(math.sqrt(per))
    k = np.arange(per)
    bx = (px[:, None] + (k % side - (side - 1) / 2) * 80.0).ravel()
    by = (py[:, None] + (k // side - (side - 1) / 2) * 80.0).ravel()
    n_b = len(bx)
    bids = _ids("B", n_b)
    layers["buildings"] = frame({"id": _column(bids), "floors": rng.choice(FLOORS, n_b, p=FLOORS_P).astype(np.int64),
                                 "residential": np.ones(n_b, bool)},
                                shapely.box(bx - 20.0, by - 10.0, bx + 20.0, by + 10.0))
    # households: 70 % in a building of their settlement, the rest scattered round it (σ 500 m)
    home = rng.integers(0, settlements, households)
    in_building = rng.random(households) < 0.7
    b = home * per + rng.integers(0, per, households)
    hx = np.where(in_building, bx[b] + rng.uniform(-18.0, 18.0, households), px[home] + rng.normal(0, 500.0, households))
    hy = np.where(in_building, by[b] + rng.uniform(-8.0, 8.0, households), py[home] + rng.normal(0, 500.0, households))
    hids = _ids("H", households)
    group = {g: rng.random(households) < p for g, p in GROUP_SHARES.items()}
    persons = rng.choice(np.arange(1, 7), size=households, p=[0.2, 0.3, 0.25, 0.15, 0.07, 0.03]).astype(np.int64)
    persons[group["elderly_alone"]] = 1
    days = rng.integers(0, 180, households)
    last_visit = (np.datetime64(VISIT_REFERENCE_DATE) - days.astype("timedelta64[D]")).astype(_S)
    layers["households"] = frame({"id": _column(hids), "address": _column(_cat(hids, "号")), "persons": persons,
                                  **group, "last_visit": _column(last_visit)}, shapely.points(hx, hy))
    # facilities: one of each category per settlement, within 600 m of its centre
    cats = np.asarray(CITY_FACILITIES, dtype=object)
    fcat = np.tile(cats, settlements)
    fpx, fpy = np.repeat(px, len(cats)), np.repeat(py, len(cats))
    fx = fpx + rng.uniform(-600.0, 600.0, len(fcat))
    fy = fpy + rng.uniform(-600.0, 600.0, len(fcat))
    layers["facilities"] = frame({"id": _column(_ids("F", len(fcat))), "category": _column(fcat.astype(_S))},
                                 shapely.points(fx, fy))
    # roads: a square lattice of streets every 150 m over 3 km round each settlement, one line per block side
    # (lines join at shared vertices only)
    steps = np.arange(-CITY_ROAD_SPAN_M / 2, CITY_ROAD_SPAN_M / 2 + 1.0, CITY_ROAD_SPACING_M)
    gx, gy = np.meshgrid(steps[:-1], steps)  # start of every east-going side (and, swapped, north-going)
    sx = (px[:, None] + np.r_[gx.ravel(), gy.ravel()]).ravel()
    sy = (py[:, None] + np.r_[gy.ravel(), gx.ravel()]).ravel()
    east = np.tile(np.r_[np.ones(gx.size), np.zeros(gx.size)], settlements).astype(bool)
    ex = sx + np.where(east, CITY_ROAD_SPACING_M, 0.0)
    ey = sy + np.where(east, 0.0, CITY_ROAD_SPACING_M)
    road_geom = shapely.linestrings(np.stack([np.column_stack([sx, sy]), np.column_stack([ex, ey])], axis=1))
    layers["roads"] = frame({"id": _column(_ids("R", len(road_geom))),
                             "highway": _column(np.full(len(road_geom), "residential", dtype=_S))}, road_geom)
    return layers


# --------------------------------------------------------------------- output
def write_district(layers: dict[str, gpd.GeoDataFrame], out: Path, *, fmt: str = "gpkg") -> list[Path]:
    """Write each layer to ``out/<layer>.<gpkg|geojson>`` with pyogrio; return the paths."""
    import pyogrio

    out.mkdir(parents=True, exist_ok=True)
    driver, ext = {"gpkg": ("GPKG", "gpkg"), "geojson": ("GeoJSON", "geojson")}[fmt]
    paths = []
    for name, layer in layers.items():
        path = out / f"{name}.{ext}"
        if path.exists():
            path.unlink()
        kwargs = {"layer": name} if fmt == "gpkg" else {}
        pyogrio.write_dataframe(layer, path, driver=driver, use_arrow=pa is not None, **kwargs)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--city", action="store_true",
                        help="the whole-city case instead: 343 streets over 16,000 km², households in five places")
    parser.add_argument("--households", type=int, help=f"required, except with --city (default {CITY_HOUSEHOLDS:,})")
    parser.add_argument("--buildings", type=int, help="required, except with --city")
    parser.add_argument("--grids", type=int, help="required, except with --city")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder to write one file per layer into")
    parser.add_argument("--format", choices=("gpkg", "geojson"), default=None,
                        help="default: geojson up to 100,000 households, else gpkg")
    parser.add_argument("--grids-per-community", type=int, default=GRIDS_PER_COMMUNITY)
    parser.add_argument("--communities-per-street", type=int, default=COMMUNITIES_PER_STREET)
    parser.add_argument("--origin", type=float, nargs=2, default=(104.00, 30.60), metavar=("LON", "LAT"))
    args = parser.parse_args(argv)
    if not args.city and None in (args.households, args.buildings, args.grids):
        parser.error("--households, --buildings and --grids are required (or --city)")
    if args.city and args.households is None:
        args.households = CITY_HOUSEHOLDS
    fmt = args.format or ("geojson" if args.households <= 100_000 else "gpkg")
    t0 = time.perf_counter()
    if args.city:
        layers = make_city(households=args.households, seed=args.seed)
    else:
        layers = make_district(households=args.households, buildings=args.buildings, grids=args.grids,
                               seed=args.seed, origin=tuple(args.origin),
                               grids_per_community=args.grids_per_community,
                               communities_per_street=args.communities_per_street)
    t1 = time.perf_counter()
    paths = write_district(layers, args.out, fmt=fmt)
    t2 = time.perf_counter()
    sizes = ", ".join(f"{name} {len(layer):,}" for name, layer in layers.items())
    print(f"generated {sizes} in {t1 - t0:.1f} s; wrote {len(paths)} {fmt} files to {args.out} in {t2 - t1:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
