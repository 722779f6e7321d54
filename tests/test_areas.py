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
