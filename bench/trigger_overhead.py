"""The write rate of view rows with the change-notification triggers and without.

Two databases on one private PostgreSQL 15 (default durability), the same
one-row transactions against each: INSERT a run, then UPDATE its status.
Prints both rates and the ratio on one line. Usage:

    python -m bench.trigger_overhead [--rows 3000]
"""

from __future__ import annotations

import argparse
import time

import psycopg2

from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.migrator import migrate
from appliance.triggers import init


def rates(url: str, rows: int) -> tuple[float, float]:
    connection = psycopg2.connect(url)
    ids = []
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for n in range(rows):
            cursor.execute("INSERT INTO workflow_runs (workflow_name, user_name) VALUES (%s, 'bench') RETURNING id",
                           (f"run {n}",))
            ids.append(cursor.fetchone()[0])
            connection.commit()
        inserts = rows / (time.perf_counter() - started)
        started = time.perf_counter()
        for run_id in ids:
            cursor.execute("UPDATE workflow_runs SET status = 'running', tasks_running = 1 WHERE id = %s", (run_id,))
            connection.commit()
        updates = rows / (time.perf_counter() - started)
    connection.close()
    return inserts, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    server = LocalPostgres.temporary(durable=True).start()
    try:
        for name in ("plain", "triggers"):
            _create_database(server.url(), name)
        quiet = lambda line: None
        migrate(Settings(database_url=parse_database_url(server.url("plain"))), announce=quiet)
        init(Settings(database_url=parse_database_url(server.url("triggers"))), announce=quiet)
        rates(server.url("plain"), 200)  # warm up
        plain = rates(server.url("plain"), args.rows)
        triggered = rates(server.url("triggers"), args.rows)
    finally:
        server.destroy()
    print(f"without triggers: {plain[0]:7.0f} inserts/s, {plain[1]:7.0f} updates/s")
    print(f"with triggers:    {triggered[0]:7.0f} inserts/s, {triggered[1]:7.0f} updates/s")
    print(f"ratio with/without: inserts {triggered[0] / plain[0]:.2f}, updates {triggered[1] / plain[1]:.2f}")


if __name__ == "__main__":
    main()
