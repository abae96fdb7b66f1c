"""What the fault suite (tests/acceptance/test_faults.py) and the soak (bench/soak.py) share:
native appliances on a PostgreSQL of their own, the faults done to them, and
the exactly-once check both end with.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psycopg2

from appliance.localpg import LocalPostgres, free_port
from tests.support import databases, fault_handler
from tests.support.appliance_process import PROGRAMS, REPO, Appliance, base_environment, process_stats
from tests.support.loadgen import LoadGenerator, Outcome, monitor_outcome
from tests.support.sql import query
from tests.support.waiting import wait_for

TOKEN = "fault-suite-token"
SETTLE_SECONDS = 90  # for the views and the monitor to catch up once the load stops


# The server and its databases.

def administer(server: LocalPostgres, statement: str) -> None:
    """One statement on a connection of its own: the faults restart the server in between."""
    databases.administer(server.url(), statement)


def create_database(server: LocalPostgres, name: str) -> str:
    """A new empty database but for the monitor handler's table; its URL."""
    administer(server, f"CREATE DATABASE {name}")
    url = server.url(name)
    query(url, fault_handler.TABLE)
    return url


def server_processes(server: LocalPostgres) -> list[int]:
    """The postmaster and its children."""
    postmaster = server.postmaster_pid()
    return [postmaster, *descendants(postmaster)]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (none for pid 0: it is the kernel's)."""
    children: dict[int, set[int]] = {}
    for child, fields in process_stats().items():
        children.setdefault(int(fields[1]), set()).add(child)
    found, todo = set(), [pid] if pid > 0 else []
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


@contextmanager
def frozen(server: LocalPostgres):
    """The server stopped with SIGSTOP, every process of it: a network cut without a close."""
    pids = server_processes(server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def read_only(server: LocalPostgres, value: str) -> None:
    """Every session of the server, those open already too, read-only (on) or not (off):
    a primary fenced in place, as a failover manager may do before promoting its standby."""
    watcher = psycopg2.connect(server.url())  # opened before: it sees the change once sessions have it
    try:
        administer(server, f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        administer(server, "SELECT pg_reload_conf()")

        def seen() -> bool:
            with watcher.cursor() as cursor:
                cursor.execute("SHOW default_transaction_read_only")
                return cursor.fetchone()[0] == value
        wait_for(seen, 10, message=f"default_transaction_read_only {value} in open sessions")
    finally:
        watcher.close()


# The appliances.

def appliance_environment(database_url: str, port: int, **settings: str) -> dict[str, str]:
    """entrypoint.sh's environment: short poll intervals and the counting monitor handler."""
    return base_environment(
        DATABASE_URL=database_url, BACKEND_PORT=str(port), APPLIANCE_INGEST_TOKEN=TOKEN,
        MONITOR_POLL_INTERVAL="1", PROJECTOR_POLL_INTERVAL="1", WEB_WORKERS="2",
        MONITOR_HANDLERS="tests.support.fault_handler:record", PYTHONPATH=str(REPO), **settings,
    )


@contextmanager
def appliance_starter(log_dir: Path) -> Iterator[Callable[[str, str], tuple[Appliance, int]]]:
    """start(database_url, name) -> (Appliance, port): one more appliance, its log in `log_dir`/name.log;
    every one stopped when the block ends."""
    appliances = []

    def start(database_url: str, name: str) -> tuple[Appliance, int]:
        port = free_port()
        appliance = Appliance(appliance_environment(database_url, port), log_dir / f"{name}.log").start()
        appliances.append(appliance)
        return appliance, port

    try:
        yield start
    finally:
        for appliance in appliances:
            appliance.stop()


def wait_until_serving(appliance: Appliance, port: int, timeout: float = 90) -> None:
    wait_for(lambda: http_status(port, "/readyz") == 200 or appliance.process.poll() is not None, timeout,
             interval=0.2, message="/readyz 200")
    assert appliance.process.poll() is None, appliance.output[-3000:]
    appliance.wait_until_running(PROGRAMS)


def http_status(port: int, path: str, timeout: float = 5) -> int:
    """The status of a GET with the token; 0 when nothing answered."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def kill_and_wait(appliance: Appliance, program: str, timeout: float = 60) -> float:
    """kill -9 one program; the seconds until supervisor has it RUNNING again."""
    pid = appliance.pid_of(program)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: appliance.states().get(program) == "RUNNING" and appliance.pid_of(program) != pid,
             timeout, interval=0.2, message=f"{program} running again")
    return time.monotonic() - killed_at


def error_lines(appliance: Appliance) -> list[str]:
    return [line for line in appliance.output.splitlines()
            if any(word in line for word in ("Traceback", "ERROR", "CRITICAL", "FATAL", "exited:"))]


# The check every fault ends with.

def settle_exactly_once(load: LoadGenerator, database_url: str,
                        timeout: float = SETTLE_SECONDS) -> tuple[Outcome, tuple]:
    """Stop the load; wait for the views and the monitor; assert every acked event and every change once.

    Returns the views' outcome and the monitor's (changes, handled, unhandled, twice).
    """
    load.stop()
    assert not load.ledger.refused, load.ledger.refused
    assert set(load.ledger.answers) <= {200, 503, 0}, f"answers {dict(load.ledger.answers)}; see the appliance's log"
    assert load.ledger.retry_after_missing == 0, "a 503 came without Retry-After"
    outcome = wait_for(lambda: _settled(load, database_url), timeout, interval=0.5,
                       message="every acknowledged event in the views")
    assert not outcome.duplicated, f"applied twice: {outcome.duplicated[:5]}"
    changes = wait_for(lambda: _all_handled(database_url), timeout, interval=0.5,
                       message="the monitor to handle every change")
    assert not changes[3], f"changes handled twice: {changes[3][:5]}"
    return outcome, changes


def _settled(load: LoadGenerator, database_url: str):
    outcome = load.ledger.verify(database_url)
    return outcome if not outcome.lost else None


def _all_handled(database_url: str):
    outcome = monitor_outcome(database_url)
    return outcome if not outcome[2] else None


def handled_by(database_url: str) -> dict[int, int]:
    """{monitor backend pid: changes it handled}."""
    return dict(query(database_url, "SELECT handled_by, count(*) FROM fault_handled GROUP BY handled_by"))


# The Snakemake plugin's part.

def plugin_run() -> tuple[str, list[dict]]:
    """A small run as the Snakemake plugin's Sender would send it: (run id, events)."""
    run_id = str(uuid.uuid4())
    events = [{"id": str(uuid.uuid4()), "type": "run_started", "run_id": run_id, "name": "spooled"}]
    events += [{"id": str(uuid.uuid4()), "type": "log", "run_id": run_id, "message": f"spooled line {n}"}
               for n in range(20)]
    events.append({"id": str(uuid.uuid4()), "type": "run_finished", "run_id": run_id})
    return run_id, events


def plugin_run_stored(database_url: str, run_id: str, events: list[dict]) -> bool:
    """The run is completed with every log line of `events`."""
    (status, lines), = query(database_url, "SELECT status, (SELECT count(*) FROM log_entries WHERE run_id = %s) "
                                           "FROM workflow_runs WHERE id = %s", run_id, run_id)
    return status == "completed" and lines == sum(event["type"] == "log" for event in events)
