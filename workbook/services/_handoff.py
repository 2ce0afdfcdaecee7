"""The grader's hand-off to a chapter's pytest process: which servers to use, through a file.

Kept apart from the rest of the package because it is being replaced as a whole; until then
it behaves exactly as it did in the single ``services`` module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from workbook.services._proc import _pid_alive
from workbook.services._types import ServiceUnavailable

#: Set by the grader for a chapter's pytest process: the file it writes once it has resolved the
#: servers and created the process's run database (see :func:`receive_handoff`).
HANDOFF_VARIABLE = "WORKBOOK_HANDOFF"
#: ... and the grader's process id: a process whose grader was killed stops waiting.
HANDOFF_GRADER_VARIABLE = "WORKBOOK_HANDOFF_GRADER"
#: Set through the hand-off: the run database the grader created for this process (and drops).
PREPARED_DATABASE_URL = "WORKBOOK_RUN_DATABASE_URL"

HANDOFF_ORPHANED_MESSAGE = (
    "The grading command that started this process has stopped, so it will never say which servers "
    "to use. Run `python -m workbook grade` again."
)


def hand_off(path: Path, *, environment: dict[str, str], problem: str = "") -> None:
    """The grader's side of :func:`receive_handoff`: write what a chapter's process waits for."""
    import json

    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"environment": environment, "problem": problem}), encoding="utf-8")
    os.replace(partial, path)  # atomic: the waiting process never reads half of it


def receive_handoff() -> None:
    """In a chapter's grading process: wait for the grader's hand-off, then take its environment.

    The grader resolves the servers and creates the run database while this process starts
    (see workbook.grader._Preparation); it names the file in ``WORKBOOK_HANDOFF``. Without that
    variable (a plain ``pytest tests/``) this returns at once. The wait is bounded by the
    grader's budget for the chapter, which kills the process when it runs out.
    """
    import json

    path = os.environ.pop(HANDOFF_VARIABLE, "")
    grader = int(os.environ.pop(HANDOFF_GRADER_VARIABLE, "0") or 0)
    if not path:
        return
    waits = 0
    while not os.path.exists(path):
        waits += 1
        if grader and waits % 25 == 0 and not _pid_alive(grader):  # checked every 0.05 s
            raise ServiceUnavailable(HANDOFF_ORPHANED_MESSAGE)  # the grader was killed: nobody will write it
        time.sleep(0.002)
    handoff = json.loads(Path(path).read_text(encoding="utf-8"))
    os.environ.update(handoff["environment"])
    if handoff["problem"]:
        raise ServiceUnavailable(handoff["problem"])
