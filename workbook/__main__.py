"""`python -m workbook ...`: set up on first run, then hand over to the command line."""

import os
import sys

from workbook._bootstrap import ensure_environment

ensure_environment(sys.argv[1:])

from workbook.cli import main  # noqa: E402  (after the set-up: the CLI needs the installed packages)

code = main(sys.argv[1:])
# Every command has finished its work, closed its files and joined its threads by now. Leaving
# with os._exit skips tearing down asyncpg, rich and the rest module by module (~0.03 s, a tenth
# of grading a chapter); the streams are flushed first so nothing printed is lost.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
