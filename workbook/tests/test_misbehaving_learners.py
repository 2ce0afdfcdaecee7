"""Learner code that misbehaves costs only its own exercise, and never passes one it did not finish.

Each test writes the reference solution of chapter 00 plus one misbehaviour into a throw-away
copy of the workbook and grades it through the real command line (see conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

SOLVED = {"00.1": "passed", "00.2": "passed"}


def _grade_with(workbook_copy, extra: str, **env: str):
    solution = workbook_copy.solution_text("00_welcome")
    workbook_copy.write_exercise("00_welcome", solution + "\n\n" + extra)
    return workbook_copy.grade("00", env={"WORKBOOK_CHAPTER_BUDGET": "30", **env})


def test_skipped_learner_tests_score_nothing(workbook_copy):
    graded = _grade_with(workbook_copy, (
        "for _name in [n for n in dict(globals()) if n.startswith('test_is_palindrome')]:\n"
        "    del globals()[_name]\n\n"
        "@pytest.mark.skip\n@pytest.mark.asyncio\nasync def test_is_palindrome_later():\n    assert False\n"))
    assert graded.status("00.3") == "failed", "a skipped test checks nothing: it cannot catch a bug"
    assert "skipped" in graded.exercise("00.3")["message"]


@pytest.mark.parametrize("stop", ["raise KeyboardInterrupt", "pytest.exit('bye', returncode=0)"])
def test_a_learner_test_that_stops_the_session_never_passes_its_exercise(workbook_copy, stop):
    graded = _grade_with(workbook_copy, f"@pytest.mark.asyncio\nasync def test_is_palindrome_stop():\n    {stop}\n")
    assert graded.statuses() == {**SOLVED, "00.3": "error"}, "finished exercises keep their grade; the rest is not graded"
    message = graded.exercise("00.3")["message"]
    assert "test_is_palindrome_stop" in message and "line" in message
    assert graded.returncode == 1


def test_a_file_that_closes_stdout_at_import_costs_nothing_else(workbook_copy):
    graded = _grade_with(workbook_copy, "import sys\nsys.stdout.close()\n")
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}


def test_a_test_that_closes_stdout_does_not_break_the_tests_after_it(workbook_copy):
    graded = _grade_with(workbook_copy, (
        "import sys\n\n@pytest.mark.asyncio\nasync def test_is_palindrome_closes():\n"
        "    sys.stdout.close()\n    sys.stderr.close()\n    assert await is_palindrome('abba')\n"))
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}


def test_a_signal_to_the_parent_process_does_not_kill_the_grader(workbook_copy):
    graded = _grade_with(workbook_copy, (
        "import os, signal\n\n@pytest.mark.asyncio\nasync def test_is_palindrome_kills():\n"
        "    os.kill(os.getppid(), signal.SIGTERM)\n    assert await is_palindrome('abba')\n"))
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}


def test_a_forked_child_neither_holds_the_grader_nor_outlives_it(workbook_copy):
    started = time.monotonic()
    graded = _grade_with(workbook_copy, (
        "import os, time as _time\n\n@pytest.mark.asyncio\nasync def test_is_palindrome_forks():\n"
        "    if os.fork() == 0:\n        _time.sleep(61.25)\n        os._exit(0)\n"
        "    assert await is_palindrome('abba')\n"))
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}
    assert time.monotonic() - started < 25, "the grader must not wait for the chapter's budget (30 s)"
    assert not _running("61.25"), "the forked child must be gone when the grade is reported"


@pytest.mark.parametrize("new_session", [False, True])
def test_processes_a_learner_starts_are_gone_when_the_grade_is_reported(workbook_copy, new_session):
    marker = f"{297 + new_session}.375"
    graded = _grade_with(workbook_copy, (
        f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session={new_session})\n"))
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}
    assert not _running(marker), "a process started by learner code must not outlive the grade"


def test_a_module_scoped_fixture_failing_in_its_teardown_costs_its_own_exercise(workbook_copy):
    solution = workbook_copy.solution_text("00_welcome")
    broken = solution.replace("@pytest_asyncio.fixture\nasync def inbox", '@pytest_asyncio.fixture(scope="module", '
                              'loop_scope="module")\nasync def inbox', 1)
    assert broken != solution
    broken = broken.replace("        queue.get_nowait()\n", "        queue.get_nowait()\n    raise SystemExit(3)\n", 1)
    workbook_copy.write_exercise("00_welcome", broken)
    graded = workbook_copy.grade("00")
    assert graded.status("00.3") == "passed", graded.report
    assert graded.status("00.2") != "passed"


def test_memory_a_chapter_may_use_is_limited(workbook_copy):
    graded = _grade_with(workbook_copy, (
        "_countdown = countdown\n\nasync def countdown(start):\n    hog = bytearray(3 * 1024**3)\n"
        "    return await _countdown(start)\n"), WORKBOOK_CHAPTER_MEMORY="1024")
    assert graded.status("00.1") == "failed"
    assert "memory" in graded.exercise("00.1")["message"].lower()
    assert graded.status("00.2") == "passed"


def _running(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", "--", marker], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_ctrl_c_stops_a_hung_grading_at_once_and_leaves_no_process(workbook_copy):
    import os
    import signal
    import sys

    solution = workbook_copy.solution_text("00_welcome")
    workbook_copy.write_exercise("00_welcome", solution + (
        "\n\nimport signal as _signal, time as _time\n\n@pytest.mark.asyncio\nasync def test_is_palindrome_hangs():\n"
        "    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGALRM})\n    while True:\n        _time.sleep(0.0625)\n"))
    env = {**os.environ, "WORKBOOK_NO_BOOTSTRAP": "1", "WORKBOOK_CHAPTER_BUDGET": "60"}
    env.pop("WORKBOOK_TARGET", None)
    grader = subprocess.Popen([sys.executable, "-m", "workbook", "grade", "00"], cwd=workbook_copy.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _running(f"--rootdir={workbook_copy.root}"):
        time.sleep(0.05)
    time.sleep(1.5)  # the hanging test is running by now
    grader.send_signal(signal.SIGINT)
    _out, err = grader.communicate(timeout=15)  # not the chapter's 60 s budget
    assert grader.returncode == 130, err
    assert not _running(f"--rootdir={workbook_copy.root}"), "Ctrl+C must stop every chapter process"


def test_a_thread_left_running_does_not_hold_the_grade(workbook_copy):
    started = time.monotonic()
    graded = _grade_with(workbook_copy, (
        "import threading, time as _time\n\n@pytest.mark.asyncio\nasync def test_is_palindrome_threads():\n"
        "    threading.Thread(target=_time.sleep, args=(45,)).start()\n    assert await is_palindrome('abba')\n"))
    assert graded.statuses() == {**SOLVED, "00.3": "passed"}
    assert time.monotonic() - started < 25, "a learner's thread must not make the grader wait for the chapter's budget"


@pytest.mark.parametrize("environment", [{"REDIS_URL": "redis://127.0.0.1:1/0"}, {"WORKBOOK_SERVICES": "embeded"}])
def test_a_refused_connection_in_a_chapter_without_servers_is_the_learners_own(workbook_copy, environment):
    graded = _grade_with(workbook_copy, (
        "_countdown = countdown\n\nasync def countdown(start):\n    import socket\n"
        "    socket.create_connection(('127.0.0.1', 1), timeout=1)\n    return await _countdown(start)\n"),
        **environment)
    assert graded.status("00.1") == "failed", "chapter 00 uses no server: a refused connection is the learner's code"
    assert "Environment" not in graded.exercise("00.1")["message"]
    assert graded.returncode == 1


def _sentinel_key() -> tuple[object, str]:
    """A key of "someone else" on the shared Redis, outside any grading run's prefix."""
    import os

    import redis

    from workbook import services

    client = redis.Redis.from_url(services.resolve("redis").url, decode_responses=True)
    key = f"someone-else:{os.urandom(4).hex()}"
    client.set(key, "theirs", ex=300)
    return client, key


@pytest.mark.parametrize("reach", [
    'return SessionStore(workbook_redis, "sessions:")',  # a prefix of the fixture's own
    'await workbook_redis.flushdb()\n    return SessionStore(workbook_redis, workbook_redis_prefix)',
    'await workbook_redis.delete(*(await workbook_redis.keys("*")))\n'
    '    return SessionStore(workbook_redis, workbook_redis_prefix)',
])
def test_learner_code_cannot_reach_keys_outside_its_runs_prefix(workbook_copy, reach):
    client, theirs = _sentinel_key()
    try:
        text = workbook_copy.solution_text("02_async_fixtures")
        made = "    return SessionStore(workbook_redis, workbook_redis_prefix)\n"
        at = text.rindex(made)  # the solution's session_store fixture (the last one in the file)
        fixture = text[:at].rsplit("@pytest.fixture\ndef session_store", 1)
        assert len(fixture) == 2, "the solution of 02 changed: update this test"
        learner = (fixture[0] + "@pytest_asyncio.fixture\nasync def session_store" + fixture[1] + f"    {reach}\n"
                   + text[at + len(made):])
        workbook_copy.write_exercise("02_async_fixtures", learner)
        graded = workbook_copy.grade("02.4")
        exercise = graded.exercise("02.4")
        assert exercise["status"] == "failed", exercise
        assert "workbook_redis_prefix" in exercise["message"] and "Redis" in exercise["message"], exercise["message"]
        assert client.get(theirs) == "theirs", "someone else's key must survive a learner's grading"
        assert client.keys("sessions:*") == [], "nothing may land outside the run's prefix"
    finally:
        client.delete(theirs)
        client.close()


@pytest.mark.parametrize(("change", "said"), [
    # a fixture on the server's default database instead of the run's: other people's tables live there
    (("connection = await asyncpg.connect(bank_database_url)",
      "connection = await asyncpg.connect(_default_database(bank_database_url))"), "'postgres'"),
    # a test database of the learner's own, made with CREATE DATABASE: a server-wide object
    (("    transaction = connection.transaction()\n",
      "    await connection.execute('CREATE DATABASE my_own_test_db')\n    transaction = connection.transaction()\n"),
     "CREATE DATABASE"),
])
def test_learner_sql_outside_the_runs_database_is_refused(workbook_copy, change, said):
    text = workbook_copy.solution_text("03_asyncpg")
    assert change[0] in text, "the solution of 03 changed: update this test"
    helper = ("\n\ndef _default_database(url):\n"
              "    from urllib.parse import urlsplit\n"
              "    return urlsplit(url)._replace(path='/postgres', query=urlsplit(url).query).geturl()\n")
    workbook_copy.write_exercise("03_asyncpg", text.replace(change[0], change[1], 1) + helper)
    exercise = workbook_copy.grade("03.1").exercise("03.1")
    assert exercise["status"] == "failed", exercise
    assert said in exercise["message"] and "workbook" in exercise["message"], exercise["message"]


def test_a_fixture_that_fails_at_teardown_against_a_mutant_has_caught_it_and_costs_its_exercise_nothing(workbook_copy):
    # 11.3's tests made with 11.2's strict `scripted` fixture: against a mutant that stops calling
    # too early, the fixture fails at teardown. That is the test catching the bug, not 11.2 failing.
    solution = workbook_copy.solution_text("11_retries")
    strict = solution.replace("def _script(*outcomes):\n", "def _unused(*outcomes):\n", 1)
    strict = re.sub(r"async def (test_retry_\w+)\(\)", r"async def \1(scripted)", strict)
    strict = strict.replace("operation = _script(", "operation = scripted(")
    assert strict != solution and "scripted(" in strict
    workbook_copy.write_exercise("11_retries", strict)
    graded = workbook_copy.grade("11", env={"WORKBOOK_SPLIT": "0"})  # one process: 11.2's fixture runs in 11.3's tests
    assert graded.status("11.2") == "passed", graded.exercise("11.2")
    assert graded.status("11.3") == "passed", graded.exercise("11.3")
