"""From records to one status per exercise: the rules of workbook.grading.verdict, one test each."""

from __future__ import annotations

import pytest

from workbook import catalog
from workbook.grading.records import End, Kind, Log, Outcome, Phase, Planned, Record, Role
from workbook.grading.verdict import NOT_STARTED, ChapterRun, exercise_results
from workbook.report import Status

CAT = catalog.load()
IMPLEMENT = CAT.exercise("00.1")
TEST_KIND = CAT.exercise("00.3")
MUTANTS = [m.id for m in TEST_KIND.mutants]


def _phases(exercise: str, test: str, *, call: Outcome = Outcome.PASSED, kind: Kind = Kind.OK, message: str = "",
            role: Role = Role.CHECK, mutant: str = "", order: int = 0, teardown: Outcome = Outcome.PASSED,
            uses: tuple[str, ...] = ()) -> list[Record]:
    nodeid = f"tests/test_00_welcome.py::{test}[{mutant or role.value}]"
    common = dict(exercise=exercise, nodeid=nodeid, role=role, mutant=mutant, order=order, uses=uses)
    teardown_kind = kind if teardown is Outcome.FAILED else Kind.OK
    return [Record(phase=Phase.SETUP, outcome=Outcome.PASSED, **common),
            Record(phase=Phase.CALL, outcome=call, kind=kind if call is Outcome.FAILED else Kind.OK,
                   message=message if call is Outcome.FAILED else "", **common),
            Record(phase=Phase.TEARDOWN, outcome=teardown, kind=teardown_kind,
                   message=message if teardown is Outcome.FAILED else "", **common)]


def _run(records: list[Record], *, end: End | None = End(0), returncode: int | None = None, **facts: object) -> ChapterRun:
    planned = [Planned(r.exercise, r.nodeid, r.role) for r in records if r.phase is Phase.SETUP]
    log = Log(records=records, planned=planned, end=end)
    code = returncode if returncode is not None else (end.exitstatus if end else -9)
    return ChapterRun(chapter=IMPLEMENT.chapter, log=log, returncode=code,  # type: ignore[arg-type]
                      selected=("00.1", "00.2", "00.3"), **facts)


def _result(exercise: catalog.Exercise, run: ChapterRun):
    return exercise_results([exercise], {exercise.id: run})[0]


def _learner_tests(outcomes: dict[str, Outcome], caught: dict[str, set[str]]) -> list[Record]:
    """Records of a test-kind exercise: each test on the reference, then on every mutant."""
    records = []
    for order, (test, on_reference) in enumerate(outcomes.items()):
        records += _phases("00.3", test, call=on_reference, role=Role.REFERENCE, order=order,
                           kind=Kind.ASSERTION, message="assert False")
        for mutant in MUTANTS:
            records += _phases("00.3", test, role=Role.MUTANT, mutant=mutant, order=order,
                               call=Outcome.FAILED if mutant in caught.get(test, set()) else Outcome.PASSED)
    return records


def test_all_passing_phases_pass():
    assert _result(IMPLEMENT, _run(_phases("00.1", "test_a"))).status is Status.PASSED


def test_only_not_implemented_failures_mean_not_started():
    records = _phases("00.1", "test_a", call=Outcome.FAILED, kind=Kind.NOT_IMPLEMENTED, message="Still raises")
    result = _result(IMPLEMENT, _run(records))
    assert (result.status, result.message) == (Status.NOT_STARTED, NOT_STARTED)


def test_not_implemented_next_to_a_passing_check_is_partly_done():
    records = _phases("00.1", "test_a") + _phases("00.1", "test_b", call=Outcome.FAILED, order=1,
                                                  kind=Kind.NOT_IMPLEMENTED, message="Still raises NotImplementedError.")
    result = _result(IMPLEMENT, _run(records))
    assert result.status is Status.FAILED and result.message.startswith("Partly done")


def test_a_passing_summary_test_alone_is_no_progress():
    summary = [Record(**{**r.__dict__, "summary": True}) for r in _phases("00.1", "test_last", order=5)]
    records = _phases("00.1", "test_a", call=Outcome.FAILED, kind=Kind.NOT_IMPLEMENTED, message="x") + summary
    assert _result(IMPLEMENT, _run(records)).status is Status.NOT_STARTED


def test_a_server_problem_is_an_environment_error_even_next_to_failures():
    records = (_phases("00.1", "test_a", call=Outcome.FAILED, kind=Kind.ASSERTION, message="no")
               + _phases("00.1", "test_b", call=Outcome.FAILED, kind=Kind.ENVIRONMENT, message="Redis is down", order=1))
    result = _result(IMPLEMENT, _run(records))
    assert result.status is Status.ERROR and result.environment
    assert result.message.startswith("Environment problem (not your code)")


def test_a_timeout_wins_over_an_ordinary_failure():
    records = (_phases("00.1", "test_a", call=Outcome.FAILED, kind=Kind.ASSERTION, message="no")
               + _phases("00.1", "test_b", call=Outcome.FAILED, kind=Kind.TIMEOUT, message="stopped", order=1))
    assert _result(IMPLEMENT, _run(records)).status is Status.TIMEOUT


def test_the_first_failure_as_written_is_the_message_whatever_the_order_it_ran_in():
    records = (_phases("00.1", "test_b", call=Outcome.FAILED, kind=Kind.ASSERTION, message="second", order=1)
               + _phases("00.1", "test_a", call=Outcome.FAILED, kind=Kind.ASSERTION, message="first", order=0))
    assert _result(IMPLEMENT, _run(records)).message == "first"


def test_an_import_error_is_an_error():
    record = Record("00.1", "tests/test_00_welcome.py", Phase.COLLECT, Outcome.FAILED, Kind.IMPORT, "x.py, line 3")
    result = _result(IMPLEMENT, _run([record]))
    assert (result.status, result.message) == (Status.ERROR, "x.py, line 3")


def test_no_records_in_a_finished_run_is_reported_as_a_workbook_bug():
    result = _result(IMPLEMENT, _run([]))
    assert result.status is Status.ERROR and "bug in the workbook" in result.message


def test_a_test_that_never_reached_its_teardown_is_not_graded_even_if_the_session_ended():
    records = _phases("00.1", "test_a")[:2]  # set-up and call passed, then the process stopped
    result = _result(IMPLEMENT, _run(records, end=End(2, interruption="your code raised `KeyboardInterrupt`.")))
    assert result.status is Status.ERROR and "KeyboardInterrupt" in result.message


def test_a_crashed_process_names_its_signal_and_output():
    records = _phases("00.1", "test_a")[:1]
    result = _result(IMPLEMENT, _run(records, end=None, returncode=-9, output="Segmentation fault"))
    assert result.status is Status.ERROR
    assert "SIGKILL" in result.message and "Segmentation fault" in result.message


def test_a_chapter_over_its_budget_times_out_its_unfinished_exercises_only():
    done = _phases("00.1", "test_a")
    unfinished = _phases("00.2", "test_b", order=1)[:1]
    run = _run(done + unfinished, end=None, timed_out=True)
    results = exercise_results([IMPLEMENT, CAT.exercise("00.2")], {"00.1": run, "00.2": run})
    assert [r.status for r in results] == [Status.PASSED, Status.TIMEOUT]


def test_an_exit_code_other_than_the_sessions_own_means_a_crash_for_unfinished_tests():
    unfinished = _phases("00.1", "test_a")[:2]
    result = _result(IMPLEMENT, _run(unfinished, end=End(0), returncode=3, output="INTERNALERROR"))
    assert result.status is Status.ERROR and "INTERNALERROR" in result.message


def test_tests_that_catch_every_mutant_pass():
    records = _learner_tests({"test_is_palindrome_a": Outcome.PASSED}, {"test_is_palindrome_a": set(MUTANTS)})
    assert _result(TEST_KIND, _run(records)).status is Status.PASSED


def test_every_bug_that_slipped_through_is_named():
    records = _learner_tests({"test_is_palindrome_a": Outcome.PASSED}, {"test_is_palindrome_a": {MUTANTS[0]}})
    result = _result(TEST_KIND, _run(records))
    assert result.status is Status.FAILED
    for mutant in TEST_KIND.mutants[1:]:
        assert mutant.description in result.message
    assert TEST_KIND.mutants[0].description not in result.message


def test_a_test_that_fails_on_the_correct_code_cannot_catch_anything():
    records = _learner_tests({"test_is_palindrome_a": Outcome.FAILED}, {"test_is_palindrome_a": set(MUTANTS)})
    result = _result(TEST_KIND, _run(records))
    assert result.status is Status.FAILED and "fails against the correct is_palindrome" in result.message


def test_skipped_tests_score_nothing_and_the_message_says_so():
    records = []
    for mutant in ["", *MUTANTS]:
        role = Role.MUTANT if mutant else Role.REFERENCE
        records += _phases("00.3", "test_is_palindrome_skipped", role=role, mutant=mutant, call=Outcome.SKIPPED)
    result = _result(TEST_KIND, _run(records))
    assert result.status is Status.FAILED and "skipped" in result.message


def test_a_mutant_caught_only_by_a_test_that_is_skipped_on_the_reference_still_survives():
    records = _learner_tests({"test_is_palindrome_a": Outcome.PASSED}, {"test_is_palindrome_a": set(MUTANTS[1:])})
    for mutant in ["", *MUTANTS]:
        role = Role.MUTANT if mutant else Role.REFERENCE
        outcome = Outcome.SKIPPED if not mutant else Outcome.FAILED
        records += _phases("00.3", "test_is_palindrome_sly", role=role, mutant=mutant, call=outcome, order=1)
    result = _result(TEST_KIND, _run(records))
    assert result.status is Status.FAILED
    assert TEST_KIND.mutants[0].description in result.message and "skipped" in result.message


@pytest.mark.parametrize("returncode", [0, 1])
def test_mutant_runs_never_count_as_failures_of_the_exercise(returncode):
    records = _learner_tests({"test_is_palindrome_a": Outcome.PASSED}, {"test_is_palindrome_a": set(MUTANTS)})
    assert _result(TEST_KIND, _run(records, end=End(returncode))).status is Status.PASSED


def test_a_long_list_of_missed_bugs_is_shown_whole_and_other_long_messages_are_cut():
    from workbook import report

    many = CAT.exercise("04.3")  # the test-kind exercise with the most mutants
    records = _phases("04.3", "test_price_client_x", role=Role.REFERENCE)
    for mutant in many.mutants:  # the learner's one test passes on every broken copy: it catches nothing
        records += _phases("04.3", "test_price_client_x", role=Role.MUTANT, mutant=mutant.id)
    planned = [Planned(r.exercise, r.nodeid, r.role) for r in records if r.phase is Phase.SETUP]
    run = ChapterRun(chapter=many.chapter, log=Log(records=records, planned=planned, end=End(0)), returncode=0,
                     selected=("04.3",))
    result = exercise_results([many], {"04.3": run})[0]
    assert result.status is Status.FAILED and len(result.message) > report.MESSAGE_LIMIT
    assert all(m.description in result.message for m in many.mutants), "the JSON report names every missed bug"
    table = report.render(report.Report("exercises", [result]), CAT, plain=True, width=100)
    assert table.count(" - ") == len(many.mutants), "the table (and a notebook's) shows every missed bug"
    long_error = "E   " + "x" * (2 * report.MESSAGE_LIMIT)
    cut = report.truncate(long_error, IMPLEMENT)
    assert len(cut) < len(long_error) and "tests/test_00_welcome.py" in cut
