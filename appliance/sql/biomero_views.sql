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
-- What BIOMERO's two job tables follow from, for some Slurm job ids (as
-- job_accounting keeps them): of the tasks each was given to, the newest
-- whose run has OMERO ids for user and group (`owner`: biomero_job_view's
-- row), and the newest with a status or progress report whose run is kept
-- (`reported`: biomero_job_progress_view's); newest by the time the id was
-- given, ties to the larger task id. Each walks the job's tasks newest first
-- (the two ix_job_accounting_job_id_created_at_task_id indexes, the second of
-- reported rows only) and stops at the first that fits, so a job id given to
-- many tasks (BIOMERO's -1 for every job sbatch refused) costs a batch one
-- row, not all of them. The CTEs are inlined, so each branch uses its index.
WITH given AS NOT MATERIALIZED (
    SELECT a.job_id, a.task_id, a.status, a.progress, a.created_at, r.user_name, r.group_name,
           CASE WHEN r.user_name ~ '^-?[0-9]{1,10}$'
                THEN r.user_name::bigint BETWEEN -2147483648 AND 2147483647 ELSE false END
           AND CASE WHEN r.group_name ~ '^-?[0-9]{1,10}$'
                THEN r.group_name::bigint BETWEEN -2147483648 AND 2147483647 ELSE false END AS owned,
           r.source IS NOT DISTINCT FROM 'biomero' AS biomero_run,
           a.status IS NOT NULL OR a.progress IS NOT NULL OR a.updated_at > a.created_at AS reported
    FROM job_accounting a JOIN workflow_runs r ON r.id = a.run_id
), wanted AS (
    SELECT DISTINCT unnest(%(jobs)s::text[]) AS job_id
)
SELECT 'owner' AS kind, wanted.job_id, picked.*
FROM wanted CROSS JOIN LATERAL (
    SELECT task_id::text, status, progress, created_at, user_name, group_name FROM given
    WHERE given.job_id = wanted.job_id AND owned
    ORDER BY given.created_at DESC, given.task_id DESC LIMIT 1) picked
UNION ALL
SELECT 'reported', wanted.job_id, picked.*
FROM wanted CROSS JOIN LATERAL (
    SELECT task_id::text, status, progress, created_at, user_name, group_name FROM given
    WHERE given.job_id = wanted.job_id AND reported AND (owned OR biomero_run)
    ORDER BY given.created_at DESC, given.task_id DESC LIMIT 1) picked;
