"""Natively, nothing outlives supervisord, and the access log holds no query string's values.

The real entrypoint.sh with the real programs against a test database, as in
test_appliance_e2e.py (the fixtures are in tests/acceptance/conftest.py).
"""

from __future__ import annotations

import os
import signal
import time

from tests.support.appliance_process import PROGRAMS, Client
from tests.support.waiting import wait_for

ORPHAN_BUDGET = 5.0  # seconds, the issue's


def test_programs_exit_within_5_s_when_supervisord_is_killed(appliance_env, started):
    env, port = appliance_env
    appliance = started(env)
    appliance.wait_until_running(PROGRAMS, timeout=90)
    wait_for(lambda: Client(port).status("/healthz") == 200, 60, interval=0.2, message="/healthz 200")
    supervisord = appliance.supervisord_pid()
    programs = {appliance.pid_of(program) for program in PROGRAMS}
    assert programs <= appliance.processes()

    killed = time.monotonic()
    os.kill(supervisord, signal.SIGKILL)
    appliance.process.wait(5)  # reaped, so it no longer counts among the session's processes
    left = wait_for(lambda: not appliance.processes() and "gone", ORPHAN_BUDGET + 30, interval=0.1,
                    message="every program of the appliance to exit")
    took = time.monotonic() - killed
    assert left and took < ORPHAN_BUDGET, f"the programs outlived supervisord by {took:.1f} s"


def test_the_access_log_holds_no_query_string_values(appliance_env, started):
    env, port = appliance_env
    appliance = started(env)
    client = Client(port)
    wait_for(lambda: client.status("/healthz") == 200, 90, interval=0.2, message="/healthz 200")
    secret = "query-secret-7f3a9c"
    assert client.status(f"/api/v1/runs?user=alice&token={secret}") == 400  # refused, yet logged
    assert client.status(f"/healthz?{secret}") == 200
    assert client.status("/jobs/a%00b") == 400
    wait_for(lambda: "/jobs/a%00b" in appliance.output, 10, message="the access lines")
    assert secret not in appliance.output
    assert '"GET /api/v1/runs?... HTTP/1.1" 400' in appliance.output
