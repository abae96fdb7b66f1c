"""Moving the appliance's own events out of BIOMERO's table, once, under the schema lock.

The appliance's application used to be called WorkflowTracker, like
BIOMERO's, so its events went to `workflowtracker_events`: in a database
where BIOMERO records, BIOMERO's followers then met topics they cannot
resolve and stopped. Its events now go to `appliance_events`. A database
that still holds appliance events (topics `appliance.…`) in the old table
gets them moved by `appliance init` / `appliance migrate`, in one
transaction: copied (keeping their notification ids the first time, so the
projector's position and log_entries stay valid), deleted from the old
table, the projector's position renamed with them. BIOMERO's events are not
touched. The old table is dropped only when nothing else was in it and no
BIOMERO view follows it. Safe to run at every start: with nothing to move it
only reads.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from sqlalchemy import Engine
from eventsourcing.utils import Environment

from appliance.eventstore import LOCK_TIMEOUT, EventStoreFactory
from appliance.sql import load_queries

QUERIES = load_queries("eventstore_move.sql")
APPLICATION = "Appliance"


def move_appliance_events(engine: Engine, announce: Callable[[str], None] = print) -> int:
    """Move what the appliance left in workflowtracker_events; how many events moved. Hold the schema lock."""
    with engine.begin() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        run = partial(_run, cursor)
        if not run("shared_log_exists").fetchone()[0]:
            return 0
        ours, theirs = run("count_shared_log").fetchone()
        if not ours:
            return 0
        _event_store(engine).create_tables(connection)
        first = run("lock_both_logs", lock_timeout=LOCK_TIMEOUT).fetchone()[0]
        run("copy_keeping_ids" if first else "copy_with_new_ids")
        run("delete_moved")
        if first:
            has_tracking, has_rebuild = run("tracking_tables").fetchone()
            if has_tracking:
                run("move_position")
            if has_rebuild:
                run("move_rebuild_marker")
        dropped = not theirs and not run("biomero_followers").fetchall()
        if dropped:
            run("drop_shared_log")
    announce(f"moved {ours} appliance events from workflowtracker_events to appliance_events"
             + (" and dropped the emptied table" if dropped else f"; {theirs} BIOMERO events stay there"))
    return ours


def _run(cursor, name: str, **params):
    cursor.execute(QUERIES[name], params)  # always with a dict: the queries' %% are literal %
    return cursor


def _event_store(engine: Engine):
    # The library's own table definition, created on the move's connection (its session holds the lock).
    return EventStoreFactory(Environment(APPLICATION, {"CREATE_TABLE": "n"}), engine).application_recorder()
