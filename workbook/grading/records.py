"""What a chapter's grading process tells the grader: typed records, one JSON line each.

The child's plugin (`workbook.grading.plugin`) writes them; the grader reads them back with
`read_log` and hands them to `workbook.grading.verdict`. The format is internal to one
grading run (the stable contract is the JSON report of `workbook.report`).

Four kinds of line:
- ``planned``: a test that was collected, before any test runs; an exercise whose planned
  tests did not all finish was not graded to its end (the process hung, crashed or was
  interrupted);
- ``started``: a test began (if its teardown never comes, it is the one that broke the run);
- ``phase``: the outcome of one phase (setup, call, teardown) of one test, or one collection
  error;
- ``end``: the session reached its end, with pytest's exit status and, when learner code
  interrupted it (KeyboardInterrupt, ``pytest.exit()``), what did.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path


class Phase(str, enum.Enum):
    COLLECT = "collect"
    SETUP = "setup"
    CALL = "call"
    TEARDOWN = "teardown"


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Kind(str, enum.Enum):
    """What went wrong in a failed phase (`OK` when nothing did)."""

    OK = "ok"
    ASSERTION = "assertion"  # the learner's code (or tests) misbehaved
    NOT_IMPLEMENTED = "not_implemented"  # an untouched stub: NotImplementedError from the learner's file
    TIMEOUT = "timeout"  # pytest-timeout, or the import watchdog
    ENVIRONMENT = "environment"  # a server the chapter uses is down or full: not the learner's fault
    IMPORT = "import"  # the learner's file does not import
    FOLLOW_ON = "follow_on"  # only repeats an earlier test's failure (shown only if nothing better)


class Role(str, enum.Enum):
    """Who wrote the test, and against what it ran."""

    CHECK = "check"  # a hidden grading test of an implement or fixture exercise
    REFERENCE = "reference"  # a learner's test of a test-kind exercise, against the correct code
    MUTANT = "mutant"  # the same learner's test, against one broken copy (see `Record.mutant`)


@dataclass(frozen=True)
class Record:
    """One phase of one grading test, or one collection error."""

    exercise: str
    nodeid: str
    phase: Phase
    outcome: Outcome
    kind: Kind = Kind.OK
    message: str = ""
    role: Role = Role.CHECK
    #: the catalog id of the mutant, for `Role.MUTANT`
    mutant: str = ""
    #: the test's place in its module as written (random order keeps it); -1 for collection
    order: int = -1
    #: other exercises whose learner fixtures this test used (they must pass for it to mean anything)
    uses: tuple[str, ...] = ()
    #: a `workbook_summary` test: it runs last and sums up the others; passing alone is no progress
    summary: bool = False
    #: seconds pytest spent in this phase
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    @property
    def test_name(self) -> str:
        """The test function's name, without its module or parameters."""
        return self.nodeid.split("::")[-1].split("[")[0]


@dataclass(frozen=True)
class Planned:
    """A collected test: it must reach its teardown for its exercise to be graded."""

    exercise: str
    nodeid: str
    role: Role = Role.CHECK


@dataclass(frozen=True)
class Started:
    """A test began: if its teardown never comes, it is the one that hung, crashed or stopped the session."""

    exercise: str
    nodeid: str


@dataclass(frozen=True)
class End:
    """The session reached its end."""

    exitstatus: int
    #: set when learner code stopped the session early: what it did, in words, with file and line
    interruption: str = ""


@dataclass
class Log:
    """Everything one chapter process recorded."""

    records: list[Record] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    end: End | None = None

    def of(self, exercise_id: str) -> list[Record]:
        return [r for r in self.records if r.exercise == exercise_id]

    def planned_for(self, exercise_id: str) -> list[Planned]:
        return [p for p in self.planned if p.exercise == exercise_id]


Item = Record | Planned | Started | End


def to_line(item: Item) -> str:
    kind = {Record: "phase", Planned: "planned", Started: "started", End: "end"}[type(item)]
    # vars(), not dataclasses.asdict(): no deep copy (a third of the plugin's own time per test);
    # the enums are str subclasses, written as their values.
    return json.dumps({"type": kind, **vars(item)}, ensure_ascii=False) + "\n"


def from_line(line: str) -> Item:
    raw = json.loads(line)
    kind = raw.pop("type")
    if kind == "end":
        return End(**raw)
    if kind == "started":
        return Started(**raw)
    if kind == "planned":
        return Planned(exercise=raw["exercise"], nodeid=raw["nodeid"], role=Role(raw["role"]))
    return Record(**{**raw, "phase": Phase(raw["phase"]), "outcome": Outcome(raw["outcome"]), "kind": Kind(raw["kind"]),
                     "role": Role(raw["role"]), "uses": tuple(raw["uses"])})


def read_log(path: Path) -> Log:
    """Read a results file; a line cut short by a killed process is ignored."""
    log = Log()
    if not path.exists():
        return log
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = from_line(line)
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(item, Record):
            log.records.append(item)
        elif isinstance(item, Planned):
            log.planned.append(item)
        elif isinstance(item, Started):
            log.started.append(item)
        else:
            log.end = item
    return log
