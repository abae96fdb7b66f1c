-- What health reads besides the parts' positions (web.sql): is anything stuck or set aside.

-- name: projector_progress
-- When the projector last moved (or found nothing to do), and its failures in a row since.
SELECT failures, last_error, extract(epoch FROM now() - progressed_at) AS seconds_since_progress
FROM projector_progress WHERE application_name = %(application)s;

-- name: set_aside
-- Events the projector set aside, and changes the monitor gave up on.
SELECT (SELECT count(*) FROM projection_quarantine) AS events,
       (SELECT count(*) FROM change_notifications WHERE processed AND last_error IS NOT NULL) AS changes;

-- name: oldest_unhandled_change
-- How long the oldest change not yet handled by a monitor has waited (null: none waits).
SELECT extract(epoch FROM now() - min("timestamp")) AS seconds FROM change_notifications WHERE NOT processed;
