"""The examples in the docstrings of the core, the layers and the services run, and show what they say.

Every module of ``geo``, ``layers`` and ``gridcover.services`` is run through :mod:`doctest` (the README's
``python -m pytest`` runs this file). An example that needs a workspace on disk says so and is marked
``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("geo", "layers", "gridcover/services", "gridcover/io")
NOT_YET: set[str] = set()
MODULES = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts) for room in ROOMS
                 for path in (ROOT / room).glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("name", [m for m in MODULES if m not in NOT_YET])
def test_the_examples_of_a_module_run_and_show_what_they_say(name):
    module = importlib.import_module(name)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
