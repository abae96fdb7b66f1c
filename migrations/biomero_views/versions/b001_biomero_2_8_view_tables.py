"""BIOMERO 2.8's four view tables, made unless BIOMERO made them, and the appliance's position for them.

Each table is BIOMERO 2.8.3's (biomero.database: JobView, JobProgressView,
WorkflowProgressView, TaskExecution), as its `create_all` makes it. A table
that exists already (BIOMERO made it) is kept as it is, with its rows: the
migrator checked its columns and said it adopts it (appliance.biomero_schema).

Revision ID: b001
Revises:
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = 'b001'
down_revision = None
branch_labels = None
depends_on = None

_biomero = sa.MetaData()  # no naming convention: BIOMERO's tables have PostgreSQL's own names
TABLES = (
    sa.Table('biomero_job_view', _biomero,
             sa.Column('slurm_job_id', sa.Integer(), primary_key=True),
             sa.Column('user', sa.Integer(), nullable=False),
             sa.Column('group', sa.Integer(), nullable=False),
             sa.Column('task_id', UUID(as_uuid=True))),
    sa.Table('biomero_job_progress_view', _biomero,
             sa.Column('slurm_job_id', sa.Integer(), primary_key=True),
             sa.Column('status', sa.String(), nullable=False),
             sa.Column('progress', sa.String(), nullable=True)),
    sa.Table('biomero_workflow_progress_view', _biomero,
             sa.Column('workflow_id', UUID(as_uuid=True), primary_key=True),
             sa.Column('status', sa.String(), nullable=True),
             sa.Column('progress', sa.String(), nullable=True),
             sa.Column('user', sa.Integer(), nullable=True),
             sa.Column('group', sa.Integer(), nullable=True),
             sa.Column('name', sa.String(), nullable=True),
             sa.Column('task', sa.String(), nullable=True),
             sa.Column('main_task_name', sa.String(), nullable=True),
             sa.Column('start_time', sa.DateTime(), nullable=False)),
    sa.Table('biomero_task_execution', _biomero,
             sa.Column('task_id', UUID(as_uuid=True), primary_key=True),
             sa.Column('task_name', sa.String(), nullable=False),
             sa.Column('task_version', sa.String()),
             sa.Column('user_id', sa.Integer(), nullable=True),
             sa.Column('group_id', sa.Integer(), nullable=True),
             sa.Column('status', sa.String(), nullable=False),
             sa.Column('start_time', sa.DateTime(), nullable=False),
             sa.Column('end_time', sa.DateTime(), nullable=True),
             sa.Column('error_type', sa.String(), nullable=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind, checkfirst=True)  # BIOMERO's own, if there, is adopted as it is
    op.create_table('appliance_biomero_views_position',
                    sa.Column('application_name', sa.Text(), primary_key=True),
                    sa.Column('notification_id', sa.BigInteger(), nullable=False))


def downgrade() -> None:
    # BIOMERO's four tables stay, rows and all: BIOMERO may have made them, and
    # its views (turned on again) or a facility's SQL may read them.
    op.drop_table('appliance_biomero_views_position')
