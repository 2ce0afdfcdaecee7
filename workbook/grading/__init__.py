"""Grading: from `python3 -m workbook grade` to a report, in one pipeline.

    catalog -> servers -> run (one process per chapter) -> records -> verdict -> report

- `runner`: `grade()`, the whole pipeline; starts one process per chapter (`child`), watches its
  budget, prepares the servers in the background and hands them over (`handoff`), and kills
  everything a chapter started once it has ended.
- `child`: a chapter's process (a keeper that forks pytest).
- `plugin` + `fixtures`: inside that process, record each test phase as a typed `records.Record`
  (failures explained by `diagnose`, a pure function), and provide the ``workbook_*`` fixtures.
- `verdict`: every rule that turns records into a status (pure functions).

Imports point one way: records <- diagnose <- handoff <- verdict <- plugin <- fixtures, and
runner on records, handoff and verdict. `workbook.testing` (what grading modules import) sits
beside records; nothing here imports `workbook.cli`.
"""
