del test_is_even_two


async def test_is_even_two():
    assert await is_even(2)
