"""Connections to the appliance's PostgreSQL: one engine factory for every part."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
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


def make_engine(url: URL | str, *, pool_size: int = 5, application_name: str = "appliance") -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={**KEEPALIVE_ARGS, "application_name": application_name},
    )
