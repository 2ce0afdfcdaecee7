"""The result model of a grading run and its two renderings: JSON for tools, a table for people.

The JSON shape is a stable contract (SPEC §4): instructors' scripts read it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbook import ROOT

if TYPE_CHECKING:  # pragma: no cover
    from workbook.catalog import Catalog, Exercise

#: Longest message kept in a report; longer ones are cut with a note.
MESSAGE_LIMIT = 600
_TRUNCATED = " [... cut; `python3 -m workbook pytest {test_file} --workbook-select={id}` shows everything]"


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_STARTED = "not_started"
    ERROR = "error"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value


@dataclass
class ExerciseResult:
    exercise: Exercise
    status: Status
    message: str = ""
    #: True when the cause is the environment (a server down), not the learner's code.
    environment: bool = False
    #: True when the message is a list to show whole (the bugs a learner's tests missed), never cut.
    whole: bool = False

    @property
    def points(self) -> int:
        return self.exercise.points if self.status is Status.PASSED else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.exercise.id,
            "chapter": self.exercise.chapter.id,
            "title": self.exercise.title,
            "kind": self.exercise.kind,
            "status": self.status.value,
            "points": self.points,
            "max_points": self.exercise.points,
            "message": self.message,
        }


@dataclass
class Report:
    target: str
    results: list[ExerciseResult] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> int:
        return sum(r.exercise.points for r in self.results)

    @property
    def all_passed(self) -> bool:
        return all(r.status is Status.PASSED for r in self.results)

    @property
    def environment_problem(self) -> bool:
        return any(r.environment for r in self.results)

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "score": self.score,
            "max_score": self.max_score,
            "exercises": [r.as_dict() for r in self.results],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def truncate(message: str, exercise: Exercise | None = None) -> str:
    """Cut a long message, saying how to see the rest."""
    message = message.strip()
    if len(message) <= MESSAGE_LIMIT:
        return message
    test_file = f"tests/test_{exercise.chapter.stem}.py" if exercise else "tests/"
    return message[:MESSAGE_LIMIT].rstrip() + _TRUNCATED.format(test_file=test_file, id=exercise.id if exercise else "ID")


_SYMBOL = {
    Status.PASSED: "✔ passed",
    Status.FAILED: "✘ failed",
    Status.NOT_STARTED: "· not started",
    Status.ERROR: "! error",
    Status.TIMEOUT: "⧗ timeout",
}
_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "red",
    Status.NOT_STARTED: "dim",
    Status.ERROR: "magenta",
    Status.TIMEOUT: "yellow",
}


def next_step(report: Report) -> str:
    """One sentence telling the learner what to do now."""
    if report.environment_problem:
        return "A server the grader needs is not available (not your code): run `python3 -m workbook doctor`."
    todo = [r for r in report.results if r.status is not Status.PASSED]
    if not todo:
        return "Everything selected passes. On to the next chapter: `python3 -m workbook progress`."
    first = todo[0]
    broken = _broken_file(todo)
    if broken:
        return broken
    if first.status is Status.NOT_STARTED:
        return (
            f"Next: exercise {first.exercise.id} ({first.exercise.title}). Read notebooks/{first.exercise.chapter.stem}.ipynb, "
            f"edit exercises/{first.exercise.chapter.stem}.py, then `python3 -m workbook grade {first.exercise.id}`."
        )
    return (
        f"Next: fix exercise {first.exercise.id} in exercises/{first.exercise.chapter.stem}.py; "
        f"stuck? `python3 -m workbook hint {first.exercise.id}`."
    )


def _broken_file(todo: list[ExerciseResult]) -> str:
    """A learner file that does not import: point at its line, and at the exercise whose part holds it."""
    for result in todo:
        found = re.match(r"(exercises/(\d\d)_\w+\.py), line (\d+):", result.message) if result.status is Status.ERROR else None
        if not found:
            continue
        shown, line = found.group(1), int(found.group(3))
        owner = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            above = (ROOT / shown).read_text(encoding="utf-8").splitlines()[:line]
            headers = [m.group(1) for m in (re.match(r"# --- (\d\d\.\d+)\b", text) for text in above) if m]
            owner = f" (in exercise {headers[-1]})" if headers else ""
        return (f"Next: fix line {line} of {shown}{owner}: until the file imports, none of its exercises can be "
                f"graded. Then `python3 -m workbook grade {found.group(2)}`.")
    return ""


def preload() -> None:
    """Import the table library in a background thread, while the caller waits for pytest.

    Importing rich takes ~0.03 s, about a tenth of a chapter's grading; a thread that does it
    while the main thread only waits for a child process makes it free.
    """
    import threading

    def _import() -> None:
        import rich.console  # noqa: F401
        import rich.table  # noqa: F401

    threading.Thread(target=_import, name="workbook-preload", daemon=True).start()


def render(report: Report, catalog: Catalog, *, plain: bool = False, width: int | None = None) -> str:
    """The report as people read it: a table per chapter, progress, and the next step.

    `plain=True` gives uncoloured text of a fixed width (notebooks store it, so it must not vary).
    """
    from rich.console import Console
    from rich.table import Table

    import shutil
    import sys

    styled = not plain and sys.stdout.isatty()
    width = width or (100 if plain else max(80, min(shutil.get_terminal_size().columns, 160)))
    console = Console(record=True, width=width, no_color=not styled, force_terminal=styled,
                      force_jupyter=False, soft_wrap=False, file=_Discard())
    table = Table(title=f"Grading {report.target}/", title_justify="left", show_lines=False, expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("exercise")
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold")
    for result in report.results:
        status = _SYMBOL[result.status]
        table.add_row(
            result.exercise.id,
            result.exercise.title,
            result.exercise.kind,
            status if plain else f"[{_STYLE[result.status]}]{status}[/]",
            f"{result.points}/{result.exercise.points}",
            "" if result.status in (Status.PASSED, Status.NOT_STARTED)
            else result.message if result.whole else _first_lines(result.message, 12),
            style=None,
        )
    console.print(table, markup=not plain, highlight=False)
    for chapter in catalog.chapters:
        rows = [r for r in report.results if r.exercise.chapter.id == chapter.id]
        if not rows:
            continue
        done = sum(r.status is Status.PASSED for r in rows)
        bar = "█" * done + "░" * (len(rows) - done)
        title = chapter.title if len(chapter.title) <= 58 else chapter.title[:57] + "…"
        console.print(f"  {chapter.id} {title:<58} {bar} {done}/{len(rows)}", markup=False, highlight=False)
    console.print(f"Score: {report.score}/{report.max_score}", markup=False, highlight=False)
    console.print(next_step(report), markup=False, highlight=False)
    return console.export_text(styles=styled)


def _first_lines(text: str, count: int) -> str:
    """At most `count` lines: the first ones and the last one, which often says what to do."""
    lines = text.strip().splitlines()
    if len(lines) <= count:
        return "\n".join(lines)
    return "\n".join([*lines[:count - 2], "…", lines[-1]])


class _Discard:
    """A file that swallows what rich writes; we print the recorded export ourselves."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass
