"""Why a grading test failed: workbook.grading.diagnose, and the probe of workbook.grading.handoff."""

from __future__ import annotations

import socket

from workbook.grading.diagnose import Failure, Server, classify, may_be_server_trouble
from workbook.grading.handoff import answers
from workbook.grading.records import Kind

POSTGRES = {"postgres": Server("postgres", "postgresql://postgres:***@127.0.0.1:5432/postgres")}


def _failure(error: BaseException, text: str | None = None) -> Failure:
    return Failure(error=error, text=text if text is not None else f"{type(error).__name__}: {error}",
                   where=" (exercises/00_welcome.py, line 9)", test="test_x", learner_file="exercises/00_welcome.py")


def test_a_refused_connection_in_a_chapter_without_servers_is_the_learners_failure():
    kind, message = classify(_failure(ConnectionRefusedError(111, "Connection refused")), servers={}, down={"postgres"})
    assert kind is Kind.ASSERTION and "Environment" not in message and "line 9" in message


def test_a_refused_connection_while_the_chapters_server_answers_is_the_learners_failure():
    kind, _ = classify(_failure(ConnectionRefusedError(111, "Connection refused")), servers=POSTGRES, down=())
    assert kind is Kind.ASSERTION


def test_a_refused_connection_while_the_chapters_server_is_down_is_the_environments():
    kind, message = classify(_failure(ConnectionRefusedError(111, "Connection refused")), servers=POSTGRES,
                             down={"postgres"})
    assert kind is Kind.ENVIRONMENT and "PostgreSQL does not answer" in message and "***" in message


def test_a_server_the_chapter_does_not_use_is_never_blamed():
    kind, _ = classify(_failure(OSError("boom")), servers=POSTGRES, down={"redis"})
    assert kind is Kind.ASSERTION


def test_a_full_postgres_is_an_environment_problem_of_a_chapter_that_uses_it():
    class TooManyConnectionsError(Exception):
        pass

    error = TooManyConnectionsError("sorry, too many clients already")
    assert may_be_server_trouble(error)
    kind, message = classify(_failure(error), servers=POSTGRES, down=())
    assert kind is Kind.ENVIRONMENT and "refuses more connections" in message and "max_connections" in message
    assert classify(_failure(error), servers={}, down=())[0] is Kind.ASSERTION


def test_a_connection_error_inside_an_exception_group_is_found():
    group = ExceptionGroup("tasks", [ValueError("x"), ConnectionResetError("reset")])
    assert may_be_server_trouble(group)
    assert classify(_failure(group), servers=POSTGRES, down={"postgres"})[0] is Kind.ENVIRONMENT


def test_not_implemented_is_not_started_with_its_line():
    kind, message = classify(_failure(NotImplementedError()))
    assert kind is Kind.NOT_IMPLEMENTED and message == "Still raises NotImplementedError (exercises/00_welcome.py, line 9)."


def test_an_unmarked_async_test_is_told_to_mark_it():
    kind, message = classify(_failure(Exception(), text="Failed: async def functions are not natively supported."))
    assert kind is Kind.ASSERTION and "@pytest.mark.asyncio" in message


def test_answers_tells_an_open_port_from_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert answers(f"redis://127.0.0.1:{port}/0")
    assert not answers(f"redis://127.0.0.1:{port}/0")


def test_answers_probes_a_postgres_unix_socket_on_the_port_of_its_query(tmp_path):
    url = f"postgresql://postgres@/postgres?host={tmp_path}&port=6543"
    assert not answers(url)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / ".s.PGSQL.6543"))
        server.listen()
        assert answers(url), "the embedded server's URL names its port in the query"
    assert not answers(f"postgresql://postgres@/postgres?host={tmp_path}"), "port 5432 has no socket here"


def test_a_coroutine_used_as_its_result_is_explained_as_a_missing_await():
    error = AttributeError("'coroutine' object has no attribute 'fetchval'")
    kind, message = classify(_failure(error))
    assert kind is Kind.ASSERTION
    assert "await" in message and "line 9" in message and "fetchval" in message
