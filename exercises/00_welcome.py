"""Chapter 00: the three kinds of exercise, one tiny warm-up each.

Read notebooks/00_welcome.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 00`. Stuck? `python3 -m workbook hint 00.1`.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio


# --- 00.1 (implement): write async code -----------------------------------------------------

async def countdown(start: int) -> list[int]:
    """Count down from `start` to 1 and return the numbers, e.g. countdown(3) == [3, 2, 1].

    Between two numbers, give the event loop a turn with `await asyncio.sleep(0)`.
    The grading tests check that:
    - countdown(0) returns [];
    - a negative start raises ValueError;
    - other tasks get to run while a countdown is in progress.
    """
    # TODO(00.1): your code here. Stuck? Run `python3 -m workbook hint 00.1`.
    raise NotImplementedError


# --- 00.2 (fixture): write a pytest fixture -------------------------------------------------

@pytest_asyncio.fixture
async def inbox():
    """Yield an asyncio.Queue that holds two messages: "welcome", then "read the notebook".

    After the test, empty the queue (whatever the test left in it), so that nothing leaks.
    """
    # TODO(00.2): your code here. Stuck? Run `python3 -m workbook hint 00.2`.
    raise NotImplementedError


# --- 00.3 (test): write tests for given code -------------------------------------------------

async def is_palindrome(text: str) -> bool:
    """True if `text` reads the same backwards as forwards, letter by letter.

    Case does not matter ("Level" is a palindrome) and spaces are ignored ("never odd or even" is one).

    This one is finished: do not change it. Write tests for it below.
    """
    letters = [c.lower() for c in text if not c.isspace()]
    await asyncio.sleep(0)
    return letters == letters[::-1]


# Your tests: functions named test_is_palindrome_..., marked for pytest-asyncio.
# Grading runs them against the code above (they must pass) and against broken
# copies of it (at least one of your tests must fail on each).

@pytest.mark.asyncio
async def test_is_palindrome_accepts_a_simple_palindrome():
    # TODO(00.3): await is_palindrome(...) and assert on the result
    raise NotImplementedError
