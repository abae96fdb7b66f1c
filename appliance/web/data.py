"""The data of every page, computed once: the pages render it as HTML, the API as JSON.

Each function takes a database cursor and the request's arguments (a plain
mapping) and returns a JSON-ready dict. Bad arguments raise `BadRequest` with
a message that names the argument.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from uuid import UUID

from appliance.config import parse_whole_number
from appliance.sql import compose, load_queries
from appliance.views import VIEW_TABLES
from appliance.vocabulary import LOG_LEVELS, RUN_STATUSES, RunStatus, row_progress
from appliance.web.charts import task_label

QUERIES = load_queries("web.sql")
PAGE_SIZE = 50
LOG_PAGE = 200
JOB_PAGE = 100
JOBS_COUNTED = 10_000  # a count costs at most this many rows; beyond, pages say "10,000+"


class BadRequest(ValueError):
    pass


class NotFound(LookupError):
    pass


# Arguments.


def _text_arg(args: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    value = args.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > limit or "\x00" in value:
        raise BadRequest(f"{name} must be at most {limit} characters, without NUL")
    return value.strip()


def _choice_arg(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = _text_arg(args, name)
    if value is not None and value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}")
    return value


def _int_arg(args: Mapping[str, str], name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    if name not in args:
        return default
    value = args[name].strip()
    # An empty value is no number: refused as the schema says (the pages never send one).
    try:
        return parse_whole_number(value, minimum, maximum)
    except ValueError as error:
        raise BadRequest(f"{name} {error}") from None


def check_known(args: Mapping[str, str], known: tuple[str, ...]) -> None:
    """Refuse parameters a page does not take: a misspelt filter (`statuss=failed`)
    would otherwise be ignored silently and show every run."""
    unknown = sorted(set(args) - set(known))
    if unknown:
        takes = f"it takes {', '.join(known)}" if known else "it takes none"
        raise BadRequest(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(name) for name in unknown)}; {takes}")


def _given(**values) -> dict[str, Any]:
    """The arguments of an answer as understood, for links to it (never the raw query string)."""
    return {name: value for name, value in values.items() if value is not None}


def parse_uuid(value: str, name: str) -> str:
    try:
        return str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise BadRequest(f"{name} must be a UUID") from None


def encode_cursor(created_at: datetime, row_id: Any, *more: str) -> str:
    """A place in a list newest first, given out for the next page: the key of its
    last row, (created_at, id) and, where that is not unique, `more` (a job's id)."""
    return base64.urlsafe_b64encode("|".join([created_at.isoformat(), str(row_id), *more]).encode()).decode()


def decode_cursor(cursor: str, name: str = "cursor", more: int = 0) -> tuple:
    """The (created_at, id, *more) a cursor of encode_cursor holds, created_at in UTC.

    A cursor comes from the client, so it may be forged: a BadRequest naming the
    parameter (`name`) unless it has exactly its parts (the last may hold "|"),
    none with NUL (which no text column takes), and its time names its offset
    and fits the calendar once in UTC (PostgreSQL refuses offsets past 15:59,
    which Python accepts; a 500 otherwise).
    """
    refused = f"{name} is not one this server gave out"
    try:
        created_at, row_id, *rest = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1 + more)
        when, row_id = datetime.fromisoformat(created_at), str(UUID(row_id))
    except (ValueError, binascii.Error, UnicodeError):
        raise BadRequest(refused) from None
    if len(rest) != more or any("\x00" in part for part in rest):
        raise BadRequest(refused)
    if when.tzinfo is None:
        raise BadRequest(f"{refused} (its time has no offset)")
    try:
        return (when.astimezone(timezone.utc), row_id, *rest)
    except OverflowError:
        raise BadRequest(f"{refused} (its time is out of range)") from None


# JSON shapes.


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "name": row["workflow_name"], "description": row["description"],
        "status": row["status"], "user": row["user_name"], "group": row["group_name"], "source": row["source"],
        "progress": row_progress(row).as_json(),
        "tasks": {"running": row["tasks_running"], "completed": row["tasks_completed"], "failed": row["tasks_failed"]},
        "current_task": row["current_task"], "error_message": row["error_message"],
        "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]), "duration_seconds": row["duration_seconds"],
        "elapsed_seconds": _elapsed(row), "last_event_at": _iso(row["last_event_at"]),
        "last_heard_seconds_ago": _heard_ago(row),
    }


def _elapsed(row: Mapping[str, Any]) -> float | None:
    """Seconds since a run still going started (its duration is known only at its end);
    a stale run's stop at its last event: nothing says it went on after."""
    if row["started_at"] is None or row["finished_at"] is not None:
        return None
    until = row["last_event_at"] if row["status"] == RunStatus.STALE else datetime.now(timezone.utc)
    return round(max((until - row["started_at"]).total_seconds(), 0.0), 1)


def _heard_ago(row: Mapping[str, Any]) -> float | None:
    """Seconds since a run still going was last heard from (its latest event)."""
    if row["finished_at"] is not None or row["last_event_at"] is None:
        return None
    return round(max((datetime.now(timezone.utc) - row["last_event_at"]).total_seconds(), 0.0), 1)


def log_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "task_id": row["task_id"] and str(row["task_id"]), "level": row["level"],
            "message": row["message"], "logged_at": _iso(row["logged_at"])}


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (_iso(value) if isinstance(value, datetime) else str(value) if isinstance(value, UUID) else value)
            for key, value in row.items()}


# Pages.


RUNS_ARGS = ("status", "user", "group", "q", "cursor", "limit")


def runs_page(cursor, args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, RUNS_ARGS)
    filters = {
        "status": _choice_arg(args, "status", RUN_STATUSES), "user": _text_arg(args, "user"),
        "group": _text_arg(args, "group"), "q": _text_arg(args, "q"),
    }
    given_limit = _int_arg(args, "limit", None, 1, 200)
    limit = given_limit or PAGE_SIZE
    page_cursor = _text_arg(args, "cursor", limit=400)
    before_time, before_id = decode_cursor(page_cursor) if page_cursor else (None, None)
    cursor.execute(QUERIES["runs_page"], {
        "status": filters["status"], "user": filters["user"], "group": filters["group"],
        "pattern": _like_pattern(filters["q"]), "before_time": before_time, "before_id": before_id,
        "limit": limit + 1,
    })
    rows = cursor.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor.execute(QUERIES["status_counts"], {"user": filters["user"], "group": filters["group"],
                                              "pattern": _like_pattern(filters["q"])})
    counts = {row["status"]: row["runs"] for row in cursor.fetchall()}
    return {
        "runs": [run_json(row) for row in rows],
        "next": encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
        "counts": counts, "filters": filters, "limit": given_limit,
        "filtered": any(value is not None for value in filters.values()),
        "args": _given(**filters, cursor=page_cursor, limit=given_limit),
    }


def _like_pattern(text: str | None) -> str | None:
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


LOG_ARGS = ("after", "before", "level", "task", "q", "limit")


def log_filters(args: Mapping[str, str]) -> dict[str, Any]:
    """The filters of a run's log lines (page, JSON and plain text): level, task id, text."""
    task = _text_arg(args, "task", 100)
    return {"level": _choice_arg(args, "level", LOG_LEVELS),
            "task": None if task is None else parse_uuid(task, "task"), "q": _text_arg(args, "q")}


def log_query(run_id: str, filters: Mapping[str, Any], **bounds: Any) -> dict[str, Any]:
    """The parameters of run_logs and run_latest_logs for these filters."""
    return {"run_id": run_id, "level": filters["level"], "task_id": filters["task"],
            "pattern": _like_pattern(filters["q"]), "before": None, **bounds}


def run_logs(cursor, run_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """A page of a run's lines, oldest first: from the first, after an id, before one (older), or between."""
    run_id = parse_uuid(run_id, "run id")
    check_known(args, LOG_ARGS)
    after = _int_arg(args, "after", None, 0, 2**62)
    before = _int_arg(args, "before", None, 1, 2**62)
    filters = log_filters(args)
    given_limit = _int_arg(args, "limit", None, 1, 1000)
    limit = given_limit or LOG_PAGE
    cursor.execute(QUERIES["run"], {"run_id": run_id})
    run = cursor.fetchone()
    if run is None:
        raise NotFound(f"no workflow run has the id {run_id}")
    if before is not None and after is None:
        cursor.execute(QUERIES["run_latest_logs"], log_query(run_id, filters, before=before, limit=limit + 1))
        rows = cursor.fetchall()
        older = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    else:
        # After an id, and before one too when both are given: the lines between, oldest first.
        cursor.execute(QUERIES["run_logs"], log_query(run_id, filters, after=after or 0, before=before, limit=limit))
        rows = cursor.fetchall()
        older = bool(after)  # lines up to `after` exist, or it was not given out
    logs = [log_json(line) for line in rows]
    _name_tasks(cursor, logs)
    return {
        "run_id": run_id, "run_name": run["workflow_name"], "logs": logs, **filters,
        "filtered": any(value is not None for value in filters.values()),
        # Cursors for the next pages: newer lines after `after`, older lines before `before`.
        "after": logs[-1]["id"] if logs else (after or (before - 1 if before else 0)),
        "before": logs[0]["id"] if logs else (before or (after + 1 if after else None)), "older": older,
        "args": _given(after=after, before=before, **filters, limit=given_limit),
    }


def _name_tasks(cursor, logs: list[dict[str, Any]]) -> None:
    """Each line's task name (and wildcards), for the lines of one page."""
    ids = sorted({line["task_id"] for line in logs if line["task_id"]})
    if not ids:
        return
    cursor.execute(QUERIES["task_names"], {"ids": ids})
    names = {str(row["id"]): task_label(row["task_name"], row["wildcards"]) for row in cursor.fetchall()}
    for line in logs:
        line["task"] = names.get(line["task_id"])


JOB_ARGS = ("job_id", "user", "group", "page", "before", "after", "limit")
ONE_JOB_ARGS = ("page", "before", "after", "limit")  # /jobs/<job_id>: the id is in the path
JOB_CURSOR_LENGTH = 6000  # base64 of a time, a task id and a job id (1,000 characters, up to 4 bytes each)
JOBS_OLDER, JOBS_NEWER = compose(QUERIES, "jobs_older"), compose(QUERIES, "jobs_newer")
JOBS_COUNT = compose(QUERIES, "jobs_count")


def jobs_page(cursor, args: Mapping[str, str], job_id: str | None = None) -> dict[str, Any]:
    """Jobs newest first: by page number through the first JOBS_COUNTED, and at any depth
    by cursor (`before` an answer's `older`, `after` its `newer`), with the same filters."""
    if job_id is not None:
        check_known(args, ONE_JOB_ARGS)
    else:
        check_known(args, JOB_ARGS)
        job_id = _text_arg(args, "job_id")
    user, group = _text_arg(args, "user"), _text_arg(args, "group")
    given_limit = _int_arg(args, "limit", None, 1, 1000)
    limit = given_limit or JOB_PAGE
    page = _int_arg(args, "page", None, 1, 100_000)
    (before, before_key), (after, after_key) = _job_cursor(args, "before"), _job_cursor(args, "after")
    if before and after:
        raise BadRequest("before and after cannot both be given: one is a page older, the other newer")
    if page is not None and (before or after):
        raise BadRequest(f"page cannot be given with {'before' if before else 'after'}: a cursor is a place of its own")
    # An id names its jobs alone (the owner's fields of the form are not applied to it).
    where = {"job_id": job_id, "user": user if job_id is None else None, "group": group if job_id is None else None}
    if after:
        rows, older, newer = _newer_jobs(cursor, where, after_key, limit)
    else:
        rows, older, newer = _older_jobs(cursor, where, before_key, (page or 1) - 1, limit)
    cursor.execute(JOBS_COUNT, {**where, "cap": JOBS_COUNTED + 1})
    total = cursor.fetchone()["jobs"]
    return {"job_id": job_id, "user": user, "group": group, "jobs": [_plain(row) for row in rows],
            "total": min(total, JOBS_COUNTED), "total_capped": total > JOBS_COUNTED,
            "page": None if before or after else page or 1,
            "pages": max((min(total, JOBS_COUNTED) + limit - 1) // limit, 1),
            "older": _job_key(rows[-1]) if older else None, "newer": _job_key(rows[0]) if newer else None,
            "limit": given_limit,
            "args": _given(job_id=job_id, user=user, group=group, page=page, before=before, after=after,
                           limit=given_limit)}


def _job_cursor(args: Mapping[str, str], name: str) -> tuple[str | None, dict[str, Any]]:
    """A cursor argument as given and the key it holds, as the jobs queries take it
    (all None without one); a 400 naming it when it is not a cursor of a job."""
    value = _text_arg(args, name, JOB_CURSOR_LENGTH)
    when, task_id, job_id = decode_cursor(value, name, more=1) if value is not None else (None, None, None)
    return value, {"key_time": when, "key_task": task_id, "key_job": job_id}


def _job_key(row: Mapping[str, Any]) -> str:
    return encode_cursor(row["created_at"], row["task_id"], row["job_id"])


def _older_jobs(cursor, where: Mapping[str, Any], before: Mapping[str, Any], skip_pages: int, limit: int):
    """A page newest first from the newest (`skip_pages` pages down) or older than the key
    `before`, and whether there are older and newer jobs than it."""
    offset = skip_pages * limit
    # Numbered pages go as far as the first JOBS_COUNTED jobs (a deep OFFSET costs every row
    # before it); one past them is empty, as the schema allows any page: `older` goes on.
    if offset >= JOBS_COUNTED:
        return [], False, False
    cursor.execute(JOBS_OLDER, {**where, **before, "limit": limit + 1, "offset": offset})
    rows = cursor.fetchall()
    return rows[:limit], len(rows) > limit, bool(rows) and (before["key_time"] is not None or offset > 0)


def _newer_jobs(cursor, where: Mapping[str, Any], after: Mapping[str, Any], limit: int):
    """The page just newer than the key `after`, newest first, and whether there are older and
    newer jobs (older: the one `after` names, at least)."""
    cursor.execute(JOBS_NEWER, {**where, **after, "limit": limit + 1})
    rows = cursor.fetchall()
    return rows[:limit][::-1], bool(rows), len(rows) > limit


def changes_page(cursor, args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, ("table", "after", "limit"))
    table = _choice_arg(args, "table", VIEW_TABLES)
    given_limit = _int_arg(args, "limit", None, 1, 1000)
    limit = given_limit or 100
    after = _int_arg(args, "after", None, 0, 2**62)
    if after is not None:
        cursor.execute(QUERIES["changes_after"], {"after": after, "table": table, "limit": limit})
    else:
        since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=7)
        cursor.execute(QUERIES["recent_changes"], {"since": since, "table": table, "limit": limit})
    changes = [_plain(row) for row in cursor.fetchall()]
    return {"table": table, "after": after, "changes": changes,
            "args": _given(table=table, after=after, limit=given_limit)}
