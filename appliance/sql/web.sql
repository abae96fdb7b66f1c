-- Queries of the status pages and their JSON twins. Optional filters are
-- written as (%(x)s IS NULL OR column = %(x)s), so one statement serves all. A clause
-- that several queries share is a part of its own, named in them as {part}
-- (appliance.sql.compose fills it in).

-- name: runs_page
-- Runs newest first, keyset-paginated on (created_at, id); filters are optional.
SELECT id, workflow_name, description, user_name, group_name, source, status,
       tasks_total, tasks_completed, tasks_failed, tasks_running, progress_percent, steps_done, steps_total,
       current_task,
       error_message, created_at, started_at, finished_at, duration_seconds, last_event_at
FROM workflow_runs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(user)s::text IS NULL OR user_name = %(user)s)
  AND (%(group)s::text IS NULL OR group_name = %(group)s)
  AND (%(pattern)s::text IS NULL OR workflow_name ILIKE %(pattern)s ESCAPE '\')
  AND (%(before_time)s::timestamptz IS NULL OR (created_at, id) < (%(before_time)s::timestamptz, %(before_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: status_counts
-- How many runs have each status, of the runs the other filters (not status) match.
SELECT status, count(*) AS runs FROM workflow_runs
WHERE (%(user)s::text IS NULL OR user_name = %(user)s)
  AND (%(group)s::text IS NULL OR group_name = %(group)s)
  AND (%(pattern)s::text IS NULL OR workflow_name ILIKE %(pattern)s ESCAPE '\')
GROUP BY status ORDER BY status;

-- name: run
-- One run by id.
SELECT * FROM workflow_runs WHERE id = %(run_id)s;

-- name: run_task_filter
-- A part of run_tasks and run_tasks_matching: a run's tasks of a status, a name (rule),
-- and whose name, wildcards, error or job ids contain a text; each filter optional.
run_id = %(run_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(rule)s::text IS NULL OR task_name = %(rule)s)
  AND (%(pattern)s::text IS NULL OR task_name ILIKE %(pattern)s ESCAPE '\'
       OR input_data::text ILIKE %(pattern)s ESCAPE '\' OR error_message ILIKE %(pattern)s ESCAPE '\'
       OR array_to_string(job_ids, ' ') ILIKE %(pattern)s ESCAPE '\')

-- name: run_tasks
-- A page of a run's tasks, filtered by status, name and text, in the order asked
-- (`sort`: a column name, "-" first for descending).
SELECT id, task_name, task_version, status, external_status, progress, job_ids, attempts,
       result_message, error_message, error_type, input_data, params, inputs, outputs, log_files,
       benchmark_file, conda_env, container_image, host, resource_usage, created_at, started_at,
       finished_at, duration_seconds
FROM job_executions
WHERE {run_task_filter}
ORDER BY CASE WHEN %(sort)s = 'name' THEN task_name END,
         CASE WHEN %(sort)s = '-name' THEN task_name END DESC,
         CASE WHEN %(sort)s = 'status' THEN status END,
         CASE WHEN %(sort)s = '-status' THEN status END DESC,
         CASE WHEN %(sort)s = 'started' THEN started_at END,
         CASE WHEN %(sort)s = '-started' THEN started_at END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'duration' THEN duration_seconds END,
         CASE WHEN %(sort)s = '-duration' THEN duration_seconds END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'attempts' THEN attempts END,
         CASE WHEN %(sort)s = '-attempts' THEN attempts END DESC,
         CASE WHEN %(sort)s = '-created' THEN created_at END DESC,
         created_at, id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: run_tasks_matching
-- How many of a run's tasks the filters of run_tasks match (asked only when filtered:
-- the run's row counts them all).
SELECT count(*) AS matching
FROM job_executions
WHERE {run_task_filter};

-- name: run_rules
-- A run's tasks by name (a Snakemake rule): counts by status, first start, last end,
-- in the order the names first appeared; at most `limit` names.
SELECT task_name,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'created') AS created,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       sum(GREATEST(attempts - 1, 0)) AS retries,
       count(started_at) AS started, min(started_at) AS first_started, max(finished_at) AS last_finished,
       max(COALESCE(finished_at, %(now)s)) FILTER (WHERE started_at IS NOT NULL) AS busy_until,
       avg(duration_seconds) AS mean_seconds
FROM job_executions WHERE run_id = %(run_id)s
GROUP BY task_name
ORDER BY min(created_at), task_name
LIMIT %(limit)s;

-- name: run_failed_tasks
-- The first failed tasks of a run (the error panel), with the number failed.
SELECT id, task_name, input_data, error_message, error_type, attempts, finished_at,
       count(*) OVER () AS matching
FROM job_executions WHERE run_id = %(run_id)s AND status = 'failed'
ORDER BY finished_at, created_at, id
LIMIT %(limit)s;

-- name: timeline_tasks
-- The started tasks of a small run, for one bar per task (per attempt when known).
SELECT id, task_name, input_data, status, attempts, attempt_history, started_at, finished_at
FROM job_executions WHERE run_id = %(run_id)s AND started_at IS NOT NULL
ORDER BY started_at, id
LIMIT %(limit)s;

-- name: timeline_lanes
-- The busy spans of each task name of a large run on a grid of `buckets` columns from
-- `begin`: the tasks grouped by name and starting column (at most names x buckets rows),
-- then the columns that overlap or touch merged (gaps and islands) with their counts.
-- Names go by their place in `names` and times by date_part: sorting text by its
-- collation and extract's numeric arithmetic made this query ten times dearer.
WITH columns AS (
    SELECT array_position(%(names)s::text[], task_name) AS lane,
           LEAST(floor(date_part('epoch', started_at - %(begin)s) / %(bucket)s)::int, %(buckets)s - 1) AS b0,
           max(LEAST(floor(date_part('epoch', COALESCE(finished_at, %(now)s) - %(begin)s) / %(bucket)s)::int,
                     %(buckets)s - 1)) AS b1,
           count(*) AS tasks, count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'running') AS running
    FROM job_executions
    WHERE run_id = %(run_id)s AND started_at IS NOT NULL AND task_name = ANY(%(names)s)
    GROUP BY 1, 2
), marked AS (
    SELECT *, CASE WHEN b0 <= max(b1) OVER (PARTITION BY lane ORDER BY b0
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1
                   THEN 0 ELSE 1 END AS starts_island
    FROM columns
), islands AS (
    SELECT *, sum(starts_island) OVER (PARTITION BY lane ORDER BY b0) AS island FROM marked
)
SELECT (%(names)s::text[])[lane] AS task_name, min(b0) AS b0, max(b1) AS b1, sum(tasks)::int AS tasks,
       sum(failed)::int AS failed, sum(running)::int AS running
FROM islands GROUP BY lane, island ORDER BY lane, min(b0);

-- name: run_fingerprint
-- What changes when a run's page would: its row's state and its newest log line.
SELECT status, last_event_at, steps_done, tasks_total, tasks_completed, tasks_failed, tasks_running,
       (SELECT max(id) FROM log_entries WHERE run_id = %(run_id)s) AS newest_line
FROM workflow_runs WHERE id = %(run_id)s;

-- name: views_fingerprint
-- What changes when any view row does: the change feed's newest row (the triggers
-- write one per change), and the newest run (for a database without the triggers).
-- Both read one end of an index.
SELECT (SELECT max(id) FROM change_notifications) AS newest_change,
       (SELECT max(created_at) FROM workflow_runs) AS newest_run;

-- name: run_logs
-- A run's log lines after an id (and before one, if given), oldest first, optionally of one level,
-- one task, containing a text.
SELECT id, task_id, level, message, logged_at
FROM log_entries
WHERE run_id = %(run_id)s AND id > %(after)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
  AND (%(level)s::text IS NULL OR level = %(level)s)
  AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
  AND (%(pattern)s::text IS NULL OR message ILIKE %(pattern)s ESCAPE '\')
ORDER BY id
LIMIT %(limit)s;

-- name: run_latest_logs
-- The latest lines of a run before an id (or of all when it is null), newest
-- first: the pages show them reversed, and page backwards from the oldest shown.
SELECT id, task_id, level, message, logged_at
FROM log_entries
WHERE run_id = %(run_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
  AND (%(level)s::text IS NULL OR level = %(level)s)
  AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
  AND (%(pattern)s::text IS NULL OR message ILIKE %(pattern)s ESCAPE '\')
ORDER BY id DESC
LIMIT %(limit)s;

-- name: job_filter
-- A part of the jobs queries: the jobs of an external id, a user, a group, each optional.
(%(job_id)s::text IS NULL OR a.job_id = %(job_id)s)
  AND (%(user)s::text IS NULL OR a.user_name = %(user)s)
  AND (%(group)s::text IS NULL OR a.group_name = %(group)s)

-- name: job_rows
-- A part of jobs_older and jobs_newer: each job of their `page` with its task and run.
SELECT a.job_id, a.task_id, a.run_id, a.user_name, a.group_name, a.status, a.progress,
       a.created_at, a.updated_at, t.task_name, t.status AS task_status, t.duration_seconds,
       t.started_at, t.finished_at, t.params -> 'resources' AS resources, t.params -> 'threads' AS threads,
       COALESCE(t.params ->> 'host', r.params ->> 'host') AS host, r.workflow_name
FROM page a
JOIN job_executions t ON t.id = a.task_id
JOIN workflow_runs r ON r.id = a.run_id

-- name: jobs_older
-- A page of jobs newest first, keyset-paginated on (created_at, task_id, job_id) (an index):
-- from the newest, or older than a key (key_*, a cursor's), skipping `offset` (page numbers).
-- The page is chosen before the joins, so the rows skipped cost no lookups of their task and run.
WITH page AS (
    SELECT * FROM job_accounting a
    WHERE {job_filter}
      AND (%(key_time)s::timestamptz IS NULL
           OR (a.created_at, a.task_id, a.job_id) < (%(key_time)s::timestamptz, %(key_task)s::uuid, %(key_job)s::text))
    ORDER BY a.created_at DESC, a.task_id DESC, a.job_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
)
{job_rows}
ORDER BY a.created_at DESC, a.task_id DESC, a.job_id DESC;

-- name: jobs_newer
-- The jobs just newer than a key (key_*, a cursor's), oldest first: the page before, reversed.
WITH page AS (
    SELECT * FROM job_accounting a
    WHERE {job_filter}
      AND (a.created_at, a.task_id, a.job_id) > (%(key_time)s::timestamptz, %(key_task)s::uuid, %(key_job)s::text)
    ORDER BY a.created_at, a.task_id, a.job_id
    LIMIT %(limit)s
)
{job_rows}
ORDER BY a.created_at, a.task_id, a.job_id;

-- name: jobs_count
-- How many jobs match, counted up to `cap` so that the count costs at most that many rows.
SELECT count(*) AS jobs FROM (SELECT 1 FROM job_accounting a WHERE {job_filter} LIMIT %(cap)s) AS capped;

-- name: changes_after
-- The change feed oldest first after an id, optionally of one table. Only
-- rows older than the oldest transaction still running are shown, so a row that
-- commits late with a lower id cannot appear behind a reader's "after" cursor.
SELECT id, table_name, operation, row_key, changed_fields, old_values, new_values,
       transaction_id, "timestamp", processed, processed_at, attempts, last_error
FROM change_notifications
WHERE id > %(after)s
  AND (%(table)s::text IS NULL OR table_name = %(table)s)
  AND transaction_id < txid_snapshot_xmin(txid_current_snapshot())
ORDER BY id
LIMIT %(limit)s;

-- name: recent_changes
-- The latest changes (get_recent_changes of the init-db scripts), optionally of one table.
SELECT id, table_name, operation, row_key, changed_fields, old_values, new_values,
       transaction_id, "timestamp", processed, processed_at, attempts, last_error
FROM get_recent_changes(%(since)s::timestamp)
WHERE (%(table)s::text IS NULL OR table_name = %(table)s)
LIMIT %(limit)s;

-- name: changes_fingerprint
-- What changes when the change feed's page would: its newest row and how many wait.
SELECT (SELECT max(id) FROM change_notifications) AS newest_change,
       (SELECT count(*) FROM change_notifications WHERE NOT processed) AS backlog;

-- name: task
-- One task of a run, every column.
SELECT * FROM job_executions WHERE id = %(task_id)s AND run_id = %(run_id)s;

-- name: task_names
-- The names of a run's tasks by id (the log's task filter and its lines), for the ids given.
SELECT id, task_name, input_data -> 'wildcards' AS wildcards FROM job_executions WHERE id = ANY(%(ids)s::uuid[]);
