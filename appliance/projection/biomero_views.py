"""BIOMERO 2.8's four view tables, kept by the projector (APPLIANCE_BIOMERO_VIEWS).

The rows are those of BIOMERO's own views (biomero/views.py: JobAccounting ->
biomero_job_view, JobProgress -> biomero_job_progress_view, WorkflowProgress ->
biomero_workflow_progress_view, WorkflowAnalytics -> biomero_task_execution),
with BIOMERO's columns and value conventions: OMERO user and group ids and
Slurm job ids as integers, Slurm's statuses as reported, the workflow's
status and progress text as WorkflowProgress writes them ("JOB_RUNNING",
"70.0%"), `main_task_name`.

The store applies each event here right after the appliance's own rules
(appliance.projection.rules), reading the appliance's rows of the batch as
they stand after that event, and writes these rows in the batch's
transaction, with its position: exactly once, and a rebuild gives the same.
Most rows follow from the appliance's rows alone (a task's, a run's, a job's
accounting row); a workflow's status and progress are BIOMERO's own
reckoning, so their row is loaded and carried on.

The runs kept: BIOMERO's (from its log) and the appliance's own whose user
and group are OMERO ids (whole numbers, as BIOMERO's callers pass them).

On purpose, where BIOMERO's views are at fault, the rows differ
(docs/biomero.md lists each): a task's status says how it ended (COMPLETED,
FAILED or the Slurm state it failed with) and RUNNING once started, where
BIOMERO keeps CREATED or the last report; its start_time is when it started,
not when it was created; its user and group are there from its creation; a
recycled Slurm job id's progress row starts afresh with the new job; a
progress BIOMERO's WorkflowProgress cannot read ("50.5%", an int) is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from appliance.domain import Task, WorkflowRun
from appliance.projection.biomero import SOURCE
from appliance.projection.rules import Rows, as_text
from appliance.sql import load_queries
from appliance.vocabulary import TaskStatus

QUERIES = load_queries("biomero_views.sql")

INT32 = range(-(2**31), 2**31)
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,10}")
# Slurm's end states of a job that did not complete: a task failed with one keeps it as its status.
SLURM_FAILURES = {"FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                  "DEADLINE"}
# WorkflowProgress skips these when it picks a workflow's main task (lowercased prefixes).
INFRASTRUCTURE = ("_slurm_", "slurm_", "convert_")
TASK_EVENTS = (Task.Created, Task.Started, Task.StatusUpdated, Task.Completed, Task.Failed)


def omero_id(value: Any) -> int | None:
    """A value for BIOMERO's integer columns: an int (a Slurm job id, an OMERO id), or the
    text the appliance's rows show it as; None for anything else (no row can hold it)."""
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in INT32:
        return value
    return None


def kept(run: dict) -> bool:
    """Whether a run has rows in BIOMERO's tables: BIOMERO's own, or BIOMERO-shaped."""
    return run["source"] == SOURCE or (omero_id(run["user_name"]) is not None
                                       and omero_id(run["group_name"]) is not None)


@dataclass
class Tables:
    """The rows of one batch for BIOMERO's four tables."""

    workflows: dict[str, dict] = field(default_factory=dict)  # by workflow id: loaded, then carried on
    changed_workflows: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)  # Slurm job ids (as job_accounting keeps them) given or reported
    tasks: set[str] = field(default_factory=set)  # whose biomero_task_execution row is written


def load(cursor: Any, rows: Rows) -> Tables:
    """The workflow rows of the runs the batch touches (the appliance's rows are loaded already)."""
    tables = Tables()
    if rows.runs:
        cursor.execute(QUERIES["load_workflows"], {"ids": list(rows.runs)})
        columns = [column.name for column in cursor.description]
        tables.workflows = {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}
    return tables


def apply(tables: Tables, rows: Rows, event: Any) -> None:
    """One event, after the appliance's rules applied it to `rows`."""
    kind = type(event)
    if kind is WorkflowRun.Initiated:
        _initiated(tables, rows.runs.get(str(event.originator_id)))
    elif kind in (WorkflowRun.Completed, WorkflowRun.Failed):
        done = kind is WorkflowRun.Completed
        _workflow_ended(tables, str(event.originator_id), "DONE" if done else "FAILED", "100%" if done else None)
    elif kind in TASK_EVENTS or kind in (Task.JobIdAdded, Task.ProgressUpdated):
        _task_event(tables, rows, event)


def save(cursor: Any, tables: Tables, rows: Rows, to_json) -> None:
    """Write the batch's rows (`to_json`: the store's encoder), after the appliance's own."""
    jobs, progress = _job_rows(cursor, tables.jobs)
    written = (
        ("save_workflows", [tables.workflows[key] for key in tables.changed_workflows]),
        ("save_jobs", jobs),
        ("save_job_progress", progress),
        ("save_task_executions", _task_rows(tables, rows)),
    )
    for query, changed in written:
        if changed:
            cursor.execute(QUERIES[query], {"rows": to_json(changed)})


def save_position(cursor: Any, application: str, position: int) -> None:
    cursor.execute(QUERIES["save_position"], {"application": application, "position": position})


def rewind(cursor: Any, *, empty: bool) -> None:
    """A rebuild starts the four tables over with the other views; `empty`: without their rows."""
    cursor.execute(QUERIES["reset_positions"])
    if empty:
        cursor.execute(QUERIES["empty_tables"])


def out_of_step(cursor: Any) -> list[str]:
    """The logs in which the four tables are not where the other views are (the setting
    was off meanwhile, or never on): their rows miss events until a rebuild."""
    cursor.execute(QUERIES["out_of_step"])
    return [name for name, in cursor.fetchall()]


# Workflows (WorkflowProgress).


def _initiated(tables: Tables, run: dict | None) -> None:
    if run is None or not kept(run):
        return
    tables.workflows[run["id"]] = {
        "workflow_id": run["id"], "status": "INITIALIZING", "progress": "0%",
        "user": omero_id(run["user_name"]), "group": omero_id(run["group_name"]), "name": run["workflow_name"],
        "task": None, "main_task_name": None, "start_time": run["created_at"],
    }
    tables.changed_workflows.add(run["id"])


def _workflow_ended(tables: Tables, run_id: str, status: str, progress: str | None) -> None:
    workflow = tables.workflows.get(run_id)
    if workflow is not None:
        workflow["status"] = status
        if progress is not None:
            workflow["progress"] = progress
        tables.changed_workflows.add(run_id)


def _task_added(tables: Tables, run_id: str, task_name: str | None) -> None:
    """The workflow's current task; its main task is its first that is no infrastructure
    (until there is one, the current task), as WorkflowProgress picks it."""
    workflow = tables.workflows.get(run_id)
    if workflow is None:
        return
    workflow["task"] = task_name
    if not _is_main(workflow["main_task_name"]):
        workflow["main_task_name"] = task_name
    tables.changed_workflows.add(run_id)


def _is_main(task_name: str | None) -> bool:
    return task_name is not None and not task_name.lower().startswith(INFRASTRUCTURE)


def _status_reported(tables: Tables, run_id: str, task: dict, status: str | None) -> None:
    workflow = tables.workflows.get(run_id)
    if workflow is None or task["task_name"] is None:
        return
    workflow["status"], workflow["progress"] = workflow_status(task["task_name"], status, task["progress"])
    tables.changed_workflows.add(run_id)


def workflow_status(task_name: str, status: str | None, task_progress: str | None) -> tuple[str, str]:
    """A workflow's status and progress after one of its tasks reports `status`, by the task's
    name, as BIOMERO's WorkflowProgress reckons them."""
    name = task_name.lower()
    status = "" if status is None else status
    if name == "_slurm_image_transfer.py":
        return "TRANSFERRING", "5%"
    if name.startswith("convert_"):
        return "CONVERTING", "25%"
    if name == "slurm_get_results.py":
        return ("POSTPROCESSING", "95%") if status == "POSTPROCESSING" else ("RETRIEVING", "90%")
    if name == "slurm_import_results.py":
        # getattr(workflow_status, status, status): each constant is its own name, but JOB_STATUS.
        return ("JOB_" if status == "JOB_STATUS" else status), ("95%" if status == "POSTPROCESSING" else "90%")
    if name == "slurm_run_workflow.py":
        return "RUNNING", "50%"
    return f"JOB_{status}", _job_progress(task_progress)


def _job_progress(task_progress: str | None) -> str:
    """50% at a job's status report, or between 50% and 90% by the job's own progress."""
    try:
        current = float(task_progress.strip().rstrip("%")) if task_progress else None
    except ValueError:
        current = None
    if current is None:
        return "50%"
    if current.is_integer():
        current = int(current)  # BIOMERO's int(): "43%" gives 67.2%, as there
    return f"{50 + ((current / 100) * (90 - 50))}%"


# Tasks and jobs (WorkflowAnalytics, JobAccounting, JobProgress).


def _task_event(tables: Tables, rows: Rows, event: Any) -> None:
    task = rows.tasks.get(str(event.originator_id))
    run = None if task is None else rows.runs.get(task["run_id"])
    if run is None or not kept(run):
        return
    kind = type(event)
    if kind in TASK_EVENTS:
        tables.tasks.add(task["id"])
    if kind is Task.Created:
        _task_added(tables, run["id"], task["task_name"])
    elif kind is Task.StatusUpdated:
        _status_reported(tables, run["id"], task, as_text(event.status))
    if kind in (Task.JobIdAdded, Task.StatusUpdated, Task.ProgressUpdated) and task["job_ids"]:
        tables.jobs.add(task["job_ids"][-1])  # a report is the task's latest job's, as in job_accounting


def _job_rows(cursor: Any, jobs: set[str]) -> tuple[list[dict], list[dict]]:
    """biomero_job_view's and biomero_job_progress_view's rows of some Slurm job ids.

    Each follows from the appliance's job_accounting (one row per job id and
    task, with its status and progress) as a whole, never from the order the
    logs were applied in: a job id given to several tasks (the cluster recycles
    ids; BIOMERO gives -1 to every job it could not submit) names the task it
    was given to last, by the events' times, and its progress row is the one
    of the newest job with a report, afresh (BIOMERO's carries the older job's).
    """
    if not jobs:
        return [], []
    cursor.execute(QUERIES["load_jobs"], {"jobs": list(jobs)})  # the newest owner and report of each
    columns = [column.name for column in cursor.description]
    newest: dict[tuple[str, int], dict] = {}
    for row in (dict(zip(columns, values)) for values in cursor.fetchall()):
        job = omero_id(row["job_id"])
        key = (row["kind"], job)
        if job is not None and (key not in newest or _given_at(row) > _given_at(newest[key])):
            newest[key] = row  # "4711" and "04711" are one job id here
    job_rows = [{"slurm_job_id": job, "user": omero_id(row["user_name"]), "group": omero_id(row["group_name"]),
                 "task_id": row["task_id"]} for (kind, job), row in newest.items() if kind == "owner"]
    progress_rows = [{"slurm_job_id": job, "status": as_text(row["status"]) or "UNKNOWN",
                      "progress": as_text(row["progress"])} for (kind, job), row in newest.items() if kind != "owner"]
    return job_rows, progress_rows


def _given_at(row: dict) -> tuple:
    return row["created_at"], row["task_id"]  # ties (equal times) go to the larger task id, as in load_jobs


def _task_rows(tables: Tables, rows: Rows) -> list[dict]:
    found = []
    for task_id in tables.tasks:
        task = rows.tasks[task_id]
        if task["task_name"] is None:
            continue  # BIOMERO's task_name is NOT NULL: it has no row either
        run = rows.runs[task["run_id"]]
        found.append({
            "task_id": task_id, "task_name": task["task_name"], "task_version": task["task_version"],
            "user_id": omero_id(run["user_name"]), "group_id": omero_id(run["group_name"]),
            "status": task_status(task), "start_time": task["started_at"] or task["created_at"],
            "end_time": task["finished_at"], "error_type": task["error_message"],
        })
    return found


def task_status(task: dict) -> str:
    """Slurm-style: how an ended task ended, else the status last reported, else RUNNING or CREATED."""
    reported = as_text(task["external_status"])
    if task["status"] == TaskStatus.COMPLETED:
        return "COMPLETED"
    if task["status"] == TaskStatus.FAILED:
        return reported if reported and reported.split()[0] in SLURM_FAILURES else "FAILED"
    if reported is not None:
        return reported
    return "RUNNING" if task["status"] == TaskStatus.RUNNING else "CREATED"
