"""/healthz (the process answers) and /readyz (the database is reachable and its schema at head)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from appliance import db
from appliance.system import schema_state
from appliance.web import db as web_db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "alive"})


@blueprint.get("/readyz")
def readyz():
    try:
        with web_db.cursor() as cursor:
            schema = schema_state(cursor, current_app.config["SETTINGS"])
    except db.DATABASE_ERRORS as error:
        if not db.unavailable(error):
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
