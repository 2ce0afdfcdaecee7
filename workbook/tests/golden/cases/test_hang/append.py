async def add(a, b):
    await asyncio.Event().wait()
