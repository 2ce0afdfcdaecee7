"""Talking to a chosen server with the real client libraries (asyncpg, redis-py), from sync code.

A failure to connect becomes :class:`ServiceUnavailable` with the message that names what to
fix, which depends on where the server came from (:func:`_failure_message`).
"""

from __future__ import annotations

from workbook.services._messages import (
    _ENV_VARS,
    _LABELS,
    COMPOSE_FAILED_MESSAGE,
    EMBEDDED_FAILED_MESSAGE,
    ENV_URL_FAILED_MESSAGE,
)
from workbook.services._types import Service, ServiceUnavailable
from workbook.services._urls import _describe

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see __init__.py)
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import TypeVar

    import asyncpg
    import redis

    _T = TypeVar("_T")


_CONNECT_TIMEOUT = 5.0


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``await factory()`` to completion from sync code, even inside a running event loop."""
    import asyncio

    async def _main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_main())
    # Called from async code (a fixture, a notebook): a loop already runs in this thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _main()).result()


def _failure_message(service: Service, error: BaseException) -> str:
    values = {"label": _LABELS[service.name], "url": service.masked_url, "error": _describe(error),
              "env_var": _ENV_VARS[service.name]}
    if service.source == "env":
        return ENV_URL_FAILED_MESSAGE.format(**values)
    if service.source == "compose":
        return COMPOSE_FAILED_MESSAGE.format(**values)
    return EMBEDDED_FAILED_MESSAGE.format(**values)


def _require(service: Service, name: str) -> None:
    if service.name != name:
        raise ValueError(f"expected the {_LABELS[name]} service, got {service!r}")


async def _postgres_connect(service: Service) -> asyncpg.Connection:
    import asyncpg

    try:
        return await asyncpg.connect(service.url, timeout=_CONNECT_TIMEOUT)
    except Exception as error:  # refused, timeout, bad password, no such database...
        raise ServiceUnavailable(_failure_message(service, error)) from None


def _on_postgres(service: Service, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
    """``await work(connection)`` on a new connection to ``service``, closed afterwards."""

    async def _main() -> _T:
        connection = await _postgres_connect(service)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return _run_sync(_main)


def _redis_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT, socket_timeout=30)
