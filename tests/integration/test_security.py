"""Nothing reachable without the configured credentials, and credentials compared in constant time."""

import hmac
import re
from uuid import uuid4

import pytest

from appliance.web.app import basic_auth_header
from tests.support.web_support import TOKEN, bearer, make_app

# Health for orchestrators, the bundled stylesheet, script and icon; everything else needs the UI password.
PUBLIC = {"/healthz", "/readyz", "/static/<path:filename>", "/favicon.ico"}
SAMPLE_ARGUMENTS = {"uuid": str(uuid4()), "path": "app.css", "default": "4711", "int": "1"}


def every_route(app):
    """(rule, a path for it, its methods) of every route the app serves."""
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>",
                      lambda m: SAMPLE_ARGUMENTS[m.group(1) or "default"], rule.rule)
        yield rule.rule, path, sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_every_route_but_health_needs_the_ui_password(database_url):
    app = make_app(database_url, ui_user="admin", ui_password="s3cret-ui")
    client = app.test_client()
    wrong = {"Authorization": basic_auth_header("admin", "s3cret-uj")}
    checked = []
    for rule, path, methods in every_route(app):
        if rule in PUBLIC:
            continue
        for method in methods:
            attempts = [{}, wrong] + ([] if rule == "/api/v1/events" else [bearer()])  # a token is no password
            for headers in attempts:
                response = client.open(path, method=method, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.status_code)
            checked.append((method, rule))
    assert len(checked) >= 15, checked  # every page, its JSON twin, metrics and ingest
    assert ("POST", "/api/v1/events") in checked


def test_ingest_needs_its_token_even_with_the_ui_password(database_url, tracker):
    client = make_app(database_url, ui_user="admin", ui_password="s3cret-ui").test_client()
    ui = {"Authorization": basic_auth_header("admin", "s3cret-ui")}
    event = {"id": str(uuid4()), "type": "run_started", "run_id": str(uuid4()), "name": "x"}
    assert client.post("/api/v1/events", json={"events": [event]}, headers=ui).status_code == 401
    assert tracker.recorder.max_notification_id() is None
    assert client.post("/api/v1/events", json={"events": [event]}, headers=bearer()).status_code == 200


@pytest.fixture
def compared(monkeypatch):
    """What the app hands hmac.compare_digest: a constant-time comparison of each secret."""
    calls, compare_digest = [], hmac.compare_digest

    def spy(given, expected):
        calls.append(expected)
        return compare_digest(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_the_token_and_the_ui_credentials_are_compared_in_constant_time(database_url, compared):
    client = make_app(database_url, ui_user="admin", ui_password="s3cret-ui").test_client()
    client.get("/api/v1/runs", headers={"Authorization": basic_auth_header("admin", "guess")})
    assert {b"admin", b"s3cret-ui"} <= set(compared)
    compared.clear()
    client.post("/api/v1/events", json={"events": []}, headers=bearer("guess"))
    assert TOKEN.encode() in compared
