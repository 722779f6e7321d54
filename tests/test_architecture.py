"""The rooms of the house and what each may import (docs/architecture.md), read from the code's own imports.

A layer never imports one above it: ``geo`` (the spatial core) imports none of ``gridcover``, ``api``,
``layers``; ``layers`` imports neither ``api`` nor the command line; ``api`` reaches storage only through the
store contract (``gridcover.store``), never ``sqlite3``, ``psycopg`` or a backend module, and so do the services
(``gridcover.services``), which import neither ``api`` nor the command line; nothing installed
imports ``tools`` (the generators, not installed); and no module imports itself round a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "api", "layers", "gridcover")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function, as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


GRAPH = _graph()


def _offenders(room: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in (ROOT / room).rglob("*.py"):
        for module in sorted(_imports(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {module}")
    return out


@pytest.mark.parametrize("room, forbidden", [
    ("geo", ("gridcover", "api", "layers", "tools")),
    ("layers", ("api", "gridcover.cli", "tools")),
    ("api", ("sqlite3", "psycopg", "gridcover.store.gpkg", "gridcover.store.postgis", "gridcover.cli", "tools")),
    ("gridcover/services", ("api", "sqlite3", "psycopg", "gridcover.store.gpkg", "gridcover.store.postgis",
                            "gridcover.cli", "tools")),
    ("gridcover", ("tools",)),
])
def test_a_room_imports_nothing_it_may_not(room, forbidden):
    assert _offenders(room, forbidden) == []


def test_no_module_imports_itself_round_a_circle():
    circles, seen = [], set()

    def visit(node, path):
        for nxt in sorted(GRAPH[node]):
            if nxt in path:
                circle = path[path.index(nxt):] + [nxt]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    circles.append(" -> ".join(circle))
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(GRAPH):
        if start not in done:
            visit(start, [start])
    assert circles == []


def test_no_command_line_code_lives_in_the_web_room():
    assert sorted(p.name for p in (ROOT / "api").glob("*cli*.py")) == []
