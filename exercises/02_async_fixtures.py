"""Chapter 02: async fixtures: setup, teardown, composition, scopes.

Read notebooks/02_async_fixtures.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 02`. Stuck? `python3 -m workbook hint 02.1`.

Everything here runs against real servers. The grading plugin gives you, as fixtures:
- `workbook_database_url`: the URL of a PostgreSQL database created for this grading run alone;
- `workbook_redis` and `workbook_redis_prefix`: a redis.asyncio client, and a key prefix of the
  test's own (keep every key you write under it).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis


# --- 02.1 (implement): open two resources; close both, even when opening fails halfway --------

@dataclass
class Stores:
    """What `open_stores` yields: an open PostgreSQL connection and a Redis client."""

    db: asyncpg.Connection
    redis: Redis


@contextlib.asynccontextmanager
async def open_stores(database_url: str, redis_url: str) -> AsyncIterator[Stores]:
    """Open a PostgreSQL connection, then a Redis client; yield both; close both afterwards.

    Use it like this (in a fixture, `yield stores` instead of the body):

        async with open_stores(database_url, redis_url) as stores:
            await stores.db.fetchval("select 1")
            await stores.redis.ping()

    In this order:
    1. connect to PostgreSQL with `asyncpg.connect(database_url)`;
    2. create the client with `Redis.from_url(redis_url, decode_responses=True)` and
       `await client.ping()`, so that a Redis that is not there fails right here, not later.

    The grading tests check that:
    - `stores.db` answers `select 1` and `stores.redis` answers `ping()`, returning strings (not bytes);
    - afterwards the connection is closed (`db.is_closed()`) and the Redis client was closed
      with `aclose()` (not the deprecated `close()`);
    - when the body of the `async with` raises, both are closed too and the error propagates;
    - when Redis cannot be reached, the error from Redis propagates, and the PostgreSQL
      connection opened in step 1 and the Redis client are closed anyway (nothing is left open).
    """
    # TODO(02.1): your code here. Stuck? Run `python3 -m workbook hint 02.1`.
    raise NotImplementedError
    yield  # keep one `yield` (asynccontextmanager needs an async generator): yield the Stores


# --- A finished fixture, for 02.2 and 02.3 to build on ----------------------------------------

@pytest_asyncio.fixture
async def db(workbook_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to the grading run's own database, closed after the test.

    This one is finished: do not change it. Your fixtures below request it by its name.
    """
    connection = await asyncpg.connect(workbook_database_url)
    try:
        yield connection
    finally:
        await connection.close()


# --- 02.2 (fixture): a table of the test's own --------------------------------------------------

@pytest_asyncio.fixture
async def notes_table(db: asyncpg.Connection) -> AsyncIterator[str]:
    """Create a table of this test's own on `db`, yield its name, and drop exactly that table afterwards.

    The table is named `notes_` plus a random part of at least 6 characters (e.g. `notes_3f9a1c2b`,
    from `secrets.token_hex(4)`), so that it can never be a table that someone else made, and it
    has these columns:
        id          serial primary key
        body        text not null
        created_at  timestamptz default now()

    The grading tests check that:
    - the name starts with "notes_" and differs from test to test;
    - during the test the table exists, is empty and has those columns (an insert of a body
      gets an id and a created_at; a NULL body is rejected; id is the primary key);
    - after the test the table is gone;
    - a table named `notes` that already existed in the same database (someone else's, with a row
      in it) is still there afterwards, with its row.
    """
    # TODO(02.2): your code here. Stuck? Run `python3 -m workbook hint 02.2`.
    raise NotImplementedError


# --- 02.3 (fixture): a factory that cleans up after itself ---------------------------------------

@pytest_asyncio.fixture
async def make_note(db: asyncpg.Connection, notes_table: str) -> AsyncIterator[Any]:
    """Yield an async function: `note_id = await make_note("some text")` inserts a note, returns its id.

    It inserts into the table that the `notes_table` fixture yields (request both `db` and
    `notes_table`), and it can be called any number of times in a test. After the test it
    deletes the rows it inserted, and only those.

    The grading tests check that:
    - each call inserts one row with that body and returns its id (an int; a new one each call);
    - after the test the rows it inserted are gone;
    - rows that someone else inserted into the same table survive, even one with the same body;
    - a test that deleted one of those rows itself, or never called make_note, does not break
      the teardown.
    (The grading tests give your fixture a `notes_table` of their own, so 02.3 can be solved
    before 02.2.)
    """
    # TODO(02.3): your code here. Stuck? Run `python3 -m workbook hint 02.3`.
    raise NotImplementedError


# --- 02.4 (test): tests for a Redis-backed session store -------------------------------------------

class SessionStore:
    """The sessions of logged-in users, kept in Redis as JSON, each with an expiry.

    This one is finished: do not change it. Write tests for it below.

    Each user has a session of their own. Every key lives under `prefix`: the session of user
    "ann" is at `store.key("ann")`, which is `prefix + "session:ann"`.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, user_id: str) -> str:
        """The Redis key that holds `user_id`'s session."""
        return f"{self.prefix}session:{user_id}"

    async def save(self, user_id: str, data: dict[str, Any], ttl: int) -> None:
        """Store `data` as `user_id`'s session; Redis deletes it after `ttl` seconds."""
        await self.redis.set(self.key(user_id), json.dumps(data), ex=ttl)

    async def load(self, user_id: str) -> dict[str, Any] | None:
        """`user_id`'s session data, or None if there is no session."""
        raw = await self.redis.get(self.key(user_id))
        return None if raw is None else json.loads(raw)

    async def delete(self, user_id: str) -> bool:
        """Remove `user_id`'s session; True if there was one, False if there was none."""
        return await self.redis.delete(self.key(user_id)) == 1


# Your tests: functions named test_session_store_..., marked for pytest-asyncio, that use
# a store made by the `session_store` fixture below. Grading runs them against the code above
# (they must pass) and against broken copies of it (at least one test must fail on each).
# Use `SessionStore` by its name (as the fixture does), so that grading can swap in the copies.

@pytest.fixture
def session_store(workbook_redis, workbook_redis_prefix):
    """A SessionStore on the grading run's Redis, with every key under the test's own prefix."""
    # TODO(02.4): return SessionStore(...) built from the two fixtures this function requests
    raise NotImplementedError


@pytest.mark.asyncio
async def test_session_store_loads_what_it_saved(session_store):
    # TODO(02.4): save a session, load it back, assert on what comes back
    raise NotImplementedError
