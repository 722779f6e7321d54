"""Read a redraw proposal file (GeoJSON, GeoPackage, Shapefile of grid polygons) into the frame the redraw checks."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pyogrio

from geo.errors import InputError
from geo.redraw import RedrawContext, proposal_frame


def read_proposal(path: str | os.PathLike, ctx: RedrawContext) -> gpd.GeoDataFrame:
    """A proposal file in the context's metric CRS, as :func:`geo.redraw.proposal_frame` makes it.

    Parameters
    ----------
    path
        Grid polygons with ``id`` and ``community_id`` (no CRS: WGS-84 lon/lat).
    ctx
        The redraw context of the workspace version the proposal is for.

    Returns
    -------
    The proposal's grids; an :class:`~geo.errors.InputError` naming the file, feature and field for anything
    wrong.

    Examples
    --------
    >>> read_proposal("no_such_proposal.geojson", None)
    Traceback (most recent call last):
    ...
    geo.errors.InputError: no_such_proposal.geojson: file not found
    """
    path = Path(path)
    label = path.name
    if not path.exists():
        raise InputError("file not found", file=str(path))
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is the user's file
        raise InputError(f"cannot be read as a vector file: {exc}", file=label) from None
    if frame.crs is None:
        frame = frame.set_crs(4326)
    return proposal_frame(frame, ctx, label=label)
