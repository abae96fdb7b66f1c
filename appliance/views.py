"""The appliance's own tables: plain SQLAlchemy models, every one under Alembic.

The projector derives every row of the views from the event store. The
others: `change_notifications`, which the init-db triggers fill,
`projection_rebuild`, the projector's own note of a rebuild in progress,
`monitor_heartbeats` and `ingest_receipts`.
Column names are
what users see in psql and the API: keep them stable, and change them only
through a migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from appliance.vocabulary import RUN_STATUSES, TASK_STATUSES, RunStatus, TaskStatus

OPERATIONS = ("INSERT", "UPDATE", "DELETE")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _now() -> Any:
    return text("now()")


def _duration() -> Computed:
    return Computed("EXTRACT(EPOCH FROM finished_at - started_at)", persisted=True)


class WorkflowRunView(Base):
    """One row per workflow run."""

    __tablename__ = "workflow_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=text("gen_random_uuid()"))
    workflow_name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    user_name: Mapped[str | None] = mapped_column(Text)
    group_name: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(Text, server_default=RunStatus.CREATED)
    tasks_total: Mapped[int] = mapped_column(Integer, server_default="0")
    tasks_created: Mapped[int] = mapped_column(Integer, server_default="0")
    tasks_running: Mapped[int] = mapped_column(Integer, server_default="0")
    tasks_completed: Mapped[int] = mapped_column(Integer, server_default="0")
    tasks_failed: Mapped[int] = mapped_column(Integer, server_default="0")
    progress_percent: Mapped[float] = mapped_column(Double, server_default="0")
    # The run's own progress report (WorkflowRun.ProgressReported), NULL until
    # one comes; with steps_total > 0 it sets progress_percent, which otherwise
    # counts finished tasks.
    steps_done: Mapped[int | None] = mapped_column(Integer)
    steps_total: Mapped[int | None] = mapped_column(Integer)
    current_task: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    # What the source planned (WorkflowRun.Planned): {"rule": jobs, ...}, NULL until told.
    planned_jobs: Mapped[dict | None] = mapped_column(JSONB)
    # The graph of rules (WorkflowRun.RuleGraphRecorded): {"rules": [...], "edges": [[source, target], ...]}.
    rule_graph: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Double, _duration())
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        CheckConstraint("progress_percent BETWEEN 0 AND 100", name="progress_percent"),
        # The dashboard: newest first, keyset-paginated on (created_at, id).
        Index(None, "created_at", "id"),
        Index(None, "status", "created_at"),
        Index(None, "user_name", "created_at"),
        Index(None, "group_name", "created_at"),
    )


class JobExecutionView(Base):
    """One row per task of a run (a Snakemake job, a BIOMERO step)."""

    __tablename__ = "job_executions"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    task_name: Mapped[str] = mapped_column(Text)
    task_version: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=TaskStatus.CREATED)
    external_status: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[str | None] = mapped_column(Text)
    input_data: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    params: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    results: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    job_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # Each attempt's start, end, status and error (its last 4,000 characters), the
    # latest ATTEMPTS_KEPT attempts: the run page shows a retried task's history.
    attempt_history: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    result_message: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(Text)
    # Task.DetailsRecorded: files, software and host, as the source told them.
    inputs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    outputs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    log_files: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    benchmark_file: Mapped[str | None] = mapped_column(Text)
    conda_env: Mapped[str | None] = mapped_column(Text)
    container_image: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)
    # Task.ResourcesMeasured: {"wall_seconds": ..., "max_rss_mb": ...}, NULL until measured.
    resource_usage: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Double, _duration())

    __table_args__ = (
        CheckConstraint(_in("status", TASK_STATUSES), name="status"),
        # A run page lists its tasks in the order they were created.
        Index(None, "run_id", "created_at"),
        Index(None, "status"),
    )


class LogEntryView(Base):
    """One row per log line. The id is the line's position in the event log,
    so it grows with time and is the same after a reprojection."""

    __tablename__ = "log_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    run_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    level: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    logged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        # "The latest N lines of a run" and "lines of a run after id X".
        Index(None, "run_id", "id"),
    )


class JobAccountingView(Base):
    """One row per external (Slurm, cluster) job id and task: a recycled job id
    gets a new row instead of overwriting the older task's."""

    __tablename__ = "job_accounting"

    job_id: Mapped[str] = mapped_column(Text, primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("job_executions.id", ondelete="CASCADE"),
                                               primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    user_name: Mapped[str | None] = mapped_column(Text)
    group_name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        Index(None, "user_name", "group_name", "created_at"),
        Index(None, "run_id"),
        # The projector loads a task's rows by task_id, and deleting tasks
        # cascades here by it: the primary key (job_id, task_id) cannot serve.
        Index(None, "task_id"),
        # BIOMERO's job tables want the newest task of a job id; -1 (every job
        # sbatch refused) can have thousands: walked newest first, it stops at one.
        Index(None, "job_id", "created_at", "task_id"),
        Index("ix_job_accounting_reported_job_id_created_at_task_id", "job_id", "created_at", "task_id",
              postgresql_where=text("status IS NOT NULL OR progress IS NOT NULL OR updated_at > created_at")),
        # The jobs page, newest first at any depth: its cursor is this key; and of one
        # group (a group with few jobs would otherwise walk past every other group's).
        Index(None, "created_at", "task_id", "job_id"),
        Index(None, "group_name", "created_at", "task_id", "job_id"),
    )


class ChangeNotification(Base):
    """One row per INSERT, UPDATE or DELETE on a view table, written by the
    init-db trigger function notify_change()."""

    __tablename__ = "change_notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
    row_key: Mapped[dict] = mapped_column(JSONB)
    changed_fields: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    old_values: Mapped[dict | None] = mapped_column(JSONB)
    new_values: Mapped[dict | None] = mapped_column(JSONB)
    transaction_id: Mapped[int] = mapped_column(BigInteger, server_default=text("txid_current()"))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    processed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(_in("operation", OPERATIONS), name="operation"),
        # The monitor claims "unprocessed, oldest first"; the index stays small.
        Index("ix_change_notifications_unprocessed", "id", postgresql_where=text("NOT processed")),
        # Health counts the changes the monitor gave up on at every look: few, found at once.
        Index("ix_change_notifications_given_up", "id", postgresql_where=text("processed AND last_error IS NOT NULL")),
        Index(None, "timestamp"),
    )


class ProjectionRebuild(Base):
    """A rebuild (`appliance reproject`) in progress: until the projector's
    position reaches `quiet_until`, it replays old events, and does so with
    the change triggers silenced, whoever finishes the replay."""

    __tablename__ = "projection_rebuild"

    application_name: Mapped[str] = mapped_column(Text, primary_key=True)  # the log followed
    quiet_until: Mapped[int] = mapped_column(BigInteger)  # the newest event when the rebuild started
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ProjectionSkippedTopic(Base):
    """Events the projector skipped because no mapping knows their topic (another
    application writing to a log it follows), counted per log and topic."""

    __tablename__ = "projection_skipped_topics"

    application_name: Mapped[str] = mapped_column(Text, primary_key=True)  # the log followed
    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    first_notification_id: Mapped[int] = mapped_column(BigInteger)
    last_notification_id: Mapped[int] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ProjectionQuarantine(Base):
    """An event the projector could not apply (not because the database was
    away): recorded with its error and skipped, so the events behind it go
    on. `appliance quarantine` lists, retries and discards them."""

    __tablename__ = "projection_quarantine"

    application_name: Mapped[str] = mapped_column(Text, primary_key=True)  # the log followed
    notification_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the event's position in it
    originator_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))  # the run or task
    originator_version: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    retries: Mapped[int] = mapped_column(Integer, server_default="0")


class ProjectorProgress(Base):
    """When the projector last moved (or found nothing to do) and how often in a
    row it has failed since: what health reads to call a projector stuck."""

    __tablename__ = "projector_progress"

    application_name: Mapped[str] = mapped_column(Text, primary_key=True)  # the log followed
    progressed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    failures: Mapped[int] = mapped_column(Integer, server_default="0")  # in a row, at one position
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MonitorHeartbeat(Base):
    """Not a view: each running monitor upserts its row every poll, so the status
    pages can show when it was last seen and its backlog."""

    __tablename__ = "monitor_heartbeats"

    monitor_id: Mapped[str] = mapped_column(Text, primary_key=True)
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    backlog: Mapped[int] = mapped_column(BigInteger, server_default="0")
    handled: Mapped[int] = mapped_column(BigInteger, server_default="0")


class IngestReceipt(Base):
    """Not a view: the ids of client events already applied (the ingest endpoint's
    idempotency), written by the event store in the transaction of their events."""

    __tablename__ = "ingest_receipts"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# Tables that earlier versions made outside Alembic (revision 0006 adopts them, and
# its downgrade keeps them): finding them without the version table says nothing.
ADOPTED_TABLES = ("monitor_heartbeats", "ingest_receipts")
VIEW_TABLES = ("workflow_runs", "job_executions", "log_entries", "job_accounting")
