-- The state of the appliance's parts (appliance/system.py): `appliance status`,
-- /readyz, /system and /metrics. A query over a table another part creates
-- runs under a savepoint, so a part not installed yet reads as missing.

-- name: schema_revision
-- The Alembic revision of the views, if migrated.
SELECT version_num FROM alembic_version_appliance;

-- name: installed_triggers
-- Names of the appliance's change triggers present.
SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%\_notify\_change' AND NOT tgisinternal ORDER BY tgname;

-- name: projector_position
-- The projector's position in one log it follows, and that log's newest event.
-- ({tracking_table} and {events_table} are names the caller fills in.)
SELECT (SELECT notification_id FROM {tracking_table} WHERE application_name = %(upstream)s) AS position,
       (SELECT max(id) FROM {events_table}) AS newest;

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
