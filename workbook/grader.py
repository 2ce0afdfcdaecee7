"""Run the grading tests in pytest subprocesses, one per chapter, and build the report.

pytest does the running; this module only starts it, watches the clock, and reads what
the grading plugin recorded. One process per chapter means a learner file that breaks
or hangs costs only its own chapter's exercises, and the rest are still graded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from workbook import ROOT, catalog, untrimmed_pytest_output
from workbook.grading import ENVIRONMENT_PREFIX, SESSION_FINISHED, Record, read_records, verdict
from workbook.report import ExerciseResult, Report, Status, truncate

#: Wall-clock budget for one chapter's grading process (README, "Time budgets").
CHAPTER_BUDGET = 60.0
#: Plugins a grading process loads; autoloading every installed plugin (nbval...) costs ~2 s a run.
PLUGINS = ("asyncio", "timeout", "workbook.pytest_plugin")

_CHAPTER_TIMEOUT = (
    "Grading chapter {chapter} was stopped after {budget:.0f} s. Something in exercises/{stem}.py never "
    "finishes (an endless loop, or a blocking call at import?). The other chapters were graded."
)
_CRASHED = "The grading process for chapter {chapter} stopped unexpectedly (exit code {code}):\n{tail}"
_NO_OUTPUT = ("It printed nothing: does your code call os._exit() or sys.exit() in a test, or crash Python? "
              "The exercises graded before that point are reported as usual.")


@dataclass
class ChapterRun:
    """What one chapter's pytest process left behind."""

    chapter: catalog.Chapter
    records: list[Record] = field(default_factory=list)
    timed_out: bool = False
    returncode: int = 0
    stderr: str = ""
    seconds: float = 0.0
    #: Set when a server the chapter needs is unavailable; the chapter is then not run.
    environment: str = ""


def grade(selection: list[str] | None = None, *, target: str = "exercises",
          on_chapter_done: Callable[[ChapterRun], None] | None = None,
          budget: float = CHAPTER_BUDGET, jobs: int | None = None,
          pytest_args: tuple[str, ...] = ()) -> tuple[Report, list[ChapterRun]]:
    """Grade the selected exercises (all by default) of `target` ("exercises" or "solutions")."""
    cat = catalog.load()
    exercises = cat.select(selection or [])
    chapters = [c for c in cat.chapters if any(e.chapter.id == c.id for e in exercises)]
    env = _child_environment(target)
    problems = _resolve_services(chapters, env)
    jobs = jobs or max(1, min(len(chapters), os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch:
        def run(chapter: catalog.Chapter) -> ChapterRun:
            if chapter.id in problems:
                result = ChapterRun(chapter, environment=problems[chapter.id])
            else:
                result = _run_chapter(chapter, env, Path(scratch), budget, pytest_args)
            if on_chapter_done:
                on_chapter_done(result)
            return result

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            runs = list(pool.map(run, chapters))
    by_chapter = {r.chapter.id: r for r in runs}
    report = Report(target=target, results=[_result(e, by_chapter[e.chapter.id]) for e in exercises])
    return report, runs


def _child_environment(target: str) -> dict[str, str]:
    env = dict(os.environ)
    env["WORKBOOK_TARGET"] = target
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Compiled modules go to a cache folder of the workbook's own (never __pycache__ next to a
    # learner's file), so pytest and the grading modules are not compiled again on every run:
    # about 0.1 s a chapter. Learner files are never cached (see workbook.testing._load).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / ".workbook" / "pycache")
    env.pop("PYTEST_ADDOPTS", None)
    untrimmed_pytest_output(env)
    return env


def _resolve_services(chapters: list[catalog.Chapter], env: dict[str, str]) -> dict[str, str]:
    """Resolve each needed server once, for all chapter processes; chapter id -> problem, if any."""
    needed = sorted({s for c in chapters for s in c.services})
    if not needed:
        return {}
    from workbook import services

    unavailable: dict[str, str] = {}
    for name in needed:
        try:
            service = services.resolve(name)
        except services.ServiceUnavailable as error:
            unavailable[name] = str(error)
            continue
        env["DATABASE_URL" if name == "postgres" else "REDIS_URL"] = service.url
    return {c.id: "\n".join(unavailable[s] for s in c.services if s in unavailable)
            for c in chapters if any(s in unavailable for s in c.services)}


def _run_chapter(chapter: catalog.Chapter, env: dict[str, str], scratch: Path, budget: float,
                 pytest_args: tuple[str, ...] = ()) -> ChapterRun:
    results = scratch / f"{chapter.stem}.jsonl"
    command = [sys.executable, "-m", "pytest", str(chapter.test_file.relative_to(ROOT)),
               # --tb=no: the report is built from the plugin's records, and formatting every
               # failure's traceback (the usual state of a learner's work) costs ~0.4 s a chapter
               "-q", "--no-header", "--tb=no", "-p", "no:cacheprovider", "--color=no",
               f"--workbook-results={results}", f"--rootdir={ROOT}"]
    for plugin in (*PLUGINS, *chapter.plugins):
        command += ["-p", plugin]
    if env.get("WORKBOOK_TEST_TIMEOUT"):  # the per-test budget; pyproject.toml sets the default
        command += ["-o", f"timeout={env['WORKBOOK_TEST_TIMEOUT']}"]
    command += pytest_args
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
        out, err = process.communicate()
    return ChapterRun(chapter=chapter, records=read_records(results), timed_out=timed_out,
                      returncode=process.returncode, stderr=(err or "") + (out or ""),
                      seconds=time.perf_counter() - started)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Stop the chapter's process and anything it started (a learner's code may start processes)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except ProcessLookupError:
        pass


def _result(exercise: catalog.Exercise, run: ChapterRun) -> ExerciseResult:
    if run.environment:
        return ExerciseResult(exercise, Status.ERROR, truncate(ENVIRONMENT_PREFIX + run.environment, exercise),
                              environment=True)
    records = [r for r in run.records if r.exercise == exercise.id]
    finished = any(r.when == SESSION_FINISHED for r in run.records)
    if not finished and (not records or _interrupted(records)):
        # The process was stopped (budget) or died before this exercise's tests all ran to their end;
        # exercises whose tests all finished earlier keep their verdict.
        if run.timed_out:
            message = _CHAPTER_TIMEOUT.format(chapter=exercise.chapter.id, budget=CHAPTER_BUDGET, stem=exercise.chapter.stem)
            return ExerciseResult(exercise, Status.TIMEOUT, message)
        tail = "\n".join(run.stderr.strip().splitlines()[-8:]) or _NO_OUTPUT
        return ExerciseResult(exercise, Status.ERROR,
                              truncate(_CRASHED.format(chapter=exercise.chapter.id, code=run.returncode, tail=tail), exercise))
    result = verdict(records)
    return ExerciseResult(exercise, result.status, truncate(result.message, exercise), environment=result.environment)


def _interrupted(records: list[Record]) -> bool:
    """Whether some test of these records began (setup) but never reached its teardown."""
    started = {r.nodeid for r in records if r.when == "setup"}
    ended = {r.nodeid for r in records if r.when == "teardown"}
    return bool(started - ended)
