"""The values the services hand around: a chosen server, a run database, and the two failures."""

from __future__ import annotations

from dataclasses import dataclass

from workbook.services._urls import mask


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


class _EmbeddedFailure(Exception):
    """An embedded server could not be provided; str() is one clause for the 'tried' list."""
