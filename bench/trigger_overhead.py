"""The write rate of view rows with the change-notification triggers and without.

Two databases on one private PostgreSQL 15 (default durability), one with
the init-db triggers and one without, measured in one run. Rounds alternate
between the two, so load from elsewhere on the machine hits both alike.
Prints three pairs of rates and their ratios:

- one-row transactions: INSERT a run, then UPDATE its status (the target:
  ratio >= 0.5; live projection writes a few rows per transaction);
- statements of 100 rows, one per transaction (a backlog written in bulk);
- the projector catching up a backlog of tracker events (its batches of 1,000
  events), in events per second.

Usage:

    python -m bench.trigger_overhead [--rows 3000] [--rounds 6] [--events 30000]
"""

from __future__ import annotations

import argparse
import time

import psycopg2

from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.migrator import migrate
from appliance.projection import Projector
from appliance.tracker import WorkflowTracker
from appliance.schema import init
from bench.reprojection import fill

DATABASES = ("plain", "triggers")


def write_rows(url: str, rows: int, per_statement: int) -> tuple[float, float]:
    """(seconds for the INSERTs, seconds for the UPDATEs), one statement per transaction."""
    connection = psycopg2.connect(url)
    batches = []
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(rows // per_statement):
            cursor.execute("INSERT INTO workflow_runs (workflow_name, user_name) "
                           "SELECT 'run ' || n, 'bench' FROM generate_series(1, %s) AS n RETURNING id",
                           (per_statement,))
            batches.append([row[0] for row in cursor.fetchall()])
            connection.commit()
        inserting = time.perf_counter() - started
        started = time.perf_counter()
        for ids in batches:
            cursor.execute("UPDATE workflow_runs SET status = 'running', tasks_running = 1 "
                           "WHERE id = ANY(%s::uuid[])", (ids,))
            connection.commit()
        updating = time.perf_counter() - started
    connection.close()
    return inserting, updating


def row_rates(urls: dict[str, str], rows: int, rounds: int, per_statement: int) -> dict[str, tuple[float, float]]:
    """Rows per second (inserts, updates) for each database, over alternating rounds."""
    seconds = {name: [0.0, 0.0] for name in urls}
    for round_number in range(rounds):
        order = DATABASES if round_number % 2 == 0 else DATABASES[::-1]
        for name in order:
            inserting, updating = write_rows(urls[name], rows // rounds, per_statement)
            seconds[name][0] += inserting
            seconds[name][1] += updating
    written = rows // rounds // per_statement * per_statement * rounds
    return {name: (written / ins, written / upd) for name, (ins, upd) in seconds.items()}


def projection_rates(urls: dict[str, str], events: int) -> dict[str, float]:
    """Events per second of the projector catching up the same backlog in each database."""
    rates = {}
    for name in DATABASES:
        tracker = WorkflowTracker(Settings(database_url=parse_database_url(urls[name])))
        try:
            filled = fill(tracker, events)
            started = time.perf_counter()
            applied = Projector(tracker).catch_up()
            rates[name] = applied / (time.perf_counter() - started)
            assert applied == filled, (applied, filled)
        finally:
            tracker.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="rows per database for each kind of write")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--events", type=int, default=30_000, help="tracker events for the projector backlog")
    args = parser.parse_args()
    server = LocalPostgres.temporary(durable=True).start()
    try:
        urls = {name: server.url(name) for name in DATABASES}
        for name in DATABASES:
            _create_database(server.url(), name)
        quiet = lambda line: None
        migrate(Settings(database_url=parse_database_url(urls["plain"])), announce=quiet)
        init(Settings(database_url=parse_database_url(urls["triggers"])), announce=quiet)
        write_rows(urls["plain"], 200, 1)  # warm up the server
        single = row_rates(urls, args.rows, args.rounds, 1)
        bulk = row_rates(urls, args.rows * 10, args.rounds, 100)
        projected = projection_rates(urls, args.events)
    finally:
        server.destroy()

    for title, rates in (("one-row transactions", single), ("100-row statements", bulk)):
        (plain_ins, plain_upd), (trig_ins, trig_upd) = rates["plain"], rates["triggers"]
        print(f"{title}: without triggers {plain_ins:7.0f} inserts/s, {plain_upd:7.0f} updates/s; "
              f"with {trig_ins:7.0f} inserts/s, {trig_upd:7.0f} updates/s; "
              f"ratio inserts {trig_ins / plain_ins:.2f}, updates {trig_upd / plain_upd:.2f}")
    print(f"projector catch-up ({args.events:,} events): without triggers {projected['plain']:7.0f} events/s; "
          f"with {projected['triggers']:7.0f} events/s; ratio {projected['triggers'] / projected['plain']:.2f}")


if __name__ == "__main__":
    main()
