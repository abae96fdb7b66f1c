"""The monitor's loop: LISTEN for changes, claim them by state, handle, mark processed.

Two connections: one LISTENs (and runs a heartbeat query, so a connection the
network dropped without a close is noticed by keepalives and the query, not
hours later); the other claims changes with FOR UPDATE SKIP LOCKED and marks
them processed in the same transaction as it handles them, so several
monitors never handle one change twice. A notification only wakes the loop:
every pass claims whatever is unprocessed, so nothing sent while the monitor
was down, or missed while reconnecting, is lost.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time

import psycopg2
import psycopg2.extras
from sqlalchemy.engine import URL

from appliance.config import MonitorSettings
from appliance.db import KEEPALIVE_ARGS
from appliance.monitor.handlers import Change, Handler, configured_handlers, run_handlers
from appliance.sql import load_queries

log = logging.getLogger(__name__)
QUERIES = load_queries("monitor.sql")
CHANNEL = "table_changes"
CLAIM_BATCH = 100
RETENTION_BATCH = 1000
RETENTION_EVERY_SECONDS = 60.0


class Monitor:
    def __init__(self, database_url: URL, settings: MonitorSettings, handlers: list[Handler] | None = None):
        self.dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.settings = settings
        self.handlers = configured_handlers(settings) if handlers is None else handlers
        self.monitor_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.handled = 0
        self._stopping = threading.Event()
        self._listener = self._worker = None
        self._last_retention = 0.0

    def stop(self) -> None:
        """Finish the change in hand, then return from `run` (safe from a signal handler)."""
        self._stopping.set()

    def run(self) -> None:
        """Handle changes until `stop`; reconnect with backoff when the database goes away."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._connect()
                backoff = 0.5
                self._serve()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                log.warning("database connection lost (%s); reconnecting in %.1f s", _first_line(error), backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._close()

    def catch_up(self) -> int:
        """Handle every unprocessed change now (one pass, for tests and start-up)."""
        if self._worker is None:
            self._connect()
        total = 0
        while not self._stopping.is_set():
            handled = self._claim_and_handle()
            total += handled
            if handled < CLAIM_BATCH:
                return total
        return total

    def _connect(self) -> None:
        self._close()
        self._listener = psycopg2.connect(self.dsn, application_name="appliance-monitor", **KEEPALIVE_ARGS)
        self._listener.autocommit = True
        with self._listener.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        self._worker = psycopg2.connect(self.dsn, application_name="appliance-monitor", **KEEPALIVE_ARGS)
        log.info("monitor %s listening on %s", self.monitor_id, CHANNEL)

    def _close(self) -> None:
        for connection in (self._listener, self._worker):
            if connection is not None and not connection.closed:
                connection.close()
        self._listener = self._worker = None

    def _serve(self) -> None:
        self.catch_up()
        self._heartbeat()
        next_poll = time.monotonic() + self.settings.poll_interval
        while not self._stopping.is_set():
            timeout = max(0.0, min(next_poll - time.monotonic(), 1.0))  # wake often to see stop()
            if select.select([self._listener], [], [], timeout)[0]:
                self._listener.poll()
                self._listener.notifies.clear()
                self.catch_up()
            if time.monotonic() >= next_poll:
                self.catch_up()  # the fallback: changes whose notification was missed
                self._heartbeat()
                self._retention()
                next_poll = time.monotonic() + self.settings.poll_interval

    def _claim_and_handle(self) -> int:
        with self._worker, self._worker.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(QUERIES["claim_changes"], {"limit": CLAIM_BATCH})
            claimed = [Change(**row) for row in cursor.fetchall()]
            for change in claimed:
                if self._stopping.is_set():
                    break  # the rest stay unprocessed; their locks go with the commit
                self._handle(cursor, change)
        return len(claimed)

    def _handle(self, cursor, change: Change) -> None:
        error = run_handlers(change, self.handlers, cursor)
        if error is None or change.attempts + 1 >= self.settings.max_attempts:
            if error is not None:
                log.error("change %d failed %d times, giving up: %s", change.id, change.attempts + 1, error)
            cursor.execute(QUERIES["mark_processed"], {"id": change.id, "error": error})
            self.handled += 1
        else:
            log.warning("change %d failed (attempt %d), will retry: %s", change.id, change.attempts + 1, error)
            cursor.execute(QUERIES["mark_failed"], {"id": change.id, "error": error})

    def _heartbeat(self) -> None:
        # On the listening connection: a dead one fails here instead of waiting forever.
        with self._listener.cursor() as cursor:
            cursor.execute(QUERIES["backlog"])
            backlog = cursor.fetchone()[0]
            cursor.execute(QUERIES["heartbeat"], {
                "monitor_id": self.monitor_id, "host": socket.gethostname(), "pid": os.getpid(),
                "backlog": backlog, "handled": self.handled,
            })

    def _retention(self) -> None:
        if time.monotonic() - self._last_retention < RETENTION_EVERY_SECONDS:
            return
        self._last_retention = time.monotonic()
        deleted = delete_old_changes(self._listener, self.settings.retention_days, self._stopping)
        if deleted:
            log.info("deleted %d processed changes older than %d days", deleted, self.settings.retention_days)


def delete_old_changes(connection, days: int, stopping: threading.Event | None = None) -> int:
    """Delete processed changes past retention in small autocommit batches."""
    total = 0
    with connection.cursor() as cursor:
        while stopping is None or not stopping.is_set():
            cursor.execute(QUERIES["delete_old_changes"], {"days": days, "limit": RETENTION_BATCH})
            total += cursor.rowcount
            if cursor.rowcount < RETENTION_BATCH:
                break
        cursor.execute(QUERIES["delete_old_heartbeats"])
    return total


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def run_monitor(settings) -> int:
    """`appliance monitor`: handle changes until SIGTERM or SIGINT, then exit 0."""
    import signal

    if not settings.enable_db_monitoring:
        print("monitor: ENABLE_DB_MONITORING=false, so the monitor is disabled; exiting", flush=True)
        return 0
    try:
        monitor = Monitor(settings.database_url, settings.monitor)
    except ValueError as error:  # a custom handler that cannot be loaded
        print(f"appliance monitor: {error}", flush=True)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: monitor.stop())
    monitor.run()
    return 0
