"""Grading tests for chapter 08 (exercises/08_concurrency.py).

Nothing here measures time. The fakes decide when each call finishes (an Event per key, or a
number of loop turns), concurrency is read off a counter of calls in flight, and every wait for
the learner's code is bounded twice: by loop turns (TURNS), so a correct answer is seen at once,
and by GUARD seconds, so a hung answer fails fast with a message instead of reaching
pytest-timeout's 5 s.

08.1 also runs under an eager task factory (asyncio.eager_task_factory, Python 3.12+): there a
task starts running inside create_task(). On 3.11 that variant is skipped; every other check,
and so every verdict, is the same on all versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from workbook.testing import fixture_steps, learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("08_concurrency")
ref = load_reference("08_concurrency")
globals().update(learner_fixtures(ex))

#: seconds: how long these tests wait for the learner's code before saying it hangs
GUARD = 1.0
#: loop turns a correct answer may take to get where a check expects it
TURNS = 50

#: the task start modes 08.1 must work under; eager tasks exist from Python 3.12 on
LOOPS = [
    pytest.param("lazy", id="lazy"),
    pytest.param("eager", id="eager", marks=pytest.mark.skipif(
        not hasattr(asyncio, "eager_task_factory"), reason="eager tasks need Python 3.12+")),
]


@contextlib.contextmanager
def _tasks_start(kind: str) -> Iterator[None]:
    """Make the running loop start new tasks lazily (the default) or eagerly, for the block."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    if kind == "eager":
        loop.set_task_factory(asyncio.eager_task_factory)
    try:
        yield
    finally:
        loop.set_task_factory(previous)


async def _turns_until(condition: Callable[[], bool], task: asyncio.Task[Any] | None = None) -> bool:
    """Give the loop up to TURNS turns for `condition` to hold; re-raise what `task` raised if it ended."""
    for _ in range(TURNS):
        if condition():
            return True
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            task.result()  # a stub's NotImplementedError, or the learner's own error
        await asyncio.sleep(0)
    return condition()


async def _finish(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        async with asyncio.timeout(GUARD):
            await task


# --- 08.1 fetch_all -------------------------------------------------------------------------------

class _Gated:
    """A fake `fetch`: the call for a key waits until the test finishes that key.

    `finish(key)` makes it return key.upper(); `finish(key, error)` makes it raise `error`.
    """

    def __init__(self) -> None:
        self.gates: dict[Any, asyncio.Event] = {}
        self.outcomes: dict[Any, Any] = {}
        self.started: list[Any] = []
        self.finished: list[Any] = []
        self.cancelled: list[Any] = []
        self.in_flight = 0
        self.peak = 0

    def _gate(self, key: Any) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    def finish(self, key: Any, outcome: Any = None) -> None:
        if outcome is not None:
            self.outcomes[key] = outcome
        self._gate(key).set()

    async def __call__(self, key: Any) -> Any:
        self.started.append(key)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self._gate(key).wait()
            outcome = self.outcomes.get(key, str(key).upper())
            self.finished.append(key)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.in_flight -= 1


async def _result(task: asyncio.Task[Any], what: str) -> Any:
    """The result of fetch_all's task, bounded: a hang fails with `what` was waited for."""
    try:
        async with asyncio.timeout(GUARD):
            return await asyncio.shield(task)
    except TimeoutError:
        pytest.fail(f"fetch_all did not return {GUARD} s after {what}", pytrace=False)


def _start(fetch: _Gated, keys: list[str], limit: int) -> asyncio.Task[Any]:
    return asyncio.create_task(ex.fetch_all(fetch, keys, limit=limit))


@contextlib.asynccontextmanager
async def _running(loop: str, fetch: _Gated, keys: list[str], limit: int) -> AsyncIterator[asyncio.Task[Any]]:
    """fetch_all(fetch, keys, limit=limit) in a task, on a loop that starts tasks `loop`-ly; ended after."""
    with _tasks_start(loop):
        task = _start(fetch, keys, limit)
        try:
            yield task
        finally:
            for key in keys:
                fetch.finish(key)
            await _finish(task)


async def _until_in_flight(fetch: _Gated, task: asyncio.Task[Any], count: int, limit: int, keys: list[str]) -> None:
    if not await _turns_until(lambda: fetch.in_flight >= count, task):
        pytest.fail(f"fetch_all(fetch, {keys}, limit={limit}) had only {fetch.peak} call(s) in flight at once: "
                    f"{count} must run at the same time. Start every call as a task (asyncio.TaskGroup) instead "
                    "of awaiting them one after another", pytrace=False)


@pytest.mark.exercise("08.1", promise=("overlap", "eager"))
@pytest.mark.asyncio
@pytest.mark.parametrize("loop", LOOPS)
async def test_fetch_all_runs_limit_calls_at_the_same_time(loop):
    fetch, keys = _Gated(), ["a", "b", "c", "d", "e"]
    async with _running(loop, fetch, keys, 3) as task:
        await _until_in_flight(fetch, task, 3, 3, keys)
        for key in keys:
            fetch.finish(key)
        result = await _result(task, "every call had answered")
    require(result == ["A", "B", "C", "D", "E"], f"fetch_all must return the results of the calls, in the order of "
                                                  f"the keys: expected ['A', 'B', 'C', 'D', 'E'], got {result!r}")


@pytest.mark.exercise("08.1", promise=("limit", "eager"))
@pytest.mark.asyncio
@pytest.mark.parametrize("loop", LOOPS)
async def test_fetch_all_never_runs_more_than_limit_calls(loop):
    fetch, keys = _Gated(), ["a", "b", "c", "d", "e"]
    async with _running(loop, fetch, keys, 2) as task:
        await _until_in_flight(fetch, task, 2, 2, keys)
        for _ in range(TURNS):  # give any extra call every chance to start
            await asyncio.sleep(0)
        require(fetch.peak <= 2, f"with limit=2, {fetch.peak} calls were in flight at once: let at most `limit` "
                                 "calls run at a time (each one inside `async with` an asyncio.Semaphore(limit))")
        for key in keys:
            fetch.finish(key)
            await asyncio.sleep(0)
        await _result(task, "every call had answered")
    require(fetch.peak <= 2, f"with limit=2, {fetch.peak} calls were in flight at once: let at most `limit` calls run "
                             "at a time")


@pytest.mark.exercise("08.1", promise=("order", "eager"))
@pytest.mark.asyncio
@pytest.mark.parametrize("loop", LOOPS)
async def test_fetch_all_keeps_the_order_of_the_keys(loop):
    fetch, keys = _Gated(), ["a", "b", "c"]
    async with _running(loop, fetch, keys, 3) as task:
        for key in reversed(keys):  # c answers first, a last
            fetch.finish(key)
            await _turns_until(lambda: key in fetch.finished, task)
        result = await _result(task, "every call had answered")
    require(result == ["A", "B", "C"], f"the calls finished in the order c, b, a, and fetch_all returned {result!r}: "
                                      "the results must follow the order of the keys (['A', 'B', 'C']), not the order "
                                      "the calls finish in. Keep the tasks in a list made in the order of the keys")


@pytest.mark.exercise("08.1", promise=("refill", "eager"))
@pytest.mark.asyncio
@pytest.mark.parametrize("loop", LOOPS)
async def test_fetch_all_starts_a_waiting_call_as_soon_as_a_place_is_free(loop):
    fetch, keys = _Gated(), ["a", "b", "c"]
    async with _running(loop, fetch, keys, 2) as task:
        await _until_in_flight(fetch, task, 2, 2, keys)
        first = fetch.started[0]
        fetch.finish(first)
        started = await _turns_until(lambda: len(fetch.started) == 3, task)
        require(started, f"with limit=2, when {first!r} finished, the third call did not start while the other one "
                         "was still running: a batch waits for its slowest call. Give each place back the "
                         "moment its call ends (asyncio.Semaphore), so a waiting call starts at once")
        for key in keys:
            fetch.finish(key)
        await _result(task, "every call had answered")


async def _failing_run(fetch: _Gated, error: Exception) -> tuple[BaseException | None, int]:
    """fetch_all over a, b, c, d with limit=2, where the second call to start fails.

    Returns what reached the caller, and how many calls were still in flight at that moment.
    """
    keys = ["a", "b", "c", "d"]
    async with _running("lazy", fetch, keys, 2) as task:
        await _until_in_flight(fetch, task, 2, 2, keys)
        fetch.finish(fetch.started[1], error)
        try:
            async with asyncio.timeout(GUARD):
                result = await task
        except TimeoutError:
            pytest.fail(f"after a call failed, fetch_all was still running {GUARD} s later: cancel the other calls "
                        "(an asyncio.TaskGroup does) and let the error out", pytrace=False)
        except BaseException as raised:  # an ExceptionGroup, or whatever else the learner's code let out
            if isinstance(raised, NotImplementedError):
                raise
            return raised, fetch.in_flight
        pytest.fail(f"a call raised {error!r}, but fetch_all returned {result!r}: let the error reach the caller, "
                    "inside an ExceptionGroup", pytrace=False)


@pytest.mark.exercise("08.1", promise="group")
@pytest.mark.asyncio
async def test_fetch_all_raises_the_error_in_an_exception_group():
    error = LookupError("no such key: 'b'")
    raised, _ = await _failing_run(_Gated(), error)
    if raised is error:
        pytest.fail("the failing call's LookupError reached the caller on its own: it must come inside an "
                    "ExceptionGroup (asyncio.TaskGroup raises one; callers catch it with `except* LookupError:`)",
                    pytrace=False)
    require(isinstance(raised, BaseExceptionGroup),
            f"when a call fails, the caller must get an ExceptionGroup that holds its error, not {raised!r}")
    matched, _rest = raised.split(lambda e: e is error)
    require(matched is not None, f"the ExceptionGroup must hold the error the call raised ({error!r}); it holds "
                                 f"{list(raised.exceptions)!r}")


@pytest.mark.exercise("08.1", promise="cancels")
@pytest.mark.asyncio
async def test_fetch_all_cancels_the_other_calls_when_one_fails():
    fetch = _Gated()
    await _failing_run(fetch, LookupError("no such key"))
    running, failed = fetch.started[0], fetch.started[1]
    require(running in fetch.cancelled, f"when {failed!r} failed, the call for {running!r} (still running) was not "
                                        "cancelled: start the calls in an asyncio.TaskGroup, which cancels the others "
                                        "when one fails")
    never = [key for key in fetch.started if key not in (running, failed) and key not in fetch.cancelled]
    require(not never, f"after a call failed, fetch_all still started (and did not cancel) the call(s) for {never}: "
                       "the calls still waiting for a place must be cancelled too")


@pytest.mark.exercise("08.1", promise="ended")
@pytest.mark.asyncio
async def test_fetch_all_raises_only_once_every_call_has_ended():
    _, in_flight = await _failing_run(_Gated(), LookupError("no such key"))
    require(in_flight == 0, f"when the error reached the caller, {in_flight} call(s) were still running: wait until "
                            "the cancelled calls have ended before raising (the end of an `async with "
                            "asyncio.TaskGroup()` block does)")


@pytest.mark.exercise("08.1", promise="positive")
@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [0, -1])
async def test_fetch_all_refuses_a_limit_below_one(limit):
    fetch = _Gated()
    async with _running("lazy", fetch, ["a", "b"], limit) as task:
        try:
            async with asyncio.timeout(GUARD):
                result = await task
        except ValueError:
            pass
        except TimeoutError:
            pytest.fail(f"fetch_all(..., limit={limit}) hung: check `limit` first and raise ValueError", pytrace=False)
        except BaseExceptionGroup as group:
            pytest.fail(f"limit={limit} must raise a plain ValueError before anything starts, not {group!r} from "
                        "inside the TaskGroup", pytrace=False)
        else:
            pytest.fail(f"limit={limit} was accepted (the result was {result!r}): raise ValueError", pytrace=False)
    require(not fetch.started, f"with limit={limit}, `fetch` must not even be called: check `limit` before starting "
                               "anything")


# --- 08.2 the tracker fixture and Tracker.wrap ----------------------------------------------------

class _Held:
    """A fake call that waits until released, then returns its argument doubled, or raises."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.arrived = 0

    async def __call__(self, value: int, *, error: Exception | None = None) -> int:
        self.arrived += 1
        await self.released.wait()
        if error is not None:
            raise error
        return value * 2


async def _quick(value: int, *, plus: int = 0) -> int:
    await asyncio.sleep(0)
    return value + plus


@pytest.mark.exercise("08.2", promise="new")
@pytest.mark.asyncio
async def test_tracker_gives_each_test_a_new_tracker(tracker):
    require(isinstance(tracker, ex.Tracker), f"tracker must yield a Tracker, not {type(tracker).__name__}")
    require(tracker.now == 0 and tracker.peak == 0 and tracker.running == [],
            "the tracker must be new: now == 0, peak == 0, nothing running")


@pytest.mark.exercise("08.2", promise="new")
@pytest.mark.asyncio
async def test_tracker_is_a_new_one_each_time():
    first = await fixture_steps(ex.tracker, "tracker")
    second = await fixture_steps(ex.tracker, "tracker")
    try:
        one = await anext(first)
        other = await anext(second)
        require(other is not one and isinstance(other, ex.Tracker),
                "tracker must yield a new Tracker for each test (create it inside the fixture), not one they share")
    finally:
        for steps in (first, second):
            with contextlib.suppress(BaseException):
                await steps.aclose()


@pytest.mark.exercise("08.2", promise="wraps")
@pytest.mark.asyncio
async def test_tracker_wrap_returns_the_result_and_passes_the_arguments_on():
    wrapped = ex.Tracker().wrap(_quick)
    require(callable(wrapped), f"wrap() must return an async function, not {wrapped!r}")
    call = wrapped(40, plus=2)
    require(hasattr(call, "__await__"), "the function wrap() returns must be an async function (`async def`)")
    result = await call
    require(result == 42, f"wrap(fetch)(40, plus=2) must return what fetch(40, plus=2) returns (42), not {result!r}")


@pytest.mark.exercise("08.2", promise=("wraps", "down"))
@pytest.mark.asyncio
async def test_tracker_wrap_raises_the_error_unchanged():
    tracker, held, error = ex.Tracker(), _Held(), KeyError("no such sku")
    held.released.set()
    try:
        await tracker.wrap(held)(1, error=error)
    except KeyError as raised:
        require(raised is error, "the wrapped call must raise the very error the function raised, not a new one")
    else:
        pytest.fail("the function raised KeyError, but the wrapped call returned normally: let the error through",
                    pytrace=False)
    require(tracker.now == 0 and tracker.running == [],
            f"after a wrapped call raised, `now` must be back to 0 and `running` empty (now={tracker.now}, "
            f"running={len(tracker.running)} task(s)): count down in `finally:`")


@pytest.mark.exercise("08.2", promise=("counts", "peak", "down"))
@pytest.mark.asyncio
async def test_tracker_counts_the_calls_running_at_the_same_time():
    tracker, held = ex.Tracker(), _Held()
    wrapped = tracker.wrap(held)
    tasks = [asyncio.create_task(wrapped(n)) for n in range(3)]
    try:
        if not await _turns_until(lambda: held.arrived == 3):
            for task in tasks:
                if task.done():
                    task.result()
        require(tracker.now == 3, f"while 3 wrapped calls run, `now` must be 3, not {tracker.now}")
        require(sorted(map(id, tracker.running)) == sorted(map(id, tasks)),
                "while 3 wrapped calls run, `running` must hold the 3 tasks that run them (asyncio.current_task() "
                f"inside the wrapped call); it holds {len(tracker.running)} item(s)")
        held.released.set()
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(*tasks)
    finally:
        held.released.set()
        for task in tasks:
            await _finish(task)
    require(results == [0, 2, 4], f"the wrapped calls must return what the function returns ([0, 2, 4]), not {results!r}")
    require(tracker.peak == 3, f"3 wrapped calls ran at the same time, so `peak` must be 3, not {tracker.peak}")
    require(tracker.now == 0 and tracker.running == [],
            f"after every call returned, `now` must be 0 and `running` empty (now={tracker.now})")


@pytest.mark.exercise("08.2", promise="peak")
@pytest.mark.asyncio
async def test_tracker_peak_stays_at_one_for_calls_one_after_another():
    tracker = ex.Tracker()
    wrapped = tracker.wrap(_quick)
    for n in range(3):
        await wrapped(n)
    require(tracker.peak == 1, f"three calls made one after another never overlap: `peak` must be 1, not {tracker.peak}")


@pytest.mark.exercise("08.2", promise=("counts", "down"))
@pytest.mark.asyncio
async def test_tracker_counts_a_cancelled_call_down():
    tracker, held = ex.Tracker(), _Held()
    task = asyncio.create_task(tracker.wrap(held)(1))
    try:
        await _turns_until(lambda: held.arrived == 1, task)
        require(tracker.now == 1 and tracker.running == [task],
                f"while one wrapped call runs, `now` must be 1 and `running` must hold its task (now={tracker.now})")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(GUARD):
                await task
    finally:
        await _finish(task)
    require(tracker.now == 0 and tracker.running == [],
            f"after the wrapped call was cancelled, `now` must be back to 0 and `running` empty (now={tracker.now}): "
            "count down in `finally:`, which runs however the call ends")


async def _teardown(steps: Any) -> BaseException | None:
    """Run the learner's teardown (bounded); return the exception it raised, if any."""
    try:
        async with asyncio.timeout(2 * GUARD):
            await anext(steps)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        pytest.fail(f"the teardown of `tracker` was still running {2 * GUARD} s later: wait at most 0.1 s for the "
                    "cancelled calls (`await asyncio.wait(tasks, timeout=0.1)`)", pytrace=False)
    except BaseException as error:  # pytest.fail() raises a BaseException (Failed)
        return error
    pytest.fail("the fixture yields more than once: yield the tracker once, then clean up", pytrace=False)


def _failed(error: BaseException | None) -> bool:
    return isinstance(error, pytest.fail.Exception)


@pytest.mark.exercise("08.2", promise="quiet")
@pytest.mark.asyncio
async def test_tracker_teardown_is_quiet_when_every_call_has_ended():
    steps = await fixture_steps(ex.tracker, "tracker")
    tracker = await anext(steps)
    await tracker.wrap(_quick)(1)
    error = await _teardown(steps)
    require(error is None, f"every wrapped call had ended, so the teardown must just end; it raised {error!r}")


@pytest.mark.exercise("08.2", promise=("fails", "cancels"))
@pytest.mark.asyncio
@pytest.mark.parametrize("left", [1, 2])
async def test_tracker_teardown_fails_and_cancels_calls_left_running(left):
    steps = await fixture_steps(ex.tracker, "tracker")
    tracker = await anext(steps)
    held = _Held()
    tasks = [asyncio.create_task(tracker.wrap(held)(n)) for n in range(left)]  # the "test" never awaits them
    try:
        await _turns_until(lambda: held.arrived == left)
        error = await _teardown(steps)
        require(_failed(error), f"{left} wrapped call(s) were still running after the test, and the teardown "
                                f"{'raised ' + repr(error) if error else 'let it pass'}: fail the test with "
                                "pytest.fail(...)")
        require(re.search(rf"\b{left}\b", str(error)),
                f"the failure must say how many calls were left running ({left}): it says {str(error)!r}")
        require(all(task.done() for task in tasks),
                "the teardown failed the test but left the calls running: cancel their tasks first (they are in "
                "`tracker.running`) and wait for them to end")
    finally:
        held.released.set()
        for task in tasks:
            await _finish(task)
        with contextlib.suppress(BaseException):
            await steps.aclose()


@pytest.mark.exercise("08.2", promise="cancels")
@pytest.mark.asyncio
async def test_tracker_teardown_waits_only_briefly_for_a_call_that_will_not_stop():
    steps = await fixture_steps(ex.tracker, "tracker")
    tracker = await anext(steps)
    stop = asyncio.Event()

    async def stubborn() -> None:
        try:
            await stop.wait()
        except asyncio.CancelledError:
            await stop.wait()  # it ignores its cancellation: only `stop` ends it

    task = asyncio.create_task(tracker.wrap(stubborn)())
    try:
        await _turns_until(lambda: tracker.now == 1 or task.done(), task)
        error = await _teardown(steps)  # fails the grading test itself if the teardown hangs
        require(_failed(error), "a call that ignores its cancellation must still fail the test, after waiting at most "
                                f"0.1 s for it; the teardown {'raised ' + repr(error) if error else 'let it pass'}")
    finally:
        stop.set()
        await _finish(task)
        with contextlib.suppress(BaseException):
            await steps.aclose()


# --- 08.3 tests for load_prices, graded by mutation -----------------------------------------------

async def _one_by_one(source: Any, skus: list[str]) -> list[float]:
    results: list[Any] = []
    for sku in skus:
        try:
            results.append(await source.price(sku))
        except Exception as error:
            results.append(error)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {len(skus)} prices failed", errors)
    return results


async def _finish_order(source: Any, skus: list[str]) -> list[float]:
    results: list[Any] = []

    async def one(sku: str) -> None:
        try:
            results.append(await source.price(sku))
        except Exception as error:
            results.append(error)

    await asyncio.gather(*(one(sku) for sku in skus))
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {len(skus)} prices failed", errors)
    return results


async def _bare_error(source: Any, skus: list[str]) -> list[float]:
    results = await asyncio.gather(*(source.price(sku) for sku in skus), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return results


async def _returns_errors(source: Any, skus: list[str]) -> list[float]:
    return await asyncio.gather(*(source.price(sku) for sku in skus), return_exceptions=True)


async def _first_only(source: Any, skus: list[str]) -> list[float]:
    results = await asyncio.gather(*(source.price(sku) for sku in skus), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {len(skus)} prices failed", errors[:1])
    return results


async def _cancels_the_rest(source: Any, skus: list[str]) -> list[float]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(source.price(sku)) for sku in skus]
    return [task.result() for task in tasks]


globals().update(
    mutation_suite(
        ex,
        "08.3",
        reference=ref.load_prices,
        mutants={
            "one_by_one": _one_by_one,
            "finish_order": _finish_order,
            "bare_error": _bare_error,
            "returns_errors": _returns_errors,
            "first_only": _first_only,
            "cancels_the_rest": _cancels_the_rest,
        },
    )
)
