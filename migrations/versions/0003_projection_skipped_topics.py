"""projection_skipped_topics: events of topics no mapping knows, skipped and counted per log.

The projector follows the appliance's log and BIOMERO's; an event of another
application in either (a topic it cannot resolve) is skipped, never a reason
to stop, and counted here for `appliance status`, /system and /metrics.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projection_skipped_topics',
    sa.Column('application_name', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('first_notification_id', sa.BigInteger(), nullable=False),
    sa.Column('last_notification_id', sa.BigInteger(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('application_name', 'topic', name=op.f('pk_projection_skipped_topics'))
    )


def downgrade() -> None:
    op.drop_table('projection_skipped_topics')
