"""appliance/projection/rules.py on its own: domain events in, view rows out, no database.

Events are made by the domain's own commands (as the tracker makes them), at
chosen times; `old_event` makes one the commands no longer record, as a
history stored before they checked would hold it.
"""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from appliance.domain import LogLine, Task, WorkflowRun
from appliance.projection import rules
from appliance.vocabulary import RunStatus, TaskStatus

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def project(*aggregates_or_events, rows: rules.Rows | None = None) -> rules.Rows:
    """Apply the pending events of aggregates (or events), in the order given, to fresh rows."""
    rows = rows or rules.Rows()
    events = []
    for item in aggregates_or_events:
        events.extend(item.collect_events() if hasattr(item, "collect_events") else [item])
    for position, event in enumerate(sorted(events, key=lambda e: e.timestamp), start=1):
        rules.apply(rows, position, event)
    rules.finish(rows)
    return rows


def new_run(name="rnaseq", minutes=0, **fields) -> WorkflowRun:
    return WorkflowRun.initiate(uuid4(), name=name, description="", user="alice", group="genomics",
                                at=at(minutes), **fields)


def new_task(run: WorkflowRun, name="align", minutes=0) -> Task:
    task = Task.create(uuid4(), run_id=run.id, task_name=name, task_version=None, input_data={}, params={},
                       at=at(minutes))
    run.add_task(task.id, at=at(minutes))
    return task


def old_event(run: WorkflowRun, event_class, minutes, **fields):
    """An event the commands refuse today, as an older history may hold it."""
    run.trigger_event(event_class, timestamp=at(minutes), **fields)


def run_row(rows: rules.Rows, run: WorkflowRun) -> dict:
    return rows.runs[str(run.id)]


# A run's life.


def test_a_run_from_creation_to_completion():
    run = new_run()
    run.start(at=at(1))
    task = new_task(run, minutes=2)
    task.start(at=at(3))
    task.complete("ok", at=at(5))
    run.complete(at=at(6))
    rows = project(run, task)
    row = run_row(rows, run)
    assert (row["status"], row["started_at"], row["finished_at"], row["last_event_at"]) == (
        RunStatus.COMPLETED, at(1), at(6), at(6))
    assert (row["tasks_total"], row["tasks_completed"], row["tasks_running"]) == (1, 1, 0)
    assert row["progress_percent"] == 100.0 and row["current_task"] is None
    task_row = rows.tasks[str(task.id)]
    assert (task_row["status"], task_row["attempts"], task_row["result_message"]) == (TaskStatus.COMPLETED, 1, "ok")
    assert rows.changed_runs == {str(run.id)} and rows.changed_tasks == {str(task.id)}


def test_a_failed_run_keeps_its_error_and_a_cancelled_one_its_reason():
    failed, cancelled, quiet = new_run("a"), new_run("b"), new_run("c")
    failed.fail("ValueError: bad input", at=at(1))
    cancelled.cancel("user asked", at=at(2))
    quiet.cancel(None, at=at(3))
    rows = project(failed, cancelled, quiet)
    assert (run_row(rows, failed)["status"], run_row(rows, failed)["error_message"]) == (
        RunStatus.FAILED, "ValueError: bad input")
    assert (run_row(rows, cancelled)["status"], run_row(rows, cancelled)["error_message"]) == (
        RunStatus.CANCELLED, "user asked")
    assert run_row(rows, quiet)["error_message"] is None


@pytest.mark.parametrize("ending", ["complete", "fail", "cancel"])
@pytest.mark.parametrize("late", ["start", "complete", "fail", "cancel"])
def test_an_ended_run_is_not_changed_by_a_late_lifecycle_event_stored_before_the_domain_refused_it(ending, late):
    run = new_run()
    run.start(at=at(1))
    {"complete": lambda: run.complete(at=at(2)), "fail": lambda: run.fail("first", at=at(2)),
     "cancel": lambda: run.cancel("first", at=at(2))}[ending]()
    ended = dict(run_row(project(run), run))
    rows = rules.Rows(runs={str(run.id): dict(ended)})
    event_class = {"start": WorkflowRun.Started, "complete": WorkflowRun.Completed,
                   "fail": WorkflowRun.Failed, "cancel": WorkflowRun.Cancelled}[late]
    fields = {"fail": {"error_message": "late"}, "cancel": {"reason": "late"}}.get(late, {})
    old_event(run, event_class, 3, **fields)
    assert run_row(project(run, rows=rows), run) == ended


def test_the_domain_and_the_rules_agree_on_a_stored_history_with_late_events():
    """Completed, then started and failed (accepted before): completed, in both."""
    run = new_run()
    run.start(at=at(1))
    run.complete(at=at(2))
    old_event(run, WorkflowRun.Started, 3)
    old_event(run, WorkflowRun.Failed, 4, error_message="late")
    events = run.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert (replayed.status, replayed.error_message) == (RunStatus.COMPLETED, None)
    row = run_row(project(*events), run)
    assert (row["status"], row["finished_at"], row["error_message"]) == (RunStatus.COMPLETED, at(2), None)


def test_the_domain_records_no_late_lifecycle_event():
    run = new_run()
    run.complete(at=at(1))
    run.collect_events()
    run.start(at=at(2))
    run.fail("late", at=at(3))
    run.cancel("late", at=at(4))
    assert run.collect_events() == [] and run.status == RunStatus.COMPLETED and run.has_ended


def test_an_ended_run_still_takes_its_tasks_progress_logs_and_heartbeats():
    run = new_run()
    task = new_task(run, minutes=1)
    task.start(at=at(1))
    run.complete(at=at(2))
    task.complete("late report", at=at(3))
    run.report_progress(4, 4, at=at(4))
    run.heartbeat(at=at(5))
    line = LogLine.record(uuid4(), run_id=run.id, task_id=task.id, level="INFO", message="bye", at=at(6))
    rows = project(run, task, line)
    row = run_row(rows, run)
    assert (row["status"], row["finished_at"], row["last_event_at"]) == (RunStatus.COMPLETED, at(2), at(5))
    assert (row["tasks_completed"], row["steps_done"], row["progress_percent"]) == (1, 4, 100.0)
    assert [log["message"] for log in rows.logs] == ["bye"]


def test_a_stale_run_heard_from_again_is_running():
    run = new_run()
    run.start(at=at(1))
    row = dict(run_row(project(run), run), status=RunStatus.STALE)
    run.heartbeat(at=at(10))
    rows = project(run, rows=rules.Rows(runs={str(run.id): row}))
    assert (run_row(rows, run)["status"], run_row(rows, run)["last_event_at"]) == (RunStatus.RUNNING, at(10))


def test_an_event_with_an_earlier_time_does_not_move_last_event_at_back():
    run = new_run()
    run.heartbeat(at=at(10))
    run.heartbeat(at=at(5))
    rows = rules.Rows()
    for position, event in enumerate(run.collect_events(), start=1):  # in log order, not by time
        rules.apply(rows, position, event)
    assert run_row(rows, run)["last_event_at"] == at(10)


# Progress.


def test_progress_counts_completed_tasks_until_the_source_reports_steps():
    run = new_run()
    tasks = [new_task(run, f"t{n}", minutes=1) for n in range(4)]
    tasks[0].complete("ok", at=at(2))
    tasks[1].fail("boom", at=at(2))  # a failed task is not done
    rows = project(run, *tasks)
    assert run_row(rows, run)["progress_percent"] == 25.0
    run.report_progress(3, 12, at=at(3))
    assert run_row(project(run, rows=rows), run)["progress_percent"] == 25.0


def test_progress_stored_above_its_total_before_validation_stays_within_the_views_check():
    run = new_run()
    old_event(run, WorkflowRun.ProgressReported, 1, done=9, total=3)
    assert run_row(project(run), run)["progress_percent"] == 100.0


# Tasks.


def test_the_current_task_is_the_latest_started_that_still_runs():
    run = new_run()
    first, second, third = (new_task(run, name, minutes=1) for name in ("first", "second", "third"))
    first.start(at=at(2))
    second.start(at=at(3))
    third.start(at=at(4))
    third.complete("ok", at=at(5))
    rows = project(run, first, second, third)
    assert run_row(rows, run)["current_task"] == "second"
    assert run_row(rows, run)["tasks_running"] == 2


def test_a_retried_task_counts_its_attempts_and_keeps_its_last_error():
    run = new_run()
    task = new_task(run, minutes=1)
    task.start(at=at(2))
    task.fail("Traceback (most recent call last):\n  ...\nMemoryError: out of memory", at=at(3))
    task.start(at=at(4))
    row = project(run, task).tasks[str(task.id)]
    assert (row["status"], row["attempts"], row["finished_at"]) == (TaskStatus.RUNNING, 2, None)
    assert row["error_type"] == "MemoryError"


def test_job_ids_get_an_accounting_row_each_and_reports_go_to_the_latest():
    run = new_run()
    task = new_task(run, minutes=1)
    task.add_job_id("4711", at=at(2))
    task.update_status("PENDING", at=at(3))
    task.add_job_id("4712", at=at(4))
    task.update_status("RUNNING", at=at(5))
    task.update_progress(50, at=at(6))
    rows = project(run, task)
    first, latest = rows.accounting[("4711", str(task.id))], rows.accounting[("4712", str(task.id))]
    assert (first["status"], latest["status"], latest["progress"]) == ("PENDING", "RUNNING", "50")
    assert (latest["user_name"], latest["updated_at"]) == ("alice", at(6))
    assert rows.tasks[str(task.id)]["job_ids"] == ["4711", "4712"]


def test_results_are_appended_in_order():
    run = new_run()
    task = new_task(run, minutes=1)
    task.add_result({"n": 1}, at=at(2))
    task.add_result([2], at=at(3))
    assert project(run, task).tasks[str(task.id)]["results"] == [{"n": 1}, [2]]


# Rows whose parent is gone (deleted by hand) are skipped, never written.


def test_events_of_an_unknown_run_or_task_are_skipped():
    run = new_run()
    run.collect_events()  # never projected: as if its row were deleted
    task = new_task(run, minutes=1)
    task.start(at=at(2))
    line = LogLine.record(uuid4(), run_id=run.id, task_id=None, level="INFO", message="x", at=at(3))
    run.heartbeat(at=at(4))
    rows = project(run, task, line)
    assert rows.runs == {} and rows.tasks == {} and rows.logs == []


def test_a_log_line_is_keyed_by_its_position_in_the_log():
    run = new_run()
    line = LogLine.record(uuid4(), run_id=run.id, task_id=None, level="WARNING", message="disk", at=at(1))
    rows = project(run, line)
    assert rows.logs == [{"id": 2, "run_id": str(run.id), "task_id": None, "level": "WARNING",
                          "message": "disk", "logged_at": at(1)}]
    assert run_row(rows, run)["last_event_at"] == at(0)  # a line does not move it


# What a batch needs loaded.


def test_wanted_names_every_row_a_batch_touches():
    run = new_run()
    task = new_task(run, minutes=1)
    task.start(at=at(2))
    task.add_job_id("1", at=at(3))
    line = LogLine.record(uuid4(), run_id=run.id, task_id=None, level="INFO", message="x", at=at(4))
    need = rules.wanted([*run.collect_events(), *task.collect_events(), *line.collect_events()])
    run_id, task_id = str(run.id), str(task.id)
    assert need.created == {task_id: run_id}
    assert need.run_ids == {run_id} and need.task_ids == {task_id}
    assert need.status_task_ids == {task_id} and need.job_task_ids == {task_id}


@pytest.mark.parametrize("message, expected", [
    ("ValueError: bad", "ValueError"),
    ("Traceback:\n  File x\nrequests.exceptions.ConnectionError: refused", "requests.exceptions.ConnectionError"),
    ("just words", None),
    (None, None),
])
def test_error_type_is_the_last_named_exception(message, expected):
    assert rules.error_type(message) == expected
