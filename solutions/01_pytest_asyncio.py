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

# SOLUTION BEGIN 01.1
#| @pytest.mark.asyncio
#| async def test_token_bucket_starts_full():
#|     # TODO(01.1): create a TokenBucket, await its methods, assert on what they return
#|     raise NotImplementedError
@pytest.mark.asyncio
async def test_token_bucket_starts_full():
    bucket = TokenBucket(3)
    assert bucket.tokens == 3
    # A full bucket of 3 lets exactly 3 requests through.
    assert [await bucket.take() for _ in range(3)] == [True, True, True]


@pytest.mark.asyncio
async def test_token_bucket_refuses_when_empty():
    # The boundary: the request right after the last token must be refused.
    bucket = TokenBucket(2)
    assert await bucket.take() is True
    assert await bucket.take() is True
    assert await bucket.take() is False
    assert bucket.tokens == 0


@pytest.mark.asyncio
async def test_token_bucket_refill_lets_requests_through_again():
    bucket = TokenBucket(1)
    assert await bucket.take() is True
    await bucket.refill(1)
    assert await bucket.take() is True


@pytest.mark.asyncio
async def test_token_bucket_refill_puts_back_exactly_n():
    # Refill by a number between 1 and the capacity: a refill that ignored n would put back
    # one token, or fill the bucket up, and the counts below would differ.
    bucket = TokenBucket(3)
    assert [await bucket.take() for _ in range(3)] == [True, True, True]
    await bucket.refill(2)
    assert bucket.tokens == 2
    assert [await bucket.take() for _ in range(3)] == [True, True, False]


@pytest.mark.asyncio
async def test_token_bucket_never_holds_more_than_its_capacity():
    # Refilling a full bucket must not store extra tokens for later.
    bucket = TokenBucket(2)
    await bucket.refill(5)
    assert bucket.tokens == 2
    assert [await bucket.take() for _ in range(3)] == [True, True, False]
# SOLUTION END


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


# SOLUTION BEGIN 01.2
#| @pytest_asyncio.fixture  # TODO(01.2): one worker for the whole module, on the module's event loop
# One worker for the whole module (scope), created on the loop that lives as long as the
# module (loop_scope). The tests that use it must run on that loop too: they are marked
# @pytest.mark.asyncio(loop_scope="module").
@pytest_asyncio.fixture(scope="module", loop_scope="module")
# SOLUTION END
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
    # SOLUTION BEGIN 01.2
    queue: asyncio.Queue[str] = asyncio.Queue()
    results: list[str] = []

    async def work() -> None:
        while True:
            job = await queue.get()
            try:
                results.append(await shout(job))
            finally:
                queue.task_done()  # lets `await queue.join()` return, even if shout() failed

    # create_task schedules the task on the running loop: the module's loop, thanks to loop_scope.
    task = asyncio.create_task(work())
    yield Worker(queue=queue, results=results, task=task)
    # Teardown: cancel() only asks the task to stop; awaiting it waits until it really has.
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        # The worker ended cancelled, as we asked: this CancelledError is its, and we may stop it
        # here (chapter 06: never swallow a cancellation that is not yours). But if our own task is
        # being cancelled too (someone stopped the test run), that one must go on up.
        if asyncio.current_task().cancelling():
            raise
    # SOLUTION END
