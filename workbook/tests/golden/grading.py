"""The golden chapter's grading tests (tests/test_90_golden.py in the copy)."""

import pytest

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite

ex = load_target("90_golden")
ref = load_reference("90_golden")
globals().update(learner_fixtures(ex))


@pytest.mark.exercise("90.1")
@pytest.mark.asyncio
async def test_add_adds():
    assert await ex.add(2, 3) == 5, "add(2, 3) must be 5"


@pytest.mark.exercise("90.1")
@pytest.mark.asyncio
async def test_add_rejects_text():
    with pytest.raises(TypeError):
        await ex.add("2", 3)


@pytest.mark.exercise("90.2")
@pytest.mark.asyncio
async def test_bag_holds_an_apple(bag):
    assert bag == ["apple"], "bag must hold ['apple']"


@pytest.mark.exercise("90.2")
@pytest.mark.asyncio
async def test_bag_is_emptied_after_the_test(workbook_after_teardown, bag):
    bag.append("pear")
    workbook_after_teardown(lambda: not bag, "the bag still holds items: empty it after `yield`")


async def _always_true(number: int) -> bool:
    return True


async def _odd_is_even(number: int) -> bool:
    return number % 2 == 1


globals().update(mutation_suite(ex, "90.3", reference=ref.is_even,
                                mutants={"always_true": _always_true, "odd_is_even": _odd_is_even}))
