"""The import rules of README's "How a grading run works": dependencies point one way, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

from workbook import ROOT

PACKAGE = ROOT / "workbook"

#: module -> modules of the workbook it may never import (directly or inside a function)
FORBIDDEN = {
    "workbook.catalog": {"workbook.report", "workbook.services", "workbook.grading", "workbook.testing", "workbook.cli"},
    "workbook.report": {"workbook.services", "workbook.grading", "workbook.testing", "workbook.cli"},
    "workbook.grading.records": {"workbook.grading", "workbook.testing", "workbook.services", "workbook.cli"},
    "workbook.grading.diagnose": {"workbook.grading.plugin", "workbook.grading.runner", "workbook.grading.verdict",
                                  "workbook.services", "workbook.testing", "workbook.cli"},
    "workbook.grading.verdict": {"workbook.grading.plugin", "workbook.grading.runner", "workbook.grading.handoff",
                                 "workbook.services", "workbook.testing", "workbook.cli"},
    "workbook.grading.order": {"workbook.grading.plugin", "workbook.grading.runner", "workbook.grading.verdict",
                               "workbook.services", "workbook.cli"},
    "workbook.grading.frames": {"workbook.grading.plugin", "workbook.grading.runner", "workbook.grading.verdict",
                                "workbook.services", "workbook.cli"},
    "workbook.testing": {"workbook.grading.plugin", "workbook.grading.fixtures", "workbook.grading.runner",
                         "workbook.pytest_plugin", "workbook.cli"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "tests" in path.relative_to(PACKAGE).parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(path: Path, known: dict[str, Path], own: str) -> set[str]:
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != own and not own.startswith(name + "."):
                targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known, name) for name, path in known.items()}


def test_the_workbook_has_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lower_stages_never_import_higher_ones():
    graph = _graph()
    for module, forbidden in FORBIDDEN.items():
        bad = {t for t in graph[module] if any(t == f or t.startswith(f + ".") for f in forbidden)}
        assert not bad, f"{module} must not import {sorted(bad)} (README, 'How a grading run works')"


def test_only_the_entry_point_imports_the_command_line():
    graph = _graph()
    importers = {m for m, targets in graph.items() if "workbook.cli" in targets}
    assert importers <= {"workbook.__main__"}, f"the command line only parses and prints; imported by {sorted(importers)}"
