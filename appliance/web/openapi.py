"""The OpenAPI 3 document of the JSON API, served at /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint, jsonify

from appliance.ingest import EVENT_TYPES
from appliance.validation import TIME as TIME_DOMAIN
from appliance.views import VIEW_TABLES
from appliance.vocabulary import LOG_LEVELS, RUN_STATUSES, TASK_STATUSES
from appliance.web.data import JOB_CURSOR_LENGTH
from appliance.web.runpage import MAX_TASK_PAGE, TASK_SORTS


def _nullable(schema_type: str, **extra) -> dict:
    return {"type": schema_type, "nullable": True, **extra}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


STRINGS = {"type": "array", "items": {"type": "string"}}
TEXT_ARG = {"type": "string", "maxLength": 200, "pattern": "^[^\u0000]*$"}
# A required one: something besides spaces (the server strips them).
REQUIRED_TEXT_ARG = {**TEXT_ARG, "pattern": "^[^\u0000]*[^\\s\u0000][^\u0000]*$"}
TIME = _nullable("string", format="date-time")
ERROR = _object({"error": {"type": "string"}}, ["error"])
RUN = _object({
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
    "description": _nullable("string"), "status": {"type": "string", "enum": list(RUN_STATUSES)},
    "user": _nullable("string"), "group": _nullable("string"), "source": _nullable("string"),
    "progress": _object({"done": {"type": "integer"}, "total": {"type": "integer"},
                         "percent": {"type": "number", "minimum": 0, "maximum": 100},
                         "of": {"type": "string", "enum": ["steps", "tasks"],
                                "description": "steps the source reported, else finished tasks"}}),
    "tasks": _object({"running": {"type": "integer"}, "completed": {"type": "integer"},
                      "failed": {"type": "integer"}}),
    "current_task": _nullable("string"), "error_message": _nullable("string"),
    "created_at": TIME, "started_at": TIME, "finished_at": TIME, "duration_seconds": _nullable("number"),
    "elapsed_seconds": _nullable("number", description="seconds since a run without an end started"),
    "last_event_at": TIME,
    "last_heard_seconds_ago": _nullable("number", description="seconds since the latest event of a run without an end"),
})
TASK = _object({
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "version": _nullable("string"),
    "status": {"type": "string", "enum": list(TASK_STATUSES)}, "external_status": _nullable("string"),
    "progress": _nullable("string"), "job_ids": {"type": "array", "items": {"type": "string"}}, "attempts": {"type": "integer"},
    "result_message": _nullable("string"), "error_message": _nullable("string"), "error_type": _nullable("string"),
    "input": {"type": "object"}, "params": {"type": "object"}, "created_at": TIME, "started_at": TIME,
    "finished_at": TIME, "duration_seconds": _nullable("number"),
    "wildcards": {"type": "object", "description": "the task's wildcards (Snakemake), what tells jobs of one rule apart"},
    "attempt_history": {"type": "array", "description": "each attempt (the latest 20): times, status, error's end",
                        "items": {"type": "object"}},
    "files": _object({"inputs": STRINGS, "outputs": STRINGS, "log": STRINGS, "benchmark": _nullable("string")}),
    "conda_env": _nullable("string"), "container": _nullable("string"), "host": _nullable("string"),
    "resource_usage": _nullable("object", description="measured figures (Snakemake's benchmark file), such as "
                                                      "wall_seconds, max_rss_mb, cpu_seconds; null when not measured"),
})
LOG = _object({"id": {"type": "integer"}, "task_id": _nullable("string"),
               "level": {"type": "string", "enum": list(LOG_LEVELS)},
               "message": {"type": "string"}, "logged_at": TIME})
JOB = _object({
    "job_id": {"type": "string"}, "task_id": {"type": "string", "format": "uuid"},
    "run_id": {"type": "string", "format": "uuid"}, "user_name": _nullable("string"),
    "group_name": _nullable("string"), "status": _nullable("string"), "progress": _nullable("string"),
    "created_at": TIME, "updated_at": TIME, "task_name": {"type": "string"},
    "task_status": {"type": "string", "enum": list(TASK_STATUSES)},
    "workflow_name": {"type": "string"},
})
CHANGE = _object({
    "id": {"type": "integer"}, "table_name": {"type": "string", "enum": list(VIEW_TABLES)},
    "operation": {"type": "string", "enum": ["INSERT", "UPDATE", "DELETE"]},
    "row_key": {"type": "object"}, "changed_fields": {"type": "array", "items": {"type": "string"}},
    "old_values": _nullable("object"), "new_values": _nullable("object"), "transaction_id": {"type": "integer"},
    "timestamp": TIME, "processed": {"type": "boolean"}, "processed_at": TIME, "attempts": {"type": "integer"},
    "last_error": _nullable("string"),
})
SYSTEM = _object({
    "database": {"type": "string"},
    "schema": _object({"revision": _nullable("string"), "head": _nullable("string"), "at_head": {"type": "boolean"}}),
    "triggers": _object({"installed": {"type": "array", "items": {"type": "string"}},
                         "complete": {"type": "boolean"}}),
    "projector": {**_object({"position": _nullable("integer"), "newest_event": {"type": "integer"},
                             "lag_events": _nullable("integer")}), "nullable": True,
                  "description": "null until the projector has run against this database"},
    "biomero_log": {**_object({"position": _nullable("integer"), "newest_event": {"type": "integer"},
                               "lag_events": _nullable("integer")}), "nullable": True,
                    "description": "BIOMERO's log (workflowtracker_events), read only; null where there is none"},
    "skipped_topics": {"type": "array", "nullable": True,
                       "description": "events skipped because no mapping knows their topic, per log and topic",
                       "items": _object({"log": {"type": "string"}, "topic": {"type": "string"},
                                         "events": {"type": "integer"},
                                         "first_notification_id": {"type": "integer"},
                                         "last_notification_id": {"type": "integer"}, "last_seen": TIME})},
    "monitors": {"type": "array", "nullable": True, "items": _object({
        "id": {"type": "string"}, "host": _nullable("string"), "pid": _nullable("integer"), "last_seen": TIME,
        "seconds_ago": {"type": "number"}, "backlog": _nullable("integer"), "handled": _nullable("integer")},
        ["id", "last_seen", "seconds_ago"])},
    "change_backlog": _nullable("integer"),
    "programs": {"type": "array", "nullable": True, "description": "null when not under supervisor",
                 "items": _object({"name": {"type": "string"}, "state": {"type": "string"},
                                   "description": {"type": "string"}})},
    "health": _object({
        "progress": {**_object({"failures": {"type": "integer"}, "last_error": _nullable("string"),
                                "seconds_since_progress": {"type": "number"}}), "nullable": True,
                     "description": "null until the projector has projected against this database"},
        "set_aside": {**_object({"events": {"type": "integer"}, "changes": {"type": "integer"}}), "nullable": True},
        "oldest_unhandled_change_seconds": _nullable("number"),
    }),
    "problems": {"type": "array", "items": {"type": "string"},
                 "description": "what needs attention (as `appliance status`); empty when all is well"},
})


ERROR_MEANING = {400: "bad parameters, each named", 401: "the UI password is set and was not given",
                 404: "no such run", 503: "the database is unavailable or not migrated; try again"}


def _field_schema(field) -> dict:
    return field.domain.schema  # appliance.validation's, beside the check it describes


def _event_name(event_type: str) -> str:
    return "Event_" + event_type


def event_schemas() -> dict:
    """One schema per event type, made from ingest's table (EVENT_TYPES), so a new type
    appears here without an edit."""
    schemas = {}
    for event_type, spec in sorted(EVENT_TYPES.items()):
        properties = {"id": {"type": "string", "format": "uuid", "description": "made by the client; resend freely"},
                      "type": {"type": "string", "enum": [event_type]},
                      "time": {**TIME_DOMAIN.schema,
                               "description": "when it happened; the server's time if left out; "
                                              + TIME_DOMAIN.schema["description"]},
                      **{name: _field_schema(field) for name, field in spec.fields.items()}}
        required = ["id", "type", *(name for name, field in spec.fields.items() if field.required)]
        schemas[_event_name(event_type)] = {"type": "object", "properties": properties, "required": required,
                                            "additionalProperties": False}
    return schemas


def event_schema() -> dict:
    """An event: one of the types, told apart by `type`."""
    names = sorted(EVENT_TYPES)
    return {
        "oneOf": [{"$ref": f"#/components/schemas/{_event_name(name)}"} for name in names],
        "discriminator": {"propertyName": "type",
                          "mapping": {name: f"#/components/schemas/{_event_name(name)}" for name in names}},
    }


def _get(summary: str, ok: dict, parameters: list | None = None, errors=(400, 503), etag: bool = True) -> dict:
    responses = {"200": {"description": "OK", "content": {"application/json": {"schema": ok}}}}
    if etag:
        responses["304"] = {"description": "not modified: If-None-Match named the answer's ETag"}
    for status in sorted({*errors, 401}):
        responses[str(status)] = {"description": ERROR_MEANING[status],
                                  "content": {"application/json": {"schema": ERROR}}}
    return {"get": {"summary": summary, "parameters": parameters or [], "responses": responses}}


PAGE = _query("page", "page, from 1, by number as far as the first 10,000 jobs (a page past them is empty); "
                      "`older` goes on from any page", {"type": "integer", "minimum": 1, "maximum": 100_000})
JOB_CURSOR = {"type": "string", "maxLength": JOB_CURSOR_LENGTH, "pattern": "^[^\u0000]*$"}
JOB_PAGING = [
    PAGE,
    _query("before", "the `older` of an answer: the jobs older than its last, at any depth (not with page)",
           JOB_CURSOR),
    _query("after", "the `newer` of an answer: the jobs newer than its first (not with page or before)", JOB_CURSOR),
    _query("limit", "jobs", {"type": "integer", "minimum": 1, "maximum": 1000}),
]
JOBS = _object({
    "jobs": {"type": "array", "items": JOB}, "total": {"type": "integer", "description": "counted up to 10,000"},
    "total_capped": {"type": "boolean", "description": "more jobs than counted"},
    "page": _nullable("integer", description="the page's number; null for a page by cursor"),
    "pages": {"type": "integer", "description": "pages by number (of the counted jobs)"},
    "older": _nullable("string", description="ask with before=this for older jobs; null at the oldest"),
    "newer": _nullable("string", description="ask with after=this for newer jobs; null at the newest"),
}, ["jobs", "total", "total_capped", "page", "pages", "older", "newer"])
RUN_ID = _path("run_id", "the run's id", {"type": "string", "format": "uuid"})
PAGE_ARGS = [
    _query("user", "only tasks (jobs) of runs of this user (BIOMERO's OMERO ids as text)", TEXT_ARG),
    _query("group", "only tasks (jobs) of runs of this group", TEXT_ARG),
    _query("limit", "rows per page", {"type": "integer", "minimum": 1, "maximum": 1000}),
    _query("offset", "rows to skip: the `next_offset` of the previous page",
           {"type": "integer", "minimum": 0, "maximum": 2**62}),
]
TASK_KEY = {"task_name": {"type": "string"}, "task_version": _nullable("string")}


def _analytics(summary: str, key: str, row: dict, extra_args: list | None = None) -> dict:
    """A paged list of BIOMERO's read helpers (appliance.web.analytics)."""
    return _get(summary, _object({key: {"type": "array", "items": _object(row)}, "limit": {"type": "integer"},
                                  "offset": {"type": "integer"}, "next_offset": _nullable("integer")}),
                (extra_args or []) + PAGE_ARGS, etag=False)


ANALYTICS_PATHS = {
    "/api/v1/analytics/task-id": _get("The task of an external (Slurm) job id (BIOMERO's JobAccounting.get_task_id)",
                                      _object({"job_id": {"type": "string"},
                                               "task_id": _nullable("string", format="uuid")}),
                                      [{**_query("job_id", "the external job id", REQUIRED_TEXT_ARG), "required": True}],
                                      etag=False),
    "/api/v1/analytics/jobs": _analytics("Job ids with user, group, task and run (BIOMERO's get_jobs)", "jobs", {
        "job_id": {"type": "string"}, "user": _nullable("string"), "group": _nullable("string"),
        "task_id": {"type": "string", "format": "uuid"}, "run_id": {"type": "string", "format": "uuid"},
        "created_at": TIME}),
    "/api/v1/analytics/task-counts": _analytics("Tasks per name and version (BIOMERO's get_task_counts)",
                                                "task_counts", {**TASK_KEY, "count": {"type": "integer"}}),
    "/api/v1/analytics/task-durations": _analytics(
        "Average duration of finished tasks per name and version (BIOMERO's get_average_task_duration)",
        "task_durations", {**TASK_KEY, "average_seconds": {"type": "number"}, "finished": {"type": "integer"}}),
    "/api/v1/analytics/task-failures": _analytics(
        "Errors of failed tasks per name and version (BIOMERO's get_task_failures)", "task_failures",
        {**TASK_KEY, "errors": {"type": "array", "items": {"type": "string"}}, "failed": {"type": "integer"}}),
    "/api/v1/analytics/task-usage": _analytics(
        "Tasks of one name created per day, UTC (BIOMERO's get_task_usage_over_time)", "usage",
        {"date": {"type": "string", "format": "date"}, "count": {"type": "integer"}},
        [{**_query("task_name", "the task's name", REQUIRED_TEXT_ARG), "required": True}]),
}
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Workflow-tracking appliance", "version": "1",
             "description": "Runs, tasks, log lines and changes of Snakemake and BIOMERO-style workflows."},
    "paths": {
        "/api/v1/runs": _get("Runs, newest first, keyset-paginated", _object(
            {"runs": {"type": "array", "items": RUN}, "next": _nullable("string"),
             "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
             "filters": {"type": "object"}}, ["runs", "next"]), [
            _query("status", "only runs of this status", {"type": "string", "enum": list(RUN_STATUSES)}),
            _query("user", "only runs of this user", TEXT_ARG),
            _query("group", "only runs of this group", TEXT_ARG),
            _query("q", "runs whose name contains this", TEXT_ARG),
            _query("cursor", "the `next` of the previous page", TEXT_ARG),
            _query("limit", "runs per page", {"type": "integer", "minimum": 1, "maximum": 200}),
        ]),
        "/api/v1/runs/{run_id}": _get("One run: its rules, a page of its tasks, its latest log lines", _object(
            {"run": RUN, "rules": {"type": "array", "items": {"type": "object"}},
             "tasks": {"type": "array", "items": TASK}, "tasks_matching": {"type": "integer"},
             "logs": {"type": "array", "items": LOG}},
            ["run", "rules", "tasks", "tasks_matching", "logs"]), [
            RUN_ID, _query("level", "log level", {"type": "string", "enum": list(LOG_LEVELS)}),
            _query("status", "only tasks of this status", {"type": "string", "enum": list(TASK_STATUSES)}),
            _query("rule", "only tasks of this name (rule)", {**TEXT_ARG, "maxLength": 1000}),
            _query("q", "tasks whose name, wildcards, job ids or error contain this", TEXT_ARG),
            _query("sort", "the tasks' order, '-' first for descending", {"type": "string", "enum": list(TASK_SORTS)}),
            _query("page", "page of tasks", {"type": "integer", "minimum": 1, "maximum": 100_000}),
            _query("limit", "tasks per page", {"type": "integer", "minimum": 1, "maximum": MAX_TASK_PAGE})],
            errors=(400, 404, 503)),
        "/api/v1/runs/{run_id}/tasks/{task_id}": _get("One task whole: attempts, error, parameters, log lines", _object(
            {"run": RUN, "task": TASK, "logs": {"type": "array", "items": LOG}}, ["run", "task", "logs"]),
            [RUN_ID, _path("task_id", "the task's id", {"type": "string", "format": "uuid"})],
            errors=(400, 404, 503)),
        "/api/v1/runs/{run_id}/logs": _get("A run's log lines, oldest first: from the first, after an id or before one", _object(
            {"run_id": {"type": "string"}, "logs": {"type": "array", "items": LOG},
             "after": {"type": "integer", "description": "ask with after=this for newer lines"},
             "before": _nullable("integer", description="ask with before=this for older lines"),
             "older": {"type": "boolean", "description": "there may be older lines"}},
            ["run_id", "logs", "after", "before", "older"]),
            [RUN_ID, _query("after", "the id of the last line seen: newer lines (with before: the lines between)",
                            {"type": "integer", "minimum": 0, "maximum": 2**62}),
             _query("before", "the id of the oldest line seen: older lines (with after: the lines between)",
                    {"type": "integer", "minimum": 1, "maximum": 2**62}),
             _query("level", "only this level", {"type": "string", "enum": list(LOG_LEVELS)}),
             _query("task", "only lines of this task (its id)", {"type": "string", "format": "uuid"}),
             _query("q", "only lines containing this", TEXT_ARG),
             _query("limit", "lines", {"type": "integer", "minimum": 1, "maximum": 1000})], errors=(400, 404, 503)),
        "/api/v1/jobs": _get("Jobs (external job ids) by user and group, newest first, paged by number or cursor",
                             JOBS, [_query("job_id", "one external job id", TEXT_ARG), _query("user", "user", TEXT_ARG),
                                    _query("group", "group", TEXT_ARG), *JOB_PAGING]),
        "/api/v1/jobs/{job_id}": _get("Every task that ran as this external job id", JOBS, [
            _path("job_id", "the external (Slurm) job id", {"type": "string", "maxLength": 1000}), *JOB_PAGING]),
        "/api/v1/changes": _get("The change feed: recent, or oldest first after an id", _object(
            {"changes": {"type": "array", "items": CHANGE}}, ["changes"]), [
            _query("table", "one view table", {"type": "string", "enum": list(VIEW_TABLES)}),
            _query("after", "changes after this id, oldest first", {"type": "integer", "minimum": 0, "maximum": 2**62}),
            _query("limit", "changes", {"type": "integer", "minimum": 1, "maximum": 1000})]),
        "/api/v1/system": _get("The state of the appliance's parts", SYSTEM, errors=(400, 503), etag=False),
        **ANALYTICS_PATHS,
        "/api/v1/events": {"post": {
            "summary": "Ingest a batch of events (all or nothing; resend freely)",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {**_object(
                {"events": {"type": "array", "items": event_schema()}}, ["events"]), "additionalProperties": False}}}},
            "responses": {
                "200": {"description": "applied", "content": {"application/json": {"schema": _object(
                    {"applied": {"type": "integer"}, "duplicates": {"type": "integer"}})}}},
                **{str(status): {"description": description, "content": {"application/json": {"schema": ERROR}}}
                   for status, description in ((400, "bad events, each named"), (401, "no or wrong token"),
                                               (403, "ingest disabled"), (409, "a run or task id already taken"),
                                               (413, "too large"), (503, "database unavailable"))},
            },
        }},
    },
    # Basic auth only when APPLIANCE_UI_USER is set: either that or nothing.
    "security": [{"basic": []}, {}],
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "APPLIANCE_UI_USER and APPLIANCE_UI_PASSWORD, when set"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "APPLIANCE_INGEST_TOKEN"},
        },
        "schemas": event_schemas(),
    },
}


blueprint = Blueprint("openapi", __name__)


@blueprint.get("/api/v1/openapi.json")
def openapi():
    return jsonify(OPENAPI)
