@pytest.fixture
async def bag():
    items = ["apple"]
    yield items
    items.clear()
