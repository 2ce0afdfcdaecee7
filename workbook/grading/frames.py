"""Where in the learner's file a failure happened: the lines a grader message points to.

Walks raw tracebacks and suspended tasks (pytest's `excinfo.traceback` builds an entry object per
frame, about 70 ms for a deep asyncio failure).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
from pathlib import Path
from typing import Any

import pytest

from workbook import ROOT
from workbook.testing import current_target


def learner_frames(excinfo: pytest.ExceptionInfo[BaseException]) -> list[tuple[str, int, str]]:
    """(path relative to the repository, line, function) of each traceback frame in the learner's
    folder, outermost first. Walks the raw traceback: pytest's `excinfo.traceback` builds an entry
    object per frame, about 70 ms for a deep asyncio failure."""
    folder = str((ROOT / current_target()).resolve()) + os.sep
    found = []
    tb = excinfo.tb
    while tb is not None:
        filename = _real(tb.tb_frame.f_code.co_filename)
        if filename.startswith(folder):
            found.append((Path(filename).relative_to(ROOT).as_posix(), tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    return found


def where(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """' (exercises/02_x.py, line 12)': the deepest traceback line in the learner's file, if any."""
    frames = learner_frames(excinfo)
    return f" ({frames[-1][0]}, line {frames[-1][1]})" if frames else ""


@functools.lru_cache(maxsize=512)
def _real(filename: str) -> str:
    """The real path of a code file (cached: a traceback of a failing asyncio test has dozens of frames)."""
    return os.path.realpath(filename)


def where_tasks_wait() -> str:
    """Where a hung async test is stuck: the learner's line that a still-pending task awaits.

    The timeout interrupts the event loop's selector, so the traceback does not show the
    learner's await; the suspended tasks do (their loop is torn down only after this report).
    """
    folder = (ROOT / current_target()).resolve()
    for task in (o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()):
        found = ""
        awaited: Any = task.get_coro()
        while awaited is not None:  # down the chain of awaits; keep the deepest learner frame
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(folder):
                path = Path(frame.f_code.co_filename).resolve()
                found = f" ({path.relative_to(ROOT).as_posix()}, line {frame.f_lineno})"
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        if found:
            return found
    return ""
