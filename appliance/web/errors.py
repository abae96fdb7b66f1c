"""Which database errors mean "unavailable, try again" (503) and which are bugs (500).

The same outage reaches the web in many shapes: psycopg2's own errors, the
SQLAlchemy errors that wrap them (`.orig`), the pool's timeout, and the
eventsourcing library's persistence errors raised from them (`__cause__`). A
read-only transaction means the server is a standby (during a failover, say):
it too passes. A programming error (bad SQL, a missing column) does not, and
stays a 500 for the server's log.
"""

from __future__ import annotations

from typing import Iterator

import psycopg2
import psycopg2.errors
from eventsourcing import persistence
from sqlalchemy import exc

DATABASE_ERRORS = (psycopg2.Error, exc.SQLAlchemyError, persistence.PersistenceError)
UNAVAILABLE = (
    psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.errors.ReadOnlySqlTransaction,
    exc.OperationalError, exc.InterfaceError, exc.TimeoutError, exc.DisconnectionError,
    persistence.OperationalError, persistence.InterfaceError,
)
# What a reachable database lacks before `appliance init` (or a part's first run).
SCHEMA_MISSING = (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedFunction,
                  psycopg2.errors.UndefinedColumn)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: SQLAlchemy's `.orig` and explicit `raise ... from`.
    Not `__context__`: an error raised while handling an outage is not itself one."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "orig", None) or error.__cause__


def database_unavailable(error: BaseException) -> bool:
    for cause in _causes(error):
        if isinstance(cause, UNAVAILABLE):
            return True
        if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
            return True
    return False


def schema_missing(error: BaseException) -> bool:
    return any(isinstance(cause, SCHEMA_MISSING) for cause in _causes(error))
