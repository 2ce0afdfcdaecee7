"""Which server to use for each service, and why (SPEC section 5); the choice is cached per process.

Order: ``WORKBOOK_SERVICES=embedded`` forces the embedded server; else ``DATABASE_URL`` /
``REDIS_URL`` as given; else the docker compose server on 127.0.0.1 if it answers and accepts
the workbook's login; else the embedded server, started on demand.
"""

from __future__ import annotations

import os

from workbook.services._clients import _run_sync
from workbook.services._embedded_postgres import _embedded_postgres_url
from workbook.services._embedded_redis import _embedded_redis_url
from workbook.services._messages import _ENV_VARS, _EXAMPLES, _LABELS, BAD_MODE_MESSAGE, NOTHING_WORKS_MESSAGE
from workbook.services._proc import _PROBE_CONNECT_TIMEOUT, _cache_dir_path
from workbook.services._resp import _redis_auth_commands, _redis_exchange, _RedisReplyError
from workbook.services._types import Service, ServiceUnavailable, _EmbeddedFailure
from workbook.services._urls import _describe, _host_port, _url_user

#: Where ``docker compose up -d`` (docker-compose.yml) publishes its servers. A test checks
#: that these agree with the compose file.
COMPOSE_DATABASE_URL = "postgresql://postgres:workbook@127.0.0.1:5432/postgres"
COMPOSE_REDIS_URL = "redis://127.0.0.1:6379/0"
_DEFAULT_PORTS = {"postgres": 5432, "redis": 6379}
_MODE_VARIABLE = "WORKBOOK_SERVICES"
_PROBE_LOGIN_TIMEOUT = 2.0
#: Resolved services of this process, keyed by everything the choice depends on.
_RESOLVED: dict[tuple[str, ...], Service] = {}


def resolve(name: str) -> Service:
    """The server to use for ``name`` ("postgres" or "redis"); cached per process.

    Raises ServiceUnavailable (its message lists what was tried and the fixes).
    """
    if name not in _LABELS:
        raise ValueError(f"unknown service {name!r}; valid names: 'postgres', 'redis'")
    key = _cache_key(name)
    cached = _RESOLVED.get(key)
    if cached is not None:
        return cached
    service = _resolve_uncached(name)
    _RESOLVED[key] = service
    return service


def _cache_key(name: str) -> tuple[str, ...]:
    return (name, os.environ.get(_MODE_VARIABLE, ""), os.environ.get(_ENV_VARS[name], ""),
            _compose_url(name), str(_cache_dir_path()))


def _compose_url(name: str) -> str:
    # Read the module globals at call time, so a test can point them at a closed port.
    return COMPOSE_DATABASE_URL if name == "postgres" else COMPOSE_REDIS_URL


def _services_mode() -> str:
    value = os.environ.get(_MODE_VARIABLE, "").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value == "embedded":
        return "embedded"
    raise ServiceUnavailable(BAD_MODE_MESSAGE.format(value=os.environ.get(_MODE_VARIABLE, "")))


def _resolve_uncached(name: str) -> Service:
    label, env_var = _LABELS[name], _ENV_VARS[name]
    attempts: list[str] = []
    if _services_mode() == "embedded":
        why = f"{_MODE_VARIABLE}=embedded forces the embedded server"
        attempts.append(f"{_MODE_VARIABLE}=embedded: {env_var} and the docker compose server were skipped")
    else:
        from_env = os.environ.get(env_var, "").strip()
        if from_env:
            return Service(name=name, url=from_env, source="env", reason=f"{env_var} is set")
        attempts.append(f"{env_var}: not set")
        compose_url = _compose_url(name)
        problem = _probe_compose(name, compose_url)
        if problem is None:
            host, port = _host_port(compose_url, _DEFAULT_PORTS[name])
            accepts = "accepts the docker compose login" if name == "postgres" else "answers PING"
            return Service(name=name, url=compose_url, source="compose",
                           reason=f"{env_var} is not set and the docker compose address {host}:{port} {accepts}")
        attempts.append(f"docker compose default: {problem}")
        why = f"{problem}, so the embedded server is used"
        if problem.startswith("a server answers"):
            why += f"; set {env_var} to use that server"
    try:
        url = _embedded_postgres_url() if name == "postgres" else _embedded_redis_url()
    except _EmbeddedFailure as failure:
        attempts.append(f"embedded server: {failure}")
        raise ServiceUnavailable(NOTHING_WORKS_MESSAGE.format(
            label=label, env_var=env_var, example=_EXAMPLES[name],
            attempts="\n".join(f"  - {attempt}" for attempt in attempts))) from None
    return Service(name=name, url=url, source="embedded", reason=why)


def _probe_compose(name: str, url: str) -> str | None:
    """None if the compose server at ``url`` answers and accepts us, else why not (one clause)."""
    import socket

    host, port = _host_port(url, _DEFAULT_PORTS[name])
    try:
        connection = socket.create_connection((host, port), timeout=_PROBE_CONNECT_TIMEOUT)
    except OSError:
        return f"nothing answered on {host}:{port}"
    if name == "postgres":
        connection.close()
        user = _url_user(url, "postgres")
        try:
            _run_sync(lambda: _postgres_login(url, _PROBE_LOGIN_TIMEOUT))
        except Exception as error:  # any failure to log in means: not usable as configured
            return f"a server answers on {host}:{port} but login as {user} failed ({_describe(error)})"
        return None
    try:
        with connection:
            connection.settimeout(1.0)
            _redis_exchange(connection, [*_redis_auth_commands(url), ("PING",)])
    except (OSError, _RedisReplyError, ValueError) as error:
        return f"a server answers on {host}:{port} but PING failed ({_describe(error)})"
    return None


async def _postgres_login(url: str, timeout: float) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=timeout)
    await connection.close()
