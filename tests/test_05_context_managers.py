"""Grading tests for chapter 05 (exercises/05_context_managers.py).

Everything runs in memory, on the given fakes (Pool, Table, Feed) taken from the reference solution,
so that a change to the given code in the learner's file cannot change what is graded. No test
sleeps to wait for something: tasks signal with asyncio.Event, and a task that fails before it
signals makes the test fail at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect

import pytest

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("05_context_managers")
ref = load_reference("05_context_managers")
globals().update(learner_fixtures(ex))


async def _until(event: asyncio.Event, task: asyncio.Task, what: str) -> None:
    """Wait until `event` is set. If `task` ends first, re-raise its error: a broken task cannot hang the test."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not event.is_set():
        task.result()  # raises the task's own error, if it had one
        pytest.fail(f"the task finished before {what}", pytrace=False)


# --- 05.1 Lease ------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _learners_pool_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The given Pool raises the learner file's PoolExhausted, so that an `except PoolExhausted:` in the
    learner's Lease means what it says (the two files define two classes of the same name)."""
    theirs = getattr(ex, "PoolExhausted", None)
    if isinstance(theirs, type) and issubclass(theirs, Exception):
        monkeypatch.setattr(ref, "PoolExhausted", theirs)

class _SpyPool(ref.Pool):
    """The given Pool, recording every checkin(connection, discard) call, in order."""

    def __init__(self, size: int = 2) -> None:
        super().__init__(size)
        self.checkins: list[tuple[object, bool]] = []

    async def checkin(self, connection, *, discard=False):
        self.checkins.append((connection, discard))
        await super().checkin(connection, discard=discard)


_NOT_SWALLOWED = ("the error raised in the body of `async with Lease(pool)` never reached the caller: "
                  "__aexit__ must return False (or None); a true value swallows the exception")


@pytest.mark.exercise("05.1", promise=("checkout", "normal", "once"))
@pytest.mark.asyncio
async def test_lease_checks_a_connection_out_and_gives_it_back():
    pool = _SpyPool(2)
    async with ex.Lease(pool) as connection:
        require(isinstance(connection, ref.Connection), (
            f"`async with Lease(pool) as connection` gave {connection!r}: __aenter__ must return the "
            "connection from `await pool.checkout()`"
        ))
        require(pool.in_use == 1, "inside the block the connection must be checked out: `await pool.checkout()` "
                                   "in __aenter__")
        require(pool.checkins == [], "the connection was given back before the block ended")
    require(pool.in_use == 0, "after the block the connection must be back in the pool: "
                               "`await pool.checkin(connection)` in __aexit__")
    require(pool.checkins == [(connection, False)], (
        f"after a normal exit, give the connection back once, with discard=False; the pool saw {pool.checkins}"
    ))


@pytest.mark.exercise("05.1", promise=("unchanged", "discard", "once"))
@pytest.mark.asyncio
async def test_lease_passes_on_the_error_and_discards_the_connection():
    pool = _SpyPool(2)
    seen = []
    raised = ValueError("an error in the body")
    try:
        async with ex.Lease(pool) as connection:
            seen.append(connection)
            raise raised
    except ValueError as error:
        require(error is raised, (
            f"the caller got a {type(error).__name__}, but not the one the body raised (a new exception that looks "
            "the same): the body's error must reach the caller unchanged, the very same exception. Return False "
            "from __aexit__ and Python re-raises it for you"
        ))
    else:
        pytest.fail(_NOT_SWALLOWED, pytrace=False)
    require(pool.in_use == 0, "when the body raises, the connection must still be given back to the pool")
    require(pool.checkins == [(seen[0], True)], (
        "when the body raises, give the connection back once with discard=True (exc_type is not None); "
        f"the pool saw {pool.checkins}"
    ))


@pytest.mark.exercise("05.1", promise=("unchanged", "discard", "once"))
@pytest.mark.asyncio
async def test_lease_gives_the_connection_back_when_the_task_is_cancelled():
    pool = _SpyPool(2)
    inside = asyncio.Event()
    never = asyncio.Event()

    async def worker():
        async with ex.Lease(pool):
            inside.set()
            await never.wait()  # nobody sets it: the task waits here until it is cancelled

    task = asyncio.create_task(worker())
    await _until(inside, task, "it was inside `async with Lease(pool)`")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        pytest.fail("the task was cancelled inside `async with Lease(pool)` but finished normally: __aexit__ "
                    "swallowed the CancelledError; it must return False", pytrace=False)
    require(pool.in_use == 0, (
        "when the task is cancelled inside the block, the connection must still be given back. CancelledError "
        "is a BaseException, not an Exception: check `exc_type is not None`, not `issubclass(exc_type, Exception)`"
    ))
    require([discard for _, discard in pool.checkins] == [True], (
        f"a cancelled block must give the connection back once, with discard=True; the pool saw {pool.checkins}"
    ))


@pytest.mark.exercise("05.1", promise=("own", "once"))
@pytest.mark.asyncio
async def test_lease_two_leases_at_once_get_two_connections():
    pool = _SpyPool(2)
    async with ex.Lease(pool) as first:
        async with ex.Lease(pool) as second:
            require(first is not second, "two leases at once must get two different connections")
            require(pool.in_use == 2, "two leases at once must check out two connections")
        require(pool.checkins == [(second, False)], "leaving the inner block must give back the inner "
                                                     "lease's connection, and only that one")
    require(pool.checkins == [(second, False), (first, False)], (
        f"each lease must give back its own connection exactly once; the pool saw {pool.checkins}"
    ))


@pytest.mark.exercise("05.1", promise="exhausted")
@pytest.mark.asyncio
async def test_lease_lets_pool_exhausted_through_and_gives_nothing_back():
    pool = _SpyPool(1)
    async with ex.Lease(pool):
        try:
            async with ex.Lease(pool):
                pytest.fail("the pool had no free connection, yet the body of `async with Lease(pool)` ran: let "
                            "PoolExhausted from `await pool.checkout()` reach the caller", pytrace=False)
        except ref.PoolExhausted:
            pass
        else:
            pytest.fail("PoolExhausted from pool.checkout() must reach the caller", pytrace=False)
        require(pool.checkins == [], (
            "a lease that could not check a connection out must give nothing back (it gave back "
            "the other lease's connection)"
        ))
        require(pool.in_use == 1, "the first lease must still hold its connection")
    require(pool.in_use == 0, "after the outer block its connection must be back in the pool")


# --- 05.2 read_batches ------------------------------------------------------------------------------

class _FailingCursor(ref.Cursor):
    """Its second fetch() raises OSError."""

    async def fetch(self, n):
        if self.position > 0:
            await asyncio.sleep(0)
            raise OSError("the disk went away")
        return await super().fetch(n)


class _FailingTable(ref.Table):
    async def cursor(self):
        cursor = _FailingCursor(self.rows)
        self.cursors.append(cursor)
        return cursor


class _BlockingCursor(ref.Cursor):
    """Its second fetch() sets `waiting` and then waits forever (until cancelled)."""

    waiting: asyncio.Event

    async def fetch(self, n):
        if self.position > 0:
            self.waiting.set()
            await asyncio.Event().wait()
        return await super().fetch(n)


class _BlockingTable(ref.Table):
    def __init__(self, rows):
        super().__init__(rows)
        self.waiting = asyncio.Event()

    async def cursor(self):
        cursor = _BlockingCursor(self.rows)
        cursor.waiting = self.waiting
        self.cursors.append(cursor)
        return cursor


def _batches(table, size):
    generator = ex.read_batches(table, size)
    require(inspect.isasyncgen(generator), (
        f"read_batches(...) returned {type(generator).__name__}: it must be an async generator "
        "(an `async def` that uses `yield`)"
    ))
    return generator


def _the_cursor(table) -> ref.Cursor:
    require(len(table.cursors) == 1, f"read_batches must open exactly one cursor; it opened {len(table.cursors)}")
    return table.cursors[0]


@pytest.mark.exercise("05.2", promise=("generator", "batches"))
@pytest.mark.asyncio
async def test_read_batches_yields_the_rows_in_batches():
    table = ref.Table([1, 2, 3, 4, 5])
    got = [batch async for batch in _batches(table, 2)]
    require(got == [[1, 2], [3, 4], [5]], f"5 rows in batches of 2 must come out as [[1, 2], [3, 4], [5]], not {got}")


@pytest.mark.exercise("05.2", promise="no_empty")
@pytest.mark.asyncio
async def test_read_batches_never_yields_an_empty_batch():
    got = [batch async for batch in _batches(ref.Table([1, 2, 3, 4]), 2)]
    require(got == [[1, 2], [3, 4]], f"4 rows in batches of 2 must come out as [[1, 2], [3, 4]], not {got}: "
                                      "stop when fetch() returns [] instead of yielding it")
    got = [batch async for batch in _batches(ref.Table([]), 3)]
    require(got == [], f"an empty table must give no batches at all, not {got}")


@pytest.mark.exercise("05.2", promise=("at_end", "once", "one_cursor"))
@pytest.mark.asyncio
async def test_read_batches_closes_the_cursor_once_after_the_last_batch():
    table = ref.Table([1, 2, 3])
    async for _ in _batches(table, 2):
        pass
    cursor = _the_cursor(table)
    require(cursor.closed, "after the last batch the cursor must be closed: `await cursor.close()`")
    require(cursor.close_calls == 1, f"close the cursor exactly once; it was closed {cursor.close_calls} times")


@pytest.mark.exercise("05.2", promise=("lazy", "one_cursor"))
@pytest.mark.asyncio
async def test_read_batches_does_not_read_ahead():
    table = ref.Table(list(range(1, 11)))
    generator = _batches(table, 3)
    try:
        first = await anext(generator)
        require(first == [1, 2, 3], f"the first batch of 3 must be [1, 2, 3], not {first}")
        position = _the_cursor(table).position
        require(position == 3, (
            f"after the first batch of 3, {position} rows were fetched: fetch the next batch only when the "
            "consumer asks for it (a generator that reads everything first loses the point of being one)"
        ))
    finally:
        await generator.aclose()


@pytest.mark.exercise("05.2", promise=("early", "once"))
@pytest.mark.asyncio
async def test_read_batches_closes_the_cursor_on_aclose():
    table = ref.Table([1, 2, 3, 4, 5])
    generator = _batches(table, 2)
    await anext(generator)
    await generator.aclose()
    cursor = _the_cursor(table)
    require(cursor.closed, (
        "right after `await batches.aclose()` the cursor must be closed: aclose() raises GeneratorExit at "
        "the paused `yield`, so put `await cursor.close()` in a `finally:` around the loop"
    ))
    require(cursor.close_calls == 1, f"close the cursor exactly once; it was closed {cursor.close_calls} times")


@pytest.mark.exercise("05.2", promise=("early", "once"))
@pytest.mark.asyncio
async def test_read_batches_closes_the_cursor_when_left_early_with_aclosing():
    table = ref.Table([1, 2, 3, 4, 5])
    async with contextlib.aclosing(_batches(table, 2)) as batches:
        async for batch in batches:
            require(not _the_cursor(table).closed, "the cursor was closed while the consumer was still reading")
            break
    cursor = _the_cursor(table)
    require(cursor.closed, (
        "after `break` and leaving `async with aclosing(read_batches(...))`, the cursor must be closed: "
        "put `await cursor.close()` in a `finally:`"
    ))
    require(cursor.close_calls == 1, f"close the cursor exactly once; it was closed {cursor.close_calls} times")


@pytest.mark.exercise("05.2", promise=("fetch_error", "once"))
@pytest.mark.asyncio
async def test_read_batches_closes_the_cursor_when_fetch_raises():
    table = _FailingTable([1, 2, 3, 4, 5])
    got = []
    try:
        async for batch in _batches(table, 2):
            got.append(batch)
    except OSError:
        pass
    else:
        pytest.fail("fetch() raised OSError on the second batch, but the consumer never saw it: "
                    "let the error go on", pytrace=False)
    require(got == [[1, 2]], f"before the error the consumer must get the first batch [[1, 2]], not {got}")
    cursor = _the_cursor(table)
    require(cursor.closed, "when fetch() raises, the cursor must still be closed (finally)")
    require(cursor.close_calls == 1, (
        f"when fetch() raises, close the cursor exactly once; it was closed {cursor.close_calls} times"
    ))


@pytest.mark.exercise("05.2", promise=("cancelled", "once"))
@pytest.mark.asyncio
async def test_read_batches_closes_the_cursor_when_the_task_is_cancelled():
    table = _BlockingTable([1, 2, 3, 4, 5])

    async def consumer():
        async for _ in _batches(table, 2):
            pass

    task = asyncio.create_task(consumer())
    await _until(table.waiting, task, "read_batches asked for the second batch")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    require(task.cancelled(), "the consumer's task was cancelled while read_batches awaited fetch(), but it "
                               "did not end cancelled: do not catch CancelledError")
    cursor = _the_cursor(table)
    require(cursor.closed, (
        "when the task is cancelled while read_batches awaits fetch(), the cursor must still be closed: "
        "CancelledError is raised at that await, and a `finally:` runs for it"
    ))
    require(cursor.close_calls == 1, (
        f"when the task is cancelled, close the cursor exactly once; it was closed {cursor.close_calls} times"
    ))


@pytest.mark.exercise("05.2", promise="size")
@pytest.mark.asyncio
async def test_read_batches_rejects_a_size_below_one():
    table = ref.Table([1, 2, 3])
    generator = _batches(table, 0)
    try:
        await anext(generator)
    except ValueError:
        pass
    except StopAsyncIteration:
        pytest.fail("read_batches(table, 0) gave no batches: a size below 1 must raise ValueError", pytrace=False)
    else:
        await generator.aclose()
        pytest.fail("read_batches(table, 0) yielded a batch: a size below 1 must raise ValueError", pytrace=False)
    require(table.cursors == [], "with a size below 1, raise ValueError before opening a cursor")


# --- 05.3 tests for Bulkhead, graded by mutation -------------------------------------------------

# The reference and the mutants raise the learner file's BulkheadFull (`shared=` below), so that
# `pytest.raises(BulkheadFull)` in the learner's tests matches: the two files define two classes of that name.

def _admit(bulkhead) -> None:
    if bulkhead.active >= bulkhead.limit:
        raise ref.BulkheadFull(f"{bulkhead.active} callers are inside already (limit {bulkhead.limit})")
    bulkhead.active += 1


class _KeepsPlaceOnError(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        yield
        self.active -= 1  # skipped when the body raises: the exception comes out of the `yield`


class _SwallowsError(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except Exception:
            pass  # "log and carry on": the caller never hears of it
        finally:
            self.active -= 1


class _KeepsPlaceOnCancel(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except Exception:  # CancelledError is a BaseException: it skips this
            self.active -= 1
            raise
        self.active -= 1


class _FreesTwiceOnError(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except Exception:
            self.active -= 1
            raise
        finally:
            self.active -= 1


class _KeepsPlaceOnNormalExit(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except BaseException:  # "clean up when something goes wrong"; a normal exit skips it
            self.active -= 1
            raise


class _ReplacesError(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except Exception as error:
            raise RuntimeError("the block failed") from error  # "a clearer error for the caller"
        finally:
            self.active -= 1


class _SwallowsCancellation(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        _admit(self)
        try:
            yield
        except asyncio.CancelledError:
            pass  # "cancelled: nothing more to do here"
        finally:
            self.active -= 1


class _OneTooMany(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        if self.active > self.limit:
            raise ref.BulkheadFull(f"{self.active} callers are inside already (limit {self.limit})")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


class _CountsTheRefused(ref.Bulkhead):
    @contextlib.asynccontextmanager
    async def enter(self):
        self.active += 1  # counted before the check: a caller turned away keeps its place
        if self.active > self.limit:
            raise ref.BulkheadFull(f"{self.active - 1} callers are inside already (limit {self.limit})")
        try:
            yield
        finally:
            self.active -= 1


globals().update(
    mutation_suite(
        ex,
        "05.3",
        reference=ref.Bulkhead,
        mutants={
            "keeps_place_on_error": _KeepsPlaceOnError,
            "swallows_error": _SwallowsError,
            "keeps_place_on_cancel": _KeepsPlaceOnCancel,
            "frees_twice_on_error": _FreesTwiceOnError,
            "keeps_place_on_normal_exit": _KeepsPlaceOnNormalExit,
            "replaces_error": _ReplacesError,
            "swallows_cancellation": _SwallowsCancellation,
            "one_too_many": _OneTooMany,
            "counts_the_refused": _CountsTheRefused,
        },
        shared=("BulkheadFull",),
    )
)


# --- 05.4 tests for watch, graded by mutation -----------------------------------------------------

async def _no_stop_on_early_exit(feed):
    await feed.listen()
    try:
        while True:
            message = await feed.receive()
            if message is None:
                break
            yield message
    except Exception:  # aclose() raises GeneratorExit, a BaseException: it skips this
        await feed.stop()
        raise
    await feed.stop()


async def _no_stop_on_error(feed):
    await feed.listen()
    try:
        while True:
            message = await feed.receive()
            if message is None:
                break
            yield message
    except GeneratorExit:
        await feed.stop()
        raise
    await feed.stop()


async def _swallows_feed_error(feed):
    await feed.listen()
    try:
        while True:
            try:
                message = await feed.receive()
            except Exception:
                return  # "the feed is gone: nothing more to read"
            if message is None:
                return
            yield message
    finally:
        await feed.stop()


async def _empty_message_ends_stream(feed):
    await feed.listen()
    try:
        while message := await feed.receive():
            yield message
    finally:
        await feed.stop()


async def _never_listens(feed):
    try:
        while True:
            message = await feed.receive()
            if message is None:
                return
            yield message
    finally:
        await feed.stop()


async def _only_the_first(feed):
    await feed.listen()
    try:
        message = await feed.receive()  # an `if` where a `while` was meant
        if message is not None:
            yield message
    finally:
        await feed.stop()


async def _replaces_feed_error(feed):
    await feed.listen()
    try:
        while True:
            try:
                message = await feed.receive()
            except Exception as error:
                raise RuntimeError("the feed failed") from error  # "a clearer error for the consumer"
            if message is None:
                return
            yield message
    finally:
        await feed.stop()


async def _no_stop_at_end(feed):
    await feed.listen()
    try:
        while True:
            message = await feed.receive()
            if message is None:
                return
            yield message
    except BaseException:  # "stop when something goes wrong"; the end of the feed is not an exception
        await feed.stop()
        raise


globals().update(
    mutation_suite(
        ex,
        "05.4",
        reference=ref.watch,
        mutants={
            "no_stop_on_early_exit": _no_stop_on_early_exit,
            "no_stop_on_error": _no_stop_on_error,
            "swallows_feed_error": _swallows_feed_error,
            "empty_message_ends_stream": _empty_message_ends_stream,
            "never_listens": _never_listens,
            "only_the_first": _only_the_first,
            "replaces_feed_error": _replaces_feed_error,
            "no_stop_at_end": _no_stop_at_end,
        },
    )
)
