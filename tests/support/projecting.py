"""A projector running in a thread of the test, stopped (and checked stopped) at the block's end."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from appliance.projection import Projector


@contextmanager
def running(projector: Projector) -> Iterator[Projector]:
    thread = threading.Thread(target=projector.run, daemon=True)
    thread.start()
    try:
        yield projector
    finally:
        projector.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the projector did not stop"
