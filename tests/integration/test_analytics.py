"""BIOMERO's read helpers over the appliance's views, in Python and as JSON, paged.

On the real BIOMERO 2.8.3 events of tests/fixtures (with BIOMERO's own view
tables, built by BIOMERO itself, to compare with) and the appliance's own runs.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from appliance import WorkflowTracker
from appliance.analytics import BiomeroReads
from appliance.projection import Projector
from tests.support.databases import fresh_database
from tests.support.dumps import restore
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.web_support import make_app


@pytest.fixture(scope="module")
def shared(postgres_admin_url):
    """The shared database of BIOMERO and the appliance, projected; read only by these tests."""
    databases = fresh_database(postgres_admin_url, "appliance_analytics")
    url = next(databases)
    restore(url, "biomero-and-appliance-before-appliance-events")
    prepare_schema(url)
    tracker = WorkflowTracker(database_url=url)
    Projector(tracker).catch_up()
    tracker.close()
    yield url
    next(databases, None)


def test_job_ids_lead_to_the_same_tasks_as_biomeros_job_accounting(shared):
    reads = BiomeroReads(shared)
    for job_id, task_id in query(shared, "SELECT slurm_job_id, task_id::text FROM biomero_job_view"):
        assert reads.get_task_id(job_id) == UUID(task_id)
    assert reads.get_task_id(999999) is None
    theirs = query(shared, "SELECT slurm_job_id FROM biomero_job_view WHERE \"user\" = 52 ORDER BY 1")
    assert reads.get_jobs(52) == {52: [job_id for job_id, in theirs]}
    everyone = reads.get_jobs()
    assert everyone[52] == [4711, 4712] and everyone[-1] == [4713, -1] and everyone["alice"] == [4700, 4700, 4701,
                                                                                                   4701, 4702, 4702]


def test_task_analytics_answer_as_biomeros_workflow_analytics(shared):
    reads = BiomeroReads(shared)
    theirs = dict(((name, version), count) for name, version, count in query(
        shared, "SELECT task_name, task_version, count(*) FROM biomero_task_execution WHERE user_id = 52 GROUP BY 1, 2"))
    assert reads.get_task_counts(user=52) == theirs
    assert reads.get_task_failures(user=52) == {("stardist", "v0.9.1"): ["Slurm job state TIMEOUT"]}
    assert set(reads.get_average_task_duration(group=3)) == {
        ("SLURM_Get_Results.py", "2.8.2"), ("_SLURM_Image_Transfer.py", "2.8.2"), ("cellpose", "v1.2.7"),
        ("convert_zarr_to_tiff", "2.8.2"), ("stardist", "v0.9.1")}
    day, = query(shared, "SELECT DISTINCT start_time::date FROM biomero_task_execution WHERE task_name = 'cellpose'")
    assert reads.get_task_usage_over_time("cellpose") == {day[0]: 1}
    assert reads.get_task_counts(user="alice") == {("align", "1.0"): 3, ("count", "1.0"): 3}


def test_the_json_twins_are_paged_and_described(shared):
    client = make_app(shared).test_client()
    first = client.get("/api/v1/analytics/task-counts?user=52&limit=2").get_json()
    assert (len(first["task_counts"]), first["next_offset"]) == (2, 2)
    pages, offset = [first], first["next_offset"]
    while offset is not None:
        pages.append(client.get(f"/api/v1/analytics/task-counts?user=52&limit=2&offset={offset}").get_json())
        offset = pages[-1]["next_offset"]
    counts = {(row["task_name"], row["task_version"]): row["count"] for page in pages for row in page["task_counts"]}
    assert len(pages) == 3 and counts == BiomeroReads(shared).get_task_counts(user=52)
    found = client.get("/api/v1/analytics/task-id?job_id=4711").get_json()
    assert found["task_id"] == str(BiomeroReads(shared).get_task_id(4711))
    jobs = client.get("/api/v1/analytics/jobs?group=3").get_json()
    assert [job["job_id"] for job in jobs["jobs"]] == ["4711", "4712"] and jobs["next_offset"] is None
    assert client.get("/api/v1/analytics/task-failures").get_json()["task_failures"]
    usage = client.get("/api/v1/analytics/task-usage?task_name=cellpose").get_json()["usage"]
    assert sum(row["count"] for row in usage) == 1
    assert client.get("/api/v1/analytics/task-durations?limit=1").get_json()["next_offset"] == 1
    assert client.get("/api/v1/analytics/task-id").status_code == 400
    assert "usr" in client.get("/api/v1/analytics/jobs?usr=52").get_json()["error"]
    assert client.get("/api/v1/analytics/jobs?limit=0").status_code == 400
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/analytics/task-id", "/api/v1/analytics/jobs", "/api/v1/analytics/task-counts",
            "/api/v1/analytics/task-durations", "/api/v1/analytics/task-failures",
            "/api/v1/analytics/task-usage"} <= set(paths)
