"""Which Redis commands stay inside a grading run's prefix (workbook/grading/space.py), one rule each."""

from __future__ import annotations

import pytest

from workbook.grading.space import refusal

RUN = "wb:1764000000_42_a1b2c3:"
MINE = RUN + "test_x:9f9f9f:"


@pytest.mark.parametrize("command", [
    ("SET", MINE + "session:ann", "{}", "EX", 60),
    (b"GET", (MINE + "k").encode()),
    ("DEL", MINE + "a", MINE + "b"),
    ("MSET", MINE + "a", "1", MINE + "b", "2"),
    ("RENAME", MINE + "a", MINE + "b"),
    ("BLPOP", MINE + "q1", MINE + "q2", 1),
    ("EVAL", "return 1", 1, MINE + "a", "not-a-key"),
    ("KEYS", MINE + "*"),
    ("SCAN", 0, "MATCH", MINE + "*", "COUNT", 100),
    ("PING",), ("INFO", "server"), ("PUBLISH", "news", "hi"),
])
def test_commands_on_the_runs_own_keys_are_sent(command):
    assert refusal(command, RUN) == ""


@pytest.mark.parametrize(("command", "words"), [
    (("SET", "sessions:ann", "{}"), "SET sessions:ann"),
    (("DEL", MINE + "a", "someone-else:b"), "DEL someone-else:b"),
    (("MSET", MINE + "a", "1", "other", "2"), "MSET other"),
    (("RENAME", MINE + "a", "elsewhere"), "RENAME elsewhere"),
    (("EVAL", "return 1", 1, "theirs"), "EVAL theirs"),
    (("KEYS", "*"), "KEYS *"),
    (("SCAN", 0), "SCAN *"),
    (("SCAN", 0, "MATCH", "wb:*"), "SCAN wb:*"),
    (("FLUSHDB",), "FLUSHDB"),
    (("FLUSHALL", "ASYNC"), "FLUSHALL ASYNC"),
    (("SCRIPT", "FLUSH"), "SCRIPT FLUSH"),
    (("CONFIG", "SET", "maxmemory", "1"), "CONFIG SET"),
])
def test_commands_that_reach_beyond_it_are_refused_with_what_they_tried(command, words):
    why = refusal(command, RUN)
    assert words in why and "workbook_redis_prefix" in why, why


def test_before_the_run_has_a_prefix_every_key_is_outside():
    assert "SET anything" in refusal(("SET", "anything", "1"), "")


def test_sql_on_the_runs_database_is_sent_and_elsewhere_or_server_wide_is_refused():
    from workbook.grading.space import sql_refusal

    run = {"wbrun_1764000000_42_a1b2c3"}
    assert sql_refusal("CREATE TABLE notes (id serial)", "wbrun_1764000000_42_a1b2c3", run) == ""
    assert sql_refusal("SELECT 1", "anything", set()) == "", "a test that was given no database is not judged by it"
    assert "'postgres'" in sql_refusal("SELECT 1", "postgres", run)
    for query in ("CREATE DATABASE mine", "drop role ann", "  ALTER SYSTEM SET work_mem = '1GB'",
                  "SELECT 1;\nDROP DATABASE other"):
        assert "whole server" in sql_refusal(query, "wbrun_1764000000_42_a1b2c3", run), query


def test_a_tests_prefix_is_a_literal_pattern_whatever_the_test_is_called():
    import types

    from workbook.grading.fixtures import workbook_redis_prefix

    build = getattr(workbook_redis_prefix, "__wrapped__", workbook_redis_prefix)
    request = types.SimpleNamespace(node=types.SimpleNamespace(name="test_session_store_keys[ann-True]*?"))
    prefix = build(RUN, request)
    assert prefix.startswith(RUN) and not any(c in prefix for c in "[]*?\\\\"), prefix


def test_the_sql_guard_keeps_asyncpgs_coroutine_methods_coroutine_functions(tmp_path):
    # Chapter 07 mocks a connection with create_autospec(asyncpg.Connection): under the guard its
    # fetch must still be an AsyncMock (an awaitable mock), as it is in a notebook.
    import inspect
    from unittest.mock import AsyncMock, create_autospec

    import asyncpg
    from asyncpg.connection import Connection

    from workbook.grading import space

    space.install_postgres(tmp_path)
    assert getattr(Connection.fetch, "__wrapped__", None) is not None, "the guard is in place"
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        assert inspect.iscoroutinefunction(getattr(Connection, name)), name
    assert not inspect.iscoroutinefunction(Connection.cursor), "cursor() is a plain method, and stays one"
    assert isinstance(create_autospec(asyncpg.Connection, instance=True).fetch, AsyncMock)
