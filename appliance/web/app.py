"""The Flask application factory (`appliance.web:create_app`): blueprints, basic auth, security headers."""

from __future__ import annotations

import base64
import hmac

from flask import Flask, Response, current_app, request
from sqlalchemy import Engine

from appliance.config import Settings
from appliance.web import analytics, db, delivery, errors, health, ingest, metrics, openapi, pages

OPEN_PATHS = ("/healthz", "/readyz", "/static/", "/favicon.ico", "/api/v1/events")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               metrics_dir: str | None = None) -> Flask:
    """The app; `metrics_dir` is prometheus-client's multiprocess folder under gunicorn."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["METRICS_DIR"] = metrics_dir
    app.config["MAX_CONTENT_LENGTH"] = settings.web.ingest_max_bytes
    db.init_app(app, settings, engine)
    for module in (pages, ingest, health, metrics, openapi, analytics):
        app.register_blueprint(module.blueprint)
    app.before_request(_refuse_nul_in_url)
    app.before_request(_require_basic_auth)
    app.after_request(_security_headers)
    delivery.install(app)
    errors.register(app)
    return app


def _require_basic_auth():
    web = current_app.config["SETTINGS"].web
    if not web.ui_user or request.path.startswith(OPEN_PATHS):
        return None
    auth = request.authorization
    user_ok = auth is not None and hmac.compare_digest((auth.username or "").encode(), web.ui_user.encode())
    password_ok = auth is not None and hmac.compare_digest((auth.password or "").encode(), web.ui_password.encode())
    if user_ok and password_ok:
        return None
    response = errors.error_response(401, "authentication required")
    response.headers["WWW-Authenticate"] = 'Basic realm="appliance", charset="UTF-8"'
    return response


def _refuse_nul_in_url():
    # PostgreSQL text cannot hold NUL, so no stored id or name has one, and the
    # driver refuses to send it (a ValueError, which was a 500).
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        return errors.error_response(400, "the URL holds a NUL character (%00), which no stored value has")
    return None


def _security_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def basic_auth_header(user: str, password: str) -> str:
    """For tests and clients: the Authorization header of basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
