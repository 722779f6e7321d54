"""The whole analysis in this process: the data folder read, :func:`geo.pipeline.analyze_dataset`, then the
outputs written atomically."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pandas as pd

from geo.lifecircle import DEFAULT_H3_RESOLUTION
from geo.pipeline import DEFAULT_WINDOW_WEEKS, Analysis, _Clock, analyze_dataset
from geo.settings import Settings
from gridcover.io.folder import load_data
from gridcover.io.outputs import write_outputs


def with_stored_cases(layer: gpd.GeoDataFrame | None, stored: pd.DataFrame | None, *,
                      metric_crs) -> tuple[gpd.GeoDataFrame | None, int]:
    """The data folder's ``cases`` layer (metric CRS, WGS-84 ``lon``/``lat`` as read) with the cases stored
    through the case API (:meth:`gridcover.store.CaseStore.input_layer`) added; a data-folder case with the id
    of a stored one gives way to it (the store holds its recorded acceptance and closure). Returns the layer
    and how many data-folder cases gave way.

    Examples
    --------
    >>> stored = pd.DataFrame({"id": ["A"], "reported_at": ["2026-11-30T01:00:00Z"], "urgency": ["urgent"],
    ...                        "lon": [104.07], "lat": [30.66]})
    >>> layer, replaced = with_stored_cases(None, stored, metric_crs="EPSG:32648")
    >>> len(layer), replaced, layer.crs.to_epsg()
    (1, 0, 32648)
    """
    if stored is None or not len(stored):
        return layer, 0
    has = stored["lon"].notna() & stored["lat"].notna()
    points = gpd.points_from_xy(stored["lon"].where(has), stored["lat"].where(has), crs=4326)
    frame = gpd.GeoDataFrame(stored.reset_index(drop=True), geometry=points, crs=4326)
    frame.loc[~has.to_numpy(), "geometry"] = None
    frame = frame.to_crs(metric_crs)
    if layer is None:
        return frame, 0
    ids = set(frame["id"].astype(str))
    given = layer["id"].astype(str).isin(ids).to_numpy()
    kept = layer[~given]
    merged = pd.concat([kept, frame.reindex(columns=[c for c in kept.columns if c in frame.columns] +
                                            [c for c in frame.columns if c not in kept.columns])], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry=kept.geometry.name, crs=metric_crs), int(given.sum())


def analyze(path: str | os.PathLike, *, crs: str | None = None, settings: Settings | None = None,
            h3_resolution: int = DEFAULT_H3_RESOLUTION, reference_date: date | None = None,
            progress: Callable[[str], None] | None = None, every_cell: bool = False,
            skip_invalid: bool = False, window_weeks: int = DEFAULT_WINDOW_WEEKS,
            stored_cases: pd.DataFrame | None = None) -> Analysis:
    """Load a data folder and run assignment, grid diagnostics, 15-minute reach and risk.

    Parameters
    ----------
    path
        The data folder (or GeoPackage), read by :func:`gridcover.io.folder.load_data` with ``crs``,
        ``settings`` and ``skip_invalid``.
    reference_date, every_cell, h3_resolution, progress, window_weeks
        As :func:`geo.pipeline.analyze_dataset` takes them; the reading is timed as its ``load`` stage.

    Examples
    --------
    >>> analyze("sample_geojson").summary["households"] > 0
    True
    """
    clock = _Clock(progress)
    if progress:
        progress(f"[   0.0s] reading {path}")
    data = load_data(path, crs=crs, settings=settings, skip_invalid=skip_invalid)
    merged, replaced = with_stored_cases(data.layers.get("cases"), stored_cases, metric_crs=data.metric_crs)
    if merged is not None:
        data.layers["cases"] = merged
        if progress and stored_cases is not None and len(stored_cases):
            progress(f"added the {len(stored_cases):,} cases stored in the workspace (case API) to the analysis")
    if replaced:
        data.warnings.append(f"cases: {replaced:,} of the data folder's cases have the id of a case stored through "
                             "the case API: the stored one is analysed (docs/cases.md)")
    return analyze_dataset(data, h3_resolution=h3_resolution, reference_date=reference_date, progress=progress,
                           every_cell=every_cell, clock=clock, window_weeks=window_weeks)


def analyze_single(path: str | os.PathLike, out_dir: str | os.PathLike, *, crs: str | None = None,
                   settings: Settings | None = None, h3_resolution: int = DEFAULT_H3_RESOLUTION,
                   reference_date: date | None = None, skip_invalid: bool = False,
                   progress: Callable[[str], None] | None = None,
                   extra: Callable[[Analysis], list] | None = None,
                   window_weeks: int = DEFAULT_WINDOW_WEEKS, history=None,
                   stored_cases: pd.DataFrame | None = None) -> tuple[Analysis, Path]:
    """Analyse the data folder ``path`` and write every output into ``out_dir``.

    Parameters
    ----------
    extra
        Given the analysis, the further writers (``writer(folder)``) to run inside the same atomic output,
        e.g. the HTML report; as :func:`gridcover.engines.dask.analyze_dask` takes it.
    history
        Earlier scorecard snapshots to carry forward (``--history-from``, PostGIS), as
        :func:`gridcover.io.outputs.write_outputs` takes them.

    Returns
    -------
    The analysis and the output folder written.
    """
    analysis = analyze(path, crs=crs, settings=settings, h3_resolution=h3_resolution,
                       reference_date=reference_date, progress=progress, skip_invalid=skip_invalid,
                       window_weeks=window_weeks, stored_cases=stored_cases)
    out = write_outputs(analysis, out_dir, progress=progress, extra=extra(analysis) if extra else (), history=history)
    return analysis, out
