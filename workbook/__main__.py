"""`python3 -m workbook ...`: set up on first run, then hand over to the command line."""

import sys

from workbook._bootstrap import ensure_environment

ensure_environment(sys.argv[1:])

from workbook.cli import main  # noqa: E402  (after the set-up: the CLI needs the installed packages)

sys.exit(main(sys.argv[1:]))
