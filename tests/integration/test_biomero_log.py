"""The projector follows BIOMERO's log too, read only, with its own position.

The BIOMERO events here are real: recorded by biomero==2.8.3 with its
callers' call shapes (tests/fixtures/README.md), in the database of a
previous appliance version that the migrator brings up to date. The live
both-directions test with BIOMERO running is tests/acceptance/test_biomero.py.
"""

from __future__ import annotations

import pytest

from appliance import WorkflowTracker
from appliance.projection import Projector
from appliance.projection.reproject import reproject
from tests.support.dumps import restore
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.web_support import make_app

SHARED = "biomero-and-appliance-before-appliance-events"
UNKNOWN = "labsuite.events:Sample.Registered"
BIOMERO_TABLES = ("workflowtracker_events", "jobaccounting_tracking", "jobprogress_tracking",
                  "workflowprogress_tracking", "workflowanalytics_tracking", "biomero_job_view",
                  "biomero_job_progress_view", "biomero_workflow_progress_view", "biomero_task_execution")


@pytest.fixture
def shared(empty_database_url):
    """A database where BIOMERO and an earlier appliance recorded, brought up to date."""
    restore(empty_database_url, SHARED)
    prepare_schema(empty_database_url)
    tracker = WorkflowTracker(database_url=empty_database_url)
    yield empty_database_url, tracker
    tracker.close()


def biomero_tables(url: str) -> dict:
    return {table: query(url, f"SELECT * FROM {table} ORDER BY 1") for table in BIOMERO_TABLES}


def runs(url: str) -> dict:
    return {row[0]: row[1:] for row in query(
        url, "SELECT workflow_name, description, user_name, group_name, source, status, tasks_total, error_message "
             "FROM workflow_runs WHERE source = 'biomero'")}


def test_biomero_runs_are_shown_with_biomero_values_and_nothing_of_biomero_is_written(shared):
    url, tracker = shared
    before = biomero_tables(url)
    assert Projector(tracker).catch_up() == 126
    assert runs(url) == {
        "cellpose": ("Segment nuclei\n2.8.2", "52", "3", "biomero", "completed", 4, None),
        "stardist": ("\n2.8.2", "52", "3", "biomero", "failed", 1, ""),  # str(e) of a bare exception, kept
        "cellexpansion": ("v1.0.1", "-1", "-1", "biomero", "running", 1, None),  # running from its started task
        "conversion": ("-1", "-1", "-1", "biomero", "failed", 1, ""),
    }
    tasks = {row[0]: row[1:] for row in query(
        url, "SELECT task_name, status, external_status, progress, job_ids, result_message, error_message, "
             "input_data, results->0->>'command' FROM job_executions WHERE task_name IN "
             "('cellpose', 'stardist', 'CONVERT_ZARR_TO_TIFF', '_SLURM_Image_Transfer.py')")}
    assert tasks["cellpose"] == ("completed", "COMPLETED", "50%", ["4711"], "Job 4711 is COMPLETED.", None,
                                 "230412_120000_images", "sbatch job.sh")
    assert tasks["stardist"][:5] == ("failed", "TIMEOUT", None, ["4712"], None)
    assert tasks["CONVERT_ZARR_TO_TIFF"][2:4] == (None, ["-1"])
    assert tasks["_SLURM_Image_Transfer.py"][6] == [1201, 1202, 1203]
    assert query(url, "SELECT job_id, user_name, group_name, status FROM job_accounting WHERE job_id = '4712'") == [
        ("4712", "52", "3", "TIMEOUT")]
    assert query(url, "SELECT application_name, notification_id FROM projector_tracking ORDER BY 1") == [
        ("Appliance", 126), ("WorkflowTracker", 56)]
    assert biomero_tables(url) == before  # read only


def test_an_event_of_an_unknown_topic_is_skipped_counted_and_shown_never_a_stop(shared, caplog):
    url, tracker = shared
    for table in ("workflowtracker_events", "appliance_events"):
        query(url, f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                   "SELECT gen_random_uuid(), 0, %s, convert_to('{}', 'UTF8') FROM generate_series(1, 2)", UNKNOWN)
    projector = Projector(tracker)
    with caplog.at_level("WARNING", logger="appliance.projection.store"):
        projector.catch_up()
        run = tracker.initiate_workflow("after the stranger", "", "erin", "imaging")
        query(url, f"INSERT INTO workflowtracker_events (originator_id, originator_version, topic, state) "
                   "VALUES (gen_random_uuid(), 0, %s, convert_to('{}', 'UTF8'))", UNKNOWN)
        projector.catch_up()
    assert query(url, "SELECT count(*) FROM workflow_runs WHERE id = %s", str(run)) == [(1,)]
    assert query(url, "SELECT application_name, topic, events FROM projection_skipped_topics ORDER BY 1") == [
        ("Appliance", UNKNOWN, 2), ("WorkflowTracker", UNKNOWN, 3)]
    named = [record.getMessage() for record in caplog.records if UNKNOWN in record.getMessage()]
    assert len(named) == 2 and "workflowtracker_events" in named[1]  # once per log
    client = make_app(url).test_client()
    system = client.get("/api/v1/system").get_json()
    assert {(s["log"], s["events"]) for s in system["skipped_topics"]} == {("Appliance", 2), ("WorkflowTracker", 3)}
    assert system["biomero_log"]["lag_events"] == 0
    assert UNKNOWN in client.get("/system").get_data(as_text=True)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'appliance_projector_skipped_events{{log="WorkflowTracker",topic="{UNKNOWN}"}} 3.0' in metrics


def test_a_rebuild_replays_both_logs_from_their_first_event(shared):
    url, tracker = shared
    Projector(tracker).catch_up()
    live = query(url, "SELECT * FROM workflow_runs ORDER BY id"), query(url, "SELECT * FROM job_executions ORDER BY id")
    first_biomero_run = query(url, "SELECT originator_id::text FROM workflowtracker_events WHERE id = 1")[0][0]
    assert reproject(tracker, batch_size=7).events == 126
    assert (query(url, "SELECT * FROM workflow_runs ORDER BY id"),
            query(url, "SELECT * FROM job_executions ORDER BY id")) == live
    assert query(url, "SELECT workflow_name FROM workflow_runs WHERE id = %s", first_biomero_run) == [("cellpose",)]
    assert query(url, "SELECT count(*) FROM projection_rebuild") == [(0,)]


def test_a_biomero_log_that_appears_later_is_followed_from_its_start(tracker, database_url):
    projector = Projector(tracker)
    tracker.initiate_workflow("alone", "", "fay", "imaging")
    assert projector.catch_up() == 1
    assert not query(database_url, "SELECT 1 FROM projector_tracking WHERE application_name = 'WorkflowTracker'")
    query(database_url, "CREATE TABLE workflowtracker_events (LIKE appliance_events INCLUDING ALL)")
    query(database_url, "INSERT INTO workflowtracker_events (originator_id, originator_version, topic, state) "
                        "SELECT originator_id, 0, 'biomero.eventsourcing:WorkflowRun.WorkflowInitiated', "
                        "convert_to('{\"name\": \"late\", \"description\": \"\", \"user\": 7, \"group\": 8, "
                        "\"timestamp\": {\"_type_\": \"datetime_iso\", \"_data_\": \"2026-12-04T10:00:00+00:00\"}, "
                        "\"originator_topic\": \"biomero.eventsourcing:WorkflowRun\"}', 'UTF8') "
                        "FROM (SELECT gen_random_uuid() AS originator_id) AS new")
    assert projector.catch_up() == 1
    assert query(database_url, "SELECT workflow_name, user_name, group_name, source FROM workflow_runs "
                               "WHERE workflow_name = 'late'") == [("late", "7", "8", "biomero")]
