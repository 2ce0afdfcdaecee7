"""A chapter's grading process: ``python3 -m workbook.grading.child <pytest args>``.

It is two processes. The first (the *keeper*) sets the memory limit, then forks; the second
runs pytest. The keeper only waits, and then makes sure nothing the learner's code started
outlives the grade:

- it ignores SIGTERM, SIGINT and SIGHUP, so a learner's ``os.kill(os.getppid(), ...)`` hits
  the keeper and not the grader (the grader stops the whole process group with SIGKILL);
- on Linux it is a *child subreaper*: processes that the learner's code started and left
  behind (a ``subprocess.Popen``, a ``fork()``, even one that called ``setsid()``) become its
  children when their parent ends, and it kills and reaps them all before it exits;
- it exits with pytest's exit code, or 128 + the signal that killed pytest.

The grader starts it in a session of its own (a new process group), writes its output to
files rather than pipes (a forked grandchild holding a pipe open cannot make the grader wait),
and kills the group after it ends too.
"""

from __future__ import annotations

import os
import signal
import sys

#: Address space a chapter's process may use, in MB (README, "Time budgets"); WORKBOOK_CHAPTER_MEMORY raises it.
MEMORY_VARIABLE = "WORKBOOK_CHAPTER_MEMORY"
DEFAULT_MEMORY_MB = 4096
_PR_SET_CHILD_SUBREAPER = 36
_KEEPER_IGNORES = ("SIGTERM", "SIGINT", "SIGHUP")


def memory_limit_mb() -> int:
    try:
        return max(256, int(os.environ.get(MEMORY_VARIABLE, DEFAULT_MEMORY_MB)))
    except ValueError:
        return DEFAULT_MEMORY_MB


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    limit = memory_limit_mb() * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    """This process's children, from /proc (Linux)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def _reap_everything() -> None:
    """Kill and reap every remaining descendant (they are all our children, as a subreaper)."""
    try:
        if os.waitpid(-1, os.WNOHANG) == (0, 0):
            pass  # children are still running: find them below
    except ChildProcessError:
        return  # the usual case: nothing was left behind, and no need to read /proc
    while True:
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _run_pytest(argv: list[str]) -> int:
    import pytest

    return int(pytest.main(argv))


def _pytest_then_leave(argv: list[str]) -> None:
    """Run pytest, then leave at once, skipping the interpreter's shutdown.

    Every record is written and flushed when pytest returns. What shutdown would still do is
    the learner's business, not the grade's: join the threads their code left running (one
    blocked forever would hold the process until the chapter's budget ran out and turn a graded
    chapter into a timeout) and run their `atexit` handlers. It also saves tearing down asyncpg,
    aiohttp and the rest module by module: ~0.04 s on chapter 04's solutions, none on 06's.
    """
    code = _run_pytest(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str]) -> int:
    """Run pytest in a forked child; leaves the process with pytest's exit code (never returns on POSIX)."""
    _limit_memory()
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no keeper; the grader's job object is the limit
        return _run_pytest(argv)
    import pytest  # noqa: F401 - before the fork, so the keeper costs no interpreter start-up of its own

    subreaper = _become_subreaper()
    for name in _KEEPER_IGNORES:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for name in _KEEPER_IGNORES:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _pytest_then_leave(argv)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - retried by Python itself since 3.5
            continue
    code = os.waitstatus_to_exitcode(status)
    if subreaper:
        _reap_everything()
    # The keeper has nothing of its own to clean up; tearing down the pytest it imported before
    # the fork would delay the grade by ~0.04 s.
    os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
