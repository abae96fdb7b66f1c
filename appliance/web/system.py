"""The state of the appliance's parts: for /readyz, the system page and /metrics."""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

import psycopg2

from appliance.config import Settings
from appliance.migrator import head_revision
from appliance.sql import load_queries

QUERIES = load_queries("web.sql")
EXPECTED_TRIGGERS = 4


def schema_state(cursor, settings: Settings) -> dict[str, Any]:
    head = head_revision(settings.migrations_dir)
    try:
        cursor.execute("SAVEPOINT schema_state")
        cursor.execute(QUERIES["schema_revision"])
        row = cursor.fetchone()
        revision = row["version_num"] if row else None
    except psycopg2.errors.UndefinedTable:
        cursor.execute("ROLLBACK TO SAVEPOINT schema_state")
        revision = None
    return {"revision": revision, "head": head, "at_head": revision == head}


def system_state(cursor, settings: Settings) -> dict[str, Any]:
    state: dict[str, Any] = {"database": "reachable", "schema": schema_state(cursor, settings)}
    cursor.execute(QUERIES["installed_triggers"])
    triggers = [row["tgname"] for row in cursor.fetchall()]
    state["triggers"] = {"installed": triggers, "complete": len(triggers) >= EXPECTED_TRIGGERS}
    state["projector"] = _optional(cursor, "projector_position", _projector)
    state["monitors"] = _optional(cursor, "monitor_heartbeats", lambda rows: [_monitor(r) for r in rows]) or []
    cursor.execute(QUERIES["change_backlog"])
    state["change_backlog"] = cursor.fetchone()["backlog"]
    state["programs"] = supervisor_programs(settings.web.run_dir)
    return state


def _optional(cursor, query: str, shape):
    """A query over a table another part creates; None when that part has not run yet."""
    cursor.execute("SAVEPOINT optional")
    try:
        cursor.execute(QUERIES[query])
        return shape(cursor.fetchall())
    except psycopg2.errors.UndefinedTable:
        cursor.execute("ROLLBACK TO SAVEPOINT optional")
        return None


def _projector(rows) -> dict[str, Any]:
    position, newest = rows[0]["position"], rows[0]["newest"] or 0
    return {"position": position, "newest_event": newest, "lag_events": None if position is None else newest - position}


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
