"""First-run set-up, standard library only: make `.venv`, install requirements.txt, re-run inside it.

This is what lets README's one-line commands work on a fresh clone with nothing but
Python 3.11.3+: ``python3 -m workbook open`` sets everything up on its first run and is
instant afterwards. Set WORKBOOK_NO_BOOTSTRAP=1 to use the current interpreter as it is
(you then install requirements.txt yourself).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
_STAMP = VENV / ".workbook-requirements"

#: The oldest Python the workbook runs on. 3.11.0-3.11.2 have CPython gh-102780: `asyncio.timeout()` in the
#: clean-up of a task that is already being cancelled raises CancelledError instead of TimeoutError.
MINIMUM = (3, 11, 3)
_TOO_OLD = (
    "The workbook needs Python 3.11.3 or newer; this is Python {version}.\n"
    "{reason}Install Python 3.11.3+ (3.11, 3.12 and 3.13 are tested) and run the command with it, e.g. "
    "`python3.12 -m workbook open`. If .venv was made with the old Python, delete the .venv folder first."
)
_BUGGY_311 = ("Python 3.11.0-3.11.2 have a bug in asyncio.timeout() (CPython gh-102780, fixed in 3.11.3) "
              "that chapter 06 runs into.\n")
_PIP_FAILED = (
    "Installing the requirements into .venv failed (pip exit code {code}); pip's output is above.\n"
    "Check your network connection, then run the same command again. To start over: delete the .venv folder."
)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _wanted_stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def _say(text: str) -> None:
    print(f"[workbook] {text}", file=sys.stderr, flush=True)


def ensure_environment(argv: list[str]) -> None:
    """Return when the current interpreter is ready; otherwise set up .venv and re-run inside it."""
    if sys.version_info < MINIMUM:
        reason = _BUGGY_311 if sys.version_info[:2] == (3, 11) else ""
        sys.exit(_TOO_OLD.format(version=sys.version.split()[0], reason=reason))
    if os.environ.get("WORKBOOK_NO_BOOTSTRAP") == "1":
        return
    python = _venv_python()
    if not python.exists():
        _say("First run: creating the virtual environment .venv (once; about a minute) ...")
        import venv  # only on the first run: importing it costs ~6 ms on every command

        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    if not _STAMP.exists() or _STAMP.read_text().strip() != _wanted_stamp():
        _install(python)
    if _inside_venv():
        return
    os.environ["WORKBOOK_BOOTSTRAPPED"] = "1"
    args = [str(python), "-m", "workbook", *argv]
    if os.name == "nt":  # pragma: no cover - no exec on Windows
        sys.exit(subprocess.call(args))
    os.execv(str(python), args)


def _install(python: Path) -> None:
    _say("Installing requirements.txt into .venv ...")
    code = subprocess.call([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "-r", str(REQUIREMENTS)])
    if code != 0:
        sys.exit(_PIP_FAILED.format(code=code))
    # Make the repository importable from anywhere (the notebooks' kernels start in notebooks/).
    purelib = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      text=True).strip()
    (Path(purelib) / "async_testing_workbook.pth").write_text(str(ROOT) + "\n", encoding="utf-8")
    _STAMP.write_text(_wanted_stamp() + "\n")
    _say("Set-up done.")
