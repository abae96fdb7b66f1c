"""The monitor's listening connection: LISTEN, wait for notifications, prove it is alive.

A LISTENing connection that the network dropped without a close (or whose
server stopped answering) just waits: no notification ever looks missing.
TCP keepalives notice only a peer whose kernel stopped answering, and only
after their timeouts add up, so the listener also pings every few seconds and
gives the connection up when an answer takes longer than `timeout`. The
connection is in psycopg2's asynchronous mode because only there can a wait
for an answer have a deadline.
"""

from __future__ import annotations

import select
import time

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import URL

from appliance import db
from appliance.sql import load_queries

QUERIES = load_queries("monitor.sql")


class Listener:
    def __init__(self, url: URL, timeout: float):
        self.timeout = timeout
        self.connection = db.connect(url, "appliance-monitor", async_=True)
        try:
            self._wait()
            self._execute(QUERIES["listen"])
        except BaseException:
            self.close()
            raise

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for a notification; True when one (or anything) arrived."""
        # They only wake the monitor: it claims from the table.
        return bool(self.connection.wait_for_notification(seconds))

    def ping(self) -> None:
        """A round trip within `timeout`, or psycopg2.OperationalError."""
        self._execute(db.QUERIES["ping"])

    def close(self) -> None:
        if not self.connection.closed:
            self.connection.close()

    def _execute(self, sql: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while (state := self.connection.poll()) != psycopg2.extensions.POLL_OK:
            reading = state == psycopg2.extensions.POLL_READ
            ready = select.select([self.connection] if reading else [], [] if reading else [self.connection], [],
                                  max(0.0, deadline - time.monotonic()))
            if not (ready[0] or ready[1]):
                raise psycopg2.OperationalError(f"no answer from the database within {self.timeout:g} s")
