"""Connections to the appliance's PostgreSQL: one engine factory for every part."""

from __future__ import annotations

import time

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL

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


def libpq_dsn(url: URL) -> str:
    """The URL as libpq takes it, password included: pass it to psycopg2, never print it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def error_summary(error: BaseException) -> str:
    """The first line of the driver's own words (libpq never repeats a password),
    without SQLAlchemy's wrapping; the error's kind when it says nothing."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def make_engine(url: URL | str, *, pool_size: int = 5, application_name: str = "appliance") -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={**KEEPALIVE_ARGS, "application_name": application_name},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _remember_last_use)
    return engine


def _remember_last_use(dbapi_connection, connection_record) -> None:
    connection_record.info["last_used"] = time.monotonic()


def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    last_used = connection_record.info.get("last_used")
    if last_used is None or time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as error:
        # The pool discards this connection and checks out (or opens) another.
        raise exc.DisconnectionError(str(error)) from error
