"""The learner's state file: saved atomically, read back whatever happened to it."""

from __future__ import annotations

import threading

from workbook import progress


def test_two_saves_at_once_both_succeed_and_leave_a_whole_file(tmp_path):
    path = tmp_path / "state.json"
    errors: list[BaseException] = []

    def save(number: int) -> None:
        try:
            for _ in range(200):
                progress.State(hints_seen={"00.1": number}).save(path)
        except BaseException as error:  # noqa: BLE001 - the test reports any failure below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], f"a save failed while another ran: {errors[:1]}"
    assert progress.State.load(path).hints_seen["00.1"] in (1, 2), "the file must hold one whole save"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "no temporary file may be left behind"


def test_a_damaged_state_file_starts_over(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json", encoding="utf-8")
    assert progress.State.load(path) == progress.State()
