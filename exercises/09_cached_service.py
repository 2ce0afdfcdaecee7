"""Chapter 09: unit-testing a service with mocks and fakes: cache-aside over Postgres, Redis and HTTP.

Read notebooks/09_cached_service.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 09`. Stuck? `python3 -m workbook hint 09.1`.

Nothing in this chapter needs a server: PostgreSQL is a FakePool (given below), Redis is your
FakeRedis (09.1), the notifier a mock. Chapter 10 runs the same UserService against the real servers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY, AsyncMock, MagicMock, call, create_autospec  # noqa: F401 (for your tests)

import asyncpg
import pytest
from redis.exceptions import DataError

if TYPE_CHECKING:
    import aiohttp

# --- the service under test (given: do not change it) --------------------------------------------

#: the columns every query of UserService answers
USER_COLUMNS = "id, name, email, created_at"


class Notifier:
    """The notification service's client: POSTs a JSON event to `url` with an aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def user_created(self, user_id: int) -> None:
        """Tell the notification service that user `user_id` was created (an HTTP error raises)."""
        # session.post() is a plain method returning an async context manager (as pool.acquire()).
        async with self.session.post(self.url, json={"event": "user_created", "user_id": user_id}) as response:
            response.raise_for_status()


def user_to_json(user: dict[str, Any]) -> str:
    """The JSON text the cache holds for a user row: `created_at` (a datetime) as an ISO 8601 string.

    `json.dumps(row)` alone fails: "Object of type Record is not JSON serializable", and with
    `dict(row)` "Object of type datetime is not JSON serializable".
    """
    return json.dumps({**user, "created_at": user["created_at"].isoformat()})


def user_from_json(text: str) -> dict[str, Any]:
    """The user dict back from `user_to_json`'s text: `created_at` a datetime again, with its time zone."""
    user = json.loads(text)
    user["created_at"] = datetime.fromisoformat(user["created_at"])
    return user


class UserService:
    """Users from PostgreSQL, cached in Redis (cache-aside), with a notification when one is created.

    `pool` is an asyncpg Pool (in tests: a FakePool), `redis` a redis.asyncio client made with
    `decode_responses=True` (in tests: your FakeRedis), `notifier` a Notifier (in tests: a mock).
    A cached user is the JSON text of `user_to_json`, under `cache_key(user_id)` ("user:<id>", e.g. "user:7").
    """

    def __init__(self, pool: Any, redis: Any, notifier: Any, *, ttl: int = 300) -> None:
        self.pool = pool
        self.redis = redis
        self.notifier = notifier
        #: seconds a cached user lives in Redis
        self.ttl = ttl

    @staticmethod
    def cache_key(user_id: int) -> str:
        """The Redis key of a user: "user:<id>", e.g. "user:7"."""
        return f"user:{user_id}"

    async def get_user(self, user_id: int) -> dict[str, Any] | None:
        """The user `user_id` as a dict (id, name, email, created_at), or None.

        - a user found in Redis under `cache_key(user_id)` is answered from there: PostgreSQL is not queried;
        - on a miss it reads the user from PostgreSQL and stores it in Redis under `cache_key(user_id)`;
        - what it stores expires after `ttl` seconds (`ex=ttl`);
        - the answer is the same dict either way: `created_at` is a datetime, whether the user came
          from Redis or from PostgreSQL;
        - a user that is in neither answers None, and nothing is stored in Redis.
        """
        key = self.cache_key(user_id)
        cached = await self.redis.get(key)
        if cached is not None:
            return user_from_json(cached)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
        if row is None:
            return None
        user = dict(row)  # an asyncpg Record is no dict (and no JSON)
        await self.redis.set(key, user_to_json(user), ex=self.ttl)
        return user

    async def create_user(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user and return it as a dict.

        - `create_user(name, email)` inserts the user in one transaction, then stores it in Redis
          under `cache_key(id)`, expiring after `ttl` seconds (write-through), and returns it;
        - once the transaction has committed, it awaits `notifier.user_created(id)` exactly once;
        - when the insert fails (e.g. asyncpg.UniqueViolationError for an email already taken), the
          error goes on up: nothing is stored in Redis and nobody is notified.
        """
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"INSERT INTO users (name, email) VALUES ($1, $2) RETURNING {USER_COLUMNS}", name, email)
        # Here the transaction has committed: only now do other clients see the user.
        user = dict(row)
        await self.redis.set(self.cache_key(user["id"]), user_to_json(user), ex=self.ttl)
        await self.notifier.user_created(user["id"])
        return user

    async def rename_user(self, user_id: int, name: str) -> dict[str, Any] | None:
        """Rename a user; return the renamed user, or None when there is no such user.

        - `rename_user(user_id, name)` updates the row in one transaction; once it has committed, it
          deletes `cache_key(user_id)` from Redis, so the next `get_user` reads the new name from PostgreSQL.
        """
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"UPDATE users SET name = $2 WHERE id = $1 RETURNING {USER_COLUMNS}", user_id, name)
        # After the commit, not before: a reader between a delete and the commit would put the old
        # row back into the cache, where it would stay for `ttl` seconds.
        await self.redis.delete(self.cache_key(user_id))
        return None if row is None else dict(row)


# --- a fake PostgreSQL for your tests (given) -----------------------------------------------------

class FakePool:
    """An in-memory stand-in for an asyncpg Pool over the `users` table (given: use it in your tests).

    It has the shape of the real API that UserService uses: `async with pool.acquire() as conn`,
    `async with conn.transaction()` (commits at the end of the block, rolls back on an error) and
    `await conn.fetchrow(query, *args)` for UserService's SELECT, INSERT and UPDATE. An INSERT with an
    email that is already taken raises asyncpg.UniqueViolationError, as PostgreSQL would.

    - `pool.add(name, email)` puts a user in the table directly (no log entry) and returns its row;
    - `pool.rows` is the table: id -> row (committed rows only, outside a transaction);
    - `pool.log` lists what the code did, in order: "SELECT", "INSERT", "UPDATE", "BEGIN",
      "COMMIT", "ROLLBACK". A test can check that nothing was queried (`pool.log == []`), or
      what had happened when a mock was awaited (`pool.log[-1] == "COMMIT"`).
    """

    #: the created_at of user 1; user n was created n - 1 minutes later
    EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.log: list[str] = []
        self._next_id = 1

    def add(self, name: str, email: str) -> dict[str, Any]:
        row = {"id": self._next_id, "name": name, "email": email,
               "created_at": self.EPOCH + timedelta(minutes=self._next_id - 1)}
        self.rows[row["id"]] = row
        self._next_id += 1
        return dict(row)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_FakeConnection]:
        yield _FakeConnection(self)


class _FakeConnection:
    def __init__(self, pool: FakePool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        pool = self._pool
        saved = copy.deepcopy((pool.rows, pool._next_id))
        pool.log.append("BEGIN")
        try:
            yield
        except BaseException:
            pool.rows, pool._next_id = saved
            pool.log.append("ROLLBACK")
            raise
        pool.log.append("COMMIT")

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any] | None:
        pool = self._pool
        verb = query.split()[0].upper()
        pool.log.append(verb)
        if verb == "SELECT":
            (user_id,) = args
            row = pool.rows.get(user_id)
        elif verb == "INSERT":
            name, email = args
            if any(r["email"] == email for r in pool.rows.values()):
                raise asyncpg.UniqueViolationError('duplicate key value violates unique constraint "users_email_key"')
            row = pool.add(name, email)
        elif verb == "UPDATE":
            user_id, name = args
            row = pool.rows.get(user_id)
            if row is not None:
                row["name"] = name
        else:
            raise NotImplementedError(f"FakePool knows only UserService's queries, not {query!r}")
        return None if row is None else dict(row)


# --- 09.1 (fixture): a fake Redis with a clock you control ----------------------------------------

class FakeRedis:
    """An in-memory fake of the few redis.asyncio commands UserService uses, with a clock you move.

    It answers like `Redis.from_url(url, decode_responses=True)`:
    - `await get(name)` answers the str stored under `name`, or None for a key it does not hold;
    - `await set(name, value, ex=None)` stores `value` under `name` and answers True;
    - `value` must be a str, bytes, int or float (it is stored and answered as a str, as Redis
      answers it); anything else (a dict, None, a bool) raises redis.exceptions.DataError, as redis-py does;
    - `ex=seconds` makes the key expire `ex` seconds later on the fake's clock: once `advance()`
      has moved the clock that far, the key is gone;
    - a `set` without `ex` stores the key with no expiry, dropping any earlier one (as Redis's SET does);
    - `await ttl(name)` answers the seconds left before the key expires, -1 for a key without
      expiry, -2 for a key it does not hold;
    - `await delete(*names)` removes those keys and answers how many of them it held (an expired key does not count);
    - `advance(seconds)` moves the fake's clock (`now`, in seconds) on by `seconds` (it is not async:
      nothing waits).
    """

    def __init__(self) -> None:
        #: the fake's clock, in seconds; it only moves when advance() is called
        self.now = 0.0
        # TODO(09.1): keep the values and their expiry times here
    
    def advance(self, seconds: float) -> None:
        raise NotImplementedError  # TODO(09.1)
    
    async def get(self, name: str) -> str | None:
        raise NotImplementedError  # TODO(09.1)
    
    async def set(self, name: str, value: Any, ex: int | None = None) -> bool:
        raise NotImplementedError  # TODO(09.1)
    
    async def ttl(self, name: str) -> int:
        raise NotImplementedError  # TODO(09.1)
    
    async def delete(self, *names: str) -> int:
        raise NotImplementedError  # TODO(09.1)


@pytest.fixture
def fake_redis():
    """A new, empty FakeRedis for each test, its clock at 0.

    A fake that only lives in memory needs no event loop and no clean-up: a plain `@pytest.fixture` will do.
    """
    # TODO(09.1): your code here. Stuck? Run `python3 -m workbook hint 09.1`.
    raise NotImplementedError


# --- 09.2 (test): tests for the read path: hit, miss, TTL -----------------------------------------

# Your tests: async functions named test_get_user_..., each marked @pytest.mark.asyncio.
# Build the service with a FakePool and your fake_redis. Reading never notifies anyone, so the
# notifier can be None here (any use of it would fail the test at once, which is what you want):
#     pool = FakePool(); ada = pool.add("Ada", "ada@example.com")
#     service = UserService(pool, fake_redis, None)
# Grading runs your tests against UserService above (they must pass) and against broken copies
# of it (at least one of your tests must fail on each). Look at the state the fakes are left in
# (`pool.log`, `await fake_redis.get(...)`, `await fake_redis.ttl(...)`), not only at the answer.

@pytest.mark.asyncio
async def test_get_user_reads_a_miss_from_postgres(fake_redis):
    pool = FakePool()
    ada = pool.add("Ada", "ada@example.com")
    service = UserService(pool, fake_redis, None)
    # TODO(09.2): get the user, then check the answer, pool.log and what fake_redis now holds
    raise NotImplementedError


# --- 09.3 (test): tests for the write path: write-through, notify after commit, invalidate --------

# Your tests: async functions named test_writes_..., each marked @pytest.mark.asyncio.
# To see *when* the notifier was awaited, give its mock a side_effect that looks at `pool.log`:
#     async def notified(user_id): seen.append(pool.log[-1])
#     notifier.user_created.side_effect = notified
# An email already taken makes FakePool's INSERT raise asyncpg.UniqueViolationError.

@pytest.mark.asyncio
async def test_writes_create_user_caches_and_notifies(fake_redis):
    pool = FakePool()
    notifier = create_autospec(Notifier, instance=True)
    service = UserService(pool, fake_redis, notifier)
    # TODO(09.3): create a user, then check Redis, its TTL and the notifier's await
    raise NotImplementedError
