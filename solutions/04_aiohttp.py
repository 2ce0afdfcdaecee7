"""Chapter 04: testing HTTP clients with aiohttp: a local test server, concurrent requests.

Read notebooks/04_aiohttp.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 04`. Stuck? `python3 -m workbook hint 04.1`.

No test in this chapter talks to the internet: every server is a small aiohttp app on
127.0.0.1, started by the test that needs it and stopped when the test ends. Besides
`aiohttp.test_utils.TestServer`, you may use pytest-aiohttp's fixtures `aiohttp_server`,
`aiohttp_client` and `aiohttp_raw_server` (they are loaded for this chapter).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

#: The shop's price list, in cents (used by 04.1 and 04.3).
PRICES = {"apple": 120, "pear": 95, "plum": 60, "fig": 250, "kiwi": 80}
#: The one sku for which the shop's server has a bug: it answers 500.
BROKEN_SKU = "glitch"


# --- 04.1 (fixture): a local server for the shop's price API ---------------------------------

@dataclass
class Shop:
    """What the `shop` fixture yields."""

    #: The server's base URL, without a trailing slash, e.g. "http://127.0.0.1:41234".
    url: str
    #: The path of every request to /prices/..., in the order the requests arrived.
    requests: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def shop() -> AsyncIterator[Shop]:
    """Start a local HTTP server for the shop's price API, yield a Shop, stop the server after the test.

    The server answers GET /prices/{sku}:
    - a sku in PRICES: 200 with the JSON body {"sku": sku, "cents": PRICES[sku]};
    - BROKEN_SKU ("glitch"): 500 with the JSON body {"error": "internal error"};
    - any other sku: 404 with the JSON body {"error": "unknown sku"}.
    Every answer is JSON, sent with `web.json_response(body, status=...)` (so its Content-Type is
    application/json, and a client's `await response.json()` can read it).
    Every request to /prices/... is recorded: its path (`request.path`, e.g. "/prices/apple")
    is appended to `Shop.requests`, in the order the requests arrived, the 404s and the 500s included.

    The grading tests check that:
    - `shop.url` is a str that starts with "http://127.0.0.1:" and does not end with "/",
      so that f"{shop.url}/prices/apple" is a full URL;
    - the three kinds of answer above: the status, and exactly that JSON body (for the 404 and the 500 too);
    - `shop.requests` starts empty in every test and lists the paths in the order they arrived,
      the 404s and the 500s included;
    - after the test the server is stopped: nothing accepts connections on its port any more.
    """
    # SOLUTION BEGIN 04.1
    requests: list[str] = []

    async def price(request: web.Request) -> web.Response:
        requests.append(request.path)  # record first, whatever the answer will be
        sku = request.match_info["sku"]
        if sku == BROKEN_SKU:
            return web.json_response({"error": "internal error"}, status=500)
        if sku not in PRICES:
            return web.json_response({"error": "unknown sku"}, status=404)
        return web.json_response({"sku": sku, "cents": PRICES[sku]})

    app = web.Application()
    app.router.add_get("/prices/{sku}", price)
    # TestServer listens on 127.0.0.1 on a free port that the OS picks, so two tests (or two
    # people) never fight over a port. `async with` starts it and, when the block ends after
    # the test, closes it: the port stops accepting connections. The same teardown runs if the
    # test fails, because pytest resumes the fixture after `yield` either way.
    # (With pytest-aiohttp: request `aiohttp_server` and `server = await aiohttp_server(app)`;
    # that fixture closes its servers itself.)
    async with TestServer(app) as server:
        yield Shop(url=str(server.make_url("")), requests=requests)
    # SOLUTION END


# --- 04.2 (implement): fetch many URLs, a bounded number at a time ----------------------------

async def fetch_all(urls: Sequence[str], *, limit: int, timeout: float = 10.0) -> list[Any]:
    """GET every URL, at most `limit` requests at a time; return one result per URL, in the order of `urls`.

    Each URL's result is:
    - the decoded JSON body, for a 2xx answer (200, 201...);
    - None, for a 404: the thing does not exist, which is an answer, not a failure;
    - the exception itself, returned in the URL's place (not raised), for any other failure:
      `aiohttp.ClientResponseError` for any other error status (500, 403...), an
      `aiohttp.ClientConnectionError` when the server cannot be reached, and `TimeoutError`
      when the request takes longer than `timeout` seconds, from sending it to the end of its body.
      The time a URL waits for its turn (while `limit` others are in flight) does not count
      against its `timeout`.
    One URL's failure never stops or loses the others.

    Use ONE `aiohttp.ClientSession` for all the requests, created with
    `timeout=aiohttp.ClientTimeout(total=timeout)`, and close it before returning (`async with`).

    The grading tests check that:
    - the results are in the order of `urls`, even when later URLs are answered first;
    - never more than `limit` requests are in flight at once, and `limit` of them are when
      there are enough URLs (they really run concurrently);
    - a 200 or a 201 gives its JSON body; a 404 gives None; a 500 or a 403 gives a
      ClientResponseError whose `.status` is that status; a port where nothing listens gives a
      ClientConnectionError; a server that never answers, or never finishes its body, gives a
      TimeoutError; and the other URLs' results are still there;
    - with limit=1, URLs that each answer well within `timeout` all succeed, however long the
      last one waited for its turn;
    - exactly one ClientSession is created, and it is closed when fetch_all returns;
    - fetch_all([], limit=3) returns []; a limit below 1 raises ValueError before any request.
    """
    # SOLUTION BEGIN 04.2
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    # The semaphore is the bound: a request may start only while holding one of its `limit` slots.
    semaphore = asyncio.Semaphore(limit)

    async def fetch_one(session: aiohttp.ClientSession, url: str) -> Any:
        # Take the slot before the request starts: ClientTimeout's clock starts when
        # session.get() is called, so time spent waiting for a slot does not count against it.
        async with semaphore:
            try:
                # `async with` releases the response (and its connection) however the block
                # ends, even when we never read the body (the 404 and error cases).
                async with session.get(url) as response:
                    if response.status == 404:
                        return None
                    response.raise_for_status()  # any other 4xx/5xx -> ClientResponseError
                    return await response.json()
            except (aiohttp.ClientError, TimeoutError) as error:
                # Only the failures we expect from the network; a bug in our own code still raises.
                return error

    # One session for all requests: it owns the connection pool, so connections are reused
    # instead of opened and closed for every URL. `async with` closes it, even on an error.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        # gather returns the results in the order of its arguments, not the order they finish.
        return list(await asyncio.gather(*(fetch_one(session, url) for url in urls)))
    # SOLUTION END


# --- 04.3 (test): tests for a price client, graded by mutation ----------------------------------

class PriceClient:
    """Reads prices from the shop's HTTP API (the API that your `shop` fixture of 04.1 serves).

    This one is finished: do not change it. Write tests for it below.

    The caller owns the session: PriceClient uses it and never closes it.

        async with aiohttp.ClientSession() as session:
            client = PriceClient(session, "http://127.0.0.1:41234", limit=2)
            await client.price("apple")             # 120
            await client.prices(["pear", "nope"])   # [95, None]
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, limit: int = 4) -> None:
        self.session = session
        self.base_url = base_url
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)

    async def price(self, sku: str) -> int | None:
        """The price of `sku` in cents, read from GET {base_url}/prices/{sku} (JSON {"sku": ..., "cents": ...}).

        None if the shop answers 404 (no such sku). Any other error status raises
        aiohttp.ClientResponseError: a server error is a failure, not a missing price.
        Every response is released (its connection goes back to the pool), whatever its status,
        even when the body is not read.
        However many calls run at once, at most `limit` requests are in flight.
        """
        async with self._slots:
            async with self.session.get(f"{self.base_url}/prices/{sku}") as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                body = await response.json()
                return body["cents"]

    async def prices(self, skus: Iterable[str]) -> list[int | None]:
        """The prices of all `skus`, fetched concurrently, in the order of `skus`.

        If one of them fails, the others are cancelled and the error is raised inside an
        ExceptionGroup (that is what asyncio.TaskGroup does): a 500 for one sku makes prices()
        raise an ExceptionGroup that wraps the aiohttp.ClientResponseError, not the error itself.
        So test the HTTP 500 case through price(), or check the group with
        `with pytest.RaisesGroup(aiohttp.ClientResponseError):` (pytest 8.4+: the group holds
        exactly that one error; `pytest.RaisesExc(aiohttp.ClientResponseError, check=...)` can
        check its status), or catch it with `pytest.raises(ExceptionGroup) as excinfo` and check
        `excinfo.group_contains(aiohttp.ClientResponseError)` (only that such an error is in it).
        """
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.price(sku)) for sku in skus]
        return [task.result() for task in tasks]


# Your tests: async functions named test_price_client_..., each marked @pytest.mark.asyncio.
# Start a server of your own in each test (pytest-aiohttp's `aiohttp_server` fixture is the
# shortest way; your `shop` fixture from 04.1 works too, but then these tests need 04.1 to pass),
# open an aiohttp.ClientSession, and use `PriceClient` by its name so that grading can swap in
# broken copies of it. Grading runs your tests against the code above (they must pass) and
# against each broken copy (at least one of your tests must fail on each).

# SOLUTION BEGIN 04.3
#| @pytest.mark.asyncio
#| async def test_price_client_reads_a_price(aiohttp_server):
#|     # TODO(04.3): start a server for /prices/{sku}, make a PriceClient on an aiohttp.ClientSession,
#|     # then `await client.price(...)` and assert on the result
#|     raise NotImplementedError
def _price_app(handler) -> web.Application:
    """An app that answers GET /prices/{sku} with `handler`."""
    app = web.Application()
    app.router.add_get("/prices/{sku}", handler)
    return app


async def _list_price(request: web.Request) -> web.Response:
    """The shop's normal behaviour: PRICES, 404 for unknown skus, 500 for BROKEN_SKU."""
    sku = request.match_info["sku"]
    if sku == BROKEN_SKU:
        return web.json_response({"error": "internal error"}, status=500)
    if sku not in PRICES:
        return web.json_response({"error": "unknown sku"}, status=404)
    return web.json_response({"sku": sku, "cents": PRICES[sku]})


@pytest_asyncio.fixture(name="client_session")
async def _client_session() -> AsyncIterator[aiohttp.ClientSession]:
    """One ClientSession per test, closed after it (the tests' PriceClients share it)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.asyncio
async def test_price_client_reads_a_price_and_none_for_an_unknown_sku(aiohttp_server, client_session):
    server = await aiohttp_server(_price_app(_list_price))
    client = PriceClient(client_session, str(server.make_url("")))
    assert await client.price("apple") == 120
    assert await client.price("no-such-fruit") is None


@pytest.mark.asyncio
async def test_price_client_raises_for_a_server_error(aiohttp_server, client_session):
    server = await aiohttp_server(_price_app(_list_price))
    client = PriceClient(client_session, str(server.make_url("")))
    # A 500 is not "no such sku": hiding it as None would show a missing price instead of an outage.
    with pytest.raises(aiohttp.ClientResponseError) as caught:
        await client.price(BROKEN_SKU)
    assert caught.value.status == 500


@pytest.mark.asyncio
async def test_price_client_keeps_the_order_of_the_skus(aiohttp_server, client_session):
    # The first sku is answered last: it waits until both others have been answered.
    others_answered = 0
    first_may_answer = asyncio.Event()

    async def apple_last(request: web.Request) -> web.Response:
        nonlocal others_answered
        sku = request.match_info["sku"]
        if sku == "apple":
            await first_may_answer.wait()
        else:
            others_answered += 1
            if others_answered == 2:
                first_may_answer.set()
        return web.json_response({"sku": sku, "cents": PRICES[sku]})

    server = await aiohttp_server(_price_app(apple_last))
    client = PriceClient(client_session, str(server.make_url("")), limit=3)
    async with asyncio.timeout(0.5):  # a client that asks one at a time would wait here forever
        assert await client.prices(["apple", "pear", "plum"]) == [120, 95, 60]
    # The session is the caller's: the client used it, and must leave it open for the next request.
    assert not client_session.closed
    assert await client.price("fig") == 250


class _InFlight:
    """A price handler that counts requests in flight and holds each one until `release` is set."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.now = 0
        self.most = 0
        self.enough = asyncio.Event()  # set once `limit` requests are in flight together
        self.release = asyncio.Event()  # set by the test: from then on, nothing is held

    async def handler(self, request: web.Request) -> web.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        if self.now >= self.limit:
            self.enough.set()
        try:
            await self.release.wait()
            return web.json_response({"sku": request.match_info["sku"], "cents": 1})
        finally:
            self.now -= 1

    async def hold_then_release(self) -> None:
        """Wait until `limit` requests are in flight, give any extra one time to arrive, then release all."""
        try:
            async with asyncio.timeout(2):  # a client that never reaches `limit` would leave us waiting
                await self.enough.wait()
            # A bounded client cannot send another request now; a client that allows more has sent
            # it already, and it reaches the server well within this moment.
            await asyncio.sleep(0.1)
        finally:
            self.release.set()


@pytest.mark.asyncio
async def test_price_client_never_has_more_than_limit_requests_in_flight(aiohttp_server, client_session):
    counter = _InFlight(limit=2)
    server = await aiohttp_server(_price_app(counter.handler))
    client = PriceClient(client_session, str(server.make_url("")), limit=2)
    task = asyncio.create_task(client.prices(["apple", "pear", "plum", "fig", "kiwi"]))
    try:
        await counter.hold_then_release()
        assert await task == [1, 1, 1, 1, 1]
    finally:
        task.cancel()  # if the test failed before awaiting it, the task must not outlive the test
    # Two requests were in flight together, and never more: proved by counting, not by timing.
    assert counter.most == 2


@pytest.mark.asyncio
async def test_price_client_limit_holds_across_separate_calls(aiohttp_server, client_session):
    # The limit is the client's, not one prices() call's: price() calls made at the same time
    # from different places share it too.
    counter = _InFlight(limit=2)
    server = await aiohttp_server(_price_app(counter.handler))
    client = PriceClient(client_session, str(server.make_url("")), limit=2)
    task = asyncio.gather(client.price("apple"), client.price("pear"), client.prices(["plum", "fig"]))
    try:
        await counter.hold_then_release()
        assert await task == [1, 1, [1, 1]]
    finally:
        task.cancel()
    assert counter.most == 2


@pytest.mark.asyncio
async def test_price_client_prices_raises_a_group_and_cancels_the_others(aiohttp_server, client_session):
    stop_holding = asyncio.Event()  # set at the end, so the held handler cannot outlive the test

    async def held_or_listed(request: web.Request) -> web.Response:
        if request.match_info["sku"] == "held":
            await stop_holding.wait()  # never answers while the test runs
        return await _list_price(request)

    server = await aiohttp_server(_price_app(held_or_listed))
    client = PriceClient(client_session, str(server.make_url("")))
    # RaisesGroup: what prices() raises is a group holding exactly one error, the 500 itself (a bare
    # error fails it, and so does a group with anything else in it, which group_contains would accept).
    the_500_in_a_group = pytest.RaisesGroup(
        pytest.RaisesExc(aiohttp.ClientResponseError, check=lambda error: error.status == 500)
    )
    try:
        # prices() must give up on "held" as soon as "glitch" fails: a client that waits for
        # every answer before raising is still waiting when the timeout ends (TimeoutError).
        with the_500_in_a_group:
            async with asyncio.timeout(0.5):
                await client.prices(["apple", "held", BROKEN_SKU])
    finally:
        stop_holding.set()
    assert not client_session.closed


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "outcome"), [(404, None), (500, aiohttp.ClientResponseError)])
async def test_price_client_releases_the_connection_of_an_error(aiohttp_server, status, outcome):
    async def slow_error(request: web.Request) -> web.StreamResponse:
        # Send the status and the first bytes of the body, then never finish it. A small body
        # would arrive whole, and aiohttp frees a connection by itself once its body is complete,
        # so only an unfinished body shows whether the client releases the response.
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        await response.write(b'{"error": ')
        await asyncio.Event().wait()  # until the client hangs up (the server then cancels this)
        return response

    server = await aiohttp_server(_price_app(slow_error))
    # A pool of one connection: a response that is never released keeps it busy for good.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        client = PriceClient(session, str(server.make_url("")))
        async with asyncio.timeout(0.25):  # only a leaking client waits this long
            for _ in range(2):
                if outcome is None:
                    assert await client.price("nope") is None
                else:
                    with pytest.raises(outcome):
                        await client.price("nope")
# SOLUTION END
