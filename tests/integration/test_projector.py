"""The projector and reprojection against a real PostgreSQL.

A projector runs in a thread (`running`) or as the `appliance projector`
command (`projector_process`); "the views" are every row of the four view
tables (`snapshot`): tests/support/projecting.py.
"""

from __future__ import annotations

import gc
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from functools import partial
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from appliance import WorkflowTracker, cli, db
from appliance.domain import WorkflowRun
from appliance.projection import Projector, ProjectorBusy, reproject
from appliance.projection import store
from appliance.projection.reproject import run_reproject
from appliance.projection.rules import error_type
from tests.support import waiting
from tests.support.poison import refuse_new_runs
from tests.support.projecting import max_position, projector_process, rebuild_uninterrupted, running, snapshot
from tests.support.schema import prepare_schema
from tests.support.sql import query, records

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def one(url: str, sql: str, *params) -> dict:
    rows = records(url, sql, *params)
    assert len(rows) == 1, rows
    return rows[0]


# Projection is fast: poll often, and wait at most 10 s unless a test says otherwise.
wait_for = partial(waiting.wait_for, timeout=10.0, interval=0.005)


def caught_up(projector: Projector, url: str):
    return lambda: projector.position() == max_position(url)


def begin_runs(tracker, runs: int, tasks: int) -> list[tuple]:
    """Runs in flight: every task started (all at once), each with a job id.

    Job ids repeat across runs, as a cluster recycles them.
    """
    started = []
    for r in range(runs):
        run = tracker.initiate_workflow(f"wf{r}", "a stream", f"user{r % 2}", "lab", source="test", params={"r": r})
        tracker.start_workflow(run)
        task_ids = []
        for t in range(tasks):
            task = tracker.add_task_to_workflow(run, f"rule_{t}", "1", {"t": t}, {"threads": t})
            tracker.start_task(task)
            tracker.add_job_id(task, 100 + t)
            tracker.update_task_status(task, "RUNNING")
            tracker.record_log(run, f"rule_{t} running", task_id=task)
            task_ids.append(task)
        started.append((r, run, task_ids))
    return started


def finish_runs(tracker, started: list[tuple]) -> None:
    """Progress, retries after failures, results, and an end for every run.

    Every other run reports its own progress (steps) as well.
    """
    for r, run, task_ids in started:
        for t, task in enumerate(task_ids):
            tracker.update_task_progress(task, t * 10)
            if r % 2 == 0:
                tracker.update_workflow_progress(run, t, len(task_ids) + 1)
            if t % 3 == 1:
                tracker.fail_task(task, "TimeoutError: took too long")
                tracker.start_task(task)
                tracker.add_job_id(task, 200 + t)
                tracker.update_task_status(task, "PENDING")
            tracker.add_result(task, {"file": f"out{t}"})
            if t % 4 == 3:
                tracker.fail_task(task, "Traceback (most recent call last):\n  ...\nKeyError: 'x'")
            else:
                tracker.complete_task(task, f"done {t}")
        tracker.record_log(run, "finished", level="WARNING")
        if r % 3 == 2:
            tracker.fail_workflow(run, "RuntimeError: boom")
        elif r % 3 == 1:
            tracker.cancel_workflow(run, "asked by the user")
        else:
            tracker.complete_workflow(run)


# What each event does.


def test_every_event_type_lands_in_the_views(tracker, database_url):
    run = tracker.initiate_workflow("align", "align reads", "alice", "lab", source="snakemake",
                                    params={"cores": 4}, at=at(0))
    tracker.start_workflow(run, at=at(1))
    task = tracker.add_task_to_workflow(run, "bwa", "0.7", {"reads": "a.fq"}, {"threads": 4}, at=at(2))
    other = tracker.add_task_to_workflow(run, "sort", None, None, None, at=at(3))
    tracker.start_task(task, at=at(4))
    tracker.add_job_id(task, 4242, at=at(5))
    tracker.update_task_status(task, "RUNNING", at=at(6))
    tracker.update_task_progress(task, "50%", at=at(7))
    tracker.record_log(run, "bwa started", level="DEBUG", task_id=task, at=at(8))
    tracker.record_log(run, "run note", at=at(9))
    tracker.add_result(task, {"bam": "a.bam"}, at=at(10))
    tracker.record_task_details(task, inputs=["a.fq"], outputs=["a.bam"], log_files=["a.log"], benchmark="a.tsv",
                                conda_env="bwa.yaml", container="docker://bwa", host="n1", at=at(10))
    tracker.complete_task(task, "aligned", at=at(11))
    tracker.record_task_resources(task, {"wall_seconds": 7.0, "max_rss_mb": 12}, at=at(11))
    tracker.plan_workflow(run, {"bwa": 1, "sort": 1}, 2, at=at(11))
    tracker.record_rule_graph(run, ["bwa", "sort"], [["bwa", "sort"]], at=at(11))
    tracker.start_task(other, at=at(12))
    tracker.fail_task(other, "subprocess.CalledProcessError: exit 1", at=at(13))
    tracker.fail_workflow(run, "a task failed", at=at(14))

    assert Projector(tracker).catch_up() == max_position(database_url)

    assert one(database_url, "SELECT * FROM workflow_runs") == {
        "id": run, "workflow_name": "align", "description": "align reads", "user_name": "alice",
        "group_name": "lab", "source": "snakemake", "params": {"cores": 4}, "status": "failed",
        "tasks_total": 2, "tasks_created": 0, "tasks_running": 0, "tasks_completed": 1, "tasks_failed": 1,
        "progress_percent": 50.0,  # a failed task is not done
        "steps_done": None, "steps_total": None, "current_task": None,
        "error_message": "a task failed", "planned_jobs": {"bwa": 1, "sort": 1},
        "rule_graph": {"rules": ["bwa", "sort"], "edges": [["bwa", "sort"]]},
        "created_at": at(0), "started_at": at(1), "finished_at": at(14), "duration_seconds": 13.0,
        "last_event_at": at(14),
    }
    assert one(database_url, "SELECT * FROM job_executions WHERE id = %s", str(task)) == {
        "id": task, "run_id": run, "task_name": "bwa", "task_version": "0.7", "status": "completed",
        "external_status": "RUNNING", "progress": "50%", "input_data": {"reads": "a.fq"},
        "params": {"threads": 4}, "results": [{"bam": "a.bam"}], "job_ids": ["4242"], "attempts": 1,
        "attempt_history": [{"started_at": at(4).isoformat(), "finished_at": at(11).isoformat(),
                             "status": "completed", "error": None}],
        "result_message": "aligned", "error_message": None, "error_type": None, "created_at": at(2),
        "started_at": at(4), "finished_at": at(11), "duration_seconds": 7.0,
        "inputs": ["a.fq"], "outputs": ["a.bam"], "log_files": ["a.log"], "benchmark_file": "a.tsv",
        "conda_env": "bwa.yaml", "container_image": "docker://bwa", "host": "n1",
        "resource_usage": {"wall_seconds": 7.0, "max_rss_mb": 12},
    }
    failed = one(database_url, "SELECT * FROM job_executions WHERE id = %s", str(other))
    assert (failed["status"], failed["error_message"], failed["error_type"], failed["task_version"]) == (
        "failed", "subprocess.CalledProcessError: exit 1", "subprocess.CalledProcessError", None)
    assert (failed["input_data"], failed["params"], failed["attempts"]) == ({}, {}, 1)
    assert (failed["inputs"], failed["host"], failed["resource_usage"]) == ([], None, None)
    assert one(database_url, "SELECT * FROM job_accounting") == {
        "job_id": "4242", "task_id": task, "run_id": run, "user_name": "alice", "group_name": "lab",
        "status": "RUNNING", "progress": "50%", "created_at": at(5), "updated_at": at(7),
    }
    logs = records(database_url, "SELECT * FROM log_entries ORDER BY id")
    assert [(row["run_id"], row["task_id"], row["level"], row["message"], row["logged_at"]) for row in logs] == [
        (run, task, "DEBUG", "bwa started", at(8)),
        (run, None, "INFO", "run note", at(9)),
    ]
    positions = [row["id"] for row in records(database_url, "SELECT id FROM appliance_events "
                                                          "WHERE topic LIKE '%%LogLine.Recorded' ORDER BY id")]
    assert [row["id"] for row in logs] == positions


def test_run_counts_progress_and_current_task(tracker, database_url):
    run = tracker.initiate_workflow("wf", "", None, None, at=at(0))
    first, second, third = (tracker.add_task_to_workflow(run, name, None, None, None, at=at(1))
                            for name in ("first", "second", "third"))
    tracker.start_task(first, at=at(2))
    tracker.start_task(second, at=at(3))
    projector = Projector(tracker, batch_size=2)
    projector.catch_up()
    row = one(database_url, "SELECT * FROM workflow_runs")
    # Never started itself (BIOMERO never records a run's start), it runs from its first started task.
    assert (row["status"], row["current_task"], row["tasks_created"], row["tasks_running"]) == ("running", "second", 1, 2)
    assert row["started_at"] == at(2)

    tracker.complete_task(second, None, at=at(4))  # the latest started finishes: back to the one still running
    projector.catch_up()
    row = one(database_url, "SELECT * FROM workflow_runs")
    assert (row["current_task"], row["tasks_running"], row["tasks_completed"]) == ("first", 1, 1)
    assert row["progress_percent"] == pytest.approx(100 / 3)

    tracker.fail_task(first, "no luck", at=at(5))
    tracker.cancel_workflow(run, "enough", at=at(6))
    projector.catch_up()
    row = one(database_url, "SELECT * FROM workflow_runs")
    assert (row["status"], row["error_message"], row["finished_at"], row["current_task"]) == (
        "cancelled", "enough", at(6), None)
    assert (row["tasks_created"], row["tasks_running"], row["tasks_completed"], row["tasks_failed"]) == (1, 0, 1, 1)
    assert row["last_event_at"] == at(6)
    assert one(database_url, "SELECT error_type FROM job_executions WHERE id = %s", str(first)) == {"error_type": None}
    assert one(database_url, "SELECT status, attempts FROM job_executions WHERE id = %s", str(third)) == {
        "status": "created", "attempts": 0}  # never started: the one counted in tasks_created


def progress(url: str, run) -> tuple:
    row = one(url, "SELECT steps_done, steps_total, progress_percent, tasks_completed FROM workflow_runs "
                   "WHERE id = %s", str(run))
    return row["steps_done"], row["steps_total"], pytest.approx(row["progress_percent"]), row["tasks_completed"]


def test_a_run_s_own_progress_report_takes_precedence_over_its_task_count(tracker, database_url):
    run = tracker.initiate_workflow("reports", "", None, None)
    tasks = [tracker.add_task_to_workflow(run, f"t{n}", None, None, None) for n in range(3)]
    tracker.complete_task(tasks[0], None)
    projector = Projector(tracker, batch_size=2)
    projector.catch_up()
    assert progress(database_url, run) == (None, None, 100 / 3, 1)  # no report yet: finished tasks

    tracker.update_workflow_progress(run, 1, 8)
    projector.catch_up()
    assert progress(database_url, run) == (1, 8, 12.5, 1)

    tracker.complete_task(tasks[1], None)  # task events recompute the percentage: the report stays
    tracker.fail_task(tasks[2], "no")
    tracker.add_task_to_workflow(run, "t3", None, None, None)
    projector.catch_up()
    assert progress(database_url, run) == (1, 8, 12.5, 2)

    tracker.update_workflow_progress(run, 8, 8)
    projector.catch_up()
    assert progress(database_url, run) == (8, 8, 100.0, 2)


def test_a_progress_report_of_no_steps_leaves_the_task_count_in_charge(tracker, database_url):
    run = tracker.initiate_workflow("nothing to do yet", "", None, None)
    task = tracker.add_task_to_workflow(run, "t", None, None, None)
    tracker.update_workflow_progress(run, 0, 0)
    tracker.complete_task(task, None)
    Projector(tracker).catch_up()
    assert progress(database_url, run) == (0, 0, 100.0, 1)


def test_a_task_restarted_after_failing_runs_again_with_one_more_attempt(tracker, database_url):
    run = tracker.initiate_workflow("wf", "", None, None, at=at(0))
    task = tracker.add_task_to_workflow(run, "flaky", None, None, None, at=at(1))
    tracker.start_task(task, at=at(2))
    tracker.fail_task(task, "OSError: disk full", at=at(3))
    projector = Projector(tracker)
    projector.catch_up()
    tracker.start_task(task, at=at(4))
    projector.catch_up()
    row = one(database_url, "SELECT * FROM job_executions")
    assert (row["status"], row["attempts"], row["started_at"], row["finished_at"]) == ("running", 2, at(4), None)
    counts = one(database_url, "SELECT tasks_running, tasks_failed, current_task, progress_percent FROM workflow_runs")
    assert counts == {"tasks_running": 1, "tasks_failed": 0, "current_task": "flaky", "progress_percent": 0.0}


@pytest.mark.parametrize("message, expected", [
    ("ValueError: bad input", "ValueError"),
    ("  SlurmException: node lost", "SlurmException"),
    ("requests.exceptions.ConnectionError: refused", "requests.exceptions.ConnectionError"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'k'", "KeyError"),
    ("the job ran out of time", None),
    ("Error: no type", None),
    ("", None),
])
def test_error_type_comes_from_the_message(message, expected):
    assert error_type(message) == expected


def test_payloads_postgresql_cannot_hold_as_json_do_not_stop_the_projector(tracker, database_url):
    # The tracker refuses such payloads now; events stored before it did must still project.
    stored_earlier = WorkflowRun.initiate(uuid.uuid4(), "wf", "", None, None,
                                          params={"ratio": float("nan"), "limit": float("inf")})
    tracker.save(stored_earlier)
    run = stored_earlier.id
    Projector(tracker).catch_up()
    assert one(database_url, "SELECT params FROM workflow_runs WHERE id = %s", str(run)) == {
        "params": {"ratio": "nan", "limit": "inf"}}


# Nothing only in memory, nothing twice.


def test_a_job_id_of_a_task_created_before_a_restart_is_kept(tracker, database_url):
    run = tracker.initiate_workflow("wf", "", "bob", "imaging")
    task = tracker.add_task_to_workflow(run, "segment", None, None, None)
    tracker.start_task(task)
    Projector(tracker).catch_up()  # this projector is gone; the next one knows nothing in memory

    tracker.add_job_id(task, "777")
    tracker.update_task_progress(task, 0.5)
    Projector(tracker).catch_up()

    assert one(database_url, "SELECT job_ids, progress FROM job_executions") == {"job_ids": ["777"], "progress": "0.5"}
    row = one(database_url, "SELECT * FROM job_accounting")
    assert (row["job_id"], row["task_id"], row["run_id"], row["user_name"], row["group_name"], row["progress"]) == (
        "777", task, run, "bob", "imaging", "0.5")


def test_the_accounting_rows_of_a_task_are_found_through_an_index(database_url):
    query(database_url, "INSERT INTO workflow_runs (id, workflow_name) VALUES (gen_random_uuid(), 'wf')")
    query(database_url, """
        INSERT INTO job_executions (id, run_id, task_name) SELECT gen_random_uuid(), id, 't' FROM workflow_runs;
        INSERT INTO job_accounting (job_id, task_id, run_id)
        SELECT n::text, j.id, j.run_id FROM job_executions j, generate_series(1, 2000) AS n;
        ANALYZE job_accounting;
    """)
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + store.QUERIES["load_accounting"], {"task_ids": [str(uuid.uuid4())]})
            plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.close()
    assert "ix_job_accounting_task_id" in plan and "Seq Scan" not in plan, plan


def scanned_rows(plan: dict) -> int:
    """The most rows any node of an EXPLAIN ANALYZE plan (JSON) produced."""
    return max([plan["Actual Rows"], *(scanned_rows(child) for child in plan.get("Plans", []))])


@pytest.mark.parametrize("upto", [None, 150])
def test_a_batch_reads_no_more_events_than_it_takes_even_without_statistics(tracker, database_url, upto):
    # 20,000 events appended at once, never analyzed: a planner guessing from
    # the bounds read all of them and sorted them on disk, for every batch.
    tracker.initiate_workflow("wf", "", "ann", "a")
    query(database_url, """
        INSERT INTO appliance_events (originator_id, originator_version, topic, state)
        SELECT gen_random_uuid(), 1, 'bench', '\\x7b7d'::bytea FROM generate_series(1, 20000)
    """)
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + store.QUERIES["select_events"],
                           {"after": 100, "upto": upto or 2**63 - 1, "limit": 100})
            plan = cursor.fetchone()[0][0]["Plan"]
    finally:
        connection.close()
    assert plan["Actual Rows"] == (50 if upto else 100)
    assert scanned_rows(plan) <= 100, plan


def test_a_recycled_job_id_gets_a_row_per_task(tracker, database_url):
    old_run = tracker.initiate_workflow("old", "", "ann", "a")
    old = tracker.add_task_to_workflow(old_run, "t", None, None, None)
    tracker.add_job_id(old, "1001")
    tracker.update_task_status(old, "COMPLETED")
    new_run = tracker.initiate_workflow("new", "", "ben", "b")
    new = tracker.add_task_to_workflow(new_run, "t", None, None, None)
    tracker.add_job_id(new, "1001")
    tracker.update_task_status(new, "RUNNING")
    Projector(tracker).catch_up()

    rows = records(database_url, "SELECT task_id, run_id, user_name, status FROM job_accounting "
                               "WHERE job_id = '1001' ORDER BY created_at")
    assert rows == [
        {"task_id": old, "run_id": old_run, "user_name": "ann", "status": "COMPLETED"},
        {"task_id": new, "run_id": new_run, "user_name": "ben", "status": "RUNNING"},
    ]


def test_status_reports_go_to_the_task_s_most_recent_job(tracker, database_url):
    run = tracker.initiate_workflow("wf", "", None, None)
    task = tracker.add_task_to_workflow(run, "t", None, None, None)
    tracker.add_job_id(task, "1")
    tracker.update_task_status(task, "FAILED")
    tracker.add_job_id(task, "2")
    tracker.update_task_status(task, "RUNNING")
    Projector(tracker, batch_size=1).catch_up()
    rows = records(database_url, "SELECT job_id, status FROM job_accounting ORDER BY job_id")
    assert rows == [{"job_id": "1", "status": "FAILED"}, {"job_id": "2", "status": "RUNNING"}]


def test_a_log_line_of_a_run_deleted_by_hand_is_skipped_and_projection_goes_on(tracker, database_url, caplog):
    gone = tracker.initiate_workflow("deleted by hand", "", None, None)
    task = tracker.add_task_to_workflow(gone, "t", None, None, None)
    projector = Projector(tracker, batch_size=2)
    projector.catch_up()
    query(database_url, "DELETE FROM workflow_runs WHERE id = %s", str(gone))  # its task goes with it

    tracker.record_log(gone, "a line for a run no longer in the views")
    tracker.record_log(gone, "and one of its task", task_id=task)
    tracker.add_job_id(task, "99")
    other = tracker.initiate_workflow("other", "", None, None)
    tracker.record_log(other, "still projected")
    with caplog.at_level("WARNING", logger="appliance.projection.rules"):
        projector.catch_up()

    assert projector.position() == max_position(database_url)
    assert query(database_url, "SELECT workflow_name FROM workflow_runs") == [("other",)]
    assert query(database_url, "SELECT message FROM log_entries") == [("still projected",)]
    skipped = [record.getMessage() for record in caplog.records]
    assert skipped == [f"LogLine.Recorded for an unknown workflow run ({gone}); skipped"] * 2 + [
        f"Task.JobIdAdded for an unknown task ({task}); skipped"]


def test_stopped_in_the_middle_of_a_stream_and_started_again_the_views_match_an_uninterrupted_run(
        tracker, database_url):
    started: list[tuple] = []
    writer = threading.Thread(target=lambda: started.extend(begin_runs(tracker, 6, 5)))
    first = Projector(tracker, batch_size=3, poll_interval=60)
    with running(first):
        writer.start()
        wait_for(lambda: first.position() >= 60, message="the first projector to get going")
    stopped_at = first.position()
    writer.join()
    finish_runs(tracker, started)

    second = Projector(tracker, batch_size=7, poll_interval=60)
    with running(second):
        wait_for(caught_up(second, database_url), message="the second projector to catch up")
    resumed = snapshot(database_url)
    # The second went on right after the first's last event: none applied twice, none skipped.
    assert first.events_applied == stopped_at
    assert second.events_applied == max_position(database_url) - stopped_at > 0

    assert resumed == rebuild_uninterrupted(tracker, database_url)
    assert len(resumed["workflow_runs"]) == 6 and len(resumed["job_executions"]) == 30


def test_the_projector_reconnects_when_its_connection_is_killed_mid_stream(tracker, database_url):
    projector = Projector(tracker, batch_size=2, poll_interval=60)
    with running(projector):
        writer = threading.Thread(target=lambda: finish_runs(tracker, begin_runs(tracker, 4, 4)))
        writer.start()
        wait_for(lambda: projector.position() > 20, message="projection to start")
        killed = records(database_url, "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity "
                                     "WHERE application_name = 'appliance-projector' AND datname = current_database()")
        assert [row["killed"] for row in killed] == [True]
        writer.join()
        wait_for(caught_up(projector, database_url), message="catching up after the reconnect")
    live = snapshot(database_url)
    assert live == rebuild_uninterrupted(tracker, database_url)


def test_the_projector_carries_on_after_a_database_restart(own_server, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # the tracker's pool: see test_reconnect
    url = own_server.url()
    prepare_schema(url)
    tracker = WorkflowTracker(database_url=url)
    try:
        projector = Projector(tracker, poll_interval=60)
        with running(projector):
            tracker.initiate_workflow("before", "", None, None)
            wait_for(caught_up(projector, url), message="projection before the restart")
            own_server.stop()
            own_server.start()
            after = tracker.initiate_workflow("after", "", None, None)
            wait_for(lambda: query(url, "SELECT 1 FROM workflow_runs WHERE id = %s", str(after)),
                     timeout=20, message="projection after the restart")
    finally:
        tracker.close()


def test_two_projectors_on_one_database_apply_every_event_once(tracker, database_url):
    one_projector = Projector(tracker, batch_size=2, poll_interval=60)
    another = Projector(tracker, batch_size=2, poll_interval=60)
    with running(one_projector), running(another):
        wait_for(lambda: one_projector.active or another.active, message="one projector to take the lock")
        finish_runs(tracker, begin_runs(tracker, 3, 4))
        wait_for(lambda: one_projector.events_applied + another.events_applied == max_position(database_url),
                 message="catching up")
        assert [one_projector.active, another.active].count(True) == 1
        assert one_projector.position() == max_position(database_url)
        active, standby = (one_projector, another) if one_projector.active else (another, one_projector)

        active.stop()  # the standby takes over
        wait_for(lambda: standby.active, message="the standby to take over")
        late = tracker.initiate_workflow("late", "", None, None)
        wait_for(lambda: query(database_url, "SELECT 1 FROM workflow_runs WHERE id = %s", str(late)),
                 message="the standby to project")

    views = snapshot(database_url)
    assert len(views["log_entries"]) == 3 * 4 + 3
    assert sum(row["attempts"] for row in views["job_executions"]) == 3 * 4 + 3  # one retry per run
    assert all(len(row["job_ids"]) == len(set(row["job_ids"])) for row in views["job_executions"])
    assert views == rebuild_uninterrupted(tracker, database_url)


def test_a_new_event_reaches_the_views_within_a_fraction_of_a_second(tracker, database_url):
    projector = Projector(tracker, poll_interval=60)  # no help from polling
    with running(projector):
        wait_for(lambda: projector.active, message="the projector to take the lock")
        lags = []
        for n in range(5):
            run = tracker.initiate_workflow(f"quick{n}", "", None, None)
            committed = time.monotonic()
            wait_for(lambda: query(database_url, "SELECT 1 FROM workflow_runs WHERE id = %s", str(run)),
                     timeout=5, message="the run's row")
            lags.append(time.monotonic() - committed)
    assert max(lags) < 0.5, lags


# Reprojection.


def test_reprojection_equals_live_projection_row_by_row(tracker, database_url):
    projector = Projector(tracker, batch_size=5, poll_interval=60)
    with running(projector):
        finish_runs(tracker, begin_runs(tracker, 5, 4))
        wait_for(caught_up(projector, database_url), message="live projection")
    live = snapshot(database_url)
    assert {row["steps_total"] for row in live["workflow_runs"]} == {None, 5}, "runs with and without a report"

    result = reproject(tracker, batch_size=50)

    assert snapshot(database_url) == live
    assert result.events == max_position(database_url)
    assert projector.position() == max_position(database_url)
    assert re.fullmatch(r"[\d,]+ events in [\d.]+ s: [\d,]+ events/s", str(result))


def record_runs_in_batches(tracker, runs: int, tasks: int) -> None:
    for r in range(runs):
        with tracker.batch() as batch:
            run = batch.initiate_workflow(f"wf{r}", "", "ann", "lab")
            for t in range(tasks):
                task = batch.add_task_to_workflow(run, f"rule_{t}", "1", {"t": t}, {})
                batch.start_task(task)
                batch.record_log(run, "started", task_id=task)
                batch.complete_task(task, "ok")


@contextmanager
def counting_garbage_collections():
    collections = []
    callback = lambda phase, info: collections.append(info["generation"]) if phase == "start" else None  # noqa: E731
    gc.callbacks.append(callback)
    try:
        yield collections
    finally:
        gc.callbacks.remove(callback)


def test_a_rebuild_runs_next_to_no_garbage_collections(tracker, database_url):
    # A batch holds its decoded events until it ends: with the cycle collector
    # on, it ran hundreds of collections here (40% of a big rebuild's time).
    record_runs_in_batches(tracker, 20, 100)
    gc.collect()
    with counting_garbage_collections() as collections:
        result = reproject(tracker, batch_size=2_000)
    assert result.events > 8_000
    assert len(collections) <= result.events // 2_000, collections  # one a batch at most
    assert gc.isenabled()


def test_a_batch_leaves_the_cycle_collector_as_it_found_it_even_when_it_fails(tracker, database_url):
    tracker.initiate_workflow("wf", "", None, None)
    connection = db.connect(tracker.settings.database_url, "test")
    try:
        store.prepare(store.tracking_recorder(tracker.factory.datastore), connection)
        gc.disable()
        try:
            store.project_batch(connection, tracker.mapper, 10)
            assert not gc.isenabled(), "a batch must not turn on what the caller turned off"
        finally:
            gc.enable()
        query(database_url, "UPDATE projector_tracking SET notification_id = 0")
        query(database_url, "ALTER TABLE workflow_runs RENAME TO workflow_runs_elsewhere")
        with pytest.raises(psycopg2.errors.UndefinedTable):
            store.project_batch(connection, tracker.mapper, 10)
        assert gc.isenabled()
    finally:
        connection.close()


def statuses(url: str) -> dict[str, str]:
    return dict(query(url, "SELECT workflow_name, status FROM workflow_runs"))


def test_reprojection_with_stale_marking_equals_live_projection_row_by_row(tracker, database_url):
    silent = tracker.initiate_workflow("silent", "", None, None, at=at(0))  # months ago
    tracker.start_workflow(silent, at=at(1))
    tracker.add_task_to_workflow(silent, "t", None, None, None, at=at(2))
    done = tracker.initiate_workflow("done", "", None, None, at=at(0))
    tracker.start_workflow(done, at=at(1))
    tracker.complete_workflow(done, at=at(2))
    finish_runs(tracker, begin_runs(tracker, 3, 2))  # recent
    tracker.start_workflow(tracker.initiate_workflow("recent", "", None, None))
    expected = {"silent": "stale", "done": "completed", "recent": "running",
                "wf0": "completed", "wf1": "cancelled", "wf2": "failed"}

    projector = Projector(tracker, batch_size=5, poll_interval=60, stale_after=300)
    with running(projector):
        wait_for(lambda: caught_up(projector, database_url)() and statuses(database_url) == expected,
                 message="live projection and its stale check")
    live = snapshot(database_url)

    reproject(tracker, batch_size=7)  # no stale marking: the silent run looks alive
    assert statuses(database_url)["silent"] == "running"
    reproject(tracker, batch_size=7, stale_after=300)
    assert snapshot(database_url) == live


def test_reprojection_silences_the_change_triggers_and_live_projection_does_not(tracker, database_url):
    query(database_url, """
        CREATE TABLE trigger_calls (suppressed text);
        CREATE FUNCTION record_trigger_call() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO trigger_calls VALUES (current_setting('appliance.suppress_change_notifications', true));
            RETURN NULL;
        END $$;
        CREATE TRIGGER workflow_runs_test AFTER INSERT OR UPDATE ON workflow_runs
            FOR EACH ROW EXECUTE FUNCTION record_trigger_call();
    """)
    tracker.initiate_workflow("wf", "", None, None)
    Projector(tracker).catch_up()
    reproject(tracker)
    tracker.initiate_workflow("wf2", "", None, None)
    Projector(tracker).catch_up()
    calls = [row["suppressed"] for row in records(database_url, "SELECT suppressed FROM trigger_calls")]
    assert [call == "on" for call in calls] == [False, True, False]


def changes_after(url: str, change_id: int) -> list[tuple[str, str]]:
    """(table, key) of each change_notifications row after `change_id`."""
    rows = records(url, "SELECT table_name, row_key FROM change_notifications WHERE id > %s ORDER BY id", change_id)
    return [(row["table_name"], row["row_key"].get("id", row["row_key"].get("task_id"))) for row in rows]


def last_change(url: str) -> int:
    return one(url, "SELECT coalesce(max(id), 0) AS n FROM change_notifications")["n"]


def test_a_projector_finishing_an_interrupted_rebuild_stays_quiet_up_to_its_start(tracker, database_url):
    finish_runs(tracker, begin_runs(tracker, 4, 2))
    Projector(tracker).catch_up()
    assert last_change(database_url) > 0, "live projection fires the change triggers"
    newest_at_start = max_position(database_url)
    # Interrupt the rebuild partway: the run wf2's row cannot be written.
    query(database_url, """
        CREATE FUNCTION interrupt() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.workflow_name = 'wf2' THEN RAISE EXCEPTION 'rebuild interrupted by the test'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER interrupt BEFORE INSERT ON workflow_runs FOR EACH ROW EXECUTE FUNCTION interrupt();
    """)
    with pytest.raises(psycopg2.Error, match="rebuild interrupted by the test"):
        reproject(tracker, batch_size=5)
    query(database_url, "DROP TRIGGER interrupt ON workflow_runs")
    interrupted_at = tracked(database_url)
    assert 0 < interrupted_at < newest_at_start
    before = last_change(database_url)

    late = tracker.initiate_workflow("after the rebuild started", "", None, None)
    tracker.record_log(late, "a new line")
    # One batch would hold every replayed event and the new ones: it must stop at the marker.
    projector = Projector(tracker, batch_size=newest_at_start - interrupted_at + 1)
    projector.catch_up()

    assert projector.position() == max_position(database_url)
    # The replayed events changed nothing in the feed; the new ones did, as usual.
    assert changes_after(database_url, before) == [("workflow_runs", str(late)),
                                                   ("log_entries", max_position(database_url))]
    assert records(database_url, "SELECT * FROM projection_rebuild")[0]["quiet_until"] == newest_at_start
    assert snapshot(database_url) == rebuild_uninterrupted(tracker, database_url)


def test_events_recorded_while_a_reprojection_runs_reach_the_feed(tracker, database_url, monkeypatch):
    finish_runs(tracker, begin_runs(tracker, 2, 2))
    Projector(tracker).catch_up()
    before = last_change(database_url)
    late = []

    def reset_then_someone_records(connection, upstreams, **options):
        reset(connection, upstreams, **options)  # the marker is the newest event now; this run comes after it
        late.append(tracker.initiate_workflow("recorded during the rebuild", "", None, None))

    reset = store.reset
    monkeypatch.setattr(store, "reset", reset_then_someone_records)
    reproject(tracker, batch_size=3)

    assert changes_after(database_url, before) == [("workflow_runs", str(late[0]))]
    monkeypatch.undo()
    assert snapshot(database_url) == rebuild_uninterrupted(tracker, database_url)


def test_reprojection_refuses_to_run_beside_a_live_projector(tracker, database_url):
    tracker.initiate_workflow("wf", "", None, None)
    projector = Projector(tracker, poll_interval=60)
    with running(projector):
        wait_for(caught_up(projector, database_url), message="live projection")
        before = snapshot(database_url)
        with pytest.raises(ProjectorBusy, match="appliance-projector"):
            reproject(tracker)
        assert snapshot(database_url) == before


def test_a_waiting_reprojection_runs_once_the_live_projector_stops(tracker, database_url):
    tracker.initiate_workflow("wf", "", None, None)
    projector = Projector(tracker, poll_interval=60)
    results = []
    with running(projector):
        wait_for(caught_up(projector, database_url), message="live projection")
        waiting = threading.Thread(target=lambda: results.append(reproject(tracker, wait=True)))
        waiting.start()
        wait_for(lambda: query(database_url, "SELECT 1 FROM pg_stat_activity WHERE application_name = "
                                             "'appliance-reproject' AND datname = current_database()"),
                 message="the reprojection to wait")
        assert not results
    waiting.join(timeout=10)
    assert [result.events for result in results] == [1]


def test_the_reproject_command_prints_its_rate(tracker, database_url, monkeypatch, capsys):
    tracker.initiate_workflow("wf", "", None, None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["reproject", "--batch-size", "100"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"1 events in [\d.]+ s: [\d,]+ events/s\n", out)
    assert len(records(database_url, "SELECT * FROM workflow_runs")) == 1


# The command.


def test_the_projector_command_stops_cleanly_on_sigterm(tracker, database_url):
    run = tracker.initiate_workflow("wf", "", None, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "projector"],
        env={**os.environ, "DATABASE_URL": database_url, "PROJECTOR_POLL_INTERVAL": "60"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: query(database_url, "SELECT 1 FROM workflow_runs WHERE id = %s", str(run)),
                 timeout=30, message="the projector command to project")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert "stopped at position" in stderr


# Bad input to reproject changes nothing.


def projected_views(tracker, url: str) -> dict[str, list[dict]]:
    finish_runs(tracker, begin_runs(tracker, 2, 2))
    Projector(tracker).catch_up()
    views = snapshot(url)
    assert views["workflow_runs"], "something to lose"
    return views


@pytest.mark.parametrize("size", ["0", "-1", "ten", "1.5"])
def test_the_reproject_command_refuses_a_bad_batch_size_and_keeps_the_views(
        tracker, database_url, monkeypatch, capsys, size):
    before = projected_views(tracker, database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reproject", f"--batch-size={size}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --batch-size: must be" in err and "Traceback" not in err
    assert snapshot(database_url) == before


@pytest.mark.parametrize("size", [0, -1])
def test_reproject_refuses_a_bad_batch_size_before_emptying_anything(tracker, database_url, capsys, size):
    before = projected_views(tracker, database_url)
    with pytest.raises(ValueError, match="at least 1"):
        reproject(tracker, batch_size=size)
    assert run_reproject(tracker.settings, batch_size=size) == 2
    assert "the batch size must be a whole number of at least 1" in capsys.readouterr().err
    assert snapshot(database_url) == before


def tables(url: str) -> set[str]:
    return {row["tablename"] for row in records(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_reproject_on_a_database_never_migrated_says_to_migrate_and_creates_nothing(
        empty_database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    assert cli.main(["reproject"]) == 1
    err = capsys.readouterr().err
    assert "the view tables are missing" in err and "run `appliance migrate` first" in err
    assert "Traceback" not in err
    assert tables(empty_database_url) == set()


def test_reproject_as_a_function_on_views_dropped_by_hand_raises_before_touching_anything(tracker, database_url):
    before = projected_views(tracker, database_url)
    query(database_url, "DROP TABLE log_entries")
    with pytest.raises(store.ViewsMissing, match=r"missing \(log_entries\): run `appliance migrate` first"):
        reproject(tracker)
    del before["log_entries"]
    assert snapshot(database_url, before) == before


# Backoff: started while the database is down or not migrated, and errors that persist.


def run_row(url: str, run) -> list[dict]:
    return records(url, "SELECT status FROM workflow_runs WHERE id = %s", str(run))


def record_a_run_and_wait_for_its_row(url: str, name: str) -> None:
    """A run recorded by a tracker of its own, then projected by the projector under test."""
    tracker = WorkflowTracker(database_url=url)
    try:
        run = tracker.initiate_workflow(name, "", None, None)
        wait_for(lambda: run_row(url, run), timeout=30, message=f"the run {name!r} projected")
    finally:
        tracker.close()


def test_a_projector_started_while_the_database_is_down_backs_off_then_projects(own_server):
    url = own_server.url()
    prepare_schema(url)
    own_server.stop()
    with projector_process(url) as projector:
        wait_for(lambda: len(projector.waits("database unavailable")) >= 3, timeout=30,
                 message="three retries while the database is down")
        own_server.start()
        record_a_run_and_wait_for_its_row(url, "after the outage")
        assert projector.stop() == 0
    waits = projector.waits("database unavailable")
    assert waits[:3] == [0.5, 1.0, 2.0], projector.lines
    assert all(later >= earlier for earlier, later in zip(waits, waits[1:])), waits
    assert not any("Traceback" in line for line in projector.lines), projector.lines


def test_a_projector_on_a_database_not_yet_migrated_says_so_once_per_backoff_step(empty_database_url):
    with projector_process(empty_database_url) as projector:
        wait_for(lambda: len(projector.waits("run `appliance migrate` first")) >= 3, timeout=30,
                 message="three retries on a database without the views")
        prepare_schema(empty_database_url)  # `appliance init`, as the entrypoint would
        record_a_run_and_wait_for_its_row(empty_database_url, "after the migration")
        assert projector.stop() == 0
    waits = projector.waits("the view tables are missing")
    assert waits[:3] == [0.5, 1.0, 2.0], projector.lines
    assert not any("Traceback" in line for line in projector.lines), projector.lines


def test_a_failure_that_persists_is_retried_ever_less_often_with_one_traceback(tracker, database_url, caplog):
    refuse_new_runs(database_url)
    run = tracker.initiate_workflow("refused for a while", "", None, None)
    failures = lambda: [record for record in caplog.records if "projection failed" in record.getMessage()]
    projector = Projector(tracker, poll_interval=60)
    with caplog.at_level("INFO", logger="appliance.projection.projector"), running(projector):
        wait_for(lambda: len(failures()) >= 4, timeout=30, message="four failed attempts")
        query(database_url, "DROP TRIGGER refuse_runs ON workflow_runs")
        wait_for(lambda: run_row(database_url, run), timeout=30, message="projection once the cause is gone")
        waits = [float(re.search(r"retrying in ([\d.]+) s", record.getMessage()).group(1)) for record in failures()]
        assert waits[:4] == [0.5, 1.0, 2.0, 4.0]
        assert [record.exc_info is not None for record in failures()][:4] == [True, False, False, False]
        assert "refused by the test" in failures()[1].getMessage()
        late = tracker.initiate_workflow("after the recovery", "", None, None)
        wait_for(lambda: run_row(database_url, late), message="projection after the recovery")
    assert projector._backoff == 0.5  # back to the shortest wait once a batch succeeded


# Behaviours checked by hand before: polling, SIGTERM in a batch, the progress bar, a failed save.


def waiting_for_events(url: str) -> bool:
    """The projector's connection idle for a while: it waits in select(), not between two queries."""
    return bool(records(url, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'appliance-projector' "
                           "AND state = 'idle' AND state_change < now() - interval '0.3 s'"))


def test_without_listen_polling_alone_projects_a_new_event(tracker, database_url, monkeypatch):
    monkeypatch.setitem(store.QUERIES, "listen", "SELECT 1")  # no NOTIFY ever wakes it
    projector = Projector(tracker, poll_interval=1)
    with running(projector):
        wait_for(lambda: projector.active, message="the projector to take the lock")
        wait_for(caught_up(projector, database_url), message="the first look")
        run = tracker.initiate_workflow("found by polling", "", None, None)
        wait_for(lambda: run_row(database_url, run), timeout=5, message="the next poll")
    never = Projector(tracker, poll_interval=60)  # the control: neither LISTEN nor a poll in time
    with running(never):
        wait_for(lambda: never.active and waiting_for_events(database_url), message="the control to wait")
        missed = tracker.initiate_workflow("not found", "", None, None)
        with pytest.raises(AssertionError, match="timed out"):
            wait_for(lambda: run_row(database_url, missed), timeout=2, message="a poll that never comes")


def tracked(url: str) -> int:
    """The position a projector process saved (0 before it made its tracking table)."""
    if "projector_tracking" not in tables(url):
        return 0
    return one(url, "SELECT notification_id AS n FROM projector_tracking")["n"]


def count_up_to(url: str, position: int) -> int:
    return one(url, "SELECT count(*) AS n FROM appliance_events WHERE id <= %s", position)["n"]


def test_sigterm_in_a_backlog_finishes_the_batch_in_hand_and_a_restart_completes(tracker, database_url):
    finish_runs(tracker, begin_runs(tracker, 20, 5))
    total = max_position(database_url)
    with projector_process(database_url, PROJECTOR_BATCH_SIZE="3") as first:
        wait_for(lambda: tracked(database_url) > 0, timeout=30, message="the first batches")
        assert first.stop() == 0
    stopped_at = tracked(database_url)
    assert 0 < stopped_at < total, "stopped in the middle of the backlog"
    assert count_up_to(database_url, stopped_at) % 3 == 0, "on a batch boundary"
    assert any(line.endswith(f"stopped at position {stopped_at}") for line in first.lines), first.lines

    with projector_process(database_url, PROJECTOR_BATCH_SIZE="3") as second:
        wait_for(lambda: tracked(database_url) == total, timeout=60, message="the restarted projector to catch up")
        assert second.stop() == 0
    assert snapshot(database_url) == rebuild_uninterrupted(tracker, database_url)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reproject_shows_its_progress_reaching_100_percent_on_a_terminal(tracker, database_url):
    finish_runs(tracker, begin_runs(tracker, 2, 3))
    total = max_position(database_url)
    terminal = Terminal()
    reproject(tracker, batch_size=7, progress=terminal)
    bars = [bar.strip() for bar in terminal.getvalue().split("\r") if bar.strip()]
    count = rf"{total}(\.0)?"  # tqdm's unit_scale writes 70 as 70.0
    assert re.match(rf"reproject:\s+0%\|.*\| 0(\.00)?/{count} ", bars[0]), bars
    assert re.match(rf"reproject: 100%\|.*\| {count}/{count} \[.* events/s\]$", bars[-1]), bars


def test_the_reproject_command_draws_no_progress_bar_into_a_log(tracker, database_url, monkeypatch, capsys):
    finish_runs(tracker, begin_runs(tracker, 2, 3))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["reproject", "--batch-size", "7"]) == 0
    output = capsys.readouterr()
    assert "\r" not in output.err + output.out and "%|" not in output.err
    assert re.fullmatch(r"\d+ events in [\d.]+ s: [\d,]+ events/s\n", output.out)


def test_a_failure_between_the_rows_and_the_position_keeps_nothing_and_a_retry_is_identical(
        tracker, database_url):
    started = begin_runs(tracker, 2, 3)
    projector = Projector(tracker, batch_size=10_000)
    projector.catch_up()
    before, position = snapshot(database_url), projector.position()
    finish_runs(tracker, started)
    # The batch's rows are written before its position: fail the position's UPDATE.
    query(database_url, """
        CREATE FUNCTION refuse_position() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'position refused by the test'; END $$;
        CREATE TRIGGER refuse_position BEFORE UPDATE ON projector_tracking
            FOR EACH ROW EXECUTE FUNCTION refuse_position();
    """)
    with pytest.raises(psycopg2.Error, match="position refused by the test"):
        projector.catch_up()
    assert snapshot(database_url) == before and projector.position() == position

    query(database_url, "DROP TRIGGER refuse_position ON projector_tracking")
    projector.catch_up()
    assert projector.position() == max_position(database_url)
    assert snapshot(database_url) == rebuild_uninterrupted(tracker, database_url)


def test_view_rows_get_times_in_utc_whatever_offset_an_event_carries():
    # Python allows offsets up to ±23:59; PostgreSQL refuses beyond ±15:59.
    far_east = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=20)))
    assert store._json_value(far_east) == "2023-12-31T16:00:00+00:00"
