"""Latency of the status pages and the API on a large history, and the ingest rate.

Generates 10,000 runs, 1,000,000 tasks and 2,000,000 log lines straight into
the view tables (INSERT ... SELECT generate_series, quiet: no change rows),
then starts `appliance web` (gunicorn, 2 workers) on loopback and measures,
over HTTP, p50 and p95 of the dashboard, a deep page of it, a run page with
500 tasks and the runs API (one client, one request at a time), then the
ingest rate through POST /api/v1/events in batches of 500 (2 senders). A run of
10,000 tasks (12 rules, wildcards, 2% failed with tracebacks, a few running) is
measured too: its page's p95, its size gzipped, and the bytes of a refresh of it
while nothing changed (a 304, as live.js asks with the page's ETag). The jobs
case gives each of the 1,000,000 tasks' Slurm job ids a job_accounting row and
times the jobs page: the first page, the last by number (page 100), and the
oldest page by cursor, a million jobs deep (alone, with a user, with a group),
each against the first page in the same run. Usage:

    python -m bench.web_latency [--requests 200] [--ingest-batches 40] [--only pages|jobs]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

import psycopg2

from appliance.localpg import LocalPostgres, free_port
from appliance.web.data import encode_cursor
from tests.support.schema import prepare_schema
from tests.support.sql import query

TOKEN = "bench-token"
QUIET = "SET LOCAL appliance.suppress_change_notifications = 'on'"
RUNS_AND_TASKS = [
    """INSERT INTO workflow_runs (workflow_name, user_name, group_name, source, status, tasks_total,
           tasks_completed, progress_percent, created_at, started_at, finished_at)
       SELECT 'workflow-' || n, 'user' || (n % 50), 'group' || (n % 10), 'snakemake',
              (ARRAY['completed', 'failed', 'running'])[1 + n % 3], 100, 100, 100,
              now() - n * interval '1 minute', now() - n * interval '1 minute',
              now() - n * interval '1 minute' + interval '30 seconds'
       FROM generate_series(1, 10000) n""",
    """INSERT INTO job_executions (id, run_id, task_name, status, job_ids, attempts, created_at, started_at,
           finished_at)
       SELECT gen_random_uuid(), r.id, 'rule_' || t, 'completed', ARRAY[(r.n * 1000 + t)::text], 1,
              r.created_at + t * interval '10 ms', r.created_at + t * interval '10 ms',
              r.created_at + t * interval '10 ms' + interval '5 seconds'
       FROM (SELECT id, created_at, row_number() OVER (ORDER BY created_at) AS n FROM workflow_runs) r,
            generate_series(1, 100) t""",
]
PAGES = [
    """INSERT INTO job_executions (id, run_id, task_name, status, created_at, started_at, finished_at)
       SELECT gen_random_uuid(), r.id, 'extra_' || t, 'completed', r.created_at + t * interval '20 ms',
              r.created_at + t * interval '20 ms', r.created_at + t * interval '20 ms' + interval '1 second'
       FROM (SELECT id, created_at FROM workflow_runs ORDER BY created_at DESC LIMIT 1) r,
            generate_series(1, 400) t""",
    """INSERT INTO workflow_runs (workflow_name, user_name, group_name, source, status, tasks_total,
           tasks_completed, tasks_failed, tasks_running, progress_percent, created_at, started_at, last_event_at)
       VALUES ('big-10k', 'user1', 'group1', 'snakemake', 'running', 10000, 9750, 200, 50, 99.5,
               now() - interval '3 hours', now() - interval '3 hours', now())""",
    """INSERT INTO job_executions (id, run_id, task_name, status, input_data, params, job_ids, attempts,
           attempt_history, error_message, created_at, started_at, finished_at)
       SELECT gen_random_uuid(), r.id, 'rule_' || (t % 12),
              CASE WHEN t % 50 = 0 THEN 'failed' WHEN t > 9950 THEN 'running' ELSE 'completed' END,
              jsonb_build_object('wildcards', jsonb_build_object('sample', 'S' || t, 'lane', t % 4)),
              '{"threads": 4, "resources": {"mem_mb": 8000}}'::jsonb, ARRAY[(700000 + t)::text],
              1 + (t % 97 = 0)::int, '[]'::jsonb,
              CASE WHEN t % 50 = 0 THEN 'Traceback (most recent call last):' || repeat(E'\n  File "x.py", line 1', 40)
                   || E'\nRuntimeError: exit status 137' END,
              r.created_at + t * interval '1 second', r.created_at + t * interval '1 second',
              CASE WHEN t > 9950 AND t % 50 <> 0 THEN NULL
                   ELSE r.created_at + t * interval '1 second' + interval '40 seconds' END
       FROM (SELECT id, created_at FROM workflow_runs WHERE workflow_name = 'big-10k') r,
            generate_series(1, 10000) t""",
    """INSERT INTO log_entries (id, run_id, level, message, logged_at)
       SELECT row_number() OVER (), r.id, (ARRAY['INFO', 'INFO', 'WARNING', 'DEBUG'])[1 + l % 4],
              'rule_' || (l % 100) || ' wrote line ' || l, r.created_at + l * interval '100 ms'
       FROM workflow_runs r, generate_series(1, 200) l""",
]
# A job_accounting row for each task's Slurm job id (1,000,000), with its run's user and group.
JOBS = [
    """INSERT INTO job_accounting (job_id, task_id, run_id, user_name, group_name, status, created_at, updated_at)
       SELECT t.job_ids[1], t.id, t.run_id, r.user_name, r.group_name, 'COMPLETED', t.created_at, t.finished_at
       FROM job_executions t JOIN workflow_runs r ON r.id = t.run_id
       WHERE cardinality(t.job_ids) > 0 AND r.workflow_name <> 'big-10k'""",
    # A group (and a user) with three jobs, the oldest: a newest-first walk would pass every other job.
    """UPDATE job_accounting SET user_name = 'user-rare', group_name = 'group-rare'
       WHERE (created_at, task_id, job_id) IN (SELECT created_at, task_id, job_id FROM job_accounting
                                              ORDER BY created_at, task_id, job_id LIMIT 3)""",
]
# The oldest page's cursor (the key of the 101st oldest job), of every job or of one owner's.
OLDEST_PAGE_KEY = """SELECT created_at, task_id, job_id FROM job_accounting
    WHERE (%s::text IS NULL OR user_name = %s) AND (%s::text IS NULL OR group_name = %s)
    ORDER BY created_at, task_id, job_id OFFSET 100 LIMIT 1"""


def generate(url: str, statements: list[str]) -> float:
    """Seconds to run `statements` in one transaction (no change rows), then VACUUM ANALYZE."""
    started = time.perf_counter()
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(QUIET)
        for statement in statements:
            cursor.execute(statement)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return time.perf_counter() - started


def landmarks(url: str) -> tuple[str, str, str]:
    """A dashboard cursor 100 pages deep, a run of 500 tasks, the run of 10,000."""
    rows = query(url, "SELECT id, created_at FROM workflow_runs ORDER BY created_at DESC, id DESC OFFSET 5000 LIMIT 1")
    big_run = query(url, "SELECT id FROM workflow_runs WHERE workflow_name <> 'big-10k' ORDER BY created_at DESC LIMIT 1")
    huge_run = query(url, "SELECT id FROM workflow_runs WHERE workflow_name = 'big-10k'")
    return encode_cursor(rows[0][1], rows[0][0]), str(big_run[0][0]), str(huge_run[0][0])


def oldest_jobs_cursor(url: str, user: str | None = None, group: str | None = None) -> str:
    (created_at, task_id, job_id), = query(url, OLDEST_PAGE_KEY, user, user, group, group)
    return encode_cursor(created_at, task_id, job_id)


def latencies(port: int, path: str, requests: int, headers: dict | None = None) -> tuple[float, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    for n in range(requests + 1):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        if n:  # the first warms the worker up
            samples.append(time.perf_counter() - started)
    connection.close()
    samples.sort()
    return samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.95)] * 1000


def page_and_refresh(port: int, path: str) -> tuple[int, int, int]:
    """The page's bytes gzipped and plain, and the bytes on the wire (status line,
    headers, body) of asking again with its ETag while nothing changed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Accept-Encoding": "gzip"})
    response = connection.getresponse()
    zipped = response.read()
    etag = response.getheader("ETag")
    plain = len(gzip.decompress(zipped)) if response.getheader("Content-Encoding") == "gzip" else len(zipped)
    connection.request("GET", path, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    again = connection.getresponse()
    body = again.read()
    assert again.status == 304, again.status
    wire = len(f"HTTP/1.1 {again.status} {again.reason}\r\n") + 2 + len(body) \
        + sum(len(name) + len(value) + 4 for name, value in again.getheaders())
    connection.close()
    return len(zipped), plain, wire


@contextmanager
def appliance_web(url: str):
    """`appliance web` on a free loopback port, as the container runs it (2 workers)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "BACKEND_PORT": str(port), "APPLIANCE_BIND": "127.0.0.1",
           "APPLIANCE_INGEST_TOKEN": TOKEN, "WEB_WORKERS": "2"}
    server = subprocess.Popen([sys.executable, "-m", "appliance.cli", "web"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=15)


def ingest_rate(port: int, batches: int, senders: int = 2) -> float:
    per_sender = batches // senders
    bodies = [[_batch() for _ in range(per_sender)] for _ in range(senders)]
    threads = [threading.Thread(target=_send_batches, args=(port, mine)) for mine in bodies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_sender * senders * 500 / (time.perf_counter() - started)


def _batch() -> bytes:
    run_id = str(uuid.uuid4())
    events = [{"id": str(uuid.uuid4()), "type": "run_started", "run_id": run_id, "name": "bench", "user": "b"}]
    for n in range(83):
        task_id = str(uuid.uuid4())
        events += [
            {"id": str(uuid.uuid4()), "type": "task_created", "run_id": run_id, "task_id": task_id, "name": f"r{n}"},
            {"id": str(uuid.uuid4()), "type": "task_started", "task_id": task_id},
            {"id": str(uuid.uuid4()), "type": "job_id", "task_id": task_id, "job_id": str(n)},
            {"id": str(uuid.uuid4()), "type": "log", "run_id": run_id, "task_id": task_id, "message": f"r{n} ran"},
            {"id": str(uuid.uuid4()), "type": "task_finished", "task_id": task_id},
        ]
    events += [{"id": str(uuid.uuid4()), "type": "log", "run_id": run_id, "message": f"line {n}"}
               for n in range(500 - len(events) - 1)]
    events.append({"id": str(uuid.uuid4()), "type": "run_finished", "run_id": run_id})
    assert len(events) == 500
    return json.dumps({"events": events}).encode()


def _send_batches(port: int, bodies: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body in bodies:
        connection.request("POST", "/api/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    connection.close()


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("appliance web did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ingest-batches", type=int, default=40)
    parser.add_argument("--only", choices=("pages", "jobs"), help="one case: its data only, the rest not generated")
    args = parser.parse_args()
    server = LocalPostgres.temporary(durable=True).start()
    try:
        url = server.url()
        prepare_schema(url)
        statements = RUNS_AND_TASKS + {"pages": PAGES, "jobs": JOBS, None: PAGES + JOBS}[args.only]
        seconds = generate(url, statements)
        print(f"generated the data of {args.only or 'every case'} in {seconds:.0f} s")
        with appliance_web(url) as port:
            if args.only in (None, "pages"):
                measure_pages(url, port, args)
            if args.only in (None, "jobs"):
                measure_jobs(url, port, args.requests)
    finally:
        server.destroy()


def measure_pages(url: str, port: int, args) -> None:
    deep_cursor, big_run, huge_run = landmarks(url)
    for name, path in (
        ("dashboard", "/"),
        ("dashboard, 100 pages deep", f"/?cursor={deep_cursor}"),
        ("run page, 500 tasks", f"/runs/{big_run}"),
        ("runs API", "/api/v1/runs"),
        ("runs API, filtered by user", "/api/v1/runs?user=user7"),
    ):
        p50, p95 = latencies(port, path, args.requests)
        print(f"{name:30s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    gzipped = {"Accept-Encoding": "gzip"}
    for name, path in (("run page, 10,000 tasks", f"/runs/{huge_run}"),
                       ("run API, 10,000 tasks", f"/api/v1/runs/{huge_run}"),
                       ("run page, 10,000, failed", f"/runs/{huge_run}?status=failed&sort=-duration")):
        p50, p95 = latencies(port, path, args.requests, gzipped)
        print(f"{name:30s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   (gzip)")
    for name, path in (("run page, 10,000 tasks", f"/runs/{huge_run}"), ("dashboard", "/")):
        zipped, plain, refresh = page_and_refresh(port, path)
        print(f"{name:30s} {zipped / 1024:6.1f} KB gzipped ({plain / 1024:,.0f} KB plain); "
              f"a refresh while unchanged: {refresh} bytes")
    rate = ingest_rate(port, args.ingest_batches)
    print(f"ingest, batches of 500 events through gunicorn: {rate:,.0f} events/s")


def measure_jobs(url: str, port: int, requests: int) -> None:
    """The jobs page (100 a page) at its first page, its last numbered page and its oldest page
    by cursor, alone and filtered; each p95 also as a ratio to the first page's."""
    (jobs,), = query(url, "SELECT count(*) FROM job_accounting")
    print(f"jobs: {jobs:,}")
    cases = (
        ("jobs, first page", "/jobs"),
        ("jobs, page 100 (OFFSET 9,900)", "/jobs?page=100"),
        ("jobs, oldest page by cursor", f"/jobs?before={oldest_jobs_cursor(url)}"),
        ("jobs API, oldest page", f"/api/v1/jobs?before={oldest_jobs_cursor(url)}"),
        ("jobs of a user, first page", "/jobs?user=user7"),
        ("jobs of a user, oldest page", f"/jobs?user=user7&before={oldest_jobs_cursor(url, user='user7')}"),
        ("jobs of a group, first page", "/jobs?group=group7"),
        ("jobs of a group, oldest page", f"/jobs?group=group7&before={oldest_jobs_cursor(url, group='group7')}"),
        ("jobs of a group with 3", "/jobs?group=group-rare"),
        ("jobs of a user with 3", "/jobs?user=user-rare"),
    )
    first = None
    for name, path in cases:
        p50, p95 = latencies(port, path, requests)
        first = first or p95
        print(f"{name:30s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({p95 / first:.2f} of the first page's p95)")


if __name__ == "__main__":
    main()
