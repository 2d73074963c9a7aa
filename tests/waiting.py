"""Waiting in tests: on a condition with a generous deadline, never for a fixed time."""
from __future__ import annotations

import time
from collections.abc import Callable


def within(seconds: float, condition: Callable[[], object]) -> bool:
    """Whether ``condition()`` becomes true before ``seconds`` have passed (polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
