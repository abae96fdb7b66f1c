"""The database seam: every connection the appliance opens, and what it does with one.

Modelled on procrastinate's connector. `connect()` opens one psycopg2
connection and `make_engine()` a pool, both with the shared settings
(keepalives, timeouts, an `application_name` that says which part it is), and
both hand out a `Connection`: psycopg2's own, plus the few operations every
part repeats (a named query in its own transaction, a transaction's cursor,
LISTEN and waiting for a notification, a savepoint). The queries themselves
live in appliance/sql/*.sql and are passed in by name from there.

Errors keep psycopg2's (and SQLAlchemy's, and the event store's) classes, but
the appliance tells them apart in one place, by kind: `unavailable` (the
database cannot be reached, or is a standby: try again), `schema_missing`
(reachable, but `appliance init` has not created what a query needs), and
anything else (a bug: a 500 and the server's log). `DISCONNECTED` is what a
lost or refused connection raises, for `except` clauses; `first_line` is
what an operator is shown of an error.
"""

from __future__ import annotations

import select
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from eventsourcing import persistence
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL

from appliance.config import libpq_params
from appliance.sql import load_queries

QUERIES = load_queries("db.sql")

# Key of the PostgreSQL advisory lock that serialises schema work across
# processes and replicas: creating the event store's tables, migrating the
# views, installing triggers. Fixed and documented so operators can see it
# in pg_locks: SELECT * FROM pg_locks WHERE locktype = 'advisory' AND objid = 1634758764.
SCHEMA_LOCK_KEY = 0x6170706C  # "appl"

# A connection dropped by the network without a close must be noticed in
# seconds, not after the kernel's default two hours of keepalive idle time.
KEEPALIVE_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "connect_timeout": 10,
}

# Pinging every checkout (pool_pre_ping) doubles the round trips of a
# one-statement command; a connection used less than this long ago is alive.
PING_AFTER_IDLE_SECONDS = 2.0

# What a lost or refused connection raises, in each layer it can surface from:
# psycopg2 directly, SQLAlchemy's wrapping, the event store's translation.
DISCONNECTED = (
    psycopg2.OperationalError, psycopg2.InterfaceError,
    exc.OperationalError, exc.InterfaceError,
    persistence.OperationalError, persistence.InterfaceError,
)
# Every error the database layers raise (the web answers each with a 503 or a 500).
DATABASE_ERRORS = (psycopg2.Error, exc.SQLAlchemyError, persistence.PersistenceError)
# "Unavailable, try again": an outage, the pool's timeout, or a standby (read-only, during a failover).
_UNAVAILABLE = (*DISCONNECTED, psycopg2.errors.ReadOnlySqlTransaction, exc.TimeoutError, exc.DisconnectionError)
# What a reachable database lacks before `appliance init` (or a part's first run).
SCHEMA_MISSING = (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedFunction,
                  psycopg2.errors.UndefinedColumn)

Params = Mapping[str, Any] | None


class Connection(psycopg2.extensions.connection):
    """A psycopg2 connection with the operations every part of the appliance needs.

    `query` arguments are SQL texts from a .sql file's named queries
    (`QUERIES["name"]`); `params` fill its %(name)s placeholders.
    """

    @contextmanager
    def transaction(self, *, dict_rows: bool = False) -> Iterator[psycopg2.extensions.cursor]:
        """A cursor in a transaction that commits when the block ends, or rolls back on an error."""
        factory = psycopg2.extras.RealDictCursor if dict_rows else None
        with self, self.cursor(cursor_factory=factory) as cursor:
            yield cursor

    def one(self, query: str, params: Params = None) -> tuple | None:
        """The first row of a query run in a transaction of its own (None when it has none)."""
        with self.transaction() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()

    def all(self, query: str, params: Params = None, *, dict_rows: bool = False) -> list:
        """Every row of a query run in a transaction of its own."""
        with self.transaction(dict_rows=dict_rows) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def run(self, query: str, params: Params = None) -> int:
        """Run a statement in a transaction of its own; the rows it touched."""
        with self.transaction() as cursor:
            cursor.execute(query, params)
            return cursor.rowcount

    def wait_for_notification(self, seconds: float, *also: int) -> list:
        """Wait up to `seconds` for a NOTIFY (or for a file descriptor in `also` to be readable).

        Notifications only wake their listener, which then reads its table,
        so they are cleared here. Returns what is readable among `also`, and
        this connection when a notification (or anything) came; raises when
        the server closed the connection.
        """
        self.poll()  # notifications that came with the last replies
        if self.notifies:
            self.notifies.clear()
            return [self]
        readable = select.select([self, *also], [], [], seconds)[0]
        if self in readable:
            self.poll()
            self.notifies.clear()
        return readable


@contextmanager
def savepoint(cursor: Any) -> Iterator[None]:
    """A block whose failure undoes its own statements only: the caller's transaction
    stays usable, and the error goes on up to the caller."""
    cursor.execute(QUERIES["savepoint"])
    try:
        yield
    except Exception:
        cursor.execute(QUERIES["rollback_to_savepoint"])
        raise
    cursor.execute(QUERIES["release_savepoint"])


def connect(url: URL, application_name: str, *, connect_timeout: int | None = None,
            idle_limit: int | None = None, async_: bool = False) -> Connection:
    """One connection with the shared settings; `connect_timeout` in seconds overrides libpq's 10.

    Every host the URL names is tried in turn, as the pool's connections do
    (config.libpq_params). With `idle_limit` (seconds) the server ends the session once
    it is idle that long, in a transaction or not: a fence for a process that may
    freeze holding a lock.
    """
    params = {**libpq_params(url), **KEEPALIVE_ARGS, "application_name": application_name}
    if connect_timeout is not None:
        params["connect_timeout"] = connect_timeout
    if idle_limit is not None:
        limit = f"{idle_limit}s"
        params["options"] = " ".join(filter(None, [
            params.get("options"), f"-c idle_session_timeout={limit} -c idle_in_transaction_session_timeout={limit}"]))
    return psycopg2.connect(connection_factory=Connection, async_=async_, **params)


@contextmanager
def connection(url: URL, application_name: str) -> Iterator[Connection]:
    """`connect`, closed when the block ends."""
    opened = connect(url, application_name)
    try:
        yield opened
    finally:
        opened.close()


def make_engine(url: URL | str, *, pool_size: int = 5, application_name: str = "appliance") -> Engine:
    """A pool of `Connection`s with the shared settings, for SQLAlchemy and the event store."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={**KEEPALIVE_ARGS, "application_name": application_name, "connection_factory": Connection},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _remember_last_use)
    event.listen(engine, "handle_error", _drop_if_read_only)
    return engine


def _drop_if_read_only(context) -> None:
    # A server that turned read-only under its sessions (a primary fenced or demoted in place)
    # is not the one target_session_attrs=read-write chose: the pool drops its connections,
    # and new ones go to the writable server, instead of every write failing on them for good.
    if isinstance(context.original_exception, psycopg2.errors.ReadOnlySqlTransaction):
        context.is_disconnect = True


def _remember_last_use(dbapi_connection, connection_record) -> None:
    connection_record.info["last_used"] = time.monotonic()


def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    last_used = connection_record.info.get("last_used")
    if last_used is None or time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(QUERIES["ping"])
        dbapi_connection.rollback()
    except Exception as error:
        # The pool discards this connection and checks out (or opens) another.
        raise exc.DisconnectionError(str(error)) from error


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: SQLAlchemy's `.orig` and explicit `raise ... from`.
    Not `__context__`: an error raised while handling an outage is not itself one."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "orig", None) or error.__cause__


def unavailable(error: BaseException) -> bool:
    """The database cannot be reached, or cannot write now: the same request may succeed later."""
    for cause in causes(error):
        if isinstance(cause, _UNAVAILABLE):
            return True
        if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
            return True
    return False


def schema_missing(error: BaseException) -> bool:
    """The database is reachable but lacks a table, column or function: `appliance init` is due."""
    return any(isinstance(cause, SCHEMA_MISSING) for cause in causes(error))


def first_line(error: BaseException) -> str:
    """What an operator is shown of a database error: the first line of the driver's own
    words (libpq never repeats a password), without SQLAlchemy's wrapping; the error's
    kind when it says nothing."""
    # "connection already closed" from a rollback hides the first error: show that one.
    while isinstance(error.__context__, DISCONNECTED):
        error = error.__context__
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    # Given several hosts, libpq says why each one failed, a line apiece (the first one without
    # its "connection to server" in an asynchronous connection): during a failover the second
    # host's reason ("session is read-only") is the one that matters.
    later_hosts = [line for line in lines[1:] if line.startswith("connection to server")]
    if later_hosts:
        return "; ".join([lines[0], *later_hosts])
    return lines[0] if lines else type(cause).__name__
