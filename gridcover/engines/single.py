"""The whole analysis in this process: the data folder read, :func:`geo.pipeline.analyze_dataset`, then the
outputs written atomically."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Callable

from geo.lifecircle import DEFAULT_H3_RESOLUTION
from geo.pipeline import DEFAULT_WINDOW_WEEKS, Analysis, _Clock, analyze_dataset
from geo.settings import Settings
from gridcover.io.folder import load_data
from gridcover.io.outputs import write_outputs


def analyze(path: str | os.PathLike, *, crs: str | None = None, settings: Settings | None = None,
            h3_resolution: int = DEFAULT_H3_RESOLUTION, reference_date: date | None = None,
            progress: Callable[[str], None] | None = None, every_cell: bool = False,
            skip_invalid: bool = False, window_weeks: int = DEFAULT_WINDOW_WEEKS) -> Analysis:
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
    return analyze_dataset(data, h3_resolution=h3_resolution, reference_date=reference_date, progress=progress,
                           every_cell=every_cell, clock=clock, window_weeks=window_weeks)


def analyze_single(path: str | os.PathLike, out_dir: str | os.PathLike, *, crs: str | None = None,
                   settings: Settings | None = None, h3_resolution: int = DEFAULT_H3_RESOLUTION,
                   reference_date: date | None = None, skip_invalid: bool = False,
                   progress: Callable[[str], None] | None = None,
                   extra: Callable[[Analysis], list] | None = None,
                   window_weeks: int = DEFAULT_WINDOW_WEEKS, history=None) -> tuple[Analysis, Path]:
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
                       window_weeks=window_weeks)
    out = write_outputs(analysis, out_dir, progress=progress, extra=extra(analysis) if extra else (), history=history)
    return analysis, out
