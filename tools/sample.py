"""Sample district: a real street office of central Chengdu with synthetic estates, households and grids.

The street (太升路街道, 青羊区), its five communities, their 12-digit codes and
urban-rural codes come from the 2016 statistical register; roads, the real
building footprints and the service POIs come from the 2018 OpenStreetMap
extract. Blocks are the faces of the real road network; the street and its
communities are unions of whole blocks (the blocks nearest each register
point). Everything else is synthetic and seeded: estates and their buildings
in the blocks OSM left empty, households, grids of whole parcels with their
workers, and a handful of defects planted on purpose (listed in the README
this module writes next to the layers).

Run ``python -m tools.sample --data ../shared/data --out sample_geojson``.

Example
-------
>>> counts = build_sample("../shared/data", "/tmp/sample")  # doctest: +SKIP
>>> counts["households"] > 20000  # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.assign import assign_households
from geo.crs import gcj02_to_wgs84
from geo.facilities import load_facility_rules, osm_categories
from geo.gridcodes import assign_codes
from geo.settings import Settings
from geo.reach import load_config
from tools.sample_facilities import planned_facilities
from tools.sample_story import story_lines

#: 太升路街道办事处, 青羊区: all five of its communities have a register point inside the OSM extract.
STREET_CODE = "510105001000"
#: 小关庙社区: relabelled from 111 to 112 for the urban-rural fringe defect (see the README).
FRINGE_CODE = "510105001004"
METRIC_CRS = "EPSG:32648"
TODAY = date(2026, 11, 29)
DEFAULT_SEED = 20261129
#: Walking reach crosses the street boundary: roads and facilities are kept this far beyond it.
MARGIN_M = 1500.0
#: A block is given to the nearest register point only within this distance.
MAX_BLOCK_DISTANCE_M = 900.0

OSM_FILE = "chengdu-central-2018.osm"
REGISTER_FILE = "chengdu-communities-2016.csv"
REGISTER_COLUMNS = (
    "code parent name level rank adcode post_code area_code ur_code municipality virtual dummy "
    "longitude latitude center province city county town village"
).split()

#: Half the width (m) of the road corridor kept free of buildings, per OSM class.
ROAD_HALF_WIDTH = {
    "motorway": 15, "trunk": 15, "primary": 12, "secondary": 10, "tertiary": 8,
    "motorway_link": 6, "trunk_link": 6, "primary_link": 6, "secondary_link": 6, "tertiary_link": 6,
    "residential": 5, "unclassified": 5, "living_street": 4, "pedestrian": 4,
}
ROAD_TAGS = ("foot", "footway", "sidewalk", "bridge", "layer", "tunnel", "oneway", "access")

#: Estate typologies: footprint depth and unit length (m), units per building, floors,
#: flats per unit and floor, gaps between buildings along and across rows (m).
TYPOLOGIES = {
    "old": dict(years=(1978, 2000), depth=11.0, unit_len=13.0, units=(2, 4), floors=(5, 7), flats=2, gap_x=8.0, gap_y=17.0),
    "mid": dict(years=(2001, 2010), depth=13.0, unit_len=15.0, units=(2, 3), floors=(11, 18), flats=2, gap_x=12.0, gap_y=28.0),
    "new": dict(years=(2011, 2019), depth=21.0, unit_len=22.0, units=(1, 2), floors=(24, 33), flats=4, gap_x=15.0, gap_y=34.0),
    "office": dict(years=(2003, 2018), depth=30.0, unit_len=34.0, units=(1, 1), floors=(12, 36), flats=0, gap_x=25.0, gap_y=30.0),
}
TYPOLOGY_SHARES = {"old": 0.48, "mid": 0.32, "new": 0.20}
#: Share of the flats of a building that have a household on record.
OCCUPANCY = {"old": 0.84, "mid": 0.80, "new": 0.74, "osm": 0.80, "village": 0.95}
MAX_ESTATE_HOUSEHOLDS = 400
PARCEL_AREA_M2 = 9000.0

#: Special-group rates per kind of building (uneven on purpose: elderly alone in old estates,
#: migrants and renters in the fringe village).
GROUP_RATES = {
    #            elderly child  mental migrant rental
    "old":     (0.110, 0.003, 0.004, 0.22, 0.34),
    "mid":     (0.045, 0.002, 0.002, 0.12, 0.20),
    "new":     (0.015, 0.001, 0.001, 0.10, 0.16),
    "osm":     (0.050, 0.002, 0.002, 0.15, 0.25),
    "village": (0.040, 0.006, 0.004, 0.62, 0.55),
}

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万严武戴莫孔向汤")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉丹亮鹏飞婷雪琳慧颖蓉川蜀渝宇航晨欣悦怡佳琪俊凯浩然")
ESTATE_WORDS_A = list("锦华瑞祥和新盛福康泰嘉悦翠蓉逸景君天府城都江安宏隆兴荣锦绣翡丽馨雅怡")
ESTATE_SUFFIX_NEW = ["苑", "花园", "华庭", "公馆", "名都", "府", "雅居", "国际"]
ESTATE_SUFFIX_OLD = ["小区", "新村", "院", "宿舍", "大院"]
OLD_OWNERS = ["机床厂", "纺织厂", "电业局", "粮食局", "供销社", "运输公司", "建筑公司", "轴承厂", "印刷厂", "医药公司", "煤炭局", "邮电局"]
CN_DIGITS = "零一二三四五六七八九十"


@dataclass
class _Plan:
    """Everything built so far (metric CRS), passed between the stages."""

    street: dict = field(default_factory=dict)
    communities: pd.DataFrame | None = None
    atoms: gpd.GeoDataFrame | None = None
    estates: list = field(default_factory=list)
    buildings: list = field(default_factory=list)
    defects: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- reading

def _osm_tags(text) -> dict[str, str]:
    if not isinstance(text, str):
        return {}
    return dict(re.findall(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"', text))


def read_register(data_dir: Path) -> pd.DataFrame:
    """The community register with WGS-84 and metric points (GCJ-02 converted)."""
    df = pd.read_csv(data_dir / REGISTER_FILE, header=None, names=REGISTER_COLUMNS, dtype=str, keep_default_na=False)
    has = df["longitude"] != ""
    lon = np.full(len(df), np.nan)
    lat = np.full(len(df), np.nan)
    lon[has.values], lat[has.values] = gcj02_to_wgs84(df.loc[has, "longitude"].astype(float).values,
                                                       df.loc[has, "latitude"].astype(float).values)
    df["lon"], df["lat"] = lon, lat
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(METRIC_CRS)
    df["geometry"] = np.where(has.values, pts.values, None)
    return df


def read_osm(data_dir: Path) -> dict[str, gpd.GeoDataFrame]:
    """The three OSM layers in the metric CRS, with ``other_tags`` parsed into ``tags``."""
    out = {}
    for layer in ("points", "lines", "multipolygons"):
        gdf = gpd.read_file(data_dir / OSM_FILE, layer=layer, engine="pyogrio").to_crs(METRIC_CRS)
        gdf["tags"] = gdf["other_tags"].map(_osm_tags)
        out[layer] = gdf
    return out


# ----------------------------------------------------------------------------- geometry helpers

def _axis_angle(poly) -> float:
    """Angle (radians) of the long side of a polygon's minimum rotated rectangle."""
    rect = shapely.oriented_envelope(poly)
    c = np.asarray(rect.exterior.coords)[:4]
    e = np.diff(np.vstack([c, c[:1]]), axis=0)[:2]
    k = int(np.argmax(np.hypot(e[:, 0], e[:, 1])))
    return float(np.arctan2(e[k, 1], e[k, 0]))


def _rotate(geoms, angle: float, origin):
    """Rotate geometries (array) by ``angle`` radians about ``origin`` (vectorised)."""
    ca, sa = np.cos(angle), np.sin(angle)
    ox, oy = origin

    def f(c):
        x, y = c[:, 0] - ox, c[:, 1] - oy
        return np.column_stack([ox + ca * x - sa * y, oy + sa * x + ca * y])

    return shapely.transform(geoms, f)


def _split_strips(poly, k: int):
    """Cut a polygon into ``k`` strips across its long axis (pieces tile the polygon)."""
    if k <= 1:
        return [poly]
    angle = _axis_angle(poly)
    c = poly.centroid
    local = _rotate(poly, -angle, (c.x, c.y))
    x0, y0, x1, y1 = local.bounds
    # cut where the area is split evenly
    xs = np.linspace(x0, x1, 201)
    boxes = shapely.box(x0 - 1, y0 - 1, xs, y1 + 1)
    cum = shapely.area(shapely.intersection(local, boxes))
    cuts = np.interp(np.arange(1, k) / k * local.area, cum, xs)
    edges = np.concatenate([[x0 - 1], cuts, [x1 + 1]])
    strips = shapely.box(edges[:-1], y0 - 1, edges[1:], y1 + 1)
    pieces = _rotate(shapely.intersection(local, strips), angle, (c.x, c.y))
    return [p for p in pieces if not p.is_empty and p.area > 1.0]


def _largest_part(geom):
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_type_id(parts) == 3]
    if len(parts) == 0:
        return None
    return parts[int(np.argmax(shapely.area(parts)))]


# ----------------------------------------------------------------------------- stages

def select_blocks(osm, register, street_code: str):
    """Blocks (faces of the road network) of the street, each given to its nearest community."""
    lines = osm["lines"]
    comm = register[(register["parent"] == street_code) & register["geometry"].notna()]
    hull = shapely.convex_hull(shapely.union_all(comm["geometry"].values))
    aoi = hull.buffer(MAX_BLOCK_DISTANCE_M + 400)
    roads = lines[lines["highway"].isin(list(ROAD_HALF_WIDTH)) & lines.intersects(aoi)]
    noded = shapely.union_all(np.concatenate([roads.geometry.values, [aoi.exterior]]))
    blocks = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    blocks = blocks[shapely.within(shapely.point_on_surface(blocks), aoi)]
    # nearest register point of any community (the neighbours compete for the blocks)
    others = register[(register["level"] == "village") & register["geometry"].notna()].reset_index(drop=True)
    tree = shapely.STRtree(others["geometry"].values)
    (bi, pi), dist = tree.query_nearest(shapely.point_on_surface(blocks), return_distance=True, all_matches=False)
    owner = np.full(len(blocks), None, dtype=object)
    owner[bi] = others["code"].values[pi]
    d = np.full(len(blocks), np.inf)
    d[bi] = dist
    keep = np.isin(owner, comm["code"].values) & (d < MAX_BLOCK_DISTANCE_M)
    blocks, owner = blocks[keep], owner[keep]
    # one piece: keep the largest connected part of the union, then fill holes with their blocks
    street = _largest_part(shapely.union_all(blocks))
    inside = shapely.within(shapely.point_on_surface(blocks), street)
    blocks, owner = blocks[inside], owner[inside]
    street = shapely.Polygon(street.exterior)
    blocks = shapely.set_precision(blocks, 0.001)
    order = np.lexsort((shapely.get_x(shapely.centroid(blocks)), -shapely.get_y(shapely.centroid(blocks))))
    return blocks[order], owner[order], roads


def _road_corridors(roads):
    hw = roads["highway"].map(ROAD_HALF_WIDTH).fillna(4).values
    return shapely.union_all(shapely.buffer(roads.geometry.values, hw, quad_segs=4))


def _non_residential(osm):
    mp = osm["multipolygons"]
    mask = (
        mp["amenity"].isin(["school", "hospital", "university", "college", "kindergarten", "parking", "library",
                            "place_of_worship", "marketplace", "theatre", "arts_centre", "bus_station", "police"])
        | mp["leisure"].isin(["park", "pitch", "stadium", "sports_centre", "garden", "playground", "swimming_pool"])
        | mp["landuse"].isin(["commercial", "retail", "railway", "grass", "basin", "reservoir", "industrial", "cemetery"])
        | mp["natural"].isin(["water"])
        | mp["tags"].map(lambda t: t.get("waterway") == "riverbank")
    )
    return mp[mask & mp["building"].isna()]


def _place_rectangles(poly, angle, typ, rng):
    """Rows of building footprints of a typology inside ``poly`` (all within it)."""
    t = TYPOLOGIES[typ]
    c = poly.centroid
    local = _rotate(poly, -angle, (c.x, c.y))
    x0, y0, x1, y1 = local.bounds
    max_len = t["units"][1] * t["unit_len"]
    pitch_x = max_len + t["gap_x"]
    pitch_y = t["depth"] + t["gap_y"]
    xs = np.arange(x0 + rng.uniform(0, t["gap_x"]), x1, pitch_x)
    ys = np.arange(y0 + rng.uniform(0, t["gap_y"] / 2), y1, pitch_y)
    if len(xs) == 0 or len(ys) == 0:
        return np.empty(0, dtype=object), np.empty(0, int)
    X, Y = (a.ravel() for a in np.meshgrid(xs, ys))
    units = rng.integers(t["units"][0], t["units"][1] + 1, size=len(X))
    length = units * t["unit_len"]
    X = X + rng.uniform(0, 1, len(X)) * (max_len - length)
    boxes = shapely.box(X, Y, X + length, Y + t["depth"])
    ok = shapely.contains(local, boxes)
    # try the shorter variant where the long one does not fit
    short = ~ok & (units > t["units"][0])
    if short.any():
        units2 = np.where(short, t["units"][0], units)
        boxes2 = shapely.box(X, Y, X + units2 * t["unit_len"], Y + t["depth"])
        ok2 = short & shapely.contains(local, boxes2)
        boxes = np.where(ok2, boxes2, boxes)
        units = np.where(ok2, units2, units)
        ok = ok | ok2
    boxes, units = boxes[ok], units[ok]
    return _rotate(boxes, angle, (c.x, c.y)), units


def build_estates_and_buildings(plan: _Plan, osm, blocks, owner, roads, rng):
    """Parcels (grid atoms), estates and buildings of every block; the fringe blocks get village houses."""
    corridors = _road_corridors(roads)
    mp = osm["multipolygons"]
    street = plan.street["geometry"]
    nonres = _non_residential(osm)
    nonres_geom = shapely.union_all(shapely.buffer(nonres.geometry.values[nonres.intersects(street.buffer(50))], 5))

    # real OSM buildings: keep those lying (almost) wholly in one block of the street
    ob = mp[mp["building"].notna() & mp.intersects(street)].copy()
    ob_geom = shapely.make_valid(ob.geometry.values)
    btree = shapely.STRtree(blocks)
    pairs = btree.query(ob_geom, predicate="intersects")
    share = shapely.area(shapely.intersection(ob_geom[pairs[0]], blocks[pairs[1]])) / shapely.area(ob_geom[pairs[0]])
    best = pd.DataFrame({"b": pairs[0], "blk": pairs[1], "s": share}).sort_values(["b", "s"], ascending=[True, False]).drop_duplicates("b")
    best = best[best["s"] > 0.98]
    ob = ob.iloc[best["b"].values].copy()
    ob["geometry"] = ob_geom[best["b"].values]
    ob["block"] = best["blk"].values
    osm_blocked = shapely.union_all(shapely.buffer(ob.geometry.values, 10)) if len(ob) else shapely.Polygon()
    res_landuse = mp[mp["landuse"].eq("residential")]

    # fringe village: the fringe community's blocks farthest from the street's centre, ~30% of its area
    centre = street.centroid
    fr = np.flatnonzero(owner == FRINGE_CODE)
    far = fr[np.argsort(-shapely.distance(shapely.centroid(blocks[fr]), centre))]
    cum = np.cumsum(shapely.area(blocks[far]))
    village_blocks = set(far[: int(np.searchsorted(cum, 0.30 * cum[-1])) + 1].tolist())

    kinds = np.array(list(TYPOLOGY_SHARES))
    shares = np.array(list(TYPOLOGY_SHARES.values()))
    atoms = []
    for bi, blk in enumerate(blocks):
        buildable = shapely.difference(shapely.difference(shapely.difference(blk, corridors), nonres_geom), osm_blocked)
        if bi in village_blocks:
            atoms.append(dict(block=bi, community=owner[bi], geometry=blk, village=True, estate=None))
            _village_houses(plan, bi, buildable, rng)
            continue
        area = buildable.area
        k = max(1, int(round(area / PARCEL_AREA_M2)))
        pieces = _split_strips(blk, k)
        angle = _axis_angle(blk)
        commercial = rng.random() < 0.16 and area > 2500
        for piece in pieces:
            est_poly = _largest_part(shapely.intersection(piece, buildable).buffer(-3, join_style="mitre"))
            estate_id = None
            if est_poly is not None and est_poly.area > 900:
                typ = "office" if commercial else str(rng.choice(kinds, p=shares))
                rects, units = _place_rectangles(est_poly, angle, typ, rng)
                if len(rects):
                    drop = rng.random(len(rects)) < 0.08
                    if (~drop).sum() >= 1:
                        rects, units = rects[~drop], units[~drop]
                    estate_id = _add_estate(plan, bi, owner[bi], est_poly, typ, rects, units, res_landuse, rng)
            atoms.append(dict(block=bi, community=owner[bi], geometry=piece, village=False, estate=estate_id))

    atoms = gpd.GeoDataFrame(atoms, geometry="geometry", crs=METRIC_CRS)
    atoms["geometry"] = shapely.set_precision(atoms.geometry.values, 0.001)
    # a real building crossing a parcel cut merges the parcels it touches (no unplanned split)
    for blk_id, grp in ob.groupby("block", sort=True):
        sub = atoms.index[atoms["block"] == blk_id]
        for g in grp.geometry.values:
            hit = [i for i in sub if i in atoms.index and atoms.at[i, "geometry"].intersection(g).area > 0.5]
            if len(hit) > 1:
                merged = shapely.set_precision(shapely.union_all(atoms.loc[hit, "geometry"].values), 0.001)
                keep = hit[0]
                atoms.at[keep, "geometry"] = merged
                atoms.at[keep, "estate"] = next((e for e in atoms.loc[hit, "estate"] if e), None)
                atoms = atoms.drop(index=hit[1:])
                sub = [i for i in sub if i not in hit[1:]]
    atoms = atoms.reset_index(drop=True)
    plan.atoms = atoms
    _add_osm_buildings(plan, ob, rng)
    plan.notes["village_blocks"] = sorted(village_blocks)


def _add_estate(plan, block, community, poly, typ, rects, units, res_landuse, rng):
    t = TYPOLOGIES[typ]
    n = len(plan.estates) + 1
    estate_id = f"E{n:03d}"
    year = int(rng.integers(t["years"][0], t["years"][1] + 1))
    floors = rng.integers(t["floors"][0], t["floors"][1] + 1, size=len(rects))
    if typ != "office":
        # trim the estate to what one parcel plausibly holds
        hh = units * floors * t["flats"]
        keep = np.cumsum(hh) <= MAX_ESTATE_HOUSEHOLDS / OCCUPANCY[typ]
        keep[0] = True
        rects, units, floors = rects[keep], units[keep], floors[keep]
    else:
        rects, units, floors = rects[:3], units[:3], floors[:3]
    # a real OSM estate name where the parcel lies in a named residential area
    name = None
    hit = res_landuse[res_landuse.contains(poly.centroid) & res_landuse["name"].notna()]
    if len(hit) and typ != "office":
        name = str(hit["name"].iloc[0])
    plan.estates.append(dict(id=estate_id, block=block, community=community, typ=typ, year_built=year,
                             name=name, geometry=poly, osm_name=name is not None))
    for j, (r, u, f) in enumerate(zip(rects, units, floors)):
        plan.buildings.append(dict(estate_id=estate_id, typ=typ, geometry=r, units=int(u), floors=int(f),
                                   flats=t["flats"], year_built=year, residential=typ != "office",
                                   name=f"{j + 1}栋", source="synthetic", community=community, block=block))
    return estate_id


def _village_houses(plan, block, buildable, rng):
    """Small, low, irregular self-built houses (自建房) of the urban-rural fringe."""
    if buildable.is_empty:
        return
    x0, y0, x1, y1 = buildable.bounds
    xs, ys = np.arange(x0 + 4, x1, 17.0), np.arange(y0 + 4, y1, 15.0)
    X, Y = (a.ravel() for a in np.meshgrid(xs, ys))
    X = X + rng.uniform(-3, 3, len(X))
    Y = Y + rng.uniform(-3, 3, len(Y))
    w = rng.uniform(7, 13, len(X))
    h = rng.uniform(6, 10, len(X))
    boxes = shapely.box(X, Y, X + w, Y + h)
    ang = rng.uniform(-0.35, 0.35, len(X))
    cx, cy = X + w / 2, Y + h / 2
    houses = np.array([_rotate(b, a, (x, y)) for b, a, x, y in zip(boxes, ang, cx, cy)], dtype=object)
    ok = shapely.contains(buildable.buffer(-2), houses) & (rng.random(len(houses)) > 0.25)
    for g in houses[ok]:
        plan.buildings.append(dict(estate_id=None, typ="village", geometry=g, units=1, floors=int(rng.choice([1, 2, 2, 2, 3])),
                                   flats=0, year_built=int(rng.integers(1982, 2006)), residential=True,
                                   name=None, source="synthetic", community=FRINGE_CODE, block=block))


def _add_osm_buildings(plan, ob, rng):
    levels = pd.to_numeric(ob["tags"].map(lambda t: t.get("building:levels")), errors="coerce")
    area = shapely.area(ob.geometry.values)
    guess = np.where(area < 300, rng.integers(2, 7, len(ob)), rng.integers(6, 31, len(ob)))
    floors = np.where(levels.notna(), levels.fillna(0).astype(int), guess)
    kind = ob["building"].values
    res = np.isin(kind, ["apartments", "residential", "house", "dormitory"]) | (
        (kind == "yes") & ob["amenity"].isna().values & ob["shop"].isna().values & (rng.random(len(ob)) < 0.5))
    for i, (_, row) in enumerate(ob.iterrows()):
        plan.buildings.append(dict(estate_id=None, typ="osm", geometry=row.geometry, units=1, floors=int(floors[i]),
                                   floors_guessed=bool(levels.isna().iloc[i]),
                                   flats=0, year_built=None, residential=bool(res[i]),
                                   name=row["name"] if isinstance(row["name"], str) else None, source="osm",
                                   osm_id=f"w{row['osm_way_id']}" if pd.notna(row["osm_way_id"]) else f"r{row['osm_id']}",
                                   community=None, block=int(row["block"])))


# ----------------------------------------------------------------------------- households

def _flats_per_building(b: pd.DataFrame, rng) -> np.ndarray:
    """Flats on record per building (registered households)."""
    cap = np.where(b["typ"].isin(["old", "mid", "new"]), b["units"] * b["floors"] * b["flats"], 0)
    area = shapely.area(b.geometry.values)
    cap = np.where(b["typ"] == "osm", np.minimum(np.round(area * 0.7 / 90 * b["floors"]), 200), cap)
    cap = np.where(b["typ"] == "village", rng.integers(1, 4, len(b)), cap)
    cap = np.where(b["residential"], cap, 0).astype(int)
    return cap


def _floors_for_capacity(b: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """An OSM building whose floors were guessed and whose flats were capped at 200 gets as many floors as its
    flats fill (else the registration check would take the cap for unregistered tenants: a defect nobody
    planted). Its flats, and so its households, stay as drawn."""
    guessed = b.get("floors_guessed", pd.Series(False, index=b.index)).fillna(False).astype(bool)
    area = shapely.area(b.geometry.values)
    filled = np.ceil(b["capacity"] * 90 / (0.7 * np.maximum(area, 1.0)))
    fix = guessed & (b["typ"] == "osm") & (b["capacity"] >= 200) & (filled < b["floors"])
    b.loc[fix, "floors"] = np.maximum(filled[fix.to_numpy()], 1).astype(int)
    return b


def build_households(plan: _Plan, buildings: gpd.GeoDataFrame, rng) -> gpd.GeoDataFrame:
    """One row per registered household, vectorised: flats are enumerated per building and thinned."""
    cap = buildings["capacity"].values
    nb = len(buildings)
    bidx = np.repeat(np.arange(nb), cap)
    start = np.repeat(np.cumsum(cap) - cap, cap)
    k = np.arange(len(bidx)) - start
    floors = buildings["floors"].values[bidx].clip(min=1)
    flats = np.maximum(buildings["flats"].values[bidx], 1)
    per_unit = floors * flats
    unit = k // per_unit + 1
    floor = (k // flats) % floors + 1
    flat = k % flats + 1
    typ = buildings["typ"].values[bidx]
    occ = pd.Series(typ).map(OCCUPANCY).values
    # the planted old estate: most of its flats are let to tenants nobody registered
    low = buildings["registration"].values[bidx]
    occ = np.where(np.isnan(low), occ, low)
    keep = rng.random(len(bidx)) < occ
    bidx, unit, floor, flat, typ, k = bidx[keep], unit[keep], floor[keep], flat[keep], typ[keep], k[keep]
    n = len(bidx)

    b = buildings.iloc[bidx]
    room = pd.Series((floor * 100 + flat).astype(str))
    multi = b["typ"].isin(["old", "mid", "new"]).values
    addr = b["address"].values.astype(object)
    addr = np.where(multi, pd.Series(addr) + " " + pd.Series(unit.astype(str)) + "单元 " + room, addr)
    osm_multi = (b["typ"].values == "osm") & (b["capacity"].values > 1)
    addr = np.where(osm_multi, pd.Series(addr) + " " + pd.Series(((k // 6 + 1) * 100 + k % 6 + 1).astype(str)), addr)
    prefix = plan.street["address_prefix"]
    addr = prefix + " " + pd.Series(addr)
    # messy address variants, as street offices receive them
    r = rng.random(n)
    addr = np.where(r < 0.04, addr.str.replace("栋", "号楼", regex=False), addr)
    fw = str.maketrans("0123456789", "０１２３４５６７８９")
    addr = np.where((r >= 0.04) & (r < 0.06), pd.Series(addr).str.translate(fw), addr)

    kinds = list(GROUP_RATES)
    rates = np.array([GROUP_RATES[t] for t in kinds])[pd.Series(typ).map({t: i for i, t in enumerate(kinds)}).values]
    planted = ~np.isnan(buildings["registration"].values[bidx])
    rates[planted, 4] = 0.75  # the few registered households of the planted estate are mostly tenants
    rates[planted, 3] = 0.45
    draw = rng.random((n, 5)) < rates
    persons = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.2, 0.3, 0.3, 0.13, 0.07])
    persons = np.where(draw[:, 0], 1, persons)
    persons = np.where(draw[:, 4] & ~draw[:, 0], np.minimum(persons, 3), persons)
    draw[:, 1] &= persons >= 2  # a child in difficulty lives with someone

    days = np.floor(rng.exponential(25, n)).astype(int)
    eld = draw[:, 0]
    days = np.where(eld, np.where(rng.random(n) < 0.8, rng.integers(0, 7, n), rng.integers(8, 45, n)), days)
    days = np.where(draw[:, 1], rng.integers(0, 20, n), days)
    never = (rng.random(n) < 0.03) & ~eld
    last = pd.to_datetime(TODAY) - pd.to_timedelta(days, unit="D")
    last_visit = np.where(never, None, last.strftime("%Y-%m-%d").values.astype(object))

    hh = gpd.GeoDataFrame({
        "id": "H" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(6).values,
        "address": addr,
        "building_id": b["id"].values,
        "persons": persons.astype(int),
        "elderly_alone": draw[:, 0], "child_in_difficulty": draw[:, 1], "mental_disorder": draw[:, 2],
        "migrant": draw[:, 3], "rental": draw[:, 4],
        "last_visit": last_visit,
    }, geometry=_points_in(b.geometry.values, rng), crs=METRIC_CRS)
    return hh


def _points_in(polys, rng):
    """A random point inside each polygon (vectorised rejection sampling, fallback point_on_surface)."""
    x0, y0, x1, y1 = shapely.bounds(polys).T
    out = shapely.point_on_surface(polys)
    todo = np.arange(len(polys))
    for _ in range(12):
        if len(todo) == 0:
            break
        x = x0[todo] + rng.random(len(todo)) * (x1[todo] - x0[todo])
        y = y0[todo] + rng.random(len(todo)) * (y1[todo] - y0[todo])
        inner = shapely.buffer(polys[todo], -0.5)
        ok = shapely.contains_xy(inner, x, y)
        out[todo[ok]] = shapely.points(x[ok], y[ok])
        todo = todo[~ok]
    return out


# ----------------------------------------------------------------------------- grids

def _adjacency(geoms) -> list[set[int]]:
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    m = i < j
    i, j = i[m], j[m]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j])))
    ok = shared > 3.0
    adj = [set() for _ in range(len(geoms))]
    for a, b in zip(i[ok], j[ok]):
        adj[a].add(int(b))
        adj[b].add(int(a))
    return adj


def build_grids(plan: _Plan, rng) -> gpd.GeoDataFrame:
    """Grids of whole parcels, grown parcel by parcel to 300–480 households each."""
    atoms = plan.atoms
    rows = []
    for ci, code in enumerate(plan.communities["id"]):
        sub = atoms[(atoms["community"] == code) & ~atoms["village"]]
        geoms = sub.geometry.values
        hh = sub["households"].values
        adj = _adjacency(geoms)
        cen = shapely.centroid(geoms)
        order = np.lexsort((shapely.get_x(cen), -shapely.get_y(cen)))
        label = np.full(len(sub), -1)
        sums = []
        for seed_atom in order:
            if label[seed_atom] >= 0:
                continue
            g = len(sums)
            label[seed_atom] = g
            total = hh[seed_atom]
            target = rng.integers(300, 481)
            members = [seed_atom]
            while total < target:
                frontier = sorted({n for m in members for n in adj[m] if label[n] < 0})
                if not frontier:
                    break
                gx, gy = np.mean([shapely.get_x(cen[m]) for m in members]), np.mean([shapely.get_y(cen[m]) for m in members])
                dist = [np.hypot(shapely.get_x(cen[n]) - gx, shapely.get_y(cen[n]) - gy) for n in frontier]
                nxt = frontier[int(np.argmin(dist))]
                if total + hh[nxt] > 600 and total >= 200:
                    break
                label[nxt] = g
                members.append(nxt)
                total += hh[nxt]
            sums.append(total)
        # merge grids under 200 households into their smallest neighbour while it stays ≤ 600
        sums = np.array(sums)
        changed = True
        while changed:
            changed = False
            for g in np.argsort(sums):
                if sums[g] >= 200 or sums[g] < 0:
                    continue
                members = np.flatnonzero(label == g)
                neigh = sorted({int(label[n]) for m in members for n in adj[m] if label[n] != g})
                neigh = [h for h in neigh if sums[h] + sums[g] <= 600]
                if not neigh:
                    continue
                h = min(neigh, key=lambda x: (sums[x], x))
                label[members] = h
                sums[h] += sums[g]
                sums[g] = -1
                changed = True
                break
        live = [g for g in range(len(sums)) if sums[g] >= 0]
        # number grids north-west to south-east
        cents = [shapely.centroid(shapely.union_all(geoms[label == g])) for g in live]
        live = [live[i] for i in np.lexsort(([c.x for c in cents], [-round(c.y / 150) for c in cents]))]
        short = plan.communities["name"].iloc[ci]
        for n, g in enumerate(live, start=1):
            gid = f"G{ci + 1:02d}-{n:02d}"
            atoms.loc[sub.index[label == g], "grid"] = gid
            rows.append(dict(id=gid, name=f"{short}第{n}网格", community_id=code,
                             geometry=shapely.set_precision(shapely.union_all(geoms[label == g]), 0.001)))
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)


def _names(rng, n: int, used: set) -> list[str]:
    out = []
    while len(out) < n:
        s = SURNAMES[rng.integers(len(SURNAMES))]
        g = "".join(GIVEN[i] for i in rng.integers(len(GIVEN), size=rng.choice([1, 2], p=[0.3, 0.7])))
        if s + g not in used:
            used.add(s + g)
            out.append(s + g)
    return out


def staff_grids(grids: gpd.GeoDataFrame, rng) -> gpd.GeoDataFrame:
    """Synthetic grid workers with fictitious work numbers (028-86xx-xxxx); one grid left unstaffed."""
    used: set = set()
    n = len(grids)
    workers = _names(rng, n, used)
    officers = _names(rng, n, used)
    mediators = _names(rng, n, used)
    ci = grids["id"].str.slice(1, 3).astype(int).values
    gi = grids["id"].str.slice(4, 6).astype(int).values
    grids["worker_name"] = workers
    grids["worker_phone"] = [f"028-86{c:02d}-{1000 + g:04d}" for c, g in zip(ci, gi)]
    grids["full_time_workers"] = 1
    grids["info_officer_name"] = officers
    grids["info_officer_phone"] = [f"028-86{c:02d}-{2000 + g:04d}" for c, g in zip(ci, gi)]
    grids["mediator_name"] = mediators
    grids["mediator_phone"] = [f"028-86{c:02d}-{3000 + g:04d}" for c, g in zip(ci, gi)]
    rng.random(n)  # drawn as before (it once left mediators out), so the later draws of this stream stay the same
    return grids


#: Grids planted with one full-time worker too few for their households (over the workload rule).
OVERLOADED_GRIDS = 3
#: Grids planted without a mediator, without an information officer, without both (一格三员 not met).
MISSING_OFFICERS = {"mediator": 2, "info_officer": 1, "both": 1}


def staff_for_workload(grids: gpd.GeoDataFrame, grid_households: pd.Series, rng, *,
                       skip: set = frozenset()) -> tuple[gpd.GeoDataFrame, dict]:
    """Full-time workers by the workload rule (one per 300 households, 2% slack for boundary households) and the
    part-time officers, with a few planted shortfalls; ``grid_households`` counts each grid's households as the
    analysis assigns them. Staffed grids outside ``skip`` may be planted. Returns the grids and what was planted.
    """
    grids = grids.copy()
    households = grid_households.reindex(grids["id"]).fillna(0).to_numpy(dtype=np.int64)
    staffed = grids["full_time_workers"].to_numpy() > 0
    workers = np.maximum(1, np.ceil(households * 1.02 / 300)).astype(np.int64)
    free = np.flatnonzero(staffed & ~grids["id"].isin(skip).to_numpy())
    big = free[households[free] >= 330]
    overloaded = np.sort(rng.choice(big, size=min(OVERLOADED_GRIDS, len(big)), replace=False))
    workers[overloaded] = np.maximum(1, np.ceil(households[overloaded] / 300).astype(np.int64) - 1)
    grids["full_time_workers"] = np.where(staffed, workers, 0)
    rest = np.setdiff1d(free, overloaded)
    picks = np.sort(rng.choice(rest, size=sum(MISSING_OFFICERS.values()), replace=False))
    cut = np.cumsum([0, *MISSING_OFFICERS.values()])
    missing = {}
    for (kind, _), lo, hi in zip(MISSING_OFFICERS.items(), cut[:-1], cut[1:]):
        rows = picks[lo:hi]
        roles = ("mediator", "info_officer") if kind == "both" else (kind,)
        for role in roles:
            grids.iloc[rows, grids.columns.get_loc(f"{role}_name")] = ""
            grids.iloc[rows, grids.columns.get_loc(f"{role}_phone")] = ""
        missing[kind] = grids["id"].iloc[rows].tolist()
    planted = {"overloaded": [{"grid": grids["id"].iloc[i], "households": int(households[i]),
                               "workers": int(workers[i])} for i in overloaded],
               "missing_officers": missing}
    return grids, planted


#: The community whose grids are planted with part-time grid workers (兼职网格员) enough to fall below the plan's
#: 80% 网格员专职化比例, and how many part-time workers go to how many of its grids; a few grids elsewhere get one.
PART_TIME_COMMUNITY = "510105001003"
PART_TIME_PLANTED = (2, 2, 1)
PART_TIME_ELSEWHERE = 2


def plant_part_time_workers(grids: gpd.GeoDataFrame, rng) -> tuple[gpd.GeoDataFrame, dict]:
    """``part_time_workers`` (兼职网格员): 0 in most grids; :data:`PART_TIME_PLANTED` in staffed grids of
    :data:`PART_TIME_COMMUNITY` (below 80% full-time) and one in :data:`PART_TIME_ELSEWHERE` staffed grids of other
    communities (still above). Returns the grids and what was planted (grid → part-time workers)."""
    grids = grids.copy()
    staffed = grids["full_time_workers"].to_numpy() > 0
    inside = np.flatnonzero(staffed & (grids["community_id"] == PART_TIME_COMMUNITY).to_numpy())
    outside = np.flatnonzero(staffed & (grids["community_id"] != PART_TIME_COMMUNITY).to_numpy())
    picks = np.sort(rng.choice(inside, size=len(PART_TIME_PLANTED), replace=False))
    others = np.sort(rng.choice(outside, size=PART_TIME_ELSEWHERE, replace=False))
    part = np.zeros(len(grids), dtype=np.int64)
    part[picks] = PART_TIME_PLANTED
    part[others] = 1
    grids["part_time_workers"] = part
    return grids, {str(g): int(n) for g, n in zip(grids["id"], part) if n}


def code_grids(grids: gpd.GeoDataFrame, communities: pd.DataFrame, rng) -> tuple[gpd.GeoDataFrame, dict]:
    """Standard grid codes (网格编码, geo.gridcodes: community code + 3-digit sequence in reading order) with two
    planted defects: one grid carrying its neighbour's code (a duplicate, as a copy-paste gives it) and one
    carrying a code under another community (a grid once numbered in a neighbouring community).
    Returns the grids and what was planted."""
    grids = grids.copy()
    grids["code"] = assign_codes(grids, communities).astype(object).to_numpy()
    comm = grids["community_id"].to_numpy()
    ids = sorted(pd.unique(comm))
    first, other, second = ids[1], ids[3], ids[4]  # the duplicate in the 2nd; a grid of the 5th numbered in the 4th
    mine = np.flatnonzero(comm == first)
    dup = int(mine[1 + rng.integers(len(mine) - 1)])
    source = int(mine[mine != dup][np.argmin(np.abs(mine[mine != dup] - dup))])
    grids.iloc[dup, grids.columns.get_loc("code")] = grids["code"].iloc[source]
    foreign = np.flatnonzero(comm == second)
    moved = int(foreign[rng.integers(len(foreign))])
    free = int((comm == other).sum()) + 1
    foreign_code = f"{communities.set_index('id').loc[other, 'code']}{free:03d}"
    grids.iloc[moved, grids.columns.get_loc("code")] = foreign_code
    return grids, {"duplicate": {"grids": sorted([str(grids["id"].iloc[source]), str(grids["id"].iloc[dup])]),
                                 "code": str(grids["code"].iloc[source])},
                   "outside": {"grid": str(grids["id"].iloc[moved]), "code": foreign_code, "community": second,
                               "under": other}}


# ----------------------------------------------------------------------------- visit log

#: Weeks of visits the sample's log covers, up to TODAY (its as-of date).
VISIT_WEEKS = 16
#: Days between the visits each watched group gets from a diligent worker (the plan: weekly for the elderly living
#: alone, twice a month for children in difficulty; monthly for mental disorder, ours).
VISIT_EVERY_DAYS = {"elderly_alone": 7, "child_in_difficulty": 14, "mental_disorder": 28}
#: Workers planted behind: their households miss about half of their visits.
BEHIND_WORKERS = 4
#: Share of the elderly living alone whose worker only phones them (planted).
PHONE_ONLY_SHARE = 0.03
VISIT_NOTES = ("", "", "", "", "身体状况良好", "已提醒按时服药", "需要助餐服务", "已联系家属", "反映楼道灯坏了", "门口有积水")


def build_visits(households: pd.DataFrame, grid_of: np.ndarray, grids: pd.DataFrame, rng) -> tuple[pd.DataFrame, dict]:
    """The visit log (走访记录) of the watched special-group households over the VISIT_WEEKS weeks up to TODAY.

    Each household is visited by its grid's worker every ``VISIT_EVERY_DAYS`` of its group (the most frequent of
    its groups), each period kept with the worker's diligence (0.9–1.0; 0.45–0.6 for the few workers planted
    behind); its last record falls on its ``last_visit`` date and none after it, so the log agrees with the
    households layer. Households without a visit date in the window, without a grid, or in a grid without a worker
    have no record (never visited). A few elderly are only phoned. Local date-times (Asia/Shanghai), sorted.
    """
    start = pd.Timestamp(TODAY) - pd.Timedelta(days=7 * VISIT_WEEKS - 1)
    end = pd.Timestamp(TODAY)
    watched = np.zeros(len(households), dtype=bool)
    every = np.full(len(households), 10_000, dtype=np.int64)
    for group, days in VISIT_EVERY_DAYS.items():
        member = households[group].astype(bool).to_numpy()
        watched |= member
        every = np.where(member, np.minimum(every, days), every)
    worker_of = pd.Series(grids["worker_name"].fillna("").astype(str).to_numpy(), index=grids["id"].astype(str))
    worker = worker_of.reindex(pd.Series(grid_of, dtype=object).astype(str)).fillna("").to_numpy(dtype=object)
    last = pd.to_datetime(households["last_visit"], errors="coerce").to_numpy()
    visited = watched & (worker != "") & ~pd.isna(last) & (last >= start.to_datetime64())
    staffed_ids = np.sort(worker_of.index[worker_of != ""].to_numpy())
    behind = np.sort(rng.choice(staffed_ids, size=min(BEHIND_WORKERS, len(staffed_ids)), replace=False))
    diligence = pd.Series(rng.uniform(0.9, 1.0, len(staffed_ids)), index=staffed_ids)
    diligence[behind] = rng.uniform(0.45, 0.6, len(behind))
    keep_rate = diligence.reindex(pd.Series(grid_of, dtype=object).astype(str)).fillna(0).to_numpy()
    phone_only = households["elderly_alone"].astype(bool).to_numpy() & (rng.random(len(households)) < PHONE_ONLY_SHARE)

    idx = np.flatnonzero(visited)
    last_day = ((last[idx] - start.to_datetime64()) // np.timedelta64(1, "D")).astype(np.int64)
    period = every[idx]
    periods = VISIT_WEEKS  # at most one visit a week per household
    k = np.arange(periods)
    day = last_day[:, None] - k[None, :] * period[:, None] - rng.integers(0, 3, (len(idx), periods)) * (k[None, :] > 0)
    kept = (k[None, :] == 0) | (rng.random((len(idx), periods)) < keep_rate[idx][:, None])
    ok = kept & (day >= 0)
    rows, cols = np.nonzero(ok)
    hh_rows = idx[rows]
    n = len(rows)
    minutes = rng.integers(8 * 60 + 30, 18 * 60, n)
    at = start + pd.to_timedelta(day[rows, cols], unit="D") + pd.to_timedelta(minutes, unit="m")
    kind = np.where(phone_only[hh_rows], "phone", rng.choice(["home", "phone", "other"], size=n, p=[0.92, 0.06, 0.02]))
    met = (cols == 0) | (rng.random(n) < 0.92)  # the visit on last_visit met the household
    outcome = np.where(kind == "phone", np.where(met, "answered", "no_answer"),
                       np.where(met, "seen", "not_home"))
    note = np.asarray(VISIT_NOTES, dtype=object)[rng.integers(0, len(VISIT_NOTES), n)]
    note = np.where(met, note, np.where(kind == "phone", "未接听，改日再联系", "不在家，已留联系卡"))
    log = pd.DataFrame({"household_id": households["id"].to_numpy()[hh_rows], "visited_at": at.strftime("%Y-%m-%d %H:%M"),
                        "worker": worker[hh_rows], "kind": kind, "outcome": outcome, "note": note})
    log = log.sort_values(["visited_at", "household_id"], kind="stable").reset_index(drop=True)
    in_grid = watched & (worker != "")
    facts = {"rows": int(len(log)), "households": int(log["household_id"].nunique()), "watched": int(watched.sum()),
             "never": int((watched & ~visited).sum()), "never_in_grid": int((in_grid & ~visited).sum()),
             "no_worker": int((watched & (worker == "")).sum()),
             "behind": [(g, worker_of[g]) for g in behind],
             "phone_only": int((phone_only & visited).sum()),
             "start": start.date().isoformat(), "end": end.date().isoformat()}
    return log, facts


# ----------------------------------------------------------------------------- planted defects

def plant_defects(plan, grids, buildings, communities, rng):
    """Gap, overlap and split building, each in its own community; returns the new grids."""
    geom = dict(zip(grids["id"], grids.geometry.values))
    com_of = dict(zip(grids["id"], grids["community_id"]))
    bgeom = buildings.geometry.values
    btree = shapely.STRtree(bgeom)
    res = buildings["residential"].values & (buildings["capacity"].values > 0)
    synth = buildings["typ"].isin(["old", "mid", "new"]).values
    codes = [c for c in communities["id"] if c != FRINGE_CODE]
    atoms = plan.atoms

    def pairs_in(code):
        ids = sorted(g for g in geom if com_of[g] == code)
        arr = np.array([geom[g] for g in ids], dtype=object)
        adj = _adjacency(arr)
        return [(ids[a], ids[b]) for a in range(len(ids)) for b in sorted(adj[a]) if a < b]

    # (1) gap: a parcel with households on the border of two grids that nobody took
    code = codes[0]
    done = False
    for a, b in pairs_in(code):
        cand = atoms[(atoms["grid"] == a) & (atoms["households"] > 0)].sort_values(["households", "block"])
        for idx, row in cand.iterrows():
            if row.geometry.intersection(geom[b]).length < 10:
                continue
            rest = shapely.difference(geom[a], row.geometry)
            if shapely.get_num_geometries(rest) != 1 or rest.area < 0.4 * geom[a].area:
                continue
            geom[a] = shapely.set_precision(rest, 0.001)
            plan.defects["gap"] = dict(grids=[a, b], community=code, area_m2=round(row.geometry.area),
                                       households=int(row["households"]), atom=int(idx),
                                       estate=row["estate"], geometry=row.geometry)
            atoms.loc[idx, "grid"] = None
            done = True
            break
        if done:
            break

    # (2) overlap: a grid reaching over a residential building of its neighbour
    code = codes[1]
    done = False
    for a, b in pairs_in(code):
        inb = np.flatnonzero(res & shapely.within(bgeom, geom[b]) & (shapely.distance(bgeom, geom[a]) < 30))
        for k in inb[np.argsort(shapely.distance(bgeom[inb], geom[a]))]:
            line = shapely.shortest_line(bgeom[k], geom[a])
            piece = shapely.convex_hull(shapely.union(shapely.buffer(bgeom[k], 3, join_style="mitre"),
                                                      shapely.buffer(line, 6, cap_style="flat")))
            piece = shapely.intersection(piece, shapely.union(geom[a], geom[b]))
            hits = btree.query(piece, predicate="intersects")
            if set(hits.tolist()) != {k}:
                continue
            geom[a] = shapely.set_precision(shapely.union(geom[a], piece), 0.001)
            plan.defects["overlap"] = dict(grids=[a, b], community=code, building=buildings["id"].iloc[k],
                                           households=int(buildings["households"].iloc[k]),
                                           area_m2=round(shapely.intersection(piece, geom[b]).area))
            done = True
            break
        if done:
            break

    # (3) split building: the grid line drawn through a slab, 40% of it on the neighbour's side
    code = codes[2]
    done = False
    for a, b in pairs_in(code):
        inb = np.flatnonzero(res & synth & shapely.within(bgeom, geom[a]) & (shapely.distance(bgeom, geom[b]) < 25))
        for k in inb[np.argsort(shapely.distance(bgeom[inb], geom[b]))]:
            poly = bgeom[k]
            ang = _axis_angle(poly)
            c = poly.centroid
            loc = _rotate(poly, -ang, (c.x, c.y))
            x0, y0, x1, y1 = loc.bounds
            ends = [shapely.box(x0, y0 - 1, x0 + 0.4 * (x1 - x0), y1 + 1), shapely.box(x1 - 0.4 * (x1 - x0), y0 - 1, x1, y1 + 1)]
            ends = [shapely.intersection(poly, _rotate(e, ang, (c.x, c.y))) for e in ends]
            q = min(ends, key=lambda e: e.distance(geom[b]))
            line = shapely.shortest_line(q, geom[b])
            piece = shapely.convex_hull(shapely.union(q, shapely.buffer(line, (y1 - y0) / 2, cap_style="flat")))
            piece = shapely.intersection(piece, geom[a])
            hits = btree.query(piece, predicate="intersects")
            if set(hits.tolist()) != {k}:
                continue
            new_a = shapely.difference(geom[a], piece)
            if shapely.get_num_geometries(new_a) != 1:
                continue
            geom[a] = shapely.set_precision(new_a, 0.001)
            geom[b] = shapely.set_precision(shapely.union(geom[b], piece), 0.001)
            plan.defects["split"] = dict(grids=[a, b], community=code, building=buildings["id"].iloc[k],
                                         households=int(buildings["households"].iloc[k]),
                                         share_b=round(shapely.intersection(poly, geom[b]).area / poly.area, 3))
            done = True
            break
        if done:
            break
    missing = [d for d in ("gap", "overlap", "split") if d not in plan.defects]
    if missing:
        msg = f"could not plant defects {missing}: change the seed"
        raise RuntimeError(msg)
    grids = grids.copy()
    grids["geometry"] = [geom[g] for g in grids["id"]]
    return grids


# ----------------------------------------------------------------------------- addresses

def _address_buildings(plan, buildings, estates, roads, rng):
    """Road name and number for estates and stand-alone buildings; building addresses."""
    named = roads[roads["name"].fillna("").str.fullmatch(r"[\u4e00-\u9fff0-9]+")
                  & roads["highway"].isin(["primary", "secondary", "tertiary", "residential", "unclassified", "trunk", "living_street"])]
    named = named.reset_index(drop=True)
    tree = shapely.STRtree(named.geometry.values)
    standalone = buildings["estate_id"].isna() & (buildings["typ"] == "osm")
    targets = np.concatenate([estates.geometry.values, buildings.geometry.values[standalone.values]])
    (ti, ri) = tree.query_nearest(targets, all_matches=False)
    road_of = np.empty(len(targets), dtype=object)
    road_of[ti] = named["name"].values[ri]
    # number along each road: odd on the left, even on the right
    num = np.zeros(len(targets), int)
    line_of = np.empty(len(targets), dtype=object)
    line_of[ti] = named.geometry.values[ri]
    pos = shapely.line_locate_point(line_of, shapely.centroid(targets))
    a = shapely.line_interpolate_point(line_of, np.maximum(pos - 1, 0))
    bpt = shapely.line_interpolate_point(line_of, pos + 1)
    c = shapely.centroid(targets)
    cross = (shapely.get_x(bpt) - shapely.get_x(a)) * (shapely.get_y(c) - shapely.get_y(a)) - (
        shapely.get_y(bpt) - shapely.get_y(a)) * (shapely.get_x(c) - shapely.get_x(a))
    left = cross > 0
    df = pd.DataFrame({"road": road_of, "pos": pos, "left": left, "i": np.arange(len(targets))})
    df = df.sort_values(["road", "left", "pos", "i"])
    df["rank"] = df.groupby(["road", "left"]).cumcount()
    step = pd.Series(rng.integers(1, 9, len(df)) * 2, index=df.index)
    df["num"] = step.groupby([df["road"], df["left"]]).cumsum() - np.where(df["left"], 1, 0)
    num[df["i"].values] = df["num"].values
    ne = len(estates)
    estates["address"] = [f"{r}{n}号" for r, n in zip(road_of[:ne], num[:ne])]
    # estate names where OSM has none
    used = set(estates["name"].dropna())
    names = []
    for e in estates.itertuples():
        if isinstance(e.name, str) and e.name:
            names.append(e.name)
            continue
        while True:
            if e.typ == "old":
                pick = rng.random()
                if pick < 0.35:
                    nm = f"{OLD_OWNERS[rng.integers(len(OLD_OWNERS))]}宿舍"
                elif pick < 0.6:
                    nm = f"{e.address}院"
                else:
                    nm = "".join(ESTATE_WORDS_A[i] for i in rng.integers(len(ESTATE_WORDS_A), size=2)) + ESTATE_SUFFIX_OLD[rng.integers(3)]
            elif e.typ == "office":
                nm = "".join(ESTATE_WORDS_A[i] for i in rng.integers(len(ESTATE_WORDS_A), size=2)) + rng.choice(["大厦", "中心", "广场"])
            else:
                nm = "".join(ESTATE_WORDS_A[i] for i in rng.integers(len(ESTATE_WORDS_A), size=2)) + ESTATE_SUFFIX_NEW[rng.integers(len(ESTATE_SUFFIX_NEW))]
            if nm not in used:
                used.add(nm)
                break
        names.append(nm)
    estates["name"] = names
    e_addr = dict(zip(estates["id"], estates["address"]))
    e_name = dict(zip(estates["id"], estates["name"]))
    addr = np.empty(len(buildings), dtype=object)
    in_est = buildings["estate_id"].notna().values
    addr[in_est] = [f"{e_addr[e]} {e_name[e]} {n}" for e, n in zip(buildings["estate_id"][in_est], buildings["name"][in_est])]
    sa = np.flatnonzero(standalone.values)
    addr[sa] = [f"{r}{n}号" for r, n in zip(road_of[ne:], num[ne:])]
    vil = np.flatnonzero(buildings["typ"].values == "village")
    # village houses: 组 (former production team) per block, house numbers in the block
    blk = buildings["block"].values[vil]
    grp = pd.Series(blk).rank(method="dense").astype(int).values
    k = pd.Series(blk).groupby(blk).cumcount().values + 1
    vname = plan.communities.set_index("id").loc[FRINGE_CODE, "name"]
    addr[vil] = [f"{vname}{_cn(g)}组{n}号" for g, n in zip(grp, k)]
    buildings.loc[buildings.index[vil], "name"] = [f"{n}号" for n in k]
    buildings["address"] = addr
    return buildings, estates


def _cn(n: int) -> str:
    if n <= 10:
        return CN_DIGITS[n]
    return ("" if n < 20 else CN_DIGITS[n // 10]) + "十" + (CN_DIGITS[n % 10] if n % 10 else "")


def _gates(estates, roads, rng) -> gpd.GeoDataFrame:
    """1–3 gates per estate on its fence, facing the nearest roads; some estates have none (open compounds)."""
    rgeom = roads.geometry.values
    tree = shapely.STRtree(rgeom)
    rows = []
    for e in estates.itertuples():
        n = int(rng.choice([0, 1, 2, 3], p=[0.08, 0.42, 0.35, 0.15]))
        if n == 0:
            continue
        near = tree.query(e.geometry, predicate="dwithin", distance=40)
        if len(near) == 0:
            continue
        d = shapely.distance(rgeom[near], e.geometry)
        near = near[np.lexsort((near, d))]
        pts = []
        for r in near:
            p = shapely.get_point(shapely.shortest_line(e.geometry.exterior, rgeom[r]), 0)
            if all(p.distance(q) > 25 for q in pts):
                pts.append(p)
            if len(pts) == n:
                break
        for j, p in enumerate(pts, start=1):
            rows.append(dict(id=f"{e.id}-G{j}", estate_id=e.id, name=f"{e.name}{'东南西北'[j % 4]}门" if j > 1 else f"{e.name}大门",
                             geometry=p))
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)


# ----------------------------------------------------------------------------- facilities, roads, areas

def _osm_tag_frame(g: pd.DataFrame, keys) -> pd.DataFrame:
    """The OSM tags ``keys`` of each feature as columns (a column GDAL read wins, else the ``tags`` dict)."""
    out = pd.DataFrame(index=g.index)
    for key in keys:
        from_tags = g["tags"].map(lambda t, k=key: t.get(k))
        out[key] = g[key].where(g[key].notna(), from_tags) if key in g.columns else from_tags
    return out


def _school_category(name: str) -> str | None:
    if not isinstance(name, str):
        return None
    if "幼儿园" in name:
        return "kindergarten"
    if any(w in name for w in ("大学", "学院", "电大", "进修", "培训", "University")):
        return None
    if "小学" in name:
        return "primary_school"
    if "中学" in name or "初中" in name or re.search(r"[0-9一二三四五六七八九十]+中", name) or "铁中" in name:
        return "middle_school"
    return "primary_school"


def build_facilities(osm, register, street_geom, plan, layers) -> gpd.GeoDataFrame:
    """Life-circle facilities: OSM POIs (mapped by geo/categories.toml's ``osm`` tag sets), register offices, and
    the synthetic planned/known services of tools/sample_facilities.py."""
    rules = load_facility_rules()
    keys = sorted({k for sets in rules.osm.values() for s in sets for k in s} | {"amenity", "shop", "leisure", "office"})
    reach = street_geom.buffer(MARGIN_M)
    frames = []
    for layer in ("points", "multipolygons"):
        g = osm[layer].copy()
        g[keys] = _osm_tag_frame(g, keys)
        g = g[g.intersects(reach)]
        if layer == "multipolygons":
            g = g[g["building"].isna() | g["amenity"].notna() | g["shop"].notna() | g["leisure"].notna()]
        area = shapely.area(g.geometry.values)
        g["geometry"] = shapely.point_on_surface(g.geometry.values)
        cat = pd.Series(osm_categories(g[keys], rules), index=g.index, dtype=object)
        # the builder's own rules where tags alone are no fair match (geo/categories.toml says which)
        school = g["amenity"].eq("school") & cat.isna()
        cat[school] = g.loc[school, "name"].map(_school_category)
        pitch = g["leisure"].eq("pitch")
        cat[pitch] = np.where(area[pitch.values] > 4000, "medium_sports", "small_sports")
        park = g["leisure"].eq("park")
        cat[park] = np.where(area[park.values] > 10000, "medium_sports", "small_sports")
        gov = (g["office"].eq("government") | g["amenity"].eq("townhall")) & g["name"].fillna("").str.contains("街道")
        cat[gov] = "street_office"
        g["category"] = cat
        g = g[g["category"].notna()]
        osm_id = g["osm_id"] if layer == "points" else np.where(g["osm_way_id"].notna(), "w" + g["osm_way_id"].astype(str), "r" + g["osm_id"].astype(str))
        frames.append(gpd.GeoDataFrame({"osm_id": (("n" + g["osm_id"].astype(str)) if layer == "points" else osm_id),
                                        "name": g["name"].values, "category": g["category"].values, "source": "osm"},
                                       geometry=g.geometry.values, crs=METRIC_CRS))
    fac = pd.concat(frames, ignore_index=True)
    # register: community service stations at community points, street offices at town points
    reg = register[register["geometry"].notna()]
    reg = reg[shapely.within(reg["geometry"].values.astype(object), reach)]
    rows = []
    for r in reg.itertuples():
        if r.level == "village":
            rows.append(dict(osm_id=None, name=r.name.replace("居委会", "").replace("居委", "") + "党群服务中心",
                             category="community_service", source="register", geometry=r.geometry))
        elif r.level == "town":
            rows.append(dict(osm_id=None, name=r.name, category="street_office", source="register", geometry=r.geometry))
    fac = pd.concat([fac, gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)], ignore_index=True)
    village = layers["buildings"]["block"].isin(plan.notes["village_blocks"]).to_numpy()
    planned = planned_facilities(fac, layers=layers, village=village)
    fac = pd.concat([fac, planned], ignore_index=True)
    fac["id"] = [f"F{i + 1:04d}" for i in range(len(fac))]
    return fac[["id", "name", "category", "source", "osm_id", "building_id", "geometry"]]


def build_roads(osm, street_geom) -> gpd.GeoDataFrame:
    """Real OSM highway ways touching the street or its 1.5 km margin (whole ways, not clipped)."""
    lines = osm["lines"]
    r = lines[lines["highway"].notna() & lines.intersects(street_geom.buffer(MARGIN_M))].copy()
    out = gpd.GeoDataFrame({"id": "w" + r["osm_id"].astype(str), "name": r["name"].values, "highway": r["highway"].values},
                           geometry=r.geometry.values, crs=METRIC_CRS)
    for tag in ROAD_TAGS:
        out[tag] = r["tags"].map(lambda t, k=tag: t.get(k)).values
    out = out[[c for c in out.columns if c == "geometry" or out[c].notna().any()]]
    return out.sort_values("id").reset_index(drop=True)


# ----------------------------------------------------------------------------- misplaced households

def misplace_households(plan, hh, buildings, grids, rng):
    """Households given by building only, snapped points, points far from any building, no location."""
    n = len(hh)
    bgeom = buildings.set_index("id").geometry
    mode = rng.choice(["point", "both", "building"], size=n, p=[0.62, 0.25, 0.13])
    hh["building_id"] = np.where(mode == "point", None, hh["building_id"].values)
    geom = hh.geometry.values.copy()
    geom[mode == "building"] = None
    tree = shapely.STRtree(buildings.geometry.values)

    # snapped: a point 3–12 m outside its own synthetic footprint, nearest to it
    cand = np.flatnonzero((mode == "point") & hh["_typ"].isin(["old", "mid"]).values & ~hh["_planted"].values)
    cand = rng.permutation(cand)[:200]
    own = bgeom.loc[hh["_building"].values[cand]].values
    c = shapely.centroid(own)
    ang = rng.uniform(0, 2 * np.pi, len(cand))
    far = shapely.points(shapely.get_x(c) + 200 * np.cos(ang), shapely.get_y(c) + 200 * np.sin(ang))
    ray = shapely.linestrings(np.stack([np.column_stack([shapely.get_x(c), shapely.get_y(c)]),
                                        np.column_stack([shapely.get_x(far), shapely.get_y(far)])], axis=1))
    exitp = shapely.intersection(shapely.boundary(own), ray)
    ex = shapely.point_on_surface(exitp)
    d = rng.uniform(3, 12, len(cand))
    pts = shapely.points(shapely.get_x(ex) + d * np.cos(ang), shapely.get_y(ex) + d * np.sin(ang))
    (pi, bi), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    nearest_own = np.zeros(len(cand), bool)
    nearest_own[pi] = buildings["id"].values[bi] == hh["_building"].values[cand[pi]]
    inside_any = np.zeros(len(cand), bool)
    inside_any[pi] = dist == 0
    ingrid = shapely.STRtree(grids.geometry.values).query(pts, predicate="within")[0]
    ok = nearest_own & ~inside_any & np.isin(np.arange(len(cand)), ingrid)
    snapped = cand[ok][:40]
    geom[snapped] = pts[ok][:40]
    plan.defects["snapped"] = hh["id"].values[snapped].tolist()

    # no_building: points more than 40 m from any footprint, inside a grid
    x0, y0, x1, y1 = plan.street["geometry"].bounds
    px, py = rng.uniform(x0, x1, 4000), rng.uniform(y0, y1, 4000)
    pts = shapely.points(px, py)
    gi = shapely.STRtree(grids.geometry.values).query(pts, predicate="within")
    inside = np.zeros(len(pts), bool)
    inside[gi[0]] = True
    (pi, bi), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    dd = np.zeros(len(pts))
    dd[pi] = dist
    okp = np.flatnonzero(inside & (dd > 40))[:15]
    rest = np.flatnonzero((mode == "point") & ~np.isin(np.arange(n), snapped) & ~hh["_planted"].values)
    lost = rng.permutation(rest)[: len(okp)]
    lost = np.sort(lost)
    geom[lost] = pts[okp]
    plan.defects["no_building"] = hh["id"].values[lost].tolist()

    # no_location: neither a point nor a building
    rest = np.flatnonzero((mode == "building") & ~hh["_planted"].values)
    nol = np.sort(rng.permutation(rest)[:3])
    hh.loc[hh.index[nol], "building_id"] = None
    plan.defects["no_location"] = hh["id"].values[nol].tolist()
    plan.defects["building_only"] = int((mode == "building").sum() - len(nol))
    hh = hh.set_geometry(gpd.GeoSeries(geom, crs=METRIC_CRS, index=hh.index))
    return hh


# ----------------------------------------------------------------------------- writing

def _write(gdf: gpd.GeoDataFrame, path: Path) -> None:
    gdf = gdf.to_crs(4326)
    if path.exists():
        path.unlink()
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio",
                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7", "WRITE_NAME": "NO"})


def coverage_to_wgs84(layers: dict[str, gpd.GeoDataFrame], *, grid_size: float = 1e-7) -> dict[str, gpd.GeoDataFrame]:
    """Polygon layers that tile each other, in WGS-84 on a common coordinate grid.

    Rounding each polygon on its own moves a vertex lying on a neighbour's edge
    (a T-junction) off that edge, leaving centimetre slivers between grids. So
    all boundaries are noded together with snap-rounding, and every polygon is
    rebuilt from the faces it holds: neighbours then share identical edges.
    """
    wgs = {name: gdf.to_crs(4326) for name, gdf in layers.items()}
    exact = np.concatenate([gdf.geometry.values for gdf in wgs.values()])
    lines = shapely.union_all(shapely.boundary(shapely.set_precision(exact, grid_size)), grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    face_area = shapely.area(faces)
    out = {}
    for name, gdf in wgs.items():
        # a face belongs to every polygon holding most of it (two, where grids overlap on purpose);
        # a rounding sliver belongs to the one polygon holding the largest share of it
        fi, pi = shapely.STRtree(gdf.geometry.values).query(faces, predicate="intersects")
        share = shapely.area(shapely.intersection(faces[fi], gdf.geometry.values[pi])) / face_area[fi]
        pairs = pd.DataFrame({"f": fi, "p": pi, "share": share})
        best = pairs.sort_values(["f", "share", "p"], ascending=[True, False, True]).drop_duplicates("f")
        keep = pd.concat([pairs[pairs["share"] >= 0.5], best[(best["share"] > 0.05)]]).drop_duplicates(["f", "p"])
        # a sliver no polygon holds (under ~1 m²) joins the neighbour sharing most of its boundary
        lost = np.setdiff1d(np.flatnonzero(face_area < 1e-10), keep["f"].values)
        if len(lost):
            fi, pi = shapely.STRtree(gdf.geometry.values).query(faces[lost], predicate="dwithin", distance=grid_size)
            shared = shapely.length(shapely.intersection(shapely.boundary(faces[lost[fi]]),
                                                         shapely.boundary(gdf.geometry.values[pi]).buffer(grid_size)))
            near = pd.DataFrame({"f": lost[fi], "p": pi, "shared": shared})
            near = near.sort_values(["f", "shared", "p"], ascending=[True, False, True]).drop_duplicates("f")
            keep = pd.concat([keep, near[near["shared"] > 0][["f", "p"]]])
        rebuilt = [shapely.union_all(faces[keep["f"].values[keep["p"].values == k]]) for k in range(len(gdf))]
        gdf = gdf.copy()
        gdf["geometry"] = rebuilt
        out[name] = gdf
    return out


def build_sample(data_dir, out_dir, *, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Build the sample district from the real data in ``data_dir`` and write its layers to ``out_dir``.

    Returns the number of features written per layer. Deterministic: the same
    data and seed give byte-identical files.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = {k: np.random.default_rng([seed, i]) for i, k in enumerate(
        ["layout", "households", "grids", "staff", "defects", "address", "gates", "facilities", "misplace",
         "workload", "visits", "part_time", "codes"])}
    register = read_register(data_dir)
    osm = read_osm(data_dir)
    plan = _Plan()

    town = register[register["code"] == STREET_CODE].iloc[0]
    street_name = town["name"].replace("办事处", "")
    blocks, owner, roads_aoi = select_blocks(osm, register, STREET_CODE)
    street_geom = shapely.set_precision(shapely.union_all(blocks), 0.001)
    plan.street = dict(id=STREET_CODE, name=street_name, geometry=street_geom,
                       address_prefix=f"{town['city']}{town['county']}{street_name}")
    comm = register[register["parent"] == STREET_CODE].sort_values("code")
    comm = comm[comm["code"].isin(set(owner))]
    plan.communities = pd.DataFrame({
        "id": comm["code"].values,
        "name": comm["name"].str.replace("居委会", "", regex=False).str.replace("居委", "", regex=False).values,
        "register_name": comm["name"].values,
        "street_id": STREET_CODE,
        "ur_code": np.where(comm["code"].values == FRINGE_CODE, "112", comm["ur_code"].values),
        "register_ur_code": comm["ur_code"].values,
        "code": comm["code"].values,
    })

    build_estates_and_buildings(plan, osm, blocks, owner, roads_aoi, rng["layout"])

    # buildings table
    b = gpd.GeoDataFrame(plan.buildings, geometry="geometry", crs=METRIC_CRS)
    b["geometry"] = shapely.set_precision(b.geometry.values, 0.01)
    btree = shapely.STRtree(blocks)
    blk = btree.query(shapely.point_on_surface(b.geometry.values), predicate="within")
    b["community"] = None
    b.loc[b.index[blk[0]], "community"] = owner[blk[1]]
    order = np.lexsort((shapely.get_x(shapely.centroid(b.geometry.values)), -np.round(shapely.get_y(shapely.centroid(b.geometry.values)) / 40)))
    b = b.iloc[order].reset_index(drop=True)
    b["id"] = [f"B{i + 1:05d}" for i in range(len(b))]
    b.loc[b["source"] == "osm", "id"] = "B-" + b.loc[b["source"] == "osm", "osm_id"]
    b["capacity"] = _flats_per_building(b, rng["households"])
    b = _floors_for_capacity(b)
    estates = gpd.GeoDataFrame(plan.estates, geometry="geometry", crs=METRIC_CRS)
    estates = estates[estates["id"].isin(set(b["estate_id"].dropna()))].reset_index(drop=True)

    # (5) the old estate whose tenants are largely unregistered
    # (a synthetic estate: a defect is never pinned on a real, OSM-named place)
    old = estates[(estates["typ"] == "old") & (estates["year_built"] <= 1995) & (estates["community"] != FRINGE_CODE)
                  & ~estates["osm_name"].astype(bool)]
    nb = b.groupby("estate_id").size()
    old = old[old["id"].map(nb).fillna(0) >= 4]
    planted_estate = old["id"].iloc[int(rng["defects"].integers(len(old)))]
    b["registration"] = np.nan
    pb = b.index[b["estate_id"] == planted_estate]
    empty = pb[: int(np.ceil(len(pb) * 0.5))]
    b.loc[pb, "registration"] = 0.45
    b.loc[empty, "registration"] = np.where(np.arange(len(empty)) % 2 == 0, 0.0, 0.06)

    b, estates = _address_buildings(plan, b, estates, osm["lines"][osm["lines"]["highway"].notna()], rng["address"])
    hh = build_households(plan, b, rng["households"])
    hh["_building"] = hh["building_id"].values
    hh["_typ"] = hh["_building"].map(dict(zip(b["id"], b["typ"]))).values
    hh["_planted"] = hh["_building"].map(dict(zip(b["id"], b["estate_id"] == planted_estate))).values.astype(bool)
    b["households"] = hh.groupby("_building").size().reindex(b["id"]).fillna(0).astype(int).values

    # households per parcel (grid atom)
    atoms = plan.atoms
    a_tree = shapely.STRtree(atoms.geometry.values)
    ai = a_tree.query(shapely.point_on_surface(b.geometry.values), predicate="within")
    b_atom = np.full(len(b), -1)
    b_atom[ai[0]] = ai[1]
    atoms["households"] = np.bincount(b_atom[b_atom >= 0], weights=b["households"].values[b_atom >= 0], minlength=len(atoms)).astype(int)
    atoms["grid"] = None

    grids = build_grids(plan, rng["grids"])
    grids = staff_grids(grids, rng["staff"])
    communities = plan.communities
    grids = plant_defects(plan, grids, b, communities, rng["defects"])
    planted_grids = {g for k in ("gap", "overlap", "split") for g in plan.defects[k]["grids"]}
    free = grids.loc[~grids["id"].isin(planted_grids), "id"].values
    unstaffed = free[int(rng["staff"].integers(len(free)))]
    grids.loc[grids["id"] == unstaffed, ["worker_name", "worker_phone"]] = ""
    grids.loc[grids["id"] == unstaffed, "full_time_workers"] = 0
    plan.defects["unstaffed"] = unstaffed

    hh = misplace_households(plan, hh, b, grids, rng["misplace"])
    # staffing by the workload rule and the visit log, on each household's grid as the analysis assigns it
    grid_of = assign_households(hh[["id", "building_id", "geometry"]], b[["id", "geometry"]],
                                grids[["id", "geometry"]], settings=Settings())["grid_id"].to_numpy()
    grids, plan.defects["staffing"] = staff_for_workload(grids, pd.Series(grid_of).value_counts(), rng["workload"],
                                                         skip={unstaffed})
    visits, plan.defects["visits"] = build_visits(hh, grid_of, grids, rng["visits"])
    grids, plan.defects["part_time"] = plant_part_time_workers(grids, rng["part_time"])
    grids, plan.defects["codes"] = code_grids(grids, communities, rng["codes"])

    # the planted estate's records
    pe = dict(estate=planted_estate, name=estates.set_index("id").loc[planted_estate, "name"],
              buildings=b.loc[pb, "id"].tolist(), empty_buildings=b.loc[empty, "id"].tolist(),
              flats=int(b.loc[pb, "capacity"].sum()), households=int(b.loc[pb, "households"].sum()),
              rental=int(hh.loc[hh["_planted"], "rental"].sum()))
    plan.defects["unregistered_estate"] = pe

    # areas: old estates the street office lists for renovation, and the fringe village
    olds = estates[estates["year_built"] <= 1995]
    areas = [dict(id=f"A-OE-{e.id}", kind="old_estate", name=f"{e.name}（老旧小区）", geometry=e.geometry) for e in olds.itertuples()]
    vill = shapely.union_all(atoms.geometry.values[atoms["village"].values])
    fr_name = communities.set_index("id").loc[FRINGE_CODE, "name"]
    areas.append(dict(id="A-URF-1", kind="urban_rural_fringe", name=f"{fr_name}城乡结合片区", geometry=vill))
    areas = gpd.GeoDataFrame(areas, geometry="geometry", crs=METRIC_CRS)

    # layers
    com_geom = [shapely.set_precision(shapely.union_all(atoms.geometry.values[atoms["community"].values == c]), 0.001)
                for c in communities["id"]]
    communities_gdf = gpd.GeoDataFrame(communities.drop(columns=[]), geometry=com_geom, crs=METRIC_CRS)
    street_gdf = gpd.GeoDataFrame([dict(id=STREET_CODE, name=street_name, register_name=town["name"], district=town["county"])],
                                  geometry=[shapely.set_precision(shapely.union_all(com_geom), 0.001)], crs=METRIC_CRS)
    gates = _gates(estates, roads_aoi, rng["gates"])
    roads = build_roads(osm, street_geom)
    facilities = build_facilities(osm, register, street_geom, plan, dict(
        buildings=b, estates=estates, gates=gates, roads=roads, households=hh))

    estates_out = estates[["id", "name", "year_built", "address", "geometry"]].copy()
    estates_out["source_name"] = np.where(estates["osm_name"], "osm", "synthetic")
    b_out = b[["id", "estate_id", "name", "address", "year_built", "floors", "residential", "source", "osm_id", "geometry"]].copy()
    b_out["year_built"] = b_out["year_built"].astype("Int64")
    hh_out = hh[["id", "address", "building_id", "persons", "elderly_alone", "child_in_difficulty", "mental_disorder",
                 "migrant", "rental", "last_visit", "geometry"]]
    grids_out = grids[["id", "name", "code", "community_id", "worker_name", "worker_phone", "full_time_workers",
                       "part_time_workers", "info_officer_name", "info_officer_phone", "mediator_name",
                       "mediator_phone", "geometry"]]

    layers = {
        "streets": street_gdf, "communities": communities_gdf, "grids": grids_out, "estates": estates_out,
        "gates": gates, "buildings": b_out, "households": hh_out, "facilities": facilities, "roads": roads, "areas": areas,
    }
    layers.update(coverage_to_wgs84({k: layers[k] for k in ("streets", "communities", "grids")}))
    for name, gdf in layers.items():
        _write(gdf.reset_index(drop=True), out_dir / f"{name}.geojson")
    visits.to_csv(out_dir / "visits.csv", index=False, encoding="utf-8", lineterminator="\n")
    counts = {name: len(gdf) for name, gdf in layers.items()}
    counts["visits"] = len(visits)
    from tools.sample_cases import write_case_log  # the case log reads the layers just written

    (out_dir / "README.md").unlink(missing_ok=True)  # the case log first (the story's run places its cases), then the README
    write_case_log(out_dir)
    plan.notes["story"] = story_lines(out_dir, defects=plan.defects, categories=load_config().categories,
                                      village_buildings=set(b.loc[b["block"].isin(plan.notes["village_blocks"]), "id"]))
    _write_readme(out_dir, plan, layers, counts, seed, hh, b, estates)
    counts["cases"] = write_case_log(out_dir)["cases"]
    return counts


# ----------------------------------------------------------------------------- README

def _staffing_readme(d: dict, grids: pd.DataFrame) -> list[str]:
    st = d["staffing"]
    workers = grids["full_time_workers"].astype(int)
    officers = (grids["info_officer_name"].fillna("") != "").sum() + (grids["mediator_name"].fillna("") != "").sum()
    over = ", ".join(f"`{r['grid']}` ({r['households']} households, {r['workers']} worker)" for r in st["overloaded"])
    part = int(grids["part_time_workers"].sum())
    mine = grids["community_id"] == PART_TIME_COMMUNITY
    comm_full, comm_part = int(workers[mine].sum()), int(grids.loc[mine, "part_time_workers"].sum())
    miss = st["missing_officers"]
    spread = ", ".join(f"{int(n)} grid{'s' if n != 1 else ''} with {int(k)}"
                       for k, n in workers.value_counts().sort_index().items())
    return [
        "## Staffing (一格三员) and workload",
        "",
        f"- Full-time workers (`full_time_workers`) follow the workload rule: one per 300 households of the grid "
        "(as the analysis assigns them, with 2% slack), so most grids hold at most 300 households per worker: "
        f"{int(workers.sum())} full-time workers in {len(grids)} grids "
        f"({spread}).",
        f"- **Planted over the rule**: {over}: one full-time worker too few (`over_capacity`).",
        f"- **Planted 一格三员 shortfalls**: no mediator in {', '.join('`' + g + '`' for g in miss['mediator'])}; "
        f"no information officer in {', '.join('`' + g + '`' for g in miss['info_officer'])}; neither in "
        f"{', '.join('`' + g + '`' for g in miss['both'])}; and `{d['unstaffed']}` has no full-time worker. "
        "Every other grid has its information officer and mediator.",
        f"- **Planted part-time grid workers** (`part_time_workers`, 兼职网格员; 0 elsewhere): "
        f"{', '.join(f'`{g}` {n}' for g, n in d['part_time'].items())}. "
        f"网格员专职化比例 (full-time among full-time and part-time grid workers; the {int(officers)} information "
        f"officers and mediators are not grid workers): {int(workers.sum())} of {int(workers.sum()) + part} = "
        f"{int(workers.sum()) / (int(workers.sum()) + part):.1%} in the street; community `{PART_TIME_COMMUNITY}` "
        f"{comm_full} of {comm_full + comm_part} = {comm_full / (comm_full + comm_part):.1%}, below the plan's 80%.",
        "",
    ]


def _codes_readme(d: dict, grids: pd.DataFrame) -> list[str]:
    c = d["codes"]
    return [
        "## Grid codes (网格编码)",
        "",
        "- Every grid carries a standard `code`: its community's 12-digit statistical code and a 3-digit sequence "
        "from 001, numbered west to east, then north to south inside the community (`geo.gridcodes`, docs/tasks.md "
        f"\"Grid codes\"), e.g. `{grids['id'].iloc[0]}` = `{grids['code'].iloc[0]}`.",
        f"- **Planted duplicate**: `{c['duplicate']['grids'][1]}` carries the code of its neighbour "
        f"`{c['duplicate']['grids'][0]}`, `{c['duplicate']['code']}` (`code_duplicate`).",
        f"- **Planted code of another community**: `{c['outside']['grid']}` (community `{c['outside']['community']}`) "
        f"carries `{c['outside']['code']}`, a code under `{c['outside']['under']}` (`code_outside_community`).",
        "",
    ]


def _visits_readme(v: dict) -> list[str]:
    behind = ", ".join(f"{name} (`{g}`)" for g, name in v["behind"])
    return [
        "## Visit log (`visits.csv`)",
        "",
        f"- {v['rows']:,} visits (走访记录) to {v['households']:,} of the {v['watched']:,} watched special-group households "
        f"(elderly_alone, child_in_difficulty, mental_disorder) from {v['start']} to {v['end']} ({VISIT_WEEKS} ISO weeks "
        "up to the sample's as-of date). Columns: `household_id`, `visited_at` (local date-time, Asia/Shanghai, "
        "`YYYY-MM-DD HH:MM`), `worker` (the grid's `worker_name`), `kind` (`home`, `phone`, `other`), `outcome` "
        "(`seen`, `not_home`, `answered`, `no_answer`), `note`.",
        "- A diligent worker visits the elderly living alone weekly, children in difficulty every 14 days and "
        "mental_disorder households every 28 days, each period kept with a chance of 0.9–1.0; each household's last "
        "record is its `last_visit` date in households.geojson and there is none after it, so the two agree.",
        f"- **Planted behind**: {behind}: about half of their visits are missed.",
        f"- **Never visited in the window**: {v['never']} watched households ({v['no_worker']} of them in no grid or a "
        f"grid without a worker; {v['never_in_grid']} with a worker but no `last_visit` in the window).",
        f"- **Phone only**: {v['phone_only']} elderly living alone are only phoned (a phone call does not count for "
        "them by the plan's weekly home visit).",
        "- `analyze` reads the file as the `visits` layer: each special-group household's periods kept and missed, "
        "last and next visit (docs/tasks.md).",
        "",
    ]


def _history_readme() -> list[str]:
    """The section on ``scorecard_history.csv``, which ``tools/sample_history.py`` makes from the built sample."""
    return [
        "## Monthly snapshots (`scorecard_history.csv`)",
        "",
        "- The scorecards of the eleven month-ends before the sample's as-of date, 2025-12-31 … 2026-10-31 "
        "(communities, the street and the zones; and each month's red households and overloaded grids, by id). "
        "`gridcover analyze sample_geojson --out out/sample --as-of 2026-11-30` reads them as the earlier history and "
        "adds the twelfth, so `trend.json`, the report and the map's trend panel show twelve months (docs/history.md).",
        "- Made by the real analysis of this folder at each month-end: `PYTHONPATH=. python tools/sample_history.py` "
        "(one command, deterministic; rerun it after rebuilding the sample or when the scorecard's rows change, e.g. "
        "once the case loop adds `cases_on_time`).",
        "- The visit log above starts on 2026-08-10; for these runs only, the tool extends it back over the year in a "
        "scratch copy (the 16 weeks repeated 16, 32 and 48 weeks earlier, 8%, 15% and 25% of each earlier copy dropped, "
        "seeded: the workers were less diligent a year ago). `visits.csv` itself is unchanged.",
        "- **What moves and what is flat**: the households, buildings, grids and facilities are one snapshot, so the "
        "coverage, service and staffing indicators (weak areas served, basic services, special-group services, "
        "households per worker, full-time share) are flat over the twelve months; visits on time and special groups "
        "served (which counts visits) rise, and the red households change month by month (a person with a severe "
        "mental disorder not visited on time is red). Once the sample has cases, the case indicators move too.",
        "- The households' `last_visit` is one date (up to 2026-11-29): in the earlier runs it lies after the run's "
        "date. Visits are judged from the records (those after the run's date are ignored); only the long-gap rule of "
        "children in difficulty and mental-disorder households reads `last_visit`, so it flags none of them in those "
        "runs.",
        "",
    ]


def _write_readme(out_dir, plan, layers, counts, seed, hh, b, estates) -> None:
    d = plan.defects
    com = layers["communities"]
    grids = layers["grids"]
    sizes = {p.name: p.stat().st_size for p in sorted([*out_dir.glob("*.geojson"), *out_dir.glob("*.csv")])}
    gp = hh.groupby(hh["_typ"].fillna("?"))[["elderly_alone", "migrant", "rental"]].mean().round(3)
    gp["households"] = hh.groupby(hh["_typ"].fillna("?")).size()
    lines = [
        f"# Sample district: {plan.street['name']}, 青羊区, 成都",
        "",
        "A real street office of central Chengdu with synthetic estates, households and grids, "
        "for trying gridcover (`gridcover analyze sample_geojson --out out/`) and for its tests.",
        "",
        "## What it is",
        "",
        f"- Street: **{plan.street['name']}** (register: {plan.street['name']}办事处, code `{STREET_CODE}`, 青羊区). "
        "Its polygon is the union of the real OSM road blocks nearest its communities' register points "
        "(each block goes to the nearest register point of *any* community, neighbours included, within "
        f"{MAX_BLOCK_DISTANCE_M:.0f} m): it follows real roads, but it is not the official boundary.",
        f"- Communities ({len(com)}), with their real 12-digit codes and register urban-rural codes:",
        "",
        "| id (code) | name | ur_code | grids |",
        "|---|---|---|---|",
    ]
    for c in com.itertuples():
        lines.append(f"| {c.id} | {c.name} | {c.ur_code}{' (register: ' + c.register_ur_code + ')' if c.ur_code != c.register_ur_code else ''} | "
                     f"{(grids['community_id'] == c.id).sum()} |")
    lines += [
        "",
        "- Layers and feature counts (files are RFC 7946 GeoJSON, WGS-84 lon/lat, 7 decimals):",
        "",
        "| layer | features | bytes |",
        "|---|---|---|",
    ]
    for k, v in counts.items():
        label = "visits (visits.csv, rows)" if k == "visits" else k
        lines.append(f"| {label} | {v} | {sizes.get(k + '.geojson', sizes.get(k + '.csv', 0)):,} |")
    n_old = int((estates["year_built"] <= 2000).sum())
    lines += [
        "",
        f"- {counts['households']:,} households, {int(hh['persons'].sum()):,} persons, in {counts['estates']} estates "
        f"({n_old} built in or before 2000 = old estates 老旧小区), {counts['buildings']:,} buildings "
        f"({int((b['source'] == 'osm').sum())} real OSM footprints, the rest synthetic).",
        "",
        "## How it was made",
        "",
        "```",
        f"python -m tools.sample --data ../shared/data --out sample_geojson --seed {seed}",
        "```",
        "",
        "Deterministic: the same data and seed give byte-identical files. Steps (`tools/sample.py`):",
        "",
        "1. Register: the street's communities, their GCJ-02 points converted to WGS-84 (`geo.crs.gcj02_to_wgs84`).",
        "2. Blocks: faces of the real OSM road network (motorway … living_street, pedestrian); the street and "
        "communities are unions of whole blocks (a Voronoi of the register points snapped to blocks).",
        "3. Real OSM buildings inside the street are kept (ids `B-w…`); blocks OSM left empty are cut into parcels "
        f"of ~{PARCEL_AREA_M2:.0f} m², each a synthetic estate of one typology: old walk-ups (1978–2000, 5–7 floors), "
        "mid-rise slabs (2001–2010, 11–18 floors), towers (2011–2019, 24–33 floors), or office blocks (not residential). "
        "Road corridors, parks, schools, hospitals and water stay empty.",
        "4. Households: every flat (unit × floor × flats per floor) of a residential building, thinned by an occupancy rate. "
        "Special groups are drawn with rates by kind of building (below).",
        "5. Grids: per community, whole parcels grown into grids of 300–480 households (small ones merged), "
        "numbered north-west to south-east; workers are synthetic, staffed by the workload rule (see Staffing below).",
        "6. Defects are planted (next section). Facilities: real OSM POIs within the street and a 1.5 km margin "
        "(categories by the `osm` tags of `geo/categories.toml`), register points, and the synthetic planned/known "
        "services of `tools/sample_facilities.py` (The story, below). Roads: whole real OSM highway ways touching the margin.",
        "",
        "Special-group rates by kind of building (share of households):",
        "",
        "| building kind | households | elderly_alone | migrant | rental |",
        "|---|---|---|---|---|",
    ]
    for k, r in gp.iterrows():
        lines.append(f"| {k} | {int(r['households'])} | {r['elderly_alone']} | {r['migrant']} | {r['rental']} |")
    g, o, s, u = d["gap"], d["overlap"], d["split"], d["unregistered_estate"]
    fr = com.set_index("id").loc[FRINGE_CODE]
    vil_all = b[b["block"].isin(plan.notes["village_blocks"])]
    vil_b = vil_all[vil_all["typ"] == "village"]
    vil_h = hh[hh["_building"].isin(set(vil_all["id"]))]
    other = vil_all[vil_all["typ"] != "village"]
    other_txt = f" and {len(other)} other building(s) ({', '.join('`' + x + '`' for x in other['id'])})" if len(other) else ""
    lines += [
        "",
        f"Totals: elderly_alone {int(hh['elderly_alone'].sum())}, child_in_difficulty {int(hh['child_in_difficulty'].sum())}, "
        f"mental_disorder {int(hh['mental_disorder'].sum())}, migrant {int(hh['migrant'].sum())}, rental {int(hh['rental'].sum())}.",
        "",
        "## Planted defects (on purpose)",
        "",
        f"1. **Gap between grids** in {g['community']}: a parcel of ~{g['area_m2']} m² "
        f"(estate {g['estate']}) between grids `{g['grids'][0]}` and `{g['grids'][1]}` belongs to no grid; "
        f"its {g['households']} households are `outside_all_grids`.",
        f"2. **Overlap of two grids** in {o['community']}: grid `{o['grids'][0]}` reaches over building `{o['building']}` "
        f"({o['households']} households) of grid `{o['grids'][1]}` (overlap ~{o['area_m2']} m²): `in_overlapping_grids`.",
        f"3. **Building cut by a grid line** in {s['community']}: the boundary of grids `{s['grids'][0]}` / `{s['grids'][1]}` "
        f"runs through building `{s['building']}` ({s['households']} households), {s['share_b']:.0%} of it on the "
        f"`{s['grids'][1]}` side: `building_split`.",
        f"4. **Urban-rural fringe** community `{FRINGE_CODE}` {fr['name']}: ur_code set to **112** (register: "
        f"{fr['register_ur_code']}). No register community with code 112 lies near this street (the nearest with a point, "
        "白莲池社区 510108017005, is about 6.5 km north-east), so the easternmost community, on the Fu River, is relabelled "
        f"for the sample; this is fiction. Its outer blocks hold {len(vil_b)} village houses (1–3 floors, irregular, "
        f"`B…` with names like `12号`, addresses `{fr['name']}N组M号`){other_txt}; together {len(vil_h)} households; **no grid covers them** "
        "(they show as gaps / `outside_all_grids`). Area `A-URF-1` (kind `urban_rural_fringe`) outlines them.",
        f"5. **Old estate with unregistered tenants**: estate `{u['estate']}` {u['name']} ({len(u['buildings'])} buildings, "
        f"{u['flats']} flats) has only {u['households']} household records; buildings {', '.join('`' + x + '`' for x in u['empty_buildings'])} "
        f"have none or almost none; {u['rental']} of its records are rental. It is an `old_estate` area (`A-OE-{u['estate']}`).",
        "6. **Special groups spread unevenly**: elderly living alone concentrated in old estates, migrants and renters in the "
        "fringe village (rates above); a few mental_disorder and child_in_difficulty households. Elderly living alone: "
        f"{int(((pd.to_datetime(hh['last_visit']) < pd.Timestamp(TODAY - timedelta(days=7))) & hh['elderly_alone']).sum())} "
        f"visited more than 7 days before {TODAY.isoformat()} (the plan wants weekly visits).",
        "",
        "Location quirks of households:",
        "",
        f"- {d['building_only']} households are given by `building_id` only (no point); most others have a point in their footprint, "
        "some both.",
        f"- snapped (point 3–12 m outside its footprint, within the 15 m tolerance): {', '.join('`' + x + '`' for x in d['snapped'][:10])} … "
        f"({len(d['snapped'])} in all).",
        f"- no_building (point > 40 m from every footprint, inside a grid): {', '.join('`' + x + '`' for x in d['no_building'])}.",
        f"- no_location (neither point nor building): {', '.join('`' + x + '`' for x in d['no_location'])}.",
        f"- Grid `{d['unstaffed']}` has no worker (empty `worker_name`, `worker_phone`).",
        "- Some addresses use 号楼 for 栋 or full-width digits, as addresses arrive in practice.",
        "",
        *_staffing_readme(d, grids),
        *_codes_readme(d, grids),
        *_visits_readme(d["visits"]),
        *_history_readme(),
        *plan.notes.get("story", []),
        "## What is real and what is synthetic",
        "",
        "- Real: the street and community names, codes and register urban-rural codes (except the relabelled "
        f"`{FRINGE_CODE}`); the road network and names; the OSM building footprints (`source = osm`, `B-w…`); "
        "OSM facilities (`source = osm`); community service stations and street offices at register points "
        "(`source = register`); a few estate names taken from named OSM residential areas (`estates.source_name = osm`).",
        "- Synthetic: the street and community boundaries (block-snapped Voronoi, not official), every estate, synthetic "
        "building and village house, floors and years of OSM buildings without `building:levels`, every household "
        "and person, special-group flags, visit dates, grids, all names of workers, information officers and mediators "
        "(invented), their phone numbers (fictitious work numbers 028-86xx-xxxx), and the planned/known facilities "
        "(`source = synthetic`, with the `building_id` they stand in; see The story). No real person is described.",
        "",
        "## Attribution and licence",
        "",
        "- Roads, building footprints, facilities and everything derived from them (the street, community, block, "
        "estate and grid geometries): **© OpenStreetMap contributors, ODbL 1.0** "
        "(https://www.openstreetmap.org/copyright). The sample as a whole is a derived database and stays under the ODbL.",
        "- Community register: the CC BY 4.0 \"adcode\" dataset, National Bureau of Statistics of China codes as of "
        "2016-07-31 (统计用区划代码和城乡划分代码).",
    ]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.sample", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder holding the OSM extract and the community register")
    p.add_argument("--out", required=True, help="folder to write the sample layers into")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    a = p.parse_args(argv)
    counts = build_sample(a.data, a.out, seed=a.seed)
    print(json.dumps(counts, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
