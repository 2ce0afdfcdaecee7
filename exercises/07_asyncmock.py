"""Chapter 07: AsyncMock: return values, side effects, await assertions, patching.

Read notebooks/07_asyncmock.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 07`. Stuck? `python3 -m workbook hint 07.1`.

Nothing in this chapter needs a server: every collaborator is a mock, shaped like the real API
it stands for (an asyncpg pool, a redis.asyncio client, a web service's client).
"""

from __future__ import annotations

import re  # for your tests: re.escape()
from collections.abc import Sequence
from unittest.mock import ANY, AsyncMock, MagicMock, call, create_autospec, patch  # noqa: F401 (for your tests)

import asyncpg
import pytest
from redis.asyncio import Redis


# --- 07.1 (test): tests with AsyncMock: answers, errors and awaits ----------------------------

class PaymentDeclined(Exception):
    """The gateway refused the payment (e.g. the card was declined): trying again will not help."""


class GatewayUnavailable(Exception):
    """The gateway could not be reached this time: one more try may work."""


async def place_order(gateway, mailer, order_id: str, amount: int) -> str:
    """Charge an order, email its receipt, and return the receipt id.

    `gateway` and `mailer` are async clients (in your tests: AsyncMocks).
    - `amount` (in cents) must be more than 0: otherwise ValueError, and nothing is charged;
    - it charges with `await gateway.charge(order_id, amount)`, which answers a receipt id,
      and returns that receipt id;
    - a GatewayUnavailable from the gateway is tried once more (two charges at most);
    - if the second one fails too, that GatewayUnavailable goes on up and no receipt is sent;
    - a PaymentDeclined goes on up at once: it is never retried, and no receipt is sent;
    - after a successful charge it awaits `mailer.send_receipt(order_id, receipt_id)` exactly once.

    This one is finished: do not change it. Write tests for it below.
    """
    if amount <= 0:
        raise ValueError(f"amount must be more than 0 cents, got {amount}")
    try:
        receipt_id = await gateway.charge(order_id, amount)
    except GatewayUnavailable:
        # One more try. If it fails too, its GatewayUnavailable goes on up, before any receipt.
        receipt_id = await gateway.charge(order_id, amount)
    await mailer.send_receipt(order_id, receipt_id)
    return receipt_id


# Your tests: async functions named test_place_order_..., each marked @pytest.mark.asyncio.
# Make `gateway` and `mailer` AsyncMocks; grading runs your tests against the code above (they must
# pass) and against broken copies of it (at least one of your tests must fail on each).

@pytest.mark.asyncio
async def test_place_order_returns_the_receipt_id():
    gateway, mailer = AsyncMock(), AsyncMock()
    gateway.charge.return_value = "r-1"
    # TODO(07.1): call place_order, check what it returns and what it awaited
    #             (gateway.charge.assert_awaited_once_with(...), mailer.send_receipt...)
    raise NotImplementedError


# --- 07.2 (fixture): mocks shaped like an asyncpg pool ----------------------------------------

async def rename_user(pool, user_id: int, name: str) -> str:
    """Rename a user in one transaction and return the old name (given: use it to try your fixtures).

    Raises LookupError when there is no such user.
    """
    async with pool.acquire() as conn:
        async with conn.transaction():
            old = await conn.fetchval("SELECT name FROM users WHERE id = $1 FOR UPDATE", user_id)
            if old is None:
                raise LookupError(f"no user {user_id}")
            await conn.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)
    return old


@pytest.fixture
def db_conn():
    """A mock of an asyncpg Connection: a new mock for each test, with no calls recorded.

    - a method asyncpg.Connection does not have (a typo such as `conn.fetch_one`) raises AttributeError;
    - its query methods (`fetch`, `fetchrow`, `fetchval`, `execute`) can be awaited and record
      their awaits (`db_conn.fetchval.assert_awaited_once_with(...)` works);
    - a call with arguments the real method does not accept (`await conn.fetchval()`, without
      a query) raises TypeError;
    - `async with conn.transaction():` works, as on a real connection.

    A fixture that only builds mocks needs no event loop: a plain `@pytest.fixture` will do.
    """
    # TODO(07.2): your code here. Stuck? Run `python3 -m workbook hint 07.2`.
    raise NotImplementedError


@pytest.fixture
def db_pool(db_conn):
    """A mock of an asyncpg Pool that hands out `db_conn`: a new mock for each test.

    - `async with pool.acquire() as conn:` gives `db_conn`, the very same object, every time;
    - an exception raised inside `async with pool.acquire()` or `async with conn.transaction()`
      goes on out of the block: the mock never swallows it;
    - a method asyncpg.Pool does not have (e.g. `pool.get_connection`) raises AttributeError.

    `AsyncMock()` is not a pool: its `acquire()` returns a coroutine, and `async with` refuses
    a coroutine (TypeError).
    """
    # TODO(07.2): your code here. Stuck? Run `python3 -m workbook hint 07.2`.
    raise NotImplementedError


# --- 07.3 (implement): a Redis mock whose commands can be awaited -------------------------------

def redis_mock(data: dict[str, str] | None = None) -> MagicMock:
    """A mock of redis.asyncio.Redis whose commands can be awaited, backed by the dict `data`.

    `create_autospec(Redis)`, `MagicMock(spec=Redis)` and `AsyncMock(spec=Redis)` alone do not do:
    in redis-py, `Redis.get` and `Redis.set` are plain methods that return an awaitable, so their
    mocks answer a MagicMock, and `await` refuses it. Return a mock that:
    - is spec'd on Redis: a command Redis does not have (a typo such as `redis.gett`) raises
      AttributeError, and `isinstance(mock, Redis)` is True;
    - `get`, `set` and `delete` are AsyncMocks: they can be awaited and record their awaits
      (`mock.get.assert_awaited_once_with("k")` works);
    - `await mock.get(key)` answers the value stored under `key` in `data`, or None for a key it does not hold;
    - `await mock.set(key, value)` stores `value` under `key` in `data` and answers True; it also
      accepts `ex=seconds` (recorded in its awaits, not enforced);
    - `await mock.delete(*keys)` removes those keys from `data` and answers how many of them were there;
    - `data` is used as it is, not copied: the test can look into it; without `data`, start from a new empty dict.
    """
    # TODO(07.3): your code here. Stuck? Run `python3 -m workbook hint 07.3`.
    raise NotImplementedError


# --- 07.4 (test): tests that patch a coroutine method, with autospec ----------------------------

class RatesAPI:
    """The exchange-rate service's client (given). It would call the internet: in tests, patch it."""

    def __init__(self, base_url: str = "https://rates.example.com") -> None:
        self.base_url = base_url

    async def latest(self, base: str, *, symbols: Sequence[str]) -> dict[str, float]:
        """The latest rates from `base` to each of `symbols`, e.g. {"USD": 1.0837}.

        Currencies the service does not know are left out of the answer. `symbols` is keyword-only.
        """
        raise RuntimeError("RatesAPI.latest would call the internet: patch it in your tests "
                           "(patch.object(RatesAPI, 'latest', autospec=True))")


async def convert(amount: float, source: str, target: str) -> float:
    """Convert `amount` from currency `source` to currency `target` at the latest rate.

    - it asks `await RatesAPI().latest(source, symbols=[target])` once, and returns
      `round(amount * rate, 2)`, where `rate` is the answer's entry for `target`;
    - currency codes are case-insensitive: it upper-cases them, and asks the API in upper case;
    - the same currency on both sides (e.g. 'EUR' and 'eur'): it returns `round(amount, 2)`
      without asking the API at all;
    - a `target` missing from the API's answer raises LookupError("no rate from EUR to XYZ").

    This one is finished: do not change it. Write tests for it below.
    """
    source, target = source.upper(), target.upper()
    if source == target:
        return round(amount, 2)
    rates = await RatesAPI().latest(source, symbols=[target])
    if target not in rates:
        raise LookupError(f"no rate from {source} to {target}")
    return round(amount * rates[target], 2)


# Your tests: async functions named test_convert_..., each marked @pytest.mark.asyncio.
# convert() makes its own RatesAPI(), so you cannot pass it a mock: patch RatesAPI.latest, e.g.
# `with patch.object(RatesAPI, "latest", autospec=True) as latest:`. With autospec, the mock has
# the real signature: a call the real method would refuse raises TypeError.

@pytest.mark.asyncio
async def test_convert_uses_the_latest_rate():
    with patch.object(RatesAPI, "latest", autospec=True) as latest:
        latest.return_value = {"USD": 1.0837}
        # TODO(07.4): call convert, check its answer and how latest was awaited
        raise NotImplementedError
