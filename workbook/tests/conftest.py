"""Fixtures for testing the workbook's own tooling.

`workbook_copy` is a throw-away copy of the repository (see workbook/sandbox.py) in which a
test can break a learner file on purpose and grade it through the real command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbook.sandbox import copy_workbook


@dataclass
class Ran:
    """A finished command of the copy: what subprocess.run gives, and the process id it ran as."""

    returncode: int
    stdout: str
    stderr: str
    #: A grading run's databases carry it (wbrun_<time>_<pid>_<hex>): other runs on the same server do not.
    pid: int


@dataclass
class Graded:
    returncode: int
    stdout: str
    stderr: str
    report: dict
    #: The grading process's id (see Ran.pid).
    pid: int

    def status(self, exercise_id: str) -> str:
        return self.exercise(exercise_id)["status"]

    def exercise(self, exercise_id: str) -> dict:
        return next(e for e in self.report["exercises"] if e["id"] == exercise_id)

    def statuses(self) -> dict[str, str]:
        return {e["id"]: e["status"] for e in self.report["exercises"]}


@dataclass
class WorkbookCopy:
    root: Path

    def exercise_file(self, stem: str) -> Path:
        return self.root / "exercises" / f"{stem}.py"

    def solution_text(self, stem: str) -> str:
        return (self.root / "solutions" / f"{stem}.py").read_text(encoding="utf-8")

    def write_exercise(self, stem: str, text: str) -> None:
        self.exercise_file(stem).write_text(text, encoding="utf-8")

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
        full_env = {**os.environ, "WORKBOOK_NO_BOOTSTRAP": "1", **(env or {})}
        full_env.pop("WORKBOOK_TARGET", None)
        with subprocess.Popen([sys.executable, "-m", "workbook", *args], cwd=self.root, env=full_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        return Ran(process.returncode, stdout, stderr, process.pid)

    def grade(self, *args: str, env: dict[str, str] | None = None) -> Graded:
        report_path = self.root / "report.json"
        report_path.unlink(missing_ok=True)
        result = self.run("grade", *args, "--json", str(report_path), env=env)
        assert report_path.exists(), f"the report must always be written; stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
        return Graded(result.returncode, result.stdout, result.stderr, json.loads(report_path.read_text()), result.pid)


@pytest.fixture(scope="session")
def _pristine_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Every copy of this session (one per test) shares one cache of compiled modules: 300 tests,
    # each compiling pytest and the libraries again on its first grade, took minutes (sandbox.py).
    return copy_workbook(tmp_path_factory.mktemp("pristine") / "workbook-copy",
                         pycache=tmp_path_factory.mktemp("pycache"))


@pytest.fixture
def workbook_copy(_pristine_copy: Path, tmp_path: Path) -> WorkbookCopy:
    """A fresh copy of the repository with untouched stubs in exercises/."""
    root = tmp_path / "workbook-copy"
    shutil.copytree(_pristine_copy, root, symlinks=True)  # the shared pycache stays a link
    return WorkbookCopy(root)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # These tests drive whole grading runs; the 5 s budget in pyproject.toml is for grading tests.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(180))
