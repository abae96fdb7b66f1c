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
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import TopicError
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyTrackingRecorder

from appliance import db
from appliance.biomero_tables import BIOMERO_TABLE_NAMES, POSITION
from appliance.db import SCHEMA_LOCK_KEY
from appliance.projection import biomero_views as keep_biomero
from appliance.projection import rules
from appliance.sql import load_queries
from appliance.views import VIEW_TABLES

log = logging.getLogger(__name__)
QUERIES = load_queries("projection.sql")
TRACKING_TABLE = "projector_tracking"


@dataclass(frozen=True)
class Upstream:
    """A log the projector follows, with its own position (a projector_tracking
    row named after the application that writes the log) and its own queries."""

    name: str
    table: str
    select_query: str  # the next events after a position
    newest_query: str  # the newest notification id
    listen_query: str


APPLIANCE = Upstream("Appliance", "appliance_events", "select_events", "max_notification_id", "listen")
# BIOMERO's own tracker's log, read only (appliance.projection.biomero decodes it).
BIOMERO = Upstream("WorkflowTracker", "workflowtracker_events", "select_biomero_events",
                   "max_biomero_notification_id", "listen_biomero")
UPSTREAM = APPLIANCE.name
# The session-level advisory lock that only one projector (or reprojection)
# holds at a time. Fixed and documented, to be found in pg_locks:
# SELECT * FROM pg_locks WHERE locktype = 'advisory' AND objid = 1886547818.
LOCK_KEY = 0x70726F6A  # "proj"
REBUILD_TABLE = "projection_rebuild"  # an unfinished rebuild's marker (views.ProjectionRebuild)
SKIPPED_TABLE = "projection_skipped_topics"  # events of unknown topics, counted (views.ProjectionSkippedTopic)
# Events set aside, and the projector's progress for health (views.ProjectionQuarantine, views.ProjectorProgress).
QUARANTINE_TABLE, PROGRESS_TABLE = "projection_quarantine", "projector_progress"


# The active projector's connection is fenced: the server ends it once idle for
# this long, in a transaction or not. A frozen projector (SIGSTOP) keeps its TCP
# connection, and with it the advisory lock, for ever otherwise; so fenced, its
# standby takes over FENCE_SECONDS (+ STANDBY_RETRY) later, and the frozen one,
# woken, finds its transaction rolled back and its connection gone: it cannot
# commit a batch the standby has applied. The active projector is never idle
# that long: it looks at the log at least every FENCE_SECONDS / 2. (db.connect's idle_limit.)
FENCE_SECONDS = 10


def tracking_recorder(datastore: SQLAlchemyDatastore) -> SQLAlchemyTrackingRecorder:
    return SQLAlchemyTrackingRecorder(datastore, tracking_table_name=TRACKING_TABLE)


def prepare(recorder: SQLAlchemyTrackingRecorder, connection: db.Connection, upstream: Upstream = APPLIANCE) -> None:
    """Create the tracking table and the upstream's row if missing (idempotent, safe to race)."""
    assert recorder.datastore.engine is not None
    with recorder.datastore.engine.begin() as schema_connection:
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide: serialise.
        schema_connection.exec_driver_sql(db.QUERIES["schema_xact_lock"], {"key": SCHEMA_LOCK_KEY})
        recorder.tracking_table.create(schema_connection, checkfirst=True)
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["ensure_position"], {"application": upstream.name})


def present(connection: db.Connection, upstream: Upstream) -> bool:
    """Whether the upstream's log exists in this database (BIOMERO's may not, or not yet)."""
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["missing_tables"], {"tables": [upstream.table]})
        return not cursor.fetchall()


def present_upstreams(connection: db.Connection) -> tuple[Upstream, ...]:
    """The logs in this database: the appliance's, and BIOMERO's when it is here."""
    return tuple(upstream for upstream in (APPLIANCE, BIOMERO)
                 if upstream is APPLIANCE or present(connection, upstream))


class ViewsMissing(RuntimeError):
    """The view tables do not exist: the database was never migrated."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"the view tables are missing ({', '.join(missing)}): run `appliance migrate` first")


def check_views(connection: db.Connection, biomero_views: bool = False) -> None:
    """Raise ViewsMissing unless every view table exists (BIOMERO's four too, with
    `biomero_views`); reads only."""
    tables = [*VIEW_TABLES, REBUILD_TABLE, SKIPPED_TABLE, QUARANTINE_TABLE, PROGRESS_TABLE]
    if biomero_views:
        tables += [*BIOMERO_TABLE_NAMES, POSITION.name]
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["missing_tables"], {"tables": tables})
        missing = [name for name, in cursor.fetchall()]
    if missing:
        raise ViewsMissing(missing)


def try_lock(connection: db.Connection) -> bool:
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["try_lock"], {"key": LOCK_KEY})
        return cursor.fetchone()[0]


def lock_holder(connection: db.Connection) -> str:
    """Who holds the projector lock, in words, for a waiting process to say."""
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["lock_holder"], {"key": LOCK_KEY})
        row = cursor.fetchone()
    if row is None:
        return "nobody (just released)"
    pid, name, client, since = row
    return f"backend pid {pid} ({name or 'no application name'}, from {client}, connected since {since:%Y-%m-%d %H:%M:%S %Z})"


def position(connection: db.Connection, upstream: Upstream = APPLIANCE) -> int:
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["select_position"], {"application": upstream.name})
        row = cursor.fetchone()
        return 0 if row is None else row[0]


def max_notification_id(connection: db.Connection, upstream: Upstream = APPLIANCE) -> int:
    with connection.transaction() as cursor:
        cursor.execute(QUERIES[upstream.newest_query])
        return cursor.fetchone()[0]


def reset(connection: db.Connection, upstreams: tuple[Upstream, ...] = (APPLIANCE,), *,
          biomero_views: bool = False, empty_biomero_tables: bool = False) -> None:
    """Empty the view tables (not change_notifications), rewind the upstreams' positions to 0.

    Also marks each upstream's newest event now: until its position passes
    it, its batches are quiet, whoever projects them (see lock_position), so a
    projector that finishes an interrupted rebuild fires no change triggers
    for old runs. The count of events skipped for unknown topics starts over.
    With `biomero_views`, BIOMERO's four tables are rebuilt along (their
    position rewound too); their rows are emptied only with `empty_biomero_tables`,
    else the replay writes over them.
    """
    names = [upstream.name for upstream in upstreams]
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["suppress_change_notifications"])
        cursor.execute(QUERIES["reset_views"], {"applications": names})
        if biomero_views:
            keep_biomero.rewind(cursor, empty=empty_biomero_tables)
        for upstream in upstreams:
            cursor.execute(QUERIES[upstream.newest_query])
            cursor.execute(QUERIES["mark_rebuild"], {"application": upstream.name,
                                                     "quiet_until": cursor.fetchone()[0]})


def end_rebuild(cursor: Any, upstream: Upstream = APPLIANCE) -> None:
    """Remove the rebuild's marker, in the transaction of its last batch."""
    cursor.execute(QUERIES["end_rebuild"], {"application": upstream.name})


@dataclass(frozen=True)
class Batch:
    """What one project_batch did."""

    applied: int  # events
    position: int | None  # after them; None when there was nothing to apply
    more: bool  # more events may follow at once: a full batch, or one that stopped at a rebuild's marker


def project_batch(connection: db.Connection, mapper: Mapper, limit: int, *,
                  at_end: Callable[[Any], None] | None = None, upstream: Upstream = APPLIANCE,
                  biomero_views: bool = False) -> Batch:
    """Project the upstream's next `limit` events at most, in one transaction.

    An event whose topic no mapping knows (another application writing to
    the same table) is skipped: the position moves past it and its topic is
    counted in projection_skipped_topics, in the same transaction. Batches that replay what a rebuild found (up to its marker, whoever
    projects them) silence the change triggers: no flood of old changes.
    `at_end(cursor)` runs in the same transaction when this batch reaches the
    end of the log, so its work commits with the last events (reproject's
    stale check). With `biomero_views` the batch keeps BIOMERO's four tables
    too, and their position (appliance.projection.biomero_views).
    """
    with _cycle_collector_paused():
        # The batch's objects are freed on return, before the collector is back.
        return _project_batch(connection, mapper, limit, at_end, upstream, biomero_views)


def _project_batch(connection: db.Connection, mapper: Mapper, limit: int, at_end: Callable[[Any], None] | None,
                   upstream: Upstream, biomero_views: bool) -> Batch:
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["lock_position"], {"application": upstream.name})
        after, replaying, upto = cursor.fetchone()
        stored = _select_events(cursor, upstream, after, upto, limit)
        events, skipped = decode(mapper, stored)
        # Such a replay stops at the rebuild's marker; SET LOCAL before any row is written.
        replaying = replaying and bool(stored)
        if replaying:
            cursor.execute(QUERIES["suppress_change_notifications"])
        if events:
            apply_events(cursor, events, biomero_views)
        last = stored[-1][0] if stored else None
        if last is not None:
            _count_skipped(cursor, upstream, skipped)
            cursor.execute(QUERIES["save_position"], {"application": upstream.name, "position": last})
            if biomero_views:
                keep_biomero.save_position(cursor, upstream.name, last)
        more = len(stored) == limit or replaying
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


def _select_events(cursor: Any, upstream: Upstream, after: int, upto: int, limit: int) -> list[tuple]:
    """The upstream's stored events after position `after`, up to `upto`, `limit` at most, oldest first."""
    cursor.execute(QUERIES[upstream.select_query], {"after": after, "upto": upto, "limit": limit})
    return cursor.fetchall()


def decode(mapper: Mapper, notifications: list[tuple]) -> tuple[list[tuple[int, Any]], dict[str, list[int]]]:
    """(notification id, domain event) for each row of _select_events, and the
    ids of the rows whose topic resolves to no class, by topic."""
    events: list[tuple[int, Any]] = []
    skipped: dict[str, list[int]] = {}
    for row_id, originator_id, version, topic, state in notifications:
        try:
            event = mapper.to_domain_event(Notification(
                id=row_id, originator_id=UUID(str(originator_id)), originator_version=version,
                topic=topic, state=bytes(state),
            ))
        except TopicError:
            skipped.setdefault(topic, []).append(row_id)
            continue
        events.append((row_id, event))
    return events, skipped


def _count_skipped(cursor: Any, upstream: Upstream, skipped: dict[str, list[int]]) -> None:
    """Count the skipped events per topic; a topic seen for the first time is named in the log, once."""
    for topic, ids in skipped.items():
        cursor.execute(QUERIES["count_skipped"], {"application": upstream.name, "topic": topic,
                                                  "events": len(ids), "first": ids[0], "last": ids[-1]})
        if cursor.fetchone()[0]:
            log.warning("%s: events of topic %r are of no application the projector knows; skipping them "
                        "(first: notification %d), counted in projection_skipped_topics",
                        upstream.table, topic, ids[0])


def apply_events(cursor: Any, events: list[tuple[int, Any]], biomero_views: bool = False) -> None:
    """Apply the events to their view rows, and BIOMERO's four tables' with `biomero_views`
    (the position is the caller's)."""
    rows = _load(cursor, [event for _, event in events])
    tables = keep_biomero.load(cursor, rows) if biomero_views else None
    for row_id, event in events:
        rules.apply(rows, row_id, event)
        if tables is not None:
            keep_biomero.apply(tables, rows, event)  # reads the rows as this event left them
    rules.finish(rows)
    _save(cursor, rows)
    if tables is not None:
        keep_biomero.save(cursor, tables, rows, _to_json)


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
