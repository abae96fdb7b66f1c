"""monitor_heartbeats and ingest_receipts under Alembic; the change trigger's work in a versioned function.

Until this revision, `monitor_heartbeats` was made by init-db/30-monitor-heartbeats.sql,
`ingest_receipts` by the event store's Python, and `notify_change()` (with
`get_recent_changes`) replaced in place by init-db at every start. Now:

- both tables are created here, IF NOT EXISTS: a database that has them keeps
  their rows, and their primary keys take the models' names;
- the trigger's work is `record_change_v1(...)`, a plain function that is
  never changed once released: a new behaviour is `record_change_v2` in a new
  revision, and the old one is dropped a revision later, so code running
  during an upgrade never finds its function changed under it;
- `notify_change()` keeps its name (the triggers of init-db call it, and
  users see it): it only passes the row to the current version;
- `get_recent_changes(since)` is created here too (unchanged).

Downgrading to 0005 puts back notify_change()'s full body and drops
record_change_v1 and get_recent_changes (the older version's init-db makes
it again; it would keep change_notifications from being dropped further
down); the two tables stay with their rows, as the older version expects them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

RECORD_CHANGE_V1 = r"""
CREATE FUNCTION record_change_v1(operation text, table_name text, old_row jsonb, new_row jsonb,
                                 key_columns text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
    old_values jsonb;
    new_values jsonb;
    key jsonb;
    change_id bigint;
BEGIN
    IF operation = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY n.key),
               jsonb_object_agg(n.key, old_row -> n.key),
               jsonb_object_agg(n.key, n.value)
          INTO changed, old_values, new_values
          FROM jsonb_each(new_row) AS n
         WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF changed IS NULL THEN
            RETURN;  -- an UPDATE that changes no value is no change
        END IF;
    ELSIF operation = 'INSERT' THEN
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(new_row) AS k;
        new_values := new_row;
    ELSE
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(old_row) AS k;
        old_values := old_row;
    END IF;

    -- The key: the primary key columns, from the new row, or the old one for a DELETE.
    SELECT jsonb_object_agg(k, coalesce(new_row, old_row) -> k) INTO key FROM unnest(key_columns) AS k;

    INSERT INTO change_notifications
        (table_name, operation, row_key, changed_fields, old_values, new_values, transaction_id)
    VALUES (table_name, operation, key, changed, old_values, new_values, txid_current())
    RETURNING id INTO change_id;

    -- Small and bounded whatever the row holds (NOTIFY refuses 8,000 bytes): the
    -- id, the table, the operation, and the key unless it is long (a huge job id).
    PERFORM pg_notify('table_changes', json_build_object(
        'id', change_id, 'table', table_name, 'op', operation,
        'key', CASE WHEN octet_length(key::text) <= 1000 THEN key END)::text);
END;
$$;
"""

# The triggers' function: its name is what users and the init-db triggers know.
# Quiet mode (SET LOCAL appliance.suppress_change_notifications = 'on', as
# `appliance reproject` does) records nothing.
NOTIFY_CHANGE_CALLING_V1 = r"""
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('appliance.suppress_change_notifications', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM record_change_v1(TG_OP, TG_TABLE_NAME,
                             CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                             CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
                             TG_ARGV);
    RETURN NULL;
END;
$$;
"""

GET_RECENT_CHANGES = r"""
CREATE OR REPLACE FUNCTION get_recent_changes(since timestamp)
RETURNS SETOF change_notifications
LANGUAGE sql STABLE AS $$
    SELECT * FROM change_notifications
     WHERE "timestamp" >= since
     ORDER BY "timestamp" DESC, id DESC;
$$;
"""

# notify_change() as init-db/10-change-notifications.sql installed it before this revision.
NOTIFY_CHANGE_BEFORE_0003 = r"""
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
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(new_row) AS k;
        new_values := new_row;
    ELSE
        SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(old_row) AS k;
        old_values := old_row;
    END IF;

    SELECT jsonb_object_agg(k, coalesce(new_row, old_row) -> k) INTO key FROM unnest(TG_ARGV) AS k;

    INSERT INTO change_notifications
        (table_name, operation, row_key, changed_fields, old_values, new_values, transaction_id)
    VALUES (TG_TABLE_NAME, TG_OP, key, changed, old_values, new_values, txid_current())
    RETURNING id INTO change_id;

    PERFORM pg_notify('table_changes', json_build_object(
        'id', change_id, 'table', TG_TABLE_NAME, 'op', TG_OP,
        'key', CASE WHEN octet_length(key::text) <= 1000 THEN key END)::text);
    RETURN NULL;
END;
$$;
"""


def _rename_primary_key(table: str) -> None:
    """A table made before this revision has PostgreSQL's default name for its key: take the model's."""
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{table}_pkey') THEN
                ALTER TABLE {table} RENAME CONSTRAINT {table}_pkey TO pk_{table};
            END IF;
        END $$;
    """)


def upgrade() -> None:
    op.create_table('monitor_heartbeats',
    sa.Column('monitor_id', sa.Text(), nullable=False),
    sa.Column('host', sa.Text(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('backlog', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('handled', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_monitor_heartbeats')),
    if_not_exists=True,
    )
    _rename_primary_key('monitor_heartbeats')
    op.create_table('ingest_receipts',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_ingest_receipts')),
    if_not_exists=True,
    )
    _rename_primary_key('ingest_receipts')
    op.execute(RECORD_CHANGE_V1)
    op.execute(NOTIFY_CHANGE_CALLING_V1)
    op.execute(GET_RECENT_CHANGES)


def downgrade() -> None:
    op.execute(NOTIFY_CHANGE_BEFORE_0003)
    op.execute("DROP FUNCTION record_change_v1(text, text, jsonb, jsonb, text[])")
    op.execute("DROP FUNCTION get_recent_changes(timestamp)")
