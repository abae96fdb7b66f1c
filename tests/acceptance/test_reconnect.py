"""Pooled connections survive a database restart."""

import pytest

from appliance import WorkflowTracker, db
from appliance.localpg import LocalPostgres


@pytest.fixture
def own_server():
    server = LocalPostgres.temporary().start()
    yield server
    server.destroy()


def test_tracker_works_again_after_a_database_restart(own_server, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    tracker = WorkflowTracker(database_url=own_server.url())
    try:
        run_id = tracker.initiate_workflow("before", "", None, None)
        own_server.stop()
        own_server.start()
        # Every pooled connection is dead now; the first command must not fail.
        tracker.start_workflow(run_id)
        tracker.repository.cache.get(run_id, evict=True)
        assert tracker.get_workflow(run_id).status == "running"
    finally:
        tracker.close()
