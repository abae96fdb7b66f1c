"""A load generator for the fault suite and the soak, and the exactly-once checks.

Workers send runs through POST /api/v1/events as a real source would: a run
in three batches (the run and its tasks; starts, job ids, results; ends),
with log lines in each. A batch that gets no 2xx (503, a reset connection, a
timeout) is sent again, the same events with the same ids, after the
Retry-After the appliance asked for, until it gets one. Each event's effect
in the views is unique to it (a log line's message, a result's value are the
event's id), so `Ledger.verify` can tell, for every acknowledged event,
whether the views hold it once, not at all (lost) or more than once
(duplicated).

The monitor's side: `tests.support.fault_handler:record` (MONITOR_HANDLERS) counts,
in the monitor's own transaction, how often each change was handled.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import psycopg2

TASKS_PER_RUN = 3
RETRY_CAP = 5.0  # seconds: never wait longer than this between attempts, whatever Retry-After says


@dataclass
class Outcome:
    """What the views hold of the acknowledged events."""

    sent: int
    stored: int
    lost: list[str]
    duplicated: list[str]

    def __str__(self) -> str:
        return (f"sent {self.sent}, stored {self.stored}, lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}")


@dataclass
class Ledger:
    """Every acknowledged event, by id: (type, the key its effect is found under)."""

    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    answers: Counter = field(default_factory=Counter)  # HTTP status (0: no answer) -> count
    retry_after_missing: int = 0  # 503 answers without a Retry-After header
    refused: list[str] = field(default_factory=list)  # 4xx answers: a bug in the generator or the appliance
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, events: list[dict]) -> None:
        with self.lock:
            for event in events:
                self.acked[event["id"]] = (event["type"], event.get("task_id") or event.get("run_id"))

    def verify(self, database_url: str) -> Outcome:
        with self.lock:
            acked = dict(self.acked)
        found = _found_in_views(database_url, acked)
        lost = [event_id for event_id, times in found.items() if times == 0]
        duplicated = [event_id for event_id, times in found.items() if times > 1]
        return Outcome(sent=len(acked), stored=len(acked) - len(lost), lost=lost, duplicated=duplicated)


class LoadGenerator:
    """`workers` threads, each sending runs one batch at a time, until stopped."""

    def __init__(self, ports: list[int], token: str, *, workers: int = 4, logs_per_batch: int = 5,
                 pause: float = 0.02):
        self.ports, self.token = ports, token
        self.workers, self.logs_per_batch, self.pause = workers, logs_per_batch, pause
        self.ledger = Ledger()
        self.runs: list[str] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = self.stopped_at = 0.0

    def __enter__(self) -> "LoadGenerator":
        self.started_at = time.monotonic()
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), name=f"load-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self, timeout: float = 120) -> None:
        """Stop starting runs; the runs begun are finished (their batches acknowledged) first."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                raise AssertionError(f"{thread.name} still sending after {timeout} s: {self.ledger.answers}")
        self.stopped_at = self.stopped_at or time.monotonic()

    @property
    def rate(self) -> float:
        """Acknowledged events per second over the generator's life."""
        elapsed = (self.stopped_at or time.monotonic()) - self.started_at
        return len(self.ledger.acked) / elapsed if elapsed > 0 else 0.0

    def wait_for_acks(self, count: int, timeout: float) -> None:
        """Until `count` more events than now are acknowledged: the appliance is taking load."""
        target = len(self.ledger.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.ledger.acked) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress in {timeout} s: answers so far {dict(self.ledger.answers)}")
            time.sleep(0.05)

    def _work(self, number: int) -> None:
        port = self.ports[number % len(self.ports)]
        while not self._stopping.is_set():
            for batch in self._a_run():
                self._send_until_acked(port, batch)
                time.sleep(self.pause)

    def _a_run(self) -> list[list[dict]]:
        run_id = str(uuid.uuid4())
        self.runs.append(run_id)
        tasks = [str(uuid.uuid4()) for _ in range(TASKS_PER_RUN)]

        def logs() -> list[dict]:
            return [_event("log", run_id=run_id, message=None) for _ in range(self.logs_per_batch)]

        opening = [_event("run_started", run_id=run_id, name="fault-load", user="load", group="faults")]
        opening += [_event("task_created", task_id=t, run_id=run_id, name=f"rule_{i}") for i, t in enumerate(tasks)]
        middle = [e for t in tasks for e in (_event("task_started", task_id=t),
                                             _event("job_id", task_id=t, job_id=None),
                                             _event("task_result", task_id=t, result=None))]
        closing = [_event("task_finished", task_id=t) for t in tasks] + [_event("run_finished", run_id=run_id)]
        return [opening + logs(), middle + logs(), logs() + closing]

    def _send_until_acked(self, port: int, batch: list[dict]) -> None:
        body = json.dumps({"events": batch}).encode()
        while True:
            status, retry_after = self._post(port, body)
            with self.ledger.lock:
                self.ledger.answers[status] += 1
                if status == 503 and retry_after is None:
                    self.ledger.retry_after_missing += 1
            if 200 <= status < 300:
                self.ledger.record(batch)
                return
            if 400 <= status < 500:
                self.ledger.refused.append(f"{status} for a batch starting {batch[0]['type']}")
                return
            time.sleep(min(RETRY_CAP, retry_after if retry_after is not None else 0.5))

    def _post(self, port: int, body: bytes) -> tuple[int, float | None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/api/v1/events", body, {
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            retry_after = response.getheader("Retry-After")
            return response.status, float(retry_after) if retry_after else None
        except (OSError, http.client.HTTPException):
            return 0, None  # refused, reset or timed out: the batch may or may not be stored; resend it
        finally:
            connection.close()


def _event(type_: str, **fields) -> dict:
    """An event whose effect in the views carries its own id where the type allows."""
    event_id = str(uuid.uuid4())
    for name in ("message", "job_id", "result"):
        if name in fields and fields[name] is None:
            fields[name] = event_id
    return {"id": event_id, "type": type_, **fields}


# How often the views hold each acknowledged event: one query per event type.
_COUNTS = {
    "run_started": "SELECT id::text, 1 FROM workflow_runs WHERE started_at IS NOT NULL AND id::text = ANY(%s)",
    "run_finished": "SELECT id::text, 1 FROM workflow_runs WHERE status = 'completed' AND id::text = ANY(%s)",
    "task_created": "SELECT id::text, 1 FROM job_executions WHERE id::text = ANY(%s)",
    # A second start of one task would be a second attempt.
    "task_started": "SELECT id::text, attempts FROM job_executions WHERE id::text = ANY(%s)",
    "task_finished": "SELECT id::text, 1 FROM job_executions WHERE status = 'completed' AND id::text = ANY(%s)",
}
_COUNTS_BY_EVENT_ID = {
    "log": "SELECT message, count(*) FROM log_entries WHERE message = ANY(%s) GROUP BY message",
    "job_id": "SELECT j, count(*) FROM job_executions, unnest(job_ids) j WHERE j = ANY(%s) GROUP BY j",
    "task_result": "SELECT r #>> '{}', count(*) FROM job_executions, jsonb_array_elements(results) r "
                   "WHERE r #>> '{}' = ANY(%s) GROUP BY 1",
}


def _found_in_views(database_url: str, acked: dict[str, tuple[str, str]]) -> dict[str, int]:
    by_type: dict[str, dict[str, str]] = {}
    for event_id, (type_, key) in acked.items():
        by_type.setdefault(type_, {})[event_id] = key
    found = {event_id: 0 for event_id in acked}
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            for type_, events in by_type.items():
                if type_ in _COUNTS_BY_EVENT_ID:
                    cursor.execute(_COUNTS_BY_EVENT_ID[type_], (list(events),))
                    found.update(dict(cursor.fetchall()))
                else:
                    cursor.execute(_COUNTS[type_], (list(set(events.values())),))
                    times = dict(cursor.fetchall())
                    found.update({event_id: times.get(key, 0) for event_id, key in events.items()})
    finally:
        connection.close()
    return found


def monitor_outcome(database_url: str) -> tuple[int, int, list[int], list[int]]:
    """(changes, handled, unhandled ids, handled more than once ids) of the change feed."""
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT n.id, coalesce(h.times, 0) FROM change_notifications n "
                           "LEFT JOIN fault_handled h ON h.change_id = n.id")
            rows = cursor.fetchall()
    finally:
        connection.close()
    unhandled = [change_id for change_id, times in rows if times == 0]
    twice = [change_id for change_id, times in rows if times > 1]
    return len(rows), len(rows) - len(unhandled), unhandled, twice
