"""The full test suite: ``python3 -m workbook test``, and the other Pythons CI checks.

``python3 -m workbook test [--quick]`` runs, with the Python it runs on:

1. the catalog and stub checks;
2. the tooling's own tests (``workbook/tests``);
3. the grading suite on the solutions, as a plain ``pytest tests`` with warnings as errors;
4. the short form of the reliability checks (not with ``--quick``);
5. nbval in strict mode on every notebook (not with ``--quick``).

The notebooks' stored outputs were made against untouched stubs (the grading cells say "not
started"), so nbval runs in a throw-away copy of the workbook whose ``exercises/`` are freshly
generated stubs: the suite then passes in a learner's checkout too, whatever they have solved.

``python3 -m workbook.suite --other-pythons`` (what ``.ci/run`` adds) checks every other supported
Python minor the machine has: a fresh virtual environment outside the repository, the requirements
installed from wheels only, the grading suite on the solutions, the untouched stubs all
``not_started``, and nbval. It needs nothing but the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from workbook import ROOT

EXIT_OK, EXIT_FAILED = 0, 1

#: The Python minors the workbook supports and CI checks (README, SPEC §1).
SUPPORTED_MINORS = ((3, 11), (3, 12), (3, 13))
#: The oldest patch release that works (kept in step with workbook/_bootstrap.py).
MINIMUM = (3, 11, 3)
#: A requirement that has no wheel for some supported Python yet, tolerated there only.

_NBVAL = ["--nbval", "notebooks", "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-o", "timeout=120", "-q"]
_STEP_TIMEOUT = 20 * 60  # seconds; a hung step fails CI instead of eating its whole budget


# --- python3 -m workbook test -------------------------------------------------------------------------

def run(env: dict[str, str], quick: bool = False) -> int:
    """The full test suite with the current Python; 0 when every check passed.

    `env`: the environment for the steps, with DATABASE_URL/REDIS_URL naming the servers in use.
    """
    from workbook import catalog, contract

    print(f"Python {sys.version.split()[0]} at {sys.executable}", flush=True)
    env = {k: v for k, v in env.items() if k != "WORKBOOK_TARGET"}
    python = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=yes"]
    suite = Suite()

    print("== catalog and stubs", flush=True)
    problems = catalog.problems() + contract.problems() + [
        f"{p.relative_to(ROOT)} is out of date: run `python3 -m workbook dev stubs`" for p in stale_stubs()]
    for problem in problems:
        print(f"  ✘ {problem}")
    if problems:
        suite.failures.append("catalog and stubs")
    else:
        print("  ✔ catalog valid; every promise is stated and checked (the reference tests' catching of every mutant "
              "is the grading suite's step below); every stub in exercises/ is generated from its current solution")

    # Two workers per core, each taking the next test as it gets free: the tests mostly wait for
    # the grading processes they start (2 cores: 3 workers, load 229 s; 4 workers, worksteal 186 s).
    workers = str(2 * (os.cpu_count() or 1))
    suite.step("tooling: the workbook's own tests",
               python + ["workbook/tests", "-q", "-n", workers, "--dist", "worksteal"], env)
    # -W error: the reference solutions must not warn (deprecations, unclosed sessions, never-awaited coroutines)
    suite.step("grading suite on solutions/ (plain `pytest tests/`, warnings as errors)",
               python + ["tests", "-q", "-W", "error"], {**env, "WORKBOOK_TARGET": "solutions"})
    if not quick:
        suite.step("reliability, short form (repeats, random order, concurrent and killed runs)",
                   [sys.executable, "-m", "workbook", "dev", "reliability", "--short"], env)
        with pristine_copy() as copy:
            suite.step("notebooks: nbval, strict (in a copy with untouched stubs)", python + _NBVAL,
                       _importing(copy, env), cwd=copy)
    return suite.verdict()


@dataclass
class Suite:
    """Runs the steps, says how each went, and collects the ones that failed."""

    failures: list[str] = field(default_factory=list)
    #: where the steps and their commands write; None: this process's stdout (live)
    out: IO[str] | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def step(self, title: str, command: list[str], env: dict[str, str], *, cwd: Path = ROOT,
             allowed: tuple[int, ...] = (0,), record: bool = True) -> bool:
        """Run one command; True when its exit code is `allowed`. `record=False`: a failure the caller handles."""
        self.say(f"\n== {title}\n$ {' '.join(_shown(command))}")
        started = time.perf_counter()
        streams = {"stdout": self.out, "stderr": subprocess.STDOUT} if self.out else {}
        try:
            code: int | str = subprocess.call(command, cwd=cwd, env=env, timeout=_STEP_TIMEOUT, **streams)
        except subprocess.TimeoutExpired:
            code = f"still running after {_STEP_TIMEOUT} s, stopped"
        ok = code in allowed
        verdict = "passed" if ok else f"FAILED (exit {code})" if record else f"did not pass (exit {code})"
        self.say(f"-- {title}: {verdict} in {time.perf_counter() - started:.1f} s")
        if not ok and record:
            self.failures.append(title)
        return ok

    def verdict(self) -> int:
        print()
        if self.failures:
            print("FAILED: " + "; ".join(self.failures))
            return EXIT_FAILED
        print("All checks passed.")
        return EXIT_OK


def _shown(command: list[str]) -> list[str]:
    """The command as printed: an interpreter's path is long and says nothing the header does not."""
    return ["python", *command[1:]] if command and Path(command[0]).name.startswith("python") else command


def _importing(copy: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` in which Python (and every notebook kernel) imports the workbook from `copy`.

    PYTHONPATH comes before site-packages, so it wins over the .pth file that points .venv at ROOT.
    """
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(copy), env.get("PYTHONPATH")])),
            "WORKBOOK_NO_BOOTSTRAP": "1"}


@contextlib.contextmanager
def pristine_copy() -> Iterator[Path]:
    """A throw-away copy of the workbook with untouched stubs in exercises/ (see workbook/sandbox.py)."""
    from workbook.sandbox import copy_workbook

    folder = Path(tempfile.mkdtemp(prefix="workbook-pristine-"))
    try:
        yield copy_workbook(folder / "workbook-copy")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- stale stubs ------------------------------------------------------------------------------------

def stale_stubs(root: Path = ROOT) -> list[Path]:
    """Exercise files whose solution generates a stub that was never committed nor is in the work tree.

    A maintainer who edits a solution runs `dev stubs` and commits the new stub with it. A learner
    then edits the exercise file, and may commit those edits. So the stub a solution generates is
    up to date when it is the file in the work tree, or when it is one of the file's versions in
    git's history; it is stale only when it is neither (a solution changed and `dev stubs` was
    forgotten). Outside a git checkout there is no history to tell a learner's edit from a stale
    stub, so only the work tree counts and an edited file is not reported.
    """
    from workbook import stubs

    expected = stubs.expected_stubs(root)
    history = _committed_versions(root, list(expected))
    stale = []
    for path, text in expected.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if history is None:
            continue
        if _blob_id(text, history.object_format) not in history.blobs.get(path, set()):
            stale.append(path)
    return stale


@dataclass
class _History:
    object_format: str  # "sha1" or "sha256"
    blobs: dict[Path, set[str]]  # file -> ids of every version committed in HEAD's history


def _committed_versions(root: Path, paths: list[Path]) -> _History | None:
    """Every committed version of each path (git blob ids), or None outside a git checkout."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout if result.returncode == 0 else None

    object_format = (git("rev-parse", "--show-object-format") or "").strip() or "sha1"
    relative = [p.relative_to(root).as_posix() for p in paths]
    log = git("log", "--format=", "--raw", "--no-abbrev", "--no-renames", "--", *relative)
    if log is None:
        return None
    blobs: dict[Path, set[str]] = {}
    # --raw lines: ":100644 100644 <old blob> <new blob> M<TAB>path"
    for line in log.splitlines():
        match = re.match(r"^:\d+ \d+ [0-9a-f]+ ([0-9a-f]+) \w+\t(.+)$", line)
        if match:
            blobs.setdefault(root / match[2], set()).add(match[1])
    return _History(object_format, blobs)


def _blob_id(text: str, object_format: str) -> str:
    """The id git gives a file with this text (what `git hash-object` prints)."""
    data = text.encode("utf-8")
    return hashlib.new(object_format, b"blob %d\0" % len(data) + data).hexdigest()


# --- python3 -m workbook.suite --other-pythons ---------------------------------------------------

def other_pythons(minors: tuple[tuple[int, int], ...] = SUPPORTED_MINORS) -> int:
    """Check every supported Python minor other than this one that the machine has; 0 when all passed.

    The Pythons are checked side by side, each writing to a log of its own that is printed whole
    when it ends: their steps wait on servers and kernels more than on the CPU (measured on 2
    cores: 3.12 and 3.13 one after the other 190 s, side by side 119 s).
    """
    current = sys.version_info[:2]
    ran, skipped, found = [f"{sys.version.split()[0]} (the full suite, `python3 -m workbook test`)"], [], []
    for minor in minors:
        if minor == current:
            continue
        name = "%d.%d" % minor
        python = find_python(minor)
        if isinstance(python, str):
            print(f"\n== Python {name}: SKIPPED: {python}", flush=True)
            skipped.append(f"{name} ({python})")
        else:
            found.append(python)
    print(f"\nChecking {', '.join(version for _, version in found) or 'no other Python'} side by side; "
          "each one's log follows when it ends.", flush=True)
    with tempfile.TemporaryDirectory(prefix="workbook-pythons-") as folder, ThreadPoolExecutor(max(1, len(found))) as pool:
        def check(python: Path, version: str) -> Suite:
            with open(Path(folder) / f"{version}.log", "w+", encoding="utf-8") as log:
                suite = Suite(out=log)
                try:
                    _check_python(suite, python, version)
                except Exception as problem:  # noqa: BLE001 - one Python's crash must not hide the others' logs
                    suite.say(f"-- {version}: the check itself crashed: {problem!r}")
                    suite.failures.append(f"{version}: the check itself crashed")
                log.seek(0)
                print(f"\n==== Python {version} ({python}) ====\n{log.read()}", end="", flush=True)
                return suite
        suites = [pool.submit(check, python, version) for python, version in found]
        failures = []
        for (_, version), future in zip(found, suites, strict=True):
            suite = future.result()
            failures += suite.failures
            ran.append(version + ("" if not suite.failures else " (FAILED)"))
    print(f"\nPythons run: {', '.join(ran)}")
    print(f"Pythons skipped: {', '.join(skipped) or 'none'}")
    return Suite(failures=failures).verdict()


def find_python(minor: tuple[int, int]) -> tuple[Path, str] | str:
    """(interpreter, version) of the newest Python `minor` on the machine, or why there is none."""
    name = "python%d.%d" % minor
    candidates = []
    pyenv_root = os.environ.get("PYENV_ROOT") or _output(["pyenv", "root"])
    if pyenv_root:
        versions = Path(pyenv_root.strip()) / "versions"
        candidates += sorted(versions.glob("%d.%d.*/bin/%s" % (*minor, name)), key=_version_key, reverse=True)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    too_old = None
    for candidate in candidates:
        version = _output([str(candidate), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        if not version:
            continue  # e.g. a pyenv shim for a version that is not selected
        version = version.strip()
        if tuple(int(n) for n in version.split(".")) < MINIMUM:
            too_old = version
            continue
        return candidate, version
    if too_old:
        return f"only Python {too_old} here, older than the workbook's floor {'.'.join(map(str, MINIMUM))}"
    return f"no {name} on this machine (looked in pyenv's versions and on PATH)"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) if n.isdigit() else -1 for n in path.parent.parent.name.split("."))


def _output(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _check_python(suite: Suite, python: Path, version: str) -> None:
    """Fresh venv, wheels-only install, solutions pass, stubs not_started, nbval: each a step of `suite`."""
    with tempfile.TemporaryDirectory(prefix=f"workbook-py{version}-") as folder:
        venv = Path(folder) / "venv"
        env = {k: v for k, v in os.environ.items() if k not in ("WORKBOOK_TARGET", "VIRTUAL_ENV", "PYTHONPATH")}
        env["WORKBOOK_NO_BOOTSTRAP"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ of this Python behind
        if not suite.step(f"{version}: a fresh venv outside the repository", [str(python), "-m", "venv", str(venv)], env):
            return
        venv_python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if not _install_wheels(suite, venv_python, version, Path(folder), env):
            return
        with pristine_copy() as copy:
            env = _importing(copy, env)
            pytest = [str(venv_python), "-m", "pytest", "-p", "no:cacheprovider", "--color=no"]
            suite.step(f"{version}: grading suite on solutions/ (warnings as errors)",
                       pytest + ["tests", "-q", "-W", "error"], {**env, "WORKBOOK_TARGET": "solutions"}, cwd=copy)
            report = Path(folder) / "stubs.json"
            if suite.step(f"{version}: untouched stubs are graded (`grade --json`)",
                          [str(venv_python), "-m", "workbook", "grade", "--json", str(report)],
                          env, cwd=copy, allowed=(0, 1)):
                _check_not_started(suite, version, report)
            suite.step(f"{version}: notebooks: nbval, strict", pytest + _NBVAL, env, cwd=copy)


def _install_wheels(suite: Suite, venv_python: Path, version: str, folder: Path, env: dict[str, str]) -> bool:
    """`pip install --only-binary=:all: -r requirements.txt`: no compiler may be needed, on any supported Python."""
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    return suite.step(f"{version}: pip install --only-binary=:all: -r requirements.txt",
                      pip + ["-r", str(ROOT / "requirements.txt")], env)


def _check_not_started(suite: Suite, version: str, report: Path) -> None:
    from workbook import catalog

    title = f"{version}: every untouched stub is not_started"
    wanted = {e.id: e.points for e in catalog.load().exercises}
    try:
        exercises = {e["id"]: e for e in json.loads(report.read_text(encoding="utf-8"))["exercises"]}
    except (OSError, ValueError, KeyError, TypeError) as problem:
        exercises, wrong = {}, [f"no readable report ({problem})"]
    else:
        wrong = [f"{i}: {e['status']} ({e.get('message', '')})" for i, e in exercises.items() if e["status"] != "not_started"]
        wrong += [f"{i}: missing from the report" for i in wanted if i not in exercises]
        wrong += [f"{i}: max_points {e['max_points']}, the catalog says {wanted[i]}"
                  for i, e in exercises.items() if i in wanted and e["max_points"] != wanted[i]]
    suite.say(f"-- {title}: " + ("passed" if not wrong else "FAILED\n     " + "\n     ".join(wrong)))
    if wrong:
        suite.failures.append(title)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m workbook.suite",
                                     description="CI: check every supported Python other than this one that the "
                                                 "machine has. (The full suite is `python3 -m workbook test`.)")
    parser.add_argument("--other-pythons", action="store_true", required=True,
                        help="fresh venv, wheels-only install, solutions, stubs and nbval on each other Python")
    parser.parse_args(argv)
    return other_pythons()


if __name__ == "__main__":
    sys.exit(main())
