"""POST /api/v1/events: the ingest endpoint (format and rules in docs/ingest.md)."""

from __future__ import annotations

import hmac
import json

from flask import Blueprint, current_app, jsonify, request

from appliance.ingest import IngestError, apply_batch, parse_batch
from appliance.errors import ConcurrencyError, DuplicateIdError
from appliance.validation import MAX_JSON_DEPTH
from appliance.web.db import tracker
from appliance.web.errors import error_response
from appliance.web.metrics import INGEST_ERRORS, INGESTED_EVENTS

blueprint = Blueprint("ingest", __name__)


@blueprint.post("/api/v1/events")
def ingest_events():
    web = current_app.config["SETTINGS"].web
    if not web.ingest_token:
        return _refuse(403, "ingest is disabled: set APPLIANCE_INGEST_TOKEN to a long random secret "
                            "and send it as 'Authorization: Bearer <token>'")
    if not _token_matches(web.ingest_token):
        response = _refuse(401, "a valid 'Authorization: Bearer <token>' header is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="appliance"'
        return response
    try:
        body = _body_within(web.ingest_max_bytes)
    except Exception:  # noqa: BLE001 - each server has its own error for a broken chunked body
        return _refuse(400, "the body could not be read (a broken chunked encoding?)")
    if body is None:
        return _refuse(413, f"the body is larger than {web.ingest_max_bytes} bytes; send smaller batches")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, 'the body is not JSON; send {"events": [...]}')
    except RecursionError:  # Python's parser gives up near 1,000 levels; the limit is far lower anyway
        return _refuse(400, f"the body is JSON nested too deeply; values may nest {MAX_JSON_DEPTH} deep")
    events = payload.get("events") if isinstance(payload, dict) else None
    if isinstance(events, list) and len(events) > web.ingest_max_events:
        return _refuse(413, f"{len(events)} events in one batch; the limit is {web.ingest_max_events}")
    try:
        result = apply_batch(tracker(), parse_batch(payload))
    except IngestError as error:
        return _refuse(400, str(error), problems=error.problems)
    except DuplicateIdError as error:  # a new run or task under an id already stored by another event
        return _refuse(409, str(error))
    except ConcurrencyError as error:
        response = _refuse(503, str(error))
        response.headers["Retry-After"] = "1"
        return response
    INGESTED_EVENTS.inc(result.applied)
    return jsonify({"applied": result.applied, "duplicates": result.duplicates})


def _body_within(limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes: judged by
    Content-Length before reading, or (chunked) by reading one byte past it at most."""
    if request.content_length is not None and request.content_length > limit:
        return None
    request.max_content_length = limit + 1  # the stream stops there instead of reading on
    body = request.stream.read()
    return None if len(body) > limit else body


def _token_matches(expected: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def _refuse(status: int, message: str, **details):
    INGEST_ERRORS.inc()
    return error_response(status, message, **details)
