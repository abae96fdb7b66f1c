"""job_executions.attempt_history: each attempt's times, status and error.

A retried task showed only its first start, its last end and its last error;
the run page now shows every attempt (the latest 20). Views are derived:
`appliance reproject` fills the history of tasks recorded before; until then
it is empty and the page shows a task's one span.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:30:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('job_executions', sa.Column('attempt_history', postgresql.JSONB(astext_type=sa.Text()),
                                              server_default=sa.text("'[]'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column('job_executions', 'attempt_history')
