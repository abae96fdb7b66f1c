"""Projection lag: from an event's commit to its view row being visible.

A writer process records events at a steady rate through the tracker, one
command per transaction (runs of tasks that are created, started, given a job
id, a progress report, a log line, and completed), and notes when each log
line's command returned, i.e. had committed. `appliance projector` runs as
its own process, as in the container. A bench-only trigger on log_entries
NOTIFYs each new row, and NOTIFY is delivered when the projector's
transaction commits: the moment the row becomes visible. Lag is the
difference (CLOCK_MONOTONIC, shared by the processes of one machine); the
first seconds are left out as warm-up.

    python -m bench.projection_lag [--rate 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import select
import statistics
import subprocess
import sys
import time

import psycopg2
from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.projection.store import LOCK_KEY
from appliance.tracker import WorkflowTracker
from appliance.schema import init

TASKS_PER_RUN = 10
WARM_UP_SECONDS = 3.0

# Bench-only: the row's message (a sequence number) is NOTIFYed, and
# delivered when the inserting transaction commits.
VISIBILITY_TRIGGER = """
CREATE FUNCTION bench_notify_visible() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_visible', NEW.message);
    RETURN NULL;
END $$;
CREATE TRIGGER bench_visible AFTER INSERT ON log_entries
    FOR EACH ROW EXECUTE FUNCTION bench_notify_visible();
"""


def commands():
    """An endless stream of single commands: (events it records, log sequence or None, function of a tracker).

    Each command binds its run's state: a writer may take the next run's first
    commands before this run's last ones have been applied."""
    sequence = 0
    while True:
        state = {}
        yield 1, None, lambda t, state=state: state.update(run=t.initiate_workflow("bench", "lag", "bench", "lab"))
        yield 1, None, lambda t, state=state: t.start_workflow(state["run"])
        for n in range(TASKS_PER_RUN):
            # Adding a task records TaskAdded on the run and Created on the task.
            yield 2, None, lambda t, n=n, state=state: state.update(task=t.add_task_to_workflow(state["run"], f"rule_{n}", "1", {}, {}))
            yield 1, None, lambda t, state=state: t.start_task(state["task"])
            yield 1, None, lambda t, n=n, state=state: t.add_job_id(state["task"], 1000 + n)
            yield 1, None, lambda t, state=state: t.update_task_progress(state["task"], "50%")
            sequence += 1
            yield 1, sequence, lambda t, s=sequence, state=state: t.record_log(state["run"], str(s), task_id=state["task"])
            yield 1, None, lambda t, state=state: t.complete_task(state["task"], "ok")
        yield 1, None, lambda t, state=state: t.complete_workflow(state["run"])


def write_steadily(url: str, rate: float, seconds: float, results, per_transaction: int = 1) -> None:
    """The writer process: events at `rate` per second; commit times of log lines.

    One command a transaction, as a script calling the tracker does; or
    `per_transaction` commands in one `tracker.batch()`, as ingest saves a batch
    of events that a sender posted together."""
    tracker = WorkflowTracker(Settings(database_url=parse_database_url(url)))
    committed = {}
    events = 0
    started = time.monotonic()
    stream = commands()
    while True:
        group = list(itertools.islice(stream, per_transaction))
        due = started + events / rate
        # Done when the schedule ends, or (a writer that falls behind on a busy machine) when time is up.
        if due - started > seconds or time.monotonic() - started > seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        _record(tracker, group)
        now = time.monotonic()
        committed.update((sequence, now) for _, sequence, _ in group if sequence is not None)
        events += sum(count for count, _, _ in group)
    elapsed = time.monotonic() - started
    tracker.close()
    results.put((committed, events, elapsed))


def _record(tracker: WorkflowTracker, group: list) -> None:
    if len(group) == 1:
        group[0][2](tracker)
        return
    with tracker.batch() as batch:
        for _, _, command in group:
            command(batch)


def wait_for_projector_lock(url: str, timeout: float = 30.0) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
                               (LOCK_KEY,))
                if cursor.fetchone():
                    return
                time.sleep(0.05)
    finally:
        connection.close()
    raise RuntimeError("the projector did not take its lock")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    server = LocalPostgres.temporary(durable=True).start()
    projector = None
    try:
        _create_database(server.url(), "bench")
        url = server.url("bench")
        # As the appliance starts: `appliance init` (event store, migrations,
        # change triggers), so the lag includes what the triggers cost.
        init(Settings(database_url=parse_database_url(url)), announce=lambda line: None)
        listener = psycopg2.connect(url)
        listener.autocommit = True
        with listener.cursor() as cursor:
            cursor.execute(VISIBILITY_TRIGGER)
            cursor.execute("LISTEN bench_visible")

        projector = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "projector"],
            env={**os.environ, "DATABASE_URL": url}, stderr=subprocess.DEVNULL,
        )
        wait_for_projector_lock(url)
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        writer = spawn.Process(target=write_steadily, args=(url, args.rate, args.seconds, results))
        writer.start()

        visible = {}
        deadline = time.monotonic() + args.seconds + 30
        outcome = None
        while time.monotonic() < deadline:
            if select.select([listener], [], [], 0.05)[0]:
                listener.poll()
                now = time.monotonic()
                for note in listener.notifies:
                    visible[int(note.payload)] = now
                listener.notifies.clear()
            if outcome is None and not results.empty():
                outcome = results.get()
            if outcome is not None and len(visible) >= len(outcome[0]):
                break
        writer.join()
        listener.close()
    finally:
        if projector is not None:
            projector.terminate()
            projector.wait(timeout=10)
        server.destroy()

    if outcome is None:
        raise SystemExit("the writer process gave no result")
    committed, events, elapsed = outcome
    first = min(committed.values())
    lags = sorted(
        (visible[sequence] - at) * 1000
        for sequence, at in committed.items()
        if at - first >= WARM_UP_SECONDS and sequence in visible
    )
    missing = sum(1 for sequence in committed if sequence not in visible)
    quantiles = statistics.quantiles(lags, n=100, method="inclusive")  # never beyond the largest
    print(f"writer: {events:,} events in {elapsed:.1f} s = {events / elapsed:.0f} events/s (target {args.rate:.0f})")
    print(f"projection lag over {len(lags):,} log lines after {WARM_UP_SECONDS:.0f} s warm-up: "
          f"p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms, max {lags[-1]:.1f} ms; never visible: {missing}")


if __name__ == "__main__":
    main()
