"""Chapter 05: async context managers and async generators.

Read notebooks/05_context_managers.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 05`. Stuck? `python3 -m workbook hint 05.1`.

Everything here runs in memory: the pool, the table and the feed below are small fakes that
record what was done to them, so that tests can look at them without a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

import pytest


# --- Given: a pool of connections, for 05.1 ------------------------------------------------------

class Connection:
    """A fake database connection: only a number, so that tests can tell connections apart."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"Connection({self.number})"


class PoolExhausted(Exception):
    """Raised by Pool.checkout() when every connection is already checked out."""


class Pool:
    """A fixed number of connections that callers check out and give back.

    This one is finished: do not change it. `Lease` (05.1) builds on it.

    - `await pool.checkout()` hands out a free connection, or raises PoolExhausted at once
      when all of them are checked out.
    - `await pool.checkin(connection)` takes it back. With `discard=True` the pool throws the
      connection away (it may be broken) and puts a new one in its place.
    - Giving back a connection that is not checked out (for example, giving it back twice)
      raises ValueError.
    - `pool.in_use` is how many connections are checked out; `pool.discarded` lists the ones
      thrown away.
    """

    def __init__(self, size: int = 2) -> None:
        self._made = 0
        self._free = [self._new() for _ in range(size)]
        self._out: list[Connection] = []
        self.discarded: list[Connection] = []

    def _new(self) -> Connection:
        self._made += 1
        return Connection(self._made)

    @property
    def in_use(self) -> int:
        return len(self._out)

    @property
    def free(self) -> int:
        return len(self._free)

    async def checkout(self) -> Connection:
        await asyncio.sleep(0)  # a real pool may wait here; nothing is taken until after this await
        if not self._free:
            raise PoolExhausted("every connection in the pool is checked out")
        connection = self._free.pop(0)
        self._out.append(connection)
        return connection

    async def checkin(self, connection: Connection, *, discard: bool = False) -> None:
        if connection not in self._out:
            raise ValueError(f"{connection!r} is not checked out: was it given back twice?")
        # The bookkeeping happens before the await, so a second cancellation cannot undo it.
        self._out.remove(connection)
        if discard:
            self.discarded.append(connection)
            self._free.append(self._new())
        else:
            self._free.append(connection)
        await asyncio.sleep(0)


# --- 05.1 (implement): a lease that always gives the connection back ------------------------------

class Lease:
    """Check a connection out of `pool` for the length of an `async with` block:

        async with Lease(pool) as connection:
            ...  # use the connection

    On entering, check a connection out with `await pool.checkout()` and return it (that is what
    `as connection` receives). If checkout() raises (PoolExhausted, when every connection is out),
    let the error reach the caller: nothing was checked out, so nothing is given back.

    On leaving, give the connection back with `await pool.checkin(connection)`, exactly once,
    however the block ends:
    - normally: give it back as it is (discard=False);
    - with an exception, or because the task was cancelled: give it back with `discard=True`
      (a connection that was in the middle of something may be broken), and let the exception
      reach the caller unchanged (the very exception the body raised, not a copy or another one).
      `__aexit__` must not swallow it: return False (or None).

    Each lease holds its own connection: two leases at once get two different connections, and
    each gives back its own.

    The grading tests check that:
    - inside the block the connection is checked out, and afterwards it is back in the pool;
    - when the body raises, that same error reaches the caller and the connection is given back,
      discarded;
    - when the task is cancelled inside the block, `await task` raises CancelledError and the
      connection is given back, discarded;
    - each lease gives its connection back exactly once, and two leases at once get two different
      connections;
    - when the pool is exhausted, PoolExhausted reaches the caller and nothing is given back.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def __aenter__(self) -> Connection:
        # TODO(05.1): check a connection out, remember it, return it.
        # Stuck? Run `python3 -m workbook hint 05.1`.
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        # TODO(05.1): give the connection back (discard it if the block raised) and return False.
        raise NotImplementedError


# --- Given: a table of rows read through a cursor, for 05.2 --------------------------------------

class Cursor:
    """Reads a table's rows in order. Made by `await table.cursor()`.

    This one is finished: do not change it.

    - `await cursor.fetch(n)` returns the next (up to) n rows, and [] once every row was read.
    - `await cursor.close()` closes it; `cursor.closed` says whether it is, `cursor.close_calls`
      how many times close() was called. Fetching from a closed cursor raises RuntimeError.
    - `cursor.position` is how many rows have been fetched so far.
    """

    def __init__(self, rows: list[object]) -> None:
        self._rows = rows
        self.position = 0
        self.closed = False
        self.close_calls = 0

    async def fetch(self, n: int) -> list[object]:
        if self.closed:
            raise RuntimeError("fetch() on a closed cursor")
        await asyncio.sleep(0)  # a real cursor would wait for the server here
        batch = self._rows[self.position:self.position + n]
        self.position += len(batch)
        return batch

    async def close(self) -> None:
        self.closed = True
        self.close_calls += 1
        await asyncio.sleep(0)


class Table:
    """An in-memory table. `await table.cursor()` opens a new Cursor over its rows.

    This one is finished: do not change it. `table.cursors` lists every cursor opened so far.
    """

    def __init__(self, rows: list[object]) -> None:
        self.rows = list(rows)
        self.cursors: list[Cursor] = []

    async def cursor(self) -> Cursor:
        await asyncio.sleep(0)
        cursor = Cursor(self.rows)
        self.cursors.append(cursor)
        return cursor

    @property
    def open_cursors(self) -> int:
        return sum(not cursor.closed for cursor in self.cursors)


# --- 05.2 (implement): an async generator that closes its cursor, even when left early ------------

async def read_batches(table: Table, size: int) -> AsyncIterator[list[object]]:
    """Yield the rows of `table` in lists of `size` rows (the last list may be shorter).

        async with contextlib.aclosing(read_batches(table, 100)) as batches:
            async for batch in batches:
                ...

    A `size` below 1 raises ValueError (on the first `async for` step) before any cursor is
    opened. Otherwise open one cursor with `await table.cursor()` and read with
    `await cursor.fetch(size)`, one batch at a time, only when the consumer asks for the next
    batch (do not read ahead). Stop when fetch() returns []: no empty list ever comes out.

    Close the cursor exactly once, however the reading ends: after the last batch; when the
    consumer stops early and the generator is closed (`await batches.aclose()`, or leaving
    `aclosing(...)`); when fetch() raises (its error goes on to the consumer); when the consumer's
    task is cancelled (the CancelledError goes on too: do not catch it).

    The grading tests check that:
    - read_batches is an async generator (an `async def` with `yield`);
    - 5 rows in batches of 2 come out as [[1, 2], [3, 4], [5]], and no empty list ever comes out
      (4 rows give two batches; an empty table gives none);
    - after the first batch only `size` rows have been fetched;
    - the cursor is closed, once, after the last batch; right after `aclose()`; right after
      leaving `aclosing(...)` early with `break`; when fetch() raises (the error reaches the
      consumer); and when the consumer's task is cancelled while waiting for a batch (the task
      ends cancelled);
    - a size below 1 raises ValueError (on the first `async for` step) and opens no cursor.
    """
    # TODO(05.2): your code here. Stuck? Run `python3 -m workbook hint 05.2`.
    raise NotImplementedError
    yield  # keep one `yield`: it makes this function an async generator


# --- 05.3 (test): tests for a given async context manager -----------------------------------------

class BulkheadFull(Exception):
    """Raised by Bulkhead.enter() when `limit` callers are already inside."""


class Bulkhead:
    """Lets at most `limit` callers run a block at the same time; turns the others away at once.

        bulkhead = Bulkhead(limit=2)
        async with bulkhead.enter():
            ...  # at most two tasks are here at the same time

    This one is finished: do not change it. Write tests for it below.

    - `bulkhead.active` is how many callers are inside right now.
    - `enter()` lets up to `limit` callers in at the same time; when `limit` callers are already
      inside, it raises BulkheadFull, without waiting, and the caller it turns away takes no place.
    - Leaving the block frees the caller's place, exactly once, however the block ends:
      - after a normal exit;
      - when the body raises, and then the error reaches the caller unchanged (the same
        exception: never swallowed, never replaced by another one);
      - when the task is cancelled inside the block, and then CancelledError reaches the caller
        (never swallowed: the task ends cancelled).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @contextlib.asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        if self.active >= self.limit:
            raise BulkheadFull(f"{self.active} callers are inside already (limit {self.limit})")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


# Your tests: functions named test_bulkhead_..., marked for pytest-asyncio. Create each Bulkhead
# inside the test, by its name `Bulkhead(...)`, so that grading can swap in broken copies of it.
# Grading runs them against the code above (they must pass) and against the broken copies (at
# least one test must fail on each). No asyncio.sleep() to wait for things: use asyncio.Event.

@pytest.mark.asyncio
async def test_bulkhead_frees_the_place_after_a_normal_exit():
    # TODO(05.3): enter a Bulkhead, look at .active inside and after the block
    raise NotImplementedError


# --- 05.4 (test): tests for a given async generator -----------------------------------------------

class FeedError(Exception):
    """The feed broke (for example, its connection was lost)."""


class Feed:
    """A fake live feed of text messages, like a pub/sub subscription.

    This one is finished: do not change it.

    What `watch` uses: `await feed.listen()`; `await feed.receive()`, which returns the next
    message, None once the feed has ended, or raises the error given to fail(); `await feed.stop()`.

    What your tests use to drive it (messages wait in the feed until received, so you can push
    them before you start reading): `feed.push(message)`, `feed.end()`, `feed.fail(error)`.
    And to look at it: `feed.listening` (True between listen() and stop()) and `feed.stops`
    (how many times stop() was called).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None | BaseException] = asyncio.Queue()
        self.listening = False
        self.stops = 0

    def push(self, message: str) -> None:
        self._queue.put_nowait(message)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        self._queue.put_nowait(error)

    async def listen(self) -> None:
        await asyncio.sleep(0)
        self.listening = True

    async def receive(self) -> str | None:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def stop(self) -> None:
        self.listening = False
        self.stops += 1
        await asyncio.sleep(0)


async def watch(feed: Feed) -> AsyncIterator[str]:
    """Listen to `feed` and yield its messages in order until the feed ends; then stop listening.

        async with contextlib.aclosing(watch(feed)) as messages:
            async for message in messages:
                ...

    This one is finished: do not change it. Write tests for it below.

    - It listens (`feed.listen()`) before it reads: the feed is listening while messages come out.
    - Every message is yielded, in order, the empty message "" included; None from receive() ends it.
    - When the feed fails, its error reaches the consumer unchanged (the same exception, not
      another one).
    - It stops listening (`feed.stop()`) however it ends: when the feed ends, when the feed fails,
      and when the consumer stops early and closes it (`aclose()`, or leaving `aclosing(...)`).
    """
    await feed.listen()
    try:
        while True:
            message = await feed.receive()
            if message is None:
                return
            yield message
    finally:
        await feed.stop()


# Your tests: functions named test_watch_..., marked for pytest-asyncio. Call `watch(feed)` by its
# name, so that grading can swap in broken copies of it. Grading runs them against the code above
# (they must pass) and against the broken copies (at least one test must fail on each).

@pytest.mark.asyncio
async def test_watch_yields_every_message_until_the_feed_ends():
    feed = Feed()
    feed.push("hello")
    feed.end()
    # TODO(05.4): read everything with `async for` and assert what came out
    raise NotImplementedError
