"""Run the grading tests: one pytest process per chapter (or per part of it), watched, and always cleaned up.

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
- a chapter graded alone, on several cores, puts each `test`-kind exercise with many mutants in a
  process of its own (`_parts`): `grade 04 --target solutions` 10.0 -> 7.0 s, median of 3 alternated
  runs at load 4 on 2 cores, same reports;
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
    cores = os.cpu_count() or 1
    parts = [(chapter, part) for chapter in chapters
             for part in _parts([e for e in exercises if e.chapter.id == chapter.id], cores if len(chapters) == 1 else 1)]
    jobs = jobs or max(1, min(len(parts), cores))
    processes = _Processes()
    with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch:
        preparation = _Preparation(chapters)
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="workbook-chapter")
        try:
            def run(chapter: catalog.Chapter, wanted: tuple[str, ...], part: int) -> list[ChapterRun]:
                return _run_until_graded(chapter, wanted, env, Path(scratch), budget, pytest_args, preparation,
                                         processes, part=part)

            futures = [pool.submit(run, chapter, wanted, number) for number, (chapter, wanted) in enumerate(parts)]
            runs = [attempt for future in futures for attempt in future.result()]
        except KeyboardInterrupt:
            processes.stop_all()
            raise GradingStopped() from None
        finally:
            pool.shutdown(wait=True)
            preparation.close()
    graded_by = {exercise_id: run for run in runs for exercise_id in run.selected}
    return Report(target=target, results=exercise_results(exercises, graded_by)), runs


#: Mutants a `test`-kind exercise must have for grading its chapter alone to use a second process
#: (one more pytest start-up, ~0.4 s of CPU, pays only where the mutant runs wait for servers).
_SPLIT_FROM_MUTANTS = 8


def _parts(exercises: list[catalog.Exercise], cores: int) -> list[tuple[str, ...]]:
    """The chapter's selected exercises in groups, one process each: one group, unless the chapter is
    graded alone on several cores and has a `test`-kind exercise with many mutants. Then such
    exercises get processes of their own, heaviest first, and the rest share one, so that the mutant
    runs of one exercise wait for their servers while the others are graded.
    Measured in `dev bench`; WORKBOOK_SPLIT=0 turns it off.
    """
    ids = tuple(e.id for e in exercises)
    heavy = sorted((e for e in exercises if e.kind == "test" and len(e.mutants) >= _SPLIT_FROM_MUTANTS),
                   key=lambda e: -len(e.mutants))[:max(0, cores - 1)]
    if cores < 2 or not heavy or len(exercises) < 2 or os.environ.get("WORKBOOK_SPLIT") == "0":
        return [ids]
    rest = tuple(i for i in ids if i not in {e.id for e in heavy})
    return [*((e.id,) for e in heavy), *((rest,) if rest else ())]


def _run_until_graded(chapter: catalog.Chapter, wanted: tuple[str, ...], env: dict[str, str], scratch: Path,
                      budget: float, pytest_args: tuple[str, ...], preparation: _Preparation,
                      processes: _Processes, *, part: int = 0) -> list[ChapterRun]:
    """Run the chapter; when its process hung, crashed or was stopped by learner code, run it again
    for the exercises that were not graded, without the one that broke it: a broken exercise
    costs only itself. Each run grades at least one more exercise, so this ends."""
    attempts: list[ChapterRun] = []
    select = wanted
    while select:
        attempt = _run_chapter(chapter, env, scratch, budget, pytest_args, preparation, processes,
                               select=select, number=len(attempts), part=part)
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
        #: run key (one process of a chapter, see `_run_chapter`) -> its run database
        self._databases: dict[str, services.RunDatabase] = {}
        self._lock = threading.Lock()
        self._housekept = False
        self._ready: dict[str, Future[str]] = {}

    def start(self, chapter: catalog.Chapter, key: str, write_fd: int) -> None:
        """Prepare the servers of `chapter`'s process `key` in the background; hand them over through `write_fd`."""
        self._ready[key] = self._pool.submit(self._prepare, chapter, key, write_fd)

    def _prepare(self, chapter: catalog.Chapter, key: str, write_fd: int) -> str:
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
                    self._databases[key] = db
                given.database_url = db.url
        except services.ServiceUnavailable as error:
            given.problem = str(error)
        except Exception as error:  # unexpected: the chapter's process must not wait for nothing
            given.problem = f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        handoff.send(write_fd, given)
        with self._lock:
            housekeeping = postgres is not None and not given.problem and not self._housekept
            self._housekept = self._housekept or housekeeping
        if housekeeping:  # once per grading run, after the first hand-off, off the critical path
            self._pool.submit(self._housekeeping, postgres)
        return given.problem

    @staticmethod
    def _housekeeping(postgres: services.Service) -> None:
        """Once per grading run, while the chapters run: clean dead runs' leftovers, make a spare."""
        try:
            services.clean_stale_run_databases(postgres)
            services.make_spare_database(postgres)
        except Exception:  # a courtesy to later runs: never a reason for this one to fail
            pass

    def finish(self, key: str) -> str:
        """After the process `key` has ended: drop its run database; the problem, if any."""
        ready = self._ready.get(key)
        if ready is None:
            return ""
        try:
            problem = ready.result()
        except Exception as error:  # a bug in the preparation itself must not lose the report
            return f"The workbook could not prepare the servers: {type(error).__name__}: {error}"
        with self._lock:
            db = self._databases.pop(key, None)
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
        for key in list(self._databases):
            self.finish(key)


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
                 select: tuple[str, ...], number: int = 0, part: int = 0) -> ChapterRun:
    """One process for the `select`ed exercises of `chapter`: attempt `number` of its group `part`."""
    key = f"{chapter.id}.{part}.{number}"
    results = scratch / f"{chapter.stem}.{part}.{number}.jsonl"
    output = scratch / f"{chapter.stem}.{part}.{number}.out"
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
            preparation.start(chapter, key, write_fd)
        timer.start()
        try:
            process.wait()
        finally:
            timer.cancel()
            _kill_group(process)  # whatever the chapter started and left behind goes with it
        timed_out = expired.is_set() and not processes.stopped
    finally:
        processes.remove(process)
        problem = preparation.finish(key)
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
