"""Load and validate the input layers of a data folder into one metric CRS.

Reads GeoJSON (default), GeoPackage, Shapefile and CSV, resolves each layer's
coordinate system (``--crs`` > ``gridcover.toml`` > the file's own > WGS-84),
converts GCJ-02/BD-09, checks every declaration of ``geo.schema`` and raises
one :class:`~geo.errors.InputError` naming file, feature and field for the
first problem. Repairable polygons are repaired and reported.

Example
-------
>>> data = load_data("sample_geojson")
>>> data.layers["households"].crs.to_epsg()
32648
"""

from __future__ import annotations

import os
import tomllib
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from geo.crs import SourceCRS, local_metric_crs, offset_to_wgs84, parse_crs, transform_geometries
from geo.errors import ConfigError, InputError
from geo.schema import AREA_KINDS, BOOL, DATE, INT, LAYER_ORDER, LAYERS, LINE, POINT, POLYGON, STR, Layer
from geo.settings import Settings

#: File extensions tried for each layer, in order.
EXTENSIONS = (".geojson", ".json", ".gpkg", ".shp", ".csv")
CONFIG_NAME = "gridcover.toml"
_WGS84 = pyproj.CRS.from_epsg(4326)

_GEOM_TYPES = {
    POLYGON: {"Polygon", "MultiPolygon"},
    POINT: {"Point"},
    LINE: {"LineString", "MultiLineString"},
}
_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
_LON_NAMES = ("lon", "lng", "longitude", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_TRUE = {"true", "1", "yes", "y", "t", "是", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "否", "0.0"}


@dataclass
class Dataset:
    """Validated layers in the metric CRS, plus what the loader noticed."""

    layers: dict[str, gpd.GeoDataFrame]
    metric_crs: pyproj.CRS
    sources: dict[str, str] = field(default_factory=dict)
    source_crs: dict[str, str] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    folder: Path | None = None  # the data folder (config files live there)
    fids: dict = field(default_factory=dict)  # layer -> GDAL feature id of each row (partial reads only)

    def get(self, name: str) -> gpd.GeoDataFrame | None:
        return self.layers.get(name)


def read_config(data_dir: Path) -> dict:
    """The data folder's ``gridcover.toml`` as a dict ({} if there is none)."""
    path = data_dir / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            config = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file: {exc}") from None
    unknown = set(config) - {"crs", "analysis"}
    if unknown:
        msg = f"{path}: unknown section(s) {', '.join(sorted(unknown))} (known: crs, analysis)"
        raise ConfigError(msg)
    return config


def find_layer_file(data_dir: Path, name: str) -> tuple[Path | None, list[Path]]:
    """The file holding a layer and any other candidates that were ignored."""
    found = [data_dir / f"{name}{ext}" for ext in EXTENSIONS if (data_dir / f"{name}{ext}").is_file()]
    if not found:
        return None, []
    return found[0], found[1:]


@dataclass
class _Sources:
    """Where each layer of a data folder (or GeoPackage) is, and the CRS the user named for it."""

    data_dir: Path
    gpkg: Path | None
    settings: Settings
    files: dict  # layer -> (file, label, gpkg layer or None)
    user_crs: dict  # layer -> user CRS text or None
    missing: list
    warnings: list


def _locate(path: str | os.PathLike, *, crs: str | None, settings: Settings | None) -> _Sources:
    """Check the folder, its ``gridcover.toml`` and ``--crs``, and find the file of every layer."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"data folder not found: {path}")
    gpkg = path if path.is_file() else None
    data_dir = path.parent if gpkg else path
    if gpkg is not None and gpkg.suffix.lower() != ".gpkg":
        raise InputError(f"{path}: give a data folder or a GeoPackage (.gpkg)")
    if crs is not None:
        try:
            parse_crs(crs)
        except ValueError as exc:
            raise ConfigError(f"--crs: {exc}") from None
    config = read_config(data_dir) if gpkg is None else {}
    settings = settings or Settings()
    try:
        settings = settings.with_overrides(config.get("analysis", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{data_dir / CONFIG_NAME}: [analysis]: {exc.args[0]}") from None
    crs_config = config.get("crs", {})
    unknown_layers = set(crs_config) - set(LAYERS) - {"default"}
    if unknown_layers:
        msg = f"{data_dir / CONFIG_NAME}: [crs]: unknown layer(s) {', '.join(sorted(unknown_layers))}"
        raise ConfigError(msg)

    gpkg_layers: set[str] = set()
    if gpkg is not None:
        try:
            gpkg_layers = {str(row[0]) for row in pyogrio.list_layers(gpkg)}
        except Exception as exc:  # noqa: BLE001 - any GDAL failure is a bad file
            raise InputError(f"cannot be read as a GeoPackage: {exc}", file=gpkg.name) from None
    files, user_crs, missing, found_warnings = {}, {}, [], []
    for name in LAYER_ORDER:
        layer = LAYERS[name]
        if gpkg is not None:
            # a workspace written by analyze keeps the inputs of its output layers as input_<name>
            source_layer = f"input_{name}" if f"input_{name}" in gpkg_layers else name
            if source_layer not in gpkg_layers:
                file, others, label = None, [], gpkg.name
            else:
                file, others, label = gpkg, [], f"{gpkg.name}:{source_layer}"
        else:
            file, others = find_layer_file(data_dir, name)
            label = file.name if file else name
        if file is None:
            if layer.required:
                where = gpkg.name if gpkg else str(data_dir)
                raise InputError(f"required layer {name!r} not found in {where} (expected {name}.geojson, .gpkg, .shp or .csv)")
            missing.append(name)
            continue
        for other in others:
            found_warnings.append(f"{other.name} ignored: {file.name} is read for layer {name!r}")
        files[name] = (file, label, label.split(":", 1)[1] if gpkg else None)
        user_crs[name] = crs or crs_config.get(name) or crs_config.get("default")
    return _Sources(data_dir=data_dir, gpkg=gpkg, settings=settings, files=files, user_crs=user_crs,
                    missing=missing, warnings=found_warnings)


def load_data(path: str | os.PathLike, *, crs: str | None = None, settings: Settings | None = None) -> Dataset:
    """Read, validate and project every layer of a data folder (or GeoPackage).

    Parameters
    ----------
    path
        A folder with ``<layer>.<ext>`` files, or a GeoPackage with layers named after them.
    crs
        Coordinate system of every layer (overrides ``gridcover.toml``).
    settings
        Analysis settings; ``gridcover.toml``'s ``[analysis]`` table overrides them.
    """
    src = _locate(path, crs=crs, settings=settings)
    dataset_warnings: list[str] = list(src.warnings)
    repaired: list[dict] = []
    raw: dict[str, gpd.GeoDataFrame] = {}
    sources: dict[str, str] = {}
    source_crs: dict[str, str] = {}
    for name, (file, label, gpkg_layer) in src.files.items():
        frame, crs_text, fixed = _read_layer(file, LAYERS[name], label, gpkg_layer=gpkg_layer,
                                             user_crs=src.user_crs[name])
        for item in fixed:
            dataset_warnings.append(f"{label}: feature {item['index']} (id={item['id']}): {item['problem']}; repaired with make_valid")
        repaired.extend(fixed)
        raw[name] = frame
        sources[name] = str(file)
        source_crs[name] = crs_text

    _check_references(raw, sources)
    metric = metric_crs_of(raw["grids"])
    layers = {name: frame.to_crs(metric) for name, frame in raw.items()}
    return Dataset(layers=layers, metric_crs=metric, sources=sources, source_crs=source_crs,
                   missing_optional=src.missing, warnings=dataset_warnings, repaired=repaired, settings=src.settings,
                   folder=src.data_dir)


def metric_crs_of(grids: gpd.GeoDataFrame) -> pyproj.CRS:
    """The run's metric CRS: a local one centred on the grids' extent (WGS-84 lon/lat)."""
    centre = grids.geometry.total_bounds
    return local_metric_crs((centre[0] + centre[2]) / 2.0, (centre[1] + centre[3]) / 2.0)


def read_layers(path: str | os.PathLike, names, *, crs: str | None = None, settings: Settings | None = None,
                metric_crs: pyproj.CRS | None = None, options: dict | None = None) -> Dataset:
    """Some layers of a data folder, each whole or in part, validated like :func:`load_data`.

    ``options`` maps a layer name to pyogrio read options (``bbox``, ``mask``, ``fids``, ``where``) that
    select part of it; a part may be empty. ``metric_crs`` is the run's (default: from the grids, which
    must then be among ``names``). References between layers are not checked (a part may name a feature
    of another part): the caller checks what it needs. Each frame's ``attrs["fids"]`` holds the GDAL
    feature ids of its rows (CSV: row numbers).
    """
    src = _locate(path, crs=crs, settings=settings)
    options = options or {}
    dataset_warnings: list[str] = []
    repaired: list[dict] = []
    raw, sources, source_crs, fids = {}, {}, {}, {}
    for name in names:
        if name not in src.files:
            continue
        file, label, gpkg_layer = src.files[name]
        frame, crs_text, fixed, fid = _read_layer(file, LAYERS[name], label, gpkg_layer=gpkg_layer,
                                                  user_crs=src.user_crs[name], read_options=options.get(name, {}),
                                                  with_fids=True)
        for item in fixed:
            dataset_warnings.append(f"{label}: feature id={item['id']}: {item['problem']}; repaired with make_valid")
        repaired.extend(fixed)
        raw[name], sources[name], source_crs[name], fids[name] = frame, str(file), crs_text, fid
    metric = metric_crs if metric_crs is not None else metric_crs_of(raw["grids"])
    layers = {name: frame.to_crs(metric) for name, frame in raw.items()}
    return Dataset(layers=layers, metric_crs=metric, sources=sources, source_crs=source_crs,
                   missing_optional=[n for n in src.missing if n in names], warnings=dataset_warnings,
                   repaired=repaired, settings=src.settings, folder=src.data_dir, fids=fids)


def _read_layer(file: Path, layer: Layer, label: str, *, gpkg_layer: str | None, user_crs: str | None,
                read_options: dict | None = None, with_fids: bool = False):
    """One layer in WGS-84 lon/lat with typed, validated fields (and, ``with_fids``, the rows' feature ids).

    ``read_options`` (pyogrio ``bbox``, ``mask``, ``fids``, ``where``) read part of the layer; a part may be
    empty, a whole layer may not.
    """
    if file.suffix.lower() == ".csv":
        frame = _read_csv(file, layer, label)
        fids = np.arange(len(frame))
        if read_options:
            keep = _csv_part(frame, read_options)
            frame, fids = frame.iloc[keep].reset_index(drop=True), fids[keep]
    else:
        frame = _read_vector(file, label, gpkg_layer, **(read_options or {}))
        fids = frame.index.to_numpy() if read_options else np.arange(len(frame))
        frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        if read_options is not None:
            return (_empty_layer(layer), "EPSG:4326", [], fids) if with_fids else (_empty_layer(layer), "EPSG:4326", [])
        raise InputError("the layer is empty: it holds no feature", file=label)

    ids = frame["id"] if "id" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    ids = _as_str(ids)

    for fdef in layer.fields:
        if fdef.required and fdef.name not in frame.columns:
            have = ", ".join(c for c in frame.columns if c != "geometry") or "none"
            raise InputError(f"required field missing (fields present: {have})", file=label, field=fdef.name)

    frame = frame.copy()
    for fdef in layer.fields:
        if fdef.name not in frame.columns:
            if fdef.default is not None:
                frame[fdef.name] = fdef.default
            continue
        frame[fdef.name] = _coerce(frame[fdef.name], fdef, label, ids)

    if "id" in frame.columns:
        _check_ids(frame["id"], label)

    if layer.name == "households":
        bad = frame["persons"].notna() & (frame["persons"] < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"must be 0 or more, got {frame['persons'].iloc[i]}", file=label, index=i,
                             feature_id=ids.iloc[i], field="persons")
    if layer.name == "areas":
        bad = ~frame["kind"].isin(AREA_KINDS)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"unknown kind {frame['kind'].iloc[i]!r} (allowed: {', '.join(AREA_KINDS)})",
                             file=label, index=i, feature_id=ids.iloc[i], field="kind")
    if layer.name == "communities" and "ur_code" in frame.columns:
        code = frame["ur_code"]
        bad = code.notna() & ~code.astype("string").str.fullmatch(r"\d{3}").fillna(False).astype(bool)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"not a 3-digit urban-rural code: {code.iloc[i]!r}", file=label, index=i,
                             feature_id=ids.iloc[i], field="ur_code")

    source = _source_crs(frame, user_crs, label)
    geoms, fixed = _check_geometry(frame.geometry.to_numpy(), layer, label, ids)
    geoms = _to_wgs84(geoms, source, label, ids)
    out = gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=geoms, crs=_WGS84)
    out.index = pd.RangeIndex(len(out))
    if with_fids:
        return out, source.text, fixed, fids
    return out, source.text, fixed


def _csv_part(frame: gpd.GeoDataFrame, options: dict) -> np.ndarray:
    """Positions of a CSV layer's rows selected by ``fids`` (row numbers) or ``bbox`` (lon/lat)."""
    keep = np.arange(len(frame))
    if options.get("fids") is not None:
        keep = np.asarray(options["fids"], dtype=np.int64)
    if options.get("bbox") is not None:
        x0, y0, x1, y1 = options["bbox"]
        g = frame.geometry.to_numpy()[keep]
        present = ~shapely.is_missing(g)
        inside = np.zeros(len(keep), bool)
        inside[present] = shapely.intersects(shapely.box(x0, y0, x1, y1), g[present])
        keep = keep[inside]
    return keep


def _empty_layer(layer: Layer) -> gpd.GeoDataFrame:
    """A part of a layer with no row, with the declared fields."""
    return gpd.GeoDataFrame({f.name: pd.Series([], dtype=object) for f in layer.fields}, geometry=[], crs=_WGS84)


def _read_vector(file: Path, label: str, gpkg_layer: str | None, **options) -> gpd.GeoDataFrame:
    kind = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage", ".shp": "Shapefile"}[file.suffix.lower()]
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(file, layer=gpkg_layer, fid_as_index=bool(options), **options)
    except Exception as exc:  # noqa: BLE001 - GDAL raises many kinds
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as {kind}: {reason}", file=label) from None
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:
        raise InputError(f"cannot be read as {kind}: the file has no geometry", file=label)
    return frame


def _read_csv(file: Path, layer: Layer, label: str) -> gpd.GeoDataFrame:
    if layer.geometry != POINT:
        raise InputError(f"layer {layer.name!r} holds {layer.geometry}s: CSV is read for point layers only", file=label)
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot be read as CSV (UTF-8): {str(exc).splitlines()[0]}", file=label) from None
    lower = {c.lower().strip(): c for c in table.columns}
    lon_col = next((lower[n] for n in _LON_NAMES if n in lower), None)
    lat_col = next((lower[n] for n in _LAT_NAMES if n in lower), None)
    if lon_col is None or lat_col is None:
        raise InputError("a CSV layer needs lon and lat columns (or lng/longitude/latitude, x/y)", file=label,
                         field="lon" if lon_col is None else "lat")
    ids = _as_str(table["id"]) if "id" in table.columns else pd.Series([None] * len(table))
    coords = {}
    for col in (lon_col, lat_col):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"not a number: {table[col].iloc[i]!r}", file=label, index=i, feature_id=ids.iloc[i], field=col)
        coords[col] = values.to_numpy(dtype=float)
    x, y = coords[lon_col], coords[lat_col]
    half = np.isnan(x) != np.isnan(y)
    if half.any():
        i = int(np.flatnonzero(half)[0])
        raise InputError("has only one of lon/lat", file=label, index=i, feature_id=ids.iloc[i],
                         field=lon_col if np.isnan(x[i]) else lat_col)
    geoms = shapely.points(x, y)
    geoms[np.isnan(x)] = None
    return gpd.GeoDataFrame(table.drop(columns=[lon_col, lat_col]), geometry=geoms)


def _as_str(values: pd.Series) -> pd.Series:
    """Values as text (object dtype); whole floats lose their '.0'; nulls become None."""
    null = pd.isna(values).to_numpy()
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float)
        whole = np.isfinite(v) & (np.floor(v) == v)
        text = np.where(whole, pd.Series(np.where(whole, v, 0)).astype("int64").astype(str).to_numpy(), values.astype(str).to_numpy())
        out = pd.Series(text, index=values.index, dtype=object)
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = pd.Series(values.dt.strftime("%Y-%m-%d").to_numpy(), index=values.index, dtype=object)
    else:
        out = values.astype(str).astype(object)
    out[null] = None
    return out


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _coerce(values: pd.Series, fdef, label: str, ids: pd.Series) -> pd.Series:
    """A column converted to its declared type; the first bad value raises InputError."""
    null = pd.isna(values).to_numpy()
    if values.dtype == object:
        null |= values.astype(str).str.strip().eq("").to_numpy() & ~null
    if fdef.type == STR:
        out = _as_str(values)
        out[null] = None
    elif fdef.type == INT:
        numbers = pd.to_numeric(values.where(~null), errors="coerce")
        bad = (numbers.isna().to_numpy() & ~null) | (~null & ~np.isclose(numbers.fillna(0) % 1, 0) & ~np.isclose(numbers.fillna(0) % 1, 1))
        if bad.any():
            i = _first(bad)
            raise InputError(f"not a whole number: {values.iloc[i]!r}", file=label, index=i, feature_id=ids.iloc[i], field=fdef.name)
        out = numbers.round().astype("Int64")
    elif fdef.type == BOOL:
        if values.dtype == bool:
            out = values.astype(object)
        else:
            text = values.astype(str).str.strip().str.lower()
            is_true = text.isin(_TRUE).to_numpy()
            is_false = text.isin(_FALSE).to_numpy()
            bad = ~null & ~is_true & ~is_false
            if bad.any():
                i = _first(bad)
                raise InputError(f"not true/false: {values.iloc[i]!r}", file=label, index=i, feature_id=ids.iloc[i], field=fdef.name)
            out = pd.Series(np.where(is_true, True, False), index=values.index, dtype=object)
        if fdef.default is not None:
            out = pd.Series(np.where(null, fdef.default, out.to_numpy()), index=values.index).astype(bool)
        else:
            out = out.astype(object)
            out[null] = None
    elif fdef.type == DATE:
        text = _as_str(values)
        parsed = pd.to_datetime(text.where(~null), format="%Y-%m-%d", errors="coerce")
        bad = parsed.isna().to_numpy() & ~null
        if bad.any():
            i = _first(bad)
            raise InputError(f"not a date (YYYY-MM-DD): {values.iloc[i]!r}", file=label, index=i, feature_id=ids.iloc[i], field=fdef.name)
        out = pd.Series(parsed.dt.strftime("%Y-%m-%d").to_numpy(), index=values.index, dtype=object)
        out[parsed.isna().to_numpy()] = None
    else:
        out = values
    if null.any() and not fdef.nullable and fdef.default is None:
        i = _first(null)
        raise InputError("is empty but required", file=label, index=i, feature_id=ids.iloc[i], field=fdef.name)
    return out


def _check_ids(ids: pd.Series, label: str) -> None:
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        i = _first(dup)
        first = _first((ids == ids.iloc[i]).to_numpy())
        raise InputError(f"duplicate id {ids.iloc[i]!r} (also feature {first})", file=label, index=i, feature_id=ids.iloc[i], field="id")


def _source_crs(frame: gpd.GeoDataFrame, user_crs: str | None, label: str) -> SourceCRS:
    if user_crs:
        try:
            return parse_crs(user_crs)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    if frame.crs is not None and not frame.crs.equals(_WGS84) and not frame.crs.equals(pyproj.CRS("OGC:CRS84")):
        return SourceCRS(text=frame.crs.to_string(), crs=frame.crs)
    return SourceCRS(text="EPSG:4326", crs=_WGS84)


def _check_geometry(geoms: np.ndarray, layer: Layer, label: str, ids: pd.Series) -> tuple[np.ndarray, list[dict]]:
    geoms = np.asarray(geoms, dtype=object).copy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any() and not layer.geometry_optional:
        i = _first(missing)
        raise InputError("has no geometry (null or empty)", file=label, index=i, feature_id=ids.iloc[i], field="geometry")
    geoms[missing] = None
    present = ~missing
    types = np.asarray(shapely.get_type_id(geoms))
    type_of = {t: _TYPE_NAMES.get(int(t), "None") for t in np.unique(types)}
    allowed = _GEOM_TYPES[layer.geometry]
    allowed_ids = [t for t, n in _TYPE_NAMES.items() if n in allowed]
    ok_type = np.isin(types, allowed_ids) | missing
    if not ok_type.all():
        i = _first(~ok_type)
        want = " or ".join(sorted(allowed))
        raise InputError(f"geometry is a {type_of[types[i]]}, expected {want}", file=label, index=i,
                         feature_id=ids.iloc[i], field="geometry")
    coords_ok = np.ones(len(geoms), dtype=bool)
    coords_ok[present] = np.isfinite(shapely.bounds(geoms[present])).all(axis=1)
    if not coords_ok.all():
        i = _first(~coords_ok)
        raise InputError("has coordinates that are not finite numbers", file=label, index=i, feature_id=ids.iloc[i], field="geometry")

    fixed: list[dict] = []
    if layer.geometry == POLYGON:
        valid = shapely.is_valid(geoms) | missing
        for i in np.flatnonzero(~valid):
            problem = shapely.is_valid_reason(geoms[i])
            repaired = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
            polys = [p for p in shapely.get_parts(repaired) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
            if not polys:
                raise InputError(f"invalid polygon that cannot be repaired ({problem})", file=label, index=int(i),
                                 feature_id=ids.iloc[i], field="geometry")
            geoms[i] = shapely.union_all(polys) if len(polys) > 1 else polys[0]
            if geoms[i].geom_type not in allowed:
                geoms[i] = shapely.multipolygons(shapely.get_parts(geoms[i]))
            fixed.append({"layer": layer.name, "index": int(i), "id": ids.iloc[i], "problem": f"invalid polygon ({problem})"})
    return geoms, fixed


def _to_wgs84(geoms: np.ndarray, source: SourceCRS, label: str, ids: pd.Series) -> np.ndarray:
    present = ~shapely.is_missing(geoms)
    if source.is_geographic:
        bounds = shapely.bounds(geoms[present])
        bad_rows = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1)
        if bad_rows.any():
            i = int(np.flatnonzero(present)[_first(bad_rows)])
            x0, y0 = bounds[_first(bad_rows), :2]
            msg = (f"coordinates are not lon/lat degrees (x={x0:.6g}, y={y0:.6g}); if the file is in a projected "
                   f"CRS, name it with --crs or in {CONFIG_NAME} under [crs]")
            raise InputError(msg, file=label, index=i, feature_id=ids.iloc[i], field="geometry")
    if source.offset:
        out = geoms.copy()
        out[present] = transform_geometries(geoms[present], lambda x, y: offset_to_wgs84(x, y, source.offset))
        return out
    if source.crs is not None and not source.crs.equals(_WGS84):
        series = gpd.GeoSeries(geoms, crs=source.crs)
        try:
            out = series.to_crs(_WGS84).to_numpy()
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot convert from {source.text} to WGS-84: {exc}", file=label) from None
        bad = present & ~np.isfinite(shapely.bounds(out)).all(axis=1) if present.any() else present
        if bad.any():
            i = _first(bad)
            raise InputError(f"coordinates are outside the area of {source.text}", file=label, index=i,
                             feature_id=ids.iloc[i], field="geometry")
        return out
    return geoms


def _check_references(raw: dict[str, gpd.GeoDataFrame], sources: dict[str, str]) -> None:
    for name in LAYER_ORDER:
        frame = raw.get(name)
        if frame is None:
            continue
        for fdef in LAYERS[name].fields:
            if not fdef.references or fdef.name not in frame.columns:
                continue
            target_layer, target_field = fdef.references.split(".")
            values = frame[fdef.name]
            used = values.notna().to_numpy()
            if not used.any():
                continue
            target = raw.get(target_layer)
            known = set(target[target_field]) if target is not None else set()
            dangling = used & ~values.isin(known).to_numpy()
            if dangling.any():
                i = _first(dangling)
                where = f"not in {target_layer}" if target is not None else f"there is no {target_layer} layer"
                ids = frame["id"] if "id" in frame.columns else pd.Series([None] * len(frame))
                raise InputError(f"refers to {target_layer} {values.iloc[i]!r}, {where}", file=Path(sources[name]).name,
                                 index=i, feature_id=ids.iloc[i], field=fdef.name)
