"""The fixtures the grading plugin provides, all ``workbook_``-prefixed.

Each creates only what it removes: a database of the run's own, a Redis key prefix of the run's
own, connections to both, and ``workbook_after_teardown`` for checks that must run after a
learner's fixture has cleaned up. ``workbook_variant`` puts the reference or a mutant in place
for a learner's test of a `test`-kind exercise.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from workbook import services
from workbook.grading import space
from workbook.grading.plugin import state
from workbook.grading.records import Role
from workbook.testing import current_target, mutation_setup_of

_SESSION_LEFT_OPEN = (
    "it leaves an aiohttp.ClientSession open: close every session it opens, e.g. with "
    "`async with aiohttp.ClientSession() as session:` (an open session keeps its connections and warns "
    "'Unclosed client session' later, in someone else's test)."
)


@pytest.fixture(scope="session")
def workbook_target() -> str:
    """Which folder is being graded: "exercises" or "solutions"."""
    return current_target()


@pytest.fixture(scope="session")
def workbook_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a PostgreSQL database created for this run alone and dropped at its end."""
    servers = state(request.config).servers
    if servers.database_url:
        # `python3 -m workbook grade` created it while this process started, and drops it after
        # this process ends (even if it is killed); a plain `pytest tests/` makes its own below.
        space.set_run_database(servers.database_url)
        yield servers.database_url
        return
    service = servers.get("postgres")
    database = services.create_run_database(service)
    space.set_run_database(database.url)
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
def workbook_redis_url(request: pytest.FixtureRequest) -> str:
    """URL of the Redis server in use; keep your keys under `workbook_redis_prefix`."""
    return state(request.config).servers.get("redis").url


@pytest.fixture(scope="session")
def _workbook_run_prefix(request: pytest.FixtureRequest, workbook_redis_url: str) -> Iterator[str]:
    prefix = services.new_redis_prefix()
    space.set_run_prefix(prefix)
    try:
        yield prefix
    finally:
        services.delete_redis_prefix(state(request.config).servers.get("redis"), prefix)


@pytest.fixture
def workbook_redis_prefix(_workbook_run_prefix: str, request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, e.g. 'wb:1764...:7f3a2c:t9:'; every key under it is deleted after the run."""
    # Only characters that mean nothing in a KEYS/SCAN pattern: a test named `test_x[ann-True]` must
    # still find its keys with `keys(workbook_redis_prefix + "*")` ([...] is a character class there).
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name[:40])
    return f"{_workbook_run_prefix}{name}:{os.urandom(3).hex()}:"


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
def workbook_variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """For a learner's test of a test-kind exercise: put the reference or a mutant in place of the subject.

    On the reference, the learner's test must also clean up after itself: an aiohttp
    ClientSession it opened and never closed fails it (set up first, this fixture is torn
    down after every fixture of the learner's, so their own teardown has run by then).
    """
    setup = mutation_setup_of(request.node)
    if setup is None:
        raise RuntimeError("workbook_variant is only for tests built by workbook.testing.mutation_suite")
    variant = request.param
    monkeypatch.setattr(setup.module, setup.exercise.subject or "", setup.implementation(variant))
    for name, value in setup.shared.items():
        # The reference and the mutants raise the learner's own exception classes, so that a
        # learner's `pytest.raises(TheirModule.Error)` matches what the code under test raises.
        monkeypatch.setattr(setup.reference_module, name, value)
    sessions = _track_client_sessions(monkeypatch) if variant.role is Role.REFERENCE else []
    yield variant
    if any(not session.closed for session in sessions):
        pytest.fail(_SESSION_LEFT_OPEN, pytrace=False)


def _track_client_sessions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every aiohttp.ClientSession created from now on, if the chapter uses aiohttp at all."""
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
