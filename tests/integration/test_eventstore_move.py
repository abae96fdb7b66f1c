"""The appliance's own events move out of BIOMERO's table once, under the schema lock, nothing lost.

On copies made with the version that still wrote to workflowtracker_events
(tests/fixtures/README.md): one database of the appliance alone, one where
BIOMERO 2.8.3 recorded too.
"""

from __future__ import annotations

from appliance import WorkflowTracker
from appliance.config import Settings, parse_database_url
from appliance.projection import Projector
from appliance.projection.reproject import reproject
from appliance.schema import init
from tests.support.dumps import restore
from tests.support.sql import query

ALONE = "appliance-before-appliance-events"
SHARED = "biomero-and-appliance-before-appliance-events"
VIEW_SNAPSHOT = {
    "workflow_runs": "SELECT * FROM workflow_runs ORDER BY id",
    "job_executions": "SELECT * FROM job_executions ORDER BY id",
    "job_accounting": "SELECT * FROM job_accounting ORDER BY job_id, task_id",
    "log_entries": "SELECT * FROM log_entries ORDER BY id",
}


def initialise(url: str) -> list[str]:
    said: list[str] = []
    init(Settings(database_url=parse_database_url(url)), announce=said.append)
    return said


def events(url: str, table: str) -> list[tuple]:
    return query(url, f"SELECT id, originator_id::text, originator_version, topic, state FROM {table} ORDER BY id")


def views(url: str) -> dict:
    return {name: query(url, sql) for name, sql in VIEW_SNAPSHOT.items()}


def on_old_columns(rows_by_table: dict, old: dict) -> dict:
    """The rows cut to the columns the old copy had: later revisions add columns at the end
    (job_executions.attempt_history), and a move must keep every value that was there."""
    return {name: [row[:len(old[name][0])] if old[name] else row for row in rows]
            for name, rows in rows_by_table.items()}


def tables(url: str) -> set[str]:
    return {name for name, in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_the_appliance_alone_keeps_every_event_id_position_and_view_row(empty_database_url):
    url = empty_database_url
    restore(url, ALONE)
    before_events, before_views = events(url, "workflowtracker_events"), views(url)

    said = initialise(url)

    assert "moved 70 appliance events from workflowtracker_events to appliance_events and dropped the emptied table" in said
    assert events(url, "appliance_events") == before_events
    assert "workflowtracker_events" not in tables(url)
    assert query(url, "SELECT application_name, notification_id FROM projector_tracking") == [("Appliance", 70)]
    assert on_old_columns(views(url), before_views) == before_views
    tracker = WorkflowTracker(database_url=url)
    try:
        assert Projector(tracker).catch_up() == 0  # nothing applied twice
        run = tracker.initiate_workflow("after the move", "", "dave", "imaging")
        assert Projector(tracker).catch_up() == 1
        assert query(url, "SELECT id FROM appliance_events WHERE originator_id = %s", str(run)) == [(71,)]
        reproject(tracker)
    finally:
        tracker.close()
    rebuilt = views(url)
    assert on_old_columns(rebuilt, before_views)["log_entries"] == before_views["log_entries"]  # ids are notification ids: kept
    assert len(rebuilt["workflow_runs"]) == len(before_views["workflow_runs"]) + 1


def test_biomero_events_stay_where_they_are_and_the_appliance_events_leave(empty_database_url):
    url = empty_database_url
    restore(url, SHARED)
    before = events(url, "workflowtracker_events")
    theirs = [event for event in before if event[3].startswith("biomero.")]
    ours = [event for event in before if event[3].startswith("appliance.")]

    said = initialise(url)

    assert f"moved {len(ours)} appliance events from workflowtracker_events to appliance_events; " \
           f"{len(theirs)} BIOMERO events stay there" in said
    assert events(url, "workflowtracker_events") == theirs  # untouched, ids and all
    assert events(url, "appliance_events") == ours
    assert query(url, "SELECT application_name, notification_id FROM projector_tracking") == [("Appliance", 0)]
    # BIOMERO's own followers' positions are theirs, in their log
    assert query(url, "SELECT max(notification_id) FROM jobaccounting_tracking") == [(56,)]


def test_a_second_start_moves_nothing_and_a_straggler_gets_a_new_id(empty_database_url):
    url = empty_database_url
    restore(url, SHARED)
    initialise(url)
    moved = events(url, "appliance_events")
    assert not [line for line in initialise(url) if line.startswith("moved")]
    assert events(url, "appliance_events") == moved
    # An old process still running appended one more event to the old table.
    query(url, "INSERT INTO workflowtracker_events (originator_id, originator_version, topic, state) "
               "SELECT gen_random_uuid(), 1, topic, state FROM appliance_events ORDER BY id LIMIT 1")
    assert "moved 1 appliance events" in " ".join(initialise(url))
    after = events(url, "appliance_events")
    assert after[:-1] == moved and after[-1][0] > moved[-1][0]
    assert not query(url, "SELECT 1 FROM workflowtracker_events WHERE topic LIKE 'appliance.%%'")
