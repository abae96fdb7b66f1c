-- Monitor heartbeats: each running monitor upserts its row every poll, so the
-- status pages can show when it was last seen and its backlog. Not a view
-- (nothing derives it from the event store), so it lives here, not in Alembic.
CREATE TABLE IF NOT EXISTS monitor_heartbeats (
    monitor_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    backlog bigint NOT NULL DEFAULT 0,
    handled bigint NOT NULL DEFAULT 0
);
