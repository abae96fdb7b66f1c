"""What the web tests share: an app on the test database, seeded runs, ingest helpers."""

from uuid import uuid4

import pytest

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.projection import Projector
from appliance.web import create_app

TOKEN = "ingest-token-for-tests"
XSS = "<script>alert(1)</script>"


def make_app(database_url, **web):
    settings = Settings(database_url=parse_database_url(database_url),
                        web=WebSettings(**{"ingest_token": TOKEN, **web}))
    return create_app(settings)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def events_of_a_run(run_id):
    return [
        {"id": str(uuid4()), "type": "run_started", "run_id": run_id, "name": "ingested", "user": "dora"},
        {"id": str(uuid4()), "type": "log", "run_id": run_id, "message": "hello"},
    ]


@pytest.fixture
def client(database_url):
    return make_app(database_url).test_client()


@pytest.fixture
def seeded(tracker):
    """Three runs: one completed with two tasks, one failed, one running (named XSS); projected."""
    done = tracker.initiate_workflow("rnaseq", "nightly", "alice", "genomics", source="snakemake")
    tracker.start_workflow(done)
    tasks = []
    for name in ("align", "count"):
        task = tracker.add_task_to_workflow(done, name, "1.0", {}, {})
        tracker.start_task(task)
        tracker.add_job_id(task, f"{name}-4711")
        tracker.complete_task(task, "ok")
        tasks.append(task)
    tracker.record_log(done, "all aligned", task_id=tasks[0])
    tracker.record_log(done, "disk nearly full", level="WARNING")
    tracker.complete_workflow(done)
    failed = tracker.initiate_workflow("cellpose", "", "bob", "imaging", source="biomero")
    tracker.start_workflow(failed)
    broken = tracker.add_task_to_workflow(failed, "segment", None, {}, {})
    tracker.start_task(broken)
    tracker.fail_task(broken, "MemoryError: out of memory")
    tracker.fail_workflow(failed, "segment failed")
    running = tracker.initiate_workflow(XSS, "", "carol", "imaging")
    tracker.start_workflow(running)
    tracker.record_log(running, XSS)
    Projector(tracker).catch_up()
    return {"done": str(done), "failed": str(failed), "running": str(running), "tasks": tasks}
