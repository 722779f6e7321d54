"""What can be wrong with a lookup answer (问题代码): one table of English codes and their messages.

Every answer of the lookup (``GET /lookup``, ``POST /lookup/batch``, ``gridcover lookup``) and of the case
intake that resolves cases as the lookup does carries ``problem`` (a code of :data:`PROBLEMS`, or ``None``),
``message`` (Chinese, for the person at the hotline) and ``message_en``. A problem may be a refusal (the
address was not placed) or a warning beside a usable answer (``building_not_found``: answered for the estate;
``outside_grids``: the nearest grid is named). Errors that refuse a request (swapped lat/lon out of range)
are :class:`ProblemError`, with the same code and messages.

Templates name their fields ``{field}``; :func:`problem_messages` fills them for a whole batch with numpy's
vectorised string concatenation, not a loop per answer (pandas groups the distinct fields of a large batch; a
single answer never imports it).

Examples
--------
>>> problem_message("address_other_city", found="长春市", expected="北京市")
'地址在长春市，本工作区只负责北京市'
>>> problem_message("address_other_city", lang="en", found="长春市", expected="北京市")
'the address is in 长春市; this workspace answers for 北京市'
"""

from __future__ import annotations

import string

import numpy as np

from geo.errors import InputError

#: Below this many answers the fields are not grouped (each answer is written; pandas is not imported).
_GROUP_FROM = 64

#: code -> (Chinese message, English message); ``{field}`` is filled per answer.
PROBLEMS: dict[str, tuple[str, str]] = {
    "outside_grids": (
        "该位置不在任何网格内（盲区），最近的网格是{nearest_grid}，相距约{distance_m}米",
        "the place is in no grid (a blind spot); the nearest grid is {nearest_grid}, about {distance_m} m away"),
    "lonlat_swapped": (
        "经纬度似乎写反了：经度{lon}、纬度{lat}不在任何网格内，对调后落在本工作区范围内，请先写经度再写纬度",
        "lat and lon look swapped: lon {lon}, lat {lat} is in no grid, but swapped it falls in this workspace's "
        "area; give lon (east) first, then lat (north)"),
    "lonlat_swapped_out_of_range": (
        "经纬度似乎写反了：纬度{lat}超出 -90 到 90 的范围，而经度{lon}像是纬度，请先写经度再写纬度",
        "lat and lon look swapped: lat {lat} is outside -90 to 90 while lon {lon} looks like a latitude; "
        "give lon (east, 73 to 135 in China) first, then lat (north)"),
    "lonlat_out_of_range": (
        "经纬度超出范围：经度应在 -180 到 180 之间，纬度应在 -90 到 90 之间（收到经度{lon}、纬度{lat}）",
        "lon/lat must be numbers with -180 ≤ lon ≤ 180 and -90 ≤ lat ≤ 90 (got lon={lon}, lat={lat})"),
    "address_other_province": (
        "地址在{found}，本工作区只负责{expected}",
        "the address is in {found}; this workspace answers for {expected}"),
    "address_other_city": (
        "地址在{found}，本工作区只负责{expected}",
        "the address is in {found}; this workspace answers for {expected}"),
    "address_other_district": (
        "地址在{found}，不属于本工作区的区县（{expected}）",
        "the address is in {found}, which is not one of this workspace's districts ({expected})"),
    "address_no_place": (
        "地址只写了楼栋、单元或房号，没有路名门牌或小区名",
        "the address names no road, number or estate (only a building, unit or room)"),
    "address_not_found": (
        "找不到与该地址相符的楼栋或小区",
        "the address fits no known building or estate"),
    "address_ambiguous": (
        "该地址与多个楼栋或小区相近，未作猜测，请从候选中确认",
        "the address fits several buildings or estates: see the candidates and their scores (no guess)"),
    "building_not_found": (
        "{estate}没有{building}栋，已按小区回答{known}",
        "{estate} has no building {building}栋: answered for the estate{known}"),
}


def _fields(template: str) -> list[tuple[str, str | None]]:
    return [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]


def problem_message(code: str, *, lang: str = "zh", **params) -> str:
    """The message of one problem code in ``lang`` (``zh`` or ``en``), its fields filled from ``params``.

    Examples
    --------
    >>> problem_message("address_not_found", lang="en")
    'the address fits no known building or estate'
    """
    zh, en = PROBLEMS[code]
    return (zh if lang == "zh" else en).format(**params)


def problem_messages(codes, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chinese and English messages of many answers (``None`` where the code is ``None``).

    Parameters
    ----------
    codes
        One code of :data:`PROBLEMS` (or ``None``) per answer.
    params
        Field name -> one text (or ``None``) per answer, or a pair (Chinese texts, English texts) where the
        two languages say it differently.

    Returns
    -------
    tuple of two object arrays
        ``message`` and ``message_en``.

    Examples
    --------
    >>> zh, en = problem_messages(["outside_grids", None], {"nearest_grid": ["一网格", None],
    ...                                                     "distance_m": ["40", None]})
    >>> zh[0], en[1]
    ('该位置不在任何网格内（盲区），最近的网格是一网格，相距约40米', None)
    """
    codes = np.asarray(list(codes), dtype=object).reshape(-1)
    n = len(codes)
    out = (np.full(n, None, dtype=object), np.full(n, None, dtype=object))
    params = params or {}
    given = ~_missing(codes)
    for code in dict.fromkeys(codes[given].tolist()):  # the distinct codes, in order of appearance
        if code not in PROBLEMS:
            raise KeyError(f"unknown problem code {code!r}: add it to geo.problems.PROBLEMS")
        rows = np.flatnonzero(given & (codes == code))
        for lang, template in enumerate(PROBLEMS[code]):
            pieces = _fields(template)
            fields = {}
            for _, name in pieces:
                if name is not None:
                    value = params[name][lang] if isinstance(params[name], tuple) else params[name]
                    part = np.asarray(value, dtype=object)[rows]
                    fields[name] = np.where(_missing(part), "", part).astype(object)
            # each distinct set of fields is written once (thousands of answers share a nearest grid and distance)
            group, first = _distinct(fields, len(rows))
            text = np.full(len(first), "", dtype=object)
            for literal, name in pieces:
                text = text + literal
                if name is not None:
                    text = text + fields[name][first]
            out[lang][rows] = text[group]
    return out


def _distinct(fields: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows of field values: each row's group and the first row of each group."""
    if not fields or n == 1:  # one row is one group (a single lookup: no frame)
        return np.zeros(n, dtype=np.int64), np.zeros(min(n, 1), dtype=np.int64)
    if n < _GROUP_FROM:  # a few answers: each is written, no grouping (the same texts)
        return np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    import pandas as pd

    group = pd.DataFrame(fields).groupby(list(fields), sort=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)
    return group, first


def _missing(values: np.ndarray) -> np.ndarray:
    """Where an object array holds no value: ``None`` or NaN (pandas' ``isna`` for a large batch)."""
    if len(values) >= _GROUP_FROM:
        import pandas as pd

        return pd.isna(values)
    return np.fromiter((v is None or (isinstance(v, float) and v != v) for v in values), dtype=bool,
                       count=len(values))


class ProblemError(InputError):
    """A refused request whose reason is a code of :data:`PROBLEMS`: the English message as the error's text,
    ``problem``, ``message`` (Chinese) and ``message_en`` in the HTTP error body (:meth:`as_json`).

    Examples
    --------
    >>> err = ProblemError("lonlat_out_of_range", field="lon/lat", lon=200.0, lat=30.0)
    >>> str(err)
    "field 'lon/lat': lon/lat must be numbers with -180 ≤ lon ≤ 180 and -90 ≤ lat ≤ 90 (got lon=200.0, lat=30.0)"
    >>> err.as_json()["problem"]
    'lonlat_out_of_range'
    """

    def __init__(self, code: str, *, field: str | None = None, prefix: str = "", **params) -> None:
        self.problem = code
        self.message_zh = problem_message(code, **params)
        self.message_en = prefix + problem_message(code, lang="en", **params)
        super().__init__(self.message_en, field=field)

    def as_json(self) -> dict:
        """The fields the HTTP error body carries beyond ``code`` and ``description``."""
        return {"problem": self.problem, "message": self.message_zh, "message_en": self.message_en}


__all__ = ["PROBLEMS", "ProblemError", "problem_message", "problem_messages"]
