"""The event types that record a Snakemake run in full: run_planned, rule_graph,
task_details, task_resources. Stored, projected into their view columns,
served by the API; a bad value is a 400 naming its field, and nothing of the
batch is stored."""

from uuid import uuid4

import pytest

from appliance.ingest import IngestError, apply_batch, parse_batch
from appliance.projection import Projector
from tests.support.sql import query


def event(type_, **fields):
    return {"id": str(uuid4()), "type": type_, **fields}


def ingest(tracker, events):
    return apply_batch(tracker, parse_batch({"events": events}))


def planned_run(run_id, task_id):
    return [
        event("run_started", run_id=run_id, name="rnaseq", source="snakemake"),
        event("run_planned", run_id=run_id, jobs={"index": 1, "align": 2, "all": 1}, total=4),
        event("rule_graph", run_id=run_id, rules=["index", "align", "all"],
              edges=[["index", "align"], ["align", "all"]]),
        event("task_created", run_id=run_id, task_id=task_id, name="align"),
        event("task_details", task_id=task_id, inputs=["ref.idx", "reads/a.fq"], outputs=["a.bam"],
              log_files=["logs/a.log"], benchmark="bench/a.tsv", conda_env="envs/bwa.yaml",
              container="docker://biocontainers/bwa:0.7", host="node7"),
        event("task_started", task_id=task_id),
        event("task_finished", task_id=task_id),
        event("task_resources", task_id=task_id,
              usage={"wall_seconds": 12.5, "max_rss_mb": 812.3, "cpu_seconds": 20, "io_in_mb": None}),
    ]


def test_the_plan_graph_files_and_resources_reach_their_view_columns(tracker, database_url):
    run_id, task_id = str(uuid4()), str(uuid4())
    ingest(tracker, planned_run(run_id, task_id))
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT planned_jobs, rule_graph FROM workflow_runs WHERE id = %s", run_id) == [(
        {"index": 1, "align": 2, "all": 1},
        {"rules": ["index", "align", "all"], "edges": [["index", "align"], ["align", "all"]]})]
    assert query(database_url, "SELECT inputs, outputs, log_files, benchmark_file, conda_env, container_image, "
                 "host, resource_usage FROM job_executions WHERE id = %s", task_id) == [(
        ["ref.idx", "reads/a.fq"], ["a.bam"], ["logs/a.log"], "bench/a.tsv", "envs/bwa.yaml",
        "docker://biocontainers/bwa:0.7", "node7",
        {"wall_seconds": 12.5, "max_rss_mb": 812.3, "cpu_seconds": 20, "io_in_mb": None})]


def test_a_task_without_details_has_empty_lists_and_nulls(tracker, database_url):
    run_id, task_id = str(uuid4()), str(uuid4())
    ingest(tracker, [event("run_started", run_id=run_id, name="biomero"),
                     event("task_created", run_id=run_id, task_id=task_id, name="segment"),
                     event("task_details", task_id=task_id, host="node1")])
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT inputs, outputs, log_files, benchmark_file, host, resource_usage "
                 "FROM job_executions WHERE id = %s", task_id) == [([], [], [], None, "node1", None)]
    assert query(database_url, "SELECT planned_jobs, rule_graph FROM workflow_runs WHERE id = %s",
                 run_id) == [(None, None)]


def test_the_api_serves_planned_against_done_per_rule_the_graph_and_each_tasks_files(client, tracker):
    run_id, task_id = str(uuid4()), str(uuid4())
    ingest(tracker, planned_run(run_id, task_id))
    Projector(tracker).catch_up()
    page = client.get(f"/api/v1/runs/{run_id}").json
    # The rule with a task first, then those planned or in the graph that have none yet.
    assert [(r["name"], r["planned"], r["total"], r["completed"]) for r in page["rules"]] == [
        ("align", 2, 1, 1), ("index", 1, 0, 0), ("all", 1, 0, 0)]
    assert page["rules"][0]["percent"]["completed"] == 50  # 1 done of 2 planned
    assert page["run"]["planned_jobs"] == {"index": 1, "align": 2, "all": 1}
    assert page["run"]["rule_graph"]["edges"] == [["index", "align"], ["align", "all"]]
    assert page["graph"]["from"] == "source"
    (task,) = page["tasks"]
    assert task["files"] == {"inputs": ["ref.idx", "reads/a.fq"], "outputs": ["a.bam"], "log": ["logs/a.log"],
                             "benchmark": "bench/a.tsv"}
    assert (task["conda_env"], task["container"], task["host"]) == (
        "envs/bwa.yaml", "docker://biocontainers/bwa:0.7", "node7")
    assert task["resource_usage"]["max_rss_mb"] == 812.3
    whole = client.get(f"/api/v1/runs/{run_id}/tasks/{task_id}").json["task"]
    assert whole["resource_usage"] == task["resource_usage"] and whole["files"] == task["files"]


@pytest.mark.parametrize("bad, field", [
    (event("run_planned", run_id=str(uuid4()), jobs={"align": -1}, total=1), "jobs"),
    (event("run_planned", run_id=str(uuid4()), jobs={"align": True}, total=1), "jobs"),
    (event("run_planned", run_id=str(uuid4()), jobs=["align"], total=1), "jobs"),
    (event("rule_graph", run_id=str(uuid4()), rules=["a"], edges=[["a", "b"]]), "edges"),
    (event("rule_graph", run_id=str(uuid4()), rules=["a"], edges=[["a"]]), "edges"),
    (event("rule_graph", run_id=str(uuid4()), rules="a", edges=[]), "rules"),
    (event("task_details", task_id=str(uuid4()), inputs="a.fq"), "inputs"),
    (event("task_details", task_id=str(uuid4()), outputs=[1]), "outputs"),
    (event("task_details", task_id=str(uuid4()), host=7), "host"),
    (event("task_resources", task_id=str(uuid4()), usage={"max_rss_mb": "1 GB"}), "usage"),
    (event("task_resources", task_id=str(uuid4()), usage={"wall_seconds": float("nan")}), "usage"),
    (event("task_resources", task_id=str(uuid4()), usage=[1.0]), "usage"),
])
def test_a_bad_value_is_refused_naming_its_field(bad, field):
    with pytest.raises(IngestError) as refused:
        parse_batch({"events": [bad]})
    assert refused.value.problems[0]["error"].startswith(field)


@pytest.mark.parametrize("bad, says", [
    (lambda task_id: event("task_details", task_id=task_id, inputs=["a\x00b"]), "NUL"),
    (lambda task_id: event("task_details", task_id=task_id, benchmark="b" * 5000), "limit"),
    (lambda task_id: event("task_details", task_id=task_id, inputs=[""]), "empty"),
])
def test_a_value_the_tracker_refuses_stores_nothing_of_the_batch(tracker, bad, says):
    run_id, task_id = str(uuid4()), str(uuid4())
    with pytest.raises(IngestError) as refused:
        ingest(tracker, [event("run_started", run_id=run_id, name="x"),
                         event("task_created", run_id=run_id, task_id=task_id, name="t"), bad(task_id)])
    assert says in refused.value.problems[0]["error"]
    assert tracker.recorder.select_events(run_id) == []
