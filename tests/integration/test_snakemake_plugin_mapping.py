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
        "task_created", "task_started", "task_failed", "task_started", "task_finished"]
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
    assert progress(events) == [(1, 2), (2, 5), (3, 5), (4, 5), (5, 5)]  # the total grew after the checkpoint
    assert events[-1]["type"] == "run_finished"


def test_the_run_progress_mid_run_is_the_steps_snakemake_counts_not_the_tasks_so_far(tracker, database_url):
    # After the checkpoint's job: 1 task exists and has finished, but Snakemake counts 1 of 2 steps.
    events = replay("checkpoint")
    first = next(i for i, e in enumerate(events) if e["type"] == "run_progress")
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
        "task_created", "task_started", "task_failed", "task_started", "task_finished"]
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
