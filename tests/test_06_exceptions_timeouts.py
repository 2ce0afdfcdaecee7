"""Grading tests for chapter 06 (exercises/06_exceptions_timeouts.py).

No test here sleeps to make something slow: what never answers waits on an Event nobody sets,
deadlines are 0.01 s, and every wait on the learner's code is bounded by GUARD seconds (far
above those deadlines, far below pytest-timeout's 5 s), so that a hang fails fast with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from workbook.testing import fixture_steps, learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("06_exceptions_timeouts")
ref = load_reference("06_exceptions_timeouts")
globals().update(learner_fixtures(ex))

#: seconds: how long these tests wait for the learner's code before saying it hangs
GUARD = 1.0
DEADLINE = 0.01



# --- 06.1 tests for load_deadline, graded by mutation ----------------------------------------

async def _plain_value_error(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        if "is not a duration" not in str(error):
            raise
        # Same message, same cause; only the type is wrong.
        raise ValueError(str(error)) from error.__cause__


class _MissingIsBlank:
    def __init__(self, settings: Any) -> None:
        self._settings = settings

    async def get(self, name: str) -> str | None:
        return (await self._settings.get(name)) or ""


async def _missing_as_invalid(settings: Any, name: str) -> float:
    return await ref.load_deadline(_MissingIsBlank(settings), name)


async def _drops_cause(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        raise error from None


def _seconds(raw: str) -> float:
    text = raw.strip()
    unit = "ms" if text.endswith("ms") else "s"
    return float(text[: -len(unit)]) * ref._UNITS[unit]


async def _accepts_zero(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        if "must be more than 0" not in str(error):
            raise
        return _seconds(await settings.get(name))


async def _ms_as_seconds(settings: Any, name: str) -> float:
    seconds = await ref.load_deadline(settings, name)
    raw = await settings.get(name)
    return seconds * 1000 if raw.strip().endswith("ms") else seconds


async def _seconds_as_ms(settings: Any, name: str) -> float:
    seconds = await ref.load_deadline(settings, name)
    raw = (await settings.get(name)).strip()
    return seconds / 1000 if not raw.endswith("ms") else seconds


async def _keeps_spaces(settings: Any, name: str) -> float:
    raw = await settings.get(name)
    if raw is not None and raw != raw.strip():
        # It forgets to strip: ' 1.5s ' ends with a space, so it has no unit.
        try:
            raise ValueError(f"expected a number followed by ms or s, got {raw!r}")
        except ValueError as error:
            raise ref.SettingError(name, f"= {raw!r} is not a duration (write e.g. 250ms or 2s)") from error
    return await ref.load_deadline(settings, name)


async def _nameless(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        error.name = None  # same message, same cause: only the attribute is lost
        raise


async def _invalid_as_missing(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        if "is not a duration" not in str(error):
            raise
        raise ref.SettingError(name, "is missing") from error.__cause__


async def _zero_is_fine(settings: Any, name: str) -> float:
    try:
        return await ref.load_deadline(settings, name)
    except ref.SettingError as error:
        # `seconds < 0` instead of `seconds <= 0`: only negative values are refused.
        if "must be more than 0" not in str(error) or _seconds(await settings.get(name)) != 0:
            raise
        return 0.0


globals().update(
    mutation_suite(
        ex,
        "06.1",
        reference=ref.load_deadline,
        mutants={
            "plain_value_error": _plain_value_error,
            "missing_as_invalid": _missing_as_invalid,
            "drops_cause": _drops_cause,
            "accepts_zero": _accepts_zero,
            "ms_as_seconds": _ms_as_seconds,
            "seconds_as_ms": _seconds_as_ms,
            "keeps_spaces": _keeps_spaces,
            "nameless": _nameless,
            "invalid_as_missing": _invalid_as_missing,
            "zero_is_fine": _zero_is_fine,
        },
        # The reference (and the mutants built on it) raise the learner module's SettingError, so
        # that the learner's `pytest.raises(SettingError)` recognises it.
        shared=("SettingError",),
    )
)


# --- 06.2 call_with_deadline ------------------------------------------------------------------

class _Operation:
    """An operation factory for call_with_deadline that records what happened to it.

    `answer`: what the operation returns (None: it never answers); `error`: what it raises;
    `own_deadline`: seconds after which a deadline of its own gives up on a call that never answers.
    """

    def __init__(self, answer: Any = None, error: BaseException | None = None,
                 own_deadline: float | None = None) -> None:
        self.answer, self.error, self.own_deadline = answer, error, own_deadline
        self.made: list[Any] = []  # coroutines created by calling the factory
        self.started = asyncio.Event()
        self.cleaned_up = False
        self.cancelled = False
        self.raised: Exception | None = None  # what the operation itself raised

    def __call__(self) -> Awaitable[Any]:
        coroutine = self._run()
        self.made.append(coroutine)
        return coroutine

    async def _run(self) -> Any:
        self.started.set()
        try:
            await asyncio.sleep(0)
            if self.error is not None:
                raise self.error
            if self.answer is not None:
                return self.answer
            if self.own_deadline is not None:
                async with asyncio.timeout(self.own_deadline):  # a real TimeoutError, not ours to rename
                    await asyncio.Event().wait()
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        except Exception as error:
            self.raised = error
            raise
        finally:
            self.cleaned_up = True

    def close(self) -> None:
        """Close coroutines that were made but never awaited (no 'never awaited' warning)."""
        for coroutine in self.made:
            coroutine.close()


@contextlib.asynccontextmanager
async def _operation(**kwargs: Any):
    operation = _Operation(**kwargs)
    try:
        yield operation
    finally:
        operation.close()


async def _call(service: str, operation: Callable[[], Awaitable[Any]], seconds: float) -> Any:
    """call_with_deadline under the guard; a hang becomes a failure that says what to do."""
    guard = asyncio.timeout(GUARD)
    try:
        async with guard:
            return await ex.call_with_deadline(service, operation, seconds)
    except TimeoutError:
        if guard.expired():
            pytest.fail(f"call_with_deadline(..., seconds={seconds}) was still waiting after {GUARD} s for an "
                        "operation that never answers: wrap the await in `async with asyncio.timeout(seconds):`",
                        pytrace=False)
        raise


async def _service_timeout(service: str, operation: _Operation, seconds: float = DEADLINE) -> Any:
    """Call with an operation that never answers; return the ServiceTimeout, or fail saying what came instead."""
    try:
        result = await _call(service, operation, seconds)
    except ex.ServiceTimeout as error:
        return error
    except TimeoutError:
        pytest.fail("the built-in TimeoutError reached the caller: catch it (`except TimeoutError as error:`) "
                    "and raise ServiceTimeout(service, seconds) from it", pytrace=False)
    pytest.fail(f"call_with_deadline returned {result!r} although the operation never answered: past the "
                "deadline it must raise ServiceTimeout", pytrace=False)


@pytest.mark.exercise("06.2", promise="result")
@pytest.mark.asyncio
async def test_call_with_deadline_returns_the_result_in_time():
    async with _operation(answer=42) as operation:
        result = await _call("stock", operation, 1)
    require(result == 42, f"call_with_deadline must return the operation's result (42), not {result!r}")


@pytest.mark.exercise("06.2", promise="timeout")
@pytest.mark.asyncio
async def test_call_with_deadline_raises_service_timeout_past_the_deadline():
    async with _operation() as operation:
        error = await _service_timeout("payments", operation)
    require(error.service == "payments" and error.seconds == DEADLINE,
             f"the ServiceTimeout must name the service and the deadline it was given: expected "
             f"ServiceTimeout('payments', {DEADLINE}), got ServiceTimeout({error.service!r}, {error.seconds!r})")


@pytest.mark.exercise("06.2", promise="cause")
@pytest.mark.asyncio
async def test_call_with_deadline_chains_the_timeout_error_as_the_cause():
    async with _operation() as operation:
        error = await _service_timeout("stock", operation)
    require(isinstance(error.__cause__, TimeoutError),
             "the ServiceTimeout must have the TimeoutError as its __cause__: raise it with "
             f"`raise ServiceTimeout(...) from error` (its __cause__ is {error.__cause__!r})")


@pytest.mark.exercise("06.2", promise="cancels")
@pytest.mark.asyncio
async def test_call_with_deadline_cancels_the_operation_before_raising():
    async with _operation() as operation:
        await _service_timeout("stock", operation)
        require(operation.started.is_set(), "the operation was never started: call it and await what it returns")
        require(operation.cancelled and operation.cleaned_up,
                 "when ServiceTimeout reached the caller, the operation was still running: it must have been "
                 "cancelled, and its `finally:` blocks run, before (asyncio.timeout does both)")


async def _passed_on(kind: type[Exception], renamed: str, **behaviour: Any) -> None:
    """call_with_deadline (deadline 1 s) with an operation that raises a `kind` error long before that deadline:
    the caller must get that very error.

    `renamed`: the failure message when it became a ServiceTimeout ({error} is that ServiceTimeout);
    `behaviour`: how the operation fails (see _Operation).
    """
    name = kind.__name__
    async with _operation(**behaviour) as operation:
        try:
            await _call("stock", operation, 1)
        except ex.ServiceTimeout as error:
            pytest.fail(renamed.format(error=repr(error)), pytrace=False)
        except kind as error:
            require(error is operation.raised, f"the operation's {name} must reach the caller as it is, not a new one")
        else:
            pytest.fail(f"the operation raised {name}, but call_with_deadline returned normally: let it through",
                        pytrace=False)


@pytest.mark.exercise("06.2", promise="others")
@pytest.mark.asyncio
async def test_call_with_deadline_passes_other_errors_on_unchanged():
    await _passed_on(ValueError,
                     "a ValueError raised by the operation was turned into ServiceTimeout: only a timeout is a "
                     "ServiceTimeout; catch TimeoutError alone", error=ValueError("unknown sku 'Z-9'"))


#: the failure message when the operation's own TimeoutError became a ServiceTimeout
_OWN_TIMEOUT_RENAMED = (
    "the operation raised a TimeoutError of its own, and call_with_deadline turned it into {error}: your "
    "deadline of 1 s had not expired, so this is not your ServiceTimeout. A plain `except TimeoutError` (and "
    "asyncio.wait_for) cannot tell the two apart: keep the timeout object (`async with asyncio.timeout(seconds) "
    "as deadline:`) and raise ServiceTimeout only when `deadline.expired()`; otherwise re-raise"
)


@pytest.mark.exercise("06.2", promise="own_timeout")
@pytest.mark.asyncio
async def test_call_with_deadline_passes_the_operations_own_timeout_on_unchanged():
    # The operation gives up by itself long before call_with_deadline's 1 s, and says so.
    await _passed_on(TimeoutError, _OWN_TIMEOUT_RENAMED,
                     error=TimeoutError("the warehouse did not answer within 0.005 s"))


@pytest.mark.exercise("06.2", promise="own_timeout")
@pytest.mark.asyncio
async def test_call_with_deadline_passes_on_a_timeout_from_a_deadline_inside_the_operation():
    # A real inner asyncio.timeout(0.005): its TimeoutError is caused by a CancelledError, just like the
    # one of call_with_deadline's own deadline would be, so only `expired()` tells them apart.
    await _passed_on(TimeoutError, _OWN_TIMEOUT_RENAMED, own_deadline=0.005)


async def _cancel_the_caller(operation: _Operation) -> asyncio.Task[Any]:
    """Run call_with_deadline (deadline 10 s) in a task, cancel that task once the operation has
    started, and return the task once it has ended cancelled; fail saying what happened instead."""
    task = asyncio.create_task(ex.call_with_deadline("stock", operation, 10))
    try:
        async with asyncio.timeout(GUARD):
            while not operation.started.is_set():
                if task.done():
                    task.result()  # re-raises what call_with_deadline raised (e.g. NotImplementedError)
                    pytest.fail("call_with_deadline returned without calling the operation", pytrace=False)
                await asyncio.sleep(0)
        task.cancel()
        try:
            async with asyncio.timeout(GUARD):
                result = await task
        except asyncio.CancelledError:
            pass
        except ex.ServiceTimeout:
            pytest.fail("when the caller's task is cancelled, call_with_deadline raised ServiceTimeout: a "
                        "cancellation is not a timeout; do not catch asyncio.CancelledError", pytrace=False)
        except TimeoutError:
            pytest.fail(f"after its task was cancelled, call_with_deadline was still running {GUARD} s later: "
                        "it must not catch asyncio.CancelledError", pytrace=False)
        else:
            pytest.fail(f"call_with_deadline swallowed the cancellation of its task and returned {result!r}: "
                        "let asyncio.CancelledError go on up", pytrace=False)
        require(task.cancelled(), "the task running call_with_deadline must end cancelled")
        return task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@pytest.mark.exercise("06.2", promise="cancellation")
@pytest.mark.asyncio
async def test_call_with_deadline_lets_a_cancellation_through():
    async with _operation() as operation:
        await _cancel_the_caller(operation)


@pytest.mark.exercise("06.2", promise="cancellation_cleans_up")
@pytest.mark.asyncio
async def test_call_with_deadline_cancels_the_operation_when_the_caller_is_cancelled():
    async with _operation() as operation:
        await _cancel_the_caller(operation)
        require(operation.cleaned_up,
                "when the caller's task was cancelled, the operation was left running: its `finally:` blocks "
                "had not run when the caller's task ended. Cancel the operation too, and wait for it to end, "
                "before the CancelledError goes on up (awaiting it inside `async with asyncio.timeout(...)` "
                "does both)")


@pytest.mark.exercise("06.2", promise="positive")
@pytest.mark.asyncio
@pytest.mark.parametrize("seconds", [0, -1])
async def test_call_with_deadline_refuses_a_deadline_that_is_not_positive(seconds):
    async with _operation(answer=42) as operation:
        try:
            result = await _call("stock", operation, seconds)
        except ValueError:
            pass
        except ex.ServiceTimeout:
            pytest.fail(f"seconds={seconds} must raise ValueError before anything starts, not ServiceTimeout",
                        pytrace=False)
        else:
            pytest.fail(f"seconds={seconds} was accepted (the result was {result!r}): raise ValueError",
                        pytrace=False)
        require(not operation.made, f"with seconds={seconds}, the operation must not even be called: check "
                                     "`seconds` first, then call operation()")


# --- 06.3 the hanging_backend fixture and HangingBackend.level ---------------------------------

async def _until_started(backend: Any, task: asyncio.Task[Any]) -> None:
    """Wait (bounded) until the call in `task` has reached the backend."""
    try:
        async with asyncio.timeout(GUARD):
            while not backend.started.is_set():
                if task.done():
                    result = task.result()  # re-raises what level() raised (e.g. NotImplementedError)
                    pytest.fail(f"level() returned {result!r} without setting `started`: set it when a call "
                                "arrives", pytrace=False)
                await asyncio.sleep(0)
    except TimeoutError:
        pytest.fail("level() never set `started`: call self.started.set() when a call arrives", pytrace=False)


async def _finish(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


@pytest.mark.exercise("06.3", promise="new")
@pytest.mark.asyncio
async def test_hanging_backend_gives_each_test_a_new_backend(hanging_backend):
    require(isinstance(hanging_backend, ex.HangingBackend),
             f"hanging_backend must yield a HangingBackend, not {type(hanging_backend).__name__}")
    require(hanging_backend.calls == [] and hanging_backend.cancelled == [] and hanging_backend.waiting == 0,
             "the backend must be new: no calls, nothing cancelled, nothing waiting")
    require(not hanging_backend.released, "the backend must not be released during the test: release it after `yield`")


@pytest.mark.exercise("06.3", promise="new")
@pytest.mark.asyncio
async def test_hanging_backend_is_a_new_one_each_time():
    # Two set-ups of the learner's fixture, as for two tests: they must not share a backend.
    first = await fixture_steps(ex.hanging_backend, "hanging_backend")
    second = await fixture_steps(ex.hanging_backend, "hanging_backend")
    try:
        one = await anext(first)
        one.calls.append("left by an earlier test")
        other = await anext(second)
        require(other is not one and isinstance(other, ex.HangingBackend),
                "hanging_backend must yield a new HangingBackend for each test (create it inside the fixture), "
                "not one backend that all the tests share")
    finally:
        for steps in (first, second):
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(2 * GUARD):
                    await steps.aclose()


@pytest.mark.exercise("06.3", promise=("waits", "records", "cancelled", "waiting"))
@pytest.mark.asyncio
async def test_hanging_backend_call_waits_until_a_deadline_cancels_it(hanging_backend):
    try:
        async with asyncio.timeout(DEADLINE):
            result = await hanging_backend.level("A-1")
    except TimeoutError:
        pass
    else:
        if "A-1" in hanging_backend.cancelled:
            pytest.fail("level() caught the CancelledError and returned, so asyncio.timeout() could not raise "
                        "TimeoutError: after recording the sku, re-raise it with a bare `raise`", pytrace=False)
        pytest.fail(f"level() returned {result!r} at once: it must wait (`await self._released.wait()`) until "
                    "the backend is released", pytrace=False)
    require(hanging_backend.calls == ["A-1"], f"level() must append the sku to `calls` (calls: {hanging_backend.calls})")
    require(hanging_backend.started.is_set(), "level() must set `started` when a call arrives")
    require(hanging_backend.cancelled == ["A-1"],
             f"a call cancelled while it waits must append its sku to `cancelled` (cancelled: {hanging_backend.cancelled})")
    require(hanging_backend.waiting == 0,
             f"`waiting` must go back down when a call ends, even by cancellation (it is {hanging_backend.waiting}): "
             "decrement it in `finally:`")


@pytest.mark.exercise("06.3", promise=("waits", "waiting"))
@pytest.mark.asyncio
async def test_hanging_backend_answers_zero_once_released(hanging_backend):
    task = asyncio.create_task(hanging_backend.level("B-2"))
    try:
        await _until_started(hanging_backend, task)
        require(not task.done(), "level() must keep waiting until the backend is released")
        require(hanging_backend.waiting == 1, f"while one call waits, `waiting` must be 1, not {hanging_backend.waiting}")
        hanging_backend.release()
        try:
            async with asyncio.timeout(GUARD):
                result = await task
        except TimeoutError:
            pytest.fail("after release(), level() still did not return: wait on the Event that release() sets",
                        pytrace=False)
        require(result == 0, f"a released call must return 0, not {result!r}")
        require(hanging_backend.waiting == 0, "after the call returned, `waiting` must be back to 0")
        require(hanging_backend.cancelled == [], "a call that was released, not cancelled, must not be in `cancelled`")
    finally:
        await _finish(task)


@pytest.mark.exercise("06.3", promise=("cancelled", "waiting"))
@pytest.mark.asyncio
async def test_hanging_backend_call_lets_its_tasks_cancellation_through(hanging_backend):
    task = asyncio.create_task(hanging_backend.level("C-3"))
    try:
        await _until_started(hanging_backend, task)
        task.cancel()
        try:
            async with asyncio.timeout(GUARD):
                result = await task
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            pytest.fail("after task.cancel(), level() was still running: do not keep waiting after a CancelledError",
                        pytrace=False)
        else:
            pytest.fail(f"level() swallowed the cancellation and returned {result!r}: re-raise the CancelledError",
                        pytrace=False)
        require(task.cancelled(), "the task must end cancelled")
        require(hanging_backend.cancelled == ["C-3"], "the cancelled call must be recorded in `cancelled`")
        require(hanging_backend.waiting == 0, "`waiting` must go back down when a call is cancelled")
    finally:
        await _finish(task)


@pytest.mark.exercise("06.3", promise="released")
@pytest.mark.asyncio
async def test_hanging_backend_is_released_after_the_test(workbook_after_teardown, hanging_backend):
    workbook_after_teardown(lambda: hanging_backend.released,
                            "the backend was not released: call backend.release() after `yield`")


@pytest.mark.exercise("06.3", promise=("drained", "released"))
@pytest.mark.asyncio
async def test_hanging_backend_teardown_lets_a_call_left_waiting_finish():
    # Drive the learner's fixture function by hand, to look at the moment its teardown ends.
    steps = await fixture_steps(ex.hanging_backend, "hanging_backend")
    backend = await anext(steps)  # the set-up
    task = asyncio.create_task(backend.level("D-4"))  # a call the "test" leaves waiting
    try:
        await _until_started(backend, task)
        try:
            async with asyncio.timeout(2 * GUARD):
                await anext(steps)  # the teardown
        except StopAsyncIteration:
            pass
        except TimeoutError:
            pytest.fail("the teardown never finished: call backend.release() first, then wait (at most 1 s) until "
                        "backend.waiting is 0", pytrace=False)
        else:
            pytest.fail("the fixture yields more than once: yield the backend once, then clean up", pytrace=False)
        require(backend.released, "the teardown must release the backend (backend.release())")
        require(task.done(), "when the teardown ended, a call the test had left waiting had not finished yet: "
                              "release() only wakes it up; then wait until backend.waiting is 0 "
                              "(`await asyncio.sleep(0)` in a loop, inside `asyncio.timeout(1)`)")
        require(task.result() == 0, "the released call must return 0")
    finally:
        backend.release()
        await _finish(task)
        await steps.aclose()


@pytest.mark.exercise("06.3", promise="bounded")
@pytest.mark.asyncio
async def test_hanging_backend_teardown_does_not_hang_on_a_call_that_never_ends():
    steps = await fixture_steps(ex.hanging_backend, "hanging_backend")
    backend = await anext(steps)  # the set-up
    backend.waiting += 1  # a call that will never end, released or not
    guard = asyncio.timeout(2 * GUARD)
    try:
        async with guard:
            await anext(steps)  # the teardown: it may give up by returning or by raising TimeoutError
    except StopAsyncIteration:
        pass
    except TimeoutError:
        if guard.expired():
            pytest.fail(f"the teardown was still waiting {2 * GUARD} s later for a call that never ends: wait at "
                        "most 1 s, e.g. inside `async with asyncio.timeout(1):`", pytrace=False)
    else:
        pytest.fail("the fixture yields more than once: yield the backend once, then clean up", pytrace=False)
    finally:
        backend.waiting = 0
        with contextlib.suppress(BaseException):
            await steps.aclose()


# --- 06.4 tests for StockClient, graded by mutation --------------------------------------------

class _NoDeadline(ref.StockClient):
    async def level(self, sku: str) -> int:
        # It ignores its deadline. So that a test does not hang on it for pytest-timeout's 5 s,
        # the grader gives up on it after 10 deadlines (at least 0.1 s): that too counts as caught.
        give_up = max(0.1, 10 * self.deadline)
        try:
            async with asyncio.timeout(give_up):
                return await self.backend.level(sku)
        except TimeoutError:
            pytest.fail(f"StockClient.level was still waiting {give_up} s after its {self.deadline} s deadline",
                        pytrace=False)


class _BuiltinTimeout(ref.StockClient):
    async def level(self, sku: str) -> int:
        return await asyncio.wait_for(self.backend.level(sku), self.deadline)


class _LosesCause(ref.StockClient):
    async def level(self, sku: str) -> int:
        try:
            return await asyncio.wait_for(self.backend.level(sku), self.deadline)
        except TimeoutError:
            raise ref.ServiceTimeout(self.service, self.deadline)  # noqa: B904 (the bug: no `from error`)


class _SwallowsCancellation(ref.StockClient):
    async def level(self, sku: str) -> int:
        try:
            return await asyncio.wait_for(self.backend.level(sku), self.deadline)
        except (TimeoutError, asyncio.CancelledError) as error:
            raise ref.ServiceTimeout(self.service, self.deadline) from error


class _NoCancel(ref.StockClient):
    async def level(self, sku: str) -> int:
        call = asyncio.ensure_future(self.backend.level(sku))
        done, _pending = await asyncio.wait({call}, timeout=self.deadline)
        if call in done:
            return call.result()
        raise ref.ServiceTimeout(self.service, self.deadline) from TimeoutError()  # `call` keeps running


class _ForgetsAnswer(ref.StockClient):
    async def level(self, sku: str) -> int:
        try:
            await asyncio.wait_for(self.backend.level(sku), self.deadline)  # the bug: no `return`
        except TimeoutError as error:
            raise ref.ServiceTimeout(self.service, self.deadline) from error


class _DeadlineInMilliseconds(ref.StockClient):
    async def level(self, sku: str) -> int:
        try:
            return await asyncio.wait_for(self.backend.level(sku), self.deadline)
        except TimeoutError as error:
            raise ref.ServiceTimeout(self.service, self.deadline * 1000) from error


class _DoesNotWaitForTheCancelledCall(ref.StockClient):
    async def level(self, sku: str) -> int:
        call = asyncio.ensure_future(self.backend.level(sku))
        try:
            done, _pending = await asyncio.wait({call}, timeout=self.deadline)
        except asyncio.CancelledError:
            call.cancel()
            await asyncio.wait({call})
            raise
        if call in done:
            return call.result()
        call.cancel()  # the bug: the call is told to stop, but nobody waits until it has
        raise ref.ServiceTimeout(self.service, self.deadline) from TimeoutError()


class _OrphansOnCancel(ref.StockClient):
    async def level(self, sku: str) -> int:
        call = asyncio.ensure_future(self.backend.level(sku))
        # The bug: when the caller is cancelled, asyncio.wait goes, and `call` keeps running.
        done, _pending = await asyncio.wait({call}, timeout=self.deadline)
        if call in done:
            return call.result()
        call.cancel()
        await asyncio.wait({call})
        raise ref.ServiceTimeout(self.service, self.deadline) from TimeoutError()


globals().update(
    mutation_suite(
        ex,
        "06.4",
        reference=ref.StockClient,
        mutants={
            "no_deadline": _NoDeadline,
            "builtin_timeout": _BuiltinTimeout,
            "loses_cause": _LosesCause,
            "swallows_cancellation": _SwallowsCancellation,
            "no_cancel": _NoCancel,
            "forgets_answer": _ForgetsAnswer,
            "wrong_seconds": _DeadlineInMilliseconds,
            "cancels_without_waiting": _DoesNotWaitForTheCancelledCall,
            "orphans_on_cancel": _OrphansOnCancel,
        },
        shared=("ServiceTimeout",),
    )
)
