"""Chapter 11: retries and resilience without real sleeping.

Read notebooks/11_retries.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 11`. Stuck? `python3 -m workbook hint 11.1`.

Nothing in this chapter really waits. Code that waits takes its `sleep` as an argument and
code that looks at the time takes its `clock`: a test passes fakes, so a backoff of 1 s, 2 s,
4 s is checked in microseconds, and "30 seconds later" is one assignment.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


# --- given: a fake sleep and a fake clock, for your tests ----------------------------------------

class FakeSleep:
    """A stand-in for asyncio.sleep that does not wait (given; pass it as `sleep=`).

    `await fake(seconds)` appends `seconds` to `delays`, adds them to `now` (the virtual time
    slept so far), and gives the event loop one turn, as a real sleep would: other tasks run,
    and a cancellation can land there.
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # one turn of the loop, not a wait


class FakeClock:
    """A clock that stands still until the test moves it (given; pass it as `clock=`).

    `clock()` returns `now`; `clock.advance(seconds)` moves it forward.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- 11.1 (implement): a circuit breaker on an injected clock -------------------------------------

class CircuitOpen(Exception):
    """Raised instead of calling the service while the circuit is open (given)."""


class CircuitBreaker:
    """Stops calling a service that keeps failing, for a while: a circuit breaker.

    `breaker = CircuitBreaker(failures=3, reset_after=30.0, clock=time.monotonic)`, then
    `await breaker.call(operation)`, where `operation` is an async function without arguments.
    The grading tests check that:
    - while the circuit is closed, `call` returns `await operation()`, and the operation's errors
      go up unchanged;
    - after `failures` failures in a row, the circuit opens: from then on a call raises
      CircuitOpen at once, without calling the operation;
    - a success resets the count of failures in a row;
    - once at least `reset_after` seconds have passed on `clock` since the circuit opened, the
      next call is tried: if it succeeds, the circuit closes (and `failures` failures in a row
      are needed to open it again); if it fails, its error goes up and the circuit opens again at
      once, for another `reset_after` seconds;
    - it reads the time only from `clock()`, and never sleeps;
    - a cancellation (asyncio.CancelledError) is not a failure: it goes up and is not counted;
    - `failures` must be at least 1 and `reset_after` more than 0: otherwise ValueError.
    """

    def __init__(self, *, failures: int, reset_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        # SOLUTION BEGIN 11.1
        #| # TODO(11.1): check the arguments and keep them, with the state you need
        #| raise NotImplementedError
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures!r}")
        if not reset_after > 0:  # `not ... > 0` also refuses NaN
            raise ValueError(f"reset_after must be more than 0, got {reset_after!r}")
        self.failures = failures
        self.reset_after = reset_after
        self.clock = clock
        self._in_a_row = 0  # failures in a row while closed
        self._opened_at: float | None = None  # clock() when the circuit opened; None while closed
        # SOLUTION END

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Return `await operation()`, unless the circuit is open: then raise CircuitOpen."""
        # SOLUTION BEGIN 11.1
        #| # TODO(11.1): refuse while open; count failures; open, half-open, close
        #| raise NotImplementedError
        if self._opened_at is not None and self.clock() - self._opened_at < self.reset_after:
            raise CircuitOpen(f"the circuit is open: no call before {self._opened_at + self.reset_after}")
        # Closed, or open for long enough: this call is tried ("half-open" when open).
        trial = self._opened_at is not None
        try:
            result = await operation()
        except Exception:
            # `except Exception`, not BaseException: a CancelledError says nothing about the service.
            self._in_a_row += 1
            if trial or self._in_a_row >= self.failures:
                self._opened_at = self.clock()  # read after the failure: the wait starts now
            raise  # the caller gets the operation's own error, unchanged
        self._in_a_row = 0
        self._opened_at = None
        return result
        # SOLUTION END


# --- 11.2 (fixture): a scripted operation, and a fixture that checks every script was used -------

class ScriptExhausted(AssertionError):
    """A ScriptedOperation was called more times than its script has outcomes (given)."""


class ScriptedOperation:
    """A fake operation that answers from a script, one outcome per call (for tests).

    `operation = ScriptedOperation([ConnectionError("down"), "ok"])`, then `await operation()`:
    - each call uses the next outcome of the script: an exception (an instance or a class) is
      raised, anything else is returned;
    - `calls` counts the calls, and `left` is how many outcomes have not been used yet;
    - a call past the end of the script raises ScriptExhausted (it counts as a call too), whose
      message says how many outcomes the script had.
    """

    def __init__(self, outcomes: Iterable[Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    @property
    def left(self) -> int:
        return max(0, len(self.outcomes) - self.calls)

    async def __call__(self) -> Any:
        # SOLUTION BEGIN 11.2
        await asyncio.sleep(0)  # a real call would wait for the network: give the loop a turn too
        number = self.calls
        self.calls += 1
        if number >= len(self.outcomes):
            # An AssertionError: no retry helper should retry it, so it reaches the test.
            raise ScriptExhausted(f"call {number + 1} of a script that has only {len(self.outcomes)} outcomes")
        outcome = self.outcomes[number]
        if isinstance(outcome, BaseException) or (isinstance(outcome, type) and issubclass(outcome, BaseException)):
            raise outcome
        return outcome
        # SOLUTION END


@pytest.fixture
def scripted():
    """A factory of ScriptedOperations that checks, after the test, that every script was used up.

    `operation = scripted(ConnectionError("down"), "ok")` returns a ScriptedOperation with that
    script; each call of the factory makes a new one. After the test: if an operation it made
    still has outcomes left, fail the test with pytest.fail(), with a message that says how many
    outcomes were never used (e.g. "1 scripted outcome was never used"): code that gave up too
    early fails the test even when the test forgot to count the calls. When every script was
    used up, the teardown does nothing.
    """
    # SOLUTION BEGIN 11.2
    made: list[ScriptedOperation] = []

    def make(*outcomes: Any) -> ScriptedOperation:
        operation = ScriptedOperation(outcomes)
        made.append(operation)  # remembered, to be checked after the test
        return operation

    yield make
    # The teardown: like `assert_all_called` in HTTP mocking libraries. A strict fake catches the
    # bug that stops too early, which a test that only checks the result would miss.
    unused = sum(operation.left for operation in made)
    if unused:
        pytest.fail(f"{unused} scripted outcome{'s were' if unused > 1 else ' was'} never used: "
                    "the code under test stopped calling too early", pytrace=False)
    # SOLUTION END


# --- 11.3 (test): tests for a retry helper with backoff and jitter --------------------------------

async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.1,
    max_delay: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    random: Callable[[], float] = _random.random,
) -> T:
    """Return `await operation()`, and try again when it fails with one of the `retry_on` errors.

    - It calls `operation()` up to `attempts` times and returns the first result it gets (it stops there).
    - An error that is not one of `retry_on` goes up at once, unchanged: it is never retried.
    - When the last attempt fails too, its error goes up unchanged: the last error, not the first.
    - Between two attempts it waits, and only between two: never before the first attempt nor
      after the last one.
    - The n-th wait has a cap of `base_delay * 2 ** (n - 1)`: the cap doubles each time
      (0.1, 0.2, 0.4 ... with the defaults), but is never more than `max_delay`.
    - The wait itself is `random() * cap` (full jitter): somewhere between 0 and the cap, never
      above it, so that many clients that failed together do not all come back together.
    - It waits only by awaiting `sleep(delay)`: a test passes a fake sleep and never really waits
      (and a fake `random`, e.g. `lambda: 0.5`, to know each delay in advance).
    - `attempts` must be at least 1: otherwise ValueError.

    This one is finished: do not change it. Write tests for it below.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except retry_on:
            if attempt == attempts:
                raise  # the last error, with its own traceback
        cap = min(max_delay, base_delay * 2 ** (attempt - 1))
        await sleep(random() * cap)
    raise AssertionError("unreachable")  # pragma: no cover


# Your tests: async functions named test_retry_..., each marked @pytest.mark.asyncio.
# Grading runs them against the code above (they must pass) and against broken copies of it
# (at least one of your tests must fail on each). Never let them really sleep: pass
# `sleep=FakeSleep()` (and `random=lambda: 0.5`). Make the operations with ScriptedOperation
# (finish 11.2 first) and check their `calls` in each test.

# SOLUTION BEGIN 11.3
#| @pytest.mark.asyncio
#| async def test_retry_returns_after_two_failures():
#|     # TODO(11.3): operation = ScriptedOperation([ConnectionError(), ConnectionError(), "ok"]), then
#|     # retry(operation, sleep=FakeSleep(), random=lambda: 0.5) and check the result, the calls, the delays
#|     raise NotImplementedError
def _half() -> float:
    return 0.5


def _script(*outcomes):
    # The class itself, not the `scripted` fixture: each test checks `calls` on its own.
    return ScriptedOperation(outcomes)


@pytest.mark.asyncio
async def test_retry_returns_the_first_result_after_failures():
    operation = _script(ConnectionError("down"), TimeoutError("slow"), "ok")
    fake = FakeSleep()
    assert await retry(operation, attempts=3, sleep=fake, random=_half) == "ok"
    assert operation.calls == 3
    # Two waits, between the three calls: half of 0.1, then half of 0.2 (the cap doubles).
    assert fake.delays == pytest.approx([0.05, 0.1])


@pytest.mark.asyncio
async def test_retry_stops_at_the_first_success():
    operation = _script("ok")  # a second call would raise ScriptExhausted
    fake = FakeSleep()
    assert await retry(operation, attempts=3, sleep=fake, random=_half) == "ok"
    assert operation.calls == 1
    assert fake.delays == []


@pytest.mark.asyncio
async def test_retry_gives_up_with_the_last_error():
    last = ConnectionError("third")
    operation = _script(ConnectionError("first"), ConnectionError("second"), last)
    fake = FakeSleep()
    with pytest.raises(ConnectionError) as excinfo:
        await retry(operation, attempts=3, sleep=fake, random=_half)
    assert excinfo.value is last  # the last error, unchanged; not the first, not a new one
    assert operation.calls == 3
    assert len(fake.delays) == 2  # no wait after the last attempt: it would only delay the error


@pytest.mark.asyncio
async def test_retry_does_not_retry_other_errors():
    error = ValueError("bad request")
    operation = _script(error)
    fake = FakeSleep()
    with pytest.raises(ValueError) as excinfo:
        await retry(operation, sleep=fake, random=_half)
    assert excinfo.value is error
    assert operation.calls == 1
    assert fake.delays == []


@pytest.mark.asyncio
async def test_retry_backs_off_up_to_the_cap_with_full_jitter():
    operation = _script(*[ConnectionError()] * 6, "ok")
    # random() == 1.0 is the top of the jitter: each wait is then the cap itself.
    top = FakeSleep()
    await retry(operation, attempts=7, base_delay=0.1, max_delay=1.0, sleep=top, random=lambda: 1.0)
    assert top.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    # The same failures with random() == 0.25: a quarter of each cap, never above max_delay.
    quarter = FakeSleep()
    operation = _script(*[ConnectionError()] * 6, "ok")
    await retry(operation, attempts=7, base_delay=0.1, max_delay=1.0, sleep=quarter, random=lambda: 0.25)
    assert quarter.delays == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.25, 0.25])


@pytest.mark.asyncio
async def test_retry_refuses_zero_attempts():
    operation = _script()  # an empty script: any call would fail the test
    with pytest.raises(ValueError):
        await retry(operation, attempts=0, sleep=FakeSleep())
    assert operation.calls == 0
# SOLUTION END
