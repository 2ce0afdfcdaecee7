"""The grading suite's set-up: the workbook's grading plugin does the work.

`pytest tests/` grades exercises/ (or solutions/ with WORKBOOK_TARGET=solutions).
"""

pytest_plugins = ["workbook.pytest_plugin"]
