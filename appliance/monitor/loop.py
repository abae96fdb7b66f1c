"""The monitor's loop: LISTEN for changes, claim them by state, handle, mark processed.

Two connections: the listener (listener.py) LISTENs and pings, so a
connection the network dropped is noticed in seconds; the worker claims
changes with FOR UPDATE SKIP LOCKED and marks them processed in the same
transaction as it handles them, so several monitors never handle one change
twice. A notification only wakes the loop: every pass claims whatever is
unprocessed, so nothing sent while the monitor was down, or missed while
reconnecting, is lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy.engine import URL

from appliance import db
from appliance.config import MonitorSettings
from appliance.monitor.handlers import Change, Handler, configured_handlers, run_handlers
from appliance.monitor.listener import Listener
from appliance.monitor.retention import delete_old_changes
from appliance.sql import load_queries

log = logging.getLogger(__name__)
QUERIES = load_queries("monitor.sql")
CLAIM_BATCH = 100
# A claim's transaction ends after this much handling, so a slow webhook
# neither keeps a long transaction open nor, if the monitor is killed, gets
# many changes delivered again.
CLAIM_SECONDS = 1.0
RETENTION_EVERY_SECONDS = 60.0
MAX_RETRY_DELAY = 300.0


class Monitor:
    def __init__(self, database_url: URL, settings: MonitorSettings, handlers: list[Handler] | None = None, *,
                 ping_every: float = 5.0, ping_timeout: float = 10.0):
        """`ping_every` + `ping_timeout` bound how long a dead listening connection goes unnoticed."""
        self.database_url = database_url
        self.settings = settings
        self.ping_every, self.ping_timeout = ping_every, ping_timeout
        self._stopping = threading.Event()
        self.handlers = configured_handlers(settings, self._stopping.wait) if handlers is None else handlers
        self.monitor_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.handled = 0
        self._listener: Listener | None = None
        self._worker: db.Connection | None = None
        self._last_retention = 0.0
        self._next_beat = 0.0  # monotonic time of the next heartbeat
        # Change id -> when this monitor tries it again after a failure (monotonic clock).
        self._retry_at: dict[int, float] = {}

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
            except db.DATABASE_ERRORS as error:
                if not db.unavailable(error):  # lost, refused, or read-only (a primary fenced in place)
                    raise
                log.warning("database connection lost (%s); reconnecting in %.1f s", db.first_line(error), backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._close()

    def catch_up(self) -> int:
        """Handle every unprocessed change now (one pass, for tests and start-up)."""
        if self._worker is None:
            self._connect()
        total, more = 0, True
        while more and not self._stopping.is_set():
            handled, more = self._claim_and_handle()
            total += handled
            self._beat_if_due()
        return total

    def _connect(self) -> None:
        self._close()
        # LISTEN before the first claim: a change committed in between is claimed, not missed.
        self._listener = Listener(self.database_url, timeout=self.ping_timeout)
        self._worker = db.connect(self.database_url, "appliance-monitor")
        log.info("monitor %s listening", self.monitor_id)

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._worker is not None and not self._worker.closed:
            self._worker.close()
        self._listener = self._worker = None

    def _serve(self) -> None:
        # The first heartbeat comes after the first claim (catch_up beats when due), so a
        # status page that sees it knows the monitor LISTENs and its claims get answers.
        self._next_beat = 0.0
        self.catch_up()
        next_poll = time.monotonic() + self.settings.poll_interval
        next_ping = time.monotonic() + self.ping_every
        while not self._stopping.is_set():
            # Wake at least once a second to see stop().
            timeout = max(0.0, min(next_poll - time.monotonic(), next_ping - time.monotonic(),
                                   self._next_beat - time.monotonic(), 1.0))
            if self._listener.wait(timeout):
                self.catch_up()
            if time.monotonic() >= next_ping:
                self._listener.ping()  # first: a dead connection fails here, not in a claim
                next_ping = time.monotonic() + self.ping_every
            if time.monotonic() >= next_poll:
                self.catch_up()  # the fallback: changes whose notification was missed, retries
                next_poll = time.monotonic() + self.settings.poll_interval
            self._beat_if_due()

    def _beat_if_due(self) -> None:
        """Heartbeat (and retention, when its minute is up) once per poll interval.

        Also called between the claims of a long catch-up: a monitor draining a
        big backlog must not look dead to the status pages meanwhile.
        """
        if time.monotonic() < self._next_beat:
            return
        self._heartbeat()
        self._retention()
        self._next_beat = time.monotonic() + self.settings.poll_interval

    def _claim_and_handle(self) -> tuple[int, bool]:
        """One claim: (changes handled, whether more may be waiting)."""
        now = time.monotonic()
        self._retry_at = {change_id: at for change_id, at in self._retry_at.items() if at > now}
        handled = 0
        with self._worker.transaction(dict_rows=True) as cursor:
            cursor.execute(QUERIES["claim_changes"], {"limit": CLAIM_BATCH, "waiting": list(self._retry_at)})
            claimed = [Change(**row) for row in cursor.fetchall()]
            for change in claimed:
                if self._stopping.is_set() or time.monotonic() - now > CLAIM_SECONDS:
                    break  # the rest stay unprocessed; their locks go with the commit
                self._handle(cursor, change)
                handled += 1
        return handled, len(claimed) == CLAIM_BATCH or handled < len(claimed)

    def _handle(self, cursor, change: Change) -> None:
        error = run_handlers(change, self.handlers, cursor)
        attempts = change.attempts + 1
        # A failure because the monitor is stopping (a webhook left unanswered) never gives a
        # change up: the next start tries it again.
        if error is None or (attempts >= self.settings.max_attempts and not self._stopping.is_set()):
            if error is not None:
                log.error("change %d failed %d times, giving up: %s", change.id, attempts, error)
            cursor.execute(QUERIES["mark_processed"], {"id": change.id, "error": error})
            self.handled += 1
        else:
            # Later, with backoff: retried at once, a receiver that is briefly away
            # would use up every attempt in a second.
            delay = min(self.settings.poll_interval * 2 ** (attempts - 1), MAX_RETRY_DELAY)
            log.warning("change %d failed (attempt %d), retrying in %g s: %s", change.id, attempts, delay, error)
            cursor.execute(QUERIES["mark_failed"], {"id": change.id, "error": error})
            self._retry_at[change.id] = time.monotonic() + delay

    def _heartbeat(self) -> None:
        with self._worker.transaction() as cursor:
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
        deleted = delete_old_changes(self._worker, self.settings.retention_days, self._stopping)
        if deleted:
            log.info("deleted %d processed changes older than %d days", deleted, self.settings.retention_days)


def run_monitor(settings) -> int:
    """`appliance monitor`: handle changes until SIGTERM or SIGINT, then exit 0."""
    import signal

    if not settings.enable_db_monitoring:
        # The switch keeps supervisord from starting the monitor; someone who starts it
        # anyway (supervisorctl start monitor) means it. Exiting at once instead would
        # look like a crash to supervisord, and a FATAL monitor stops the appliance.
        print("monitor: ENABLE_DB_MONITORING=false, but started explicitly: monitoring", flush=True)
    try:
        monitor = Monitor(settings.database_url, settings.monitor)
    except ValueError as error:  # a custom handler that cannot be loaded
        print(f"appliance monitor: {error}", flush=True)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: monitor.stop())
    monitor.run()
    return 0
