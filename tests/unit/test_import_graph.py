"""The package reads bottom-up: no import cycle, and no import from a higher layer (ARCHITECTURE.md, section 3).

Every ``import`` and ``from ... import`` in ``src/daily_mlops`` counts, wherever it sits: at module level,
inside a function (the usual way to hide a cycle) or under ``if TYPE_CHECKING:``. ``from package import
module`` is an edge to that module, not to the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "daily_mlops"

#: Layers from the bottom; a module may import its own layer and the ones below it (ARCHITECTURE.md, section 3).
LAYERS = {
    "base": 0,           # errors, dates, checksums, decisions, settings/
    "ml": 1,             # torch, scikit-learn, SDV, pandas; never pymongo
    "storage": 2,        # pymongo, GridFS (reads ml's encoded blocks)
    "reporting": 2,      # documents -> figures, HTML, model cards; no database
    "loop": 3,           # one module per DAG + bootstrap
    "orchestration": 4,  # airflow.sdk
    "serving": 5,        # daily-mlops serve
    "cli": 6,            # typer commands and their tables
}


def layer(module: str) -> str:
    """The layer of ``daily_mlops.<...>``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("ml", "storage", "reporting", "loop", "orchestration"):
        return parts[1]
    if len(parts) > 1 and parts[1] == "serving":
        return "serving"
    if len(parts) > 1 and parts[1] == "cli":
        return "cli"
    return "base"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package is named by its ``__init__``)."""
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """``module -> modules of the package it imports`` (all imports, function-level and TYPE_CHECKING ones included)."""
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                submodules = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t for t in submodules if t in found]
                if len(targets) < len(submodules):
                    targets.append(base)
            else:
                continue
            for target in targets:
                while target and target not in found:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(import_graph(modules()))
    assert found == [], "import cycles (move the shared name down to the module that owns it): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_no_module_imports_from_a_higher_layer() -> None:
    graph = import_graph(modules())
    upward = sorted(f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, targets in graph.items() for b in targets
                    if LAYERS[layer(b)] > LAYERS[layer(a)])
    assert upward == []


def test_ml_never_imports_storage_and_reporting_never_imports_storage() -> None:
    """The two rules of section 3 that ranks alone do not say: ml has no database, reporting no database."""
    graph = import_graph(modules())
    crossing = sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                      if layer(a) in ("ml", "reporting") and layer(b) == "storage")
    assert crossing == []


@pytest.mark.parametrize(("source", "expected"), [
    ({"a": "from pkg import b\n", "b": "def f():\n    from pkg import a\n"}, [["pkg.a", "pkg.b"]]),
    ({"a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import X\n", "b": "import pkg.a\n"},
     [["pkg.a", "pkg.b"]]),
    ({"a": "from pkg import b\n", "b": "import json\n"}, []),
])
def test_the_checker_finds_function_level_and_type_checking_cycles(tmp_path, source, expected) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name, text in source.items():
        (root / f"{name}.py").write_text(text)
    assert cycles(import_graph(modules(root))) == expected


def test_the_package_root_holds_at_most_six_modules() -> None:
    """Beside the subpackages the root stays small and obvious (ARCHITECTURE.md, section 3): ``__init__`` and at
    most five modules."""
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= 6, root
