"""The data of a run's page and of one task's page (and their JSON twins).

The run page is bounded whatever the run: a page of TASK_PAGE tasks (filtered,
sorted and paged in the database), at most RULES_LISTED rules in the summary,
FAILED_TASKS_LISTED failed tasks in the error panel, each error cut to its last
lines (the whole text is on the task's page), LOG_PAGE log lines, and the
drawings of appliance.web.charts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from appliance.sql import compose
from appliance.vocabulary import TASK_STATUSES, TaskStatus, is_terminal
from appliance.web import charts
from appliance.web.data import (
    LOG_LEVELS,
    LOG_PAGE,
    QUERIES,
    BadRequest,
    NotFound,
    _choice_arg,
    _given,
    _int_arg,
    _iso,
    _like_pattern,
    _text_arg,
    check_known,
    log_json,
    log_query,
    parse_uuid,
    run_json,
)

# One filter clause (web.sql's run_task_filter) in both: the count is of the rows the page pages.
RUN_TASKS, RUN_TASKS_MATCHING = compose(QUERIES, "run_tasks"), compose(QUERIES, "run_tasks_matching")
TASK_PAGE = 100
MAX_TASK_PAGE = 500
RULES_LISTED = 100
CHAIN_RULES = 20  # the rules drawn in order when the source sent no graph
FAILED_TASKS_LISTED = 10
ERROR_LINES = 12  # a traceback's cause is at its end
ERROR_CHARS = 2000
TABLE_ERROR_LINES = 3
TABLE_ERROR_CHARS = 400
TASK_SORTS = ("created", "-created", "name", "-name", "status", "-status", "started", "-started",
              "duration", "-duration", "attempts", "-attempts")
RUN_ARGS = ("level", "status", "rule", "q", "sort", "page", "limit")


def run_page(cursor, run_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    run_id = parse_uuid(run_id, "run id")
    check_known(args, RUN_ARGS)
    level = _choice_arg(args, "level", LOG_LEVELS)
    filters = {"status": _choice_arg(args, "status", TASK_STATUSES), "rule": _text_arg(args, "rule", 1000),
               "q": _text_arg(args, "q"), "sort": _choice_arg(args, "sort", TASK_SORTS)}
    page = _int_arg(args, "page", None, 1, 100_000)
    given_limit = _int_arg(args, "limit", None, 1, MAX_TASK_PAGE)
    limit = given_limit or TASK_PAGE
    run = _the_run(cursor, run_id)
    now = datetime.now(timezone.utc)
    rules = _rules(cursor, run_id, now, run["planned_jobs"], run["rule_graph"])
    colours = charts.rule_colours(rule["name"] for rule in rules)
    tasks, matching = _tasks(cursor, run_id, filters, limit, ((page or 1) - 1) * limit, run["tasks_total"])
    failed, failed_total = _failed_tasks(cursor, run_id)
    cursor.execute(QUERIES["run_latest_logs"], log_query(run_id, {"level": level, "task": None, "q": None},
                                                         before=None, limit=LOG_PAGE + 1))
    lines = cursor.fetchall()
    logs = [log_json(line) for line in reversed(lines[:LOG_PAGE])]
    return {
        "run": run, "live": not is_terminal(run["status"]),
        "rules": rules, "rules_listed": RULES_LISTED, "graph": _graph(run, rules),
        "timeline": _timeline(cursor, run_id, rules, colours, now),
        "tasks": tasks, "tasks_matching": matching, "filters": filters,
        "page": page or 1, "pages": max((matching + limit - 1) // limit, 1), "limit": given_limit,
        "failed_tasks": failed, "failed_total": failed_total,
        "logs": logs, "level": level, "log_page": LOG_PAGE, "older_logs": len(lines) > LOG_PAGE,
        "last_log_id": logs[-1]["id"] if logs else 0,
        "args": _given(level=level, **filters, page=page, limit=given_limit),
    }


def task_page(cursor, run_id: str, task_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """One task whole: every attempt, its whole error, its parameters, its latest log lines."""
    run_id, task_id = parse_uuid(run_id, "run id"), parse_uuid(task_id, "task id")
    check_known(args, ())
    run = _the_run(cursor, run_id)
    cursor.execute(QUERIES["task"], {"run_id": run_id, "task_id": task_id})
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"the run {run_id} has no task with the id {task_id}")
    cursor.execute(QUERIES["run_latest_logs"], log_query(run_id, {"level": None, "task": task_id, "q": None},
                                                         before=None, limit=LOG_PAGE))
    logs = [log_json(line) for line in reversed(cursor.fetchall())]
    return {"run": run, "task": {**task_json(row), "results": row["results"]}, "logs": logs,
            "live": not is_terminal(run["status"]), "args": {}}


def task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    input_data = row["input_data"] if isinstance(row["input_data"], dict) else {}
    wildcards = input_data.get("wildcards") if isinstance(input_data.get("wildcards"), dict) else {}
    return {
        "id": str(row["id"]), "name": row["task_name"], "version": row["task_version"], "status": row["status"],
        "external_status": row["external_status"], "progress": row["progress"], "job_ids": row["job_ids"],
        "attempts": row["attempts"], "attempt_history": _attempts(row),
        "result_message": row["result_message"], "error_message": row["error_message"],
        "error_type": row["error_type"], "wildcards": wildcards,
        "input": row["input_data"], "params": row["params"], "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]),
        "duration_seconds": row["duration_seconds"],
        "files": {"inputs": row["inputs"], "outputs": row["outputs"], "log": row["log_files"],
                  "benchmark": row["benchmark_file"]},
        "conda_env": row["conda_env"], "container": row["container_image"], "host": row["host"],
        "resource_usage": row["resource_usage"],
    }


def _attempts(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each attempt's times, status and error: earlier failed attempts of a task that then
    completed are marked as such (`earlier`), so their errors are not read as its result."""
    history = row.get("attempt_history") or []
    return [{**attempt, "number": number, "earlier": number < len(history)}
            for number, attempt in enumerate(history, start=1)]


def error_tail(text: str | None, lines: int = ERROR_LINES, chars: int = ERROR_CHARS) -> dict[str, Any] | None:
    """The end of an error (a traceback's cause is its last lines), and whether it was cut."""
    if not text:
        return None
    kept = text.rstrip("\n").split("\n")[-lines:]
    tail = "\n".join(kept)[-chars:]
    return {"text": tail, "cut": len(tail) < len(text.rstrip("\n"))}


def _the_run(cursor, run_id: str) -> dict[str, Any]:
    cursor.execute(QUERIES["run"], {"run_id": run_id})
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"no workflow run has the id {run_id}")
    return {**run_json(row), "params": row["params"], "tasks_total": row["tasks_total"],
            "planned_jobs": row["planned_jobs"], "rule_graph": row["rule_graph"]}


def _rules(cursor, run_id: str, now: datetime, planned: Mapping[str, int] | None,
           graph: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The rules with tasks, then those only planned or in the rule graph (no job started yet):
    each with its tasks by status and the jobs its source planned (None when it told no plan)."""
    cursor.execute(QUERIES["run_rules"], {"run_id": run_id, "limit": RULES_LISTED, "now": now})
    planned = planned if isinstance(planned, dict) else {}
    rules = [{"name": row["task_name"], "total": row["total"], "created": row["created"],
              "running": row["running"], "completed": row["completed"], "failed": row["failed"],
              "retries": int(row["retries"] or 0), "state": _rule_state(row),
              "first_started": _iso(row["first_started"]), "last_finished": _iso(row["last_finished"]),
              "started": row["started"], "busy_until": _iso(row["busy_until"]),
              "mean_seconds": row["mean_seconds"], "planned": planned.get(row["task_name"]),
              # Of the jobs planned, when more than have tasks: a bar of done against planned.
              "percent": {status: (row[status] * 100 // max(row["total"], planned.get(row["task_name"]) or 0))
                          // 5 * 5 for status in TASK_STATUSES}}
             for row in cursor.fetchall()]
    seen = {rule["name"] for rule in rules}
    waiting = [name for name in [*((graph or {}).get("rules") or []), *sorted(planned)] if name not in seen]
    for name in list(dict.fromkeys(waiting))[:max(RULES_LISTED - len(rules), 0)]:
        rules.append({"name": name, "total": 0, "created": 0, "running": 0, "completed": 0, "failed": 0,
                      "retries": 0, "state": TaskStatus.CREATED, "first_started": None, "last_finished": None,
                      "started": 0, "busy_until": None, "mean_seconds": None, "planned": planned.get(name),
                      "percent": {status: 0 for status in TASK_STATUSES}})
    return rules


def _rule_state(row: Mapping[str, Any]) -> str:
    for status in (TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.CREATED):
        if row[status]:
            return status
    return TaskStatus.COMPLETED


def _tasks(cursor, run_id: str, filters: Mapping[str, Any], limit: int, offset: int, total: int):
    """A page of tasks, and how many match (the run's count when nothing filters them)."""
    where = {"run_id": run_id, "status": filters["status"], "rule": filters["rule"],
             "pattern": _like_pattern(filters["q"])}
    cursor.execute(RUN_TASKS, {**where, "sort": filters["sort"] or "created",
                                          "limit": limit, "offset": offset})
    rows = cursor.fetchall()
    matching = total
    if filters["status"] or filters["rule"] or filters["q"]:
        cursor.execute(RUN_TASKS_MATCHING, where)
        matching = cursor.fetchone()["matching"]
    tasks = [{**task_json(row), "error_tail": error_tail(row["error_message"], TABLE_ERROR_LINES,
                                                         TABLE_ERROR_CHARS)} for row in rows]
    for task in tasks:  # the table shows the tail; the task's page has the whole text
        task["error_message"] = None if task["error_message"] is None else task["error_tail"]["text"]
    return tasks, matching


def _failed_tasks(cursor, run_id: str) -> tuple[list[dict[str, Any]], int]:
    cursor.execute(QUERIES["run_failed_tasks"], {"run_id": run_id, "limit": FAILED_TASKS_LISTED})
    rows = cursor.fetchall()
    failed = [{"id": str(row["id"]), "name": row["task_name"], "error_type": row["error_type"],
               "attempts": row["attempts"], "wildcards": _wildcards(row["input_data"]),
               "error": error_tail(row["error_message"])} for row in rows]
    return failed, rows[0]["matching"] if rows else 0


def _wildcards(input_data: Any) -> dict[str, Any]:
    wildcards = input_data.get("wildcards") if isinstance(input_data, dict) else None
    return wildcards if isinstance(wildcards, dict) else {}


def _timeline(cursor, run_id: str, rules: list[dict[str, Any]], colours: Mapping[str, int],
              now: datetime) -> dict[str, Any]:
    started = [rule for rule in rules if rule["started"]]
    if not started:
        return {"mode": None, "rows": [], "ticks": [], "height": 0, "rules_left_out": 0}
    begin = min(datetime.fromisoformat(rule["first_started"]) for rule in started)
    end = max(begin, *(datetime.fromisoformat(rule["busy_until"]) for rule in started))
    if sum(rule["started"] for rule in started) <= charts.TIMELINE_TASKS:
        cursor.execute(QUERIES["timeline_tasks"], {"run_id": run_id, "limit": charts.TIMELINE_TASKS})
        return charts.task_timeline(cursor.fetchall(), begin, end, colours)
    names = [rule["name"] for rule in started][:charts.TIMELINE_RULES]
    buckets = charts.TIMELINE_BUCKETS
    seconds = max((end - begin).total_seconds(), 1.0)
    cursor.execute(QUERIES["timeline_lanes"], {"run_id": run_id, "now": now, "begin": begin, "names": names,
                                               "bucket": seconds / buckets, "buckets": buckets})
    result = charts.lane_timeline(cursor.fetchall(), names, begin, end, buckets, colours)
    result["rules_left_out"] = len(started) - len(names)
    return result


def _graph(run: Mapping[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule graph: the one the source sent (a `rulegraph` in the run's parameters),
    else the rules in the order they first appeared (a BIOMERO run's task chain)."""
    names = [rule["name"] for rule in rules]
    states = {rule["name"]: rule["state"] for rule in rules}
    sent = _sent_rule_graph(run)
    if sent is None:
        names = names[:CHAIN_RULES]
    edges = sent if sent is not None else charts.chain(names)
    if sent is not None:
        names = list(dict.fromkeys([*names, *(rule for edge in sent for rule in edge)]))
    drawing = charts.rule_graph(names, edges, states)
    drawing["from"] = "source" if sent is not None else "order"
    return drawing


def _sent_rule_graph(run: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """Edges of the rule graph the source sent (a `rule_graph` event: the run's rule_graph
    column), else one in its parameters: {"rulegraph": {"edges": [[from, to], ...]}}."""
    params = run.get("params")
    graph = run.get("rule_graph") or (params.get("rulegraph") if isinstance(params, dict) else None)
    edges = graph.get("edges") if isinstance(graph, dict) else None
    if not isinstance(edges, list):
        return None
    return [(str(edge[0]), str(edge[1])) for edge in edges[:10_000]
            if isinstance(edge, (list, tuple)) and len(edge) == 2]
