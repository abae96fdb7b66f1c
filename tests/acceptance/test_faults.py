"""Faults under load: whole appliances (entrypoint.sh, supervisord, the real
programs) on a PostgreSQL of the suite's own, which the tests stop, freeze
and start again while tests/support/loadgen.py sends events.

Every test ends with the same two checks: every event acknowledged with a
2xx is in the views exactly once, and every change of the views was handled
by a monitor exactly once. Each prints a line of figures (run with -s to see
them); docs/reliability.md collects them. bench/soak.py runs the same faults
for longer.
"""

from __future__ import annotations

import time

import pytest

from appliance.localpg import LocalPostgres
from tests.support.fault_kit import (PROGRAMS, TOKEN, appliance_starter, create_database, administer, error_lines,
                             frozen, handled_by, http_status, kill_and_wait, plugin_run, plugin_run_stored,
                             settle_exactly_once, wait_until_serving)
from tests.support.loadgen import LoadGenerator
from tests.support.waiting import wait_for


# The server and the appliances.

@pytest.fixture(scope="module")
def server():
    """A PostgreSQL of this module's own: the tests stop and freeze it."""
    server = LocalPostgres.temporary().start()
    yield server
    server.destroy()


@pytest.fixture
def database_url(server):
    """A new empty database (but for the monitor handler's table) on the module's server."""
    name = f"faults_{time.monotonic_ns()}"
    yield create_database(server, name)
    administer(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def start_appliance(database_url, tmp_path):
    """start_appliance(name) -> (Appliance, port): one more appliance on the test's database."""
    with appliance_starter(tmp_path) as start:
        yield lambda name="appliance": start(database_url, name)


def assert_exactly_once(load: LoadGenerator, database_url: str, fault: str, **figures) -> None:
    """Every acked event in the views once, every change handled once; print the fault's figures."""
    outcome, (changes, handled, _, _) = settle_exactly_once(load, database_url)
    print(f"\nFAULT {fault}: {outcome}; {load.rate:.0f} events/s acknowledged; answers "
          f"{dict(load.ledger.answers)}; changes {changes}, handled once {handled}; "
          + ", ".join(f"{name} {value}" for name, value in figures.items()))


# The faults.

KILL_ROUNDS = 3


def test_kill_9_of_each_program_repeatedly_under_load(start_appliance, database_url):
    appliance, port = start_appliance()
    wait_until_serving(appliance, port)
    recoveries = []
    with LoadGenerator([port], TOKEN) as load:
        load.wait_for_acks(200, 30)
        for _ in range(KILL_ROUNDS):
            for program in PROGRAMS:
                recoveries.append(kill_and_wait(appliance, program))
                load.wait_for_acks(50, 30)
        assert_exactly_once(load, database_url, f"kill -9 x{KILL_ROUNDS} of each of {', '.join(PROGRAMS)}",
                            kills=len(recoveries), recovery_max=f"{max(recoveries):.1f} s")
    assert appliance.process.poll() is None, appliance.output[-3000:]


OUTAGE_SECONDS = 20


def test_postgresql_stopped_for_20_seconds_under_load(start_appliance, database_url, server, tmp_path):
    from snakemake_logger_plugin_appliance.sender import Sender

    appliance, port = start_appliance()
    wait_until_serving(appliance, port)
    sender = Sender(f"http://127.0.0.1:{port}", TOKEN, tmp_path / "spool", exit_wait=1).start()
    with LoadGenerator([port], TOKEN) as load:
        load.wait_for_acks(200, 30)
        server.stop()
        stopped_at = time.monotonic()
        wait_for(lambda: load.ledger.answers[503], 15, message="503 answers while the database is down")
        run_id, plugin_events = plugin_run()
        sender.put(plugin_events)
        wait_for(lambda: sender.spool.count, 30, message="the plugin to spool what it cannot send")
        assert http_status(port, "/readyz") == 503
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))  # the fault itself: 20 s down
        server.start()
        started_at = time.monotonic()
        load.wait_for_acks(50, 60)
        recovery = time.monotonic() - started_at
        wait_for(lambda: sender.spool.count == 0 and sender.sent >= len(plugin_events), 60,
                 message="the plugin's spool to drain")
        assert_exactly_once(load, database_url, f"PostgreSQL stopped {OUTAGE_SECONDS} s",
                            recovery=f"{recovery:.1f} s", plugin_events=len(plugin_events))
    sender.close()
    assert plugin_run_stored(database_url, run_id, plugin_events)
    assert set(appliance.states().values()) == {"RUNNING"}, appliance.states()


FREEZE_SECONDS = 15


def test_postgresql_frozen_with_sigstop_under_load(start_appliance, database_url, server):
    appliance, port = start_appliance()
    wait_until_serving(appliance, port)
    with LoadGenerator([port], TOKEN) as load:
        load.wait_for_acks(200, 30)
        unavailable = load.ledger.answers[503]
        with frozen(server):
            frozen_at = time.monotonic()
            acked = len(load.ledger.acked)
            time.sleep(FREEZE_SECONDS)  # the fault itself: a server that answers nothing
            assert len(load.ledger.acked) <= acked + 100  # batches in flight at most
            # Requests are cut off at WEB_DB_DEADLINE (10 s) instead of waiting for the thaw.
            assert load.ledger.answers[503] > unavailable
        thawed_at = time.monotonic()
        load.wait_for_acks(50, 60)
        recovery = time.monotonic() - thawed_at
        assert_exactly_once(load, database_url, f"PostgreSQL frozen (SIGSTOP) {FREEZE_SECONDS} s",
                            recovery=f"{recovery:.1f} s", frozen_for=f"{thawed_at - frozen_at:.0f} s")
    assert set(appliance.states().values()) == {"RUNNING"}, appliance.states()


def test_three_appliances_started_at_once_on_an_empty_database(start_appliance, database_url):
    started = [start_appliance(f"replica-{number}") for number in range(3)]
    for appliance, port in started:
        wait_until_serving(appliance, port)
    outputs = [appliance.output for appliance, _ in started]
    assert sum(output.count("migrating from an empty schema to head") for output in outputs) == 1
    assert sum(output.count("nothing to migrate") for output in outputs) == 2
    with LoadGenerator([port for _, port in started], TOKEN, workers=6) as load:
        load.wait_for_acks(1000, 60)
        assert_exactly_once(load, database_url, "three appliances at once on one empty database")
    monitors = handled_by(database_url)
    assert len(monitors) >= 2, f"one monitor did all the work: {monitors}"
    for appliance, _ in started:
        assert not error_lines(appliance), "\n".join(error_lines(appliance)[:20])
        assert set(appliance.states().values()) == {"RUNNING"}
