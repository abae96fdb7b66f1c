"""What each event does to the view rows: plain Python, no database.

The store loads every row a batch of events touches into `Rows`; `apply`
changes them in place, event by event in log order; `finish` computes what
depends on a whole run (its current task); the store then writes back the
rows marked changed. Rows are dicts keyed by column name, so a row read from
the database and one made here are the same thing, and a live projection
and a reprojection compute identical rows.

Every time in a row is the time of an event (sources may pass it), never the
time of projecting, so views rebuilt from the log are the same as before.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from appliance.domain import LogLine, Task, WorkflowRun
from appliance.vocabulary import RunStatus, TaskStatus, is_terminal, run_progress

log = logging.getLogger(__name__)

# "ValueError: bad input", "requests.exceptions.ConnectionError: ..." or the
# last line of a Python traceback: the type is the last such line.
ERROR_TYPE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception))\s*:", re.MULTILINE)

TASK_STATUS_EVENTS = (Task.Started, Task.Completed, Task.Failed)
# What moves a run along its life; on an ended run (completed, failed, cancelled)
# they change nothing, not even its last event time, as in the domain.
RUN_LIFE_EVENTS = (WorkflowRun.Started, WorkflowRun.Completed, WorkflowRun.Failed, WorkflowRun.Cancelled)
JOB_EVENTS = (Task.JobIdAdded, Task.StatusUpdated, Task.ProgressUpdated)
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
ATTEMPTS_KEPT = 20  # a task's attempt_history keeps its latest attempts
ATTEMPT_ERROR_CHARS = 4000  # and each one's error's end (the whole last error is error_message)


@dataclass
class Wanted:
    """The rows a batch of events needs before it can be applied."""

    task_ids: set[str] = field(default_factory=set)
    run_ids: set[str] = field(default_factory=set)
    job_task_ids: set[str] = field(default_factory=set)  # tasks whose job_accounting rows are needed
    status_task_ids: set[str] = field(default_factory=set)  # tasks whose run's current task may change
    created: dict[str, str] = field(default_factory=dict)  # task id -> run id, tasks created in the batch


def wanted(events: Iterable[Any]) -> Wanted:
    need = Wanted()
    for event in events:
        kind = type(event)
        if kind is Task.Created:
            need.created[str(event.originator_id)] = str(event.run_id)
        elif kind is LogLine.Recorded:
            need.run_ids.add(str(event.run_id))  # to skip a line whose run was deleted by hand
        elif kind in RUN_HANDLERS:
            need.run_ids.add(str(event.originator_id))
        elif kind in TASK_HANDLERS:
            task_id = str(event.originator_id)
            need.task_ids.add(task_id)
            if kind in TASK_STATUS_EVENTS:
                need.status_task_ids.add(task_id)
            elif kind in JOB_EVENTS:
                need.job_task_ids.add(task_id)
    return need


@dataclass
class Rows:
    """The view rows of one batch, by key, and which of them changed."""

    runs: dict[str, dict] = field(default_factory=dict)
    tasks: dict[str, dict] = field(default_factory=dict)
    accounting: dict[tuple[str, str], dict] = field(default_factory=dict)  # (job_id, task_id)
    logs: list[dict] = field(default_factory=list)
    changed_runs: set[str] = field(default_factory=set)
    changed_tasks: set[str] = field(default_factory=set)
    changed_accounting: set[tuple[str, str]] = field(default_factory=set)
    recount: set[str] = field(default_factory=set)  # runs whose current task may have changed

    def changed(self) -> tuple[list[dict], list[dict], list[dict]]:
        return (
            [self.runs[key] for key in self.changed_runs],
            [self.tasks[key] for key in self.changed_tasks],
            [self.accounting[key] for key in self.changed_accounting],
        )


def apply(rows: Rows, position: int, event: Any) -> None:
    """Apply one event (at notification id `position`) to the rows."""
    kind = type(event)
    if kind is WorkflowRun.Initiated:
        _run_initiated(rows, event)
    elif kind is Task.Created:
        _task_created(rows, event)
    elif kind is LogLine.Recorded:
        _log_recorded(rows, position, event)
    elif kind in RUN_LIFE_EVENTS and _has_ended(rows, str(event.originator_id)):
        return  # stored before the tracker refused it: an ended run stays as it ended
    elif kind in RUN_HANDLERS:
        run = _touch_run(rows, str(event.originator_id), event)
        if run is not None:
            RUN_HANDLERS[kind](run, event)
    elif kind in TASK_HANDLERS:
        task = rows.tasks.get(str(event.originator_id))
        if task is None:
            _skip(event, "task", event.originator_id)
            return
        run = _touch_run(rows, task["run_id"], event)
        if run is not None:
            rows.changed_tasks.add(task["id"])
            TASK_HANDLERS[kind](rows, run, task, event)
    else:
        log.warning("no projection for %s (notification %d); skipped", kind.__qualname__, position)


def finish(rows: Rows) -> None:
    """A run's current task: the latest started of its tasks still running."""
    latest: dict[str, dict] = {}
    for task in rows.tasks.values():
        run_id = task["run_id"]
        if run_id in rows.recount and task["status"] == TaskStatus.RUNNING:
            best = latest.get(run_id)
            if best is None or _start_key(task) > _start_key(best):
                latest[run_id] = task
    for run_id in rows.recount:
        if run_id in rows.runs:
            best = latest.get(run_id)
            rows.runs[run_id]["current_task"] = None if best is None else best["task_name"]


def as_text(value: Any) -> str | None:
    """A value for a text column: BIOMERO keeps OMERO ids, Slurm job ids and even a
    description as ints; they are shown as text, None stays NULL."""
    return value if value is None or isinstance(value, str) else str(value)


def error_type(message: str | None) -> str | None:
    matches = ERROR_TYPE.findall(message or "")
    return matches[-1] if matches else None


# Runs.


def _run_initiated(rows: Rows, event: WorkflowRun.Initiated) -> None:
    run_id = str(event.originator_id)
    rows.runs[run_id] = {
        "id": run_id, "workflow_name": as_text(event.name), "description": as_text(event.description),
        "user_name": as_text(event.user), "group_name": as_text(event.group), "source": event.source,
        "params": event.params, "status": RunStatus.CREATED,
        "tasks_total": 0, "tasks_created": 0, "tasks_running": 0, "tasks_completed": 0, "tasks_failed": 0,
        "progress_percent": 0.0, "steps_done": None, "steps_total": None,
        "current_task": None, "error_message": None, "planned_jobs": None, "rule_graph": None,
        "created_at": event.timestamp, "started_at": None, "finished_at": None,
        "last_event_at": event.timestamp,
    }
    rows.changed_runs.add(run_id)


def _has_ended(rows: Rows, run_id: str) -> bool:
    run = rows.runs.get(run_id)
    return run is not None and is_terminal(run["status"])


def _touch_run(rows: Rows, run_id: str, event: Any) -> dict | None:
    """The run of an event, marked changed, its last event time moved on."""
    run = rows.runs.get(run_id)
    if run is None:
        _skip(event, "workflow run", run_id)
        return None
    if run["last_event_at"] is None or event.timestamp > run["last_event_at"]:
        run["last_event_at"] = event.timestamp
    if run["status"] == RunStatus.STALE:
        run["status"] = RunStatus.RUNNING  # heard from again (appliance.staleness marked it)
    rows.changed_runs.add(run_id)
    return run


def _run_started(run: dict, event: Any) -> None:
    run.update(status=RunStatus.RUNNING, started_at=event.timestamp, finished_at=None)


def _run_completed(run: dict, event: Any) -> None:
    run.update(status=RunStatus.COMPLETED, finished_at=event.timestamp)


def _run_failed(run: dict, event: Any) -> None:
    run.update(status=RunStatus.FAILED, finished_at=event.timestamp, error_message=event.error_message)


def _progress_reported(run: dict, event: Any) -> None:
    run.update(steps_done=event.done, steps_total=event.total)
    _progress(run)


def _run_cancelled(run: dict, event: Any) -> None:
    # The reason, if given, is what a reader of the run wants to see beside "cancelled".
    run.update(status=RunStatus.CANCELLED, finished_at=event.timestamp)
    if event.reason:
        run["error_message"] = event.reason


def _run_planned(run: dict, event: Any) -> None:
    run["planned_jobs"] = event.jobs


def _rule_graph_recorded(run: dict, event: Any) -> None:
    run["rule_graph"] = {"rules": event.rules, "edges": event.edges}


RUN_HANDLERS: dict[type, Callable[[dict, Any], None]] = {
    WorkflowRun.TaskAdded: lambda run, event: None,  # counted by Task.Created, which comes with it
    WorkflowRun.Started: _run_started,
    WorkflowRun.Completed: _run_completed,
    WorkflowRun.Failed: _run_failed,
    WorkflowRun.Cancelled: _run_cancelled,
    WorkflowRun.ProgressReported: _progress_reported,
    WorkflowRun.HeartbeatReceived: lambda run, event: None,  # moves last_event_at only
    WorkflowRun.Planned: _run_planned,
    WorkflowRun.RuleGraphRecorded: _rule_graph_recorded,
}


# Tasks.


def _task_created(rows: Rows, event: Task.Created) -> None:
    task_id, run_id = str(event.originator_id), str(event.run_id)
    run = _touch_run(rows, run_id, event)
    if run is None:
        return
    rows.tasks[task_id] = {
        "id": task_id, "run_id": run_id, "task_name": as_text(event.task_name), "task_version": as_text(event.task_version),
        "status": TaskStatus.CREATED, "external_status": None, "progress": None,
        "input_data": event.input_data, "params": event.params, "results": [], "job_ids": [],
        "attempts": 0, "attempt_history": [], "result_message": None, "error_message": None, "error_type": None,
        "inputs": [], "outputs": [], "log_files": [], "benchmark_file": None, "conda_env": None,
        "container_image": None, "host": None, "resource_usage": None,
        "created_at": event.timestamp, "started_at": None, "finished_at": None,
    }
    rows.changed_tasks.add(task_id)
    run["tasks_total"] += 1
    run["tasks_created"] += 1
    _progress(run)


def _move(rows: Rows, run: dict, task: dict, status: str) -> None:
    """Change a task's status and its run's counts with it."""
    run[f"tasks_{task['status']}"] -= 1
    run[f"tasks_{status}"] += 1
    task["status"] = status
    _progress(run)
    rows.recount.add(run["id"])


def _progress(run: dict) -> None:
    """The run's percentage, as appliance.vocabulary.run_progress computes it.

    Every task event comes through here too, so a reported progress is never
    overwritten by the count of tasks (a source may create a task only when
    its job starts, so that count says little next to the source's total).
    """
    run["progress_percent"] = run_progress(run["steps_done"], run["steps_total"], run["tasks_total"],
                                           run["tasks_completed"]).percent


def _task_started(rows: Rows, run: dict, task: dict, event: Any) -> None:
    # A retried job is one task with several attempts: each start is one, and
    # a task restarted after failing is running again, not finished. Its last
    # error stays (error_message, error_type): why the previous attempt failed.
    _move(rows, run, task, TaskStatus.RUNNING)
    if run["status"] == RunStatus.CREATED:
        # BIOMERO never records a run's start: a run runs from its first started task.
        run.update(status=RunStatus.RUNNING, started_at=event.timestamp)
    task.update(attempts=task["attempts"] + 1, started_at=event.timestamp, finished_at=None)
    attempt = {"started_at": event.timestamp.isoformat(), "finished_at": None, "status": "running", "error": None}
    task["attempt_history"] = [*task["attempt_history"], attempt][-ATTEMPTS_KEPT:]


def _end_attempt(task: dict, event: Any, status: str, error: str | None = None) -> None:
    """The latest attempt ends (one is made if the task ended without a start)."""
    history = list(task["attempt_history"])
    if not history or history[-1]["finished_at"] is not None:
        history = [*history, {"started_at": None}][-ATTEMPTS_KEPT:]
    history[-1] = {**history[-1], "finished_at": event.timestamp.isoformat(), "status": status,
                   "error": None if error is None else error[-ATTEMPT_ERROR_CHARS:]}
    task["attempt_history"] = history


def _task_completed(rows: Rows, run: dict, task: dict, event: Any) -> None:
    _move(rows, run, task, TaskStatus.COMPLETED)
    task.update(result_message=event.message, finished_at=event.timestamp)
    _end_attempt(task, event, "completed")


def _task_failed(rows: Rows, run: dict, task: dict, event: Any) -> None:
    _move(rows, run, task, TaskStatus.FAILED)
    task.update(error_message=event.error_message, error_type=error_type(event.error_message),
                finished_at=event.timestamp)
    _end_attempt(task, event, "failed", event.error_message)


def _job_id_added(rows: Rows, run: dict, task: dict, event: Any) -> None:
    job_id = as_text(event.job_id)  # BIOMERO's Slurm job ids are ints
    task["job_ids"] = [*task["job_ids"], job_id]
    key = (job_id, task["id"])
    if key not in rows.accounting:
        # Keyed by job id AND task: a job id the cluster recycles gets a row of
        # its own instead of overwriting the older task's.
        rows.accounting[key] = {
            "job_id": job_id, "task_id": task["id"], "run_id": run["id"],
            "user_name": run["user_name"], "group_name": run["group_name"],
            "status": None, "progress": None, "created_at": event.timestamp, "updated_at": event.timestamp,
        }
        rows.changed_accounting.add(key)


def _status_updated(rows: Rows, run: dict, task: dict, event: Any) -> None:
    task["external_status"] = event.status
    _report_to_latest_job(rows, task, event, status=event.status)


def _progress_updated(rows: Rows, run: dict, task: dict, event: Any) -> None:
    progress = None if event.progress is None else str(event.progress)
    task["progress"] = progress
    _report_to_latest_job(rows, task, event, progress=progress)


def _report_to_latest_job(rows: Rows, task: dict, event: Any, **values: Any) -> None:
    """A status or progress report belongs to the task's most recent job."""
    if not task["job_ids"]:
        return
    key = (task["job_ids"][-1], task["id"])
    row = rows.accounting.get(key)
    if row is not None:
        row.update(values, updated_at=event.timestamp)
        rows.changed_accounting.add(key)


def _result_added(rows: Rows, run: dict, task: dict, event: Any) -> None:
    task["results"] = [*task["results"], event.result]


def _details_recorded(rows: Rows, run: dict, task: dict, event: Any) -> None:
    task.update(inputs=event.inputs, outputs=event.outputs, log_files=event.log_files,
                benchmark_file=event.benchmark, conda_env=event.conda_env, container_image=event.container,
                host=event.host)


def _resources_measured(rows: Rows, run: dict, task: dict, event: Any) -> None:
    task["resource_usage"] = event.usage


TASK_HANDLERS: dict[type, Callable[[Rows, dict, dict, Any], None]] = {
    Task.Started: _task_started,
    Task.Completed: _task_completed,
    Task.Failed: _task_failed,
    Task.JobIdAdded: _job_id_added,
    Task.StatusUpdated: _status_updated,
    Task.ProgressUpdated: _progress_updated,
    Task.ResultAdded: _result_added,
    Task.DetailsRecorded: _details_recorded,
    Task.ResourcesMeasured: _resources_measured,
}


# Log lines.


def _log_recorded(rows: Rows, position: int, event: LogLine.Recorded) -> None:
    # The id is the event's position in the log: it grows with time and is
    # the same after a reprojection. The line does not move its run's
    # last_event_at, but its run must exist (a foreign key).
    run_id = str(event.run_id)
    if run_id not in rows.runs:
        _skip(event, "workflow run", run_id)
        return
    rows.logs.append({
        "id": position, "run_id": run_id,
        "task_id": None if event.task_id is None else str(event.task_id),
        "level": event.level, "message": event.message, "logged_at": event.timestamp,
    })


def _start_key(task: dict) -> tuple[datetime, str]:
    # Ties (sources may send equal times) go to the larger id: arbitrary but
    # the same in every projection.
    return task["started_at"] or _EARLIEST, task["id"]


def _skip(event: Any, what: str, key: Any) -> None:
    # The tracker records no event of a run or task it does not know, so this
    # means rows were deleted by hand. Every row that refers to a parent (a
    # task, a log line, a job's accounting) goes through here when the parent
    # is missing: writing it would violate a foreign key and fail its batch,
    # and every later one, forever. Skipping keeps the projector going.
    log.warning("%s for an unknown %s (%s); skipped", type(event).__qualname__, what, key)
