"""Analysis settings: every tolerance and standard in one place, with its reason.

Defaults are the documented ones; a data folder's ``gridcover.toml`` may
override them in its ``[analysis]`` table (see docs/data-model.md).

Example
-------
>>> Settings().households_per_worker
300
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime


@dataclass(frozen=True)
class Settings:
    """Tolerances and standards of the assignment and the grid diagnostics."""

    #: A household point outside every footprint is attached to the nearest
    #: building within this distance (metres) and flagged ``snapped_to_building``.
    #: 15 m covers geocoding to a building's door or street number, but not to
    #: the building across a street.
    snap_tolerance_m: float = 15.0
    #: Coordinates are snapped to this grid (metres) before coverage checks, so
    #: that floating-point noise from reprojection does not show up as slivers.
    precision_m: float = 0.01
    #: Gaps between grids narrower than this (metres) are digitising slivers:
    #: still reported (nobody owns them), with ``sliver = true``. shapely's
    #: coverage validation uses the same width.
    gap_width_m: float = 1.0
    #: Gap, overlap and outside-community polygons smaller than this (m²) are
    #: not reported (precision noise after reprojection).
    min_issue_area_m2: float = 1.0
    #: A building is split when a second grid holds at least this share of its
    #: footprint; smaller slivers come from boundaries drawn along a wall.
    split_min_share: float = 0.02
    #: The plan's standard: one full-time grid worker per 300 households.
    households_per_worker: int = 300
    #: What a special-group household counts for in the workload (its visits cost time): 1.0 counts every
    #: household once (the plan's rule as written); e.g. 1.5 makes 200 special-group households weigh 300.
    #: Used alike by the scorecard, ``redraw check`` and ``redraw propose`` (geo.workload).
    special_group_weight: float = 1.0
    #: Derive the urban-rural fringe from building heights when the data name none (geo.areas).
    derive_fringe: bool = False
    #: The standard grid code (网格编码, geo.gridcodes): digits of the community's statistical code, digits of
    #: the sequence and the text between them (default 12 + 3 digits, no separator: 510105001001007).
    code_community_digits: int = 12
    code_sequence_digits: int = 3
    code_separator: str = ""
    #: The day visits and cases are judged at (the end of it, local time) when ``--as-of`` is not given; None:
    #: today. A data folder whose logs end on a known day sets it (``as_of = 2026-11-30``) so that its figures
    #: do not change with the calendar.
    as_of: date | None = None

    def with_overrides(self, values: dict) -> "Settings":
        """A copy with the given fields replaced; unknown names raise ``KeyError``."""
        known = {f.name: f for f in fields(self)}
        clean = {}
        for key, value in values.items():
            if key not in known:
                msg = f"unknown analysis setting {key!r} (known: {', '.join(sorted(known))})"
                raise KeyError(msg)
            if key == "as_of":
                clean[key] = _as_date(value)
                continue
            kind = type(getattr(self, key))
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            clean[key] = kind(value)
        return replace(self, **clean)


def _as_date(value) -> date | None:
    """A TOML date (``2026-11-30``) or its text (``"2026-11-30"``) as a date; ``ValueError`` for anything else."""
    if isinstance(value, datetime):
        raise ValueError(f"as_of must be a date YYYY-MM-DD, not a date-time {value.isoformat()!r}")
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"as_of must be a date YYYY-MM-DD, not {value!r}") from None
