"""BIOMERO 2.8's four view tables, as `biomero.database` declares them (APPLIANCE_BIOMERO_VIEWS).

Copied column for column from BIOMERO 2.8.3's models (JobView, JobProgressView,
WorkflowProgressView, TaskExecution), on a MetaData of their own without the
appliance's naming convention, so that a table made here is the table
BIOMERO's `create_all` makes (an integer primary key is SERIAL, as there), and
SQL written against BIOMERO's tables runs unchanged. The migrator compares a
table it finds with these before it adopts it (appliance.biomero_schema);
their revisions are in migrations/biomero_views/. The projector fills them
(appliance.projection.biomero_views).

`appliance_biomero_views_position` is the appliance's own: how far in each log
the four tables were last brought, so that turning the setting on after a
time off rebuilds them rather than leave a gap.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import UUID

METADATA = MetaData()

JOB_VIEW = Table(
    "biomero_job_view", METADATA,
    Column("slurm_job_id", Integer, primary_key=True),
    Column("user", Integer, nullable=False),
    Column("group", Integer, nullable=False),
    Column("task_id", UUID(as_uuid=True)),
)

JOB_PROGRESS_VIEW = Table(
    "biomero_job_progress_view", METADATA,
    Column("slurm_job_id", Integer, primary_key=True),
    Column("status", String, nullable=False),
    Column("progress", String, nullable=True),
)

WORKFLOW_PROGRESS_VIEW = Table(
    "biomero_workflow_progress_view", METADATA,
    Column("workflow_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String, nullable=True),
    Column("progress", String, nullable=True),
    Column("user", Integer, nullable=True),
    Column("group", Integer, nullable=True),
    Column("name", String, nullable=True),
    Column("task", String, nullable=True),
    Column("main_task_name", String, nullable=True),
    Column("start_time", DateTime, nullable=False),
)

TASK_EXECUTION = Table(
    "biomero_task_execution", METADATA,
    Column("task_id", UUID(as_uuid=True), primary_key=True),
    Column("task_name", String, nullable=False),
    Column("task_version", String),
    Column("user_id", Integer, nullable=True),
    Column("group_id", Integer, nullable=True),
    Column("status", String, nullable=False),
    Column("start_time", DateTime, nullable=False),
    Column("end_time", DateTime, nullable=True),
    Column("error_type", String, nullable=True),
)

BIOMERO_TABLES = (JOB_VIEW, JOB_PROGRESS_VIEW, WORKFLOW_PROGRESS_VIEW, TASK_EXECUTION)
BIOMERO_TABLE_NAMES = tuple(table.name for table in BIOMERO_TABLES)

POSITION = Table(
    "appliance_biomero_views_position", MetaData(),
    Column("application_name", Text, primary_key=True),  # the log, as in projector_tracking
    Column("notification_id", BigInteger, nullable=False),
)
