"""Chapter 08: concurrency: gather, ordering, error aggregation, TaskGroup.

Read notebooks/08_concurrency.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 08`. Stuck? `python3 -m workbook hint 08.1`.

Nothing in this chapter measures time. Concurrency is proven by overlap: a counter of the
calls in flight, an `asyncio.Barrier` that opens only when N calls wait at it together, and
events that decide which call finishes first. A test that times a run with a stopwatch
fails on a busy machine and passes for code that is not concurrent at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pytest
import pytest_asyncio

K = TypeVar("K")
T = TypeVar("T")


# --- 08.1 (implement): fetch with a limit, in a TaskGroup ---------------------------------------

async def fetch_all(fetch: Callable[[K], Awaitable[T]], keys: Iterable[K], *, limit: int) -> list[T]:
    """Return the results of `await fetch(key)` for every key, with up to `limit` calls running at once.

    `fetch_all(client.get, ["a", "b", "c"], limit=2)` is `[await client.get(k) for k in keys]`,
    only faster. The grading tests check that:
    - the results come back in the order of `keys`, whatever order the calls finish in;
    - the calls overlap: with at least `limit` keys, `limit` calls are in flight at the same time;
    - never more than `limit` calls are in flight at once;
    - a waiting call starts as soon as a running one finishes, not when a whole batch has finished;
    - when a call fails, the other calls (running or not started yet) are cancelled,
      and the caller gets an ExceptionGroup that holds the error (catch it with `except* ValueError:`);
    - by the time that ExceptionGroup reaches the caller, every call has ended;
    - `limit` must be at least 1: otherwise ValueError, and `fetch` is not even called;
    - it works the same whether the loop starts tasks lazily or eagerly (asyncio.eager_task_factory,
      Python 3.12+).
    """
    # SOLUTION BEGIN 08.1
    if limit < 1:  # refuse before anything starts
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    keys = list(keys)
    # A Semaphore is the limit: each call holds one of its `limit` places while it runs and gives it
    # back the moment it ends, so a waiting call starts at once (no batches waiting for their slowest).
    places = asyncio.Semaphore(limit)

    async def one(key: K) -> T:
        async with places:
            return await fetch(key)

    # The TaskGroup waits for every task. When one fails, it cancels the others (those still waiting
    # for a place too), waits until they have ended, then raises an ExceptionGroup of the failures.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(key)) for key in keys]
    # The tasks list is in the order of `keys`: that, not the finishing order, is the result's order.
    return [task.result() for task in tasks]
    # SOLUTION END


# --- 08.2 (fixture): a counter of calls in flight -------------------------------------------------

class Tracker:
    """Counts how many calls of the functions it wraps are running at the same time (for tests).

    - `tracker.wrap(fetch)` returns an async function that runs `await fetch(*args, **kwargs)`
      and returns its result, or raises its error unchanged;
    - while a wrapped call runs, `now` counts it and `running` holds the task that runs it
      (`asyncio.current_task()`); both go back down however the call ends (it returns, raises,
      or is cancelled);
    - `peak` is the most wrapped calls that were ever running at the same time.
    """

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        #: the task of each wrapped call in progress (one entry per call)
        self.running: list[asyncio.Task[Any]] = []

    def wrap(self, fetch: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        # SOLUTION BEGIN 08.2
        async def counted(*args: Any, **kwargs: Any) -> T:
            task = asyncio.current_task()
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.running.append(task)
            try:
                return await fetch(*args, **kwargs)
            finally:
                # However the call ends (a result, an error, a CancelledError), it is no longer running.
                self.now -= 1
                self.running.remove(task)

        return counted
        # SOLUTION END


@pytest_asyncio.fixture
async def tracker():
    """Yield a new Tracker for each test.

    After the test, if wrapped calls are still running (something the test started was never
    awaited), cancel their tasks and wait at most 0.1 s for them to end; then fail the test
    with pytest.fail(), with a message that says how many calls were left running, e.g.
    "2 tracked calls were still running after the test". When every wrapped call has ended,
    the teardown does nothing else.
    """
    # SOLUTION BEGIN 08.2
    tracker = Tracker()
    yield tracker
    left = list(tracker.running)
    if not left:
        return
    for task in left:
        task.cancel()
    # asyncio.wait with a timeout never raises: after 0.1 s it returns, even for a task that ignores
    # its cancellation. A teardown must never hang.
    await asyncio.wait(set(left), timeout=0.1)
    count = len(left)
    pytest.fail(f"{count} tracked call{'s were' if count != 1 else ' was'} still running after the test: "
                "await (or cancel) every task the test starts", pytrace=False)
    # SOLUTION END


# --- 08.3 (test): tests for gather: order, overlap and every error ------------------------------

async def load_prices(source, skus: list[str]) -> list[float]:
    """Ask `await source.price(sku)` for every sku, concurrently, and return the prices.

    - It asks for all of them at once: every call is in flight before any of them has answered.
    - The prices come back in the order of `skus`, whatever order the calls finish in.
    - When calls fail, it raises an ExceptionGroup holding every error, not only the first;
    - one failure does not stop the others: every call runs to its end before the ExceptionGroup
      is raised.

    This one is finished: do not change it. Write tests for it below.
    """
    # gather keeps the order of its arguments; return_exceptions=True lets every call run to its
    # end and puts each error in its place in the list instead of raising the first one.
    results = await asyncio.gather(*(source.price(sku) for sku in skus), return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {len(skus)} prices failed", errors)
    return results


# Your tests: async functions named test_load_prices_..., each marked @pytest.mark.asyncio.
# Grading runs them against the code above (they must pass) and against broken copies of it
# (at least one of your tests must fail on each). Prove things by counting and ordering, never
# with a stopwatch: a fake source that counts its calls in flight (or your `tracker` from 08.2),
# and that decides in which order its calls finish with `await asyncio.sleep(0)` turns.

# SOLUTION BEGIN 08.3
#| @pytest.mark.asyncio
#| async def test_load_prices_keeps_the_order_of_the_skus():
#|     # TODO(08.3): a fake source whose later skus answer first, then compare the list
#|     raise NotImplementedError
class _Prices:
    """A fake price source. `prices[sku]`: a price, or an exception to raise. The call for a sku
    takes `turns[sku]` turns of the event loop (`await asyncio.sleep(0)`), 0 by default: the
    turns, not a clock, decide which call finishes first."""

    def __init__(self, prices: dict[str, Any], turns: dict[str, int] | None = None) -> None:
        self.prices = prices
        self.turns = turns or {}
        self.in_flight = 0
        self.peak = 0
        self.finished: list[str] = []  # in the order the calls ended (answered or failed)
        self.cancelled: list[str] = []

    async def price(self, sku: str) -> float:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0)  # every call waits at least once, as a real request would
            for _ in range(self.turns.get(sku, 0)):
                await asyncio.sleep(0)
            self.finished.append(sku)
            value = self.prices[sku]
            if isinstance(value, Exception):
                raise value
            return value
        except asyncio.CancelledError:
            self.cancelled.append(sku)
            raise
        finally:
            self.in_flight -= 1


@pytest.mark.asyncio
async def test_load_prices_keeps_the_order_of_the_skus():
    # A answers last and C first: the list must still follow the skus.
    source = _Prices({"A": 1.0, "B": 2.0, "C": 3.0}, turns={"A": 4, "B": 2})
    assert await load_prices(source, ["A", "B", "C"]) == [1.0, 2.0, 3.0]
    assert source.finished == ["C", "B", "A"]  # the fake really did finish them in reverse


@pytest.mark.asyncio
async def test_load_prices_asks_for_all_prices_at_once():
    source = _Prices({"A": 1.0, "B": 2.0, "C": 3.0})
    await load_prices(source, ["A", "B", "C"])
    # A counter, not a stopwatch: one call at a time would never have had 3 in flight.
    assert source.peak == 3


@pytest.mark.asyncio
async def test_load_prices_raises_every_error_in_a_group():
    # B fails first, D fails later: the group must hold both, and nothing else.
    source = _Prices({"A": 1.0, "B": LookupError("no price for B"), "C": 3.0, "D": ValueError("bad price for D")},
                     turns={"D": 3})
    with pytest.RaisesGroup(pytest.RaisesExc(LookupError, match="B"), pytest.RaisesExc(ValueError, match="D")):
        await load_prices(source, ["A", "B", "C", "D"])


@pytest.mark.asyncio
async def test_load_prices_lets_every_call_finish_when_one_fails():
    source = _Prices({"A": LookupError("no price for A"), "B": 2.0}, turns={"B": 3})
    with pytest.RaisesGroup(LookupError):
        await load_prices(source, ["A", "B"])
    assert source.cancelled == []  # B was not cancelled because A failed...
    assert sorted(source.finished) == ["A", "B"]  # ...it ran to its end before the error was raised
# SOLUTION END
