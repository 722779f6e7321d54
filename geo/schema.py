"""The data model: every input layer, its geometry and its fields, declared once.

The loader validates against these declarations, ``docs/data-model.md``
describes them, and the tests read them; adding a field is adding it here.

Example
-------
>>> LAYERS["grids"].field("worker_phone").required
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Geometry families a layer may hold.
POLYGON = "polygon"
POINT = "point"
LINE = "line"
#: A layer without geometry (a table: CSV without lon/lat, GeoJSON features without geometry, a GeoPackage
#: attribute table).
TABLE = "table"

#: Field types understood by the loader.
STR = "str"
INT = "int"
FLOAT = "float"
BOOL = "bool"
DATE = "date"
#: A date (``YYYY-MM-DD``) or a date-time (``YYYY-MM-DD HH:MM``, ISO 8601 with or without an offset).
DATETIME = "datetime"


@dataclass(frozen=True)
class Field:
    """One attribute of a layer."""

    name: str
    type: str
    required: bool = True
    nullable: bool = False
    description: str = ""
    references: str | None = None  # "layer.field" this field points to
    default: object = None


@dataclass(frozen=True)
class InputLayer:
    """One input layer (a file named ``<name>.geojson`` etc. in the data folder)."""

    name: str
    geometry: str
    required: bool
    title_zh: str
    description: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    geometry_optional: bool = False  # households may come with a building_id instead of a point
    #: the layer may come without any geometry (a CSV without lon/lat, a GeoPackage attribute table): cases
    table_allowed: bool = False

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


#: Special-group flags of a household (特殊群体). Counted, never shown as points in public outputs.
SPECIAL_GROUPS = ("elderly_alone", "child_in_difficulty", "mental_disorder", "migrant", "rental")

_ID = Field("id", STR, description="unique identifier within the layer")

LAYERS: dict[str, InputLayer] = {
    layer.name: layer
    for layer in (
        InputLayer(
            "streets", POLYGON, True, "街道",
            "Street offices (sub-districts): the lowest level of city government.",
            (_ID, Field("name", STR, description="name, e.g. 督院街街道")),
        ),
        InputLayer(
            "communities", POLYGON, True, "社区",
            "Communities (residents' committees) or villages, each in one street.",
            (
                _ID,
                Field("name", STR),
                Field("street_id", STR, references="streets.id"),
                Field("ur_code", STR, required=False, nullable=True,
                      description="3-digit urban-rural code 城乡分类代码 (111 core, 112 城乡结合区, 122 镇乡结合区, 220 village)"),
                Field("code", STR, required=False, nullable=True, description="12-digit statistical code"),
            ),
        ),
        InputLayer(
            "grids", POLYGON, True, "网格",
            "Grids: the unit of responsibility; every household belongs to exactly one.",
            (
                _ID,
                Field("name", STR),
                Field("community_id", STR, references="communities.id"),
                Field("worker_name", STR, nullable=True, description="full-time grid worker 网格员 (empty: no worker)"),
                Field("worker_phone", STR, nullable=True, description="the worker's work phone"),
                Field("full_time_workers", INT, required=False, nullable=True,
                      description="number of full-time workers; default 1 if worker_name is set, else 0"),
                Field("part_time_workers", INT, required=False, nullable=True,
                      description="number of part-time grid workers 兼职网格员 (default 0; not the officers below)"),
                Field("info_officer_name", STR, required=False, nullable=True, description="part-time information officer 信息员"),
                Field("info_officer_phone", STR, required=False, nullable=True),
                Field("mediator_name", STR, required=False, nullable=True, description="part-time mediator 调解员"),
                Field("mediator_phone", STR, required=False, nullable=True),
                Field("code", STR, required=False, nullable=True,
                      description="standard grid code 网格编码: the community's 12-digit code + a 3-digit sequence"),
            ),
        ),
        InputLayer(
            "estates", POLYGON, False, "小区",
            "Estates (gated compounds); walking routes leave them through their gates.",
            (
                _ID,
                Field("name", STR),
                Field("year_built", INT, required=False, nullable=True, description="year of completion; ≤ 2000 makes it an old estate 老旧小区"),
                Field("address", STR, required=False, nullable=True),
            ),
        ),
        InputLayer(
            "gates", POINT, False, "出入口",
            "Gates of estates.",
            (
                _ID,
                Field("estate_id", STR, references="estates.id"),
                Field("name", STR, required=False, nullable=True),
            ),
        ),
        InputLayer(
            "buildings", POLYGON, False, "楼栋",
            "Building footprints.",
            (
                _ID,
                Field("estate_id", STR, required=False, nullable=True, references="estates.id"),
                Field("name", STR, required=False, nullable=True, description="name or number, e.g. 3栋"),
                Field("address", STR, required=False, nullable=True),
                Field("year_built", INT, required=False, nullable=True),
                Field("floors", INT, nullable=True, description="storeys above ground (empty: unknown)"),
                Field("residential", BOOL, required=False, nullable=True, default=True,
                      description="false for offices, shops, schools (default true)"),
            ),
        ),
        InputLayer(
            "households", POINT, True, "户",
            "Households: the unit counted. A point, a building_id, or both.",
            (
                _ID,
                Field("address", STR, nullable=True),
                Field("building_id", STR, required=False, nullable=True, references="buildings.id",
                      description="the building on record; when given it wins over the point"),
                Field("persons", INT, description="members of the household (≥ 0)"),
                *(Field(g, BOOL, nullable=True, default=False, description=f"special group: {g}") for g in SPECIAL_GROUPS),
                Field("last_visit", DATE, required=False, nullable=True, description="date of the grid worker's last visit (YYYY-MM-DD)"),
            ),
            geometry_optional=True,
        ),
        InputLayer(
            "facilities", POINT, False, "设施",
            "Service facilities of the life circle (used by the reach analysis).",
            (
                _ID,
                Field("name", STR, required=False, nullable=True),
                Field("category", STR, description="category id, e.g. kindergarten, health_centre"),
            ),
        ),
        InputLayer(
            "roads", LINE, False, "道路",
            "Roads and paths (used by the reach analysis).",
            (
                Field("id", STR, required=False, nullable=True),
                Field("name", STR, required=False, nullable=True),
                Field("highway", STR, required=False, nullable=True, description="OSM highway class"),
            ),
        ),
        InputLayer(
            "visits", TABLE, False, "走访记录",
            "Visit records: one row per visit to a household (no geometry); judged against the calendar rules "
            "of [visit_rules] in risk.toml (geo/visits.py, docs/tasks.md).",
            (
                Field("household_id", STR, references="households.id", description="the household visited"),
                Field("visited_at", DATETIME,
                      description="local date or date-time of the visit (YYYY-MM-DD, YYYY-MM-DD HH:MM; with an "
                                  "offset it is converted to [visit_rules] time_zone, Asia/Shanghai)"),
                Field("worker", STR, description="who visited (the grid worker's name)"),
                Field("kind", STR, required=False, nullable=True, default="home",
                      description="home | phone | other (入户/走访/上门, 电话, 其他 accepted; empty: home)"),
                Field("outcome", STR, required=False, nullable=True, description="e.g. seen, not_home, answered"),
                Field("note", STR, required=False, nullable=True),
            ),
        ),
        InputLayer(
            "cases", POINT, False, "事件",
            "Cases (事件/诉求) passed to the grid by the 12345 hotline, the police, civil affairs or health: one row "
            "per case, located by its point, else its household_id, else its address; judged against [cases] of "
            "risk.toml (geo/cases.py, docs/cases.md). Points, or a table (CSV without lon/lat).",
            (
                _ID,
                Field("reported_at", DATETIME,
                      description="when the case was reported (YYYY-MM-DD HH:MM local time of [cases] time_zone, or "
                                  "ISO 8601 with an offset)"),
                Field("urgency", STR, description="general | urgent | cross_department (一般/普通, 紧急, 跨部门 accepted)"),
                Field("category", STR, required=False, nullable=True, description="e.g. 噪音扰民, 独居老人突发疾病"),
                Field("accepted_at", DATETIME, required=False, nullable=True,
                      description="when the grid worker took it on (empty: not yet)"),
                Field("closed_at", DATETIME, required=False, nullable=True, description="when it was settled (empty: open)"),
                Field("household_id", STR, required=False, nullable=True, references="households.id",
                      description="the household concerned; places a case without a point at that household"),
                Field("source", STR, required=False, nullable=True, description="who passed it on, e.g. 12345, 110, 民政"),
                Field("address", STR, required=False, nullable=True,
                      description="where; places a case without a point or household (the lookup's address matcher)"),
            ),
            geometry_optional=True, table_allowed=True,
        ),
        InputLayer(
            "areas", POLYGON, False, "重点区域",
            "Areas given by the street office: old estates, urban-rural fringes, others.",
            (
                _ID,
                Field("kind", STR, description="old_estate | urban_rural_fringe | other"),
                Field("name", STR, required=False, nullable=True),
            ),
        ),
    )
}

#: Order in which layers are read and validated (references point backwards).
LAYER_ORDER = ("streets", "communities", "grids", "estates", "gates", "buildings", "households", "facilities", "roads", "areas",
               "visits", "cases")

#: Layers whose features are never left out (``--skip-invalid``): a wrong boundary makes every answer wrong.
BOUNDARY_LAYERS = ("streets", "communities", "grids")

#: Allowed values of areas.kind.
AREA_KINDS = ("old_estate", "urban_rural_fringe", "other")
