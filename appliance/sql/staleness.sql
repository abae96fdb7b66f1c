-- Stale runs (appliance/staleness.py): a running run whose source fell silent
-- for %(seconds)s is shown as stale, and as running again once heard from.

-- name: mark_stale
-- Running runs whose last event is older than the limit.
UPDATE workflow_runs SET status = 'stale'
WHERE status = 'running' AND last_event_at < now() - make_interval(secs => %(seconds)s);

-- name: resume
-- Stale runs heard from again within the limit.
UPDATE workflow_runs SET status = 'running'
WHERE status = 'stale' AND last_event_at >= now() - make_interval(secs => %(seconds)s);
