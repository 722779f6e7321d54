"""Optional modules: the routers of ``api.app`` that are included when their module exists.

Example
-------
>>> [m.__name__ for m in present(("api.ogc", "api.nothing_here"))]
['api.ogc']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType


def present(names: tuple[str, ...]) -> Iterator[ModuleType]:
    """Import each module that exists; a module that is missing is skipped, an error inside one is raised."""
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
