"""Database errors: an outage (or a standby, or an exhausted pool) is a short 503 with
Retry-After, as HTML or JSON by path; a programming error stays a short 500."""

from uuid import uuid4

import psycopg2
import pytest
from eventsourcing import persistence
from sqlalchemy import create_engine, exc

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.web import create_app
from tests.support.sql import query
from tests.support.web_support import TOKEN, bearer, events_of_a_run, make_app


def _wrapped(orig, cls=exc.DBAPIError, **kwargs):
    return cls("SELECT 1", {}, orig, **kwargs)


def _assert_short_503(response, as_json):
    body = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"], body
    assert response.is_json is as_json and "Traceback" not in body
    assert "the database is unavailable" in body


def test_an_exhausted_pool_is_503_not_a_hung_or_failed_request(database_url):
    # One connection, no overflow, a short wait: the test holds the only one.
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    app = create_app(Settings(database_url=parse_database_url(database_url), web=WebSettings()), engine=engine)
    client = app.test_client()
    held = engine.raw_connection()
    try:
        _assert_short_503(client.get("/"), as_json=False)
        _assert_short_503(client.get("/api/v1/runs"), as_json=True)
        assert client.get("/readyz").status_code == 503
    finally:
        held.close()
    assert client.get("/api/v1/runs").status_code == 200
    engine.dispose()


def test_ingest_into_a_read_only_database_is_503_and_reads_still_work(database_url, postgres_admin_url, tracker):
    # What a standby answers during a failover: every transaction is read-only.
    [(name,)] = query(database_url, "SELECT current_database()")
    query(postgres_admin_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    client = make_app(database_url).test_client()
    response = client.post("/api/v1/events", json={"events": events_of_a_run(str(uuid4()))}, headers=bearer(TOKEN))
    _assert_short_503(response, as_json=True)
    assert client.get("/api/v1/runs").status_code == 200
    query(postgres_admin_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
    assert tracker.recorder.max_notification_id() is None


@pytest.mark.parametrize("error, status", [
    (psycopg2.InterfaceError("connection already closed"), 503),
    (exc.TimeoutError("QueuePool limit reached"), 503),
    (psycopg2.ProgrammingError("syntax error at or near secret_internals"), 500),
    (_wrapped(psycopg2.DatabaseError("secret_internals")), 500),
])
def test_a_database_error_in_a_page_is_503_or_a_short_500(database_url, monkeypatch, error, status):
    from appliance.web import data

    def broken(cursor, args):  # the data function fails as the driver would; the database is real
        raise error

    monkeypatch.setattr(data, "runs_page", broken)
    client = make_app(database_url).test_client()
    for path, as_json in (("/", False), ("/api/v1/runs", True)):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == status and response.is_json is as_json, body
        assert "secret_internals" not in body and "Traceback" not in body
        assert ("Retry-After" in response.headers) is (status == 503)


@pytest.mark.parametrize("path", ["/jobs/a%00b", "/api/v1/jobs/a%00b", "/api/v1/runs?user=a%00b",
                                  "/runs?a%00=1", "/api/v1/runs/%00"])
def test_a_nul_character_in_the_url_is_400_not_500(database_url, path):
    client = make_app(database_url).test_client()
    response = client.get(path)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "NUL" in response.get_data(as_text=True)
    assert response.is_json is path.startswith("/api/")
