"""The rooms of the house and what each may import (docs/architecture.md), read from the code's own imports.

A layer never imports one above it: ``geo`` (the spatial core) imports none of ``gridcover``, ``api``,
``layers``, nor any file format, database or web module, and touches no file (CORE_FORBIDDEN, FILE_CALLS);
``gridcover.io`` (the files) imports none of the rooms above it; ``layers`` imports neither ``api`` nor the command line; ``api`` reaches storage only through the
store contract (``gridcover.store``), never ``sqlite3``, ``psycopg`` or a backend module, and so do the services
(``gridcover.services``), which import neither ``api`` nor the command line; nothing installed
imports ``tools`` (the generators, not installed); no module imports itself round a circle; no module
binds a cache at module level (caches are objects their owner makes; pure memos listed in PURE_MEMOS); and no
function of these rooms is 80 lines or longer (split it into named steps: issue 12).
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
    ("gridcover/io", ("api", "layers", "gridcover.cli", "gridcover.services", "gridcover.store", "gridcover.engines",
                      "tools")),
    ("api", ("sqlite3", "psycopg", "gridcover.store.gpkg", "gridcover.store.postgis", "gridcover.cli", "tools")),
    ("gridcover/services", ("api", "sqlite3", "psycopg", "gridcover.store.gpkg", "gridcover.store.postgis",
                            "gridcover.cli", "tools")),
    ("gridcover", ("tools",)),
])
def test_a_room_imports_nothing_it_may_not(room, forbidden):
    assert _offenders(room, forbidden) == []


#: What the spatial core never imports: file formats, databases, the file system's tools, the web (reading and
#: writing files is the application's: gridcover/io/, the stores, the Dask engine's parts).
CORE_FORBIDDEN = ("pyogrio", "fiona", "sqlite3", "psycopg", "psycopg2", "os", "shutil", "tempfile", "glob",
                  "pyarrow.parquet", "pyarrow.csv", "pyarrow.dataset", "pyarrow.feather", "pyarrow.fs",
                  "fastapi", "starlette", "httpx", "requests", "urllib.request", "dask", "distributed")
#: Calls that touch the file system (``open(``, ``Path.read_text`` …).
FILE_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "mkdir", "rmdir", "iterdir",
              "glob", "rglob", "exists", "is_file", "is_dir", "touch", "to_file", "to_parquet", "to_csv", "read_csv",
              "read_file", "read_parquet", "read_dataframe", "write_dataframe", "connect"}


def _file_calls(path: Path, root: Path = ROOT) -> list[str]:
    """The calls of ``path`` that touch files, but for reading geo's own built-in defaults
    (``resources.files("geo")….read_bytes()``: the rule files shipped with the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name_of(node) in FILE_CALLS:
            if "resources.files(" in ast.unparse(node.func):
                continue
            found.append(f"{path.relative_to(root)}:{node.lineno} calls {ast.unparse(node.func)}(")
    return sorted(found, key=lambda call: int(call.split(":")[1].split()[0]))


def test_the_spatial_core_touches_no_file_database_or_web():
    """geo/ is frames in, frames out: what reads and writes files lives in gridcover/io/ (and the stores)."""
    assert _offenders("geo", CORE_FORBIDDEN) == []
    assert [call for path in sorted((ROOT / "geo").rglob("*.py")) for call in _file_calls(path)] == []


def test_the_file_call_finder_sees_a_read_and_lets_the_built_in_defaults_be(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from importlib import resources\nopen('x')\np.read_bytes()\nframe.to_file('y')\n"
                      "resources.files('geo').joinpath('risk.toml').read_bytes()\n", encoding="utf-8")
    assert _file_calls(sample, tmp_path) == ["sample.py:2 calls open(", "sample.py:3 calls p.read_bytes(",
                                             "sample.py:4 calls frame.to_file("]


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


#: Module-level memos allowed to stay: pure functions of their arguments (the same answer for the same
#: argument in every process, whatever the workspace), so there is nothing to clear and nothing to own.
PURE_MEMOS = {
    "layers/mvt.py:_value_message": "the MVT bytes of one property value (depend on the value and its type alone)",
}
#: Caches keyed by workspace path allowed at module level for a while (none left: keep it empty).
MOVING: set[str] = set()
_MUTABLE_CALLS = {"OrderedDict", "defaultdict", "WeakValueDictionary", "WeakKeyDictionary"}


def _name_of(node: ast.AST) -> str | None:
    """The last name of a called or named thing (``OrderedDict`` for ``collections.OrderedDict()``)."""
    node = node.func if isinstance(node, ast.Call) else node
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _module_caches(path: Path) -> list[str]:
    """The module-level names of ``path`` bound to what a cache is made of: an empty ``{}``, ``dict()`` or
    ``set()``, an ``OrderedDict``/``defaultdict``/weak dictionary, an instance of a class named ``*Cache``, or a
    function memoised with ``functools.lru_cache``/``functools.cache``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    statements, found = list(tree.body), []
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.If, ast.Try)):
            statements += node.body + node.orelse + getattr(node, "finalbody", [])
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = node.value
            called = _name_of(value) if isinstance(value, ast.Call) else None
            if ((isinstance(value, ast.Dict) and not value.keys)
                    or (called in ("dict", "set") and not value.args and not value.keywords)
                    or called in _MUTABLE_CALLS or (called or "").endswith("Cache")):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(_name_of(d) in ("lru_cache", "cache") for d in node.decorator_list):
                found.append(node.name)
    return sorted(found)


def test_no_room_binds_a_module_level_cache():
    """Caches are objects their owner makes (the app on ``app.state``, a service, a command), so two apps
    never share one and no test clears a private global; only the documented pure memos stay."""
    found = {f"{path.relative_to(ROOT).as_posix()}:{name}" for room in ("geo", "layers", "api", "gridcover")
             for path in (ROOT / room).rglob("*.py") for name in _module_caches(path)}
    assert sorted(found - set(PURE_MEMOS) - MOVING) == []


def test_the_cache_finder_sees_each_kind_of_cache(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import functools\nfrom collections import OrderedDict\n"
                      "A: dict[str, int] = {}\nB = dict()\nC = OrderedDict()\nD = TileCache()\nE = {'x': 1}\n"
                      "F = frozenset()\nG = dict(x=1)\n@functools.lru_cache(maxsize=8)\ndef g(x):\n    return x\n"
                      "@functools.cache\ndef h(x):\n    return x\n", encoding="utf-8")
    assert _module_caches(sample) == ["A", "B", "C", "D", "g", "h"]


#: The one module that reads environment variables (the doors hand its ``Environment`` down).
ENVIRONMENT_READER = "gridcover/environment.py"
_ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb"}


def _environment_reads(path: Path) -> list[int]:
    """The lines of ``path`` that read the process environment: ``os.environ``/``os.getenv`` (however ``os`` is
    named) or ``from os import environ``/``getenv``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _ENVIRONMENT_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in _ENVIRONMENT_NAMES for alias in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_environment_module_reads_environment_variables():
    """Environment variables are read once, at the door, by ``gridcover.environment.Environment.from_os``;
    every other module gets their values handed down (docs/architecture.md)."""
    found = [f"{path.relative_to(ROOT).as_posix()}:{line}" for pkg in PACKAGES for path in (ROOT / pkg).rglob("*.py")
             if path.relative_to(ROOT).as_posix() != ENVIRONMENT_READER for line in _environment_reads(path)]
    assert found == []
    assert _environment_reads(ROOT / ENVIRONMENT_READER) != []


def test_the_environment_finder_sees_each_way_of_reading_it(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nimport os as o\nfrom os import getenv\nA = os.environ.get('X')\nB = o.getenv('Y')\n"
                      "C = os.path.join('a', 'b')\nD = {'environ': 1}['environ']\n", encoding="utf-8")
    assert _environment_reads(sample) == [3, 4, 5]


def _public_functions(path: Path) -> list[ast.FunctionDef]:
    """The module-level functions of ``path`` whose names are public."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            found.append(node)
    return found


def test_each_public_function_of_the_core_says_what_it_does():
    """``help()`` on any public function of ``geo/`` answers with its docstring."""
    bare = [f"{path.relative_to(ROOT).as_posix()}:{fn.name}" for path in sorted((ROOT / "geo").glob("*.py"))
            for fn in _public_functions(path) if not ast.get_docstring(fn)]
    assert bare == []


def test_each_module_of_the_core_shows_an_example():
    """Every module of ``geo/`` carries at least one ``>>>`` example (tests/test_doctests.py runs them)."""
    without = [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "geo").glob("*.py"))
               if path.name != "__init__.py" and ">>> " not in path.read_text(encoding="utf-8")]
    assert without == []


#: A function (or method) this long or longer is split into named steps (issue 12), docstring and all.
MAX_FUNCTION_LINES = 80


def _long_functions(path: Path, root: Path = ROOT) -> list[str]:
    """``path:name:lines`` for each function or method of ``path``, nested ones too, of
    :data:`MAX_FUNCTION_LINES` lines or more (from its ``def`` line to its last line, decorators not counted)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    functions = sorted((node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))),
                       key=lambda node: node.lineno)
    return [f"{path.relative_to(root).as_posix()}:{node.name}:{node.end_lineno - node.lineno + 1}"
            for node in functions if node.end_lineno - node.lineno + 1 >= MAX_FUNCTION_LINES]


def test_no_function_is_80_lines_or_longer():
    """Every function and method of geo/, gridcover/, api/ and layers/ reads as named steps under 80 lines."""
    found = [entry for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py"))
             for entry in _long_functions(path)]
    assert found == []


def test_the_length_finder_sees_functions_methods_and_nested_ones(tmp_path):
    sample = tmp_path / "sample.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(78))
    sample.write_text(f"def short():\n{body}\n\nclass A:\n    async def long(self):\n{body.replace('    ', '        ')}"
                      f"        return 1\n\n\ndef outer():\n    def inner():\n{body.replace('    ', '        ')}"
                      "        return 2\n", encoding="utf-8")
    assert _long_functions(sample, tmp_path) == ["sample.py:long:80", "sample.py:outer:81", "sample.py:inner:80"]
