"""The plugin's mapping, replayed on log records captured from real Snakemake runs
(plugins/snakemake-logger-plugin-appliance/tests/fixtures, made by its capture.py):
the events are valid ingest events and say what happened."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance.ingest import apply_batch, parse_batch
from appliance.projection import Projector
from snakemake_logger_plugin_appliance.mapping import Metadata, RunMapper, workflow_name
from tests.support.sql import query

FIXTURES = Path(__file__).resolve().parents[2] / "plugins/snakemake-logger-plugin-appliance/tests/fixtures"


def replay(case: str, metadata: Metadata | None = None) -> list[dict]:
    mapper = RunMapper(metadata or Metadata())
    events = []
    for line in (FIXTURES / f"{case}.jsonl").read_text().splitlines():
        events += mapper.map(logging.makeLogRecord(json.loads(line)))
    events += mapper.finish()
    parse_batch({"events": events})  # valid, every one
    return events


def utc(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def progress(events: list[dict]) -> list[tuple[int, int]]:
    return [(e["done"], e["total"]) for e in events if e["type"] == "run_progress"]


def kinds(events: list[dict]) -> Counter:
    return Counter(event["type"] for event in events)


def tasks_by_rule(events: list[dict]) -> Counter:
    return Counter(event["name"] for event in events if event["type"] == "task_created")


def test_a_diamond_with_wildcards_maps_jobs_to_tasks_with_their_details():
    events = replay("diamond", Metadata(name=None, user="alice", group="lab", tags=["nightly"]))
    run = events[0]
    assert run["type"] == "run_started" and run["name"] == "<workdir>"  # its directory's name
    assert (run["user"], run["group"], run["source"]) == ("alice", "lab", "snakemake")
    assert run["params"]["tags"] == ["nightly"]
    assert run["params"]["snakefile"] == "<workdir>/Snakefile"  # snakefile_main, not Snakemake's module
    assert tasks_by_rule(events) == {"make": 2, "left": 2, "right": 2, "merge": 1, "all": 1}
    make = next(e for e in events if e["type"] == "task_created" and e["input"]["wildcards"] == {"s": "a"})
    assert make["name"] == "make" and make["input"]["input"] == []
    assert make["params"]["output"] == ["raw/a.txt"] and make["params"]["log"] == ["logs/make_a.log"]
    assert make["params"]["threads"] == 1
    assert make["params"]["resources"] == {"tmpdir": "/tmp", "mem_mb": 10, "mem": "10 MB", "mem_mib": 10}
    assert make["params"]["shellcmd"] == "echo a > raw/a.txt; echo done > logs/make_a.log"
    assert kinds(events)["task_started"] == kinds(events)["task_finished"] == 8
    assert events[-1]["type"] == "run_finished"
    assert progress(events)[-1] == (8, 8)
    assert not [e for e in events if " steps (" in e.get("message", "")]  # no log line says it again
    # Each event at the time of its record, in UTC.
    records = [json.loads(line) for line in (FIXTURES / "diamond.jsonl").read_text().splitlines()]
    start = next(r for r in records if r.get("event") == "workflow_started")
    assert run["time"] == utc(start["created"]) and run["time"].endswith("Z")
    finished = {r["job_id"]: utc(r["created"]) for r in records if r.get("event") == "job_finished"}
    created = {e["task_id"]: e["params"]["jobid"] for e in events if e["type"] == "task_created"}
    assert {created[e["task_id"]]: e["time"] for e in events if e["type"] == "task_finished"} == finished


def test_a_retried_job_is_one_task_failed_then_started_again_and_the_run_completes():
    events = replay("retry")
    task_events = [(e["type"], e["task_id"]) for e in events if e["type"].startswith("task_")]
    assert [kind for kind, _ in task_events] == [
        "task_created", "task_details", "task_started", "task_failed", "task_started", "task_finished"]
    assert len({task_id for _, task_id in task_events}) == 1
    failed = next(e for e in events if e["type"] == "task_failed")
    assert "exit status 1" in failed["error"]
    assert events[-1]["type"] == "run_finished"


@pytest.mark.parametrize("case, created", [("failing", {"bad": 1}), ("keepgoing", {"bad": 1, "ok": 1})])
def test_a_failing_job_fails_its_task_and_the_run(case, created):
    events = replay(case)
    assert tasks_by_rule(events) == created
    failed = next(e for e in events if e["type"] == "task_failed")
    assert "exit status 3" in failed["error"] and "logs/bad.log" in failed["error"]
    end = events[-1]
    assert end["type"] == "run_failed"
    assert "At least one job did not complete successfully" in end["error"]
    assert "Failed jobs: bad (jobid" in end["error"]
    if case == "keepgoing":
        assert kinds(events)["task_finished"] == 1  # ok ran on


def test_a_checkpoint_adds_the_jobs_it_reveals():
    events = replay("checkpoint")
    assert tasks_by_rule(events) == {"split": 1, "double": 3, "all_done": 1}
    # 0 of the planned total from Snakemake's job stats, then its count: the total grew after the checkpoint.
    assert progress(events) == [(0, 2), (1, 2), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert events[-1]["type"] == "run_finished"


def test_the_run_progress_mid_run_is_the_steps_snakemake_counts_not_the_tasks_so_far(tracker, database_url):
    # After the checkpoint's job: 1 task exists and has finished, but Snakemake counts 1 of 2 steps.
    events = replay("checkpoint")
    first = next(i for i, e in enumerate(events) if e["type"] == "run_progress" and e["done"])
    apply_batch(tracker, parse_batch({"events": events[:first + 1]}))
    run_id = events[0]["run_id"]
    run = tracker.get_workflow(run_id)
    assert (run.steps_done, run.steps_total) == (1, 2)
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT steps_done, steps_total, progress_percent FROM workflow_runs WHERE id = %s",
                 run_id) == [(1, 2, 50)]
    apply_batch(tracker, parse_batch({"events": events[first + 1:]}))
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT steps_done, steps_total, progress_percent, status FROM workflow_runs "
                 "WHERE id = %s", run_id) == [(5, 5, 100, "completed")]


def test_a_job_without_its_output_fails_its_task_and_the_run_with_that_error():
    # No job_error for it: only an error record that names the job, then the final WorkflowError.
    events = replay("missing")
    (failed,) = [e for e in events if e["type"] == "task_failed"]
    forgotten = next(e for e in events if e["type"] == "task_created" and e["name"] == "forgotten")
    assert failed["task_id"] == forgotten["task_id"]
    assert "Job 2  completed successfully, but some output files are missing" in failed["error"]
    assert "forgotten.txt" in failed["error"]
    end = events[-1]
    assert end["type"] == "run_failed"
    assert "MissingOutputException in rule forgotten" in end["error"]  # not overwritten by the final error
    assert "At least one job did not complete successfully" in end["error"]
    assert "Failed jobs: forgotten (jobid 2)" in end["error"]
    assert "not finished" not in json.dumps(events)  # made finished, forgotten failed for its own reason


def test_a_missing_output_that_a_retry_makes_is_a_failed_attempt_not_a_failed_run():
    lines = (FIXTURES / "missing.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    error_at = next(i for i, r in enumerate(records) if r.get("exception") == "MissingOutputException")
    info = next(r for r in records if r.get("event") == "job_info")
    again = [{"msg": "Trying to restart job 2.", "levelname": "INFO", "created": info["created"] + 2},
             {**info, "created": info["created"] + 3},
             {"msg": "Finished jobid: 2 (Rule: forgotten)", "event": "job_finished", "job_id": 2,
              "created": info["created"] + 4}]
    mapper = RunMapper(Metadata())
    events = []
    for fields in records[:error_at + 1] + again:
        events += mapper.map(logging.makeLogRecord(fields))
    events += mapper.finish()
    parse_batch({"events": events})
    assert [e["type"] for e in events if e["type"].startswith("task_")] == [
        "task_created", "task_details", "task_started", "task_failed", "task_started", "task_finished"]
    assert events[-1]["type"] == "run_finished"


@pytest.mark.parametrize("case, why", [("sigint", "SIGINT"), ("sigterm", "SIGTERM")])
def test_an_interrupted_or_terminated_run_is_cancelled_with_the_signal(case, why):
    events = replay(case)
    end = events[-1]
    assert end["type"] == "run_cancelled" and why in end["reason"]
    (failed,) = [e for e in events if e["type"] == "task_failed"]
    assert "died with <Signals." + why in failed["error"]  # the job's own error, from its job_error


def test_nothing_to_be_done_is_a_completed_run_without_tasks():
    events = replay("nothing")
    assert kinds(events) == {"run_started": 1, "log": 3, "run_finished": 1}
    assert any(e.get("message", "").startswith("Nothing to be done") for e in events)


def test_records_before_the_run_starts_are_sent_after_it():
    events = replay("diamond")
    assert [e["type"] for e in events[:2]] == ["run_started", "log"]
    assert events[1]["message"] == "Assuming unrestricted shared filesystem usage."


def test_external_job_ids_from_cluster_executors_are_recorded():
    mapper = RunMapper(Metadata())
    mapper.map(logging.makeLogRecord({"event": "workflow_started", "workflow_id": "9e7116b3-d835-42f6-b390-59367407327c"}))
    events = mapper.map(logging.makeLogRecord({"event": "job_info", "jobid": 7, "rule_name": "align"}))
    events += mapper.map(logging.makeLogRecord({"msg": "Job 7 has been submitted with SLURM jobid 4242 (log: x.log)."}))
    events += mapper.map(logging.makeLogRecord({"msg": "Submitted job 7 with external jobid '99'."}))
    assert [e["job_id"] for e in events if e["type"] == "job_id"] == ["4242", "99"]


def test_the_token_never_leaves_in_the_command_line():
    mapper = RunMapper(Metadata())
    (event,) = mapper.map(logging.makeLogRecord({
        "event": "workflow_started", "cmd": "snakemake --logger-appliance-token s3cret -c1"}))
    assert "s3cret" not in json.dumps(event)


def test_the_default_name_is_the_workflow_directory():
    assert workflow_name("/home/a/rnaseq/Snakefile") == "rnaseq"
    assert workflow_name("/home/a/rnaseq/workflow/Snakefile") == "rnaseq"  # the recommended layout


def test_the_events_apply_to_the_tracker(tracker):
    for case, status in (("diamond", "completed"), ("retry", "completed"), ("keepgoing", "failed"),
                         ("sigint", "cancelled"), ("sigterm", "cancelled"), ("missing", "failed"),
                         ("nothing", "completed")):
        events = replay(case)
        apply_batch(tracker, parse_batch({"events": events}))
        assert tracker.get_workflow(events[0]["run_id"]).status == status, case


def test_under_quiet_jobs_without_a_finished_record_finish_with_the_run():
    # --quiet (progress) keeps Snakemake from creating job_finished and progress records at all.
    mapper = RunMapper(Metadata())
    events = []
    for line in (FIXTURES / "diamond.jsonl").read_text().splitlines():
        fields = json.loads(line)
        if fields.get("event") not in ("job_finished", "progress"):
            events += mapper.map(logging.makeLogRecord(fields))
    events += mapper.finish()
    assert kinds(events)["task_finished"] == 8 and events[-1]["type"] == "run_finished"


# Snakemake runs in full: the plan, the rule graph, each job's files and host, its benchmark figures.


def records_of(case: str, workdir: Path | None = None) -> list[dict]:
    text = (FIXTURES / f"{case}.jsonl").read_text()
    if workdir is not None:
        text = text.replace("<workdir>", str(workdir))
    return [json.loads(line) for line in text.splitlines()]


def mapped(records: list[dict], mapper: RunMapper | None = None) -> list[dict]:
    mapper = mapper or RunMapper(Metadata())
    events = []
    for fields in records:
        events += mapper.map(logging.makeLogRecord(fields))
    events += mapper.finish()
    parse_batch({"events": events})
    return events


def test_the_plan_is_snakemakes_job_stats_sent_before_the_first_job_with_progress_at_zero():
    records = records_of("full")
    stats = next(r for r in records if r.get("event") == "run_info")["stats"]
    events = mapped(records)
    planned = next(e for e in events if e["type"] == "run_planned")
    assert planned["jobs"] == {rule: count for rule, count in stats.items() if rule != "total"}
    assert planned["total"] == stats["total"] == 3  # before the checkpoint reveals its two jobs
    first_task = next(i for i, e in enumerate(events) if e["type"] == "task_created")
    assert events.index(planned) < first_task
    assert progress(events)[0] == (0, 3) and progress(events)[-1] == (5, 5)
    assert kinds(events)["run_planned"] == 1


def test_the_rule_graph_is_sent_once_with_each_rule_once_and_its_edges():
    events = mapped(records_of("full"))
    (graph,) = [e for e in events if e["type"] == "rule_graph"]
    assert graph["rules"] == ["split", "summary", "all"]
    assert graph["edges"] == [["split", "summary"], ["summary", "all"]]


def test_a_rule_on_two_levels_of_snakemakes_graph_is_one_rule():
    # Snakemake's rulegraph record has a node per rule and toposort level, and links by node.
    record = {"msg": "None", "levelname": "INFO", "created": 1.0, "event": "rulegraph", "rulegraph": {
        "nodes": [{"rule": "a"}, {"rule": "b"}, {"rule": "a"}, {"rule": "all"}],
        "links": [{"source": 0, "target": 1, "sourcerule": "a", "targetrule": "b"},
                  {"source": 1, "target": 2, "sourcerule": "b", "targetrule": "a"},
                  {"source": 2, "target": 3, "sourcerule": "a", "targetrule": "all"},
                  {"source": 0, "target": 3, "sourcerule": "a", "targetrule": "all"}]}}
    start = records_of("full")[1]
    (graph,) = [e for e in mapped([start, record, record]) if e["type"] == "rule_graph"]
    assert graph["rules"] == ["a", "b", "all"]
    assert graph["edges"] == [["a", "b"], ["b", "a"], ["a", "all"]]


def test_each_job_has_its_files_and_the_host_of_a_local_job():
    events = mapped(records_of("full"))
    host = next(r for r in records_of("full") if r.get("event") == "workflow_started")["host"]
    details = {e["task_id"]: e for e in events if e["type"] == "task_details"}
    created = {e["task_id"]: e for e in events if e["type"] == "task_created"}
    scale = next(details[task_id] for task_id, e in created.items() if e["input"]["wildcards"] == {"i": "1"})
    assert scale["inputs"] == ["parts/p1.txt"] and scale["outputs"] == ["scaled/p1.txt"]
    assert scale["log_files"] == ["logs/scale_1.log"] and scale["benchmark"] == "benchmarks/scale_1.tsv"
    assert scale["host"] == host
    # Without --software-deployment-method, and without the live workflow (a replay): none told.
    assert "conda_env" not in scale and "container" not in scale
    assert len(details) == len(created) == 5


def test_each_benchmark_file_becomes_the_jobs_measured_resources(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "benchmarks/split.tsv").write_text(header + "1.5\t0:00:01\t10.5\t20\t3\t4\t0.1\t2\t50\t0.75\n")
    (tmp_path / "benchmarks/scale_1.tsv").write_text(header + "0.2\t0:00:00\t-\t-\t-\t-\t-\t-\t-\t-\n")
    (tmp_path / "benchmarks/scale_2.tsv").write_text("not a benchmark\n")  # and summary.tsv is missing
    warnings = []
    events = mapped(records_of("full", tmp_path), RunMapper(Metadata(), warn=warnings.append))
    usage = {e["task_id"]: e["usage"] for e in events if e["type"] == "task_resources"}
    rule_of = {e["task_id"]: e["name"] + str(e["input"]["wildcards"].get("i", "")) for e in events
               if e["type"] == "task_created"}
    assert {rule_of[task_id]: figures for task_id, figures in usage.items()} == {
        "split": {"wall_seconds": 1.5, "max_rss_mb": 10.5, "max_vms_mb": 20, "max_uss_mb": 3, "max_pss_mb": 4,
                  "io_in_mb": 0.1, "io_out_mb": 2, "mean_load": 50, "cpu_seconds": 0.75, "repeats": 1},
        "scale1": {"wall_seconds": 0.2, "repeats": 1},  # "-": not measured, left out
    }
    # After the job's end; the unreadable ones skipped with one warning for the run.
    finished = {e["task_id"]: i for i, e in enumerate(events) if e["type"] == "task_finished"}
    assert all(events.index(e) > finished[e["task_id"]] for e in events if e["type"] == "task_resources")
    assert len(warnings) == 1 and "benchmark file could not be read" in warnings[0]


def test_the_runs_end_is_the_last_records_time_not_the_clock_at_close():
    records = records_of("full")
    events = mapped(records)
    assert events[-1]["type"] == "run_finished" and events[-1]["time"] == utc(records[-1]["created"])


def slurm_records() -> list[dict]:
    """The diamond run as under Snakemake's Slurm executor: its jobs are not local, and the
    executor logs each submission as snakemake-executor-plugin-slurm does
    ("Job {jobid} has been submitted with SLURM jobid {id} (log: {file})."); a failed
    job's job_error carries it again in aux.external_jobid."""
    out = []
    for fields in records_of("diamond"):
        if fields.get("event") == "workflow_started":
            out += [fields, {"msg": "SLURM run ID: 5c0f8c1e-1111-4222-8333-944455556666", "levelname": "INFO",
                             "created": fields["created"]}]
            continue
        if fields.get("event") == "job_info":
            fields = {**fields, "local": fields["rule_name"] == "all"}  # localrules: all
        out.append(fields)
        if fields.get("event") == "shellcmd" and not out[-2].get("local"):
            jobid = out[-2]["jobid"]
            out.append({"msg": f"Job {jobid} has been submitted with SLURM jobid {9000 + jobid} "
                               f"(log: <workdir>/.snakemake/slurm_logs/rule_x/{9000 + jobid}.log).",
                        "levelname": "INFO", "created": fields["created"]})
    return out


def test_under_slurm_each_job_gets_its_slurm_job_id_in_job_accounting(tracker, database_url):
    records = slurm_records()
    events = mapped(records)
    job_ids = [e["job_id"] for e in events if e["type"] == "job_id"]
    assert len(job_ids) == len(set(job_ids)) == 7  # every job but the local `all`, each once
    hosts = {e["task_id"]: e.get("host") for e in events if e["type"] == "task_details"}
    assert list(hosts.values()).count(None) == 7  # a cluster node is not in any record
    apply_batch(tracker, parse_batch({"events": events}))
    Projector(tracker).catch_up()
    rows = query(database_url, "SELECT a.job_id, j.task_name, j.job_ids FROM job_accounting a "
                 "JOIN job_executions j ON j.id = a.task_id ORDER BY a.job_id")
    assert [row[0] for row in rows] == sorted(job_ids) and all(row[2] == [row[0]] for row in rows)
    assert {row[1] for row in rows} == {"make", "left", "right", "merge"}


def test_a_failed_slurm_job_repeats_its_id_and_it_is_recorded_once():
    records = records_of("failing")
    error_at = next(i for i, r in enumerate(records) if r.get("event") == "job_error")
    submitted = {"msg": "Job 2 has been submitted with SLURM jobid 4711 (log: x.log).", "levelname": "INFO",
                 "created": records[error_at]["created"]}
    job_error = {**records[error_at], "aux": {"external_jobid": "4711"}}
    events = mapped(records[:error_at] + [submitted, job_error] + records[error_at + 1:])
    assert [e["job_id"] for e in events if e["type"] == "job_id"] == ["4711"]
