async def add(a, b):
    return a - b


@pytest_asyncio.fixture
async def bag():
    yield ["apple"]


del test_is_even_three
