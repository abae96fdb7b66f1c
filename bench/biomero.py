"""BIOMERO's log through the appliance: reprojection speed and live projection lag.

Both against a private PostgreSQL 15 with default durability, with the real
BIOMERO 2.8.3 (.venv-biomero, made by tests/support/biomero_venv.py).

    python -m bench.biomero reproject [--events 1000000] [--batch-size 10000]

BIOMERO records one facility day (tests/support/biomero_calls.py: 56 events,
4 workflows, 7 tasks, fabric Results and all; its own views off, as beside an
appliance that keeps them), then its events are cloned with fresh ids
(originators and the ids their states refer to) until the log holds
`--events`; BIOMERO at its own pace would need hours for a million.
`reproject` rebuilds the views from that log twice: without BIOMERO's four
view tables, then with them (APPLIANCE_BIOMERO_VIEWS); a bare batched INSERT
of the same number of rows, in the same run, is the floor (as
bench/reprojection.py).

    python -m bench.biomero lag [--rate 1000] [--seconds 60] [--writers 2] [--per-transaction 1]

BIOMERO records facility days back to back, at its own pace (its four views
following each event), while `--writers` processes record `--rate` events/s through the
appliance's tracker (bench/projection_lag.py's writer) and `appliance
projector` runs as its own process. Bench-only triggers NOTIFY when each
BIOMERO event commits and when the projector's position in BIOMERO's log
moves (delivered at the projector's commit: the rows are visible). Lag is the
time between the two, after a warm-up; CLOCK_MONOTONIC, one machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import statistics
import subprocess
import sys
import time
import uuid

import psycopg2
from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.projection import reproject
from appliance.tracker import WorkflowTracker
from appliance.schema import init
from bench.projection_lag import wait_for_projector_lock, write_steadily
from bench.reprojection import bare_batched_inserts
from tests.support.biomero_venv import run_driver, start_driver

INSERT_BATCH = 10_000
WARM_UP_SECONDS = 10.0
SEEN_TRIGGERS = """
CREATE FUNCTION bench_biomero_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bench_committed', NEW.id::text); RETURN NULL; END $$;
CREATE TRIGGER bench_committed AFTER INSERT ON workflowtracker_events
    FOR EACH ROW EXECUTE FUNCTION bench_biomero_committed();
CREATE FUNCTION bench_biomero_visible() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bench_visible', NEW.notification_id::text); RETURN NULL; END $$;
CREATE TRIGGER bench_visible AFTER UPDATE ON projector_tracking
    FOR EACH ROW WHEN (NEW.application_name = 'WorkflowTracker') EXECUTE FUNCTION bench_biomero_visible();
"""


# Reprojection.


def clone_log(url: str, target: int) -> int:
    """Copy BIOMERO's recorded events, with fresh ids, until the log holds about `target`; the count."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT originator_id::text, originator_version, topic, state FROM workflowtracker_events "
                       "ORDER BY id")
        day = [(originator, version, topic, bytes(state)) for originator, version, topic, state in cursor]
    originals = sorted({originator for originator, *_ in day})
    total = len(day)
    rows: list[tuple] = []
    while total < target:
        fresh = {old: uuid.uuid4() for old in originals}
        for originator, version, topic, state in day:
            for old, new in fresh.items():  # the states refer to runs and tasks by hex
                state = state.replace(uuid.UUID(old).hex.encode(), new.hex.encode())
            rows.append((str(fresh[originator]), version, topic, state))
        total += len(day)
        if len(rows) >= INSERT_BATCH or total >= target:
            _append(connection, rows)
            rows = []
    connection.close()
    return total


def _append(connection, rows: list[tuple]) -> None:
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO workflowtracker_events (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])",
            ([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows],
             [psycopg2.Binary(row[3]) for row in rows]))


def bench_reproject(args) -> None:
    server = LocalPostgres.temporary(durable=True).start()
    try:
        for name in ("bench", "bare"):
            _create_database(server.url(), name)
        url = server.url("bench")
        settings = Settings(database_url=parse_database_url(url), biomero_views=True)
        run_driver(url, "facility-day", "4711", "off")
        started = time.perf_counter()
        events = clone_log(url, args.events)
        print(f"BIOMERO's log: {events:,} events ({time.perf_counter() - started:.1f} s to clone)", file=sys.stderr)
        init(settings, announce=lambda line: None)  # BIOMERO's four tables adopted
        tracker = WorkflowTracker(settings)
        results = [reproject(tracker, batch_size=args.batch_size, progress=sys.stderr,
                             stale_after=settings.run_stale_after, biomero_views=views) for views in (False, True)]
        tracker.close()
        bare = bare_batched_inserts(server.url("bare"), results[0].events, args.batch_size)
    finally:
        server.destroy()
    without, with_views = results
    print(f"reproject of BIOMERO's log:                      {without.rate:8.0f} events/s ({without})")
    print(f"the same with BIOMERO's four tables kept too:    {with_views.rate:8.0f} events/s ({with_views})")
    print(f"bare batched INSERT, same row count:             {bare:8.0f} rows/s ({without.events:,} rows, "
          f"{args.batch_size:,} a transaction)")
    print(f"ratios: reproject / bare insert = {without.rate / bare:.2f}; with BIOMERO's tables = "
          f"{with_views.rate / bare:.2f}; with / without = {with_views.rate / without.rate:.2f}")


# Lag.


def bench_lag(args) -> None:
    server = LocalPostgres.temporary(durable=True).start()
    processes: list = []
    try:
        _create_database(server.url(), "bench")
        url = server.url("bench")
        init(Settings(database_url=parse_database_url(url)), announce=lambda line: None)
        projector = subprocess.Popen([sys.executable, "-m", "appliance.cli", "projector"],
                                     env={**os.environ, "DATABASE_URL": url}, stderr=subprocess.DEVNULL)
        processes.append(projector)
        wait_for_projector_lock(url)
        biomero = start_driver(url, "record", str(args.seconds), "100000")
        processes.append(biomero)
        listener = _listen_once_biomero_writes(url)
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        # Several writers share the rate, as several runs sending at once would: one
        # writer's commands wait on its own commits (about 600 events/s here).
        share = args.rate / args.writers
        writers = [spawn.Process(target=write_steadily, args=(url, share, args.seconds, results, args.per_transaction))
                   for _ in range(args.writers)]
        for writer in writers:
            writer.start()
        committed, visible = _collect(listener, biomero, args.seconds + 60)
        outcomes = [results.get(timeout=args.seconds * 5) for _ in writers]  # a writer behind catches up first
        for writer in writers:
            writer.join()
        listener.close()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        server.destroy()
    _report(committed, visible, outcomes, args)


def _listen_once_biomero_writes(url: str):
    """A connection LISTENing to the bench triggers, made once BIOMERO has created its table."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    deadline = time.monotonic() + 120
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT to_regclass('workflowtracker_events') IS NOT NULL "
                           "AND to_regclass('projector_tracking') IS NOT NULL")
            if cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("BIOMERO did not create its table")
            time.sleep(0.1)
        cursor.execute(SEEN_TRIGGERS)
        cursor.execute("LISTEN bench_committed; LISTEN bench_visible")
    return connection


def _collect(listener, biomero, timeout: float) -> tuple[dict[int, float], list[tuple[float, int]]]:
    committed: dict[int, float] = {}
    visible: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    newest_seen = 0
    while time.monotonic() < deadline:
        if select.select([listener], [], [], 0.05)[0]:
            listener.poll()
            now = time.monotonic()
            for note in listener.notifies:
                if note.channel == "bench_committed":
                    committed[int(note.payload)] = now
                else:
                    visible.append((now, int(note.payload)))
                    newest_seen = max(newest_seen, int(note.payload))
            listener.notifies.clear()
        if biomero.poll() is not None and committed and newest_seen >= max(committed):
            break
    return committed, visible


def _report(committed: dict[int, float], visible: list[tuple[float, int]], outcomes, args) -> None:
    first = min(committed.values())
    lags = []
    for event_id, at in committed.items():
        seen = next((when for when, position in visible if position >= event_id and when >= at), None)
        if seen is not None and at - first >= WARM_UP_SECONDS:
            lags.append((seen - at) * 1000)
    lags.sort()
    missing = sum(1 for event_id in committed if not any(position >= event_id for _, position in visible))
    events = sum(events for _, events, _ in outcomes)
    elapsed = max(elapsed for _, _, elapsed in outcomes)
    quantiles = statistics.quantiles(lags, n=100, method="inclusive")  # never beyond the largest
    print(f"appliance writers ({args.writers}, {args.per_transaction} command(s) a transaction): "
          f"{events:,} events in {elapsed:.1f} s = {events / elapsed:.0f} events/s "
          f"(target {args.rate:.0f})")
    print(f"BIOMERO: {len(committed):,} events in about {args.seconds:.0f} s, at its own pace")
    print(f"projection lag of BIOMERO's events over {len(lags):,} after {WARM_UP_SECONDS:.0f} s warm-up: "
          f"p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms, max {lags[-1]:.1f} ms; never visible: {missing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("reproject", "lag"))
    parser.add_argument("--events", type=int, default=1_000_000, help="reproject: events in BIOMERO's log")
    parser.add_argument("--batch-size", type=int, default=10_000, help="reproject: events per transaction")
    parser.add_argument("--rate", type=float, default=1000.0, help="lag: the appliance's events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="lag: how long both record")
    parser.add_argument("--writers", type=int, default=2, help="lag: processes sharing the appliance's rate")
    parser.add_argument("--per-transaction", type=int, default=1,
                        help="lag: commands a writer saves together (1: one a transaction; 20: as ingest saves a batch)")
    args = parser.parse_args()
    (bench_reproject if args.what == "reproject" else bench_lag)(args)


if __name__ == "__main__":
    main()
