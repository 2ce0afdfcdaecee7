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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbook import ROOT, catalog, untrimmed_pytest_output
from workbook.grading import ENVIRONMENT_PREFIX, SESSION_FINISHED, Record, read_records, verdict
from workbook.report import ExerciseResult, Report, Status, truncate

if TYPE_CHECKING:
    from workbook.services import RunDatabase, Service

#: Wall-clock budget for one chapter's grading process (README, "Time budgets").
CHAPTER_BUDGET = float(os.environ.get("WORKBOOK_CHAPTER_BUDGET", "60"))
#: Plugins a grading process loads; autoloading every installed plugin (nbval...) costs ~2 s a run.
PLUGINS = ("asyncio", "timeout", "workbook.pytest_plugin")
#: pytest's own plugins that grading never uses (doctests, XML reports, pastebin, --stepwise, --pdb);
#: not loading them saves ~0.02 s a process. Fixtures learners use (tmp_path, capsys, caplog,
#: monkeypatch) stay.
UNUSED_BUILTIN_PLUGINS = ("doctest", "junitxml", "pastebin", "stepwise", "debugging")

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
    #: The wall-clock budget the process had.
    budget: float = CHAPTER_BUDGET


def grade(selection: list[str] | None = None, *, target: str = "exercises",
          on_chapter_done: Callable[[ChapterRun], None] | None = None,
          budget: float = CHAPTER_BUDGET, jobs: int | None = None,
          pytest_args: tuple[str, ...] = ()) -> tuple[Report, list[ChapterRun]]:
    """Grade the selected exercises (all by default) of `target` ("exercises" or "solutions")."""
    cat = catalog.load()
    exercises = cat.select(selection or [])
    chapters = [c for c in cat.chapters if any(e.chapter.id == c.id for e in exercises)]
    env = _child_environment(target)
    jobs = jobs or max(1, min(len(chapters), os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch:
        preparation = _Preparation(chapters, Path(scratch))
        try:
            def run(chapter: catalog.Chapter) -> ChapterRun:
                try:
                    result = _run_chapter(chapter, {**env, **preparation.environment(chapter)}, Path(scratch),
                                          budget, pytest_args)
                finally:
                    problem = preparation.finish(chapter)
                if problem:  # a server the chapter needs is unavailable: nothing it did counts
                    result = ChapterRun(chapter, environment=problem, seconds=result.seconds)
                if on_chapter_done:
                    on_chapter_done(result)
                return result

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                runs = list(pool.map(run, chapters))
        finally:
            preparation.close()
    by_chapter = {r.chapter.id: r for r in runs}
    report = Report(target=target, results=[_result(e, by_chapter[e.chapter.id]) for e in exercises])
    return report, runs


class _Preparation:
    """What the chapters' pytest processes need from the servers, made ready while they start.

    Resolving the servers (~0.05 s: a login to the docker compose PostgreSQL, or starting an
    embedded one) takes about as long as a pytest process needs to start and collect its tests.
    So every chapter's process starts at once, and this is done in background threads; a process
    that needs servers waits for its hand-off file (`services.receive_handoff`) only after it
    has collected its tests.

    Creating a database costs the server 0.05-0.3 s (it copies and syncs its template): more than
    that overlap hides. So each run also leaves one spare, fresh and unused, for the next run,
    which claims it by renaming it (`services.claim_spare_database`); only a run that finds no
    spare pays for CREATE DATABASE. Each run database is dropped here after its process has
    ended, also when the process hung and was killed.
    """

    def __init__(self, chapters: list[catalog.Chapter], scratch: Path) -> None:
        self._scratch = scratch
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workbook-prepare")
        needed = sorted({s for c in chapters for s in c.services})
        resolving = self._pool.submit(_resolve_services, needed)
        self._postgres: Service | None = None
        self._databases: dict[str, RunDatabase] = {}
        first_postgres = next((c for c in chapters if "postgres" in c.services), None)
        self._ready: dict[str, Future[str]] = {
            c.id: self._pool.submit(self._prepare, c, resolving, first=c is first_postgres)
            for c in chapters if c.services
        }

    def _handoff(self, chapter: catalog.Chapter) -> Path:
        return self._scratch / f"{chapter.stem}.handoff.json"

    def environment(self, chapter: catalog.Chapter) -> dict[str, str]:
        from workbook import services

        if chapter.id not in self._ready:
            return {}
        return {services.HANDOFF_VARIABLE: str(self._handoff(chapter)),
                services.HANDOFF_GRADER_VARIABLE: str(os.getpid())}

    def _prepare(self, chapter: catalog.Chapter, resolving: Future[tuple[dict[str, Service], dict[str, str]]],
                 *, first: bool) -> str:
        """Resolve, create the chapter's run database, and hand both off; returns the problem, if any."""
        from workbook import services

        environment: dict[str, str] = {}
        problem = ""
        postgres = None
        try:
            resolved, unavailable = resolving.result()
            problem = "\n".join(unavailable[s] for s in chapter.services if s in unavailable)
            environment = {_URL_VARIABLES[name]: service.url for name, service in resolved.items()}
            postgres = resolved.get("postgres") if not problem and "postgres" in chapter.services else None
            if postgres is not None:
                self._postgres = postgres
                db = services.new_run_database(postgres)
                # A spare that an earlier run made (fresh, never used) is renamed in milliseconds.
                if not services.claim_spare_database(postgres, db):
                    services.create_run_database(postgres, db, clean=False)
                self._databases[chapter.id] = db
                environment[services.PREPARED_DATABASE_URL] = db.url
        except services.ServiceUnavailable as error:
            problem = str(error)
        except Exception as error:  # unexpected: the chapter's process must not wait for nothing
            problem = f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        services.hand_off(self._handoff(chapter), environment=environment, problem=problem)
        if postgres is not None and first and not problem:
            self._pool.submit(self._housekeeping, postgres)  # after the hand-off, off the critical path
        return problem

    @staticmethod
    def _housekeeping(postgres: Service) -> None:
        """Once per grading run, while the chapters run: clean dead runs' leftovers, make a spare."""
        from workbook import services

        try:
            services.clean_stale_run_databases(postgres)
            services.make_spare_database(postgres)
        except Exception:  # a courtesy to later runs: never a reason for this one to fail
            pass

    def finish(self, chapter: catalog.Chapter) -> str:
        """After the chapter's process has ended: drop its run database; the problem, if any."""
        from workbook import services

        ready = self._ready.get(chapter.id)
        if ready is None:
            return ""
        try:
            problem = ready.result()
        except Exception as error:  # a bug in the preparation itself must not lose the report
            return f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        db = self._databases.pop(chapter.id, None)
        if db is not None and self._postgres is not None:
            try:
                services.drop_run_database(self._postgres, db)
            except services.ServiceUnavailable:
                pass  # the server went away; `python -m workbook services clean` removes it later
        return problem

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for chapter_id in list(self._databases):
            self.finish(catalog.load().chapter(chapter_id))


_URL_VARIABLES = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}


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
    for variable in ("WORKBOOK_HANDOFF", "WORKBOOK_HANDOFF_GRADER", "WORKBOOK_RUN_DATABASE_URL"):  # for one process only
        env.pop(variable, None)
    untrimmed_pytest_output(env)
    return env


def _resolve_services(needed: list[str]) -> tuple[dict[str, Service], dict[str, str]]:
    """Resolve each needed server once, for all chapter processes: name -> Service, name -> problem."""
    from workbook import services

    resolved: dict[str, Service] = {}
    unavailable: dict[str, str] = {}
    for name in needed:
        try:
            resolved[name] = services.resolve(name)
        except services.ServiceUnavailable as error:
            unavailable[name] = str(error)
    return resolved, unavailable


def _run_chapter(chapter: catalog.Chapter, env: dict[str, str], scratch: Path, budget: float,
                 pytest_args: tuple[str, ...] = ()) -> ChapterRun:
    results = scratch / f"{chapter.stem}.jsonl"
    command = [sys.executable, "-m", "workbook._pytest_child", str(chapter.test_file.relative_to(ROOT)),
               # --tb=no: the report is built from the plugin's records, and formatting every
               # failure's traceback (the usual state of a learner's work) costs ~0.4 s a chapter
               "-q", "--no-header", "--tb=no", "-p", "no:cacheprovider", "--color=no",
               f"--workbook-results={results}", f"--rootdir={ROOT}"]
    for plugin in (*PLUGINS, *chapter.plugins):
        command += ["-p", plugin]
    for plugin in UNUSED_BUILTIN_PLUGINS:
        command += ["-p", f"no:{plugin}"]
    if env.get("WORKBOOK_TEST_TIMEOUT"):  # the per-test budget; pyproject.toml sets the default
        command += ["-o", f"timeout={env['WORKBOOK_TEST_TIMEOUT']}"]
    command += pytest_args
    started = time.perf_counter()
    # stdin from /dev/null: a forgotten `breakpoint()` or `input()` in a learner's file reads
    # end-of-file and goes on, instead of waiting for the chapter's budget to run out.
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
        out, err = process.communicate()
    return ChapterRun(chapter=chapter, records=read_records(results), timed_out=timed_out,
                      returncode=process.returncode, stderr=(err or "") + (out or ""),
                      seconds=time.perf_counter() - started, budget=budget)


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
            message = _CHAPTER_TIMEOUT.format(chapter=exercise.chapter.id, budget=run.budget, stem=exercise.chapter.stem)
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
