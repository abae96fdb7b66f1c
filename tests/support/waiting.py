"""Wait for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float, *, interval: float = 0.02, message: str = "the condition"):
    """The first truthy value of condition(), polled until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
