"""Stale runs: a running run whose source fell silent is shown as `stale`.

A Snakemake process killed with SIGKILL, or a lost node, never sends the end
of its run. Live sources send events, and heartbeats when they have nothing
else to say, so a running run whose last event (`last_event_at`) is older
than RUN_STALE_AFTER seconds is marked `stale` in workflow_runs, and back to
`running` when its events resume (the projector does that at once, on the
next event; this check as well, as a fallback).

Stale is a status of the view only, from the clock rather than from an event.
The active projector calls `check_stale_runs` from its loop (see
Projector._serve); `appliance reproject` runs `mark_stale_runs` in the
transaction of its last batch, so a rebuilt view never shows a stale run as
running, not even until the projector's next check.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance import db
from appliance.sql import load_queries

log = logging.getLogger(__name__)
QUERIES = load_queries("staleness.sql")


def check_stale_runs(connection: db.Connection, stale_after: float) -> tuple[int, int]:
    """Mark silent running runs stale, and stale runs heard from again running.

    One transaction. Returns the numbers of runs marked stale and resumed.
    `stale_after` <= 0 turns the check off.
    """
    if stale_after <= 0:
        return 0, 0
    with connection.transaction() as cursor:
        return mark_stale_runs(cursor, stale_after)


def mark_stale_runs(cursor: Any, stale_after: float) -> tuple[int, int]:
    """`check_stale_runs` in the caller's transaction (a psycopg2 cursor)."""
    if stale_after <= 0:
        return 0, 0
    # A row updated by a projector batch in the meantime is re-checked against
    # its new last_event_at (READ COMMITTED), so a run heard from is not marked.
    cursor.execute(QUERIES["mark_stale"], {"seconds": stale_after})
    marked = cursor.rowcount
    cursor.execute(QUERIES["resume"], {"seconds": stale_after})
    resumed = cursor.rowcount
    if marked or resumed:
        log.info("runs silent for more than %s s: %d marked stale, %d running again", stale_after, marked, resumed)
    return marked, resumed
