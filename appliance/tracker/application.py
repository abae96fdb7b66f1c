"""The write side: `WorkflowTracker`, an eventsourcing application.

Its single-command methods keep BIOMERO's names and argument order, so code
written for BIOMERO's tracker runs against it. Every command runs through a
`Batch`, which saves all the aggregates it touched in ONE transaction: adding a
task saves the task and its run together, and `tracker.batch()` applies many
commands at once (the ingest endpoint's entry point).

Concurrency is optimistic: aggregates come from an in-process cache without a
read per command, and a stale one shows up as a version conflict when the
batch is saved. The batch is then replayed on fresh state, a bounded number of
times after short random pauses, with the same new ids, so a retried batch
records the same thing; the last replay holds the store's write lock.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable, Iterator, NoReturn, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
import psycopg2
import sqlalchemy.exc
from eventsourcing import persistence
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment
from sqlalchemy import Engine

from appliance.config import Settings, mask_url, parse_database_url
from appliance.db import error_summary, make_engine
from appliance.domain import LogLine, Task, TrackedAggregate, WorkflowRun
from appliance.eventstore import EventStoreFactory

MAX_NAME_LENGTH = 1_000
MAX_TEXT_LENGTH = 1_000_000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REPLAY_PAUSE_FIRST = 0.004  # seconds, the longest pause before the first replay after a conflict
REPLAY_PAUSE_MAX = 0.1
# Event times a source gives. PostgreSQL takes UTC offsets up to 15:59 only, Python
# up to 23:59, so times are stored in UTC; and a year outside these is a client's bug.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

# What a failed first connection raises, depending on the layer it fails in.
CONNECTION_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                     psycopg2.OperationalError, psycopg2.InterfaceError,
                     persistence.OperationalError, persistence.InterfaceError)

T = TypeVar("T")
A = TypeVar("A", bound=TrackedAggregate)


class TrackerError(Exception):
    """Base class of the errors the tracker raises on purpose."""


class UnknownIdError(TrackerError, LookupError):
    """No workflow run (or task) has the given id."""


class InvalidArgumentError(TrackerError, ValueError):
    """An argument has the wrong type or value; nothing was recorded."""


class DuplicateIdError(TrackerError):
    """A new run, task or log line was given an id that is already taken."""


class DatabaseUnavailableError(TrackerError, persistence.OperationalError, psycopg2.OperationalError):
    """The database could not be reached (or refused the login); the message holds no password.

    Also one of the library's and psycopg2's OperationalErrors, so code that
    waits and retries on those (the projector, the web's 503) treats it so.
    """


class ConcurrencyError(TrackerError):
    """Concurrent writers kept changing the same aggregates; nothing was recorded."""


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
        self, name: str, description: str, user: str | None, group: str | None, *,
        source: str | None = None, params: dict | None = None,
        workflow_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run = WorkflowRun.initiate(
            self._new_id(workflow_id, "workflow_id"),
            name=_name(name, "name"),
            description=_text(description, "description", required=False) or "",
            user=_name(user, "user", required=False),
            group=_name(group, "group", required=False),
            source=_name(source, "source", required=False),
            params=self._payload(_object(params, "params"), "params"),
            at=_time(at),
        )
        return self._add_new(run)

    @_replayable
    def add_task_to_workflow(
        self, workflow_id: UUID | str, task_name: str, task_version: str | None,
        input_data: dict | None, kwargs: dict | None, *,
        task_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run = self._get(workflow_id, WorkflowRun, "workflow_id")
        task = Task.create(
            self._new_id(task_id, "task_id"),
            run_id=run.id,
            task_name=_name(task_name, "task_name"),
            task_version=_name(task_version, "task_version", required=False),
            input_data=self._payload(_object(input_data, "input_data"), "input_data"),
            params=self._payload(_object(kwargs, "kwargs"), "kwargs"),
            at=_time(at),
        )
        run.add_task(task.id, at=_time(at))
        return self._add_new(task)

    @_replayable
    def start_workflow(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._get(workflow_id, WorkflowRun, "workflow_id").start(at=_time(at))

    @_replayable
    def complete_workflow(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._get(workflow_id, WorkflowRun, "workflow_id").complete(at=_time(at))

    @_replayable
    def fail_workflow(self, workflow_id: UUID | str, error_message: str, *, at: datetime | None = None) -> None:
        message = _text(error_message, "error_message")
        self._get(workflow_id, WorkflowRun, "workflow_id").fail(message, at=_time(at))

    @_replayable
    def cancel_workflow(self, workflow_id: UUID | str, reason: str | None = None, *,
                        at: datetime | None = None) -> None:
        reason = _text(reason, "reason", required=False)
        self._get(workflow_id, WorkflowRun, "workflow_id").cancel(reason, at=_time(at))

    @_replayable
    def update_workflow_progress(self, workflow_id: UUID | str, done: int, total: int, *,
                                 at: datetime | None = None) -> None:
        """The source has done `done` of the run's `total` steps (0 <= done <= total)."""
        done, total = _step_count(done, "done"), _step_count(total, "total")
        if done > total:
            raise InvalidArgumentError(f"done must not exceed total ({done} > {total})")
        self._get(workflow_id, WorkflowRun, "workflow_id").report_progress(done, total, at=_time(at))

    @_replayable
    def record_heartbeat(self, workflow_id: UUID | str, *, at: datetime | None = None) -> None:
        self._get(workflow_id, WorkflowRun, "workflow_id").heartbeat(at=_time(at))

    # Commands on tasks.

    @_replayable
    def start_task(self, task_id: UUID | str, *, at: datetime | None = None) -> None:
        self._get(task_id, Task, "task_id").start(at=_time(at))

    @_replayable
    def complete_task(self, task_id: UUID | str, message: str | None = None, *,
                      at: datetime | None = None) -> None:
        message = _text(message, "message", required=False)
        self._get(task_id, Task, "task_id").complete(message, at=_time(at))

    @_replayable
    def fail_task(self, task_id: UUID | str, error_message: str, *, at: datetime | None = None) -> None:
        message = _text(error_message, "error_message")
        self._get(task_id, Task, "task_id").fail(message, at=_time(at))

    @_replayable
    def add_job_id(self, task_id: UUID | str, slurm_job_id: str | int, *, at: datetime | None = None) -> None:
        if isinstance(slurm_job_id, int) and not isinstance(slurm_job_id, bool):
            slurm_job_id = str(slurm_job_id)
        job_id = _name(slurm_job_id, "slurm_job_id")
        self._get(task_id, Task, "task_id").add_job_id(job_id, at=_time(at))

    @_replayable
    def add_result(self, task_id: UUID | str, result: Any, *, at: datetime | None = None) -> None:
        self._get(task_id, Task, "task_id").add_result(self._payload(result, "result"), at=_time(at))

    @_replayable
    def update_task_status(self, task_id: UUID | str, status: str, *, at: datetime | None = None) -> None:
        self._get(task_id, Task, "task_id").update_status(_name(status, "status"), at=_time(at))

    @_replayable
    def update_task_progress(self, task_id: UUID | str, progress: str | int | float, *,
                             at: datetime | None = None) -> None:
        if isinstance(progress, bool) or not isinstance(progress, (str, int, float)):
            raise InvalidArgumentError(f"progress must be a string or a number, not {type(progress).__name__}")
        if isinstance(progress, str):
            progress = _name(progress, "progress")
        elif not math.isfinite(progress):
            raise InvalidArgumentError("progress must be a finite number")
        self._get(task_id, Task, "task_id").update_progress(progress, at=_time(at))

    # Log lines.

    @_replayable
    def record_log(
        self, workflow_id: UUID | str, message: str, *, level: str = "INFO",
        task_id: UUID | str | None = None, log_id: UUID | str | None = None, at: datetime | None = None,
    ) -> UUID:
        run_id = self._get(workflow_id, WorkflowRun, "workflow_id").id
        task = None if task_id is None else self._get(task_id, Task, "task_id")
        if task is not None and task.run_id != run_id:
            raise InvalidArgumentError(f"task {task.id} belongs to run {task.run_id}, not to run {run_id}")
        line = LogLine.record(
            self._new_id(log_id, "log_id"),
            run_id=run_id,
            task_id=None if task is None else task.id,
            level=_level(level),
            message=_text(message, "message"),
            at=_time(at),
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

    # Internals.

    def _get(self, aggregate_id: UUID | str, kind: type[A], what: str) -> A:
        key = _uuid(aggregate_id, what)
        aggregate = self._aggregates.get(key)
        if aggregate is None:
            aggregate = self._tracker._load(key, refresh=self._refresh)
            self._aggregates[key] = aggregate
        if not isinstance(aggregate, kind):
            raise UnknownIdError(f"no {_KIND_NAMES[kind]} has the id {key}")
        return aggregate

    def _new_id(self, given: UUID | str | None, what: str) -> UUID:
        if given is not None:
            return _uuid(given, what)
        new_id = next(self._reused_ids, None) or uuid4()
        self._new_ids.append(new_id)
        return new_id

    def _add_new(self, aggregate: TrackedAggregate) -> UUID:
        if aggregate.id in self._aggregates:
            raise DuplicateIdError(f"the id {aggregate.id} is used twice in one batch")
        self._aggregates[aggregate.id] = aggregate
        self._created.append(aggregate.id)
        return aggregate.id

    def _payload(self, value: Any, what: str) -> Any:
        """Check a payload now: later, in the transcoder, the error would name no argument."""
        try:
            encoded = self._tracker.mapper.transcoder.encode(value)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(f"{what} cannot be stored as JSON: {error}") from None
        if b"\\u0000" in encoded:
            raise InvalidArgumentError(f"{what} must not contain NUL characters")
        if (b"NaN" in encoded or b"Infinity" in encoded) and _has_non_finite_number(encoded):
            raise InvalidArgumentError(f"{what} must not contain NaN or Infinity (PostgreSQL's JSON has neither)")
        return value

    def _to_save(self) -> list:
        """The aggregates to save, but log lines as their events only.

        Every aggregate saved goes into the library's cache, which is capped by
        count, not size: log lines (up to 1,000,000 characters, written once,
        never read by a command) would push out the runs and tasks it is for.
        Saved as events, a log line is stored the same and not cached.
        """
        saved: list = []
        for aggregate in self._aggregates.values():
            if isinstance(aggregate, LogLine):
                saved.extend(aggregate.collect_events())
            else:
                saved.append(aggregate)
        return saved

    def _replay(self) -> "Batch":
        fresh = Batch(self._tracker, reused_ids=self._new_ids, refresh=True)
        for name, args, kwargs in self._calls:
            getattr(fresh, name)(*args, **kwargs)
        return fresh


_KIND_NAMES = {WorkflowRun: "workflow run", Task: "task", LogLine: "log line"}


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
        database_url: str | None = None, engine: Engine | None = None,
    ):
        if settings is None:
            if database_url is not None:
                settings = Settings(database_url=parse_database_url(database_url))
            else:
                settings = Settings.from_env()
        self.settings = settings
        self.conflicts_retried = 0  # version conflicts met and replayed, for metrics
        self.conflicts_given_up = 0  # batches refused with ConcurrencyError
        self._counter_lock = threading.Lock()
        self._owns_engine = engine is None  # a given engine is its owner's to dispose
        self._engine = engine or make_engine(settings.database_url, application_name="appliance-tracker")
        env = {"AGGREGATE_CACHE_FASTFORWARD": "n"}
        if settings.tracker_cache_size > 0:
            env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.tracker_cache_size)
        try:
            super().__init__(env=env)  # creates the event store's tables if missing: the first connection
        except CONNECTION_ERRORS as error:
            if self._owns_engine:
                self._engine.dispose()
            raise DatabaseUnavailableError(
                f"cannot use the database at {mask_url(settings.database_url)}: {error_summary(error)}"
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
        committed = self._commit(batch)
        batch._receipts = committed._receipts  # a replay may have skipped more events as applied before

    initiate_workflow = _one_command(Batch.initiate_workflow)
    add_task_to_workflow = _one_command(Batch.add_task_to_workflow)
    start_workflow = _one_command(Batch.start_workflow)
    complete_workflow = _one_command(Batch.complete_workflow)
    fail_workflow = _one_command(Batch.fail_workflow)
    cancel_workflow = _one_command(Batch.cancel_workflow)
    update_workflow_progress = _one_command(Batch.update_workflow_progress)
    record_heartbeat = _one_command(Batch.record_heartbeat)
    start_task = _one_command(Batch.start_task)
    complete_task = _one_command(Batch.complete_task)
    fail_task = _one_command(Batch.fail_task)
    add_job_id = _one_command(Batch.add_job_id)
    add_result = _one_command(Batch.add_result)
    update_task_status = _one_command(Batch.update_task_status)
    update_task_progress = _one_command(Batch.update_task_progress)
    record_log = _one_command(Batch.record_log)

    def get_workflow(self, workflow_id: UUID | str) -> WorkflowRun:
        return Batch(self)._get(workflow_id, WorkflowRun, "workflow_id")

    def get_task(self, task_id: UUID | str) -> Task:
        return Batch(self)._get(task_id, Task, "task_id")

    def close(self) -> None:
        super().close()
        if self._owns_engine:
            self._engine.dispose()

    def _load(self, aggregate_id: UUID, *, refresh: bool = False) -> TrackedAggregate:
        """A copy of the aggregate to change; with `refresh`, brought up to date from the store.

        The cache never holds a failed batch's changes, only saved states, so a
        stale aggregate is brought up to date by applying the events stored after
        its version: a replay on a run of 10,000 tasks reads a few events, not all.
        """
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise UnknownIdError(f"no workflow run or task has the id {aggregate_id}") from None
        if refresh and self.repository.cache is not None:
            aggregate = project_aggregate(aggregate, self.events.get(aggregate_id, gt=aggregate.version))
        return aggregate

    def _commit(self, batch: Batch) -> Batch:
        """Save the batch, replaying it on fresh state after a conflict; the batch that was saved.

        Replays are optimistic, after growing random pauses, but the last one
        (the TRACKER_MAX_RETRIES-th) holds the event store's write lock from its
        reads to its append: a writer whose cache stays fresh can otherwise win
        every race on a run, and its rivals would run out of attempts.
        """
        retries = self.settings.tracker_max_retries
        for replay in range(retries + 1):
            if replay:
                self._count("conflicts_retried")
                _pause_before_replay(replay)
                if replay == retries:
                    return self._replay_exclusively(batch)
                batch = self._replayed(batch)
            try:
                self.save(*batch._to_save(), receipts=batch._receipts)
                return batch
            except IntegrityError:
                pass  # a version (or an id) was taken meanwhile: nothing of the batch was stored
        # Only reached without retries: a replay now could only fail differently, and would not be saved.
        self._give_up()

    def _replayed(self, batch: Batch) -> Batch:
        batch = batch._replay()
        # After the replay: a resend racing its original now skips what the original
        # created; an id still created here and already stored is someone else's.
        self._refuse_taken_ids([i for i in batch._created if i not in batch._new_ids])
        return batch

    def _replay_exclusively(self, batch: Batch) -> Batch:
        try:
            with self.recorder.exclusive():
                batch = self._replayed(batch)
                self.save(*batch._to_save(), receipts=batch._receipts)
                return batch
        except IntegrityError:  # no other writer could append meanwhile: not expected
            self._give_up()

    def _give_up(self) -> NoReturn:
        self._count("conflicts_given_up")
        raise ConcurrencyError(
            f"gave up after {self.settings.tracker_max_retries + 1} attempts: concurrent "
            "writers kept changing the same runs or tasks; nothing of this batch was recorded"
        )

    def _count(self, counter: str) -> None:
        # Web workers share one tracker between threads, and += is no atomic step.
        with self._counter_lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _refuse_taken_ids(self, created_ids: list[UUID]) -> None:
        # Only ids a caller gave can be taken: a fresh uuid4 is this batch's alone.
        for aggregate_id in created_ids:
            if self.recorder.select_events(aggregate_id, limit=1):
                raise DuplicateIdError(f"the id {aggregate_id} is already taken; nothing of this batch was recorded")


def _pause_before_replay(attempt: int) -> None:
    """Sleep before replay `attempt`: 2-4 ms, then 4-8, 8-16 ... up to REPLAY_PAUSE_MAX s.

    Writers that conflicted on one run would otherwise replay in lockstep and
    conflict again, while the writer whose cache is fresh goes on committing;
    growing pauses let it finish, random ones keep the others apart.
    """
    longest = min(REPLAY_PAUSE_MAX, REPLAY_PAUSE_FIRST * 2 ** (attempt - 1))
    time.sleep(random.uniform(longest / 2, longest))


def _has_non_finite_number(encoded: bytes) -> bool:
    """True when the JSON holds a bare NaN or (-)Infinity token, not just such a string."""

    def refuse(token: str) -> None:
        raise ValueError(token)

    try:
        json.loads(encoded, parse_constant=refuse)
    except ValueError:
        return True
    return False


def _uuid(value: UUID | str, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"{what} must be a UUID, not {value!r:.80}")


def _text(value: Any, what: str, *, required: bool = True, limit: int = MAX_TEXT_LENGTH) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a string, not {type(value).__name__}")
    if required and not value.strip():
        raise InvalidArgumentError(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidArgumentError(f"{what} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{what} must not contain NUL characters")
    return value


def _object(value: Any, what: str) -> dict:
    """A payload the events declare a dict: a dict, or None for an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{what} must be a dict (a JSON object) or None, not {type(value).__name__}")
    return value


def _name(value: Any, what: str, *, required: bool = True) -> str | None:
    return _text(value, what, required=required, limit=MAX_NAME_LENGTH)


def _step_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{what} must be a whole number, not {type(value).__name__}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must not be negative, not {value}")
    return value


def _level(level: Any) -> str:
    if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
        raise InvalidArgumentError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r:.40}")
    return level.upper()


def _time(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgumentError("at must be a timezone-aware datetime")
    try:
        return as_utc(at)
    except ValueError as error:
        raise InvalidArgumentError(f"at {error}") from None


def as_utc(at: datetime) -> datetime:
    """An aware time as UTC, if it lies between EARLIEST_TIME and LATEST_TIME; else ValueError.

    Stored with its own offset, a time like +20:00 (fine for Python) would be
    refused by PostgreSQL in the projector, again at every retry.
    """
    try:
        utc = at.astimezone(timezone.utc)
    except OverflowError:  # the UTC time falls before year 1 or after year 9999
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise ValueError(f"must lie between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)")
    return utc
