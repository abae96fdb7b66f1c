"""An index on job_accounting(task_id), a run's own progress (steps_done, steps_total), projection_rebuild.

- job_accounting(task_id): the projector loads a task's accounting rows by
  task_id, and a task deleted cascades here by it; the primary key (job_id,
  task_id) cannot serve either, so both were sequential scans.
- workflow_runs.steps_done / steps_total: the progress a run reports itself
  (WorkflowRun.ProgressReported), NULL until it does. Views are derived:
  `appliance reproject` fills them for runs recorded before.
- projection_rebuild: where a rebuild in progress notes the position up to
  which replayed events must not fire the change triggers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 16:25:37.297785
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_job_accounting_task_id'), 'job_accounting', ['task_id'], unique=False)
    op.add_column('workflow_runs', sa.Column('steps_done', sa.Integer(), nullable=True))
    op.add_column('workflow_runs', sa.Column('steps_total', sa.Integer(), nullable=True))
    op.create_table('projection_rebuild',
    sa.Column('application_name', sa.Text(), nullable=False),
    sa.Column('quiet_until', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('application_name', name=op.f('pk_projection_rebuild'))
    )


def downgrade() -> None:
    op.drop_table('projection_rebuild')
    op.drop_column('workflow_runs', 'steps_total')
    op.drop_column('workflow_runs', 'steps_done')
    op.drop_index(op.f('ix_job_accounting_task_id'), table_name='job_accounting')
