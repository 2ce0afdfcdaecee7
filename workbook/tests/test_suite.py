"""The test pipeline's own helpers (workbook/suite.py): which Pythons CI finds."""

from __future__ import annotations

from workbook import suite


def test_a_python_the_machine_lacks_is_skipped_with_a_reason():
    found = suite.find_python((3, 99))
    assert isinstance(found, str) and "no python3.99 on this machine" in found


def test_every_supported_minor_is_at_or_above_the_floor():
    assert suite.MINIMUM[:2] == suite.SUPPORTED_MINORS[0]
    from workbook import _bootstrap

    assert _bootstrap.MINIMUM == suite.MINIMUM, "the bootstrap's floor and CI's must agree"
