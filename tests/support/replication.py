"""A primary and a synchronous standby streaming from it: two throwaway PostgreSQL clusters
for the failover test, and what the test asks of them.

Synchronous (`synchronous_standby_names = '*'`, `synchronous_commit = on`): a commit
returns only once the standby has flushed it, so whatever the appliance acknowledged
is on the standby when the primary goes.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from appliance.localpg import LocalPostgres
from tests.support.fault_kit import administer
from tests.support.sql import query
from tests.support.waiting import wait_for


@contextmanager
def replicated_pair(password: str) -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    """(primary, standby), both running, replication synchronous; both destroyed afterwards."""
    # durable: the clusters' fast settings would turn synchronous_commit off.
    primary = LocalPostgres.temporary(durable=True, password=password).start()
    standby = None
    try:
        standby = primary.standby().start()
        # On the primary only, after the copy: the standby, once promoted, has no standby to wait for.
        administer(primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
        administer(primary, "SELECT pg_reload_conf()")
        wait_for(lambda: replication_states(primary) == [("streaming", "sync")], 30, interval=0.1,
                 message="the standby streaming synchronously")
        yield primary, standby
    finally:
        for server in (standby, primary):
            if server is not None:
                server.destroy()


def replication_states(primary: LocalPostgres) -> list[tuple[str, str]]:
    """(state, sync_state) of each standby connected to the primary."""
    return query(primary.url(), "SELECT state, sync_state FROM pg_stat_replication")


def two_hosts_url(primary: LocalPostgres, standby: LocalPostgres, database: str, form: str) -> str:
    """DATABASE_URL naming both servers, primary first, in one of the forms the appliance takes:
    `repeated` (host=h:p&host=h:p), `keywords` (host=a,b&port=x,y) or `uri` (h:p,h:p/db)."""
    credentials = primary.url().split("//", 1)[1].split("@", 1)[0]
    only_writable = "target_session_attrs=read-write"
    if form == "repeated":
        return (f"postgresql://{credentials}@/{database}?host=127.0.0.1:{primary.port}"
                f"&host=127.0.0.1:{standby.port}&{only_writable}")
    if form == "keywords":
        return (f"postgresql://{credentials}@/{database}?host=127.0.0.1,127.0.0.1"
                f"&port={primary.port},{standby.port}&{only_writable}")
    if form == "uri":
        return f"postgresql://{credentials}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{database}?{only_writable}"
    raise ValueError(f"no URL form {form!r}")
