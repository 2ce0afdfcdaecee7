"""Every rule that turns what a chapter process recorded into one status per exercise.

Pure functions over typed records (`workbook.grading.records`) and the facts of the process
(did it time out, how did it exit): no pytest, no servers, no files. The command-line grader,
a notebook's grading cell and a plain ``pytest tests/`` run all decide here, so they agree.

The rules, in order (first match wins):
1. a server the chapter needs was unavailable, or failed during a test -> ``error`` (not the learner's fault);
2. a test of the exercise never finished (the process hung, crashed, or learner code stopped the
   session) -> ``timeout`` or ``error``: an exercise is never passed on tests that did not all run;
3. the learner's file does not import -> ``error``; something hung -> ``timeout``;
4. a `test`-kind exercise: its tests must pass on the correct code and catch every listed bug;
5. only ``NotImplementedError`` -> ``not_started`` (or "partly done" next to passing checks);
6. any other failure -> ``failed``, with the first failing check's message (in the order written);
7. otherwise ``passed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbook import catalog
from workbook.grading.records import Kind, Log, Outcome, Phase, Record, Role
from workbook.report import ExerciseResult, Status, truncate

if TYPE_CHECKING:
    from workbook.catalog import Chapter, Exercise

ENVIRONMENT_PREFIX = "Environment problem (not your code): "
NOT_STARTED = "Not started: the stub still raises NotImplementedError."
_NO_TEST_RAN = "No grading test ran for this exercise. This is a bug in the workbook: please report it."
_CHAPTER_TIMEOUT = (
    "Grading chapter {chapter} was stopped after {budget:.0f} s{during}. Something in exercises/{stem}.py never "
    "finishes (an endless loop, or a blocking call at import?). The other exercises were graded without it."
)
_CRASHED = "The grading process for chapter {chapter} stopped unexpectedly ({how}):\n{tail}"
_NO_OUTPUT = "It printed nothing: does your code call os._exit() or kill its own process, or crash Python?"
_INTERRUPTED = "Not graded: {interruption}"
_STOPPED_EARLY = ("Not graded: the grading session of chapter {chapter} ended before this exercise's tests all "
                  "ran (does your code stop pytest's session, e.g. `session.shouldstop`?).")
_STOPPED_BY_USER = "Not graded: the grading was stopped (Ctrl+C) before this exercise's tests all ran."
_PHASE_ORDER = {Phase.COLLECT: 0, Phase.SETUP: 1, Phase.CALL: 2, Phase.TEARDOWN: 3}


@dataclass
class ChapterRun:
    """What one chapter's grading process did, as the grader saw it."""

    chapter: Chapter
    log: Log = field(default_factory=Log)
    timed_out: bool = False
    #: the process was stopped because the learner pressed Ctrl+C
    stopped: bool = False
    returncode: int = 0
    #: the end of what the process printed (stderr, then stdout)
    output: str = ""
    seconds: float = 0.0
    #: set when a server the chapter needs is unavailable; the chapter's tests then do not count
    environment: str = ""
    #: the wall-clock budget the process had
    budget: float = 60.0
    #: the exercises this process graded
    selected: tuple[str, ...] = ()

    def chapter_exercises(self) -> list[Exercise]:
        return catalog.load().in_chapter(self.chapter.id)

    @property
    def ended_normally(self) -> bool:
        end = self.log.end
        return (end is not None and not end.interruption and end.exitstatus in (0, 1)
                and self.returncode == end.exitstatus and not self.timed_out and not self.stopped)


def exercise_results(exercises: list[Exercise], runs: dict[str, ChapterRun]) -> list[ExerciseResult]:
    """The result of each exercise, from the chapter process that graded it (`runs`: exercise id -> run)."""
    cache: dict[str, ExerciseResult] = {}

    def result_of(exercise: Exercise) -> ExerciseResult | None:
        """None for an exercise this run did not grade (`grade 04.3` alone grades no 04.1)."""
        if exercise.id not in runs:
            return None
        if exercise.id not in cache:
            cache[exercise.id] = _result(exercise, runs[exercise.id], result_of)
        return cache[exercise.id]

    return [r for r in map(result_of, exercises) if r is not None]


def unfinished_tests(log: Log) -> dict[str, str]:
    """Tests that began but never reached their teardown: nodeid -> exercise id."""
    ended = {r.nodeid for r in log.records if r.phase is Phase.TEARDOWN}
    began = [(s.nodeid, s.exercise) for s in log.started]
    began += [(r.nodeid, r.exercise) for r in log.records if r.phase is Phase.SETUP]
    return {nodeid: exercise for nodeid, exercise in began if nodeid not in ended}


def unfinished_exercises(run: ChapterRun) -> set[str]:
    """The exercises of `run` that were not graded to their end."""
    return {e.id for e in run.chapter_exercises() if e.id in run.selected and _unfinished(e, run)}


class MissedBugs(str):
    """A test-kind exercise's message that lists the bugs its tests missed: shown whole."""


def _result(exercise: Exercise, run: ChapterRun,
            result_of: Callable[[Exercise], ExerciseResult | None]) -> ExerciseResult:
    def make(status: Status, message: str = "", environment: bool = False) -> ExerciseResult:
        if isinstance(message, MissedBugs):  # the learner's to-do list: every line of it, never cut
            return ExerciseResult(exercise, status, str(message), whole=True)
        return ExerciseResult(exercise, status, truncate(message, exercise), environment=environment)

    if run.environment:
        return make(Status.ERROR, ENVIRONMENT_PREFIX + run.environment, environment=True)
    records = run.log.of(exercise.id)
    failures = _in_written_order(r for r in records if r.failed)
    environment = [r for r in failures if r.kind is Kind.ENVIRONMENT]
    if environment:
        return make(Status.ERROR, ENVIRONMENT_PREFIX + environment[0].message, environment=True)
    unfinished = _unfinished(exercise, run)
    if unfinished:
        return _not_graded(exercise, run, make)
    if not records:
        return make(Status.ERROR, _NO_TEST_RAN)
    for kind, status in ((Kind.IMPORT, Status.ERROR), (Kind.TIMEOUT, Status.TIMEOUT)):
        found = [r for r in failures if r.kind is kind]
        if found:
            return make(status, found[0].message)
    checks = [r for r in records if r.role is Role.CHECK]
    if exercise.kind == "test" and not any(r.failed for r in checks):
        status, message = _mutation_verdict(exercise, records, result_of)
        return make(status, message)
    status, message = _checks_verdict(checks)
    return make(status, message)


def _in_written_order(records: object) -> list[Record]:
    return sorted(records, key=lambda r: (r.order, r.nodeid, _PHASE_ORDER[r.phase]))  # type: ignore[attr-defined]


def _unfinished(exercise: Exercise, run: ChapterRun) -> bool:
    """Whether some planned test of the exercise never reached its teardown (or nothing was planned in a broken run)."""
    planned = {p.nodeid for p in run.log.planned_for(exercise.id)}
    finished = {r.nodeid for r in run.log.of(exercise.id) if r.phase is Phase.TEARDOWN}
    if planned - finished:
        return True
    collected = any(r.phase is Phase.COLLECT for r in run.log.of(exercise.id))
    return not planned and not collected and not run.ended_normally


def _not_graded(exercise: Exercise, run: ChapterRun, make: Callable[..., ExerciseResult]) -> ExerciseResult:
    chapter = exercise.chapter
    running = [nodeid.split("::")[-1].split("[")[0] for nodeid in unfinished_tests(run.log)]
    during = f", during {running[0]}" if running else ""
    if run.timed_out:
        return make(Status.TIMEOUT, _CHAPTER_TIMEOUT.format(chapter=chapter.id, budget=run.budget, stem=chapter.stem,
                                                             during=during))
    if run.stopped:
        return make(Status.ERROR, _STOPPED_BY_USER)
    end = run.log.end
    if end is not None and end.interruption:
        return make(Status.ERROR, _INTERRUPTED.format(interruption=end.interruption, chapter=chapter.id))
    if end is not None and run.returncode == end.exitstatus and end.exitstatus in (0, 1):
        return make(Status.ERROR, _STOPPED_EARLY.format(chapter=chapter.id))
    how = _how_it_ended(run.returncode) + during
    return make(Status.ERROR, _CRASHED.format(chapter=chapter.id, how=how, tail=_meaningful_tail(run.output)))


def _meaningful_tail(output: str) -> str:
    """The last lines the process printed, without pytest's progress marks; a hint when there are none."""
    progress = re.compile(r"^[.FEsxX]*\s*(\[\s*\d+%\])?$")
    lines = [line for line in output.strip().splitlines() if line.strip() and not progress.match(line.strip())]
    return "\n".join(lines[-8:]) or _NO_OUTPUT


def _how_it_ended(returncode: int) -> str:
    import signal

    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number:
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            pass
    return f"exit code {returncode}"


def _checks_verdict(records: list[Record]) -> tuple[Status, str]:
    """Implement and fixture exercises (and a test-kind exercise's own checks): the hidden tests decide."""
    failures = _in_written_order(r for r in records if r.failed)
    if failures and all(r.kind is Kind.NOT_IMPLEMENTED for r in failures):
        done_something = any(r.outcome is Outcome.PASSED and r.phase is Phase.CALL and not r.summary for r in records)
        return (Status.FAILED, "Partly done: " + failures[0].message) if done_something else (Status.NOT_STARTED, NOT_STARTED)
    if failures:
        real = [r for r in failures if r.kind not in (Kind.NOT_IMPLEMENTED, Kind.FOLLOW_ON)]
        return Status.FAILED, (real or failures)[0].message
    return Status.PASSED, ""


def _mutation_verdict(exercise: Exercise, records: list[Record],
                      result_of: Callable[[Exercise], ExerciseResult | None]) -> tuple[Status, str]:
    """A `test`-kind exercise: the learner's tests pass on the correct code and catch every listed bug."""
    reference = [r for r in records if r.role is Role.REFERENCE]
    tests = sorted({r.test_name: r.order for r in reference}.items(), key=lambda item: item[1])
    on_reference = {name: [r for r in reference if r.test_name == name] for name, _ in tests}
    failing = _in_written_order(r for r in reference if r.failed)

    for record in failing[:1]:
        results = {other.id: result_of(other) for other in _exercises_named(exercise, record.uses)}
        blocking = [other for other in _exercises_named(exercise, record.uses)
                    if results[other.id] is None or results[other.id].status is not Status.PASSED]
        if blocking:
            other = blocking[0]
            fixture = next((n for n in other.names if n), other.id)
            if results[other.id] is None:
                return Status.FAILED, (f"{record.test_name} fails against the correct {exercise.subject}, and it uses "
                                       f"your `{fixture}` fixture from exercise {other.id}, which this run did not "
                                       f"grade: grade both (`python3 -m workbook grade {other.id} {exercise.id}`) "
                                       f"to see whether {other.id} passes first.")
            return Status.FAILED, (f"{record.test_name} uses your `{fixture}` fixture from exercise {other.id}, which "
                                   f"does not pass yet: finish {other.id} first, then grade this one again.")
    if any(r.kind is Kind.NOT_IMPLEMENTED for r in failing):
        if all(r.kind is Kind.NOT_IMPLEMENTED for r in failing) and not any(
                r.outcome is Outcome.PASSED and r.phase is Phase.CALL for r in reference):
            return Status.NOT_STARTED, NOT_STARTED
        first = next(r for r in failing if r.kind is Kind.NOT_IMPLEMENTED)
        return Status.FAILED, "Partly done: " + first.message
    if failing:
        first = failing[0]
        if first.phase is Phase.TEARDOWN:
            return Status.FAILED, f"{first.test_name} passes against the correct {exercise.subject}, but {first.message}"
        return Status.FAILED, (f"{first.test_name} fails against the correct {exercise.subject}, so it cannot tell "
                               f"right from wrong: {first.message}")

    skipped = [name for name, phases in on_reference.items() if any(r.outcome is Outcome.SKIPPED for r in phases)]
    counted = [name for name, phases in on_reference.items()
               if name not in skipped and any(r.phase is Phase.CALL and r.outcome is Outcome.PASSED for r in phases)]
    skip_note = (f"Skipped tests check nothing, so they score nothing: {', '.join(skipped)} "
                 f"{'is' if len(skipped) == 1 else 'are'} skipped (`@pytest.mark.skip`, `skipif` or `pytest.skip()`); "
                 "remove the skip.") if skipped else ""
    if not counted:
        return Status.FAILED, skip_note or "None of your tests ran to its end against the correct code."
    survivors = []
    for mutant in exercise.mutants:
        caught = any(r.role is Role.MUTANT and r.mutant == mutant.id and r.failed and r.test_name in counted
                     for r in records)
        if not caught:
            survivors.append(mutant.description)
    if survivors:
        bullets = "\n".join(f"  - {s}" for s in survivors)
        message = (f"Your tests pass against the correct {exercise.subject}, but they also pass when it has these bugs:\n"
                   f"{bullets}\nAdd assertions that would notice them.")
        return Status.FAILED, MissedBugs(message + (f"\n{skip_note}" if skip_note else ""))
    return Status.PASSED, ""


def _exercises_named(exercise: Exercise, ids: tuple[str, ...]) -> list[Exercise]:
    chapter = catalog.load().in_chapter(exercise.chapter.id)
    return [e for e in chapter if e.id in ids and e.id != exercise.id]


def summary_lines(results: list[ExerciseResult]) -> list[str]:
    """One line per exercise, for the end of a plain ``pytest tests/`` run."""
    lines = []
    for result in results:
        first = result.message.splitlines()[0] if result.message else ""
        lines.append(f"{result.exercise.id:<7} {result.status.value:<12} {first[:100]}")
    return lines
