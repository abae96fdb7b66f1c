-- Events the projector could not apply (projection_quarantine), the monitor's
-- given-up changes, and the projector's progress that health reads.

-- name: quarantine_event
-- Set an event aside with its error (again, if a rebuild met it once more).
INSERT INTO projection_quarantine (application_name, notification_id, originator_id, originator_version, topic, error)
VALUES (%(application)s, %(id)s, %(originator_id)s, %(originator_version)s, %(topic)s, %(error)s)
ON CONFLICT (application_name, notification_id)
DO UPDATE SET error = excluded.error, quarantined_at = now();

-- name: quarantined_events
-- Every event set aside, oldest first.
SELECT application_name, notification_id, originator_id, originator_version, topic, error, quarantined_at, retries
FROM projection_quarantine
ORDER BY application_name, notification_id;

-- name: is_quarantined
-- Whether an event of a log is set aside.
SELECT 1 FROM projection_quarantine WHERE application_name = %(application)s AND notification_id = %(id)s;

-- name: release_event
-- Retried with success, or discarded: no longer set aside.
DELETE FROM projection_quarantine WHERE application_name = %(application)s AND notification_id = %(id)s;

-- name: retry_failed
-- A retry failed again: its newest error.
UPDATE projection_quarantine SET error = %(error)s, retries = retries + 1
WHERE application_name = %(application)s AND notification_id = %(id)s;

-- name: clear_quarantine
-- A rebuild starts from the first event: what it cannot apply it sets aside anew.
DELETE FROM projection_quarantine WHERE application_name = ANY(%(applications)s);

-- name: given_up_changes
-- Changes the monitor gave up on after MONITOR_MAX_ATTEMPTS handlings, oldest first.
SELECT id, table_name, operation, row_key, "timestamp", attempts, last_error, processed_at
FROM change_notifications
WHERE processed AND last_error IS NOT NULL
ORDER BY id;

-- name: retry_changes
-- Given-up changes back to the monitor, with their attempts counted anew.
WITH retried AS (
    UPDATE change_notifications SET processed = false, processed_at = NULL, attempts = 0
    WHERE id = ANY(%(ids)s::bigint[]) AND processed AND last_error IS NOT NULL
    RETURNING id
)
SELECT id, pg_notify('table_changes', json_build_object('id', id, 'retry', true)::text) FROM retried;

-- name: discard_changes
-- Given-up changes no one will handle: gone.
DELETE FROM change_notifications
WHERE id = ANY(%(ids)s::bigint[]) AND processed AND last_error IS NOT NULL
RETURNING id;

-- name: progressed
-- The projector moved (or found nothing to do): not stuck.
INSERT INTO projector_progress (application_name, progressed_at, failures)
VALUES (%(application)s, now(), 0)
ON CONFLICT (application_name) DO UPDATE SET progressed_at = now(), failures = 0;

-- name: failed
-- A batch failed (and was not set aside): one more failure in a row.
INSERT INTO projector_progress (application_name, progressed_at, failures, last_error, failed_at)
VALUES (%(application)s, now(), 1, %(error)s, now())
ON CONFLICT (application_name) DO UPDATE
SET failures = projector_progress.failures + 1, last_error = excluded.last_error, failed_at = now();
