"""Commands per second through the WorkflowTracker on PostgreSQL.

Prints, from one run against a private PostgreSQL 15 with default durability:
- single commands (one command, one transaction) through the tracker,
- commands and events per second through the batch entry point,
- the same single commands through eventsourcing-sqlalchemy's stock recorder,
- a bare INSERT + COMMIT of one row into a table of the same shape,
and the ratios on one line. Usage:

    python -m bench.tracker_throughput [--commands 6000] [--batch-events 60000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import uuid

import psycopg2
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory

from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.tracker import WorkflowTracker

TASKS_PER_RUN = 10
BATCH_TASKS = 60
# A batch: the run initiated, started, completed; each task added (a task event and
# a run event), started, given a job id, a log line, completed.
COMMANDS_PER_BATCH = 3 + 5 * BATCH_TASKS  # 303
EVENTS_PER_BATCH = 3 + 6 * BATCH_TASKS  # 363


class StockRecorderTracker(WorkflowTracker):
    """The same application on the library's recorder, as shipped."""

    def construct_factory(self, env: Environment) -> SQLAlchemyFactory:
        env = Environment(env.name, {**env, "SQLALCHEMY_URL": self.settings.database_url.render_as_string(False)})
        return SQLAlchemyFactory(env)


def workflow_commands(tracker, target: int) -> int:
    """A realistic mix: runs with tasks that start, get a job id, report progress, finish."""
    done = 0
    while done < target:
        run_id = tracker.initiate_workflow("bench", "throughput", "bench", "lab")
        tracker.start_workflow(run_id)
        done += 2
        for n in range(TASKS_PER_RUN):
            task_id = tracker.add_task_to_workflow(run_id, f"rule_{n}", "1", {"n": n}, {"threads": 1})
            tracker.start_task(task_id)
            tracker.add_job_id(task_id, str(1000 + n))
            tracker.update_task_progress(task_id, "50%")
            tracker.record_log(run_id, f"rule_{n} half way", task_id=task_id)
            tracker.complete_task(task_id, "ok")
            done += 6
        tracker.complete_workflow(run_id)
        done += 1
    return done


def batched_events(tracker, target: int) -> int:
    """One batch per run: the shape of an ingest request from a Snakemake plugin."""
    start_position = tracker.recorder.max_notification_id() or 0
    while (tracker.recorder.max_notification_id() or 0) - start_position < target:
        with tracker.batch() as batch:
            run_id = batch.initiate_workflow("bench", "batched", "bench", "lab")
            batch.start_workflow(run_id)
            for n in range(BATCH_TASKS):
                task_id = batch.add_task_to_workflow(run_id, f"rule_{n}", "1", {"n": n}, {})
                batch.start_task(task_id)
                batch.add_job_id(task_id, str(n))
                batch.record_log(run_id, f"rule_{n} running", task_id=task_id)
                batch.complete_task(task_id, "ok")
            batch.complete_workflow(run_id)
    return (tracker.recorder.max_notification_id() or 0) - start_position


def log_line_cost(tracker, lines: int, sample: int = 1000) -> tuple[float, float]:
    """Rate of single log lines at the start of a run and after `lines` lines."""
    run_id = tracker.initiate_workflow("bench", "log lines", "bench", "lab")
    early, _ = rate(single_log_lines, tracker, run_id, sample)
    for first in range(sample, lines, 1000):
        with tracker.batch() as batch:
            for n in range(first, min(first + 1000, lines)):
                batch.record_log(run_id, f"line {n}")
    late, _ = rate(single_log_lines, tracker, run_id, sample)
    return early, late


def single_log_lines(tracker, run_id, count: int) -> int:
    for n in range(count):
        tracker.record_log(run_id, f"line {n}")
    return count


def bare_inserts(url: str, count: int) -> float:
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bare_events (id bigserial PRIMARY KEY, originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, topic text NOT NULL, state bytea NOT NULL, "
            "UNIQUE (originator_id, originator_version))"
        )
    connection.commit()
    state = b'{"timestamp":"2024-01-01T00:00:00+00:00","progress":"50%"}'
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for _ in range(count):
            cursor.execute(
                "INSERT INTO bare_events (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
                (str(uuid.uuid4()), "appliance.domain:Task.ProgressUpdated", state),
            )
            connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def rate(function, *args) -> tuple[float, int]:
    started = time.perf_counter()
    count = function(*args)
    return count / (time.perf_counter() - started), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=6000)
    parser.add_argument("--batch-events", type=int, default=60000)
    parser.add_argument("--log-lines", type=int, default=100_000, help="log lines of one run before the late sample")
    parser.add_argument("--profile", action="store_true", help="print where single commands spend their time")
    args = parser.parse_args()

    server = LocalPostgres.temporary(durable=True).start()
    try:
        for name in ("tracker", "stock", "bare"):
            _create_database(server.url(), name)
        tracker = WorkflowTracker(Settings(database_url=parse_database_url(server.url("tracker"))))
        workflow_commands(tracker, 500)  # warm up: connections, caches
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        single, single_count = rate(workflow_commands, tracker, args.commands)
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        batched, batched_count = rate(batched_events, tracker, args.batch_events)
        early_logs, late_logs = log_line_cost(tracker, args.log_lines)
        tracker.close()

        stock = StockRecorderTracker(Settings(database_url=parse_database_url(server.url("stock"))))
        workflow_commands(stock, 200)
        stock_rate, stock_count = rate(workflow_commands, stock, max(args.commands // 4, 500))
        stock.close()

        bare = bare_inserts(server.url("bare"), args.commands)
    finally:
        server.destroy()

    print(f"single commands, tracker:            {single:8.0f} /s  ({single_count} commands)")
    print(f"single commands, stock recorder:     {stock_rate:8.0f} /s  ({stock_count} commands)")
    print(f"bare INSERT + COMMIT of one row:     {bare:8.0f} /s  ({args.commands} rows)")
    batches = batched_count // EVENTS_PER_BATCH
    print(f"batch entry point, commands:         {batched * COMMANDS_PER_BATCH / EVENTS_PER_BATCH:8.0f} /s  "
          f"({batches * COMMANDS_PER_BATCH} commands, {COMMANDS_PER_BATCH} a batch)")
    print(f"batch entry point, events:           {batched:8.0f} /s  "
          f"({batched_count} events, {EVENTS_PER_BATCH} a batch)")
    print(f"log lines of one run, lines 1-1000:  {early_logs:8.0f} /s")
    print(f"log lines of one run, after {args.log_lines:,}: {late_logs:8.0f} /s")
    print(
        f"ratio: tracker single / bare insert = {single / bare:.2f}; "
        f"tracker / stock recorder = {single / stock_rate:.1f}x; batch events / bare insert = {batched / bare:.1f}x"
    )


if __name__ == "__main__":
    main()
