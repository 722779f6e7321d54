"""Standard grid codes (网格编码): the community's statistical code and a sequence number, made and checked.

By default a grid's code has 15 digits: the 12-digit statistical code of its community (统计用区划代码,
the ``code`` field of the communities layer) and a 3-digit sequence from 001, as local standards write it
(Xi'an's DB6101/T 3185-2024 numbers the basic grids of each community "from west to east, from north to
south"; CJ/T 349-2010 numbers a community's grids "left to right, top to bottom"). Reading order, precisely:
the grids of a community are put in rows by their centroids, row ``r = floor((top − y) / h + ½)`` where
``top`` is the northernmost centroid of the community and ``h`` the median north–south extent of its grids
(so centroids less than half a grid apart in y share a row); rows run north to south, and inside a row the
grids run west to east (by centroid x, then by grid id). :class:`CodePattern` sets the digits and an
optional separator.

New codes go only to grids without one, in reading order, from the next number after the largest taken in
the community (a number once given is never given again, so a retired grid's code is not reused: pass the
codes of retired grids as ``taken``). :func:`check_codes` reports malformed, duplicate and foreign codes as
coverage-issue rows shaped like :func:`geo.diagnose.grid_coverage_issues`' rows.

Example (see :func:`assign_codes` for one that runs)::

    grids["code"] = assign_codes(grids, communities)
    issues = check_codes(grids, communities)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InputError
from geo.settings import Settings

#: Kinds of code issue (rows of the coverage issues).
CODE_ISSUE_KINDS = ("code_malformed", "code_duplicate", "code_outside_community")
_ISSUE_COLUMNS = ["id", "kind", "community_id", "grid_ids", "building_id", "area_m2", "sliver", "households",
                  "persons", "code", "detail", "geometry"]


@dataclass(frozen=True)
class CodePattern:
    """How a grid code is written: ``<community code><separator><sequence>``, digits only, the sequence
    zero-padded and from 1.

    Examples
    --------
    >>> CodePattern().format("510105001001", 7)
    '510105001001007'
    >>> CodePattern(sequence_digits=4, separator="-").format("510105001001", 7)
    '510105001001-0007'
    """

    community_digits: int = 12
    sequence_digits: int = 3
    separator: str = ""

    @property
    def regex(self) -> str:
        return rf"^(\d{{{self.community_digits}}}){re.escape(self.separator)}(\d{{{self.sequence_digits}}})$"

    @property
    def largest(self) -> int:
        return 10 ** self.sequence_digits - 1

    def format(self, community_code: str, sequence: int) -> str:
        return f"{community_code}{self.separator}{sequence:0{self.sequence_digits}d}"

    @classmethod
    def of(cls, settings: Settings) -> "CodePattern":
        """The pattern a run's settings name (``code_community_digits``, ``code_sequence_digits``,
        ``code_separator``; a data folder's ``gridcover.toml`` may change them).

        >>> CodePattern.of(Settings(code_separator="-")).format("510105001001", 7)
        '510105001001-007'
        """
        return cls(community_digits=settings.code_community_digits, sequence_digits=settings.code_sequence_digits,
                   separator=settings.code_separator)


#: The default: 12 + 3 digits.
STANDARD = CodePattern()


def _text(values: pd.Series) -> pd.Series:
    """Codes as stripped text, empty → <NA> (a code read as a number loses nothing: it has no leading 0
    only when it was not written as text, which the pattern then reports)."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _community_codes(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, pattern: CodePattern) -> pd.Series:
    """The statistical code of each grid's community (<NA> where missing or not ``community_digits`` digits)."""
    if "code" not in communities.columns:
        return pd.Series(pd.NA, index=grids.index, dtype="string")
    codes = _text(communities["code"])
    codes = codes.where(codes.str.fullmatch(rf"\d{{{pattern.community_digits}}}").fillna(False))
    by_id = pd.Series(codes.to_numpy(), index=communities["id"].astype(str).to_numpy())
    return pd.Series(by_id.reindex(grids["community_id"].astype(str).to_numpy()).to_numpy(), index=grids.index,
                     dtype="string")


def reading_rank(grids: gpd.GeoDataFrame) -> np.ndarray:
    """Each grid's place (from 0) in its community's reading order: rows of centroids north to south,
    west to east inside a row (the module docstring says how rows are cut).

    Examples
    --------
    >>> boxes = [shapely.box(x, y, x + 100, y + 100) for y in (100, 0) for x in (100, 0)]
    >>> g = gpd.GeoDataFrame({"id": ["ne", "nw", "se", "sw"], "community_id": "c"}, geometry=boxes)
    >>> reading_rank(g).tolist()  # nw, ne in the top row, then sw, se
    [1, 0, 3, 2]
    """
    c = shapely.centroid(grids.geometry.to_numpy())
    bounds = shapely.bounds(grids.geometry.to_numpy())
    frame = pd.DataFrame({"community": grids["community_id"].astype(str).to_numpy(), "x": shapely.get_x(c),
                          "y": shapely.get_y(c), "h": bounds[:, 3] - bounds[:, 1],
                          "id": grids["id"].astype(str).to_numpy()})
    by = frame.groupby("community")
    top = by["y"].transform("max")
    height = by["h"].transform("median").where(lambda h: h > 0, 1.0)
    frame["row"] = np.floor((top - frame["y"]) / height + 0.5)
    order = np.lexsort((frame["id"].to_numpy(), frame["x"].to_numpy(), frame["row"].to_numpy(),
                        frame["community"].to_numpy()))
    in_order = frame["community"].to_numpy()[order]
    out = np.empty(len(frame), dtype=np.int64)
    out[order] = pd.Series(in_order).groupby(in_order).cumcount().to_numpy()
    return out


def _sequence(codes: pd.Series, community_codes: pd.Series, pattern: CodePattern) -> pd.Series:
    """The sequence number of each well-formed code under its community's code (<NA> otherwise)."""
    parts = codes.str.extract(pattern.regex)
    under = parts[0].eq(community_codes) & parts[1].notna()
    seq = pd.to_numeric(parts[1], errors="coerce").astype("Int64")
    return seq.where(under.fillna(False) & (seq > 0).fillna(False))


def assign_codes(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, pattern: CodePattern = STANDARD,
                 taken: Iterable[str] = ()) -> pd.Series:
    """The code of every grid: its own where it has one, else the next free code of its community.

    Grids without a code (no ``code`` column, or an empty one) get, in their community's reading order
    (:func:`reading_rank`), the numbers after the largest sequence already used there by a well-formed
    code of the community or listed in ``taken`` (codes of retired grids). Codes already given are kept
    as they are, even malformed ones (:func:`check_codes` reports those). A grid whose community has no
    ``community_digits``-digit ``code`` gets <NA>.

    Raises
    ------
    InputError
        When a community would need a sequence number beyond the pattern's digits (999 by default).

    Examples
    --------
    >>> boxes = [shapely.box(x, y, x + 100, y + 100) for y in (100, 0) for x in (0, 100)]
    >>> g = gpd.GeoDataFrame({"id": ["a", "b", "c", "d"], "community_id": "c1",
    ...                       "code": [None, "510105001001001", None, None]}, geometry=boxes)
    >>> c = gpd.GeoDataFrame({"id": ["c1"], "code": ["510105001001"]}, geometry=[shapely.box(0, 0, 200, 200)])
    >>> assign_codes(g, c).tolist()
    ['510105001001002', '510105001001001', '510105001001003', '510105001001004']
    """
    community = _community_codes(grids, communities, pattern)
    own = _text(grids["code"]) if "code" in grids.columns else pd.Series(pd.NA, index=grids.index, dtype="string")
    used = _sequence(own, community, pattern)
    taken = pd.Series(list(taken), dtype="string")
    if len(taken):
        prefix = taken.str.extract(pattern.regex)
        extra = pd.DataFrame({"community": prefix[0], "seq": pd.to_numeric(prefix[1], errors="coerce")}).dropna()
        extra_max = extra.groupby("community")["seq"].max()
    else:
        extra_max = pd.Series(dtype=float)
    cid = grids["community_id"].astype(str).to_numpy()
    largest = used.astype("Float64").groupby(cid).max().reindex(cid).fillna(0).to_numpy(dtype=float)
    largest = np.maximum(largest, extra_max.reindex(community.to_numpy()).fillna(0).to_numpy(dtype=float))
    new = (own.isna() & community.notna()).to_numpy()
    rank = reading_rank(grids)
    # among the grids that get a code, their order in the community's reading order
    nth = pd.Series(np.where(new, rank, -1)).where(new).groupby(cid).rank(method="first").to_numpy()
    seq = largest + np.nan_to_num(nth)
    over = new & (seq > pattern.largest)
    if over.any():
        i = int(np.flatnonzero(over)[0])
        msg = (f"community {cid[i]}: no free grid code left for grid {grids['id'].iloc[i]} "
               f"({pattern.sequence_digits}-digit sequence, {int(largest[i])} taken)")
        raise InputError(msg, field="code")
    made = [pattern.format(code, int(s)) for code, s in zip(community.to_numpy()[new], seq[new])]
    out = own.copy()
    out.iloc[np.flatnonzero(new)] = made
    return out.rename("code")


def fill_codes(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, pattern: CodePattern = STANDARD,
               taken: Iterable[str] = ()) -> gpd.GeoDataFrame:
    """The grids with every missing ``code`` filled by :func:`assign_codes` and ``code_generated`` (true where
    the code was made here). A given code is never changed, and no code made here equals one given to any grid
    (every given code, of whatever community, counts as taken, with ``taken``).

    Examples
    --------
    >>> boxes = [shapely.box(x, 0, x + 100, 100) for x in (0, 100)]
    >>> g = gpd.GeoDataFrame({"id": ["a", "b"], "community_id": "c1", "code": ["510105001001003", None]},
    ...                      geometry=boxes)
    >>> c = gpd.GeoDataFrame({"id": ["c1"], "code": ["510105001001"]}, geometry=[shapely.box(0, 0, 200, 100)])
    >>> fill_codes(g, c)[["code", "code_generated"]].values.tolist()
    [['510105001001003', False], ['510105001001004', True]]
    """
    own = _text(grids["code"]) if "code" in grids.columns else pd.Series(pd.NA, index=grids.index, dtype="string")
    codes = assign_codes(grids, communities, pattern=pattern, taken=[*taken, *own.dropna().tolist()])
    out = grids.copy()
    out["code"] = codes.astype(object).where(codes.notna(), None).to_numpy()
    out["code_generated"] = (own.isna() & codes.notna()).to_numpy(dtype=bool)
    return out


def check_codes(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, pattern: CodePattern = STANDARD,
                located: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """Coverage issues of the grids' codes, one row each: ``code_malformed`` (not the pattern, or sequence
    0), ``code_outside_community`` (well formed, but not under its community's statistical code) and
    ``code_duplicate`` (one row per code on more than one grid, ``grid_ids`` comma-joined, the grids'
    union as geometry). Grids without a code, and the prefix of grids whose community has no code, are not
    checked. ``located`` (``x``, ``y``, ``persons`` per household, metric) counts the households inside.

    The columns are those of :func:`geo.diagnose.grid_coverage_issues` plus ``code`` and ``detail`` (the
    message a user reads).

    Examples
    --------
    >>> boxes = [shapely.box(x, 0, x + 100, 100) for x in (0, 100, 200, 300)]
    >>> g = gpd.GeoDataFrame({"id": ["a", "b", "c", "d"], "community_id": "c1",
    ...     "code": ["510105001001001", "51010500100100X", "510105001002001", "510105001001001"]}, geometry=boxes)
    >>> c = gpd.GeoDataFrame({"id": ["c1"], "code": ["510105001001"]}, geometry=[shapely.box(0, 0, 400, 100)])
    >>> check_codes(g, c)[["kind", "grid_ids"]].values.tolist()
    [['code_malformed', 'b'], ['code_outside_community', 'c'], ['code_duplicate', 'a,d']]
    """
    own = _text(grids["code"]) if "code" in grids.columns else pd.Series(pd.NA, index=grids.index, dtype="string")
    community = _community_codes(grids, communities, pattern)
    parts = own.str.extract(pattern.regex)
    present = own.notna().to_numpy()
    formed = parts[1].notna().to_numpy() & (pd.to_numeric(parts[1], errors="coerce").fillna(0) > 0).to_numpy()
    malformed = present & ~formed
    foreign = present & formed & community.notna().to_numpy() & (parts[0] != community).fillna(False).to_numpy()
    gid = grids["id"].astype(str).to_numpy()
    cid = grids["community_id"].astype(str).to_numpy()
    geoms = grids.geometry.to_numpy()
    codes = own.to_numpy(dtype=object)
    example = pattern.format("1" * pattern.community_digits, 1)
    frames = [
        _rows("code_malformed", cid[malformed], gid[malformed], geoms[malformed], codes[malformed],
              np.char.add(f"grid code is not {pattern.community_digits}+{pattern.sequence_digits} digits "
                          f"(like {example}): ", codes[malformed].astype(str))),
        _rows("code_outside_community", cid[foreign], gid[foreign], geoms[foreign], codes[foreign],
              np.char.add(np.char.add(np.char.add("grid code ", codes[foreign].astype(str)),
                                      " does not start with its community's code "),
                          community.to_numpy(dtype=object)[foreign].astype(str))),
    ]
    dup = pd.Series(np.arange(len(grids)))[present].groupby(codes[present]).apply(np.asarray)
    dup = dup[dup.map(len) > 1]
    if len(dup):
        members = list(dup.to_numpy())
        joined = np.array([",".join(sorted(gid[m])) for m in members], dtype=object)
        union = np.array([shapely.union_all(geoms[m]) for m in members], dtype=object)
        frames.append(_rows("code_duplicate", np.array([cid[m[0]] for m in members], dtype=object), joined, union,
                            dup.index.to_numpy(dtype=object),
                            np.array([f"grid code {c} is on {len(m)} grids: {j}"
                                      for c, m, j in zip(dup.index, members, joined)], dtype=object)))
    issues = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=grids.crs)
    issues["id"] = issues["kind"] + "-" + (issues.groupby("kind").cumcount() + 1).astype(str)
    if located is not None and len(issues):
        _count(issues, located)
    return issues[_ISSUE_COLUMNS]


def _rows(kind: str, community: np.ndarray, grid_ids: np.ndarray, geoms: np.ndarray, codes: np.ndarray,
          detail: np.ndarray) -> pd.DataFrame:
    n = len(grid_ids)
    return pd.DataFrame({"id": "", "kind": np.full(n, kind, dtype=object), "community_id": community,
                         "grid_ids": grid_ids, "building_id": np.full(n, None, dtype=object),
                         "area_m2": np.round(shapely.area(geoms), 2) if n else np.zeros(0),
                         "sliver": np.zeros(n, bool), "households": np.zeros(n, np.int64),
                         "persons": np.zeros(n, np.int64), "code": codes, "detail": detail,
                         "geometry": np.asarray(geoms, dtype=object)})


def _count(issues: gpd.GeoDataFrame, located: pd.DataFrame) -> None:
    ok = np.isfinite(located["x"].to_numpy(dtype=float))
    pts = shapely.points(located["x"].to_numpy(dtype=float)[ok], located["y"].to_numpy(dtype=float)[ok])
    persons = located["persons"].fillna(0).to_numpy(dtype=np.int64)[ok]
    pi, hi = shapely.STRtree(pts).query(issues.geometry.to_numpy(), predicate="intersects")
    issues["households"] = np.bincount(pi, minlength=len(issues)).astype(np.int64)
    issues["persons"] = np.bincount(pi, weights=persons[hi], minlength=len(issues)).astype(np.int64)
