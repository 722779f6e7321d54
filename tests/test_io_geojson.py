"""gridcover.io.geojson: a point layer written by arrow is the very bytes GDAL's GeoJSON driver writes."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely

from gridcover.io.geojson import gdal_double, write_point_geojson
from gridcover.io.outputs import _plain

OPTIONS = {"RFC7946": "YES", "COORDINATE_PRECISION": 7, "WRITE_NAME": "NO"}


def _gdal(frame: gpd.GeoDataFrame, path) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(_plain(frame), path, driver="GeoJSON", layer_options=OPTIONS)
    return path.read_bytes()


def _coordinates(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """Random coordinates, a third of them a run of 0s or 9s away from a rounder number (GDAL rounds those)."""
    values = rng.uniform(low, high, n)
    runs = rng.random(n)
    base = np.round(values, rng.integers(0, 6))
    values = np.where(runs < 0.33, base + rng.choice([-1, 1], n) * rng.integers(1, 10, n) * 1e-7, values)
    values = np.where((runs > 0.33) & (runs < 0.45), base, values)
    return np.clip(values, low, high)


def _tricky(n: int = 3000, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    text = np.array(["H1", 'say "hi"', "back\\slash", "a/b", "tab\there", "line\nbreak", "太平新村 1栋", "😀", "",
                     "cr\rff\fbs\b", None], dtype=object)
    floats = np.concatenate([rng.normal(0, 100, n // 2), np.round(rng.uniform(0, 60, n - n // 2), 1)])
    floats[:12] = [0.1 + 0.2, 1e20, 1e-20, -0.0, 0.0, np.nan, 6.0, 5e-324, 1.7976931348623157e308, -2.5, 1e16, 123456789.0]
    lists = [[], None, ["a"], ["community_service", "shop"], ['q"uote', "s/l"]]
    x, y = _coordinates(rng, n, 73.0, 135.0), _coordinates(rng, n, -89.9, 89.9)
    x[:6], y[:6] = [0.0, -0.0, -1e-8, 179.99999995, 104.0000007, 118.5999998], [0.0, 30.6000001, -0.0, 89.9999999, 30.0, 1.5]
    geometry = shapely.points(x, y)
    geometry[rng.random(n) < 0.05] = None
    frame = gpd.GeoDataFrame({
        "id": [f"H{i:06d}" for i in range(n)],
        "text": text[rng.integers(0, len(text), n)],
        "arrow_text": pd.array(text[rng.integers(0, len(text), n)], dtype="string[pyarrow]"),
        "persons": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(-5, 10**12, n)), dtype="Int64"),
        "count": rng.integers(0, 9, n),
        "flag": rng.random(n) < 0.5,
        "maybe": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
        "minutes": floats[rng.permutation(n)],
        "minutes_elderly": np.round(rng.uniform(0, 60, n) * 1.08, 1),
        "missing": pd.Series([lists[i] for i in rng.integers(0, len(lists), n)],
                             dtype=pd.ArrowDtype(pa.list_(pa.string()))),
        'odd "name" / 名': rng.random(n),
    }, geometry=geometry, crs=4326)
    return frame


def test_a_point_layer_is_written_as_gdal_writes_it(tmp_path):
    frame = _tricky()
    assert write_point_geojson(frame, tmp_path / "ours.geojson")
    assert (tmp_path / "ours.geojson").read_bytes() == _gdal(frame, tmp_path / "gdal.geojson")


def test_a_layer_of_more_rows_than_a_chunk_is_joined_as_gdal_writes_it(tmp_path, monkeypatch):
    import gridcover.io.geojson as geojson

    monkeypatch.setattr(geojson, "CHUNK_ROWS", 700)
    frame = _tricky(2500, seed=3)
    assert write_point_geojson(frame, tmp_path / "ours.geojson")
    assert (tmp_path / "ours.geojson").read_bytes() == _gdal(frame, tmp_path / "gdal.geojson")


def test_an_empty_layer_and_a_layer_without_fields_are_gdals_bytes(tmp_path):
    empty = _tricky().iloc[:0]
    assert write_point_geojson(empty, tmp_path / "empty.geojson")
    assert (tmp_path / "empty.geojson").read_bytes() == _gdal(empty, tmp_path / "gdal_empty.geojson")
    bare = gpd.GeoDataFrame(geometry=gpd.points_from_xy([104.1, 104.2], [30.5, 30.6]), crs=4326)
    assert write_point_geojson(bare, tmp_path / "bare.geojson")
    assert (tmp_path / "bare.geojson").read_bytes() == _gdal(bare, tmp_path / "gdal_bare.geojson")


@pytest.mark.parametrize("change", ["polygon", "metric", "inf", "control", "wrap", "date"])
def test_what_the_writer_does_not_know_is_left_to_gdal(tmp_path, change):
    frame = _tricky(50)
    if change == "polygon":
        frame.loc[0, "geometry"] = shapely.box(104, 30, 104.1, 30.1)
    elif change == "metric":
        frame = frame.to_crs(32648)
    elif change == "inf":
        frame.loc[3, "minutes"] = np.inf
    elif change == "control":
        frame.loc[3, "text"] = "bell\x07"
    elif change == "wrap":
        frame.loc[3, "geometry"] = shapely.Point(190.0, 30.0)
    else:
        frame["when"] = pd.Timestamp("2026-11-29")
    assert not write_point_geojson(frame, tmp_path / "ours.geojson")
    assert not (tmp_path / "ours.geojson").exists()


def test_float_properties_print_as_gdal_prints_them():
    assert [gdal_double(v) for v in (5.8, 6.0, 0.30000000000000004, 1e20, -0.0)] == \
        ["5.8", "6.0", "0.3", "1e+20", "-0.0"]
