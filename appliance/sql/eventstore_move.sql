-- Moving the appliance's own events out of workflowtracker_events, once.
-- Until the appliance's application was renamed (WorkflowTracker -> Appliance)
-- its events shared BIOMERO's table, where BIOMERO's followers could not
-- resolve their topics. Parameters use psycopg2's %(name)s style.

-- name: shared_log_exists
-- Whether the table the appliance used to write to exists at all.
SELECT to_regclass('workflowtracker_events') IS NOT NULL;

-- name: count_shared_log
-- The appliance's events and the others (BIOMERO's) in the shared table.
SELECT count(*) FILTER (WHERE topic LIKE 'appliance.%%'), count(*) FILTER (WHERE topic NOT LIKE 'appliance.%%')
FROM workflowtracker_events;

-- name: lock_both_logs
-- No writer appends to either table while the events move; the appliance's
-- table is read after this (first move or not).
SELECT set_config('lock_timeout', %(lock_timeout)s, true);
LOCK TABLE workflowtracker_events IN EXCLUSIVE MODE;
LOCK TABLE appliance_events IN EXCLUSIVE MODE;
SELECT NOT EXISTS (SELECT 1 FROM appliance_events);

-- name: copy_keeping_ids
-- The first move: the events keep their notification ids, so the projector's
-- position and log_entries (whose ids are notification ids) stay valid.
INSERT INTO appliance_events (id, originator_id, originator_version, topic, state)
SELECT id, originator_id, originator_version, topic, state
FROM workflowtracker_events WHERE topic LIKE 'appliance.%%' ORDER BY id;
SELECT setval(pg_get_serial_sequence('appliance_events', 'id'), (SELECT max(id) FROM appliance_events));

-- name: copy_with_new_ids
-- A later move (events an old process appended after the first): new ids,
-- after every event already in the appliance's table, in their order.
INSERT INTO appliance_events (originator_id, originator_version, topic, state)
SELECT originator_id, originator_version, topic, state
FROM workflowtracker_events WHERE topic LIKE 'appliance.%%' ORDER BY id;

-- name: delete_moved
-- The moved events leave the shared table, in the same transaction.
DELETE FROM workflowtracker_events WHERE topic LIKE 'appliance.%%';

-- name: biomero_followers
-- Tracking tables of BIOMERO's views: where one exists, BIOMERO uses the shared table.
SELECT name FROM unnest(ARRAY['jobaccounting_tracking', 'jobprogress_tracking', 'workflowprogress_tracking',
                              'workflowanalytics_tracking']) AS name
WHERE to_regclass(name) IS NOT NULL;

-- name: drop_shared_log
-- The shared table held the appliance's events only and no BIOMERO follows it.
DROP TABLE workflowtracker_events;

-- name: tracking_tables
-- Which of the projector's tables exist (a database never projected has none).
SELECT to_regclass('projector_tracking') IS NOT NULL, to_regclass('projection_rebuild') IS NOT NULL;

-- name: move_position
-- The old position in the shared log becomes the position in the appliance's
-- log (same ids); the old projector never applied a BIOMERO event (it could
-- not resolve them), so BIOMERO's log is followed from its start.
INSERT INTO projector_tracking (application_name, notification_id)
SELECT 'Appliance', notification_id FROM projector_tracking WHERE application_name = 'WorkflowTracker'
ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id;
DELETE FROM projector_tracking WHERE application_name = 'WorkflowTracker';

-- name: move_rebuild_marker
-- An unfinished rebuild's marker goes with the position.
UPDATE projection_rebuild SET application_name = 'Appliance' WHERE application_name = 'WorkflowTracker'
  AND NOT EXISTS (SELECT 1 FROM projection_rebuild WHERE application_name = 'Appliance');
