"""Golden runs: a tiny chapter of the tooling's own, graded through the real command line.

`golden/` holds the chapter (catalog entry, reference solution, grading tests) and one folder per
case: the learner's file (`exercise.py`, or the reference solution plus `append.py`), the
environment of the run (`env.json`, optional) and the JSON report it must produce
(`expected.json`). The chapter is independent of the real ones, so editing a real chapter never
changes a golden report.

After a deliberate change of a message, regenerate the reports and read the diff:
``WORKBOOK_GOLDEN_UPDATE=1 python3 -m workbook pytest workbook/tests/test_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in (GOLDEN / "cases").iterdir() if p.is_dir())
STEM = "90_golden"


def _learner_file(case: Path) -> str:
    if (case / "exercise.py").exists():
        return (case / "exercise.py").read_text(encoding="utf-8")
    return (GOLDEN / "solution.py").read_text(encoding="utf-8") + "\n\n" + (case / "append.py").read_text(encoding="utf-8")


@pytest.fixture
def golden_copy(workbook_copy):
    root = workbook_copy.root
    catalog = root / "workbook" / "catalog.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "\n" + (GOLDEN / "catalog.toml").read_text(encoding="utf-8"),
                       encoding="utf-8")
    (root / "solutions" / f"{STEM}.py").write_text((GOLDEN / "solution.py").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "tests" / f"test_{STEM}.py").write_text((GOLDEN / "grading.py").read_text(encoding="utf-8"), encoding="utf-8")
    return workbook_copy


@pytest.mark.parametrize("name", CASES)
def test_golden_report(golden_copy, name):
    case = GOLDEN / "cases" / name
    golden_copy.write_exercise(STEM, _learner_file(case))
    env = json.loads((case / "env.json").read_text()) if (case / "env.json").exists() else {}
    graded = golden_copy.grade("90", env=env)
    expected_path = case / "expected.json"
    if os.environ.get("WORKBOOK_GOLDEN_UPDATE") == "1":
        expected_path.write_text(json.dumps(graded.report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert graded.report == expected, f"case {name}: the report differs from {expected_path.relative_to(GOLDEN.parent)}"
    everything_passed = all(e["status"] == "passed" for e in expected["exercises"])
    assert graded.returncode == (0 if everything_passed else 1), f"case {name}: exit code {graded.returncode}"
