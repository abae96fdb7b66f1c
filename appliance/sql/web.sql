-- Queries of the status pages and their JSON twins. Optional filters are
-- written as (%(x)s IS NULL OR column = %(x)s), so one statement serves all.

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
-- How many runs have each status.
SELECT status, count(*) AS runs FROM workflow_runs GROUP BY status ORDER BY status;

-- name: run
-- One run by id.
SELECT * FROM workflow_runs WHERE id = %(run_id)s;

-- name: run_tasks
-- A run's tasks in the order they were created.
SELECT id, task_name, task_version, status, external_status, progress, job_ids, attempts,
       result_message, error_message, error_type, input_data, params, created_at, started_at,
       finished_at, duration_seconds
FROM job_executions WHERE run_id = %(run_id)s
ORDER BY created_at, id
LIMIT %(limit)s;

-- name: run_logs
-- A run's log lines after an id, oldest first, optionally of one level.
SELECT id, task_id, level, message, logged_at
FROM log_entries
WHERE run_id = %(run_id)s AND id > %(after)s
  AND (%(level)s::text IS NULL OR level = %(level)s)
ORDER BY id
LIMIT %(limit)s;

-- name: run_latest_logs
-- The latest lines of a run before an id (or of all when it is null), newest
-- first: the pages show them reversed, and page backwards from the oldest shown.
SELECT id, task_id, level, message, logged_at
FROM log_entries
WHERE run_id = %(run_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
  AND (%(level)s::text IS NULL OR level = %(level)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: jobs_by_id
-- Every task that ran as this external job id (Slurm recycles ids).
SELECT a.job_id, a.task_id, a.run_id, a.user_name, a.group_name, a.status, a.progress,
       a.created_at, a.updated_at, t.task_name, t.status AS task_status, r.workflow_name
FROM job_accounting a
JOIN job_executions t ON t.id = a.task_id
JOIN workflow_runs r ON r.id = a.run_id
WHERE a.job_id = %(job_id)s
ORDER BY a.created_at DESC;

-- name: jobs_by_owner
-- Jobs of a user and/or group, newest first.
SELECT a.job_id, a.task_id, a.run_id, a.user_name, a.group_name, a.status, a.progress,
       a.created_at, a.updated_at, t.task_name, t.status AS task_status, r.workflow_name
FROM job_accounting a
JOIN job_executions t ON t.id = a.task_id
JOIN workflow_runs r ON r.id = a.run_id
WHERE (%(user)s::text IS NULL OR a.user_name = %(user)s)
  AND (%(group)s::text IS NULL OR a.group_name = %(group)s)
ORDER BY a.created_at DESC
LIMIT %(limit)s;

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

-- name: schema_revision
-- The Alembic revision of the views, if migrated.
SELECT version_num FROM alembic_version_appliance;

-- name: installed_triggers
-- Names of the appliance's change triggers present.
SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%\_notify\_change' AND NOT tgisinternal ORDER BY tgname;

-- name: projector_position
-- The projector's position and the newest event.
SELECT (SELECT notification_id FROM projector_tracking WHERE application_name = 'Appliance') AS position,
       (SELECT max(id) FROM appliance_events) AS newest;

-- name: biomero_position
-- How far the projector is in BIOMERO's log (workflowtracker_events, read only),
-- where the database holds one.
SELECT (SELECT notification_id FROM projector_tracking WHERE application_name = 'WorkflowTracker') AS position,
       (SELECT max(id) FROM workflowtracker_events) AS newest;

-- name: skipped_topics
-- Events the projector skipped because no mapping knows their topic, per log and topic.
SELECT application_name, topic, events, first_notification_id, last_notification_id, last_seen_at
FROM projection_skipped_topics ORDER BY application_name, topic;

-- name: monitor_heartbeats
-- Monitors seen, latest first.
SELECT monitor_id, host, pid, started_at, last_seen, backlog, handled,
       extract(epoch FROM now() - last_seen) AS seconds_ago
FROM monitor_heartbeats ORDER BY last_seen DESC;

-- name: change_backlog
-- Changes not yet handled by a monitor.
SELECT count(*) AS backlog FROM change_notifications WHERE NOT processed;

-- name: task_counts
-- How many tasks have each status.
SELECT status, count(*) AS tasks FROM job_executions GROUP BY status ORDER BY status;
