-- BIOMERO 2.8's four view tables, kept by the projector (APPLIANCE_BIOMERO_VIEWS;
-- appliance/projection/biomero_views.py), and the look at BIOMERO's own views'
-- positions that tells whether they still write them (appliance/biomero_guard.py).
-- Rows travel as one JSON array per table, as in projection.sql. Times go in as
-- timestamptz and are stored in BIOMERO's `timestamp` columns by PostgreSQL's own
-- cast (the session's time zone), as BIOMERO's SQLAlchemy writes them.

-- name: existing_tables
-- Which of the given tables exist.
SELECT name FROM unnest(%(tables)s::text[]) AS name WHERE to_regclass(name) IS NOT NULL ORDER BY name;

-- name: view_position
-- How far one of BIOMERO's views (its eventsourcing tracking table, {table}) is in its tracker's log.
SELECT coalesce(max(notification_id), 0) FROM {table} WHERE application_name = 'WorkflowTracker';

-- name: biomero_log_head
-- The newest event of BIOMERO's log (0 when empty).
SELECT coalesce(max(id), 0) FROM workflowtracker_events;

-- name: count_rows
-- The rows of an adopted table ({table}), for the migrator to say what it keeps.
SELECT count(*) FROM {table};

-- name: out_of_step
-- The logs whose projector position is not where the four tables were last
-- brought (their rows then miss events: they are rebuilt).
SELECT t.application_name
FROM projector_tracking t
LEFT JOIN appliance_biomero_views_position p ON p.application_name = t.application_name
WHERE coalesce(p.notification_id, 0) <> t.notification_id;

-- name: save_position
-- Where the four tables are brought in a log, in the transaction of the batch that brought them.
INSERT INTO appliance_biomero_views_position (application_name, notification_id)
VALUES (%(application)s, %(position)s)
ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id;

-- name: reset_positions
-- A rebuild starts every log over (store.reset, in its transaction).
DELETE FROM appliance_biomero_views_position;

-- name: empty_tables
-- `appliance reproject` rebuilds the four tables from the logs, as the others.
TRUNCATE biomero_job_view, biomero_job_progress_view, biomero_workflow_progress_view, biomero_task_execution;

-- name: load_workflows
-- The biomero_workflow_progress_view rows of some runs.
SELECT workflow_id::text, status, progress, "user", "group", name, task, main_task_name, start_time
FROM biomero_workflow_progress_view WHERE workflow_id = ANY(%(ids)s::uuid[]);

-- name: save_workflows
-- Insert or update biomero_workflow_progress_view rows, given whole.
INSERT INTO biomero_workflow_progress_view (workflow_id, status, progress, "user", "group", name, task,
                                            main_task_name, start_time)
SELECT workflow_id, status, progress, "user", "group", name, task, main_task_name, start_time
FROM json_to_recordset(%(rows)s::json) AS r(workflow_id uuid, status text, progress text, "user" integer,
                                             "group" integer, name text, task text, main_task_name text,
                                             start_time timestamptz)
ON CONFLICT (workflow_id) DO UPDATE SET
    status = EXCLUDED.status, progress = EXCLUDED.progress, "user" = EXCLUDED."user",
    "group" = EXCLUDED."group", name = EXCLUDED.name, task = EXCLUDED.task,
    main_task_name = EXCLUDED.main_task_name, start_time = EXCLUDED.start_time;

-- name: save_jobs
-- Insert or update biomero_job_view rows: a Slurm job id's newest task.
INSERT INTO biomero_job_view (slurm_job_id, "user", "group", task_id)
SELECT slurm_job_id, "user", "group", task_id
FROM json_to_recordset(%(rows)s::json) AS r(slurm_job_id integer, "user" integer, "group" integer, task_id uuid)
ON CONFLICT (slurm_job_id) DO UPDATE SET
    "user" = EXCLUDED."user", "group" = EXCLUDED."group", task_id = EXCLUDED.task_id;

-- name: save_job_progress
-- Insert or update biomero_job_progress_view rows.
INSERT INTO biomero_job_progress_view (slurm_job_id, status, progress)
SELECT slurm_job_id, status, progress
FROM json_to_recordset(%(rows)s::json) AS r(slurm_job_id integer, status text, progress text)
ON CONFLICT (slurm_job_id) DO UPDATE SET status = EXCLUDED.status, progress = EXCLUDED.progress;

-- name: save_task_executions
-- Insert or update biomero_task_execution rows, given whole.
INSERT INTO biomero_task_execution (task_id, task_name, task_version, user_id, group_id, status, start_time,
                                    end_time, error_type)
SELECT task_id, task_name, task_version, user_id, group_id, status, start_time, end_time, error_type
FROM json_to_recordset(%(rows)s::json) AS r(task_id uuid, task_name text, task_version text, user_id integer,
                                             group_id integer, status text, start_time timestamptz,
                                             end_time timestamptz, error_type text)
ON CONFLICT (task_id) DO UPDATE SET
    task_name = EXCLUDED.task_name, task_version = EXCLUDED.task_version, user_id = EXCLUDED.user_id,
    group_id = EXCLUDED.group_id, status = EXCLUDED.status, start_time = EXCLUDED.start_time,
    end_time = EXCLUDED.end_time, error_type = EXCLUDED.error_type;

-- name: load_jobs
-- The job_accounting rows of some Slurm job ids (every task each was given
-- to), with their run's user, group and source: what BIOMERO's two job tables follow from.
SELECT a.job_id, a.task_id::text, a.status, a.progress, a.created_at, a.updated_at,
       r.user_name, r.group_name, r.source
FROM job_accounting a JOIN workflow_runs r ON r.id = a.run_id
WHERE a.job_id = ANY(%(jobs)s::text[]);
