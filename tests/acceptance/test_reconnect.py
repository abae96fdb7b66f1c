"""Pooled connections survive a database restart, and do not stay on a server that turned read-only."""

import psycopg2
import pytest

from appliance import WorkflowTracker, db
from appliance.localpg import LocalPostgres
from tests.support.fault_kit import read_only


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


def sessions(server: LocalPostgres, application_name: str) -> set[int]:
    admin = psycopg2.connect(server.url())
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))
            return {pid for pid, in cursor.fetchall()}
    finally:
        admin.close()


def test_a_tracker_drops_its_connection_to_a_server_turned_read_only(own_server):
    tracker = WorkflowTracker(database_url=own_server.url())
    try:
        run_id = tracker.initiate_workflow("before", "", None, None)
        before = sessions(own_server, "appliance-tracker")
        read_only(own_server, "on")
        with pytest.raises(db.DATABASE_ERRORS) as caught:
            tracker.start_workflow(run_id)
        assert db.unavailable(caught.value)
        read_only(own_server, "off")
        tracker.start_workflow(run_id)
        # With DATABASE_URL naming a standby too, that new connection is the promoted one's.
        assert before and not before & sessions(own_server, "appliance-tracker")
    finally:
        tracker.close()


def test_a_pool_drops_its_connections_to_a_server_turned_read_only(own_server):
    engine = db.make_engine(own_server.url(), application_name="appliance-test")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE written (x int)")
        before = sessions(own_server, "appliance-test")
        read_only(own_server, "on")
        with pytest.raises(db.DATABASE_ERRORS) as caught, engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO written VALUES (1)")
        assert db.unavailable(caught.value)
        read_only(own_server, "off")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO written VALUES (1)")
        assert before and not before & sessions(own_server, "appliance-test")
    finally:
        engine.dispose()
