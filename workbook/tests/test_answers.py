"""Every kept learner answer (workbook/tests/answers/) gets the verdict it should, through the real grader.

Also holds, over every answer at once: a message never names the grading module's private
helpers or mutants. A run grades the k-th answers of several exercises side by side (see
answers.rounds), so it also proves that one exercise's answer does not change another's verdict.
"""

from __future__ import annotations

import ast
import re

import pytest

from workbook import ROOT, catalog
from workbook.tests import answers

ALL = answers.load()


def _dependencies(stem: str) -> dict[str, set[str]]:
    """Only a learner's tests run on the learner's other answers (their fixtures); hidden checks never do."""
    exercises = catalog.load().in_chapter(stem[:2])
    names = {e.id: tuple(e.names) for e in exercises}
    found = answers.dependencies((ROOT / "solutions" / f"{stem}.py").read_text(encoding="utf-8"), names)
    return {user: owners for user, owners in found.items()
            if next(e for e in exercises if e.id == user).kind == "test"}


DEPENDS = {stem: _dependencies(stem) for stem in ALL}
ROUNDS = [r for stem, found in ALL.items() for r in answers.rounds(stem, found, DEPENDS[stem])]


def _private_names(stem: str) -> set[str]:
    """Names of the grading module's own helpers and mutants (`_case_sensitive`): never shown to a learner."""
    tree = ast.parse((ROOT / "tests" / f"test_{stem}.py").read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name.startswith("_")}


def test_every_exercise_has_an_alternative_correct_answer_and_a_wrong_one():
    kept = [a for found in ALL.values() for a in found]
    missing = []
    for exercise in catalog.load().exercises:
        mine = [a for a in kept if a.exercise == exercise.id]
        if not any(a.expect == "passed" for a in mine) or not any(a.expect != "passed" for a in mine):
            missing.append(exercise.id)
    assert not missing, f"exercises without both an alternative correct answer and a wrong one: {missing}"


@pytest.mark.parametrize("round_", ROUNDS, ids=[r.id for r in ROUNDS])
def test_each_answer_gets_its_verdict(workbook_copy, round_):
    text = answers.apply(workbook_copy.solution_text(round_.stem), round_.answers)
    workbook_copy.write_exercise(round_.stem, text)
    # Only the answered exercises are graded (the others hold their solutions, graded elsewhere):
    # chapter 04 alone takes 14 s, most of it 04.3's mutation runs.
    answered_ids = sorted({a.exercise for a in round_.answers})
    graded = workbook_copy.grade(*answered_ids)
    hidden = _private_names(round_.stem)
    wrong = []
    answered = {a.exercise: a for a in round_.answers}
    for exercise_id in answered_ids:
        got = graded.exercise(exercise_id)
        answer = answered[exercise_id]
        expect = answer.expect
        label = f"{exercise_id} [{answer.name}]"
        if got["status"] != expect:
            wrong.append(f"{label}: {got['status']}, expected {expect}: {got['message']}")
            continue
        for words in answer.message:
            if words.casefold() not in got["message"].casefold():
                wrong.append(f"{label}: the message lacks {words!r}: {got['message']}")
        leaked = sorted(n for n in hidden if re.search(rf"(?<![\w.]){re.escape(n)}\b", got["message"]))
        if leaked:
            wrong.append(f"{label}: the message names the grader's own {leaked}: {got['message']}")
    assert not wrong, "\n".join(wrong)
