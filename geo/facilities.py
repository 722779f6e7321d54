"""The facilities layer (设施): raw OpenStreetMap tags mapped to life-circle categories, and its data quality.

Two questions about the facilities a data folder brings, answered from ``categories.toml``:

* which life-circle category a raw OSM POI is (``osm`` tag sets per ``[[category]]``, fair matches only:
  :func:`osm_categories`);
* whether a category is so far below the density the national standard implies that the *data* is
  probably incomplete, rather than the *service* missing (``[data_quality]``: GB 50180-2018's homes per
  life circle, one facility of each tier's categories per circle; :func:`data_quality`). ``summary.json``
  carries the answer as ``data_quality``: a list of ``{layer, category, message, message_en, …}``.

Example
-------
A street of 12,000 households with no kindergarten in its facilities: GB 50180 wants one per 5-minute circle
of at most 4,000 homes, so at least 3; none is far below that (the data is probably incomplete):

>>> import pandas as pd
>>> from geo.reach import load_config
>>> counts = pd.DataFrame({"street_id": ["S1"], "category": ["shop"], "facilities": [9]})
>>> streets = pd.DataFrame({"id": ["S1"], "name": ["太升路街道"], "households": [12000]})
>>> issues = data_quality(counts, streets, config=load_config(), rules=load_facility_rules())
>>> [(i["category"], i["facilities"], i["expected_min"]) for i in issues][:2]
[('community_service', 0, 3), ('elderly_daycare', 0, 3)]
>>> issues[3]["message"].split("。")[0]
'太升路街道：没有幼儿园；按 GB 50180，每个5分钟生活圈（1,500–4,000户）配一处，12,000 户应不少于 3 处'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import ConfigError
from geo.reach import CONFIG_NAME, ReachConfig

#: Keys of the ``[data_quality]`` table and their defaults: homes per life circle by tier (GB 50180-2018,
#: standard) and the share of the standard's least count below which a category is flagged (ours).
DEFAULT_CIRCLE_HOMES = {5: (1500, 4000), 10: (5000, 8000), 15: (17000, 32000)}
DEFAULT_MIN_SHARE = 0.5


@dataclass(frozen=True)
class FacilityRules:
    """OSM tag sets per category (``osm``) and the data-quality thresholds of ``categories.toml``.

    ``osm`` maps a category id to its tag sets (a POI matches a set when it carries every tag of it);
    ``circle_homes`` maps a tier (minutes) to the homes (low, high) of one life circle; ``min_share`` is the
    share of the least count the standard implies below which a category is flagged.
    """

    osm: dict
    circle_homes: dict
    min_share: float
    source: str = "built-in"


def load_facility_rules(text: bytes | None = None, *, source: str = "built-in") -> FacilityRules:
    """The OSM tag sets and the ``[data_quality]`` thresholds of a ``categories.toml``, checked.

    Parameters
    ----------
    text
        The data folder's ``categories.toml`` as read; ``None``: gridcover's own (``geo/categories.toml``).
    source
        How messages name the file.

    Examples
    --------
    >>> rules = load_facility_rules()
    >>> rules.osm["kindergarten"][0], rules.circle_homes[5], rules.min_share
    ({'amenity': 'kindergarten'}, (1500, 4000), 0.5)
    >>> load_facility_rules(b"[data_quality]\\nmin_share = 2\\n", source="categories.toml")
    Traceback (most recent call last):
    geo.errors.ConfigError: categories.toml: [data_quality] min_share must be between 0 and 1, not 2
    """
    if text is None:
        text = resources.files("geo").joinpath(CONFIG_NAME).read_bytes()
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not a valid TOML file: {exc}") from None
    osm = {}
    for row in doc.get("category", []):
        sets = row.get("osm", [])
        if not isinstance(sets, list) or not all(isinstance(s, dict) and s for s in sets):
            raise ConfigError(f"{source}: category {row.get('id')!r}: osm must be a list of tag tables, "
                              "e.g. osm = [{ amenity = \"kindergarten\" }]")
        osm[str(row.get("id"))] = tuple({str(k): str(v) for k, v in s.items()} for s in sets)
    quality = doc.get("data_quality", {})
    try:
        homes = {int(k): (int(v[0]), int(v[1])) for k, v in quality.get("circle_homes", {}).items()} \
            or dict(DEFAULT_CIRCLE_HOMES)
        share = float(quality.get("min_share", DEFAULT_MIN_SHARE))
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"{source}: [data_quality]: bad circle_homes or min_share: {exc}") from None
    if not 0 < share <= 1:
        raise ConfigError(f"{source}: [data_quality] min_share must be between 0 and 1, not {share:g}")
    if any(not 0 < lo <= hi for lo, hi in homes.values()):
        raise ConfigError(f"{source}: [data_quality] circle_homes: each tier needs [low, high] homes, 0 < low <= high")
    return FacilityRules(osm=osm, circle_homes=homes, min_share=share, source=source)


def osm_categories(tags: pd.DataFrame, rules: FacilityRules) -> np.ndarray:
    """The life-circle category of each OSM POI (a row of tag columns: ``amenity``, ``shop`` …), or None.

    Categories are tried in the order ``categories.toml`` declares them; the first tag set a POI carries
    wins. One comparison per tag set over all rows (no loop per POI).

    Examples
    --------
    >>> tags = pd.DataFrame({"amenity": ["kindergarten", "pharmacy", None], "shop": [None, None, "convenience"]})
    >>> osm_categories(tags, load_facility_rules()).tolist()
    ['kindergarten', None, 'shop']
    """
    out = np.full(len(tags), None, dtype=object)
    for category, sets in rules.osm.items():
        for tag_set in sets:
            match = np.ones(len(tags), dtype=bool)
            for key, value in tag_set.items():
                match &= tags[key].eq(value).to_numpy(bool) if key in tags.columns else False
            out[match & pd.isna(out)] = category
    return out


def facility_counts(facilities: gpd.GeoDataFrame | None, streets: gpd.GeoDataFrame, *,
                    config: ReachConfig) -> pd.DataFrame:
    """Facilities of each known category inside each street (``street_id``, ``category``, ``facilities``).

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> from geo.reach import load_config
    >>> streets = gpd.GeoDataFrame({"id": ["S1"]}, geometry=[box(0, 0, 100, 100)], crs=32648)
    >>> shops = gpd.GeoDataFrame({"category": ["shop", "shop", "spa"]},
    ...                          geometry=[Point(5, 5), Point(500, 5), Point(6, 6)], crs=32648)
    >>> facility_counts(shops, streets, config=load_config()).values.tolist()
    [['S1', 'shop', 1]]
    """
    columns = ["street_id", "category", "facilities"]
    if facilities is None or not len(facilities) or not len(streets):
        return pd.DataFrame({c: [] for c in columns}).astype({"facilities": int})
    known = facilities[facilities["category"].isin(config.ids).to_numpy()]
    points = known.geometry.to_crs(streets.crs).to_numpy()
    fi, si = shapely.STRtree(streets.geometry.to_numpy()).query(points, predicate="intersects")
    pairs = pd.DataFrame({"street_id": streets["id"].astype(str).to_numpy()[si],
                          "category": known["category"].astype(str).to_numpy()[fi]})
    return pairs.groupby(["street_id", "category"]).size().rename("facilities").reset_index()[columns]


def data_quality(counts: pd.DataFrame, streets: pd.DataFrame, *, config: ReachConfig, rules: FacilityRules,
                 missing_layers: tuple[str, ...] = ()) -> list[dict]:
    """What in the input looks incomplete (数据完整性提示), for ``summary.json``'s ``data_quality``.

    Parameters
    ----------
    counts
        Facilities per street and category (:func:`facility_counts`).
    streets
        One row per street: ``id``, ``name``, ``households`` (those the analysis placed in it).
    missing_layers
        Optional layers the data folder lacks; ``facilities`` and ``roads`` are reported.

    Returns
    -------
    One dict per finding: ``layer``, ``category`` (None for a whole layer), ``kind`` (``layer_missing`` or
    ``sparse_facilities``), ``message`` (Chinese), ``message_en``; a sparse category adds ``street_id``,
    ``street_name``, ``households``, ``tier``, ``facilities`` and ``expected_min``: the standard's least
    count, households ÷ the most homes of one circle, rounded down. A category is sparse when that least
    count is at least 1 and the street has fewer than ``min_share`` of it.
    """
    out = _missing_layer_findings(missing_layers, config=config)
    have = counts.set_index(["street_id", "category"])["facilities"] if len(counts) else pd.Series(dtype=int)
    for street in streets.itertuples(index=False):
        for cat in config.categories:
            if cat.tier not in rules.circle_homes or "facilities" in missing_layers:
                continue
            low, high = rules.circle_homes[cat.tier]
            expected = int(street.households // high)
            n = int(have.get((str(street.id), cat.id), 0))
            if expected < 1 or n >= rules.min_share * expected:
                continue
            name = street.name if isinstance(street.name, str) and street.name else str(street.id)
            out.append(_sparse_finding(cat, name=name, street_id=str(street.id), households=int(street.households),
                                       facilities=n, expected=expected, homes=(low, high)))
    return out


def _sparse_finding(cat, *, name: str, street_id: str, households: int, facilities: int, expected: int,
                    homes: tuple[int, int]) -> dict:
    """One sparse category of one street, said in Chinese and English."""
    low, high = homes
    have_zh = f"{cat.name_zh}仅 {facilities} 处" if facilities else f"没有{cat.name_zh}"
    return {
        "layer": "facilities", "category": cat.id, "kind": "sparse_facilities",
        "message": f"{name}：{have_zh}；按 GB 50180，每个{cat.tier}分钟生活圈（{low:,}–{high:,}户）配一处，"
                   f"{households:,} 户应不少于 {expected} 处。设施数据可能不完整：该类覆盖率低未必是服务缺失。",
        "message_en": f"{name}: {facilities or 'no'} {cat.name_en} facilities; GB 50180 has one per {cat.tier}-minute "
                      f"life circle ({low:,}-{high:,} homes), so {households:,} households need at least {expected}. "
                      "The facility data is probably incomplete: a low reach share here need not mean the service "
                      "is missing.",
        "street_id": street_id, "street_name": name, "households": households, "tier": cat.tier,
        "facilities": facilities, "expected_min": expected,
    }


def _missing_layer_findings(missing_layers: tuple[str, ...], *, config: ReachConfig) -> list[dict]:
    """A finding for a missing facilities or roads layer (the reach is then empty, or an estimate)."""
    out = []
    if "facilities" in missing_layers:
        out.append({"layer": "facilities", "category": None, "kind": "layer_missing",
                    "message": "未提供设施图层：各类设施均按缺失计，生活圈覆盖率为 0 说明的是数据缺失，不是服务缺失。",
                    "message_en": "No facilities layer: every category counts as missing, so a reach share of 0 "
                                  "says the data is missing, not the service."})
    if "roads" in missing_layers:
        out.append({"layer": "roads", "category": None, "kind": "layer_missing",
                    "message": f"未提供道路图层：步行时间按直线距离×绕行系数 {config.detour_factor:g} 估算。",
                    "message_en": f"No roads layer: walking times are estimated as the straight-line distance "
                                  f"x a detour factor of {config.detour_factor:g}."})
    return out
