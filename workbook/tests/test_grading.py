"""From per-phase records to one status per exercise: the rules, one test each."""

from __future__ import annotations

import socket

from workbook.grading import Record, verdict
from workbook.pytest_plugin import _answers
from workbook.report import Status


def _r(outcome: str = "passed", kind: str = "ok", when: str = "call", variant: str = "", message: str = "") -> Record:
    return Record(exercise="00.1", nodeid="tests/test_x.py::test_x", when=when, outcome=outcome, kind=kind,
                  message=message, variant=variant)


def test_all_passing_phases_pass():
    assert verdict([_r(), _r(when="setup"), _r(when="teardown")]).status is Status.PASSED


def test_only_not_implemented_failures_mean_not_started():
    assert verdict([_r("failed", "not_implemented"), _r("failed", "not_implemented")]).status is Status.NOT_STARTED


def test_not_implemented_next_to_a_passing_check_is_partly_done():
    result = verdict([_r(), _r("failed", "not_implemented", message="Still raises NotImplementedError.")])
    assert result.status is Status.FAILED and result.message.startswith("Partly done")


def test_a_server_problem_is_an_environment_error_even_next_to_failures():
    result = verdict([_r("failed", "assertion"), _r("failed", "environment", message="Redis is down")])
    assert result.status is Status.ERROR and result.environment
    assert result.message.startswith("Environment problem (not your code)")


def test_a_timeout_wins_over_an_ordinary_failure():
    assert verdict([_r("failed", "assertion"), _r("failed", "timeout")]).status is Status.TIMEOUT


def test_an_import_error_is_an_error():
    assert verdict([_r("failed", "import", when="collect", message="x.py, line 3")]).status is Status.ERROR


def test_a_test_kind_summary_message_is_preferred():
    result = verdict([_r("failed", "assertion", message="first"),
                      _r("failed", "assertion", variant="verdict", message="the summary")])
    assert result.message == "the summary"


def test_mutant_runs_never_count_as_failures():
    assert verdict([_r(), _r(kind="killed", variant="mutant:a"), _r(kind="survived", variant="mutant:b")]).status \
        is Status.PASSED


def test_no_records_is_reported_as_a_workbook_bug():
    result = verdict([])
    assert result.status is Status.ERROR and "bug in the workbook" in result.message


def test_answers_tells_an_open_port_from_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _answers(f"redis://127.0.0.1:{port}/0")
    assert not _answers(f"redis://127.0.0.1:{port}/0")


def test_answers_probes_a_postgres_unix_socket(tmp_path):
    assert not _answers(f"postgresql://postgres@/postgres?host={tmp_path}")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / ".s.PGSQL.5432"))
        server.listen()
        assert _answers(f"postgresql://postgres@/postgres?host={tmp_path}")


def test_answers_reads_the_port_of_a_unix_socket_url_from_its_query(tmp_path):
    url = f"postgresql://postgres@/postgres?host={tmp_path}&port=6543"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / ".s.PGSQL.6543"))
        server.listen()
        assert _answers(url), "the embedded server's URL names its port in the query"
    assert not _answers(f"postgresql://postgres@/postgres?host={tmp_path}"), "port 5432 has no socket here"
