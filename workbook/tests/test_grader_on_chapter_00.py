"""The grader on the real chapter 00, through the real command line.

Each test breaks one thing in a copy of the repository and checks that only the exercises
concerned pay for it, that the report is always written, and that the message tells the
learner what to do. The grader's own mechanics (hangs, crashes, interruptions, skips) are
pinned by the golden runs of test_golden.py, on a chapter of the tooling's own.
"""

from __future__ import annotations

import re

from workbook import catalog

STEM = "00_welcome"


def _ids(chapter: str) -> list[str]:
    return [e.id for e in catalog.load().in_chapter(chapter)]


def test_solutions_all_pass_with_exit_code_zero(workbook_copy):
    # Chapter 00 and one that uses servers: that every solution passes is the grading suite's job.
    graded = workbook_copy.grade("00", next(c.id for c in catalog.load().chapters if c.services), "--target", "solutions")
    assert graded.returncode == 0, f"every solution must pass:\n{graded.stdout}"
    assert set(graded.statuses().values()) == {"passed"}, graded.statuses()
    assert graded.report["score"] == graded.report["max_score"] > 0


def test_untouched_stubs_are_all_not_started_with_a_failing_exit_code(workbook_copy):
    graded = workbook_copy.grade()
    assert graded.returncode == 1, "untouched stubs must not pass"
    assert set(graded.statuses().values()) == {"not_started"}, graded.statuses()
    assert graded.report["score"] == 0
    assert "Traceback" not in graded.stdout + graded.stderr, "an untouched stub must never show a stack trace"


def test_report_has_exactly_the_contracted_fields(workbook_copy):
    graded = workbook_copy.grade("00")
    assert set(graded.report) == {"target", "score", "max_score", "exercises"}
    for entry in graded.report["exercises"]:
        assert set(entry) == {"id", "chapter", "title", "kind", "status", "points", "max_points", "message"}
        assert entry["status"] in {"passed", "failed", "not_started", "error", "timeout"}


def test_a_syntax_error_costs_only_its_own_file_and_names_file_and_line(workbook_copy):
    text = workbook_copy.solution_text(STEM).replace("def countdown(start: int)", "def countdown(start: int", 1)
    workbook_copy.write_exercise(STEM, text)
    graded = workbook_copy.grade("00", "01")
    for exercise_id in _ids("00"):
        assert graded.status(exercise_id) == "error"
        assert re.search(r"exercises/00_welcome\.py, line \d+: SyntaxError", graded.exercise(exercise_id)["message"])
    assert {graded.status(i) for i in _ids("01")} == {"not_started"}, "another chapter must not pay for it"


def test_an_exception_at_import_is_an_error_with_file_and_line(workbook_copy):
    text = workbook_copy.solution_text(STEM) + "\nraise RuntimeError('boom at import')\n"
    workbook_copy.write_exercise(STEM, text)
    graded = workbook_copy.grade(STEM)
    message = graded.exercise("00.1")["message"]
    assert graded.status("00.1") == "error"
    assert "exercises/00_welcome.py, line" in message and "boom at import" in message


def test_one_solved_exercise_passes_while_the_others_stay_not_started(workbook_copy):
    stub = workbook_copy.exercise_file(STEM).read_text()
    solved = stub.replace(
        "    # TODO(00.1): your code here. Stuck? Run `python3 -m workbook hint 00.1`.\n    raise NotImplementedError\n",
        "    if start < 0:\n        raise ValueError(start)\n    out = []\n    for n in range(start, 0, -1):\n"
        "        out.append(n)\n        await asyncio.sleep(0)\n    return out\n", 1)
    assert solved != stub
    workbook_copy.write_exercise(STEM, solved)
    graded = workbook_copy.grade("00")
    assert graded.statuses() == {"00.1": "passed", "00.2": "not_started", "00.3": "not_started"}


def test_a_wrong_implementation_fails_with_the_rule_it_broke(workbook_copy):
    text = workbook_copy.solution_text(STEM).replace("        await asyncio.sleep(0)\n", "", 1)
    workbook_copy.write_exercise(STEM, text)
    graded = workbook_copy.grade("00.1")
    assert graded.status("00.1") == "failed"
    assert "asyncio.sleep(0)" in graded.exercise("00.1")["message"]


def _with_palindrome_tests(copy, tests: str) -> None:
    text = copy.solution_text(STEM)
    start = text.index("# SOLUTION BEGIN 00.3")
    copy.write_exercise(STEM, text[:start] + tests)


def test_tests_that_miss_a_bug_fail_and_name_the_bug_in_plain_words(workbook_copy):
    _with_palindrome_tests(workbook_copy, (
        "@pytest.mark.asyncio\nasync def test_is_palindrome_level():\n    assert await is_palindrome('level')\n"
        "\n@pytest.mark.asyncio\nasync def test_is_palindrome_not():\n    assert not await is_palindrome('ab')\n"))
    graded = workbook_copy.grade("00.3")
    message = graded.exercise("00.3")["message"]
    assert graded.status("00.3") == "failed"
    assert "no longer ignores case" in message and "no longer ignores spaces" in message
    assert "answers True for every text" not in message, "the mutant that the tests do catch must not be listed"
    assert "_case_sensitive" not in message, "never show the mutant's code or name"


def test_a_test_that_asserts_nothing_scores_nothing(workbook_copy):
    _with_palindrome_tests(workbook_copy, "@pytest.mark.asyncio\nasync def test_is_palindrome_runs():\n    await is_palindrome('x')\n")
    graded = workbook_copy.grade("00.3")
    assert graded.status("00.3") == "failed"
    assert graded.exercise("00.3")["points"] == 0


def test_a_test_that_fails_on_correct_code_is_reported_as_such(workbook_copy):
    _with_palindrome_tests(workbook_copy, "@pytest.mark.asyncio\nasync def test_is_palindrome_wrong():\n    assert await is_palindrome('abc')\n")
    graded = workbook_copy.grade("00.3")
    assert graded.status("00.3") == "failed"
    assert "fails against the correct is_palindrome" in graded.exercise("00.3")["message"]


def test_an_unknown_id_is_a_usage_error_that_suggests_close_ones(workbook_copy):
    result = workbook_copy.run("grade", "00.9")
    assert result.returncode == 2
    assert "Unknown exercise or chapter '00.9'" in result.stderr and "00.1" in result.stderr


def test_a_module_level_pytestmark_reaches_the_learners_tests(workbook_copy):
    _with_palindrome_tests(workbook_copy, (
        "pytestmark = pytest.mark.asyncio\n\n"
        "async def test_is_palindrome_level():\n    assert await is_palindrome('Never odd or even')\n\n"
        "async def test_is_palindrome_no():\n    assert not await is_palindrome('ab')\n    assert not await is_palindrome('rover')\n"))
    graded = workbook_copy.grade("00.3")
    assert graded.status("00.3") == "passed", graded.exercise("00.3")["message"]


def test_a_file_that_exits_at_import_is_an_error_that_says_so(workbook_copy):
    workbook_copy.write_exercise(STEM, workbook_copy.solution_text(STEM) + "\nraise SystemExit(0)\n")
    graded = workbook_copy.grade("00", "01")
    assert graded.status("00.1") == "error" and "sys.exit()" in graded.exercise("00.1")["message"]
    assert {graded.status(i) for i in _ids("01")} == {"not_started"}


def test_a_missing_exercise_file_says_how_to_restore_it(workbook_copy):
    workbook_copy.exercise_file(STEM).unlink()
    graded = workbook_copy.grade("00")
    assert graded.status("00.1") == "error" and "is missing" in graded.exercise("00.1")["message"]


