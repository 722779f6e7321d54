"""Test data of the lookup tests: a small city drawn on exact binary fractions of a degree, as a workspace.

Units of U = 1/1024 degree (about 100 m) from (104, 30.5), so every vertex and every edge midpoint below is
exactly representable and lies exactly on the stored boundary:

    G2 (0,0)-(2,2)  | G10 (2,0)-(4,2)          shared edge x=2; G10 < G2 as text, so the tie rule picks G10
    G3 (0,2)-(2,4)  | G4  (2,2)-(4,4)          all four meet at the vertex (2,2)
    G5 multipolygon: (5,0)-(9,4) with a hole (6,1)-(8,3), and a second part (10,0)-(11,1)
    G6 (6,1)-(7,3) fills the west half of the hole; (7,1)-(8,3) is covered by no grid
    B1 (1.75,0.5)-(2.5,1.0): a building across the G2/G10 edge, 2/3 in G10
    E1 锦华苑 (红星路二段12号) in G3, E2 锦华苑 (东大街5号) in G4; each holds a building 3栋 (B2, B3)
"""

from __future__ import annotations

import uuid
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from gridcover.io.outputs import write_meta

LON0, LAT0, U = 104.0, 30.5, 1.0 / 1024


def xy(x: float, y: float) -> tuple[float, float]:
    return LON0 + x * U, LAT0 + y * U


def box(x0, y0, x1, y1):
    return shapely.box(*xy(x0, y0), *xy(x1, y1))


def layers() -> dict[str, gpd.GeoDataFrame]:
    def frame(rows):
        return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")

    g5 = shapely.MultiPolygon([shapely.Polygon(box(5, 0, 9, 4).exterior.coords, [box(6, 1, 8, 3).exterior.coords]),
                               box(10, 0, 11, 1)])
    grid_rows = [("G2", box(0, 0, 2, 2), "张伟"), ("G10", box(2, 0, 4, 2), "王芳"), ("G3", box(0, 2, 2, 4), "李娜"),
                 ("G4", box(2, 2, 4, 4), "刘洋"), ("G5", g5, "陈静"), ("G6", box(6, 1, 7, 3), "")]
    grids = frame([{"id": g, "name": f"{g}网格", "community_id": "C1", "worker_name": w or None,
                    "worker_phone": f"028-8000-{i:04d}" if w else None, "info_officer_name": "赵信",
                    "households": 99, "elderly_alone": 7, "geometry": geom}
                   for i, (g, geom, w) in enumerate(grid_rows)])
    communities = frame([{"id": "C1", "name": "红星社区", "street_id": "S1", "geometry": box(0, 0, 11, 4)}])
    streets = frame([{"id": "S1", "name": "督院街街道", "district": "锦江区", "geometry": box(0, 0, 11, 4)}])
    estates = frame([
        {"id": "E1", "name": "锦华苑", "address": "红星路二段12号", "geometry": box(0.25, 2.25, 1.75, 3.75)},
        {"id": "E2", "name": "锦华苑", "address": "东大街5号", "geometry": box(2.25, 2.25, 3.75, 3.75)},
        {"id": "E3", "name": "翠苑", "address": "玉林路8号", "geometry": box(0.25, 0.25, 1.5, 1.5)},
    ])
    buildings = frame([
        {"id": "B1", "estate_id": None, "name": "1栋", "address": "人民南路3号 1栋", "geometry": box(1.75, 0.5, 2.5, 1.0)},
        {"id": "B2", "estate_id": "E1", "name": "3栋", "address": "红星路二段12号 锦华苑 3栋",
         "geometry": box(0.5, 2.5, 1.0, 3.0)},
        {"id": "B3", "estate_id": "E2", "name": "3栋", "address": "东大街5号 锦华苑 3栋", "geometry": box(2.5, 2.5, 3.0, 3.0)},
        {"id": "B4", "estate_id": "E1", "name": "5栋", "address": "红星路二段12号 锦华苑 5栋",
         "geometry": box(1.25, 2.5, 1.5, 3.0)},
        {"id": "B5", "estate_id": "E3", "name": "A座", "address": "玉林路8号 翠苑 A座", "geometry": box(0.5, 0.5, 1.0, 1.0)},
    ])
    households = frame([
        {"id": "H1", "address": "成都市锦江区督院街街道 红星路二段12号 锦华苑 3栋 2单元 501", "building_id": "B2",
         "persons": 1, "elderly_alone": True, "geometry": shapely.Point(xy(0.75, 2.75))},
        {"id": "H2", "address": "成都市锦江区 玉林路8号 翠苑 A座 1单元 302", "building_id": "B5", "persons": 2,
         "elderly_alone": False, "geometry": shapely.Point(xy(0.75, 0.75))},
    ])
    return {"grids": grids, "communities": communities, "streets": streets, "estates": estates,
            "buildings": buildings, "households": households}


def write_workspace(folder: Path, frames: dict[str, gpd.GeoDataFrame] | None = None) -> Path:
    """Write the layers as a workspace folder (workspace.gpkg with a gridcover_meta table)."""
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = folder / "workspace.gpkg"
    for name, frame in (frames or layers()).items():
        pyogrio.write_dataframe(frame, gpkg, layer=name, driver="GPKG", append=gpkg.exists())
    write_meta(gpkg, {"workspace_id": uuid.uuid4().hex, "version": "1"})
    return folder
