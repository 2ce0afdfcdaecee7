"""A minimal Redis protocol (RESP) client: enough for AUTH, PING, INFO and SHUTDOWN.

Probing the docker compose Redis and watching the embedded one happen on every run, so they
use a plain socket instead of importing redis-py.
"""

from __future__ import annotations

from workbook.services._proc import _PROBE_CONNECT_TIMEOUT

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see __init__.py)
if TYPE_CHECKING:
    import socket
    from typing import Any, BinaryIO


class _RedisReplyError(Exception):
    """Redis answered with an error reply (-ERR, -NOAUTH...)."""


def _redis_auth_commands(url: str) -> list[tuple[str, ...]]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if not parts.password:
        return []
    if parts.username:
        return [("AUTH", unquote(parts.username), unquote(parts.password))]
    return [("AUTH", unquote(parts.password))]


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
