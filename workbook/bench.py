"""Benchmarks for the quality bars of SPEC §8, measured in one run so that ratios hold on a noisy machine.

``python3 -m workbook dev bench [--runs N] [--json PATH]`` prints a table and, with --json, writes
the figures. Every figure is a whole-process wall time measured from outside, except the
breakdowns, which come from the grader's own records.

- chapter grading vs the pytest floor: ``python3 -m workbook grade NN --target solutions`` (the
  chapter solved) and ``grade NN`` (its untouched stubs) against
  ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -p asyncio`` running one trivial asyncio
  test, run alternately (A S B A S B ...), cold processes, median of N each; the bar is a ratio <= 2;
- one exercise of the slowest solved chapter, graded alone (bar <= 1.5x the floor);
- grading every solution (bar < 10 s), and where its time goes;
- nbval over every notebook (bar < 90 s);
- embedded servers: first start into an empty cache folder (bar < 3 s) and reuse (bar < 0.2 s);
- watch mode on the slowest solved chapter: from saving its exercise file (holding the solutions) to
  `python3 -m workbook watch NN` printing the verdict (bar < 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workbook import ROOT, catalog
from workbook.grading.records import Role

_FLOOR_TEST = "import asyncio\nimport pytest\n\n\n@pytest.mark.asyncio\nasync def test_trivial():\n    await asyncio.sleep(0)\n"

_EMBEDDED_PROBE = """
import json, sys, time
from workbook import services
figures = {}
for name in sys.argv[1:]:
    started = time.perf_counter()
    services.resolve(name)
    figures[name] = time.perf_counter() - started
print(json.dumps(figures))
"""


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    bar: str = ""
    ok: bool | None = None
    detail: str = ""


def _wall(command: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, completed.returncode


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WORKBOOK_TARGET", None)
    env.update(extra)
    return env


def chapter_vs_floor(chapter_id: str, runs: int, scratch: Path) -> list[Figure]:
    """The chapter solved (what a learner who is done waits for) and as untouched stubs, each against the floor."""
    floor_dir = scratch / "floor"
    floor_dir.mkdir(exist_ok=True)
    (floor_dir / "test_floor.py").write_text(_FLOOR_TEST, encoding="utf-8")
    floor = [sys.executable, "-m", "pytest", "-p", "asyncio", "-q", "-p", "no:cacheprovider", "test_floor.py"]
    floor_env = _environment(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    solved = [sys.executable, "-m", "workbook", "grade", chapter_id, "--target", "solutions"]
    stubs = [sys.executable, "-m", "workbook", "grade", chapter_id]
    grade_env = _environment()
    # one warm-up each: the first run pays for the file system cache, not for our code
    _wall(solved, env=grade_env)
    _wall(floor, cwd=floor_dir, env=floor_env)
    a, s, b = [], [], []
    for _ in range(runs):  # alternated, so that a noisy moment costs each command alike
        a.append(_wall(solved, env=grade_env)[0])
        s.append(_wall(stubs, env=grade_env)[0])
        b.append(_wall(floor, cwd=floor_dir, env=floor_env)[0])
    base = statistics.median(b)
    ratio, stub_ratio = statistics.median(a) / base, statistics.median(s) / base
    pairwise = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return [
        Figure(f"grade chapter {chapter_id} solved", statistics.median(a), "s", detail=f"min {min(a):.3f}, max {max(a):.3f}"),
        Figure(f"chapter {chapter_id} solved / pytest floor", ratio, "x", "<= 2", ratio <= 2,
               f"floor median {base:.3f} s; pairwise median {pairwise:.2f}x"),
        Figure(f"chapter {chapter_id} stubs / pytest floor", stub_ratio, "x", "<= 2", stub_ratio <= 2,
               f"stubs median {statistics.median(s):.3f} s"),
    ]


def one_exercise(chapter_id: str, runs: int, floor: float) -> list[Figure]:
    """Grading the last exercise of a chapter alone, solved: what a learner re-grading one exercise waits for."""
    exercise = catalog.load().in_chapter(chapter_id)[-1]
    command = [sys.executable, "-m", "workbook", "grade", exercise.id, "--target", "solutions"]
    _wall(command, env=_environment())
    walls = [_wall(command, env=_environment())[0] for _ in range(runs)]
    ratio = statistics.median(walls) / floor
    return [Figure(f"grade {exercise.id} alone, solved / floor", ratio, "x", "<= 1.5", ratio <= 1.5,
                   f"median {statistics.median(walls):.3f} s; {exercise.id} of the slowest solved chapter")]


def grade_everything(runs: int) -> list[Figure]:
    from workbook.grading import runner

    command = [sys.executable, "-m", "workbook", "grade", "--target", "solutions"]
    walls = [_wall(command, env=_environment())[0] for _ in range(runs)]
    figures = [Figure("grade every solution", statistics.median(walls), "s", "< 10", statistics.median(walls) < 10,
                      f"{runs} runs, min {min(walls):.2f}, max {max(walls):.2f}")]
    # Where the time goes, from one in-process run: per chapter, and inside the chapters.
    from workbook import services

    needed = sorted({s for c in catalog.load().chapters for s in c.services})
    started = time.perf_counter()
    for name in needed:
        services.resolve(name)
    figures.append(Figure("  resolving servers", time.perf_counter() - started, "s",
                          detail=f"{', '.join(needed) or 'none'}; overlapped with the chapters' start-up"))
    _report, chapter_runs = runner.grade(target="solutions")
    for run in chapter_runs:
        tests = sum(r.duration for r in run.log.records)
        mutants = sum(r.duration for r in run.log.records if r.role is Role.MUTANT)
        figures.append(Figure(f"  chapter {run.chapter.id} process", run.seconds, "s",
                              detail=f"tests {tests:.2f} s (mutant runs {mutants:.2f} s); "
                                     f"start-up and collection {max(0.0, run.seconds - tests):.2f} s"))
    return figures


def notebooks() -> list[Figure]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "notebooks",
               "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-o", "timeout=120", "-q"]
    wall, code = _wall(command, env=_environment())
    count = len(list((ROOT / "notebooks").glob("*.ipynb")))
    return [Figure("nbval, every notebook", wall, "s", "< 90", wall < 90 and code == 0,
                   f"{count} notebooks; exit code {code}")]


def embedded(scratch: Path) -> list[Figure]:
    """First start into an empty cache folder, then reuse by a new process; each server on its own.

    The figure is the time `services.resolve()` takes in a fresh process; the detail adds the
    whole process (Python start-up and the workbook's imports included), measured from outside.
    """
    env = _environment(WORKBOOK_SERVICES="embedded", WORKBOOK_CACHE_DIR=str(scratch / "cache"))
    figures = []
    try:
        for name in ("postgres", "redis"):
            for label, bar, limit in (("first start", "< 3", 3.0), ("reuse", "< 0.2", 0.2)):
                started = time.perf_counter()
                output = subprocess.run([sys.executable, "-c", _EMBEDDED_PROBE, name], cwd=ROOT, env=env,
                                        capture_output=True, text=True, check=True).stdout
                whole = time.perf_counter() - started
                seconds = json.loads(output.strip().splitlines()[-1])[name]
                figures.append(Figure(f"embedded {name}: {label}", seconds, "s", bar, seconds < limit,
                                      f"services.resolve() in a new process; whole process {whole:.3f} s"))
    finally:
        subprocess.run([sys.executable, "-m", "workbook", "services", "stop"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    return figures


def watch(scratch: Path, runs: int, chapter_id: str) -> list[Figure]:
    """Save -> verdict: how long after a save `python3 -m workbook watch NN` prints the new score.

    On `chapter_id` (the slowest solved chapter) with its solutions in exercises/: the save a learner
    who is nearly done makes, and the longest wait of watch mode.
    """
    from workbook.sandbox import copy_workbook

    root = copy_workbook(scratch / "watch-copy")
    chapter = catalog.load().chapter(chapter_id)
    target = root / "exercises" / f"{chapter.stem}.py"
    target.write_text((root / "solutions" / f"{chapter.stem}.py").read_text(encoding="utf-8"), encoding="utf-8")
    env = _environment(WORKBOOK_NO_BOOTSTRAP="1")
    process = subprocess.Popen([sys.executable, "-m", "workbook", "watch", chapter.id], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    latencies = []
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "Watching ..."
        for _ in range(runs):
            time.sleep(0.5)  # a learner does not save twice in a blink
            started = time.perf_counter()
            target.write_text(target.read_text(encoding="utf-8") + "\n", encoding="utf-8")
            for line in process.stdout:
                if line.startswith("Score:"):
                    latencies.append(time.perf_counter() - started)
                    break
    finally:
        process.terminate()
        process.wait(timeout=10)
    median = statistics.median(latencies)
    return [Figure(f"watch mode: save -> verdict, chapter {chapter.id} solved", median, "s", "< 1", median < 1,
                   f"{len(latencies)} saves, min {min(latencies):.2f}, max {max(latencies):.2f}")]


def render(figures: list[Figure]) -> str:
    lines = [f"{'figure':<44} {'value':>10}  {'bar':<7} {'':<4} detail"]
    for f in figures:
        verdict = "" if f.ok is None else ("ok" if f.ok else "MISS")
        value = f"{f.value:.3f} {f.unit}" if f.unit == "s" else f"{f.value:.2f}{f.unit}"
        lines.append(f"{f.name:<44} {value:>10}  {f.bar:<7} {verdict:<4} {f.detail}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m workbook dev bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold runs per timed command (default 5)")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapters to time against the floor (default: all)")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    chapters = args.chapters or [c.id for c in catalog.load().chapters]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="workbook-bench-") as scratch:
        for chapter_id in chapters:
            figures += chapter_vs_floor(chapter_id, args.runs, Path(scratch))
            print(render(figures[-3:]).split("\n", 1)[1], flush=True)
        solved = {f.name.split()[2]: f for f in figures if f.name.endswith(" solved") and f.unit == "s"}
        slowest = max(solved, key=lambda c: solved[c].value)
        floor = solved[slowest].value / next(f.value for f in figures if f.name == f"chapter {slowest} solved / pytest floor")
        print(f"slowest solved chapter: {slowest}", flush=True)
        figures += one_exercise(slowest, args.runs, floor)
        figures += grade_everything(max(1, min(args.runs, 3)))
        if not args.skip_notebooks:
            figures += notebooks()
        figures += embedded(Path(scratch))
        figures += watch(Path(scratch), args.runs, slowest)
    print()
    print(render(figures))
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2, default=str) + "\n", encoding="utf-8")
    missed = [f.name for f in figures if f.ok is False]
    if missed:
        print("\nBars missed: " + "; ".join(missed))
    return 1 if missed else 0
