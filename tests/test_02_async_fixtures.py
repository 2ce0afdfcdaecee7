"""Grading tests for chapter 02 (exercises/02_async_fixtures.py).

Every table and key these tests create is uniquely named (or lives in the run's own database)
and is removed by the fixture that created it; nothing else is touched.
"""

from __future__ import annotations

import datetime
import json
import secrets
import socket
import warnings
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio
import redis.exceptions

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("02_async_fixtures")
ref = load_reference("02_async_fixtures")
globals().update(learner_fixtures(ex))


# --- the graders' own helpers --------------------------------------------------------------------

@pytest_asyncio.fixture
async def grader_db(workbook_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The grading tests' own connection to the run's database, to look at what the learner's code did."""
    connection = await asyncpg.connect(workbook_database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _table_exists(connection: asyncpg.Connection, name: str) -> bool:
    return await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", name)



# --- 02.1 open_stores ------------------------------------------------------------------------------

class _RedisClients:
    """The redis.asyncio clients made during a test, and how each was closed."""

    def __init__(self) -> None:
        self.created: list[object] = []
        self.aclosed: list[object] = []
        #: closed with the deprecated close() (which calls aclose() itself, so they are in `aclosed` too)
        self.closed_the_old_way: list[object] = []

    def problem(self, client: object, when: str) -> str:
        """What is wrong with how `client` was closed, or "" if it was closed with aclose()."""
        if any(c is client for c in self.closed_the_old_way):
            return (f"{when} the Redis client was closed with the deprecated `close()`: "
                    "use `await client.aclose()` (close() is its old name, and warns)")
        if not any(c is client for c in self.aclosed):
            return f"{when} the Redis client must be closed with `await client.aclose()`"
        return ""


@pytest.fixture
def closed_redis_clients(monkeypatch: pytest.MonkeyPatch) -> _RedisClients:
    """Every redis.asyncio client made, aclose()d, or close()d during the test (the originals still run)."""
    clients = _RedisClients()
    original_init, original_aclose, original_close = (
        redis.asyncio.Redis.__init__, redis.asyncio.Redis.aclose, redis.asyncio.Redis.close)

    def init_spy(self, *args, **kwargs):
        clients.created.append(self)
        original_init(self, *args, **kwargs)

    async def aclose_spy(self, *args, **kwargs):
        clients.aclosed.append(self)
        return await original_aclose(self, *args, **kwargs)

    async def close_spy(self, *args, **kwargs):
        clients.closed_the_old_way.append(self)
        with warnings.catch_warnings():  # the learner hears about it in the check's message instead
            warnings.simplefilter("ignore", DeprecationWarning)
            return await original_close(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.Redis, "__init__", init_spy)
    monkeypatch.setattr(redis.asyncio.Redis, "aclose", aclose_spy)
    monkeypatch.setattr(redis.asyncio.Redis, "close", close_spy)
    return clients


@pytest.fixture
def opened_connections(monkeypatch: pytest.MonkeyPatch) -> list[asyncpg.Connection]:
    """Every connection made with asyncpg.connect during the test."""
    opened: list[asyncpg.Connection] = []
    original = asyncpg.connect

    async def spy(*args, **kwargs):
        connection = await original(*args, **kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(asyncpg, "connect", spy)
    return opened


@pytest.fixture
def unreachable_redis_url() -> Iterator[str]:
    """A redis:// URL where nothing listens: a port we hold (bound, never listening), so connecting is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{holder.getsockname()[1]}/0"


@pytest.mark.exercise("02.1", promise="works")
@pytest.mark.asyncio
async def test_open_stores_yields_a_working_connection_and_redis_client(
    workbook_database_url, workbook_redis_url, workbook_redis_prefix
):
    async with ex.open_stores(workbook_database_url, workbook_redis_url) as stores:
        require(stores is not None, "open_stores must yield a Stores(db=..., redis=...), not None")
        require(await stores.db.fetchval("select 1") == 1, "stores.db must be an open asyncpg connection")
        require(await stores.redis.ping(), "stores.redis must answer ping()")
        key = f"{workbook_redis_prefix}probe"
        await stores.redis.set(key, "hello")
        try:
            require(await stores.redis.get(key) == "hello", (
                "stores.redis must return strings, not bytes: create it with decode_responses=True"
            ))
        finally:
            await stores.redis.delete(key)


@pytest.mark.exercise("02.1", promise="closed")
@pytest.mark.asyncio
async def test_open_stores_closes_both_afterwards(workbook_database_url, workbook_redis_url, closed_redis_clients):
    async with ex.open_stores(workbook_database_url, workbook_redis_url) as stores:
        require(not stores.db.is_closed(), "the connection must be open inside the `async with` block")
    require(stores.db.is_closed(), "after the `async with` block the PostgreSQL connection must be closed")
    problem = closed_redis_clients.problem(stores.redis, "after the `async with` block")
    require(not problem, problem)


@pytest.mark.exercise("02.1", promise="body_raises")
@pytest.mark.asyncio
async def test_open_stores_closes_both_when_the_body_raises(workbook_database_url, workbook_redis_url,
                                                           closed_redis_clients):
    seen = []
    try:
        async with ex.open_stores(workbook_database_url, workbook_redis_url) as stores:
            seen.append(stores)
            raise ValueError("an error in the body of the async with")
    except ValueError:
        pass
    else:
        pytest.fail("an error raised in the body of `async with open_stores(...)` must reach the caller, "
                    "not be swallowed", pytrace=False)
    stores = seen[0]
    require(stores.db.is_closed(), "when the body raises, the PostgreSQL connection must still be closed")
    problem = closed_redis_clients.problem(stores.redis, "when the body raises,")
    require(not problem, problem)


@pytest.mark.exercise("02.1", promise=("unreachable", "nothing_open"))
@pytest.mark.asyncio
async def test_open_stores_closes_the_connection_when_redis_cannot_be_reached(
    workbook_database_url, unreachable_redis_url, opened_connections, closed_redis_clients
):
    try:
        async with ex.open_stores(workbook_database_url, unreachable_redis_url):
            pass
    except redis.exceptions.ConnectionError:
        pass
    else:
        pytest.fail("with a Redis that cannot be reached, open_stores must fail before it yields: "
                    "`await client.ping()` during set-up, and let the error reach the caller", pytrace=False)
    left_open = [c for c in opened_connections if not c.is_closed()]
    for connection in left_open:  # do not leak it into the next test
        connection.terminate()
    if left_open:
        pytest.fail("when Redis cannot be reached, the PostgreSQL connection opened before it must be closed: "
                    "register its cleanup as soon as it is open (AsyncExitStack, or try/finally)", pytrace=False)
    for client in closed_redis_clients.created:
        problem = closed_redis_clients.problem(client, "when Redis cannot be reached (ping() fails),")
        require(not problem, problem + ", as soon as it exists: register its cleanup before `await client.ping()`")


# --- 02.2 notes_table ------------------------------------------------------------------------------

_names_seen: list[str] = []


@pytest_asyncio.fixture
async def someone_elses_notes(grader_db: asyncpg.Connection) -> AsyncIterator[None]:
    """A table named `notes`, with one row, that existed before the learner's fixture ran (ours, in the run's database)."""
    await grader_db.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    await grader_db.execute("INSERT INTO notes (body) VALUES ('someone else''s note')")
    try:
        yield
    finally:
        await grader_db.execute("DROP TABLE IF EXISTS notes")


@pytest.mark.exercise("02.2", promise=("name", "columns"))
@pytest.mark.asyncio
async def test_notes_table_is_a_new_empty_table(notes_table, db):
    require(isinstance(notes_table, str), f"notes_table must yield the table's name (a str), not {notes_table!r}")
    require(notes_table.startswith("notes_") and len(notes_table) >= len("notes_") + 6, (
        f"the table's name must be 'notes_' plus a random part of 6 or more characters, not {notes_table!r}"
    ))
    require(await _table_exists(db, notes_table), f"the table {notes_table} does not exist during the test")
    require(await db.fetchval(f"SELECT count(*) FROM {notes_table}") == 0, "the table must start empty")


@pytest.mark.exercise("02.2", promise="name")
@pytest.mark.asyncio
@pytest.mark.parametrize("use", ["first", "second"])
async def test_notes_table_has_a_new_name_each_time(notes_table, use):
    # Whichever of the two runs second compares its name with the first one's.
    require(notes_table not in _names_seen, (
        f"two tests got the same table name {notes_table!r}: add a random part, e.g. secrets.token_hex(4)"
    ))
    _names_seen.append(notes_table)


@pytest.mark.exercise("02.2", promise="columns")
@pytest.mark.asyncio
async def test_notes_table_has_the_three_columns(notes_table, db):
    row = await db.fetchrow(f"INSERT INTO {notes_table} (body) VALUES ('hello') RETURNING id, body, created_at")
    require(isinstance(row["id"], int), "inserting a body must give the row an id (id serial)")
    require(row["body"] == "hello", "the body column must keep the text inserted into it")
    created_at = row["created_at"]
    require(isinstance(created_at, datetime.datetime) and created_at.tzinfo is not None, (
        "created_at must be filled in by the database: timestamptz default now()"
    ))
    try:
        # In a transaction of its own (a savepoint, if the fixture opened one): the failed insert
        # must not spoil the connection for the query below.
        async with db.transaction():
            await db.execute(f"INSERT INTO {notes_table} (body) VALUES (NULL)")
    except asyncpg.NotNullViolationError:
        pass
    else:
        pytest.fail("a note without a body was accepted: declare the column `body text not null`", pytrace=False)
    primary_key = await db.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
        notes_table,
    )
    require([r["attname"] for r in primary_key] == ["id"], "id must be the primary key: id serial primary key")


@pytest.mark.exercise("02.2", promise="dropped")
@pytest.mark.asyncio
async def test_notes_table_is_dropped_after_the_test(grader_db, workbook_after_teardown, notes_table, db):
    # Looked up on `db`, the connection the fixture made it on (the docstring promises no more:
    # a temporary table, or one not committed yet, is the fixture's to choose).
    require(await _table_exists(db, notes_table), f"the table {notes_table} does not exist during the test")

    async def gone() -> bool:
        return not await _table_exists(grader_db, notes_table)

    workbook_after_teardown(gone, f"the table {notes_table} still exists: drop it after `yield`")


@pytest.mark.exercise("02.2", promise="others")
@pytest.mark.asyncio
async def test_notes_table_leaves_someone_elses_notes_table_alone(
    someone_elses_notes, grader_db, workbook_after_teardown, notes_table
):
    require(notes_table != "notes", "your fixture must make a table of its own, not use the existing `notes`")

    async def survived() -> bool:
        if not await _table_exists(grader_db, "notes"):
            return False
        return [r["body"] for r in await grader_db.fetch("SELECT body FROM notes")] == ["someone else's note"]

    workbook_after_teardown(survived, "a table named `notes` that existed before the test (someone else's) was dropped "
                                      "or emptied: drop only the table your fixture created")


# --- 02.3 make_note ---------------------------------------------------------------------------------

class TestMakeNote:
    """make_note is graded on a notes table of the graders' own, so it does not depend on 02.2."""

    @pytest_asyncio.fixture
    async def notes_table(self, grader_db: asyncpg.Connection) -> AsyncIterator[str]:
        name = f"notes_{secrets.token_hex(4)}"
        await grader_db.execute(
            f"CREATE TABLE {name} (id serial PRIMARY KEY, body text NOT NULL, created_at timestamptz DEFAULT now())"
        )
        try:
            yield name
        finally:
            await grader_db.execute(f"DROP TABLE IF EXISTS {name}")

    @staticmethod
    async def rows(connection: asyncpg.Connection, table: str) -> dict[int, str]:
        return {r["id"]: r["body"] for r in await connection.fetch(f"SELECT id, body FROM {table}")}

    @pytest.mark.exercise("02.3", promise="inserts")
    @pytest.mark.asyncio
    async def test_make_note_inserts_a_row_and_returns_its_id(self, notes_table, grader_db, make_note):
        first = await make_note("first note")
        try:
            second = await make_note("it's O'Brien's note")  # a quote in the text: a parameter ($1), not an f-string
        except asyncpg.PostgresSyntaxError as error:
            pytest.fail(f"`await make_note(\"it's O'Brien's note\")` failed with {type(error).__name__}: {error}: "
                        "the body must reach the database exactly as given, so pass it as a parameter "
                        "(`VALUES ($1)`, body), not inside the SQL text", pytrace=False)
        require(isinstance(first, int) and isinstance(second, int), (
            f"`await make_note(body)` must return the new row's id (an int), not {first!r}"
        ))
        require(first != second, "each call must insert a new row with a new id")
        rows = await self.rows(grader_db, notes_table)
        require(rows == {first: "first note", second: "it's O'Brien's note"}, (
            f"each call must insert exactly one row, with the body it was given, into the notes_table table: got {rows}"
        ))

    @pytest.mark.exercise("02.3", promise=("removed", "others"))
    @pytest.mark.asyncio
    async def test_make_note_removes_its_rows_and_only_its_rows(
        self, notes_table, grader_db, workbook_after_teardown, make_note
    ):
        others = [await grader_db.fetchval(f"INSERT INTO {notes_table} (body) VALUES ($1) RETURNING id", body)
                  for body in ("hello", "not mine")]
        mine = [await make_note("hello"), await make_note("bye")]

        async def mine_gone() -> bool:
            return not set(mine) & set(await self.rows(grader_db, notes_table))

        async def others_kept() -> bool:
            return set(others) <= set(await self.rows(grader_db, notes_table))

        workbook_after_teardown(mine_gone, "the rows make_note inserted are still there: delete them after `yield`")
        workbook_after_teardown(others_kept, "rows that someone else inserted into the same table were deleted: "
                                             "delete only the ids make_note created (not by body, not everything)")

    @pytest.mark.exercise("02.3", promise=("robust", "removed"))
    @pytest.mark.asyncio
    async def test_make_note_copes_with_a_row_the_test_deleted(
        self, notes_table, grader_db, workbook_after_teardown, make_note
    ):
        kept = await make_note("kept by the test")
        deleted = await make_note("deleted by the test")
        await grader_db.execute(f"DELETE FROM {notes_table} WHERE id = $1", deleted)

        async def kept_gone() -> bool:
            return kept not in await self.rows(grader_db, notes_table)

        workbook_after_teardown(kept_gone, "after the test deleted one of make_note's rows, the other one was not "
                                           "deleted at teardown")

    @pytest.mark.exercise("02.3", promise="robust")
    @pytest.mark.asyncio
    async def test_make_note_copes_with_never_being_called(self, notes_table, make_note):
        require(callable(make_note), "make_note must yield a function to call: `await make_note(body)`")


# --- 02.4 tests for SessionStore, graded by mutation -------------------------------------------------

class _NoExpiry(ref.SessionStore):
    async def save(self, user_id, data, ttl):
        await self.redis.set(self.key(user_id), json.dumps(data))


class _OneKeyForAll(ref.SessionStore):
    def key(self, user_id):
        return f"{self.prefix}session"


class _DeleteAlwaysTrue(ref.SessionStore):
    async def delete(self, user_id):
        await self.redis.delete(self.key(user_id))
        return True


class _ExpiryInMinutes(ref.SessionStore):
    async def save(self, user_id, data, ttl):
        await self.redis.set(self.key(user_id), json.dumps(data), ex=ttl * 60)


class _EmptyInsteadOfNone(ref.SessionStore):
    async def load(self, user_id):
        raw = await self.redis.get(self.key(user_id))
        return {} if raw is None else json.loads(raw)


class _DeleteKeepsSession(ref.SessionStore):
    async def delete(self, user_id):
        return await self.redis.exists(self.key(user_id)) == 1


class _OutsideThePrefix(ref.SessionStore):
    def key(self, user_id):
        # Still under the grading run's prefix (so the run's cleanup deletes it), but not under
        # the test's own: "wb:...:t9:7f3a2c:" becomes "wb:...:t9:7f3a2c-store:session:ann".
        return f"{self.prefix.rstrip(':')}-store:session:{user_id}"


globals().update(
    mutation_suite(
        ex,
        "02.4",
        reference=ref.SessionStore,
        mutants={
            "no_expiry": _NoExpiry,
            "expiry_in_minutes": _ExpiryInMinutes,
            "one_key_for_all": _OneKeyForAll,
            "empty_instead_of_none": _EmptyInsteadOfNone,
            "delete_keeps_session": _DeleteKeepsSession,
            "delete_always_true": _DeleteAlwaysTrue,
            "outside_the_prefix": _OutsideThePrefix,
        },
    )
)
