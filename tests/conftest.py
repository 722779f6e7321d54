"""Shared fixtures: a tiny hand-drawn district whose every answer is known.

Drawn in metres (UTM 48N, Chengdu) and written as WGS-84 GeoJSON, like a user's data:

    street S1 = C1 (x 0–200) + C2 (x 200–400, ur_code 112), y 0–200
    C1: G1 x 0–100 | G2 x 100–200, y 0–100 | G3 x 110–200, y 100–200 → a 10 m gap x 100–110, y 100–200
    C2: G4 x 200–300 | G5 x 290–410, y 0–120 → overlap x 290–300, G5 reaches 10 m outside,
        and x 300–400, y 120–200 is covered by no grid (the village)
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.crs import wgs84_to_gcj02

ORIGIN = (404000.0, 3392000.0)  # UTM 48N, central Chengdu
UTM = "EPSG:32648"


def _box(x0, y0, x1, y1):
    return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)


def _pt(x, y):
    return shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y)


def tiny_layers() -> dict[str, gpd.GeoDataFrame]:
    """The tiny district's layers in WGS-84."""
    def frame(rows):
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs("EPSG:4326")

    streets = frame([{"id": "S1", "name": "测试街道", "geometry": _box(0, 0, 400, 200)}])
    communities = frame([
        {"id": "C1", "name": "一社区", "street_id": "S1", "ur_code": "111", "geometry": _box(0, 0, 200, 200)},
        {"id": "C2", "name": "二村", "street_id": "S1", "ur_code": "112", "geometry": _box(200, 0, 400, 200)},
    ])
    grid_rows = [
        ("G1", "C1", (0, 0, 100, 200), "张伟"),
        ("G2", "C1", (100, 0, 200, 100), "王芳"),
        ("G3", "C1", (110, 100, 200, 200), "李娜"),
        ("G4", "C2", (200, 0, 300, 200), "刘洋"),
        ("G5", "C2", (290, 0, 410, 120), ""),
    ]
    grids = frame([{"id": g, "name": f"{g}网格", "community_id": c, "worker_name": w or None,
                    "worker_phone": "028-8000-000" + g[-1] if w else None, "geometry": _box(*b)}
                   for g, c, b, w in grid_rows])
    building_rows = [
        ("B1", (10, 10, 30, 30)),      # inside G1
        ("B2", (90, 40, 120, 60)),     # split: 1/3 in G1, 2/3 in G2
        ("B3", (292, 50, 298, 60)),    # in the G4/G5 overlap
        ("B4", (102, 150, 108, 160)),  # in the C1 gap
        ("B5", (50, 150, 70, 170)),    # inside G1
        ("B6", (350, 150, 360, 160)),  # village house no grid covers
    ]
    buildings = frame([{"id": b, "name": f"{i + 1}栋", "address": f"测试路{i + 1}号", "floors": 6, "geometry": _box(*box)}
                       for i, (b, box) in enumerate(building_rows)])
    hh = [
        ("H1", _pt(20, 20), None, 3, {}),
        ("H2", _pt(110, 50), None, 2, {"elderly_alone": True}),
        ("H3", _pt(295, 55), None, 1, {"mental_disorder": True}),
        ("H4", _pt(105, 155), None, 4, {}),
        ("H5", _pt(45, 160), None, 2, {}),
        ("H6", _pt(60, 100), None, 1, {"migrant": True}),
        ("H7", None, "B1", 2, {"elderly_alone": True}),
        ("H8", None, None, 1, {}),
        ("H9", _pt(355, 155), None, 5, {"rental": True}),
        ("H10", _pt(100, 20), None, 1, {}),
    ]
    households = frame([{
        "id": h, "address": f"测试路 {h}", "building_id": b, "persons": p,
        "elderly_alone": f.get("elderly_alone", False), "child_in_difficulty": False,
        "mental_disorder": f.get("mental_disorder", False), "migrant": f.get("migrant", False),
        "rental": f.get("rental", False), "last_visit": "2026-11-01", "geometry": g,
    } for h, g, b, p, f in hh])
    return {"streets": streets, "communities": communities, "grids": grids, "buildings": buildings, "households": households}


def tiny_visits():
    """The tiny district's visit log (走访记录) as a table, judged at 2026-11-30 over a 5-week window (ISO weeks
    W45–W48 and November complete): H2 (elderly alone) kept W45, W46, W48 and missed W47; H7 (elderly alone)
    only phoned (no week kept, a long gap); H3 (mental disorder) visited in November."""
    import pandas as pd

    return pd.DataFrame({
        "household_id": ["H2", "H2", "H2", "H7", "H7", "H3"],
        "visited_at": ["2026-11-03 09:00", "2026-11-10", "2026-11-24 16:30", "2026-11-04", "2026-11-20 10:00",
                       "2026-11-05"],
        "worker": ["王芳", "王芳", "王芳", "张伟", "张伟", "刘洋"],
        "kind": ["home", "入户", "home", "phone", "电话", ""],
        "outcome": ["seen", "seen", "seen", "answered", "answered", "seen"],
        "note": [None, "门口有积水", None, None, None, None],
    })


#: What the assignment must say about each tiny household.
TINY_EXPECTED = {
    "H1": ("B1", "G1", "ok"),
    "H2": ("B2", "G2", "building_split"),
    "H3": ("B3", "G4", "in_overlapping_grids"),
    "H4": ("B4", None, "outside_all_grids"),
    "H5": ("B5", "G1", "snapped_to_building"),
    "H6": (None, "G1", "no_building"),
    "H7": ("B1", "G1", "ok"),
    "H8": (None, None, "no_location"),
    "H9": ("B6", None, "outside_all_grids"),
    "H10": (None, "G1", "no_building"),
}


def write_layers(layers: dict[str, gpd.GeoDataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in layers.items():
        frame.to_file(folder / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
    return folder


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    """A folder holding the tiny district as GeoJSON."""
    return write_layers(tiny_layers(), tmp_path / "tiny")


def rewrite_geojson(path: Path, edit) -> None:
    """Load a GeoJSON file as JSON, let ``edit`` change it in place, write it back."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def to_gcj02(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    from geo.crs import transform_geometries

    out = frame.copy()
    present = ~out.geometry.isna()
    out.loc[present, "geometry"] = transform_geometries(out.geometry[present].to_numpy(), wgs84_to_gcj02)
    return out


@pytest.fixture(scope="session")
def sample_analysis(tmp_path_factory):
    """The sample district analysed once per test session (visits judged on 2026-11-29), and its output folder."""
    from datetime import date

    from gridcover.engines.single import analyze
    from gridcover.io.outputs import write_outputs

    analysis = analyze("sample_geojson", reference_date=date(2026, 11, 29))
    out = write_outputs(analysis, tmp_path_factory.mktemp("sample") / "out")
    return analysis, out
