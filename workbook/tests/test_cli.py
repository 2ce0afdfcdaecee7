"""The command line, driven in-process: hints, progress, the catalog listing, usage errors."""

from __future__ import annotations

import json

import pytest

from workbook import ROOT, catalog, cli, progress
from workbook.report import ExerciseResult, Report, Status


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "STATE_PATH", tmp_path / "state.json")
    original_load, original_save = progress.State.load, progress.State.save
    monkeypatch.setattr(progress.State, "load", classmethod(lambda cls, path=tmp_path / "state.json": original_load.__func__(cls, path)))
    monkeypatch.setattr(progress.State, "save", lambda self, path=tmp_path / "state.json": original_save(self, path))


def test_hint_shows_one_hint_at_a_time_then_stays_on_the_last(capsys):
    exercise = catalog.load().exercise("00.1")
    for number in range(1, len(exercise.hints) + 2):
        assert cli.main(["hint", "00.1"]) == 0
        shown = min(number, len(exercise.hints))
        out = capsys.readouterr().out
        assert f"Hint {shown}/{len(exercise.hints)}" in out and exercise.hints[shown - 1] in out
    assert "last hint" in out


def test_hint_for_an_unknown_id_is_a_usage_error_with_suggestions(capsys):
    assert cli.main(["hint", "00.7"]) == cli.EXIT_USAGE
    assert "Did you mean" in capsys.readouterr().err


def test_hint_for_a_chapter_asks_for_one_exercise(capsys):
    assert cli.main(["hint", "00"]) == cli.EXIT_USAGE
    assert "give one exercise id" in capsys.readouterr().err


def test_list_json_has_the_contracted_fields(capsys):
    assert cli.main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == len(catalog.load().exercises)
    for entry in entries:
        assert set(entry) == {"id", "chapter", "title", "kind", "difficulty", "points", "notebook", "exercise_file"}


def test_progress_counts_what_the_last_grading_passed(capsys):
    cat = catalog.load()
    first = cat.exercises[0]
    state = progress.State.load()
    state.remember(Report("exercises", [ExerciseResult(first, Status.PASSED)]))
    state.save()
    assert cli.main(["progress"]) == 0
    out = capsys.readouterr().out
    assert f"Score: {first.points}/" in out
    assert "Next:" in out and first.id not in out.split("Next:")[1].split()[0]


def test_solutions_are_not_remembered_as_the_learners_progress():
    state = progress.State()
    state.remember(Report("solutions", [ExerciseResult(catalog.load().exercises[0], Status.PASSED)]))
    assert state.last == {}


def test_watch_grades_again_when_the_exercise_file_is_saved(workbook_copy):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "workbook", "watch", "00"], cwd=workbook_copy.root,
                               env={**__import__("os").environ, "WORKBOOK_NO_BOOTSTRAP": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "Watching exercises/00_welcome.py" in process.stdout.readline()
        workbook_copy.write_exercise("00_welcome", workbook_copy.solution_text("00_welcome"))
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Score:"):
                break
        assert "Score: 15/15" in "".join(lines), "saving a solved file must print its new score"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_collect_combines_reports_and_skips_broken_files_with_a_message(tmp_path, capsys):
    cat = catalog.load()
    first = cat.exercises[0]
    report = Report("exercises", [ExerciseResult(first, Status.PASSED)] +
                    [ExerciseResult(e, Status.NOT_STARTED) for e in cat.exercises[1:]])
    report.write_json(tmp_path / "ada.json")
    (tmp_path / "broken.json").write_text("{not json")
    assert cli.main(["collect", str(tmp_path / "ada.json"), str(tmp_path / "broken.json"),
                     "--csv", str(tmp_path / "room.csv")]) == 0
    captured = capsys.readouterr()
    assert "ada" in captured.out and f"{first.points}/" in captured.out
    assert "Skipped" in captured.err and "broken.json" in captured.err
    rows = (tmp_path / "room.csv").read_text().splitlines()
    assert rows[0].startswith("learner,score,max_score,") and rows[1].startswith(f"ada,{first.points},")


def _write_report(path, statuses):
    cat = catalog.load()
    Report("exercises", [ExerciseResult(cat.exercise(i), Status(s)) for i, s in statuses.items()]).write_json(path)


def _table(out):
    """The header, the learners' rows, and the legend ("" when there is none) of `collect`'s table."""
    lines = out.splitlines() + [""]
    start = next(n for n, line in enumerate(lines) if line.startswith("learner"))
    end = next(n for n, line in enumerate(lines) if n > start and (not line or line.startswith("Legend:")))
    return lines[start], lines[start + 1:end], lines[end]


def test_collect_prints_every_mark_under_its_exercise_id_and_a_distinct_mark_for_ungraded_ones(tmp_path, capsys):
    ids = [e.id for e in catalog.load().exercises]
    cycle = ["passed", "failed", "error", "timeout", "not_started"]
    # ada graded everything but the last chapter; each exercise gets a different status from its neighbours.
    ada = {i: cycle[n % len(cycle)] for n, i in enumerate(ids) if not i.startswith(ids[-1][:2])}
    bo = {ids[1]: "passed", ids[-1]: "failed"}
    _write_report(tmp_path / "ada.json", ada)
    _write_report(tmp_path / "bo.json", bo)
    assert cli.main(["collect", str(tmp_path / "ada.json"), str(tmp_path / "bo.json")]) == 0
    header, rows, legend = _table(capsys.readouterr().out)
    mark = {"passed": "✔", "failed": "✘", "error": "!", "timeout": "⧗", "not_started": "·", None: "-"}
    assert [row.split()[0] for row in rows] == ["ada", "bo"]
    for row, statuses in zip(rows, (ada, bo)):
        for i in ids:
            assert i in header, f"the header prints {i} with its dot"
            column = header.index(i)
            cell = row[column:column + len(i)]
            assert cell.strip() == mark[statuses.get(i)], f"{row.split()[0]}'s mark for {i} is not under {i}: {cell!r}"
    for symbol, meaning in [("✔", "passed"), ("✘", "failed"), ("·", "not started"), ("!", "error"),
                            ("⧗", "timeout"), ("-", "not in that learner's report")]:
        assert f"{symbol} {meaning}" in legend


def test_collect_ranks_the_stuck_exercises_only_among_the_learners_who_graded_them(tmp_path, capsys):
    _write_report(tmp_path / "ada.json", {"01.1": "passed", "01.2": "failed"})
    _write_report(tmp_path / "bo.json", {"01.1": "passed", "01.2": "passed"})
    _write_report(tmp_path / "cy.json", {"00.1": "failed", "00.2": "passed", "00.3": "passed"})
    assert cli.main(["collect", *(str(tmp_path / f"{n}.json") for n in ("ada", "bo", "cy")),
                     "--csv", str(tmp_path / "room.csv")]) == 0
    out = capsys.readouterr().out
    fewest = next(line for line in out.splitlines() if "Fewest passes:" in line)
    assert fewest.endswith("Fewest passes: 00.1: 0 of the 1 who graded it passed; 01.2: 1 of the 2 who graded it passed")
    assert "02.1" not in fewest, "an exercise nobody graded is not one the room is stuck on"
    ungraded = next(line for line in out.splitlines() if line.startswith("Not graded by anyone:"))
    assert "02.1" in ungraded and "00.1" not in ungraded and "01.2" not in ungraded
    ids = [e.id for e in catalog.load().exercises]
    csv_rows = (tmp_path / "room.csv").read_text().splitlines()
    assert csv_rows[0] == ",".join(["learner", "score", "max_score", *ids])
    assert csv_rows[1].startswith("ada,") and csv_rows[1].split(",")[3:] == [
        {"01.1": "passed", "01.2": "failed"}.get(i, "") for i in ids]


def test_after_a_file_that_does_not_import_next_points_at_its_line_and_the_exercise_there():
    from workbook.report import next_step

    cat = catalog.load()
    stub = (ROOT / "exercises" / "00_welcome.py").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(stub, start=1) if text.startswith("# --- 00.3")) + 2
    message = f"exercises/00_welcome.py, line {line}: SyntaxError: invalid syntax. Fix it and grade again."
    results = [ExerciseResult(e, Status.ERROR, message) for e in cat.in_chapter("00")]
    shown = next_step(Report("exercises", results))
    assert f"line {line} of exercises/00_welcome.py (in exercise 00.3)" in shown, shown
    assert "00.1" not in shown, "the error is in 00.3's part: sending the learner to 00.1 would mislead"
