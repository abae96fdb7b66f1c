"""entrypoint.sh and conf/supervisord.conf, run natively, with stand-in programs.

A fake `appliance` first on PATH plays web, monitor and projector (a sleep, or
an immediate failure when FAKE_FAIL names it) and passes every other
subcommand (config, wait-for-db, ...) to the real one, so these tests check
the supervision itself, quickly; tests/test_appliance_e2e.py runs the real
programs.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import time

import pytest

from appliance import supervisor_listener
from tests.support.appliance_process import PROGRAMS, VENV_BIN, Appliance, base_environment
from tests.support.secret_scan import with_password
from tests.support.waiting import wait_for

SECRET = "n0t-in-0utput"

FAKE_APPLIANCE = f"""#!/usr/bin/env bash
case "$1" in
    web|monitor|projector)
        if [ "${{FAKE_FAIL:-}}" = "$1" ]; then echo "fake $1: cannot start" >&2; exit 1; fi
        echo "fake $1 running"
        exec sleep 300 ;;
    init) echo "fake init" ;;
    *) exec {VENV_BIN}/appliance "$@" ;;
esac
"""


@pytest.fixture
def fake_bin(tmp_path):
    path = tmp_path / "bin"
    path.mkdir()
    script = path / "appliance"
    script.write_text(FAKE_APPLIANCE)
    script.chmod(0o755)
    return path


@pytest.fixture
def secret(database_url):
    """The password in the test database's URL (SECRET when the server trusts us without one)."""
    return with_password(database_url, SECRET)[1]


@pytest.fixture
def run(tmp_path, fake_bin, database_url):
    """run(**env) starts entrypoint.sh with the fake programs against a test database."""
    started = []
    url_with_password = with_password(database_url, SECRET)[0]

    def start(*args, **settings):
        env = base_environment([fake_bin], DATABASE_URL=url_with_password)
        env.update(settings)
        env = {name: value for name, value in env.items() if value is not None}
        appliance = Appliance(env, tmp_path / f"output-{len(started)}.log", args).start()
        started.append(appliance)
        return appliance

    yield start
    for appliance in started:
        appliance.stop()


def test_sigterm_to_the_entrypoint_stops_everything_within_10_s(run, secret):
    appliance = run()
    states = appliance.wait_until_running(PROGRAMS)
    assert "fatal-exit" in states
    socket = appliance.run_dir / "run" / "supervisor.sock"
    assert stat.S_IMODE(socket.stat().st_mode) == 0o700
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700  # nobody else can even reach it
    processes = appliance.processes()
    assert appliance.supervisord_pid() == appliance.process.pid  # the entrypoint exec'd supervisord
    assert len(processes) >= 5  # supervisord (the entrypoint's process), listener, three programs
    started = time.monotonic()
    appliance.process.send_signal(signal.SIGTERM)
    assert appliance.wait(10) == 0
    assert time.monotonic() - started < 10
    assert appliance.processes() == set()
    for program in PROGRAMS:
        assert f"fake {program} running" in appliance.output  # program output reaches stdout
    assert secret not in appliance.output
    assert "postgres:***@" in appliance.output


def test_monitoring_off_leaves_the_monitor_out_and_sigterm_to_supervisord_exits_0(run):
    appliance = run(ENABLE_DB_MONITORING="false")
    states = appliance.wait_until_running(("web", "projector"))  # started after the monitor would have been
    assert states["monitor"] == "STOPPED"
    assert "fake monitor running" not in appliance.output
    os.kill(appliance.supervisord_pid(), signal.SIGTERM)
    assert appliance.wait(10) == 0, appliance.output
    assert appliance.processes() == set()


def test_a_program_that_cannot_start_ends_everything_with_exit_1(run):
    appliance = run(FAKE_FAIL="projector")
    assert appliance.wait(40) == 1, appliance.output
    assert "projector entered FATAL state" in appliance.output
    assert "program 'projector' could not be started; exiting 1" in appliance.output
    assert appliance.processes() == set()


@pytest.mark.parametrize("settings, message", [
    ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
    ({"ENABLE_DB_MONITORING": "maybe"}, "ENABLE_DB_MONITORING must be true or false"),
    ({"DB_WAIT_TIMEOUT": "soon"}, "DB_WAIT_TIMEOUT must be a whole number"),
])
def test_a_bad_environment_exits_2_naming_the_variable(run, settings, message):
    appliance = run(**settings)
    assert appliance.wait(20) == 2
    assert message in appliance.output
    assert "starting supervisord" not in appliance.output


def test_a_database_that_does_not_answer_exits_3_without_the_password(run):
    appliance = run(DATABASE_URL=f"postgresql://app:{SECRET}@127.0.0.1:9/appliance", DB_WAIT_TIMEOUT="1")
    assert appliance.wait(20) == 3
    assert "waiting up to 1 s for the database at postgresql+psycopg2://app:***@127.0.0.1:9/appliance" \
        in appliance.output
    assert SECRET not in appliance.output


def test_sigterm_while_waiting_for_the_database_ends_the_start_up_with_0(run):
    appliance = run(DATABASE_URL=f"postgresql://app:{SECRET}@127.0.0.1:9/appliance", DB_WAIT_TIMEOUT="60")
    wait_for(lambda: "waiting up to 60 s" in appliance.output, 20, message="the entrypoint waiting")
    appliance.process.send_signal(signal.SIGTERM)
    assert appliance.wait(10) == 0, appliance.output
    assert "stopped during start-up" in appliance.output
    assert "migrating" not in appliance.output and "starting supervisord" not in appliance.output


@pytest.mark.parametrize(("args", "expected"), [
    (("shell", "-c", "echo shell says hello"), "shell says hello"),
    (("migrate",), "migrate: "),
    (("init",), "fake init"),
    (("appliance", "reproject", "--batch-size", "0"), "batch-size"),
    (("status",), "database: reachable"),
])
def test_first_arguments_pick_one_thing_to_run(run, args, expected):
    appliance = run(*args)
    appliance.wait(60)
    assert expected in appliance.output
    assert "starting supervisord" not in appliance.output


def test_other_first_arguments_run_one_appliance_command(run, secret):
    appliance = run("config", ENABLE_DB_MONITORING="off")
    assert appliance.wait(20) == 0
    assert "enable_db_monitoring=False" in appliance.output
    assert secret not in appliance.output
    assert "supervisord" not in appliance.output


def test_the_listener_marks_a_fatal_program_and_stops_supervisord(tmp_path, monkeypatch):
    killed = []
    monkeypatch.setattr(supervisor_listener.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    events = b""
    for name, payload in [
        ("PROCESS_STATE_RUNNING", b"processname:web groupname:web from_state:STARTING pid:7"),
        ("PROCESS_STATE_FATAL", b"processname:projector groupname:projector from_state:BACKOFF"),
    ]:
        events += f"ver:3.0 server:supervisor serial:1 pool:fatal-exit poolserial:1 eventname:{name} " \
                  f"len:{len(payload)}\n".encode() + payload
    stdout = io.BytesIO()
    marker = tmp_path / "run" / "fatal"
    supervisor_listener.listen(marker, io.BytesIO(events), stdout, supervisord_pid=4242)
    assert marker.read_text() == "projector\n"
    assert killed == [(4242, signal.SIGTERM)]
    assert stdout.getvalue() == b"READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
