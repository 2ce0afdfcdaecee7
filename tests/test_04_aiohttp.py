"""Grading tests for chapter 04 (exercises/04_aiohttp.py).

Every server here is a local aiohttp app on 127.0.0.1, started by the test and closed by it.
Nothing waits for time to pass to make a server slow: slow answers are held on asyncio.Events,
and the concurrency bound is proved by counting requests in flight, never by timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("04_aiohttp")
ref = load_reference("04_aiohttp")
globals().update(learner_fixtures(ex))



def _shown(value: Any) -> str:
    """A short description of a result, for messages: an exception by its class and status, not its long repr."""
    if isinstance(value, aiohttp.ClientResponseError):
        return f"{type(value).__name__} (status {value.status})"
    if isinstance(value, BaseException):
        return type(value).__name__
    return repr(value)


def _shown_all(results: list[Any]) -> str:
    return "[" + ", ".join(_shown(r) for r in results) + "]"


# --- 04.1 shop ----------------------------------------------------------------------------------

async def _get(url: str) -> tuple[int, Any]:
    """(status, decoded JSON body or None if the body is not JSON) of one GET."""
    status, body, _ = await _get_typed(url)
    return status, body


async def _get_typed(url: str) -> tuple[int, Any, str]:
    """(status, decoded JSON body or None if the body is not JSON, Content-Type) of one GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text), response.content_type
        except ValueError:
            return response.status, None, response.content_type


def _port_is_closed(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


def _check_url(shop: Any) -> str:
    url = getattr(shop, "url", None)
    require(isinstance(url, str), f"shop must yield a Shop(url=..., requests=...) whose url is a str, not {shop!r}")
    require(url.startswith("http://127.0.0.1:"), f"shop.url must start with 'http://127.0.0.1:', not {url!r}")
    require(not url.endswith("/"), f"shop.url must not end with '/', so that f\"{{shop.url}}/prices/apple\" works: {url!r}")
    return url


@pytest.mark.exercise("04.1", promise=("url", "price"))
@pytest.mark.asyncio
async def test_shop_yields_the_base_url_of_a_local_server(shop):
    url = _check_url(shop)
    require(await _get(f"{url}/prices/apple") == (200, {"sku": "apple", "cents": 120}),
             "GET /prices/apple must answer 200 with the JSON body {\"sku\": \"apple\", \"cents\": 120}")


@pytest.mark.exercise("04.1", promise=("price", "unknown", "broken", "json"))
@pytest.mark.asyncio
async def test_shop_answers_prices_unknown_skus_and_the_broken_sku(shop):
    url = _check_url(shop)
    for sku, cents in ex.PRICES.items():
        status, body = await _get(f"{url}/prices/{sku}")
        require((status, body) == (200, {"sku": sku, "cents": cents}),
                 f"GET /prices/{sku} must answer 200 with {{\"sku\": \"{sku}\", \"cents\": {cents}}}, "
                 f"not {status} with {body!r}")
    status, body = await _get(f"{url}/prices/no-such-fruit")
    require(status == 404, f"GET /prices/no-such-fruit (an unknown sku) must answer 404, not {status}")
    require(body == {"error": "unknown sku"},
             f"the 404 must have the JSON body {{\"error\": \"unknown sku\"}} (web.json_response(..., status=404)), "
             f"not {body!r}")
    status, body = await _get(f"{url}/prices/{ex.BROKEN_SKU}")
    require(status == 500, f"GET /prices/{ex.BROKEN_SKU} must answer 500, not {status}")
    require(body == {"error": "internal error"},
             f"the 500 must have the JSON body {{\"error\": \"internal error\"}}, not {body!r}")


@pytest.mark.exercise("04.1", promise=("json", "price", "unknown", "broken"))
@pytest.mark.asyncio
async def test_shop_sends_every_answer_as_json(shop):
    url = _check_url(shop)
    for sku in ("apple", "no-such-fruit", ex.BROKEN_SKU):
        status, _, content_type = await _get_typed(f"{url}/prices/{sku}")
        require(content_type == "application/json",
                 f"GET /prices/{sku} answered {status} with Content-Type {content_type!r}: every answer must be sent "
                 "as JSON (web.json_response(body, status=...)), so that a client's `await response.json()` reads it")


@pytest.mark.exercise("04.1", promise=("recorded", "fresh"))
@pytest.mark.asyncio
async def test_shop_records_every_request_in_order(shop):
    url = _check_url(shop)
    require(list(getattr(shop, "requests", None) or []) == [] and isinstance(shop.requests, list),
             "shop.requests must be a list that starts empty in every test (make the list inside the fixture, not "
             f"at module level), not {getattr(shop, 'requests', None)!r}")
    for sku in ("pear", "no-such-fruit", ex.BROKEN_SKU, "apple"):
        await _get(f"{url}/prices/{sku}")
    expected = ["/prices/pear", "/prices/no-such-fruit", f"/prices/{ex.BROKEN_SKU}", "/prices/apple"]
    require(shop.requests == expected,
             f"shop.requests must list the path of every request in the order they arrived, 404s and 500s "
             f"included: expected {expected}, got {shop.requests}")


@pytest.mark.exercise("04.1", promise="fresh")
@pytest.mark.asyncio
@pytest.mark.parametrize("sku", ["kiwi", "fig"])
async def test_shop_starts_fresh_in_every_test(shop, sku):
    # Whichever of the two runs second would see the other's path in a list shared between tests.
    url = _check_url(shop)
    await _get(f"{url}/prices/{sku}")
    require(getattr(shop, "requests", None) == [f"/prices/{sku}"],
             f"shop.requests must start empty in every test (make the list inside the fixture, not at module "
             f"level): after one request to /prices/{sku} it holds {getattr(shop, 'requests', None)!r}")


@pytest.mark.exercise("04.1", promise="stopped")
@pytest.mark.asyncio
async def test_shop_stops_the_server_after_the_test(workbook_after_teardown, shop):
    url = URL(_check_url(shop))
    status, _ = await _get(f"{url}/prices/apple")
    require(status == 200, "the server must answer during the test")
    workbook_after_teardown(lambda: _port_is_closed(url.host, url.port),
                            "the server still accepts connections: close it after `yield` "
                            "(end the `async with TestServer(app)` block there, or `await server.close()`)")


# --- a server of the graders' own, for 04.2 --------------------------------------------------------

@dataclass
class Api:
    """The graders' server: JSON, 404, 500, requests held until released, and one that never answers."""

    server: TestServer
    in_flight: int = 0
    most_in_flight: int = 0
    requests: int = 0
    hold_until: int = 0  # set `enough` once this many requests are in flight at once
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    never: asyncio.Event = field(default_factory=asyncio.Event)
    answered: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest_asyncio.fixture
async def grader_api() -> AsyncIterator[Api]:
    api: Api

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"item": int(request.match_info["n"])})

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "no such thing"}, status=404)

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "internal error"}, status=500)

    async def held(request: web.Request) -> web.Response:
        api.in_flight += 1
        api.most_in_flight = max(api.most_in_flight, api.in_flight)
        if api.in_flight >= api.hold_until:
            api.enough.set()
        try:
            await api.release.wait()
            return web.json_response({"item": int(request.match_info["n"])})
        finally:
            api.in_flight -= 1

    async def last_first(request: web.Request) -> web.Response:
        # /order/0 is answered only after every other /order/n has been answered.
        n = int(request.match_info["n"])
        if n == 0:
            await api.release.wait()
        else:
            api.answered.append(str(n))
            if len(api.answered) == api.hold_until:
                api.release.set()
        return web.json_response({"item": n})

    async def never(request: web.Request) -> web.Response:
        await api.never.wait()  # set at teardown, so the server can stop
        return web.json_response({"item": "late"})

    async def created(request: web.Request) -> web.Response:
        return web.json_response({"item": "new"}, status=201)

    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response({"error": "forbidden"}, status=403)

    async def trickle(request: web.Request) -> web.StreamResponse:
        # A body that never ends: a byte every 0.05 s, so no pause between two bytes is long.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await response.write(b'{"item": ')
            while not api.never.is_set():
                await asyncio.sleep(0.05)
                await response.write(b" ")
        except ConnectionError:
            pass  # the client gave up and hung up
        return response

    async def paced(request: web.Request) -> web.Response:
        # The one place where time must pass: a request that takes _PACE s, well within _PACED_TIMEOUT.
        await asyncio.sleep(_PACE)
        return web.json_response({"item": int(request.match_info["n"])})

    @web.middleware
    async def count(request: web.Request, handler: Callable[..., Any]) -> Any:
        api.requests += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.router.add_get("/items/{n}", item)
    app.router.add_get("/missing", missing)
    app.router.add_get("/broken", broken)
    app.router.add_get("/held/{n}", held)
    app.router.add_get("/order/{n}", last_first)
    app.router.add_get("/never", never)
    app.router.add_get("/created", created)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/paced/{n}", paced)
    async with TestServer(app) as server:
        api = Api(server=server)
        try:
            yield api
        finally:
            api.release.set()
            api.never.set()


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A URL where nothing listens: a port we hold (bound, never listening), so connecting is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/items/1"


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every aiohttp.ClientSession created during the test."""
    made: list[aiohttp.ClientSession] = []
    original = aiohttp.ClientSession.__init__

    def spy(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", spy)
    return made


_NEVER_RETURNED = "fetch_all did not return within 3 s: does it wait for something that never happens?"


async def _fetch_all(urls: list[str], *, stuck: str = _NEVER_RETURNED, **kwargs: Any) -> list[Any]:
    return await _await_fetch_all(asyncio.ensure_future(ex.fetch_all(urls, **kwargs)), len(urls), stuck=stuck)


async def _await_fetch_all(task: asyncio.Future[Any], count: int, *, stuck: str = _NEVER_RETURNED) -> list[Any]:
    try:
        async with asyncio.timeout(3):
            results = await task
    except TimeoutError as error:
        if task.done() and not task.cancelled() and task.exception() is error:  # fetch_all itself raised it
            pytest.fail("fetch_all raised TimeoutError: a request that times out must put the TimeoutError in its "
                        "URL's place (return it), not raise it", pytrace=False)
        pytest.fail(stuck, pytrace=False)
    except aiohttp.ClientError as error:
        pytest.fail(f"fetch_all raised {_shown(error)}: a failing URL must put its exception in its own place in the "
                    "results (catch it in the function that fetches one URL and return it), not raise it",
                    pytrace=False)
    require(isinstance(results, list), f"fetch_all must return a list, not {type(results).__name__}")
    require(len(results) == count, f"fetch_all must return one result per URL: {count} URLs, {len(results)} results")
    return results


# --- 04.2 fetch_all ---------------------------------------------------------------------------------

@pytest.mark.exercise("04.2", promise=("order", "concurrent"))
@pytest.mark.asyncio
async def test_fetch_all_returns_the_json_bodies_in_the_order_of_the_urls(grader_api):
    grader_api.hold_until = 3  # /order/0 is answered after /order/1, 2 and 3
    urls = [grader_api.url(f"/order/{n}") for n in range(4)]
    results = await _fetch_all(urls, limit=4, stuck=(
        "fetch_all did not return within 3 s. Here the first URL is answered only after the other three: "
        "with limit=4 all four requests must be in flight together, not one after the other"))
    require(results == [{"item": n} for n in range(4)],
             f"the results must be in the order of the URLs, whatever order the answers arrive in: the first URL "
             f"was answered last, and fetch_all returned {_shown_all(results)} (asyncio.gather keeps the order)")


@pytest.mark.exercise("04.2", promise=("bound", "concurrent"))
@pytest.mark.asyncio
async def test_fetch_all_never_has_more_than_limit_requests_in_flight(grader_api):
    # The server holds every request until the test releases them. Once 3 are in flight at once,
    # the test gives a 4th request a moment to arrive, then releases them: a bounded fetch_all
    # cannot send another while its 3 slots are taken; one that allows more has sent it already.
    grader_api.hold_until = 3
    urls = [grader_api.url(f"/held/{n}") for n in range(8)]
    task = asyncio.ensure_future(ex.fetch_all(urls, limit=3))
    enough = asyncio.ensure_future(grader_api.enough.wait())
    await asyncio.wait({task, enough}, timeout=1, return_when=asyncio.FIRST_COMPLETED)
    enough.cancel()
    if grader_api.enough.is_set():
        await asyncio.sleep(0.1)
    grader_api.release.set()  # from here on no request is held
    results = await _await_fetch_all(task, 8)
    require(grader_api.most_in_flight <= 3,
             f"with limit=3, at most 3 requests may be in flight at once, but the server saw "
             f"{grader_api.most_in_flight}: make every request wait for a slot of one shared asyncio.Semaphore(limit)")
    require(grader_api.enough.is_set(),
             f"with limit=3 and 8 URLs, 3 requests should be in flight at once, but the server never saw more than "
             f"{grader_api.most_in_flight}: start all the requests together (asyncio.gather) and let the semaphore "
             "hold back the extra ones")
    require(results == [{"item": n} for n in range(8)], f"fetch_all returned {_shown_all(results)}")


@pytest.mark.exercise("04.2", promise=("none404", "status", "returned", "json", "others"))
@pytest.mark.asyncio
async def test_fetch_all_gives_none_for_a_404_and_the_error_for_a_500(grader_api):
    urls = [grader_api.url("/items/1"), grader_api.url("/missing"), grader_api.url("/broken"), grader_api.url("/items/2")]
    results = await _fetch_all(urls, limit=2)
    require(results[0] == {"item": 1} and results[3] == {"item": 2},
             f"the URLs that answer 200 must give their JSON bodies, even when others fail: got {_shown_all(results)}")
    require(results[1] is None, f"a 404 must give None (the thing does not exist), not {_shown(results[1])}")
    _require_status_error(results[2], 500, "a 500 must give the aiohttp.ClientResponseError itself "
                                           "(response.raise_for_status() raises it; return it in the URL's place)")


def _require_status_error(error: object, status: int, what: str) -> None:
    """`error` is the ClientResponseError of an answer with `status`; `what` says why it must be."""
    require(isinstance(error, aiohttp.ClientResponseError), f"{what}, not {_shown(error)}")
    require(error.status == status,
             f"the ClientResponseError for a {status} must have .status == {status}, not {error.status}")


@pytest.mark.exercise("04.2", promise=("status", "json", "returned"))
@pytest.mark.asyncio
async def test_fetch_all_only_a_404_is_none_and_any_2xx_is_a_success(grader_api):
    results = await _fetch_all([grader_api.url("/created"), grader_api.url("/forbidden")], limit=2)
    require(results[0] == {"item": "new"},
             f"a 201 is a success like a 200: it must give its JSON body, not {_shown(results[0])}")
    _require_status_error(results[1], 403, "a 403 is an error status like a 500 (only a 404 means None): it must "
                                           "give the aiohttp.ClientResponseError in its place")


@pytest.mark.exercise("04.2", promise=("unreachable", "returned", "others"))
@pytest.mark.asyncio
async def test_fetch_all_gives_the_error_for_a_server_that_cannot_be_reached(grader_api, closed_port_url):
    results = await _fetch_all([closed_port_url, grader_api.url("/items/7")], limit=2)
    require(isinstance(results[0], aiohttp.ClientConnectionError),
             f"a port where nothing listens must give the aiohttp.ClientConnectionError in its place, "
             f"not {_shown(results[0])}")
    require(results[1] == {"item": 7}, f"the other URL must still give its JSON body, not {_shown(results[1])}")


def _require_timed_out_beside(results: list[Any], other: object, what: str) -> None:
    """The first URL timed out (`what` says why it must) and the second still gave `other`."""
    require(isinstance(results[0], TimeoutError), f"{what}, not {_shown(results[0])}")
    require(results[1] == other, f"the other URL must still give its JSON body, not {_shown(results[1])}")


@pytest.mark.exercise("04.2", promise=("timeout", "returned", "others"))
@pytest.mark.asyncio
async def test_fetch_all_gives_a_timeout_error_for_a_server_that_never_answers(grader_api):
    results = await _fetch_all([grader_api.url("/never"), grader_api.url("/items/3")], limit=2, timeout=0.2, stuck=(
        "fetch_all(..., timeout=0.2) had not returned after 3 s, with one URL whose server never answers: create "
        "the session with timeout=aiohttp.ClientTimeout(total=timeout), so that such a request gives up"))
    _require_timed_out_beside(results, {"item": 3}, "a request that takes longer than `timeout` seconds must give a "
                              "TimeoutError in its place (create the session with "
                              "timeout=aiohttp.ClientTimeout(total=timeout))")


@pytest.mark.exercise("04.2", promise=("timeout", "returned", "others"))
@pytest.mark.asyncio
async def test_fetch_all_gives_a_timeout_error_for_a_body_that_never_ends(grader_api):
    results = await _fetch_all([grader_api.url("/trickle"), grader_api.url("/items/4")], limit=2, timeout=0.3, stuck=(
        "fetch_all(..., timeout=0.3) had not returned after 3 s, with one URL whose server sends its body a byte "
        "every 0.05 s and never finishes it: the timeout is for the whole request, body included "
        "(aiohttp.ClientTimeout(total=timeout); sock_read only bounds the pause between two bytes)"))
    _require_timed_out_beside(results, {"item": 4}, "a request whose body takes longer than `timeout` seconds must "
                              "give a TimeoutError in its place")


#: seconds a /paced/ URL takes to answer, and the timeout it is fetched with: the third of three URLs
#: fetched one at a time waits 2 * _PACE for its turn, so wait plus answer exceed the timeout (a wait
#: counted against it times out), while the answer alone is well within it. 1.2 s -> 0.6 s a run, and
#: still 0.3 s to spare for a correct answer on a busy machine.
_PACE, _PACED_TIMEOUT = 0.2, 0.5


@pytest.mark.exercise("04.2", promise="turn")
@pytest.mark.asyncio
async def test_fetch_all_does_not_count_the_wait_for_a_turn_against_the_timeout(grader_api):
    # limit=1: each of the 3 URLs answers in _PACE s, well within the timeout, but the last one
    # waits twice that for its turn before it is sent.
    results = await _fetch_all([grader_api.url(f"/paced/{n}") for n in range(3)], limit=1, timeout=_PACED_TIMEOUT)
    late = [n for n, result in enumerate(results) if isinstance(result, TimeoutError)]
    require(not late,
             f"with limit=1 and timeout={_PACED_TIMEOUT}, each URL here answers in {_PACE} s, yet URL {late} gave a "
             "TimeoutError after "
             "waiting for its turn: the time a URL waits for its turn must not count against its timeout. Take the "
             "semaphore first, then make the request (the ClientTimeout's clock starts at session.get(); a "
             "TCPConnector limit or an asyncio.wait_for around the wait counts the wait too)")
    require(results == [{"item": n} for n in range(3)], f"fetch_all returned {_shown_all(results)}")


@pytest.mark.exercise("04.2", promise="session")
@pytest.mark.asyncio
async def test_fetch_all_uses_one_session_and_closes_it(grader_api, sessions_made):
    await _fetch_all([grader_api.url(f"/items/{n}") for n in range(5)], limit=2)
    require(len(sessions_made) == 1,
             f"fetch_all must create exactly one aiohttp.ClientSession and reuse it for every URL; it created "
             f"{len(sessions_made)}")
    require(sessions_made[0].closed,
             "the ClientSession must be closed when fetch_all returns: `async with aiohttp.ClientSession(...) as session:`")


@pytest.mark.exercise("04.2", promise="empty")
@pytest.mark.asyncio
async def test_fetch_all_of_no_urls_is_an_empty_list():
    require(await _fetch_all([], limit=3) == [], "fetch_all([], limit=3) must return []")


@pytest.mark.exercise("04.2", promise="limit")
@pytest.mark.asyncio
async def test_fetch_all_rejects_a_limit_below_one(grader_api):
    for limit in (0, -1):
        try:
            async with asyncio.timeout(3):
                await ex.fetch_all([grader_api.url("/items/1")], limit=limit)
        except ValueError:
            continue
        except TimeoutError:
            pytest.fail(f"fetch_all(..., limit={limit}) had not returned after 3 s: a limit below 1 must raise "
                        "ValueError at once (check `limit < 1` first; a Semaphore(0) waits forever)", pytrace=False)
        pytest.fail(f"fetch_all(..., limit={limit}) must raise ValueError: a limit below 1 allows no request at all",
                    pytrace=False)
    require(grader_api.requests == 0, "a limit below 1 must raise ValueError before any request is made")


# --- 04.3 tests for PriceClient, graded by mutation ---------------------------------------------------

#: Responses a mutant never released; closed after each test so none is left for the garbage collector
#: (which would warn "Unclosed connection" in some later test).
_leaked: list[aiohttp.ClientResponse] = []


@pytest_asyncio.fixture(autouse=True)
async def _close_leaked_responses() -> AsyncIterator[None]:
    # Async, so that it runs on the test's event loop and is torn down before that loop closes
    # (closing a response once its loop is closed does nothing).
    yield
    while _leaked:
        _leaked.pop().close()


class _IgnoresLimit(ref.PriceClient):
    async def price(self, sku):
        async with self.session.get(f"{self.base_url}/prices/{sku}") as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return (await response.json())["cents"]


class _OneTooMany(ref.PriceClient):
    def __init__(self, session, base_url, *, limit=4):
        super().__init__(session, base_url, limit=limit)
        self._slots = asyncio.Semaphore(limit + 1)


class _BoundOnlyInPrices(_IgnoresLimit):
    async def prices(self, skus):
        slots = asyncio.Semaphore(self.limit)  # a new bound for each call, and price() itself unbounded

        async def one(sku):
            async with slots:
                return await _IgnoresLimit.price(self, sku)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(sku)) for sku in skus]
        return [task.result() for task in tasks]


class _ReturnsBody(ref.PriceClient):
    async def price(self, sku):
        async with self._slots, self.session.get(f"{self.base_url}/prices/{sku}") as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return await response.json()


class _NoStatusCheck(ref.PriceClient):
    async def price(self, sku):
        async with self._slots, self.session.get(f"{self.base_url}/prices/{sku}") as response:
            return (await response.json())["cents"]


class _ServerErrorAsMissing(ref.PriceClient):
    async def price(self, sku):
        async with self._slots, self.session.get(f"{self.base_url}/prices/{sku}") as response:
            if response.status >= 400:
                return None
            return (await response.json())["cents"]


class _CompletionOrder(ref.PriceClient):
    async def prices(self, skus):
        results = []

        async def one(sku):
            results.append(await self.price(sku))

        async with asyncio.TaskGroup() as group:
            for sku in skus:
                group.create_task(one(sku))
        return results


class _OneAtATime(ref.PriceClient):
    async def prices(self, skus):
        return [await self.price(sku) for sku in skus]


class _BareError(ref.PriceClient):
    async def prices(self, skus):
        try:
            return await super().prices(skus)
        except ExceptionGroup as group:
            raise group.exceptions[0] from None  # the first error itself, not the group


class _WaitsForAll(ref.PriceClient):
    async def prices(self, skus):
        results = await asyncio.gather(*(self.price(sku) for sku in skus), return_exceptions=True)
        errors = [result for result in results if isinstance(result, Exception)]
        if errors:
            raise ExceptionGroup("some prices failed", errors)
        return list(results)


class _ClosesSession(ref.PriceClient):
    async def prices(self, skus):
        async with self.session:  # closes the caller's session when the block ends
            return await super().prices(skus)


class _LeaksResponses(ref.PriceClient):
    async def price(self, sku):
        async with self._slots:
            response = await self.session.get(f"{self.base_url}/prices/{sku}")
            if response.status == 404:
                _leaked.append(response)  # never released here; see _close_leaked_responses
                return None
            response.raise_for_status()
            return (await response.json())["cents"]


class _LeaksErrorResponses(ref.PriceClient):
    async def price(self, sku):
        async with self._slots:
            response = await self.session.get(f"{self.base_url}/prices/{sku}")
            if response.status == 404:
                response.release()
                return None
            if response.status >= 400:
                _leaked.append(response)  # raised without releasing it; see _close_leaked_responses
                raise aiohttp.ClientResponseError(response.request_info, response.history,
                                                  status=response.status, message=response.reason or "")
            return (await response.json())["cents"]


globals().update(
    mutation_suite(
        ex,
        "04.3",
        reference=ref.PriceClient,
        mutants={
            "ignores_limit": _IgnoresLimit,
            "one_too_many": _OneTooMany,
            "bound_only_in_prices": _BoundOnlyInPrices,
            "returns_body": _ReturnsBody,
            "no_status_check": _NoStatusCheck,
            "server_error_as_missing": _ServerErrorAsMissing,
            "completion_order": _CompletionOrder,
            "one_at_a_time": _OneAtATime,
            "bare_error": _BareError,
            "waits_for_all": _WaitsForAll,
            "closes_session": _ClosesSession,
            "leaks_responses": _LeaksResponses,
            "leaks_error_responses": _LeaksErrorResponses,
        },
    )
)
