"""Every kept learner answer (workbook/tests/answers/) gets the verdict it should, through the real grader.

Also holds, over every answer at once: a message never names the grading module's private
helpers or mutants, and the exercises a run did not answer (their solutions) still pass.
"""

from __future__ import annotations

import ast
import re

import pytest

from workbook import ROOT, catalog, contract
from workbook.tests import answers

ALL = answers.load()
ROUNDS = [r for stem, found in ALL.items() for r in answers.rounds(stem, found)]


def _private_names(stem: str) -> set[str]:
    """Names of the grading module's own helpers and mutants (`_case_sensitive`): never shown to a learner."""
    tree = ast.parse((ROOT / "tests" / f"test_{stem}.py").read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name.startswith("_")}


def test_every_exercise_has_an_alternative_correct_answer_and_a_wrong_one():
    kept = [a for found in ALL.values() for a in found]
    missing = []
    for exercise in catalog.load().exercises:
        if exercise.chapter.id in contract.UNAUDITED:
            continue
        mine = [a for a in kept if a.exercise == exercise.id]
        if not any(a.expect == "passed" for a in mine) or not any(a.expect != "passed" for a in mine):
            missing.append(exercise.id)
    assert not missing, f"exercises without both an alternative correct answer and a wrong one: {missing}"


@pytest.mark.parametrize("round_", ROUNDS, ids=[r.id for r in ROUNDS])
def test_each_answer_gets_its_verdict(workbook_copy, round_):
    text = answers.apply(workbook_copy.solution_text(round_.stem), round_.answers)
    workbook_copy.write_exercise(round_.stem, text)
    chapter = round_.stem[:2]
    graded = workbook_copy.grade(chapter)
    hidden = _private_names(round_.stem)
    wrong = []
    answered = {a.exercise: a for a in round_.answers}
    for exercise in catalog.load().in_chapter(chapter):
        got = graded.exercise(exercise.id)
        answer = answered.get(exercise.id)
        expect = answer.expect if answer else "passed"
        label = f"{exercise.id} [{answer.name if answer else 'reference solution'}]"
        if got["status"] != expect:
            wrong.append(f"{label}: {got['status']}, expected {expect}: {got['message']}")
            continue
        for words in answer.message if answer else ():
            if words.casefold() not in got["message"].casefold():
                wrong.append(f"{label}: the message lacks {words!r}: {got['message']}")
        leaked = sorted(n for n in hidden if re.search(rf"(?<![\w.]){re.escape(n)}\b", got["message"]))
        if leaked:
            wrong.append(f"{label}: the message names the grader's own {leaked}: {got['message']}")
    assert not wrong, "\n".join(wrong)
