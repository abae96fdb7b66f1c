"""The whole appliance, end to end: entrypoint.sh run natively against a test database.

Nothing is stubbed: the entrypoint migrates an empty database and installs the
triggers, supervisord runs the real web, monitor and projector, events go in
through the ingest endpoint, and the test reads the views, the change feed and
the API. tests/acceptance/test_appliance_supervisor.py covers the supervision itself
with stand-in programs, faster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

from tests.support.appliance_process import ENTRYPOINT, PROGRAMS, REPO, Client, base_environment
from tests.support.sql import query
from tests.support.waiting import wait_for

TASKS = 3
LOGS = 4


def a_run(name: str) -> tuple[str, list[dict]]:
    """The events of one finished run: TASKS tasks, LOGS log lines."""
    run_id = str(uuid.uuid4())

    def event(type_: str, **fields) -> dict:
        return {"id": str(uuid.uuid4()), "type": type_, **fields}

    events = [event("run_started", run_id=run_id, name=name, user="alice", group="imaging", source="e2e")]
    for number in range(TASKS):
        task_id = str(uuid.uuid4())
        events += [
            event("task_created", task_id=task_id, run_id=run_id, name=f"rule_{number}"),
            event("task_started", task_id=task_id),
            event("job_id", task_id=task_id, job_id=str(1000 + number)),
            event("task_finished", task_id=task_id),
        ]
    events += [event("log", run_id=run_id, message=f"line {n}") for n in range(LOGS)]
    events.append(event("run_finished", run_id=run_id))
    return run_id, events


def run_is_projected(url: str, run_id: str) -> bool:
    rows = query(url, "SELECT status, tasks_total, tasks_completed, "
                      "(SELECT count(*) FROM log_entries WHERE run_id = r.id) FROM workflow_runs r WHERE id = %s",
                 run_id)
    if not rows or rows[0][0] != "completed":
        return False
    assert rows[0][1:] == (TASKS, TASKS, LOGS), f"applied twice or lost: {rows[0]}"
    return True


def changes_all_processed(url: str) -> int:
    """The number of change notifications, once the monitor has processed them all (else 0)."""
    total, unprocessed = query(url, "SELECT count(*), count(*) FILTER (WHERE NOT processed) FROM change_notifications")[0]
    return total if unprocessed == 0 else 0


def test_the_appliance_end_to_end(appliance_env, started, empty_database_url):
    env, port = appliance_env
    url, client = empty_database_url, Client(port)
    appliance = started(env)
    wait_for(lambda: client.status("/readyz") == 200 or appliance.process.poll() is not None, 60,
             message="/readyz 200")
    assert appliance.process.poll() is None, appliance.output
    appliance.wait_until_running(PROGRAMS)
    status = subprocess.run([str(ENTRYPOINT), "status"], env=appliance.env, capture_output=True, text=True,
                            timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(f"program {program}: RUNNING" in status.stdout for program in PROGRAMS), status.stdout
    # supervisorctl as in the README, from a shell that knows nothing of APPLIANCE_RUN_DIR.
    plain_shell = {key: value for key, value in appliance.env.items() if key != "APPLIANCE_RUN_DIR"}
    supervisorctl = subprocess.run(["supervisorctl", "-c", "conf/supervisord.conf", "status"], cwd=REPO,
                                   env=plain_shell, capture_output=True, text=True, timeout=30)
    assert all(re.search(rf"^{program} +RUNNING", supervisorctl.stdout, re.MULTILINE) for program in PROGRAMS), \
        supervisorctl.stdout + supervisorctl.stderr

    # Events in through the ingest endpoint, out in the views and the API; the monitor handles their changes.
    first_run, events = a_run("first")
    client.send(events)
    wait_for(lambda: run_is_projected(url, first_run), 20, message="the first run in the views")
    runs = {run["id"]: run for run in client.get_json("/api/v1/runs")["runs"]}
    assert runs[first_run]["status"] == "completed"
    wait_for(lambda: changes_all_processed(url), 20, message="the monitor to process the changes")

    # kill -9 the projector and the monitor; events sent meanwhile are not lost, none is applied twice.
    killed = {program: appliance.pid_of(program) for program in ("projector", "monitor")}
    for pid in killed.values():
        os.kill(pid, signal.SIGKILL)
    second_run, events = a_run("second")
    client.send(events)
    wait_for(lambda: all(appliance.states().get(p) == "RUNNING" and appliance.pid_of(p) != pid
                         for p, pid in killed.items()), 30, interval=0.3, message="projector and monitor restarted")
    wait_for(lambda: run_is_projected(url, second_run), 20, message="the second run in the views")
    assert run_is_projected(url, first_run)
    wait_for(lambda: changes_all_processed(url), 20, message="the changes made while the monitor was down")
    assert query(url, "SELECT count(*) FROM workflow_runs")[0][0] == 2

    # SIGTERM to the entrypoint (docker stop): everything is gone within 10 s, exit 0.
    assert len(appliance.processes()) >= 5
    stopping = time.monotonic()
    appliance.process.send_signal(signal.SIGTERM)
    assert appliance.wait(10) == 0, appliance.output[-3000:]
    assert time.monotonic() - stopping < 10
    assert appliance.processes() == set()
    assert unnamed_lines(appliance.output) == []
    assert_a_quiet_start_and_stop(appliance.output)


def assert_a_quiet_start_and_stop(output: str) -> None:
    """No CRIT line on a normal start, no SIGKILL needed to stop (supervisord's or gunicorn's), no progress bar."""
    assert [line for line in output.splitlines()
            if re.search(r" CRIT|with SIGKILL|was sent SIGKILL|\r", line)] == []


# Every line of `docker logs` says who wrote it and when, in one shape (appliance/logs.py):
# the entrypoint, each start-up step, supervisord itself, each program, gunicorn's access lines.
WRITERS = ("entrypoint", "config", "wait-for-db", "init", "supervisord", "fatal-exit", *PROGRAMS)
LINE_SHAPE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (%s) (DEBUG|INFO|WARN|ERROR|CRITICAL) " % "|".join(WRITERS))


def unnamed_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not LINE_SHAPE.match(line)]


def test_log_format_json_gives_one_object_per_line_from_every_program(appliance_env, started):
    env, port = appliance_env
    appliance = started({**env, "LOG_FORMAT": "json"})
    wait_for(lambda: Client(port).status("/readyz") == 200 or appliance.process.poll() is not None, 60,
             message="/readyz 200")
    appliance.wait_until_running(PROGRAMS)
    Client(port).status("/")  # an access line
    appliance.process.send_signal(signal.SIGTERM)
    assert appliance.wait(10) == 0, appliance.output[-3000:]
    records = [json.loads(line) for line in appliance.output.splitlines() if line]  # each line one object
    assert {record["program"] for record in records} >= {"entrypoint", "config", "init", "supervisord", *PROGRAMS}
    assert all(set(record) >= {"time", "program", "level", "message"} for record in records)
    assert any(record.get("logger") == "access" for record in records)
    assert_a_quiet_start_and_stop("\n".join(record["message"] for record in records))


def test_a_program_that_cannot_start_ends_the_appliance_non_zero(appliance_env, started):
    env, port = appliance_env
    with socket.socket() as squatter:  # the web's port is taken: gunicorn cannot bind it
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        appliance = started(env)
        # startretries=3 x startsecs=7 plus backoff: ~40 s idle, more on a loaded machine.
        assert appliance.wait(180) == 1, appliance.output[-3000:]
    assert "web entered FATAL state" in appliance.output
    assert appliance.processes() == set()


def test_missing_database_url_exits_2_with_the_message(started, tmp_path):
    appliance = started(base_environment(), name="unconfigured")
    assert appliance.wait(20) == 2
    assert "DATABASE_URL is not set" in appliance.output
