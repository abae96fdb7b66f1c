"""The appliance's words: run and task statuses, log levels, and what progress means.

Written once, here. The domain sets these statuses, the views' CHECK
constraints allow exactly them (a test compares the database's constraints to
this module), the projection rules write them, validation accepts the levels,
the OpenAPI document lists them as enums, and the templates read them (they
are Jinja globals). Changing a status means an Alembic revision for its
constraint too.

Plain Python with no imports of the appliance: every part may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


class RunStatus:
    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Of the views only: a running run silent for RUN_STALE_AFTER seconds
    # (appliance.staleness). No event sets it, so the domain never has it.
    STALE = "stale"


class TaskStatus:
    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


RUN_STATUSES = (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED,
                RunStatus.CANCELLED, RunStatus.STALE)
# A run in one of these has ended: no later event changes its status, its end
# time or its error (docs/ingest.md, "A run's life").
TERMINAL_RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
TASK_STATUSES = (TaskStatus.CREATED, TaskStatus.RUNNING, TaskStatus.COMPLETED, TaskStatus.FAILED)
FINISHED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "INFO"


def is_terminal(run_status: str) -> bool:
    return run_status in TERMINAL_RUN_STATUSES


@dataclass(frozen=True)
class Progress:
    """How far a run is: `done` of `total`, and the percentage (0..100) the views store.

    `of` says what is counted: "steps" when the source reported its own count
    (Snakemake's "N of M steps"), else "tasks" (finished tasks of all).
    """

    done: int
    total: int
    percent: float
    of: str

    def as_json(self) -> dict:
        return {"done": self.done, "total": self.total, "percent": round(self.percent, 1), "of": self.of}


def run_progress(steps_done: int | None, steps_total: int | None,
                 tasks_total: int, tasks_completed: int) -> Progress:
    """The run's own report of its steps when it gave a total, else its completed tasks:
    only finished steps count, a failed task is not done (a run cancelled while its
    only task ran is at 0%, not 100%).

    The one computation of progress: the projection stores `percent` in
    workflow_runs.progress_percent, the pages and the API show all of it.
    """
    if steps_total:
        # Validation keeps done <= total; min() keeps events stored before it
        # did within the view's CHECK (0..100) instead of failing the batch.
        done = steps_done or 0
        return Progress(done, steps_total, min(100.0, 100.0 * done / steps_total), "steps")
    done = tasks_completed
    return Progress(done, tasks_total, 100.0 * done / tasks_total if tasks_total else 0.0, "tasks")


def row_progress(row) -> Progress:
    """`run_progress` of a workflow_runs row (a mapping of its columns)."""
    return run_progress(row["steps_done"], row["steps_total"], row["tasks_total"], row["tasks_completed"])
