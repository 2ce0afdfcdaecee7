"""The grader's hand-off to a chapter process: one line through a pipe, end-of-file when the grader is gone."""

from __future__ import annotations

import os
import threading

import pytest

from workbook.grading import handoff
from workbook.services import Service


def test_the_handoff_carries_each_server_and_where_it_came_from():
    read_fd, write_fd = os.pipe()
    given = handoff.Handoff(services={"postgres": Service("postgres", "postgresql://u:secret@h:5432/d", "compose", "why")},
                            database_url="postgresql://u:secret@h:5432/wbrun_1_2_abcdef")
    writer = threading.Timer(0.05, handoff.send, args=(write_fd, given))
    writer.start()
    received = handoff.receive(read_fd)  # blocks until the grader writes
    writer.join()
    assert received == given
    assert received.services["postgres"].source == "compose", "the child knows where its server came from"


def test_end_of_file_without_a_handoff_means_the_grader_is_gone():
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with pytest.raises(handoff.GraderGone, match="grader"):
        handoff.receive(read_fd)


def test_a_problem_travels_instead_of_servers():
    read_fd, write_fd = os.pipe()
    handoff.send(write_fd, handoff.Handoff(problem="PostgreSQL is not available"))
    assert handoff.receive(read_fd).problem == "PostgreSQL is not available"


def test_chapter_servers_probe_only_the_declared_ones_they_were_given():
    servers = handoff.ChapterServers(handoff.Handoff(services={
        "redis": Service("redis", "redis://127.0.0.1:1/0", "env", "REDIS_URL is set")}))
    assert servers.down(("postgres",)) == set(), "a server the chapter does not declare is never probed"
    assert servers.down(("redis",)) == {"redis"}
    assert set(servers.in_use(("postgres", "redis"))) == {"redis"}
