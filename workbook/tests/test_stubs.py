"""Stubs are generated from the solutions, so exercises/ cannot drift from solutions/."""

from __future__ import annotations

import ast
import subprocess

import pytest

from workbook import ROOT, stubs


def test_a_region_without_stub_lines_becomes_a_todo_and_not_implemented():
    solution = "def f():\n    # SOLUTION BEGIN 01.2\n    return 1\n    # SOLUTION END\n"
    assert stubs.make_stub(solution) == (
        "def f():\n    # TODO(01.2): your code here. Stuck? Run `python -m workbook hint 01.2`.\n"
        "    raise NotImplementedError\n")


def test_stub_lines_replace_the_region():
    solution = "# SOLUTION BEGIN 01.1\n#| def test_x():\n#|     raise NotImplementedError\ndef test_x():\n    assert True\n# SOLUTION END\n"
    assert stubs.make_stub(solution) == "def test_x():\n    raise NotImplementedError\n"


@pytest.mark.parametrize("broken", [
    "# SOLUTION BEGIN 01.1\nx = 1\n",
    "x = 1\n# SOLUTION END\n",
    "# SOLUTION BEGIN 01.1\n# SOLUTION BEGIN 01.2\n# SOLUTION END\n",
])
def test_unpaired_markers_are_rejected(broken):
    with pytest.raises(stubs.MarkerError):
        stubs.make_stub(broken)


def _committed(path):
    result = subprocess.run(["git", "show", f"HEAD:{path.relative_to(ROOT).as_posix()}"], cwd=ROOT,
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def test_the_exercise_files_are_the_generated_stubs():
    # Compared with the committed file when the work tree has a learner's edits.
    for path, text in stubs.expected_stubs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        assert text in (current, _committed(path)), f"{path.name} is out of date: run `python -m workbook dev stubs`"


def _public_signatures(source: str) -> dict[str, str]:
    tree = ast.parse(source)
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            # names of parameters only: a stub may leave out annotations that its solution has
            found[node.name] = "class" if isinstance(node, ast.ClassDef) else ", ".join(
                a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs))
    return found


def test_stubs_have_the_same_public_api_as_the_solutions():
    for path, text in stubs.expected_stubs().items():
        solution = (ROOT / "solutions" / path.name).read_text(encoding="utf-8")
        solution_api = {k: v for k, v in _public_signatures(solution).items() if not k.startswith("test_")}
        stub_api = {k: v for k, v in _public_signatures(text).items() if not k.startswith("test_")}
        assert stub_api == solution_api, f"{path.name}: stub and solution must define the same public names and signatures"
