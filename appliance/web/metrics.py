"""/metrics for Prometheus: counters kept by the web processes, gauges read from the database at scrape.

Under gunicorn every worker counts its own requests, and a scrape reaches one
worker. So `appliance web` runs prometheus-client in multiprocess mode (each
worker writes its counters to a file in a folder the server makes) and a
scrape adds them all up (`metrics_dir`). In one process (tests) it reads them directly.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from appliance import health
from appliance.config import Settings
from appliance.projection.store import APPLIANCE, BIOMERO
from appliance.sql import load_queries
from appliance.system import QUERIES, optional_query, projector_state, system_state
from appliance.web import db

WEB_QUERIES = load_queries("web.sql")
blueprint = Blueprint("metrics", __name__)
REGISTRY = CollectorRegistry()
INGESTED_EVENTS = Counter("appliance_ingested_events", "Events applied through POST /api/v1/events",
                          registry=REGISTRY)
INGEST_ERRORS = Counter("appliance_ingest_errors", "Ingest requests refused", registry=REGISTRY)


def _by_status(name: str, help_text: str, column: str):
    def shape(rows) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, help_text, labels=["status"])
        for row in rows:
            family.add_metric([row["status"]], row[column])
        return family

    return shape


def database_metrics(cursor) -> list[GaugeMetricFamily]:
    """Gauges of what the database holds; a part not installed yet is left out."""
    families = [
        optional_query(cursor, WEB_QUERIES["status_counts"], _by_status("appliance_runs", "Workflow runs by status", "runs"),
                       {"user": None, "group": None, "pattern": None}),  # every run
        optional_query(cursor, QUERIES["task_counts"], _by_status("appliance_tasks", "Tasks by status", "tasks")),
        _projector_lag(projector_state(cursor, APPLIANCE), "appliance_projector_lag_events",
                       "Events recorded but not yet projected"),
        _projector_lag(projector_state(cursor, BIOMERO), "appliance_projector_biomero_lag_events",
                       "Events in BIOMERO's log not yet projected"),
        optional_query(cursor, QUERIES["skipped_topics"], _skipped_events),
        optional_query(cursor, QUERIES["change_backlog"], lambda rows: GaugeMetricFamily(
            "appliance_change_backlog", "Changes not yet handled by a monitor", value=rows[0]["backlog"])),
    ]
    return [family for family in families if family is not None]


def _skipped_events(rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily("appliance_projector_skipped_events",
                               "Events skipped because no mapping knows their topic", labels=["log", "topic"])
    for row in rows:
        family.add_metric([row["application_name"], row["topic"]], row["events"])
    return family


def health_metrics(cursor, settings: Settings) -> list[GaugeMetricFamily]:
    """appliance.health's judgement, one gauge per cause an alert can use (docs/deploy.md)."""
    state = system_state(cursor, settings)
    found = health.problems(state, settings)
    progress = state["health"]["progress"] or {}
    set_aside = state["health"]["set_aside"] or {}
    gauge = GaugeMetricFamily
    families = [
        gauge("appliance_healthy", "1 when appliance status finds nothing that needs attention", value=int(not found)),
        gauge("appliance_projector_stuck", "1 when the projector fails at one position or lags without moving",
              value=int(bool(health.projector_problems(state, settings)))),
        gauge("appliance_projector_failures_in_a_row", "Failed projector batches since the last that succeeded",
              value=progress.get("failures", 0)),
        gauge("appliance_quarantined_events", "Events the projector set aside (appliance quarantine)",
              value=set_aside.get("events", 0)),
        gauge("appliance_monitor_given_up_changes", "Changes the monitor gave up on (appliance quarantine)",
              value=set_aside.get("changes", 0)),
        gauge("appliance_change_oldest_unhandled_seconds", "How long the oldest unhandled change has waited",
              value=state["health"]["oldest_unhandled_change_seconds"] or 0),
        gauge("appliance_programs_visible", "1 when supervisord's socket answers", value=int(state["programs"] is not None)),
    ]
    if "seconds_since_progress" in progress:
        families.append(gauge("appliance_projector_seconds_since_progress",
                              "Seconds since the projector last moved or found nothing to do",
                              value=progress["seconds_since_progress"]))
    running = gauge("appliance_program_running", "1 when the program is RUNNING under supervisord", labels=["program"])
    for name, is_running in health.program_running(state["programs"]).items():
        running.add_metric([name], int(is_running))
    return [*families, running]


def _projector_lag(projector: dict | None, name: str, help_text: str) -> GaugeMetricFamily | None:
    if projector is None:
        return None
    return GaugeMetricFamily(name, help_text, value=projector["newest_event"] - (projector["position"] or 0))


class _Snapshot:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def render(cursor, settings: Settings, metrics_dir: str | None = None) -> bytes:
    counters = REGISTRY
    if metrics_dir is not None:
        counters = CollectorRegistry()
        MultiProcessCollector(counters, path=metrics_dir)
    gauges = CollectorRegistry()
    gauges.register(_Snapshot(database_metrics(cursor) + health_metrics(cursor, settings)))
    return generate_latest(counters) + generate_latest(gauges)


@blueprint.get("/metrics")
def prometheus_metrics():
    with db.cursor() as cursor:
        body = render(cursor, current_app.config["SETTINGS"], current_app.config["METRICS_DIR"])
    return Response(body, mimetype="text/plain; version=0.0.4")
