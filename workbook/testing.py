"""What the grading tests in ``tests/`` import: loading the learner's file, and mutation suites.

A grading module starts like this::

    from workbook.testing import load_target, load_reference, learner_fixtures, mutation_suite

    ex = load_target("02_async_fixtures")        # exercises/ or solutions/, per WORKBOOK_TARGET
    ref = load_reference("02_async_fixtures")    # always solutions/
    globals().update(learner_fixtures(ex))       # the learner's fixtures become usable here

A file that does not import, or hangs while importing, fails only the collection of its
own grading module, with a `TargetImportError` whose message names the file and line.
Nothing here keeps state between runs: a mutation suite travels on its tests' markers.
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
from workbook.grading.records import Role

TARGETS = ("exercises", "solutions")
#: Seconds a learner's file may take to import before it is stopped (README, "Time budgets").
IMPORT_BUDGET = int(os.environ.get("WORKBOOK_IMPORT_BUDGET", "10"))

_BAD_TARGET = "WORKBOOK_TARGET must be one of {targets}, not {value!r}."


class TargetImportError(pytest.Collector.CollectError):
    """The learner's file could not be imported (or hung): str() names the file and line.

    A `CollectError`, so pytest reports it as the collection error of the grading module
    with exactly this message.
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


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
        with _watchdog(IMPORT_BUDGET), kept_streams():
            return importlib.import_module(name)
    except _ImportTookTooLong:
        sys.modules.pop(name, None)
        frames = traceback.extract_tb(sys.exc_info()[2])
        top, inner = _line_in(path, frames, outermost=True), _line_in(path, frames)
        running = f" (it was running{inner.replace(',', '', 1)} when it was stopped)" if inner != top else ""
        raise TargetImportError(
            f"{shown}{top}: importing the file did not finish within {IMPORT_BUDGET} s{running}. Code at the top level "
            "of the file runs as soon as it is imported: an endless loop, a blocking call or an `asyncio.run(...)` "
            "there never lets the grading start. Move it into a function (or under `if __name__ == \"__main__\":`).",
            timed_out=True) from None
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise TargetImportError(f"{shown}, line {error.lineno}: SyntaxError: {error.msg}. Fix it and grade again.") from None
    except BaseException as error:  # anything a learner's file raises while importing, KeyboardInterrupt too
        sys.modules.pop(name, None)
        raise TargetImportError(_import_failure(path, shown, error)) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode


def _import_failure(path: Path, shown: str, error: BaseException) -> str:
    line = _line_in(path, traceback.extract_tb(error.__traceback__))
    if not path.exists():
        return (f"{shown} is missing. Restore it (`git checkout -- {shown}`), or regenerate a fresh stub "
                "with `python3 -m workbook dev stubs` (that overwrites every exercise file).")
    if isinstance(error, SystemExit):
        return (f"{shown}{line}: the file calls sys.exit() (or exit()) while importing: remove that call, "
                "or put it under `if __name__ == \"__main__\":`.")
    if isinstance(error, KeyboardInterrupt | pytest.exit.Exception):
        what = "calls pytest.exit()" if isinstance(error, pytest.exit.Exception) else f"raises {type(error).__name__}"
        return f"{shown}{line}: the file {what} while importing: remove that, it would stop the whole grading."
    return f"{shown}{line}: the file does not import: {type(error).__name__}: {error}. Fix it and grade again."


def _line_in(path: Path, frames: traceback.StackSummary, *, outermost: bool = False) -> str:
    """", line N": the innermost (or the outermost: the top-level statement) of `frames` in `path`."""
    lines = [f.lineno for f in frames if Path(f.filename).resolve() == path.resolve()]
    return f", line {lines[0] if outermost else lines[-1]}" if lines else ""


class _KeptOpen:
    """A standard stream that learner code cannot close for the code that runs after it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def close(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def kept_streams() -> Iterator[None]:
    """Run learner code with sys.stdout/sys.stderr it cannot close, and put the real ones back after.

    A learner's file or test that closes or replaces them would otherwise break pytest's own
    output, and with it every exercise graded after it.
    """
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _KeptOpen(saved[0]), _KeptOpen(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


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


@dataclass(frozen=True)
class Variant:
    """What a learner's test of a `test`-kind exercise runs against (the parameter of `workbook_variant`)."""

    role: Role = Role.CHECK
    #: the catalog id of the mutant, for `Role.MUTANT`
    mutant: str = ""


@dataclass
class MutationSetup:
    exercise: catalog.Exercise
    module: ModuleType
    reference: Any
    #: the catalog's mutant ids -> the broken versions
    mutants: dict[str, Any]
    #: the module that defines the reference (its globals are what mutants built on it see)
    reference_module: ModuleType | None = None
    #: name -> the learner module's object, put into `reference_module` while a variant runs
    shared: dict[str, Any] = field(default_factory=dict)

    def implementation(self, variant: Variant) -> Any:
        return self.reference if variant.role is Role.REFERENCE else self.mutants[variant.mutant]


def mutation_setup_of(item: pytest.Item) -> MutationSetup | None:
    """The mutation suite a learner's test belongs to (carried by its `workbook_mutation` marker)."""
    marker = item.get_closest_marker("workbook_mutation")
    return marker.args[0] if marker and marker.args else None


def mutation_suite(module: ModuleType, exercise_id: str, *, reference: Any, mutants: dict[str, Any],
                   shared: tuple[str, ...] = ()) -> dict[str, Any]:
    """Grade a `test`-kind exercise by mutation; put the result into the grading module's globals().

    Every learner test named ``<test_prefix>*`` runs once against `reference` (it must pass)
    and once against each mutant (marked xfail: a failure there means the bug was caught);
    `workbook.grading.verdict` then names each bug that no test caught. `mutants` maps the
    catalog's mutant ids to the broken versions. `shared` names objects (typically exception
    classes) that the reference's module should take from the learner's module while the tests
    run, so `pytest.raises(ex.SomeError)` matches.
    """
    exercise = catalog.load().exercise(exercise_id)
    assert exercise.kind == "test" and exercise.test_prefix and exercise.subject, f"{exercise_id} is not a test-kind exercise"
    listed = {m.id for m in exercise.mutants}
    if set(mutants) != listed:
        raise ValueError(f"{exercise_id}: the grading module's mutants {sorted(mutants)} differ from the catalog's {sorted(listed)}")

    setup = MutationSetup(
        exercise=exercise, module=module, reference=reference, mutants=dict(mutants),
        reference_module=sys.modules.get(getattr(reference, "__module__", "")),
        shared={name: getattr(module, name) for name in shared if hasattr(module, name)},
    )
    tests = {name: value for name, value in vars(module).items()
             if name.startswith(exercise.test_prefix) and callable(value)}
    if not tests:
        return {f"test_{exercise_id.replace('.', '_')}_has_tests": _no_tests_yet(setup)}
    params = [pytest.param(Variant(Role.REFERENCE), id="reference")] + [
        pytest.param(Variant(Role.MUTANT, mutant_id), id=f"mutant-{mutant_id}",
                     marks=pytest.mark.xfail(reason="a failure here means your tests caught this bug", strict=False))
        for mutant_id in mutants
    ]
    module_marks = getattr(module, "pytestmark", [])
    module_marks = module_marks if isinstance(module_marks, list) else [module_marks]
    suite: dict[str, Any] = {}
    for name, function in tests.items():
        for mark in module_marks:  # a learner's `pytestmark = pytest.mark.asyncio` must still apply here
            function = mark(function)
        function = pytest.mark.parametrize("workbook_variant", params, indirect=True)(function)
        function = pytest.mark.usefixtures("workbook_variant")(function)
        function = pytest.mark.workbook_mutation(setup)(function)
        suite[name] = pytest.mark.exercise(exercise_id)(function)
    return suite


def _no_tests_yet(setup: MutationSetup) -> Callable[[], None]:
    """The one check of a test-kind exercise whose learner wrote no tests (yet)."""
    exercise = setup.exercise

    @pytest.mark.exercise(exercise.id)
    def test_has_tests() -> None:
        where = f"exercises/{exercise.chapter.stem}.py"
        lookalikes = _lookalike_tests(setup)
        if lookalikes:
            pytest.fail(f"No tests named {exercise.test_prefix}... in {where}, but it defines "
                        f"{', '.join(f'`{n}`' for n in lookalikes)}: the grading runs only the tests whose names "
                        f"start with `{exercise.test_prefix}`, so rename them.", pytrace=False)
        raise NotImplementedError(f"No tests yet: write test functions named {exercise.test_prefix}... in {where}.")

    test_has_tests.__name__ = f"test_{exercise.id.replace('.', '_')}_has_tests"
    return test_has_tests


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
