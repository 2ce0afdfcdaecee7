@pytest.mark.asyncio
async def test_is_even_stops():
    raise KeyboardInterrupt
