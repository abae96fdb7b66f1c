"""A deadline on each request's database work, so a frozen server gets a 503, not a hung request.

TCP keepalives and `tcp_user_timeout` (appliance/db.py) notice a network
that drops packets, but not a server that is stopped or stuck while its
kernel still acknowledges them: a query then waits for as long as the server
stays frozen, and so does the request, its worker thread and the load
balancer's health check. libpq has no client-side query timeout, so a
watchdog thread keeps, for each request's thread, the connections it has
checked out of the pool; when the request passes its deadline it shuts those
sockets down. The blocked call then fails at once with "server closed the
connection unexpectedly", the pool discards the connection, and the request
answers 503 with Retry-After like any other database outage. An ingest
batch cut off this way is rolled back whole, and resending it is safe.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)


class RequestDeadline:
    def __init__(self, engine: Engine, seconds: float):
        self.seconds = seconds
        self._lock = threading.Condition()
        self._deadlines: dict[int, float] = {}  # thread id -> monotonic deadline of its request
        self._held: dict[int, set] = {}  # thread id -> DBAPI connections it has checked out
        self._watchdog: threading.Thread | None = None
        # First among the checkout listeners, so that the idle ping is covered too.
        event.listen(engine, "checkout", self._checked_out, insert=True)
        for name in ("checkin", "invalidate", "close"):
            event.listen(engine, name, self._released)

    def start(self) -> None:
        """The current thread's request begins: its database work must end within `seconds`."""
        with self._lock:
            self._ensure_watchdog()
            self._deadlines[threading.get_ident()] = time.monotonic() + self.seconds
            self._lock.notify()

    def finish(self) -> None:
        with self._lock:
            self._deadlines.pop(threading.get_ident(), None)

    def _checked_out(self, dbapi_connection, connection_record, connection_proxy) -> None:
        with self._lock:
            self._held.setdefault(threading.get_ident(), set()).add(dbapi_connection)

    def _released(self, dbapi_connection, connection_record, *_) -> None:
        with self._lock:
            for connections in self._held.values():
                connections.discard(dbapi_connection)

    def _ensure_watchdog(self) -> None:
        # Started on the first request, not in create_app: gunicorn may fork after it, and threads do not survive a fork.
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="request-deadline", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for thread_id in [t for t, deadline in self._deadlines.items() if deadline <= now]:
                    del self._deadlines[thread_id]
                    self._cut_off(thread_id)
                self._lock.wait(min(self._deadlines.values(), default=now + 60) - now)

    def _cut_off(self, thread_id: int) -> None:
        connections = [c for c in self._held.get(thread_id, ()) if not c.closed]
        if connections:
            log.warning("a request's database work passed its %g s deadline; cutting its %d connection(s)",
                        self.seconds, len(connections))
        for connection in connections:
            _shut_down(connection.fileno())


def _shut_down(fd: int) -> None:
    """Shut the socket down for both directions; its owner still closes the descriptor."""
    try:
        with socket.socket(fileno=socket.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its owner
