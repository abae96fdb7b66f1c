"""The appliance in a schema of its own (docs/biomero.md's setups), the libpq way.

`DATABASE_URL=...?options=-csearch_path%3Dappliance`: every table, function and
trigger the appliance makes lives in that schema, and every part works there:
migrations, the change triggers, the tracker, the projector and the pages.
"""

from __future__ import annotations

from appliance import WorkflowTracker
from appliance.projection import Projector
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.web_support import make_app

IN_ITS_SCHEMA = "?options=-csearch_path%3Dappliance"


def objects_by_schema(url: str) -> dict[str, set[str]]:
    rows = query(url, """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        UNION ALL
        SELECT n.nspname, p.proname || '()' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')""")
    found: dict[str, set[str]] = {}
    for schema, name in rows:
        found.setdefault(schema, set()).add(name)
    return found


def test_everything_lives_and_works_in_a_schema_of_its_own(empty_database_url):
    query(empty_database_url, "CREATE SCHEMA appliance")
    url = empty_database_url + IN_ITS_SCHEMA
    prepare_schema(url)
    tracker = WorkflowTracker(database_url=url)
    try:
        run = tracker.initiate_workflow("in-its-schema", "", "dora", "lab")
        tracker.start_workflow(run)
        task = tracker.add_task_to_workflow(run, "align", "1", {}, {})
        tracker.complete_task(task, "ok")
        tracker.complete_workflow(run)
        assert Projector(tracker).catch_up() > 0
    finally:
        tracker.close()

    found = objects_by_schema(empty_database_url)
    assert set(found) == {"appliance"}, f"outside its schema: { {s: n for s, n in found.items() if s != 'appliance'} }"
    assert {"workflow_runs", "job_executions", "appliance_events", "alembic_version_appliance",
            "projector_tracking", "change_notifications"} <= found["appliance"]
    assert query(url, "SELECT status, tasks_total FROM workflow_runs WHERE id = %s", str(run)) == [("completed", 1)]
    assert query(url, "SELECT count(*) FROM change_notifications WHERE table_name = 'workflow_runs'")[0][0] > 0  # triggers fire
    page = make_app(url).test_client().get(f"/runs/{run}")
    assert page.status_code == 200 and b"in-its-schema" in page.data
