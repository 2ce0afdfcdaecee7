"""The room's view: learners' JSON reports combined into one table, and where the room is stuck.

Pure functions over parsed reports; `workbook.cli` prints what they return.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

#: One mark per status (README, "Statuses and exit codes").
STATUS_MARK = {"passed": "✔", "failed": "✘", "not_started": "·", "error": "!", "timeout": "⧗"}
#: The mark for an exercise a learner's report does not contain (they graded only some chapters).
NOT_IN_REPORT = "-"
#: The mark for a status this version of the workbook does not know.
UNKNOWN_STATUS = "?"
LEGEND = ("Legend: ✔ passed  ✘ failed  · not started  ! error  ⧗ timeout  "
          f"{NOT_IN_REPORT} not in that learner's report (not graded)")
#: How many exercises the "Fewest passes" line names.
STUCK_SHOWN = 3


@dataclass
class Row:
    """One learner's report."""

    learner: str
    score: int
    max_score: int
    statuses: dict[str, str]


def read_reports(paths: list[Path]) -> tuple[list[Row], list[str]]:
    """The reports that parse, sorted by learner, and one message per file that does not."""
    rows: list[Row] = []
    problems: list[str] = []
    for path in paths:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            statuses = {e["id"]: e["status"] for e in report["exercises"]}
            if not all(isinstance(status, str) for status in statuses.values()):
                raise TypeError("an exercise's status is not a string")
            rows.append(Row(path.stem, report["score"], report["max_score"], statuses))
        except (OSError, ValueError, KeyError, TypeError) as problem:
            problems.append(f"Skipped {path}: not a workbook report ({type(problem).__name__}: {problem}). "
                            "Reports come from `python3 -m workbook grade --json PATH`.")
    rows.sort(key=lambda row: row.learner)
    return rows, problems


def mark(row: Row, exercise_id: str) -> str:
    if exercise_id not in row.statuses:
        return NOT_IN_REPORT
    return STATUS_MARK.get(row.statuses[exercise_id], UNKNOWN_STATUS)


def table(ids: list[str], rows: list[Row]) -> list[str]:
    """The learners' table: header and cells share one column width, so each mark sits under its id."""
    column = max(len(i) for i in ids)
    name_width = max(len("learner"), *(len(row.learner) for row in rows))
    scores = [f"{row.score}/{row.max_score}" for row in rows]
    score_width = max(len("score"), *(len(score) for score in scores))
    lines = [f"{'learner':<{name_width}}  {'score':>{score_width}}  " + " ".join(f"{i:^{column}}" for i in ids)]
    for row, score in zip(rows, scores):
        marks = " ".join(f"{mark(row, i):^{column}}" for i in ids)
        lines.append(f"{row.learner:<{name_width}}  {score:>{score_width}}  {marks}")
    return [line.rstrip() for line in lines]


def summary(ids: list[str], rows: list[Row]) -> str:
    """Where the room is stuck, counting for each exercise only the learners whose report contains it."""
    graded = {i: sum(i in row.statuses for row in rows) for i in ids}
    passed = {i: sum(row.statuses.get(i) == "passed" for row in rows) for i in ids}
    position = {i: n for n, i in enumerate(ids)}
    # Lowest pass rate first; on a tie, the exercise more learners graded (more evidence), then catalog order.
    stuck = sorted((i for i in ids if graded[i] and passed[i] < graded[i]),
                   key=lambda i: (passed[i] / graded[i], -graded[i], position[i]))[:STUCK_SHOWN]
    if stuck:
        fewest = "; ".join(f"{i}: {passed[i]} of the {graded[i]} who graded it passed" for i in stuck)
    elif any(graded.values()):
        fewest = "none: everyone who graded an exercise passed it."
    else:
        fewest = "none: no report contains an exercise of this workbook."
    text = f"{len(rows)} learner{'s' if len(rows) != 1 else ''}. Fewest passes: {fewest}"
    ungraded = [i for i in ids if not graded[i]]
    if ungraded and len(ungraded) < len(ids):
        text += "\nNot graded by anyone: " + ", ".join(ungraded)
    return text


def write_csv(path: Path, ids: list[str], rows: list[Row]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "score", "max_score", *ids])
        for row in rows:
            writer.writerow([row.learner, row.score, row.max_score, *(row.statuses.get(i, "") for i in ids)])
