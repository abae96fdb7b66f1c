"""Indexes on job_accounting(job_id, created_at, task_id): the newest task of a job id, and the newest reported.

BIOMERO's job tables (APPLIANCE_BIOMERO_VIEWS) follow the newest task a Slurm
job id was given to, and the newest with a status or progress report
(biomero_views.sql's load_jobs). BIOMERO gives -1 to every job sbatch
refused, so one id can have thousands of tasks; with only the primary key
(job_id, task_id), every batch touching it read them all (bench/biomero_job_ids.py).
The second index holds reported rows only: unreported ones are most of -1's.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


REPORTED = sa.text('status IS NOT NULL OR progress IS NOT NULL OR updated_at > created_at')


def upgrade() -> None:
    op.create_index(op.f('ix_job_accounting_job_id_created_at_task_id'), 'job_accounting',
                    ['job_id', 'created_at', 'task_id'], unique=False)
    op.create_index(op.f('ix_job_accounting_reported_job_id_created_at_task_id'), 'job_accounting',
                    ['job_id', 'created_at', 'task_id'], unique=False, postgresql_where=REPORTED)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_accounting_reported_job_id_created_at_task_id'), table_name='job_accounting')
    op.drop_index(op.f('ix_job_accounting_job_id_created_at_task_id'), table_name='job_accounting')
