"""The catalog: one valid file that matches the tree, and look-ups that forgive what people type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbook import catalog


def test_the_catalog_has_no_problems_and_matches_the_tree():
    assert catalog.problems() == []


def test_at_least_half_of_all_exercises_are_about_writing_tests():
    exercises = catalog.load().exercises
    test_writing = [e for e in exercises if e.kind in ("fixture", "test")]
    assert len(test_writing) * 2 >= len(exercises), "SPEC §3: at least half are fixture or test kind"


@pytest.mark.parametrize("typed, expected", [("00.1", "00.1"), ("0.1", "00.1"), ("00-1", "00.1"), ("0", "00")])
def test_ids_are_normalised_from_common_spellings(typed, expected):
    assert catalog._normalise(typed) == expected


def test_a_chapter_selects_all_its_exercises_in_order():
    cat = catalog.load()
    assert [e.id for e in cat.select(["00"])] == [e.id for e in cat.in_chapter("00")]
    assert [e.id for e in cat.select(["00_welcome"])] == [e.id for e in cat.in_chapter("00")]


def test_an_unknown_id_suggests_close_ones():
    with pytest.raises(catalog.UnknownSelection, match=r"Did you mean '00\.1'"):
        catalog.load().select(["00.10"])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_problems_are_found_in_a_broken_catalog(tmp_path):
    path = _write(tmp_path, """
[[chapter]]
id = "00"
stem = "00_welcome"
title = "x"
[[exercise]]
id = "00.1"
title = "a"
kind = "quiz"
difficulty = 5
points = 0
hints = []
[[exercise]]
id = "00.1"
title = "b"
kind = "test"
difficulty = 1
points = 1
hints = ["h"]
""")
    found = "\n".join(catalog.problems(catalog.load(path)))
    for expected in ("duplicate id", "kind must be one of", "difficulty must be", "points must be positive",
                     "at least one hint", "needs `subject` and `test_prefix`", "at least one [[exercise.mutant]]"):
        assert expected in found, f"the check must report: {expected}"


def test_a_chapter_not_written_yet_says_it_is_planned_not_a_typo():
    have = {c.id for c in catalog.load().chapters}
    missing = [f"{n:02d}" for n in range(100) if f"{n:02d}" not in have]
    for chapter_id in (missing[0], missing[-1], f"{missing[0]}.1"):  # a gap or the next one, the far end, an exercise
        with pytest.raises(catalog.UnknownSelection, match=rf"no chapter '{re.escape(chapter_id)}' yet.*planned"):
            catalog.load().select([chapter_id])
