"""Snakemake runs in full: planned jobs and the rule graph of a run; files, software, host and measured resources of a task.

- workflow_runs.planned_jobs (jobs per rule, WorkflowRun.Planned) and
  workflow_runs.rule_graph ({"rules": [...], "edges": [[source, target], ...]},
  WorkflowRun.RuleGraphRecorded), NULL until the source tells them.
- job_executions.inputs, outputs, log_files (text[]), benchmark_file,
  conda_env, container_image, host (Task.DetailsRecorded) and resource_usage
  (JSONB, Task.ResourcesMeasured).
Views are derived: `appliance reproject` fills them for events recorded before.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TASK_FILE_LISTS = ('inputs', 'outputs', 'log_files')
TASK_TEXTS = ('benchmark_file', 'conda_env', 'container_image', 'host')


def upgrade() -> None:
    op.add_column('workflow_runs', sa.Column('planned_jobs', postgresql.JSONB(), nullable=True))
    op.add_column('workflow_runs', sa.Column('rule_graph', postgresql.JSONB(), nullable=True))
    for name in TASK_FILE_LISTS:
        op.add_column('job_executions', sa.Column(
            name, postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False))
    for name in TASK_TEXTS:
        op.add_column('job_executions', sa.Column(name, sa.Text(), nullable=True))
    op.add_column('job_executions', sa.Column('resource_usage', postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    for name in ('resource_usage', *TASK_TEXTS, *TASK_FILE_LISTS):
        op.drop_column('job_executions', name)
    op.drop_column('workflow_runs', 'rule_graph')
    op.drop_column('workflow_runs', 'planned_jobs')
