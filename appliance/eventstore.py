"""The event store: eventsourcing-sqlalchemy, with its hot paths in one round trip.

The library's recorder appends events through the ORM: BEGIN, LOCK TABLE,
INSERT, flush, NOTIFY, COMMIT, about five round trips and a unit of work per
command (~220 commands/s measured here). `EventRecorder` keeps the library's
tables, notification channel and guarantees (ordered, gapless notification
ids; a unique (originator_id, originator_version) for optimistic concurrency)
but sends each append, and each read, as one statement batch in one round
trip on an autocommit connection, where PostgreSQL runs a multi-statement
query as one implicit transaction. See docs/performance.md for the figures.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from uuid import UUID

import psycopg2
import psycopg2.errors
from eventsourcing import persistence
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import sessionmaker

from appliance import db
from appliance.db import SCHEMA_LOCK_KEY
from appliance.sql import load_queries

QUERIES = load_queries("eventstore.sql")
EVENTS_TABLE = "appliance_events"
NO_UPPER_BOUND = 2**62
LOCK_TIMEOUT = "10s"


class EventRecorder(SQLAlchemyApplicationRecorder):
    """The application recorder for PostgreSQL (psycopg2)."""

    def __init__(self, datastore: SQLAlchemyDatastore, *, events_table_name: str, **kwargs: Any):
        if events_table_name != EVENTS_TABLE:
            raise persistence.ProgrammingError(
                f"the event store's queries are written for {EVENTS_TABLE}, not {events_table_name}"
            )
        super().__init__(datastore, events_table_name=events_table_name, **kwargs)
        self._local = threading.local()  # the connection of a thread's exclusive() block
        assert datastore.engine is not None
        self.engine: Engine = datastore.engine  # type: ignore[assignment]

    def create_table(self) -> None:
        # Several processes may start at once on an empty database; concurrent
        # CREATE TABLE IF NOT EXISTS can still collide, so serialise them.
        with self.engine.begin() as connection:
            connection.exec_driver_sql(db.QUERIES["schema_xact_lock"], {"key": SCHEMA_LOCK_KEY})
            self.create_tables(connection)

    def create_tables(self, connection: Connection) -> None:
        """The tables, on a connection whose session holds the schema lock already (the migrator's)."""
        for table in self.tables:
            table.create(connection, checkfirst=True)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, receipts: Sequence[UUID] = (), **kwargs: Any
    ) -> Sequence[int]:
        """Append events; `receipts` are client event ids recorded with them."""
        if kwargs.get("session") is not None or kwargs.get("tracking") is not None:
            return super().insert_events(stored_events, **kwargs)
        if not stored_events and not receipts:
            return []
        params = {
            "lock_timeout": LOCK_TIMEOUT,
            "originator_ids": [str(event.originator_id) for event in stored_events],
            "versions": [event.originator_version for event in stored_events],
            "topics": [event.topic for event in stored_events],
            "states": [psycopg2.Binary(event.state) for event in stored_events],
        }
        query = "insert_events"
        if receipts:
            query, params["receipts"] = "insert_events_with_receipts", [str(event_id) for event_id in receipts]
        with self._cursor() as cursor:
            cursor.execute(QUERIES[query], params)
            return [row[0] for row in cursor.fetchall()]

    def select_receipts(self, event_ids: Sequence[UUID]) -> set[UUID]:
        """The client event ids among these that were applied already."""
        with self._cursor() as cursor:
            cursor.execute(QUERIES["select_receipts"], {"event_ids": [str(i) for i in event_ids]})
            return {_as_uuid(row[0]) for row in cursor.fetchall()}

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        query = QUERIES["select_events_desc" if desc else "select_events"]
        params = {
            "originator_id": str(originator_id),
            "gt": 0 if gt is None else gt,
            "lte": NO_UPPER_BOUND if lte is None else lte,
            "limit": limit,
        }
        with self._cursor() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
        originator_id = _as_uuid(originator_id)
        return [StoredEvent(originator_id, version, topic, bytes(state)) for version, topic, state in rows]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        params = {
            "start": first,
            "stop": NO_UPPER_BOUND if stop is None else stop,
            "topics": list(topics),
            "limit": limit,
        }
        with self._cursor() as cursor:
            cursor.execute(QUERIES["select_notifications"], params)
            rows = cursor.fetchall()
        return [
            Notification(
                id=row_id, originator_id=_as_uuid(originator_id), originator_version=version,
                topic=topic, state=bytes(state),
            )
            for row_id, originator_id, version, topic, state in rows
        ]

    def max_notification_id(self) -> int | None:
        with self._cursor() as cursor:
            cursor.execute(QUERIES["max_notification_id"])
            return cursor.fetchone()[0]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """This thread's reads and appends in the block: one transaction holding the write lock.

        No other writer can append between what the block reads and what it
        appends, so its appends meet no version conflict. It stalls every other
        writer meanwhile: the tracker uses it for its last attempt only.
        """
        if getattr(self._local, "connection", None) is not None:
            raise persistence.ProgrammingError("exclusive() blocks do not nest")
        connection = self.engine.raw_connection()
        dbapi_connection = connection.dbapi_connection
        try:
            with _translated_errors(connection):
                dbapi_connection.autocommit = False
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(QUERIES["lock_events"], {"lock_timeout": LOCK_TIMEOUT})
            self._local.connection = dbapi_connection
            try:
                yield
            finally:
                self._local.connection = None
            with _translated_errors(connection):
                dbapi_connection.commit()
        finally:
            if not dbapi_connection.closed:
                dbapi_connection.rollback()  # nothing left after a commit; all of it after an error
            connection.close()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on a pooled connection in autocommit mode (or in this thread's exclusive block)."""
        locked = getattr(self._local, "connection", None)
        if locked is not None:
            with _translated_errors(None), locked.cursor() as cursor:
                yield cursor
            return
        connection = self.engine.raw_connection()
        dbapi_connection = connection.dbapi_connection
        try:
            with _translated_errors(connection):
                dbapi_connection.autocommit = True
                with dbapi_connection.cursor() as cursor:
                    yield cursor
        finally:
            if not dbapi_connection.closed:
                # The pool hands this connection to ORM sessions next.
                dbapi_connection.autocommit = False
            connection.close()


@contextmanager
def _translated_errors(connection: Any) -> Iterator[None]:
    """psycopg2's errors as the library's; a broken pooled `connection` is not reused."""
    try:
        yield
    except psycopg2.errors.UniqueViolation as error:
        raise persistence.IntegrityError(error) from error
    except (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.errors.ReadOnlySqlTransaction) as error:
        # Read-only: a primary fenced or demoted in place; a new connection finds the writable
        # server (target_session_attrs=read-write) where this one would fail every append.
        if connection is not None:
            connection.invalidate(error)
        raise persistence.OperationalError(error) from error
    except psycopg2.Error as error:
        raise persistence.PersistenceError(error) from error


def _as_uuid(value: UUID | str) -> UUID:
    # psycopg2 returns UUID objects once any library has registered the adapter.
    return value if isinstance(value, UUID) else UUID(value)


class EventStoreFactory(SQLAlchemyFactory):
    """eventsourcing-sqlalchemy's factory on a given engine, with `EventRecorder`."""

    application_recorder_class = EventRecorder

    def __init__(self, env: Environment, engine: Engine):
        persistence.InfrastructureFactory.__init__(self, env)
        self._schema_name = None
        self.datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))
