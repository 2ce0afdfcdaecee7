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
    # SOLUTION BEGIN 00.1
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    numbers = []
    for number in range(start, 0, -1):
        numbers.append(number)
        # sleep(0) does not wait: it only lets other ready tasks run before we go on.
        await asyncio.sleep(0)
    return numbers
    # SOLUTION END


# --- 00.2 (fixture): write a pytest fixture -------------------------------------------------

@pytest_asyncio.fixture
async def inbox():
    """Yield an asyncio.Queue that holds two messages: "welcome", then "read the notebook".

    After the test, empty the queue (whatever the test left in it), so that nothing leaks.
    """
    # SOLUTION BEGIN 00.2
    queue: asyncio.Queue[str] = asyncio.Queue()
    await queue.put("welcome")
    await queue.put("read the notebook")
    yield queue
    # Teardown: everything after `yield` runs when the test is over, even if it failed.
    while not queue.empty():
        queue.get_nowait()
    # SOLUTION END


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

# SOLUTION BEGIN 00.3
#| @pytest.mark.asyncio
#| async def test_is_palindrome_accepts_a_simple_palindrome():
#|     # TODO(00.3): await is_palindrome(...) and assert on the result
#|     raise NotImplementedError
@pytest.mark.asyncio
async def test_is_palindrome_accepts_a_simple_palindrome():
    assert await is_palindrome("level") is True


@pytest.mark.asyncio
async def test_is_palindrome_rejects_a_word_that_is_not_one():
    assert await is_palindrome("levels") is False


@pytest.mark.asyncio
async def test_is_palindrome_compares_every_letter_not_just_the_ends():
    assert await is_palindrome("rover") is False


@pytest.mark.asyncio
async def test_is_palindrome_ignores_case_and_spaces():
    assert await is_palindrome("Never odd or even") is True
# SOLUTION END
