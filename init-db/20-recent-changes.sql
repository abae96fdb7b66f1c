-- get_recent_changes(since): the change feed since a time, newest first.
CREATE OR REPLACE FUNCTION get_recent_changes(since timestamp)
RETURNS SETOF change_notifications
LANGUAGE sql STABLE AS $$
    SELECT * FROM change_notifications
     WHERE "timestamp" >= since
     ORDER BY "timestamp" DESC, id DESC;
$$;
