"""The exercise catalog: one TOML file that the CLI, the grader, the tests and the notebooks read.

``workbook/catalog.toml`` holds one ``[[chapter]]`` table per chapter and one
``[[exercise]]`` table per exercise. This module loads it into dataclasses,
answers look-ups ("02", "02.1") with helpful errors, and checks it against the
tree (``python3 -m workbook dev check``).
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from workbook import ROOT

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

KINDS = ("implement", "fixture", "test")

_NOT_YET = ("There is no chapter {token!r} yet: the workbook has chapters {have}, and the others are "
            "planned (README.md). Run `python3 -m workbook list` to see every exercise there is.")
_UNKNOWN_ID = (
    "Unknown exercise or chapter {token!r}. {suggestion}"
    "Exercise ids look like '02.1', chapters like '02'; run `python3 -m workbook list` to see them all."
)


class UnknownSelection(LookupError):
    """A chapter or exercise id that the catalog does not have; str() suggests close ones."""


@dataclass(frozen=True)
class Promise:
    """One thing a correct answer must do, stated in the stub's docstring (the exercise contract, SPEC §3)."""

    #: Short id, unique within its exercise; hidden checks and mutants name it.
    id: str
    #: The words of the promise as the stub's docstring states them (`dev check` looks for them there).
    says: str


@dataclass(frozen=True)
class Mutant:
    """A deliberately broken version of the code a `test`-kind exercise tests."""

    #: Short id, unique within its exercise; names the mutant class in the grading tests.
    id: str
    #: What is wrong with it, in plain words; shown to a learner whose tests miss it.
    description: str
    #: The id of the promise it breaks.
    promise: str = ""


@dataclass(frozen=True)
class Chapter:
    """One chapter: the same stem in notebooks/, exercises/, solutions/ and tests/."""

    #: Two digits, e.g. "02".
    id: str
    #: File stem shared by the four folders, e.g. "02_async_fixtures".
    stem: str
    title: str
    #: Servers the chapter's grading needs: any of "postgres", "redis".
    services: tuple[str, ...] = ()
    #: Extra pytest plugins (entry-point names, e.g. "aiohttp") its grading loads; see grader.PLUGINS.
    plugins: tuple[str, ...] = ()

    @property
    def notebook(self) -> Path:
        return ROOT / "notebooks" / f"{self.stem}.ipynb"

    @property
    def exercise_file(self) -> Path:
        return ROOT / "exercises" / f"{self.stem}.py"

    @property
    def solution_file(self) -> Path:
        return ROOT / "solutions" / f"{self.stem}.py"

    @property
    def test_file(self) -> Path:
        return ROOT / "tests" / f"test_{self.stem}.py"


@dataclass(frozen=True)
class Exercise:
    """One graded exercise."""

    #: "<chapter>.<n>", e.g. "02.1".
    id: str
    chapter: Chapter
    title: str
    #: "implement" (write async code), "fixture" (write a pytest fixture) or "test" (write tests).
    kind: str
    #: 1 (warm-up) to 3 (stretch).
    difficulty: int
    points: int
    #: Shown one at a time by `python3 -m workbook hint ID`, gentlest first.
    hints: tuple[str, ...]
    #: The public names in the exercise file that this exercise asks the learner to write.
    names: tuple[str, ...] = ()
    #: test kind only: the name of the given code the learner's tests exercise.
    subject: str | None = None
    #: test kind only: the learner's test functions are those whose names start with this.
    test_prefix: str | None = None
    #: test kind only: broken versions of `subject` the learner's tests must catch.
    mutants: tuple[Mutant, ...] = field(default=())
    #: What a correct answer must do; every hidden check or mutant names one of them.
    promises: tuple[Promise, ...] = field(default=())

    def promise(self, promise_id: str) -> Promise | None:
        return next((p for p in self.promises if p.id == promise_id), None)

    def as_dict(self) -> dict[str, object]:
        """The public description used by `python3 -m workbook list --json`."""
        return {
            "id": self.id,
            "chapter": self.chapter.id,
            "title": self.title,
            "kind": self.kind,
            "difficulty": self.difficulty,
            "points": self.points,
            "notebook": _relative(self.chapter.notebook),
            "exercise_file": _relative(self.chapter.exercise_file),
        }


@dataclass(frozen=True)
class Catalog:
    chapters: tuple[Chapter, ...]
    exercises: tuple[Exercise, ...]

    def chapter(self, chapter_id: str) -> Chapter:
        for chapter in self.chapters:
            if chapter.id == chapter_id:
                return chapter
        raise UnknownSelection(self._unknown(chapter_id))

    def chapter_for_stem(self, stem: str) -> Chapter | None:
        return next((c for c in self.chapters if c.stem == stem), None)

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        raise UnknownSelection(self._unknown(exercise_id))

    def in_chapter(self, chapter_id: str) -> list[Exercise]:
        return [e for e in self.exercises if e.chapter.id == chapter_id]

    def select(self, tokens: list[str] | tuple[str, ...]) -> list[Exercise]:
        """Exercises named by ids ("02.1") or chapters ("02", "2", "02_async_fixtures"), in catalog order.

        No tokens selects everything. Raises UnknownSelection for a token that matches nothing.
        """
        if not tokens:
            return list(self.exercises)
        wanted: set[str] = set()
        for token in tokens:
            wanted.update(e.id for e in self._match(token.strip()))
        return [e for e in self.exercises if e.id in wanted]

    def _match(self, token: str) -> list[Exercise]:
        normal = _normalise(token)
        if any(e.id == normal for e in self.exercises):
            return [self.exercise(normal)]
        for chapter in self.chapters:
            if normal in (chapter.id, chapter.stem):
                return self.in_chapter(chapter.id)
        raise UnknownSelection(self._unknown(token))

    def _unknown(self, token: str) -> str:
        known = [e.id for e in self.exercises] + [c.id for c in self.chapters] + [c.stem for c in self.chapters]
        normal = _normalise(token)
        ids = [c.id for c in self.chapters]
        if re.fullmatch(r"\d\d(\.\d+)?", normal) and normal[:2] not in ids:
            return _NOT_YET.format(token=token, have=", ".join(ids))
        close = difflib.get_close_matches(normal, known, n=3, cutoff=0.5)
        suggestion = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        return _UNKNOWN_ID.format(token=token, suggestion=suggestion)


def _normalise(token: str) -> str:
    """Accept the forms people type: '2' -> '02', '2.1' -> '02.1', '02-1' -> '02.1'."""
    match = re.fullmatch(r"(\d{1,2})(?:[.\-_ ](\d+))?", token)
    if not match:
        return token
    chapter = match.group(1).zfill(2)
    return f"{chapter}.{match.group(2)}" if match.group(2) else chapter


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@functools.cache
def load(path: Path = CATALOG_PATH) -> Catalog:
    """Read and parse the catalog; cached until the file changes."""
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load(path: Path, _mtime_ns: int, _size: int) -> Catalog:
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    chapters = tuple(
        Chapter(id=c["id"], stem=c["stem"], title=c["title"], services=tuple(c.get("services", ())),
                plugins=tuple(c.get("plugins", ())))
        for c in raw.get("chapter", [])
    )
    by_id = {c.id: c for c in chapters}
    exercises = []
    for e in raw.get("exercise", []):
        chapter_id = e["id"].split(".")[0]
        if chapter_id not in by_id:
            raise ValueError(f"{path.name}: exercise {e['id']} belongs to chapter {chapter_id}, which has no [[chapter]] table")
        exercises.append(
            Exercise(
                id=e["id"],
                chapter=by_id[chapter_id],
                title=e["title"],
                kind=e["kind"],
                difficulty=int(e["difficulty"]),
                points=int(e["points"]),
                hints=tuple(h.strip() for h in e.get("hints", ())),
                names=tuple(e.get("names", ())),
                subject=e.get("subject"),
                test_prefix=e.get("test_prefix"),
                mutants=tuple(Mutant(id=m["id"], description=m["description"].strip(), promise=m.get("promise", ""))
                              for m in e.get("mutant", ())),
                promises=tuple(Promise(id=p["id"], says=" ".join(p["says"].split())) for p in e.get("promise", ())),
            )
        )
    return Catalog(chapters=chapters, exercises=tuple(exercises))


def problems(catalog: Catalog | None = None) -> list[str]:
    """Everything wrong with the catalog and the tree it describes; empty when all is well."""
    catalog = catalog or load()
    found: list[str] = []
    seen: set[str] = set()
    for chapter in catalog.chapters:
        if not re.fullmatch(r"\d\d", chapter.id) or not chapter.stem.startswith(chapter.id + "_"):
            found.append(f"chapter {chapter.id}: id must be two digits and the stem must start with it ({chapter.stem})")
        for path in (chapter.notebook, chapter.exercise_file, chapter.solution_file, chapter.test_file):
            if not path.exists():
                found.append(f"chapter {chapter.id}: missing {_relative(path)}")
        for service in chapter.services:
            if service not in ("postgres", "redis"):
                found.append(f"chapter {chapter.id}: unknown service {service!r}")
    for exercise in catalog.exercises:
        where = f"exercise {exercise.id}"
        if exercise.id in seen:
            found.append(f"{where}: duplicate id")
        seen.add(exercise.id)
        if not re.fullmatch(r"\d\d\.\d+", exercise.id):
            found.append(f"{where}: id must look like '02.1'")
        if exercise.kind not in KINDS:
            found.append(f"{where}: kind must be one of {', '.join(KINDS)}, not {exercise.kind!r}")
        if exercise.difficulty not in (1, 2, 3):
            found.append(f"{where}: difficulty must be 1, 2 or 3")
        if exercise.points <= 0:
            found.append(f"{where}: points must be positive")
        if not exercise.hints or any(not h for h in exercise.hints):
            found.append(f"{where}: needs at least one hint, and no empty ones")
        if exercise.kind == "test":
            if not exercise.subject or not exercise.test_prefix:
                found.append(f"{where}: a test-kind exercise needs `subject` and `test_prefix`")
            if not exercise.mutants:
                found.append(f"{where}: a test-kind exercise needs at least one [[exercise.mutant]]")
            ids = [m.id for m in exercise.mutants]
            if len(ids) != len(set(ids)):
                found.append(f"{where}: mutant ids must be unique")
            for mutant in exercise.mutants:
                if not mutant.description:
                    found.append(f"{where}: mutant {mutant.id} needs a plain-words description")
    return found
