"""The order a chapter's tests run in (workbook/grading/order.py): faster, and never another verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from workbook.grading import order
from workbook.testing import Role, Variant

STEM = "00_welcome"


@dataclass
class _Callspec:
    params: dict


@dataclass
class _Item:
    """Enough of a pytest.Item for the ordering: a name, a variant, maybe the summary marker."""

    name: str
    variant: Variant = field(default_factory=Variant)
    summary: bool = False

    @property
    def callspec(self) -> _Callspec:
        return _Callspec({"workbook_variant": self.variant})

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "workbook_summary" and self.summary else None


def _ref(test: str) -> _Item:
    return _Item(f"{test}[reference]", Variant(Role.REFERENCE))


def _mutant(test: str, mutant: str) -> _Item:
    return _Item(f"{test}[mutant-{mutant}]", Variant(Role.MUTANT, mutant))


def test_every_reference_run_and_check_goes_before_the_mutants_and_summaries_go_last():
    items = [_ref("slow"), _mutant("slow", "a"), _mutant("slow", "b"), _Item("check"), _Item("sums", summary=True),
             _ref("quick"), _mutant("quick", "a"), _mutant("quick", "b")]
    order.planned(items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["slow[reference]", "check", "quick[reference]", "slow[mutant-a]",
                                       "slow[mutant-b]", "quick[mutant-a]", "quick[mutant-b]", "sums"]


def test_the_mutant_runs_go_test_by_test_from_the_cheapest_against_the_reference():
    cost = {"slow": 0.5, "quick": 0.01, "same": 0.01}
    items = [_mutant("slow", "a"), _mutant("slow", "b"), _mutant("same", "a"), _mutant("quick", "a"),
             _mutant("quick", "b"), _Item("sums", summary=True)]
    ordered = order.cheapest_first(items, lambda item: cost[item.name.split("[")[0]])  # type: ignore[arg-type]
    assert [i.name for i in ordered] == ["same[mutant-a]", "quick[mutant-a]", "quick[mutant-b]", "slow[mutant-a]",
                                         "slow[mutant-b]", "sums"], "ties keep the order as given"


def _records(copy, tests: str) -> list[dict]:
    """The records of a grading run of 00.3 whose learner tests are `tests`."""
    text = copy.solution_text(STEM)
    copy.write_exercise(STEM, text[:text.index("# SOLUTION BEGIN 00.3")] + tests)
    results = copy.root / "records.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "WORKBOOK_TARGET"}
    subprocess.run([sys.executable, "-m", "pytest", f"tests/test_{STEM}.py", "-q", "-p", "no:cacheprovider",
                    f"--workbook-results={results}", "--workbook-select=00.3"], cwd=copy.root, env=env,
                   capture_output=True, text=True, timeout=120)
    return [line for line in map(json.loads, results.read_text().splitlines()) if line["type"] == "phase"]


def _mutant_calls(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("role") == "mutant" and r.get("phase") == "call"]


TESTS = ("@pytest.mark.asyncio\nasync def test_is_palindrome_level():\n    assert await is_palindrome('Never odd or even')\n"
         "\n@pytest.mark.asyncio\nasync def test_is_palindrome_not():\n    assert not await is_palindrome('ab')\n")


def test_no_mutant_runs_once_a_test_fails_against_the_reference(workbook_copy):
    records = _records(workbook_copy, TESTS + "\n@pytest.mark.asyncio\nasync def test_is_palindrome_wrong():\n"
                                              "    assert await is_palindrome('abc')\n")
    assert any(r.get("role") == "reference" and r.get("outcome") == "failed" for r in records)
    assert records and not _mutant_calls(records), "the verdict is the failing test: no mutant need run"


def test_every_reference_run_comes_before_the_first_mutant_run(workbook_copy):
    records = _records(workbook_copy, TESTS)
    roles = [r.get("role") for r in records if r.get("phase") == "call"]
    assert "mutant" in roles and "reference" in roles
    assert roles.index("mutant") > max(i for i, role in enumerate(roles) if role == "reference")
