"""Learner code in its own space: the run's own Redis keys and PostgreSQL database, nothing else.

Other people's gradings may share the Redis server. A learner's fixture that builds its keys
from a prefix of its own (`SessionStore(redis, "sessions:")`), a `KEYS *`, or a FLUSHDB would
read, overwrite or delete their keys. So, in a grading process, every redis.asyncio command is
looked at before it is sent: one that names a key outside the run's prefix (the one every
`workbook_redis_prefix` starts with), asks for keys beyond it, or acts on the whole server is
not sent. It raises `OutsideItsSpace` instead, and the test that sent it fails with the reason,
even if the learner's code catches the error: `outside()` keeps what each test tried.

Only the commands' words are read (no extra round trip): the key is the first argument, except
for the commands listed below, whose keys sit elsewhere or that name no key at all.

PostgreSQL the same way: SQL that the learner's own file sends (through a connection or a pool)
on a database other than the run's (`workbook_database_url`), or that acts on the whole server
(CREATE DATABASE, DROP ROLE, ALTER SYSTEM, ...), is refused before it reaches the server. The
grader's own connections (run databases, tables of its checks) are not looked at.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Commands that name no key: sent as they are.
_NO_KEY = frozenset("""
    PING ECHO INFO SELECT HELLO AUTH TIME DBSIZE MULTI EXEC DISCARD UNWATCH QUIT RESET READONLY
    READWRITE WAIT LASTSAVE ROLE CLIENT COMMAND PUBLISH SPUBLISH SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE
    PUNSUBSCRIBE PUBSUB OBJECT MEMORY LATENCY SLOWLOG LOLWUT
""".split())
#: Commands that act on every key of the server (or on the server itself): never sent.
_SERVER_WIDE = frozenset("""
    FLUSHDB FLUSHALL SWAPDB SHUTDOWN DEBUG CONFIG SAVE BGSAVE BGREWRITEAOF REPLICAOF SLAVEOF
    MONITOR MIGRATE MOVE RANDOMKEY ACL MODULE FAILOVER CLUSTER
""".split())
#: Commands whose every argument is a key.
_ALL_KEYS = frozenset("DEL UNLINK EXISTS TOUCH MGET WATCH SINTER SUNION SDIFF PFCOUNT".split())
#: Commands whose first two arguments are keys.
_TWO_KEYS = frozenset("RENAME RENAMENX COPY SMOVE LMOVE BLMOVE RPOPLPUSH BRPOPLPUSH".split())
#: Commands whose keys are every argument but the last (a timeout).
_ALL_BUT_LAST = frozenset("BLPOP BRPOP BZPOPMIN BZPOPMAX".split())
#: Commands whose arguments alternate key, value.
_PAIRS = frozenset("MSET MSETNX".split())
#: Commands whose keys follow a count: EVAL script numkeys key...
_COUNTED = frozenset("EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO".split())


class OutsideItsSpace(RuntimeError):
    """A command that would reach keys outside the grading run's own; it was not sent."""


class _State:
    def __init__(self) -> None:
        self.prefix = ""  # the run's prefix, once `_workbook_run_prefix` made it
        self.databases: set[str] = set()  # the run's own PostgreSQL databases, by name
        self.learner_folder: Path | None = None  # exercises/ or solutions/: whose SQL is looked at
        self.tried: list[str] = []  # what the current test tried, in words
        self.installed = False
        self.installed_postgres = False


_STATE = _State()


def set_run_prefix(prefix: str) -> None:
    _STATE.prefix = prefix


def set_run_database(url: str) -> None:
    """The run's database: the learner's SQL may go there and nowhere else."""
    _STATE.databases.add(unquote(urlsplit(url).path.lstrip("/")))


def outside() -> list[str]:
    """What the test running now tried outside its space (and so was refused); empties the list."""
    tried, _STATE.tried = _STATE.tried, []
    return tried


def refusal(args: tuple[Any, ...], prefix: str) -> str:
    """Why the command `args` must not be sent, or "" if it stays under `prefix`."""
    if not args:
        return ""
    name = _text(args[0]).upper()
    words = " ".join(_text(a) for a in args[:2])
    if name in _SERVER_WIDE or (name in ("SCRIPT", "FUNCTION") and len(args) > 1 and _text(args[1]).upper() == "FLUSH"):
        return (f"Your code sent `{_shown(words)}` to Redis: it acts on the whole server, other people's keys too, "
                "so the workbook does not send it. Touch only keys under `workbook_redis_prefix`; the workbook "
                "deletes them after the run.")
    if name in ("KEYS", "SCAN"):
        pattern = _match_pattern(args) if name == "SCAN" else (_text(args[1]) if len(args) > 1 else "*")
        if not (prefix and pattern.startswith(prefix) and not any(c in prefix for c in "*?[")):
            return (f"Your code asked Redis for `{name} {_shown(pattern)}`: that reaches beyond the prefix this test "
                    "gave it, to other people's keys. Ask for the keys under `workbook_redis_prefix` only: "
                    "`await redis.keys(workbook_redis_prefix + \"*\")`.")
        return ""
    if name in _NO_KEY or name in ("SCRIPT", "FUNCTION"):
        return ""
    for key in _keys(name, args):
        if not (prefix and key.startswith(prefix)):
            return (f"Your code sent `{name} {_shown(key)}` to Redis: that key is outside the prefix this test gave it "
                    "(`workbook_redis_prefix`), so on a shared server it may be someone else's. Build every key from "
                    "that prefix (the workbook deletes everything under it after the run).")
    return ""


def _keys(name: str, args: tuple[Any, ...]) -> list[str]:
    rest = [_text(a) for a in args[1:]]
    if name in _ALL_KEYS:
        return rest
    if name in _TWO_KEYS:
        return rest[:2]
    if name in _ALL_BUT_LAST:
        return rest[:-1]
    if name in _PAIRS:
        return rest[::2]
    if name in _COUNTED:
        try:
            count = int(rest[1])
        except (IndexError, ValueError):
            return []
        return rest[2:2 + count]
    return rest[:1]


def _match_pattern(args: tuple[Any, ...]) -> str:
    words = [_text(a) for a in args]
    for i, word in enumerate(words[:-1]):
        if word.upper() == "MATCH":
            return words[i + 1]
    return "*"


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | bytearray | memoryview) else str(value)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(args: tuple[Any, ...]) -> None:
    why = refusal(args, _STATE.prefix)
    if why:
        _STATE.tried.append(why)
        raise OutsideItsSpace(why)


_SERVER_WIDE_SQL = re.compile(
    r"^\s*(?:(?:CREATE|DROP|ALTER)\s+(?:DATABASE|ROLE|USER|GROUP|TABLESPACE)\b|ALTER\s+SYSTEM\b)", re.I | re.M)


def sql_refusal(query: str, database: str, allowed: set[str]) -> str:
    """Why the learner's `query` on `database` must not be sent, or ""."""
    if allowed and database not in allowed:
        return (f"Your code ran SQL on the database {database!r}, not on the one this grading run made for it "
                "(`workbook_database_url`): other people's tables live there. Connect with the URL that fixture "
                "(or the exercise's own, built on it) gives you.")
    found = _SERVER_WIDE_SQL.search(query or "")
    if found:
        return (f"Your code sent `{' '.join(found.group(0).split())} ...` to PostgreSQL: that acts on the whole server, "
                "which other people's gradings share, so the workbook does not send it. Work inside the run's "
                "database: tables, schemas and rows of your own.")
    return ""


def _learner_called(folder: Path | None) -> bool:
    """Whether the nearest caller outside asyncpg (and this module) is the learner's file."""
    if folder is None:
        return False
    library = str(Path(sys.modules["asyncpg"].__file__ or "").parent) + "/"
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(library) and name != __file__:
            return Path(name).is_relative_to(folder)
        frame = frame.f_back
    return False


def install_postgres(learner_folder: Path) -> None:
    """Look at the SQL the learner's file sends through asyncpg (once asyncpg is imported; idempotent)."""
    _STATE.learner_folder = learner_folder.resolve()
    if _STATE.installed_postgres or "asyncpg" not in sys.modules:
        return
    from asyncpg.connection import Connection

    _STATE.installed_postgres = True
    for method in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany", "cursor", "prepare",
                   "copy_from_query"):
        setattr(Connection, method, _looked_at(getattr(Connection, method)))


def _looked_at(original: Any) -> Any:
    """`original` (an asyncpg.Connection method) refusing the learner's SQL outside the run's database.

    A coroutine method stays a coroutine function: `create_autospec(asyncpg.Connection)` (chapter 07)
    must still see `fetch` as async and make it an AsyncMock, in grading as everywhere else.
    """
    def refuse(self: Any, query: str) -> None:
        if _learner_called(_STATE.learner_folder):
            why = sql_refusal(query, getattr(getattr(self, "_params", None), "database", ""), _STATE.databases)
            if why:
                _STATE.tried.append(why)
                raise OutsideItsSpace(why)

    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def awaited(self: Any, query: str = "", *args: Any, **kwargs: Any) -> Any:
            refuse(self, query)
            return await original(self, query, *args, **kwargs)

        return awaited

    @functools.wraps(original)
    def sending(self: Any, query: str = "", *args: Any, **kwargs: Any) -> Any:
        refuse(self, query)
        return original(self, query, *args, **kwargs)

    return sending


def install() -> None:
    """Look at every redis.asyncio command this process sends (once redis is imported; idempotent)."""
    if _STATE.installed or "redis" not in sys.modules:
        return
    try:
        from redis.asyncio.client import Pipeline, Redis
    except ImportError:  # pragma: no cover - redis is in requirements.txt
        return
    _STATE.installed = True
    send = Redis.execute_command
    queue = Pipeline.execute_command

    @functools.wraps(send)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        _refuse(args)
        return await send(self, *args, **options)

    @functools.wraps(queue)
    def pipeline_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        _refuse(args)
        return queue(self, *args, **kwargs)

    Redis.execute_command = execute_command  # type: ignore[method-assign]
    Pipeline.execute_command = pipeline_command  # type: ignore[method-assign]
