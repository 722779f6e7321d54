"""Chinese addresses (地址): normalise them and match them to a building (楼栋) or an estate (小区).

An address runs from large to small: 省 市 区 街道 路/街 号, 小区, 楼栋, 单元, 室. The same building is
written many ways (3栋, 3号楼, 三栋, ３幢, 3#, 3座), so both the query and every known address are
normalised the same way before they are compared:

1. NFKC (full-width digits and letters → ASCII), spaces and punctuation removed, 小区 dropped;
2. Chinese numerals before a unit word → Arabic (三栋 → 3栋, 二段 → 2段, 十二号 → 12号);
3. 号楼 / 栋 / 幢 / 座 / # → 栋; 单元, 室, floor and the dash form (3-2-501) stripped to the building;
4. the administrative prefix (province, city, district, street office, community) stripped. A district
   without a city is read in the configured city (朝阳区 is Beijing's in a Beijing workspace and
   Changchun's in a Changchun one); an address naming another city, or a district that is not one of the
   workspace's, is not matched and says why.

What remains is a *place* (road and number and/or estate name) and a *building number*. Known addresses
come from the buildings (their address; their estate's name and address with their own name), the
households (each household's address reduced to its building: only the building id is kept, never a
household) and the estates. Matching is exact on the normalised place first (score 1.0), else by the
cosine similarity of character bigrams (TF-IDF) between places, computed for a whole batch as one sparse
matrix product; the building number must be equal. A single best target (score ≥ ``accept_score`` and
no other within ``tie_margin``) is a match; otherwise the candidates with their scores are returned
instead of a guess.

Example
-------
>>> normalise_address("成都市青羊区太升路街道 白家塘街四十号 粮食局宿舍 三号楼 2单元 501室")
'白家塘街40号粮食局宿舍3栋'
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scipy is imported where a matrix is made: a point lookup never loads it
    import scipy.sparse as sp

# ------------------------------------------------------------------ normalising text
_CN_DIGIT = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
#: Words after which a Chinese numeral is a number (building, unit, room, section, phase, floor …).
_UNIT_WORDS = "号楼|号院|号|栋|幢|座|单元|室|段|期|楼|层|组|巷|弄|排|户|区"
_CN_NUMBER = re.compile(rf"([零〇○一二两三四五六七八九十百千]+)(?=(?:{_UNIT_WORDS}))")
_PUNCT = re.compile(r"[\s,，.。、;；:：·'\"“”‘’()（）\[\]【】<>《》_~]+")
_DASH = re.compile(r"[‐‑‒–—―－﹣−]")
_HASH_BUILDING = re.compile(r"([0-9]+[A-Za-z]?|[A-Za-z])#(?:楼)?")
_BUILDING = re.compile(r"([0-9]+[A-Za-z]?|[A-Za-z])(?:号楼|号栋|号幢|号座|栋|幢|座)")
_AFTER_BUILDING = re.compile(r"^(.*?(?:[0-9]+[A-Za-z]?|[A-Za-z])栋).*$")
_DASH_FORM = re.compile(r"^(.*?\D)([0-9]+)-[0-9]+(?:-[0-9]+)?(?:室|号)?$")
_UNIT_ROOM = re.compile(r"([0-9]+单元|[0-9]+层|[0-9]+楼(?![0-9]*栋)|[0-9]+室|[0-9]+户).*$")
_TAIL_ROOM = re.compile(r"(栋)[0-9]+$")
#: A room number straight after the door number, without a building: 东华门街97号 2805 is room 2805 of 97号.
_ROOM_AFTER_NUMBER = re.compile(r"(号)[0-9]{3,5}$")
_SPLIT = re.compile(r"^(.*?)([0-9]+[A-Za-z]?|[A-Za-z])栋$")

_HAN = r"[\u4e00-\u9fff]"
_PROVINCE = re.compile(rf"^({_HAN}{{2,3}}省|{_HAN}{{2,10}}?自治区)")
#: What follows 市 inside a road or place name (东珠市街, 西珠市街, 米市坝, 市场): then it is not a city.
_NOT_AFTER_CITY = "场集政民街路巷道桥口坊里坝院苑"
_CITY = re.compile(rf"^({_HAN}{{2,4}}?市)(?![{_NOT_AFTER_CITY}])")
_DISTRICT = re.compile(rf"^({_HAN}{{1,3}}(?:区|县))")
_NOT_DISTRICT = ("小区", "社区", "园区", "校区", "厂区", "景区", "片区", "营区", "住区", "苑区", "期区")
_STREET_OFFICE = re.compile(rf"^({_HAN}{{2,8}}?街道)(?:办事处)?")
_COMMUNITY = re.compile(rf"^({_HAN}{{2,8}}?社区)(?:居委会|居民委员会)?")


def chinese_numeral_to_int(text: str) -> int:
    """The value of a Chinese numeral: 三 → 3, 十二 → 12, 二十 → 20, 一百零五 → 105, 一零五 → 105.

    >>> chinese_numeral_to_int("十五")
    15
    """
    if not any(ch in _CN_UNIT for ch in text):  # digit by digit: 一零五
        return int("".join(str(_CN_DIGIT[ch]) for ch in text))
    total, digit = 0, 0
    for ch in text:
        if ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        else:
            total += (digit or 1) * _CN_UNIT[ch]
            digit = 0
    return total + digit


def _numerals(text: str) -> str:
    return _CN_NUMBER.sub(lambda m: str(chinese_numeral_to_int(m.group(1))), text)


def clean_text(text: str) -> str:
    """Step 1–3 without the administrative prefix: width, numerals, building variants, unit/room stripped.

    >>> clean_text("锦华苑 ３幢 2单元 501")
    '锦华苑3栋'
    >>> clean_text("东华门街97号 2805")
    '东华门街97号'
    """
    text = unicodedata.normalize("NFKC", str(text)).upper()
    text = _DASH.sub("-", text)
    text = _PUNCT.sub("", text).replace("小区", "")
    text = _numerals(text)
    text = _HASH_BUILDING.sub(r"\1栋", text)
    text = _BUILDING.sub(r"\1栋", text)
    if "栋" in text:
        text = _AFTER_BUILDING.sub(r"\1", text)
    else:
        text = _UNIT_ROOM.sub("", text)
        text = _ROOM_AFTER_NUMBER.sub(r"\1", text)
        text = _DASH_FORM.sub(r"\1\2栋", text)
    text = _UNIT_ROOM.sub("", text)
    return text.replace("-", "")


# ------------------------------------------------------------------ settings and parsing
@dataclass(frozen=True)
class AddressSettings:
    """Where the workspace's addresses are: the city, and the districts, street offices and communities known.

    ``city`` (e.g. ``成都市``) resolves district names that repeat across cities; ``None`` reads no city.
    """

    city: str | None = None
    province: str | None = None
    districts: tuple[str, ...] = ()
    street_offices: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    #: A single best target at or above this score is a match (1.0 = the normalised place is equal).
    accept_score: float = 0.8
    #: Targets within this score of the best one make the answer ambiguous.
    tie_margin: float = 0.05
    #: Candidates below this score are not shown.
    min_score: float = 0.4
    #: At most this many candidates per answer.
    max_candidates: int = 5


@dataclass(frozen=True)
class ParsedAddress:
    """An address cut into its parts (all normalised)."""

    text: str
    place: str
    building: str
    city: str | None = None
    district: str | None = None
    #: A code of :data:`geo.problems.PROBLEMS` (``address_other_city`` …) or ``None``.
    problem: str | None = None
    #: The province, city or district the address names, and the ones the workspace answers for (a problem's
    #: fields).
    found: str | None = None
    expected: str | None = None

    @property
    def normalised(self) -> str:
        return f"{self.place}{self.building}栋" if self.building else self.place


def _strip_known(text: str, names: tuple[str, ...]) -> tuple[str, str | None]:
    for name in names:
        if name and text.startswith(name):
            return text[len(name):], name
    return text, None


def parse_address(text: str, *, settings: AddressSettings = AddressSettings()) -> ParsedAddress:
    """Normalise an address and cut it into place and building number.

    A 市 inside a road name (东珠市街) is not a city:

    >>> parse_address("东珠市街5号", settings=AddressSettings(city="成都市")).problem is None
    True
    >>> parse_address("长春市朝阳区XX路1号", settings=AddressSettings(city="北京市")).problem
    'address_other_city'
    >>> parse_address("朝阳区望京西园三号楼", settings=AddressSettings(city="北京市", districts=("朝阳区",))).normalised
    '望京西园3栋'
    """
    raw = clean_text(text)
    rest = raw
    city = district = problem = named = expected = None
    m = _PROVINCE.match(rest)
    if m:
        if settings.province and m.group(1) != settings.province:
            problem, named, expected = "address_other_province", m.group(1), settings.province
        rest = rest[m.end():]
    m = _CITY.match(rest)
    if m:
        city = m.group(1)
        if settings.city and city != settings.city and problem is None:
            problem, named, expected = "address_other_city", city, settings.city
        rest = rest[m.end():]
    elif settings.city:
        short = settings.city[:-1] if settings.city.endswith("市") else settings.city
        if rest.startswith(short):
            after, found = _strip_known(rest[len(short):], settings.districts)
            if found:
                city = settings.city
                rest = rest[len(short):]
    districts = tuple(sorted(settings.districts, key=len, reverse=True))
    rest, district = _strip_known(rest, districts)
    if district is None:
        m = _DISTRICT.match(rest)
        if m and not m.group(1).endswith(_NOT_DISTRICT) and settings.districts:
            district = m.group(1)
            if problem is None:
                problem, named = "address_other_district", district
                expected = f"{settings.city or ''}{'、'.join(settings.districts)}"
            rest = rest[m.end():]
    rest, found = _strip_known(rest, tuple(sorted(settings.street_offices, key=len, reverse=True)))
    if found is None:
        m = _STREET_OFFICE.match(rest)
        if m and m.end() < len(rest):
            rest = rest[m.end():]
    rest, found = _strip_known(rest, tuple(sorted(settings.communities, key=len, reverse=True)))
    if found is None:
        m = _COMMUNITY.match(rest)
        if m and m.end() < len(rest):
            rest = rest[m.end():]
    m = _SPLIT.match(rest)
    place, building = (m.group(1), m.group(2)) if m else (rest, "")
    return ParsedAddress(text=raw, place=place, building=building, city=city, district=district, problem=problem,
                         found=named, expected=expected)


def normalise_address(text: str, *, settings: AddressSettings = AddressSettings()) -> str:
    """The normalised form of an address: place and building, without prefix, unit or room (see module)."""
    return parse_address(text, settings=settings).normalised


def infer_settings(addresses: pd.Series, *, city: str | None = None, districts=(), street_offices=(),
                   communities=(), **options) -> AddressSettings:
    """Settings read from the data: the city most addresses start with, and the districts after it.

    ``city`` wins over the inferred one; the given ``districts`` are kept and the ones found are added.
    """
    text = pd.Series(addresses.to_numpy(dtype=object), dtype=object).dropna().astype(str)
    province = None
    found_districts: list[str] = []
    if len(text):
        # the first 32 characters hold province, city and district: each distinct head is read once, weighted
        heads = text.str.slice(0, 32).value_counts(sort=False)
        heads = heads[heads.index.str.len() > 0]
        clean = pd.Series(heads.index, dtype=object).map(lambda s: _PUNCT.sub("", unicodedata.normalize("NFKC", s)))
        parts = clean.str.extract(rf"^({_HAN}{{2,3}}省)?({_HAN}{{2,4}}?市(?![{_NOT_AFTER_CITY}]))?"
                                  rf"({_HAN}{{1,3}}(?:区|县))?")
        parts["n"] = heads.to_numpy()
        if city is None and parts[1].notna().any():
            city = _most_common(parts, 1)[0]
        if parts[0].notna().any():
            province = _most_common(parts, 0)[0]
        if city is not None:
            found_districts = [d for d in _most_common(parts[parts[1] == city], 2) if not d.endswith(_NOT_DISTRICT)]
    all_districts = tuple(dict.fromkeys([str(d) for d in districts if d] + found_districts))
    return AddressSettings(city=city, province=province, districts=all_districts,
                           street_offices=tuple(str(s) for s in street_offices if s),
                           communities=tuple(str(c) for c in communities if c), **options)


def _most_common(parts: pd.DataFrame, column: int) -> list[str]:
    """The values of a column of address parts, the most frequent first (by the weights ``n``; ties by text)."""
    counts = parts.dropna(subset=[column]).groupby(column)["n"].sum().reset_index()
    return [str(v) for v in counts.sort_values(["n", column], ascending=[False, True])[column]]


# ------------------------------------------------------------------ the index
def _bigrams(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(len(text) - 1)] if len(text) > 1 else [text]


@dataclass
class AddressIndex:
    """Known places and what each names: building rows (``building`` ≥ 0) and estate rows (``estate`` ≥ 0).

    ``entries`` has columns ``place`` (code into ``places``), ``bno`` (building number, "" for an estate
    row), ``building`` and ``estate`` (positions into the caller's arrays, -1 for none).
    """

    places: pd.Index
    entries: pd.DataFrame
    matrix: sp.csr_matrix
    vocabulary: dict[str, int]
    idf: np.ndarray
    settings: AddressSettings = field(default_factory=AddressSettings)

    def _vectors(self, texts: list[str]) -> sp.csr_matrix:
        rows, cols = [], []
        for i, text in enumerate(texts):
            for gram in _bigrams(text):
                col = self.vocabulary.get(gram)
                if col is not None:
                    rows.append(i)
                    cols.append(col)
        return _tfidf(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), len(texts),
                      len(self.vocabulary), self.idf)


def _tfidf(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, idf: np.ndarray) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows from (row, term) occurrences."""
    import scipy.sparse as sp

    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_rows, n_cols))
    m.sum_duplicates()
    m = m.multiply(idf[np.newaxis, :]).tocsr() if n_cols else m
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def _parse_many(texts: pd.Series, settings: AddressSettings) -> pd.DataFrame:
    """``place`` and ``bno`` of many addresses; each distinct text is parsed once."""
    codes, uniques = pd.factorize(texts.fillna("").astype(str))
    parsed = [parse_address(t, settings=settings) if t else ParsedAddress("", "", "") for t in uniques]
    place = np.array([p.place for p in parsed], dtype=object)
    bno = np.array([p.building for p in parsed], dtype=object)
    if len(codes) == 0:
        return pd.DataFrame({"place": pd.Series(dtype=object), "bno": pd.Series(dtype=object)})
    return pd.DataFrame({"place": place[codes], "bno": bno[codes]}, index=texts.index)


def build_address_index(*, buildings: pd.DataFrame | None = None, estates: pd.DataFrame | None = None,
                        households: pd.DataFrame | None = None,
                        settings: AddressSettings = AddressSettings()) -> AddressIndex:
    """Index the known addresses (see the module docstring).

    Parameters
    ----------
    buildings
        ``id``, optional ``address``, ``name``, ``estate_id``.
    estates
        ``id``, ``name``, optional ``address``.
    households
        ``address`` and ``building_id`` (the assigned building); only that pair is used.
    settings
        The city and the known districts, street offices and communities.
    """
    entries = _address_entries(buildings, estates, households, settings=settings)
    return _index_places(entries, settings=settings)


def _address_entries(buildings: pd.DataFrame | None, estates: pd.DataFrame | None,
                     households: pd.DataFrame | None, *, settings: AddressSettings) -> pd.DataFrame:
    """One row per known (place, building number, building, estate): from the estates' names and addresses,
    the buildings' addresses and names within their estates, and the households' addresses."""
    frames = []
    b_ids = pd.Index(buildings["id"].astype(str)) if buildings is not None else pd.Index([], dtype=object)
    e_ids = pd.Index(estates["id"].astype(str)) if estates is not None else pd.Index([], dtype=object)

    def rows(place: pd.Series, bno: pd.Series, building: np.ndarray, estate: np.ndarray) -> None:
        frames.append(pd.DataFrame({"place": place.to_numpy(dtype=object), "bno": bno.to_numpy(dtype=object),
                                    "building": building, "estate": estate}))

    if estates is not None and len(estates):
        n = len(estates)
        e_pos = np.arange(n)
        name = estates["name"].fillna("").astype(str)
        addr = estates["address"].fillna("").astype(str) if "address" in estates else pd.Series([""] * n)
        for text in (name, addr, addr + name):
            parsed = _parse_many(text.reset_index(drop=True), settings)
            rows(parsed["place"], pd.Series([""] * n), np.full(n, -1), e_pos)
    if buildings is not None and len(buildings):
        n = len(buildings)
        b_pos = np.arange(n)
        est = (e_ids.get_indexer(buildings["estate_id"].astype(str)) if "estate_id" in buildings and len(e_ids)
               else np.full(n, -1))
        if "address" in buildings:
            parsed = _parse_many(buildings["address"].reset_index(drop=True), settings)
            rows(parsed["place"], parsed["bno"], b_pos, est)
        if "name" in buildings and estates is not None and len(estates):
            has = est >= 0
            bname = buildings["name"].fillna("").astype(str).reset_index(drop=True)
            ename = estates["name"].fillna("").astype(str).to_numpy()
            eaddr = (estates["address"].fillna("").astype(str).to_numpy() if "address" in estates
                     else np.full(len(estates), ""))
            safe = np.where(has, est, 0)
            for prefix in (ename[safe], eaddr[safe], np.char.add(eaddr[safe].astype(str), ename[safe].astype(str))):
                text = pd.Series(prefix.astype(object)) + bname
                parsed = _parse_many(text[has], settings)
                rows(parsed["place"], parsed["bno"], b_pos[has], est[has])
    if households is not None and len(households) and buildings is not None and len(b_ids):
        found = _household_places(households, buildings, b_ids, e_ids, settings=settings)
        if found is not None:
            rows(*found)
    if frames:
        entries = pd.concat(frames, ignore_index=True)
    else:
        entries = pd.DataFrame({"place": [], "bno": [], "building": [], "estate": []})
    entries = entries[entries["place"].astype(str).str.len() > 0]
    entries = entries.drop_duplicates(subset=["place", "bno", "building", "estate"]).reset_index(drop=True)
    return entries


def _household_places(households: pd.DataFrame, buildings: pd.DataFrame, b_ids: pd.Index, e_ids: pd.Index, *,
                      settings: AddressSettings):
    """Place, building number, building and estate of the households' addresses that say more than their
    building's own address: unit and room cut and the workspace's administrative prefix (city, district,
    street office, community) dropped first, so that the households of one building share one text, and a
    text equal to the building's address is not parsed again. ``None`` when no household names a building."""
    pos = b_ids.get_indexer(households["building_id"].astype(str))
    has = (pos >= 0) & households["address"].notna().to_numpy()
    if not has.any():
        return None
    cut = pd.Series(households["address"][has].to_numpy(dtype=object), dtype=object).astype(str).str.replace(
        r"\s*[0-9０-９一二三四五六七八九十]+单元.*$|(?<=号)\s*[0-9０-９]{3,5}$", "", regex=True)
    names = [re.escape(n) for n in (settings.province, settings.city, *settings.districts, *settings.street_offices,
                                     *settings.communities) if n]
    if names:
        cut = cut.str.replace(rf"^\s*(?:(?:{'|'.join(sorted(names, key=len, reverse=True))})\s*)+", "", regex=True)
    pair = pd.DataFrame({"text": cut.str.strip().to_numpy(), "building": pos[has]}).drop_duplicates()
    own = (pd.Series(buildings["address"].to_numpy(dtype=object), dtype=object).fillna("").astype(str).str.strip()
           .to_numpy()[pair["building"].to_numpy()] if "address" in buildings else np.full(len(pair), ""))
    pair = pair[pair["text"].to_numpy() != own].reset_index(drop=True)
    parsed = _parse_many(pair["text"], settings)
    est = (e_ids.get_indexer(buildings["estate_id"].astype(str)) if "estate_id" in buildings and len(e_ids)
           else np.full(len(buildings), -1))
    return parsed["place"], parsed["bno"], pair["building"].to_numpy(), est[pair["building"].to_numpy()]


def _index_places(entries: pd.DataFrame, *, settings: AddressSettings) -> AddressIndex:
    """The address index of the entries: places factorised, character bigrams of every place as TF-IDF rows."""
    codes, places = pd.factorize(entries["place"].astype(str))
    entries["place"] = codes
    entries["building"] = entries["building"].astype(np.int64)
    entries["estate"] = entries["estate"].astype(np.int64)
    entries["bno"] = entries["bno"].astype(str)
    # character bigrams of every place → TF-IDF rows
    grams = [_bigrams(p) for p in places]
    lengths = np.fromiter((len(g) for g in grams), dtype=np.int64, count=len(grams))
    flat = [g for gs in grams for g in gs]
    col, vocab_index = pd.factorize(pd.Series(flat, dtype=object)) if flat else (np.array([], dtype=np.int64), [])
    row = np.repeat(np.arange(len(places)), lengths)
    df = np.bincount(np.unique(np.column_stack([row, col]), axis=0)[:, 1], minlength=len(vocab_index)) \
        if len(flat) else np.zeros(0)
    idf = np.log((1 + len(places)) / (1 + df)) + 1.0
    matrix = _tfidf(row, np.asarray(col, dtype=np.int64), len(places), len(vocab_index), idf)
    vocabulary = {str(g): i for i, g in enumerate(vocab_index)}
    return AddressIndex(places=pd.Index(places), entries=entries, matrix=matrix, vocabulary=vocabulary, idf=idf,
                        settings=settings)


def address_index_arrays(index: AddressIndex) -> dict[str, np.ndarray]:
    """The index as plain arrays (numbers and fixed-width text, no Python objects), for
    :func:`address_index_of_arrays` to make it again exactly, e.g. from a file saved with ``numpy.savez``.

    >>> index = build_address_index(estates=pd.DataFrame({"id": ["E1"], "name": ["锦华苑"]}))
    >>> again = address_index_of_arrays(address_index_arrays(index))
    >>> list(again.places), again.settings == index.settings
    (['锦华苑'], True)
    """
    m = index.matrix
    e = index.entries
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(index.settings).items()}
    return {"places": np.asarray(list(index.places), dtype=str).reshape(-1),
            "entry_place": e["place"].to_numpy(dtype=np.int64), "entry_bno": np.asarray(e["bno"], dtype=str),
            "entry_building": e["building"].to_numpy(dtype=np.int64),
            "entry_estate": e["estate"].to_numpy(dtype=np.int64),
            "matrix_data": m.data, "matrix_indices": m.indices, "matrix_indptr": m.indptr,
            "matrix_shape": np.asarray(m.shape, dtype=np.int64),
            "vocabulary": np.asarray(sorted(index.vocabulary, key=index.vocabulary.get), dtype=str).reshape(-1),
            "idf": np.asarray(index.idf, dtype=float),
            "settings": np.asarray(json.dumps(settings, ensure_ascii=False))}


def address_index_of_arrays(arrays: dict[str, np.ndarray]) -> AddressIndex:
    """The :class:`AddressIndex` of :func:`address_index_arrays`' arrays."""
    import scipy.sparse as sp

    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(str(arrays["settings"])).items()}
    vocabulary = arrays["vocabulary"].tolist()
    entries = pd.DataFrame({"place": arrays["entry_place"], "bno": arrays["entry_bno"].astype(object),
                            "building": arrays["entry_building"], "estate": arrays["entry_estate"]})
    matrix = sp.csr_matrix((arrays["matrix_data"], arrays["matrix_indices"], arrays["matrix_indptr"]),
                           shape=tuple(int(v) for v in arrays["matrix_shape"]))
    return AddressIndex(places=pd.Index(arrays["places"].astype(object)), entries=entries, matrix=matrix,
                        vocabulary={g: i for i, g in enumerate(vocabulary)}, idf=arrays["idf"],
                        settings=AddressSettings(**settings))


# ------------------------------------------------------------------ matching
@dataclass
class AddressMatches:
    """The answer for a batch of addresses (arrays aligned with the queries).

    ``kind`` is ``building``, ``estate``, ``ambiguous`` or ``none``; ``building`` / ``estate`` are positions
    (-1 for none); ``score`` the best score; ``candidates`` a DataFrame with ``query``, ``building``,
    ``estate``, ``score`` for the ambiguous queries; ``normalised`` and ``problem`` per query.

    ``problem`` is a code of :data:`geo.problems.PROBLEMS` (``None`` for a clean match): ``address_not_found``,
    ``address_ambiguous``, ``address_no_place``, ``address_other_city`` … or the warning
    ``building_not_found`` beside an estate answer (the address names a building number the estate lacks).
    ``found`` / ``expected`` (the place named, the place the workspace answers for), ``building_asked``
    (the building number asked for) and ``known_buildings`` (the estate's building numbers, for
    ``building_not_found``) are the fields of the problems' messages.
    """

    kind: np.ndarray
    building: np.ndarray
    estate: np.ndarray
    score: np.ndarray
    normalised: np.ndarray
    problem: np.ndarray
    candidates: pd.DataFrame
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    expected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    building_asked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    known_buildings: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))


def match_addresses(index: AddressIndex, texts: Iterable[str | None], *, chunk: int = 2000) -> AddressMatches:
    """Match addresses to buildings or estates (exact normalised place first, then bigram similarity).

    >>> estates = pd.DataFrame({"id": ["E1"], "name": ["锦华苑"], "address": ["红星路二段12号"]})
    >>> buildings = pd.DataFrame({"id": ["B1", "B2"], "estate_id": ["E1", "E1"], "name": ["3栋", "4栋"]})
    >>> index = build_address_index(buildings=buildings, estates=estates, settings=AddressSettings(city="成都市"))
    >>> m = match_addresses(index, ["锦华苑三栋", "红星路二段12号", "火星路1号"])
    >>> m.kind, m.building
    (array(['building', 'estate', 'none'], dtype=object), array([ 0, -1, -1]))
    >>> m = match_addresses(index, ["锦华苑9栋"])  # no 9栋 there: the estate, with a warning
    >>> m.kind[0], m.problem[0], m.known_buildings[0]
    ('estate', 'building_not_found', ['3', '4'])
    """
    settings = index.settings
    texts = pd.Series(list(texts), dtype=object)
    n = len(texts)
    codes, uniques = pd.factorize(texts.fillna("").astype(str))
    parsed_u = [parse_address(t, settings=settings) for t in uniques]
    place_q = np.array([p.place for p in parsed_u], dtype=object)[codes] if n else np.array([], dtype=object)
    bno_q = np.array([p.building for p in parsed_u], dtype=object)[codes] if n else np.array([], dtype=object)
    problem = np.array([p.problem for p in parsed_u], dtype=object)[codes] if n else np.array([], dtype=object)
    normalised = np.array([p.normalised for p in parsed_u], dtype=object)[codes] if n else np.array([], dtype=object)
    usable = np.array([p is None for p in problem], dtype=bool) & (pd.Series(place_q).str.len().to_numpy() > 0) \
        if n else np.zeros(0, dtype=bool)

    # exact places, then bigram similarity for the rest: (query, place, score) pairs
    pairs = _place_pairs(index, place_q, usable, chunk=chunk)
    best = _best_targets(index, pairs, bno_q)
    # decide per query: a single best target above accept_score is a match
    kind = np.full(n, "none", dtype=object)
    building = np.full(n, -1, dtype=np.int64)
    estate = np.full(n, -1, dtype=np.int64)
    score = np.full(n, np.nan)
    if len(best):
        qb = best["query"].to_numpy()
        top_score = best.groupby("query", sort=True)["score"].transform("max").to_numpy()
        near = best["score"].to_numpy() >= top_score - settings.tie_margin
        n_near = np.bincount(qb[near], minlength=n)
        first = np.r_[True, qb[1:] != qb[:-1]]
        head = best[first]
        hq = head["query"].to_numpy()
        score[hq] = head["score"].to_numpy()
        single = (n_near[hq] == 1) & (head["score"].to_numpy() >= settings.accept_score)
        building[hq[single]] = head["building"].to_numpy()[single]
        estate[hq[single]] = head["estate"].to_numpy()[single]
        kind[hq[single]] = np.where(head["building"].to_numpy()[single] >= 0, "building", "estate")
        kind[hq[~single]] = "ambiguous"
        rank = np.arange(len(best)) - np.searchsorted(qb, qb, side="left")
        cand = best[(rank < settings.max_candidates) & (kind[qb] == "ambiguous")]
        candidates = cand[["query", "building", "estate", "score"]].reset_index(drop=True)
    else:
        candidates = pd.DataFrame({"query": [], "building": [], "estate": [], "score": []})
    empty = pd.Series(place_q).str.len().to_numpy() == 0 if n else np.zeros(0, dtype=bool)
    problem = _match_problems(problem, kind=kind, empty=empty, asked=bno_q)
    found = np.array([p.found for p in parsed_u], dtype=object)[codes] if n else np.zeros(0, dtype=object)
    expected = np.array([p.expected for p in parsed_u], dtype=object)[codes] if n else np.zeros(0, dtype=object)
    return AddressMatches(kind=kind, building=building, estate=estate, score=np.round(score, 3),
                          normalised=normalised, problem=problem, candidates=candidates,
                          found=found, expected=expected, building_asked=bno_q,
                          known_buildings=_known_buildings(index, estate, problem == "building_not_found"))


def _match_problems(parsed: np.ndarray, *, kind: np.ndarray, empty: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """The problem code of each query: the parser's (another city …), else what the match found."""
    problem = parsed.copy()
    free = pd.isna(problem)
    asked_b = pd.Series(asked, dtype=object).fillna("").astype(str).str.len().to_numpy() > 0
    problem[free & empty] = "address_no_place"
    problem[free & ~empty & (kind == "none")] = "address_not_found"
    problem[free & (kind == "ambiguous")] = "address_ambiguous"
    problem[free & (kind == "estate") & asked_b] = "building_not_found"
    return problem


def _known_buildings(index: AddressIndex, estate: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The building numbers each flagged query's estate has (sorted as numbers), ``None`` elsewhere."""
    out = np.full(len(estate), None, dtype=object)
    if not where.any():
        return out
    e = index.entries
    rows = e[(e["building"].to_numpy() >= 0) & np.isin(e["estate"].to_numpy(), estate[where])]
    rows = rows[rows["bno"].astype(str).str.len() > 0].drop_duplicates(subset=["estate", "bno"])
    key = pd.to_numeric(rows["bno"].str.extract(r"^([0-9]+)")[0], errors="coerce").fillna(1e9)
    rows = rows.assign(key=key.to_numpy()).sort_values(["estate", "key", "bno"])
    known = rows.groupby("estate")["bno"].agg(list)
    lists = pd.Series(estate[where]).map(known)
    out[where] = lists.where(lists.notna(), None).to_numpy(dtype=object)
    return out


def _place_pairs(index: AddressIndex, place_q: np.ndarray, usable: np.ndarray, *, chunk: int) -> pd.DataFrame:
    """(query, place, score) pairs: the exact place of a query (score 1), else its most similar places by
    bigram TF-IDF (at least ``min_score``, a few per query), ``chunk`` queries at a time."""
    settings = index.settings
    n = len(place_q)
    exact = index.places.get_indexer(place_q) if n and len(index.places) else np.full(n, -1)
    qi = [np.flatnonzero(usable & (exact >= 0))]
    pi = [exact[qi[0]]]
    sc = [np.ones(len(qi[0]))]
    fuzzy = np.flatnonzero(usable & (exact < 0))
    if len(fuzzy) and len(index.places):
        for start in range(0, len(fuzzy), chunk):
            part = fuzzy[start:start + chunk]
            sim = (index._vectors(list(place_q[part])) @ index.matrix.T).tocoo()
            keep = sim.data >= settings.min_score
            r, c, v = sim.row[keep], sim.col[keep], sim.data[keep]
            # best few places per query (sorting the kept pairs, not all places)
            order = np.lexsort((-v, r))
            r, c, v = r[order], c[order], v[order]
            first = np.searchsorted(r, r, side="left")
            top = (np.arange(len(r)) - first) < 4 * settings.max_candidates
            qi.append(part[r[top]])
            pi.append(c[top])
            sc.append(np.minimum(v[top], 0.999))
    pairs = pd.DataFrame({"query": np.concatenate(qi), "place": np.concatenate(pi), "score": np.concatenate(sc)})
    return pairs


def _best_targets(index: AddressIndex, pairs: pd.DataFrame, bno_q: np.ndarray) -> pd.DataFrame:
    """The candidate buildings and estates of each query, best first, one row per (query, target): a building
    asked for gives its rows; if no place knows that number, the estate of the place (score lowered)."""
    n = len(bno_q)
    hits = pairs.merge(index.entries, on="place", how="inner")
    hits["want"] = bno_q[hits["query"].to_numpy()] if len(hits) else []
    is_b = hits["building"].to_numpy() >= 0
    want_b = hits["want"].astype(str).str.len().to_numpy() > 0
    same_b = is_b & want_b & (hits["bno"].to_numpy() == hits["want"].to_numpy())
    # a building asked for: its rows; if no place knows that number, the estate of the place (score lowered)
    has_same = np.zeros(n, dtype=bool)
    has_same[hits["query"].to_numpy()[same_b]] = True
    est_row = ~is_b
    q = hits["query"].to_numpy()
    has_estate = np.zeros(n, dtype=bool)
    has_estate[q[est_row]] = True
    take = np.where(want_b, same_b | (~has_same[q] & est_row),
                    est_row | (~has_estate[q] & is_b))
    chosen = hits[take].copy()
    chosen.loc[(chosen["building"] < 0).to_numpy() & want_b[take], "score"] *= 0.9
    chosen["target"] = np.where(chosen["building"] >= 0, chosen["building"], (1 << 40) + chosen["estate"])
    best = (chosen.sort_values(["query", "score", "target"], ascending=[True, False, True])
            .drop_duplicates(subset=["query", "target"]))
    return best


__all__ = ["AddressIndex", "AddressMatches", "AddressSettings", "ParsedAddress",
           "address_index_arrays", "address_index_of_arrays", "build_address_index", "chinese_numeral_to_int", "clean_text", "infer_settings", "match_addresses",
           "normalise_address", "parse_address"]
