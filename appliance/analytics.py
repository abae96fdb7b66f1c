"""BIOMERO's read helpers over the appliance's views: in Python and (appliance.web.analytics) as JSON.

BIOMERO 2.8 answers these from its own view tables (`JobAccounting.get_task_id`,
`get_jobs`; `WorkflowAnalytics.get_task_counts`, `get_average_task_duration`,
`get_task_failures`, `get_task_usage_over_time`). `BiomeroReads` has the same
methods, arguments and return shapes, over every run the appliance shows
(BIOMERO's, read from its log, and every other source's). The page functions
underneath return one page of rows (`limit`, `offset`) for the JSON API.

Differences, on purpose: a Slurm job id the cluster recycled belongs to its
newest task (BIOMERO keeps one row per id); a duration runs from a task's
start, not its creation; failures are grouped by error message, as BIOMERO's
`error_type` column holds it.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from appliance import db
from appliance.config import parse_database_url
from appliance.sql import load_queries

QUERIES = load_queries("analytics.sql")
MAX_LIMIT = 1000
EVERYTHING = 2**62  # the Python helpers return every row, as BIOMERO's do


def _filters(user: Any, group: Any) -> dict[str, str | None]:
    # BIOMERO's OMERO ids are ints; the views show them as text.
    return {"user": None if user is None else str(user), "group": None if group is None else str(group)}


def task_id_of_job(cursor, job_id: Any) -> str | None:
    cursor.execute(QUERIES["task_id_of_job"], {"job_id": str(job_id)})
    row = cursor.fetchone()
    return None if row is None else row["task_id"]


def page(cursor, query: str, *, limit: int, offset: int, user: Any = None, group: Any = None,
         **params: Any) -> list[dict]:
    """One page of a list query of analytics.sql, rows as dicts."""
    cursor.execute(QUERIES[query], {**_filters(user, group), "limit": limit, "offset": offset, **params})
    return [dict(row) for row in cursor.fetchall()]


class BiomeroReads:
    """BIOMERO's JobAccounting and WorkflowAnalytics read methods, over the appliance's views."""

    def __init__(self, database_url: str):
        self._url = parse_database_url(database_url)

    def get_task_id(self, job_id: Any) -> UUID | None:
        """The task of a (Slurm) job id, or None."""
        found = self._read(lambda cursor: task_id_of_job(cursor, job_id))
        return None if found is None else UUID(found)

    def get_jobs(self, user: Any = None, group: Any = None) -> dict:
        """Job ids by user: {user: [job ids]}, or, filtered, {user: [job ids]} for the user asked."""
        rows = self._all("jobs", user, group)
        if user is None and group is None:
            jobs: dict = {}
            for row in rows:
                jobs.setdefault(_as_given(row["user"]), []).append(_as_given(row["job_id"]))
            return jobs
        return {user: [_as_given(row["job_id"]) for row in rows]}

    def get_task_counts(self, user: Any = None, group: Any = None) -> dict:
        return {(row["task_name"], row["task_version"]): row["count"] for row in self._all("task_counts", user, group)}

    def get_average_task_duration(self, user: Any = None, group: Any = None) -> dict:
        return {(row["task_name"], row["task_version"]): float(row["average_seconds"])
                for row in self._all("task_durations", user, group)}

    def get_task_failures(self, user: Any = None, group: Any = None) -> dict:
        return {(row["task_name"], row["task_version"]): list(row["errors"])
                for row in self._all("task_failures", user, group)}

    def get_task_usage_over_time(self, task_name: str, user: Any = None, group: Any = None) -> dict[date, int]:
        return {row["date"]: row["count"] for row in self._all("task_usage", user, group, task_name=task_name)}

    def _all(self, query: str, user: Any, group: Any, **params: Any) -> list[dict]:
        return self._read(lambda cursor: page(cursor, query, limit=EVERYTHING, offset=0, user=user, group=group,
                                              **params))

    def _read(self, read):
        with db.connection(self._url, "appliance-analytics") as connection, \
                connection.transaction(dict_rows=True) as cursor:
            return read(cursor)


def _as_given(value: str | None) -> int | str | None:
    """A text column's value as BIOMERO gives it: its ids are ints ('52' -> 52, '-1' -> -1)."""
    if value is not None and value.lstrip("-").isdigit() and len(value) < 19:
        return int(value)
    return value
