import time as _time

while True:
    _time.sleep(0.05)
