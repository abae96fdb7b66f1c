"""The write side's domain model: what happens to workflow runs and their tasks.

Free of infrastructure. A run keeps what its commands check and what
`get_workflow` shows (not its params: those live only in the event store and,
projected, in the views); a task keeps its inputs, params and results too.
Both read back with BIOMERO's attribute names (a run's `description` and
`tasks`, a task's `workflow_id`, `job_ids`, `status` as the scheduler
reported it, `result_message`) beside the appliance's own, and keep BIOMERO's
values as given (OMERO ids and Slurm job ids as ints), so BIOMERO's scripts
read them unchanged. Log lines are separate one-event streams, and the
tracker keeps them out of its aggregate cache.

Event class names are part of the stored history (their topics): never rename
one. To change an event's fields, bump its `class_version` and add an
`upcast_vN_vN+1` static method, as `WorkflowRun.Initiated` shows.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from appliance.vocabulary import RunStatus, TaskStatus, is_terminal

__all__ = ["LogLine", "RunStatus", "Task", "TaskStatus", "TrackedAggregate", "WorkflowRun"]


class TrackedAggregate(Aggregate):
    """An aggregate that is cheap to copy out of the tracker's cache."""

    def __deepcopy__(self, memo: dict) -> "TrackedAggregate":
        # Attributes hold immutable values (str, UUID, tuples) or payload dicts
        # that no command mutates, so a shallow copy is as safe as a deep one and
        # far cheaper than the library's default deepcopy of every cache hit.
        clone = copy.copy(self)
        clone._pending_events = list(self._pending_events)
        return clone

    @classmethod
    def _start_stream(cls, created_class, id: UUID, at: datetime | None, **fields: Any):
        return cls._create(created_class, id=id, timestamp=at, **fields)

    def _trigger(self, event_class: type[Aggregate.Event], at: datetime | None, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=at, **fields)


class WorkflowRun(TrackedAggregate):
    """One run of a workflow (a Snakemake invocation, a BIOMERO workflow)."""

    class Initiated(Aggregate.Created):
        """Version 2 added `source` and `params`; version 1 is BIOMERO's shape."""

        class_version = 2
        name: str
        description: str | int  # BIOMERO once passes -1
        user: str | int | None  # BIOMERO's OMERO ids are ints
        group: str | int | None
        source: str | None
        params: dict

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["source"] = None
            state["params"] = {}

    @classmethod
    def initiate(cls, id: UUID, name: str, description: str, user: str | None, group: str | None,
                 source: str | None = None, params: dict | None = None, at: datetime | None = None):
        return cls._start_stream(cls.Initiated, id, at, name=name, description=description, user=user,
                                 group=group, source=source, params=params or {})

    def __init__(self, name, description, user, group, source, params):
        self.name = name
        self.description = description  # BIOMERO's scripts read the version out of it
        self.user = user  # as given: BIOMERO's OMERO user and group ids are ints
        self.group = group
        self.source = source
        self.status = RunStatus.CREATED
        self.tasks: tuple[UUID, ...] = ()  # BIOMERO's name; a tuple, cheap to copy out of the cache
        self.error_message: str | None = None
        self.steps_done: int | None = None  # as the source last reported them
        self.steps_total: int | None = None

    class TaskAdded(Aggregate.Event):
        task_id: UUID

        def apply(self, run: "WorkflowRun") -> None:
            run.tasks += (self.task_id,)

    # A run's life: created -> running -> completed, failed or cancelled, and there
    # it ends. The commands record nothing on an ended run; the events' apply()
    # ignore one too, for histories stored before the commands checked (a
    # completed run then failed stays completed). The projection rules agree.

    class Started(Aggregate.Event):
        def apply(self, run: "WorkflowRun") -> None:
            if not run.has_ended:
                run.status = RunStatus.RUNNING

    class Completed(Aggregate.Event):
        def apply(self, run: "WorkflowRun") -> None:
            if not run.has_ended:
                run.status = RunStatus.COMPLETED

    class Failed(Aggregate.Event):
        error_message: str

        def apply(self, run: "WorkflowRun") -> None:
            if not run.has_ended:
                run.status = RunStatus.FAILED
                run.error_message = self.error_message

    class Cancelled(Aggregate.Event):
        reason: str | None

        def apply(self, run: "WorkflowRun") -> None:
            if not run.has_ended:
                run.status = RunStatus.CANCELLED

    class ProgressReported(Aggregate.Event):
        """The source's count of the run's steps: `done` of `total`.

        A source may know its total before any task exists (Snakemake creates a
        task only when a job starts), so this is the run's progress as the
        source sees it, not a count of tasks. The tracker checks
        0 <= done <= total.
        """

        done: int
        total: int

        def apply(self, run: "WorkflowRun") -> None:
            run.steps_done = self.done
            run.steps_total = self.total

    class HeartbeatReceived(Aggregate.Event):
        """The source is alive. Changes no state here: the views keep the run's
        last event time, and a run silent for too long is shown as stale."""

    @property
    def task_count(self) -> int:
        return len(self.tasks)

    class Planned(Aggregate.Event):
        """The jobs the source plans to run, per rule (Snakemake's job stats),
        and their `total`, known before most tasks exist."""

        jobs: dict
        total: int

    class RuleGraphRecorded(Aggregate.Event):
        """The run's graph of rules: `rules` (names) and `edges`, each a
        [source rule, target rule] pair (the target needs the source's output)."""

        rules: list
        edges: list

    def add_task(self, task_id: UUID, at: datetime | None = None) -> None:
        self._trigger(self.TaskAdded, at, task_id=task_id)

    @property
    def has_ended(self) -> bool:
        """Completed, failed or cancelled: no later event changes its status, end or error."""
        return is_terminal(self.status)

    def start(self, at: datetime | None = None) -> None:
        if not self.has_ended:  # a late start (a resent or delayed event) does not reopen it
            self._trigger(self.Started, at)

    def complete(self, at: datetime | None = None) -> None:
        if not self.has_ended:
            self._trigger(self.Completed, at)

    def fail(self, error_message: str, at: datetime | None = None) -> None:
        if not self.has_ended:
            self._trigger(self.Failed, at, error_message=error_message)

    def cancel(self, reason: str | None = None, at: datetime | None = None) -> None:
        if not self.has_ended:
            self._trigger(self.Cancelled, at, reason=reason)

    def report_progress(self, done: int, total: int, at: datetime | None = None) -> None:
        self._trigger(self.ProgressReported, at, done=done, total=total)

    def heartbeat(self, at: datetime | None = None) -> None:
        self._trigger(self.HeartbeatReceived, at)

    def plan(self, jobs: dict, total: int, at: datetime | None = None) -> None:
        self._trigger(self.Planned, at, jobs=jobs, total=total)

    def record_rule_graph(self, rules: list, edges: list, at: datetime | None = None) -> None:
        self._trigger(self.RuleGraphRecorded, at, rules=rules, edges=edges)


class Task(TrackedAggregate):
    """One task of a run: a Snakemake job, a BIOMERO step; may run as external jobs."""

    class Created(Aggregate.Created):
        run_id: UUID
        task_name: str
        task_version: str | None
        input_data: Any  # BIOMERO passes a folder name, a list of image ids, an int or a dict
        params: dict

    @classmethod
    def create(cls, id: UUID, run_id: UUID, task_name: str, task_version: str | None,
               input_data: Any, params: dict, at: datetime | None = None):
        return cls._start_stream(cls.Created, id, at, run_id=run_id, task_name=task_name,
                                 task_version=task_version, input_data=input_data, params=params)

    def __init__(self, run_id, task_name, task_version, input_data, params):
        self.run_id = run_id
        self.task_name = task_name
        self.task_version = task_version
        self.input_data = input_data
        self.params = params
        self.lifecycle_status = TaskStatus.CREATED
        # BIOMERO's meaning: the state the scheduler last reported ("RUNNING", "TIMEOUT"), None before.
        self.status: str | None = None
        self.progress: str | int | float | None = None  # None: no percentage yet
        self.job_ids: tuple[str | int, ...] = ()  # as given: BIOMERO's Slurm job ids are ints
        self.results: tuple[Any, ...] = ()
        self.result_message: str | None = None  # the completion message, or (as BIOMERO) the error
        self.error_message: str | None = None

    @property
    def workflow_id(self) -> UUID:
        """BIOMERO's name for the task's run."""
        return self.run_id

    @property
    def external_status(self) -> str | None:
        return self.status

    class Started(Aggregate.Event):
        def apply(self, task: "Task") -> None:
            task.lifecycle_status = TaskStatus.RUNNING

    class JobIdAdded(Aggregate.Event):
        job_id: str | int

        def apply(self, task: "Task") -> None:
            task.job_ids += (self.job_id,)

    class StatusUpdated(Aggregate.Event):
        status: str

        def apply(self, task: "Task") -> None:
            task.status = self.status

    class ProgressUpdated(Aggregate.Event):
        progress: Any

        def apply(self, task: "Task") -> None:
            task.progress = self.progress

    class ResultAdded(Aggregate.Event):
        result: Any

        def apply(self, task: "Task") -> None:
            task.results += (self.result,)

    class Completed(Aggregate.Event):
        message: str | None

        def apply(self, task: "Task") -> None:
            task.lifecycle_status = TaskStatus.COMPLETED
            task.result_message = self.message

    class Failed(Aggregate.Event):
        error_message: str

        def apply(self, task: "Task") -> None:
            task.lifecycle_status = TaskStatus.FAILED
            task.error_message = self.error_message
            task.result_message = self.error_message  # as BIOMERO's TaskFailed does

    class DetailsRecorded(Aggregate.Event):
        """Where and on what a task runs: its files (`inputs`, `outputs`,
        `log_files`, `benchmark`), software (`conda_env`, `container`) and `host`.
        Lists may be empty and the others None: what the source does not tell."""

        inputs: list
        outputs: list
        log_files: list
        benchmark: str | None
        conda_env: str | None
        container: str | None
        host: str | None

    class ResourcesMeasured(Aggregate.Event):
        """What the task used, as measured (Snakemake's benchmark file): figure
        name -> number, such as wall_seconds, max_rss_mb, cpu_seconds."""

        usage: dict

    def start(self, at: datetime | None = None) -> None:
        self._trigger(self.Started, at)

    def record_details(self, at: datetime | None = None, **details: Any) -> None:
        self._trigger(self.DetailsRecorded, at, **details)

    def record_resources(self, usage: dict, at: datetime | None = None) -> None:
        self._trigger(self.ResourcesMeasured, at, usage=usage)

    def add_job_id(self, job_id: str, at: datetime | None = None) -> None:
        self._trigger(self.JobIdAdded, at, job_id=job_id)

    def update_status(self, status: str, at: datetime | None = None) -> None:
        self._trigger(self.StatusUpdated, at, status=status)

    def update_progress(self, progress: Any, at: datetime | None = None) -> None:
        self._trigger(self.ProgressUpdated, at, progress=progress)

    def add_result(self, result: Any, at: datetime | None = None) -> None:
        self._trigger(self.ResultAdded, at, result=result)

    def complete(self, message: str | None, at: datetime | None = None) -> None:
        self._trigger(self.Completed, at, message=message)

    def fail(self, error_message: str, at: datetime | None = None) -> None:
        self._trigger(self.Failed, at, error_message=error_message)


class LogLine(TrackedAggregate):
    """One log line of a run (and maybe of one of its tasks).

    Every line is its own one-event stream rather than an event on the run, so
    recording the 100,000th line of a run reads nothing and replays nothing:
    it costs what the first one did. The projector still sees every line in
    order, because all streams share the one notification log.
    """

    class Recorded(Aggregate.Created):
        run_id: UUID
        task_id: UUID | None
        level: str
        message: str

    @classmethod
    def record(cls, id: UUID, run_id: UUID, task_id: UUID | None, level: str, message: str,
               at: datetime | None = None):
        return cls._start_stream(cls.Recorded, id, at, run_id=run_id, task_id=task_id, level=level,
                                 message=message)

    def __init__(self, run_id, task_id, level, message):
        self.run_id = run_id
        self.task_id = task_id
        self.level = level
        self.message = message
