"""The grading plugin's public name: ``-p workbook.pytest_plugin``, and ``tests/conftest.py``.

Everything lives in `workbook.grading`: the hooks in `workbook.grading.plugin` (recording each
test's outcome per exercise) and the ``workbook_*`` fixtures in `workbook.grading.fixtures`.
A learner running their own tests (`python3 -m pytest -p workbook.pytest_plugin exercises/...`)
gets the fixtures; a grading run gets the recording too.
"""

from __future__ import annotations

from workbook.grading.fixtures import (  # noqa: F401 - fixtures are found by name
    _workbook_run_prefix,
    workbook_after_teardown,
    workbook_database_url,
    workbook_db,
    workbook_redis,
    workbook_redis_prefix,
    workbook_redis_url,
    workbook_target,
    workbook_variant,
)
from workbook.grading.plugin import (  # noqa: F401 - hooks are found by name
    pytest_addoption,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_exception_interact,
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)
