"""Health tells the truth: a stuck projector, a set-aside event, a monitor falling
behind or programs out of sight make `appliance status` exit 1, /system red and
/metrics say which; /readyz still means only "this web can serve"."""

from __future__ import annotations

import re

import pytest

from appliance.projection import Projector
from tests.support.poison import record_poison_between_runs, refuse_new_runs
from tests.support.projecting import running
from tests.support.sql import query
from tests.support.status import appliance_status
from tests.support.waiting import wait_for
from tests.support.web_support import make_app


def gauges(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {name: float(value) for name, value in re.findall(r"^(appliance_[a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def attention(database_url) -> str:
    """What status says needs attention; it must exit 1 then."""
    result = appliance_status(database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


def test_programs_out_of_sight_need_attention(database_url):
    result = appliance_status(database_url, "--json")  # not --database-only: the programs are expected
    assert result.returncode == 1
    assert "the programs cannot be seen" in result.stdout


def test_a_quarantined_event_is_reported_everywhere_but_readyz(tracker, database_url):
    record_poison_between_runs(tracker, database_url)
    Projector(tracker).catch_up()
    assert "problem: 1 events are set aside by the projector" in attention(database_url)
    client = make_app(database_url).test_client()
    page = client.get("/system").get_data(as_text=True)
    assert 'class="state bad"' in page and "1 events are set aside by the projector" in page
    assert any("set aside" in p for p in client.get("/api/v1/system").get_json()["problems"])
    metrics = gauges(client)
    assert metrics["appliance_quarantined_events"] == 1 and metrics["appliance_healthy"] == 0
    assert metrics["appliance_projector_stuck"] == 0
    assert client.get("/readyz").status_code == 200


def test_a_projector_failing_at_one_position_is_stuck(tracker, database_url):
    refuse_new_runs(database_url)
    tracker.initiate_workflow("refused", "", None, None)
    with running(Projector(tracker, poll_interval=60)):
        wait_for(lambda: query(database_url, "SELECT 1 FROM projector_progress WHERE failures >= 3"), timeout=30,
                 message="three failures in a row")
    out = attention(database_url)
    assert "the projector is stuck: its last" in out and "refused by the test" in out, out
    assert gauges(make_app(database_url).test_client())["appliance_projector_stuck"] == 1


def test_a_projector_that_lags_without_moving_is_stuck(tracker, database_url):
    with running(Projector(tracker, poll_interval=60)):
        wait_for(lambda: query(database_url, "SELECT 1 FROM projector_progress"), timeout=10,
                 message="the projector's note")
    tracker.initiate_workflow("waiting", "", None, None)  # recorded while no projector runs
    assert appliance_status(database_url).returncode == 0  # it stopped only just now
    # As if it stopped (or froze) two minutes ago; HEALTH_STUCK_AFTER is 60 s.
    query(database_url, "UPDATE projector_progress SET progressed_at = now() - interval '2 minutes'")
    out = attention(database_url)
    assert "the projector is stuck: 1 events wait and it has not moved for 12" in out, out
    metrics = gauges(make_app(database_url).test_client())
    assert metrics["appliance_projector_stuck"] == 1 and metrics["appliance_projector_seconds_since_progress"] > 60


def test_events_waiting_for_a_projector_that_never_ran_need_attention(tracker, database_url):
    Projector(tracker).catch_up()  # a tool's catch-up: the tracking row, but no running projector
    tracker.initiate_workflow("never projected", "", None, None)
    assert "the projector is not running: 1 events wait" in attention(database_url)


@pytest.mark.parametrize("given_up", [False, True])
def test_a_monitor_falling_behind_or_giving_up_needs_attention(tracker, database_url, given_up):
    tracker.initiate_workflow("changed", "", None, None)
    Projector(tracker).catch_up()
    if given_up:
        query(database_url, "UPDATE change_notifications SET processed = true, last_error = 'webhook 500'")
        assert "1 changes were given up by the monitor" in attention(database_url)
        assert gauges(make_app(database_url).test_client())["appliance_monitor_given_up_changes"] == 1
    else:
        query(database_url, """UPDATE change_notifications SET "timestamp" = now() - interval '5 minutes'""")
        assert "the monitor falls behind: the oldest of 1 unhandled changes has waited 30" in attention(database_url)
        assert gauges(make_app(database_url).test_client())["appliance_change_oldest_unhandled_seconds"] > 290
