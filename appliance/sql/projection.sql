-- The projector's queries: its position, the view rows a batch of events
-- touches (loaded, then written back in bulk), and the reset of reproject.
-- Rows travel to the server as one JSON array per table, turned into rows by
-- json_populate_recordset: one statement per table per batch, whatever the
-- number of rows. Parameters use psycopg2's %(name)s style.

-- name: ensure_position
-- The tracking row, at 0 (nothing projected), unless it exists.
INSERT INTO projector_tracking (application_name, notification_id)
VALUES (%(application)s, 0)
ON CONFLICT (application_name) DO NOTHING;

-- name: lock_position
-- The tracking position, its row locked until the batch commits: two
-- projectors can never apply the same events, even if the advisory lock were
-- lost. While an unfinished rebuild's marker (projection_rebuild.quiet_until)
-- is ahead of the position, the batch stops at it (`upto`) and `quiet` is
-- true: old events replayed, the triggers silenced.
SELECT t.notification_id, coalesce(r.quiet_until > t.notification_id, false),
       CASE WHEN r.quiet_until > t.notification_id THEN r.quiet_until ELSE 9223372036854775807 END
FROM projector_tracking t
LEFT JOIN projection_rebuild r ON r.application_name = t.application_name
WHERE t.application_name = %(application)s
FOR UPDATE OF t;

-- name: select_events
-- The next events after the position, up to `upto`. Notification ids commit
-- in the order they are assigned (the event store appends under a table
-- lock), so "id > position" never skips an event that commits late. The
-- position is a value and `upto` is applied outside the LIMIT, so even
-- without statistics (events just appended) the planner walks the primary
-- key and stops after `limit` rows. (With both bounds as subqueries it
-- guessed a few thousand rows, then read and sorted every later event for
-- each batch: a rebuild of 1,000,000 events read ~50 million.)
SELECT id, originator_id, originator_version, topic, state
FROM (
    SELECT id, originator_id, originator_version, topic, state
    FROM appliance_events
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
) AS next
WHERE id <= %(upto)s;

-- name: select_biomero_events
-- The same from BIOMERO's log, which the appliance only reads.
SELECT id, originator_id, originator_version, topic, state
FROM (
    SELECT id, originator_id, originator_version, topic, state
    FROM workflowtracker_events
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
) AS next
WHERE id <= %(upto)s;

-- name: save_position
-- Move the tracking position, in the transaction of the batch's view rows.
UPDATE projector_tracking SET notification_id = %(position)s
WHERE application_name = %(application)s;

-- name: select_position
-- The last notification id projected.
SELECT notification_id FROM projector_tracking WHERE application_name = %(application)s;

-- name: max_notification_id
-- The position of the newest event, or 0 for an empty store.
SELECT coalesce(max(id), 0) FROM appliance_events;

-- name: max_biomero_notification_id
-- The position of the newest event in BIOMERO's log, or 0 when empty.
SELECT coalesce(max(id), 0) FROM workflowtracker_events;

-- name: count_skipped
-- Events of a topic no mapping knows, skipped by a batch: counted per log and
-- topic. True when the topic is new (the projector names it in its log once).
INSERT INTO projection_skipped_topics (application_name, topic, events, first_notification_id, last_notification_id)
VALUES (%(application)s, %(topic)s, %(events)s, %(first)s, %(last)s)
ON CONFLICT (application_name, topic) DO UPDATE SET
    events = projection_skipped_topics.events + EXCLUDED.events,
    last_notification_id = EXCLUDED.last_notification_id, last_seen_at = now()
RETURNING xmax = 0;

-- name: missing_tables
-- Which of the given tables do not exist (a database never migrated).
SELECT name FROM unnest(%(tables)s::text[]) AS name WHERE to_regclass(name) IS NULL ORDER BY name;

-- name: try_lock
-- The projector's session-level advisory lock: one active projector at a time.
SELECT pg_try_advisory_lock(%(key)s);

-- name: lock_holder
-- Who holds the projector's lock, for the message of a projector that waits.
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = (%(key)s::bigint >> 32)::oid AND l.objid = (%(key)s::bigint & 4294967295)::oid AND l.objsubid = 1;

-- name: suppress_change_notifications
-- Reprojection rewrites every row: tell the change triggers (init-db) to stay
-- silent for this transaction, so a replay does not flood the change feed.
SET LOCAL appliance.suppress_change_notifications = 'on';

-- name: reset_views
-- Empty the derived tables (not change_notifications), rewind the positions of
-- the logs rebuilt from and forget their skipped topics' counts; the position
-- rows locked first, in the order every batch takes its locks.
SELECT notification_id FROM projector_tracking WHERE application_name = ANY(%(applications)s) FOR UPDATE;
TRUNCATE workflow_runs, job_executions, log_entries, job_accounting;
UPDATE projector_tracking SET notification_id = 0 WHERE application_name = ANY(%(applications)s);
DELETE FROM projection_skipped_topics WHERE application_name = ANY(%(applications)s);

-- name: mark_rebuild
-- The marker: whoever replays a log's events up to its newest at the rebuild's
-- start (this rebuild, or a projector finishing it after an interruption)
-- does so quietly.
INSERT INTO projection_rebuild (application_name, quiet_until)
VALUES (%(application)s, %(quiet_until)s)
ON CONFLICT (application_name) DO UPDATE SET quiet_until = EXCLUDED.quiet_until, started_at = now();

-- name: end_rebuild
-- A rebuild that completed: its marker goes (one left by an interrupted
-- rebuild is harmless once the position passed it).
DELETE FROM projection_rebuild WHERE application_name = %(application)s;

-- name: load_runs
-- The workflow_runs rows of some runs.
SELECT id::text, workflow_name, description, user_name, group_name, source, params, status,
       tasks_total, tasks_created, tasks_running, tasks_completed, tasks_failed, progress_percent,
       steps_done, steps_total, current_task, error_message, planned_jobs, rule_graph, created_at,
       started_at, finished_at, last_event_at
FROM workflow_runs WHERE id = ANY(%(ids)s::uuid[]);

-- name: load_tasks
-- The job_executions rows of some tasks, and of the running tasks of some runs
-- (a run's current task is the latest started of its running tasks).
SELECT id::text, run_id::text, task_name, task_version, status, external_status, progress,
       input_data, params, results, job_ids, attempts, attempt_history, result_message, error_message,
       error_type, inputs, outputs, log_files, benchmark_file, conda_env, container_image, host,
       resource_usage, created_at, started_at, finished_at
FROM job_executions
WHERE id = ANY(%(ids)s::uuid[])
   OR (run_id = ANY(%(running_of)s::uuid[]) AND status = 'running');

-- name: load_accounting
-- The job_accounting rows of some tasks.
SELECT job_id, task_id::text, run_id::text, user_name, group_name, status, progress, created_at, updated_at
FROM job_accounting WHERE task_id = ANY(%(task_ids)s::uuid[]);

-- name: save_runs
-- Insert or update workflow_runs rows, given whole.
INSERT INTO workflow_runs (
    id, workflow_name, description, user_name, group_name, source, params, status,
    tasks_total, tasks_created, tasks_running, tasks_completed, tasks_failed, progress_percent,
    steps_done, steps_total, current_task, error_message, planned_jobs, rule_graph, created_at,
       started_at, finished_at, last_event_at)
SELECT id, workflow_name, description, user_name, group_name, source, params, status,
       tasks_total, tasks_created, tasks_running, tasks_completed, tasks_failed, progress_percent,
       steps_done, steps_total, current_task, error_message, planned_jobs, rule_graph, created_at,
       started_at, finished_at, last_event_at
FROM json_populate_recordset(NULL::workflow_runs, %(rows)s::json)
ON CONFLICT (id) DO UPDATE SET
    workflow_name = EXCLUDED.workflow_name, description = EXCLUDED.description,
    user_name = EXCLUDED.user_name, group_name = EXCLUDED.group_name, source = EXCLUDED.source,
    params = EXCLUDED.params, status = EXCLUDED.status, tasks_total = EXCLUDED.tasks_total,
    tasks_created = EXCLUDED.tasks_created, tasks_running = EXCLUDED.tasks_running,
    tasks_completed = EXCLUDED.tasks_completed, tasks_failed = EXCLUDED.tasks_failed,
    progress_percent = EXCLUDED.progress_percent, steps_done = EXCLUDED.steps_done,
    steps_total = EXCLUDED.steps_total, current_task = EXCLUDED.current_task,
    error_message = EXCLUDED.error_message, planned_jobs = EXCLUDED.planned_jobs,
    rule_graph = EXCLUDED.rule_graph, created_at = EXCLUDED.created_at,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    last_event_at = EXCLUDED.last_event_at;

-- name: save_tasks
-- Insert or update job_executions rows, given whole.
INSERT INTO job_executions (
    id, run_id, task_name, task_version, status, external_status, progress, input_data, params,
    results, job_ids, attempts, attempt_history, result_message, error_message, error_type, inputs,
    outputs, log_files, benchmark_file, conda_env, container_image, host, resource_usage, created_at,
    started_at, finished_at)
SELECT id, run_id, task_name, task_version, status, external_status, progress, input_data, params,
       results, job_ids, attempts, attempt_history, result_message, error_message, error_type, inputs,
       outputs, log_files, benchmark_file, conda_env, container_image, host, resource_usage, created_at,
       started_at, finished_at
FROM json_populate_recordset(NULL::job_executions, %(rows)s::json)
ON CONFLICT (id) DO UPDATE SET
    run_id = EXCLUDED.run_id, task_name = EXCLUDED.task_name, task_version = EXCLUDED.task_version,
    status = EXCLUDED.status, external_status = EXCLUDED.external_status,
    progress = EXCLUDED.progress, input_data = EXCLUDED.input_data, params = EXCLUDED.params,
    results = EXCLUDED.results, job_ids = EXCLUDED.job_ids, attempts = EXCLUDED.attempts,
    attempt_history = EXCLUDED.attempt_history,
    result_message = EXCLUDED.result_message, error_message = EXCLUDED.error_message,
    error_type = EXCLUDED.error_type, inputs = EXCLUDED.inputs, outputs = EXCLUDED.outputs,
    log_files = EXCLUDED.log_files, benchmark_file = EXCLUDED.benchmark_file,
    conda_env = EXCLUDED.conda_env, container_image = EXCLUDED.container_image, host = EXCLUDED.host,
    resource_usage = EXCLUDED.resource_usage, created_at = EXCLUDED.created_at,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at;

-- name: save_accounting
-- Insert or update job_accounting rows, given whole.
INSERT INTO job_accounting (
    job_id, task_id, run_id, user_name, group_name, status, progress, created_at, updated_at)
SELECT job_id, task_id, run_id, user_name, group_name, status, progress, created_at, updated_at
FROM json_populate_recordset(NULL::job_accounting, %(rows)s::json)
ON CONFLICT (job_id, task_id) DO UPDATE SET
    run_id = EXCLUDED.run_id, user_name = EXCLUDED.user_name, group_name = EXCLUDED.group_name,
    status = EXCLUDED.status, progress = EXCLUDED.progress, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at;

-- name: insert_log_entries
-- Append log_entries rows (their id is the event's notification id).
INSERT INTO log_entries (id, run_id, task_id, level, message, logged_at)
SELECT id, run_id, task_id, level, message, logged_at
FROM json_populate_recordset(NULL::log_entries, %(rows)s::json)
ON CONFLICT (id) DO NOTHING;

-- name: listen
-- Wake up when the tracker appends events (its recorder NOTIFYs this channel).
LISTEN appliance_events;

-- name: listen_biomero
-- Wake up when BIOMERO's tracker appends events (eventsourcing-sqlalchemy NOTIFYs the table's name).
LISTEN workflowtracker_events;
