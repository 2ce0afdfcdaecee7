"""Grading tests for chapter 07 (exercises/07_asyncmock.py).

No server and no sleeping: everything the learner's code talks to is a mock. Every await on the
learner's code is bounded by GUARD seconds (a mock answers at once, so only a wrong answer waits),
so that a hang fails fast with a message instead of pytest-timeout's 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from unittest.mock import ANY, AsyncMock

import pytest
from redis.asyncio import Redis

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("07_asyncmock")
ref = load_reference("07_asyncmock")
globals().update(learner_fixtures(ex))

#: seconds: how long these tests wait for the learner's code before saying it hangs
GUARD = 1.0


async def _bounded(awaitable: Awaitable[Any], what: str) -> Any:
    try:
        async with asyncio.timeout(GUARD):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"{what} was still waiting after {GUARD} s: a mock must answer at once", pytrace=False)


@contextlib.contextmanager
def _quiet_coroutines():
    """Drop the 'coroutine ... was never awaited' warning of a coroutine that a wrong mock made and
    `async with` refused, so that the learner reads our message, not the warning.

    Such a coroutine is dropped (and warns) as soon as `async with` refuses it, inside this block.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- 07.1 tests for place_order, graded by mutation -------------------------------------------

async def _charge(gateway: Any, order_id: str, amount: int, *, tries: int = 2, retried: tuple = ()) -> str:
    """The reference's charging, with how many tries and which errors are retried as parameters."""
    retried = retried or (ref.GatewayUnavailable,)
    for attempt in range(1, tries + 1):
        try:
            return await gateway.charge(order_id, amount)
        except retried:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


async def _placed(gateway: Any, mailer: Any, order_id: str, amount: int, *, smallest: int = 1, tries: int = 2,
                  retried: tuple = ()) -> str:
    """The reference's place_order, with what it refuses, how often it tries and what it retries as parameters."""
    if amount < smallest:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    receipt_id = await _charge(gateway, order_id, amount, tries=tries, retried=retried)
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


async def _accepts_zero(gateway, mailer, order_id, amount):
    return await _placed(gateway, mailer, order_id, amount, smallest=0)  # the bug: `< 0` instead of `<= 0`


async def _checks_after_charging(gateway, mailer, order_id, amount):
    receipt_id = await _charge(gateway, order_id, amount)
    if amount <= 0:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


async def _swapped_arguments(gateway, mailer, order_id, amount):
    if amount <= 0:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    try:
        receipt_id = await gateway.charge(amount, order_id)
    except ref.GatewayUnavailable:
        receipt_id = await gateway.charge(amount, order_id)
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


async def _returns_order_id(gateway, mailer, order_id, amount):
    await ref.place_order(gateway, mailer, order_id, amount)
    return order_id


async def _no_retry(gateway, mailer, order_id, amount):
    return await _placed(gateway, mailer, order_id, amount, tries=1)


async def _three_tries(gateway, mailer, order_id, amount):
    return await _placed(gateway, mailer, order_id, amount, tries=3)


async def _swallows_second_failure(gateway, mailer, order_id, amount):
    try:
        return await ref.place_order(gateway, mailer, order_id, amount)
    except ref.GatewayUnavailable:
        return None


async def _retries_declined(gateway, mailer, order_id, amount):
    return await _placed(gateway, mailer, order_id, amount, retried=(ref.GatewayUnavailable, ref.PaymentDeclined))


async def _receipt_when_declined(gateway, mailer, order_id, amount):
    if amount <= 0:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    try:
        receipt_id = await _charge(gateway, order_id, amount)
    except ref.PaymentDeclined:
        await mailer.send_receipt(order_id, None)
        raise
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


async def _receipt_not_awaited(gateway, mailer, order_id, amount):
    if amount <= 0:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    receipt_id = await _charge(gateway, order_id, amount)
    pending = mailer.send_receipt(order_id, receipt_id)  # the bug: no `await`
    # (Closed here, so that Python's "never awaited" warning cannot be what fails the learner's test.)
    if inspect.iscoroutine(pending):
        pending.close()
    return receipt_id


async def _receipt_twice(gateway, mailer, order_id, amount):
    receipt_id = await ref.place_order(gateway, mailer, order_id, amount)
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


globals().update(
    mutation_suite(
        ex,
        "07.1",
        reference=ref.place_order,
        mutants={
            "accepts_zero": _accepts_zero,
            "checks_after_charging": _checks_after_charging,
            "swapped_arguments": _swapped_arguments,
            "returns_order_id": _returns_order_id,
            "no_retry": _no_retry,
            "three_tries": _three_tries,
            "swallows_second_failure": _swallows_second_failure,
            "retries_declined": _retries_declined,
            "receipt_when_declined": _receipt_when_declined,
            "receipt_not_awaited": _receipt_not_awaited,
            "receipt_twice": _receipt_twice,
        },
        # The learner's side_effect raises the learner module's exceptions: the code under test
        # must catch those very classes.
        shared=("PaymentDeclined", "GatewayUnavailable"),
    )
)


# --- 07.2 the db_conn and db_pool fixtures ------------------------------------------------------

def _has_no_calls(mock: Any) -> bool:
    return getattr(mock, "mock_calls", None) == []


@contextlib.asynccontextmanager
async def _entered(make: Any, what: str, fix: str) -> AsyncIterator[Any]:
    """`async with make() as value`, with a failure in words when the mock is no async context manager."""
    try:
        manager = make()
    except TypeError as error:
        pytest.fail(f"`{what}` failed: TypeError: {error}. {fix}", pytrace=False)
    if inspect.iscoroutine(manager):
        manager.close()  # no "never awaited" warning: our message says what is wrong
        pytest.fail(f"`async with {what}` failed: TypeError: 'coroutine' object does not support the asynchronous "
                    f"context manager protocol. {fix}", pytrace=False)
    try:
        enter, leave = type(manager).__aenter__, type(manager).__aexit__
    except AttributeError as error:
        pytest.fail(f"`async with {what}` failed: {type(manager).__name__} is no async context manager ({error}). {fix}",
                    pytrace=False)
    value = await _bounded(enter(manager), f"entering `async with {what}`")
    try:
        yield value
    except BaseException as error:
        if not await _bounded(leave(manager, type(error), error, error.__traceback__), f"leaving `async with {what}`"):
            raise
    else:
        await _bounded(leave(manager, None, None, None), f"leaving `async with {what}`")


_ACQUIRE_FIX = ("Pool.acquire is a plain method that returns an async context manager, so `pool.acquire()` must not "
                "be a coroutine (as AsyncMock's is): build the pool with create_autospec(asyncpg.Pool, instance=True) "
                "or MagicMock(spec=asyncpg.Pool), and set pool.acquire.return_value.__aenter__.return_value = db_conn")
_TRANSACTION_FIX = ("Connection.transaction is a plain method that returns an async context manager: make db_conn "
                    "create_autospec(asyncpg.Connection, instance=True), whose transaction() is a MagicMock")


# Building an autospec'd asyncpg mock costs a tenth of a second (it copies every method and its
# signature), so the checks share two tests, one of them with a connection only. Both check that
# their mocks start with no calls, and both make calls: a mock shared between tests fails the second.

_FRESH = ("{name} must be a new mock for each test, with no calls recorded: create it inside the fixture (a mock "
          "made once and shared by all the tests carries the calls of earlier tests into later ones)")


def _refuses_attribute(mock: Any, name: str, real: str) -> None:
    try:
        getattr(mock, name)
    except AttributeError:
        return
    pytest.fail(f"{name} did not raise AttributeError: a mock without a spec makes up any attribute, so a typo in the "
                f"code under test goes unnoticed. Give it the real class: create_autospec({real}, instance=True)",
                pytrace=False)


async def _raises_through(make: Any, what: str, fix: str) -> None:
    error = ValueError("raised inside the block")
    try:
        async with _entered(make, what, fix):
            raise error
    except ValueError as caught:
        require(caught is error, f"the ValueError raised inside `async with {what}` must come out as it is")
    else:
        pytest.fail(f"a ValueError raised inside `async with {what}` disappeared: the mock's __aexit__ answered a true "
                    "value, which swallows it. A bare AsyncMock() as __aexit__ does that (it answers a truthy mock): "
                    "keep MagicMock's own __aexit__, which answers False", pytrace=False)


@pytest.mark.exercise("07.2", promise=("fresh", "conn_spec", "conn_await", "conn_signature", "transaction", "propagates"))
@pytest.mark.asyncio
async def test_db_conn_is_shaped_like_a_connection(db_conn):
    require(_has_no_calls(db_conn), _FRESH.format(name="db_conn"))
    _refuses_attribute(db_conn, "fetch_one", "asyncpg.Connection")
    for method in ("fetch", "fetchrow", "fetchval", "execute"):
        command = getattr(db_conn, method, None)
        require(command is not None, f"db_conn must have the methods of asyncpg.Connection, e.g. {method}")
        try:
            await _bounded(command("SELECT 1"), f"await db_conn.{method}(...)")
        except TypeError as error:
            pytest.fail(f"`await db_conn.{method}('SELECT 1')` failed: TypeError: {error}. The query methods of a "
                        "Connection are coroutines: create_autospec(asyncpg.Connection, instance=True) makes them "
                        "AsyncMocks", pytrace=False)
        require(hasattr(command, "assert_awaited_once_with"),
                f"db_conn.{method} must record its awaits (be an AsyncMock), so a test can assert_awaited_once_with()")
        command.assert_awaited_once_with("SELECT 1")
    try:
        # On Python 3.11 and 3.12 an autospec'd coroutine method refuses the call itself; from 3.13
        # on, only the await. Either way the TypeError comes out of this line.
        await _bounded(db_conn.fetchval(), "await db_conn.fetchval()")
    except TypeError:
        pass
    else:
        pytest.fail("`await db_conn.fetchval()` (without a query) was accepted: the real fetchval requires one. "
                    "A spec alone does not check arguments; create_autospec(asyncpg.Connection, instance=True) does",
                    pytrace=False)
    async with _entered(db_conn.transaction, "db_conn.transaction()", _TRANSACTION_FIX):
        await _bounded(db_conn.execute("UPDATE users SET name = $1", "Ada"), "await db_conn.execute(...)")
    await _raises_through(db_conn.transaction, "db_conn.transaction()", _TRANSACTION_FIX)


@pytest.mark.exercise("07.2", promise=("fresh", "acquire", "propagates", "pool_spec", "transaction", "conn_await"))
@pytest.mark.asyncio
async def test_db_pool_hands_out_db_conn(db_conn, db_pool):
    require(_has_no_calls(db_conn), _FRESH.format(name="db_conn"))
    require(_has_no_calls(db_pool), _FRESH.format(name="db_pool"))
    for _ in range(2):
        async with _entered(db_pool.acquire, "db_pool.acquire()", _ACQUIRE_FIX) as conn:
            require(conn is db_conn, f"`async with db_pool.acquire() as conn` must give db_conn itself, not {conn!r}: "
                                     "set pool.acquire.return_value.__aenter__.return_value = db_conn")
    await _raises_through(db_pool.acquire, "db_pool.acquire()", _ACQUIRE_FIX)
    # Code written for asyncpg runs on the two mocks as they are.
    db_conn.fetchval.return_value = "Ann"
    with _quiet_coroutines():
        try:
            old = await _bounded(ex.rename_user(db_pool, 7, "Ada"), "rename_user(db_pool, 7, 'Ada')")
        except TypeError as error:
            pytest.fail(f"rename_user(db_pool, ...) failed with TypeError: {error}. `async with pool.acquire()` and "
                        "`async with conn.transaction()` need async context managers (MagicMocks), the queries "
                        "awaitables (AsyncMocks): create_autospec(asyncpg.Pool / asyncpg.Connection, instance=True) "
                        "gives both", pytrace=False)
    require(old == "Ann", f"with db_conn.fetchval answering 'Ann', rename_user must return 'Ann', not {old!r}: "
                          "the connection rename_user gets from the pool must be db_conn")
    db_conn.execute.assert_awaited_once_with(ANY, 7, "Ada")
    _refuses_attribute(db_pool, "get_connection", "asyncpg.Pool")


# --- 07.3 redis_mock -------------------------------------------------------------------------------

def _made(data: dict[str, str] | None = None) -> Any:
    return ex.redis_mock() if data is None else ex.redis_mock(data)


async def _await_command(redis: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    shown = ", ".join([*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    try:
        return await _bounded(getattr(redis, name)(*args, **kwargs), f"await redis.{name}({shown})")
    except TypeError as error:
        pytest.fail(f"`await redis.{name}({shown})` failed: TypeError: {error}. In redis-py, Redis.{name} is a plain "
                    f"method that returns an awaitable, so a spec'd mock's {name} answers a MagicMock: set "
                    f"`redis.{name} = AsyncMock(side_effect=...)` by hand", pytrace=False)


@pytest.mark.exercise("07.3", promise="spec")
def test_redis_mock_is_specd_on_redis():
    redis = _made()
    require(isinstance(redis, Redis), "isinstance(redis_mock(), Redis) must be True: spec it on Redis "
                                      "(MagicMock(spec=Redis))")
    try:
        redis.gett
    except AttributeError:
        pass
    else:
        pytest.fail("redis_mock().gett did not raise AttributeError: without a spec, a mock accepts any command, "
                    "typos included. Start from MagicMock(spec=Redis)", pytrace=False)


@pytest.mark.exercise("07.3", promise=("awaitable", "get"))
@pytest.mark.asyncio
async def test_redis_mock_get_answers_from_data():
    redis = _made({"user:1": "Ada"})
    require(await _await_command(redis, "get", "user:1") == "Ada",
            "await redis.get('user:1') must answer 'Ada', the value stored under that key in `data`")
    require(await _await_command(redis, "get", "user:2") is None,
            "await redis.get(key) must answer None for a key `data` does not hold (a cache miss)")
    require(isinstance(redis.get, AsyncMock), "redis.get must be an AsyncMock, so that it records its awaits")
    require(redis.get.await_count == 2, f"redis.get must record its awaits: 2 awaits, it recorded {redis.get.await_count}")
    redis.get.assert_awaited_with("user:2")


@pytest.mark.exercise("07.3", promise=("awaitable", "set", "get"))
@pytest.mark.asyncio
async def test_redis_mock_set_stores_the_value():
    redis = _made()
    answer = await _await_command(redis, "set", "user:1", "Ada")
    require(answer is True, f"await redis.set(key, value) must answer True, as Redis does, not {answer!r}")
    require(await _await_command(redis, "get", "user:1") == "Ada",
            "after await redis.set('user:1', 'Ada'), await redis.get('user:1') must answer 'Ada'")
    require(isinstance(redis.set, AsyncMock), "redis.set must be an AsyncMock, so that it records its awaits")
    redis.set.assert_awaited_once_with("user:1", "Ada")


@pytest.mark.exercise("07.3", promise=("set", "awaitable"))
@pytest.mark.asyncio
async def test_redis_mock_set_accepts_an_expiry():
    data: dict[str, str] = {}
    redis = _made(data)
    require(await _await_command(redis, "set", "session:1", "token", ex=60) is True,
            "await redis.set(key, value, ex=60) must answer True")
    require(data == {"session:1": "token"}, "redis.set(key, value, ex=60) must store the value in `data`, the dict redis_mock was given, even when it "
            f"starts empty (it holds {data})")
    redis.set.assert_awaited_once_with("session:1", "token", ex=60)


@pytest.mark.exercise("07.3", promise=("delete", "awaitable"))
@pytest.mark.asyncio
async def test_redis_mock_delete_counts_what_it_removed():
    data = {"a": "1", "b": "2", "c": "3"}
    redis = _made(data)
    removed = await _await_command(redis, "delete", "a", "b", "missing")
    require(removed == 2, f"await redis.delete('a', 'b', 'missing') must answer 2 (the keys that were there), not {removed!r}")
    require(data == {"c": "3"}, f"redis.delete must remove the keys from `data`; it holds {data}")
    require(isinstance(redis.delete, AsyncMock), "redis.delete must be an AsyncMock, so that it records its awaits")
    redis.delete.assert_awaited_once_with("a", "b", "missing")


@pytest.mark.exercise("07.3", promise="same_dict")
@pytest.mark.asyncio
async def test_redis_mock_uses_the_dict_it_was_given():
    data: dict[str, str] = {}  # empty, so falsy: `data or {}` would replace it
    redis = _made(data)
    await _await_command(redis, "set", "k", "v")
    require(data == {"k": "v"}, "redis_mock(data) must store into `data` itself, even when it starts empty, so the test "
                                "can look into it: `store = {} if data is None else data` (`data or {}` replaces an "
                                "empty dict)")


@pytest.mark.exercise("07.3", promise="same_dict")
@pytest.mark.asyncio
async def test_redis_mock_without_data_starts_empty_each_time():
    first = _made()
    await _await_command(first, "set", "k", "v")
    second = _made()
    require(await _await_command(second, "get", "k") is None,
            "a second redis_mock() must start from a new empty dict, not from what the first one stored")


# --- 07.4 tests for convert, graded by mutation --------------------------------------------------

def _missing_raises(rates: dict[str, float], source: str, target: str) -> float:
    if target not in rates:
        raise LookupError(f"no rate from {source} to {target}")
    return rates[target]


async def _converted(amount: float, source: str, target: str, *, upper: bool = True, same_seen_raw: bool = False,
                     ask_same: bool = False, asks: int = 1, positional: bool = False, divide: bool = False,
                     rounded: bool = True, rate_of: Any = _missing_raises) -> float:
    """The reference's convert, with each of its decisions as a parameter that a mutant turns the wrong way."""
    same = source == target if same_seen_raw else source.upper() == target.upper()
    if upper:
        source, target = source.upper(), target.upper()
    if same and not ask_same:
        return round(amount, 2)
    for _ in range(asks):
        api = ref.RatesAPI()  # the learner's RatesAPI, with the learner's patch on it
        rates = await (api.latest(source, [target]) if positional else api.latest(source, symbols=[target]))
    if same:
        return round(amount, 2)
    rate = rate_of(rates, source, target)
    result = amount / rate if divide else amount * rate
    return round(result, 2) if rounded else result


def _mutant(**wrong: Any) -> Any:
    async def convert(amount: float, source: str, target: str) -> float:
        return await _converted(amount, source, target, **wrong)

    return convert


globals().update(
    mutation_suite(
        ex,
        "07.4",
        reference=ref.convert,
        mutants={
            "positional_symbols": _mutant(positional=True),
            "asks_twice": _mutant(asks=2),
            "divides": _mutant(divide=True),
            "no_rounding": _mutant(rounded=False),
            "keeps_case": _mutant(upper=False),
            "asks_for_same_currency": _mutant(ask_same=True),
            "case_sensitive_same": _mutant(same_seen_raw=True),
            "missing_as_zero": _mutant(rate_of=lambda rates, source, target: rates.get(target, 0.0)),
            # KeyError('XYZ'): a LookupError too, with another message
            "missing_as_key_error": _mutant(rate_of=lambda rates, source, target: rates[target]),
        },
        # The learner patches their module's RatesAPI: the code under test must create that very class.
        shared=("RatesAPI",),
    )
)
