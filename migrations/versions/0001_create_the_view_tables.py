"""Create the view tables: workflow_runs, job_executions, log_entries, job_accounting, change_notifications.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 23:25:23.281355
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_notifications',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('operation', sa.Text(), nullable=False),
    sa.Column('row_key', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('changed_fields', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('old_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('new_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), server_default=sa.text('txid_current()'), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("operation IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f('ck_change_notifications_operation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_notifications'))
    )
    op.create_index(op.f('ix_change_notifications_timestamp'), 'change_notifications', ['timestamp'], unique=False)
    op.create_index('ix_change_notifications_unprocessed', 'change_notifications', ['id'], unique=False, postgresql_where=sa.text('NOT processed'))
    op.create_table('workflow_runs',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('workflow_name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('user_name', sa.Text(), nullable=True),
    sa.Column('group_name', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('status', sa.Text(), server_default='created', nullable=False),
    sa.Column('tasks_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tasks_created', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tasks_running', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tasks_completed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tasks_failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('progress_percent', sa.Double(), server_default='0', nullable=False),
    sa.Column('current_task', sa.Text(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Double(), sa.Computed('EXTRACT(EPOCH FROM finished_at - started_at)', persisted=True), nullable=True),
    sa.Column('last_event_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('created', 'running', 'completed', 'failed', 'cancelled', 'stale')", name=op.f('ck_workflow_runs_status')),
    sa.CheckConstraint('progress_percent BETWEEN 0 AND 100', name=op.f('ck_workflow_runs_progress_percent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_runs'))
    )
    op.create_index(op.f('ix_workflow_runs_created_at_id'), 'workflow_runs', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_workflow_runs_group_name_created_at'), 'workflow_runs', ['group_name', 'created_at'], unique=False)
    op.create_index(op.f('ix_workflow_runs_status_created_at'), 'workflow_runs', ['status', 'created_at'], unique=False)
    op.create_index(op.f('ix_workflow_runs_user_name_created_at'), 'workflow_runs', ['user_name', 'created_at'], unique=False)
    op.create_table('job_executions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('run_id', sa.UUID(), nullable=False),
    sa.Column('task_name', sa.Text(), nullable=False),
    sa.Column('task_version', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default='created', nullable=False),
    sa.Column('external_status', sa.Text(), nullable=True),
    sa.Column('progress', sa.Text(), nullable=True),
    sa.Column('input_data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('results', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('job_ids', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('result_message', sa.Text(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_type', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Double(), sa.Computed('EXTRACT(EPOCH FROM finished_at - started_at)', persisted=True), nullable=True),
    sa.CheckConstraint("status IN ('created', 'running', 'completed', 'failed')", name=op.f('ck_job_executions_status')),
    sa.ForeignKeyConstraint(['run_id'], ['workflow_runs.id'], name=op.f('fk_job_executions_run_id_workflow_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_executions'))
    )
    op.create_index(op.f('ix_job_executions_run_id_created_at'), 'job_executions', ['run_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_job_executions_status'), 'job_executions', ['status'], unique=False)
    op.create_table('log_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('run_id', sa.UUID(), nullable=False),
    sa.Column('task_id', sa.UUID(), nullable=True),
    sa.Column('level', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('logged_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['workflow_runs.id'], name=op.f('fk_log_entries_run_id_workflow_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_entries'))
    )
    op.create_index(op.f('ix_log_entries_run_id_id'), 'log_entries', ['run_id', 'id'], unique=False)
    op.create_table('job_accounting',
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('task_id', sa.UUID(), nullable=False),
    sa.Column('run_id', sa.UUID(), nullable=False),
    sa.Column('user_name', sa.Text(), nullable=True),
    sa.Column('group_name', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('progress', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['workflow_runs.id'], name=op.f('fk_job_accounting_run_id_workflow_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['job_executions.id'], name=op.f('fk_job_accounting_task_id_job_executions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'task_id', name=op.f('pk_job_accounting'))
    )
    op.create_index(op.f('ix_job_accounting_run_id'), 'job_accounting', ['run_id'], unique=False)
    op.create_index(op.f('ix_job_accounting_user_name_group_name_created_at'), 'job_accounting', ['user_name', 'group_name', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_accounting_user_name_group_name_created_at'), table_name='job_accounting')
    op.drop_index(op.f('ix_job_accounting_run_id'), table_name='job_accounting')
    op.drop_table('job_accounting')
    op.drop_index(op.f('ix_log_entries_run_id_id'), table_name='log_entries')
    op.drop_table('log_entries')
    op.drop_index(op.f('ix_job_executions_status'), table_name='job_executions')
    op.drop_index(op.f('ix_job_executions_run_id_created_at'), table_name='job_executions')
    op.drop_table('job_executions')
    op.drop_index(op.f('ix_workflow_runs_user_name_created_at'), table_name='workflow_runs')
    op.drop_index(op.f('ix_workflow_runs_status_created_at'), table_name='workflow_runs')
    op.drop_index(op.f('ix_workflow_runs_group_name_created_at'), table_name='workflow_runs')
    op.drop_index(op.f('ix_workflow_runs_created_at_id'), table_name='workflow_runs')
    op.drop_table('workflow_runs')
    op.drop_index('ix_change_notifications_unprocessed', table_name='change_notifications', postgresql_where=sa.text('NOT processed'))
    op.drop_index(op.f('ix_change_notifications_timestamp'), table_name='change_notifications')
    op.drop_table('change_notifications')
