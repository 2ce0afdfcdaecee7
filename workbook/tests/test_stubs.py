"""Stubs are generated from the solutions, so exercises/ cannot drift from solutions/."""

from __future__ import annotations

import ast
import subprocess

import pytest

from workbook import ROOT, stubs, suite


def test_a_region_without_stub_lines_becomes_a_todo_and_not_implemented():
    solution = "def f():\n    # SOLUTION BEGIN 01.2\n    return 1\n    # SOLUTION END\n"
    assert stubs.make_stub(solution) == (
        "def f():\n    # TODO(01.2): your code here. Stuck? Run `python3 -m workbook hint 01.2`.\n"
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


def test_the_exercise_files_are_the_generated_stubs():
    # A learner's edits, committed or not, are not drift: see suite.stale_stubs.
    stale = [path.name for path in suite.stale_stubs()]
    assert not stale, f"{', '.join(stale)} out of date: run `python3 -m workbook dev stubs`"


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


def test_a_learners_edits_are_not_drift_but_a_forgotten_dev_stubs_is(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    solution = "def f():\n    # SOLUTION BEGIN 01.1\n    return 1\n    # SOLUTION END\n"
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "solutions" / "01_x.py").write_text(solution)
    exercise = tmp_path / "exercises" / "01_x.py"
    exercise.write_text(stubs.make_stub(solution))
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "chapter 01")
    assert suite.stale_stubs(tmp_path) == []

    exercise.write_text("def f():\n    return 1\n")  # the learner solves it...
    assert suite.stale_stubs(tmp_path) == []
    git("commit", "-qam", "solved 01.1")  # ...and commits
    assert suite.stale_stubs(tmp_path) == []

    (tmp_path / "solutions" / "01_x.py").write_text("def f(x=0):\n" + solution.split("\n", 1)[1])
    git("commit", "-qam", "a maintainer changes the signature but forgets `dev stubs`")
    assert suite.stale_stubs(tmp_path) == [exercise]
