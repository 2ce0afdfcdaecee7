"""Derive the learner's stubs in exercises/ from the reference solutions in solutions/.

solutions/ is the single source: each solved part sits between two marker lines::

    # SOLUTION BEGIN 02.1
    ...the solution...
    #| optional stub lines: the text after `#| ` becomes the stub
    # SOLUTION END

Everything outside the markers is copied as it is, so the two folders cannot drift
apart. Without `#|` lines the stub is a TODO comment and ``raise NotImplementedError``,
which the grader reports as `not_started`. Maintainers run
``python3 -m workbook dev stubs`` after editing a solution; CI checks the result.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbook import ROOT

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# SOLUTION BEGIN (?P<id>\d\d\.\d+)[ \t]*$")
_END = re.compile(r"^[ \t]*# SOLUTION END[ \t]*$")
_STUB = re.compile(r"^(?P<indent>[ \t]*)#\|(?: (?P<text>.*))?$")
_DEFAULT_STUB = "{indent}# TODO({id}): your code here. Stuck? Run `python3 -m workbook hint {id}`.\n{indent}raise NotImplementedError\n"


class MarkerError(ValueError):
    """A solution file whose SOLUTION BEGIN/END markers do not pair up."""


def make_stub(solution: str, *, source: str = "solution") -> str:
    """The exercise text for one solution file's text."""
    out: list[str] = []
    region: tuple[str, str] | None = None  # (indent, exercise id) while inside a region
    stub_lines: list[str] = []
    for number, line in enumerate(solution.splitlines(keepends=True), start=1):
        begin = _BEGIN.match(line)
        if begin:
            if region:
                raise MarkerError(f"{source}, line {number}: SOLUTION BEGIN inside another region")
            region, stub_lines = (begin["indent"], begin["id"]), []
            continue
        if _END.match(line):
            if not region:
                raise MarkerError(f"{source}, line {number}: SOLUTION END without SOLUTION BEGIN")
            indent, exercise_id = region
            out.append("".join(stub_lines) or _DEFAULT_STUB.format(indent=indent, id=exercise_id))
            region = None
            continue
        if region:
            stub = _STUB.match(line)
            if stub:
                stub_lines.append(stub["indent"] + (stub["text"] or "") + "\n")
            continue
        out.append(line)
    if region:
        raise MarkerError(f"{source}: SOLUTION BEGIN {region[1]} is never closed")
    return "".join(out)


def expected_stubs(root: Path = ROOT) -> dict[Path, str]:
    """exercise path -> the text generated from its solution."""
    result = {}
    for solution in sorted((root / "solutions").glob("[0-9][0-9]_*.py")):
        text = solution.read_text(encoding="utf-8")
        result[root / "exercises" / solution.name] = make_stub(text, source=solution.relative_to(root).as_posix())
    return result


def write_stubs(root: Path = ROOT, stems: set[str] | None = None) -> list[Path]:
    """Regenerate exercise files from their solutions (all, or those with the given stems); returns the changed ones."""
    changed = []
    for path, text in expected_stubs(root).items():
        if stems is not None and path.stem not in stems:
            continue
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
