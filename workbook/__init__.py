"""The Async Testing Workbook's own tooling: catalog, grader, services, command line.

Run it as ``python3 -m workbook``; see README.md. Nothing here is part of the
exercises: learners edit ``exercises/`` and never need to read this package.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

#: The repository's top folder (the one holding README.md and the four chapter folders).
ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "untrimmed_pytest_output"]


def untrimmed_pytest_output(environ: MutableMapping[str, str]) -> None:
    """Make pytest print whole messages, the same on every machine.

    pytest trims summary lines and assertion diffs to the terminal width unless the
    environment variable ``CI`` (or ``BUILD_NUMBER``) is set. CI servers set it and
    laptops do not, so the same failing test printed different text in the two places.
    Setting it for pytest's own process makes learners, nbval and CI see one output,
    with nothing cut off.
    """
    if not (environ.get("CI") or environ.get("BUILD_NUMBER")):
        environ["CI"] = "true"
