"""The Flask application factory (`appliance.web:create_app`) and what the views share:
the request's database cursor and tracker, basic auth, security headers, error answers."""

from __future__ import annotations

import base64
import hmac
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import psycopg2.extras
from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from appliance.config import Settings
from appliance.db import make_engine
from appliance.web.deadline import RequestDeadline
from appliance.web.errors import DATABASE_ERRORS, database_unavailable, schema_missing

OPEN_PATHS = ("/healthz", "/readyz", "/static/", "/favicon.ico", "/api/v1/events")
RETRY_AFTER_SECONDS = "5"


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               metrics_dir: str | None = None) -> Flask:
    """The app; `metrics_dir` is prometheus-client's multiprocess folder under gunicorn."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["METRICS_DIR"] = metrics_dir
    app.config["MAX_CONTENT_LENGTH"] = settings.web.ingest_max_bytes
    app.extensions["appliance.engine"] = engine = engine or make_engine(
        settings.database_url, pool_size=4, application_name="appliance-web")
    if settings.web.db_deadline:
        deadline = RequestDeadline(engine, settings.web.db_deadline)
        app.before_request(deadline.start)
        app.teardown_request(lambda error: deadline.finish())

    from appliance.web import analytics, delivery, health, ingest, pages

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(ingest.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(analytics.blueprint)
    app.before_request(_refuse_nul_in_url)
    app.before_request(_require_basic_auth)
    app.after_request(_security_headers)
    delivery.install(app)
    for error in DATABASE_ERRORS:
        app.register_error_handler(error, _database_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(HTTPException, _http_error)
    return app


@contextmanager
def db_cursor() -> Iterator[psycopg2.extras.RealDictCursor]:
    """A read cursor on a pooled connection for this request."""
    from flask import current_app

    connection = current_app.extensions["appliance.engine"].raw_connection()
    try:
        with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            yield cursor
        connection.rollback()
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        connection.invalidate()
        raise
    finally:
        connection.close()


_tracker_lock = threading.Lock()


def tracker():
    """The app's WorkflowTracker, made on first use (ingest only) and kept."""
    from flask import current_app

    from appliance.tracker import WorkflowTracker

    # Under a lock: two threads of a fresh worker making trackers at once collide in
    # eventsourcing-sqlalchemy's class-level table registry (found by tests/acceptance/test_faults.py).
    with _tracker_lock:
        if "appliance.tracker" not in current_app.extensions:
            current_app.extensions["appliance.tracker"] = WorkflowTracker(
                current_app.config["SETTINGS"], engine=current_app.extensions["appliance.engine"])
    return current_app.extensions["appliance.tracker"]


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _require_basic_auth():
    web = _settings().web
    if not web.ui_user or request.path.startswith(OPEN_PATHS):
        return None
    auth = request.authorization
    user_ok = auth is not None and hmac.compare_digest((auth.username or "").encode(), web.ui_user.encode())
    password_ok = auth is not None and hmac.compare_digest((auth.password or "").encode(), web.ui_password.encode())
    if user_ok and password_ok:
        return None
    response = error_response(401, "authentication required")
    response.headers["WWW-Authenticate"] = 'Basic realm="appliance", charset="UTF-8"'
    return response


def _refuse_nul_in_url():
    # PostgreSQL text cannot hold NUL, so no stored id or name has one, and the
    # driver refuses to send it (a ValueError, which was a 500).
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        return error_response(400, "the URL holds a NUL character (%00), which no stored value has")
    return None


def _settings() -> Settings:
    from flask import current_app

    return current_app.config["SETTINGS"]


def _security_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _database_error(error: Exception) -> Response:
    if schema_missing(error):
        return _schema_missing(error)
    if database_unavailable(error):
        return _database_unavailable(error)
    from flask import current_app

    current_app.logger.error("a database error that is not an outage", exc_info=error)
    return _internal_error(error)


def _database_unavailable(error: Exception) -> Response:
    # Never the driver's message: it can name the host, the user, the database.
    response = error_response(503, "the database is unavailable; try again shortly")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _schema_missing(error: Exception) -> Response:
    response = error_response(503, "the database has no appliance schema yet (or an old one): "
                                   "run `appliance init`; the system page shows what is missing")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _too_large(error: Exception) -> Response:
    return error_response(413, f"the body is larger than {_settings().web.ingest_max_bytes} bytes; "
                               "send smaller batches")


def _http_error(error: HTTPException) -> Response:
    """404, 405 and the like in the answer's format: JSON under /api/, the error page elsewhere."""
    response = error_response(error.code or 500, error.description or error.name)
    for name, value in error.get_headers():
        if name.lower() != "content-type":  # such as Allow of a 405
            response.headers[name] = value
    return response


def _internal_error(error: Exception) -> Response:
    # The details go to the server's log (Flask logs the exception), never to the client.
    return error_response(500, "internal error; the server's log has the details")


def error_response(status: int, message: str, **details) -> Response:
    if wants_json():
        response = jsonify({"error": message, **details})
    else:
        response = Response(render_template("error.html", status=status, message=message), mimetype="text/html")
    response.status_code = status
    return response


def basic_auth_header(user: str, password: str) -> str:
    """For tests and clients: the Authorization header of basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

