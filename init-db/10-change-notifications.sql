-- Change notifications: one change_notifications row per INSERT, UPDATE or
-- DELETE on a view table, then pg_notify('table_changes', ...) with a small
-- payload. Installed by `appliance install-triggers` / `appliance init` after
-- the Alembic migration, in file-name order, under the schema advisory lock.
-- Idempotent: every object is created with CREATE OR REPLACE.
--
-- Quiet mode: a transaction that runs
--     SET LOCAL appliance.suppress_change_notifications = 'on';
-- writes no change rows and sends no notifications (`appliance reproject`
-- does this, so rebuilding the views does not flood the feed).

CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    changed text[];
    old_values jsonb;
    new_values jsonb;
    key jsonb;
    change_id bigint;
BEGIN
    IF current_setting('appliance.suppress_change_notifications', true) = 'on' THEN
        RETURN NULL;
    END IF;

    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;

    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY n.key),
               jsonb_object_agg(n.key, old_row -> n.key),
               jsonb_object_agg(n.key, n.value)
          INTO changed, old_values, new_values
          FROM jsonb_each(new_row) AS n
         WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF changed IS NULL THEN
            RETURN NULL;  -- an UPDATE that changes no value is no change
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(new_row) AS k;
        new_values := new_row;
    ELSE
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(old_row) AS k;
        old_values := old_row;
    END IF;

    -- The key: the primary key columns (TG_ARGV), from the new row, or the old one for a DELETE.
    SELECT jsonb_object_agg(k, coalesce(new_row, old_row) -> k) INTO key FROM unnest(TG_ARGV) AS k;

    INSERT INTO change_notifications
        (table_name, operation, row_key, changed_fields, old_values, new_values, transaction_id)
    VALUES (TG_TABLE_NAME, TG_OP, key, changed, old_values, new_values, txid_current())
    RETURNING id INTO change_id;

    -- Small and bounded whatever the row holds (NOTIFY refuses 8,000 bytes): the
    -- id, the table, the operation, and the key unless it is long (a huge job id).
    PERFORM pg_notify('table_changes', json_build_object(
        'id', change_id, 'table', TG_TABLE_NAME, 'op', TG_OP,
        'key', CASE WHEN octet_length(key::text) <= 1000 THEN key END)::text);
    RETURN NULL;
END;
$$;

-- The WHEN clause keeps a quiet transaction's rows from even being queued for
-- the trigger (an AFTER row trigger's event is queued per row, then fired):
-- reprojection writes millions of rows and pays nothing for these triggers.
CREATE OR REPLACE TRIGGER workflow_runs_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON workflow_runs
    FOR EACH ROW
    WHEN (current_setting('appliance.suppress_change_notifications', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_change('id');

CREATE OR REPLACE TRIGGER job_executions_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON job_executions
    FOR EACH ROW
    WHEN (current_setting('appliance.suppress_change_notifications', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_change('id');

CREATE OR REPLACE TRIGGER log_entries_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON log_entries
    FOR EACH ROW
    WHEN (current_setting('appliance.suppress_change_notifications', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_change('id');

CREATE OR REPLACE TRIGGER job_accounting_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON job_accounting
    FOR EACH ROW
    WHEN (current_setting('appliance.suppress_change_notifications', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_change('job_id', 'task_id');
