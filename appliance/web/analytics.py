"""BIOMERO's read helpers as JSON (appliance.analytics): job ids to tasks, and task analytics.

Every list is paged: `limit` (1-1000, default 100) and `offset`; `next_offset`
is null on the last page. `user` and `group` match as the pages show them
(BIOMERO's OMERO ids as text: user=52).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from appliance import analytics
from appliance.web import data, db
from appliance.web.errors import error_response

blueprint = Blueprint("analytics", __name__)
DEFAULT_LIMIT = 100
FILTERS = ("user", "group", "limit", "offset")
LISTS = {  # path -> (query, key of the rows in the answer)
    "jobs": ("jobs", "jobs"),
    "task-counts": ("task_counts", "task_counts"),
    "task-durations": ("task_durations", "task_durations"),
    "task-failures": ("task_failures", "task_failures"),
}


@blueprint.get("/api/v1/analytics/task-id")
def task_id():
    def compute(cursor):
        data.check_known(request.args, ("job_id",))
        job_id = data._text_arg(request.args, "job_id", limit=1000)
        if job_id is None:
            raise data.BadRequest("job_id is required")
        return {"job_id": job_id, "task_id": analytics.task_id_of_job(cursor, job_id)}

    return _answer(compute)


def _listing(query: str, key: str):
    def listing():
        return _answer(lambda cursor: _page(cursor, query, key, FILTERS))

    return listing


for _name, (_query, _key) in LISTS.items():
    blueprint.add_url_rule(f"/api/v1/analytics/{_name}", _query, _listing(_query, _key), methods=["GET"])


@blueprint.get("/api/v1/analytics/task-usage")
def task_usage():
    def compute(cursor):
        task_name = data._text_arg(request.args, "task_name", limit=1000)
        if task_name is None:
            raise data.BadRequest("task_name is required")
        return _page(cursor, "task_usage", "usage", (*FILTERS, "task_name"), task_name=task_name)

    return _answer(compute)


def _page(cursor, query: str, key: str, known: tuple[str, ...], **params) -> dict:
    data.check_known(request.args, known)
    limit = data._int_arg(request.args, "limit", DEFAULT_LIMIT, 1, analytics.MAX_LIMIT)
    offset = data._int_arg(request.args, "offset", 0, 0, 2**62)
    filters = {name: data._text_arg(request.args, name) for name in ("user", "group")}
    rows = analytics.page(cursor, query, limit=limit + 1, offset=offset, **filters, **params)
    more = len(rows) > limit
    return {key: [_json_row(row) for row in rows[:limit]], "limit": limit, "offset": offset,
            "next_offset": offset + limit if more else None}


def _json_row(row: dict) -> dict:
    return {name: (value.isoformat() if hasattr(value, "isoformat") else
                   float(value) if name == "average_seconds" else value) for name, value in row.items()}


def _answer(compute):
    try:
        with db.cursor() as cursor:
            return jsonify(compute(cursor))
    except data.BadRequest as error:
        return error_response(400, str(error))
