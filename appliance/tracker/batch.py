"""A batch: tracker commands recorded together, saved in one transaction or not at all.

The commands keep BIOMERO's names and argument order. Each checks its
arguments with `appliance.validation` before it touches an aggregate, so a
refused command records nothing and names the argument. Every outermost call
is remembered, so the batch can be replayed on fresh state after a version
conflict (`appliance.tracker.replay`).
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from uuid import UUID, uuid4

from appliance import validation as valid
from appliance.domain import LogLine, Task, TrackedAggregate, WorkflowRun
from appliance.errors import DuplicateIdError, InvalidArgumentError, UnknownIdError
from appliance.tracker import cache

if TYPE_CHECKING:
    from appliance.tracker.application import WorkflowTracker

T = TypeVar("T")
A = TypeVar("A", bound=TrackedAggregate)

_KIND_NAMES = {WorkflowRun: "workflow run", Task: "task", LogLine: "log line"}


def _replayable(method: Callable[..., T]) -> Callable[..., T]:
    """Remember a batch command's call so the batch can be replayed after a conflict.

    Only outermost calls are remembered: commands issued by another command
    (as `apply_once` does) are issued again when that one is replayed.
    """

    @wraps(method)
    def recorded(batch: "Batch", *args: Any, **kwargs: Any) -> T:
        if batch._depth == 0:
            batch._calls.append((method.__name__, args, kwargs))
        batch._depth += 1
        try:
            return method(batch, *args, **kwargs)
        finally:
            batch._depth -= 1

    return recorded


class Batch:
    """Commands recorded together: all saved in one transaction, or none."""

    def __init__(self, tracker: "WorkflowTracker", reused_ids: list[UUID] = (), *, refresh: bool = False):
        self._tracker = tracker
        self._refresh = refresh  # a replay: cached aggregates may be stale, read what came after them
        self._aggregates: dict[UUID, TrackedAggregate] = {}
        self._created: list[UUID] = []
        self._calls: list[tuple[str, tuple, dict]] = []
        self._depth = 0
        self._new_ids: list[UUID] = []
        self._reused_ids = iter(reused_ids)
        self._receipts: list[UUID] = []

    # Commands on runs (BIOMERO's names and argument order).

    @_replayable
    def initiate_workflow(
        self, name: str, description: str | int, user: str | int | None, group: str | int | None, *,
        source: str | None = None, params: dict | None = None,
        workflow_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run = WorkflowRun.initiate(
            self._new_id(workflow_id, "workflow_id"),
            name=valid.name(name, "name"),
            description="" if description is None else valid.text_or_whole(description, "description"),
            user=valid.optional(valid.name_or_whole)(user, "user"),
            group=valid.optional(valid.name_or_whole)(group, "group"),
            source=valid.optional(valid.name)(source, "source"),
            params=valid.json_object(params, "params"),
            at=valid.optional_time(at),
        )
        return self._add_new(run)

    @_replayable
    def add_task_to_workflow(
        self, workflow_id: UUID | str, task_name: str, task_version: str | None,
        input_data: Any, kwargs: dict | None, *,
        task_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run = self._run(workflow_id)
        at = valid.optional_time(at)
        task = Task.create(
            self._new_id(task_id, "task_id"),
            run_id=run.id,
            task_name=valid.name(task_name, "task_name"),
            task_version=valid.optional(valid.name)(task_version, "task_version"),
            # BIOMERO passes a folder name, a list of image ids, an int or a dict; None is {}.
            input_data={} if input_data is None else valid.json_value(input_data, "input_data"),
            params=valid.json_object(kwargs, "kwargs"),
            at=at,
        )
        run.add_task(task.id, at=at)
        return self._add_new(task)

    @_replayable
    def start_workflow(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._run(workflow_id).start(at=valid.optional_time(at))

    @_replayable
    def complete_workflow(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._run(workflow_id).complete(at=valid.optional_time(at))

    @_replayable
    def fail_workflow(self, workflow_id: UUID | str, error_message: str, *, at: datetime | None = None) -> None:
        message = valid.any_text(error_message, "error_message")  # BIOMERO's str(e) may be empty: kept so
        self._run(workflow_id).fail(message, at=valid.optional_time(at))

    @_replayable
    def cancel_workflow(self, workflow_id: UUID | str, reason: str | None = None, *,
                        at: datetime | None = None) -> None:
        reason = valid.optional(valid.any_text)(reason, "reason")
        self._run(workflow_id).cancel(reason, at=valid.optional_time(at))

    @_replayable
    def update_workflow_progress(self, workflow_id: UUID | str, done: int, total: int, *,
                                 at: datetime | None = None) -> None:
        """The source has done `done` of the run's `total` steps (0 <= done <= total < 2^31)."""
        done, total = valid.count(done, "done"), valid.count(total, "total")
        if done > total:
            raise InvalidArgumentError(f"done: must not exceed total ({done} > {total})")
        self._run(workflow_id).report_progress(done, total, at=valid.optional_time(at))

    @_replayable
    def record_heartbeat(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._run(workflow_id).heartbeat(at=valid.optional_time(at))

    @_replayable
    def plan_workflow(self, workflow_id: UUID | str, jobs: dict, total: int, *,
                      at: datetime | None = None) -> None:
        """The run plans `jobs[rule]` jobs of each rule, `total` in all (Snakemake's job stats)."""
        planned, total = valid.counts(jobs, "jobs"), valid.count(total, "total")
        self._run(workflow_id).plan(planned, total, at=valid.optional_time(at))

    @_replayable
    def record_rule_graph(self, workflow_id: UUID | str, rules: list, edges: list, *,
                          at: datetime | None = None) -> None:
        """The run's rules and its edges, [source rule, target rule] pairs of those rules."""
        names, pairs = valid.listed(valid.name)(rules, "rules"), valid.edges(edges, "edges")
        valid.edges_within(names, pairs)
        self._run(workflow_id).record_rule_graph(names, pairs, at=valid.optional_time(at))

    # Commands on tasks.

    @_replayable
    def record_task_details(
        self, task_id: UUID | str, *, inputs: list | None = None, outputs: list | None = None,
        log_files: list | None = None, benchmark: str | None = None, conda_env: str | None = None,
        container: str | None = None, host: str | None = None, at: datetime | None = None,
    ) -> None:
        """Where and on what a task runs: its files, conda environment, container and host."""
        details = {what: valid.listed(valid.path)(files, what)
                   for what, files in (("inputs", inputs), ("outputs", outputs), ("log_files", log_files))}
        details["benchmark"] = valid.optional(valid.path)(benchmark, "benchmark")
        details |= {what: valid.optional(valid.name)(value, what)
                    for what, value in (("conda_env", conda_env), ("container", container), ("host", host))}
        self._task(task_id).record_details(at=valid.optional_time(at), **details)

    @_replayable
    def record_task_resources(self, task_id: UUID | str, usage: dict, *, at: datetime | None = None) -> None:
        """What a task used, measured: figure name -> a finite number (None when not measured)."""
        figures = valid.measurements(usage, "usage")
        self._task(task_id).record_resources(figures, at=valid.optional_time(at))

    @_replayable
    def start_task(self, task_id: UUID | str, *, at: datetime | None = None) -> None:
        self._task(task_id).start(at=valid.optional_time(at))

    @_replayable
    def complete_task(self, task_id: UUID | str, message: str | None = None, *,
                      at: datetime | None = None) -> None:
        message = valid.optional(valid.any_text)(message, "message")
        self._task(task_id).complete(message, at=valid.optional_time(at))

    @_replayable
    def fail_task(self, task_id: UUID | str, error_message: str, *, at: datetime | None = None) -> None:
        message = valid.any_text(error_message, "error_message")
        self._task(task_id).fail(message, at=valid.optional_time(at))

    @_replayable
    def add_job_id(self, task_id: UUID | str, slurm_job_id: str | int, *, at: datetime | None = None) -> None:
        job_id = valid.job_id(slurm_job_id, "slurm_job_id")
        self._task(task_id).add_job_id(job_id, at=valid.optional_time(at))

    @_replayable
    def add_result(self, task_id: UUID | str, result: Any, *, at: datetime | None = None) -> None:
        result = valid.command_result(result, "result")  # a fabric Result as BIOMERO's ResultDict
        self._task(task_id).add_result(result, at=valid.optional_time(at))

    @_replayable
    def update_task_status(self, task_id: UUID | str, status: str, *, at: datetime | None = None) -> None:
        status = valid.name(status, "status")
        self._task(task_id).update_status(status, at=valid.optional_time(at))

    @_replayable
    def update_task_progress(self, task_id: UUID | str, progress: str | int | float | None, *,
                             at: datetime | None = None) -> None:
        """None: no percentage yet (BIOMERO sends it while the Slurm log has none)."""
        progress = valid.optional(valid.progress)(progress, "progress")
        self._task(task_id).update_progress(progress, at=valid.optional_time(at))

    # Log lines.

    @_replayable
    def record_log(
        self, workflow_id: UUID | str, message: str, *, level: str = "INFO",
        task_id: UUID | str | None = None, log_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run_id = self._run(workflow_id).id
        task = None if task_id is None else self._task(task_id)
        if task is not None and task.run_id != run_id:
            raise InvalidArgumentError(f"task_id: task {task.id} belongs to run {task.run_id}, not to run {run_id}")
        line = LogLine.record(
            self._new_id(log_id, "log_id"),
            run_id=run_id,
            task_id=None if task is None else task.id,
            level=valid.level(level),
            message=valid.text(message, "message"),
            at=valid.optional_time(at),
        )
        return self._add_new(line)

    # Idempotency for sources that resend.

    @_replayable
    def apply_once(self, commands: list[tuple[UUID, Callable[["Batch"], Any]]]) -> set[UUID]:
        """Run each `command(batch)` whose client event id was not applied before.

        Returns the ids skipped as already applied. The ids of the commands run
        are stored with the batch's events in one transaction, so a resend that
        races the original conflicts, and the replayed batch then skips them.
        """
        received = self._tracker.recorder.select_receipts([event_id for event_id, _ in commands])
        for event_id, command in commands:
            if event_id not in received:
                command(self)
                self._receipts.append(event_id)
        return received

    @_replayable
    def run(self, function: Callable[["Batch"], T]) -> T:
        """`function(batch)`, replayed whole after a conflict (the commands it issues, and its checks)."""
        return function(self)

    @property
    def receipts(self) -> tuple[UUID, ...]:
        """The client event ids applied by this batch (once it is saved: those its saved version applied)."""
        return tuple(self._receipts)

    # For the tracker and its replay policy.

    def get(self, aggregate_id: UUID | str, kind: type[A], what: str) -> A:
        """The run or task of this id, as this batch has changed it; UnknownIdError if none."""
        key = valid.uuid(aggregate_id, what)
        aggregate = self._aggregates.get(key)
        if aggregate is None:
            aggregate = cache.load(self._tracker, key, refresh=self._refresh)
            self._aggregates[key] = aggregate
        if not isinstance(aggregate, kind):
            raise UnknownIdError(f"no {_KIND_NAMES[kind]} has the id {key}")
        return aggregate

    def to_save(self) -> list:
        return cache.to_save(self._aggregates.values())

    def replay(self) -> "Batch":
        """This batch's calls again, on fresh state, with the same new ids."""
        fresh = Batch(self._tracker, reused_ids=self._new_ids, refresh=True)
        for name, args, kwargs in self._calls:
            getattr(fresh, name)(*args, **kwargs)
        return fresh

    def caller_given_ids(self) -> list[UUID]:
        """The ids of the runs, tasks and lines this batch created under ids its caller gave."""
        return [i for i in self._created if i not in self._new_ids]

    # Internals.

    def _run(self, workflow_id: UUID | str) -> WorkflowRun:
        return self.get(workflow_id, WorkflowRun, "workflow_id")

    def _task(self, task_id: UUID | str) -> Task:
        return self.get(task_id, Task, "task_id")

    def _new_id(self, given: UUID | str | None, what: str) -> UUID:
        if given is not None:
            return valid.uuid(given, what)
        new_id = next(self._reused_ids, None) or uuid4()
        self._new_ids.append(new_id)
        return new_id

    def _add_new(self, aggregate: TrackedAggregate) -> UUID:
        if aggregate.id in self._aggregates:
            raise DuplicateIdError(f"the id {aggregate.id} is used twice in one batch")
        self._aggregates[aggregate.id] = aggregate
        self._created.append(aggregate.id)
        return aggregate.id
