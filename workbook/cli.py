"""The command line: parse arguments, call the module that does the work, print.

    python3 -m workbook open                 set up, start services, open JupyterLab on notebooks/
    python3 -m workbook grade [ID|CHAPTER ...] [--target exercises|solutions] [--json PATH]
    python3 -m workbook watch [ID|CHAPTER]   grade again on every save
    python3 -m workbook hint ID              the next hint for an exercise
    python3 -m workbook progress             what you have done so far
    python3 -m workbook list [--json]        the exercise catalog
    python3 -m workbook pytest [ARGS]       run pytest inside .venv with the workbook's fixtures
    python3 -m workbook collect REPORT...    instructors: combine learners' JSON reports
    python3 -m workbook doctor               which servers are used, and how to fix what is missing
    python3 -m workbook services start|stop|status|clean
    python3 -m workbook test                 the full test suite (what CI runs)
    python3 -m workbook dev stubs|check|notebooks|bench|reliability   maintainer commands

Exit codes: 0 success; 1 some exercise not passed (or a check failed); 2 bad usage;
3 the environment (a server) is the problem, not the learner's code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from workbook import ROOT, catalog

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


class UsageProblem(Exception):
    """Bad input from the user; the message says what to type instead."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["dev", "bench"]:  # maintainer scripts with options of their own
        from workbook import bench

        return bench.main(argv[2:])
    if argv[:2] == ["dev", "reliability"]:
        from workbook import reliability

        return reliability.main(argv[2:])
    if argv[:1] == ["pytest"]:  # every option after it is pytest's own
        return _pytest(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or 0)
    except (UsageProblem, catalog.UnknownSelection) as problem:
        print(f"Error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m workbook", description="The Async Testing Workbook.")
    commands = parser.add_subparsers(metavar="COMMAND")

    grade = commands.add_parser("grade", help="grade exercises (all, or the ids/chapters given)")
    grade.add_argument("selection", nargs="*", metavar="ID|CHAPTER", help="e.g. 02.1 or 02; default: everything")
    grade.add_argument("--target", choices=("exercises", "solutions"), default="exercises",
                       help="grade your exercises/ (default) or the reference solutions/")
    grade.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON report to PATH")
    grade.add_argument("--random-order", type=int, metavar="SEED",
                       help="run the grading tests in a random order drawn from SEED (maintainers: reliability checks)")
    grade.set_defaults(handler=_grade)

    watch = commands.add_parser("watch", help="grade a chapter again every time you save its exercise file")
    watch.add_argument("selection", nargs="*", metavar="ID|CHAPTER", help="what to grade on save; default: everything")
    watch.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)
    watch.set_defaults(handler=_watch)

    listing = commands.add_parser("list", help="list the exercises")
    listing.add_argument("--json", action="store_true", help="print the catalog as JSON")
    listing.set_defaults(handler=_list)

    hint = commands.add_parser("hint", help="show the next hint for an exercise")
    hint.add_argument("id", help="exercise id, e.g. 02.1")
    hint.add_argument("--all", action="store_true", help="show every hint at once")
    hint.set_defaults(handler=_hint)

    collect = commands.add_parser("collect", help="instructors: combine learners' JSON reports into one table")
    collect.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json",
                         help="reports written by `grade --json`; each file's name is taken as the learner's name")
    collect.add_argument("--csv", type=Path, metavar="PATH", help="also write the table as CSV")
    collect.set_defaults(handler=_collect)

    progress = commands.add_parser("progress", help="show your progress from your last gradings")
    progress.set_defaults(handler=_progress)

    doctor = commands.add_parser("doctor", help="check Python, packages and servers; say how to fix problems")
    doctor.set_defaults(handler=_doctor)

    services = commands.add_parser("services", help="start, stop, inspect or clean up the servers")
    services.add_argument("action", choices=("start", "stop", "status", "clean"))
    services.set_defaults(handler=_services)

    open_ = commands.add_parser("open", help="start the servers and open JupyterLab on notebooks/")
    open_.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    open_.add_argument("--port", type=int, default=None, help="port for JupyterLab (default: Jupyter's choice)")
    open_.set_defaults(handler=_open)

    commands.add_parser("pytest", help="run pytest with the workbook's fixtures, e.g. on your own tests "
                                       "(`pytest exercises/03_asyncpg.py -k test_account`)")
    test = commands.add_parser("test", help="run the full test suite (what CI runs)")
    test.add_argument("--quick", action="store_true", help="skip the notebooks (nbval) and the reliability runs")
    test.set_defaults(handler=_test)

    dev = commands.add_parser("dev", help="maintainer commands")
    dev.add_argument("action", choices=("stubs", "check", "notebooks", "bench", "reliability"),
                     help="stubs: regenerate exercises/ from solutions/; check: validate catalog and stubs; "
                          "notebooks: refresh generated cells and re-execute (all, or the chapters given); "
                          "bench: measure the quality bars (`dev bench --help`); "
                          "reliability: repeated, random-order, concurrent and killed runs (`dev reliability --help`)")
    dev.add_argument("chapters", nargs="*", help="for `stubs` and `notebooks`: chapter ids, e.g. 02 (default: all)")
    dev.add_argument("--no-execute", action="store_true",
                     help="for `notebooks`: only refresh the generated markdown cells (nav, exercises, contents)")
    dev.set_defaults(handler=_dev)
    return parser


# --- grade, list, hint, progress ----------------------------------------------------------------

def _grade(args: argparse.Namespace) -> int:
    from workbook.grading import runner as grader
    from workbook.progress import remember
    from workbook.report import preload, render

    cat = catalog.load()
    selected = cat.select(args.selection)  # raises UnknownSelection with suggestions
    preload()
    chapters = sorted({e.chapter.id for e in selected})
    if len(chapters) > 1:
        print(f"Grading {len(selected)} exercises in {len(chapters)} chapters of {args.target}/ ...", file=sys.stderr)
    order = () if args.random_order is None else (f"--workbook-random-order={args.random_order}",)
    report, _runs = grader.grade(args.selection, target=args.target, pytest_args=order)
    print(render(report, cat))
    if args.json:
        report.write_json(args.json)
        print(f"JSON report written to {args.json}", file=sys.stderr)
    remember(report)
    if report.all_passed:
        return EXIT_OK
    return EXIT_ENVIRONMENT if report.environment_problem else EXIT_FAILED


def _watch(args: argparse.Namespace) -> int:
    from workbook.grading import runner as grader
    from workbook.progress import remember
    from workbook.report import render

    cat = catalog.load()
    selected = cat.select(args.selection)
    files = {e.chapter.exercise_file: e.chapter for e in selected}

    def stamp(path: Path) -> float:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return 0

    seen = {path: stamp(path) for path in files}
    names = ", ".join(sorted(p.relative_to(ROOT).as_posix() for p in files))
    print(f"Watching {names}. Save a file to grade it; stop with Ctrl+C.", flush=True)
    while True:
        time.sleep(args.interval)
        changed = [path for path in files if stamp(path) != seen[path]]
        if not changed:
            continue
        for path in changed:
            seen[path] = stamp(path)
        chapter_ids = {files[path].id for path in changed}
        wanted = [e.id for e in selected if e.chapter.id in chapter_ids]
        print(f"\n── {time.strftime('%H:%M:%S')} {', '.join(p.name for p in changed)} changed: grading {', '.join(sorted(chapter_ids))}",
              flush=True)
        report, _runs = grader.grade(wanted, target="exercises")
        print(render(report, cat), flush=True)
        remember(report)


def _list(args: argparse.Namespace) -> int:
    cat = catalog.load()
    if args.json:
        print(json.dumps([e.as_dict() for e in cat.exercises], indent=2))
        return EXIT_OK
    for chapter in cat.chapters:
        print(f"{chapter.id}  {chapter.title}    (notebooks/{chapter.stem}.ipynb)")
        for e in cat.in_chapter(chapter.id):
            stars = "★" * e.difficulty + "☆" * (3 - e.difficulty)
            print(f"    {e.id:<6} {e.kind:<9} {stars}  {e.points:>2} pts  {e.title}")
    return EXIT_OK


def _hint(args: argparse.Namespace) -> int:
    from workbook.progress import State

    exercise = catalog.load().exercise(_exercise_id(args.id))
    if args.all:
        for number, text in enumerate(exercise.hints, start=1):
            print(f"Hint {number}/{len(exercise.hints)} for {exercise.id} ({exercise.title}):\n  {text}\n")
        return EXIT_OK
    state = State.load()
    number, text = state.next_hint(exercise.id, exercise.hints)
    state.save()
    print(f"Hint {number}/{len(exercise.hints)} for {exercise.id} ({exercise.title}):\n  {text}")
    if number < len(exercise.hints):
        print(f"\nStill stuck? Run `python3 -m workbook hint {exercise.id}` again for the next one.")
    else:
        print(f"\nThat was the last hint. The reference solution is in solutions/{exercise.chapter.stem}.py.")
    return EXIT_OK


def _collect(args: argparse.Namespace) -> int:
    from workbook import room

    rows, problems = room.read_reports(args.reports)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not rows:
        raise UsageProblem("none of the files given is a workbook report.")
    ids = [e.id for e in catalog.load().exercises]
    print("\n".join(room.table(ids, rows)))
    print(room.LEGEND)
    print()
    print(room.summary(ids, rows))
    if args.csv:
        room.write_csv(args.csv, ids, rows)
        print(f"CSV written to {args.csv}", file=sys.stderr)
    return EXIT_OK


def _exercise_id(token: str) -> str:
    cat = catalog.load()
    matches = cat.select([token])
    if len(matches) != 1:
        raise UsageProblem(f"{token!r} is a chapter; give one exercise id, e.g. {matches[0].id}.")
    return matches[0].id


def _progress(_args: argparse.Namespace) -> int:
    from workbook.progress import State, overview

    print(overview(State.load(), catalog.load()))
    return EXIT_OK


def _pytest(args: list[str]) -> int:
    """pytest inside .venv, with the workbook's fixtures; e.g. your own tests of a `test` exercise."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "asyncio", "-p", "timeout", "-p", "aiohttp",
               "-p", "workbook.pytest_plugin", *args]
    return subprocess.call(command, cwd=ROOT, env=env)


# --- servers ------------------------------------------------------------------------------------

def _doctor(_args: argparse.Namespace) -> int:
    from workbook import services

    marks = {"ok": "✔", "warn": "!", "fail": "✘"}
    print(f"✔ Python {sys.version.split()[0]} at {sys.executable}")
    lines = services.doctor_lines()
    for status, line in lines:
        print(f"{marks.get(status, '?')} {line}")
    return EXIT_ENVIRONMENT if any(status == "fail" for status, _ in lines) else EXIT_OK


def _services(args: argparse.Namespace) -> int:
    from workbook import services

    if args.action == "stop":
        lines = services.stop_embedded()
    elif args.action == "status":
        lines = services.embedded_status()
    elif args.action == "clean":
        lines = services.clean_stale()
    else:
        lines = []
        for name in ("postgres", "redis"):
            try:
                service = services.resolve(name)
            except services.ServiceUnavailable as problem:
                print(problem, file=sys.stderr)
                return EXIT_ENVIRONMENT
            lines.append(f"{name}: {service.masked_url} ({service.source}: {service.reason})")
    print("\n".join(lines) or "Nothing to do.")
    return EXIT_OK


def _service_environment() -> dict[str, str]:
    """The environment with DATABASE_URL/REDIS_URL set to the servers in use (embedded ones started)."""
    from workbook import services

    env = dict(os.environ)
    for name, variable in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        try:
            service = services.resolve(name)
        except services.ServiceUnavailable as problem:
            print(f"! {problem}", file=sys.stderr)
            continue
        env[variable] = service.url
        print(f"✔ {name}: {service.masked_url} ({service.reason})", file=sys.stderr)
    return env


def _open(args: argparse.Namespace) -> int:
    env = _service_environment()
    # The whole workbook is visible (exercises/ is edited next to notebooks/); the welcome chapter opens first.
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}",
               "--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb"]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses without this
        command.append("--allow-root")
    if args.port:
        command.append(f"--port={args.port}")
    print("Opening JupyterLab: start with notebooks/00_welcome.ipynb (stop it with Ctrl+C) ...", file=sys.stderr)
    return subprocess.call(command, env=env, cwd=ROOT)


# --- the full test suite ------------------------------------------------------------------------

def _test(args: argparse.Namespace) -> int:
    from workbook import suite

    return suite.run(_service_environment(), quick=args.quick)


def _dev(args: argparse.Namespace) -> int:
    from workbook import stubs

    if args.action == "notebooks":
        from workbook import nbtools

        for path in nbtools.build(args.chapters, execute=not args.no_execute):
            print(f"{'refreshed' if args.no_execute else 'executed and stored'} {path.relative_to(ROOT)}")
        return EXIT_OK
    if args.action == "stubs":
        cat = catalog.load()
        stems = {cat.chapter(c.zfill(2)).stem for c in args.chapters} if args.chapters else None
        changed = stubs.write_stubs(stems=stems)
        print("\n".join(f"wrote {p.relative_to(ROOT)}" for p in changed) or "exercises/ already up to date.")
        return EXIT_OK
    from workbook import contract

    problems = catalog.problems() + contract.problems() + [
        f"{p.relative_to(ROOT)} differs from what its solution generates"
        for p, text in stubs.expected_stubs().items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if not problems:  # the grading of the reference tests is worth running only on a sound contract
        problems = contract.mutants_missed()
    print("\n".join(f"✘ {p}" for p in problems)
          or "✔ catalog valid; every promise is stated, checked (or broken by a mutant the reference tests catch); "
             "exercises/ match solutions/")
    return EXIT_FAILED if problems else EXIT_OK
