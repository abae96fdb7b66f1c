"""`appliance status`: every part's state on the command line, with an exit code.

Under supervisor (the programs' states) it is checked by the end-to-end test.
"""

import json

from appliance.localpg import free_port
from appliance.projection import Projector
from tests.support.sql import query
from tests.support.status import appliance_status


def test_an_initialised_database_is_reported_healthy(database_url, tracker):
    run = tracker.initiate_workflow("status", "", "alice", "lab")
    tracker.start_workflow(run)
    Projector(tracker).catch_up()

    result = appliance_status(database_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "database: reachable" in result.stdout
    assert "triggers: 4 installed" in result.stdout
    assert "projector: at event 2 of 2 (0 behind)" in result.stdout
    assert "set aside: 0 events by the projector, 0 changes by the monitor" in result.stdout
    assert "programs: cannot be seen" in result.stdout
    assert result.stdout.rstrip().endswith("all parts are as they should be")


def test_the_json_twin_matches_the_system_api_shape(database_url):
    result = appliance_status(database_url, "--json", "--database-only")

    state = json.loads(result.stdout)
    assert result.returncode == 0
    assert state["schema"]["at_head"] is True
    assert len(state["triggers"]["installed"]) == 4
    assert state["problems"] == []


def test_missing_triggers_need_attention(database_url):
    query(database_url, "DROP TRIGGER log_entries_notify_change ON log_entries")

    result = appliance_status(database_url)

    assert result.returncode == 1
    assert "problem: the change triggers are not all installed: run `appliance init`" in result.stdout


def test_an_empty_database_needs_init(empty_database_url):
    result = appliance_status(empty_database_url)

    assert result.returncode == 1
    assert "schema: not installed" in result.stdout
    assert "not at head" in result.stdout and "run `appliance init`" in result.stdout


def test_an_unreachable_database_exits_3_without_the_password():
    result = appliance_status(f"postgresql://someone:pw-status-secret@127.0.0.1:{free_port()}/nothing")

    assert result.returncode == 3
    assert "database: unreachable" in result.stdout
    assert "pw-status-secret" not in result.stdout + result.stderr
