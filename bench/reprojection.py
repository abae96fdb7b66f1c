"""Reprojection speed: rebuild the views from ~1,000,000 events.

Prints, from one run against a private PostgreSQL 15 with default durability:
- how long filling the event store took (through `tracker.batch()`),
- `reproject` (empty the views, replay the whole log) in events per second,
- a bare batched INSERT of the same number of rows, in the same run, into a
  table shaped like log_entries (one INSERT ... SELECT unnest() of
  `--batch-size` rows per transaction): the floor under any projection.

The events are runs of tasks that are created, started, given a job id, a
status and a progress report, a log line, and completed. Usage:

    python -m bench.reprojection [--events 1000000] [--batch-size 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import uuid
from datetime import datetime, timezone

import psycopg2
from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.projection import reproject
from appliance.tracker import WorkflowTracker
from appliance.schema import init

TASKS_PER_RUN = 40
EVENTS_PER_TASK = 8  # TaskAdded + Created, Started, JobIdAdded, StatusUpdated, ProgressUpdated, log, Completed


def fill(tracker: WorkflowTracker, target: int) -> int:
    """About `target` events, one tracker batch (~325 events) per run."""
    written = 0
    job_id = 0
    while written < target:
        with tracker.batch() as batch:
            run_id = batch.initiate_workflow("bench", "reprojection", f"user{written % 7}", "lab")
            batch.start_workflow(run_id)
            for n in range(TASKS_PER_RUN):
                job_id += 1
                task_id = batch.add_task_to_workflow(run_id, f"rule_{n}", "1", {"sample": n}, {"threads": 2})
                batch.start_task(task_id)
                batch.add_job_id(task_id, job_id % 50_000)  # ids recycle, as Slurm's do
                batch.update_task_status(task_id, "RUNNING")
                batch.update_task_progress(task_id, "50%")
                batch.record_log(run_id, f"rule_{n} half way", task_id=task_id)
                batch.complete_task(task_id, "ok")
            batch.complete_workflow(run_id)
        written += 3 + TASKS_PER_RUN * EVENTS_PER_TASK
    return written


def bare_batched_inserts(url: str, rows: int, batch_size: int) -> float:
    """Rows per second of INSERT ... SELECT unnest(...) into a log_entries-shaped table."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bare_rows (id bigint PRIMARY KEY, run_id uuid NOT NULL, task_id uuid, "
            "level text NOT NULL, message text NOT NULL, logged_at timestamptz NOT NULL)"
        )
        cursor.execute("CREATE INDEX ON bare_rows (run_id, id)")
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    for first in range(0, rows, batch_size):
        ids = list(range(first, min(first + batch_size, rows)))
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bare_rows SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[], %s::text[], "
                "%s::text[], %s::timestamptz[])",
                (ids, [run_id] * len(ids), [task_id] * len(ids), ["INFO"] * len(ids),
                 [f"rule_{n} half way" for n in ids], [now] * len(ids)),
            )
    elapsed = time.perf_counter() - started
    connection.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000, help="events (and bare rows) per transaction")
    parser.add_argument("--profile", action="store_true", help="print where reprojection spends its time")
    args = parser.parse_args()

    server = LocalPostgres.temporary(durable=True).start()
    try:
        for name in ("bench", "bare"):
            _create_database(server.url(), name)
        settings = Settings(database_url=parse_database_url(server.url("bench")))
        # As the appliance starts: `appliance init` (event store, migrations,
        # change triggers): the replay pays for the triggers it silences.
        init(settings, announce=lambda line: None)
        tracker = WorkflowTracker(settings)

        started = time.perf_counter()
        filled = fill(tracker, args.events)
        fill_seconds = time.perf_counter() - started
        print(f"filled the event store: {filled:,} events in {fill_seconds:.1f} s", file=sys.stderr)

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        result = reproject(tracker, batch_size=args.batch_size, progress=sys.stderr,
                           stale_after=settings.run_stale_after)  # as `appliance reproject` does
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        tracker.close()

        bare = bare_batched_inserts(server.url("bare"), result.events, args.batch_size)
    finally:
        server.destroy()

    print(f"fill through tracker.batch():        {filled / fill_seconds:8.0f} events/s ({filled:,} events)")
    print(f"reproject:                           {result.rate:8.0f} events/s ({result})")
    print(f"bare batched INSERT, same row count: {bare:8.0f} rows/s ({result.events:,} rows, "
          f"{args.batch_size:,} a transaction)")
    print(f"ratio: reproject events / bare insert rows = {result.rate / bare:.2f}")


if __name__ == "__main__":
    main()
