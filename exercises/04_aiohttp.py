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
    # TODO(04.1): your code here. Stuck? Run `python3 -m workbook hint 04.1`.
    raise NotImplementedError


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
    # TODO(04.2): your code here. Stuck? Run `python3 -m workbook hint 04.2`.
    raise NotImplementedError


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

@pytest.mark.asyncio
async def test_price_client_reads_a_price(aiohttp_server):
    # TODO(04.3): start a server for /prices/{sku}, make a PriceClient on an aiohttp.ClientSession,
    # then `await client.price(...)` and assert on the result
    raise NotImplementedError
