"""Status pages and their JSON twins: one data function, two renderings."""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, jsonify, render_template, request

from appliance import vocabulary
from appliance.web import data, db_cursor, error_response
from appliance.health import problems
from appliance.web.system import system_state

blueprint = Blueprint("pages", __name__)
blueprint.add_app_template_filter(data.human_duration, "duration")
# The templates' statuses and levels are the vocabulary's, not copies of it.
blueprint.add_app_template_global(vocabulary.RUN_STATUSES, "RUN_STATUSES")
blueprint.add_app_template_global(vocabulary.LOG_LEVELS, "LOG_LEVELS")


def _twin(page_rule: str, api_rule: str, template: str, endpoint: str):
    """Serve `compute(cursor, **url_values)` as a page at page_rule and as JSON at api_rule."""

    def register(compute: Callable[..., dict[str, Any]]):
        def page(**values):
            return _respond(compute, values, lambda result: render_template(template, **result))

        def api(**values):
            return _respond(compute, values, jsonify)

        blueprint.add_url_rule(page_rule, endpoint, page)
        blueprint.add_url_rule(api_rule, f"api_{endpoint}", api)
        return compute

    return register


def _respond(compute, values, render):
    try:
        with db_cursor() as cursor:
            result = compute(cursor, **values)
    except data.BadRequest as error:
        return error_response(400, str(error))
    except data.NotFound as error:
        return error_response(404, str(error))
    return render(result)


@_twin("/", "/api/v1/runs", "dashboard.html", "dashboard")
def dashboard(cursor):
    return data.runs_page(cursor, request.args)


@_twin("/runs/<run_id>", "/api/v1/runs/<run_id>", "run.html", "run")
def run(cursor, run_id):
    return data.run_page(cursor, run_id, request.args)


@_twin("/runs/<run_id>/logs", "/api/v1/runs/<run_id>/logs", "logs.html", "logs")
def logs(cursor, run_id):
    return data.run_logs(cursor, run_id, request.args)


@_twin("/jobs", "/api/v1/jobs", "jobs.html", "jobs")
def jobs(cursor):
    return data.jobs_page(cursor, request.args)


@_twin("/jobs/<job_id>", "/api/v1/jobs/<job_id>", "jobs.html", "job")
def job(cursor, job_id):
    if len(job_id) > 1000:
        raise data.BadRequest("job id is too long")
    return data.jobs_page(cursor, request.args, job_id=job_id)


@_twin("/changes", "/api/v1/changes", "changes.html", "changes")
def changes(cursor):
    return data.changes_page(cursor, request.args)


@_twin("/system", "/api/v1/system", "system.html", "system")
def system(cursor):
    from flask import current_app

    data.check_known(request.args, ())
    settings = current_app.config["SETTINGS"]
    state = system_state(cursor, settings)
    return {**state, "problems": problems(state, settings)}
