"""The grading plugin, inside a chapter's pytest process: it records, it never decides.

For every test phase it writes a typed `Record` (`workbook.grading.records`) with the failure
explained in words (`workbook.grading.diagnose`); the grader (or, in a plain ``pytest tests/``
run, this plugin's terminal summary) turns the records into statuses with
`workbook.grading.verdict`. The state of one run lives on ``config.stash`` under `_RUN`.

It also keeps a learner's mistakes inside the test that made them: standard streams closed or
replaced by a test come back for the next one, and ``KeyboardInterrupt`` / ``pytest.exit()``
in learner code is recorded as what stopped the session.
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from workbook import ROOT, catalog
from workbook.grading import diagnose, frames, handoff, order, space
from workbook.grading.records import End, Item, Kind, Log, Outcome, Phase, Planned, Record, Role, Started, to_line
from workbook.grading.verdict import ChapterRun, exercise_results, summary_lines
from workbook.testing import TARGETS, TargetImportError, current_target, kept_streams, mutation_setup_of

_ORDER = pytest.StashKey[int]()


@dataclass(eq=False)  # registered as a plugin: pluggy needs it hashable
class RunState:
    """Everything one pytest process of the grading keeps between hooks."""

    config: pytest.Config
    file: IO[str] | None = None
    log: Log = field(default_factory=Log)
    servers: handoff.ChapterServers = field(default_factory=handoff.ChapterServers)
    #: the test running now, for an interruption's message
    current: str = ""
    #: nodeid -> exercise id of every collected grading test
    exercises: dict[str, str] = field(default_factory=dict)
    interruption: str = ""
    #: (exercise, learner test) that passed against the reference; (exercise, mutant) one of them caught
    passed_reference: set[tuple[str, str]] = field(default_factory=set)
    caught: set[tuple[str, str]] = field(default_factory=set)
    #: exercises one of whose tests failed against the reference (their mutants need not run)
    failed_reference: set[str] = field(default_factory=set)
    #: (exercise, learner test) -> seconds it took against the reference, every phase
    reference_cost: dict[tuple[str, str], float] = field(default_factory=dict)

    def _learn(self, record: Record) -> None:
        """Which mutants are caught already (a failure counts once its test passed on the reference), what each
        test costs, and which exercises failed against the reference: what the order of `order.run_all` needs."""
        if record.role is Role.REFERENCE:
            key = (record.exercise, record.test_name)
            self.reference_cost[key] = self.reference_cost.get(key, 0.0) + record.duration
            if record.failed:
                self.failed_reference.add(record.exercise)
        if record.role is Role.REFERENCE and record.phase is Phase.CALL and record.outcome is Outcome.PASSED:
            self.passed_reference.add((record.exercise, record.test_name))
        elif (record.role is Role.MUTANT and record.failed and record.kind is not Kind.ENVIRONMENT
              and (record.exercise, record.test_name) in self.passed_reference):
            self.caught.add((record.exercise, record.mutant))

    def add(self, item: Item) -> None:
        if isinstance(item, Record):
            self.log.records.append(item)
            self._learn(item)
        elif isinstance(item, Planned):
            self.log.planned.append(item)
        elif isinstance(item, Started):
            self.log.started.append(item)
        else:
            self.log.end = item
        if self.file is not None:
            self.file.write(to_line(item))
            self.file.flush()  # a run killed later still leaves what it finished

    # Hooks without a `config` argument: this object is registered as a plugin of its own.

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = nodeid
        exercise = self.exercises.get(nodeid)
        if exercise:
            self.add(Started(exercise=exercise, nodeid=nodeid))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Learner code raised KeyboardInterrupt or called pytest.exit(): say so, with its line."""
        error = excinfo.value
        what = ("called `pytest.exit()`" if isinstance(error, pytest.exit.Exception)
                else f"raised `{type(error).__name__}`")
        test = self.current.split("::")[-1].split("[")[0]
        during = f" in {test}" if test else " while the tests were collected"
        self.interruption = (f"your code {what}{frames.where(excinfo)}{during}: that stops pytest itself, not just one "
                             "test. Let the test fail instead (`assert`, `pytest.fail()`, or an ordinary exception).")


_RUN = pytest.StashKey[RunState]()


def state(config: pytest.Config) -> RunState:
    return config.stash[_RUN]


# --- configuration ---------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("workbook", "Async Testing Workbook grading")
    group.addoption("--workbook-results", metavar="PATH", default=None,
                    help="write one JSON line per test phase to PATH (used by `python3 -m workbook grade`)")
    group.addoption("--workbook-target", choices=TARGETS, default=None,
                    help="grade exercises/ (default) or solutions/; same as WORKBOOK_TARGET")
    group.addoption("--workbook-select", metavar="IDS", default=None,
                    help="run only the tests of these exercises (comma-separated ids)")
    group.addoption("--workbook-random-order", metavar="SEED", type=int, default=None,
                    help="run the tests in a random order drawn from SEED (to prove results do not depend on order)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exercise(id, promise=...): the catalog exercise a grading test belongs to, "
                            "and the promises of it that the test checks (see workbook/contract.py)")
    config.addinivalue_line("markers", "workbook_summary: a grading test that runs after the others of its module and "
                            "sums up what they saw (its passing alone is no progress)")
    config.addinivalue_line("markers", "workbook_mutation(setup): a learner's test run against the reference and mutants")
    # The learner's file is imported by the grading module: rewrite its asserts too, so that a
    # failing assert in a learner's test shows the values it compared.
    pytest.register_assert_rewrite(*TARGETS)
    target = config.getoption("--workbook-target", None)
    if target:
        os.environ["WORKBOOK_TARGET"] = target
    current_target()  # a bad WORKBOOK_TARGET is a usage error before anything runs
    # Each coroutine remembers the line that made it (cr_origin): a coroutine used as if it were
    # its result is then told where the `await` is missing. One frame costs next to nothing.
    sys.set_coroutine_origin_tracking_depth(1)
    path = config.getoption("--workbook-results", None)
    config.stash[_RUN] = run = RunState(config, open(path, "a", encoding="utf-8") if path else None)  # noqa: SIM115
    config.pluginmanager.register(run, "workbook-run")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is not None:
        config.pluginmanager.unregister(run)
        if run.file is not None:
            run.file.close()


# --- collection ------------------------------------------------------------------------------

def pytest_exception_interact(node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any], report: Any) -> None:
    """A collection error: the learner's file does not import (or hangs), or a grading module is broken.

    pytest calls this hook for every failed collection with the exception itself (and not for
    skips), so the learner-facing message of `TargetImportError` arrives as it was written.
    """
    if not isinstance(node, pytest.Collector) or call.excinfo is None:
        return
    path = Path(str(node.path))
    chapter = catalog.load().chapter_for_stem(path.stem.removeprefix("test_"))
    if chapter is None or path.parent.resolve() != (ROOT / "tests").resolve():
        return
    error = call.excinfo.value
    if isinstance(error, TargetImportError):
        kind, message = (Kind.TIMEOUT if error.timed_out else Kind.IMPORT), str(error)
    else:
        kind = Kind.IMPORT
        message = f"The grading module tests/{path.name} failed to load: {_last_line(str(report.longrepr))}"
    run = state(node.config)
    for exercise in catalog.load().in_chapter(chapter.id):
        run.add(Record(exercise=exercise.id, nodeid=node.nodeid, phase=Phase.COLLECT, outcome=Outcome.FAILED,
                       kind=kind, message=message))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    # Runs around every other plugin's reordering: `workbook_summary` tests go last, because
    # they look at what the tests before them did.
    yield
    for index, item in enumerate(items):  # as written (and parametrized): before any shuffling below
        item.stash[_ORDER] = index
    wanted = config.getoption("--workbook-select", None)
    if wanted:
        keep = set(wanted.split(","))
        dropped = [item for item in items if _exercise_of(item) not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if _exercise_of(item) in keep]
    seed = config.getoption("--workbook-random-order", None)
    if seed is not None:
        random.Random(seed).shuffle(items)
    order.planned(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    if (session.testsfailed and not session.config.option.continue_on_collection_errors) or \
            session.config.option.collectonly:
        return None  # pytest's own loop says what it says then
    run = state(session.config)

    def cost(item: pytest.Item) -> float:
        return run.reference_cost.get((_exercise_of(item) or "", item.nodeid.split("::")[-1].split("[")[0]), 0.0)

    order.run_all(session, cost)
    return True


def pytest_collection_finish(session: pytest.Session) -> None:
    run = state(session.config)
    for item in session.items:
        exercise = _exercise_of(item)
        if exercise is not None:
            run.exercises[item.nodeid] = exercise
            run.add(Planned(exercise=exercise, nodeid=item.nodeid, role=_variant_of(item).role))
    # The grader resolves the servers and creates this process's run database while this process
    # starts and collects; take its hand-off here, outside any test's time budget.
    fd = os.environ.pop(handoff.FD_VARIABLE, "")
    if not fd:
        return
    try:
        given = handoff.receive(int(fd))
    except handoff.GraderGone as gone:
        pytest.exit(str(gone), returncode=pytest.ExitCode.USAGE_ERROR)
    if given.problem:  # the grader reports it for every exercise of the chapter
        pytest.exit(given.problem, returncode=pytest.ExitCode.USAGE_ERROR)
    run.servers = handoff.ChapterServers(given)


# --- running: keep a test's stream mistakes inside it ----------------------------------------

#: what `_guarded` noted in the phase that just ran: calls without `await`, then deprecated calls
_NOTED = pytest.StashKey[list[str]]()
#: Redis commands of the phase that just ran that reached outside the run's keys (see space.py)
_OUTSIDE = pytest.StashKey[list[str]]()


def _guarded(item: pytest.Item) -> Iterator[None]:
    """Run one phase with streams learner code cannot close, noting the deprecated APIs it calls.

    The grading tests and solutions run warning-free (CI runs them with `-W error`), so a
    DeprecationWarning in a phase comes from the learner's code, wherever the library says it
    was called from (redis's `close()` called through an exit stack names contextlib).
    """
    space.install()
    space.install_postgres(ROOT / current_target())
    with kept_streams(), warnings.catch_warnings(record=True) as caught:
        # A coroutine called without `await` is dropped, and warns, at the very line of the call:
        # keep that line (as an error, the warning would surface later, nameless, as "unraisable").
        warnings.filterwarnings("always", message=r"coroutine '.*' was never awaited", category=RuntimeWarning)
        try:
            return (yield)
        finally:
            folder = ROOT / current_target()
            said = {id(w): diagnose.warned(w.message, w.category, w.filename, w.lineno, folder, ROOT) for w in caught}
            item.stash[_NOTED] = [words for _, words in sorted(r for r in said.values() if r is not None)]
            item.stash[_OUTSIDE] = space.outside()
            for w in caught:
                if said[id(w)] is None:  # everything else goes on to pytest's own recording
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    variant, exercise = _variant_of(item), _exercise_of(item)
    if variant.role is Role.MUTANT:
        # One caught bug is enough: the verdict asks only whether some test that passes on the
        # reference fails on it. `grade 04 --target solutions`: 14.4 s -> 8.5 s (2 cores, 3 runs each).
        run = state(item.config)
        if (exercise, variant.mutant) in run.caught:
            pytest.skip("an earlier test caught this bug already")
        if exercise in run.failed_reference:  # the verdict is that failure (see workbook.grading.order)
            pytest.skip("a test of this exercise fails against the correct code")
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    return (yield from _guarded(item))


# --- recording outcomes ----------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    exercise = _exercise_of(item)
    if exercise is None:
        return report
    run = state(item.config)
    variant = _variant_of(item)
    phase = Phase(report.when)
    excinfo = call.excinfo
    # A learner's test is judged by what its body did, not by pytest's xfail bookkeeping (the
    # mutant runs are marked xfail by the grading); skipping and xfail by the learner count as skipped.
    skipped = (excinfo is not None and excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception))) or (
        variant.role is Role.REFERENCE and hasattr(report, "wasxfail"))
    kind, message, uses = Kind.OK, "", ()
    if skipped and variant.role is not Role.CHECK:
        outcome = Outcome.SKIPPED
    elif excinfo is not None and not (variant.role is Role.CHECK and report.skipped):
        outcome = Outcome.FAILED
        if variant.role is Role.MUTANT:
            # What a learner's test said about a broken copy is never shown; only a server that is
            # down or full must still not count as "caught".
            kind, message = _server_trouble(item, excinfo, run)
        else:
            kind, message = _explain(item, excinfo, run)
        if variant.role is Role.REFERENCE and not (kind is Kind.NOT_IMPLEMENTED and phase is Phase.CALL):
            # (a test whose own body still raises NotImplementedError is not started, whatever it uses)
            uses = _learner_fixtures_of_other_exercises(item, exercise)
        # (against a mutant, a fixture that fails at teardown has noticed the bug: a catch, not its exercise's fault)
        owner = (_teardown_owner(item, excinfo, exercise)
                 if phase is Phase.TEARDOWN and variant.role is not Role.MUTANT else "")
        if owner:  # a fixture of another exercise failed in its own teardown: it costs that exercise
            run.add(Record(exercise=owner, nodeid=item.nodeid, phase=phase, outcome=outcome, kind=kind,
                           message=message, order=item.stash.get(_ORDER, -1)))
            outcome, kind, message = Outcome.PASSED, Kind.OK, ""
    else:
        outcome = Outcome(report.outcome) if report.outcome in ("passed", "failed") else Outcome.SKIPPED
    noted = item.stash.get(_NOTED, [])
    if noted and variant.role is not Role.MUTANT and kind in (Kind.OK, Kind.ASSERTION) and not skipped:
        # the missing `await` (or the deprecated call) is the cause; an assert that then fails is its symptom
        outcome, kind, message = Outcome.FAILED, Kind.ASSERTION, noted[0]
    outside = item.stash.get(_OUTSIDE, [])
    if outside and variant.role is not Role.MUTANT:
        # refused, whatever the learner's code then did with the error (a run against a mutant keeps
        # its own outcome, as the branch above: what a test says of a broken copy is never shown)
        outcome, kind, message = Outcome.FAILED, Kind.ASSERTION, outside[0]
    item.stash[_NOTED] = item.stash[_OUTSIDE] = []
    run.add(Record(exercise=exercise, nodeid=item.nodeid, phase=phase, outcome=outcome, kind=kind, message=message,
                   role=variant.role, mutant=variant.mutant, order=item.stash.get(_ORDER, -1), uses=uses,
                   summary=item.get_closest_marker("workbook_summary") is not None, duration=round(report.duration, 6)))
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = state(session.config)
    run.add(End(exitstatus=int(session.exitstatus), interruption=run.interruption))
    if run.file is None and run.log.records:
        # A plain `pytest tests/` run is a grading run too: it fails when an exercise does not pass.
        results = _results(run)
        if session.exitstatus == 0 and any(r.status.value != "passed" for r in results):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is None or run.file is not None or not run.log.records:
        return
    terminalreporter.section(f"workbook: grading {current_target()}/")
    for line in summary_lines(_results(run)):
        terminalreporter.write_line(line)


def _results(run: RunState) -> list[Any]:
    """The verdicts of a plain pytest run: every exercise it collected, from the records so far."""
    cat = catalog.load()
    ids = sorted({r.exercise for r in run.log.records} | {p.exercise for p in run.log.planned})
    exercises = [cat.exercise(i) for i in ids]
    exitstatus = run.log.end.exitstatus if run.log.end else 0
    runs = {e.id: ChapterRun(chapter=e.chapter, log=run.log, returncode=exitstatus, selected=tuple(ids))
            for e in exercises}
    return exercise_results(exercises, runs)


# --- helpers -----------------------------------------------------------------------------------

def _exercise_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("exercise")
    return str(marker.args[0]) if marker and marker.args else None


def _promise_of(item: pytest.Item) -> str:
    """What the first promise a hidden check names says (workbook/contract.py), or ""."""
    marker = item.get_closest_marker("exercise")
    named = marker.kwargs.get("promise", ()) if marker and marker.args else ()
    named = (named,) if isinstance(named, str) else tuple(named)
    exercise = catalog.load().exercise(str(marker.args[0])) if named else None
    promise = exercise.promise(named[0]) if exercise else None
    return promise.says if promise else ""


_variant_of = order.variant_of


def _chapter_of(item: pytest.Item) -> catalog.Chapter | None:
    return catalog.load().chapter_for_stem(item.path.stem.removeprefix("test_"))


def _explain(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], run: RunState) -> tuple[Kind, str]:
    chapter = _chapter_of(item)
    declared = chapter.services if chapter else ()
    where = frames.where(excinfo)
    if "Timeout (>" in excinfo.exconly() and not where:
        where = frames.where_tasks_wait()
    failure = diagnose.Failure(
        error=excinfo.value, text=excinfo.exconly(), where=where, test=item.name.split("[")[0],
        learner_file=f"{current_target()}/{chapter.stem if chapter else item.path.stem}.py",
        timeout=str(item.config.getini("timeout") or "?"), promise=_promise_of(item))
    servers, down = _servers_for(declared, excinfo, run)
    return diagnose.classify(failure, servers, down)


def _server_trouble(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], run: RunState) -> tuple[Kind, str]:
    """(ENVIRONMENT, message) when a server the chapter uses is down or full, else (OK, "")."""
    chapter = _chapter_of(item)
    servers, down = _servers_for(chapter.services if chapter else (), excinfo, run)
    message = diagnose.environment_problem(excinfo.value, servers, down) if servers else ""
    return (Kind.ENVIRONMENT, message) if message else (Kind.OK, "")


def _servers_for(declared: tuple[str, ...], excinfo: pytest.ExceptionInfo[BaseException],
                 run: RunState) -> tuple[dict[str, diagnose.Server], set[str]]:
    """The chapter's own servers in use, and which of them do not answer: probed only when the
    failure could be theirs, and never a server this process was not given or did not resolve."""
    if not declared or not diagnose.may_be_server_trouble(excinfo.value):
        return {}, set()
    return run.servers.in_use(declared), run.servers.down(declared)


def _learner_fixtures_of_other_exercises(item: pytest.Item, exercise_id: str) -> tuple[str, ...]:
    """Fixture exercises of this chapter whose learner-written fixture this test uses."""
    setup = mutation_setup_of(item)
    if setup is None or _still_a_stub(getattr(item, "function", None)):
        return ()  # a test still to be written is "not started", whatever its fixtures do
    used = set(getattr(item, "fixturenames", ()))
    found = []
    for other in catalog.load().in_chapter(setup.exercise.chapter.id):
        if other.id == exercise_id or other.kind != "fixture":
            continue
        # The learner's own fixture, not a grader's of the same name that replaces it in the module.
        if any(name in used and getattr(item.module, name, None) is getattr(setup.module, name, object())
               for name in other.names):
            found.append(other.id)
    return tuple(found)


def _still_a_stub(function: Any) -> bool:
    import inspect

    try:
        return "raise NotImplementedError" in inspect.getsource(function)
    except (OSError, TypeError):
        return False


def _teardown_owner(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], exercise_id: str) -> str:
    """The other exercise whose learner fixture raised in this teardown (a wider-scoped fixture ends here)."""
    chapter = _chapter_of(item)
    found = frames.learner_frames(excinfo)
    if chapter is None or not found:
        return ""
    function = found[-1][2]
    return next((other.id for other in catalog.load().in_chapter(chapter.id)
                 if other.id != exercise_id and other.kind == "fixture" and function in other.names), "")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text
