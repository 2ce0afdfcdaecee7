"""The exercise contract (workbook/contract.py): it holds for the workbook, and it fails each way it can."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from workbook import catalog, contract

CATALOG = '''
[[chapter]]
id = "00"
stem = "00_tiny"
title = "Tiny"

[[exercise]]
id = "00.1"
title = "double"
kind = "implement"
difficulty = 1
points = 5
names = ["double"]
hints = ["x * 2"]
promise = [
    { id = "twice", says = "returns twice its argument" },
    { id = "ints", says = "rejects anything but an int" },
]

[[exercise]]
id = "00.2"
title = "tests for halve"
kind = "test"
difficulty = 1
points = 5
names = ["test_halve_*"]
subject = "halve"
test_prefix = "test_halve_"
hints = ["assert await halve(4) == 2"]
promise = [
    { id = "half", says = "Half of `n`" },
    { id = "floor", says = "rounded down" },
]

[[exercise.mutant]]
id = "same"
promise = "half"
description = "it returns n"

[[exercise.mutant]]
id = "rounds_up"
promise = "floor"
description = "it rounds up"
'''

SOLUTION = '''
async def double(x):
    """Double `x`: returns twice its argument, and rejects anything but an int."""
    # SOLUTION BEGIN 00.1
    return x * 2
    # SOLUTION END


async def halve(n):
    """Half of `n`, rounded down."""
    return n // 2
'''

TESTS = '''
import pytest

@pytest.mark.exercise("00.1", promise="twice")
async def test_double():
    pass


@pytest.mark.exercise("00.1", promise=("ints", "twice"))
async def test_ints():
    pass
'''


def _tree(tmp_path: Path, catalog_text: str = CATALOG, solution: str = SOLUTION, tests: str = TESTS) -> list[str]:
    for folder in ("solutions", "tests"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "solutions" / "00_tiny.py").write_text(textwrap.dedent(solution))
    (tmp_path / "tests" / "test_00_tiny.py").write_text(textwrap.dedent(tests))
    path = tmp_path / "catalog.toml"
    path.write_text(catalog_text)
    return contract.problems(catalog.load(path), root=tmp_path)


def test_the_workbook_keeps_its_contract():
    assert contract.problems() == []


def test_a_tree_that_keeps_it_has_no_problems(tmp_path):
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c, s, t: (c, s.replace("and rejects anything but an int", ""), t),
     "the stub's docstring does not state promise ints"),
    (lambda c, s, t: (c, s, t.replace('promise=("ints", "twice")', 'promise="twice"')),
     "promise ints has no grading test that checks it"),
    (lambda c, s, t: (c, s, t.replace(', promise="twice")', ")")),
     "`test_double` names no promise of 00.1"),
    (lambda c, s, t: (c, s, t.replace('promise="twice"', 'promise="thrice"')),
     "`test_double` names 'thrice', which is no promise of 00.1"),
    (lambda c, s, t: (c.replace('id = "rounds_up"\npromise = "floor"', 'id = "rounds_up"'), s, t),
     "mutant rounds_up must name the promise it breaks"),
    (lambda c, s, t: (c.replace('id = "rounds_up"\npromise = "floor"', 'id = "rounds_up"\npromise = "half"'), s, t),
     "promise floor has no mutant that breaks it"),
    (lambda c, s, t: (c.replace('{ id = "floor", says = "rounded down" },', ""), s, t),
     "mutant rounds_up must name the promise it breaks"),
    (lambda c, s, t: (c, s, t.replace('"00.1", promise="twice"', '"00.7", promise="twice"')),
     "exercise 00.7 is not in chapter 00"),
])
def test_each_break_of_the_contract_is_named(tmp_path, change, expected):
    found = _tree(tmp_path, *change(CATALOG, SOLUTION, TESTS))
    assert any(expected in problem for problem in found), found


def test_an_exercise_without_promises_is_named(tmp_path):
    without = CATALOG.replace('promise = [\n    { id = "twice", says = "returns twice its argument" },\n'
                              '    { id = "ints", says = "rejects anything but an int" },\n]\n', "")
    found = _tree(tmp_path, without)
    assert any("exercise 00.1: lists no [[exercise.promise]]" in p for p in found), found


def test_no_learner_facing_text_of_any_mutant_names_the_graders_own_code():
    """A missed bug is shown by its description alone: never its id, nor the grading module's class for it."""
    import ast
    import re

    from workbook import ROOT

    leaks = []
    for exercise in catalog.load().exercises:
        if exercise.kind != "test":
            continue
        tree = ast.parse((ROOT / "tests" / f"test_{exercise.chapter.stem}.py").read_text(encoding="utf-8"))
        private = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                   and n.name.startswith("_")}
        for mutant in exercise.mutants:
            words = [mutant.id, *private] if "_" in mutant.id else sorted(private)
            named = [w for w in words if re.search(rf"(?<![\w.]){re.escape(w)}\b", mutant.description)]
            if named:
                leaks.append(f"{exercise.id} mutant {mutant.id}: its description names {named}")
    assert not leaks, "\n".join(leaks)
