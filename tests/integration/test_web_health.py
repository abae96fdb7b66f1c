"""Health, readiness, metrics, basic auth, failures, and `appliance web` under gunicorn."""

import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from uuid import uuid4

import pytest

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.web import create_app
from appliance.web.app import basic_auth_header
from tests.support.waiting import wait_for
from tests.support.web_support import TOKEN, bearer, events_of_a_run, make_app


def test_health_readiness_and_metrics(client, seeded):
    assert client.get("/healthz").json == {"status": "alive"}
    assert client.get("/readyz").json["status"] == "ready"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'appliance_runs{status="completed"} 1.0' in metrics
    assert "appliance_projector_lag_events 0.0" in metrics
    assert "appliance_change_backlog" in metrics


def test_readyz_is_503_on_an_unmigrated_database(empty_database_url):
    response = make_app(empty_database_url).test_client().get("/readyz")
    assert response.status_code == 503 and "appliance init" in response.json["reason"]


def test_basic_auth_guards_pages_and_reads_but_not_health(database_url):
    client = make_app(database_url, ui_user="admin", ui_password="s3cret").test_client()
    assert client.get("/").status_code == 401
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": basic_auth_header("admin", "nope")}).status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": basic_auth_header("admin", "s3cret")}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_a_database_outage_is_a_short_503_without_details():
    settings = Settings(database_url=parse_database_url("postgresql://secretuser:pw@127.0.0.1:1/secretdb"),
                        web=WebSettings(ingest_token=TOKEN))
    client = create_app(settings).test_client()
    for path in ("/", "/api/v1/runs"):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "secretuser" not in body and "secretdb" not in body and "Traceback" not in body
    ingest = client.post("/api/v1/events", json={"events": events_of_a_run(str(uuid4()))}, headers=bearer())
    assert ingest.status_code == 503


def test_readyz_and_metrics_on_an_unmigrated_database(empty_database_url):
    client = make_app(empty_database_url).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and "not installed" in response.json["reason"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "appliance_runs" not in metrics.get_data(as_text=True)


@contextmanager
def appliance_web(database_url, tmp_path, workers):
    """`appliance web` (gunicorn) on a free loopback port; stopped with SIGTERM, which must exit 0."""
    from appliance.localpg import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "BACKEND_PORT": str(port), "APPLIANCE_BIND": "127.0.0.1",
           "WEB_WORKERS": str(workers), "APPLIANCE_INGEST_TOKEN": TOKEN, "INGEST_MAX_BYTES": "100000",
           "TMPDIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "appliance.cli", "web"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _get(port, "/healthz")[0] == 200, 30, interval=0.1, message="appliance web to answer")
        yield port
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()


def _get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None, ""


def _post(port, body, headers, chunked=False):
    """(status, the JSON answer, or the raw one when the HTTP server itself answered)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api/v1/events", body=body, headers={**bearer(), **headers},
                           encode_chunked=chunked)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if response.getheader("Content-Type") == "application/json" else raw
    finally:
        connection.close()


def test_appliance_web_serves_under_gunicorn_and_stops_on_sigterm(database_url, tmp_path):
    with appliance_web(database_url, tmp_path, workers=1) as port:
        status, body = _get(port, "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
    assert list(tmp_path.iterdir()) == []  # the metrics folder went with the server


def test_metrics_add_up_the_counters_of_every_worker(database_url, tmp_path):
    with appliance_web(database_url, tmp_path, workers=2) as port:
        batches = 0

        def both_workers_took_a_batch():
            # One connection a batch; the kernel hands it to either worker, so post until both have.
            nonlocal batches
            body = json.dumps({"events": events_of_a_run(str(uuid4()))})
            assert _post(port, body, {"Content-Type": "application/json"})[0] == 200
            batches += 1
            # Each worker keeps its counters in a file of the server's metrics folder ...
            return len(list(tmp_path.glob("appliance-metrics-*/counter_*.db"))) == 2

        wait_for(both_workers_took_a_batch, 30, interval=0, message="both workers to take a batch")
        assert _post(port, b"{nope", {"Content-Type": "application/json"})[0] == 400
        for _ in range(6):  # ... and whichever answers the scrape adds them all up
            metrics = _get(port, "/metrics")[1]
            assert f"appliance_ingested_events_total {2 * batches}.0" in metrics
            assert "appliance_ingest_errors_total 1.0" in metrics


def test_a_chunked_body_over_the_byte_limit_gets_413_under_gunicorn(database_url, tmp_path):
    chunks = (b"x" * 10_000 for _ in range(20))  # 200 kB, no Content-Length
    with appliance_web(database_url, tmp_path, workers=1) as port:
        status, body = _post(port, chunks, {"Content-Type": "application/json"}, chunked=True)
        assert status == 413 and "100000 bytes" in body["error"], body
        # A chunk size that is no number: gunicorn's parser answers 400 before the app is asked.
        broken = iter([b"not a chunk size\r\n" + b"x" * 9000])
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        assert _post(port, broken, headers)[0] == 400


def test_web_settings_from_the_environment_are_validated_and_secrets_stay_out_of_repr():
    from appliance.config import ConfigError

    base = {"DATABASE_URL": "postgresql://u:pw@db/appliance"}
    web = Settings.from_env(base).web
    assert (web.bind, web.port, web.workers, web.ingest_token) == ("127.0.0.1", 8000, 2, None)
    settings = Settings.from_env({**base, "BACKEND_PORT": "9000", "WEB_WORKERS": "3",
                                  "APPLIANCE_INGEST_TOKEN": "tok-secret", "APPLIANCE_UI_USER": "admin",
                                  "APPLIANCE_UI_PASSWORD": "pw-secret", "INGEST_MAX_EVENTS": "500"})
    assert (settings.web.port, settings.web.workers, settings.web.ingest_max_events) == (9000, 3, 500)
    assert "tok-secret" not in repr(settings) and "pw-secret" not in repr(settings)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**base, "BACKEND_PORT": "70000", "APPLIANCE_UI_USER": "admin", "INGEST_MAX_BYTES": "10"})
    problems = " ".join(error.value.problems)
    assert "BACKEND_PORT" in problems and "APPLIANCE_UI_PASSWORD" in problems and "INGEST_MAX_BYTES" in problems


def test_an_unexpected_error_is_a_short_500_without_details(database_url, monkeypatch):
    from appliance.web import data

    def broken(cursor, args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(data, "runs_page", broken)
    client = make_app(database_url).test_client()
    for path in ("/", "/api/v1/runs"):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 500 and "secret internals" not in body and "Traceback" not in body
    assert client.get("/api/v1/runs").json == {"error": "internal error; the server's log has the details"}
