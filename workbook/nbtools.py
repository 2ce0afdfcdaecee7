"""Maintainer tool: write the generated cells of each notebook, then execute it and store the outputs.

``python3 -m workbook dev notebooks [CHAPTER ...]``

Generated cells carry a tag in their metadata and are rewritten on every run:

- ``workbook-nav``: the first cell, links to the previous chapter, the contents and the next one;
- ``workbook-setup``: the code cell that configures pytest for the notebook;
- ``workbook-exercises``: the chapter's exercises, from the catalog;
- ``workbook-grade``: the last cell, which grades the chapter.

Everything else is written by hand in Jupyter. Executing stores outputs that nbval then
checks in CI, so it must run against untouched stubs in exercises/.
"""

from __future__ import annotations

from pathlib import Path

from workbook import ROOT, catalog, stubs

NAV, SETUP, EXERCISES, GRADE = "workbook-nav", "workbook-setup", "workbook-exercises", "workbook-grade"
CONTENTS = "workbook-contents"  # chapter 00 only: the table of contents
_KIND_WORDS = {"implement": "write async code", "fixture": "write a pytest fixture", "test": "write tests (graded by mutation)"}

_NOT_STUBS = (
    "exercises/{name} is not the untouched stub, so the stored outputs would not match what "
    "learners and CI see. Run `python3 -m workbook dev stubs` (it overwrites exercises/ from solutions/) "
    "or stash your edits, then try again."
)


def _tagged(cell: dict, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def _nav_source(chapter: catalog.Chapter) -> str:
    chapters = list(catalog.load().chapters)
    index = chapters.index(chapter)
    parts = []
    if index > 0:
        previous = chapters[index - 1]
        parts.append(f"[← {previous.id} {previous.title}]({previous.stem}.ipynb)")
    if chapter.id != "00":
        parts.append(f"[Contents]({chapters[0].stem}.ipynb#Contents)")
    if index + 1 < len(chapters):
        following = chapters[index + 1]
        parts.append(f"[{following.id} {following.title} →]({following.stem}.ipynb)")
    return " · ".join(parts)


def _exercises_source(chapter: catalog.Chapter) -> str:
    lines = [
        "## Exercises",
        "",
        f"Open `exercises/{chapter.stem}.py`, replace each `raise NotImplementedError` marked TODO, save, and run "
        "the grading cell below (or `python3 -m workbook grade "
        f"{chapter.id}` in a terminal). Stuck? `python3 -m workbook hint <id>` shows one hint at a time.",
        "",
        "| id | exercise | kind | difficulty | points |",
        "|---|---|---|---|---|",
    ]
    for exercise in catalog.load().in_chapter(chapter.id):
        stars = "★" * exercise.difficulty + "☆" * (3 - exercise.difficulty)
        lines.append(f"| {exercise.id} | {exercise.title} | {exercise.kind}: {_KIND_WORDS[exercise.kind]} | "
                     f"{stars} | {exercise.points} |")
    return "\n".join(lines)


def _contents_source() -> str:
    lines = ["## Contents", ""]
    for chapter in catalog.load().chapters:
        count = len(catalog.load().in_chapter(chapter.id))
        lines.append(f"- {chapter.id} · [{chapter.title}]({chapter.stem}.ipynb) · {count} exercises")
    return "\n".join(lines)


def refresh_cells(chapter: catalog.Chapter) -> bool:
    """Rewrite the generated cells of a chapter's notebook; True if the file changed."""
    import nbformat

    path = chapter.notebook
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    cells = notebook.cells

    def ensure(tag: str, factory, index: int | None) -> None:
        for cell in cells:
            if _tagged(cell, tag):
                fresh = factory()
                cell.source = fresh.source
                return
        cell = factory()
        cell.metadata["tags"] = [tag]
        cells.insert(len(cells) if index is None else index, cell)

    ensure(NAV, lambda: nbformat.v4.new_markdown_cell(_nav_source(chapter)), 0)
    ensure(SETUP, lambda: nbformat.v4.new_code_cell(
        "# Set-up for this notebook: pytest runs inside cells, against the workbook's servers.\n"
        "from workbook import notebook\n\nnotebook.setup()"), 2)
    ensure(EXERCISES, lambda: nbformat.v4.new_markdown_cell(_exercises_source(chapter)), None)
    ensure(GRADE, lambda: nbformat.v4.new_code_cell(
        f"# Grade this chapter's exercises (your file: exercises/{chapter.stem}.py)\n"
        f"notebook.grade(\"{chapter.id}\")"), None)
    if chapter.id == "00":
        ensure(CONTENTS, lambda: nbformat.v4.new_markdown_cell(_contents_source()), None)
    # The grading cell is always last, right after the exercises.
    grade_cell = next(c for c in cells if _tagged(c, GRADE))
    exercises_cell = next(c for c in cells if _tagged(c, EXERCISES))
    cells.remove(grade_cell)
    cells.remove(exercises_cell)
    cells.extend([exercises_cell, grade_cell])
    after = nbformat.writes(notebook)
    if after != before:
        nbformat.write(notebook, path)
    return after != before


def run(chapter: catalog.Chapter, *, timeout: int = 180) -> None:
    """Run every cell of the chapter's notebook in a fresh kernel and store the outputs."""
    import nbformat
    from nbclient import NotebookClient

    expected = stubs.expected_stubs().get(chapter.exercise_file)
    if expected is None or chapter.exercise_file.read_text(encoding="utf-8") != expected:
        raise SystemExit(_NOT_STUBS.format(name=chapter.exercise_file.name))
    notebook = nbformat.read(chapter.notebook, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()
    for cell in notebook.cells:  # execution counts and timing metadata only add noise to diffs
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, chapter.notebook)


def build(selection: list[str], *, execute: bool = True) -> list[Path]:
    cat = catalog.load()
    chapters = [c for c in cat.chapters if not selection or c.id in {s.zfill(2) for s in selection}]
    done = []
    for chapter in chapters:
        refresh_cells(chapter)
        if execute:
            run(chapter)
        done.append(chapter.notebook)
    return done
