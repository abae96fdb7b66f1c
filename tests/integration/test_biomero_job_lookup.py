"""load_jobs (BIOMERO's job tables' source rows) picks what reading every row of a job id picks.

load_jobs walks each job id's tasks newest first through two indexes and
stops at the first that fits; the plain form below reads them all, as the
query did before those indexes. Over random accounting rows (shared and
recycled job ids, equal times, runs with and without OMERO ids, reported or
not), both must name the same tasks.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone

import psycopg2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.projection.biomero_views import QUERIES

READ_EVERY_ROW = """
WITH given AS (
    SELECT a.job_id, a.task_id::text AS task_id, a.status, a.progress, a.created_at, r.user_name, r.group_name,
           CASE WHEN r.user_name ~ '^-?[0-9]{1,10}$'
                THEN r.user_name::bigint BETWEEN -2147483648 AND 2147483647 ELSE false END
           AND CASE WHEN r.group_name ~ '^-?[0-9]{1,10}$'
                THEN r.group_name::bigint BETWEEN -2147483648 AND 2147483647 ELSE false END AS owned,
           r.source IS NOT DISTINCT FROM 'biomero' AS biomero_run,
           a.status IS NOT NULL OR a.progress IS NOT NULL OR a.updated_at > a.created_at AS reported
    FROM job_accounting a JOIN workflow_runs r ON r.id = a.run_id
    WHERE a.job_id = ANY(%(jobs)s::text[])
)
(SELECT DISTINCT ON (job_id) 'owner' AS kind, job_id, task_id, status, progress, created_at, user_name, group_name
 FROM given WHERE owned ORDER BY job_id, created_at DESC, task_id DESC)
UNION ALL
(SELECT DISTINCT ON (job_id) 'reported', job_id, task_id, status, progress, created_at, user_name, group_name
 FROM given WHERE reported AND (owned OR biomero_run) ORDER BY job_id, created_at DESC, task_id DESC)
"""
JOB_IDS = ("-1", "4711", "04711")
GIVEN_AT = tuple(datetime(2026, 12, 4, tzinfo=timezone.utc) + timedelta(seconds=s) for s in (0, 1))  # ties
runs = st.lists(st.tuples(st.sampled_from(["1", "-1", "0042", "1", "2147483648", "alice", None]),
                          st.sampled_from(["2", "-7", "2", "99999999999", "", None]),
                          st.sampled_from(["biomero", "snakemake", None])), min_size=1, max_size=4)
accounting = st.lists(st.tuples(st.sampled_from(JOB_IDS), st.integers(0, 3), st.sampled_from(GIVEN_AT),
                                st.sampled_from([None, "RUNNING"]), st.sampled_from([None, "50%"]), st.booleans()),
                      max_size=25, unique_by=lambda row: row[:2])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=runs, accounting=accounting, wanted=st.lists(st.sampled_from(JOB_IDS + ("none",)), min_size=1, max_size=5))
def test_load_jobs_names_the_tasks_that_reading_every_row_names(database_url, runs, accounting, wanted):
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        run_ids = [uuid.uuid4() for _ in runs]
        for run_id, (user, group, source) in zip(run_ids, runs):
            cursor.execute("INSERT INTO workflow_runs (id, workflow_name, user_name, group_name, source) "
                           "VALUES (%s, 'w', %s, %s, %s)", (str(run_id), user, group, source))
        task_ids = [uuid.UUID(int=n + 1) for n in range(4)]  # equal times fall to the larger id
        for n, task_id in enumerate(task_ids):
            cursor.execute("INSERT INTO job_executions (id, run_id, task_name) VALUES (%s, %s, 't')",
                           (str(task_id), str(run_ids[n % len(run_ids)])))
        for job_id, task, at, status, progress, updated_later in accounting:
            cursor.execute(
                "INSERT INTO job_accounting (job_id, task_id, run_id, status, progress, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (job_id, str(task_ids[task]), str(run_ids[task % len(run_ids)]), status, progress, at,
                 at + timedelta(seconds=updated_later)))
        picked = {}
        for name, query in (("load_jobs", QUERIES["load_jobs"]), ("every row", READ_EVERY_ROW)):
            cursor.execute(query, {"jobs": wanted})
            picked[name] = sorted(cursor.fetchall())
        connection.rollback()  # each example starts from empty tables
    assert picked["load_jobs"] == picked["every row"]

