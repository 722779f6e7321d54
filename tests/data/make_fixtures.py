"""Rebuild the real-data test fixtures under tests/data/ from ../shared/data (run from the repository root).

    python tests/data/make_fixtures.py [--data ../shared/data]

Deterministic (fixed area, fixed seed, rows sorted by OSM id); the outputs are committed, so a fresh clone
tests without ../shared. What is written, and how much of it is raw:

``chengdu_raw/`` — a data folder as a street office would bring it, cut to about 1.7 × 1.9 km of central
Chengdu (104.047–104.065 E, 30.650–30.667 N, parts of 青羊区 汪家拐 and 少城 streets):

- ``buildings.geojson``: the raw OSM footprints (GDAL's ``multipolygons`` layer, ``building`` set) inside the
  area, with the columns OSM gives (``@id`` as osmium writes it, ``name``, ``building``, ``amenity``,
  ``other_tags`` …) and **no floors column**. The two footprints of the whole extract that GDAL reads as invalid
  (relations 7777957 and 7853519, self-intersecting: repairable) are added although they lie outside the area.
  The extract holds no ring with too few points; exports at 4-decimal precision make them out of small or
  narrow footprints, so the smallest footprint of the area whose ring collapses when rounded to 4 decimals
  (way 314875622, 462 m², in the committed files) is written so: 2 distinct points, unrepairable.
- ``roads.geojson``: the raw OSM ways with a ``highway`` tag touching the area (GDAL's ``lines`` layer).
- ``facilities.geojson``: the raw OSM POIs of the area (GDAL's ``points`` layer) that carry an ``amenity`` or
  ``shop`` tag, with the tag pulled out of ``other_tags`` into a column (as ``ogr2ogr -sql`` or QGIS would):
  ``category`` is mapped to ``amenity`` in gridcover.toml, so OSM's own values (school, bank …) arrive.
- ``communities.gpkg`` (a GeoPackage written by GDAL): the real communities of the register
  (chengdu-communities-2016.csv, NBS codes 2016, CC BY 4.0 "adcode") whose GCJ-02 point, converted to WGS-84,
  lies in the area; the register has points only, so each polygon is the community point's Voronoi cell
  clipped to the area. Real names, codes and ``ur_code``.
- ``streets.geojson``: the union of each street's community cells, named after the register's street row.
- ``grids.shp``: each community cell cut in two (west/east) and written by GDAL as a Shapefile, so the field
  names are cut to 10 characters for real (``community_``, ``worker_nam``, ``worker_pho``); worker names are
  placeholders (网格员N), never real people.
- ``households.csv``: a register as a spreadsheet exports it: GB18030 text, Chinese headers (编号, 地址, 楼栋,
  经度, 纬度, 人数, 独居老人, 流动人口, 出租户, 备注), 是/否 flags, GCJ-02 points (geocoded on a web map); 1–6
  households per residential footprint of the area at random points inside it, some without a point (only
  their 楼栋, the building id) and some with neither. Invented people, real places; seed 11.
- ``gridcover.toml``: ``[crs] households = "gcj02"`` and the ``[columns.*]`` tables mapping all of it.

``variants/``:

- ``communities_no_ur_code.geojson``: the same communities without the ``ur_code`` column.
- ``communities_register.csv``: the register rows of those communities as points only (code, name, ur_code,
  lon, lat in GCJ-02, UTF-8 with a header): what a user has before drawing the polygons.
- ``households.shp``: the first 150 households with data-model field names, points only (``building_id`` empty in every
  row), written by GDAL: ``building_i``, ``elderly_al``, ``child_in_d``, ``mental_dis`` are cut.

OpenStreetMap data © OpenStreetMap contributors, ODbL 1.0; the register: CC BY 4.0 "adcode" dataset.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from geo.crs import gcj02_to_wgs84, wgs84_to_gcj02  # noqa: E402

OSM_FILE = "chengdu-central-2018.osm"
REGISTER_FILE = "chengdu-communities-2016.csv"
REGISTER_COLUMNS = ("code", "parent", "name", "level", "rank", "adcode", "post_code", "area_code", "ur_code",
                    "municipality", "virtual", "dummy", "longitude", "latitude", "center", "province", "city",
                    "county", "town", "village")
AREA = (104.047, 30.650, 104.065, 30.667)
#: The footprints the whole extract holds that GDAL reads as invalid polygons (self-intersections).
INVALID_RELATIONS = ("7777957", "7853519")
SEED = 11
#: Rows of the households Shapefile variant (a .dbf is fixed-width: keep it small).
SHP_ROWS = 150
UTM = "EPSG:32648"


def _tags(text) -> dict:
    import re

    return dict(re.findall(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"', text)) if isinstance(text, str) else {}


def _read(osm: Path, layer: str, **kw) -> gpd.GeoDataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyogrio.read_dataframe(osm, layer=layer, **kw)


def _drop_empty_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    keep = [c for c in frame.columns if c == "geometry" or frame[c].notna().any()]
    return frame[keep]


def _write_geojson(frame: gpd.GeoDataFrame, path: Path) -> None:
    pyogrio.write_dataframe(frame, path, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 7, "WRITE_NAME": "NO"})


def buildings(osm: Path) -> gpd.GeoDataFrame:
    mp = _read(osm, "multipolygons")
    mp = mp[mp["building"].notna()].copy()
    mp["@id"] = np.where(mp["osm_way_id"].notna(), "way/" + mp["osm_way_id"].fillna(""), "relation/" + mp["osm_id"].fillna(""))
    inside = mp.geometry.intersects(shapely.box(*AREA)).to_numpy() | mp["osm_id"].isin(INVALID_RELATIONS).to_numpy()
    out = mp[inside].drop(columns=["osm_id", "osm_way_id"])
    out = out[["@id"] + [c for c in out.columns if c != "@id"]]
    out["_key"] = out["@id"].str.split("/").str[1].astype(np.int64)
    out = out.sort_values("_key").drop(columns="_key").reset_index(drop=True)
    # the smallest footprint of the area, as a 4-decimal export writes it: a ring with too few points
    area = np.array(out.to_crs(UTM).area, dtype=float)  # a writable copy (pandas 3)
    area[~out.geometry.within(shapely.box(*AREA)).to_numpy()] = np.inf
    for i in np.argsort(area, kind="stable"):  # the smallest footprint whose rounded ring collapses
        ring = np.round(shapely.get_coordinates(out.geometry.iloc[i]), 4)
        distinct = [tuple(p) for k, p in enumerate(ring) if k == 0 or tuple(p) != tuple(ring[k - 1])]
        if len(set(distinct)) < 3:  # a ring of 2 distinct points: no area at all
            break
    i = int(i)
    print(f"collapsed by rounding: {out.loc[i, '@id']} ({area[i]:.0f} m²)")
    out.loc[i, "geometry"] = shapely.Polygon(distinct + [distinct[0]] * max(0, 4 - len(distinct)))
    return _drop_empty_columns(out)


def roads(osm: Path) -> gpd.GeoDataFrame:
    ln = _read(osm, "lines", bbox=AREA)
    ln = ln[ln["highway"].notna()].copy()
    ln = ln.assign(_key=ln["osm_id"].astype(np.int64)).sort_values("_key").drop(columns="_key")
    return _drop_empty_columns(ln.reset_index(drop=True))


def facilities(osm: Path) -> gpd.GeoDataFrame:
    pt = _read(osm, "points", bbox=AREA)
    tags = pt["other_tags"].map(_tags)
    pt["amenity"] = tags.map(lambda t: t.get("amenity") or (f"shop={t['shop']}" if "shop" in t else None))
    pt = pt[pt["amenity"].notna()].copy()
    pt = pt.assign(_key=pt["osm_id"].astype(np.int64)).sort_values("_key").drop(columns="_key")
    return _drop_empty_columns(pt.reset_index(drop=True))


def register(data: Path) -> pd.DataFrame:
    df = pd.read_csv(data / REGISTER_FILE, header=None, names=REGISTER_COLUMNS, dtype=str, keep_default_na=False)
    return df


def boundaries(reg: pd.DataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Streets, communities (Voronoi cells of the register points in the area) and grids (each cell halved)."""
    has = (reg["level"] == "village") & (reg["longitude"] != "")
    pts = reg[has].copy()
    lon, lat = gcj02_to_wgs84(pts["longitude"].astype(float).to_numpy(), pts["latitude"].astype(float).to_numpy())
    pts["lon"], pts["lat"] = lon, lat
    pts = pts[(lon >= AREA[0]) & (lon <= AREA[2]) & (lat >= AREA[1]) & (lat <= AREA[3])].sort_values("code")
    area = gpd.GeoSeries([shapely.box(*AREA)], crs=4326).to_crs(UTM).iloc[0]
    metric = gpd.GeoSeries(gpd.points_from_xy(pts["lon"], pts["lat"]), crs=4326).to_crs(UTM)
    cells = shapely.voronoi_polygons(shapely.multipoints(metric.to_numpy()), extend_to=area)
    cells = [shapely.intersection(c, area) for c in shapely.get_parts(cells)]
    order = [next(k for k, c in enumerate(cells) if c.contains(p)) for p in metric]
    cells = [shapely.set_precision(cells[k], 0.01) for k in order]
    communities = gpd.GeoDataFrame({"id": pts["code"].to_numpy(), "name": pts["name"].str.replace("居委会", "").to_numpy(),
                                    "street_id": pts["parent"].to_numpy(), "ur_code": pts["ur_code"].to_numpy(),
                                    "code": pts["code"].to_numpy()}, geometry=cells, crs=UTM)
    town = reg.set_index("code")
    streets = communities.dissolve(by="street_id", as_index=False)[["street_id", "geometry"]]
    streets = streets.rename(columns={"street_id": "id"})
    streets["name"] = town.loc[streets["id"], "name"].str.replace("办事处", "").to_numpy()
    streets = streets[["id", "name", "geometry"]]
    rows = []
    for c in communities.itertuples():
        x0, y0, x1, y1 = c.geometry.bounds
        mid = (x0 + x1) / 2
        for side, box in (("西", (x0 - 1, y0 - 1, mid, y1 + 1)), ("东", (mid, y0 - 1, x1 + 1, y1 + 1))):
            part = shapely.set_precision(shapely.intersection(c.geometry, shapely.box(*box)), 0.01)
            n = len(rows) + 1
            rows.append({"id": f"{c.id}-{len(rows) % 2 + 1}", "name": f"{c.name}{side}网格", "community_id": c.id,
                         "worker_name": f"网格员{n}", "worker_phone": f"028-8600-{n:04d}", "geometry": part})
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM)
    return (streets.to_crs(4326), communities.to_crs(4326), grids.to_crs(4326),
            pts[["code", "name", "ur_code", "longitude", "latitude"]].rename(columns={"longitude": "lon", "latitude": "lat"}))


def households(blds: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> pd.DataFrame:
    """The spreadsheet register: data-model columns (renamed to Chinese on writing), GCJ-02 points."""
    rng = np.random.default_rng(SEED)
    area = shapely.box(*AREA)
    res = blds[blds.geometry.within(area).to_numpy() & blds["amenity"].isna().to_numpy()].reset_index(drop=True)
    metric = res.to_crs(UTM).geometry.to_numpy()
    rows = []
    for bid, bname, poly in zip(res["@id"], res["name"], metric):
        k = int(rng.integers(1, 7))
        x0, y0, x1, y1 = poly.bounds
        for _ in range(k):
            for _try in range(50):
                p = shapely.Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
                if poly.contains(p):
                    break
            else:
                p = poly.representative_point()
            rows.append({"building_id": bid, "name": bname if isinstance(bname, str) else None, "pt": p})
    n = len(rows)
    pts = gpd.GeoSeries([r["pt"] for r in rows], crs=UTM).to_crs(4326)
    lon, lat = wgs84_to_gcj02(pts.x.to_numpy(), pts.y.to_numpy())
    where = rng.random(n)
    no_point = where < 0.08          # only the building on record
    nothing = (where >= 0.08) & (where < 0.10)  # neither: no location, still counted
    no_building = where > 0.75       # a point, no building on record
    street = streets["name"].iloc[0]
    table = pd.DataFrame({
        "id": [f"HH{i + 1:04d}" for i in range(n)],
        "address": [f"{street}{r['name'] or ''}{i % 40 + 1}号" for i, r in enumerate(rows)],
        "building_id": [r["building_id"] for r in rows],
        "lon": np.round(lon, 6), "lat": np.round(lat, 6),
        "persons": rng.integers(1, 6, n),
        "elderly_alone": rng.random(n) < 0.08, "migrant": rng.random(n) < 0.15, "rental": rng.random(n) < 0.2,
        "note": np.where(rng.random(n) < 0.05, "已走访", ""),
    })
    table.loc[no_point | nothing, ["lon", "lat"]] = np.nan
    table.loc[no_building | nothing, "building_id"] = None
    return table


HEADERS = {"id": "编号", "address": "地址", "building_id": "楼栋", "lon": "经度", "lat": "纬度", "persons": "人数",
           "elderly_alone": "独居老人", "migrant": "流动人口", "rental": "出租户", "note": "备注"}

CONFIG = """# gridcover.toml of a data folder brought as it came: OSM exports, a register drawn as boxes, a spreadsheet.
[crs]
households = "gcj02"   # geocoded on a web map

[columns.households]   # the spreadsheet's Chinese headers
id = "编号"
address = "地址"
building_id = "楼栋"
lon = "经度"
lat = "纬度"
persons = "人数"
elderly_alone = "独居老人"
migrant = "流动人口"
rental = "出租户"

[columns.buildings]    # osmium's id column
id = "@id"

[columns.roads]
id = "osm_id"

[columns.facilities]
id = "osm_id"
category = "amenity"
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parents[1] / ".." / "shared" / "data"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    osm = data / OSM_FILE
    raw, variants = HERE / "chengdu_raw", HERE / "variants"
    for folder in (raw, variants):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2026-01-01T00:00:00Z"})  # the same GeoPackage bytes each run
    blds = buildings(osm)
    streets, communities, grids, points = boundaries(register(data))
    _write_geojson(blds, raw / "buildings.geojson")
    _write_geojson(roads(osm), raw / "roads.geojson")
    _write_geojson(facilities(osm), raw / "facilities.geojson")
    _write_geojson(streets, raw / "streets.geojson")
    pyogrio.write_dataframe(communities, raw / "communities.gpkg", driver="GPKG", layer="communities")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL says it cuts the field names: that is the point
        pyogrio.write_dataframe(grids, raw / "grids.shp", driver="ESRI Shapefile", encoding="UTF-8")
    hh = households(blds, streets)
    sheet = hh.copy()
    for flag in ("elderly_alone", "migrant", "rental"):
        sheet[flag] = sheet[flag].map({True: "是", False: "否"})
    sheet.rename(columns=HEADERS).to_csv(raw / "households.csv", index=False, encoding="gb18030")
    (raw / "gridcover.toml").write_text(CONFIG, encoding="utf-8")

    _write_geojson(communities.drop(columns="ur_code"), variants / "communities_no_ur_code.geojson")
    points.to_csv(variants / "communities_register.csv", index=False, encoding="utf-8")
    wgs = gpd.GeoSeries(gpd.points_from_xy(*gcj02_to_wgs84(hh["lon"].to_numpy(), hh["lat"].to_numpy())), crs=4326)
    shp = gpd.GeoDataFrame(hh.drop(columns=["lon", "lat", "note"]).assign(
        building_id=None, child_in_difficulty=False, mental_disorder=False),
        geometry=np.where(hh["lon"].notna().to_numpy(), wgs.to_numpy(), None), crs=4326).iloc[:SHP_ROWS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(shp, variants / "households.shp", driver="ESRI Shapefile", encoding="UTF-8")
    sizes = {str(p.relative_to(HERE)): p.stat().st_size for p in sorted(HERE.rglob("*")) if p.is_file()}
    print(json.dumps({"files": sizes, "total_bytes": sum(sizes.values()), "buildings": len(blds),
                      "households": len(hh), "communities": len(communities), "grids": len(grids)},
                     ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
