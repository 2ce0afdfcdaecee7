"""The servers a chapter's grading process uses: handed over once by the grader, probed on demand.

The grader resolves the servers and prepares a run database while the chapter's process
starts (see `workbook.grading.runner`). It passes the read end of a pipe to the process
(its number in ``WORKBOOK_HANDOFF_FD``) and writes ONE JSON line to it when the servers
are ready: each server's URL and where it came from (the environment, docker compose, the
embedded server), the run database, or the problem that makes them unavailable. The process
reads that line once, with a blocking read, after it has collected its tests. End-of-file
without a line means the grader is gone: the process stops instead of waiting.

A plain ``pytest tests/`` run has no hand-off: its fixtures resolve the servers themselves.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qs, urlsplit

from workbook import services
from workbook.grading.diagnose import Server
from workbook.services import Service

FD_VARIABLE = "WORKBOOK_HANDOFF_FD"
_GRADER_GONE = ("The grader that started this grading process is gone (interrupted or killed), so nobody will hand "
                "over the servers. Run `python3 -m workbook grade` again.")


@dataclass
class Handoff:
    """What the grader hands a chapter's process: its servers, its run database, or why there are none."""

    services: dict[str, Service] = field(default_factory=dict)
    #: the URL of the database the grader created for this process alone ("" if the chapter needs none)
    database_url: str = ""
    #: set when a server the chapter needs is unavailable (the message says why and what to do)
    problem: str = ""

    def to_line(self) -> bytes:
        payload = {"services": {n: asdict(s) for n, s in self.services.items()},
                   "database_url": self.database_url, "problem": self.problem}
        return (json.dumps(payload) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Handoff:
        raw = json.loads(line)
        return cls(services={n: Service(**s) for n, s in raw["services"].items()},
                   database_url=raw["database_url"], problem=raw["problem"])


class GraderGone(RuntimeError):
    """The pipe closed before the grader wrote the hand-off."""

    def __init__(self) -> None:
        super().__init__(_GRADER_GONE)


def send(fd: int, handoff: Handoff) -> None:
    """The grader's side: write the one line and close the pipe."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(handoff.to_line())
    except BrokenPipeError:
        pass  # the chapter's process has already ended (a crash at import): nothing to hand over


def receive(fd: int) -> Handoff:
    """The chapter process's side: block until the line arrives; GraderGone on end-of-file."""
    with os.fdopen(fd, "rb") as pipe:
        line = pipe.readline()
    if not line.endswith(b"\n"):
        raise GraderGone()
    return Handoff.from_line(line)


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts connections where `url` points (TCP, or PostgreSQL's unix socket)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    socket_dir = query.get("host", [""])[0]
    try:
        if socket_dir.startswith("/") and hasattr(socket, "AF_UNIX"):
            port = parts.port or int(query.get("port", ["5432"])[0])  # the embedded server's URL: ?host=...&port=...
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(timeout)
                probe.connect(f"{socket_dir}/.s.PGSQL.{port}")
            return True
        default_port = 6379 if parts.scheme.startswith("redis") else 5432
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=timeout):
            return True
    except OSError:
        return False


class ChapterServers:
    """The servers one chapter process uses: those handed over, or those its fixtures resolved."""

    def __init__(self, given: Handoff | None = None) -> None:
        self.handoff = given
        self._resolved: dict[str, Service] = dict(given.services) if given else {}

    def get(self, name: str) -> Service:
        """The server `name`: the grader's choice when it made one, else resolved now (a plain pytest run)."""
        if name not in self._resolved:  # resolving may start an embedded server: only when a fixture asks
            self._resolved[name] = services.resolve(name)
        return self._resolved[name]

    @property
    def database_url(self) -> str:
        """The run database the grader made for this process, or "" (then the fixtures make one)."""
        return self.handoff.database_url if self.handoff else ""

    def in_use(self, declared: tuple[str, ...]) -> dict[str, Server]:
        """Those of the `declared` servers that this process has actually been given or resolved."""
        return {n: Server(n, s.masked_url) for n, s in self._resolved.items() if n in declared}

    def down(self, declared: tuple[str, ...]) -> set[str]:
        """Which of the `declared` servers in use do not answer now (one quick probe each)."""
        return {n for n, s in self._resolved.items() if n in declared and not answers(s.url)}
