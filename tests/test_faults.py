"""Faults under load: whole appliances (entrypoint.sh, supervisord, the real
programs) on a PostgreSQL of the suite's own, which the tests stop, freeze
and start again while tests/loadgen.py sends events.

Every test ends with the same two checks: every event acknowledged with a
2xx is in the views exactly once, and every change of the views was handled
by a monitor exactly once. Each prints a line of figures (run with -s to see
them); docs/reliability.md collects them. bench/soak.py runs the same faults
for longer.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from appliance.localpg import LocalPostgres, free_port
from tests import fault_handler
from tests.appliance_process import REPO, Appliance, base_environment
from tests.loadgen import LoadGenerator, monitor_outcome
from tests.waiting import wait_for

PROGRAMS = ("web", "monitor", "projector")
TOKEN = "fault-suite-token"
SETTLE_SECONDS = 90  # for the views and the monitor to catch up once the load stops


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
    administer(server, f"CREATE DATABASE {name}")
    url = server.url(name)
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(fault_handler.TABLE)
    yield url
    administer(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def administer(server: LocalPostgres, statement: str) -> None:
    """One statement on a connection of its own: the tests restart the server in between."""
    admin = psycopg2.connect(server.url())
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(statement)
    finally:
        admin.close()


@pytest.fixture
def start_appliance(database_url, tmp_path):
    """start_appliance(name) -> (Appliance, port): one more appliance on the test's database."""
    appliances = []

    def start(name: str = "appliance") -> tuple[Appliance, int]:
        port = free_port()
        env = base_environment(
            DATABASE_URL=database_url, BACKEND_PORT=str(port), APPLIANCE_INGEST_TOKEN=TOKEN,
            MONITOR_POLL_INTERVAL="1", PROJECTOR_POLL_INTERVAL="1", WEB_WORKERS="2",
            MONITOR_HANDLERS="tests.fault_handler:record", PYTHONPATH=str(REPO),
        )
        appliance = Appliance(env, tmp_path / f"{name}.log").start()
        appliances.append(appliance)
        return appliance, port

    yield start
    for appliance in appliances:
        appliance.stop()


def wait_until_serving(appliance: Appliance, port: int, timeout: float = 90) -> None:
    wait_for(lambda: http_status(port, "/readyz") == 200 or appliance.process.poll() is not None, timeout,
             interval=0.2, message="/readyz 200")
    assert appliance.process.poll() is None, appliance.output[-3000:]
    appliance.wait_until_running(PROGRAMS)


def http_status(port: int, path: str, method: str = "GET", timeout: float = 5) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


# The checks every test ends with.

def assert_exactly_once(load: LoadGenerator, database_url: str, fault: str, **figures) -> None:
    """Stop the load; wait for the views and the monitor; every acked event once, every change handled once."""
    load.stop()
    assert not load.ledger.refused, load.ledger.refused
    assert set(load.ledger.answers) <= {200, 503, 0}, f"answers {dict(load.ledger.answers)}; see the appliance's log"
    assert load.ledger.retry_after_missing == 0, "a 503 came without Retry-After"
    outcome = wait_for(lambda: _settled(load, database_url), SETTLE_SECONDS, interval=0.5,
                       message="every acknowledged event in the views")
    assert not outcome.duplicated, f"applied twice: {outcome.duplicated[:5]}"
    changes = wait_for(lambda: _all_handled(database_url), SETTLE_SECONDS, interval=0.5,
                       message="the monitor to handle every change")
    changes_total, handled, _, twice = changes
    assert not twice, f"changes handled twice: {twice[:5]}"
    print(f"\nFAULT {fault}: {outcome}; {load.rate:.0f} events/s acknowledged; answers "
          f"{dict(load.ledger.answers)}; changes {changes_total}, handled once {handled}; "
          + ", ".join(f"{name} {value}" for name, value in figures.items()))


def _settled(load: LoadGenerator, database_url: str):
    outcome = load.ledger.verify(database_url)
    return outcome if not outcome.lost else None


def _all_handled(database_url: str):
    outcome = monitor_outcome(database_url)
    return outcome if not outcome[2] else None


def assert_no_errors(appliance: Appliance) -> None:
    bad = [line for line in appliance.output.splitlines()
           if any(word in line for word in ("Traceback", "ERROR", "CRITICAL", "FATAL", "exited:"))]
    assert not bad, "\n".join(bad[:20])


def server_processes(server: LocalPostgres) -> list[int]:
    """The postmaster and its children."""
    postmaster = server.postmaster_pid()
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


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
                pid = appliance.pid_of(program)
                killed_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: appliance.states().get(program) == "RUNNING" and appliance.pid_of(program) != pid,
                         60, interval=0.2, message=f"{program} running again")
                load.wait_for_acks(50, 30)
                recoveries.append(time.monotonic() - killed_at)
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
        frozen = server_processes(server)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            frozen_at = time.monotonic()
            acked = len(load.ledger.acked)
            time.sleep(FREEZE_SECONDS)  # the fault itself: a server that answers nothing
            assert len(load.ledger.acked) <= acked + 100  # batches in flight at most
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
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
        assert_no_errors(appliance)
        assert set(appliance.states().values()) == {"RUNNING"}


# The Snakemake plugin's part.

def plugin_run() -> tuple[str, list[dict]]:
    import uuid

    run_id = str(uuid.uuid4())
    events = [{"id": str(uuid.uuid4()), "type": "run_started", "run_id": run_id, "name": "spooled"}]
    events += [{"id": str(uuid.uuid4()), "type": "log", "run_id": run_id, "message": f"spooled line {n}"}
               for n in range(20)]
    events.append({"id": str(uuid.uuid4()), "type": "run_finished", "run_id": run_id})
    return run_id, events


def plugin_run_stored(database_url: str, run_id: str, events: list[dict]) -> bool:
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status, (SELECT count(*) FROM log_entries WHERE run_id = %s) "
                       "FROM workflow_runs WHERE id = %s", (run_id, run_id))
        status, lines = cursor.fetchone()
    return status == "completed" and lines == sum(event["type"] == "log" for event in events)


def handled_by(database_url: str) -> dict[int, int]:
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT handled_by, count(*) FROM fault_handled GROUP BY handled_by")
        return dict(cursor.fetchall())
