"""Status pages and their JSON twins: one data function, two renderings.

Each page also has a fingerprint, a small query whose answer changes whenever
the page would: its ETag. A client that sends it back (live.js does, every few
seconds) gets a bodiless 304 while nothing changed.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, jsonify, make_response, render_template, request, stream_with_context

from appliance import vocabulary
from appliance.health import problems
from appliance.system import system_state
from appliance.web import charts, data, db, runpage
from appliance.web.delivery import fingerprinted
from appliance.web.errors import error_response

blueprint = Blueprint("pages", __name__)
blueprint.add_app_template_filter(charts.human_duration, "duration")
# The templates' statuses and levels are the vocabulary's, not copies of it.
blueprint.add_app_template_global(vocabulary.RUN_STATUSES, "RUN_STATUSES")
blueprint.add_app_template_global(vocabulary.TASK_STATUSES, "TASK_STATUSES")
blueprint.add_app_template_global(vocabulary.LOG_LEVELS, "LOG_LEVELS")
LOG_DOWNLOAD_CHUNK = 5000
LOG_DOWNLOAD_MAX = 1_000_000  # lines: a download is bounded too (it says so at its end when cut)


def _views_fingerprint(cursor, **values) -> Any:
    cursor.execute(data.QUERIES["views_fingerprint"])
    return tuple(cursor.fetchone().values())


def _run_fingerprint(cursor, run_id: str, **values) -> Any:
    cursor.execute(data.QUERIES["run_fingerprint"], {"run_id": data.parse_uuid(run_id, "run id")})
    row = cursor.fetchone()
    return None if row is None else tuple(row.values())


def _changes_fingerprint(cursor, **values) -> Any:
    cursor.execute(data.QUERIES["changes_fingerprint"])
    return tuple(cursor.fetchone().values())


def _twin(page_rule: str, api_rule: str, template: str, endpoint: str, fingerprint=_views_fingerprint):
    """Serve `compute(cursor, **url_values)` as a page at page_rule and as JSON at api_rule."""

    def register(compute: Callable[..., dict[str, Any]]):
        def page(**values):
            return _respond(compute, fingerprint, values, lambda result: render_template(template, **result))

        def api(**values):
            return _respond(compute, fingerprint, values, jsonify)

        blueprint.add_url_rule(page_rule, endpoint, page)
        blueprint.add_url_rule(api_rule, f"api_{endpoint}", api)
        return compute

    return register


def _respond(compute, fingerprint, values, render):
    try:
        with db.cursor() as cursor:
            build = lambda: make_response(render(compute(cursor, **values)))  # noqa: E731
            return fingerprinted(lambda: fingerprint(cursor, **values), build) if fingerprint else build()
    except data.BadRequest as error:
        return error_response(400, str(error))
    except data.NotFound as error:
        return error_response(404, str(error))


@_twin("/", "/api/v1/runs", "dashboard.html", "dashboard")
def dashboard(cursor):
    return data.runs_page(cursor, request.args)


@_twin("/runs/<run_id>", "/api/v1/runs/<run_id>", "run.html", "run", _run_fingerprint)
def run(cursor, run_id):
    return runpage.run_page(cursor, run_id, request.args)


@_twin("/runs/<run_id>/tasks/<task_id>", "/api/v1/runs/<run_id>/tasks/<task_id>", "task.html", "task",
       _run_fingerprint)
def task(cursor, run_id, task_id):
    return runpage.task_page(cursor, run_id, task_id, request.args)


@_twin("/runs/<run_id>/logs", "/api/v1/runs/<run_id>/logs", "logs.html", "logs", _run_fingerprint)
def logs(cursor, run_id):
    return data.run_logs(cursor, run_id, request.args)


@blueprint.route("/runs/<run_id>/logs.txt")
def logs_text(run_id):
    """A run's lines as plain text, oldest first, with the log page's filters; streamed in
    chunks of LOG_DOWNLOAD_CHUNK lines, at most LOG_DOWNLOAD_MAX."""
    try:
        run_id = data.parse_uuid(run_id, "run id")
        data.check_known(request.args, ("level", "task", "q"))
        filters = data.log_filters(request.args)
        with db.cursor() as cursor:
            cursor.execute(data.QUERIES["run"], {"run_id": run_id})
            if cursor.fetchone() is None:
                raise data.NotFound(f"no workflow run has the id {run_id}")
    except data.BadRequest as error:
        return error_response(400, str(error))
    except data.NotFound as error:
        return error_response(404, str(error))

    def lines():
        after, sent = 0, 0
        while sent < LOG_DOWNLOAD_MAX:
            with db.cursor() as cursor:
                cursor.execute(data.QUERIES["run_logs"], data.log_query(
                    run_id, filters, after=after, limit=min(LOG_DOWNLOAD_CHUNK, LOG_DOWNLOAD_MAX - sent)))
                rows = cursor.fetchall()
            if not rows:
                return
            yield "".join(f"{row['logged_at'].isoformat()} {row['level']:<8} {row['message']}\n" for row in rows)
            after, sent = rows[-1]["id"], sent + len(rows)
        yield f"[cut: the download stops at {LOG_DOWNLOAD_MAX:,} lines; the log page pages through the rest]\n"

    response = Response(stream_with_context(lines()), mimetype="text/plain")
    response.headers["Content-Disposition"] = f'attachment; filename="run-{run_id}.log"'
    return response


@_twin("/jobs", "/api/v1/jobs", "jobs.html", "jobs")
def jobs(cursor):
    return data.jobs_page(cursor, request.args)


@_twin("/jobs/<job_id>", "/api/v1/jobs/<job_id>", "jobs.html", "job")
def job(cursor, job_id):
    if len(job_id) > 1000:
        raise data.BadRequest("job id is too long")
    return data.jobs_page(cursor, request.args, job_id=job_id)


@_twin("/changes", "/api/v1/changes", "changes.html", "changes", _changes_fingerprint)
def changes(cursor):
    return data.changes_page(cursor, request.args)


@_twin("/system", "/api/v1/system", "system.html", "system", fingerprint=None)
def system(cursor):
    from flask import current_app

    data.check_known(request.args, ())
    settings = current_app.config["SETTINGS"]
    state = system_state(cursor, settings)
    return {**state, "problems": problems(state, settings)}


@blueprint.route("/favicon.ico")
def favicon():
    from flask import current_app

    return current_app.send_static_file("favicon.svg")
