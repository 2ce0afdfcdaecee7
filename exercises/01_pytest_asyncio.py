"""Chapter 01: pytest-asyncio essentials: markers, modes, event-loop scopes.

Read notebooks/01_pytest_asyncio.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 01`. Stuck? `python3 -m workbook hint 01.1`.

The workbook runs pytest-asyncio in strict mode: every async test needs
`@pytest.mark.asyncio`, and every async fixture needs `@pytest_asyncio.fixture`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
import pytest_asyncio


# --- 01.1 (test): write async tests for given code ------------------------------------------

class TokenBucket:
    """A rate limiter: a bucket that holds at most `capacity` tokens; each request takes one out.

    - A new bucket is full: `bucket.tokens == capacity`.
    - `await bucket.take()` takes one token and returns True. When the bucket is empty it takes
      nothing and returns False: the request must wait or be refused.
    - `await bucket.refill(n)` puts `n` tokens back, but the bucket never holds more than `capacity`.

    This one is finished: do not change it. Write tests for it below.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.tokens = capacity
        # Many tasks may share one bucket; the lock makes each check-and-update one step.
        self._lock = asyncio.Lock()

    async def take(self) -> bool:
        async with self._lock:
            await asyncio.sleep(0)  # stands for a round trip to a shared store, e.g. Redis
            if self.tokens == 0:
                return False
            self.tokens -= 1
            return True

    async def refill(self, n: int) -> None:
        async with self._lock:
            await asyncio.sleep(0)
            self.tokens = min(self.capacity, self.tokens + n)


# Your tests: async functions named test_token_bucket_..., each marked with @pytest.mark.asyncio
# (without it, strict mode fails the test with "async def functions are not natively supported").
# A module-level `pytestmark = pytest.mark.asyncio` near the top of this file works too.
# Grading runs them against the code above (they must pass) and against broken copies of
# it (at least one of your tests must fail on each).

@pytest.mark.asyncio
async def test_token_bucket_starts_full():
    # TODO(01.1): create a TokenBucket, await its methods, assert on what they return
    raise NotImplementedError


# --- 01.2 (fixture): a module-scoped async fixture on a module-scoped loop -------------------

async def shout(job: str) -> str:
    """The work to do for one job (given): 'hello' -> 'HELLO'."""
    await asyncio.sleep(0)
    return job.upper()


@dataclass
class Worker:
    """What the `worker` fixture yields (given)."""

    #: Tests put jobs (strings) here.
    queue: asyncio.Queue[str]
    #: The worker appends `await shout(job)` here for each job, in the order the jobs came.
    results: list[str]
    #: The background task that takes jobs from the queue and does them.
    task: asyncio.Task[None]


@pytest_asyncio.fixture  # TODO(01.2): one worker for the whole module, on the module's event loop
async def worker():
    """Yield a `Worker` whose background task does every job put on its queue.

    The grading tests check that:
    - the fixture is created once per module: every test of the module gets the same Worker;
    - its task runs on the same event loop as the module's tests (marked `loop_scope="module"`);
    - each job put on `queue` ends up, shouted, in `results`, in order; after each job the task
      calls `queue.task_done()`, so that `await queue.join()` returns once every job is done;
    - after the module (at teardown), the task has been cancelled AND awaited: it is finished
      before the loop goes away, and no CancelledError escapes the teardown.

    Awaiting the task you cancelled raises its CancelledError: that one you asked for, so stop it.
    Only when your own task is being cancelled too (`asyncio.current_task().cancelling()` is not 0)
    does a CancelledError belong to you: re-raise it then (the notebook, "Tasks a test forgets").
    """
    # TODO(01.2): your code here. Stuck? Run `python3 -m workbook hint 01.2`.
    raise NotImplementedError
