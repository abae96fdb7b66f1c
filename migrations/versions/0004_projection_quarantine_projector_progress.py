"""projection_quarantine, projector_progress and an index of the monitor's given-up changes.

- projection_quarantine: events the projector could not apply, set aside with their error.
- projector_progress: when the projector last moved and its failures in a row, for health.
- ix_change_notifications_given_up: health counts the changes the monitor gave up on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projection_quarantine',
    sa.Column('application_name', sa.Text(), nullable=False),
    sa.Column('notification_id', sa.BigInteger(), nullable=False),
    sa.Column('originator_id', postgresql.UUID(as_uuid=True), nullable=False),
    sa.Column('originator_version', sa.BigInteger(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('quarantined_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('retries', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('application_name', 'notification_id', name=op.f('pk_projection_quarantine'))
    )
    op.create_table('projector_progress',
    sa.Column('application_name', sa.Text(), nullable=False),
    sa.Column('progressed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('application_name', name=op.f('pk_projector_progress'))
    )
    op.create_index('ix_change_notifications_given_up', 'change_notifications', ['id'], unique=False,
                    postgresql_where=sa.text('processed AND last_error IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_change_notifications_given_up', table_name='change_notifications',
                  postgresql_where=sa.text('processed AND last_error IS NOT NULL'))
    op.drop_table('projector_progress')
    op.drop_table('projection_quarantine')
