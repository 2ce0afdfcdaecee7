"""From pytest's per-test outcomes to one status per exercise.

The grading plugin (``workbook.pytest_plugin``) writes one `Record` per test phase
as a JSON line; `verdict()` turns the records of an exercise into its status and
message. Both the command-line grader and a plain ``pytest tests/`` run use it,
so the two always agree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from workbook.report import Status

# What went wrong in a failed phase, as the plugin classifies it.
KIND_OK = "ok"
KIND_ASSERTION = "assertion"  # the learner's code (or tests) misbehaved
KIND_NOT_IMPLEMENTED = "not_implemented"  # an untouched stub: NotImplementedError from the target file
KIND_TIMEOUT = "timeout"  # pytest-timeout, or the import watchdog
KIND_ENVIRONMENT = "environment"  # a server is down: not the learner's fault
KIND_IMPORT = "import"  # the target file does not import
KIND_KILLED = "killed"  # a mutant run where the learner's test failed: good
KIND_SURVIVED = "survived"  # a mutant run where the learner's test passed
KIND_FOLLOW_ON = "follow_on"  # a failure that only repeats an earlier test's (shown only if nothing better)

ENVIRONMENT_PREFIX = "Environment problem (not your code): "
#: The `when` of the record the plugin writes last, once pytest's session has finished.
SESSION_FINISHED = "sessionfinish"


@dataclass
class Record:
    """One phase of one grading test, or one collection error."""

    exercise: str
    nodeid: str
    when: str  # "collect", "setup", "call" or "teardown"
    outcome: str  # "passed", "failed" or "skipped"
    kind: str = KIND_OK
    message: str = ""
    #: "reference" or "mutant:<id>" for the learner's tests of a test-kind exercise; "verdict" for its summary test.
    variant: str = ""
    #: seconds pytest spent in this phase
    duration: float = 0.0
    #: the test's place in its module as written (not as run: random order keeps it); -1 for collection
    order: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def read_records(path: Path) -> list[Record]:
    """Read a results file; a line cut short by a killed process is ignored."""
    records: list[Record] = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(Record(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str = ""
    environment: bool = False


def verdict(records: list[Record]) -> Verdict:
    """The status of one exercise from all of its records (see the rules in order below)."""
    if not records:
        return Verdict(Status.ERROR, "No grading test ran for this exercise. This is a bug in the workbook: please report it.")
    # In the order the tests are written in (then by phase), whatever order they ran in: the first
    # test of an exercise checks its basics, so its message is the one to show.
    phases = {"collect": 0, "setup": 1, "call": 2, "teardown": 3}
    failures = sorted((r for r in records if r.failed), key=lambda r: (r.order, r.nodeid, phases.get(r.when, 9)))
    by_kind = {kind: [r for r in failures if r.kind == kind] for kind in {r.kind for r in failures}}

    # 1. The environment's fault trumps everything: the learner must not be blamed for a dead server.
    if KIND_ENVIRONMENT in by_kind:
        return Verdict(Status.ERROR, ENVIRONMENT_PREFIX + by_kind[KIND_ENVIRONMENT][0].message, environment=True)
    # 2. A file that does not import costs all of its exercises, with file and line.
    if KIND_IMPORT in by_kind:
        return Verdict(Status.ERROR, by_kind[KIND_IMPORT][0].message)
    # 3. Something hung and was stopped.
    if KIND_TIMEOUT in by_kind:
        return Verdict(Status.TIMEOUT, by_kind[KIND_TIMEOUT][0].message)
    # 4. Only NotImplementedError so far: the stub is untouched (or partly done).
    if failures and all(r.kind == KIND_NOT_IMPLEMENTED for r in failures):
        done_something = any(r.outcome == "passed" and r.when == "call" and r.variant != "verdict" for r in records
                             if not r.variant.startswith("mutant:"))
        if not done_something:
            return Verdict(Status.NOT_STARTED, "Not started: the stub still raises NotImplementedError.")
        return Verdict(Status.FAILED, "Partly done: " + failures[0].message)
    # 5. A real failure: prefer the verdict of a test-kind exercise, then the first failing check.
    if failures:
        preferred = [r for r in failures if r.variant == "verdict" and r.kind != KIND_NOT_IMPLEMENTED]
        real = [r for r in failures if r.kind not in (KIND_NOT_IMPLEMENTED, KIND_FOLLOW_ON)]
        first = (preferred or real or failures)[0]
        return Verdict(Status.FAILED, first.message)
    return Verdict(Status.PASSED, "")
