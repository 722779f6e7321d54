"""Read a data folder (or GeoPackage) into validated frames: the files side of the load stage.

Finds each layer's file (GeoJSON by default, GeoPackage, Shapefile, CSV), reads ``gridcover.toml``,
reads the files with pyogrio or pandas (the text encoding of a CSV or a Shapefile's .dbf detected by
:mod:`gridcover.io.textio`) and hands the frames to :func:`geo.load.validate_layer`, which checks them.

Example
-------
>>> data = load_data("sample_geojson")
>>> data.layers["households"].crs.to_epsg()
32648
"""

from __future__ import annotations

import errno
import io
import os
import tomllib
import warnings as _warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from dataclasses import dataclass, field

from geo.crs import parse_crs
from geo.errors import ConfigError, InputError
from geo.load import (CONFIG_NAME, LAYERS, LayerRead, Dataset, _check_references, _concat_rejects, _csv_part,
                      _map_columns, check_config, csv_points, metric_crs_of, validate_layer)
from geo.schema import LAYER_ORDER, POINT, TABLE, InputLayer
from geo.reach import CONFIG_NAME as REACH_CONFIG
from geo.risk import CONFIG_NAME as RISK_CONFIG, load_risk_config
from geo.visits import validate_visits, visit_input_error
from geo.settings import Settings
from gridcover.io.textio import EncodingError, detect_encoding

#: File extensions tried for each layer, in order.
EXTENSIONS = (".geojson", ".json", ".gpkg", ".shp", ".csv")


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
    return check_config(config, label=str(path))


def read_rule_files(data_dir: Path) -> dict:
    """The data folder's own ``categories.toml`` and ``risk.toml`` as read, for :attr:`geo.load.Dataset.configs`
    (``geo.reach.load_config`` and ``geo.risk.load_risk_config`` check them; a file the folder lacks: the
    default).

    Examples
    --------
    >>> sorted(read_rule_files(Path("sample_geojson")))
    []
    """
    found = {}
    for name in (REACH_CONFIG, RISK_CONFIG):
        path = Path(data_dir) / name
        if path.is_file():
            found[name] = {"text": path.read_bytes(), "source": str(path)}
    return found


def find_layer_file(data_dir: Path, name: str) -> tuple[Path | None, list[Path]]:
    """The file holding a layer and any other candidates that were ignored.

    A candidate name that exists but is not a readable file (a folder, a symbolic link that loops or points
    nowhere) is an :class:`InputError` saying what it is, not a missing layer.
    """
    for ext in EXTENSIONS:
        candidate = data_dir / f"{name}{ext}"
        if candidate.is_file() or not (candidate.exists() or candidate.is_symlink()):
            continue
        if candidate.is_dir():
            what = "is a folder, not a file"
        elif candidate.is_symlink():
            try:
                candidate.resolve(strict=True)
                what = "is a symbolic link to something that is not a file"
            except (RuntimeError, OSError) as exc:  # Python < 3.13 raises RuntimeError for a loop
                if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
                    what = f"is a symbolic link that loops (it points to {os.readlink(candidate)}, which leads back)"
                else:
                    what = f"is a symbolic link to {os.readlink(candidate)}, which does not exist"
        else:
            what = "is not a regular file"
        raise InputError(f"{candidate.name} in {data_dir} {what}: cannot read layer {name!r} from it")
    found = [data_dir / f"{name}{ext}" for ext in EXTENSIONS if (data_dir / f"{name}{ext}").is_file()]
    if not found:
        return None, []
    return found[0], found[1:]


@dataclass
class _Sources:
    """Where each layer of a data folder (or GeoPackage) is, and the CRS and columns the user named for it."""

    data_dir: Path
    gpkg: Path | None
    settings: Settings
    files: dict  # layer -> (file, label, gpkg layer or None)
    user_crs: dict  # layer -> user CRS text or None
    missing: list
    warnings: list
    columns: dict = field(default_factory=dict)  # layer -> {field: the user's column} from [columns.<layer>]
    config_label: str = CONFIG_NAME


def _locate(path: str | os.PathLike, *, crs: str | None, settings: Settings | None) -> _Sources:
    """Check the folder, its ``gridcover.toml`` and ``--crs``, and find the file of every layer."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise InputError(f"data folder {path} is a symbolic link that loops or points nowhere ({os.readlink(path)})")
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
                    missing=missing, warnings=found_warnings, columns=config.get("columns", {}),
                    config_label=str(data_dir / CONFIG_NAME))


def load_data(path: str | os.PathLike, *, crs: str | None = None, settings: Settings | None = None,
              skip_invalid: bool = False) -> Dataset:
    """Read, validate and project every layer of a data folder (or GeoPackage).

    Parameters
    ----------
    path
        A folder with ``<layer>.<ext>`` files, or a GeoPackage with layers named after them.
    crs
        Coordinate system of every layer (overrides ``gridcover.toml``).
    settings
        Analysis settings; ``gridcover.toml``'s ``[analysis]`` table overrides them.
    skip_invalid
        Leave out the features that cannot be used (``Dataset.rejects`` lists them with the reason) instead
        of stopping at the first; the boundary layers (``geo.schema.BOUNDARY_LAYERS``) always stop the run.
    """
    src = _locate(path, crs=crs, settings=settings)
    dataset_warnings: list[str] = list(src.warnings)
    repaired: list[dict] = []
    raw: dict[str, gpd.GeoDataFrame] = {}
    sources: dict[str, str] = {}
    source_crs: dict[str, str] = {}
    rejects: list[gpd.GeoDataFrame] = []
    positions: dict[str, np.ndarray] = {}  # layer -> feature number in its file of each kept row
    for name, (file, label, gpkg_layer) in src.files.items():
        if LAYERS[name].geometry == TABLE:  # checked against the layers it refers to, below
            continue
        read = _read_layer(file, LAYERS[name], label, gpkg_layer=gpkg_layer, user_crs=src.user_crs[name],
                           columns=src.columns.get(name), config_label=src.config_label, skip_invalid=skip_invalid)
        dataset_warnings.extend(read.notes)
        for item in read.fixed:
            dataset_warnings.append(f"{label}: feature {item['index']} (id={item['id']}): {item['problem']}; repaired with make_valid")
        repaired.extend(read.fixed)
        if read.rejects is not None:
            rejects.append(read.rejects)
        raw[name] = read.frame
        sources[name] = str(file)
        source_crs[name] = read.crs_text
        positions[name] = read.fids

    cleared = _check_references(raw, sources, skip_invalid=skip_invalid, rejects=rejects, notes=dataset_warnings,
                                positions=positions)
    configs = read_rule_files(src.data_dir)
    if "visits" in src.files:
        file, label, gpkg_layer = src.files["visits"]
        raw["visits"] = _read_visits(file, label, gpkg_layer=gpkg_layer, households=raw["households"],
                                     columns=src.columns.get("visits"), config_label=src.config_label,
                                     skip_invalid=skip_invalid, rejects=rejects, notes=dataset_warnings,
                                     zone=_visit_zone(configs))
        sources["visits"] = str(file)  # a table: no coordinate system
    metric = metric_crs_of(raw["grids"])
    layers = _to_metric(raw, metric)
    return Dataset(layers=layers, metric_crs=metric, sources=sources, source_crs=source_crs,
                   missing_optional=src.missing, warnings=dataset_warnings, repaired=repaired, settings=src.settings,
                   folder=src.data_dir, rejects=_concat_rejects(rejects) if skip_invalid else None,
                   references_cleared=cleared, configs=configs)


def _to_metric(raw: dict[str, gpd.GeoDataFrame], metric) -> dict[str, gpd.GeoDataFrame]:
    """The layers (WGS-84) in the run's metric CRS. The cases keep their WGS-84 ``lon``/``lat`` as read (after a
    GCJ-02/BD-09 conversion): they are looked up there, as ``/lookup`` looks up the numbers it is sent (a
    round trip through the metric CRS moves a point on a grid's edge by a nanodegree, off the edge)."""
    out = {}
    for name, frame in raw.items():
        if name == "cases":
            geoms = frame.geometry.to_numpy()
            frame = frame.assign(lon=shapely.get_x(geoms), lat=shapely.get_y(geoms))
        out[name] = frame.to_crs(metric)
    return out


#: The columns of a visits layer as the workspace keeps it (the checked records, text as given).
VISIT_COLUMNS = ("household_id", "visited_at", "worker", "kind", "outcome", "note")


def _visit_zone(configs: dict) -> str:
    """The time zone of visit times without an offset: ``[visit_rules] time_zone`` of the rule file in use."""
    found = configs.get(RISK_CONFIG)
    config = load_risk_config(found["text"], source=found["source"]) if found else load_risk_config()
    return config.visit_rules.zone


def _read_visits(file: Path, label: str, *, gpkg_layer: str | None, households: gpd.GeoDataFrame,
                 columns: dict | None, config_label: str, skip_invalid: bool, rejects: list, notes: list,
                 zone: str) -> gpd.GeoDataFrame:
    """The visits layer (a table): read, columns mapped, checked by :func:`geo.visits.validate_visits`
    against the households kept. A bad row stops the run with one message naming the file, the row and the
    field; with ``skip_invalid`` it goes to ``rejects`` (rejects.geojson) and is said in ``notes``.

    Returns the usable records with :data:`VISIT_COLUMNS` (``kind`` spelt home, phone or other; other
    columns of the file dropped) and no geometry.
    """
    layer = LAYERS["visits"]
    if file.suffix.lower() == ".csv":
        table = _read_csv_table(file, label, notes=notes)
    else:  # GeoJSON dates as written (GDAL would type them and drop the text's offset or its missing time)
        geojson = file.suffix.lower() in (".geojson", ".json")
        table = _read_vector(file, label, gpkg_layer, table=True, **({"DATE_AS_STRING": "YES"} if geojson else {}))
    table = pd.DataFrame(table.drop(columns="geometry", errors="ignore"))
    table = _map_columns(table, layer, label, columns or {}, config_label=config_label,
                         shapefile=file.suffix.lower() == ".shp", notes=notes)
    table.attrs.pop("renamed", None)
    check = validate_visits(table, households["id"], file=label, zone=zone)
    if len(check.rejects):
        if not skip_invalid:
            raise visit_input_error(check.rejects, file=label)
        rejects.append(check.rejects)
        noun = "record" if len(check.rejects) == 1 else "records"
        notes.append(f"{label}: {len(check.rejects)} visit {noun} left out (--skip-invalid), listed in rejects.geojson")
    clean = check.visits
    out = pd.DataFrame({
        "household_id": clean["household_id"].astype(str).to_numpy(dtype=object),
        "visited_at": _text_of(clean["visited_at"]),
        "worker": clean["worker"].astype(str).to_numpy(dtype=object),
        "kind": clean["kind"].astype(str).to_numpy(dtype=object),
        "outcome": _text_of(clean["outcome"]),
        "note": _text_of(clean["note"]),
    })
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([None] * len(out), crs=4326), crs=4326)


def _text_of(values: pd.Series) -> np.ndarray:
    """A column as text (object), None where empty; date-times as ISO text with their offset, if any."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.map(lambda v: None if pd.isna(v) else v.isoformat(sep=" "))
        return text.to_numpy(dtype=object)
    text = values.astype("string").str.strip()
    return text.mask(text.eq("").fillna(True)).to_numpy(dtype=object, na_value=None)


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
        read = _read_layer(file, LAYERS[name], label, gpkg_layer=gpkg_layer, user_crs=src.user_crs[name],
                           read_options=options.get(name, {}), columns=src.columns.get(name),
                           config_label=src.config_label)
        dataset_warnings.extend(read.notes)
        for item in read.fixed:
            dataset_warnings.append(f"{label}: feature id={item['id']}: {item['problem']}; repaired with make_valid")
        repaired.extend(read.fixed)
        raw[name], sources[name], source_crs[name], fids[name] = read.frame, str(file), read.crs_text, read.fids
    metric = metric_crs if metric_crs is not None else metric_crs_of(raw["grids"])
    layers = _to_metric(raw, metric)
    return Dataset(layers=layers, metric_crs=metric, sources=sources, source_crs=source_crs,
                   missing_optional=[n for n in src.missing if n in names], warnings=dataset_warnings,
                   repaired=repaired, settings=src.settings, folder=src.data_dir, fids=fids,
                   configs=read_rule_files(src.data_dir))


#: Bytes of a .dbf's records read to tell UTF-8 from GB18030.
_DBF_SAMPLE = 4 << 20


def _dbf_encoding(shp: Path) -> str | None:
    """The text encoding of a Shapefile without a ``.cpg``: UTF-8 if its .dbf decodes as UTF-8, else GB18030
    (None with a ``.cpg``, which GDAL reads and which wins)."""
    if any(shp.with_suffix(ext).is_file() for ext in (".cpg", ".CPG")):
        return None
    dbf = next((shp.with_suffix(ext) for ext in (".dbf", ".DBF") if shp.with_suffix(ext).is_file()), None)
    if dbf is None:
        return None
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        header = int.from_bytes(head[8:10], "little")
        fields = fh.read(max(0, header - 32))
        sample = fh.read(_DBF_SAMPLE)  # the first records decide (a multi-byte character may be cut at the end)
    names = b"".join(fields[p:p + 11].split(b"\0", 1)[0] for p in range(0, len(fields) - 31, 32)
                     if fields[p:p + 1] != b"\r")
    text = names + b" " + sample
    if text.isascii():
        return None
    try:
        return "GB18030" if detect_encoding(io.BytesIO(text)) == "gb18030" else "UTF-8"
    except EncodingError:
        return None  # neither: GDAL's default, and the reader names what it cannot read


def _read_vector(file: Path, label: str, gpkg_layer: str | None, *, table: bool = False,
                 **options) -> gpd.GeoDataFrame:
    """A vector file as GDAL reads it. Geometries GEOS cannot build (a ring that is not closed) become None,
    listed in ``attrs["unreadable"]`` as (mask, reasons) for the caller to report. ``table``: a layer without
    geometry (a GeoPackage attribute table, GeoJSON features without geometry) is what is wanted."""
    kind = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage", ".shp": "Shapefile"}[file.suffix.lower()]
    encoding = _dbf_encoding(file) if kind == "Shapefile" else None
    extra = {"encoding": encoding} if encoding else {}
    unreadable = None
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            try:
                frame = pyogrio.read_dataframe(file, layer=gpkg_layer, fid_as_index=bool(options), **extra, **options)
            except shapely.errors.GEOSException:
                frame = pyogrio.read_dataframe(file, layer=gpkg_layer, fid_as_index=bool(options), on_invalid="ignore",
                                               **extra, **options)
                wkb = pyogrio.raw.read(file, layer=gpkg_layer, columns=[], **extra, **options)[2]
                built = shapely.from_wkb(wkb, on_invalid="ignore")
                mask = np.array([w is not None for w in wkb], dtype=bool) & shapely.is_missing(built)
                reasons = {}
                for i in np.flatnonzero(mask):  # only the broken ones, to say why
                    try:
                        shapely.from_wkb(wkb[i])
                    except shapely.errors.GEOSException as exc:
                        reasons[int(i)] = str(exc).split(": ", 1)[-1]
                unreadable = (mask, reasons)
    except Exception as exc:  # noqa: BLE001 - GDAL raises many kinds
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as {kind}: {reason}", file=label) from None
    if table:
        return frame
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:
        raise InputError(f"cannot be read as {kind}: the file has no geometry", file=label)
    if unreadable is not None:
        frame.attrs["unreadable"] = unreadable
    return frame


def _read_layer(file: Path, layer: InputLayer, label: str, *, gpkg_layer: str | None, user_crs: str | None,
                read_options: dict | None = None, columns: dict | None = None, config_label: str = CONFIG_NAME,
                skip_invalid: bool = False) -> LayerRead:
    """One layer in WGS-84 lon/lat with typed, validated fields, the rows' feature ids, and what was left out.

    ``read_options`` (pyogrio ``bbox``, ``mask``, ``fids``, ``where``) read part of the layer; a part may be
    empty, a whole layer may not. ``columns`` maps the data model's field names to the file's columns
    (``[columns.<layer>]`` of ``gridcover.toml``). ``skip_invalid`` leaves out the features that cannot be
    used (not in the boundary layers) instead of stopping at the first.
    """
    notes: list[str] = []
    problems: list = []  # (mask, field, reason) found while reading, before the ids are known
    if file.suffix.lower() == ".csv":
        frame = _read_csv(file, layer, label, columns=columns, config_label=config_label, problems=problems,
                          notes=notes)
        fids = np.arange(len(frame))
        if read_options:
            keep = _csv_part(frame, read_options)
            frame, fids = frame.iloc[keep].reset_index(drop=True), fids[keep]
            problems = [(mask[keep], f, r) for mask, f, r in problems]
    else:
        frame = _read_vector(file, label, gpkg_layer, table=layer.table_allowed, **(read_options or {}))
        if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:  # a table (cases)
            frame = gpd.GeoDataFrame(pd.DataFrame(frame).drop(columns="geometry", errors="ignore"),
                                     geometry=gpd.GeoSeries([None] * len(frame), index=frame.index))
        fids = frame.index.to_numpy() if read_options else np.arange(len(frame))
        frame = frame.reset_index(drop=True)
        unreadable = frame.attrs.pop("unreadable", None)
        if unreadable is not None:
            mask, reasons = unreadable
            problems.append((mask, "geometry", lambda i: f"the geometry cannot be read ({reasons[i]})"))
        frame = _map_columns(frame, layer, label, columns or {}, config_label=config_label,
                             shapefile=file.suffix.lower() == ".shp", notes=notes)
    return validate_layer(frame, layer, label, fids=fids, user_crs=user_crs, problems=problems, notes=notes,
                          partial=read_options is not None, skip_invalid=skip_invalid)


def _read_csv(file: Path, layer: InputLayer, label: str, *, columns: dict | None = None, config_label: str = CONFIG_NAME,
              problems: list | None = None, notes: list | None = None) -> gpd.GeoDataFrame:
    """A CSV point layer, UTF-8 or GB18030 (detected), as :func:`geo.load.csv_points` makes it."""
    if layer.geometry != POINT:
        raise InputError(f"layer {layer.name!r} holds {layer.geometry}s: CSV is read for point layers only", file=label)
    table = _read_csv_table(file, label, notes=notes)
    return csv_points(table, layer, label, columns=columns, config_label=config_label, problems=problems,
                      notes=notes)


def _read_csv_table(file: Path, label: str, *, notes: list | None = None) -> pd.DataFrame:
    """A CSV file's rows as text columns (empty cells: missing), UTF-8 or GB18030 (detected, and said)."""
    try:
        encoding = detect_encoding(file)
        table = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding)
    except (EncodingError, UnicodeDecodeError) as exc:
        where = f" ({exc.reason} at byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise InputError(f"cannot be read as CSV: the text is neither UTF-8 nor GB18030{where}", file=label) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot be read as CSV: {str(exc).splitlines()[0]}", file=label) from None
    if encoding == "gb18030" and notes is not None:
        notes.append(f"{label}: read as {encoding.upper()} text (not UTF-8)")
    return table
