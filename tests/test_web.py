"""The status pages, their JSON twins, ingest, health and metrics, on seeded data."""

import json
from uuid import uuid4

import pytest

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.projection import Projector
from appliance.web import basic_auth_header, create_app

TOKEN = "ingest-token-for-tests"
XSS = "<script>alert(1)</script>"


def make_app(database_url, **web):
    settings = Settings(database_url=parse_database_url(database_url),
                        web=WebSettings(**{"ingest_token": TOKEN, **web}))
    return create_app(settings)


@pytest.fixture
def client(database_url):
    return make_app(database_url).test_client()


@pytest.fixture
def seeded(tracker):
    """Three runs: one completed with two tasks, one failed, one running; projected."""
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


def test_dashboard_lists_runs_newest_first_with_counts(client, seeded):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("cellpose") < html.index("rnaseq")
    api = client.get("/api/v1/runs").json
    assert [run["name"] for run in api["runs"]] == [XSS, "cellpose", "rnaseq"]
    assert api["counts"] == {"completed": 1, "failed": 1, "running": 1}
    first = api["runs"][2]
    assert {"id", "name", "status", "progress", "user", "group", "started_at", "finished_at"} <= set(first)
    assert first["progress"] == {"done": 2, "total": 2, "percent": 100.0}
    assert api["next"] is None


@pytest.mark.parametrize("query, names", [
    ("status=failed", ["cellpose"]), ("user=alice", ["rnaseq"]), ("group=imaging", [XSS, "cellpose"]),
    ("q=seq", ["rnaseq"]), ("q=%25", []), ("q=_", []),
])
def test_dashboard_filters(client, seeded, query, names):
    assert [run["name"] for run in client.get(f"/api/v1/runs?{query}").json["runs"]] == names


def test_keyset_pagination_walks_every_run_once(client, tracker):
    for n in range(7):
        tracker.initiate_workflow(f"run {n}", "", None, None)
    Projector(tracker).catch_up()
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/runs", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})}).json
        seen += [run["name"] for run in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"run {n}" for n in reversed(range(7))]


def test_run_page_shows_tasks_timeline_logs_and_errors(client, seeded):
    html = client.get(f"/runs/{seeded['failed']}").get_data(as_text=True)
    assert "segment failed" in html and "MemoryError" in html
    html = client.get(f"/runs/{seeded['done']}").get_data(as_text=True)
    assert "<svg" in html and "align-4711" in html and "disk nearly full" in html
    api = client.get(f"/api/v1/runs/{seeded['done']}").json
    assert [task["name"] for task in api["tasks"]] == ["align", "count"]
    assert [line["message"] for line in api["logs"]] == ["all aligned", "disk nearly full"]
    warnings = client.get(f"/api/v1/runs/{seeded['done']}?level=WARNING").json["logs"]
    assert [line["message"] for line in warnings] == ["disk nearly full"]


def test_logs_after_an_id(client, seeded):
    logs = client.get(f"/api/v1/runs/{seeded['done']}/logs").json["logs"]
    later = client.get(f"/api/v1/runs/{seeded['done']}/logs?after={logs[0]['id']}").json
    assert [line["message"] for line in later["logs"]] == ["disk nearly full"]
    assert later["after"] == logs[1]["id"]


def test_workflow_controlled_text_is_escaped(client, seeded):
    for path in ("/", f"/runs/{seeded['running']}"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_response_has_a_content_security_policy(client, seeded):
    assert "default-src 'self'" in client.get("/").headers["Content-Security-Policy"]


def test_jobs_by_id_and_by_owner(client, seeded):
    [job] = client.get("/api/v1/jobs/align-4711").json["jobs"]
    assert (job["task_name"], job["workflow_name"], job["user_name"]) == ("align", "rnaseq", "alice")
    owned = client.get("/api/v1/jobs?user=alice").json["jobs"]
    assert sorted(j["job_id"] for j in owned) == ["align-4711", "count-4711"]
    assert "align-4711" in client.get("/jobs?job_id=align-4711").get_data(as_text=True)


def test_changes_feed_and_its_filter(client, seeded):
    recent = client.get("/api/v1/changes?table=workflow_runs").json["changes"]
    assert recent and {c["table_name"] for c in recent} == {"workflow_runs"}
    after = client.get("/api/v1/changes?after=0&limit=5").json["changes"]
    assert [c["id"] for c in after] == sorted(c["id"] for c in after)
    assert client.get("/changes").status_code == 200


def test_system_page(client, seeded):
    state = client.get("/api/v1/system").json
    assert state["schema"]["at_head"] and state["triggers"]["complete"]
    assert state["projector"]["lag_events"] == 0
    assert "revision" in client.get("/system").get_data(as_text=True)


@pytest.mark.parametrize("path", [
    "/api/v1/runs?status=sleeping", "/api/v1/runs?limit=0", "/api/v1/runs?limit=x", "/api/v1/runs?cursor=!!",
    "/api/v1/runs/not-a-uuid", "/api/v1/runs/00000000-0000-0000-0000-000000000000/logs?after=-1",
    "/api/v1/changes?table=users", "/api/v1/runs?q=" + "x" * 300,
])
def test_bad_parameters_get_400_with_a_message(client, path):
    response = client.get(path)
    assert response.status_code == 400 and response.json["error"]


def test_unknown_run_is_404(client):
    assert client.get(f"/api/v1/runs/{uuid4()}").status_code == 404
    assert client.get(f"/runs/{uuid4()}").status_code == 404


# Ingest.


def events_of_a_run(run_id):
    return [
        {"id": str(uuid4()), "type": "run_started", "run_id": run_id, "name": "ingested", "user": "dora"},
        {"id": str(uuid4()), "type": "log", "run_id": run_id, "message": "hello"},
    ]


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_ingest_applies_a_batch_and_a_resend_changes_nothing(client, tracker):
    run_id = str(uuid4())
    body = {"events": events_of_a_run(run_id)}
    first = client.post("/api/v1/events", json=body, headers=bearer())
    assert first.status_code == 200 and first.json == {"applied": 2, "duplicates": 0}
    again = client.post("/api/v1/events", json=body, headers=bearer())
    assert again.json == {"applied": 0, "duplicates": 2}
    Projector(tracker).catch_up()
    [run] = client.get("/api/v1/runs").json["runs"]
    assert (run["id"], run["status"], run["user"]) == (run_id, "running", "dora")


def test_ingest_is_all_or_nothing_and_names_bad_events(client, tracker):
    events = events_of_a_run(str(uuid4())) + [{"id": "x", "type": "nope"}]
    response = client.post("/api/v1/events", json={"events": events}, headers=bearer())
    assert response.status_code == 400
    assert [p["index"] for p in response.json["problems"]] == [2]
    assert tracker.recorder.max_notification_id() is None


@pytest.mark.parametrize("headers, status", [({}, 401), (bearer("wrong"), 401), ({"Authorization": TOKEN}, 401)])
def test_ingest_requires_the_token(client, headers, status):
    response = client.post("/api/v1/events", json={"events": []}, headers=headers)
    assert response.status_code == status


def test_ingest_without_a_configured_token_says_how_to_enable_it(database_url):
    client = make_app(database_url, ingest_token=None).test_client()
    response = client.post("/api/v1/events", json={"events": []}, headers=bearer())
    assert response.status_code == 403 and "APPLIANCE_INGEST_TOKEN" in response.json["error"]


def test_too_large_batches_get_413(database_url):
    client = make_app(database_url, ingest_max_events=1, ingest_max_bytes=2000).test_client()
    two = client.post("/api/v1/events", json={"events": events_of_a_run(str(uuid4()))}, headers=bearer())
    assert two.status_code == 413 and "limit is 1" in two.json["error"]
    huge = client.post("/api/v1/events", data=b'{"events": ["' + b"x" * 5000 + b'"]}', headers=bearer(),
                       content_type="application/json")
    assert huge.status_code == 413


def test_malformed_json_gets_400(client):
    response = client.post("/api/v1/events", data=b"{nope", headers=bearer(), content_type="application/json")
    assert response.status_code == 400 and "not JSON" in response.json["error"]


# Health, auth and failure.


def test_health_readiness_and_metrics(client, seeded):
    assert client.get("/healthz").json == {"status": "alive"}
    assert client.get("/readyz").json["status"] == "ready"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'appliance_runs{status="completed"} 1.0' in metrics
    assert "appliance_projector_lag_events 0.0" in metrics
    assert "appliance_change_backlog" in metrics


def test_readyz_is_503_on_an_unmigrated_database(empty_database_url):
    response = make_app(empty_database_url).test_client().get("/readyz")
    assert response.status_code == 503 and "appliance init" in response.json["reason"]


def test_basic_auth_guards_pages_and_reads_but_not_health(database_url):
    client = make_app(database_url, ui_user="admin", ui_password="s3cret").test_client()
    assert client.get("/").status_code == 401
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": basic_auth_header("admin", "nope")}).status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": basic_auth_header("admin", "s3cret")}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_a_database_outage_is_a_short_503_without_details():
    settings = Settings(database_url=parse_database_url("postgresql://secretuser:pw@127.0.0.1:1/secretdb"),
                        web=WebSettings(ingest_token=TOKEN))
    client = create_app(settings).test_client()
    for path in ("/", "/api/v1/runs"):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "secretuser" not in body and "secretdb" not in body and "Traceback" not in body
    ingest = client.post("/api/v1/events", json={"events": events_of_a_run(str(uuid4()))}, headers=bearer())
    assert ingest.status_code == 503


def test_openapi_document_lists_every_api_path(client):
    paths = set(client.get("/api/v1/openapi.json").json["paths"])
    assert {"/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/logs", "/api/v1/jobs",
            "/api/v1/jobs/{job_id}", "/api/v1/changes", "/api/v1/system", "/api/v1/events"} <= paths


def test_appliance_web_serves_under_gunicorn_and_stops_on_sigterm(database_url):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from appliance.localpg import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "BACKEND_PORT": str(port), "APPLIANCE_BIND": "127.0.0.1",
           "WEB_WORKERS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "appliance.cli", "web"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    assert json.loads(response.read())["status"] == "ready"
                    break
            except OSError:
                assert time.monotonic() < deadline, "appliance web never became ready"
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
