"""Projector throughput with one poison event every 10,000, beside the clean figure.

Two databases of a private PostgreSQL 15 get the same workload (runs of
tasks, as bench/reprojection.py records them); in one, a poison event (a run's
progress of 2^63 steps, which no view column holds; tests/support/poison.py)
is appended after every ~10,000 events. The live projector's path
(`Projector.catch_up`, PROJECTOR_BATCH_SIZE events a batch) then projects
each log from the start; every poison event is bisected to and set aside.

    python -m bench.poison [--events 200000] [--every 10000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import sys
import time

from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.projection import Projector
from appliance.tracker import WorkflowTracker
from appliance.schema import init
from bench.reprojection import fill
from tests.support.poison import insert_poison_event
from tests.support.sql import query


def fill_with_poison(tracker: WorkflowTracker, url: str, events: int, every: int) -> int:
    """About `events` events, a poison one after every `every` (0: none); how many were poisoned."""
    poisoned = written = 0
    while written < events:
        written += fill(tracker, min(every or events, events - written))
        if every:
            last_run = query(url, "SELECT originator_id FROM appliance_events "
                                  "WHERE topic = 'appliance.domain:WorkflowRun.Initiated' ORDER BY id DESC LIMIT 1")[0][0]
            insert_poison_event(url, last_run)
            poisoned += 1
    return poisoned


def project(settings: Settings, url: str, batch_size: int) -> tuple[int, float]:
    """(events in the log, seconds) for one projector to catch up from the start."""
    tracker = WorkflowTracker(settings)
    try:
        started = time.perf_counter()
        Projector(tracker, batch_size=batch_size).catch_up()
        seconds = time.perf_counter() - started
    finally:
        tracker.close()
    total = query(url, "SELECT count(*) FROM appliance_events")[0][0]
    return total, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=10_000, help="events between two poison events")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch (PROJECTOR_BATCH_SIZE)")
    args = parser.parse_args()

    server = LocalPostgres.temporary(durable=True).start()
    figures = {}
    try:
        for name in ("clean", "poisoned"):
            _create_database(server.url(), name)
            settings = Settings(database_url=parse_database_url(server.url(name)))
            init(settings, announce=lambda line: None)
            tracker = WorkflowTracker(settings)
            every = args.every if name == "poisoned" else 0
            poison = fill_with_poison(tracker, server.url(name), args.events, every)
            tracker.close()
            total, seconds = project(settings, server.url(name), args.batch_size)
            quarantined = query(server.url(name), "SELECT count(*) FROM projection_quarantine")[0][0]
            figures[name] = (total, seconds, poison, quarantined)
            print(f"{name}: {total:,} events projected in {seconds:.1f} s", file=sys.stderr)
    finally:
        server.destroy()
    for name, (total, seconds, poison, quarantined) in figures.items():
        print(f"{name:9} {total / seconds:8.0f} events/s ({total:,} events, {poison} poison, "
              f"{quarantined} set aside, batches of {args.batch_size})")
    (clean, clean_s, *_), (dirty, dirty_s, *_) = figures["clean"], figures["poisoned"]
    print(f"ratio: poisoned / clean = {(dirty / dirty_s) / (clean / clean_s):.2f}")


if __name__ == "__main__":
    main()
