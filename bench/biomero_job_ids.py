"""What a Slurm job id given to many tasks costs BIOMERO's job tables.

BIOMERO records job id -1 for every job sbatch refused, so one job id can
belong to thousands of tasks. Each projector batch that touches such an id
looks up its newest owner and its newest report (biomero_views.sql's
`load_jobs`). This bench times that lookup for an id given to `--tasks`
tasks, and, as the bare baseline in the same run, for an id given to one.

    python -m bench.biomero_job_ids [--tasks 100000] [--repeats 200]

Against a private PostgreSQL 15; the rows are made with one INSERT ... SELECT
each (runs of BIOMERO with OMERO ids, one task and one job row per run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg2

from appliance.config import Settings, parse_database_url
from appliance.localpg import LocalPostgres, _create_database
from appliance.projection.biomero_views import QUERIES
from appliance.schema import init

MAKE_ROWS = """
SET session_replication_role = replica;  -- bench rows: no change notifications for them
INSERT INTO workflow_runs (id, workflow_name, source, user_name, group_name)
SELECT md5('run' || i)::uuid, 'conversion', 'biomero', '1', '2' FROM generate_series(1, %(tasks)s + 1) i;
INSERT INTO job_executions (id, run_id, task_name)
SELECT md5('task' || i)::uuid, md5('run' || i)::uuid, 'convert' FROM generate_series(1, %(tasks)s + 1) i;
INSERT INTO job_accounting (job_id, task_id, run_id, created_at, updated_at)
SELECT CASE WHEN i <= %(tasks)s THEN '-1' ELSE '4711' END, md5('task' || i)::uuid, md5('run' || i)::uuid,
       now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, %(tasks)s + 1) i;
RESET session_replication_role;
ANALYZE;
"""


def lookup_seconds(cursor, job_id: str, repeats: int) -> float:
    """The median time of one `load_jobs` for one job id."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cursor.execute(QUERIES["load_jobs"], {"jobs": [job_id]})
        rows = cursor.fetchall()
        times.append(time.perf_counter() - started)
    assert {row[0] for row in rows} == {"owner"}, rows  # the newest owner; no report in these rows
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks given job id -1")
    parser.add_argument("--repeats", type=int, default=200)
    arguments = parser.parse_args()
    server = LocalPostgres.temporary(durable=True).start()
    try:
        _create_database(server.url(), "bench")
        settings = Settings(database_url=parse_database_url(server.url("bench")))
        init(settings, announce=lambda line: None)
        with psycopg2.connect(server.url("bench")) as connection, connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(MAKE_ROWS, {"tasks": arguments.tasks})
            print(f"{arguments.tasks:,} tasks made in {time.perf_counter() - started:.1f} s", flush=True)
            shared = lookup_seconds(cursor, "-1", arguments.repeats)
            single = lookup_seconds(cursor, "4711", arguments.repeats)
        print(f"job id given to {arguments.tasks:,} tasks: {shared * 1000:.2f} ms per lookup (median of "
              f"{arguments.repeats})")
        print(f"job id given to 1 task (baseline): {single * 1000:.2f} ms")
        print(f"ratio: {shared / single:.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
