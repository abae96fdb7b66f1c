"""An index on job_accounting(created_at, task_id, job_id): the jobs page at any depth.

The jobs page lists every job newest first and pages through them with a
cursor, a (created_at, task_id, job_id) key: with this index a page at any
depth reads only its own rows, and so does the first page without a filter
(before, a sort of the whole table: about half a second at a million jobs).
Building it reads the table once, under a lock that holds writes to it back
(about 2 s at a million rows).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:55:00
"""

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_job_accounting_created_at_task_id_job_id'), 'job_accounting',
                    ['created_at', 'task_id', 'job_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_accounting_created_at_task_id_job_id'), table_name='job_accounting')
