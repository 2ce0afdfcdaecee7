"""In which order a chapter's tests run, so that a `test`-kind exercise is graded with as few runs as possible.

A learner's test of a `test`-kind exercise runs once against the reference and once against each
mutant. Whether a mutant is caught does not depend on the order (some test that passes on the
reference fails on it), so the order is free to serve speed:

1. every test that is not a run against a mutant goes first, as written (or shuffled);
2. a run against a mutant is skipped when a test already caught that mutant, or when one of the
   exercise's tests failed against the reference (the verdict is then that failure, whatever the
   mutants do: a learner in the middle of their work waits for no mutant at all);
3. once every reference run is done, the runs against mutants are put in the order of what their
   test cost against the reference, cheapest first: a slow test (one that waits for a timeout or
   holds requests) then runs only against the mutants the quick ones let through.

Measured on the solutions, 2 cores: `grade 04 --target solutions` 8.5 s -> see bench (README,
"Time budgets"), `grade 03` and `grade 06` likewise; verdicts unchanged (JSON reports compared).
`workbook_summary` tests still run last: they sum up what the others saw.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workbook.testing import Role, Variant


def variant_of(item: pytest.Item) -> Variant:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("workbook_variant") if callspec else None
    return value if isinstance(value, Variant) else Variant()


def _is_summary(item: pytest.Item) -> bool:
    return item.get_closest_marker("workbook_summary") is not None


def _is_mutant_run(item: pytest.Item) -> bool:
    return variant_of(item).role is Role.MUTANT


def planned(items: list[pytest.Item]) -> None:
    """Sort `items` in place: the other tests (as given), then the runs against mutants, then summaries."""
    items.sort(key=lambda item: (_is_summary(item), _is_mutant_run(item)))


def cheapest_first(items: list[pytest.Item], cost: Callable[[pytest.Item], float]) -> list[pytest.Item]:
    """The runs against mutants of `items`, test by test from the cheapest against the reference; the rest after.

    `cost(item)`: seconds the item's test took against the reference (every phase). Within one
    test, the mutants keep their order; ties keep the order as given.
    """
    position = {id(item): index for index, item in enumerate(items)}
    return sorted(items, key=lambda item: (_is_summary(item), not _is_mutant_run(item),
                                           cost(item) if _is_mutant_run(item) else 0.0, position[id(item)]))


def run_all(session: pytest.Session, cost: Callable[[pytest.Item], float]) -> None:
    """pytest's own test loop, with the runs against mutants reordered once the reference runs are done."""
    items = session.items
    index, reordered = 0, False
    while index < len(items):
        if not reordered and _is_mutant_run(items[index]):
            items[index:] = cheapest_first(items[index:], cost)
            reordered = True
        item = items[index]
        nextitem = items[index + 1] if index + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        index += 1
