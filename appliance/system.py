"""The state of the appliance's parts, read from the database and supervisord.

One implementation for `appliance status` (the command line, which must
answer even when the web program is down) and the web's /readyz, /system and
/metrics; so it lives below both.
"""

from __future__ import annotations

import functools
import http.client
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

from psycopg2 import sql

from appliance import db
from appliance.config import Settings
from appliance.migrator import head_revision
from appliance.projection.store import APPLIANCE, BIOMERO, TRACKING_TABLE, UPSTREAM, Upstream
from appliance.sql import load_queries

QUERIES = load_queries("system.sql")
HEALTH_QUERIES = load_queries("health.sql")
# The revisions on disk change only with a new release: read them once per process,
# not at every /readyz the health check sends.
_head_revision = functools.cache(head_revision)
EXPECTED_TRIGGERS = 4


def schema_state(cursor, settings: Settings) -> dict[str, Any]:
    revision = optional_query(cursor, QUERIES["schema_revision"], lambda rows: rows[0]["version_num"] if rows else None)
    head = _head_revision(settings.migrations_dir)
    return {"revision": revision, "head": head, "at_head": revision == head}


def system_state(cursor, settings: Settings) -> dict[str, Any]:
    """Each part's state; a part not installed (or not run yet) is None, never an error."""
    state: dict[str, Any] = {"database": "reachable", "schema": schema_state(cursor, settings)}
    cursor.execute(QUERIES["installed_triggers"])
    triggers = [row["tgname"] for row in cursor.fetchall()]
    state["triggers"] = {"installed": triggers, "complete": len(triggers) >= EXPECTED_TRIGGERS}
    state["projector"] = projector_state(cursor, APPLIANCE)
    state["biomero_log"] = projector_state(cursor, BIOMERO)  # None: no BIOMERO here
    state["skipped_topics"] = optional_query(cursor, QUERIES["skipped_topics"], lambda rows: [_skipped(r) for r in rows])
    state["monitors"] = optional_query(cursor, QUERIES["monitor_heartbeats"], lambda rows: [_monitor(r) for r in rows])
    state["change_backlog"] = optional_query(cursor, QUERIES["change_backlog"], lambda rows: rows[0]["backlog"])
    state["health"] = health_state(cursor)
    state["programs"] = supervisor_programs(settings.web.run_dir)
    return state


def health_state(cursor) -> dict[str, Any]:
    """What appliance.health judges besides positions: progress, what is set aside, the wait of changes."""
    return {
        "progress": optional_query(cursor, HEALTH_QUERIES["projector_progress"], _first_row,
                                   {"application": UPSTREAM}),
        "set_aside": optional_query(cursor, HEALTH_QUERIES["set_aside"], _first_row),
        "oldest_unhandled_change_seconds": optional_query(
            cursor, HEALTH_QUERIES["oldest_unhandled_change"], lambda rows: _seconds(rows[0]["seconds"])),
    }


def _first_row(rows) -> dict[str, Any] | None:
    if not rows:
        return None
    return {key: _seconds(value) if key.startswith("seconds") else value for key, value in rows[0].items()}


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 1)


def projector_state(cursor, upstream: Upstream):
    """The projector's position in a log it follows and that log's newest event; None when the log is not here."""
    return optional_query(cursor, projector_position_query(upstream), _projector, {"upstream": upstream.name})


def projector_position_query(upstream: Upstream) -> sql.Composed:
    """The query with the tracking and events tables' names filled in (they are not values)."""
    return sql.SQL(QUERIES["projector_position"]).format(
        tracking_table=sql.Identifier(TRACKING_TABLE), events_table=sql.Identifier(upstream.table))


def optional_query(cursor, query: str | sql.Composed, shape, params: dict | None = None):
    """`shape(rows)` of a query over tables another part creates; None when that part is missing."""
    try:
        # The failed statement would abort the transaction; the savepoint lets the page go on.
        with db.savepoint(cursor):
            cursor.execute(query, params)
            return shape(cursor.fetchall())
    except db.SCHEMA_MISSING:
        return None


def _projector(rows) -> dict[str, Any]:
    position, newest = rows[0]["position"], rows[0]["newest"] or 0
    return {"position": position, "newest_event": newest, "lag_events": None if position is None else newest - position}


def _skipped(row) -> dict[str, Any]:
    return {"log": row["application_name"], "topic": row["topic"], "events": row["events"],
            "first_notification_id": row["first_notification_id"],
            "last_notification_id": row["last_notification_id"], "last_seen": row["last_seen_at"].isoformat()}


def _monitor(row) -> dict[str, Any]:
    return {"id": row["monitor_id"], "host": row["host"], "pid": row["pid"],
            "last_seen": row["last_seen"].isoformat(), "seconds_ago": round(float(row["seconds_ago"]), 1),
            "backlog": row["backlog"], "handled": row["handled"]}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=2)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2)
        self.sock.connect(self.path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str):
        super().__init__()
        self.socket_path = path

    def make_connection(self, host):
        return _UnixConnection(self.socket_path)


def supervisor_programs(run_dir: Path | None) -> list[dict[str, Any]] | None:
    """Program states from supervisord over its unix socket; None when not under supervisor."""
    if run_dir is None or not (run_dir / "supervisor.sock").exists():
        return None
    proxy = xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(str(run_dir / "supervisor.sock")))
    try:
        infos = proxy.supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return None
    return [{"name": info["name"], "state": info["statename"], "description": info["description"]} for info in infos]
