"""Learners' answers kept as tests: alternative correct ones and realistic wrong ones (issue 9).

``workbook/tests/answers/<stem>.toml`` holds one ``[[answer]]`` table per answer::

    [[answer]]
    exercise = "00.1"
    name = "a while loop instead of range()"     # what is different about it
    expect = "passed"                            # the status it must get
    message = ["other tasks"]                    # for a wrong answer: words its message must contain
    code = '''
    n = start
    ...
    '''

``code`` replaces the exercise's ``# SOLUTION BEGIN``/``END`` region of the solution, at the
region's indentation (a list of blocks when the exercise has several regions, in file order).
``edits = [["old", "new"], ...]`` changes text outside the regions (a decorator, an import).
``alone = true`` grades it in a run of its own; otherwise one run of the chapter grades the
k-th answer of each of its exercises at once, the other exercises holding their solutions,
so each run also proves that a message depends only on the exercise's own code.

Write an answer from the stub's docstring and the notebook, as a learner would, not from the
hidden tests.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

FOLDER = Path(__file__).with_name("answers")
STATUSES = ("passed", "failed", "not_started", "error", "timeout")


@dataclass(frozen=True)
class Answer:
    exercise: str
    name: str
    expect: str
    code: tuple[str, ...]
    message: tuple[str, ...] = ()
    edits: tuple[tuple[str, str], ...] = ()
    alone: bool = False
    source: str = ""

    @property
    def chapter(self) -> str:
        return self.exercise.split(".")[0]


@dataclass
class Round:
    """One grading run of a chapter: at most one answer per exercise."""

    stem: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.stem}:" + "+".join(f"{a.exercise}[{a.name}]" for a in self.answers)


def load(folder: Path = FOLDER) -> dict[str, list[Answer]]:
    """stem -> its answers, in file order."""
    found: dict[str, list[Answer]] = {}
    for path in sorted(folder.glob("*.toml")):
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
        answers = []
        for number, entry in enumerate(raw.get("answer", []), start=1):
            code = entry["code"]
            answer = Answer(
                exercise=entry["exercise"], name=entry["name"], expect=entry["expect"],
                code=tuple(code) if isinstance(code, list) else (code,),
                message=tuple(entry.get("message", ())), edits=tuple(tuple(e) for e in entry.get("edits", ())),
                alone=bool(entry.get("alone", False)), source=f"{path.name} answer {number}",
            )
            if answer.expect not in STATUSES:
                raise ValueError(f"{answer.source}: expect must be one of {STATUSES}, not {answer.expect!r}")
            answers.append(answer)
        found[path.stem] = answers
    return found


def rounds(stem: str, answers: list[Answer], depends: dict[str, set[str]] | None = None) -> list[Round]:
    """Group a chapter's answers into as few grading runs as can hold them.

    `depends` maps an exercise to those whose names its code uses (see `dependencies`): a wrong
    answer to 06.3 never shares a run with an answer to 06.4, whose tests use 06.3's fixture and
    would be told to finish 06.3 first instead of getting their own verdict.
    """
    depends = depends or {}
    out = [Round(stem, [a]) for a in answers if a.alone]
    packed: list[Round] = []
    for answer in answers:
        if answer.alone:
            continue
        for round_ in packed:
            if _fits(answer, round_, depends):
                round_.answers.append(answer)
                break
        else:
            packed.append(Round(stem, [answer]))
    return out + packed


def _fits(answer: Answer, round_: Round, depends: dict[str, set[str]]) -> bool:
    if any(a.exercise == answer.exercise for a in round_.answers):
        return False
    for other in round_.answers:
        if other.expect != "passed" and other.exercise in depends.get(answer.exercise, ()):
            return False
        if answer.expect != "passed" and answer.exercise in depends.get(other.exercise, ()):
            return False
    return True


def dependencies(solution: str, names: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Exercise -> the exercises of the same file whose names (fixtures, functions) its solution uses."""
    regions: dict[str, str] = {}
    inside: str | None = None
    for line in solution.splitlines(keepends=True):
        begin = _BEGIN.match(line)
        if begin:
            inside = begin["id"]
            continue
        if _END.match(line):
            inside = None
        elif inside is not None and not _STUB_LINE.match(line):
            regions[inside] = regions.get(inside, "") + line
    found: dict[str, set[str]] = {}
    for user, code in regions.items():
        for owner, owned in names.items():
            if owner != user and any("*" not in n and re.search(rf"\b{re.escape(n)}\b", code) for n in owned):
                found.setdefault(user, set()).add(owner)
    return found


_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# SOLUTION BEGIN (?P<id>\d\d\.\d+)[ \t]*\n?$")
_END = re.compile(r"^[ \t]*# SOLUTION END[ \t]*\n?$")
_STUB_LINE = re.compile(r"^[ \t]*#\|")


def apply(solution: str, answers: list[Answer]) -> str:
    """The learner file: the solution with each answered exercise's regions replaced by its answer."""
    by_exercise = {a.exercise: a for a in answers}
    used: dict[str, int] = {}
    out: list[str] = []
    inside: str | None = None
    for line in solution.splitlines(keepends=True):
        begin = _BEGIN.match(line)
        if begin:
            inside = begin["id"]
            answer = by_exercise.get(inside)
            if answer is not None:
                k = used.get(inside, 0)
                if k >= len(answer.code):
                    raise ValueError(f"{answer.source}: exercise {inside} has more regions than the answer's code blocks")
                used[inside] = k + 1
                out.append(textwrap.indent(textwrap.dedent(answer.code[k]).strip("\n") + "\n", begin["indent"]))
            continue
        if _END.match(line):
            inside = None
            continue
        if inside is not None and (inside in by_exercise or _STUB_LINE.match(line)):
            continue  # the answer replaces the region; the solution's own stub lines never reach the file
        out.append(line)
    text = "".join(out)
    for answer in answers:
        if used.get(answer.exercise, 0) != len(answer.code):
            raise ValueError(f"{answer.source}: exercise {answer.exercise} has {used.get(answer.exercise, 0)} "
                             f"regions, the answer {len(answer.code)} code blocks")
        for old, new in answer.edits:
            if old not in text:
                raise ValueError(f"{answer.source}: edit target {old!r} is not in the file")
            text = text.replace(old, new, 1)
    return text
