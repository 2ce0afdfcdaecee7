"""Chapter 06: exceptions and timeouts.

Read notebooks/06_exceptions_timeouts.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 06`. Stuck? `python3 -m workbook hint 06.1`.

Nothing in this chapter sleeps for real. A call that "never answers" waits on an
`asyncio.Event` that nobody sets, and a deadline is a tiny `asyncio.timeout(0.01)`:
a timeout test then takes 10 ms, not seconds.
"""

from __future__ import annotations

import asyncio
import math
import re  # for your tests: re.escape()
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import pytest_asyncio

T = TypeVar("T")


# --- 06.1 (test): tests for error types, messages and causes --------------------------------

class SettingError(ValueError):
    """A setting is missing or its value cannot be used. `name` is the setting's name."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"setting {name!r} {problem}")


class MemorySettings:
    """Settings kept in a dict, read with `await settings.get(name)` (given; use it in your tests).

    `MemorySettings({"stock.deadline": "250ms"})`; `get` returns None for a name it does not have.
    """

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self._values = dict(values or {})

    async def get(self, name: str) -> str | None:
        await asyncio.sleep(0)  # stands for a round trip to Redis or a configuration service
        return self._values.get(name)


_UNITS = {"ms": 0.001, "s": 1.0}


async def load_deadline(settings: MemorySettings, name: str) -> float:
    """Read the deadline setting `name` and return it in seconds.

    '250ms' -> 0.25, '2s' -> 2.0, '1.5s' -> 1.5; spaces around the value are ignored.
    Every problem raises SettingError, a subclass of ValueError, whose `.name` is `name`:
    - no such setting: "setting 'stock.deadline' is missing";
    - a value that is not a number followed by ms or s, e.g. '2 sec':
      "setting 'stock.deadline' = '2 sec' is not a duration (write e.g. 250ms or 2s)",
      raised `from` the ValueError that says what was wrong (so that one is its __cause__);
    - zero or less, e.g. '0s': "setting 'stock.deadline' = '0s' must be more than 0 s".

    This one is finished: do not change it. Write tests for it below.
    """
    raw = await settings.get(name)
    if raw is None:
        raise SettingError(name, "is missing")
    text = raw.strip()
    unit = "ms" if text.endswith("ms") else "s" if text.endswith("s") else ""
    try:
        number = float(text[: len(text) - len(unit)])  # ValueError for '2 sec', 'abc', ''
        if not unit or not math.isfinite(number):
            raise ValueError(f"expected a number followed by ms or s, got {text!r}")
    except ValueError as error:
        # `from error` keeps the low-level reason as __cause__; the message speaks to the user.
        raise SettingError(name, f"= {raw!r} is not a duration (write e.g. 250ms or 2s)") from error
    seconds = number * _UNITS[unit]
    if seconds <= 0:
        raise SettingError(name, f"= {raw!r} must be more than 0 s")
    return seconds


# Your tests: async functions named test_load_deadline_..., each marked @pytest.mark.asyncio.
# Grading runs them against the code above (they must pass) and against broken copies of it
# (at least one of your tests must fail on each).

@pytest.mark.asyncio
async def test_load_deadline_reports_a_missing_setting():
    # TODO(06.1): `with pytest.raises(SettingError, match=...) as excinfo:` around the await,
    # then check excinfo.value after the block
    raise NotImplementedError


# --- 06.2 (implement): a deadline that raises your own error -----------------------------------

class ServiceTimeout(Exception):
    """A service did not answer within its deadline (given).

    `ServiceTimeout("stock", 0.5)` has `.service == "stock"`, `.seconds == 0.5` and the
    message "stock did not answer within 0.5 s".
    """

    def __init__(self, service: str, seconds: float) -> None:
        self.service = service
        self.seconds = seconds
        super().__init__(f"{service} did not answer within {seconds} s")


async def call_with_deadline(service: str, operation: Callable[[], Awaitable[T]], seconds: float) -> T:
    """Return `await operation()`, but give up after `seconds` with ServiceTimeout(service, seconds).

    `operation` is a function that makes the awaitable, e.g. `lambda: client.get(key)`: nothing
    starts before call_with_deadline decides to start it.
    The grading tests check that:
    - when the operation answers in time, its result is returned;
    - past the deadline, ServiceTimeout(service, seconds) is raised, not the built-in TimeoutError,
      and the TimeoutError is its __cause__ (`raise ... from error`);
    - when ServiceTimeout reaches the caller, the operation has already been cancelled and its
      cleanup (its `finally:` blocks) has run;
    - any other exception from the operation reaches the caller unchanged (a ValueError stays a
      ValueError), and so does a TimeoutError that the operation raises itself (from a deadline of
      its own, shorter than `seconds`): only the expiry of *your* deadline is a ServiceTimeout;
    - when the caller's own task is cancelled during the wait, CancelledError goes on up: a
      cancellation is not a timeout;
    - and then the operation is cancelled too: by the time the caller's task has ended, the
      operation's cleanup (its `finally:` blocks) has run; nothing is left running;
    - `seconds` must be more than 0: otherwise ValueError, and `operation` is not even called.
    """
    # TODO(06.2): your code here. Stuck? Run `python3 -m workbook hint 06.2`.
    raise NotImplementedError


# --- 06.3 (fixture): a fake service that never answers ----------------------------------------

class HangingBackend:
    """A fake stock backend whose calls never answer until it is released (for tests).

    - `await backend.level(sku)` appends `sku` to `calls`, sets `started`, and then waits,
      without sleeping, until `release()` is called; then it returns 0.
    - While a call waits, `waiting` counts it; it goes back down however the call ends.
    - A call cancelled while it waits (by a timeout, or because its task was cancelled)
      appends `sku` to `cancelled`, then lets the CancelledError go on: it never swallows it.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.waiting = 0
        #: set by the first call: lets a test wait until the request has really arrived
        self.started = asyncio.Event()
        self._released = asyncio.Event()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let every waiting call, and every later one, return 0."""
        self._released.set()

    async def level(self, sku: str) -> int:
        # TODO(06.3): your code here. Stuck? Run `python3 -m workbook hint 06.3`.
        raise NotImplementedError


@pytest_asyncio.fixture
async def hanging_backend():
    """Yield a new HangingBackend for each test.

    After the test, release it, so that a call the test left waiting returns, and wait until
    no call is waiting any more: nothing the test started is left hanging for the next tests.
    Wait at most 1 s: even if some call never ends, the teardown must not hang (after 1 s it
    may raise TimeoutError or just return). The grading tests check that the backend is new and
    not released during the test, and that after the teardown it is released and a call left
    waiting has finished.
    """
    # TODO(06.3): your code here. Stuck? Run `python3 -m workbook hint 06.3`.
    raise NotImplementedError


# --- 06.4 (test): tests for a client with a deadline --------------------------------------------

class StockClient:
    """Asks the stock backend how many items of a product are left, within a deadline (given).

    - `await client.level(sku)` returns what `await backend.level(sku)` returns, if the backend
      answers within `deadline` seconds;
    - otherwise it gives up at the deadline: the backend call is cancelled, and
      ServiceTimeout("stock", deadline) is raised once that call is over, with the TimeoutError
      as its __cause__;
    - when the caller cancels a call, CancelledError goes on up (and the backend call is cancelled).

    This one is finished: do not change it. Write tests for it below.
    """

    service = "stock"

    def __init__(self, backend, *, deadline: float) -> None:
        self.backend = backend
        self.deadline = deadline

    async def level(self, sku: str) -> int:
        try:
            # On Python 3.11, wait_for runs the backend call in a new Task and cancels that task at
            # the deadline; from 3.12 on it is built on `asyncio.timeout`. Either way the outcome
            # here is the same: the call is cancelled and has ended, then TimeoutError is raised.
            return await asyncio.wait_for(self.backend.level(sku), self.deadline)
        except TimeoutError as error:
            raise ServiceTimeout(self.service, self.deadline) from error


# Your tests: async functions named test_stock_client_..., each marked @pytest.mark.asyncio.
# They may use your `hanging_backend` fixture (finish 06.3 first), or fakes of their own.
# Keep every wait tiny (a deadline like 0.01) and bounded: a test that hangs is stopped
# after 5 s and costs the whole budget.

@pytest.mark.asyncio
async def test_stock_client_gives_up_at_its_deadline(hanging_backend):
    # TODO(06.4): StockClient(hanging_backend, deadline=0.01), then pytest.raises(...)
    raise NotImplementedError
