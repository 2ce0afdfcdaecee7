"""Helpers for the notebooks: run pytest in a cell, reach the servers, grade a chapter.

Every notebook starts with::

    from workbook import notebook
    notebook.setup()

Jupyter already runs an event loop, and pytest-asyncio needs to start its own, so
tests in a notebook run in a worker thread (ipytest's ``run_in_thread=True``).
"""

from __future__ import annotations

import atexit
import functools
import importlib
from types import ModuleType

#: pytest options for tests run in a notebook: short output, no colours (stored outputs must be plain text).
PYTEST_OPTIONS = ("-q", "--color=no", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:valkey",
                  "-W", "ignore::DeprecationWarning:jupyter_client",
                  # pytest_asyncio imported by a cell before pytest's first run cannot be rewritten; harmless
                  "-W", "ignore::pytest.PytestAssertRewriteWarning",
                  # pytest-timeout cannot use signals in ipytest's worker thread; its fallback would
                  # kill the whole kernel. In a notebook, a hung test is stopped by interrupting the cell.
                  "-o", "timeout=0")


def setup() -> None:
    """Configure ipytest so that `%%ipytest` cells run pytest-asyncio tests."""
    import os

    import ipytest

    from workbook import untrimmed_pytest_output

    untrimmed_pytest_output(os.environ)  # pytest runs in this process: whole messages, as on CI
    ipytest.autoconfig(run_in_thread=True, addopts=list(PYTEST_OPTIONS), raise_on_error=False)


def exercise_module(chapter: str, *, target: str = "exercises") -> ModuleType:
    """Your exercise module for a chapter, freshly imported: ``notebook.exercise_module("02")``."""
    from workbook import catalog

    name = f"{target}.{catalog.load().chapter(chapter.zfill(2)).stem}"
    module = importlib.import_module(name)
    return importlib.reload(module)  # pick up edits made since the last import


def grade(*selection: str) -> None:
    """Grade your exercises (a chapter "02" or ids "02.1") and print the table."""
    from workbook import catalog
    from workbook.grading import runner as grader
    from workbook.progress import remember
    from workbook.report import render

    report, _runs = grader.grade(list(selection), target="exercises")
    print(render(report, catalog.load(), plain=True, width=100))
    remember(report)


@functools.cache
def database_url() -> str:
    """A PostgreSQL database of this notebook's own, created on first use and dropped when the kernel stops."""
    from workbook import services

    service = services.resolve("postgres")
    database = services.create_run_database(service)
    atexit.register(services.drop_run_database, service, database)
    return database.url


@functools.cache
def redis_url() -> str:
    """The URL of the Redis server in use. Keep this notebook's keys under `redis_prefix()`."""
    from workbook import services

    return services.resolve("redis").url


@functools.cache
def redis_prefix() -> str:
    """A key prefix of this notebook's own; its keys are deleted when the kernel stops."""
    from workbook import services

    prefix = services.new_redis_prefix()
    atexit.register(lambda: services.delete_redis_prefix(services.resolve("redis"), prefix))
    return prefix
