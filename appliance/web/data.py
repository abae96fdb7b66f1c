"""The data of every page, computed once: the pages render it as HTML, the API as JSON.

Each function takes a database cursor and the request's arguments (a plain
mapping) and returns a JSON-ready dict. Bad arguments raise `BadRequest` with
a message that names the argument.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from uuid import UUID

from appliance.sql import load_queries
from appliance.views import VIEW_TABLES
from appliance.vocabulary import LOG_LEVELS, RUN_STATUSES, TaskStatus, row_progress

QUERIES = load_queries("web.sql")
PAGE_SIZE = 50
LOG_PAGE = 200
MAX_TASKS = 5000
FAILED_TASKS_LISTED = 10


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
    value = (args.get(name) or "").strip()
    if value == "":
        return default
    # ASCII digits only: int() also takes "1_000" and other scripts' digits.
    if len(value) > 100 or not re.fullmatch(r"[+-]?[0-9]+", value):
        raise BadRequest(f"{name} must be a whole number from {minimum} to {maximum}")
    number = int(value)
    if number > maximum:
        raise BadRequest(f"{name} must be at most {maximum}")
    if number < minimum:
        raise BadRequest(f"{name} must be at least {minimum}")
    return number


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


def encode_cursor(created_at: datetime, run_id: Any) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{run_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor of encode_cursor holds, created_at in UTC.

    A cursor comes from the client, so it may be forged: its time must name its
    offset and fit the calendar once in UTC (PostgreSQL refuses offsets past
    15:59, which Python accepts; a 500 otherwise).
    """
    try:
        created_at, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        when, run_id = datetime.fromisoformat(created_at), str(UUID(run_id))
    except (ValueError, binascii.Error, UnicodeError):
        raise BadRequest("cursor is not one this server gave out") from None
    if when.tzinfo is None:
        raise BadRequest("cursor is not one this server gave out (its time has no offset)")
    try:
        return when.astimezone(timezone.utc), run_id
    except OverflowError:
        raise BadRequest("cursor is not one this server gave out (its time is out of range)") from None


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
    }


def _elapsed(row: Mapping[str, Any]) -> float | None:
    """Seconds since a run still going started (its duration is known only at its end)."""
    if row["started_at"] is None or row["finished_at"] is not None:
        return None
    return round((datetime.now(timezone.utc) - row["started_at"]).total_seconds(), 1)


def task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "name": row["task_name"], "version": row["task_version"], "status": row["status"],
        "external_status": row["external_status"], "progress": row["progress"], "job_ids": row["job_ids"],
        "attempts": row["attempts"], "result_message": row["result_message"],
        "error_message": row["error_message"], "error_type": row["error_type"],
        "input": row["input_data"], "params": row["params"], "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]),
        "duration_seconds": row["duration_seconds"],
    }


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
    cursor.execute(QUERIES["status_counts"])
    counts = {row["status"]: row["runs"] for row in cursor.fetchall()}
    return {
        "runs": [run_json(row) for row in rows],
        "next": encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
        "counts": counts, "filters": filters, "limit": given_limit,
        "args": _given(**filters, cursor=page_cursor, limit=given_limit),
    }


def _like_pattern(text: str | None) -> str | None:
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run_page(cursor, run_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    run_id = parse_uuid(run_id, "run id")
    check_known(args, ("level",))
    level = _choice_arg(args, "level", LOG_LEVELS)
    cursor.execute(QUERIES["run"], {"run_id": run_id})
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"no workflow run has the id {run_id}")
    run = run_json(row)
    cursor.execute(QUERIES["run_tasks"], {"run_id": run_id, "limit": MAX_TASKS + 1})
    tasks = [task_json(task) for task in cursor.fetchall()]
    tasks_cut = len(tasks) > MAX_TASKS
    tasks = tasks[:MAX_TASKS]
    failed = [task for task in tasks if task["status"] == TaskStatus.FAILED]
    cursor.execute(QUERIES["run_latest_logs"], {"run_id": run_id, "before": None, "level": level,
                                                "limit": LOG_PAGE + 1})
    lines = cursor.fetchall()
    logs = [log_json(line) for line in reversed(lines[:LOG_PAGE])]
    return {"run": run, "tasks": tasks, "logs": logs, "level": level, "log_page": LOG_PAGE,
            "older_logs": len(lines) > LOG_PAGE, "last_log_id": logs[-1]["id"] if logs else 0,
            "timeline": timeline(tasks),
            # The page shows the first MAX_TASKS tasks, and the errors of a few failed ones in one box.
            "tasks_cut": tasks_cut, "tasks_total": max(run["progress"]["total"], len(tasks) + tasks_cut),
            "failed_tasks": failed[:FAILED_TASKS_LISTED],
            "failed_total": max(run["tasks"]["failed"], len(failed)),
            "args": _given(level=level)}


def run_logs(cursor, run_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """A page of a run's lines, oldest first: from the first, after an id, or before one (older)."""
    run_id = parse_uuid(run_id, "run id")
    check_known(args, ("after", "before", "level", "limit"))
    after = _int_arg(args, "after", None, 0, 2**62)
    before = _int_arg(args, "before", None, 1, 2**62)
    if after is not None and before is not None:
        raise BadRequest("give after (newer lines) or before (older lines), not both")
    level = _choice_arg(args, "level", LOG_LEVELS)
    given_limit = _int_arg(args, "limit", None, 1, 1000)
    limit = given_limit or LOG_PAGE
    cursor.execute(QUERIES["run"], {"run_id": run_id})
    if cursor.fetchone() is None:
        raise NotFound(f"no workflow run has the id {run_id}")
    if before is not None:
        cursor.execute(QUERIES["run_latest_logs"], {"run_id": run_id, "before": before, "level": level,
                                                    "limit": limit + 1})
        rows = cursor.fetchall()
        older = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    else:
        cursor.execute(QUERIES["run_logs"], {"run_id": run_id, "after": after or 0, "level": level, "limit": limit})
        rows = cursor.fetchall()
        older = bool(after)  # lines up to `after` exist, or it was not given out
    logs = [log_json(line) for line in rows]
    return {
        "run_id": run_id, "logs": logs, "level": level,
        # Cursors for the next pages: newer lines after `after`, older lines before `before`.
        "after": logs[-1]["id"] if logs else (after or (before - 1 if before else 0)),
        "before": logs[0]["id"] if logs else (before or (after + 1 if after else None)), "older": older,
        "args": _given(after=after, before=before, level=level, limit=given_limit),
    }


def jobs_page(cursor, args: Mapping[str, str], job_id: str | None = None) -> dict[str, Any]:
    if job_id is not None:  # /jobs/<job_id>: the id is in the path
        check_known(args, ())
    else:
        check_known(args, ("job_id", "user", "group", "limit"))
        job_id = _text_arg(args, "job_id")
    user, group = _text_arg(args, "user"), _text_arg(args, "group")
    limit = _int_arg(args, "limit", None, 1, 1000)
    if job_id is not None:
        cursor.execute(QUERIES["jobs_by_id"], {"job_id": job_id})
    else:
        cursor.execute(QUERIES["jobs_by_owner"], {"user": user, "group": group, "limit": limit or 200})
    return {"job_id": job_id, "user": user, "group": group, "jobs": [_plain(row) for row in cursor.fetchall()],
            "args": _given(job_id=job_id, user=user, group=group, limit=limit)}


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


TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def timeline(tasks: list[dict[str, Any]], width: int = 1000, row_height: int = 20,
             label_width: int = 200) -> dict[str, Any]:
    """A Gantt chart of the tasks, drawn by the run page as inline SVG (like Nextflow's
    timeline report): one bar per started task, from its start to its end (or now)."""
    started = [t for t in tasks if t["started_at"]]
    if not started:
        return {"bars": [], "ticks": [], "width": width, "height": 0, "label_width": label_width}
    now = datetime.now(timezone.utc)
    spans = [(datetime.fromisoformat(t["started_at"]),
              datetime.fromisoformat(t["finished_at"]) if t["finished_at"] else now) for t in started]
    begin = min(start for start, _ in spans)
    seconds = max(max(end for _, end in spans) - begin, timedelta(seconds=1)).total_seconds()
    scale = (width - label_width - 16) / seconds
    bars = [{
        "label": task["name"], "status": task["status"], "y": index * row_height,
        "x": label_width + (start - begin).total_seconds() * scale,
        "width": max((end - start).total_seconds() * scale, 2.0),
        "title": f"{task['name']}: {human_duration((end - start).total_seconds())}, {task['status']}",
    } for index, (task, (start, end)) in enumerate(zip(started, spans))]
    # About six gridlines at a round step: 0, 5 min, 10 min, ...
    step = next((s for s in TICK_STEPS if seconds / s <= 6), TICK_STEPS[-1])
    ticks = [{"x": label_width + k * step * scale, "label": human_duration(k * step)}
             for k in range(int(seconds // step) + 1)]
    return {"bars": bars, "ticks": ticks, "width": width, "height": len(bars) * row_height,
            "row_height": row_height, "label_width": label_width}


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(int(seconds) // 60, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")
