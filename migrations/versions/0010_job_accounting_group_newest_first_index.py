"""An index on job_accounting(group_name, created_at, task_id, job_id): the jobs page of one group.

The jobs page of a group (group=) walked the newest-first index (0009) past
every other group's jobs: a group with three jobs, the oldest, took 113 ms
(p50) at a million jobs (python -m bench.web_latency --only jobs). With this
index a group's page reads only its own rows, at any depth. A user's page has
ix_job_accounting_user_name_group_name_created_at already.

Revision ID: 0010
Revises: 0009
"""

from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_job_accounting_group_name_created_at_task_id_job_id'), 'job_accounting',
                    ['group_name', 'created_at', 'task_id', 'job_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_accounting_group_name_created_at_task_id_job_id'), table_name='job_accounting')
