"""A bad event is set aside (projection_quarantine), never retried forever, and
`appliance quarantine` lists, retries and discards it; the monitor's given-up
changes the same way."""

from __future__ import annotations

import pytest

from appliance import cli
from appliance.projection import Projector, reproject
from tests.support.poison import TOO_BIG, record_poison_between_runs, refuse_new_runs
from tests.support.projecting import max_position, running
from tests.support.sql import query
from tests.support.waiting import wait_for


def runs_named(url: str) -> dict[str, str]:
    return dict(query(url, "SELECT workflow_name, status FROM workflow_runs"))


def quarantined(url: str) -> list[tuple]:
    return query(url, "SELECT notification_id, originator_id::text, error FROM projection_quarantine")


def test_a_poison_event_is_set_aside_and_every_other_event_projects(tracker, database_url):
    poisoned, poison = record_poison_between_runs(tracker, database_url)
    projector = Projector(tracker, batch_size=1000)
    projector.catch_up()
    assert runs_named(database_url) == {"before": "running", "poisoned": "created", "after": "completed"}
    [(event_id, run_id, error)] = quarantined(database_url)
    assert (event_id, run_id) == (poison, str(poisoned))
    assert "NumericValueOutOfRange" in error or "out of range" in error, error
    assert projector.position() == max_position(database_url)


def test_the_running_projector_goes_on_past_a_poison_event(tracker, database_url):
    projector = Projector(tracker, batch_size=64, poll_interval=60)
    with running(projector):
        record_poison_between_runs(tracker, database_url)
        wait_for(lambda: runs_named(database_url).get("after") == "completed", timeout=10,
                 message="the run after the poison")
        late = tracker.initiate_workflow("late", "", None, None)
        wait_for(lambda: "late" in runs_named(database_url), timeout=10, message="a run recorded after the poison")
    assert len(quarantined(database_url)) == 1
    assert query(database_url, "SELECT failures FROM projector_progress") == [(0,)]
    assert late


def test_a_failure_no_event_causes_is_retried_not_set_aside(tracker, database_url):
    refuse_new_runs(database_url)
    tracker.initiate_workflow("refused", "", None, None)
    projector = Projector(tracker, poll_interval=60)
    with running(projector):
        wait_for(lambda: query(database_url, "SELECT failures FROM projector_progress WHERE failures >= 2"),
                 timeout=10, message="two failures in a row, noted for health")
        assert quarantined(database_url) == [] and runs_named(database_url) == {}
        query(database_url, "DROP TRIGGER refuse_runs ON workflow_runs")
        wait_for(lambda: runs_named(database_url) == {"refused": "created"}, timeout=30,
                 message="the run once the cause is gone")
    assert query(database_url, "SELECT failures FROM projector_progress") == [(0,)]


def test_a_rebuild_sets_the_poison_aside_too(tracker, database_url):
    record_poison_between_runs(tracker, database_url)
    Projector(tracker).catch_up()
    query(database_url, "UPDATE projection_quarantine SET error = 'from before the rebuild'")
    reproject(tracker, batch_size=2)
    assert runs_named(database_url) == {"before": "running", "poisoned": "created", "after": "completed"}
    assert [error for _, _, error in quarantined(database_url)] != ["from before the rebuild"]
    assert len(quarantined(database_url)) == 1


def quarantine_command(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["quarantine", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def cli_env(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)


def test_the_command_lists_a_poison_event_and_retries_it_once_the_views_can_hold_it(
        tracker, database_url, cli_env, capsys):
    poisoned, poison = record_poison_between_runs(tracker, database_url)
    Projector(tracker).catch_up()
    code, out = quarantine_command(capsys)
    assert code == 0 and f"event {poison}: ProgressReported of {poisoned}" in out, out
    assert "events set aside by the projector: 1" in out

    assert quarantine_command(capsys, "retry", "event", str(poison))[0] == 1  # still too big
    assert query(database_url, "SELECT retries FROM projection_quarantine") == [(1,)]
    # The fix: columns wide enough (numeric). The retry applies it and releases it.
    query(database_url, "ALTER TABLE workflow_runs ALTER steps_done TYPE numeric, ALTER steps_total TYPE numeric")
    code, out = quarantine_command(capsys, "retry", "event", "all")
    assert code == 0 and f"event {poison}: applied" in out, out
    assert quarantined(database_url) == []
    assert query(database_url, "SELECT steps_done FROM workflow_runs WHERE id = %s", str(poisoned)) == [(TOO_BIG,)]


def test_the_command_discards_an_event_and_refuses_unknown_ids(tracker, database_url, cli_env, capsys):
    _, poison = record_poison_between_runs(tracker, database_url)
    Projector(tracker).catch_up()
    code, out = quarantine_command(capsys, "discard", "event", str(poison), "999999")
    assert code == 1 and "event 999999: not set aside" in out and f"event {poison}: discarded" in out
    assert quarantined(database_url) == []
    assert query(database_url, "SELECT count(*) FROM appliance_events WHERE id = %s", poison) == [(1,)]


def test_the_command_lists_retries_and_discards_the_monitor_s_given_up_changes(
        tracker, database_url, cli_env, capsys):
    tracker.initiate_workflow("changed", "", None, None)
    tracker.initiate_workflow("changed too", "", None, None)
    Projector(tracker).catch_up()
    first, second = [row[0] for row in query(database_url, "SELECT id FROM change_notifications ORDER BY id")]
    query(database_url, "UPDATE change_notifications SET processed = true, processed_at = now(), attempts = 5, "
                        "last_error = 'webhook answered 500'")
    code, out = quarantine_command(capsys, "list")
    assert "changes the monitor gave up on: 2" in out and f"change {first}: INSERT workflow_runs" in out, out
    assert "webhook answered 500" in out

    assert quarantine_command(capsys, "retry", "change", str(first))[0] == 0
    assert quarantine_command(capsys, "discard", "change", "all")[0] == 0
    assert query(database_url, "SELECT id, processed, attempts FROM change_notifications") == [(first, False, 0)]
    assert second


def test_the_command_refuses_a_retry_without_kind_or_ids(cli_env, capsys):
    assert quarantine_command(capsys, "retry")[0] == 2
    assert quarantine_command(capsys, "retry", "event", "x1")[0] == 2
