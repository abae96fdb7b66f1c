"""`appliance wait-for-db`: wait until the database accepts connections.

The entrypoint runs it before anything else touches the database, so a
container started together with its PostgreSQL does not fail while the server
is still starting. It says what it waits for (password masked) and why each
attempt failed, whenever the reason changes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from sqlalchemy.engine import URL

from appliance import db
from appliance.config import mask_url

EXIT_TIMEOUT = 3
ATTEMPT_TIMEOUT = 5  # seconds one connection attempt may take (libpq's connect_timeout)
PAUSE = 0.5  # seconds between attempts


def wait_for_db(url: URL, timeout: float, *, out: TextIO = sys.stderr) -> bool:
    """True as soon as `SELECT 1` succeeds; False when `timeout` seconds pass first."""
    print(f"wait-for-db: waiting up to {timeout:g} s for the database at {mask_url(url)}", file=out, flush=True)
    started = time.monotonic()
    last_reason = None
    while True:
        elapsed = time.monotonic() - started
        try:
            connection = db.connect(url, "appliance-wait-for-db",
                                    connect_timeout=max(1, min(ATTEMPT_TIMEOUT, int(timeout - elapsed))))
            try:
                connection.one(db.QUERIES["ping"])
            finally:
                connection.close()
        except db.DATABASE_ERRORS as error:
            reason = db.first_line(error)
            if url.password:
                reason = reason.replace(str(url.password), "***")
            if reason != last_reason:
                print(f"wait-for-db: not yet: {reason}", file=out, flush=True)
                last_reason = reason
        else:
            waited = time.monotonic() - started
            print(f"wait-for-db: the database accepts connections ({waited:.1f} s)", file=out, flush=True)
            return True
        if time.monotonic() - started + PAUSE > timeout:
            print(f"wait-for-db: gave up: the database did not accept connections within {timeout:g} s "
                  f"(DB_WAIT_TIMEOUT)", file=out, flush=True)
            return False
        time.sleep(PAUSE)
