"""Many jobs in one statement, straight into the view tables: one run, a task per job,
a job_accounting row per task (INSERT ... SELECT generate_series; no change rows).

Job n (1 the newest) is `created_at` `newest` minus n // 3 seconds, so jobs
share times in threes, and its id is `prefix` plus n // 2, so ids come back
as Slurm recycles them: the jobs page's key must tell such jobs apart.
"""

from __future__ import annotations

from datetime import datetime

import psycopg2

MANY_JOBS = """
WITH run AS (
    INSERT INTO workflow_runs (workflow_name, user_name, group_name, source, status, created_at)
    VALUES (%(name)s, 'ann', 'lab', 'snakemake', 'completed', %(newest)s) RETURNING id
), tasks AS (
    INSERT INTO job_executions (id, run_id, task_name, status, job_ids, created_at)
    SELECT gen_random_uuid(), run.id, 'rule_' || n %% 7, 'completed', ARRAY[%(prefix)s || n / 2],
           %(newest)s::timestamptz - (n / 3) * interval '1 second'
    FROM run, generate_series(1, %(count)s) AS n
    RETURNING id, run_id, job_ids[1] AS job_id, created_at
)
INSERT INTO job_accounting (job_id, task_id, run_id, user_name, group_name, status, created_at, updated_at)
SELECT job_id, id, run_id, CASE WHEN right(job_id, 1) IN ('0', '2', '4', '6', '8') THEN 'ann' ELSE 'bob' END,
       'lab', 'COMPLETED', created_at, created_at
FROM tasks
"""


def add_jobs(url: str, count: int, newest: datetime, prefix: str = "", name: str = "many jobs") -> None:
    """`count` jobs, the newest at `newest`; a job whose id ends in an even digit is ann's, else bob's."""
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL appliance.suppress_change_notifications = 'on'")
            cursor.execute(MANY_JOBS, {"name": name, "newest": newest, "prefix": prefix, "count": count})
    finally:
        connection.close()
