"""What the grading tests in ``tests/`` import: loading the learner's file, and mutation suites.

A grading module starts like this::

    from workbook.testing import load_target, load_reference, learner_fixtures, mutation_suite

    ex = load_target("02_async_fixtures")        # exercises/ or solutions/, per WORKBOOK_TARGET
    ref = load_reference("02_async_fixtures")    # always solutions/
    globals().update(learner_fixtures(ex))       # the learner's fixtures become usable here

A file that does not import, or hangs while importing, fails only the collection of
its own grading module; `LOAD_FAILURES` lets the plugin report it with file and line.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from workbook import ROOT, catalog
from workbook.grading import KIND_KILLED, KIND_NOT_IMPLEMENTED

TARGETS = ("exercises", "solutions")
#: Seconds a learner's file may take to import before it is stopped (README, "Time budgets").
IMPORT_BUDGET = int(os.environ.get("WORKBOOK_IMPORT_BUDGET", "10"))

_BAD_TARGET = "WORKBOOK_TARGET must be one of {targets}, not {value!r}."


class TargetImportError(Exception):
    """The learner's file could not be imported; str() names the file and line."""


class TargetImportTimeout(TargetImportError):
    """The learner's file did not finish importing within IMPORT_BUDGET seconds."""


@dataclass(frozen=True)
class LoadFailure:
    kind: str  # "import" or "timeout"
    message: str


#: stem -> why its target file failed to load (read by the plugin's collection report).
LOAD_FAILURES: dict[str, LoadFailure] = {}
#: exercise id -> how to swap in the reference or a mutant (read by the `workbook_variant` fixture).
MUTATION_SETUPS: dict[str, MutationSetup] = {}


def current_target() -> str:
    target = os.environ.get("WORKBOOK_TARGET", "exercises").strip() or "exercises"
    if target not in TARGETS:
        raise pytest.UsageError(_BAD_TARGET.format(targets=" or ".join(TARGETS), value=target))
    return target


def load_target(stem: str) -> ModuleType:
    """Import ``<target>/<stem>.py`` (target from WORKBOOK_TARGET), with a watchdog on the import."""
    return _load(current_target(), stem)


def load_reference(stem: str) -> ModuleType:
    """Import the reference solution ``solutions/<stem>.py``."""
    return _load("solutions", stem)


def _load(folder: str, stem: str) -> ModuleType:
    name = f"{folder}.{stem}"
    if name in sys.modules:
        return sys.modules[name]
    path = ROOT / folder / f"{stem}.py"
    shown = path.relative_to(ROOT).as_posix()
    writes_bytecode = sys.dont_write_bytecode
    # Never cache a learner's compiled file: two saves within one second with the same size
    # would otherwise be graded from the stale cache.
    sys.dont_write_bytecode = True
    try:
        with _watchdog(IMPORT_BUDGET):
            return importlib.import_module(name)
    except _ImportTookTooLong:
        sys.modules.pop(name, None)
        line = _line_in(path, traceback.extract_tb(sys.exc_info()[2]))
        failure = LoadFailure(
            "timeout",
            f"{shown}{line}: importing the file did not finish within {IMPORT_BUDGET} s. Is there an endless "
            "loop, a blocking call or an `asyncio.run(...)` at the top level of the file? Put it inside a function.",
        )
        LOAD_FAILURES[stem] = failure
        raise TargetImportTimeout(failure.message) from None
    except SyntaxError as error:
        sys.modules.pop(name, None)
        failure = LoadFailure("import", f"{shown}, line {error.lineno}: SyntaxError: {error.msg}. Fix it and grade again.")
        LOAD_FAILURES[stem] = failure
        raise TargetImportError(failure.message) from None
    except (Exception, SystemExit) as error:  # anything a learner's file raises while importing
        sys.modules.pop(name, None)
        line = _line_in(path, traceback.extract_tb(error.__traceback__))
        if not path.exists():
            message = (f"{shown} is missing. Restore it (`git checkout -- {shown}`), or regenerate a fresh stub "
                       "with `python -m workbook dev stubs` (that overwrites every exercise file).")
        elif isinstance(error, SystemExit):
            message = (f"{shown}{line}: the file calls sys.exit() (or exit()) while importing: remove that call, "
                       "or put it under `if __name__ == \"__main__\":`.")
        else:
            message = f"{shown}{line}: the file does not import: {type(error).__name__}: {error}. Fix it and grade again."
        failure = LoadFailure("import", message)
        LOAD_FAILURES[stem] = failure
        raise TargetImportError(failure.message) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode


def _line_in(path: Path, frames: traceback.StackSummary) -> str:
    lines = [f.lineno for f in frames if Path(f.filename).resolve() == path.resolve()]
    return f", line {lines[-1]}" if lines else ""


class _ImportTookTooLong(BaseException):
    """Raised by the watchdog's alarm; a BaseException so `except Exception` in a learner file cannot eat it."""


@contextlib.contextmanager
def _watchdog(seconds: int) -> Iterator[None]:
    """Interrupt the block after `seconds` (POSIX main thread only; elsewhere the grader's process limit applies)."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _ring(_signum: int, _frame: object) -> None:
        raise _ImportTookTooLong()

    previous = signal.signal(signal.SIGALRM, _ring)
    remaining = signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.alarm(remaining)


def require(condition: object, rule: str) -> None:
    """Fail the grading test with just the rule in words, when `condition` is false.

    The report shows the message to the learner; a traceback of the grading test would only be noise.
    """
    if not condition:
        pytest.fail(rule, pytrace=False)


async def fixture_steps(fixture: Any, name: str, *args: Any) -> Any:
    """Run a learner's async yield fixture by hand, outside pytest's fixture machinery.

    Returns its async generator: ``value = await anext(steps)`` runs the set-up, the next
    ``anext`` the teardown (then StopAsyncIteration). Use it to look at the very moment a
    teardown ends. An untouched stub's NotImplementedError propagates (so it reads as not started).
    """
    import inspect

    body = getattr(fixture, "__wrapped__", None)
    require(body is not None, f"`{name}` must be a fixture: decorate it with @pytest_asyncio.fixture")
    steps = body(*args)
    if inspect.iscoroutine(steps):
        await steps  # a stub: `raise NotImplementedError` in a plain `async def`
    require(inspect.isasyncgen(steps), f"`{name}` must be an async generator fixture: `yield` the value, "
                                       "then clean up after the yield")
    return steps


def learner_fixtures(module: ModuleType) -> dict[str, Any]:
    """The pytest fixtures the learner's module defines, to put into a grading module's namespace."""
    from _pytest.fixtures import getfixturemarker  # stable helper; no public equivalent

    found = {}
    for name, value in vars(module).items():
        with contextlib.suppress(Exception):
            if getfixturemarker(value) is not None:
                found[name] = value
    return found


@dataclass
class MutationSetup:
    exercise: catalog.Exercise
    module: ModuleType
    #: "reference" or "mutant:<id>" -> the object to put in place of the subject.
    variants: dict[str, Any]
    #: names of the learner's tests found for this exercise
    learner_tests: tuple[str, ...]
    #: the module that defines the reference (its globals are what mutants built on it see)
    reference_module: ModuleType | None = None
    #: name -> the learner module's object, put into `reference_module` while a variant runs
    shared: dict[str, Any] = field(default_factory=dict)


def mutation_suite(module: ModuleType, exercise_id: str, *, reference: Any, mutants: dict[str, Any],
                   shared: tuple[str, ...] = ()) -> dict[str, Any]:
    """Grade a `test`-kind exercise by mutation; put the result into the grading module's globals().

    Every learner test named ``<test_prefix>*`` runs once against `reference` (it must pass)
    and once against each mutant (marked xfail: a failure there means the bug was caught).
    A final summary test fails, naming each bug in plain words, if some mutant survived
    every learner test. `mutants` maps the catalog's mutant ids to the broken versions.
    `shared` names objects (typically exception classes) that the reference's module should take
    from the learner's module while the tests run, so `pytest.raises(ex.SomeError)` matches.
    """
    exercise = catalog.load().exercise(exercise_id)
    assert exercise.kind == "test" and exercise.test_prefix and exercise.subject, f"{exercise_id} is not a test-kind exercise"
    listed = {m.id for m in exercise.mutants}
    if set(mutants) != listed:
        raise ValueError(f"{exercise_id}: the grading module's mutants {sorted(mutants)} differ from the catalog's {sorted(listed)}")

    tests = {
        name: value
        for name, value in vars(module).items()
        if name.startswith(exercise.test_prefix) and callable(value)
    }
    params = [pytest.param("reference", id="reference")] + [
        pytest.param(f"mutant:{mutant_id}", id=f"mutant-{mutant_id}",
                     marks=pytest.mark.xfail(reason="a failure here means your tests caught this bug", strict=False))
        for mutant_id in mutants
    ]
    MUTATION_SETUPS[exercise_id] = MutationSetup(
        exercise=exercise,
        module=module,
        variants={"reference": reference, **{f"mutant:{k}": v for k, v in mutants.items()}},
        learner_tests=tuple(tests),
        reference_module=sys.modules.get(getattr(reference, "__module__", "")),
        shared={name: getattr(module, name) for name in shared if hasattr(module, name)},
    )
    module_marks = getattr(module, "pytestmark", [])
    module_marks = module_marks if isinstance(module_marks, list) else [module_marks]
    suite: dict[str, Any] = {}
    for name, function in tests.items():
        for mark in module_marks:  # a learner's `pytestmark = pytest.mark.asyncio` must still apply here
            function = mark(function)
        function = pytest.mark.parametrize("workbook_variant", params, indirect=True)(function)
        function = pytest.mark.usefixtures("workbook_variant")(function)
        suite[name] = pytest.mark.exercise(exercise_id)(function)
    suite[f"test_{exercise_id.replace('.', '_')}_your_tests_catch_every_listed_bug"] = _summary_test(exercise_id)
    return suite


def _summary_test(exercise_id: str) -> Callable[..., None]:
    @pytest.mark.exercise(exercise_id)
    @pytest.mark.workbook_summary
    def test_summary(request: pytest.FixtureRequest) -> None:
        from workbook.pytest_plugin import records_of

        setup = MUTATION_SETUPS[exercise_id]
        exercise = setup.exercise
        where = f"exercises/{exercise.chapter.stem}.py"
        if not setup.learner_tests:
            lookalikes = _lookalike_tests(setup)
            if lookalikes:
                pytest.fail(f"No tests named {exercise.test_prefix}... in {where}, but it defines "
                            f"{', '.join(f'`{n}`' for n in lookalikes)}: the grading runs only the tests whose names "
                            f"start with `{exercise.test_prefix}`, so rename them.", pytrace=False)
            raise NotImplementedError(f"No tests yet: write test functions named {exercise.test_prefix}... in {where}.")
        records = [r for r in records_of(request.config, exercise_id) if r.variant]
        reference = sorted((r for r in records if r.variant == "reference" and r.failed), key=lambda r: r.order)
        if reference:
            name = reference[0].nodeid.split("::")[-1].split("[")[0]
            depends = _unfinished_fixture(request, reference[0].nodeid, exercise)
            if depends:
                fixture, other = depends
                pytest.fail(f"{name} uses your `{fixture}` fixture from exercise {other}, which does not pass yet: "
                            f"finish {other} first, then grade this one again.", pytrace=False)
        if any(r.kind == KIND_NOT_IMPLEMENTED for r in reference):
            raise NotImplementedError("Your tests still raise NotImplementedError.")
        if reference and reference[0].when == "teardown":
            pytest.fail(f"{name} passes against the correct {exercise.subject}, but {reference[0].message}",
                        pytrace=False)
        if reference:
            pytest.fail(f"{name} fails against the correct {exercise.subject}, so it cannot tell right from wrong: "
                        f"{reference[0].message}", pytrace=False)
        survivors = []
        for mutant in exercise.mutants:
            runs = [r for r in records if r.variant == f"mutant:{mutant.id}" and r.when == "call"]
            caught = any(r.kind == KIND_KILLED for r in records if r.variant == f"mutant:{mutant.id}")
            if runs and not caught:
                survivors.append(mutant.description)
        if survivors:
            bullet = "\n".join(f"  - {s}" for s in survivors)
            pytest.fail(
                f"Your tests pass against the correct {exercise.subject}, but they also pass when it has these bugs:\n"
                f"{bullet}\nAdd assertions that would notice them.",
                pytrace=False,
            )

    test_summary.__name__ = f"test_{exercise_id.replace('.', '_')}_your_tests_catch_every_listed_bug"
    return test_summary


def _lookalike_tests(setup: MutationSetup) -> list[str]:
    """Functions of the learner's that look like this exercise's tests under another name (a typo)."""
    import difflib
    import inspect

    prefix = setup.exercise.test_prefix or ""
    others = {e.test_prefix for e in catalog.load().in_chapter(setup.exercise.chapter.id) if e.test_prefix}
    given = set(vars(setup.reference_module)) if setup.reference_module else set()
    found = []
    for name, value in vars(setup.module).items():
        if (not inspect.isfunction(value) or value.__module__ != setup.module.__name__ or name in given
                or name.startswith("_") or any(name.startswith(p) for p in others)):
            continue
        close = difflib.SequenceMatcher(None, name[:len(prefix)], prefix).ratio() >= 0.7
        if close or "test" in name.lower():
            found.append(name)
    return found


def _unfinished_fixture(request: pytest.FixtureRequest, nodeid: str,
                        exercise: catalog.Exercise) -> tuple[str, str] | None:
    """(fixture, exercise id) if the test `nodeid` uses a learner fixture of another exercise that does not pass."""
    from workbook.grading import verdict
    from workbook.pytest_plugin import records_of
    from workbook.report import Status

    import inspect

    item = next((i for i in request.session.items if i.nodeid == nodeid), None)
    test = getattr(MUTATION_SETUPS[exercise.id].module, nodeid.split("::")[-1].split("[")[0], None)
    if item is None or test is None or "raise NotImplementedError" in inspect.getsource(test):
        return None  # a test still to be written is "not started", whatever its fixtures do
    learner_module = MUTATION_SETUPS[exercise.id].module.__name__
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for other in catalog.load().in_chapter(exercise.chapter.id):
        if other.id == exercise.id or other.kind != "fixture":
            continue
        for fixture in other.names:
            used = definitions.get(fixture, ())
            # The learner's own fixture, not a grader's of the same name that overrides it.
            theirs = bool(used) and getattr(used[-1].func, "__module__", "") == learner_module
            if theirs and verdict(records_of(request.config, other.id)).status is not Status.PASSED:
                return fixture, other.id
    return None
