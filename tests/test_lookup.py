"""Point lookups: grid, worker, building and estate of a coordinate, and agreement with PostGIS ST_Covers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo.assign import _rank, points_in_polygons
from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from geo.lookup import (build_index, columns_to_records, index_arrays, index_of_arrays, lookup_addresses, lookup_point,
                        lookup_points)
from geo.errors import InputError
from gridcover.store.blindspot_log import BlindSpotLog
from lookup_data import layers, xy

pytest_plugins = ["pg_fixture"]


@pytest.fixture(scope="module")
def city():
    return layers()


@pytest.fixture(scope="module")
def index(city):
    return build_index(city["grids"], buildings=city["buildings"], estates=city["estates"],
                       communities=city["communities"], streets=city["streets"], households=city["households"],
                       version=7)


def look(index, *units, crs="wgs84"):
    lon, lat = np.array([xy(*u) for u in units]).T
    return lookup_points(index, lon, lat, crs=crs)


def test_a_point_inside_a_grid_gets_its_grid_worker_street_and_version(index):
    r = columns_to_records(look(index, (0.3, 3.9)))[0]
    assert (r["grid_id"], r["grid_name"], r["community_id"], r["street_id"]) == ("G3", "G3网格", "C1", "S1")
    assert (r["worker_name"], r["worker_phone"], r["version"], r["covered"]) == ("李娜", "028-8000-0002", 7, True)
    assert r["method"] == "grid" and r["estate_id"] is None and r["building_id"] is None


def test_the_answer_carries_no_household_data(index):
    r = columns_to_records(look(index, (0.75, 2.75)))[0]
    assert r["building_id"] == "B2" and r["estate_id"] == "E1"
    assert not {"households", "elderly_alone", "persons", "info_officer_name", "address"} & set(r)
    assert "H1" not in str(r)


def test_gcj02_and_bd09_inputs_land_in_the_same_grid_as_their_wgs84_originals(index):
    rng = np.random.default_rng(3)
    units = np.column_stack([rng.uniform(0, 11, 300), rng.uniform(0, 4, 300)])
    lon, lat = np.array([xy(*u) for u in units]).T
    wgs = lookup_points(index, lon, lat)
    for convert, crs in ((wgs84_to_gcj02, "gcj02"), (wgs84_to_bd09, "bd09")):
        other = lookup_points(index, *convert(lon, lat), crs=crs)
        assert list(other["grid_id"]) == list(wgs["grid_id"])
        assert np.allclose(other["lon_wgs84"], lon, atol=1e-7) and np.allclose(other["lat_wgs84"], lat, atol=1e-7)
    shifted = lookup_points(index, *wgs84_to_gcj02(lon, lat))  # an offset point read as WGS-84 lands elsewhere
    assert list(shifted["grid_id"]) != list(wgs["grid_id"])


def test_points_on_a_shared_edge_and_a_shared_vertex_take_the_smallest_id(index):
    r = look(index, (2, 1.5), (2, 2), (0, 2), (4, 3))
    assert list(r["grid_id"]) == ["G10", "G10", "G2", "G4"]  # "G10" < "G2" as text
    assert list(r["method"]) == ["boundary"] * 4


def test_a_point_in_a_building_across_a_grid_line_takes_the_buildings_grid(index):
    r = look(index, (1.9, 0.75))  # inside G2, but in B1 which lies 2/3 in G10
    assert (r["grid_id"][0], r["building_id"][0], r["method"][0]) == ("G10", "B1", "building")


def test_points_in_the_hole_of_a_multipolygon_grid(index):
    r = look(index, (6.5, 2), (7.5, 2), (5.5, 0.5), (10.5, 0.5), (8, 2))
    assert list(r["grid_id"]) == ["G6", None, "G5", "G5", "G5"]  # (8, 2) is on the hole's ring: covered
    assert list(r["covered"]) == [True, False, True, True, True]
    assert r["nearest_grid_id"][1] in ("G5", "G6") and 40 < r["distance_m"][1] < 50


def test_a_point_outside_every_grid_is_not_covered_with_nearest_grid_and_metres(index):
    r = columns_to_records(look(index, (12, 0.5)))[0]
    assert r["covered"] is False and r["grid_id"] is None and r["worker_name"] is None
    assert r["nearest_grid_id"] == "G5" and r["method"] == "not_covered"
    assert r["distance_m"] == pytest.approx(1024 ** -1 * 111_320 * np.cos(np.radians(30.5)), rel=0.01)


def test_an_unstaffed_grid_answers_without_a_worker(index):
    r = columns_to_records(look(index, (6.5, 1.5)))[0]
    assert r["grid_id"] == "G6" and r["worker_name"] is None and r["worker_phone"] is None


def test_bad_coordinates_and_crs_are_refused_with_the_parameter_named(index):
    with pytest.raises(InputError, match="crs"):
        lookup_points(index, [104.0], [30.5], crs="EPSG:32648")
    with pytest.raises(InputError, match="item 1"):
        lookup_points(index, [104.0, 200.0], [30.5, 30.5])


def test_the_lookup_agrees_with_the_household_assignment_on_loose_points(index, city):
    rng = np.random.default_rng(5)
    units = np.vstack([np.column_stack([rng.uniform(-1, 12, 2000), rng.uniform(-1, 5, 2000)]),
                       [(x, y) for x in range(12) for y in range(5)]])
    lon, lat = np.array([xy(*u) for u in units]).T
    no_buildings = build_index(city["grids"], communities=city["communities"])
    got = lookup_points(no_buildings, lon, lat)["grid_id"]
    ids = city["grids"]["id"].to_numpy()
    best, _ = points_in_polygons(shapely.points(lon, lat), city["grids"].geometry.to_numpy(), tie_rank=_rank(ids))
    assert list(got) == [ids[b] if b >= 0 else None for b in best]


def test_addresses_lead_to_the_grid_of_their_building_or_to_candidates(index):
    r = columns_to_records(lookup_addresses(index, ["红星路二段12号锦华苑三号楼2单元501", "锦华苑3栋", "火星路1号"]))
    assert (r[0]["grid_id"], r[0]["building_id"], r[0]["method"]) == ("G3", "B2", "address_building")
    assert r[1]["method"] == "address_ambiguous" and r[1]["grid_id"] is None and r[1]["covered"] is None
    assert {(c["building_id"], c["grid_id"]) for c in r[1]["candidates"]} == {("B2", "G3"), ("B3", "G4")}
    assert r[2]["method"] == "address_not_found" and r[2]["grid_id"] is None


def test_not_covered_answers_are_counted_as_blind_spots_without_coordinates(index, tmp_path):
    log = BlindSpotLog(tmp_path / BlindSpotLog.FILE)
    assert log.record(look(index, (12, 0.5), (12, 0.6), (1, 1), (7.5, 2))) == 3
    log.record(look(index, (12, 0.5)))
    counts = log.counts()
    assert log.total() == 4
    assert set(counts.columns) == {"version", "nearest_grid_id", "h3", "count", "first_seen", "last_seen", "reason"}
    assert counts.groupby("nearest_grid_id")["count"].sum().to_dict() == {"G5": 3, "G6": 1}


# ------------------------------------------------------------------ PostGIS agreement
def _test_points(grids, n_random: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points around the grids plus every vertex and every edge midpoint of them."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = grids.total_bounds
    dx, dy = (x1 - x0) * 0.05, (y1 - y0) * 0.05
    rx, ry = rng.uniform(x0 - dx, x1 + dx, n_random), rng.uniform(y0 - dy, y1 + dy, n_random)
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()))
    coords = shapely.get_coordinates(rings)
    mids = (shapely.get_coordinates(rings)[:-1] + shapely.get_coordinates(rings)[1:]) / 2.0
    pts = np.vstack([np.column_stack([rx, ry]), coords, mids])
    return pts[:, 0], pts[:, 1]


def _postgis_answers(dsn: str, grids, lon: np.ndarray, lat: np.ndarray) -> list:
    import psycopg

    with psycopg.connect(dsn) as db:
        db.execute("CREATE TEMP TABLE g (id text, geom geometry(MultiPolygon, 4326))")
        with db.cursor().copy("COPY g (id, geom) FROM STDIN") as copy:
            multi = [shapely.MultiPolygon([p]) if p.geom_type == "Polygon" else p for p in grids.geometry]
            for gid, wkb in zip(grids["id"], shapely.to_wkb(multi, hex=True)):
                copy.write_row((gid, f"SRID=4326;{wkb}"))
        db.execute("CREATE INDEX ON g USING gist (geom)")
        db.execute("CREATE TEMP TABLE p (i int, geom geometry(Point, 4326))")
        with db.cursor().copy("COPY p (i, geom) FROM STDIN") as copy:
            for i, wkb in enumerate(shapely.to_wkb(shapely.points(lon, lat), hex=True)):
                copy.write_row((i, f"SRID=4326;{wkb}"))
        rows = db.execute("""
            SELECT DISTINCT ON (p.i) p.i, g.id FROM p LEFT JOIN g ON ST_Covers(g.geom, p.geom)
            ORDER BY p.i, ST_Contains(g.geom, p.geom) DESC, g.id COLLATE "C" """).fetchall()
    out = [None] * len(lon)
    for i, gid in rows:
        out[i] = gid
    return out


def test_batch_answers_agree_with_postgis_st_covers_and_the_tie_rule(postgis_dsn, city):
    from tools.synthetic import make_district

    cases = [city]
    cases.append(make_district(households=0, buildings=400, grids=40, seed=2))
    for case in cases:
        grids = case["grids"]
        lon, lat = _test_points(grids, 3000, seed=1)
        index = build_index(grids, communities=case["communities"])
        ours = list(lookup_points(index, lon, lat)["grid_id"])
        theirs = _postgis_answers(postgis_dsn, grids, lon, lat)
        differ = [(i, lon[i], lat[i], ours[i], theirs[i]) for i in range(len(lon)) if ours[i] != theirs[i]]
        assert not differ, f"{len(differ)} of {len(lon)} points differ, e.g. {differ[:5]}"
        single = [lookup_point(index, float(a), float(b))["grid_id"] for a, b in zip(lon, lat)]
        differ = [(i, ours[i], single[i]) for i in range(len(lon)) if single[i] != theirs[i]]
        assert not differ, f"{len(differ)} single lookups differ from PostGIS, e.g. {differ[:5]}"
        boundary = lookup_points(index, lon, lat)["method"] == "boundary"
        assert boundary.sum() >= 50  # the vertices and midpoints really are on boundaries


# ---------------------------------------------------------------- what a person at the hotline reads
def test_an_answer_names_the_community_street_estate_and_building_beside_their_ids(index):
    r = columns_to_records(look(index, (0.75, 2.75)))[0]
    assert (r["community_id"], r["community_name"], r["street_id"], r["street_name"]) == \
        ("C1", "红星社区", "S1", "督院街街道")
    assert (r["estate_id"], r["estate_name"], r["building_id"], r["building_name"]) == ("E1", "锦华苑", "B2", "3栋")
    assert r["building_address"] == "红星路二段12号 锦华苑 3栋"
    assert (r["problem"], r["message"], r["message_en"]) == (None, None, None)


def test_a_point_in_no_grid_says_so_in_chinese_naming_the_nearest_grid(index):
    r = columns_to_records(look(index, (12, 0.5)))[0]
    assert (r["covered"], r["nearest_grid_id"], r["nearest_grid_name"], r["problem"]) == \
        (False, "G5", "G5网格", "outside_grids")
    metres = f"{r['distance_m']:.0f}"
    assert r["message"] == f"该位置不在任何网格内（盲区），最近的网格是G5网格，相距约{metres}米"
    assert r["message_en"].startswith("the place is in no grid (a blind spot); the nearest grid is G5网格")


def test_swapped_lat_and_lon_are_refused_saying_so_without_numpy_reprs(index):
    from geo.problems import ProblemError

    lon, lat = xy(0.3, 3.9)
    with pytest.raises(ProblemError) as err:
        lookup_points(index, [lat], [lon])
    text = str(err.value)
    assert "lat and lon look swapped" in text and f"lat {lon:.10g}" in text and "np.float64" not in text
    assert err.value.as_json()["problem"] == "lonlat_swapped_out_of_range"
    assert err.value.as_json()["message"].startswith("经纬度似乎写反了")
    with pytest.raises(ProblemError, match=r"lon/lat must be numbers .*\(got lon=200, lat=30.5\)"):
        lookup_points(index, [200.0], [30.5])


def test_a_valid_but_swapped_coordinate_outside_the_grids_is_flagged():
    """West of 90° E (Xinjiang) a swapped pair is still a valid coordinate: the answer says it looks swapped."""
    import geopandas as gpd

    grids = gpd.GeoDataFrame({"id": ["G1"], "name": ["一网格"], "community_id": ["C1"]},
                             geometry=[shapely.box(87.5, 43.7, 87.7, 43.9)], crs=4326)
    r = columns_to_records(lookup_points(build_index(grids), [43.8], [87.6]))[0]
    assert (r["covered"], r["problem"]) == (False, "lonlat_swapped")
    assert r["message"].startswith("经纬度似乎写反了") and "lat and lon look swapped" in r["message_en"]


def test_a_building_the_estate_lacks_is_answered_for_the_estate_with_a_warning(index):
    r = columns_to_records(lookup_addresses(index, ["红星路二段12号锦华苑9栋"]))[0]
    assert (r["method"], r["estate_id"], r["estate_name"], r["grid_id"], r["building_id"]) == \
        ("address_estate", "E1", "锦华苑", "G3", None)
    assert r["score"] < 1.0 and r["problem"] == "building_not_found"
    assert r["message"] == "锦华苑没有9栋，已按小区回答（该小区有：3栋、5栋）"
    assert r["message_en"] == "锦华苑 has no building 9栋: answered for the estate (its buildings: 3栋、5栋)"


def test_an_address_in_the_grid_gap_is_not_covered_with_the_nearest_grid(city):
    import geopandas as gpd
    import pandas as pd

    from lookup_data import box

    gap = gpd.GeoDataFrame([{"id": "B9", "estate_id": None, "name": "1栋", "address": "玉林北路1号 1栋",
                             "geometry": box(7.1, 1.5, 7.4, 2.5)}], geometry="geometry", crs=4326)
    buildings = pd.concat([city["buildings"], gap], ignore_index=True)
    index = build_index(city["grids"], buildings=buildings, estates=city["estates"], communities=city["communities"],
                        streets=city["streets"])
    by_address = columns_to_records(lookup_addresses(index, ["玉林北路1号1栋"]))[0]
    lon, lat = xy(7.25, 2.0)
    by_point = columns_to_records(lookup_points(index, [lon], [lat]))[0]
    assert (by_address["covered"], by_address["building_id"], by_address["problem"]) == (False, "B9", "outside_grids")
    assert by_address["nearest_grid_id"] == by_point["nearest_grid_id"] == "G6"  # as a coordinate there gets it
    assert by_address["distance_m"] > 0 and "最近的网格是G6网格" in by_address["message"]


def test_an_ambiguous_address_lists_named_candidates(index):
    r = columns_to_records(lookup_addresses(index, ["锦华苑3栋"]))[0]
    assert r["problem"] == "address_ambiguous" and r["message"].startswith("该地址与多个楼栋或小区相近")
    assert {(c["estate_name"], c["building_name"], c["grid_name"]) for c in r["candidates"]} == \
        {("锦华苑", "3栋", "G3网格"), ("锦华苑", "3栋", "G4网格")}


# ---------------------------------------------------------------- one at a time, and saved
def _overlapping_grids():
    """A and Z overlap; the point (2, 1) is on A's east edge and inside Z; ten grids far away rank between."""
    import geopandas as gpd

    from lookup_data import box

    rows = [("A", box(0, 0, 2, 2)), ("Z", box(1, 0, 4, 2))] + [(f"M{i}", box(20 + i, 0, 20.5 + i, 1)) for i in range(10)]
    return gpd.GeoDataFrame({"id": [r[0] for r in rows], "name": [r[0] for r in rows]},
                            geometry=[r[1] for r in rows], crs=4326)


def test_a_point_on_one_grids_edge_and_inside_another_takes_the_one_holding_it_inside():
    index = build_index(_overlapping_grids())
    lon, lat = xy(2, 1)
    many = lookup_points(index, np.full(3000, lon), np.full(3000, lat))  # a large batch: the other code path
    assert lookup_point(index, lon, lat)["grid_id"] == "Z"
    assert lookup_points(index, [lon], [lat])["grid_id"][0] == "Z" and set(many["grid_id"]) == {"Z"}
    assert lookup_point(index, lon, lat)["method"] == "grid"


def test_a_single_point_swapped_or_in_no_grid_is_answered_as_in_a_batch(index):
    import geopandas as gpd

    for lon, lat in (xy(12, 0.5), xy(7.5, 2.0), xy(-3, -3)):
        one = lookup_point(index, lon, lat)
        assert one == columns_to_records(lookup_points(index, [lon], [lat]))[0] and one["covered"] is False
    xinjiang = build_index(gpd.GeoDataFrame({"id": ["G1"], "name": ["一网格"]},
                                            geometry=[shapely.box(87.5, 43.7, 87.7, 43.9)], crs=4326))
    one = lookup_point(xinjiang, 43.8, 87.6)
    assert one == columns_to_records(lookup_points(xinjiang, [43.8], [87.6]))[0]
    assert one["problem"] == "lonlat_swapped" and "43.8" in one["message_en"]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
def test_a_single_lookup_answers_exactly_as_the_batch_does(index, city, crs):
    lon, lat = _test_points(city["grids"], 600, seed=3)
    lon = np.r_[lon, shapely.get_coordinates(city["buildings"].geometry.to_numpy())[:, 0]]
    lat = np.r_[lat, shapely.get_coordinates(city["buildings"].geometry.to_numpy())[:, 1]]
    if crs == "gcj02":
        lon, lat = wgs84_to_gcj02(lon, lat)
    batch = columns_to_records(lookup_points(index, lon, lat, crs=crs))
    covered = 0
    for i in range(len(lon)):
        one = lookup_point(index, float(lon[i]), float(lat[i]), crs=crs)
        covered += one["covered"]
        assert one == batch[i] and list(one) == list(batch[i])
    assert 300 < covered < len(lon) and lookup_point(index, float("nan"), 30.5) is None


def test_the_index_saved_as_arrays_answers_exactly_as_the_one_built(index, city):
    again = index_of_arrays(index_arrays(index))
    lon, lat = _test_points(city["grids"], 500, seed=4)
    for crs in ("wgs84", "bd09", "cgcs2000"):
        assert columns_to_records(lookup_points(again, lon, lat, crs=crs)) == \
            columns_to_records(lookup_points(index, lon, lat, crs=crs))
    asked = ["锦华苑三号楼2单元501", "红星路二段12号锦华苑3栋", "东大街5号 锦华苑 3栋", "锦华苑9栋", "玉林路8号翠苑A座",
             "成都市锦江区督院街街道 红星路二段12号 锦华苑 5栋", "长春市朝阳区XX路1号", "火星路1号", ""]
    assert columns_to_records(lookup_addresses(again, asked)) == columns_to_records(lookup_addresses(index, asked))
    assert again.version == index.version == 7
    assert all(np.asarray(v).dtype != object for v in index_arrays(index).values())  # nothing needs a pickle
