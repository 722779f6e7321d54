"""Pages, features and vector tiles of a declared layer, asked of the store where it answers in its database.

A GeoPackage workspace is read whole, once per version, and answered from memory (:class:`LayerCache`'s
prepared layers). A PostGIS workspace (``Workspace.in_place``) answers in SQL: a page of items is one query
(the bbox on the GiST index, ``ORDER BY fid LIMIT … OFFSET …``, ``count(*)`` over the same condition), a tile
is cut by ``ST_AsMVTGeom`` after ``ST_SimplifyPreserveTopology`` in the database, and only the rows of the
page or the tile reach Python. There they become a :class:`~layers.features.PreparedLayer` of those rows, so
every rule of the in-memory path — which fields a caller sees, the derived fields, special-group counts
1..k-1 withheld outside the caller's streets, a street office's own streets only, the GeoJSON and the MVT
encoding — is the same code on both backends.

Coverage layers (streets, communities, grids: ``coverage=True``) and live layers (the cases) stay in memory
on both backends: their tiles are simplified together (``shapely.coverage_simplify``, so neighbours keep
their shared edges; PostGIS has ``ST_CoverageSimplify`` only from 3.6), and their size follows the number of
grids, not of households.

Example
-------
>>> page = select_features(open_workspace(db=DSN), LayerCache(), "buildings", view=public_view(5),
...                        limit=100)  # doctest: +SKIP
>>> page.matched, len(page.rows)  # doctest: +SKIP
(100000, 100)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gridcover.store.base import RowQuery, TileSpec
from layers.base import MapLayer
from layers.catalog import find_layer as declared
from layers.features import (LayerCache, PreparedLayer, View, bbox_to_wgs84, lists_from_json, public_view, shown_layer,
                             street_from)
from layers.mvt import encode_layer


@dataclass(frozen=True)
class FeaturePage:
    """Features found for a caller: the prepared layer holding them (the whole layer in memory, or only the
    rows read from the database), the rows of it that are found (in order) and how many match in all."""

    source: PreparedLayer
    rows: np.ndarray
    matched: int


def in_database(workspace, layer: MapLayer) -> bool:
    """Whether ``layer`` (as the caller sees it) is answered by the store in its database, not in memory."""
    return bool(workspace.in_place) and layer.live is None and not layer.coverage


def _page_layer(workspace, layer: MapLayer, selection, tag: str) -> PreparedLayer:
    """A prepared layer of the rows a store's :class:`~gridcover.store.base.Selection` holds (ids where the
    table has none: the row's place, as in memory)."""
    frame = selection.frame
    if layer.id_field not in frame.columns:
        frame[layer.id_field] = (frame["fid"] - 1).astype(str)
    frame = lists_from_json(frame.drop(columns="fid"))
    return PreparedLayer(layer, frame, street_of=selection.street_of, tag=tag)


def _row_query(workspace, layer: MapLayer, view: View, **kw) -> RowQuery:
    """The store's query for ``view``: every street for a public layer or an admin, else the caller's own."""
    columns = workspace.layer_schema(layer.source).columns
    streets = None if layer.role == "public" or view.streets is None else frozenset(view.streets)
    return RowQuery(streets=streets, street_from=street_from(workspace, layer, columns), **kw)


def select_features(workspace, layer_cache: LayerCache, layer_id: str, *, view: View, area=None,
                    equals: dict[str, str] | None = None, limit: int | None = None, offset: int = 0) -> FeaturePage:
    """The features of ``layer_id`` that ``view`` may see, meeting the WGS-84 ``area`` and the ``equals``
    filters, ``offset`` skipped and at most ``limit`` given (``None``: all), in the order analyze wrote them,
    with how many match in all.

    Parameters
    ----------
    workspace
        The store (answers in SQL where ``in_place``, else the layer is prepared in memory).
    layer_cache
        The owner's prepared layers (the in-memory path, and the tag pages are keyed by).
    view
        Who asks (:class:`~layers.features.View`): fields, k-suppression and streets follow it.
    """
    layer = shown_layer(declared(layer_id), view)
    if not in_database(workspace, layer):
        source = layer_cache.prepare(workspace, layer_id, view=view)
        rows = source.query(view=view, bbox_wgs84=area, equals=equals)
        end = len(rows) if limit is None else offset + limit
        return FeaturePage(source, rows[offset:end], len(rows))
    query = _row_query(workspace, layer, view, area=area, equals=equals)
    selection = workspace.select(layer.source, query=query, limit=limit, offset=offset)
    source = _page_layer(workspace, layer, selection, tag="page")
    return FeaturePage(source, np.arange(len(source.data)), selection.matched)


def find_feature(workspace, layer_cache: LayerCache, layer_id: str, feature_id: str, *,
                 view: View) -> tuple[PreparedLayer, int] | None:
    """The prepared layer holding feature ``feature_id`` and its row, or ``None`` where ``view`` may not see
    it or there is none."""
    layer = shown_layer(declared(layer_id), view)
    if not in_database(workspace, layer):
        source = layer_cache.prepare(workspace, layer_id, view=view)
        row = source.row_of(feature_id)
        visible = source.visible_rows(view)
        return None if row is None or (visible is not None and not visible[row]) else (source, row)
    query = _row_query(workspace, layer, view, ids=(str(feature_id),), id_column=layer.id_field)
    selection = workspace.select(layer.source, query=query, limit=1, count=False)
    if not len(selection.frame):
        return None
    return _page_layer(workspace, layer, selection, tag="feature"), 0


def describe_layer(workspace, layer_cache: LayerCache, layer_id: str, *, view: View | None = None) -> PreparedLayer:
    """A prepared layer for what is said *about* a layer (its fields and their types, its extent): the whole
    layer in memory, or for a layer answered in the database its columns with no rows and the extent the
    database gives (``ST_Extent``). Kept in ``layer_cache`` per version."""
    layer = shown_layer(declared(layer_id), view)
    if not in_database(workspace, layer):
        return layer_cache.prepare(workspace, layer_id, view=view)
    return layer_cache.described(workspace, layer_id, view=view, read=lambda: _schema_layer(workspace, layer))


def _schema_layer(workspace, layer: MapLayer) -> PreparedLayer:
    frame = workspace.layer_schema(layer.source)
    if layer.id_field not in frame.columns:
        frame = frame.assign(**{layer.id_field: frame.index.astype(str)})
    out = PreparedLayer(layer, frame, street_of=None, tag="schema")  # no rows: the list fields stay text
    out.bounds = workspace.layer_extent(layer.source)
    return out


def database_tile(workspace, layer: MapLayer, z: int, x: int, y: int, *, tile: TileSpec, k: int) -> bytes:
    """The MVT bytes of one tile of a layer answered in the database: the features ``ST_AsMVTGeom`` cut
    (:meth:`~gridcover.store.base.Workspace.tile_features`), their ``tile_fields`` as the public sees them
    (the same :class:`~layers.features.PreparedLayer` rules as in memory), encoded by :mod:`layers.mvt`."""
    selection = workspace.tile_features(layer.source, z, x, y, tile=tile)
    if not len(selection.frame):
        return b""
    source = _page_layer(workspace, layer, selection, tag="tile")
    fields = [f for f in dict.fromkeys(layer.tile_fields or (layer.id_field,)) if f in source.data.columns]
    props = source.properties(public_view(k), fields=fields)
    geoms = np.asarray(source.geoms, dtype=object)
    return encode_layer(layer.id, shapely.force_2d(geoms), props, kind=layer.geometry)


def features_meeting(workspace, layer_cache: LayerCache, layer_id: str,
                     box_3857: tuple[float, float, float, float]) -> PreparedLayer:
    """A prepared layer holding (at least) the features of ``layer_id`` that meet a Web Mercator box, as the
    public sees them: the whole layer in memory, or only those rows read from the database (a heat tile's)."""
    layer = shown_layer(declared(layer_id), None)
    if not in_database(workspace, layer):
        return layer_cache.prepare(workspace, layer_id)
    area = bbox_to_wgs84(box_3857, "EPSG:3857", xy=True)
    selection = workspace.select(layer.source, query=RowQuery(area=area), count=False)
    return _page_layer(workspace, layer, selection, tag="area")
