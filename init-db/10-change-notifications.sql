-- Change notifications: one change_notifications row per INSERT, UPDATE or
-- DELETE on a view table, then pg_notify('table_changes', ...) with a small
-- payload. The function the triggers call, notify_change(), and the versioned
-- function that does the work (record_change_v1) come from the Alembic
-- revisions (migrations/versions/0006_*); this script only attaches the
-- triggers. Installed by `appliance install-triggers` / `appliance init`
-- after the migration, in file-name order, under the schema advisory lock.
-- Idempotent: every trigger is created with CREATE OR REPLACE.
--
-- Quiet mode: a transaction that runs
--     SET LOCAL appliance.suppress_change_notifications = 'on';
-- writes no change rows and sends no notifications (`appliance reproject`
-- does this, so rebuilding the views does not flood the feed).

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
