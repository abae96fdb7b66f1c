"""A frozen database server: requests answer 503 after WEB_DB_DEADLINE seconds instead of hanging."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import psycopg2
import pytest

from appliance.localpg import LocalPostgres
from tests.support.fault_kit import frozen
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.waiting import wait_for
from tests.support.web_support import bearer, events_of_a_run, make_app

DEADLINE = 2


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL of this module's own: the tests freeze it."""
    server = LocalPostgres.temporary().start()
    prepare_schema(server.url())
    yield server
    server.destroy()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_requests_to_a_frozen_server_get_503_after_the_deadline_and_work_after_the_thaw(server):
    client = make_app(server.url(), db_deadline=DEADLINE).test_client()
    assert client.get("/api/v1/runs").status_code == 200  # a pooled connection, used just now: no ping
    run_id = str(uuid4())
    with frozen(server):
        calls = [lambda: client.get("/api/v1/runs"), lambda: client.get("/readyz"),
                 lambda: client.post("/api/v1/events", json={"events": events_of_a_run(run_id)}, headers=bearer())]
        for number, call in enumerate(calls):
            response, took = timed(call)
            assert response.status_code == 503 and response.headers["Retry-After"], response.get_data(as_text=True)
            # The pooled connection is cut at the deadline; a new one gives up at connect_timeout (10 s).
            assert took < (DEADLINE + 3 if number == 0 else 15)
    ingest = client.post("/api/v1/events", json={"events": events_of_a_run(run_id)}, headers=bearer())
    assert ingest.status_code == 200, ingest.get_data(as_text=True)
    assert ingest.json["applied"] == 2  # the batch cut off while frozen stored nothing
    assert client.get("/api/v1/runs").status_code == 200


def test_the_deadline_cuts_only_its_own_request(server):
    """One request waits on a locked table past its deadline; another thread's requests are served all along."""
    app = make_app(server.url(), db_deadline=DEADLINE)
    blocker = psycopg2.connect(server.url())
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE workflow_runs IN ACCESS EXCLUSIVE MODE")
        slow = {}
        thread = threading.Thread(target=lambda: slow.update(answer=timed(lambda: app.test_client().get("/api/v1/runs"))))
        thread.start()
        wait_for(lambda: waiting_on_a_lock(server.url()), 10, message="the slow request to wait on the lock")
        others = []
        while thread.is_alive():  # across the slow request's deadline
            others.append(app.test_client().get("/api/v1/changes").status_code)
        response, took = slow["answer"]
        assert response.status_code == 503
        assert DEADLINE - 0.5 < took < DEADLINE + 5
        assert others and set(others) == {200}
    finally:
        blocker.close()


def waiting_on_a_lock(url: str) -> bool:
    return query(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0][0] > 0


def test_no_deadline_when_it_is_0(server):
    app = make_app(server.url(), db_deadline=0)
    blocker = psycopg2.connect(server.url())
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE workflow_runs IN ACCESS EXCLUSIVE MODE")
        timer = threading.Timer(DEADLINE + 1, blocker.rollback)
        timer.start()
        response, took = timed(lambda: app.test_client().get("/api/v1/runs"))
        timer.join()
        assert response.status_code == 200 and took > DEADLINE + 0.5
    finally:
        blocker.close()
