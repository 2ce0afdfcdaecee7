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
    # TODO(08.1): your code here. Stuck? Run `python3 -m workbook hint 08.1`.
    raise NotImplementedError


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
        # TODO(08.2): your code here. Stuck? Run `python3 -m workbook hint 08.2`.
        raise NotImplementedError


@pytest_asyncio.fixture
async def tracker():
    """Yield a new Tracker for each test.

    After the test, if wrapped calls are still running (something the test started was never
    awaited), cancel their tasks and wait at most 0.1 s for them to end; then fail the test
    with pytest.fail(), with a message that says how many calls were left running, e.g.
    "2 tracked calls were still running after the test". When every wrapped call has ended,
    the teardown does nothing else.
    """
    # TODO(08.2): your code here. Stuck? Run `python3 -m workbook hint 08.2`.
    raise NotImplementedError


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

@pytest.mark.asyncio
async def test_load_prices_keeps_the_order_of_the_skus():
    # TODO(08.3): a fake source whose later skus answer first, then compare the list
    raise NotImplementedError
