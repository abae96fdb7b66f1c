"""The appliance's side of the plugin's heartbeats: the `heartbeat` ingest event
and the stale check (appliance.staleness), against a real PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from appliance import db
from appliance.ingest import IngestError, apply_batch, parse_batch
from appliance.projection import Projector
from appliance.staleness import check_stale_runs


def _ingest(tracker, *events):
    return apply_batch(tracker, parse_batch({"events": [{"id": str(uuid.uuid4()), **e} for e in events]}))


def _sql(url, statement, params=()):
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def _status(url, run_id):
    return _sql(url, "SELECT status FROM workflow_runs WHERE id = %s", (run_id,))[0][0]


def test_heartbeat_is_an_ingest_event_that_moves_last_event_at(tracker, database_url):
    run_id = str(uuid.uuid4())
    _ingest(tracker, {"type": "run_started", "run_id": run_id, "name": "wf", "time": "2026-01-01T00:00:00Z"},
            {"type": "heartbeat", "run_id": run_id, "time": "2026-01-01T00:05:00Z"})
    assert tracker.get_workflow(run_id).status == "running"  # a heartbeat changes no state
    Projector(tracker).catch_up()
    rows = _sql(database_url, "SELECT status, last_event_at::text FROM workflow_runs WHERE id = %s", (run_id,))
    assert rows == [("running", "2026-01-01 00:05:00+00")]
    with pytest.raises(IngestError) as error:
        parse_batch({"events": [{"id": str(uuid.uuid4()), "type": "heartbeat"}]})
    assert "run_id: is required" in error.value.problems[0]["error"]


def test_a_silent_running_run_is_stale_until_it_is_heard_from(tracker, database_url):
    silent, done = str(uuid.uuid4()), str(uuid.uuid4())
    _ingest(tracker, {"type": "run_started", "run_id": silent, "name": "silent"},
            {"type": "run_started", "run_id": done, "name": "done"}, {"type": "run_finished", "run_id": done})
    projector = Projector(tracker)
    projector.catch_up()
    _sql(database_url, "UPDATE workflow_runs SET last_event_at = now() - interval '1 hour'")
    connection = db.connect(make_url(database_url), "test-staleness")  # the seam's connection, as the projector's
    try:
        assert check_stale_runs(connection, 0) == (0, 0)  # off
        assert check_stale_runs(connection, 60) == (1, 0)
        assert (_status(database_url, silent), _status(database_url, done)) == ("stale", "completed")
        assert check_stale_runs(connection, 60) == (0, 0)
        _ingest(tracker, {"type": "heartbeat", "run_id": silent})
        projector.catch_up()  # the projector resumes it at once
        assert _status(database_url, silent) == "running"
        # ... and the check would too, had the projector not
        _sql(database_url, "UPDATE workflow_runs SET status = 'stale' WHERE id = %s", (silent,))
        assert check_stale_runs(connection, 60) == (0, 1)
        assert _status(database_url, silent) == "running"
    finally:
        connection.close()
