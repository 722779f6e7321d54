"""Who may see what: API keys and roles, read from a keys file (never from code).

KEYS.json maps each key to ``{"role": "lookup" | "case_intake" | "grid_worker" | "street_office" | "admin",
"streets": [street ids], "grids": [grid ids], "name": "…"}`` (``streets`` only for ``street_office``, ``grids``
only for ``grid_worker``; ``name`` is recorded as the author of what the key does, e.g. a case's acceptance).
A key travels in the ``X-API-Key`` header. Without a key a caller is ``public``: public collections, tiles and
the map page only.

Roles, from least to most: ``public`` < ``lookup`` < ``case_intake`` < ``grid_worker`` < ``street_office`` <
``admin``: each may do what the one before it may (a ``case_intake`` key — the 12345 hotline, another
department — looks up and hands cases down with ``POST /cases``; grid workers and street offices may report a
case too). The order says what a key may *do*; what it may *see* is scoped: household-level data needs
``street_office`` (its own streets only) or ``admin``; a ``grid_worker`` key sees the visit lists of its own
grids only (``/grids/{id}/tasks``), nothing else household-level. Cases (``/cases``): an admin sees every case,
a street office those of its streets, a grid worker those of its grids, and every key those it took in itself
(a ``case_intake`` key nothing else, and no household's point).

Example
-------
>>> keys = load_keys("keys.json")
>>> caller = keys.caller("k-hotline")
>>> caller.at_least("lookup")
True
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

from geo.errors import ConfigError

ROLES = ("public", "lookup", "case_intake", "grid_worker", "street_office", "admin")
HEADER = "X-API-Key"


@dataclass(frozen=True)
class Caller:
    """The caller of one request: a role, and for a street office the streets it answers for."""

    role: str = "public"
    streets: frozenset[str] = field(default_factory=frozenset)
    key_name: str | None = None
    grids: frozenset[str] = field(default_factory=frozenset)

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def may_see_street(self, street_id: str | None) -> bool:
        if self.role == "admin":
            return True
        return self.role == "street_office" and street_id is not None and str(street_id) in self.streets

    def may_see_grid(self, grid_id: str, street_id: str | None) -> bool:
        """May this caller see the households of a grid (its visit list)? A grid worker its own grids, a street
        office the grids of its streets, an admin every grid."""
        if self.role == "grid_worker":
            return str(grid_id) in self.grids
        return self.may_see_street(street_id)

    @property
    def sees_households(self) -> bool:
        """May this caller see household-level data at all (of some street)?"""
        return self.role == "admin" or (self.role == "street_office" and bool(self.streets))


PUBLIC = Caller()


@dataclass(frozen=True)
class Keys:
    """The configured keys."""

    entries: dict[str, Caller] = field(default_factory=dict)

    def caller(self, key: str | None) -> Caller | None:
        """The caller for a key; ``PUBLIC`` without a key; ``None`` for an unknown key (answer 401)."""
        if not key:
            return PUBLIC
        for known, caller in self.entries.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return caller
        return None


def load_keys(path: str | Path | None) -> Keys:
    """Read a keys file; ``None`` gives no keys (everyone is public)."""
    if path is None:
        return Keys()
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"keys file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: must map each key to {{\"role\": ..., \"streets\": [...]}}")
    entries = {}
    for key, spec in doc.items():
        if not isinstance(spec, dict) or spec.get("role") not in ROLES[1:]:
            raise ConfigError(f"{path}: key {key[:4]}…: role must be one of {', '.join(ROLES[1:])}")
        streets = spec.get("streets", [])
        if spec["role"] == "street_office" and (not isinstance(streets, list) or not streets):
            raise ConfigError(f"{path}: key {key[:4]}…: a street_office key needs a non-empty 'streets' list")
        grids = spec.get("grids", [])
        if spec["role"] == "grid_worker" and (not isinstance(grids, list) or not grids):
            raise ConfigError(f"{path}: key {key[:4]}…: a grid_worker key needs a non-empty 'grids' list")
        entries[str(key)] = Caller(role=spec["role"], streets=frozenset(map(str, streets)),
                                   key_name=str(spec.get("name", key[:4] + "…")),
                                   grids=frozenset(map(str, grids)) if spec["role"] == "grid_worker" else frozenset())
    return Keys(entries)
