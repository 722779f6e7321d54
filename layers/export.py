"""A layer's features as a table for spreadsheets (导出表格): CSV (UTF-8 with a BOM, as Excel opens it) and
Excel (.xlsx), with Chinese column names and coded values in Chinese.

The rows and properties are the ones the GeoJSON items give the same caller (:class:`~layers.features.View`:
special-group counts 1..k-1 withheld, households only for their streets' offices); the table adds the
longitude and latitude (WGS-84) of a point inside each feature so the rows can be placed again.

Example
-------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> from layers.catalog import find_layer
>>> from layers.features import PreparedLayer, public_view
>>> frame = gpd.GeoDataFrame({"id": ["G1"], "name": ["一网格"], "households": [320], "elderly_alone": [3]},
...                          geometry=[box(104.07, 30.65, 104.08, 30.66)], crs=4326)
>>> layer = PreparedLayer(find_layer("grids"), frame, street_of=None, tag="v1")
>>> table = export_table(layer, [0], public_view(5))
>>> list(table.columns)[:3], table["独居老人"].tolist()
(['编号', '名称', '户数'], ['少于5（不公开）'])
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import shapely

from layers.catalog import FIELD_NAMES, VALUE_NAMES
from layers.features import PreparedLayer, View

#: The export formats and their media types.
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _column(values: pd.Series, codes: dict | None) -> pd.Series:
    """One column, over the whole array: lists joined with 、, codes in Chinese, booleans 是/否."""
    zh = {code: names[0] for code, names in (codes or {}).items()}
    if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
        values = values.astype(object)
    if values.dtype == object and values.map(lambda v: isinstance(v, str) and v.startswith("[")).any():
        values = values.map(lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[") else v)
    if values.dtype == object and values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return values.map(lambda v: "、".join(zh.get(str(x), str(x)) for x in v)
                          if isinstance(v, (list, tuple, np.ndarray)) else v)
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "是", False: "否"}).astype(object)
    if zh:
        text = values.astype("string")
        return text.map(zh).fillna(text).astype(object)
    return values


def _class_names(layer) -> dict[str, tuple[str, str]]:
    """The legend names of the values of a layer's style field (the kinds of coverage issues, the load)."""
    return {str(c.value): (c.zh, c.en) for c in layer.style.classes if c.value is not None}


def export_table(source: PreparedLayer, rows, view: View, *,
                 community_names: dict[str, str] | None = None) -> pd.DataFrame:
    """The features ``rows`` of a prepared layer as ``view`` sees them: id, properties, longitude, latitude;
    columns named in Chinese (:data:`layers.catalog.FIELD_NAMES`), codes translated
    (:data:`layers.catalog.VALUE_NAMES`), withheld special-group counts written out as such; with
    ``community_names`` (id → name), a ``社区名称`` column after ``community_id``.

    Examples
    --------
    See the module's example: a count of 3 with k = 5 reads ``少于5（不公开）``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    props = source.properties(view).iloc[rows].reset_index(drop=True)
    layer = source.layer
    id_field = layer.id_field
    table = pd.DataFrame({id_field: source.ids[rows]})
    classes = _class_names(layer)
    for name in props.columns:
        if name == id_field:
            continue
        codes = VALUE_NAMES.get(name) or (classes if name == layer.style.field else None)
        column = _column(props[name], codes)
        if name in layer.counts:
            raw = pd.to_numeric(source.data[name].iloc[rows], errors="coerce").to_numpy()
            withheld = column.isna().to_numpy() & (raw > 0)
            column = column.astype(object).where(~withheld, f"少于{view.k}（不公开）")
        table[name] = column.to_numpy()
        if name == "community_id" and community_names is not None:
            table["community_name"] = props[name].astype("string").map(community_names).to_numpy()
    points = shapely.point_on_surface(source.geoms[rows]) if len(rows) else np.array([], dtype=object)
    table["lon"] = np.round(shapely.get_x(points), 6) if len(rows) else []
    table["lat"] = np.round(shapely.get_y(points), 6) if len(rows) else []
    names = {**{k: v[0] for k, v in FIELD_NAMES.items()},
             "community_name": "社区名称", "lon": "经度（WGS-84）", "lat": "纬度（WGS-84）"}
    return table.rename(columns=lambda c: names.get(c, c))


def table_csv(table: pd.DataFrame) -> bytes:
    """CSV bytes, UTF-8 with a BOM (Excel on Chinese Windows opens it with the right characters).

    Examples
    --------
    >>> table_csv(pd.DataFrame({"名称": ["一网格"]}))[:3] == b"\\xef\\xbb\\xbf"
    True
    """
    return table.to_csv(index=False).encode("utf-8-sig")


def table_xlsx(table: pd.DataFrame, *, title: str) -> bytes:
    """An Excel workbook (.xlsx) of one sheet named ``title``: a bold, frozen header row, columns sized.

    Examples
    --------
    >>> table_xlsx(pd.DataFrame({"名称": ["一网格"]}), title="网格")[:2]
    b'PK'
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(table.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in table.astype(object).where(table.notna(), None).itertuples(index=False):
        sheet.append(list(record))
    sheet.freeze_panes = "A2"
    for i, name in enumerate(table.columns, start=1):
        longest = max([len(str(name))] + [len(str(v)) for v in table[name].head(200) if v is not None])
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = min(60, 4 + 1.6 * longest)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
