"""The packages are floors that only point down, and no module imports itself round a loop.

core <- processors <- providers <- streams <- flowmail, bench (the roof: CLI, operator tools,
upstream SDK, dev stack, fakes, benchmark). Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

from core.settings import PROJECT_ROOT

FLOOR = {"core": 0, "processors": 1, "providers": 2, "streams": 3, "flowmail": 4, "bench": 4}
# the upstream SDK is all an upstream service installs: it stands on core alone
SDK = {"flowmail.publisher": {"core"}}


def _module_of(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (``from a import b`` counts ``a.b`` when that
    is a module, else ``a``)."""
    paths = [p for package in FLOOR for p in (PROJECT_ROOT / package).rglob("*.py")]
    modules = {_module_of(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                          else node.module for a in node.names}
        graph[_module_of(path)] = {m for m in found if m.split(".")[0] in FLOOR}
    return graph


def test_no_import_points_up():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items()
              for target in targets
              if FLOOR[target.split(".")[0]] > FLOOR[module.split(".")[0]]]
    assert upward == []


def test_the_sdk_stands_on_core_alone():
    graph = import_graph()
    for module, allowed in SDK.items():
        assert {t.split(".")[0] for t in graph[module]} <= allowed | {module.split(".")[0]}
        assert {t for t in graph[module] if t.startswith("flowmail")} <= {"flowmail"}


def test_no_import_loop():
    graph = import_graph()
    loops: list[list[str]] = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                loops.append([*path[path.index(target):], target])
            elif target not in done:
                done.add(target)
                visit(target, [*path, target], done)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            done.add(module)
            visit(module, [module], done)
    assert loops == []


def test_no_package_imports_another_that_imports_it_back():
    graph = import_graph()
    edges = {(m.split(".")[0], t.split(".")[0]) for m, targets in graph.items() for t in targets}
    loops = sorted((a, b) for a, b in edges if a != b and (b, a) in edges)
    assert loops == []
