"""The real BIOMERO 2.8.3 and the appliance in one database, in both directions.

BIOMERO runs in its own virtualenv (tests/support/biomero_venv.py), wired by
its own SlurmClient code, and records with the call shapes of its real
callers (tests/support/biomero_calls.py), against the test PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from uuid import uuid4


from appliance import WorkflowTracker
from appliance.projection import Projector
from tests.support import biomero_calls
from tests.support.biomero_venv import run_driver, start_driver
from tests.support.sql import query
from tests.support.waiting import wait_for
from tests.support.web_support import bearer, make_app

RECORD_SECONDS = 25  # BIOMERO records about one workflow a second here (its four views follow each event)

BIOMERO_VIEWS = ("biomero_job_view", "biomero_job_progress_view", "biomero_workflow_progress_view",
                 "biomero_task_execution")


def test_biomero_records_with_its_callers_shapes_and_its_four_views_follow(biomero, database_url):
    day = run_driver(database_url, "facility-day", "4711")
    assert day["tracker"] == "eventsourcing.system.WorkflowTracker"  # the System's own subclass of BIOMERO's
    completed = day["read_back"]["completed"]
    assert (completed["User"], completed["Group"], completed["Description"]) == (52, 3, "Segment nuclei\n2.8.2")
    assert [task["Status"] for task in completed["Tasks"]] == ["TRANSFERRING", None, "COMPLETED", "POSTPROCESSING"]
    assert completed["Tasks"][2]["Job_IDs"] == [4711]
    assert query(database_url, "SELECT slurm_job_id, \"user\", \"group\" FROM biomero_job_view ORDER BY 1") == [
        (-1, -1, -1), (4711, 52, 3), (4712, 52, 3), (4713, -1, -1)]
    assert query(database_url, "SELECT status FROM biomero_job_progress_view WHERE slurm_job_id = 4712") == [
        ("TIMEOUT",)]
    progress = dict(query(database_url, "SELECT workflow_id::text, status FROM biomero_workflow_progress_view"))
    assert progress[day["ids"]["completed"][0]] == "DONE"
    assert progress[day["ids"]["conversion"][0]] == "FAILED"
    assert query(database_url, "SELECT count(*) FROM biomero_task_execution") == [(7,)]
    topics = query(database_url, "SELECT DISTINCT split_part(topic, ':', 1) FROM workflowtracker_events")
    assert topics == [("biomero.eventsourcing",)]


def snakemake_run(run_id: str, job: int) -> list[dict]:
    """What the Snakemake logger plugin sends for a one-job run, as ingest events."""
    task_id = str(uuid4())
    events = [
        {"type": "run_started", "run_id": run_id, "name": "rnaseq", "user": "alice", "group": "genomics",
         "source": "snakemake"},
        {"type": "task_created", "task_id": task_id, "run_id": run_id, "name": "align", "input": {"sample": job}},
        {"type": "task_started", "task_id": task_id},
        {"type": "job_id", "task_id": task_id, "job_id": f"sm-{job}"},
        {"type": "log", "run_id": run_id, "task_id": task_id, "message": f"aligned {job}"},
        {"type": "task_finished", "task_id": task_id},
        {"type": "run_finished", "run_id": run_id},
    ]
    return [{"id": str(uuid4()), **event} for event in events]


def test_biomero_and_the_appliance_record_in_one_database_and_neither_breaks_the_other(biomero, database_url):
    """BIOMERO records (its four views following) while the appliance ingests Snakemake
    runs and projects both logs live: every run of both, once; BIOMERO's views keep up."""
    tracker = WorkflowTracker(database_url=database_url)
    projector = Projector(tracker, poll_interval=0.5)
    projecting = threading.Thread(target=projector.run, daemon=True)
    projecting.start()
    biomero_process = start_driver(database_url, "record", str(RECORD_SECONDS), "5000")
    client = make_app(database_url).test_client()
    ingested = []
    try:
        while biomero_process.poll() is None:
            run_id = str(uuid4())
            answer = client.post("/api/v1/events", json={"events": snakemake_run(run_id, len(ingested))},
                                 headers=bearer())
            assert answer.status_code == 200, answer.get_data(as_text=True)
            ingested.append(run_id)
        out, err = biomero_process.communicate()
        assert biomero_process.returncode == 0, err[-4000:]
        days = json.loads(out.strip().splitlines()[-1])["days"]
        biomero_runs = {wf for day in days for wf, _ in day.values()}
        newest = query(database_url, "SELECT max(id) FROM workflowtracker_events")[0][0]
        wait_for(lambda: query(database_url, "SELECT notification_id FROM projector_tracking "
                                             "WHERE application_name = 'WorkflowTracker'") == [(newest,)],
                 timeout=30, message="the projector to reach BIOMERO's newest event")
        wait_for(lambda: query(database_url, "SELECT count(*) FROM workflow_runs WHERE source = 'snakemake'")
                 == [(len(ingested),)], timeout=30, message="every ingested run projected")
    finally:
        projector.stop()
        projecting.join(timeout=30)
        tracker.close()
        if biomero_process.poll() is None:
            biomero_process.kill()
    assert len(days) >= 2 and len(ingested) >= 10
    # No error in BIOMERO's log (it logs at WARNING and above here).
    assert not [line for line in err.splitlines() if line.startswith(("ERROR", "CRITICAL", "Traceback"))], err[-4000:]
    # Every run of both sources in the appliance's views, once.
    shown = dict(query(database_url, "SELECT id::text, source FROM workflow_runs"))
    assert {run for run, source in shown.items() if source == "biomero"} == biomero_runs
    assert {run for run, source in shown.items() if source == "snakemake"} == set(ingested)
    assert query(database_url, "SELECT count(*) FROM log_entries") == [(len(ingested),)]
    # BIOMERO's four views followed every one of its events, nothing of the appliance's in its log.
    assert query(database_url, "SELECT count(*) FROM biomero_workflow_progress_view") == [(len(biomero_runs),)]
    assert {row[0] for row in query(database_url, "SELECT workflow_id::text FROM biomero_workflow_progress_view")} \
        == biomero_runs
    for follower in ("jobaccounting", "jobprogress", "workflowprogress", "workflowanalytics"):
        assert query(database_url, f"SELECT max(notification_id) FROM {follower}_tracking") == [(newest,)]
    assert query(database_url, "SELECT count(*) FROM workflowtracker_events WHERE topic NOT LIKE 'biomero.%%'") \
        == [(0,)]
    assert query(database_url, "SELECT count(*) FROM projection_skipped_topics") == [(0,)]


COMPARED = ("Name", "Description", "User", "Group")
COMPARED_TASK = ("Name", "Version", "Status", "Input_Data", "Job_IDs", "Result_Message", "Command", "Params")


def comparable(read: dict) -> dict:
    """What SLURM_Get_Results.py reads back, without ids and times (which differ by nature)."""
    return {**{key: read[key] for key in COMPARED},
            "Tasks": [{key: task[key] for key in COMPARED_TASK} for task in read["Tasks"]]}


def test_the_same_biomero_call_script_runs_unchanged_against_appliance_workflow_tracker(biomero, database_url):
    theirs = run_driver(database_url, "facility-day", "4711")["read_back"]
    tracker = WorkflowTracker(database_url=database_url)
    try:
        ids = biomero_calls.facility_day(tracker, 4711)
        ours = {kind: biomero_calls.read_back(tracker, wf_id) for kind, (wf_id, _) in ids.items()}
        Projector(tracker).catch_up()
    finally:
        tracker.close()
    assert {kind: comparable(read) for kind, read in ours.items()} == \
        {kind: comparable(read) for kind, read in theirs.items()}
    # Both recorded the same: the views show BIOMERO's runs and the appliance's alike.
    shown = query(database_url, "SELECT workflow_name, description, user_name, group_name, status, tasks_total "
                                "FROM workflow_runs ORDER BY workflow_name, source NULLS FIRST")
    assert shown[0::2] == shown[1::2] and len(shown) == 8
