-- The monitor's queries. Changes are claimed by state, never by an id cursor:
-- a row that commits late with a lower id is still found.

-- name: listen
-- The triggers' channel: a notification only wakes the monitor, which then claims.
LISTEN table_changes;

-- name: claim_changes
-- Unprocessed changes, oldest first, that no other monitor holds right now,
-- except those this monitor failed on whose next try has not come yet.
SELECT id, table_name, operation, row_key, changed_fields, old_values, new_values,
       transaction_id, "timestamp", attempts
FROM change_notifications
WHERE NOT processed AND id <> ALL(%(waiting)s::bigint[])
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: mark_processed
-- Handled (or given up on, with its last error): never claimed again.
UPDATE change_notifications
SET processed = true, processed_at = now(), attempts = attempts + 1, last_error = %(error)s
WHERE id = %(id)s;

-- name: mark_failed
-- A handler failed: try again at a later claim; the rows behind it go on.
UPDATE change_notifications
SET attempts = attempts + 1, last_error = %(error)s
WHERE id = %(id)s;

-- name: backlog
-- Changes not yet handled.
SELECT count(*) FROM change_notifications WHERE NOT processed;

-- name: heartbeat
-- This monitor is alive; the status pages read last_seen and backlog.
INSERT INTO monitor_heartbeats (monitor_id, host, pid, last_seen, backlog, handled)
VALUES (%(monitor_id)s, %(host)s, %(pid)s, now(), %(backlog)s, %(handled)s)
ON CONFLICT (monitor_id) DO UPDATE
SET last_seen = now(), backlog = excluded.backlog, handled = excluded.handled;

-- name: delete_old_changes
-- One small batch of changes past retention (never one long transaction):
-- processed ones by when they were processed, and, for `appliance prune
-- --include-unprocessed`, unprocessed ones by when they were written. SKIP
-- LOCKED: a row a monitor is handling right now is left to it, not waited for.
DELETE FROM change_notifications
WHERE id IN (
    SELECT id FROM change_notifications
    WHERE (processed AND processed_at < now() - make_interval(days => %(days)s))
       OR (%(include_unprocessed)s AND NOT processed AND "timestamp" < now() - make_interval(days => %(days)s))
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
);

-- name: delete_old_heartbeats
-- Monitors not seen for a day are gone.
DELETE FROM monitor_heartbeats WHERE last_seen < now() - interval '1 day';
