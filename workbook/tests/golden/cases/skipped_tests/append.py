del test_is_even_two, test_is_even_three


@pytest.mark.skip(reason="later")
@pytest.mark.asyncio
async def test_is_even_later():
    assert await is_even(2)
    assert not await is_even(3)
