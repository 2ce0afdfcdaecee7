"""Grading tests for chapter 11 (exercises/11_retries.py).

Nothing here sleeps or reads the real clock. The circuit breaker runs on a FakeClock that only
moves when a test moves it; the retry helper's mutants get a fake sleep from the learner's tests.
Every await on the learner's code is bounded by GUARD seconds, so a breaker that really sleeps
(30 s of `reset_after`) fails at once with a message instead of reaching pytest-timeout's 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random as _random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("11_retries")
ref = load_reference("11_retries")
globals().update(learner_fixtures(ex))

#: seconds: how long these tests wait for the learner's code before saying it hangs
GUARD = 1.0
RESET = 30.0


# --- 11.1 CircuitBreaker --------------------------------------------------------------------------

class _Service:
    """An operation for `breaker.call`: answers "answer N" on its N-th call, or raises while `failing`."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False
        self.raised: list[Exception] = []

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if self.failing:
            error = ConnectionError(f"down (call {self.calls})")
            self.raised.append(error)
            raise error
        return f"answer {self.calls}"


def _breaker(failures: int = 3, clock: Any = None) -> Any:
    return ex.CircuitBreaker(failures=failures, reset_after=RESET, clock=clock or ref.FakeClock())


async def _call(breaker: Any, service: _Service) -> tuple[str, Any]:
    """("ok", result), ("error", the operation's error) or ("open", CircuitOpen), under the guard."""
    try:
        async with asyncio.timeout(GUARD):
            return "ok", await breaker.call(service)
    except ex.CircuitOpen as error:
        return "open", error
    except ConnectionError as error:
        return "error", error
    except TimeoutError:
        pytest.fail(f"breaker.call() was still running after {GUARD} s: it must never sleep or wait for time "
                    "to pass; it only reads `self.clock()` and decides at once", pytrace=False)


async def _open(breaker: Any, service: _Service, failures: int) -> None:
    """Make `failures` calls fail, then check the circuit refuses the next call."""
    service.failing = True
    for n in range(failures):
        outcome, value = await _call(breaker, service)
        require(outcome == "error", f"failure {n + 1} of {failures}: the call must be tried and its error go up, "
                                    f"but it gave {outcome} {value!r}")
    calls = service.calls
    outcome, value = await _call(breaker, service)
    require(outcome == "open", f"after {failures} failures in a row (failures={failures}) the circuit must open and "
                               f"a call raise CircuitOpen, but it gave {outcome} {value!r}")
    require(service.calls == calls, "while the circuit is open, CircuitOpen must come without calling the operation")


async def _opened(failures: int) -> tuple[Any, _Service, Any]:
    """A breaker on a FakeClock (failures=`failures`), opened by that many failures: (clock, service, breaker)."""
    clock, service = ref.FakeClock(), _Service()
    breaker = _breaker(failures=failures, clock=clock)
    await _open(breaker, service, failures)
    return clock, service, breaker


@pytest.mark.exercise("11.1", promise="closed")
@pytest.mark.asyncio
async def test_circuit_breaker_passes_results_and_errors_through_while_closed():
    breaker, service = _breaker(), _Service()
    outcome, value = await _call(breaker, service)
    require((outcome, value) == ("ok", "answer 1"),
            f"call() must return what the operation returns ('answer 1'), not {outcome} {value!r}")
    service.failing = True
    outcome, value = await _call(breaker, service)
    require(outcome == "error" and value is service.raised[-1],
            "the operation's error must reach the caller unchanged (the very same ConnectionError), "
            f"not {value!r}")


@pytest.mark.exercise("11.1", promise=("opens", "fast"))
@pytest.mark.asyncio
async def test_circuit_breaker_opens_after_failures_in_a_row():
    breaker, service = _breaker(failures=3), _Service()
    await _open(breaker, service, 3)
    outcome, _ = await _call(breaker, service)
    require(outcome == "open" and service.calls == 3, "every call while open must raise CircuitOpen, without a call")


@pytest.mark.exercise("11.1", promise="opens")
@pytest.mark.asyncio
async def test_circuit_breaker_with_one_allowed_failure_opens_at_once():
    breaker, service = _breaker(failures=1), _Service()
    await _open(breaker, service, 1)


@pytest.mark.exercise("11.1", promise="resets")
@pytest.mark.asyncio
async def test_circuit_breaker_success_resets_the_failures_in_a_row():
    breaker, service = _breaker(failures=3), _Service()
    for step in ("fail", "fail", "succeed", "fail", "fail"):
        service.failing = step == "fail"
        outcome, value = await _call(breaker, service)
        require(outcome != "open", "failures separated by a success are not 'in a row': after fail, fail, succeed, "
                                   "fail, fail the circuit (failures=3) must still be closed, but a call raised "
                                   "CircuitOpen")
    service.failing = False
    outcome, value = await _call(breaker, service)
    require(outcome == "ok", f"the circuit must still be closed, and the call answer, not {outcome} {value!r}")


@pytest.mark.exercise("11.1", promise=("trial", "clock"))
@pytest.mark.asyncio
async def test_circuit_breaker_tries_again_once_reset_after_has_passed_on_its_clock():
    clock, service, breaker = await _opened(2)
    clock.advance(RESET - 0.5)
    outcome, _ = await _call(breaker, service)
    require(outcome == "open", f"{RESET - 0.5} s after the circuit opened ({RESET} s to wait) a call must still raise "
                               "CircuitOpen")
    clock.advance(0.5)
    service.failing = False
    outcome, value = await _call(breaker, service)
    require(outcome == "ok", f"once {RESET} s (reset_after) have passed on the clock it was given, the next call must be "
                             f"tried, but it gave {outcome} {value!r}: read the time from `self.clock()`, never from "
                             "time.monotonic() or time.time(), so a test can move it")


@pytest.mark.exercise("11.1", promise="closes")
@pytest.mark.asyncio
async def test_circuit_breaker_closes_after_a_successful_trial():
    clock, service, breaker = await _opened(2)
    clock.advance(RESET)
    service.failing = False
    outcome, _ = await _call(breaker, service)
    require(outcome == "ok", "the trial call after reset_after must be tried and answer")
    service.failing = True
    outcome, _ = await _call(breaker, service)
    require(outcome == "error", "after a successful trial the circuit is closed: one failure (of failures=2) must not "
                                "open it again, the error must go up as it is")
    outcome, _ = await _call(breaker, service)
    require(outcome == "error", "the second failure after the trial must still be tried (and then open the circuit)")
    outcome, _ = await _call(breaker, service)
    require(outcome == "open", "after a successful trial, `failures` new failures in a row must open the circuit again")


@pytest.mark.exercise("11.1", promise="reopens")
@pytest.mark.asyncio
async def test_circuit_breaker_reopens_for_another_wait_after_a_failed_trial():
    clock, service, breaker = await _opened(3)
    clock.advance(RESET + 10)  # the trial comes 10 s later than it could have
    calls = service.calls
    outcome, value = await _call(breaker, service)
    require(outcome == "error" and service.calls == calls + 1 and value is service.raised[-1],
            f"the trial call must be tried and, when it fails, its own error must go up (it gave {outcome} {value!r})")
    outcome, _ = await _call(breaker, service)
    require(outcome == "open", "a failed trial must open the circuit again at once (not only after `failures` more "
                               "failures): the next call must raise CircuitOpen")
    clock.advance(RESET - 1)
    outcome, _ = await _call(breaker, service)
    require(outcome == "open", f"{RESET - 1} s after the failed trial the circuit must still be open: the new wait of "
                               "reset_after seconds starts when the trial fails (read clock() then), not when the "
                               "circuit first opened")
    clock.advance(1)
    service.failing = False
    outcome, _ = await _call(breaker, service)
    require(outcome == "ok", "reset_after seconds after the failed trial, the next call must be tried again")


@pytest.mark.exercise("11.1", promise="cancel")
@pytest.mark.asyncio
async def test_circuit_breaker_does_not_count_a_cancellation():
    breaker = _breaker(failures=1)
    started, never = asyncio.Event(), asyncio.Event()

    async def hangs() -> str:
        started.set()
        await never.wait()
        return "never"

    task = asyncio.create_task(breaker.call(hangs))
    try:
        async with asyncio.timeout(GUARD):
            while not started.is_set():
                if task.done():
                    task.result()  # a stub's NotImplementedError, or the learner's own error
                    pytest.fail("call() returned without calling the operation", pytrace=False)
                await asyncio.sleep(0)
        task.cancel()
        try:
            async with asyncio.timeout(GUARD):
                await task
        except asyncio.CancelledError:
            pass
        except ex.CircuitOpen:
            pytest.fail("a cancelled call must let its CancelledError go up, not raise CircuitOpen", pytrace=False)
        else:
            pytest.fail("call() swallowed the cancellation of its task: let asyncio.CancelledError go up", pytrace=False)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    service = _Service()
    outcome, _ = await _call(breaker, service)
    require(outcome == "ok", "a cancellation is not a failure of the service: with failures=1, the call after a "
                             "cancelled one must be tried, but the circuit had opened (catch Exception, not "
                             "BaseException)")


@pytest.mark.exercise("11.1", promise="positive")
@pytest.mark.parametrize(("failures", "reset_after"), [(0, 30.0), (3, 0), (3, -1.0)])
def test_circuit_breaker_refuses_bad_arguments(failures, reset_after):
    try:
        ex.CircuitBreaker(failures=failures, reset_after=reset_after, clock=ref.FakeClock())
    except ValueError:
        return
    pytest.fail(f"CircuitBreaker(failures={failures}, reset_after={reset_after}) must raise ValueError", pytrace=False)


# --- 11.2 ScriptedOperation and the scripted fixture ----------------------------------------------

async def _outcome(operation: Any) -> tuple[str, Any]:
    guard = asyncio.timeout(GUARD)
    try:
        async with guard:
            return "returned", await operation()
    except NotImplementedError:
        raise  # an untouched stub: not started
    except Exception as error:
        if isinstance(error, TimeoutError) and guard.expired():
            pytest.fail(f"a ScriptedOperation call was still running after {GUARD} s: answer at once", pytrace=False)
        return "raised", error


@pytest.mark.exercise("11.2", promise="answers")
@pytest.mark.asyncio
async def test_scripted_operation_answers_from_its_script_in_order():
    error = ConnectionError("down")
    operation = ex.ScriptedOperation([error, TimeoutError, "ok", None, 0])
    got = [await _outcome(operation) for _ in range(5)]
    require(got[0][0] == "raised" and got[0][1] is error,
            f"an exception instance in the script must be raised as it is: the first call gave {got[0]!r}")
    require(got[1][0] == "raised" and type(got[1][1]) is TimeoutError,
            f"an exception class in the script must be raised (`raise outcome` does it): the second call gave {got[1]!r}")
    require([g for g in got[2:]] == [("returned", "ok"), ("returned", None), ("returned", 0)],
            f"anything else must be returned, in the order of the script: the calls 3-5 gave {got[2:]!r}")


@pytest.mark.exercise("11.2", promise="counts")
@pytest.mark.asyncio
async def test_scripted_operation_counts_its_calls():
    operation = ex.ScriptedOperation([ConnectionError("down"), "ok"])
    require((operation.calls, operation.left) == (0, 2), "a new ScriptedOperation has calls == 0 and left == 2")
    await _outcome(operation)
    require((operation.calls, operation.left) == (1, 1),
            f"after one call, calls must be 1 and left 1, not {operation.calls} and {operation.left}")
    await _outcome(operation)
    require((operation.calls, operation.left) == (2, 0),
            f"after two calls, calls must be 2 and left 0, not {operation.calls} and {operation.left}")


@pytest.mark.exercise("11.2", promise="exhausted")
@pytest.mark.asyncio
async def test_scripted_operation_refuses_a_call_past_its_script():
    operation = ex.ScriptedOperation(["ok", "again"])
    await _outcome(operation)
    await _outcome(operation)
    outcome, value = await _outcome(operation)
    require(outcome == "raised" and isinstance(value, ex.ScriptExhausted),
            f"a third call of a script of 2 outcomes must raise ScriptExhausted, not give {outcome} {value!r}")
    require("2" in str(value), f"ScriptExhausted's message must say how many outcomes the script had (2): {value}")
    require(operation.calls == 3, f"the call past the end counts as a call too: calls must be 3, not {operation.calls}")


@pytest.mark.exercise("11.2", promise="new")
@pytest.mark.asyncio
async def test_scripted_makes_a_new_operation_per_call(scripted):
    first = scripted("a", "b")
    second = scripted("c")
    require(isinstance(first, ex.ScriptedOperation), f"scripted(...) must return a ScriptedOperation, not {first!r}")
    require(first is not second, "each call of scripted(...) must make a new ScriptedOperation")
    require(list(first.outcomes) == ["a", "b"] and list(second.outcomes) == ["c"],
            "scripted(*outcomes) must make an operation with exactly those outcomes, in order")
    got = [await _outcome(first), await _outcome(first), await _outcome(second)]
    require([v for _, v in got] == ["a", "b", "c"], f"the operations must answer from their own scripts: {got!r}")


class _Driven:
    """The learner's `scripted` fixture run by hand: set-up, then teardown, sync or async."""

    def __init__(self) -> None:
        body = getattr(ex.scripted, "__wrapped__", None)
        require(body is not None, "`scripted` must be a fixture: decorate it with @pytest.fixture")
        self.steps = body()

    async def setup(self) -> Any:
        if inspect.iscoroutine(self.steps):
            self.steps = await self.steps  # a stub's NotImplementedError in an `async def`
        if inspect.isgenerator(self.steps):
            return next(self.steps)
        if inspect.isasyncgen(self.steps):
            return await anext(self.steps)
        pytest.fail("`scripted` returns its factory, so none of its code runs after the test: `yield` the factory "
                    "instead, and check the operations after the `yield`", pytrace=False)

    async def teardown(self) -> str | None:
        """None when the teardown passed, else its pytest.fail message."""
        try:
            if inspect.isgenerator(self.steps):
                next(self.steps)
            else:
                async with asyncio.timeout(GUARD):
                    await anext(self.steps)
        except (StopIteration, StopAsyncIteration):
            return None
        except pytest.fail.Exception as failure:
            return str(failure)
        pytest.fail("the fixture yields more than once: yield the factory once, then check", pytrace=False)


@pytest.mark.exercise("11.2", promise=("unused", "says"))
@pytest.mark.asyncio
async def test_scripted_fails_the_test_when_outcomes_were_left():
    driven = _Driven()
    make = await driven.setup()
    operation = make(ConnectionError("down"), "ok", "spare")
    await _outcome(operation)  # the code under test "gave up" after one call
    message = await driven.teardown()
    require(message is not None, "the operation still had 2 of its 3 outcomes left after the test, but the teardown "
                                 "did not fail it: after the `yield`, pytest.fail() when any operation has `left > 0`")
    require("2" in message, f"the teardown's message must say how many outcomes were never used (2): {message!r}")


@pytest.mark.exercise("11.2", promise=("unused", "says"))
@pytest.mark.asyncio
async def test_scripted_checks_every_operation_it_made():
    driven = _Driven()
    make = await driven.setup()
    used, unused = make("ok"), make(ConnectionError("down"))
    await _outcome(used)
    message = await driven.teardown()
    require(message is not None, "the second operation made by the factory was never called, but the teardown did "
                                 "not fail the test: check every operation the factory made, not only the first or "
                                 "the last")
    require("1" in message, f"the teardown's message must say how many outcomes were never used (1): {message!r}")


@pytest.mark.exercise("11.2", promise="quiet")
@pytest.mark.asyncio
async def test_scripted_teardown_is_quiet_when_every_script_was_used():
    driven = _Driven()
    make = await driven.setup()
    operation = make("ok")
    await _outcome(operation)
    await _outcome(operation)  # one call too many: exhausted, but nothing left unused
    make()  # an empty script is used up from the start
    message = await driven.teardown()
    require(message is None, f"every script was used up, so the teardown must do nothing, but it failed: {message}")


# --- 11.3 tests for retry, graded by mutation -------------------------------------------------------

def _mutant(bug: str) -> Callable[..., Awaitable[Any]]:
    """The reference retry with one bug (the catalog's mutant id)."""

    async def retry(operation, *, attempts=3, base_delay=0.1, max_delay=2.0,
                    retry_on=(ConnectionError, TimeoutError), sleep=asyncio.sleep, random=_random.random):
        if attempts < 1 and bug != "accepts_zero":
            raise ValueError(f"attempts must be at least 1, got {attempts!r}")
        tries = {"once_too_few": max(1, attempts - 1), "once_too_many": attempts + 1}.get(bug, attempts)
        catching = Exception if bug == "retries_everything" else retry_on
        first: BaseException | None = None
        last: BaseException | None = None
        result = None
        for attempt in range(1, tries + 1):
            try:
                result = await operation()
                if bug != "keeps_going":
                    return result
                continue  # the bug: no return; it calls again
            except catching as error:
                first, last = first or error, error
                if attempt == tries:
                    if bug == "swallows_last_error":
                        return None
                    if bug == "first_error":
                        raise first from None
                    if bug != "waits_after_the_last":
                        raise
            if bug == "flat_backoff":
                cap = min(max_delay, base_delay)
            elif bug == "no_cap":
                cap = base_delay * 2 ** (attempt - 1)
            else:
                cap = min(max_delay, base_delay * 2 ** (attempt - 1))
            delay = {"jitter_over_cap": cap * (0.5 + random()), "no_jitter": cap}.get(bug)
            delay = random() * cap if delay is None else delay
            if bug == "ignores_sleep":
                await asyncio.sleep(0)  # stands for asyncio.sleep(delay): the grader does not wait for real
            else:
                await sleep(delay)
            if bug == "waits_after_the_last" and attempt == tries:
                raise last  # after a wait that only delays the error
        return result

    return retry


_MUTANTS = ("once_too_few", "once_too_many", "keeps_going", "retries_everything", "swallows_last_error",
            "first_error", "waits_after_the_last", "flat_backoff", "no_cap", "jitter_over_cap", "no_jitter",
            "ignores_sleep", "accepts_zero")

globals().update(
    mutation_suite(
        ex,
        "11.3",
        reference=ref.retry,
        mutants={bug: _mutant(bug) for bug in _MUTANTS},
    )
)
