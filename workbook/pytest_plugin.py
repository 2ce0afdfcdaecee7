"""The grading plugin: records each test's outcome per exercise, and provides the servers.

Loaded by ``tests/conftest.py`` (so a plain ``pytest tests/`` is a grading run) and by
the command-line grader with ``-p workbook.pytest_plugin``. It

- classifies every failure (stub untouched, timeout, server down, real failure) and
  writes one JSON line per test phase to ``--workbook-results`` for the grader;
- prints a per-exercise summary at the end of a plain pytest run;
- provides fixtures, all ``workbook_``-prefixed, that create only what they remove:
  a database of the run's own, a Redis key prefix of the run's own, connections to both,
  and ``workbook_after_teardown`` for checks that must run after a learner's fixture cleaned up.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from workbook import ROOT, catalog
from workbook.grading import (
    SESSION_FINISHED,
    KIND_ASSERTION,
    KIND_ENVIRONMENT,
    KIND_FOLLOW_ON,
    KIND_IMPORT,
    KIND_KILLED,
    KIND_NOT_IMPLEMENTED,
    KIND_OK,
    KIND_SURVIVED,
    KIND_TIMEOUT,
    Record,
    verdict,
)
from workbook.testing import LOAD_FAILURES, MUTATION_SETUPS, TARGETS, current_target

_recorder_key = pytest.StashKey["_Recorder"]()
_order_key = pytest.StashKey[int]()

_SERVER_DOWN = (
    "{name} does not answer at {url}: it stopped during the run, or {env_var} points to the wrong place. "
    "Start it again (`docker compose up -d`, or `python -m workbook services start`) or correct {env_var}, "
    "then grade again; `python -m workbook doctor` shows what is wrong."
)


# --- configuration ---------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("workbook", "Async Testing Workbook grading")
    group.addoption("--workbook-results", metavar="PATH", default=None,
                    help="write one JSON line per test phase to PATH (used by `python -m workbook grade`)")
    group.addoption("--workbook-target", choices=TARGETS, default=None,
                    help="grade exercises/ (default) or solutions/; same as WORKBOOK_TARGET")
    group.addoption("--workbook-random-order", metavar="SEED", type=int, default=None,
                    help="run the tests in a random order drawn from SEED (to prove results do not depend on order)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exercise(id): the catalog exercise a grading test belongs to")
    config.addinivalue_line("markers", "workbook_summary: the summary test of a test-kind exercise (runs last)")
    # The learner's file is imported by the grading module: rewrite its asserts too, so that a
    # failing assert in a learner's test shows the values it compared.
    pytest.register_assert_rewrite(*TARGETS)
    target = config.getoption("--workbook-target", None)
    if target:
        os.environ["WORKBOOK_TARGET"] = target
    current_target()  # a bad WORKBOOK_TARGET is a usage error before anything runs
    config.stash[_recorder_key] = recorder = _Recorder(config, config.getoption("--workbook-results", None))
    config.pluginmanager.register(recorder, "workbook-recorder")
    if config.getoption("--workbook-results", None):
        # A grading process: skip the garbage collection pytest runs after the session to find
        # late "exception ignored" reports (~0.02 s). Every result is written by then, and the
        # reports it could find would only be printed, never graded.
        from _pytest.unraisableexception import gc_collect_iterations_key  # no public equivalent

        config.stash[gc_collect_iterations_key] = 0


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_recorder_key, None)
    if recorder is not None:
        config.pluginmanager.unregister(recorder)
        recorder.close()


def records_of(config: pytest.Config, exercise_id: str) -> list[Record]:
    """What has been recorded so far for one exercise in this run."""
    return [r for r in config.stash[_recorder_key].records if r.exercise == exercise_id]


def pytest_collection_finish(session: pytest.Session) -> None:
    # The grader resolves the servers and creates this process's run database while this process
    # starts and collects; wait for that here, outside any test's time budget.
    from workbook import services

    try:
        services.receive_handoff()
    except services.ServiceUnavailable as error:
        pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    # Runs around every other plugin's reordering: summaries go last, because they read the
    # results of the learner tests they summarise.
    yield
    for index, item in enumerate(items):  # as written (and parametrized): before any shuffling below
        item.stash[_order_key] = index
    seed = config.getoption("--workbook-random-order", None)
    if seed is not None:
        import random

        random.Random(seed).shuffle(items)
    items.sort(key=lambda item: item.get_closest_marker("workbook_summary") is not None)


# --- recording outcomes ----------------------------------------------------------------------

class _Recorder:
    """Turns pytest's reports into `Record`s, kept in memory and appended to the results file."""

    def __init__(self, config: pytest.Config, path: str | None) -> None:
        self.config = config
        self.records: list[Record] = []
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def add(self, record: Record) -> None:
        self.records.append(record)
        if self._file is not None:
            self._file.write(record.to_json() + "\n")
            self._file.flush()  # a run killed later still leaves what it finished

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        report: pytest.TestReport = yield
        exercise = _exercise_of(item)
        if exercise is None:
            return report
        variant = _variant_of(item)
        kind, message = KIND_OK, ""
        if variant.startswith("mutant:"):
            # Marked xfail: whatever the learner's test did, pytest counts it as fine.
            if report.when == "call" or (report.when == "setup" and call.excinfo is not None):
                kind = KIND_KILLED if call.excinfo is not None else KIND_SURVIVED
            outcome = "passed"
        elif call.excinfo is not None and report.outcome != "skipped":
            kind, message = _classify(item, call.excinfo)
            outcome = "failed"
        else:
            outcome = report.outcome
        self.add(Record(exercise=exercise, nodeid=item.nodeid, when=report.when, outcome=outcome,
                        kind=kind, message=message, variant=variant, duration=round(report.duration, 6),
                        order=item.stash.get(_order_key, -1)))
        return report

    def pytest_sessionfinish(self) -> None:
        # Tells the grader the process got to its end: records missing after this mean a test was
        # never collected, records missing without it mean the process died (os._exit, a crash).
        self.add(Record(exercise="", nodeid="", when=SESSION_FINISHED, outcome="passed"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not report.failed:
            return
        path = Path(str(report.fspath))
        chapter = catalog.load().chapter_for_stem(path.stem.removeprefix("test_"))
        if chapter is None or path.parent.resolve() != (ROOT / "tests").resolve():
            return
        failure = LOAD_FAILURES.get(chapter.stem)
        if failure is not None:
            kind, message = (KIND_TIMEOUT if failure.kind == "timeout" else KIND_IMPORT), failure.message
        else:
            kind = KIND_IMPORT
            message = f"The grading module tests/{path.name} failed to load: {_last_line(str(report.longrepr))}"
        for exercise in catalog.load().in_chapter(chapter.id):
            self.add(Record(exercise=exercise.id, nodeid=report.nodeid, when="collect", outcome="failed",
                            kind=kind, message=message))


def _exercise_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("exercise")
    return str(marker.args[0]) if marker and marker.args else None


def _variant_of(item: pytest.Item) -> str:
    if item.get_closest_marker("workbook_summary"):
        return "verdict"
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("workbook_variant", "")) if callspec else ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def _classify(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str]:
    error = excinfo.value
    where = _where(excinfo)
    if isinstance(error, NotImplementedError):
        return KIND_NOT_IMPLEMENTED, f"Still raises NotImplementedError{where}."
    text = "\n".join(line for line in excinfo.exconly().strip().splitlines()
                     if line.strip() and not line.strip().startswith("Use -v to get"))
    if "Timeout (>" in text and "from pytest-timeout" in text:
        budget = item.config.getini("timeout") or "?"
        where = where or _where_tasks_wait()
        return KIND_TIMEOUT, (f"Stopped after {budget} s{where}: the test never finished. An await that waits for "
                              "something that never happens, or an endless loop? Wrap waits in `asyncio.timeout()`.")
    if "async def functions are not natively supported" in text:
        return KIND_ASSERTION, (f"{item.name.split('[')[0]} is an `async def` test without `@pytest.mark.asyncio`, so "
                                "pytest cannot run it (the workbook uses pytest-asyncio's strict mode): mark it.")
    environment = _environment_message(error)
    if environment:
        return KIND_ENVIRONMENT, environment
    explained = _explain_common_mistake(item, error, text)
    if explained:
        return explained
    if type(error).__name__ == "Failed":  # pytest.fail(..., pytrace=False) from a grading test
        return KIND_ASSERTION, _plain_names(str(error))
    return KIND_ASSERTION, _plain_names(f"{text}{where}")


def _explain_common_mistake(item: pytest.Item, error: BaseException, text: str) -> tuple[str, str] | None:
    """The learner's likely mistake in words, for errors whose own text would only puzzle them."""
    import re

    stem = f"{current_target()}/{item.path.stem.removeprefix('test_')}.py"
    found = re.search(r"requested an async fixture '(\w+)'", text)
    if found:
        return KIND_ASSERTION, (f"`{found.group(1)}` is an `async def` fixture decorated with `@pytest.fixture`: in strict "
                                "mode an async fixture needs `@pytest_asyncio.fixture` (chapter 01).")
    if "ScopeMismatch" in text and "_scoped_runner" in text:
        fixture = re.findall(r"def (\w+)\(", text.split("Requested fixture")[0])
        name = f"`{fixture[-1]}`" if fixture else "A fixture"
        return KIND_ASSERTION, (f"{name} lives longer than one test (its `scope`), but its event loop does not: give it "
                                "a `loop_scope` as long as its `scope`, e.g. "
                                '`@pytest_asyncio.fixture(scope="module", loop_scope="module")` (chapter 01, loop scopes).')
    if type(error).__name__ == "FixtureLookupError":
        missing = getattr(error, "argname", None) or "?"
        return KIND_ASSERTION, (f"There is no fixture named `{missing}` in {stem} any more (deleted or renamed?). "
                                f"The grading needs it: put it back (`git diff {stem}` shows what changed).")
    unawaited = _never_awaited(error)
    if unawaited:
        return KIND_ASSERTION, (f"`{unawaited}(...)` was called without `await`, so it never ran: put `await` in front "
                                "of the call.")
    if type(error) is AssertionError and not str(error) and _raised_inside_pytest(error):
        # pytest-asyncio's own check, after an earlier test already reported the real cause
        return KIND_FOLLOW_ON, "pytest-asyncio could not set up this test's fixtures (see the first failing test)."
    return None


def _never_awaited(error: BaseException) -> str:
    """The name of a coroutine that was never awaited, from a warning in `error` (or in its group)."""
    import re

    pending = [error]
    while pending:
        current = pending.pop()
        found = re.search(r"coroutine '([\w.]+)' was never awaited", str(current))
        if found:
            return found.group(1)
        pending.extend(getattr(current, "exceptions", ()))
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return ""


def _raised_inside_pytest(error: BaseException) -> bool:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and any(part in frames[-1].filename for part in ("pytest_asyncio", "_pytest"))


def _plain_names(message: str) -> str:
    """Messages name the learner's objects as the learner does, not by the grader's module paths."""
    import re

    message = re.sub(r"module '(exercises|solutions)\.(\w+)' has no attribute '(\w+)'",
                     r"\1/\2.py has no `\3` (renamed or deleted? the grading needs that name)", message)
    message = re.sub(r"<(?:exercises|solutions)\.\d\d_\w+?\.(\w+) object at 0x[0-9a-f]+>", r"<\1 object>", message)
    message = re.sub(r"\b(?:exercises|solutions)\.\d\d_[a-z0-9_]+\.(?=[A-Za-z_])", "", message)
    coroutine = re.search(r"<coroutine object ([\w.]+) at 0x[0-9a-f]+>", message)
    if coroutine:
        message += (f"\nThat is a coroutine object: `{coroutine.group(1)}(...)` was called without `await`, "
                    "so it never ran. Put `await` in front of the call.")
    return message


def _where(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """' (exercises/02_x.py, line 12)': the deepest traceback line in the learner's file, if any."""
    folder = (ROOT / current_target()).resolve()
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path)).resolve()
        if path.is_relative_to(folder):
            return f" ({path.relative_to(ROOT).as_posix()}, line {entry.lineno + 1})"
    return ""


def _where_tasks_wait() -> str:
    """Where a hung async test is stuck: the learner's line that a still-pending task awaits.

    The timeout interrupts the event loop's selector, so the traceback does not show the
    learner's await; the suspended tasks do (their loop is torn down only after this report).
    """
    import asyncio
    import gc

    folder = (ROOT / current_target()).resolve()
    for task in (o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()):
        # Follow the chain of awaits down from the task's coroutine; keep the deepest learner frame.
        found = ""
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(folder):
                path = Path(frame.f_code.co_filename).resolve()
                found = f" ({path.relative_to(ROOT).as_posix()}, line {frame.f_lineno})"
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        if found:
            return found
    return ""


def _environment_message(error: BaseException) -> str:
    from workbook.services import ServiceUnavailable

    if isinstance(error, ServiceUnavailable):
        return str(error)
    if not _looks_like_connection_error(error):
        return ""
    # A connection error is the environment's fault only if a server really is down now;
    # otherwise the learner's code connected to the wrong place, which is theirs to fix.
    from workbook import services

    for name in ("postgres", "redis"):
        url = services.known_url(name)
        if url is None:
            try:
                url = services.resolve(name).url
            except services.ServiceUnavailable as exc:
                return str(exc)
        if not _answers(url):
            label, env_var = ("PostgreSQL", "DATABASE_URL") if name == "postgres" else ("Redis", "REDIS_URL")
            return _SERVER_DOWN.format(name=label, url=services.mask(url), env_var=env_var)
    return ""


def _looks_like_connection_error(error: BaseException) -> bool:
    # OSError covers refused TCP ports and a Unix socket that is gone (FileNotFoundError: the
    # embedded PostgreSQL listens on one). Whatever it is, a server that still answers clears it.
    if isinstance(error, OSError):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"ConnectionError", "ConnectionRefusedError", "ConnectionDoesNotExistError",
                         "CannotConnectNowError", "ConnectionFailureError"})


def _answers(url: str) -> bool:
    """Whether something accepts connections where `url` points (TCP, or PostgreSQL's unix socket)."""
    from urllib.parse import parse_qs

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    socket_dir = query.get("host", [""])[0]
    try:
        if socket_dir.startswith("/") and hasattr(socket, "AF_UNIX"):
            port = parts.port or int(query.get("port", ["5432"])[0])  # the embedded server's URL: ?host=...&port=...
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(0.5)
                probe.connect(f"{socket_dir}/.s.PGSQL.{port}")
            return True
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=0.5):
            return True
    except OSError:
        return False


# --- a readable summary at the end of a plain `pytest tests/` run ----------------------------

def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.stash.get(_recorder_key, None)
    records = recorder.records if recorder else []
    if not records or config.getoption("--workbook-results", None):
        return
    by_exercise: dict[str, list[Record]] = {}
    for record in records:
        if record.exercise:  # not the end-of-session marker
            by_exercise.setdefault(record.exercise, []).append(record)
    terminalreporter.section(f"workbook: grading {current_target()}/")
    for exercise_id in sorted(by_exercise):
        result = verdict(by_exercise[exercise_id])
        first = result.message.splitlines()[0] if result.message else ""
        terminalreporter.write_line(f"{exercise_id:<7} {result.status.value:<12} {first[:100]}")


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def workbook_target() -> str:
    """Which folder is being graded: "exercises" or "solutions"."""
    return current_target()


@pytest.fixture(scope="session")
def workbook_database_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this run alone and dropped at its end."""
    from workbook import services

    services.receive_handoff()
    prepared = os.environ.get(services.PREPARED_DATABASE_URL)
    if prepared:
        # `python -m workbook grade` created it while this process started, and drops it after
        # this process ends (even if it is killed); a plain `pytest tests/` makes its own below.
        yield prepared
        return
    service = services.resolve("postgres")
    database = services.create_run_database(service)
    try:
        yield database.url
    finally:
        services.drop_run_database(service, database)


@pytest_asyncio.fixture
async def workbook_db(workbook_database_url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to the run's database, in a schema of this test's own (dropped after)."""
    import asyncpg

    connection = await asyncpg.connect(workbook_database_url)
    schema = f"t_{os.urandom(6).hex()}"
    await connection.execute(f"CREATE SCHEMA {schema}")
    await connection.execute(f"SET search_path TO {schema}")
    try:
        yield connection
    finally:
        if connection.is_closed():
            connection = await asyncpg.connect(workbook_database_url)
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


@pytest.fixture(scope="session")
def workbook_redis_url() -> str:
    """URL of the Redis server in use; keep your keys under `workbook_redis_prefix`."""
    from workbook import services

    return services.resolve("redis").url


@pytest.fixture(scope="session")
def _workbook_run_prefix(workbook_redis_url: str) -> Iterator[str]:
    from workbook import services

    prefix = services.new_redis_prefix()
    try:
        yield prefix
    finally:
        services.delete_redis_prefix(services.resolve("redis"), prefix)


@pytest.fixture
def workbook_redis_prefix(_workbook_run_prefix: str, request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, e.g. 'wb:1764...:7f3a2c:t9:'; every key under it is deleted after the run."""
    return f"{_workbook_run_prefix}{request.node.name[:40]}:{os.urandom(3).hex()}:"


@pytest_asyncio.fixture
async def workbook_redis(workbook_redis_url: str) -> AsyncIterator[Any]:
    """A redis.asyncio client (decode_responses=True), closed with aclose() after the test."""
    from redis.asyncio import Redis

    client = Redis.from_url(workbook_redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


Check = Callable[[], bool | Awaitable[bool]]


@pytest_asyncio.fixture
async def workbook_after_teardown() -> AsyncIterator[Callable[[Check, str], None]]:
    """Register checks that run after every fixture set up later has been torn down.

    Request it *before* the fixture under test: ``async def test_x(workbook_after_teardown, users_table)``.
    ``workbook_after_teardown(check, message)``: `check` returns (or awaits to) True when all is well.
    """
    checks: list[tuple[Check, str]] = []
    yield lambda check, message: checks.append((check, message))
    failures = []
    for check, message in checks:
        outcome = check()
        if hasattr(outcome, "__await__"):
            outcome = await outcome  # type: ignore[misc]
        if not outcome:
            failures.append(message)
    if failures:
        pytest.fail("After the test finished: " + "; ".join(failures), pytrace=False)


@pytest.fixture
def workbook_variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """For a learner's test of a test-kind exercise: put the reference or a mutant in place of the subject.

    On the reference, the learner's test must also clean up after itself: an aiohttp
    ClientSession it opened and never closed fails it (set up first, this fixture is torn
    down after every fixture of the learner's, so their own teardown has run by then).
    """
    exercise = _exercise_of(request.node)
    setup = MUTATION_SETUPS[exercise] if exercise else None
    if setup is None:
        raise RuntimeError("workbook_variant is only for tests built by workbook.testing.mutation_suite")
    variant = str(request.param)
    monkeypatch.setattr(setup.module, setup.exercise.subject or "", setup.variants[variant])
    for name, value in setup.shared.items():
        # The reference and the mutants raise the learner's own exception classes, so that a
        # learner's `pytest.raises(TheirModule.Error)` matches what the code under test raises.
        monkeypatch.setattr(setup.reference_module, name, value)
    sessions = _track_client_sessions(monkeypatch) if variant == "reference" else []
    yield variant
    if any(not session.closed for session in sessions):
        pytest.fail(_SESSION_LEFT_OPEN, pytrace=False)


_SESSION_LEFT_OPEN = (
    "it leaves an aiohttp.ClientSession open: close every session it opens, e.g. with "
    "`async with aiohttp.ClientSession() as session:` (an open session keeps its connections and warns "
    "'Unclosed client session' later, in someone else's test)."
)


def _track_client_sessions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every aiohttp.ClientSession created from now on, if the chapter uses aiohttp at all."""
    import sys

    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:
        return []
    created: list[Any] = []
    original = aiohttp.ClientSession.__init__

    def _recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", _recording_init)
    return created


__all__ = ["records_of"]
