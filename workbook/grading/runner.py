"""Run the grading tests: one pytest process per chapter, watched, and always cleaned up.

`grade()` is the whole pipeline: catalog -> servers (`_Preparation`) -> one process per chapter
(`_run_chapter`) -> records (`records.read_log`) -> verdict (`verdict.exercise_results`) -> report.

A chapter's process is `workbook.grading.child` (a keeper that forks pytest). A learner file that
breaks, hangs or misbehaves costs only its own chapter's process; the other chapters are graded.
Every process a chapter started is gone when its grade is reported: its process group is killed
after it ends (also after a normal end), and Ctrl+C stops every chapter at once.

Speed (measured in `python3 -m workbook dev bench`; README, "Benchmarks"):
- every chapter's process starts at once (up to one per core), and the servers are resolved and
  the run databases prepared in background threads while those processes start and collect
  (resolving ~0.05 s and CREATE DATABASE 0.05-0.3 s are then hidden behind pytest's start-up);
- each run leaves one fresh, never-used spare database for the next run, which claims it by
  renaming it (a few ms, atomic) instead of paying for CREATE DATABASE;
- a chapter's process loads only the plugins it needs (autoloading every installed plugin,
  nbval among them, costs ~2 s a run) and compiles the grader's modules into a cache of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from workbook import ROOT, catalog, services, untrimmed_pytest_output
from workbook.grading import handoff
from workbook.grading.records import read_log
from workbook.grading.verdict import ChapterRun, exercise_results, unfinished_exercises, unfinished_tests
from workbook.report import Report

#: Wall-clock budget for one chapter's grading process (README, "Time budgets").
CHAPTER_BUDGET = float(os.environ.get("WORKBOOK_CHAPTER_BUDGET", "60"))
#: Plugins a grading process loads.
PLUGINS = ("asyncio", "timeout", "workbook.pytest_plugin")
#: pytest's own plugins that grading never uses (doctests, XML reports, pastebin, --stepwise, --pdb).
#: Fixtures learners use (tmp_path, capsys, caplog, monkeypatch) stay.
UNUSED_BUILTIN_PLUGINS = ("doctest", "junitxml", "pastebin", "stepwise", "debugging")
_OUTPUT_TAIL = 4000


class GradingStopped(KeyboardInterrupt):
    """Ctrl+C during a grade: every chapter process has been stopped and the run's databases dropped."""


def grade(selection: list[str] | None = None, *, target: str = "exercises",
          budget: float = CHAPTER_BUDGET, jobs: int | None = None,
          pytest_args: tuple[str, ...] = ()) -> tuple[Report, list[ChapterRun]]:
    """Grade the selected exercises (all by default) of `target` ("exercises" or "solutions").

    Returns the report and every chapter process that ran (a chapter whose process hung, crashed
    or was stopped by learner code runs again for the exercises it left ungraded).
    """
    cat = catalog.load()
    exercises = cat.select(selection or [])
    chapters = [c for c in cat.chapters if any(e.chapter.id == c.id for e in exercises)]
    env = _child_environment(target)
    jobs = jobs or max(1, min(len(chapters), os.cpu_count() or 1))
    processes = _Processes()
    with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch:
        preparation = _Preparation(chapters)
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="workbook-chapter")
        try:
            def run(chapter: catalog.Chapter) -> list[ChapterRun]:
                wanted = tuple(e.id for e in exercises if e.chapter.id == chapter.id)
                return _run_until_graded(chapter, wanted, env, Path(scratch), budget, pytest_args, preparation,
                                         processes)

            futures = [pool.submit(run, chapter) for chapter in chapters]
            runs = [attempt for future in futures for attempt in future.result()]
        except KeyboardInterrupt:
            processes.stop_all()
            raise GradingStopped() from None
        finally:
            pool.shutdown(wait=True)
            preparation.close()
    graded_by = {exercise_id: run for run in runs for exercise_id in run.selected}
    return Report(target=target, results=exercise_results(exercises, graded_by)), runs


def _run_until_graded(chapter: catalog.Chapter, wanted: tuple[str, ...], env: dict[str, str], scratch: Path,
                      budget: float, pytest_args: tuple[str, ...], preparation: _Preparation,
                      processes: _Processes) -> list[ChapterRun]:
    """Run the chapter; when its process hung, crashed or was stopped by learner code, run it again
    for the exercises that were not graded, without the one that broke it: a broken exercise
    costs only itself. Each run grades at least one more exercise, so this ends."""
    attempts: list[ChapterRun] = []
    select = wanted
    while select:
        attempt = _run_chapter(chapter, env, scratch, budget, pytest_args, preparation, processes,
                               select=select, number=len(attempts))
        attempts.append(attempt)
        if processes.stopped or attempt.environment:
            break
        culprits = set(unfinished_tests(attempt.log).values())
        left = tuple(e for e in select if e in unfinished_exercises(attempt) and e not in culprits)
        if not culprits or left == select:
            break
        select = left
    return attempts


class _Processes:
    """The chapter processes running now, so that Ctrl+C can stop them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopped = False

    def add(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(process)
            stopped = self.stopped
        if stopped:
            _kill_group(process)

    def remove(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(process)

    def stop_all(self) -> None:
        with self._lock:
            self.stopped = True
            running = list(self._running)
        for process in running:
            _kill_group(process)


class _Preparation:
    """What the chapters' processes need from the servers, made ready while they start.

    Resolving the servers takes about as long as a pytest process needs to start and collect its
    tests, so it happens in background threads; each process that needs servers reads its
    hand-off (`workbook.grading.handoff`) only after collecting. Each run database is dropped
    in `finish`, after its process has ended (also when it hung and was killed).
    """

    def __init__(self, chapters: list[catalog.Chapter]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workbook-prepare")
        needed = sorted({s for c in chapters for s in c.services})
        self._resolving = self._pool.submit(_resolve_services, needed)
        self._postgres: services.Service | None = None
        self._databases: dict[str, services.RunDatabase] = {}
        self._lock = threading.Lock()
        self._first_postgres = next((c.id for c in chapters if "postgres" in c.services), None)
        self._ready: dict[str, Future[str]] = {}

    def start(self, chapter: catalog.Chapter, write_fd: int) -> None:
        """Prepare `chapter`'s servers in the background and hand them to its process through `write_fd`."""
        self._ready[chapter.id] = self._pool.submit(self._prepare, chapter, write_fd)

    def _prepare(self, chapter: catalog.Chapter, write_fd: int) -> str:
        """Resolve, create the chapter's run database, hand both off; returns the problem, if any."""
        given = handoff.Handoff()
        postgres = None
        try:
            resolved, unavailable = self._resolving.result()
            given.problem = "\n".join(unavailable[s] for s in chapter.services if s in unavailable)
            given.services = {name: resolved[name] for name in chapter.services if name in resolved}
            postgres = given.services.get("postgres") if not given.problem else None
            if postgres is not None:
                db = services.new_run_database(postgres)
                # A spare that an earlier run made (fresh, never used) is renamed in milliseconds.
                if not services.claim_spare_database(postgres, db):
                    services.create_run_database(postgres, db, clean=False)
                with self._lock:
                    self._postgres = postgres
                    self._databases[chapter.id] = db
                given.database_url = db.url
        except services.ServiceUnavailable as error:
            given.problem = str(error)
        except Exception as error:  # unexpected: the chapter's process must not wait for nothing
            given.problem = f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        handoff.send(write_fd, given)
        if postgres is not None and chapter.id == self._first_postgres and not given.problem:
            self._pool.submit(self._housekeeping, postgres)  # after the hand-off, off the critical path
        return given.problem

    @staticmethod
    def _housekeeping(postgres: services.Service) -> None:
        """Once per grading run, while the chapters run: clean dead runs' leftovers, make a spare."""
        try:
            services.clean_stale_run_databases(postgres)
            services.make_spare_database(postgres)
        except Exception:  # a courtesy to later runs: never a reason for this one to fail
            pass

    def finish(self, chapter: catalog.Chapter) -> str:
        """After the chapter's process has ended: drop its run database; the problem, if any."""
        ready = self._ready.get(chapter.id)
        if ready is None:
            return ""
        try:
            problem = ready.result()
        except Exception as error:  # a bug in the preparation itself must not lose the report
            return f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        with self._lock:
            db = self._databases.pop(chapter.id, None)
        if db is not None and self._postgres is not None:
            try:
                services.drop_run_database(self._postgres, db)
            except Exception:  # noqa: BLE001 - clean-up must never cost the report
                # The server went away or dropped the connection mid-DROP (seen with the embedded
                # server on a machine at load 12); `python3 -m workbook services clean`, or the next
                # run's housekeeping, removes the database later.
                pass
        return problem

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for chapter_id in list(self._databases):
            self.finish(catalog.load().chapter(chapter_id))


def _child_environment(target: str) -> dict[str, str]:
    env = dict(os.environ)
    env["WORKBOOK_TARGET"] = target
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Compiled modules go to a cache folder of the workbook's own (never __pycache__ next to a
    # learner's file), so pytest and the grading modules are not compiled again on every run:
    # about 0.1 s a chapter. Learner files are never cached (see workbook.testing).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / ".workbook" / "pycache")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop(handoff.FD_VARIABLE, None)
    untrimmed_pytest_output(env)
    return env


def _resolve_services(needed: list[str]) -> tuple[dict[str, services.Service], dict[str, str]]:
    """Resolve each needed server once, for all chapter processes: name -> Service, name -> problem."""
    resolved: dict[str, services.Service] = {}
    unavailable: dict[str, str] = {}
    for name in needed:
        try:
            resolved[name] = services.resolve(name)
        except services.ServiceUnavailable as error:
            unavailable[name] = str(error)
    return resolved, unavailable


def _command(chapter: catalog.Chapter, results: Path, env: dict[str, str], pytest_args: tuple[str, ...]) -> list[str]:
    command = [sys.executable, "-m", "workbook.grading.child", str(chapter.test_file.relative_to(ROOT)),
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
    return command + list(pytest_args)


def _run_chapter(chapter: catalog.Chapter, env: dict[str, str], scratch: Path, budget: float,
                 pytest_args: tuple[str, ...], preparation: _Preparation, processes: _Processes, *,
                 select: tuple[str, ...], number: int = 0) -> ChapterRun:
    results = scratch / f"{chapter.stem}.{number}.jsonl"
    output = scratch / f"{chapter.stem}.{number}.out"
    if set(select) != {e.id for e in catalog.load().in_chapter(chapter.id)}:
        pytest_args = (*pytest_args, f"--workbook-select={','.join(select)}")
    env = dict(env)
    pass_fds: tuple[int, ...] = ()
    write_fd = -1
    if chapter.services:
        read_fd, write_fd = os.pipe()
        env[handoff.FD_VARIABLE] = str(read_fd)
        pass_fds = (read_fd,)
    started = time.perf_counter()
    with open(output, "wb") as sink:
        # stdin from /dev/null: a forgotten `breakpoint()` or `input()` in a learner's file reads
        # end-of-file and goes on. Output goes to a file: a forked grandchild that keeps it open
        # cannot make the grader wait.
        process = subprocess.Popen(_command(chapter, results, env, pytest_args), cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   pass_fds=pass_fds, start_new_session=True)
    processes.add(process)
    expired = threading.Event()

    def out_of_time() -> None:
        expired.set()
        _kill_group(process)

    # A timer, not `wait(timeout=...)`: that polls with sleeps of up to 50 ms, which a chapter
    # that ends in 0.3 s would pay after its last test; a blocking wait returns at its end.
    timer = threading.Timer(budget, out_of_time)
    timer.daemon = True
    try:
        if pass_fds:
            os.close(pass_fds[0])
            preparation.start(chapter, write_fd)
        timer.start()
        try:
            process.wait()
        finally:
            timer.cancel()
            _kill_group(process)  # whatever the chapter started and left behind goes with it
        timed_out = expired.is_set() and not processes.stopped
    finally:
        processes.remove(process)
        problem = preparation.finish(chapter)
    seconds = time.perf_counter() - started
    text = output.read_bytes()[-_OUTPUT_TAIL:].decode("utf-8", errors="replace")
    return ChapterRun(chapter=chapter, log=read_log(results), timed_out=timed_out, stopped=processes.stopped,
                      returncode=process.returncode, output=text, seconds=seconds, environment=problem,
                      budget=budget, selected=select)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the chapter's process group: its keeper, pytest, and anything they started."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
