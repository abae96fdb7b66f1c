-- The event store's hot paths, written by hand for one round trip each.
-- The table belongs to eventsourcing-sqlalchemy (`stored_events` shape,
-- named after the application: Appliance -> appliance_events; BIOMERO's own
-- tracker, also called WorkflowTracker, keeps workflowtracker_events).
-- Parameters use psycopg2's %(name)s style.

-- name: insert_events
-- Append events as one implicit transaction in one round trip. The table lock
-- makes notification ids commit in the order they are assigned (readers of the
-- log never see a gap fill in later), as the library's own recorders do.
SELECT set_config('lock_timeout', %(lock_timeout)s, true);
LOCK TABLE appliance_events IN EXCLUSIVE MODE;
NOTIFY appliance_events;
INSERT INTO appliance_events (originator_id, originator_version, topic, state)
SELECT * FROM unnest(%(originator_ids)s::uuid[], %(versions)s::bigint[], %(topics)s::text[], %(states)s::bytea[])
RETURNING id;

-- name: insert_events_with_receipts
-- insert_events, and the ids of the client events that produced them recorded
-- in the same transaction (ingest): a resent client event then conflicts on its
-- receipt. ingest_receipts comes from the Alembic revisions, so a tracker used
-- on a database never migrated still appends through insert_events.
SELECT set_config('lock_timeout', %(lock_timeout)s, true);
LOCK TABLE appliance_events IN EXCLUSIVE MODE;
NOTIFY appliance_events;
INSERT INTO ingest_receipts (event_id) SELECT unnest(%(receipts)s::uuid[]);
INSERT INTO appliance_events (originator_id, originator_version, topic, state)
SELECT * FROM unnest(%(originator_ids)s::uuid[], %(versions)s::bigint[], %(topics)s::text[], %(states)s::bytea[])
RETURNING id;

-- name: lock_events
-- Begin a writer's exclusive block (the tracker's last attempt after conflicts):
-- the lock insert_events takes, held until the block commits.
SELECT set_config('lock_timeout', %(lock_timeout)s, true);
LOCK TABLE appliance_events IN EXCLUSIVE MODE;

-- name: select_receipts
-- Which of these client event ids were applied already.
SELECT event_id FROM ingest_receipts WHERE event_id = ANY(%(event_ids)s::uuid[]);

-- name: select_events
-- One aggregate's events, oldest first, optionally after / up to a version.
SELECT originator_version, topic, state
FROM appliance_events
WHERE originator_id = %(originator_id)s
  AND originator_version > %(gt)s
  AND originator_version <= %(lte)s
ORDER BY originator_version
LIMIT %(limit)s;

-- name: select_events_desc
-- One aggregate's events, newest first.
SELECT originator_version, topic, state
FROM appliance_events
WHERE originator_id = %(originator_id)s
  AND originator_version > %(gt)s
  AND originator_version <= %(lte)s
ORDER BY originator_version DESC
LIMIT %(limit)s;

-- name: select_notifications
-- A page of the notification log from a position, optionally of some topics.
SELECT id, originator_id, originator_version, topic, state
FROM appliance_events
WHERE id >= %(start)s
  AND id <= %(stop)s
  AND (cardinality(%(topics)s::text[]) = 0 OR topic = ANY(%(topics)s::text[]))
ORDER BY id
LIMIT %(limit)s;

-- name: max_notification_id
-- The position of the newest event, or NULL for an empty store.
SELECT max(id) FROM appliance_events;
