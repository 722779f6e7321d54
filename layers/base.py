"""What a map layer declaration holds: source, fields by role, style, legend, zoom range, heat maps.

One :class:`MapLayer` per layer (图层) lives in :mod:`layers.catalog`; the OGC collections, the vector
tiles, the heat tiles, the web map's layer switcher and the folium report all read it, so adding a
layer is adding one declaration.

Example
-------
>>> estates = MapLayer(id="estates", source="estates", title_zh="小区", title_en="Estates", geometry="polygon",
...                    public_fields=("id", "name"), style=Style(kind="fill", classes=(Class("#888", "小区", "estate"),)))
>>> estates.style.color_of("anything"), estates.minzoom
('#888', 10)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

#: Special-group counts (特殊群体人数): suppressed below k for every caller not entitled to see the street.
SPECIAL_GROUP_COUNTS = ("elderly_alone", "child_in_difficulty", "mental_disorder", "migrant", "rental")
#: The default k of the suppression: counts 1..k-1 are withheld (a 0 singles out nobody and is kept).
DEFAULT_K = 5


@dataclass(frozen=True)
class Class:
    """One legend entry (图例项): the colour of features whose ``Style.field`` equals (or, for steps, is at
    least) ``value``; ``value=None`` is the default entry for everything else."""

    color: str
    zh: str
    en: str
    value: object = None


@dataclass(frozen=True)
class Style:
    """How a layer is drawn: ``fill`` (polygons, with an outline), ``line`` or ``circle`` (points).

    ``field`` classifies features: by exact value (``steps=False``) or by numeric lower bounds in increasing
    order (``steps=True``); without ``field`` the first class colours everything. ``pattern="hatch"`` draws
    a fill as diagonal stripes of the class colour over a faint tint (problems and load read apart from the
    risk colours' solid fills); ``None`` is a plain fill.
    """

    kind: str
    classes: tuple[Class, ...]
    field: str | None = None
    steps: bool = False
    opacity: float = 0.5
    outline: str | None = None
    width: float = 1.0
    radius: float = 4.0
    pattern: str | None = None

    def color_of(self, value: object) -> str:
        """The colour a feature with ``value`` in ``field`` gets (the report's maps use this)."""
        default = next((c.color for c in self.classes if c.value is None), self.classes[0].color)
        if self.field is None or value is None or (isinstance(value, float) and pd.isna(value)):
            return default
        if self.steps:
            chosen = default
            for c in self.classes:
                if c.value is not None and float(value) >= float(c.value):
                    chosen = c.color
            return chosen
        for c in self.classes:
            if c.value is not None and str(c.value) == str(value):
                return c.color
        return default


@dataclass(frozen=True)
class Heat:
    """A raster heat map (热力图) of one polygon layer's numeric value, drawn as 256 px PNG tiles.

    ``stops`` map values (in increasing order) to ``#rrggbbaa`` colours, linearly interpolated;
    features with no value are left transparent.
    """

    id: str
    layer: str
    value: str
    title_zh: str
    title_en: str
    stops: tuple[tuple[float, str], ...]
    group: str = "coverage"


@dataclass(frozen=True)
class LiveSource:
    """A layer read from one of the store's operations instead of a stored table (the cases of the case API):
    ``read(workspace)`` gives the frame (WGS-84), ``stamp(workspace)`` a short text that changes whenever the
    frame would (caches, tiles and ETags are keyed by it with the workspace's version)."""

    read: Callable
    stamp: Callable


@dataclass(frozen=True)
class MapLayer:
    """The declaration of one map layer.

    Parameters
    ----------
    id
        Collection id, tile layer name and web map layer id.
    source
        Table of the workspace it is read from (served only when the workspace holds it).
    geometry
        ``polygon``, ``point`` or ``line``.
    public_fields
        Properties anyone may see.
    counts
        Special-group counts: shown to callers without the street only when 0 or at least k.
    shares
        ``{share: count}``: a share over special-group households (``visits_kept_share``) withheld wherever its
        count (one of ``counts``) is.
    role_fields
        Properties needing at least a role: ``{"lookup": ("info_officer_phone",)}``.
    role
        Role needed to see the collection at all (``street_office`` for households: own streets only).
    tile_fields
        Properties put into vector tiles (public fields or counts; never personal data).
    queryables
        Properties usable as ``?name=value`` filters on the items.
    derived
        Extra columns computed from the table (e.g. ``old_estate`` from ``year_built``).
    coverage
        Polygons that tile a plane (grids): simplified together so neighbours never show slivers.
    live
        Read from the store's operations (:class:`LiveSource`), not from a table the workspace holds.
    public_counts
        What callers who may not see the features (and every tile) get instead: another declaration, of counts
        per area, suppressed below k (the case points of a street office become case counts per grid).
    """

    id: str
    source: str
    title_zh: str
    title_en: str
    geometry: str
    public_fields: tuple[str, ...]
    style: Style
    description: str = ""
    id_field: str = "id"
    counts: tuple[str, ...] = ()
    shares: dict[str, str] = field(default_factory=dict)
    role_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    role: str = "public"
    tile_fields: tuple[str, ...] = ()
    queryables: tuple[str, ...] = ()
    minzoom: int = 10
    maxzoom: int = 18
    tiles: bool = True
    visible: bool = True
    coverage: bool = False
    derived: Callable[[pd.DataFrame], dict[str, pd.Series]] | None = None
    popup: tuple[str, ...] = ()
    field_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    live: LiveSource | None = None
    public_counts: MapLayer | None = None

    def fields_for(self, role_rank: Callable[[str], bool]) -> tuple[str, ...]:
        """Every property a caller sees, given ``role_rank(role) -> bool`` (is the caller at least ``role``)."""
        extra = tuple(f for role, names in self.role_fields.items() if role_rank(role) for f in names)
        return tuple(dict.fromkeys((self.id_field, *self.public_fields, *self.counts, *extra)))
