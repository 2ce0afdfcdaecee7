"""End to end: the real command line against real servers, embedded servers, and JupyterLab.

These prove the README's promises: grading works with no server but the embedded ones,
a dead server is reported as the environment's fault, two runs at once do not collide
and leave other people's data alone, and `open` brings up a Jupyter server that answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from workbook import catalog
from workbook.reliability import foreign_data_survived, plant_foreign_data, run_databases


def _chapters_using(name: str) -> list[str]:
    return [c.id for c in catalog.load().chapters if name in c.services]


def _server_chapters() -> list[str]:
    """The chapters whose grading uses a server: what these tests are about (every solution of every
    chapter passing is the grading suite's job; grading all 11 chapters here cost ~1 min of CPU each time)."""
    return [c.id for c in catalog.load().chapters if c.services]


def test_grading_with_only_embedded_servers_passes_every_solution_that_uses_a_server(workbook_copy, tmp_path):
    env = {"WORKBOOK_SERVICES": "embedded", "WORKBOOK_CACHE_DIR": str(tmp_path / "cache"),
           "DATABASE_URL": "", "REDIS_URL": ""}
    try:
        graded = workbook_copy.grade(*_server_chapters(), "--target", "solutions", env=env)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        assert set(graded.statuses().values()) == {"passed"}
        doctor = workbook_copy.run("doctor", env=env)
        assert "embedded" in doctor.stdout.lower(), doctor.stdout
    finally:
        stopped = workbook_copy.run("services", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the socket closes


def test_a_server_that_is_down_is_the_environments_fault_not_the_learners(workbook_copy):
    chapters = _chapters_using("postgres")
    if not chapters:
        pytest.skip("no chapter uses PostgreSQL yet")
    env = {"DATABASE_URL": f"postgresql://postgres:secret@127.0.0.1:{_closed_port()}/postgres"}
    graded = workbook_copy.grade(chapters[0], "--target", "solutions", env=env)
    assert graded.returncode == 3, "exit code 3 tells a broken environment apart from failed exercises"
    broken = [e for e in graded.report["exercises"] if e["status"] != "passed"]
    assert broken, "exercises that need the dead server cannot pass"
    for entry in broken:
        assert entry["status"] == "error" and entry["message"].startswith("Environment problem (not your code)"), entry
        assert "secret" not in entry["message"], "passwords must be masked in every message"


def test_two_grading_runs_at_once_both_pass_and_leave_other_data_alone(workbook_copy):
    marker = f"learner_{uuid.uuid4().hex[:8]}"
    asyncio.run(plant_foreign_data(marker))
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: workbook_copy.run("grade", *_server_chapters(), "--target", "solutions"),
                                 range(2)))
    finally:
        survived = asyncio.run(foreign_data_survived(marker))
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    assert survived, "a learner's table and keys in Redis db 0 and db 3 must survive grading"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_open_brings_up_a_jupyter_server_that_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "WORKBOOK_NO_BOOTSTRAP": "1", "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    process = subprocess.Popen([sys.executable, "-m", "workbook", "open", "--no-browser", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as response:
                    answer = json.load(response)
                    break
            except OSError:
                time.sleep(0.3)
        assert answer and "version" in answer, "JupyterLab must answer on its port within 60 s"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_chapter_killed_at_its_budget_still_has_its_run_database_dropped(workbook_copy):
    stem = "02_async_fixtures"
    # Blocking SIGALRM defeats pytest-timeout, so only the chapter budget can stop this fixture,
    # which hangs while its test holds a connection to the run database.
    text = workbook_copy.solution_text(stem).replace(
        "async def notes_table(db: asyncpg.Connection) -> AsyncIterator[str]:\n",
        "async def notes_table(db: asyncpg.Connection) -> AsyncIterator[str]:\n"
        "    import signal, time\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    while True:\n        time.sleep(0.05)\n", 1)
    assert text != workbook_copy.solution_text(stem)
    workbook_copy.write_exercise(stem, text)
    before = asyncio.run(run_databases())
    graded = workbook_copy.grade("02.2", env={"WORKBOOK_CHAPTER_BUDGET": "4"})
    assert graded.status("02.2") == "timeout", graded.report
    assert "stopped after 4 s" in graded.exercise("02.2")["message"]
    # Only this grading process's databases: other runs may be grading against the same server.
    left = asyncio.run(run_databases(graded.pid)) - before
    assert not left, f"the grader must drop the run database of a process it killed; left: {left}"


def test_a_server_that_dies_mid_run_is_the_environments_fault_not_the_learners(workbook_copy, tmp_path):
    env = {"WORKBOOK_SERVICES": "embedded", "WORKBOOK_CACHE_DIR": str(tmp_path / "cache"),
           "DATABASE_URL": "", "REDIS_URL": ""}
    stem = "02_async_fixtures"
    # The learner's code is fine; the embedded PostgreSQL is stopped just before it connects
    # (standing in for a server that crashes in the middle of a grading run).
    text = workbook_copy.solution_text(stem).replace(
        "        connection = await asyncpg.connect(database_url)\n",
        "        from workbook import services\n        services.stop_embedded()\n"
        "        connection = await asyncpg.connect(database_url)\n", 1)
    assert text != workbook_copy.solution_text(stem)
    workbook_copy.write_exercise(stem, text)
    try:
        graded = workbook_copy.grade("02.1", env=env)
        assert graded.returncode == 3, f"exit code 3 says the environment failed: {graded.stdout}"
        exercise = graded.exercise("02.1")
        assert exercise["status"] == "error", exercise
        assert exercise["message"].startswith("Environment problem (not your code)"), exercise["message"]
        assert "does not answer" in exercise["message"] and "services start" in exercise["message"]
    finally:
        workbook_copy.run("services", "stop", env=env)
