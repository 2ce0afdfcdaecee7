"""A chapter graded alone on several cores runs in several processes (workbook/grading/runner.py, `_parts`)."""

from __future__ import annotations

from workbook import catalog
from workbook.grading.runner import _SPLIT_FROM_MUTANTS, _parts


def _chapter(chapter_id: str) -> list[catalog.Exercise]:
    return catalog.load().in_chapter(chapter_id)


def _heavy(exercises: list[catalog.Exercise]) -> list[str]:
    return [e.id for e in exercises if e.kind == "test" and len(e.mutants) >= _SPLIT_FROM_MUTANTS]


def test_every_selected_exercise_is_in_exactly_one_part_whatever_the_cores():
    for chapter in catalog.load().chapters:
        exercises = _chapter(chapter.id)
        for cores in (1, 2, 3, 8):
            parts = _parts(exercises, cores)
            ids = [i for part in parts for i in part]
            assert sorted(ids) == sorted(e.id for e in exercises), (chapter.id, cores, parts)
            assert all(parts), "no empty part"
            assert len(parts) <= max(1, cores), "never more processes than cores"


def test_one_process_on_one_core_or_for_a_chapter_without_a_heavy_mutation_exercise(monkeypatch):
    for chapter in catalog.load().chapters:
        exercises = _chapter(chapter.id)
        assert len(_parts(exercises, 1)) == 1
        if not _heavy(exercises):
            assert len(_parts(exercises, 8)) == 1, chapter.id
    monkeypatch.setenv("WORKBOOK_SPLIT", "0")
    assert all(len(_parts(_chapter(c.id), 8)) == 1 for c in catalog.load().chapters), "WORKBOOK_SPLIT=0 turns it off"


def test_a_heavy_mutation_exercise_gets_a_process_of_its_own_and_the_rest_share_one():
    chapter = next(c for c in catalog.load().chapters if _heavy(_chapter(c.id)) and len(_chapter(c.id)) > 1)
    exercises = _chapter(chapter.id)
    parts = _parts(exercises, 2)
    heaviest = max(_heavy(exercises), key=lambda i: len(catalog.load().exercise(i).mutants))
    assert parts[0] == (heaviest,)
    assert len(parts) == 2 and heaviest not in parts[1]


def test_a_split_chapter_grades_exactly_as_one_process(workbook_copy):
    chapter = next(c for c in catalog.load().chapters
                   if not c.services and _heavy(_chapter(c.id)) and len(_chapter(c.id)) > 1)
    split = workbook_copy.grade(chapter.id, "--target", "solutions")
    whole = workbook_copy.grade(chapter.id, "--target", "solutions", env={"WORKBOOK_SPLIT": "0"})
    assert split.report == whole.report
    assert set(split.statuses().values()) == {"passed"}
