"""Loading: formats, coordinate systems, and one clear message for every kind of bad input."""

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from conftest import rewrite_geojson, tiny_layers, tiny_visits, to_gcj02, write_layers
from geo.crs import transform_geometries, wgs84_to_bd09
from geo.errors import ConfigError, InputError
from gridcover.io.folder import load_data


def _error(folder, **kwargs) -> str:
    with pytest.raises((InputError, ConfigError)) as info:
        load_data(folder, **kwargs)
    return str(info.value)


# ---- good input in every format --------------------------------------------------------------

def test_geojson_folder_loads_into_the_utm_zone(tiny_dir):
    data = load_data(tiny_dir)
    assert data.metric_crs.to_epsg() == 32648
    assert len(data.layers["households"]) == 10
    assert set(data.missing_optional) == {"estates", "gates", "facilities", "roads", "areas", "visits", "cases"}
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
    rewrite_geojson(tiny_dir / "grids.geojson", lambda d: [f["properties"].pop("community_id") for f in d["features"]])
    msg = _error(tiny_dir)
    assert msg.startswith("grids.geojson: field 'community_id': required field missing")


def test_wrong_geometry_type(tiny_dir):
    def edit(doc):
        doc["features"][2]["geometry"] = {"type": "Point", "coordinates": [104.0, 30.6]}
    rewrite_geojson(tiny_dir / "grids.geojson", edit)
    assert _error(tiny_dir) == "grids.geojson: feature 2 (id=G3), field 'geometry': geometry is a Point, expected MultiPolygon or Polygon"


def test_null_geometry_in_a_polygon_layer(tiny_dir):
    rewrite_geojson(tiny_dir / "buildings.geojson", lambda d: d["features"][1].__setitem__("geometry", None))
    assert _error(tiny_dir) == "buildings.geojson: feature 1 (id=B2), field 'geometry': has no geometry (null or empty); --skip-invalid would leave it out"


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
    assert _error(tiny_dir) == "households.geojson: feature 6 (id=H2), field 'id': duplicate id 'H2' (also feature 1); --skip-invalid would leave it out"


def test_household_pointing_to_a_missing_building(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][6]["properties"].__setitem__("building_id", "B99"))
    assert _error(tiny_dir) == ("households.geojson: feature 6 (id=H7), field 'building_id': refers to buildings 'B99', "
                                "not in buildings; --skip-invalid would drop the reference and place the household by its point")


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
    assert _error(tiny_dir) == "households.geojson: feature 3 (id=H4), field 'persons': not a whole number: 'three'; --skip-invalid would leave it out"


def test_negative_persons(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][0]["properties"].__setitem__("persons", -1))
    assert _error(tiny_dir) == "households.geojson: feature 0 (id=H1), field 'persons': must be 0 or more, got -1; --skip-invalid would leave it out"


def test_a_bad_date(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][2]["properties"].__setitem__("last_visit", "2026-13-45"))
    assert _error(tiny_dir) == "households.geojson: feature 2 (id=H3), field 'last_visit': not a date (YYYY-MM-DD): '2026-13-45'; --skip-invalid would leave it out"


def test_a_bad_flag(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", lambda d: d["features"][2]["properties"].__setitem__("rental", "maybe"))
    assert _error(tiny_dir) == "households.geojson: feature 2 (id=H3), field 'rental': not true/false: 'maybe'; --skip-invalid would leave it out"


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
    assert _error(folder) == ("households.csv: feature 1 (id=H2), field 'lon': not a finite number: '104,07'; "
                              "--skip-invalid would leave it out")


# ---- optional means optional: absent or empty in every row, in every format ---------------------

def _write(frame, folder, name, fmt):
    """One layer written by GDAL in ``fmt`` (CSV: lon/lat columns, empty cells for no point)."""
    if fmt == "csv":
        table = pd.DataFrame(frame.drop(columns="geometry"))
        table["lon"], table["lat"] = frame.geometry.x, frame.geometry.y
        table.to_csv(folder / f"{name}.csv", index=False)
    else:
        driver = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}[fmt]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL says it cuts Shapefile names to 10 characters: that is the point
            frame.to_file(folder / f"{name}.{fmt}", driver=driver, engine="pyogrio")


def _tiny_folder(tmp_path, edit_layers, formats: dict | None = None):
    layers = tiny_layers()
    edit_layers(layers)
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in layers.items():
        _write(frame, folder, name, (formats or {}).get(name, "geojson"))
    return folder


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_buildings_without_a_floors_column_load_with_floors_unknown(tmp_path, fmt):
    folder = _tiny_folder(tmp_path, lambda L: L.__setitem__("buildings", L["buildings"].drop(columns="floors")),
                          {"buildings": fmt})
    data = load_data(folder)
    assert data.layers["buildings"]["floors"].isna().all() and len(data.layers["buildings"]) == 6
    assert f"buildings.{fmt}: no 'floors' column: read as empty in every row" in data.warnings


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_a_floors_column_empty_in_every_row_loads(tmp_path, fmt):
    # was "internal error: ValueError: output array is read-only" under pandas 3
    def edit(L):
        L["buildings"]["floors"] = None
    data = load_data(_tiny_folder(tmp_path, edit, {"buildings": fmt}))
    assert data.layers["buildings"]["floors"].isna().all()


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "csv"])
def test_households_with_building_id_empty_in_every_row_are_placed_by_their_points(tmp_path, fmt):
    def edit(L):
        L["households"]["building_id"] = None
    data = load_data(_tiny_folder(tmp_path, edit, {"households": fmt}))
    hh = data.layers["households"]
    assert hh["building_id"].isna().all() and len(hh) == 10
    assert hh.geometry.isna().sum() == 2  # H7 (building only) and H8 have no point: no location, counted


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "csv"])
def test_households_with_only_the_required_fields_load_with_the_flags_false(tmp_path, fmt):
    def edit(L):
        L["households"] = L["households"][["id", "persons", "geometry"]]
    data = load_data(_tiny_folder(tmp_path, edit, {"households": fmt}))
    hh = data.layers["households"]
    assert not hh[["elderly_alone", "rental", "migrant"]].any().any()
    assert hh["address"].isna().all()
    assert f"households.{fmt}: no 'address' column: read as empty in every row" in data.warnings


def test_grids_without_worker_columns_are_grids_without_workers(tmp_path):
    data = load_data(_tiny_folder(tmp_path, lambda L: L.__setitem__(
        "grids", L["grids"].drop(columns=["worker_name", "worker_phone"]))))
    assert data.layers["grids"]["worker_name"].isna().all()


def test_text_columns_under_pandas_3_blank_cells_are_empty(tmp_path):
    # pandas 3 reads text as the "str" dtype, not object: a blank name is still empty
    def edit(L):
        L["grids"]["name"] = L["grids"]["name"].astype(str)
        L["grids"].loc[1, "name"] = "  "
    msg = _error(_tiny_folder(tmp_path, edit))
    assert msg == "grids.geojson: feature 1 (id=G2), field 'name': is empty but required"


# ---- bad input named as it is -----------------------------------------------------------------

def test_a_folder_named_like_a_layer_file_is_named_as_a_folder(tiny_dir):
    (tiny_dir / "households.geojson").unlink()
    (tiny_dir / "households.geojson").mkdir()
    assert _error(tiny_dir) == (f"households.geojson in {tiny_dir} is a folder, not a file: "
                                "cannot read layer 'households' from it")


def test_a_symbolic_link_loop_is_named_as_a_loop(tiny_dir):
    (tiny_dir / "households.geojson").unlink()
    (tiny_dir / "households.geojson").symlink_to(tiny_dir / "loop.geojson")
    (tiny_dir / "loop.geojson").symlink_to(tiny_dir / "households.geojson")
    msg = _error(tiny_dir)
    assert msg.startswith(f"households.geojson in {tiny_dir} is a symbolic link that loops")
    assert "not found" not in msg


def test_a_dangling_symbolic_link_says_where_it_points(tiny_dir):
    (tiny_dir / "grids.geojson").unlink()
    (tiny_dir / "grids.geojson").symlink_to(tiny_dir / "gone.geojson")
    assert _error(tiny_dir) == (f"grids.geojson in {tiny_dir} is a symbolic link to {tiny_dir / 'gone.geojson'}, "
                                "which does not exist: cannot read layer 'grids' from it")


def _nan_point(i):
    def edit(doc):
        doc["features"][i]["geometry"]["coordinates"] = [float("nan"), float("nan")]
    return edit


def test_nan_coordinates_in_geojson_are_bad_input_not_no_location(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson", _nan_point(4))
    assert _error(tiny_dir) == ("households.geojson: feature 4 (id=H5), field 'geometry': has an empty geometry or NaN "
                                "coordinates (leave the geometry null for no location); --skip-invalid would leave it out")


def test_infinite_coordinates_in_geojson_are_bad_input(tiny_dir):
    rewrite_geojson(tiny_dir / "households.geojson",
                    lambda d: d["features"][2]["geometry"].__setitem__("coordinates", [float("inf"), 30.6]))
    assert _error(tiny_dir).startswith("households.geojson: feature 2 (id=H3), field 'geometry': has coordinates that "
                                       "are not finite numbers")


@pytest.mark.parametrize("text", ["NaN", "inf", "-Infinity"])
def test_nan_or_infinite_csv_coordinates_are_bad_input(tmp_path, text):
    folder = _tiny_folder(tmp_path, lambda L: None, {"households": "csv"})
    table = pd.read_csv(folder / "households.csv", dtype=str, keep_default_na=False)
    table.loc[3, "lat"] = text
    table.to_csv(folder / "households.csv", index=False)
    assert _error(folder) == (f"households.csv: feature 3 (id=H4), field 'lat': not a finite number: '{text}'; "
                              "--skip-invalid would leave it out")


# ---- quarantine: --skip-invalid leaves out what cannot be used, and counts it -------------------

def _broken_tiny(tiny_dir):
    """B1's ring has too few points, H4 has persons 'three', H10 duplicates H9's id, a gate-less world."""
    def buildings(doc):
        doc["features"][0]["geometry"]["coordinates"] = [[[104.0, 30.6], [104.001, 30.6], [104.0, 30.6]]]
    rewrite_geojson(tiny_dir / "buildings.geojson", buildings)

    def households(doc):
        doc["features"][3]["properties"]["persons"] = "three"
        doc["features"][9]["properties"]["id"] = "H9"
    rewrite_geojson(tiny_dir / "households.geojson", households)
    return tiny_dir


def test_without_the_flag_the_first_bad_feature_stops_the_run_and_names_the_flag(tiny_dir):
    msg = _error(_broken_tiny(tiny_dir))
    assert msg == ("buildings.geojson: feature 0 (id=B1), field 'geometry': invalid polygon that cannot be repaired "
                   "(Too few points in geometry component[104 30.6]); --skip-invalid would leave it out")


def test_skip_invalid_leaves_out_each_bad_feature_with_its_reason(tiny_dir):
    data = load_data(_broken_tiny(tiny_dir), skip_invalid=True)
    rejects = data.rejects
    got = {(r.layer, r.id, r.field, r.feature) for r in rejects.itertuples()}
    assert got == {("buildings", "B1", "geometry", 0), ("households", "H4", "persons", 3),
                   ("households", "H9", "id", 9)}
    h4 = rejects[rejects["id"] == "H4"].iloc[0]
    assert h4["persons"] == "three" and h4["reason"] == "not a whole number: 'three'"  # the original value
    assert h4.geometry.geom_type == "Point"
    assert rejects[rejects["id"] == "B1"].geometry.iloc[0].geom_type == "Polygon"  # the original (broken) ring
    assert len(data.layers["buildings"]) == 5 and len(data.layers["households"]) == 8
    # H7 named B1, which was left out: it stays, without its building, and the run says so
    hh = data.layers["households"].set_index("id")
    assert "H7" in hh.index and hh.loc["H7", "building_id"] is None
    assert data.references_cleared == {"households.building_id": 1}
    assert any("1 households refer to buildings that are not there (first: feature 6 (id=H7) building_id='B1')" in w
               for w in data.warnings)


def test_skip_invalid_leaves_out_a_gate_of_a_missing_estate(tmp_path):
    layers = tiny_layers()
    layers["estates"] = gpd.GeoDataFrame({"id": ["E1"], "name": ["锦华苑"]},
                                         geometry=[layers["buildings"].geometry.iloc[0].buffer(0.0005)], crs=4326)
    layers["gates"] = gpd.GeoDataFrame({"id": ["M1", "M2"], "estate_id": ["E1", "E9"]},
                                       geometry=gpd.points_from_xy([104.0, 104.001], [30.65, 30.65]), crs=4326)
    folder = write_layers(layers, tmp_path / "gates")
    assert _error(folder) == ("gates.geojson: feature 1 (id=M2), field 'estate_id': refers to estates 'E9', not in "
                              "estates; --skip-invalid would leave it out")
    data = load_data(folder, skip_invalid=True)
    assert data.layers["gates"]["id"].tolist() == ["M1"]
    assert data.rejects[["layer", "id", "field"]].values.tolist() == [["gates", "M2", "estate_id"]]


@pytest.mark.parametrize("layer, index, fid", [("streets", 0, "S1"), ("communities", 1, "C2"), ("grids", 2, "G3")])
def test_boundaries_always_stop_the_run_even_with_the_flag(tiny_dir, layer, index, fid):
    rewrite_geojson(tiny_dir / f"{layer}.geojson", lambda d: d["features"][index]["properties"].__setitem__("name", None))
    msg = _error(tiny_dir, skip_invalid=True)
    assert msg == (f"{layer}.geojson: feature {index} (id={fid}), field 'name': is empty but required; --skip-invalid "
                   "never leaves out streets, communities, grids (a wrong boundary makes every answer wrong)")


def test_skip_invalid_takes_nan_csv_coordinates_out_not_as_no_location(tmp_path):
    folder = _tiny_folder(tmp_path, lambda L: None, {"households": "csv"})
    table = pd.read_csv(folder / "households.csv", dtype=str, keep_default_na=False)
    table.loc[3, "lon"] = "nan"
    table.to_csv(folder / "households.csv", index=False)
    data = load_data(folder, skip_invalid=True)
    assert data.rejects[["id", "field", "reason"]].values.tolist() == [["H4", "lon", "not a finite number: 'nan'"]]
    assert "H4" not in set(data.layers["households"]["id"])


# ---- column mapping, Shapefile names cut to 10 characters, text encodings ------------------------

def test_gdal_shapefiles_with_cut_field_names_are_read_and_the_match_is_named(tmp_path):
    folder = _tiny_folder(tmp_path, lambda L: None, {"grids": "shp", "households": "shp", "buildings": "shp"})
    data = load_data(folder)
    assert data.layers["grids"]["community_id"].tolist() == ["C1", "C1", "C1", "C2", "C2"]
    assert data.layers["grids"]["worker_name"].tolist()[:2] == ["张伟", "王芳"]
    hh = data.layers["households"].set_index("id")
    assert hh.loc["H7", "building_id"] == "B1" and bool(hh.loc["H2", "elderly_alone"])
    for cut, name in (("community_", "community_id"), ("worker_nam", "worker_name"), ("building_i", "building_id"),
                      ("elderly_al", "elderly_alone"), ("child_in_d", "child_in_difficulty")):
        layer = "grids" if cut in ("community_", "worker_nam") else "households"
        assert (f"{layer}.shp: column {cut!r} read as {name!r} (Shapefile field names are cut to 10 characters)"
                in data.warnings)


def test_an_ambiguous_cut_is_not_guessed(tmp_path):
    def edit(L):
        L["grids"]["info_officer_name"] = "赵六"
    folder = _tiny_folder(tmp_path, edit, {"grids": "shp"})
    data = load_data(folder)
    assert "info_officer_name" not in data.layers["grids"].columns
    assert any("grids.shp: column 'info_offic' could be any of info_officer_name, info_officer_phone" in w
               for w in data.warnings)
    (folder / "gridcover.toml").write_text('[columns.grids]\ninfo_officer_name = "info_offic"\n', encoding="utf-8")
    assert load_data(folder).layers["grids"]["info_officer_name"].iloc[0] == "赵六"


def _spreadsheet_csv(folder, encoding="gb18030"):
    """A household register as a spreadsheet exports it: Chinese headers, 是/否, GB18030 text."""
    hh = tiny_layers()["households"]
    table = pd.DataFrame({
        "编号": hh["id"], "地址": hh["address"], "人数": hh["persons"],
        "经度": hh.geometry.x.round(7), "纬度": hh.geometry.y.round(7),
        "独居老人": hh["elderly_alone"].map({True: "是", False: "否"}),
    })
    table.to_csv(folder / "households.csv", index=False, encoding=encoding)


_MAPPING = """[columns.households]
id = "编号"
address = "地址"
persons = "人数"
lon = "经度"
lat = "纬度"
elderly_alone = "独居老人"
"""


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8", "utf-8-sig"])
def test_a_spreadsheet_csv_with_chinese_headers_is_read_through_the_column_mapping(tmp_path, encoding):
    layers = tiny_layers()
    del layers["households"]
    folder = write_layers(layers, tmp_path / "sheet")
    _spreadsheet_csv(folder, encoding)
    (folder / "gridcover.toml").write_text(_MAPPING, encoding="utf-8")
    data = load_data(folder)
    hh = data.layers["households"].set_index("id")
    assert hh.loc["H2", "address"] == "测试路 H2" and bool(hh.loc["H2", "elderly_alone"])
    assert not bool(hh.loc["H1", "elderly_alone"]) and hh.loc["H4", "persons"] == 4
    assert hh.geometry.isna().sum() == 2
    assert ("households.csv: read as GB18030 text (not UTF-8)" in data.warnings) == (encoding == "gb18030")


def test_without_the_mapping_the_spreadsheet_csv_says_what_to_do(tmp_path):
    layers = tiny_layers()
    del layers["households"]
    folder = write_layers(layers, tmp_path / "sheet")
    _spreadsheet_csv(folder)
    assert _error(folder) == ("households.csv: field 'lon': a CSV layer needs lon and lat columns (or lng/longitude/"
                              "latitude, x/y), or name them under [columns.households] in gridcover.toml")


def test_a_mapping_to_a_column_that_is_not_there_names_file_layer_and_column(tmp_path):
    layers = tiny_layers()
    del layers["households"]
    folder = write_layers(layers, tmp_path / "sheet")
    _spreadsheet_csv(folder)
    (folder / "gridcover.toml").write_text(_MAPPING.replace('"人数"', '"户人数"'), encoding="utf-8")
    msg = _error(folder)
    assert msg.startswith(f"{folder / 'gridcover.toml'}: [columns.households] persons = '户人数': households.csv has "
                          "no column '户人数' (columns: 编号, 地址, 人数")


@pytest.mark.parametrize("toml, expected", [
    ('[columns.houses]\nid = "x"\n', "[columns.houses]: unknown layer"),
    ('[columns.households]\nage = "x"\n', "[columns.households]: 'age' is not a field of households"),
    ('[columns.grids]\nlon = "x"\n', "[columns.grids]: 'lon' is not a field of grids"),
    ('[columns.households]\nid = "a"\naddress = "a"\n', "[columns.households]: column 'a' is named for two fields"),
])
def test_a_bad_columns_table_is_a_config_error(tiny_dir, toml, expected):
    (tiny_dir / "gridcover.toml").write_text(toml, encoding="utf-8")
    assert expected in _error(tiny_dir)


def test_a_mapping_works_for_geojson_too(tiny_dir):
    rewrite_geojson(tiny_dir / "grids.geojson",
                    lambda d: [f["properties"].__setitem__("网格员", f["properties"].pop("worker_name")) for f in d["features"]])
    (tiny_dir / "gridcover.toml").write_text('[columns.grids]\nworker_name = "网格员"\n', encoding="utf-8")
    assert load_data(tiny_dir).layers["grids"]["worker_name"].iloc[0] == "张伟"


def test_a_gb18030_shapefile_without_cpg_is_detected(tmp_path):
    import pyogrio

    folder = _tiny_folder(tmp_path, lambda L: None)
    (folder / "grids.geojson").unlink()
    pyogrio.write_dataframe(tiny_layers()["grids"], folder / "grids.shp", encoding="GB18030")
    (folder / "grids.cpg").unlink()
    assert load_data(folder).layers["grids"]["worker_name"].iloc[0] == "张伟"


def test_the_cpg_of_a_shapefile_wins_over_detection(tmp_path):
    import pyogrio

    folder = _tiny_folder(tmp_path, lambda L: None)
    (folder / "grids.geojson").unlink()
    grids = tiny_layers()["grids"]
    grids["name"] = ["Müller", "Søren", "Zoë", "Ångström", "Gödel"]  # Latin-1 bytes: not UTF-8, and GB18030 would garble
    pyogrio.write_dataframe(grids[["id", "name", "community_id", "geometry"]], folder / "grids.shp", encoding="ISO-8859-1")
    assert (folder / "grids.cpg").read_text().strip() == "ISO-8859-1"
    assert load_data(folder).layers["grids"]["name"].tolist() == ["Müller", "Søren", "Zoë", "Ångström", "Gödel"]


def test_a_ring_that_is_not_closed_is_one_bad_feature_not_an_unreadable_file(tiny_dir):
    def edit(doc):
        ring = doc["features"][2]["geometry"]["coordinates"][0]
        doc["features"][2]["geometry"]["coordinates"] = [ring[:-1]]  # the closing point dropped
    rewrite_geojson(tiny_dir / "buildings.geojson", edit)
    assert _error(tiny_dir) == ("buildings.geojson: feature 2 (id=B3), field 'geometry': the geometry cannot be read "
                                "(Points of LinearRing do not form a closed linestring); --skip-invalid would leave it out")
    data = load_data(tiny_dir, skip_invalid=True)
    assert data.rejects[["id", "field"]].values.tolist() == [["B3", "geometry"]]
    assert data.rejects.geometry.isna().all()  # nothing to show: GEOS cannot build it
    assert len(data.layers["buildings"]) == 5


def test_a_register_without_special_group_columns_says_nobody_is_counted_in_them(tmp_path):
    data = load_data(_tiny_folder(tmp_path, lambda L: L.__setitem__("households", L["households"].drop(
        columns=["mental_disorder", "child_in_difficulty"]))))
    assert not data.layers["households"]["mental_disorder"].any()
    assert "households.geojson: no 'mental_disorder' column: false in every row" in data.warnings


def test_lon_lat_mapped_for_a_geojson_layer_is_a_config_error(tiny_dir):
    (tiny_dir / "gridcover.toml").write_text('[columns.households]\nlon = "经度"\n', encoding="utf-8")
    assert _error(tiny_dir) == (f"{tiny_dir / 'gridcover.toml'}: [columns.households] lon = '经度': lon and lat are read "
                                "from CSV files only")


def test_a_building_of_a_missing_estate_keeps_its_place_without_the_estate(tiny_dir):
    rewrite_geojson(tiny_dir / "buildings.geojson", lambda d: d["features"][1]["properties"].__setitem__("estate_id", "E9"))
    assert _error(tiny_dir) == ("buildings.geojson: feature 1 (id=B2), field 'estate_id': refers to estates 'E9', there is "
                                "no estates layer; --skip-invalid would drop the reference")
    data = load_data(tiny_dir, skip_invalid=True)
    assert len(data.layers["buildings"]) == 6 and data.layers["buildings"]["estate_id"].isna().all()
    assert data.references_cleared == {"buildings.estate_id": 1} and len(data.rejects) == 0


def test_chinese_field_names_of_a_gb18030_shapefile_are_mapped(tmp_path):
    import pyogrio

    folder = _tiny_folder(tmp_path, lambda L: None)
    (folder / "grids.geojson").unlink()
    grids = tiny_layers()["grids"].rename(columns={"worker_name": "网格员", "worker_phone": "电话"})
    pyogrio.write_dataframe(grids, folder / "grids.shp", encoding="GB18030")
    (folder / "grids.cpg").unlink()  # as older tools leave it: no word on the encoding
    (folder / "gridcover.toml").write_text('[columns.grids]\nworker_name = "网格员"\nworker_phone = "电话"\n',
                                           encoding="utf-8")
    data = load_data(folder)
    assert data.layers["grids"]["worker_name"].tolist()[:2] == ["张伟", "王芳"]
    assert data.layers["grids"]["community_id"].iloc[0] == "C1"


def test_a_left_out_gcj02_household_is_shown_where_it_is_in_wgs84(tmp_path):
    import shutil
    from pathlib import Path

    from geo.crs import gcj02_to_wgs84

    folder = tmp_path / "raw"
    shutil.copytree(Path(__file__).parent / "data" / "chengdu_raw", folder)
    sheet = pd.read_csv(folder / "households.csv", encoding="gb18030", dtype=str, keep_default_na=False)
    sheet.loc[0, "人数"] = "三"
    sheet.to_csv(folder / "households.csv", index=False, encoding="gb18030")
    data = load_data(folder, skip_invalid=True)
    assert sorted(data.rejects["layer"]) == ["buildings", "households"]  # the broken footprint, and this row
    row = data.rejects[data.rejects["layer"] == "households"].iloc[0]
    assert (row["id"], row["人数"], row["field"]) == ("HH0001", "三", "persons")  # the spreadsheet's own headers
    lon, lat = gcj02_to_wgs84(np.array([float(sheet.loc[0, "经度"])]), np.array([float(sheet.loc[0, "纬度"])]))
    assert abs(row.geometry.x - lon[0]) < 1e-9 and abs(row.geometry.y - lat[0]) < 1e-9


# ---- the visits layer (走访记录): a table, in every format, bad rows named ------------------------------

def _visits_folder(tmp_path, fmt="csv", visits=None, *, config: str | None = None):
    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    table = tiny_visits() if visits is None else visits
    if fmt == "csv":
        table.to_csv(folder / "visits.csv", index=False)
    elif fmt == "geojson":
        gpd.GeoDataFrame(table, geometry=[None] * len(table), crs=4326).to_file(folder / "visits.geojson",
                                                                             driver="GeoJSON", engine="pyogrio")
    else:  # a GeoPackage attribute table (no geometry column at all)
        import pyogrio

        pyogrio.write_dataframe(table, folder / "visits.gpkg", layer="visits", driver="GPKG")
    if config:
        (folder / "gridcover.toml").write_text(config, encoding="utf-8")
    return folder


@pytest.mark.parametrize("fmt", ["csv", "geojson", "gpkg"])
def test_visit_records_are_read_from_csv_geojson_and_a_geopackage_table(tmp_path, fmt):
    data = load_data(_visits_folder(tmp_path, fmt))
    visits = data.layers["visits"]
    assert visits["household_id"].tolist() == ["H2", "H2", "H2", "H7", "H7", "H3"]
    assert visits["kind"].tolist() == ["home", "home", "home", "phone", "phone", "home"]  # 入户, 电话, empty
    assert visits["visited_at"].tolist()[:2] == ["2026-11-03 09:00", "2026-11-10"]
    assert visits["note"].tolist()[1] == "门口有积水"
    assert visits.geometry.isna().all() and "visits" not in data.missing_optional


def test_a_folder_without_visits_has_no_visits_layer(tiny_dir):
    data = load_data(tiny_dir)
    assert "visits" not in data.layers and "visits" in data.missing_optional


def test_visit_columns_are_mapped_like_every_layer(tmp_path):
    table = tiny_visits().rename(columns={"household_id": "户编号", "visited_at": "走访时间", "worker": "走访人"})
    config = '[columns.visits]\nhousehold_id = "户编号"\nvisited_at = "走访时间"\nworker = "走访人"\n'
    data = load_data(_visits_folder(tmp_path, visits=table, config=config))
    assert data.layers["visits"]["worker"].tolist()[0] == "王芳"


def test_a_mapped_visit_column_the_file_lacks_names_the_config(tmp_path):
    message = _error(_visits_folder(tmp_path, config='[columns.visits]\nworker = "走访人"\n'))
    assert "[columns.visits] worker = '走访人': visits.csv has no column '走访人'" in message


def _bad_visits():
    table = tiny_visits()
    extra = pd.DataFrame({"household_id": ["H99", "H2", "H2", "H2"],
                          "visited_at": ["2026-11-10", "yesterday", "2026-11-11", "2026-11-12"],
                          "worker": ["王芳", "王芳", "王芳", " "], "kind": ["home", "home", "visit", "home"],
                          "outcome": None, "note": None})
    return pd.concat([table, extra], ignore_index=True)


@pytest.mark.parametrize("row, fix, expected", [
    (6, None, "visits.csv: feature 6, field 'household_id': refers to households 'H99', not in households; "
              "--skip-invalid would leave it out"),
    (7, 6, "visits.csv: feature 7, field 'visited_at': not a date or date-time"),
    (8, 7, "visits.csv: feature 8, field 'kind': not a visit kind (home, phone, other): 'visit'"),
    (9, 8, "visits.csv: feature 9, field 'worker': is empty but required"),
])
def test_a_bad_visit_record_stops_the_run_naming_file_row_and_field(tmp_path, row, fix, expected):
    table = _bad_visits()
    if fix is not None:  # only the rows from `row` on are bad
        table = table.drop(index=range(6, row)).reset_index(drop=True)
        expected = expected.replace(f"feature {row}", "feature 6")
    assert expected in _error(_visits_folder(tmp_path, visits=table))


def test_bad_visit_records_go_to_the_rejects_with_skip_invalid(tmp_path):
    data = load_data(_visits_folder(tmp_path, visits=_bad_visits()), skip_invalid=True)
    assert len(data.layers["visits"]) == 6
    rejected = data.rejects[data.rejects["layer"] == "visits"]
    assert rejected["feature"].tolist() == [6, 7, 8, 9]
    assert rejected["field"].tolist() == ["household_id", "visited_at", "kind", "worker"]
    assert rejected["household_id"].tolist()[0] == "H99" and rejected.geometry.isna().all()
    assert any("visits.csv: 4 visit records left out (--skip-invalid)" in w for w in data.warnings)


def test_a_visits_file_without_a_required_column_is_one_message(tmp_path):
    message = _error(_visits_folder(tmp_path, visits=tiny_visits().drop(columns="worker")))
    assert message.startswith("visits.csv") and "worker" in message and "missing column" in message


def test_a_visits_file_of_only_its_header_means_no_visit_recorded(tmp_path):
    data = load_data(_visits_folder(tmp_path, visits=tiny_visits().iloc[:0]))
    assert len(data.layers["visits"]) == 0 and "visits" not in data.missing_optional
