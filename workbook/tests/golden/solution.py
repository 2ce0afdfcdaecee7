"""The golden chapter's reference solution (also the `solved` case)."""

import asyncio

import pytest
import pytest_asyncio


async def add(a: int, b: int) -> int:
    """a + b; a TypeError for anything but two ints."""
    if not isinstance(a, int) or not isinstance(b, int):
        raise TypeError("add() takes two ints")
    await asyncio.sleep(0)
    return a + b


@pytest_asyncio.fixture
async def bag():
    """A list holding 'apple', emptied after the test."""
    items = ["apple"]
    yield items
    items.clear()


async def is_even(number: int) -> bool:
    """True for even numbers."""
    await asyncio.sleep(0)
    return number % 2 == 0


@pytest.mark.asyncio
async def test_is_even_two():
    assert await is_even(2)


@pytest.mark.asyncio
async def test_is_even_three():
    assert not await is_even(3)
