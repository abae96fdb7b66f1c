"""Retention of the change feed: delete old change_notifications rows in small batches.

One implementation for the monitor (once a minute, processed rows only) and
for `appliance prune` (by hand or from cron, also when no monitor runs). Each
batch is its own short transaction: one long DELETE would hold its locks and
its share of the WAL until the end, and a kill would undo all of it.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

from appliance import db
from appliance.sql import load_queries

QUERIES = load_queries("monitor.sql")
RETENTION_BATCH = 1000

Progress = Callable[[int], None]
"""Called after each batch with the total deleted so far."""


def delete_old_changes(connection: db.Connection, days: int, stopping: threading.Event | None = None, *,
                       include_unprocessed: bool = False, batch_size: int = RETENTION_BATCH,
                       progress: Progress | None = None) -> int:
    """Delete changes past retention, each batch its own transaction; how many went.

    Processed rows count from when they were processed; with
    `include_unprocessed`, unprocessed rows count from when they were written.
    """
    total = 0
    while stopping is None or not stopping.is_set():
        deleted = connection.run(QUERIES["delete_old_changes"], {
            "days": days, "limit": batch_size, "include_unprocessed": include_unprocessed,
        })
        total += deleted
        if deleted and progress is not None:
            progress(total)
        if deleted < batch_size:
            break
    connection.run(QUERIES["delete_old_heartbeats"])
    return total


def run_prune(settings, *, days: int | None = None, include_unprocessed: bool = False,
              batch_size: int = RETENTION_BATCH) -> int:
    """`appliance prune`: progress lines and a final count on stdout; exit 1 when the database fails."""
    days = settings.monitor.retention_days if days is None else days
    which = "changes (processed and unprocessed)" if include_unprocessed else "processed changes"
    print(f"prune: deleting {which} older than {days} days, {batch_size} per transaction", flush=True)
    try:
        with db.connection(settings.database_url, "appliance-prune") as connection:
            total = delete_old_changes(connection, days, include_unprocessed=include_unprocessed,
                                       batch_size=batch_size,
                                       progress=lambda total: print(f"prune: {total} deleted so far", flush=True))
    except db.DATABASE_ERRORS as error:
        # The driver's message names host and port, never the password; batches already done stay done.
        print(f"appliance prune: database error on {settings.database_url_masked}: {db.first_line(error)}",
              file=sys.stderr)
        return 1
    print(f"prune: deleted {total} {which} older than {days} days", flush=True)
    return 0
