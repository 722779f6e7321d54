"""Old estates and urban-rural fringes: by year built, by urban-rural code, by areas polygons."""

import geopandas as gpd
import numpy as np
import shapely

from geo.areas import building_years, household_zones

CRS = "EPSG:32648"


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)


BUILDINGS = _gdf({"id": ["B1", "B2", "B3", "B4"], "estate_id": ["E1", "E2", None, "E1"], "year_built": [None, 2005, 1998, 2010]},
                 [shapely.box(i * 100, 0, i * 100 + 20, 20) for i in range(4)])
ESTATES = _gdf({"id": ["E1", "E2"], "year_built": [1995, 1990]}, [shapely.box(0, 0, 50, 50), shapely.box(90, 0, 150, 50)])
COMMUNITIES = _gdf({"id": ["C1", "C2"], "ur_code": ["111", "112"]}, [shapely.box(0, 0, 1000, 500), shapely.box(0, 500, 1000, 1000)])


def test_a_building_takes_its_estates_year_when_it_has_none():
    years = building_years(BUILDINGS, ESTATES)
    assert years.to_dict() == {"B1": 1995.0, "B2": 2005.0, "B3": 1998.0, "B4": 2010.0}


def test_zones_by_year_code_and_area_polygons():
    areas = _gdf({"id": ["A1", "A2"], "kind": ["old_estate", "urban_rural_fringe"]},
                 [shapely.box(600, 0, 700, 100), shapely.box(800, 0, 900, 100)])
    x = np.array([10, 110, 310, 210, 650, 850, 100, np.nan])
    y = np.array([10, 10, 10, 10, 50, 50, 700, np.nan])
    bid = np.array(["B1", "B2", "B4", "B3", None, None, None, None], dtype=object)
    comm = np.array(["C1", "C1", "C1", "C1", "C1", "C1", "C2", None], dtype=object)
    z = household_zones(x, y, bid, comm, buildings=BUILDINGS, estates=ESTATES, communities=COMMUNITIES, areas=areas)
    assert z["old_estate"].tolist() == [True, False, False, True, True, False, False, False]
    assert z["fringe"].tolist() == [False, False, False, False, False, True, True, False]
    assert z["zone"].tolist() == ["old_estate", "rest", "rest", "old_estate", "old_estate", "fringe", "fringe", "rest"]


def test_the_fringe_can_be_derived_from_building_heights():
    from geo.areas import FringeRule, derive_fringe_cells
    from geo.lifecircle import cells_of

    x0, y0 = 404000.0, 3392000.0
    rng = np.random.default_rng(0)

    def cluster(cx, cy, n, floors):
        xy = rng.uniform(-150, 150, (n, 2))
        return [(shapely.box(cx + a, cy + b, cx + a + 12, cy + b + 10), floors) for a, b in xy]

    items = cluster(x0, y0, 60, 18) + cluster(x0 + 900, y0, 40, 2) + cluster(x0 + 6000, y0, 40, 2)
    b = _gdf({"id": [f"B{i}" for i in range(len(items))], "floors": [f for _, f in items]}, [g for g, _ in items])
    cells = derive_fringe_cells(b, rule=FringeRule())
    pts = gpd.GeoSeries([shapely.Point(x0, y0), shapely.Point(x0 + 900, y0), shapely.Point(x0 + 6000, y0)], crs=CRS).to_crs(4326)
    where = cells_of(pts.x.to_numpy(), pts.y.to_numpy(), 9)
    assert np.isin(where, cells).tolist() == [False, True, False]  # the core is not fringe; the far village is a village

    # household_zones uses it only when switched on and when the data name no fringe
    comm = _gdf({"id": ["C1"], "ur_code": ["111"]}, [shapely.box(x0 - 1000, y0 - 1000, x0 + 7000, y0 + 1000)])
    xs = np.array([x0, x0 + 900]); ys = np.array([y0, y0])
    hh_ll = gpd.GeoSeries(gpd.points_from_xy(xs, ys), crs=CRS).to_crs(4326)
    kwargs = dict(buildings=b, estates=None, communities=comm, areas=None, lonlat=(hh_ll.x.to_numpy(), hh_ll.y.to_numpy()))
    off = household_zones(xs, ys, np.array([None, None], dtype=object), np.array(["C1", "C1"], dtype=object), **kwargs)
    on = household_zones(xs, ys, np.array([None, None], dtype=object), np.array(["C1", "C1"], dtype=object),
                         derive_fringe=True, **kwargs)
    assert off["fringe"].tolist() == [False, False] and on["fringe"].tolist() == [False, True]
    assert on.attrs["fringe_source"] == "derived"
