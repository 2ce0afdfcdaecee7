del test_is_even_two, test_is_even_three


@pytest.mark.asyncio
async def test_is_even_runs():
    await is_even(2)
