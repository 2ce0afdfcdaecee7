"""Entry point of a chapter's grading process: ``python -m workbook._pytest_child <pytest args>``.

The same as ``python -m pytest``, except that once pytest has finished and every result is
written, the process leaves at once with ``os._exit`` instead of tearing the interpreter
down module by module: with asyncpg, redis and aiohttp loaded that teardown costs ~0.05 s,
a sixth of pytest's own start-up, and nothing of the grade depends on it.
"""

from __future__ import annotations

import os
import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))
