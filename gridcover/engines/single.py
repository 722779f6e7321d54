"""The whole analysis in this process: :func:`geo.pipeline.analyze`, then the outputs written atomically."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Callable

from geo.lifecircle import DEFAULT_H3_RESOLUTION
from geo.pipeline import Analysis, analyze
from geo.report import write_outputs
from geo.settings import Settings


def analyze_single(path: str | os.PathLike, out_dir: str | os.PathLike, *, crs: str | None = None,
                   settings: Settings | None = None, h3_resolution: int = DEFAULT_H3_RESOLUTION,
                   reference_date: date | None = None, skip_invalid: bool = False,
                   progress: Callable[[str], None] | None = None,
                   extra: Callable[[Analysis], list] | None = None) -> tuple[Analysis, Path]:
    """Analyse the data folder ``path`` and write every output into ``out_dir``.

    Parameters
    ----------
    extra
        Given the analysis, the further writers (``writer(folder)``) to run inside the same atomic output,
        e.g. the HTML report; as :func:`gridcover.engines.dask.analyze_dask` takes it.

    Returns
    -------
    The analysis and the output folder written.
    """
    analysis = analyze(path, crs=crs, settings=settings, h3_resolution=h3_resolution,
                       reference_date=reference_date, progress=progress, skip_invalid=skip_invalid)
    out = write_outputs(analysis, out_dir, progress=progress, extra=extra(analysis) if extra else ())
    return analysis, out
