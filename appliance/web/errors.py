"""Error answers: JSON under /api/, the error page elsewhere; a database outage is a 503.

Which database errors mean "unavailable, try again" and which mean "not
initialised" is decided in appliance.db (`unavailable`, `schema_missing`);
every other database error is a bug and stays a short 500, its details in
the server's log only.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from appliance import db

RETRY_AFTER_SECONDS = "5"


def register(app: Flask) -> None:
    for error in db.DATABASE_ERRORS:
        app.register_error_handler(error, _database_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(HTTPException, _http_error)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, **details) -> Response:
    if wants_json():
        response = jsonify({"error": message, **details})
    else:
        response = Response(render_template("error.html", status=status, message=message), mimetype="text/html")
    response.status_code = status
    return response


def _database_error(error: Exception) -> Response:
    if db.schema_missing(error):
        return _retry_later("the database has no appliance schema yet (or an old one): "
                            "run `appliance init`; the system page shows what is missing")
    if db.unavailable(error):
        # Never the driver's message: it can name the host, the user, the database.
        return _retry_later("the database is unavailable; try again shortly")
    current_app.logger.error("a database error that is not an outage", exc_info=error)
    return _internal_error(error)


def _retry_later(message: str) -> Response:
    response = error_response(503, message)
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _too_large(error: Exception) -> Response:
    limit = current_app.config["SETTINGS"].web.ingest_max_bytes
    return error_response(413, f"the body is larger than {limit} bytes; send smaller batches")


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
