"""GeoJSON of a point layer, written with arrow's string kernels byte for byte as GDAL's GeoJSON driver writes it.

GDAL's driver (``RFC7946=YES``, ``COORDINATE_PRECISION=7``, ``WRITE_NAME=NO``, through pyogrio) spends about
15 µs a feature building json-c objects: a city of 1,000,000 households with 58 fields a household took a
minute and a half. Here each column becomes one array of ``"name": value`` texts at once and the features are
joined in chunks, so the file is the same bytes in a few seconds. The numbers are printed as GDAL prints
them: a property double as ``%.17g`` (fewer digits where that text has a run of six 0s or 9s after the point,
``.0`` added to a whole number), a coordinate as ``%.7f`` with its trailing zeros cut (``.0`` kept);
a NaN property is ``null`` (pyogrio writes it as a null field). Strings are escaped as json-c escapes them.

Only what this writer knows is written here: a layer in WGS-84 of points (or empty geometries), with text,
boolean, integer, float and arrow list-of-text columns. Anything else (another geometry type, an infinite
float, a date column, a text with a control character other than ``\\b \\f \\n \\r \\t``) makes
:func:`write_point_geojson` return ``False`` and the caller writes the layer through GDAL instead.
``tests/test_io_geojson.py`` writes tricky layers both ways and compares the bytes.

Example
-------
>>> import geopandas as gpd, tempfile, pathlib
>>> frame = gpd.GeoDataFrame({"id": ["H1"], "n": [2]}, geometry=gpd.points_from_xy([104.05], [30.6]), crs=4326)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "h.geojson"
>>> write_point_geojson(frame, path)
True
>>> print(path.read_text().splitlines()[4])
{ "type": "Feature", "properties": { "id": "H1", "n": 2 }, "geometry": { "type": "Point", "coordinates": [ 104.05, 30.6 ] } }
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

#: Rows turned into text at a time (bounds the memory of the text to ~100 MB for 58 fields).
CHUNK_ROWS = 50_000
#: What GDAL writes before the features and after them (``COORDINATE_PRECISION=7``).
HEADER = '{\n"type": "FeatureCollection",\n"xy_coordinate_resolution": 1e-07,\n"features": [\n'
FOOTER = "\n]\n}\n"
#: json-c's escapes as GDAL uses it (``/`` is left as it is).
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\b", "\\b"), ("\f", "\\f"), ("\n", "\\n"),
            ("\r", "\\r"), ("\t", "\\t"))
#: Any character one of those escapes.
_TO_ESCAPE = '[\\\\"\b\f\n\r\t]'
#: Control characters json-c writes as ``\\u00XX``: left to GDAL.
_OTHER_CONTROL = "[\x00-\x07\x0b\x0e-\x1f]"


def gdal_double(value: float) -> str:
    """A float property as GDAL's GeoJSON driver prints it (default significant figures).

    Examples
    --------
    >>> gdal_double(5.8), gdal_double(6.0), gdal_double(0.1 + 0.2), gdal_double(1e20)
    ('5.8', '6.0', '0.3', '1e+20')
    """
    text = "%.17g" % value
    dot = text.find(".")
    if dot >= 0 and ("999999" in text[dot:] or "000000" in text[dot:]):
        for digits in (16, 15, 14):
            shorter = "%.*g" % (digits, value)
            dot = shorter.find(".")
            if dot >= 0 and "999999" not in shorter[dot:] and "000000" not in shorter[dot:]:
                text = shorter
                break
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _escaped(values: pa.Array, key: str = "") -> pa.Array:
    """JSON string literals of text values after ``key`` (nulls stay null)."""
    if pc.any(pc.match_substring_regex(values, _TO_ESCAPE)).as_py():
        for old, new in _ESCAPES:
            values = pc.replace_substring(values, old, new)
    return pc.binary_join_element_wise(key + '"', values, '"', "")


def _fixed7(values: np.ndarray) -> pa.Array:
    """Coordinates as GDAL writes them at 7 decimals (``OGRFormatDouble`` rounding): the text of ``%.7f``; where
    it is longer than 10 characters and its last six decimals but one are ``00000`` the last decimal is cut,
    where they are ``99999`` it is cut and the sixth decimal rounded up; then trailing zeros are cut (``.0``
    kept). ``%.7f`` is computed in integers; a value within a millionth of a unit of halfway between two
    seven-decimal numbers is printed by Python (correctly rounded, as C's printf)."""
    magnitude = np.abs(values)
    scaled = magnitude * 1e7
    n = np.rint(scaled).astype(np.int64)
    doubtful = np.flatnonzero(np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6)
    if len(doubtful):
        n[doubtful] = [int(("%.7f" % v).replace(".", "")) for v in magnitude[doubtful]]
    negative = np.signbit(values)
    whole = n // 10_000_000
    long_text = (np.floor(np.log10(np.maximum(whole, 1))).astype(np.int64) + 1 + negative) > 2
    run = (n // 10) % 100_000
    n = np.where(long_text & (run == 0), n // 10 * 10, n)
    n = np.where(long_text & (run == 99_999), (n // 10 + 1) * 10, n)
    whole, fraction = n // 10_000_000, n % 10_000_000
    decimals = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 7, "0"), characters="0")
    decimals = pc.if_else(pc.equal(decimals, ""), "0", decimals)
    sign = pc.if_else(pa.array(negative), "-", "")
    return pc.binary_join_element_wise(sign, pc.cast(pa.array(whole), pa.string()), ".", decimals, "")


def _floats(values: np.ndarray, key: str) -> tuple[pa.Array, np.ndarray]:
    """``key`` and each distinct float property as GDAL prints it (NaN as ``null``), and each row's number
    among them."""
    bits, inverse = np.unique(np.ascontiguousarray(values, np.float64).view(np.int64), return_inverse=True)
    uniques = bits.view(np.float64)  # by their bits: -0.0 prints apart from 0.0
    printed = pa.array([key + ("null" if np.isnan(v) else gdal_double(float(v))) for v in uniques], pa.string())
    return printed, inverse.ravel()


def _fragment(series: pd.Series, key: str) -> tuple[pa.Array, np.ndarray | None] | None:
    """``key`` and the JSON text of each value of a column (``null`` where missing); for floats and booleans the
    text of each distinct value and each row's number among them instead. None for a column left to GDAL."""
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
        arr = pa.chunked_array(series.array._pa_array).combine_chunks().cast(pa.list_(pa.string()))
        first, last = arr.offsets[0].as_py(), arr.offsets[-1].as_py()
        items = arr.values.slice(first, last - first)  # with the values under null lists, as the offsets span them
        if pc.any(pc.match_substring_regex(items, _OTHER_CONTROL)).as_py() or \
                pc.sum(pc.is_null(pc.list_flatten(arr))).as_py():
            return None
        offsets = pc.subtract(arr.offsets, first)
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, _escaped(items), mask=arr.is_null()), ", ")
        text = pc.binary_join_element_wise(key + "[ ", joined, " ]", "")
        text = pc.if_else(pc.equal(pc.list_value_length(arr), 0), key + "[ ]", text)
        return pc.fill_null(text, key + "null"), None
    if pd.api.types.is_bool_dtype(dtype):
        arr = pa.array(series.array, pa.bool_(), from_pandas=True)
        codes = pc.fill_null(pc.cast(arr, pa.int8()), 2).to_numpy()
        return pa.array([key + "false", key + "true", key + "null"], pa.string()), codes
    if pd.api.types.is_integer_dtype(dtype):
        text = pc.cast(pa.array(series.array, pa.int64(), from_pandas=True), pa.string())
        return pc.fill_null(pc.binary_join_element_wise(key, text, ""), key + "null"), None
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return None if np.isinf(values).any() else _floats(values, key)
    if pd.api.types.is_string_dtype(dtype):
        try:
            arr = pa.array(series.array, pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None  # not all text: GDAL's to write
        if pc.any(pc.match_substring_regex(arr, _OTHER_CONTROL)).as_py():
            return None
        return pc.fill_null(_escaped(arr, key), key + "null"), None
    return None


def _joined_run(texts: list[pa.Array], codes: list[np.ndarray]) -> pa.Array:
    """The texts ``texts[j].take(codes[j])`` joined with ``", "``, each distinct combination of the rows' codes
    joined once (the reach minutes of a household repeat those of its building's other households)."""
    combined = np.zeros(len(codes[0]), np.uint64)
    for c in codes:  # a hash of the combination, checked below: wrapping round is harmless
        combined = combined * np.uint64(1_000_003) + c.astype(np.uint64)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if not all((c[first][inverse] == c).all() for c in codes):  # two combinations of one hash: join every row
        return pc.binary_join_element_wise(*[t.take(pa.array(c)) for t, c in zip(texts, codes)], ", ")
    joined = pc.binary_join_element_wise(*[t.take(pa.array(c[first])) for t, c in zip(texts, codes)], ", ")
    return joined.take(pa.array(inverse))


def _geometry_text(geometry: np.ndarray) -> pa.Array:
    """``{ "type": "Point", "coordinates": [ x, y ] }`` of each point, ``null`` where there is none."""
    empty = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    x = np.where(empty, 0.0, shapely.get_x(geometry))
    y = np.where(empty, 0.0, shapely.get_y(geometry))
    text = pc.binary_join_element_wise('{ "type": "Point", "coordinates": [ ', _fixed7(x), ", ", _fixed7(y), " ] }", "")
    return pc.if_else(pa.array(empty), "null", text)


def _features(frame: pd.DataFrame, geometry: np.ndarray, keys: list[str]) -> pa.Array | None:
    """One feature text per row (no separator), or None if a column is left to GDAL. Runs of columns whose
    distinct values are known (floats, booleans) are joined once per distinct combination."""
    parts, run = [], []
    for key, column in zip(keys, frame.columns):
        made = _fragment(frame[column], key)
        if made is None:
            return None
        if made[1] is not None:
            run.append(made)
            continue
        if run:
            parts.append(_joined_run(*map(list, zip(*run))))
            run = []
        parts.append(made[0])
    if run:
        parts.append(_joined_run(*map(list, zip(*run))))
    props = pc.binary_join_element_wise(*parts, ", ") if parts else pa.array([""] * len(frame), pa.string())
    props = pc.if_else(pc.equal(props, ""), "{ }", pc.binary_join_element_wise("{ ", props, " }", ""))
    return pc.binary_join_element_wise('{ "type": "Feature", "properties": ', props, ', "geometry": ',
                                       _geometry_text(geometry), " }", "")


def writable(frame: gpd.GeoDataFrame) -> bool:
    """Whether :func:`write_point_geojson` writes ``frame`` itself: WGS-84 points (or no geometry) within
    ±180° / ±90° only."""
    if frame.crs is None or frame.crs.to_epsg() != 4326:
        return False
    geometry = frame.geometry.to_numpy()
    if not np.isin(shapely.get_type_id(geometry), (-1, 0)).all() or shapely.has_z(geometry).any():
        return False
    x, y = shapely.get_x(geometry), shapely.get_y(geometry)
    given = ~np.isnan(x)  # RFC 7946: GDAL wraps a longitude beyond ±180
    return bool((np.abs(x[given]) <= 180).all() and (np.abs(y[given]) <= 90).all())


def write_point_geojson(frame: gpd.GeoDataFrame, path: Path) -> bool:
    """Write ``frame`` (WGS-84) as GDAL's GeoJSON driver would, in chunks; False (nothing written) for a layer
    this writer does not know, which the caller then writes through GDAL."""
    if not writable(frame):
        return False
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    keys = [_escaped(pa.array([str(c)], pa.string()))[0].as_py() + ": " for c in attributes.columns]
    geometry = frame.geometry.to_numpy()
    path = Path(path)
    with open(path, "wb") as out:
        out.write(HEADER.encode())
        for start in range(0, len(frame), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(frame))
            text = _features(attributes.iloc[start:stop], geometry[start:stop], keys)
            if text is None:
                break
            separator = np.full(stop - start, ",\n", dtype=object)
            if stop == len(frame):
                separator[-1] = ""
            lines = pc.binary_join_element_wise(text, pa.array(separator, pa.string()), "")
            offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
            out.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])
        else:
            out.write(FOOTER.encode())
            return True
    path.unlink()
    return False
