"""Grading tests for chapter 01 (exercises/01_pytest_asyncio.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pytest_asyncio

from workbook.testing import fixture_steps, learner_fixtures, load_reference, load_target, mutation_suite

ex = load_target("01_pytest_asyncio")
ref = load_reference("01_pytest_asyncio")
globals().update(learner_fixtures(ex))


# --- 01.1 tests for TokenBucket, graded by mutation ------------------------------------------

class _StartsOneShort(ref.TokenBucket):
    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.tokens = capacity - 1


class _NeverTakes(ref.TokenBucket):
    async def take(self) -> bool:
        async with self._lock:
            await asyncio.sleep(0)
            return True  # says yes, removes nothing


class _GoesBelowZero(ref.TokenBucket):
    async def take(self) -> bool:
        async with self._lock:
            await asyncio.sleep(0)
            self.tokens -= 1  # counts the token as taken even when there was none
            return self.tokens >= 0


class _RefillsOne(ref.TokenBucket):
    async def refill(self, n: int) -> None:
        async with self._lock:
            await asyncio.sleep(0)
            self.tokens = min(self.capacity, self.tokens + 1)


class _RefillsToFull(ref.TokenBucket):
    async def refill(self, n: int) -> None:
        async with self._lock:
            await asyncio.sleep(0)
            self.tokens = self.capacity


class _OneTooMany(ref.TokenBucket):
    async def take(self) -> bool:
        async with self._lock:
            await asyncio.sleep(0)
            if self.tokens < 0:  # off by one: an empty bucket still says yes once
                return False
            self.tokens -= 1
            return True


class _NeverRefills(ref.TokenBucket):
    async def refill(self, n: int) -> None:
        await asyncio.sleep(0)


class _Overfills(ref.TokenBucket):
    async def refill(self, n: int) -> None:
        async with self._lock:
            await asyncio.sleep(0)
            self.tokens += n  # no cap at capacity


globals().update(
    mutation_suite(
        ex,
        "01.1",
        reference=ref.TokenBucket,
        mutants={"starts_one_short": _StartsOneShort, "never_takes": _NeverTakes, "one_too_many": _OneTooMany,
                 "goes_below_zero": _GoesBelowZero, "never_refills": _NeverRefills, "refills_one": _RefillsOne,
                 "refills_to_full": _RefillsToFull, "overfills": _Overfills},
    )
)


# --- 01.2 the module-scoped worker fixture -----------------------------------------------------
# The learner's fixture is checked twice: as pytest runs it (the tests below share it on the
# module's loop, and worker_watch checks its task after the module's teardown), and by hand
# (test_worker_teardown_cancels_and_awaits_its_task drives a fresh copy and watches the
# moment its teardown ends, with a deadline, so a wrong teardown gets a clear message).
on_module_loop = pytest.mark.asyncio(loop_scope="module")

_NOT_SHARED = ("each test got a different worker: the fixture must be created once per module "
               "(`@pytest_asyncio.fixture(scope=\"module\", loop_scope=\"module\")`)")
_OTHER_LOOP = ("the worker task runs on another event loop than the module's tests: the fixture needs "
               "`scope=\"module\", loop_scope=\"module\"`, and create_task() must be called inside it")
_STILL_RUNNING = ("{when}, the worker task was still running: after `yield`, cancel the task and then await it "
                  "(cancel() alone only asks it to stop; awaiting it waits until it has)")
_NEVER_ENDS = ("the teardown never finished: it awaits the task without cancelling it first "
               "(call task.cancel(), then await it)")

#: What the by-hand check found wrong with the teardown (then worker_watch stays silent: one message is enough).
_teardown_problems: list[str] = []


def _teardown_problem(message: str) -> None:
    _teardown_problems.append(message)
    pytest.fail(message, pytrace=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker_watch():
    """Every Worker the tests saw; after the module, check that each one's task has finished.

    Requested before `worker`, so it is set up before the learner's fixture and torn down
    after it, while the module's loop still runs (a task that was only cancelled, never
    awaited, is not finished yet at that point).
    """
    seen: list[object] = []
    yield seen
    running = [w for w in seen if isinstance(getattr(w, "task", None), asyncio.Task) and not w.task.done()]
    if running and not _teardown_problems:
        pytest.fail(_STILL_RUNNING.format(when="When the module's teardown ended"), pytrace=False)


def _watch(seen: list[object], worker: object) -> None:
    seen.append(worker)
    if not isinstance(worker, ex.Worker):
        pytest.fail(f"the worker fixture must yield a Worker, not {type(worker).__name__}", pytrace=False)
    if not all(w is worker for w in seen):
        pytest.fail(_NOT_SHARED, pytrace=False)


async def _join(worker: ex.Worker) -> None:
    try:
        async with asyncio.timeout(1):
            await worker.queue.join()
    except TimeoutError:
        pytest.fail("`await queue.join()` never returned: the worker task must take each job with `await queue.get()` "
                    "and call `queue.task_done()` after it", pytrace=False)


@pytest.mark.exercise("01.2", promise=("loop", "shared"))
@on_module_loop
async def test_worker_task_runs_on_the_tests_event_loop(worker_watch, worker):
    _watch(worker_watch, worker)
    if not isinstance(worker.task, asyncio.Task):
        pytest.fail("Worker.task must be the asyncio.Task made by asyncio.create_task()", pytrace=False)
    if worker.task.get_loop() is not asyncio.get_running_loop():
        pytest.fail(_OTHER_LOOP, pytrace=False)
    if worker.task.done():
        pytest.fail("the worker task has already stopped: it must keep taking jobs until the teardown", pytrace=False)


@pytest.mark.exercise("01.2", promise=("jobs", "task_done"))
@on_module_loop
async def test_worker_does_each_job_in_order(worker_watch, worker):
    _watch(worker_watch, worker)
    before = len(worker.results)  # the worker is shared: other tests may have used it already
    for job in ("hello", "async"):
        worker.queue.put_nowait(job)
    await _join(worker)
    assert worker.results[before:] == ["HELLO", "ASYNC"], (
        f"after the jobs 'hello' and 'async', results must end with ['HELLO', 'ASYNC'], not {worker.results[before:]}"
    )


@pytest.mark.exercise("01.2", promise=("shared", "jobs"))
@on_module_loop
async def test_worker_is_the_same_in_every_test_of_the_module(worker_watch, worker):
    _watch(worker_watch, worker)
    worker.queue.put_nowait("again")
    await _join(worker)
    assert worker.results[-1:] == ["AGAIN"], "the shared worker must still do jobs in a later test"


# The last two tests of the module. The plugin sorts `workbook_summary` tests to the end, and
# these are defined after the 01.1 suite, so they run last, in this order. Their results are
# also the ones a report prefers for 01.2, which is right: they say what is wrong with the teardown.

@pytest.mark.exercise("01.2", promise=("teardown", "no_escape"))
@pytest.mark.workbook_summary
@pytest.mark.asyncio
async def test_worker_teardown_cancels_and_awaits_its_task():
    # Run a fresh copy of the learner's fixture function by hand, outside pytest's fixture
    # machinery, to look at its task at the very moment the teardown ends.
    steps = await fixture_steps(ex.worker, "worker")
    worker = await anext(steps)  # the set-up, up to `yield`
    task = getattr(worker, "task", None)
    try:
        if not isinstance(task, asyncio.Task):
            pytest.fail("Worker.task must be the asyncio.Task made by asyncio.create_task()", pytrace=False)
        try:
            async with asyncio.timeout(1):
                await anext(steps)  # the teardown, after `yield`
        except StopAsyncIteration:
            pass  # the generator finished: the teardown ran to its end
        except TimeoutError:
            _teardown_problem(_NEVER_ENDS)
        except asyncio.CancelledError:
            _teardown_problem("CancelledError escaped the teardown: awaiting a task you cancelled raises it. Catch it "
                              "there (`try: await task` / `except asyncio.CancelledError:`): it is the worker's, which "
                              "you asked for; re-raise only if your own task is being cancelled "
                              "(`if asyncio.current_task().cancelling(): raise`)")
        else:
            _teardown_problem("the fixture yields more than once: yield the Worker once, then clean up")
        if not task.done():
            _teardown_problem(_STILL_RUNNING.format(when="When the teardown ended"))
        if not task.cancelled():
            _teardown_problem("the teardown must stop the task with task.cancel()")
    finally:
        if isinstance(task, asyncio.Task) and not task.done():  # leave nothing running behind us
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await steps.aclose()


# The module's last test: the module's teardown (the learner's worker, then worker_watch's
# check) happens in its teardown. It must pass, because pytest-timeout stops timing a test that
# failed; and if the teardown is known to hang, it stops the worker first, so that the teardown
# ends at once instead of costing the 5 s budget (the test above already said what is wrong).
@pytest.mark.exercise("01.2", promise="teardown")
@pytest.mark.workbook_summary
@on_module_loop
async def test_worker_module_teardown_comes_next(worker_watch):
    if _NEVER_ENDS in _teardown_problems:
        for watched in worker_watch:
            task = getattr(watched, "task", None)
            if isinstance(task, asyncio.Task):
                task.cancel()
