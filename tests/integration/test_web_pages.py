"""The status pages and their JSON twins, on seeded data."""

import base64
import html
import re
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest

from appliance.projection import Projector
from tests.support.waiting import wait_for
from tests.support.web_support import XSS, make_app


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
    assert first["progress"] == {"done": 2, "total": 2, "percent": 100.0, "of": "tasks"}
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


def test_a_runs_progress_is_its_reported_steps_when_its_source_reports_them(client, tracker):
    reported = tracker.initiate_workflow("snakemake run", "", None, None)
    tracker.start_workflow(reported)
    task = tracker.add_task_to_workflow(reported, "align", None, {}, {})
    tracker.complete_task(task, "ok")  # one task of one: 100% by tasks, 3 of 12 steps by the report
    tracker.update_workflow_progress(reported, 3, 12)
    by_tasks = tracker.initiate_workflow("python run", "", None, None)
    tracker.complete_task(tracker.add_task_to_workflow(by_tasks, "step", None, {}, {}), "ok")
    tracker.add_task_to_workflow(by_tasks, "next", None, {}, {})
    Projector(tracker).catch_up()

    runs = {run["name"]: run for run in client.get("/api/v1/runs").json["runs"]}

    assert runs["snakemake run"]["progress"] == {"done": 3, "total": 12, "percent": 25.0, "of": "steps"}
    assert runs["python run"]["progress"] == {"done": 1, "total": 2, "percent": 50.0, "of": "tasks"}
    assert client.get(f"/api/v1/runs/{reported}").json["run"]["progress"]["total"] == 12
    html = client.get("/").get_data(as_text=True)
    assert "3/12" in html
    # The bar is the JSON's percent, not a count of tasks (1 of 1 completed would fill it).
    assert 'class="fill w25"' in html and 'class="fill w50"' in html and 'class="fill w100"' not in html


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


def test_a_long_log_shows_its_latest_lines_and_links_to_the_first(client, tracker):
    run = tracker.initiate_workflow("chatty", "", None, None)
    with tracker.batch() as batch:
        for n in range(250):
            batch.record_log(run, f"line {n}")
    Projector(tracker).catch_up()
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    assert "line 249" in page and "line 49<" not in page and "From the first line" in page
    first = client.get(f"/runs/{run}/logs?after=0&limit=1").get_data(as_text=True)
    assert "line 0" in first


def test_older_log_lines_page_backwards_from_the_run_page(client, tracker):
    run = tracker.initiate_workflow("chatty", "", None, None)
    with tracker.batch() as batch:
        for n in range(250):
            batch.record_log(run, f"line {n}", level="WARNING" if n % 10 == 0 else "INFO")
    Projector(tracker).catch_up()
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    older = html.unescape(re.search(r'<a class="older" href="([^"]*)"', page).group(1))
    shown = client.get(f"/api/v1/runs/{run}").json["logs"]
    assert older == f"/runs/{run}/logs?before={shown[0]['id']}"
    assert "line 50<" in page and "line 49<" not in page
    rest = client.get("/api/v1" + older).json  # the 50 lines the run page did not show, oldest first
    assert [line["message"] for line in rest["logs"]] == [f"line {n}" for n in range(50)]
    assert rest["older"] is False and rest["before"] == rest["logs"][0]["id"]
    ten = client.get(f"/api/v1/runs/{run}/logs?before={shown[0]['id']}&limit=10").json
    assert [line["message"] for line in ten["logs"]] == [f"line {n}" for n in range(40, 50)] and ten["older"]
    warnings = client.get(f"/api/v1/runs/{run}/logs?before={shown[0]['id']}&level=WARNING").json["logs"]
    assert [line["message"] for line in warnings] == ["line 0", "line 10", "line 20", "line 30", "line 40"]
    older_page = client.get(older + "&level=WARNING").get_data(as_text=True)
    assert "line 40<" in older_page and "line 41<" not in older_page
    assert '<option value="WARNING" selected>' in older_page.replace("  ", " ")
    assert f'name="before" value="{shown[0]["id"]}"' in older_page  # the level selector keeps the place
    first = shown[0]["id"] - 50  # the id of "line 0"
    between = client.get(f"/api/v1/runs/{run}/logs?after={first + 2}&before={first + 6}").json
    assert [line["message"] for line in between["logs"]] == ["line 3", "line 4", "line 5"]


def test_the_run_page_lists_failed_tasks_in_one_box_and_pages_its_tasks(client, tracker):
    run = tracker.initiate_workflow("many failures", "", None, None)
    tracker.start_workflow(run)
    with tracker.batch() as batch:
        for n in range(14):
            task = batch.add_task_to_workflow(run, f"t{n}", None, {}, {})
            batch.start_task(task)
            batch.fail_task(task, f"error number {n}")
    Projector(tracker).catch_up()
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    assert page.count('class="error') == 1 and "14 tasks failed:" in page
    box = page.split("and 4 more")[0]
    assert "error number 9" in box and "error number 10" not in box
    page = client.get(f"/runs/{run}?limit=5&page=3").get_data(as_text=True)
    assert "14 tasks, page 3 of 3." in page and "14 tasks failed:" in page and "and 4 more" in page
    assert [task["name"] for task in client.get(f"/api/v1/runs/{run}?limit=5&page=3").json["tasks"]] == \
        ["t10", "t11", "t12", "t13"]


def test_workflow_controlled_text_is_escaped(client, seeded):
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    dashboard = client.get("/").get_data(as_text=True)
    assert XSS not in dashboard and f">{escaped}</a>" in dashboard  # the run's name, as its link text
    page = client.get(f"/runs/{seeded['running']}").get_data(as_text=True)
    assert XSS not in page
    assert re.search(rf"<h1>{re.escape(escaped)} <span", page)  # the name
    log = re.search(r'<pre class="log"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert re.search(rf'<span class="INFO">[0-9: -]+ INFO +{re.escape(escaped)}</span>', log)  # the log line


def test_every_response_has_a_content_security_policy(client, seeded):
    assert "default-src 'self'" in client.get("/").headers["Content-Security-Policy"]


def test_jobs_by_id_and_by_owner(client, seeded):
    [job] = client.get("/api/v1/jobs/align-4711").json["jobs"]
    assert (job["task_name"], job["workflow_name"], job["user_name"]) == ("align", "rnaseq", "alice")
    owned = client.get("/api/v1/jobs?user=alice").json["jobs"]
    assert sorted(j["job_id"] for j in owned) == ["align-4711", "count-4711"]
    assert "align-4711" in client.get("/jobs?job_id=align-4711").get_data(as_text=True)


def test_a_job_id_with_a_slash_links_to_its_lookup(client, tracker):
    run = tracker.initiate_workflow("array", "", None, None)
    task = tracker.add_task_to_workflow(run, "t", None, {}, {})
    tracker.add_job_id(task, "4711/3")  # a path segment could not hold it
    Projector(tracker).catch_up()
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    href = html.unescape(re.search(r'<a href="(/jobs[^"]*)">4711/3</a>', page).group(1))
    assert [job["job_id"] for job in client.get(href.replace("/jobs", "/api/v1/jobs")).json["jobs"]] == ["4711/3"]


def test_changes_feed_and_its_filter(client, seeded):
    recent = client.get("/api/v1/changes?table=workflow_runs").json["changes"]
    assert recent and {c["table_name"] for c in recent} == {"workflow_runs"}
    after = client.get("/api/v1/changes?after=0&limit=5").json["changes"]
    assert len(after) == 5 and [c["id"] for c in after] == sorted(c["id"] for c in after)
    later = client.get(f"/api/v1/changes?after={after[-1]['id']}&limit=5").json["changes"]
    assert later and later[0]["id"] > after[-1]["id"]
    page = client.get("/changes?table=workflow_runs")
    html_text = page.get_data(as_text=True)
    assert page.status_code == 200 and '<option value="workflow_runs" selected>' in html_text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td><td>.*?</td><td>(\w+)</td>\s*<td>(\w+)</td>", html_text, re.S)
    assert [int(row[0]) for row in rows] == [c["id"] for c in recent]
    assert {row[1] for row in rows} == {"workflow_runs"} and {row[2] for row in rows} <= {"INSERT", "UPDATE"}


def test_system_page(client, seeded, tracker):
    from appliance.migrator import head_revision

    head = head_revision(client.application.config["SETTINGS"].migrations_dir)
    state = client.get("/api/v1/system").json
    assert state["database"] == "reachable"
    assert state["schema"] == {"revision": head, "head": head, "at_head": True}
    assert state["triggers"] == {"complete": True, "installed": [
        "job_accounting_notify_change", "job_executions_notify_change", "log_entries_notify_change",
        "workflow_runs_notify_change"]}
    newest = tracker.recorder.max_notification_id()
    assert state["projector"] == {"position": newest, "newest_event": newest, "lag_events": 0}
    assert state["change_backlog"] > 0 and state["monitors"] == [] and state["programs"] is None
    page = client.get("/system").get_data(as_text=True)
    assert f"at head</span> revision {head}" in page
    assert "installed</span>" in page and "workflow_runs_notify_change" in page
    assert "lag 0 events</span>" in page and f"position {newest}, newest event {newest}" in page
    assert f"{state['change_backlog']} unhandled" in page and "none seen" in page


def forged_cursor(created_at, run_id="00000000-0000-0000-0000-000000000000"):
    return base64.urlsafe_b64encode(f"{created_at}|{run_id}".encode()).decode()


@pytest.mark.parametrize("path", [
    "/api/v1/runs?status=sleeping", "/api/v1/runs?limit=0", "/api/v1/runs?limit=x", "/api/v1/runs?limit=",
    "/api/v1/runs?cursor=!!", "/api/v1/analytics/task-id?job_id=%20",
    "/api/v1/runs?cursor=" + forged_cursor("2024-05-01T12:00:00"),  # no offset
    "/api/v1/runs?cursor=" + forged_cursor("0001-01-01T00:00:00+16:00"),  # before year 1 in UTC
    "/api/v1/runs?cursor=" + forged_cursor("9999-12-31T23:00:00-16:00"),  # after year 9999 in UTC
    "/api/v1/runs?cursor=" + forged_cursor("2024-05-01T12:00:00+00:00", "x|y"),
    "/api/v1/runs/not-a-uuid", "/api/v1/runs/00000000-0000-0000-0000-000000000000/logs?after=-1",
    "/api/v1/changes?table=users", "/api/v1/runs?q=" + "x" * 300,
])
def test_bad_parameters_get_400_with_a_message(client, path):
    response = client.get(path)
    assert response.status_code == 400 and response.json["error"]


def test_a_cursor_with_an_offset_postgresql_refuses_is_read_in_utc(client, seeded):
    # PostgreSQL takes offsets up to 15:59; a forged +16:00 once gave a 500.
    response = client.get("/api/v1/runs?cursor=" + forged_cursor("2999-01-01T00:00:00+16:00"))
    assert response.status_code == 200 and len(response.json["runs"]) == 3
    early = client.get("/api/v1/runs?cursor=" + forged_cursor("2000-01-01T00:00:00+16:00"))
    assert early.status_code == 200 and early.json["runs"] == []


def json_link(page_html):
    """The page's link to its JSON twin, as (scheme and host, path, arguments)."""
    href = html.unescape(re.search(r'<a class="json" href="([^"]*)"', page_html).group(1))
    parts = urlsplit(href)
    return parts.netloc, parts.path, parse_qs(parts.query), parts.fragment


def test_each_page_links_its_json_twin_with_the_arguments_it_understood(client, seeded):
    run = seeded["done"]
    cases = [
        ("/?status=failed&q=cell&limit=5", "/api/v1/runs", {"status": ["failed"], "q": ["cell"], "limit": ["5"]}),
        (f"/runs/{run}?level=WARNING", f"/api/v1/runs/{run}", {"level": ["WARNING"]}),
        (f"/runs/{run}/logs?after=1&level=INFO", f"/api/v1/runs/{run}/logs", {"after": ["1"], "level": ["INFO"]}),
        ("/jobs?user=alice&group=genomics", "/api/v1/jobs", {"user": ["alice"], "group": ["genomics"]}),
        ("/jobs/align-4711", "/api/v1/jobs", {"job_id": ["align-4711"]}),
        ("/changes?table=log_entries&limit=3", "/api/v1/changes", {"table": ["log_entries"], "limit": ["3"]}),
        ("/system", "/api/v1/system", {}),
    ]
    for page, path, arguments in cases:
        response = client.get(page, headers={"Host": "evil.example"})
        assert response.status_code == 200, page
        assert json_link(response.get_data(as_text=True)) == ("", path, arguments, ""), page
        twin = client.get(path, query_string={k: v[0] for k, v in arguments.items()})
        assert twin.status_code == 200 and twin.is_json, page


@pytest.mark.parametrize("page", [
    "/?_method=POST", "/?_external=1", "/?_anchor=x%22%3E%3Cb%3E", "/?_scheme=javascript",
    "/runs/{run}?_external=1", "/runs/{run}/logs?run_id=x", "/runs/{run}/logs?_method=POST",
    "/jobs?_anchor=top", "/jobs/4711?_external=1", "/changes?_method=PUT", "/system?_external=1",
])
def test_url_building_arguments_in_the_query_string_are_refused_not_used(client, seeded, page):
    # They once went into url_for(**request.args): a 500, an absolute link built from the
    # Host header, or the anchor reflected into the page.
    name = re.search(r"[?&]([^=]+)=", page).group(1)
    response = client.get(page.format(run=seeded["done"]), headers={"Host": "evil.example"})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and f"unknown parameter &#39;{name}&#39;" in body, body
    assert "evil.example" not in body and "<b>" not in body


def test_unknown_run_is_404(client):
    assert client.get(f"/api/v1/runs/{uuid4()}").status_code == 404
    assert client.get(f"/runs/{uuid4()}").status_code == 404


def test_openapi_document_lists_every_api_path(client):
    paths = set(client.get("/api/v1/openapi.json").json["paths"])
    assert {"/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/logs", "/api/v1/jobs",
            "/api/v1/jobs/{job_id}", "/api/v1/changes", "/api/v1/system", "/api/v1/events"} <= paths


def test_openapi_document_describes_each_event_type_from_ingests_table(client):
    from appliance.ingest import EVENT_TYPES

    document = client.get("/api/v1/openapi.json").json
    body = document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    event = body["properties"]["events"]["items"]
    assert event["discriminator"]["propertyName"] == "type"
    assert set(event["discriminator"]["mapping"]) == set(EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for name, spec in EVENT_TYPES.items():
        schema = schemas[event["discriminator"]["mapping"][name].rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["enum"] == [name]
        assert set(schema["properties"]) == {"id", "type", "time", *spec.fields}
        assert set(schema["required"]) == {"id", "type", *(f for f, field in spec.fields.items() if field.required)}
    assert schemas["Event_task_created"]["properties"]["run_id"] == {"type": "string", "format": "uuid"}


def test_openapi_document_declares_its_security_and_types_every_answer(client):
    document = client.get("/api/v1/openapi.json").json
    assert set(document["components"]["securitySchemes"]) == {"basic", "bearer"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"], (method, path)
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok.get("properties"), (method, path)  # not a bare {"type": "object"}
    jobs = document["paths"]["/api/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "workflow_name" in jobs["properties"]["jobs"]["items"]["properties"]
    system = document["paths"]["/api/v1/system"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"schema", "triggers", "projector", "monitors", "programs"} <= set(system["properties"])


def test_an_unmigrated_database_gets_503_saying_what_to_do_and_the_system_page_says_what_is_missing(
        empty_database_url):
    client = make_app(empty_database_url).test_client()
    for path in ("/", "/api/v1/runs", "/changes", "/api/v1/jobs"):
        response = client.get(path)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "appliance init" in response.get_data(as_text=True)
    state = client.get("/api/v1/system").json
    assert state["schema"]["revision"] is None and state["projector"] is None
    assert state["triggers"]["installed"] == [] and state["change_backlog"] is None
    assert "not installed" in client.get("/system").get_data(as_text=True)


def test_the_system_page_reads_program_states_from_supervisors_socket(tmp_path):
    import subprocess
    import sys

    from appliance.system import supervisor_programs

    assert supervisor_programs(None) is None and supervisor_programs(tmp_path) is None
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[unix_http_server]
file={tmp_path}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:sleeper]
command=sleep 60
startsecs=0
""")
    supervisord = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (supervisor_programs(tmp_path) or [{}])[0].get("state") == "RUNNING", 15, interval=0.1,
                 message="supervisord to report its program running")
        [program] = supervisor_programs(tmp_path)
        assert program["name"] == "sleeper" and program["description"].startswith("pid ")
    finally:
        supervisord.terminate()
        supervisord.wait(timeout=10)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/v1/nothing-here", 404), ("GET", "/api/v1/runs/x/y/z", 404),
    ("DELETE", "/api/v1/runs", 405), ("GET", "/api/v1/events", 405), ("PUT", "/api/v1/system", 405),
])
def test_unknown_api_paths_and_methods_answer_json(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status and response.is_json and response.json["error"]
    if status == 405:
        assert response.headers["Allow"]


def test_unknown_pages_answer_the_error_page(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert '<p class="error">' in response.get_data(as_text=True)


@pytest.mark.parametrize("path, message", [
    ("/api/v1/runs?statuss=failed", "unknown parameter 'statuss'; it takes status, user, group, q, cursor, limit"),
    ("/api/v1/runs?limit=" + "9" * 25, "limit must be a whole number from 1 to 200"),
    ("/api/v1/runs?limit=-3", "limit must be a whole number from 1 to 200, not -3"),
    ("/api/v1/runs?limit=1_0", "limit must be a whole number from 1 to 200"),
    ("/api/v1/changes?after=" + "9" * 25, "after must be a whole number from 0 to 4611686018427387904"),
    ("/api/v1/system?verbose=1", "unknown parameter 'verbose'; it takes none"),
    ("/api/v1/jobs?user=a&colour=b&size=c", "unknown parameters 'colour', 'size'"),
])
def test_unknown_parameters_and_long_numbers_get_a_message_that_names_them(client, path, message):
    response = client.get(path)
    assert response.status_code == 400 and message in response.json["error"]
    page = client.get(path.replace("/api/v1/runs?", "/?").replace("/api/v1", ""))
    assert page.status_code == 400 and page.mimetype == "text/html"
