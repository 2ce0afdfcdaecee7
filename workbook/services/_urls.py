"""Server URLs: masking passwords for print, and taking URLs apart and putting them back together.

Pure string work (no network). Nothing here may print a password: :func:`mask` and
:func:`_describe` are what every message goes through.
"""

from __future__ import annotations


# --- masking ----------------------------------------------------------------------------------------

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


# --- taking URLs apart ------------------------------------------------------------------------------

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
