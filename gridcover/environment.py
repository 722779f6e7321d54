"""The environment variables gridcover reads, read once at the door (the command's ``main``, the app factory).

Not the analysis settings (:mod:`geo.settings`, from ``gridcover.toml``): these say where things are and how
the program behaves on this machine. Nothing below the doors reads ``os.environ``: the command line and
:func:`api.app.create_app` read an :class:`Environment` once and hand its values down (the city to the
lookup service, the state folder to the store). ``tests/test_architecture.py`` holds every other module to it.

The variables and what each says are listed once, in README.md ("Environment variables"):
``GRIDCOVER_CITY``, ``GRIDCOVER_WORKSPACE``, ``GRIDCOVER_STATE_DIR``, ``GRIDCOVER_DEBUG``.

Example
-------
>>> Environment.from_os({"GRIDCOVER_CITY": "成都市", "GRIDCOVER_DEBUG": "1"})
Environment(city='成都市', workspace=None, state_dir=None, debug=True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Each variable and the field of :class:`Environment` it fills.
VARIABLES = {"GRIDCOVER_CITY": "city", "GRIDCOVER_WORKSPACE": "workspace", "GRIDCOVER_STATE_DIR": "state_dir",
             "GRIDCOVER_DEBUG": "debug"}


@dataclass(frozen=True)
class Environment:
    """What the environment of this process says (see the module's table); ``None`` where a variable is unset.

    Parameters
    ----------
    city
        ``GRIDCOVER_CITY`` (an empty value counts as unset).
    workspace
        ``GRIDCOVER_WORKSPACE``, as given.
    state_dir
        ``GRIDCOVER_STATE_DIR`` (an empty value counts as unset).
    debug
        Is ``GRIDCOVER_DEBUG`` set to a non-empty value?
    """

    city: str | None = None
    workspace: str | None = None
    state_dir: Path | None = None
    debug: bool = False

    @classmethod
    def from_os(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """Read the variables from ``environ`` (default: this process's ``os.environ``), once.

        Examples
        --------
        >>> Environment.from_os({"GRIDCOVER_STATE_DIR": "/var/lib/gridcover", "GRIDCOVER_CITY": ""})
        Environment(city=None, workspace=None, state_dir=PosixPath('/var/lib/gridcover'), debug=False)
        """
        environ = os.environ if environ is None else environ
        state_dir = environ.get("GRIDCOVER_STATE_DIR")
        return cls(city=environ.get("GRIDCOVER_CITY") or None, workspace=environ.get("GRIDCOVER_WORKSPACE"),
                   state_dir=Path(state_dir) if state_dir else None, debug=bool(environ.get("GRIDCOVER_DEBUG")))
