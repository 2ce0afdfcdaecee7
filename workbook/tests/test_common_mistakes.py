"""The grader's messages for the mistakes learners make most, through the real command line.

Each test starts from the reference solution, makes one mistake a learner would make, and
checks that the message names that mistake in the learner's terms: not pytest's or
pytest-asyncio's internals, not the grader's module paths, not a later symptom.
"""

from __future__ import annotations

import re


def _with(workbook_copy, stem: str, old: str, new: str, count: int = 1) -> None:
    text = workbook_copy.solution_text(stem)
    assert old in text, f"the solution of {stem} changed: update this test ({old!r} not found)"
    workbook_copy.write_exercise(stem, text.replace(old, new, count))


def test_an_async_fixture_under_pytest_fixture_is_told_to_use_pytest_asyncio(workbook_copy):
    text = workbook_copy.solution_text("02_async_fixtures")
    at = text.index("async def notes_table(")
    decorator = text.rindex("@pytest_asyncio.fixture", 0, at)
    workbook_copy.write_exercise("02_async_fixtures", text[:decorator] + "@pytest.fixture" +
                                 text[decorator + len("@pytest_asyncio.fixture"):])
    message = workbook_copy.grade("02.2").exercise("02.2")["message"]
    assert "`notes_table`" in message and "@pytest_asyncio.fixture" in message, message
    assert message != "AssertionError", "never a bare AssertionError from pytest-asyncio's internals"


def test_a_long_lived_fixture_without_its_loop_scope_is_told_to_add_one(workbook_copy):
    _with(workbook_copy, "01_pytest_asyncio", '@pytest_asyncio.fixture(scope="module", loop_scope="module")',
          '@pytest_asyncio.fixture(scope="module")')
    message = workbook_copy.grade("01.2").exercise("01.2")["message"]
    assert "`worker`" in message and "loop_scope" in message, message
    assert "_function_scoped_runner" not in message, "pytest-asyncio's internal fixture names mean nothing to a learner"


def test_a_forgotten_await_is_named_as_such(workbook_copy):
    _with(workbook_copy, "02_async_fixtures", "note_id = await db.fetchval(", "note_id = db.fetchval(")
    message = workbook_copy.grade("02.3").exercise("02.3")["message"]
    assert "without `await`" in message and "Connection.fetchval" in message, message


def test_the_message_comes_from_the_first_check_as_written_not_the_first_by_name(workbook_copy):
    _with(workbook_copy, "03_asyncpg", "        return None if row is None else dict(row)\n", "        return row\n")
    message = workbook_copy.grade("03.2").exercise("03.2")["message"]
    assert "plain dict" in message, f"the check that get() returns a dict must speak first: {message}"


def test_tests_under_a_misspelt_prefix_are_pointed_out_not_taken_for_not_started(workbook_copy):
    text = workbook_copy.solution_text("01_pytest_asyncio")
    workbook_copy.write_exercise("01_pytest_asyncio", re.sub(r"^async def test_token_bucket_", "async def tset_token_bucket_",
                                                             text, flags=re.MULTILINE))
    exercise = workbook_copy.grade("01.1").exercise("01.1")
    assert exercise["status"] == "failed", exercise
    assert "`tset_token_bucket_starts_full`" in exercise["message"] and "rename" in exercise["message"]


def test_a_deleted_fixture_is_named_without_pytest_internals(workbook_copy):
    text = workbook_copy.solution_text("06_exceptions_timeouts")
    at = text.index("async def hanging_backend(")
    start, end = text.rindex("@pytest_asyncio.fixture", 0, at), text.index("\n\n\n", at) + 3
    workbook_copy.write_exercise("06_exceptions_timeouts", text[:start] + text[end:])
    graded = workbook_copy.grade("06")
    message = graded.exercise("06.3")["message"]
    assert "no fixture named `hanging_backend`" in message, message
    assert "FixtureLookupError" not in message and "FixtureRequest" not in message
    assert graded.status("06.1") == "passed" and graded.status("06.2") == "passed", "other exercises do not pay"


def test_tests_that_lean_on_an_unfinished_fixture_say_which_exercise_to_finish_first(workbook_copy):
    stub = workbook_copy.exercise_file("04_aiohttp").read_text(encoding="utf-8")
    at = stub.index("async def test_price_client_reads_a_price(aiohttp_server):")
    end = stub.index("raise NotImplementedError\n", at) + len("raise NotImplementedError\n")
    workbook_copy.write_exercise("04_aiohttp", stub[:at] + (
        "async def test_price_client_reads_a_price(shop):\n"
        "    async with aiohttp.ClientSession() as session:\n"
        "        assert await PriceClient(session, shop.url).price('apple') == 120\n") + stub[end:])
    graded = workbook_copy.grade("04")
    assert graded.status("04.1") == "not_started"
    assert graded.status("04.3") == "failed", "tests were written: not 'not started'"
    assert "`shop` fixture from exercise 04.1" in graded.exercise("04.3")["message"]
    alone = workbook_copy.grade("04.3").exercise("04.3")  # 04.1 is not graded in this run
    assert alone["status"] == "failed" and "grade 04.1 04.3" in alone["message"], alone


def test_messages_name_the_learners_objects_without_the_graders_module_paths(workbook_copy):
    _with(workbook_copy, "05_context_managers", "async def read_batches(", "async def read_in_batches(")
    message = workbook_copy.grade("05.2").exercise("05.2")["message"]
    assert "exercises/05_context_managers.py has no `read_batches`" in message, message
    assert "module 'exercises." not in message


def test_a_test_that_leaves_its_client_session_open_does_not_score(workbook_copy):
    _with(workbook_copy, "04_aiohttp",
          "@pytest.mark.asyncio\nasync def test_price_client_reads_a_price_and_none_for_an_unknown_sku(",
          "@pytest.mark.asyncio\nasync def test_price_client_leaks_its_session(aiohttp_server):\n"
          "    server = await aiohttp_server(_price_app(_list_price))\n"
          "    session = aiohttp.ClientSession()  # never closed\n"
          "    assert await PriceClient(session, str(server.make_url(''))).price('apple') == 120\n\n\n"
          "@pytest.mark.asyncio\nasync def test_price_client_reads_a_price_and_none_for_an_unknown_sku(")
    graded = workbook_copy.grade("04.3")
    exercise = graded.exercise("04.3")
    assert exercise["status"] == "failed", "a chapter about cleaning up does not reward a leak"
    assert "test_price_client_leaks_its_session" in exercise["message"]
    assert "leaves an aiohttp.ClientSession open" in exercise["message"]


def _drop_await(workbook_copy, stem: str, call: str) -> int:
    """Write the solution with the first `call` made without `await`; the line it is on."""
    text = workbook_copy.solution_text(stem)
    assert call in text, f"the solution of {stem} changed: update this test"
    workbook_copy.write_exercise(stem, text.replace(call, call.replace("await ", "", 1), 1))
    return text[:text.index(call)].count("\n") + 1


def test_a_call_without_await_is_named_at_its_own_line_not_at_the_assert_after_it(workbook_copy):
    line = _drop_await(workbook_copy, "02_async_fixtures",
                       '    await session_store.save("ann", {"cart": ["tea"], "visits": 3}, ttl=60)\n')
    message = workbook_copy.grade("02.4").exercise("02.4")["message"]
    assert "`SessionStore.save(...)` was called without `await`" in message, message
    assert f"exercises/02_async_fixtures.py, line {line})" in message, message
    assert "assert None ==" not in message, "the failing assert is only the symptom"


def test_a_deprecated_call_fails_its_check_and_names_the_current_one(workbook_copy):
    _with(workbook_copy, "02_async_fixtures", "stack.push_async_callback(client.aclose)",
          "stack.push_async_callback(client.close)")
    exercise = workbook_copy.grade("02.1").exercise("02.1")
    assert exercise["status"] == "failed", exercise
    assert "deprecated" in exercise["message"] and "aclose()" in exercise["message"], exercise["message"]


def test_a_coroutine_used_as_its_result_names_the_call_and_its_line_even_behind_a_later_error(workbook_copy):
    # `connection.close` of a coroutine exists (it is coroutine.close), so the exit stack fails later
    # with a TypeError: the AttributeError behind it is the one that says what went wrong.
    line = _drop_await(workbook_copy, "02_async_fixtures", "connection = await asyncpg.connect(database_url)")
    message = workbook_copy.grade("02.1").exercise("02.1")["message"]
    assert "`connect(...)` was called without `await`" in message, message
    assert f"exercises/02_async_fixtures.py, line {line})" in message, message
    assert "has no attribute 'fetchval'" in message, message
