"""Grading tests for chapter 09 (exercises/09_cached_service.py).

No server and no sleeping: PostgreSQL is the given FakePool, Redis the learner's FakeRedis, the
notifier a mock. Every await on the learner's code is bounded by GUARD seconds (a fake answers at
once, so only a wrong answer waits), so that a hang fails fast with a message.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable
from typing import Any

import asyncpg
import pytest
from redis.exceptions import DataError

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("09_cached_service")
ref = load_reference("09_cached_service")
globals().update(learner_fixtures(ex))

#: seconds: how long these tests wait for the learner's code before saying it hangs
GUARD = 1.0


async def _command(redis: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """`await redis.<name>(*args, **kwargs)`, bounded, with a failure in words when it is no coroutine."""
    shown = f"await fake_redis.{name}({', '.join([*(repr(a) for a in args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"
    method = getattr(redis, name, None)
    require(method is not None, f"FakeRedis must have the command `{name}`, as redis.asyncio.Redis does")
    awaitable = method(*args, **kwargs)
    require(inspect.isawaitable(awaitable), f"`{shown}` must work: FakeRedis.{name} must be an `async def`, as "
                                            f"the commands of redis.asyncio.Redis are awaited (it returned {awaitable!r})")
    try:
        async with asyncio.timeout(GUARD):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"`{shown}` was still waiting after {GUARD} s: a fake answers at once", pytrace=False)


# --- 09.1 FakeRedis and fake_redis ------------------------------------------------------------------

@pytest.mark.exercise("09.1", promise=("new", "get", "set"))
@pytest.mark.asyncio
async def test_fake_redis_is_a_new_empty_fake_that_stores_values(fake_redis):
    require(isinstance(fake_redis, ex.FakeRedis), f"the fake_redis fixture must give a FakeRedis, not {fake_redis!r}")
    require(fake_redis.now == 0, f"a new FakeRedis's clock must be at 0, not {fake_redis.now!r}")
    require(await _command(fake_redis, "get", "user:1") is None,
            "a new FakeRedis must be empty: await get('user:1') must answer None")
    answer = await _command(fake_redis, "set", "user:1", '{"name": "Ada"}')
    require(answer is True, f"await set(name, value) must answer True, as Redis does, not {answer!r}")
    got = await _command(fake_redis, "get", "user:1")
    require(got == '{"name": "Ada"}', f"after set('user:1', text), await get('user:1') must answer that text, not {got!r}")
    await _command(fake_redis, "set", "user:1", "again")
    require(await _command(fake_redis, "get", "user:1") == "again", "a second set of the same key must replace its value")


@pytest.mark.exercise("09.1", promise="new")
@pytest.mark.asyncio
async def test_fake_redis_starts_afresh_in_each_test(fake_redis):
    # The test above stored "user:1"; a fixture that shares one FakeRedis would still hold it.
    require(await _command(fake_redis, "get", "user:1") is None,
            "fake_redis must be a new FakeRedis for each test: it still held a key an earlier test stored. "
            "Create it inside the fixture (`return FakeRedis()`), not once for the whole module")
    other = ex.FakeRedis()
    await _command(other, "set", "k", "v")
    require(await _command(ex.FakeRedis(), "get", "k") is None,
            "two FakeRedis objects must not share their data, or fake_redis cannot be a new FakeRedis for each test: "
            "keep the data in attributes made in __init__, not on the class")


@pytest.mark.exercise("09.1", promise="types")
@pytest.mark.asyncio
async def test_fake_redis_answers_every_value_as_a_str(fake_redis):
    for value, expected in ((7, "7"), (1.5, "1.5"), (b"bytes", "bytes"), ("text", "text")):
        await _command(fake_redis, "set", "k", value)
        got = await _command(fake_redis, "get", "k")
        require(got == expected, f"after set('k', {value!r}), get('k') must answer the str {expected!r}, as Redis "
                                 f"with decode_responses=True does, not {got!r}")


@pytest.mark.exercise("09.1", promise="types")
@pytest.mark.asyncio
async def test_fake_redis_refuses_what_redis_py_refuses(fake_redis):
    for value in ({"name": "Ada"}, None, True):
        try:
            await _command(fake_redis, "set", "k", value)
        except DataError:
            continue
        except Exception as error:
            pytest.fail(f"set('k', {value!r}) raised {type(error).__name__}, but redis-py raises "
                        "redis.exceptions.DataError: raise that one, so code tested with the fake meets the same "
                        "error as with the real client", pytrace=False)
        pytest.fail(f"set('k', {value!r}) was accepted: redis-py refuses a {type(value).__name__} with "
                    "redis.exceptions.DataError (\"Convert to a bytes, string, int or float first\"). A fake that "
                    "accepts anything hides the very bug it is there to find"
                    + (" (check bool before int: True is an int too)" if value is True else ""), pytrace=False)
    require(await _command(fake_redis, "get", "k") is None, "a refused set must store nothing")


@pytest.mark.exercise("09.1", promise=("expires", "ttl"))
@pytest.mark.asyncio
async def test_fake_redis_expires_a_key_on_its_own_clock(fake_redis):
    await _command(fake_redis, "set", "session", "token", ex=60)
    ttl = await _command(fake_redis, "ttl", "session")
    require(ttl == 60, f"right after set(..., ex=60), ttl must answer 60, not {ttl!r}")
    fake_redis.advance(59)
    require(fake_redis.now == 59, f"advance(59) must move the clock from 0 to 59, not to {fake_redis.now!r}")
    require(await _command(fake_redis, "get", "session") == "token",
            "59 seconds after set(..., ex=60) the key must still be there")
    ttl = await _command(fake_redis, "ttl", "session")
    require(ttl == 1, f"59 seconds after set(..., ex=60), ttl must answer 1, not {ttl!r}")
    fake_redis.advance(1)
    require(await _command(fake_redis, "get", "session") is None,
            "60 seconds after set(..., ex=60) the key must be gone: get must answer None (the key expires once "
            "the clock has reached its time, `now >= expiry`)")
    ttl = await _command(fake_redis, "ttl", "session")
    require(ttl == -2, f"ttl of an expired key must answer -2, as for a key it does not hold, not {ttl!r}")


@pytest.mark.exercise("09.1", promise=("ttl", "no_ex"))
@pytest.mark.asyncio
async def test_fake_redis_set_without_ex_keeps_no_expiry(fake_redis):
    ttl = await _command(fake_redis, "ttl", "nothing")
    require(ttl == -2, f"ttl of a key it does not hold must answer -2, not {ttl!r}")
    await _command(fake_redis, "set", "k", "v")
    ttl = await _command(fake_redis, "ttl", "k")
    require(ttl == -1, f"ttl of a key set without ex must answer -1, not {ttl!r}")
    await _command(fake_redis, "set", "k", "v", ex=10)
    await _command(fake_redis, "set", "k", "w")
    fake_redis.advance(3600)
    require(await _command(fake_redis, "get", "k") == "w",
            "a set without ex must drop the key's earlier expiry, as Redis's SET does: set('k', ..., ex=10), then "
            "set('k', 'w'), and an hour later get('k') must still answer 'w'")
    ttl = await _command(fake_redis, "ttl", "k")
    require(ttl == -1, f"after a set without ex, ttl must answer -1 (no expiry), not {ttl!r}")


@pytest.mark.exercise("09.1", promise="delete")
@pytest.mark.asyncio
async def test_fake_redis_delete_counts_the_keys_it_held(fake_redis):
    await _command(fake_redis, "set", "a", "1")
    await _command(fake_redis, "set", "b", "2")
    await _command(fake_redis, "set", "old", "3", ex=5)
    fake_redis.advance(5)
    removed = await _command(fake_redis, "delete", "a", "b", "old", "missing")
    require(removed == 2, "delete('a', 'b', 'old', 'missing') must answer 2: 'a' and 'b' were held, 'old' had expired "
                          f"and 'missing' never existed (it answered {removed!r})")
    require(await _command(fake_redis, "get", "a") is None, "after delete('a', ...), get('a') must answer None")
    require(await _command(fake_redis, "delete", "a") == 0, "deleting a key a second time must answer 0")


# --- 09.2 and 09.3: UserService and its broken copies ------------------------------------------------

class _Service(ref.UserService):
    """The reference, with each decision of its read and write paths as a switch a mutant turns."""

    query_on_hit = False
    fill = True
    write_key = "user:{}"
    ttl_override: int | None = None
    use_ttl = True
    decode_hit = True
    cache_missing = False
    check_none_late = False
    write_through = True
    write_through_ttl = True
    notify_in_transaction = False
    await_notification = True
    swallow_failure = False
    invalidate = True
    invalidate_key = "user:{}"
    invalidate_in_transaction = False

    def _ex(self, for_write: bool = False) -> dict[str, int]:
        if not self.use_ttl or (for_write and not self.write_through_ttl):
            return {}
        return {"ex": self.ttl if self.ttl_override is None else self.ttl_override}

    async def get_user(self, user_id: int) -> dict[str, Any] | None:
        key = self.cache_key(user_id)
        cached = await self.redis.get(key)
        if cached is not None and not self.query_on_hit:
            return self._decoded(cached)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {ref.USER_COLUMNS} FROM users WHERE id = $1", user_id)
        if cached is not None:
            return self._decoded(cached)
        if self.check_none_late:
            user = dict(row)  # TypeError for None: the bug
        if row is None:
            if self.cache_missing:
                await self.redis.set(key, "null", **self._ex())
            return None
        user = dict(row)
        if self.fill:
            await self.redis.set(self.write_key.format(user_id), ref.user_to_json(user), **self._ex())
        return user

    def _decoded(self, cached: str) -> Any:
        if cached == "null":
            return None
        return ref.user_from_json(cached) if self.decode_hit else json.loads(cached)

    async def create_user(self, name: str, email: str) -> dict[str, Any]:
        try:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    row = await conn.fetchrow(
                        f"INSERT INTO users (name, email) VALUES ($1, $2) RETURNING {ref.USER_COLUMNS}", name, email)
                    if self.notify_in_transaction:
                        await self.notifier.user_created(row["id"])
        except asyncpg.UniqueViolationError:
            if self.swallow_failure:
                return None  # type: ignore[return-value]
            raise
        user = dict(row)
        if self.write_through:
            await self.redis.set(self.cache_key(user["id"]), ref.user_to_json(user), **self._ex(for_write=True))
        if not self.notify_in_transaction:
            if self.await_notification:
                await self.notifier.user_created(user["id"])
            else:
                pending = self.notifier.user_created(user["id"])  # the bug: no await
                if inspect.iscoroutine(pending):
                    # Closed here, so that Python's "never awaited" warning cannot be what fails the test.
                    pending.close()
        return user

    async def rename_user(self, user_id: int, name: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"UPDATE users SET name = $2 WHERE id = $1 RETURNING {ref.USER_COLUMNS}", user_id, name)
                if self.invalidate and self.invalidate_in_transaction:
                    await self.redis.delete(self.invalidate_key.format(user_id))
        if self.invalidate and not self.invalidate_in_transaction:
            await self.redis.delete(self.invalidate_key.format(user_id))
        return None if row is None else dict(row)


def _mutant(**wrong: Any) -> type:
    return type("UserService", (_Service,), wrong)


#: the catalog's mutant ids of each test-kind exercise -> the broken UserService
_MUTANTS = {
    "09.2": {
        "queries_on_hit": _mutant(query_on_hit=True),
        "no_fill": _mutant(fill=False),
        "wrong_key": _mutant(write_key="users:{}"),
        "no_ttl": _mutant(use_ttl=False),
        "fixed_ttl": _mutant(ttl_override=3600),
        "hit_returns_text": _mutant(decode_hit=False),
        "caches_missing": _mutant(cache_missing=True),
        "missing_raises": _mutant(check_none_late=True),
    },
    "09.3": {
        "no_write_through": _mutant(write_through=False),
        "write_through_no_ttl": _mutant(write_through_ttl=False),
        "notifies_before_commit": _mutant(notify_in_transaction=True),
        "notification_not_awaited": _mutant(await_notification=False),
        "swallows_failure": _mutant(swallow_failure=True),
        "stale_after_update": _mutant(invalidate=False),
        "invalidates_wrong_key": _mutant(invalidate_key="users:{}"),
        "invalidates_before_commit": _mutant(invalidate_in_transaction=True),
    },
}

# Both exercises test the same class: each suite puts the reference or one of its mutants in
# place of the learner module's UserService while one of that exercise's tests runs.
for _exercise_id, _broken in _MUTANTS.items():
    globals().update(mutation_suite(ex, _exercise_id, reference=ref.UserService, mutants=_broken))
