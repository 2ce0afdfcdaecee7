"""Grading tests for chapter 00 (exercises/00_welcome.py)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("00_welcome")
ref = load_reference("00_welcome")
globals().update(learner_fixtures(ex))


# --- 00.1 countdown -----------------------------------------------------------------------------

@pytest.mark.exercise("00.1", promise="counts")
@pytest.mark.asyncio
async def test_countdown_counts_down_to_one():
    assert await ex.countdown(3) == [3, 2, 1], "countdown(3) must return [3, 2, 1]"


@pytest.mark.exercise("00.1", promise="zero")
@pytest.mark.asyncio
async def test_countdown_from_zero_is_empty():
    assert await ex.countdown(0) == [], "countdown(0) must return an empty list"


@pytest.mark.exercise("00.1", promise="negative")
@pytest.mark.asyncio
async def test_countdown_rejects_a_negative_start():
    with pytest.raises(ValueError):
        await ex.countdown(-1)


@pytest.mark.exercise("00.1", promise="turns")
@pytest.mark.asyncio
async def test_countdown_lets_other_tasks_run():
    ticks = []

    async def ticker():
        for _ in range(3):
            ticks.append("tick")
            await asyncio.sleep(0)

    async def counting():
        numbers = await ex.countdown(3)
        # By the time the countdown is over, the ticker must have had turns in between.
        return numbers, len(ticks)

    task = asyncio.create_task(ticker())
    numbers, ticks_seen = await counting()
    await task
    assert numbers == [3, 2, 1]
    assert ticks_seen >= 2, "countdown must `await asyncio.sleep(0)` between numbers so other tasks can run"


# --- 00.2 inbox fixture --------------------------------------------------------------------------

@pytest.mark.exercise("00.2", promise="messages")
@pytest.mark.asyncio
async def test_inbox_holds_the_two_messages_in_order(inbox):
    assert isinstance(inbox, asyncio.Queue), "inbox must yield an asyncio.Queue"
    assert inbox.qsize() == 2, f"inbox must hold exactly two messages, it holds {inbox.qsize()}"
    assert [inbox.get_nowait(), inbox.get_nowait()] == ["welcome", "read the notebook"]


@pytest.mark.exercise("00.2", promise="emptied")
@pytest.mark.asyncio
async def test_inbox_is_emptied_after_the_test(workbook_after_teardown, inbox):
    body = getattr(ex.inbox, "__wrapped__", ex.inbox)
    require(inspect.isasyncgenfunction(body) or inspect.isgeneratorfunction(body),
            "`inbox` returns its queue, so none of its code runs after the test: `yield` the queue instead, "
            "and empty it after the `yield`")
    await inbox.put("left behind by the test")
    workbook_after_teardown(inbox.empty, "the inbox still holds messages: empty it after `yield`")


# --- 00.3 tests for is_palindrome, graded by mutation ------------------------------------------

async def _always_true(text: str) -> bool:
    return True


async def _case_sensitive(text: str) -> bool:
    letters = [c for c in text if not c.isspace()]
    return letters == letters[::-1]


async def _only_the_ends(text: str) -> bool:
    letters = [c.lower() for c in text if not c.isspace()]
    return not letters or letters[0] == letters[-1]


async def _keeps_spaces(text: str) -> bool:
    letters = [c.lower() for c in text]
    return letters == letters[::-1]


globals().update(
    mutation_suite(
        ex,
        "00.3",
        reference=ref.is_palindrome,
        mutants={"always_true": _always_true, "only_the_ends": _only_the_ends, "case_sensitive": _case_sensitive,
                 "keeps_spaces": _keeps_spaces},
    )
)
