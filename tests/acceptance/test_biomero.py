"""The real BIOMERO 2.8.3 and the appliance in one database, in both directions.

BIOMERO runs in its own virtualenv (tests/support/biomero_venv.py), wired by
its own SlurmClient code, and records with the call shapes of its real
callers (tests/support/biomero_calls.py), against the test PostgreSQL.
"""

from __future__ import annotations

import psycopg2
import pytest

from tests.support.biomero_venv import biomero_python, run_driver

BIOMERO_VIEWS = ("biomero_job_view", "biomero_job_progress_view", "biomero_workflow_progress_view",
                 "biomero_task_execution")


@pytest.fixture(scope="session")
def biomero():
    """The Python of .venv-biomero (created on first use)."""
    return biomero_python()


def rows(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_biomero_records_with_its_callers_shapes_and_its_four_views_follow(biomero, database_url):
    day = run_driver(database_url, "facility-day", "4711")
    assert day["tracker"] == "eventsourcing.system.WorkflowTracker"  # the System's own subclass of BIOMERO's
    completed = day["read_back"]["completed"]
    assert (completed["User"], completed["Group"], completed["Description"]) == (52, 3, "Segment nuclei\n2.8.2")
    assert [task["Status"] for task in completed["Tasks"]] == ["TRANSFERRING", None, "COMPLETED", "POSTPROCESSING"]
    assert completed["Tasks"][2]["Job_IDs"] == [4711]
    assert rows(database_url, "SELECT slurm_job_id, \"user\", \"group\" FROM biomero_job_view ORDER BY 1") == [
        (-1, -1, -1), (4711, 52, 3), (4712, 52, 3), (4713, -1, -1)]
    assert rows(database_url, "SELECT status FROM biomero_job_progress_view WHERE slurm_job_id = 4712") == [
        ("TIMEOUT",)]
    progress = dict(rows(database_url, "SELECT workflow_id::text, status FROM biomero_workflow_progress_view"))
    assert progress[day["ids"]["completed"][0]] == "DONE"
    assert progress[day["ids"]["conversion"][0]] == "FAILED"
    assert rows(database_url, "SELECT count(*) FROM biomero_task_execution") == [(7,)]
    topics = rows(database_url, "SELECT DISTINCT split_part(topic, ':', 1) FROM workflowtracker_events")
    assert topics == [("biomero.eventsourcing",)]
