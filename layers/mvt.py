"""Mapbox Vector Tile (MVT 2.1) encoding over numpy arrays: every vertex, command and varint at once.

The well-kept Python encoder (mapbox-vector-tile) walks every vertex in Python and needs ~270 ms for a
tile of 1,755 polygons of 40 vertices; this module encodes the same tile with array operations (quantise,
drop repeated points, fix ring winding, delta + zigzag, command integers, protobuf varints) in a few
milliseconds. Tests decode its output with mapbox-vector-tile and check it against the input.

Example
-------
Each call gives one layer message, wrapped as a tile; tiles of several layers are their concatenation:

>>> import numpy as np
>>> import pandas as pd
>>> from shapely.geometry import Point, box
>>> data = encode_layer("grids", np.array([box(0, 0, 2048, 2048)]), pd.DataFrame({"id": ["G1"]}), kind="polygon")
>>> tile = data + encode_layer("buildings", np.array([Point(100, 100)]), pd.DataFrame({"id": ["B1"]}),
...                            kind="point")
>>> b"grids" in tile, b"buildings" in tile
(True, True)
"""

from __future__ import annotations

import functools

import struct

import numpy as np
import pandas as pd
import shapely
from shapely import GeometryType

EXTENT = 4096
_MOVE_TO, _LINE_TO, _CLOSE = 1, 2, 7
_POINT, _LINESTRING, _POLYGON = 1, 2, 3


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes each unsigned value takes as a protobuf varint."""
    v = np.asarray(values, dtype=np.uint64)
    sizes = np.ones(v.shape, dtype=np.int64)
    for k in range(1, 10):
        sizes += v >= np.uint64(1 << (7 * k))
    return sizes


def varints(values: np.ndarray) -> bytes:
    """Protobuf varint encoding of an array of unsigned integers, in one pass per byte position."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size == 0:
        return b""
    sizes = varint_sizes(v)
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for k in range(int(sizes.max())):
        m = sizes > k
        byte = (v[m] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (sizes[m] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[m] + k] = (byte | more).astype(np.uint8)
    return out.tobytes()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.int64)
    return ((n << 1) ^ (n >> 63)).astype(np.uint64)


def _segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of consecutive segments of ``values`` of the given lengths (empty segments sum to 0)."""
    csum = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    ends = np.cumsum(counts)
    return csum[ends] - csum[ends - counts]


def _paths(geoms: np.ndarray, kind: str):
    """Quantised vertex paths of the geometries: (xy int64, path lengths, path's feature, path is exterior ring)."""
    if kind == "point":
        parts, feat = shapely.get_parts(geoms, return_index=True)
        xy = np.round(shapely.get_coordinates(parts)).astype(np.int64)
        return xy, np.ones(len(xy), dtype=np.int64), feat, None
    if kind == "line":
        parts, feat = shapely.get_parts(geoms, return_index=True)
        rings, rfeat = parts, feat
        ring_is_exterior = None
    else:
        parts, feat = shapely.get_parts(geoms, return_index=True)
        polys = shapely.get_type_id(parts) == GeometryType.POLYGON
        parts, feat = parts[polys], feat[polys]
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        rfeat = feat[ring_part]
        ring_is_exterior = np.r_[True, ring_part[1:] != ring_part[:-1]] if len(ring_part) else np.zeros(0, bool)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    xy = np.round(coords).astype(np.int64)
    n = np.bincount(ring_of, minlength=len(rings))
    first = np.cumsum(n) - n
    keep = np.ones(len(xy), dtype=bool)
    if kind == "polygon":  # drop the closing vertex
        keep[(first + n - 1)[n > 0]] = False
    same_ring = np.r_[False, ring_of[1:] == ring_of[:-1]]
    repeated = same_ring & np.r_[False, (xy[1:] == xy[:-1]).all(axis=1)]
    # a vertex equal to the previous kept one: compare against the previous vertex (the closing one already gone)
    keep &= ~repeated
    xy, ring_of = xy[keep], ring_of[keep]
    n = np.bincount(ring_of, minlength=len(rings))
    minimum = 3 if kind == "polygon" else 2
    ok = n >= minimum
    if kind == "polygon":
        first = np.cumsum(n) - n
        nxt = np.arange(len(xy)) + 1
        last_of = (first + n - 1)[ring_of]
        nxt = np.where(np.arange(len(xy)) == last_of, first[ring_of], nxt)
        nxt = np.minimum(nxt, max(len(xy) - 1, 0))
        cross = (xy[:, 0] * xy[nxt, 1] - xy[nxt, 0] * xy[:, 1]) if len(xy) else np.zeros(0, np.int64)
        area2 = np.bincount(ring_of, weights=cross, minlength=len(rings))
        ok &= area2 != 0
        # a polygon part whose exterior ring degenerated loses its holes too
        part_id = np.cumsum(ring_is_exterior) - 1
        exterior_ok = np.zeros(len(part_id) and part_id.max() + 1, dtype=bool)
        exterior_ok[part_id[ring_is_exterior]] = ok[ring_is_exterior]
        ok &= exterior_ok[part_id]
        flip = ok & ((area2 > 0) != ring_is_exterior)
        if flip.any():  # reverse the vertices of rings with the wrong winding (MVT: exterior positive in y-down)
            idx = np.arange(len(xy))
            f = flip[ring_of]
            idx[f] = (first[ring_of] + (first[ring_of] + n[ring_of] - 1) - idx)[f]
            xy = xy[idx]
    point_ok = ok[ring_of]
    xy = xy[point_ok]
    lengths = n[ok]
    return xy, lengths, rfeat[ok], (ring_is_exterior[ok] if ring_is_exterior is not None else None)


def _geometry_commands(xy: np.ndarray, lengths: np.ndarray, path_feat: np.ndarray, kind: str) -> np.ndarray:
    """The command integers of every path, in order (a feature's paths are consecutive)."""
    npts = len(xy)
    point_path = np.repeat(np.arange(len(lengths)), lengths)
    point_feat = path_feat[point_path] if npts else np.zeros(0, np.int64)
    delta = np.diff(xy, axis=0, prepend=np.zeros((1, 2), np.int64))
    new_feature = np.r_[True, point_feat[1:] != point_feat[:-1]] if npts else np.zeros(0, bool)
    delta[new_feature] = xy[new_feature]
    zz = _zigzag(delta)
    path_first = np.cumsum(lengths) - lengths
    local = np.arange(npts) - path_first[point_path]
    if kind == "point":
        # one MoveTo with the count of every point of the feature
        feats, counts = np.unique(path_feat, return_counts=True)
        feat_len = 1 + 2 * counts
        feat_start = np.cumsum(feat_len) - feat_len
        out = np.empty(int(feat_len.sum()), dtype=np.uint64)
        out[feat_start] = (_MOVE_TO | (counts.astype(np.uint64) << 3)).astype(np.uint64)
        rank = np.arange(npts) - np.repeat(np.cumsum(counts) - counts, counts)
        base = np.repeat(feat_start, counts) + 1 + 2 * rank
        out[base], out[base + 1] = zz[:, 0], zz[:, 1]
        return out
    close = kind == "polygon"
    path_len = 2 * lengths + 2 + (1 if close else 0)
    path_start = np.cumsum(path_len) - path_len
    out = np.empty(int(path_len.sum()), dtype=np.uint64)
    out[path_start] = _MOVE_TO | (1 << 3)
    out[path_start + 3] = (_LINE_TO | ((lengths - 1).astype(np.uint64) << 3)).astype(np.uint64)
    if close:
        out[path_start + path_len - 1] = _CLOSE | (1 << 3)
    pos = path_start[point_path] + np.where(local == 0, 1, 2 * local + 2)
    out[pos], out[pos + 1] = zz[:, 0], zz[:, 1]
    return out


# A pure memo (allowed by tests/test_architecture.py): the bytes depend on the value and its type alone, never
# on a workspace; the same ids and names recur in every neighbouring tile.
@functools.lru_cache(maxsize=262_144, typed=True)
def _value_message(value: object) -> bytes:
    if isinstance(value, (bool, np.bool_)):
        return b"\x38" + (b"\x01" if value else b"\x00")
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if value >= 0:
            return b"\x28" + _varint(value)
        return b"\x30" + _varint((value << 1) ^ (value >> 63))
    if isinstance(value, (float, np.floating)):
        return b"\x19" + struct.pack("<d", float(value))
    text = str(value).encode("utf-8")
    return b"\x0a" + _varint(len(text)) + text


def _tags(properties: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[bytes], list[str]]:
    """Tag integers of each kept feature, their counts, the value messages and the keys."""
    keys: list[str] = []
    values: list[bytes] = []
    matrix = np.full((len(rows), len(properties.columns)), -1, dtype=np.int64)
    for j, column in enumerate(properties.columns):
        series = properties[column].iloc[rows]
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if len(uniques) == 0:
            continue
        matrix[:, len(keys)] = np.where(codes >= 0, codes + len(values), -1)
        keys.append(str(column))
        values.extend(_value_message(u) for u in uniques)
    matrix = matrix[:, :len(keys)]
    present = matrix >= 0
    key_idx = np.broadcast_to(np.arange(len(keys)), matrix.shape)
    pairs = np.stack([key_idx[present], matrix[present]], axis=1).ravel().astype(np.uint64)
    return pairs, 2 * present.sum(axis=1), values, keys


def encode_layer(name: str, geoms: np.ndarray, properties: pd.DataFrame, *, kind: str,
                 extent: int = EXTENT) -> bytes:
    """One MVT layer of ``geoms`` (already in tile units, y down) with their ``properties``, as tile bytes.

    Parameters
    ----------
    name
        The layer's name in the tile.
    geoms
        Shapely geometries in tile coordinates (0..extent, y downwards); empty or degenerate ones are left out.
    properties
        One row per geometry; nulls are left out of a feature's tags.
    kind
        ``polygon``, ``line`` or ``point``.
    """
    geoms = np.asarray(geoms, dtype=object)
    xy, lengths, path_feat, _ = _paths(geoms, kind)
    feats = np.unique(path_feat)
    if len(feats) == 0:
        return b""
    commands = _geometry_commands(xy, lengths, path_feat, kind)
    # per-feature counts of command integers
    if kind == "point":
        per_path = np.ones(len(lengths), dtype=np.int64) * 0
        _, pcount = np.unique(path_feat, return_counts=True)
        geom_counts = 1 + 2 * pcount
    else:
        per_path = 2 * lengths + 2 + (1 if kind == "polygon" else 0)
        geom_counts = np.bincount(np.searchsorted(feats, path_feat), weights=per_path).astype(np.int64)
    tags, tag_counts, value_msgs, keys = _tags(properties, feats)
    geom_bytes = _segment_sums(varint_sizes(commands), geom_counts)
    tag_bytes = _segment_sums(varint_sizes(tags), tag_counts)
    feat_bytes = 1 + varint_sizes(tag_bytes) + tag_bytes + 2 + 1 + varint_sizes(geom_bytes) + geom_bytes
    block = 2 + 2 + tag_counts + 2 + 2 + geom_counts
    start = np.cumsum(block) - block
    stream = np.empty(int(block.sum()), dtype=np.uint64)
    gtype = {"point": _POINT, "line": _LINESTRING, "polygon": _POLYGON}[kind]
    stream[start] = 0x12
    stream[start + 1] = feat_bytes
    stream[start + 2] = 0x12
    stream[start + 3] = tag_bytes
    tag_pos = np.repeat(start + 4, tag_counts) + (np.arange(int(tag_counts.sum())) - np.repeat(np.cumsum(tag_counts) - tag_counts, tag_counts))
    stream[tag_pos] = tags
    after = start + 4 + tag_counts
    stream[after] = 0x18
    stream[after + 1] = gtype
    stream[after + 2] = 0x22
    stream[after + 3] = geom_bytes
    geom_pos = np.repeat(after + 4, geom_counts) + (np.arange(int(geom_counts.sum())) - np.repeat(np.cumsum(geom_counts) - geom_counts, geom_counts))
    stream[geom_pos] = commands
    name_b = name.encode("utf-8")
    parts = [b"\x78\x02", b"\x0a", _varint(len(name_b)), name_b, varints(stream)]
    for key in keys:
        kb = key.encode("utf-8")
        parts += [b"\x1a", _varint(len(kb)), kb]
    for msg in value_msgs:
        parts += [b"\x22", _varint(len(msg)), msg]
    parts += [b"\x28", _varint(extent)]
    body = b"".join(parts)
    return b"\x1a" + _varint(len(body)) + body
