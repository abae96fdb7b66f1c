"""Events the projector cannot apply are set aside, never retried forever.

A batch that fails for a reason other than the database (an outage, a missing
table, a refused privilege: `systemic`) is split in halves until the one event
that fails alone is found (about log2(batch size) tries; the halves before it
commit as usual). That event is recorded with its error in
`projection_quarantine`, the position moves past it in the same transaction,
and projection goes on. `appliance quarantine` lists, retries (after a fix)
and discards them; health reports them until then.

The monitor's changes it gave up on (after MONITOR_MAX_ATTEMPTS handlings)
are shown and handled the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import psycopg2
import sqlalchemy.exc
from eventsourcing.persistence import Mapper

from appliance import db
from appliance.projection import biomero_views as biomero_views_rows
from appliance.projection import store
from appliance.sql import load_queries

log = logging.getLogger(__name__)
QUERIES = load_queries("quarantine.sql")
ERROR_CHARS = 2000  # of an error kept with its event


def systemic(error: BaseException) -> bool:
    """An error no single event causes: the database away or refusing, the schema
    missing or wrong. Retried as a whole, never a reason to set an event aside.
    A value a column refuses (DataError, IntegrityError) or an error in Python
    (decoding, the rules) belongs to the event."""
    if isinstance(error, (psycopg2.DataError, psycopg2.IntegrityError)):
        return False
    return isinstance(error, (psycopg2.Error, sqlalchemy.exc.SQLAlchemyError, store.ViewsMissing, MemoryError))


def project_or_quarantine(connection: db.Connection, mapper: Mapper, limit: int, *,
                          at_end: Callable[[Any], None] | None = None,
                          upstream: store.Upstream = store.APPLIANCE, biomero_views: bool = False) -> store.Batch:
    """store.project_batch, but an event that cannot be applied is quarantined
    (the batches before it applied) instead of failing the batch again and again."""
    try:
        return store.project_batch(connection, mapper, limit, at_end=at_end, upstream=upstream,
                                   biomero_views=biomero_views)
    except Exception as error:  # noqa: BLE001 - systemic errors go on up
        if systemic(error):
            raise
        log.warning("%s: a batch of up to %d events failed (%s): looking for the event that fails",
                    upstream.table, limit, _summary(error))
    return _bisect(connection, mapper, limit, upstream, biomero_views)


def _bisect(connection: db.Connection, mapper: Mapper, failing: int, upstream: store.Upstream,
            biomero_views: bool) -> store.Batch:
    """The first `failing` events hold one that fails: apply the halves before it, set it aside."""
    applied = 0
    while True:
        size = max(failing // 2, 1)
        try:
            batch = store.project_batch(connection, mapper, size, upstream=upstream, biomero_views=biomero_views)
        except Exception as error:  # noqa: BLE001 - systemic errors go on up
            if systemic(error):
                raise
            if size == 1:
                return store.Batch(applied, _quarantine_next(connection, error, upstream, biomero_views), more=True)
            failing = size
            continue
        applied += batch.applied
        if batch.applied < size or failing - size < 1:
            # The log ended, or the failure does not come back alone (it needed
            # its batch): nothing to set aside, the next batch goes as usual.
            return store.Batch(applied, batch.position, more=batch.more)
        failing -= size


def _quarantine_next(connection: db.Connection, error: BaseException, upstream: store.Upstream,
                     biomero_views: bool) -> int:
    """Record the event after the position with its error and move the position past it."""
    with connection.transaction() as cursor:
        cursor.execute(store.QUERIES["lock_position"], {"application": upstream.name})
        after = cursor.fetchone()[0]
        event_id, originator_id, version, topic, _ = _stored_event(cursor, upstream, after + 1)
        cursor.execute(QUERIES["quarantine_event"], {
            "application": upstream.name, "id": event_id, "originator_id": str(originator_id),
            "originator_version": version, "topic": topic, "error": describe(error)})
        cursor.execute(store.QUERIES["save_position"], {"application": upstream.name, "position": event_id})
        if biomero_views:
            biomero_views_rows.save_position(cursor, upstream.name, event_id)
    log.error("%s: event %d (%s of %s) cannot be applied and is set aside: %s; "
              "`appliance quarantine` lists, retries and discards such events",
              upstream.table, event_id, topic.rpartition(".")[2], originator_id, _summary(error))
    return event_id


def _stored_event(cursor: Any, upstream: store.Upstream, at_least: int) -> tuple | None:
    """The upstream's first stored event from notification id `at_least` on, as a batch reads it."""
    cursor.execute(store.QUERIES[upstream.select_query], {"after": at_least - 1, "upto": 2**63 - 1, "limit": 1})
    return cursor.fetchone()


def describe(error: BaseException) -> str:
    """The error as kept with its event: its kind and the driver's (or Python's) words."""
    text = f"{type(error).__name__}: {str(error).strip()}"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "..."


def _summary(error: BaseException) -> str:
    return describe(error).splitlines()[0]


@dataclass(frozen=True)
class Retried:
    notification_id: int
    applied: bool
    error: str | None = None


def quarantined_events(connection: db.Connection) -> list[dict]:
    return _rows(connection, QUERIES["quarantined_events"], {})


def given_up_changes(connection: db.Connection) -> list[dict]:
    return _rows(connection, QUERIES["given_up_changes"], {})


def retry_event(connection: db.Connection, mappers: dict[str, Mapper], application: str, notification_id: int,
                biomero_views: bool = False) -> Retried:
    """Apply a quarantined event to the views as they are now (after a fix, say);
    released on success, kept with its new error otherwise. The log's tracking
    row is locked meanwhile, so no live batch interleaves with it. `mappers`:
    the mapper of each log, by its application name; `biomero_views`: BIOMERO's
    four tables are kept too (APPLIANCE_BIOMERO_VIEWS)."""
    upstream = _upstream(application)
    try:
        with connection.transaction() as cursor:
            cursor.execute(store.QUERIES["lock_position"], {"application": application})
            cursor.execute(QUERIES["is_quarantined"], {"application": application, "id": notification_id})
            stored = _stored_event(cursor, upstream, notification_id) if cursor.fetchone() else None
            if stored is None or stored[0] != notification_id:
                return Retried(notification_id, False, "no such quarantined event")
            events, _ = store.decode(mappers[application], [stored])
            store.apply_events(cursor, events, biomero_views)
            cursor.execute(QUERIES["release_event"], {"application": application, "id": notification_id})
    except Exception as error:  # noqa: BLE001 - systemic errors go on up
        if systemic(error):
            raise
        with connection.transaction() as cursor:
            cursor.execute(QUERIES["retry_failed"], {"application": application, "id": notification_id,
                                                     "error": describe(error)})
        return Retried(notification_id, False, describe(error))
    return Retried(notification_id, True)


def _upstream(application: str) -> store.Upstream:
    return next(u for u in (store.APPLIANCE, store.BIOMERO) if u.name == application)


def discard_event(connection: db.Connection, application: str, notification_id: int) -> bool:
    """Stop reporting a quarantined event; the event stays in the store, unapplied."""
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["release_event"], {"application": application, "id": notification_id})
        return cursor.rowcount > 0


def retry_changes(connection: db.Connection, ids: list[int]) -> list[int]:
    """Given-up changes back to the monitor; the ids it takes back."""
    return [row["id"] for row in _rows(connection, QUERIES["retry_changes"], {"ids": ids})]


def discard_changes(connection: db.Connection, ids: list[int]) -> list[int]:
    return [row["id"] for row in _rows(connection, QUERIES["discard_changes"], {"ids": ids})]


def clear(connection: db.Connection, upstreams: tuple[store.Upstream, ...]) -> None:
    """A rebuild starts over: it sets aside anew what it cannot apply."""
    with connection.transaction() as cursor:
        cursor.execute(QUERIES["clear_quarantine"], {"applications": [upstream.name for upstream in upstreams]})


def _rows(connection: db.Connection, sql: str, params: dict) -> list[dict]:
    with connection.transaction() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
