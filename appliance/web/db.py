"""The request's database access, flaskr's way: one module the blueprints import.

`init_app` gives the app its pool (and the request deadline that cuts off a
frozen server); `cursor()` lends a view a read cursor on a pooled
connection; `tracker()` is the app's WorkflowTracker for ingest.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2.extras
from flask import Flask, current_app
from sqlalchemy import Engine

from appliance import db
from appliance.config import Settings
from appliance.web.deadline import RequestDeadline

ENGINE = "appliance.engine"
TRACKER = "appliance.tracker"


def init_app(app: Flask, settings: Settings, engine: Engine | None = None) -> None:
    app.extensions[ENGINE] = engine = engine or db.make_engine(
        settings.database_url, pool_size=4, application_name="appliance-web")
    if settings.web.db_deadline:
        deadline = RequestDeadline(engine, settings.web.db_deadline)
        app.before_request(deadline.start)
        app.teardown_request(lambda error: deadline.finish())


@contextmanager
def cursor() -> Iterator[psycopg2.extras.RealDictCursor]:
    """A read cursor on a pooled connection for this request, rolled back after."""
    connection = current_app.extensions[ENGINE].raw_connection()
    try:
        with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as read:
            yield read
        connection.rollback()
    except db.DISCONNECTED:
        connection.invalidate()
        raise
    finally:
        connection.close()


_tracker_lock = threading.Lock()


def tracker():
    """The app's WorkflowTracker, made on first use (ingest only) and kept."""
    from appliance.tracker import WorkflowTracker

    # Under a lock: two threads of a fresh worker making trackers at once collide in
    # eventsourcing-sqlalchemy's class-level table registry (found by tests/acceptance/test_faults.py).
    with _tracker_lock:
        if TRACKER not in current_app.extensions:
            current_app.extensions[TRACKER] = WorkflowTracker(
                current_app.config["SETTINGS"], engine=current_app.extensions[ENGINE])
    return current_app.extensions[TRACKER]
