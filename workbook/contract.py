"""The exercise contract (SPEC §3): every promise is stated and checked, every check is promised.

Each exercise lists its promises once, in ``catalog.toml``::

    [[exercise.promise]]
    id = "empty"                          # short, unique within the exercise
    says = "countdown(0) returns []"      # the words the stub's docstring uses

and the rest of the tree must agree with that list, which ``python3 -m workbook dev check``
(and so CI) enforces:

- the stub states every promise: its ``says`` appears word for word (spacing and case aside) in
  the docstring of one of the exercise's ``names``, of its ``subject``, or of their methods;
- implement and fixture kind: every grading test names the promises it enforces,
  ``@pytest.mark.exercise("00.1", promise="empty")`` (or ``promise=("a", "b")``), every name is
  a promise of that exercise, and every promise has at least one grading test;
- test kind: every mutant names the one promise it breaks (``promise = "..."`` in its
  ``[[exercise.mutant]]``), and every promise has at least one mutant;
- the reference solution's own tests catch every mutant: ``dev check`` grades solutions/ for
  that (so does the suite's "grading suite on solutions/" step).

Everything here reads files (the catalog, the solutions and the grading modules, through
their syntax trees); nothing is imported or run but the grading of solutions/ in `mutants_missed`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workbook import ROOT, catalog, stubs


@dataclass(frozen=True)
class Check:
    """A grading test of the chapter's test module, and what its marker says it checks."""

    name: str
    line: int
    exercise: str
    promises: tuple[str, ...]


def problems(cat: catalog.Catalog | None = None, root: Path = ROOT) -> list[str]:
    """Every way the tree breaks the exercise contract; empty when it holds."""
    cat = cat or catalog.load()
    found: list[str] = []
    for chapter in cat.chapters:
        solution = root / "solutions" / f"{chapter.stem}.py"
        tests = root / "tests" / f"test_{chapter.stem}.py"
        if not solution.exists() or not tests.exists():
            continue  # catalog.problems() names the missing file
        try:
            stub = stubs.make_stub(solution.read_text(encoding="utf-8"), source=str(solution))
            docs = docstrings(stub)
            checks = grading_checks(tests.read_text(encoding="utf-8"))
        except (SyntaxError, stubs.MarkerError) as error:
            found.append(f"chapter {chapter.id}: cannot read its files: {error}")
            continue
        shown = f"tests/test_{chapter.stem}.py"
        known = {e.id for e in cat.in_chapter(chapter.id)}
        for check in checks:
            if check.exercise not in known:
                found.append(f"{shown}:{check.line} `{check.name}`: exercise {check.exercise} is not in chapter {chapter.id}")
        for exercise in cat.in_chapter(chapter.id):
            found += _exercise_problems(exercise, docs, [c for c in checks if c.exercise == exercise.id], shown)
    return found


def _exercise_problems(exercise: catalog.Exercise, docs: dict[str, str], checks: list[Check], shown: str) -> list[str]:
    where = f"exercise {exercise.id}"
    found: list[str] = []
    if not exercise.promises:
        return [f"{where}: lists no [[exercise.promise]]: say what a correct answer must do"]
    ids = [p.id for p in exercise.promises]
    if len(ids) != len(set(ids)):
        found.append(f"{where}: promise ids must be unique ({', '.join(sorted(ids))})")
    stated = " ".join(docs.get(name, "") for name in (*exercise.names, exercise.subject or "")).casefold()
    for promise in exercise.promises:
        if not promise.says:
            found.append(f"{where}: promise {promise.id} says nothing")
        elif promise.says.casefold() not in stated:
            found.append(f"{where}: the stub's docstring does not state promise {promise.id}: {promise.says!r}")
    for check in checks:
        if not check.promises:
            found.append(f"{shown}:{check.line} `{check.name}` names no promise of {exercise.id}: "
                         f"@pytest.mark.exercise({exercise.id!r}, promise=...)")
        for name in check.promises:
            if exercise.promise(name) is None:
                found.append(f"{shown}:{check.line} `{check.name}` names {name!r}, which is no promise of {exercise.id}")
    if exercise.kind == "test":
        for mutant in exercise.mutants:
            if exercise.promise(mutant.promise) is None:
                found.append(f"{where}: mutant {mutant.id} must name the promise it breaks (promise = one of {', '.join(ids)})")
        broken = {m.promise for m in exercise.mutants}
        found += [f"{where}: promise {p.id} has no mutant that breaks it" for p in exercise.promises if p.id not in broken]
    else:
        enforced = {name for check in checks for name in check.promises}
        found += [f"{where}: promise {p.id} has no grading test that checks it" for p in exercise.promises
                  if p.id not in enforced]
    return found


def docstrings(source: str) -> dict[str, str]:
    """Top-level name -> its docstring with those of its methods, whitespace collapsed."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            parts = [ast.get_docstring(node) or ""]
            if isinstance(node, ast.ClassDef):
                parts += [ast.get_docstring(n) or "" for n in node.body
                          if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            found[node.name] = " ".join(" ".join(parts).split())
    return found


def grading_checks(source: str) -> list[Check]:
    """The grading tests of a test module: functions (or methods) carrying `@pytest.mark.exercise(...)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "exercise" and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)):
                found.append(Check(node.name, node.lineno, str(decorator.args[0].value), _promises_of(decorator)))
    return found


def _promises_of(marker: ast.Call) -> tuple[str, ...]:
    for keyword in marker.keywords:
        if keyword.arg == "promise":
            value = keyword.value
            items = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
            return tuple(str(item.value) for item in items if isinstance(item, ast.Constant))
    return ()


def mutants_missed(cat: catalog.Catalog | None = None) -> list[str]:
    """Grade solutions/ for every test-kind exercise: the reference tests must catch every mutant."""
    cat = cat or catalog.load()
    ids = [e.id for e in cat.exercises if e.kind == "test"]
    if not ids:
        return []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.json"
        ran = subprocess.run([sys.executable, "-m", "workbook", "grade", "--target", "solutions", *ids,
                              "--json", str(path)], cwd=ROOT, capture_output=True, text=True, check=False)
        if not path.exists():
            return [f"grading solutions/ wrote no report (exit {ran.returncode}): {ran.stderr.strip()[-2000:]}"]
        report = json.loads(path.read_text(encoding="utf-8"))
    return [f"exercise {e['id']}: the reference solution's tests do not pass: {e['message']}"
            for e in report["exercises"] if e["status"] != "passed"]
