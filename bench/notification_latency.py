"""Notification latency: a view row committed -> the monitor's handler called.

An idle monitor (LISTEN, poll interval 10 s) and one-row transactions at a
steady rate against a private PostgreSQL 15 with default durability. Latency
is the handler's call minus the moment the writer's COMMIT returned (one
process, one monotonic clock). The monitor's log lines are discarded. Prints
p50, p99 and max. Usage:

    python -m bench.notification_latency [--changes 1000] [--rate 50]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import threading
import time

import psycopg2

from appliance.config import MonitorSettings, parse_database_url
from appliance.localpg import LocalPostgres
from appliance.monitor import Monitor
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.waiting import wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second")
    args = parser.parse_args()

    server = LocalPostgres.temporary(durable=True).start()
    committed: dict[str, float] = {}
    handled: dict[str, float] = {}
    done = threading.Event()

    def handler(change) -> None:
        handled[change.new_values["workflow_name"]] = time.monotonic()
        if len(handled) == args.changes:
            done.set()

    try:
        url = server.url()
        prepare_schema(url)
        monitor = Monitor(parse_database_url(url), MonitorSettings(poll_interval=10), handlers=[handler])
        thread = threading.Thread(target=monitor.run, daemon=True)
        with contextlib.redirect_stdout(io.StringIO()):
            thread.start()
            # NOTIFY reaches only sessions already listening: its first heartbeat follows LISTEN.
            wait_for(lambda: query(url, "SELECT count(*) FROM monitor_heartbeats")[0][0] > 0, timeout=30,
                     message="the monitor's first heartbeat")
            connection = psycopg2.connect(url)
            with connection.cursor() as cursor:
                for n in range(args.changes):
                    cursor.execute("INSERT INTO workflow_runs (workflow_name) VALUES (%s)", (f"run {n}",))
                    connection.commit()
                    committed[f"run {n}"] = time.monotonic()
                    time.sleep(1.0 / args.rate)
            done.wait(timeout=60)
            monitor.stop()
            thread.join(timeout=10)
    finally:
        server.destroy()

    # NOTIFY goes out at commit, before the writer hears the commit's answer:
    # a handler can run first, hence the clamp at zero.
    ordered = sorted(max(0.0, handled[name] - committed[name]) for name in handled)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
    print(f"changes handled: {len(handled)} of {args.changes} at {args.rate:.0f}/s")
    print(f"notification latency: p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
          f"mean {statistics.mean(ordered) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
