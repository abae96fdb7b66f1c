"""A projector under test and what it projected.

A projector runs in a thread of the test (`running`, stopped and checked
stopped at the block's end) or as the `appliance projector` command
(`projector_process`); "the views" are every row of the four view tables
(`snapshot`), to compare with one projection of the whole log in one go
(`rebuild_uninterrupted`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator

from appliance import db
from appliance.projection import Projector, store
from tests.support.sql import query, records

VIEW_KEYS = {
    "workflow_runs": "id",
    "job_executions": "id",
    "job_accounting": "job_id, task_id",
    "log_entries": "id",
}


@contextmanager
def running(projector: Projector) -> Iterator[Projector]:
    thread = threading.Thread(target=projector.run, daemon=True)
    thread.start()
    try:
        yield projector
    finally:
        projector.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the projector did not stop"


class ProjectorProcess:
    """`appliance projector` as a process; its log lines collected as they come."""

    def __init__(self, url: str, **env: str):
        environment = {name: value for name, value in os.environ.items() if not name.startswith("DATABASE_URL")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "projector"],
            env={**environment, "DATABASE_URL": url, "PROJECTOR_POLL_INTERVAL": "60", **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def waits(self, pattern: str) -> list[float]:
        """The waits announced by log lines that match `pattern` (before '; retrying in N s')."""
        found = (re.search(pattern + r".*; retrying in ([\d.]+) s$", line) for line in list(self.lines))
        return [float(match.group(1)) for match in found if match]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            self._reader.join(timeout=10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def projector_process(url: str, **env: str) -> Iterator[ProjectorProcess]:
    process = ProjectorProcess(url, **env)
    try:
        yield process
    finally:
        process.kill()


def max_position(url: str) -> int:
    """The notification id of the newest event (0 for an empty log)."""
    return query(url, "SELECT coalesce(max(id), 0) FROM appliance_events")[0][0]


def snapshot(url: str, tables: Iterable[str] = VIEW_KEYS) -> dict[str, list[dict]]:
    """{table: its rows in key order} for each of the view tables (or of `tables`)."""
    return {table: records(url, f"SELECT * FROM {table} ORDER BY {VIEW_KEYS[table]}") for table in tables}


def rebuild_uninterrupted(tracker, url: str) -> dict[str, list[dict]]:
    """The views from one projection of the whole log in one go."""
    connection = db.connect(tracker.settings.database_url, "test")
    try:
        store.reset(connection)
    finally:
        connection.close()
    Projector(tracker, batch_size=100_000).catch_up()
    return snapshot(url)
