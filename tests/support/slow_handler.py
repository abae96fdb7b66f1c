"""A monitor handler that takes 1.5 s, for the shutdown tests: `tests.support.slow_handler:slow`.

It leaves `<id>.started` in the folder named by SLOW_HANDLER_DIR when it
begins, so a test knows when to send SIGTERM: with a change in hand.
"""

import os
import time
from pathlib import Path

SECONDS = 1.5


def slow(change) -> None:
    (Path(os.environ["SLOW_HANDLER_DIR"]) / f"{change.id}.started").touch()
    time.sleep(SECONDS)
