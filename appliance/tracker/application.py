"""`WorkflowTracker`: the eventsourcing application, thin (load, call, save).

Its single-command methods keep BIOMERO's names and argument order, so code
written for BIOMERO's tracker runs against it. Each runs one `Batch` command
in a transaction of its own; `tracker.batch()` applies many at once. What a
command checks is the batch's (and `appliance.validation`'s); what happens on
a version conflict is `replay`'s; what the cache holds is `cache`'s.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import wraps
from typing import Any, Callable, Iterator, Mapping, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import Environment
from sqlalchemy import Engine

from appliance import db
from appliance.config import Settings, mask_url, parse_database_url
from appliance.db import make_engine
from appliance.domain import Task, WorkflowRun
from appliance.errors import DatabaseUnavailableError
from appliance.eventstore import EventStoreFactory
from appliance.tracker import cache
from appliance.tracker.batch import Batch
from appliance.tracker.replay import ReplayPolicy

T = TypeVar("T")

def _one_command(batch_method: Callable[..., T]) -> Callable[..., T]:
    """A tracker method that runs one batch command in its own transaction."""

    @wraps(batch_method)
    def command(tracker: "WorkflowTracker", *args: Any, **kwargs: Any) -> T:
        with tracker.batch() as batch:
            return batch_method(batch, *args, **kwargs)

    return command


class WorkflowTracker(Application):
    """Records workflow runs, their tasks and log lines as events."""

    # Not "WorkflowTracker", the name of BIOMERO's tracker: the name picks the events table
    # (appliance_events), and BIOMERO's followers must never meet our events in theirs.
    name = "Appliance"

    def __init__(
        self, settings: Settings | None = None, *,
        database_url: str | None = None, engine: Engine | None = None, env: Mapping[str, str] | None = None,
    ):
        """Settings given, or a database URL, or read from the environment, where `env` (as an
        eventsourcing Application takes it, e.g. from SingleThreadedRunner(system, env={...}),
        as BIOMERO's SlurmClient builds its tracker) overrides the process's variables."""
        if settings is None:
            if database_url is not None:
                settings = Settings(database_url=parse_database_url(database_url))
            else:
                settings = Settings.from_env(extra=env)
        self.settings = settings
        self.replays = ReplayPolicy(settings.tracker_max_retries)
        self._owns_engine = engine is None  # a given engine is its owner's to dispose
        self._engine = engine or make_engine(settings.database_url, application_name="appliance-tracker")
        try:
            # Creates the event store's tables if missing: the first connection.
            super().__init__(env={**(env or {}), **cache.cache_env(settings.tracker_cache_size)})
        except db.DISCONNECTED as error:
            if self._owns_engine:
                self._engine.dispose()
            raise DatabaseUnavailableError(
                f"cannot use the database at {mask_url(settings.database_url)}: {db.first_line(error)}"
            ) from None  # the driver's error says no more, and its chain would show SQLAlchemy's internals

    def construct_env(self, name: str, env: dict | None = None) -> Environment:
        # The library would merge os.environ in; configuration comes from Settings only.
        return Environment(name, {**type(self).env, **(env or {})})

    def construct_factory(self, env: Environment) -> EventStoreFactory:
        return EventStoreFactory(env, self._engine)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Commands applied together: saved in one transaction when the block ends.

        If the block raises, nothing is saved.
        """
        batch = Batch(self)
        yield batch
        committed = self.replays.commit(self, batch)
        batch._receipts = committed._receipts  # a replay may have skipped more events as applied before

    def save_batch(self, batch: Batch) -> None:
        """Save what the batch changed, with its receipts, in one transaction."""
        self.save(*batch.to_save(), receipts=batch.receipts)

    initiate_workflow = _one_command(Batch.initiate_workflow)
    add_task_to_workflow = _one_command(Batch.add_task_to_workflow)
    start_workflow = _one_command(Batch.start_workflow)
    complete_workflow = _one_command(Batch.complete_workflow)
    fail_workflow = _one_command(Batch.fail_workflow)
    cancel_workflow = _one_command(Batch.cancel_workflow)
    update_workflow_progress = _one_command(Batch.update_workflow_progress)
    record_heartbeat = _one_command(Batch.record_heartbeat)
    plan_workflow = _one_command(Batch.plan_workflow)
    record_rule_graph = _one_command(Batch.record_rule_graph)
    record_task_details = _one_command(Batch.record_task_details)
    record_task_resources = _one_command(Batch.record_task_resources)
    start_task = _one_command(Batch.start_task)
    complete_task = _one_command(Batch.complete_task)
    fail_task = _one_command(Batch.fail_task)
    add_job_id = _one_command(Batch.add_job_id)
    add_result = _one_command(Batch.add_result)
    update_task_status = _one_command(Batch.update_task_status)
    update_task_progress = _one_command(Batch.update_task_progress)
    record_log = _one_command(Batch.record_log)

    def get_workflow(self, workflow_id: UUID | str) -> WorkflowRun:
        return Batch(self).get(workflow_id, WorkflowRun, "workflow_id")

    def get_task(self, task_id: UUID | str) -> Task:
        return Batch(self).get(task_id, Task, "task_id")

    @property
    def conflicts_retried(self) -> int:
        """Version conflicts met and replayed (for metrics)."""
        return self.replays.conflicts_retried

    @property
    def conflicts_given_up(self) -> int:
        """Batches refused with ConcurrencyError (for metrics)."""
        return self.replays.conflicts_given_up

    def close(self) -> None:
        super().close()
        if self._owns_engine:
            self._engine.dispose()
