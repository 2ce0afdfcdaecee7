"""What ``services stop``, ``services status`` and ``doctor`` say: the embedded servers and the chosen ones."""

from __future__ import annotations

from workbook.services._clients import _CONNECT_TIMEOUT, _failure_message, _redis_client, _run_sync
from workbook.services._embedded_postgres import (
    _postgres_answers,
    _postmaster_url,
    _read_postmaster,
    _stop_embedded_postgres,
)
from workbook.services._embedded_redis import (
    GONE,
    READY,
    _read_redis_state,
    _redis_condition,
    _redis_unsupported,
    _stop_embedded_redis,
)
from workbook.services._messages import _ENV_VARS, _LABELS, _MODULES, _PACKAGES
from workbook.services._proc import _cache_dir_path, _file_lock, _pid_alive
from workbook.services._resolve import _RESOLVED, resolve
from workbook.services._types import Service, ServiceUnavailable, _EmbeddedFailure
from workbook.services._urls import mask

# --- embedded servers: stop and status --------------------------------------------------------------

def stop_embedded() -> list[str]:
    """Stop the embedded servers this workbook started (if running); one line per server."""
    root = _cache_dir_path()
    if not root.is_dir():
        return [f"embedded PostgreSQL: nothing to stop (no cache folder {root})",
                f"embedded Redis: nothing to stop (no cache folder {root})"]
    lines: list[str] = []
    try:
        with _file_lock(root / "postgres.lock", "PostgreSQL"):
            lines.append(_stop_embedded_postgres(root / "postgres"))
    except _EmbeddedFailure as failure:
        lines.append(f"embedded PostgreSQL: not stopped: {failure}")
    try:
        with _file_lock(root / "redis.lock", "Redis"):
            lines.append(_stop_embedded_redis(root / "redis"))
    except _EmbeddedFailure as failure:
        lines.append(f"embedded Redis: not stopped: {failure}")
    for key in [key for key, service in _RESOLVED.items() if service.source == "embedded"]:
        del _RESOLVED[key]
    return lines


def embedded_status() -> list[str]:
    """One line per embedded server: running (pid, where) or not, and whether its package is installed."""
    import importlib.util

    root = _cache_dir_path()
    lines: list[str] = []
    pgdata = root / "postgres"
    postmaster = _read_postmaster(pgdata)
    if importlib.util.find_spec(_MODULES["postgres"]) is None:
        lines.append("embedded PostgreSQL: not installed (`pip install -r requirements.txt` installs it)")
    elif postmaster is not None and _pid_alive(postmaster.pid) and _postgres_answers(postmaster):
        lines.append(f"embedded PostgreSQL: running (pid {postmaster.pid}, {mask(_postmaster_url(postmaster))}, "
                     f"data in {pgdata})")
    elif (pgdata / "PG_VERSION").exists():
        lines.append(f"embedded PostgreSQL: stopped (data in {pgdata}; the next run starts it)")
    else:
        lines.append(f"embedded PostgreSQL: not set up yet (the first run that needs it creates {pgdata})")
    state = _read_redis_state(root / "redis")
    if importlib.util.find_spec(_MODULES["redis"]) is None:
        lines.append("embedded Redis: not installed (`pip install -r requirements.txt` installs it)")
    elif state is not None and (condition := _redis_condition(state)) != GONE:
        where = f"pid {state['pid']}, redis://127.0.0.1:{state['port']}/0, files in {root / 'redis'}"
        if condition == READY:
            lines.append(f"embedded Redis: running ({where})")
        else:
            lines.append(f"embedded Redis: running but refuses the workbook, a password set on it? ({where}); "
                         "the next run replaces it")
    else:
        lines.append(f"embedded Redis: not running (the next run that needs it starts it in {root / 'redis'})")
    return lines


# --- versions and doctor ----------------------------------------------------------------------------

def server_version(service: Service) -> str:
    """'PostgreSQL 15.19', 'Redis 7.0.15' or 'Valkey 9.1.2'; raises ServiceUnavailable if the server cannot be used."""
    try:
        if service.name == "postgres":
            raw = _run_sync(lambda: _postgres_version(service.url))
            return f"PostgreSQL {raw.split()[0]}"
        client = _redis_client(service.url)
        try:
            info = client.info("server")
        finally:
            client.close()
        if "valkey_version" in info:  # Valkey also reports the Redis version it is compatible with
            return f"Valkey {info['valkey_version']}"
        return f"Redis {info['redis_version']}"
    except ServiceUnavailable:
        raise
    except Exception as error:  # every failure here means: this server cannot be used as configured
        raise ServiceUnavailable(_failure_message(service, error)) from None


async def _postgres_version(url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def doctor_lines() -> list[tuple[str, str]]:
    """(status, line) pairs, status in {"ok", "warn", "fail"}: for each service which server is
    used and why, its version, its masked URL, and the fix for whatever is missing."""
    import importlib.util

    lines: list[tuple[str, str]] = []
    for name in ("postgres", "redis"):
        label, env_var = _LABELS[name], _ENV_VARS[name]
        try:
            service = resolve(name)
        except ServiceUnavailable as error:
            lines.append(("fail", str(error)))
            continue
        origin = {"env": f"the server in {env_var}", "compose": "the docker compose server",
                  "embedded": "the embedded server"}.get(service.source, service.source)
        lines.append(("ok", f"{label}: using {origin} ({service.reason})"))
        lines.append(("ok", f"{label} URL: {service.masked_url}"))
        try:
            lines.append(("ok", f"{label} version: {server_version(service)}"))
        except ServiceUnavailable as error:
            lines.append(("fail", str(error)))
        if service.source == "embedded":
            lines.append(("ok", f"{label}: the embedded server keeps running between runs (files in "
                                f"{_cache_dir_path()}); `python3 -m workbook services stop` stops it"))
        elif name == "redis" and (unsupported := _redis_unsupported()):
            lines.append(("warn", f"{label}: no embedded fallback: {unsupported}"))
        elif importlib.util.find_spec(_MODULES[name]) is None:
            lines.append(("warn", f"{label}: no embedded fallback: the {_PACKAGES[name]} package is not "
                                  "installed; if this server goes away, `pip install -r requirements.txt` "
                                  "lets the workbook start its own"))
    return lines
