"""PostgreSQL failover under load: a primary and a synchronous standby (two clusters the
test starts, tests/support/replication.py) and DATABASE_URL naming both with
target_session_attrs=read-write. While tests/support/loadgen.py sends events, the
primary is stopped (or fenced: left running read-only, its sessions ended) and the
standby promoted.

Acknowledged means on the standby too (synchronous replication), so no acknowledged
event may be lost, and none applied twice; and every program must be back on the new
primary within 30 s of the promotion: ingest acknowledging again, the projector
projecting an event written there, the monitor listening there (its heartbeat comes
after LISTEN and a claim), an appliance started while there was no primary at all
(wait-for-db, then the migrator) through, and a WorkflowTracker whose pooled
connections were all to the old primary recording again. The appliance's programs
must have reconnected, not been restarted.
"""

from __future__ import annotations

import secrets
import time

import pytest

from appliance import WorkflowTracker, db
from appliance.config import parse_database_url
from appliance.localpg import LocalPostgres
from appliance.projection import store
from tests.support import secret_scan
from tests.support.fault_kit import (PROGRAMS, TOKEN, administer, appliance_starter, create_database, error_lines,
                                     read_only, settle_exactly_once, wait_until_serving)
from tests.support.loadgen import LoadGenerator
from tests.support.replication import replicated_pair, two_hosts_url
from tests.support.sql import query
from tests.support.waiting import wait_for

BACK_WITHIN = 30.0  # seconds after the promotion, the issue's
DATABASE = "failover"
PASSWORD = f"pw-{secrets.token_urlsafe(16)}"
secret_scan.watch(PASSWORD)


@pytest.fixture
def servers():
    with replicated_pair(PASSWORD) as (primary, standby):
        create_database(primary, DATABASE)
        yield primary, standby


@pytest.fixture
def start_appliance(tmp_path):
    """start_appliance(database_url, name) -> (Appliance, port); every one stopped afterwards."""
    with appliance_starter(tmp_path) as start:
        yield start


def fence(primary: LocalPostgres) -> None:
    """The old primary left running, but read-only and its client sessions ended (as a failover
    manager fences it): libpq must pass over it though it is named first."""
    read_only(primary, "on")
    administer(primary, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")


# How the old primary goes.
OLD_PRIMARY = {"stopped": LocalPostgres.stop, "fenced": fence}


@pytest.mark.parametrize("old_primary", OLD_PRIMARY)
def test_promoting_the_standby_under_load_loses_nothing_and_every_program_comes_back(
        servers, start_appliance, old_primary):
    primary, standby = servers
    new_primary = standby.url(DATABASE)
    appliance, port = start_appliance(two_hosts_url(primary, standby, DATABASE, "repeated"), "appliance")
    wait_until_serving(appliance, port)
    pids = {program: appliance.pid_of(program) for program in PROGRAMS}
    tracker = WorkflowTracker(database_url=two_hosts_url(primary, standby, DATABASE, "uri"))
    try:
        run_id = tracker.initiate_workflow("through a failover", "", "tester", "lab")
        with LoadGenerator([port], TOKEN) as load:
            load.wait_for_acks(500, 60)
            OLD_PRIMARY[old_primary](primary)
            stopped_at = time.monotonic()
            # Started with no primary anywhere: its wait-for-db waits for the promotion, and says why.
            late, late_port = start_appliance(two_hosts_url(primary, standby, DATABASE, "keywords"), "late")
            wait_for(lambda: f"port {standby.port} failed" in late.output, 60, interval=0.1,
                     message="the late appliance's wait-for-db to name both servers' refusals")
            standby.promote()
            promoted_at = time.monotonic()
            acked, written, clock = len(load.ledger.acked), *promotion_marks(new_primary)
            back = first_times({
                "ingest acknowledging": lambda: len(load.ledger.acked) > acked,
                "projector projecting": lambda: projected_past(new_primary, written),
                "monitor listening": lambda: beat_since(new_primary, pids["monitor"], clock),
                "late appliance's wait-for-db through": lambda: "the database accepts connections" in late.output,
                "tracker recording": lambda: recorded(tracker, run_id),
            }, since=promoted_at, timeout=BACK_WITHIN)
            wait_until_serving(late, late_port)
            late_serving = time.monotonic() - promoted_at
            load.wait_for_acks(500, 60)
            outcome, (changes, handled, _, _) = settle_exactly_once(load, new_primary)
        print(f"\nFAULT failover (primary {old_primary}, standby promoted): {outcome}; {load.rate:.0f} events/s "
              f"acknowledged; answers {dict(load.ledger.answers)}; changes {changes}, handled once {handled}; "
              f"promotion {promoted_at - stopped_at:.1f} s after the primary went; back after the promotion: "
              + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in back.items())
              + f", late appliance serving {late_serving:.1f} s")
    finally:
        tracker.close()
    assert not outcome.lost and not outcome.duplicated
    assert {program: appliance.pid_of(program) for program in PROGRAMS} == pids, "a program was restarted"
    for started in (appliance, late):
        assert set(started.states().values()) == {"RUNNING"}, started.states()
        assert not [line for line in error_lines(started) if "Traceback" in line], started.output[-3000:]


def promotion_marks(url: str) -> tuple[int, object]:
    """(the last event id, the server's clock) on the new primary just after its promotion."""
    with db.connection(parse_database_url(url), "test-failover") as connection:
        return store.max_notification_id(connection), connection.one("SELECT clock_timestamp()")[0]


def projected_past(url: str, event_id: int) -> bool:
    """The projector has applied an event written after `event_id`."""
    with db.connection(parse_database_url(url), "test-failover") as connection:
        return store.position(connection) > event_id


def beat_since(url: str, pid: int, clock) -> bool:
    """The monitor process `pid` has written a heartbeat since `clock` (after LISTEN and a claim)."""
    return bool(query(url, "SELECT 1 FROM monitor_heartbeats WHERE pid = %s AND last_seen > %s", pid, clock))


def recorded(tracker: WorkflowTracker, run_id) -> bool:
    """One log line recorded; False while the database is unavailable (any other error fails the test)."""
    try:
        tracker.record_log(run_id, "recorded after the failover")
    except db.DATABASE_ERRORS as error:
        if not db.unavailable(error):
            raise
        return False
    return True


def first_times(conditions: dict, *, since: float, timeout: float) -> dict[str, float]:
    """{what: seconds from `since` until its condition first held}, the conditions polled together."""
    times: dict[str, float] = {}

    def all_held() -> bool:
        for what, condition in conditions.items():
            if what not in times and condition():
                times[what] = time.monotonic() - since
        return len(times) == len(conditions)

    try:
        wait_for(all_held, max(0.0, since + timeout - time.monotonic()), interval=0.2,
                 message=f"every program back within {timeout:g} s of the promotion")
    except AssertionError:
        missing = [what for what in conditions if what not in times]
        raise AssertionError(f"not back within {timeout:g} s of the promotion: {', '.join(missing)} "
                             f"(back: {times})") from None
    return times

