async def add(a, b):
    total = 0
    while True:
        total += a + b
