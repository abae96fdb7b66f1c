"""The run page of a big or odd run: per-rule summary, the task table's filters, sort and
pages, attempts, error tails, a bounded timeline and rule graph; and how answers
travel (ETag and 304, gzip, static caching, the log's text download)."""

import gzip
import re
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from appliance.projection import Projector
from tests.support.sql import query


TRACEBACK = "Traceback (most recent call last):\n" + '  File "executors/__init__.py", line 702\n' * 40


def make_run(tracker, name="big", tasks=(), source="snakemake"):
    """A run whose tasks are (rule, wildcards, outcome) with outcome 'ok', 'fail' or 'running'."""
    run = tracker.initiate_workflow(name, "", "ann", "lab", source=source)
    tracker.start_workflow(run)
    ids = []
    with tracker.batch() as batch:
        for rule, wildcards, outcome in tasks:
            task = batch.add_task_to_workflow(run, rule, None, {"wildcards": wildcards}, {"threads": 2})
            batch.start_task(task)
            if outcome == "ok":
                batch.complete_task(task, "done")
            elif outcome == "fail":
                batch.fail_task(task, f"{TRACEBACK}RuntimeError: exit status 137 in {rule} {wildcards}")
            ids.append(task)
    Projector(tracker).catch_up()
    return str(run), [str(task) for task in ids]


def test_the_run_page_summarises_each_rule_first(client, tracker):
    run, _ = make_run(tracker, tasks=[("align", {"sample": f"s{n}"}, "ok") for n in range(5)]
                      + [("align", {"sample": "s5"}, "fail"), ("count", {}, "running")])
    answer = client.get(f"/api/v1/runs/{run}").json
    rules = {rule["name"]: rule for rule in answer["rules"]}
    assert [rule["name"] for rule in answer["rules"]] == ["align", "count"]
    assert (rules["align"]["total"], rules["align"]["completed"], rules["align"]["failed"]) == (6, 5, 1)
    assert rules["align"]["state"] == "failed" and rules["count"]["state"] == "running"
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    assert page.index('id="rules"') < page.index('id="timeline"') < page.index('id="task-table"')
    assert "sample=s3" in page  # wildcards tell the jobs of one rule apart


def test_the_task_table_filters_sorts_and_pages_in_the_database(client, tracker):
    run, _ = make_run(tracker, tasks=[("align", {"sample": f"s{n:02}"}, "ok" if n % 4 else "fail") for n in range(30)]
                      + [("count", {"sample": "s99"}, "ok")])
    api = f"/api/v1/runs/{run}"
    failed = client.get(f"{api}?status=failed").json
    assert failed["tasks_matching"] == 8 and {task["status"] for task in failed["tasks"]} == {"failed"}
    assert client.get(f"{api}?rule=count").json["tasks_matching"] == 1
    assert [task["wildcards"]["sample"] for task in client.get(f"{api}?q=s07").json["tasks"]] == ["s07"]
    assert client.get(f"{api}?q=exit status 137").json["tasks_matching"] == 8  # the error's text
    names = [task["name"] for task in client.get(f"{api}?sort=-name&limit=1").json["tasks"]]
    assert names == ["count"]
    second = client.get(f"{api}?limit=10&page=2").json
    assert [task["wildcards"]["sample"] for task in second["tasks"]] == [f"s{n:02}" for n in range(10, 20)]
    assert second["pages"] == 4
    assert client.get(f"{api}?sort=sideways").status_code == 400
    assert client.get(f"{api}?limit=501").status_code == 400
    page = client.get(f"/runs/{run}?status=failed&rule=align").get_data(as_text=True)
    assert "8 tasks match" in page and "clear filters" in page


def test_errors_show_their_last_lines_and_the_whole_text_is_on_the_tasks_page(client, tracker):
    run, [task] = make_run(tracker, tasks=[("segment", {"plate": "7"}, "fail")])
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    box = page[page.index('class="error tasks-failed"'):page.index("</div>", page.index('class="error tasks-failed"'))]
    assert "RuntimeError: exit status 137" in box and "Traceback" not in box  # the cause, not the start
    assert f"/runs/{run}/tasks/{task}" in box
    whole = client.get(f"/api/v1/runs/{run}/tasks/{task}").json["task"]
    assert whole["error_message"].startswith("Traceback") and whole["error_message"].endswith("{'plate': '7'}")
    assert "Traceback" in client.get(f"/runs/{run}/tasks/{task}").get_data(as_text=True)
    assert client.get(f"/api/v1/runs/{run}/tasks/{uuid4()}").status_code == 404


def test_each_attempt_of_a_retried_task_is_kept_and_a_completed_task_shows_its_result(client, tracker):
    run = tracker.initiate_workflow("retry", "", None, None)
    task = tracker.add_task_to_workflow(run, "flaky", None, {}, {})
    start = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    tracker.start_task(task, at=start)
    tracker.fail_task(task, "OSError: node lost", at=start + timedelta(minutes=1))
    tracker.start_task(task, at=start + timedelta(minutes=2))
    tracker.complete_task(task, "written", at=start + timedelta(minutes=5))
    Projector(tracker).catch_up()
    attempts = client.get(f"/api/v1/runs/{run}/tasks/{task}").json["task"]["attempt_history"]
    assert [(a["number"], a["status"], a["earlier"]) for a in attempts] == [(1, "failed", True), (2, "completed", False)]
    assert attempts[0]["error"] == "OSError: node lost" and attempts[1]["started_at"].startswith("2026-01-01T12:02")
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    row = page[page.index('id="task-table"'):]
    assert "written" in row[:2000] and "an earlier attempt failed" in row[:2000]
    assert page.count('class="bar rule0') == 2  # one bar per attempt on the timeline


def test_the_timeline_is_bounded_whatever_the_tasks_times(client, tracker, database_url):
    run, _ = make_run(tracker, tasks=[("early", {}, "ok"), ("late", {}, "ok")])
    query(database_url, "UPDATE job_executions SET started_at = '1970-01-01T00:00:00Z', finished_at = "
                        "'1970-01-01T00:00:01Z' WHERE task_name = 'early'")
    query(database_url, "UPDATE job_executions SET started_at = '9999-12-31T00:00:00Z', finished_at = "
                        "'9999-12-31T00:00:01Z' WHERE task_name = 'late'")
    response = client.get(f"/runs/{run}")
    assert response.status_code == 200 and len(response.data) < 60_000
    timeline = client.get(f"/api/v1/runs/{run}").json["timeline"]
    assert 2 <= len(timeline["ticks"]) <= 7 and timeline["ticks"][-1]["label"].endswith(" y")


def test_a_run_of_many_tasks_draws_one_lane_per_rule(client, tracker):
    tasks = [(f"rule{n % 3}", {"n": str(n)}, "ok" if n % 50 else "fail") for n in range(450)]
    run, _ = make_run(tracker, tasks=tasks)
    answer = client.get(f"/api/v1/runs/{run}").json
    timeline = answer["timeline"]
    assert timeline["mode"] == "lanes"
    assert [row["heading"] for row in timeline["rows"] if "heading" in row] == ["rule0", "rule1", "rule2"]
    bars = [bar for row in timeline["rows"] for bar in row.get("bars", [])]
    assert 3 <= len(bars) <= 3 * 200 and any(bar["status"] == "failed" for bar in bars)
    assert len(answer["tasks"]) == 100 and answer["tasks_matching"] == 450


def test_the_graph_is_the_rules_in_order_unless_the_source_sent_one(client, tracker):
    run, _ = make_run(tracker, tasks=[("fetch", {}, "ok"), ("segment", {}, "fail"), ("export", {}, "running")],
                      source="biomero")
    graph = client.get(f"/api/v1/runs/{run}").json["graph"]
    assert graph["from"] == "order" and [n["name"] for n in graph["nodes"]] == ["fetch", "segment", "export"]
    assert [n["state"] for n in graph["nodes"]] == ["completed", "failed", "running"]
    assert len(graph["edges"]) == 2
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    assert "Task chain" in page and f'href="/runs/{run}?rule=segment#tasks"' in page

    from appliance.web.charts import rule_graph

    drawing = rule_graph(["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], {"d": "failed"})
    rows = {node["name"]: node["y"] for node in drawing["nodes"]}
    assert rows["a"] < rows["b"] == rows["c"] < rows["d"] and len(drawing["edges"]) == 4


def test_an_unchanged_page_answers_304_with_no_body_and_a_change_makes_a_new_etag(client, tracker):
    run, _ = make_run(tracker, tasks=[("align", {}, "running")])
    first = client.get(f"/runs/{run}")
    etag = first.headers["ETag"]
    assert 'data-etag="W/&#34;' in first.get_data(as_text=True)  # live.js's first refresh can be a 304
    again = client.get(f"/runs/{run}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    header_bytes = sum(len(name) + len(value) + 4 for name, value in again.headers.items())
    assert header_bytes < 1024
    tracker.record_log(run, "something new")
    Projector(tracker).catch_up()
    changed = client.get(f"/runs/{run}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    dashboard = client.get("/")
    assert client.get("/", headers={"If-None-Match": dashboard.headers["ETag"]}).status_code == 304
    assert "ETag" not in client.get("/system").headers


def test_a_finished_run_stops_refreshing(client, tracker):
    run, _ = make_run(tracker, tasks=[("align", {}, "ok")])
    assert 'data-refresh="5"' in client.get(f"/runs/{run}").get_data(as_text=True)
    tracker.complete_workflow(run)
    Projector(tracker).catch_up()
    assert 'data-refresh="0"' in client.get(f"/runs/{run}").get_data(as_text=True)


def test_pages_and_json_are_gzipped_and_static_files_cached_for_a_year(client, seeded):
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and b"Workflow runs" in gzip.decompress(page.data)
    api = client.get("/api/v1/runs", headers={"Accept-Encoding": "gzip, br"})
    assert api.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in client.get("/").headers
    css = re.search(r'href="(/static/style.css\?v=[0-9a-f]+)"', gzip.decompress(page.data).decode()).group(1)
    cached = client.get(css)
    assert "max-age=31536000" in cached.headers["Cache-Control"] and "immutable" in cached.headers["Cache-Control"]
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_status_chips_follow_the_other_filters(client, seeded):
    everyone = client.get("/api/v1/runs").json["counts"]
    bobs = client.get("/api/v1/runs?user=bob").json["counts"]
    assert sum(everyone.values()) == 3 and bobs == {"failed": 1}
    page = client.get("/?user=bob").get_data(as_text=True)
    assert "clear filters" in page and "/?status=failed&amp;user=bob" in page


def test_a_stale_runs_duration_stops_at_its_last_event(client, tracker, database_url):
    run, _ = make_run(tracker, tasks=[("align", {}, "running")])
    query(database_url, "UPDATE workflow_runs SET status = 'stale', started_at = now() - interval '2 hours', "
                        "last_event_at = now() - interval '90 minutes' WHERE id = %s", run)
    answer = client.get(f"/api/v1/runs/{run}").json["run"]
    assert abs(answer["elapsed_seconds"] - 1800) < 60 and answer["last_heard_seconds_ago"] >= 5400
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    assert "until its last event:" in page and "last heard from 1 h 30 min ago" in page


def test_the_log_page_searches_filters_by_task_and_downloads_as_text(client, tracker):
    run, [first, second] = make_run(tracker, tasks=[("align", {"sample": "a"}, "ok"), ("count", {}, "ok")])
    tracker.record_log(run, "aligned sample a", task_id=first)
    tracker.record_log(run, "counted", task_id=second)
    tracker.record_log(run, "all done")
    Projector(tracker).catch_up()
    assert [line["message"] for line in client.get(f"/api/v1/runs/{run}/logs?q=COUNT").json["logs"]] == ["counted"]
    by_task = client.get(f"/api/v1/runs/{run}/logs?task={first}").json["logs"]
    assert [line["message"] for line in by_task] == ["aligned sample a"] and by_task[0]["task"] == "align (sample=a)"
    page = client.get(f"/runs/{run}/logs").get_data(as_text=True)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page)  # dates, not only times
    text = client.get(f"/runs/{run}/logs.txt")
    assert text.mimetype == "text/plain" and "attachment" in text.headers["Content-Disposition"]
    lines = text.get_data(as_text=True).splitlines()
    assert [line.split(maxsplit=2)[2] for line in lines] == ["aligned sample a", "counted", "all done"]
    assert client.get(f"/runs/{run}/logs.txt?task=nope").status_code == 400


def test_jobs_are_paged_with_their_total_duration_host_and_resources(client, tracker):
    run = tracker.initiate_workflow("cluster", "", "eve", "hpc")
    with tracker.batch() as batch:
        for n in range(25):
            task = batch.add_task_to_workflow(run, "map", None, {}, {"resources": {"mem_mb": 1000}, "threads": 4,
                                                                     "host": "node7"})
            batch.start_task(task)
            batch.add_job_id(task, str(9000 + n))
            batch.complete_task(task, "ok")
    Projector(tracker).catch_up()
    answer = client.get("/api/v1/jobs?user=eve&limit=10&page=3").json
    assert answer["total"] == 25 and answer["pages"] == 3 and len(answer["jobs"]) == 5
    job = answer["jobs"][0]
    assert job["host"] == "node7" and job["resources"] == {"mem_mb": 1000} and job["threads"] == 4
    page = client.get("/jobs?user=eve").get_data(as_text=True)
    assert "25 jobs" in page and "mem_mb=1000" in page and "node7" in page and "page 1 of 1" not in page
