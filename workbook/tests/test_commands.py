"""Every command the workbook prints or documents works in a learner's shell as it is (issue 10).

Many systems have `python3` but no `python`; `python3 -m workbook ...` finds .venv by itself.
The only exception is the README's one sentence about an activated .venv.
"""

from __future__ import annotations

import re

from workbook import ROOT

_BARE_PYTHON = re.compile(r"(?<![\w/.-])python -m ")
_ACTIVATED = "`python -m workbook`, `python -m pytest` work too"


def _learner_facing_files():
    yield ROOT / "README.md"
    yield from (ROOT / "notebooks").glob("*.ipynb")
    for folder in ("exercises", "solutions", "tests", "workbook"):
        yield from (p for p in (ROOT / folder).rglob("*.py") if "tests" not in p.relative_to(ROOT / folder).parts
                    or folder == "tests")
    yield ROOT / "workbook" / "catalog.toml"


def test_no_printed_or_documented_command_starts_with_a_bare_python():
    offenders = []
    for path in _learner_facing_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if _BARE_PYTHON.search(line.replace(_ACTIVATED, "")) and "PYTEST_DISABLE_PLUGIN_AUTOLOAD" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "use `python3 -m workbook ...` (py -m on Windows):\n" + "\n".join(offenders)
