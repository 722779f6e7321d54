"""Write an analysis to an output folder: GeoJSON layers, summary.json and workspace.gpkg.

Everything is written into a temporary folder beside the target and moved
into place at the end, so an interrupted run leaves the previous output (or
nothing) and never a half-written one. The target is checked first and the
temporary names are made and cleaned by :mod:`gridcover.io.paths`.

Example
-------
Reading the sample and writing ``out/sample`` (skipped here: it writes into the checkout):

>>> from gridcover.engines.single import analyze
>>> write_outputs(analyze("sample_geojson"), "out/sample")  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
import uuid
import warnings
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio

from geo.schema import LAYERS, TABLE
from gridcover.io.geojson import write_point_geojson
from gridcover.io.history import earlier_history, write_history
from gridcover.io.paths import prepare_output_folder, temp_dir

_WGS84 = "EPSG:4326"
#: Output layers written as GeoJSON and into the workspace, in order.
OUTPUT_LAYERS = ("households", "grids", "coverage_issues", "h3_reach", "blindspots", "cases")
#: The folder of a partitioned output (``analyze --engine dask --no-assemble``): ``parts/<layer>/street=<id>/``.
PARTS_FOLDER = "parts"


def _plain(frame: gpd.GeoDataFrame, *, lists: str = "python") -> gpd.GeoDataFrame:
    """A copy that every driver can write: nullable ints and booleans stay so, objects stay text. Arrow list columns
    become Python lists (``lists="python"``: the GeoJSON driver writes JSON arrays) or JSON text
    (``lists="json"``: a GeoPackage has no list type), built in arrow, not per row in Python."""
    out = frame.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        dtype = out[column].dtype
        if isinstance(dtype, pd.BooleanDtype):
            pass  # pyogrio writes nullable booleans as true/false/null (as object they became 'True' and '<NA>' text)
        elif isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
            arr = pa.chunked_array(out[column].array._pa_array).combine_chunks()
            if lists == "json":
                # list items are identifiers (category ids, reason codes): no quote to escape
                joined = pc.binary_join(arr.cast(pa.list_(pa.string())), '","')
                text = pc.binary_join_element_wise('["', joined, '"]', "")
                text = pc.if_else(pc.equal(pc.list_value_length(arr), 0), "[]", text)
                out[column] = pd.Series(text.to_numpy(zero_copy_only=False), index=out.index, dtype=object)
            else:
                out[column] = pd.Series(arr.to_pylist(), index=out.index, dtype=object)
        elif lists == "json" and dtype == object:
            sample = out[column].dropna()
            if len(sample) and isinstance(sample.iloc[0], (list, tuple, np.ndarray)):
                # object columns of lists belong to small layers (grids, blind spots): one dumps per row
                out[column] = [v if v is None or isinstance(v, float) else json.dumps(list(v), ensure_ascii=False)
                               for v in out[column]]
    return out


def _write_geojson(frame: gpd.GeoDataFrame, path: Path) -> None:
    """One GeoJSON output layer (RFC 7946, 7 decimals): a point layer by :func:`gridcover.io.geojson.write_point_geojson`
    (GDAL's bytes, ~10× faster), any other through GDAL."""
    wgs84 = frame.to_crs(_WGS84)
    if write_point_geojson(wgs84, path):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(_plain(wgs84), path, driver="GeoJSON",
                                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": 7, "WRITE_NAME": "NO"})


def write_geoparquet(frame: gpd.GeoDataFrame, path: Path) -> None:
    """One GeoParquet file of a layer (WGS-84, WKB geometry, the GeoParquet ``geo`` metadata), its parent folders
    made; the GeoJSON writer's values in Arrow types (nullable integers and booleans kept, lists as lists of text,
    which pandas reads back as arrays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _plain(frame.to_crs(_WGS84)).to_parquet(path, index=False, compression="zstd")


def _write_gpkg_layer(frame: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """One layer into the GeoPackage; a table layer of the data model (``visits``) as an attribute table.

    Written through GDAL's arrow stream (half the time of pyogrio's per-feature path: the same fields, types and
    rows); a frame arrow cannot convert goes the per-feature way."""
    plain = _plain(frame.to_crs(_WGS84), lists="json")
    if layer in LAYERS and LAYERS[layer].geometry == TABLE:
        plain = pd.DataFrame(plain.drop(columns=plain.geometry.name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        append = path.exists()
        try:
            pyogrio.write_dataframe(plain, path, layer=layer, driver="GPKG", append=append, use_arrow=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # raised before GDAL writes
            pyogrio.write_dataframe(plain, path, layer=layer, driver="GPKG", append=append)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_outputs(analysis, out_dir: str | os.PathLike, *, progress=None, extra=(), history=None) -> Path:
    """Write every output of ``analysis`` into ``out_dir`` atomically; returns the folder.

    The scorecard's earlier snapshots are carried forward (docs/history.md): those of the workspace ``out_dir``
    held, of the data folder's ``scorecard_history.csv`` and ``history`` (a :class:`geo.history.History`, e.g.
    ``--history-from``), with this run's added (:func:`gridcover.io.history.write_history`).

    ``extra`` are callables ``f(folder)`` writing more files into the temporary folder before it is moved
    into place (the CLI's report.html, which lives in layers/ and so is not imported here). An ``out_dir``
    that is or holds an input, or holds files gridcover did not write, is a ``ConfigError``
    (:func:`gridcover.io.paths.prepare_output_folder`).
    """
    reads = [(f"the input {source}", source) for source in dict.fromkeys(analysis.data.sources.values())]
    out_dir = prepare_output_folder(out_dir, reads=reads)  # the CLI checked before the analysis; checked again
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    def write_inputs(gpkg: Path) -> None:
        for name, frame in analysis.data.layers.items():
            _write_gpkg_layer(frame, gpkg, f"input_{name}" if name in OUTPUT_LAYERS else name)
        _write_gpkg_layer(analysis.households, gpkg, "households")

    return write_output_folder(analysis, out_dir, write_households=lambda path: _write_geojson(analysis.households, path),
                               write_inputs=write_inputs, extra=extra, progress=progress, history=history)


def write_output_folder(analysis, out_dir: Path, *, write_households: Callable[[Path], None],
                        write_inputs: Callable[[Path], None], extra=(), progress=None, history=None,
                        snapshot_households=None) -> Path:
    """The output folder every engine writes, in a temporary folder beside ``out_dir`` moved into place at the end.

    Parameters
    ----------
    analysis
        The run's :class:`~geo.pipeline.Analysis` (its households may be elsewhere: the engine writes them).
    out_dir
        The checked output folder (:func:`gridcover.io.paths.prepare_output_folder`).
    write_households
        Writes ``households.geojson`` at the path given.
    write_inputs
        Writes the input layers (``input_<name>`` where an output has the name) and the ``households`` layer
        into the workspace GeoPackage at the path given.
    extra
        Callables ``f(folder)`` writing more files into the temporary folder (the CLI's report.html).
    history
        Earlier snapshots of the scorecard to carry forward besides those ``out_dir`` and the data folder hold
        (:func:`gridcover.io.history.earlier_history`, read before anything is replaced).
    snapshot_households
        Where ``analysis.households`` is not held (the partitioned engine): the households' ``id``, ``risk``,
        ``grid_id``, ``community_id``, ``street_id``, for the snapshot's red households.

    Returns
    -------
    ``out_dir``, holding households, grids, coverage issues, H3 cells and blind spots (GeoJSON and
    ``workspace.gpkg``), the rejects of ``--skip-invalid``, the scorecard and ``summary.json``.

    Examples
    --------
    >>> write_output_folder(analysis, Path("out/sample"), write_households=..., write_inputs=...)  # doctest: +SKIP
    """
    earlier = earlier_history(out_dir=out_dir, data_folder=analysis.data.folder, given=history)
    tmp = temp_dir(out_dir)
    try:
        write_households(tmp / "households.geojson")
        city = {name: frame for name, frame in (("grids", analysis.grids), ("coverage_issues", analysis.coverage_issues),
                                                ("h3_reach", analysis.h3_reach), ("blindspots", analysis.blindspots),
                                                ("cases", analysis.cases))
                if frame is not None}
        for name, frame in city.items():
            _write_geojson(frame, tmp / f"{name}.geojson")
        if analysis.data.rejects is not None:  # --skip-invalid: what was left out, in the same atomic output
            _write_geojson(analysis.data.rejects, tmp / "rejects.geojson")
        if progress:
            progress("wrote " + ", ".join(f"{name}.geojson" for name in ["households", *city]))
        gpkg = tmp / "workspace.gpkg"
        write_inputs(gpkg)
        for name, frame in city.items():
            _write_gpkg_layer(frame, gpkg, name)
        finish_outputs(analysis, tmp, out_dir, extra=extra, progress=progress, history=earlier,
                       snapshot_households=snapshot_households)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def finish_outputs(analysis, tmp: Path, out_dir: Path, *, extra=(), progress=None, history=None,
                   snapshot_households=None) -> None:
    """The last steps of every engine's output: scorecard, its snapshots and trend.json (``history``: the
    earlier snapshots), extra files, summary.json, the workspace's meta table, then the temporary folder moved
    into place."""
    gpkg = tmp / "workspace.gpkg"
    if analysis.scorecard is not None:
        card = analysis.scorecard
        (tmp / "scorecard.json").write_text(card.to_json(orient="records", force_ascii=False, indent=1), encoding="utf-8")
        card.to_csv(tmp / "scorecard.csv", index=False, encoding="utf-8-sig")  # BOM: Excel opens Chinese text
        kept = write_history(analysis, tmp, earlier=history, households=snapshot_households)
        if progress:
            progress(f"kept the scorecard of {len(kept.dates)} snapshot(s) in workspace.gpkg; wrote trend.json")
    for write in extra:
        write(tmp)
    summary = dict(analysis.summary)
    summary["outputs"] = sorted(p.name for p in tmp.iterdir()) + ["summary.json"]
    summary_text = json.dumps(summary, ensure_ascii=False, indent=2, default=_json_default)
    (tmp / "summary.json").write_text(summary_text, encoding="utf-8")
    write_meta(gpkg, {"workspace_id": uuid.uuid4().hex, "version": "1",
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "metric_crs": summary.get("metric_crs", ""), "summary": summary_text})
    if progress:
        progress("wrote workspace.gpkg and summary.json")
    with cases_lock(out_dir) if out_dir.is_dir() else nullcontext():  # no intake is lost while the folder is replaced
        if carry_cases(out_dir, tmp) and progress:
            progress(f"carried the stored cases of {out_dir} into the new workspace")
        _replace_dir(tmp, out_dir)


#: The table in a workspace GeoPackage holding its identity, version and summary.
META_TABLE = "gridcover_meta"


def write_meta(gpkg: Path, values: dict[str, str]) -> None:
    """Set key/value rows of the workspace's meta table (one transaction)."""
    with sqlite3.connect(gpkg) as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executemany(f"INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?, ?)", list(values.items()))
    db.close()


def read_meta(gpkg: Path) -> dict[str, str]:
    """The workspace's meta table as a dict ({} for a GeoPackage that gridcover did not write)."""
    db = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        return dict(db.execute(f"SELECT key, value FROM {META_TABLE}").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an existing folder with two renames."""
    if target.exists():
        old = temp_dir(target, "old")
        old.rmdir()
        target.rename(old)
        try:
            new.rename(target)
        except BaseException:
            old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


# ------------------------------------------------------------------ the case store beside the workspace
#: The cases stored through the case API next to a GeoPackage workspace (gridcover.store.cases.SQLiteCaseStore):
#: a SQLite file in the output folder, carried into every new analysis of the folder (:func:`carry_cases`).
CASES_FILE = "cases.sqlite"
#: The lock every write of the case store and every replacement of the output folder takes.
CASES_LOCK = "cases.sqlite.lock"
#: Seconds an intake waits for a folder being replaced (the moment between the two renames) to be back.
_LOCK_WAIT_S = 30.0


def _take_cases_lock(folder: Path) -> int:
    """The locked descriptor of the case lock file now in ``folder``: one taken in a folder that was replaced
    while waiting (an analysis moved it away) is let go and the new folder's taken instead."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    path = Path(folder) / CASES_LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # between the two renames of a replacement
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def cases_lock(folder: Path):
    """Hold the case store's lock of an output folder (``CASES_LOCK`` in it) while the block runs.

    Taken by every write of the case store and by an analysis replacing the folder, around the copy of the
    store into the new folder and the two renames: a case stored while the analysis ran is in the copy, one
    stored after it goes into the new folder, none is lost.

    Examples
    --------
    >>> import tempfile
    >>> with cases_lock(Path(tempfile.mkdtemp())):
    ...     pass
    """
    fd = _take_cases_lock(folder)
    try:
        yield
    finally:
        os.close(fd)


def carry_cases(old_folder: Path, new_folder: Path) -> bool:
    """Copy the case store of ``old_folder`` (if it has one) into ``new_folder`` with SQLite's backup (a
    consistent copy); the caller holds :func:`cases_lock`. Returns whether there was one."""
    source = Path(old_folder) / CASES_FILE
    if not source.is_file():
        return False
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(Path(new_folder) / CASES_FILE)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return True
