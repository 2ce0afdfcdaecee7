"""The grading plugin's public name: ``-p workbook.pytest_plugin``, and ``tests/conftest.py``.

Everything lives in `workbook.grading`: the hooks in `workbook.grading.plugin` (recording each
test's outcome per exercise) and the ``workbook_*`` fixtures in `workbook.grading.fixtures`.
A learner running their own tests (`python3 -m workbook pytest exercises/...`) gets the
fixtures; a grading run gets the recording too.
"""

pytest_plugins = ("workbook.grading.plugin", "workbook.grading.fixtures")
