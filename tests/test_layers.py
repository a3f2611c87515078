"""The package's shape: layers that import only downwards, no import cycle, no private name
taken from another module, Dask in one module, no module too long to read.

Every import counts, those inside functions too; only those under ``if TYPE_CHECKING:`` do
not (they never run). The checks are tried on a small package made to break them, so a check
that stopped seeing anything would fail too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import write

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "parallel_file_processor"

#: Each module's layer (README, "Contributing"): a module imports from its own layer or those
#: below, never above; within a layer, only the cycle check applies.
LAYERS: dict[str, int] = {
    # 1: what everything shares
    **dict.fromkeys(["errors", "types", "options", "progress", "log", "output"], 1),
    # 2: where work runs
    **dict.fromkeys(["task", "prefetch", "checkpoint", "ratelimit", "runners", "runners.base",
                     "runners.inline",
                     "runners.threads", "runners.processes", "runners.aio", "runners.executor",
                     "runners.dask", "distributed"], 2),
    # 3: the driver
    "job": 3,
    # 4: the capabilities (and the modules they are made of)
    **dict.fromkeys(["scan", "hash", "manifest", "extract", "aggregate", "tables", "sheets",
                     "schema", "results"], 4),
    # 5: the seed's facade and job files
    **dict.fromkeys(["engine", "jobs", "config"], 5),
    # 6: the command line
    **dict.fromkeys(["cli", "__main__", "commands", "commands._output", "commands.aggregate",
                     "commands.hash", "commands.process", "commands.run", "commands.scan",
                     "commands.unzip", "commands.status"], 6),
}
MAX_LINES = 700
MAX_DASK_LINES = 400


@dataclass
class Imports:
    """What a package's modules import from each other (``""`` is the package itself)."""

    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    #: (module, where it came from, the private name it takes)
    private: list[tuple[str, str, str]] = field(default_factory=list)
    #: module -> the outside top-level packages it imports
    external: dict[str, set[str]] = field(default_factory=dict)


def _skipped(tree: ast.AST) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                for sub in node.body:
                    skip.update(id(n) for n in ast.walk(sub))
    return skip


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name != "_core"


def read_imports(package: Path) -> Imports:
    mods: dict[str, Path] = {}
    for f in package.rglob("*.py"):
        parts = list(f.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = f
    out = Imports(mods)
    for name, f in mods.items():
        tree = ast.parse(f.read_text(), str(f))
        skip = _skipped(tree)
        here = name.split(".") if name else []
        if f.name != "__init__.py":
            here = here[:-1]
        edges = out.edges.setdefault(name, set())
        aliases: dict[str, str] = {}  # a name bound to a sibling module -> that module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    top = a.name.split(".")[0]
                    if top != package.name:
                        out.external.setdefault(name, set()).add(top)
                        continue
                    target = ".".join(a.name.split(".")[1:])
                    if target in mods and id(node) not in skip:
                        edges.add(target)
                    if a.asname:
                        aliases[a.asname] = target
            elif isinstance(node, ast.ImportFrom):
                if not node.level:
                    top = (node.module or "").split(".")[0]
                    if top != package.name:
                        out.external.setdefault(name, set()).add(top)
                        continue
                    base = (node.module or "").split(".")[1:]
                else:
                    base = here[:len(here) - (node.level - 1)] + (
                        node.module.split(".") if node.module else [])
                target = ".".join(base)
                for a in node.names:
                    sub = f"{target}.{a.name}" if target else a.name
                    if sub in mods:  # a module: ``from . import scan``
                        if id(node) not in skip:
                            edges.add(sub)
                        aliases[a.asname or a.name] = sub
                        if _private(a.name):
                            out.private.append((name, target, a.name))
                    elif a.name != "_core" and target in mods:
                        if id(node) not in skip:
                            edges.add(target)
                        if _private(a.name) and target != name:
                            out.private.append((name, target, a.name))
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in aliases and _private(node.attr)
                  and aliases[node.value.id] != name):
                out.private.append((name, aliases[node.value.id], node.attr))
        edges.discard(name)
    return out


def cycles(imports: Imports) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan). A package's ``__init__`` re-exporting
    its own modules is how packages work, not a cycle of design: those edges are left out."""
    def down(a: str, b: str) -> bool:
        return imports.modules[a].name == "__init__.py" and (a == "" or b.startswith(a + "."))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in imports.edges.get(v, ()):
            if down(v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in imports.modules:
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def package() -> Imports:
    return read_imports(PACKAGE)


def test_no_import_cycle(package: Imports) -> None:
    assert cycles(package) == []


def test_no_module_takes_a_private_name_from_another(package: Imports) -> None:
    assert package.private == []


def test_every_module_imports_only_from_its_layer_or_below(package: Imports) -> None:
    assert set(package.modules) - {""} == set(LAYERS), "a module without a layer (or gone)"
    upward = [(m, t) for m, targets in package.edges.items() if m
              for t in targets if t and LAYERS[t] > LAYERS[m]]
    assert upward == []


def test_dask_is_imported_by_one_module_of_at_most_400_lines(package: Imports) -> None:
    users = sorted(m for m, ext in package.external.items() if ext & {"dask", "distributed"})
    assert users == ["runners.dask"]
    assert len(package.modules["runners.dask"].read_text().splitlines()) <= MAX_DASK_LINES


def test_no_module_is_over_700_lines(package: Imports) -> None:
    long = {m: n for m, f in package.modules.items()
            if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_cycles_and_private_names(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "from .a import run\n")
    write(pkg / "a.py", "def run():\n    from . import b\n    return b.value()\n")
    write(pkg / "b.py", "from .a import run\n\ndef value():\n    return 1\n")  # a <-> b
    write(pkg / "c.py", "from .a import _helper\n")
    write(pkg / "d.py", "from . import a as _a\n\ndef f():\n    return _a._cache\n")
    write(pkg / "e.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
          "    from .f import F\n")
    write(pkg / "f.py", "from .e import TYPE_CHECKING\n")  # e -> f only under TYPE_CHECKING
    found = read_imports(pkg)
    assert cycles(found) == [["a", "b"]]
    assert sorted(found.private) == [("c", "a", "_helper"), ("d", "a", "_cache")]
