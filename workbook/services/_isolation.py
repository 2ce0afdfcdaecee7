"""Isolation of grading runs on a shared server: run databases, spares, Redis key prefixes, cleaning.

Each grading run works in a database ``wbrun_<time>_<pid>_<hex>`` of its own (created for it,
or a fresh, never-used ``wbspare_*`` that the previous run made and this one renames) and a
Redis key prefix ``wb:<time>_<pid>_<hex>:``, and removes only those; :func:`clean_stale`
removes what killed runs left behind and nothing else.
"""

from __future__ import annotations

import os
import time

from workbook.services._clients import _CONNECT_TIMEOUT, _failure_message, _on_postgres, _redis_client, _require, _run_sync
from workbook.services._messages import (
    _ENV_VARS,
    _LABELS,
    CREATE_DATABASE_FAILED_MESSAGE,
    NOT_A_RUN_DATABASE_MESSAGE,
    NOT_A_RUN_PREFIX_MESSAGE,
)
from workbook.services._proc import _pid_alive
from workbook.services._resolve import resolve
from workbook.services._types import RunDatabase, Service, ServiceUnavailable
from workbook.services._urls import _describe, _is_loopback_url, _kind_of, _redis_url_with_db, _with_database, mask

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see __init__.py)
if TYPE_CHECKING:
    from collections.abc import Callable

    import asyncpg
    import redis


_RUN_DATABASE_PATTERN = r"wbrun_(\d+)_(\d+)_([0-9a-f]{6})"
_SPARE_DATABASE_PATTERN = r"wbspare_(\d+)_(\d+)_([0-9a-f]{6})"
_RUN_PREFIX_PATTERN = r"wb:(\d+)_(\d+)_([0-9a-f]{6}):"
_STALE_AFTER_SECONDS = 6 * 3600
_UNLABELLED_AFTER_SECONDS = 10
_RUN_COMMENT = "async-testing-workbook run; host={host}; pid={pid}"
_SPARE_COMMENT = "async-testing-workbook spare, for the next run; host={host}; pid={pid}"
#: Spares this login may rename (only a database's owner may): on a server shared by a workshop
#: where each learner has a login of their own, everyone keeps and claims their own spares.
_OWN_SPARES = "datname LIKE 'wbspare\\_%' AND pg_catalog.pg_get_userbyid(datdba) = current_user"
_UNLINK_BATCH = 500


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _new_run_token() -> str:
    return f"{int(time.time())}_{os.getpid()}_{os.urandom(3).hex()}"


# --- run databases and spares -----------------------------------------------------------------------

def new_run_database(service: Service) -> RunDatabase:
    """A name and URL for a run database of this process; :func:`create_run_database` creates it."""
    _require(service, "postgres")
    name = f"wbrun_{_new_run_token()}"
    return RunDatabase(name=name, url=_with_database(service.url, name))


def create_run_database(service: Service, db: RunDatabase | None = None, *, clean: bool = True) -> RunDatabase:
    """Create a database for this run alone (after cheaply removing dead runs' leftovers, if `clean`)."""
    _require(service, "postgres")
    db = db or new_run_database(service)

    async def _create(connection: asyncpg.Connection) -> None:
        import asyncpg

        if clean:
            try:
                await _clean_stale_postgres(connection, [])
            except (asyncpg.PostgresError, OSError):
                pass  # cleaning is a courtesy; creating the run's database is what matters
        try:
            await _create_database(connection, db.name, os.getpid())
        except asyncpg.PostgresError as error:
            raise ServiceUnavailable(CREATE_DATABASE_FAILED_MESSAGE.format(
                name=db.name, url=service.masked_url, error=_describe(error),
                env_var=_ENV_VARS["postgres"])) from None

    _on_postgres(service, _create)
    return db


def claim_spare_database(service: Service, db: RunDatabase) -> bool:
    """Take a spare database as this run's: rename it to ``db.name``; False if there is none.

    A spare is a database an earlier run created for a later one and that nobody has used
    (:func:`make_spare_database`). Creating a database costs the server 0.05-0.3 s (it copies
    and syncs its template); renaming one costs a few milliseconds. ALTER DATABASE ... RENAME
    is atomic, so two runs never claim the same spare.
    """
    import re

    _require(service, "postgres")

    async def _claim(connection: asyncpg.Connection) -> bool:
        import asyncpg

        rows = await connection.fetch(f"SELECT datname FROM pg_catalog.pg_database WHERE {_OWN_SPARES} ORDER BY datname")
        for row in rows:
            if not re.fullmatch(_SPARE_DATABASE_PATTERN, row["datname"]):
                continue
            try:
                await connection.execute(f'ALTER DATABASE "{row["datname"]}" RENAME TO "{db.name}"')
            except asyncpg.PostgresError:  # claimed by another run a moment ago, or in use: next one
                continue
            await _label(connection, db.name, _RUN_COMMENT)
            return True
        return False

    return _on_postgres(service, _claim)


def make_spare_database(service: Service) -> bool:
    """Create a spare database for a later run, unless one is already waiting; True if one was made."""
    _require(service, "postgres")

    async def _make(connection: asyncpg.Connection) -> bool:
        if await connection.fetchval(f"SELECT count(*) FROM pg_catalog.pg_database WHERE {_OWN_SPARES}"):
            return False
        name = f"wbspare_{_new_run_token()}"
        await connection.execute(f'CREATE DATABASE "{name}"')
        await _label(connection, name, _SPARE_COMMENT)
        return True

    return _on_postgres(service, _make)


def drop_run_database(service: Service, db: RunDatabase) -> None:
    """Drop exactly ``db`` (WITH (FORCE): the run is over, its own sessions may linger)."""
    import re

    _require(service, "postgres")
    if not re.fullmatch(_RUN_DATABASE_PATTERN, db.name):
        raise ValueError(NOT_A_RUN_DATABASE_MESSAGE.format(name=db.name))

    async def _drop(connection: asyncpg.Connection) -> None:
        import asyncpg

        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        except asyncpg.PostgresSyntaxError:  # PostgreSQL < 13 has no WITH (FORCE)
            await connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = $1 AND pid <> pg_backend_pid()", db.name)
            await connection.execute(f'DROP DATABASE IF EXISTS "{db.name}"')

    _on_postgres(service, _drop)


async def _create_database(connection: asyncpg.Connection, name: str, pid: int, host: str | None = None) -> None:
    """CREATE DATABASE ``name`` and record which machine and process it belongs to."""
    await connection.execute(f'CREATE DATABASE "{name}"')
    await _label(connection, name, _RUN_COMMENT, pid, host)


async def _label(connection: asyncpg.Connection, name: str, template: str, pid: int | None = None,
                 host: str | None = None) -> None:
    """Record in the database's comment which machine and process it belongs to."""
    comment = template.format(host=host if host is not None else _hostname(), pid=os.getpid() if pid is None else pid)
    await connection.execute(f"""COMMENT ON DATABASE "{name}" IS '{comment.replace("'", "''")}'""")


# --- cleaning what ended runs left ------------------------------------------------------------------

def clean_stale(service_url: str | None = None) -> list[str]:
    """Remove what killed runs left behind; returns one human line per action.

    Drops ``wbrun_*`` databases whose run ended on this machine, that are older than 6 hours, or
    whose run was killed while creating them, with plain DROP DATABASE (a database someone is
    connected to is kept), and every ``wbspare_*`` (an unused database made for a later run; the
    next run makes a new one). Deletes Redis keys
    under ``wb:<time>_<pid>_<hex>:`` prefixes of ended runs in every Redis database that has keys.
    ``service_url`` limits the work to that one server; by default both resolved services are
    cleaned. Nothing outside these name patterns is touched. Never raises ServiceUnavailable: a
    server that cannot be reached is reported in the lines.
    """
    lines: list[str] = []
    targets: list[tuple[str, str]] = []
    if service_url is None:
        for name in ("postgres", "redis"):
            try:
                targets.append((name, resolve(name).url))
            except ServiceUnavailable as error:
                lines.append(f"{_LABELS[name]}: skipped ({str(error).splitlines()[0]})")
    else:
        targets.append((_kind_of(service_url), service_url))
    for kind, url in targets:
        try:
            if kind == "postgres":
                _run_sync(lambda: _clean_stale_postgres_at(url, lines))
            else:
                _clean_stale_redis(url, lines)
        except Exception as error:  # report and go on with the other server
            lines.append(f"{_LABELS[kind]}: could not clean {mask(url)} ({_describe(error)})")
    return lines


def clean_stale_run_databases(service: Service) -> list[str]:
    """Drop what killed runs left behind on ``service`` (see :func:`clean_stale`); one line per action."""
    _require(service, "postgres")
    lines: list[str] = []
    _on_postgres(service, lambda connection: _clean_stale_postgres(connection, lines))
    return lines


async def _clean_stale_postgres_at(url: str, lines: list[str]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT)
    try:
        await _clean_stale_postgres(connection, lines, all_spares=True)
    finally:
        await connection.close()


async def _clean_stale_postgres(connection: asyncpg.Connection, lines: list[str], *, all_spares: bool = False) -> None:
    import re

    import asyncpg

    await _clean_spares(connection, lines, everyone=all_spares)

    rows = await connection.fetch(
        "SELECT datname, pg_catalog.shobj_description(oid, 'pg_database') AS comment "
        "FROM pg_catalog.pg_database WHERE datname LIKE 'wbrun\\_%' ORDER BY datname")
    now = time.time()
    dropped = 0
    for row in rows:
        match = re.fullmatch(_RUN_DATABASE_PATTERN, row["datname"])
        if match is None:
            continue
        comment_host = None
        if row["comment"]:
            host_match = re.search(r"host=([^;]*);", row["comment"])
            comment_host = host_match.group(1).strip() if host_match else None
        why = _stale_reason(int(match.group(1)), int(match.group(2)), now,
                            pid_is_local=comment_host == _hostname())
        if why is None and not row["comment"] and now - int(match.group(1)) > _UNLABELLED_AFTER_SECONDS:
            # The label follows CREATE DATABASE on the same connection within milliseconds; a run
            # database without one was being created when its run was killed, and nobody ever used it.
            why = "its run was stopped while creating it"
        if why is None:
            continue
        # Checked first because a plain DROP of a database in use waits 5 s before it gives up.
        if await connection.fetchval("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1",
                                     row["datname"]):
            lines.append(f"PostgreSQL: kept {row['datname']} ({why}, but a session is still connected to it)")
            continue
        try:
            # Plain DROP (never FORCE): it fails while any session is connected, so a live run's
            # database survives even if our guess about its process is wrong.
            await connection.execute(f'DROP DATABASE "{row["datname"]}"')
        except asyncpg.ObjectInUseError:
            lines.append(f"PostgreSQL: kept {row['datname']} ({why}, but a session is still connected to it)")
        except asyncpg.PostgresError as error:
            lines.append(f"PostgreSQL: kept {row['datname']} ({why}, but dropping it failed: {_describe(error)})")
        else:
            dropped += 1
            lines.append(f"PostgreSQL: dropped {row['datname']} ({why})")
    if not dropped:
        lines.append("PostgreSQL: no stale run databases to drop")


async def _clean_spares(connection: asyncpg.Connection, lines: list[str], *, everyone: bool) -> None:
    """Drop spare databases older than 6 hours (every spare, if `everyone`): they hold no data."""
    import re

    import asyncpg

    rows = await connection.fetch("SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'wbspare\\_%'")
    now = time.time()
    for row in rows:
        match = re.fullmatch(_SPARE_DATABASE_PATTERN, row["datname"])
        if match is None or not (everyone or now - int(match.group(1)) > _STALE_AFTER_SECONDS):
            continue
        if await connection.fetchval("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1",
                                     row["datname"]):
            continue  # being claimed right now (a plain DROP would wait 5 s, then fail)
        try:
            await connection.execute(f'DROP DATABASE "{row["datname"]}"')  # plain DROP: kept if in use
        except asyncpg.PostgresError as error:
            lines.append(f"PostgreSQL: kept the spare {row['datname']} ({_describe(error)})")
        else:
            lines.append(f"PostgreSQL: dropped the spare {row['datname']} (an unused database made for a later run)")


def _stale_reason(created: int, pid: int, now: float, *, pid_is_local: bool, by_age: bool = True) -> str | None:
    """Why a run's leftovers may go, or None to keep them.

    ``pid_is_local``: the run was made on this machine, so its process id can be checked.
    ``by_age``: leftovers older than 6 hours go whatever their process id says.
    """
    age = now - created
    if by_age and age > _STALE_AFTER_SECONDS:
        return f"created {age / 3600:.0f} hours ago"
    if pid_is_local and not _pid_alive(pid):
        return f"its run, process {pid} on this machine, has ended"
    return None


# --- Redis key prefixes -----------------------------------------------------------------------------

def new_redis_prefix() -> str:
    """A key prefix for this run alone: 'wb:<unix time>_<pid>_<6 hex>:'."""
    return f"wb:{_new_run_token()}:"


def delete_redis_prefix(service: Service, prefix: str) -> int:
    """UNLINK every key under ``prefix`` in the database of the service URL; returns how many.

    Uses SCAN, never FLUSHDB/FLUSHALL, and refuses prefixes that new_redis_prefix() did not make.
    """
    import re

    _require(service, "redis")
    if not re.fullmatch(_RUN_PREFIX_PATTERN, prefix):
        raise ValueError(NOT_A_RUN_PREFIX_MESSAGE.format(prefix=prefix))
    try:
        client = _redis_client(service.url)
        try:
            return _unlink_matching(client, prefix + "*", lambda key: key.startswith(prefix.encode()))
        finally:
            client.close()
    except Exception as error:
        raise ServiceUnavailable(_failure_message(service, error)) from None


def _unlink_matching(client: redis.Redis, pattern: str, chosen: Callable[[bytes], bool]) -> int:
    """UNLINK the keys matching ``pattern`` for which ``chosen(key)`` is true, in batches."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        if isinstance(key, str):  # a URL with ?decode_responses=True gives str keys
            key = key.encode()
        if chosen(key):
            batch.append(key)
        if len(batch) >= _UNLINK_BATCH:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def _clean_stale_redis(url: str, lines: list[str]) -> None:
    import re

    pattern = re.compile(_RUN_PREFIX_PATTERN.encode())
    # Process ids only mean something on the server's own machine: a classmate's run on another
    # machine has a pid we cannot see. So on a local server a prefix goes when its process has
    # ended (a live process keeps its keys however old); on a remote one, only after 6 hours.
    # (Unlike DROP DATABASE, UNLINK has no "someone is using it" guard, hence the stricter rule.)
    pid_is_local = _is_loopback_url(url)
    now = time.time()
    client = _redis_client(url)
    try:
        databases = sorted(int(key[2:]) for key in client.info("keyspace") if str(key).startswith("db"))
    finally:
        client.close()
    total = 0
    for number in databases:
        client = _redis_client(_redis_url_with_db(url, number))
        try:
            verdicts: dict[bytes, str | None] = {}
            counts: dict[bytes, int] = {}

            def _is_stale(key: bytes) -> bool:
                match = pattern.match(key)
                if match is None:
                    return False
                prefix = match.group(0)
                if prefix not in verdicts:
                    verdicts[prefix] = _stale_reason(int(match.group(1)), int(match.group(2)), now,
                                                     pid_is_local=pid_is_local, by_age=not pid_is_local)
                if verdicts[prefix] is None:
                    return False
                counts[prefix] = counts.get(prefix, 0) + 1
                return True

            total += _unlink_matching(client, "wb:*", _is_stale)
        finally:
            client.close()
        for prefix, count in sorted(counts.items()):
            lines.append(f"Redis db {number}: deleted {count} keys under {prefix.decode()} ({verdicts[prefix]})")
    if not total:
        lines.append("Redis: no stale run keys to delete")
