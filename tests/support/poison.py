"""A poison event: stored in the event store as any event is, but one the views cannot hold.

A run's progress report of 2^63 steps: the tracker and ingest refuse such a
value, but an event store written by an older version, by hand or by another
program can hold it, and no integer column can.
"""

from __future__ import annotations

import json

from tests.support.sql import query

POISON_TOPIC = "appliance.domain:WorkflowRun.ProgressReported"
TOO_BIG = 2**63


def poison_state() -> bytes:
    return json.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"},
                       "done": TOO_BIG, "total": TOO_BIG}, separators=(",", ":")).encode()


def insert_poison_event(url: str, run_id) -> int:
    """Append the poison event to a run's stream (as its next version); its notification id."""
    return query(url, """
        INSERT INTO appliance_events (originator_id, originator_version, topic, state)
        SELECT %s::uuid, max(originator_version) + 1, %s, %s FROM appliance_events WHERE originator_id = %s::uuid
        RETURNING id""", str(run_id), POISON_TOPIC, poison_state(), str(run_id))[0][0]


def refuse_new_runs(url: str) -> None:
    """A failure no event causes: every new row of workflow_runs is refused until
    `DROP TRIGGER refuse_runs ON workflow_runs` (a disk full, a revoked grant...)."""
    query(url, """
        CREATE FUNCTION refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
        CREATE TRIGGER refuse_runs BEFORE INSERT ON workflow_runs FOR EACH ROW EXECUTE FUNCTION refuse_runs();
    """)


def record_poison_between_runs(tracker, url: str):
    """A run before the poison, the poisoned run, a run after it; (poisoned run, poison's id)."""
    before = tracker.initiate_workflow("before", "", "alice", "lab")
    tracker.start_workflow(before)
    poisoned = tracker.initiate_workflow("poisoned", "", "alice", "lab")
    poison = insert_poison_event(url, poisoned)
    after = tracker.initiate_workflow("after", "", "bob", "lab")
    tracker.complete_workflow(after)
    return poisoned, poison
