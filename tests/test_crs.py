"""GCJ-02 / BD-09 conversions: round trips over all of China within 0.05 m, and CRS parsing."""

import numpy as np
import pyproj
import pytest

from geo.crs import (bd09_to_wgs84, gcj02_to_bd09, gcj02_to_wgs84, local_metric_crs, out_of_china, parse_crs,
                     wgs84_to_bd09, wgs84_to_gcj02)

GEOD = pyproj.Geod(ellps="WGS84")


def _china_grid():
    lon, lat = np.meshgrid(np.linspace(73.7, 134.7, 400), np.linspace(18.2, 53.5, 300))
    return lon.ravel(), lat.ravel()


@pytest.mark.parametrize("forward,inverse", [(wgs84_to_gcj02, gcj02_to_wgs84), (wgs84_to_bd09, bd09_to_wgs84)])
def test_round_trip_over_china_is_within_5_cm(forward, inverse):
    lon, lat = _china_grid()
    back_lon, back_lat = inverse(*forward(lon, lat))
    _, _, dist = GEOD.inv(lon, lat, back_lon, back_lat)
    assert dist.max() < 0.05
    assert dist.max() < 1e-4  # in fact far better: the iteration stops at 1e-10 degrees


def test_offsets_have_the_documented_size():
    lon, lat = _china_grid()
    _, _, gcj = GEOD.inv(lon, lat, *wgs84_to_gcj02(lon, lat))
    _, _, bd = GEOD.inv(lon, lat, *wgs84_to_bd09(lon, lat))
    assert 100 < gcj.mean() < 700  # hundreds of metres
    assert 700 < bd.mean() < 1500  # about 1.1 km


def test_known_point_in_chengdu():
    # Tianfu Square: the offset pushes points north-east by about 240 m / 300 m here
    lon, lat = wgs84_to_gcj02(104.0657, 30.6595)
    assert lon == pytest.approx(104.06821, abs=1e-4) and lat == pytest.approx(30.65708, abs=1e-4)
    blon, blat = gcj02_to_bd09(lon, lat)
    assert blon - lon == pytest.approx(0.0065, abs=0.002) and blat - lat == pytest.approx(0.006, abs=0.002)


def test_outside_china_gcj02_is_identity():
    lon, lat = np.array([2.35]), np.array([48.85])  # Paris
    assert out_of_china(lon, lat).all()
    assert np.allclose(wgs84_to_gcj02(lon, lat), (lon, lat))
    assert np.allclose(gcj02_to_wgs84(lon, lat), (lon, lat))


@pytest.mark.parametrize("text,expected", [("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("bd09", "bd09")])
def test_parse_offset_datums(text, expected):
    assert parse_crs(text).offset == expected


@pytest.mark.parametrize("text,epsg", [("EPSG:4490", 4490), ("4490", 4490), ("cgcs2000", 4490), ("wgs84", 4326), ("EPSG:4547", 4547)])
def test_parse_epsg(text, epsg):
    assert parse_crs(text).crs.to_epsg() == epsg


def test_unknown_crs_is_a_readable_error():
    with pytest.raises(ValueError, match="unknown coordinate system 'gcj03'"):
        parse_crs("gcj03")


def test_metric_crs_for_chengdu_is_utm_48n():
    assert local_metric_crs(104.07, 30.66).to_epsg() == 32648
