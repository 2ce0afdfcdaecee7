"""The learner's own state: which hint they saw last, and their last grading result per exercise.

Kept in ``.workbook/state.json`` inside the repository (git-ignored), so that a fresh
clone starts fresh and deleting the folder resets everything.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbook import ROOT
from workbook.catalog import Catalog, Exercise
from workbook.report import Report

STATE_PATH = ROOT / ".workbook" / "state.json"


@dataclass
class State:
    #: exercise id -> number of hints shown so far
    hints_seen: dict[str, int] = field(default_factory=dict)
    #: exercise id -> {"status", "points", "max_points", "at"} from the last grading of exercises/
    last: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = STATE_PATH) -> State:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(hints_seen=dict(raw.get("hints_seen", {})), last=dict(raw.get("last", {})))
        except (OSError, ValueError, AttributeError):
            return cls()  # missing or damaged: start over rather than fail

    def save(self, path: Path = STATE_PATH) -> None:
        """Write atomically: two commands saving at once each rename a file of their own into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"hints_seen": self.hints_seen, "last": self.last}, indent=2)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def remember(self, report: Report) -> None:
        """Keep the latest result of each graded exercise (only for the learner's own exercises/)."""
        if report.target != "exercises":
            return
        now = time.strftime("%Y-%m-%d %H:%M")
        for result in report.results:
            self.last[result.exercise.id] = {
                "status": result.status.value,
                "points": result.points,
                "max_points": result.exercise.points,
                "at": now,
            }

    def next_hint(self, exercise_id: str, hints: tuple[str, ...]) -> tuple[int, str]:
        """(1-based number, text) of the next hint; stays on the last one once all are shown."""
        shown = min(self.hints_seen.get(exercise_id, 0) + 1, len(hints))
        self.hints_seen[exercise_id] = shown
        return shown, hints[shown - 1]


def overview(state: State, cat: Catalog) -> str:
    """Progress through every chapter, the score, and what to do next."""
    lines = []
    total = sum(e.points for e in cat.exercises)
    score = 0
    next_up: Exercise | None = None
    for chapter in cat.chapters:
        exercises = cat.in_chapter(chapter.id)
        done = [e for e in exercises if state.last.get(e.id, {}).get("status") == "passed"]
        score += sum(e.points for e in done)
        bar = "".join("█" if e in done else "░" for e in exercises)
        title = chapter.title if len(chapter.title) <= 62 else chapter.title[:61] + "…"
        lines.append(f"{chapter.id}  {title:<62} {bar} {len(done)}/{len(exercises)}")
        if next_up is None:
            next_up = next((e for e in exercises if e not in done), None)
    lines.append(f"\nScore: {score}/{total} (from your last gradings; `python3 -m workbook grade` refreshes it)")
    if next_up is None:
        lines.append("Everything passes. Well done!")
    else:
        lines.append(f"Next: {next_up.id} {next_up.title}: notebooks/{next_up.chapter.stem}.ipynb, "
                     f"then `python3 -m workbook grade {next_up.id}`.")
    return "\n".join(lines)


def remember(report: Report, path: Path | None = None) -> None:
    """Keep a grading's results as the learner's progress (only for their own exercises/)."""
    path = path or STATE_PATH
    state = State.load(path)
    state.remember(report)
    state.save(path)
