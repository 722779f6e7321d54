"""Loading: formats, coordinate systems, and one clear message for every kind of bad input."""

import json

import geopandas as gpd
import pandas as pd
import pytest

from conftest import rewrite_geojson, tiny_layers, to_gcj02, write_layers
from geo.crs import transform_geometries, wgs84_to_bd09
from geo.errors import ConfigError, InputError
from geo.load import load_data


def _error(folder, **kwargs) -> str:
    with pytest.raises((InputError, ConfigError)) as info:
        load_data(folder, **kwargs)
    return str(info.value)


# ---- good input in every format --------------------------------------------------------------

def test_geojson_folder_loads_into_the_utm_zone(tiny_dir):
    data = load_data(tiny_dir)
    assert data.metric_crs.to_epsg() == 32648
    assert len(data.layers["households"]) == 10
    assert set(data.missing_optional) == {"estates", "gates", "facilities", "roads", "areas"}
    assert data.layers["households"]["persons"].dtype == "Int64"
    assert data.layers["households"]["elderly_alone"].dtype == bool


def test_geopackage_shapefile_and_csv_layers_are_read(tmp_path):
    layers = tiny_layers()
    folder = tmp_path / "mixed"
    folder.mkdir()
    layers["streets"].to_file(folder / "streets.gpkg", driver="GPKG")
    layers["communities"].to_file(folder / "communities.shp", driver="ESRI Shapefile")
    layers["grids"].to_file(folder / "grids.geojson", driver="GeoJSON")
    layers["buildings"].to_file(folder / "buildings.gpkg", driver="GPKG")
    hh = layers["households"]
    table = pd.DataFrame(hh.drop(columns="geometry"))
    table["lon"] = hh.geometry.x
    table["lat"] = hh.geometry.y
    table.to_csv(folder / "households.csv", index=False)
    data = load_data(folder)
    assert len(data.layers["households"]) == 10
    assert data.layers["households"].geometry.isna().sum() == 2  # the two rows with empty lon/lat
    assert data.layers["communities"]["ur_code"].tolist() == ["111", "112"]


def test_a_workspace_geopackage_is_a_data_source(tmp_path):
    gpkg = tmp_path / "ws.gpkg"
    for name, frame in tiny_layers().items():
        frame.to_file(gpkg, layer=name, driver="GPKG")
    assert len(load_data(gpkg).layers["grids"]) == 5


def _same_points(a, b, tol_m=0.05):
    return (a.geometry.distance(b.geometry).dropna() < tol_m).all()


def test_gcj02_households_from_the_config_file_land_where_the_wgs84_ones_do(tmp_path):
    layers = tiny_layers()
    reference = load_data(write_layers(layers, tmp_path / "wgs"))
    layers["households"] = to_gcj02(layers["households"])
    folder = write_layers(layers, tmp_path / "gcj")
    (folder / "gridcover.toml").write_text('[crs]\nhouseholds = "gcj02"\n', encoding="utf-8")
    data = load_data(folder)
    assert data.source_crs["households"] == "gcj02" and data.source_crs["grids"] == "EPSG:4326"
    assert _same_points(data.layers["households"], reference.layers["households"])


def test_bd09_everywhere_with_the_crs_option(tmp_path):
    layers = tiny_layers()
    reference = load_data(write_layers(layers, tmp_path / "wgs"))
    for name, frame in layers.items():
        present = ~frame.geometry.isna()
        frame.loc[present, "geometry"] = transform_geometries(frame.geometry[present].to_numpy(), wgs84_to_bd09)
    data = load_data(write_layers(layers, tmp_path / "bd"), crs="bd09")
    assert _same_points(data.layers["households"], reference.layers["households"])
    assert (data.layers["grids"].geometry.hausdorff_distance(reference.layers["grids"].geometry) < 0.05).all()


def test_cgcs2000_and_projected_input(tmp_path):
    layers = tiny_layers()
    layers["grids"] = layers["grids"].to_crs("EPSG:4547")  # CGCS2000 3-degree Gauss-Kruger CM 105E
    layers["grids"].to_file(tmp_path / "grids.gpkg", driver="GPKG")
    del layers["grids"]
    folder = write_layers(layers, tmp_path)
    data = load_data(folder)  # the GeoPackage says its own CRS
    assert data.source_crs["grids"].endswith("4547")
    assert len(data.layers["grids"]) == 5


def test_settings_come_from_the_config_file(tiny_dir):
    (tiny_dir / "gridcover.toml").write_text("[analysis]\nhouseholds_per_worker = 250\n", encoding="utf-8")
    assert load_data(tiny_dir).settings.households_per_worker == 250


# ---- bad input: one message naming file, feature and field ------------------------------------

def test_missing_required_layer(tiny_dir):
    (tiny_dir / "grids.geojson").unlink()
    assert "required layer 'grids' not found" in _error(tiny_dir)


def test_missing_folder(tmp_path):
    assert "data folder not found" in _error(tmp_path / "nope")


def test_missing_field(tiny_dir):
    rewrite_geojson(tiny_dir / "grids.geojson", lambda d: [f["properties"].pop("worker_phone") for f in d["features"]])
    msg = _error(tiny_dir)
    assert msg.startswith("grids.geojson: field 'worker_phone': required field missing")


def test_wrong_geometry_type(tiny_dir):
    def edit(doc):
        doc["features"][2]["geometry"] = {"type": "Point", "coordinates": [104.0, 30.6]}
    rewrite_geojson(tiny_dir / "grids.geojson", edit)
    assert _error(tiny_dir) == "grids.geojson: feature 2 (id=G3), field 'geometry': geometry is a Point, expected MultiPolygon or Polygon"


def test_null_geometry_in_a_polygon_layer(tiny_dir):
    rewrite_geojson(tiny_dir / "buildings.geojson", lambda d: d["features"][1].__setitem__("geometry", None))
    assert _error(tiny_dir) == "buildings.geojson: feature 1 (id=B2), field 'geometry': has no geometry (null or empty)"


def test_bow_tie_is_repaired_and_reported(tiny_dir):
    def edit(doc):
        (x0, y0), (x1, y1) = doc["features"][0]["geometry"]["coordinates"][0][0], doc["features"][0]["geometry"]["coordinates"][0][2]
        doc["features"][0]["geometry"]["coordinates"] = [[[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]]]
    rewrite_geojson(tiny_dir / "buildings.geojson", edit)
    data = load_data(tiny_dir)
    assert data.repaired and data.repaired[0]["id"] == "B1" and "Self-intersection" in data.repaired[0]["problem"]
    assert any("buildings.geojson: feature 0 (id=B1)" in w for w in data.warnings)
    assert data.layers["buildings"].geometry.iloc[0].is_valid and data.layers["buildings"].geometry.iloc[0].area > 0


def test_unrepairable_polygon(tiny_dir):
    def edit(doc):
        doc["features"][3]["geometry"]["coordinates"] = [[[104.0, 30.6], [104.001, 30.6], [104.002, 30.6], [104.0, 30.6]]]
    rewrite_geojson(tiny_dir / "grids.geojson", edit)
    msg = _error(tiny_dir)
    assert msg.startswith("grids.geojson: feature 3 (id=G4), field 'geometry': invalid polygon that cannot be repaired")


def test_coordinates_that_are_not_lon_lat(tiny_dir):
    def edit(doc):
        doc["features"][4]["geometry"]["coordinates"] = [404000.0, 3392000.0]
    rewrite_geojson(tiny_dir / "households.geojson", edit)
    msg = _error(tiny_dir)
    assert msg.startswith("households.geojson: feature 4 (id=H5), field 'geometry': coordinates are not lon/lat degrees")
    assert "--crs" in msg


def test_duplicate_ids(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][6]["properties"].__setitem__("id", "H2"))
    assert _error(tiny_dir) == "households.geojson: feature 6 (id=H2), field 'id': duplicate id 'H2' (also feature 1)"


def test_household_pointing_to_a_missing_building(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][6]["properties"].__setitem__("building_id", "B99"))
    assert _error(tiny_dir) == "households.geojson: feature 6 (id=H7), field 'building_id': refers to buildings 'B99', not in buildings"


def test_grid_pointing_to_a_missing_community(tiny_dir):
    rewrite_geojson(tiny_dir / "grids.geojson", lambda d: d["features"][0]["properties"].__setitem__("community_id", "C9"))
    assert "grids.geojson: feature 0 (id=G1), field 'community_id': refers to communities 'C9'" in _error(tiny_dir)


def test_empty_layer(tiny_dir):
    rewrite_geojson(tiny_dir / "streets.geojson", lambda d: d.__setitem__("features", []))
    assert _error(tiny_dir) == "streets.geojson: the layer is empty: it holds no feature"


def test_a_file_that_is_not_geojson(tiny_dir):
    (tiny_dir / "communities.geojson").write_text("id,name\nC1,x\n", encoding="utf-8")
    assert _error(tiny_dir).startswith("communities.geojson: cannot be read as GeoJSON")


def test_a_value_of_the_wrong_type(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][3]["properties"].__setitem__("persons", "three"))
    assert _error(tiny_dir) == "households.geojson: feature 3 (id=H4), field 'persons': not a whole number: 'three'"


def test_negative_persons(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][0]["properties"].__setitem__("persons", -1))
    assert _error(tiny_dir) == "households.geojson: feature 0 (id=H1), field 'persons': must be 0 or more, got -1"


def test_a_bad_date(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][2]["properties"].__setitem__("last_visit", "2026-13-45"))
    assert _error(tiny_dir) == "households.geojson: feature 2 (id=H3), field 'last_visit': not a date (YYYY-MM-DD): '2026-13-45'"


def test_a_bad_flag(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][2]["properties"].__setitem__("rental", "maybe"))
    assert _error(tiny_dir) == "households.geojson: feature 2 (id=H3), field 'rental': not true/false: 'maybe'"


def test_a_bad_urban_rural_code(tiny_dir):
    rewrite_geojson(tiny_dir / "communities.geojson", lambda d: d["features"][1]["properties"].__setitem__("ur_code", "12"))
    assert _error(tiny_dir) == "communities.geojson: feature 1 (id=C2), field 'ur_code': not a 3-digit urban-rural code: '12'"


def test_empty_required_value(tiny_dir):
    rewrite_geojson(tiny_dir / "grids.geojson", lambda d: d["features"][1]["properties"].__setitem__("name", None))
    assert _error(tiny_dir) == "grids.geojson: feature 1 (id=G2), field 'name': is empty but required"


def test_unknown_crs_in_the_config(tiny_dir):
    (tiny_dir / "gridcover.toml").write_text('[crs]\nhouseholds = "gcj03"\n', encoding="utf-8")
    assert "unknown coordinate system 'gcj03'" in _error(tiny_dir)


def test_unknown_setting_in_the_config(tiny_dir):
    (tiny_dir / "gridcover.toml").write_text("[analysis]\nsnap = 3\n", encoding="utf-8")
    assert "unknown analysis setting 'snap'" in _error(tiny_dir)


def test_csv_with_a_bad_coordinate(tmp_path):
    layers = tiny_layers()
    hh = layers.pop("households")
    folder = write_layers(layers, tmp_path / "csv")
    table = pd.DataFrame(hh.drop(columns="geometry"))
    table["lon"] = hh.geometry.x.astype(str)
    table["lat"] = hh.geometry.y
    table.loc[1, "lon"] = "104,07"
    table.to_csv(folder / "households.csv", index=False)
    assert _error(folder) == "households.csv: feature 1 (id=H2), field 'lon': not a number: '104,07'"
