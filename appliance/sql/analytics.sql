-- BIOMERO's read helpers (JobAccounting, WorkflowAnalytics) over the appliance's
-- views, for BIOMERO's runs and every other source alike. `user` and `group`
-- filter as text (BIOMERO's OMERO ids are shown as text: 52 -> '52'); NULL
-- means any. Lists are paged with limit and offset, in a stable order.
-- Parameters use psycopg2's %(name)s style.

-- name: task_id_of_job
-- The task that ran as this external job id; a recycled id belongs to its newest task.
SELECT task_id::text AS task_id FROM job_accounting
WHERE job_id = %(job_id)s ORDER BY created_at DESC, task_id DESC LIMIT 1;

-- name: jobs
-- External job ids with their user, group, task and run, oldest first.
SELECT job_id, user_name AS "user", group_name AS "group", task_id::text AS task_id, run_id::text AS run_id,
       created_at
FROM job_accounting
WHERE (%(user)s::text IS NULL OR user_name = %(user)s) AND (%(group)s::text IS NULL OR group_name = %(group)s)
ORDER BY created_at, job_id, task_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: task_counts
-- How many tasks of each name and version.
SELECT t.task_name, t.task_version, count(*) AS count
FROM job_executions t JOIN workflow_runs r ON r.id = t.run_id
WHERE (%(user)s::text IS NULL OR r.user_name = %(user)s) AND (%(group)s::text IS NULL OR r.group_name = %(group)s)
GROUP BY t.task_name, t.task_version
ORDER BY t.task_name, t.task_version NULLS FIRST
LIMIT %(limit)s OFFSET %(offset)s;

-- name: task_durations
-- The average duration (seconds from start to end) of the finished tasks of each name and version.
SELECT t.task_name, t.task_version, avg(t.duration_seconds) AS average_seconds, count(*) AS finished
FROM job_executions t JOIN workflow_runs r ON r.id = t.run_id
WHERE t.duration_seconds IS NOT NULL
  AND (%(user)s::text IS NULL OR r.user_name = %(user)s) AND (%(group)s::text IS NULL OR r.group_name = %(group)s)
GROUP BY t.task_name, t.task_version
ORDER BY t.task_name, t.task_version NULLS FIRST
LIMIT %(limit)s OFFSET %(offset)s;

-- name: task_failures
-- The distinct errors of the failed tasks of each name and version.
SELECT t.task_name, t.task_version, array_agg(DISTINCT coalesce(t.error_message, '') ORDER BY coalesce(t.error_message, '')) AS errors,
       count(*) AS failed
FROM job_executions t JOIN workflow_runs r ON r.id = t.run_id
WHERE t.status = 'failed'
  AND (%(user)s::text IS NULL OR r.user_name = %(user)s) AND (%(group)s::text IS NULL OR r.group_name = %(group)s)
GROUP BY t.task_name, t.task_version
ORDER BY t.task_name, t.task_version NULLS FIRST
LIMIT %(limit)s OFFSET %(offset)s;

-- name: task_usage
-- How many tasks of one name were created each day (UTC), oldest day first.
SELECT (t.created_at AT TIME ZONE 'UTC')::date AS date, count(*) AS count
FROM job_executions t JOIN workflow_runs r ON r.id = t.run_id
WHERE t.task_name = %(task_name)s
  AND (%(user)s::text IS NULL OR r.user_name = %(user)s) AND (%(group)s::text IS NULL OR r.group_name = %(group)s)
GROUP BY 1 ORDER BY 1
LIMIT %(limit)s OFFSET %(offset)s;
