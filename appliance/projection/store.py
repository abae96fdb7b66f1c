"""The database side of projecting: the position, the advisory lock, one batch.

`project_batch` is one whole step, in ONE transaction: lock the tracking row,
read the events after its position, load the view rows they touch, apply the
events to those rows in Python (`rules`), write the changed rows back with
one statement per table, and move the position. A crash at any point either
commits all of that or none of it, so no event is applied twice or skipped,
and nothing the next batch needs lives only in memory.

The position lives in the tracking table of eventsourcing-sqlalchemy's
`SQLAlchemyTrackingRecorder` (`projector_tracking`: application_name,
notification_id), created and readable through the library, so the library's
tools see how far the views are. It is written here, by hand, because the
view rows go through a raw psycopg2 cursor in bulk and the position must
commit in that same transaction.
"""

from __future__ import annotations

import gc
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator
from uuid import UUID

import psycopg2
from eventsourcing.persistence import Mapper, Notification
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyTrackingRecorder
from sqlalchemy import text
from sqlalchemy.engine import URL

from appliance.db import KEEPALIVE_ARGS, SCHEMA_LOCK_KEY
from appliance.projection import rules
from appliance.sql import load_queries
from appliance.views import VIEW_TABLES

QUERIES = load_queries("projection.sql")
TRACKING_TABLE = "projector_tracking"
# The tracking row is named after the application whose log is followed.
UPSTREAM = "Appliance"
# The session-level advisory lock that only one projector (or reprojection)
# holds at a time. Fixed and documented, to be found in pg_locks:
# SELECT * FROM pg_locks WHERE locktype = 'advisory' AND objid = 1886546794.
LOCK_KEY = 0x70726F6A  # "proj"
REBUILD_TABLE = "projection_rebuild"  # an unfinished rebuild's marker (views.ProjectionRebuild)


def connect(url: URL, application_name: str) -> Any:
    """A psycopg2 connection with keepalives: a dead peer is noticed in seconds."""
    params = url.translate_connect_args(username="user", database="dbname")
    return psycopg2.connect(**params, **dict(url.query), **KEEPALIVE_ARGS, application_name=application_name)


def tracking_recorder(datastore: SQLAlchemyDatastore) -> SQLAlchemyTrackingRecorder:
    return SQLAlchemyTrackingRecorder(datastore, tracking_table_name=TRACKING_TABLE)


def prepare(recorder: SQLAlchemyTrackingRecorder, connection: Any) -> None:
    """Create the tracking table and row if missing (idempotent, safe to race)."""
    assert recorder.datastore.engine is not None
    with recorder.datastore.engine.begin() as schema_connection:
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide: serialise.
        schema_connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        recorder.tracking_table.create(schema_connection, checkfirst=True)
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["ensure_position"], {"application": UPSTREAM})


class ViewsMissing(RuntimeError):
    """The view tables do not exist: the database was never migrated."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"the view tables are missing ({', '.join(missing)}): run `appliance migrate` first")


def check_views(connection: Any) -> None:
    """Raise ViewsMissing unless every view table exists; reads only."""
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["missing_tables"], {"tables": [*VIEW_TABLES, REBUILD_TABLE]})
        missing = [name for name, in cursor.fetchall()]
    if missing:
        raise ViewsMissing(missing)


def try_lock(connection: Any) -> bool:
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["try_lock"], {"key": LOCK_KEY})
        return cursor.fetchone()[0]


def unlock(connection: Any) -> None:
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["unlock"], {"key": LOCK_KEY})


def lock_holder(connection: Any) -> str:
    """Who holds the projector lock, in words, for a waiting process to say."""
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["lock_holder"], {"key": LOCK_KEY})
        row = cursor.fetchone()
    if row is None:
        return "nobody (just released)"
    pid, name, client, since = row
    return f"backend pid {pid} ({name or 'no application name'}, from {client}, connected since {since:%Y-%m-%d %H:%M:%S %Z})"


def position(connection: Any) -> int:
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["select_position"], {"application": UPSTREAM})
        row = cursor.fetchone()
        return 0 if row is None else row[0]


def max_notification_id(connection: Any) -> int:
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["max_notification_id"])
        return cursor.fetchone()[0]


def reset(connection: Any) -> None:
    """Empty the view tables (not change_notifications), rewind the position to 0.

    Also marks the newest event now: until the position passes it, batches
    are quiet, whoever projects them (see lock_position), so a projector that
    finishes an interrupted rebuild fires no change triggers for old runs.
    """
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["suppress_change_notifications"])
        cursor.execute(QUERIES["reset_views"], {"application": UPSTREAM})


def end_rebuild(cursor: Any) -> None:
    """Remove the rebuild's marker, in the transaction of its last batch."""
    cursor.execute(QUERIES["end_rebuild"], {"application": UPSTREAM})


@dataclass(frozen=True)
class Batch:
    """What one project_batch did."""

    applied: int  # events
    position: int | None  # after them; None when there was nothing to apply
    more: bool  # more events may follow at once: a full batch, or one that stopped at a rebuild's marker


def project_batch(connection: Any, mapper: Mapper, limit: int, *,
                  at_end: Callable[[Any], None] | None = None) -> Batch:
    """Project the next `limit` events at most, in one transaction.

    Batches that replay what a rebuild found (up to its marker, whoever
    projects them) silence the change triggers: no flood of old changes.
    `at_end(cursor)` runs in the same transaction when this batch reaches the
    end of the log, so its work commits with the last events (reproject's
    stale check).
    """
    with _cycle_collector_paused():
        # The batch's objects are freed on return, before the collector is back.
        return _project_batch(connection, mapper, limit, at_end)


def _project_batch(connection: Any, mapper: Mapper, limit: int, at_end: Callable[[Any], None] | None) -> Batch:
    with connection, connection.cursor() as cursor:
        cursor.execute(QUERIES["lock_position"], {"application": UPSTREAM})
        after, replaying, upto = cursor.fetchone()
        events = _decode(mapper, _select_events(cursor, after, upto, limit))
        # Such a replay stops at the rebuild's marker; SET LOCAL before any row is written.
        replaying = replaying and bool(events)
        if replaying:
            cursor.execute(QUERIES["suppress_change_notifications"])
        last = _apply(cursor, events) if events else None
        more = len(events) == limit or replaying
        if at_end is not None and not more:
            at_end(cursor)
    return Batch(len(events), last, more)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for one batch, then as the caller had it.

    A batch holds its ~10,000 decoded events and their rows until it ends,
    so the collector, counting allocations, promotes them and runs full
    collections again and again: 40% of a rebuild's time (5.8 s of 14.4 s
    for 300,000 events), to find no cycles. Reference counting frees a
    batch's objects as usual; a cycle, should one form, is collected after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _select_events(cursor: Any, after: int, upto: int, limit: int) -> list[tuple]:
    """The stored events after position `after`, up to `upto`, `limit` at most, oldest first."""
    cursor.execute(QUERIES["select_events"], {"after": after, "upto": upto, "limit": limit})
    return cursor.fetchall()


def _decode(mapper: Mapper, notifications: list[tuple]) -> list[tuple[int, Any]]:
    """(notification id, domain event) for each row of _select_events."""
    return [
        (row_id, mapper.to_domain_event(Notification(
            id=row_id, originator_id=UUID(str(originator_id)), originator_version=version,
            topic=topic, state=bytes(state),
        )))
        for row_id, originator_id, version, topic, state in notifications
    ]


def _apply(cursor: Any, events: list[tuple[int, Any]]) -> int:
    """Apply the events to their view rows and move the position; the new position."""
    rows = _load(cursor, [event for _, event in events])
    for row_id, event in events:
        rules.apply(rows, row_id, event)
    rules.finish(rows)
    _save(cursor, rows)
    last = events[-1][0]
    cursor.execute(QUERIES["save_position"], {"application": UPSTREAM, "position": last})
    return last


def _load(cursor: Any, events: list[Any]) -> rules.Rows:
    need = rules.wanted(events)
    rows = rules.Rows()
    if need.task_ids:
        rows.tasks = _select(cursor, "load_tasks", "id", ids=list(need.task_ids), running_of=[])
    run_of = {task_id: task["run_id"] for task_id, task in rows.tasks.items()} | need.created
    run_ids = need.run_ids | set(run_of.values())
    if run_ids:
        rows.runs = _select(cursor, "load_runs", "id", ids=list(run_ids))
    # A run's current task is chosen among all its running tasks, loaded here
    # when a task of that run starts or finishes in this batch.
    recount = list({run_of[task_id] for task_id in need.status_task_ids if task_id in run_of})
    if recount:
        running = _select(cursor, "load_tasks", "id", ids=[], running_of=recount)
        rows.tasks = running | rows.tasks
    if need.job_task_ids:
        rows.accounting = _select(cursor, "load_accounting", ("job_id", "task_id"), task_ids=list(need.job_task_ids))
    return rows


def _select(cursor: Any, query: str, key: str | tuple[str, ...], **params: Any) -> dict:
    cursor.execute(QUERIES[query], params)
    columns = [column.name for column in cursor.description]
    found = (dict(zip(columns, values)) for values in cursor.fetchall())
    if isinstance(key, tuple):
        return {tuple(row[part] for part in key): row for row in found}
    return {row[key]: row for row in found}


def _save(cursor: Any, rows: rules.Rows) -> None:
    # Parents first: job_executions, job_accounting and log_entries refer to them.
    runs, tasks, accounting = rows.changed()
    for query, changed in (("save_runs", runs), ("save_tasks", tasks), ("save_accounting", accounting),
                           ("insert_log_entries", rows.logs)):
        if changed:
            cursor.execute(QUERIES[query], {"rows": _to_json(changed)})


def _to_json(rows: list[dict]) -> str:
    try:
        return json.dumps(rows, default=_json_value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # The tracker stores NaN and Infinity in payloads (Python's JSON allows
        # them) but PostgreSQL's JSON does not: keep them as strings rather
        # than fail the batch again and again.
        return json.dumps(_finite(rows), default=_json_value, separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _json_value(value: Any) -> Any:
    """Values JSON has no type for: times, and what payloads decode to (UUID, Decimal)."""
    if isinstance(value, datetime):
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which Python allows
        # (an event stored before ingest normalised its times would stop projection).
        # (The library's own times are UTC already: skipping the conversion shows in reprojection.)
        if value.tzinfo is not None and value.tzinfo is not timezone.utc:
            value = value.astimezone(timezone.utc)
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a view row")
