import time as _time


def _wait_for_ever():
    while True:
        _time.sleep(0.05)


_wait_for_ever()
