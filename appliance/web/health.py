"""/healthz (the process answers), /readyz (database and schema), /metrics, /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from appliance.web import db_cursor, metrics
from appliance.web.errors import DATABASE_ERRORS, database_unavailable
from appliance.web.openapi import OPENAPI
from appliance.web.system import schema_state

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "alive"})


@blueprint.get("/readyz")
def readyz():
    try:
        with db_cursor() as cursor:
            schema = schema_state(cursor, current_app.config["SETTINGS"])
    except DATABASE_ERRORS as error:
        if not database_unavailable(error):
            raise
        return _not_ready("the database is unreachable")
    if schema["revision"] is None:
        return _not_ready(f"the schema is not installed (head is {schema['head']}): run `appliance init`")
    if not schema["at_head"]:
        return _not_ready(f"the schema is at {schema['revision']}, not at head {schema['head']}: "
                          "run `appliance init`")
    return jsonify({"status": "ready", "revision": schema["revision"]})


def _not_ready(reason: str):
    response = jsonify({"status": "not ready", "reason": reason})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


@blueprint.get("/metrics")
def prometheus_metrics():
    with db_cursor() as cursor:
        body = metrics.render(cursor, current_app.config["SETTINGS"], current_app.config["METRICS_DIR"])
    return Response(body, mimetype="text/plain; version=0.0.4")


@blueprint.get("/api/v1/openapi.json")
def openapi():
    return jsonify(OPENAPI)
