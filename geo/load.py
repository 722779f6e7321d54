"""Validate the input layers, as read from their files, into one metric CRS: frames in, frames out.

Maps the user's columns to the data model's fields, types and checks every declaration of
``geo.schema``, resolves each layer's coordinate system (``--crs`` > ``gridcover.toml`` > the file's own >
WGS-84), converts GCJ-02/BD-09, repairs what can be repaired and raises one
:class:`~geo.errors.InputError` naming file, feature and field for the first problem (or, with
``--skip-invalid``, leaves the feature out with its reason). Reading the files is the application's
(:mod:`gridcover.io.folder`).

Example
-------
>>> check_config({"columns": {"grids": {"worker_name": "网格员"}}}, label="gridcover.toml")["columns"]
{'grids': {'worker_name': '网格员'}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.cases import URGENCIES, case_times, normalise_urgency
from geo.crs import SourceCRS, local_metric_crs, offset_to_wgs84, parse_crs, transform_geometries
from geo.errors import ConfigError, InputError
from geo.schema import (AREA_KINDS, BOOL, BOUNDARY_LAYERS, DATE, DATETIME, INT, LAYER_ORDER, LAYERS, LINE, POINT, POLYGON, STR,
                        InputLayer)
from geo.settings import Settings

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
    folder: Path | None = None  # the data folder (its rule files are read into configs)
    fids: dict = field(default_factory=dict)  # layer -> GDAL feature id of each row (partial reads only)
    rejects: gpd.GeoDataFrame | None = None  # features left out by --skip-invalid (None: the flag was not given)
    references_cleared: dict = field(default_factory=dict)  # "layer.field" -> dangling references dropped
    #: the data folder's own rule files as read, ``{"categories.toml": {"text": bytes, "source": path}}`` (the
    #: keyword arguments of geo.reach.load_config and geo.risk.load_risk_config; absent: the defaults)
    configs: dict = field(default_factory=dict)

    def get(self, name: str) -> gpd.GeoDataFrame | None:
        return self.layers.get(name)


def check_config(config: dict, *, label: str) -> dict:
    """A data folder's ``gridcover.toml``, parsed, checked: its sections and ``[columns.<layer>]`` tables.

    Parameters
    ----------
    config
        The file's TOML as a dict.
    label
        How messages name the file (its path).

    Returns
    -------
    ``config`` itself; a :class:`ConfigError` naming the file, the section and the key for anything wrong.

    Examples
    --------
    >>> check_config({"crs": {"default": "gcj02"}}, label="gridcover.toml")
    {'crs': {'default': 'gcj02'}}
    >>> check_config({"colour": {}}, label="gridcover.toml")
    Traceback (most recent call last):
    ...
    geo.errors.ConfigError: gridcover.toml: unknown section(s) colour (known: crs, analysis, columns)
    """
    path = label
    unknown = set(config) - {"crs", "analysis", "columns"}
    if unknown:
        msg = f"{path}: unknown section(s) {', '.join(sorted(unknown))} (known: crs, analysis, columns)"
        raise ConfigError(msg)
    for name, mapping in config.get("columns", {}).items():
        if name not in LAYERS:
            raise ConfigError(f"{path}: [columns.{name}]: unknown layer (known: {', '.join(LAYER_ORDER)})")
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: [columns.{name}] must be a table of field = \"column\"")
        known = [f.name for f in LAYERS[name].fields] + (["lon", "lat"] if LAYERS[name].geometry == POINT else [])
        for key, column in mapping.items():
            if key not in known:
                raise ConfigError(f"{path}: [columns.{name}]: {key!r} is not a field of {name} (fields: {', '.join(known)})")
            if not isinstance(column, str) or not column:
                raise ConfigError(f"{path}: [columns.{name}]: {key} must name a column as text, got {column!r}")
        columns = list(mapping.values())
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ConfigError(f"{path}: [columns.{name}]: column {twice[0]!r} is named for two fields")
    return config


@dataclass
class LayerRead:
    """One layer as :func:`validate_layer` made it: the kept rows, and what it repaired, noticed and left out."""

    frame: gpd.GeoDataFrame
    crs_text: str
    fixed: list
    fids: np.ndarray
    notes: list
    rejects: gpd.GeoDataFrame | None  # features left out (WGS-84) with layer, id, field, reason; None: none


def metric_crs_of(grids: gpd.GeoDataFrame) -> pyproj.CRS:
    """The run's metric CRS: a local one centred on the grids' extent (WGS-84 lon/lat)."""
    centre = grids.geometry.total_bounds
    return local_metric_crs((centre[0] + centre[2]) / 2.0, (centre[1] + centre[3]) / 2.0)


#: What the one-line error adds for a feature that ``--skip-invalid`` would leave out.
SKIP_HINT = "leave it out"


class _Rejects:
    """The features of one layer that cannot be used: the error that stops the run, or (``skip``) the rows
    left out, each with its field and reason.

    Call it with a mask of bad rows, the field and the reason (text, or a function of the row position).
    Without ``skip`` it raises :class:`InputError` for the first bad row (adding what ``--skip-invalid``
    would do, for the layers it applies to); with ``skip`` it records them, drops them from ``keep`` and
    returns the mask so that the caller can go on without their values. Rows already left out are ignored.
    """

    def __init__(self, layer: str | None, label: str, ids: pd.Series, *, skip: bool = False,
                 positions: np.ndarray | None = None) -> None:
        self.layer, self.label, self.ids = layer, label, ids
        self.positions = positions  # each row's feature number in its file, when rows were left out before
        self.asked = skip
        self.skip = skip and layer not in BOUNDARY_LAYERS
        self.keep = np.ones(len(ids), dtype=bool)
        self.rows: list[tuple[int, str, str]] = []

    def __call__(self, mask, field: str, reason, *, hint: str = SKIP_HINT) -> np.ndarray:
        mask = np.asarray(mask, dtype=bool) & self.keep
        if not mask.any():
            return mask
        reason_of = reason if callable(reason) else (lambda _i: reason)
        if not self.skip:
            i = _first(mask)
            tail = ""
            if self.layer in BOUNDARY_LAYERS and self.asked:
                tail = f"; --skip-invalid never leaves out {', '.join(BOUNDARY_LAYERS)} (a wrong boundary makes every answer wrong)"
            elif self.layer is not None and self.layer not in BOUNDARY_LAYERS:
                tail = f"; --skip-invalid would {hint}"
            index = int(self.positions[i]) if self.positions is not None else i
            raise InputError(f"{reason_of(i)}{tail}", file=self.label, index=index, feature_id=self.ids.iloc[i], field=field)
        self.rows.extend((int(i), field, str(reason_of(int(i)))) for i in np.flatnonzero(mask))
        self.keep &= ~mask
        return mask


def _rejects_frame(layer: str, props: pd.DataFrame, geoms: np.ndarray, ids: pd.Series, rows: list,
                   positions: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """The left-out rows as features: their properties as text, the geometry (WGS-84) and ``layer``, ``id``,
    ``field``, ``reason`` and ``feature`` (the row's position in its file, counted from 0 like every message)."""
    pos = np.array([r[0] for r in rows], dtype=np.int64)
    table = pd.DataFrame({c: _as_str(props[c].iloc[pos]).to_numpy() for c in props.columns if c != "geometry"})
    lead = pd.DataFrame({"layer": layer, "id": ids.iloc[pos].to_numpy(), "field": [r[1] for r in rows],
                         "reason": [r[2] for r in rows], "feature": pos if positions is None else positions[pos]})
    table = pd.concat([lead, table.drop(columns=[c for c in lead.columns if c in table.columns])], axis=1)
    return gpd.GeoDataFrame(table, geometry=np.asarray(geoms, dtype=object)[pos], crs=_WGS84)


def _concat_rejects(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Every layer's left-out features in one frame (an empty one with the four columns when none)."""
    if not frames:
        return gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in ("layer", "id", "field", "reason", "feature")},
                                geometry=[], crs=_WGS84)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=_WGS84)


def _rejected_geometry(geoms: np.ndarray, source: SourceCRS) -> np.ndarray:
    """The original geometries in WGS-84 where they can be converted (None where not: no fake location)."""
    out = np.asarray(geoms, dtype=object).copy()
    usable = ~(shapely.is_missing(out) | shapely.is_empty(out))
    usable[usable] = np.isfinite(shapely.bounds(out[usable])).all(axis=1)
    out[~usable] = None
    if not usable.any():
        return out
    try:
        if source.offset:
            out[usable] = transform_geometries(out[usable], lambda x, y: offset_to_wgs84(x, y, source.offset))
        elif source.crs is not None and not source.crs.equals(_WGS84):
            out[usable] = gpd.GeoSeries(out[usable], crs=source.crs).to_crs(_WGS84).to_numpy()
    except Exception:  # noqa: BLE001 - a reject keeps its properties even when its geometry cannot be converted
        out[usable] = None
        return out
    bounds = shapely.bounds(out[usable])
    lonlat = np.isfinite(bounds).all(axis=1) & (np.abs(bounds[:, [0, 2]]) <= 180).all(axis=1) \
        & (np.abs(bounds[:, [1, 3]]) <= 90).all(axis=1)
    idx = np.flatnonzero(usable)
    out[idx[~lonlat]] = None
    return out


def _typed_fields(frame: gpd.GeoDataFrame, layer: InputLayer, label: str, ids: pd.Series, *, reject: "_Rejects",
                  notes: list) -> gpd.GeoDataFrame:
    """A copy of ``frame`` with every declared field typed (a missing one filled with its default or empty, and
    said), the ids unique, and the layer's own rules checked (persons, area kinds, urban-rural codes)."""
    frame = frame.copy()
    for fdef in layer.fields:
        if fdef.name not in frame.columns:
            if fdef.default is not None:
                frame[fdef.name] = fdef.default
                if fdef.required:  # a special-group flag: say that nobody is counted in it
                    notes.append(f"{label}: no {fdef.name!r} column: {str(fdef.default).lower()} in every row")
            elif fdef.required:  # a field that may be empty, and is empty in every row
                frame[fdef.name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
                notes.append(f"{label}: no {fdef.name!r} column: read as empty in every row")
            continue
        frame[fdef.name] = _coerce(frame[fdef.name], fdef, label, ids, reject=reject)

    if "id" in frame.columns:
        _check_ids(frame["id"], label, reject=reject)

    if layer.name == "households":
        reject(frame["persons"].notna().to_numpy() & (frame["persons"].fillna(0) < 0).to_numpy(), "persons",
               lambda i: f"must be 0 or more, got {frame['persons'].iloc[i]}")
    if layer.name == "areas":
        reject(~frame["kind"].isin(AREA_KINDS).to_numpy(), "kind",
               lambda i: f"unknown kind {frame['kind'].iloc[i]!r} (allowed: {', '.join(AREA_KINDS)})")
    if layer.name == "cases":
        _check_cases(frame, reject=reject)
    if layer.name == "communities" and "ur_code" in frame.columns:
        code = frame["ur_code"]
        bad = code.notna() & ~code.astype("string").str.fullmatch(r"\d{3}").fillna(False).astype(bool)
        reject(bad.to_numpy(), "ur_code", lambda i: f"not a 3-digit urban-rural code: {code.iloc[i]!r}")
    return frame


#: The urgencies a case may be given in, as a message says them.
_URGENCY_WORDS = f"{', '.join(URGENCIES)}; 一般/普通, 紧急, 跨部门"


def _check_cases(frame: pd.DataFrame, *, reject: "_Rejects") -> None:
    """A cases layer's own rules (in place): ``urgency`` one of :data:`geo.cases.URGENCIES` (Chinese spellings
    read as them), ``accepted_at`` and ``closed_at`` not before ``reported_at``, ``closed_at`` not before
    ``accepted_at``. Times without an offset are compared as they are written (the same local clock)."""
    given = frame["urgency"]
    urgency = normalise_urgency(given)
    reject(urgency.isna().to_numpy() & given.notna().to_numpy(), "urgency",
           lambda i: f"unknown urgency {given.iloc[i]!r} (allowed: {_URGENCY_WORDS})")
    frame["urgency"] = urgency.astype(object).where(urgency.notna(), None)
    times = {c: case_times(frame[c]) for c in ("reported_at", "accepted_at", "closed_at") if c in frame.columns}
    for later, earlier in (("accepted_at", "reported_at"), ("closed_at", "reported_at"), ("closed_at", "accepted_at")):
        if later in times and earlier in times:
            early = (times[later] < times[earlier]).fillna(False).to_numpy(bool)
            reject(early, later, lambda i, later=later, earlier=earlier:
                   f"{frame[later].iloc[i]!r} is before {earlier} {frame[earlier].iloc[i]!r}")


def validate_layer(frame: gpd.GeoDataFrame, layer: InputLayer, label: str, *, fids: np.ndarray, user_crs: str | None,
                   problems: list, notes: list, partial: bool = False, skip_invalid: bool = False) -> LayerRead:
    """One layer as read from its file, in WGS-84 lon/lat with typed, validated fields, and what was left out.

    Parameters
    ----------
    frame
        The rows as read, columns already mapped to the data model's fields (:func:`map_columns`).
    layer
        Its declaration in :mod:`geo.schema`.
    label
        How messages name the file (``households.geojson``, ``data.gpkg:grids``).
    fids
        The feature id (or row number) in the file of each row.
    user_crs
        The CRS the user named for the layer (``--crs``, ``gridcover.toml``), else None.
    problems
        ``(mask, field, reason)`` found while reading, before the ids are known.
    notes
        Where to append what the loader noticed.
    partial
        The frame is part of a layer: it may be empty.
    skip_invalid
        Leave out the features that cannot be used (not in the boundary layers) instead of stopping at the first.

    Examples
    --------
    >>> import shapely
    >>> frame = gpd.GeoDataFrame({"id": ["B1"]}, geometry=[shapely.box(104.0, 30.0, 104.001, 30.001)])
    >>> read = validate_layer(frame, LAYERS["buildings"], "buildings.geojson", fids=np.arange(1), user_crs=None,
    ...                       problems=[], notes=[])
    >>> read.frame["id"].tolist(), read.crs_text
    (['B1'], 'EPSG:4326')
    """
    if len(frame) == 0:
        if partial:
            return LayerRead(_empty_layer(layer), "EPSG:4326", [], fids, notes, None)
        raise InputError("the layer is empty: it holds no feature", file=label)
    original = frame  # the rows as read (with the user's column names back when left out)
    renamed = frame.attrs.get("renamed", {})

    ids = frame["id"] if "id" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    ids = _as_str(ids)
    reject = _Rejects(layer.name, label, ids, skip=skip_invalid)

    for fdef in layer.fields:
        if fdef.required and not fdef.nullable and fdef.default is None and fdef.name not in frame.columns:
            have = ", ".join(c for c in frame.columns if c != "geometry") or "none"
            raise InputError(f"required field missing (fields present: {have})", file=label, field=fdef.name)
    for mask, fname, reason in problems:
        reject(mask, fname, reason)

    frame = _typed_fields(frame, layer, label, ids, reject=reject, notes=notes)

    source = _source_crs(frame, user_crs, label)
    geoms, fixed = _check_geometry(frame.geometry.to_numpy(), layer, label, ids, reject=reject)
    geoms = _to_wgs84(geoms, source, label, ids, reject=reject)
    out = gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=geoms, crs=_WGS84)
    rejects = None
    if reject.rows:
        props = pd.DataFrame(original.drop(columns="geometry")).rename(columns={v: k for k, v in renamed.items()})
        pos = np.array([r[0] for r in reject.rows], dtype=np.int64)
        shown = np.full(len(original), None, dtype=object)  # only the left-out rows are converted
        shown[pos] = _rejected_geometry(original.geometry.to_numpy()[pos], source)
        rejects = _rejects_frame(layer.name, props, shown, ids, reject.rows)
        keep = reject.keep
        out, fids = out[keep], fids[keep]
        fixed = [item for item in fixed if keep[item["index"]]]
        noun = "feature" if len(reject.rows) == 1 else "features"
        notes.append(f"{label}: {len(reject.rows)} {noun} left out (--skip-invalid), listed in rejects.geojson")
    out.index = pd.RangeIndex(len(out))
    out.attrs.pop("renamed", None)  # the loader's bookkeeping, not the layer's
    return LayerRead(out, source.text, fixed, fids, notes, rejects)


def _map_columns(frame: pd.DataFrame, layer: InputLayer, label: str, mapping: dict, *, config_label: str,
                 shapefile: bool, notes: list) -> pd.DataFrame:
    """The user's columns renamed to the data model's fields: ``[columns.<layer>]`` first, then the
    Shapefile's 10-character cuts of long field names where only one field of the layer has that cut.

    ``attrs["renamed"]`` holds ``{user column: field}``. A mapping to a column the file does not hold is a
    :class:`ConfigError` naming the configuration file, the layer and the column.
    """
    present = [c for c in frame.columns if c != "geometry"]
    rename: dict[str, str] = {}
    for fname, column in mapping.items():
        if fname in ("lon", "lat") and "geometry" in frame.columns:  # a vector file: its geometry is the location
            msg = f"{config_label}: [columns.{layer.name}] {fname} = {column!r}: lon and lat are read from CSV files only"
            raise ConfigError(msg)
        if column not in frame.columns:
            msg = (f"{config_label}: [columns.{layer.name}] {fname} = {column!r}: {label} has no column {column!r} "
                   f"(columns: {', '.join(present) or 'none'})")
            raise ConfigError(msg)
        rename[column] = fname
    if shapefile:
        cuts: dict[str, list[str]] = {}
        for fdef in layer.fields:
            if len(fdef.name) > 10:
                cuts.setdefault(fdef.name[:10], []).append(fdef.name)
        for cut, names in cuts.items():
            if cut not in frame.columns or cut in rename:
                continue
            wanted = [n for n in names if n not in frame.columns and n not in mapping]
            if not wanted:
                continue
            if len(names) > 1:
                notes.append(f"{label}: column {cut!r} could be any of {', '.join(names)} (Shapefile names are cut "
                             f"to 10 characters): not read; name it under [columns.{layer.name}] in {CONFIG_NAME}")
                continue
            rename[cut] = names[0]
            notes.append(f"{label}: column {cut!r} read as {names[0]!r} (Shapefile field names are cut to 10 characters)")
    clash = [f for c, f in rename.items() if f in frame.columns and f not in rename and c != f]
    if clash:
        user = next(c for c, f in rename.items() if f == clash[0])
        msg = (f"{config_label}: [columns.{layer.name}] {clash[0]} = {user!r}: {label} also has a column named "
               f"{clash[0]!r}; rename or drop one of them")
        raise ConfigError(msg)
    out = frame.rename(columns=rename) if rename else frame
    out.attrs["renamed"] = {c: f for c, f in rename.items() if c != f}
    return out


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


def _empty_layer(layer: InputLayer) -> gpd.GeoDataFrame:
    """A part of a layer with no row, with the declared fields."""
    return gpd.GeoDataFrame({f.name: pd.Series([], dtype=object) for f in layer.fields}, geometry=[], crs=_WGS84)


def csv_points(table: pd.DataFrame, layer: InputLayer, label: str, *, columns: dict | None = None,
               config_label: str = CONFIG_NAME, problems: list | None = None,
               notes: list | None = None) -> gpd.GeoDataFrame:
    """A CSV point layer's table (text columns) with its columns mapped (``columns``) and points built from
    its lon/lat columns.

    Bad coordinates raise :class:`InputError`, or with ``problems`` are appended to it as (mask, field,
    reason) and the rows get no geometry.

    Examples
    --------
    >>> table = pd.DataFrame({"id": ["H1"], "persons": ["2"], "lon": ["104.0"], "lat": ["30.0"]})
    >>> csv_points(table, LAYERS["households"], "households.csv").geometry.iloc[0].wkt
    'POINT (104 30)'
    """
    table = _map_columns(table, layer, label, columns or {}, config_label=config_label, shapefile=False,
                         notes=notes if notes is not None else [])
    renamed = table.attrs.get("renamed", {})
    lower = {c.lower().strip(): c for c in table.columns}
    lon_col = next((lower[n] for n in _LON_NAMES if n in lower), None)
    lat_col = next((lower[n] for n in _LAT_NAMES if n in lower), None)
    if lon_col is None and lat_col is None and layer.table_allowed:  # a table: placed by its other fields
        out = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries([None] * len(table), index=table.index))
        out.attrs["renamed"] = renamed
        return out
    if lon_col is None or lat_col is None:
        raise InputError("a CSV layer needs lon and lat columns (or lng/longitude/latitude, x/y), or name them "
                         f"under [columns.{layer.name}] in {CONFIG_NAME}", file=label,
                         field="lon" if lon_col is None else "lat")
    ids = _as_str(table["id"]) if "id" in table.columns else pd.Series([None] * len(table))
    reject = _Rejects(None, label, ids) if problems is None else None
    user = {v: k for k, v in renamed.items()}
    coords, gone = {}, np.zeros(len(table), dtype=bool)
    for col in (lon_col, lat_col):
        name = user.get(col, col)
        values = pd.to_numeric(table[col], errors="coerce")
        text = table[col]
        bad = (values.isna() & text.notna()).to_numpy() | ~np.isfinite(values.fillna(0).to_numpy(dtype=float))
        reason = (lambda i, text=text: f"not a finite number: {text.iloc[i]!r}")
        if reject is not None:
            reject(bad, name, reason)
        elif bad.any():
            problems.append((bad, name, reason))
        gone |= bad
        coords[col] = np.where(bad, np.nan, values.to_numpy(dtype=float))
    x, y = coords[lon_col], coords[lat_col]
    half = (np.isnan(x) != np.isnan(y)) & ~gone
    if half.any():
        i = int(np.flatnonzero(half)[0])
        field_name = user.get(lon_col, lon_col) if np.isnan(x[i]) else user.get(lat_col, lat_col)
        if reject is not None:
            reject(half, field_name, "has only one of lon/lat")
        else:
            problems.append((half, field_name, "has only one of lon/lat"))
    geoms = shapely.points(x, y)
    geoms[np.isnan(x) | np.isnan(y)] = None
    out = gpd.GeoDataFrame(table.drop(columns=[lon_col, lat_col]), geometry=geoms)
    out.attrs["renamed"] = renamed
    return out


def _as_str(values: pd.Series) -> pd.Series:
    """Values as text (object dtype); whole floats lose their '.0'; nulls become None."""
    null = np.array(pd.isna(values), dtype=bool)  # a writable copy (pandas 3 hands out read-only views)
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


def _coerce(values: pd.Series, fdef, label: str, ids: pd.Series, *, reject: "_Rejects | None" = None) -> pd.Series:
    """A column converted to its declared type; a bad value goes to ``reject`` (default: raises InputError)."""
    reject = reject or _Rejects(None, label, ids)
    null = np.array(pd.isna(values), dtype=bool)  # a writable copy (pandas 3 hands out read-only views)
    if not pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        null |= values.astype(str).str.strip().eq("").to_numpy() & ~null
    if fdef.type == STR:
        out = _as_str(values)
        out[null] = None
    elif fdef.type == INT:
        numbers = pd.to_numeric(values.where(~null), errors="coerce")
        frac = (numbers.fillna(0) % 1).to_numpy(dtype=float)
        bad = (numbers.isna().to_numpy() & ~null) | (~null & ~np.isclose(frac, 0) & ~np.isclose(frac, 1))
        bad = reject(bad, fdef.name, lambda i: f"not a whole number: {values.iloc[i]!r}")
        null = null | bad
        out = numbers.where(~null).round().astype("Int64")
    elif fdef.type == BOOL:
        if pd.api.types.is_bool_dtype(values.dtype) and not null.any():
            out = values.astype(object)
        else:
            text = values.astype(str).str.strip().str.lower()
            is_true = text.isin(_TRUE).to_numpy()
            is_false = text.isin(_FALSE).to_numpy()
            bad = reject(~null & ~is_true & ~is_false, fdef.name, lambda i: f"not true/false: {values.iloc[i]!r}")
            null = null | bad
            out = pd.Series(np.where(is_true, True, False), index=values.index, dtype=object)
        if fdef.default is not None:
            out = pd.Series(np.where(null, fdef.default, out.to_numpy()), index=values.index).astype(bool)
        else:
            out = out.astype(object)
            out[null] = None
    elif fdef.type == DATE:
        text = _as_str(values)
        parsed = pd.to_datetime(text.where(~null), format="%Y-%m-%d", errors="coerce")
        bad = reject(parsed.isna().to_numpy() & ~null, fdef.name,
                     lambda i: f"not a date (YYYY-MM-DD): {values.iloc[i]!r}")
        null = null | bad
        out = pd.Series(parsed.dt.strftime("%Y-%m-%d").to_numpy(), index=values.index, dtype=object)
        out[np.array(parsed.isna(), dtype=bool)] = None
    elif fdef.type == DATETIME:  # checked here, kept as the text given (its zone is the rules' to read)
        out = _as_str(values) if not pd.api.types.is_datetime64_any_dtype(values.dtype) else \
            pd.Series(values.map(lambda v: None if pd.isna(v) else v.isoformat(sep=" ")), index=values.index, dtype=object)
        out = out.str.strip().where(~null, None).astype(object)
        bad = reject(case_times(out.where(~null)).isna().to_numpy() & ~null, fdef.name,
                     lambda i: f"not a date-time (YYYY-MM-DD HH:MM, ISO 8601): {values.iloc[i]!r}")
        null = null | bad
        out[null] = None
    else:
        out = values
    if not fdef.nullable and fdef.default is None:
        reject(null, fdef.name, "is empty but required")
    return out


def _check_ids(ids: pd.Series, label: str, *, reject: "_Rejects | None" = None) -> None:
    """Duplicate ids (the second and later of each) go to ``reject`` (default: raises InputError)."""
    reject = reject or _Rejects(None, label, ids)
    known = ids.notna().to_numpy()
    dup = ids.duplicated(keep="first").to_numpy() & known
    if dup.any():
        first = pd.Series(np.arange(len(ids)), index=ids.index).groupby(ids.to_numpy()).transform("min").to_numpy()
        reject(dup, "id", lambda i: f"duplicate id {ids.iloc[i]!r} (also feature {int(first[i])})")


def _source_crs(frame: gpd.GeoDataFrame, user_crs: str | None, label: str) -> SourceCRS:
    if user_crs:
        try:
            return parse_crs(user_crs)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    if frame.crs is not None and not frame.crs.equals(_WGS84) and not frame.crs.equals(pyproj.CRS("OGC:CRS84")):
        return SourceCRS(text=frame.crs.to_string(), crs=frame.crs)
    return SourceCRS(text="EPSG:4326", crs=_WGS84)


def _check_geometry(geoms: np.ndarray, layer: InputLayer, label: str, ids: pd.Series, *,
                    reject: "_Rejects | None" = None) -> tuple[np.ndarray, list[dict]]:
    """Geometries checked (type, finite coordinates) and invalid polygons repaired; a feature that cannot be
    used goes to ``reject`` (default: raises InputError) and gets no geometry."""
    reject = reject or _Rejects(None, label, ids)
    geoms = np.asarray(geoms, dtype=object).copy()
    null = shapely.is_missing(geoms)
    empty = shapely.is_empty(geoms) & ~null
    if layer.geometry_optional:
        # a null geometry means "no location"; an empty one is what NaN coordinates become (POINT EMPTY)
        reject(empty, "geometry", "has an empty geometry or NaN coordinates (leave the geometry null for no location)")
    else:
        reject(null | empty, "geometry", "has no geometry (null or empty)")
    missing = null | empty
    geoms[missing] = None
    types = np.asarray(shapely.get_type_id(geoms))
    allowed = _GEOM_TYPES[layer.geometry]
    allowed_ids = [t for t, n in _TYPE_NAMES.items() if n in allowed]
    want = " or ".join(sorted(allowed))
    wrong = reject(~(np.isin(types, allowed_ids) | missing), "geometry",
                   lambda i: f"geometry is a {_TYPE_NAMES.get(int(types[i]), 'None')}, expected {want}")
    geoms[wrong] = None
    missing = missing | wrong
    present = ~missing
    coords_ok = np.ones(len(geoms), dtype=bool)
    coords_ok[present] = np.isfinite(shapely.bounds(geoms[present])).all(axis=1)
    bad = reject(~coords_ok, "geometry", "has coordinates that are not finite numbers (NaN or infinite)")
    geoms[bad] = None
    missing = missing | bad

    fixed: list[dict] = []
    if layer.geometry == POLYGON:
        valid = shapely.is_valid(geoms) | missing
        for i in np.flatnonzero(~valid):
            problem = shapely.is_valid_reason(geoms[i])
            repaired = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
            polys = [p for p in shapely.get_parts(repaired) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
            if not polys:
                one = np.zeros(len(geoms), dtype=bool)
                one[i] = True
                reject(one, "geometry", f"invalid polygon that cannot be repaired ({problem})")
                geoms[i] = None
                continue
            geoms[i] = shapely.union_all(polys) if len(polys) > 1 else polys[0]
            if geoms[i].geom_type not in allowed:
                geoms[i] = shapely.multipolygons(shapely.get_parts(geoms[i]))
            fixed.append({"layer": layer.name, "index": int(i), "id": ids.iloc[i], "problem": f"invalid polygon ({problem})"})
    return geoms, fixed


def _to_wgs84(geoms: np.ndarray, source: SourceCRS, label: str, ids: pd.Series, *,
              reject: "_Rejects | None" = None) -> np.ndarray:
    """Geometries converted to WGS-84; a feature whose coordinates do not fit the CRS goes to ``reject``."""
    reject = reject or _Rejects(None, label, ids)
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    if source.is_geographic:
        bounds = np.full((len(geoms), 4), 0.0)
        bounds[present] = shapely.bounds(geoms[present])
        bad_rows = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1)
        hint = f"if the file is in a projected CRS, name it with --crs or in {CONFIG_NAME} under [crs]"
        bad = reject(bad_rows, "geometry",
                     lambda i: f"coordinates are not lon/lat degrees (x={bounds[i, 0]:.6g}, y={bounds[i, 1]:.6g}); {hint}")
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = None
            present = present & ~bad
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
        bad = reject(bad, "geometry", f"coordinates are outside the area of {source.text}")
        if bad.any():
            out = out.copy()
            out[bad] = None
        return out
    return geoms


#: What ``--skip-invalid`` does with a reference that points nowhere, per referring field.
_CLEARED_HINTS = {
    "households.building_id": "drop the reference and place the household by its point",
    "buildings.estate_id": "drop the reference",
}


def _check_references(raw: dict[str, gpd.GeoDataFrame], sources: dict[str, str], *, skip_invalid: bool = False,
                      rejects: list | None = None, notes: list | None = None,
                      positions: dict | None = None) -> dict[str, int]:
    """References between layers. A dangling one stops the run; with ``skip_invalid`` an optional reference
    (``households.building_id``, ``buildings.estate_id``) is cleared (the feature stays and is counted) and a
    required one (``gates.estate_id``) leaves the feature out (appended to ``rejects``; ``raw`` is updated).
    Returns the number of references cleared per ``layer.field``."""
    cleared: dict[str, int] = {}
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
            if not dangling.any():
                continue
            where = f"not in {target_layer}" if target is not None else f"there is no {target_layer} layer"
            ids = _as_str(frame["id"]) if "id" in frame.columns else pd.Series([None] * len(frame))
            key = f"{name}.{fdef.name}"
            where_in_file = (positions or {}).get(name)
            reject = _Rejects(name, Path(sources[name]).name, ids, skip=skip_invalid, positions=where_in_file)
            reason = (lambda i, values=values, where=where, target_layer=target_layer:
                      f"refers to {target_layer} {values.iloc[i]!r}, {where}")
            if fdef.nullable and reject.skip:
                frame = frame.copy()
                frame.loc[dangling, fdef.name] = None
                raw[name] = frame
                cleared[key] = int(dangling.sum())
                if notes is not None:
                    first = _first(dangling)
                    number = int(where_in_file[first]) if where_in_file is not None else first
                    notes.append(f"{Path(sources[name]).name}: {int(dangling.sum())} {name} refer to {target_layer} that "
                                 f"are not there (first: feature {number} (id={ids.iloc[first]}) {fdef.name}="
                                 f"{values.iloc[first]!r}): reference dropped (--skip-invalid)")
                continue
            reject(dangling, fdef.name, reason, hint=_CLEARED_HINTS.get(key, SKIP_HINT))
            if reject.rows:
                if rejects is not None:
                    rejects.append(_rejects_frame(name, pd.DataFrame(frame.drop(columns="geometry")),
                                                  frame.geometry.to_numpy(), ids, reject.rows, where_in_file))
                frame = frame[reject.keep].reset_index(drop=True)
                raw[name] = frame
                if positions is not None and where_in_file is not None:
                    positions[name] = where_in_file[reject.keep]
                if notes is not None:
                    notes.append(f"{Path(sources[name]).name}: {len(reject.rows)} {name} left out (--skip-invalid): "
                                 f"they refer to {target_layer} that are not there; listed in rejects.geojson")
    return cleared
