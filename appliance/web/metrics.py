"""Prometheus metrics: counters kept by this process, gauges read from the database at scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily

from appliance.sql import load_queries

QUERIES = load_queries("web.sql")
REGISTRY = CollectorRegistry()
INGESTED_EVENTS = Counter("appliance_ingested_events", "Events applied through POST /api/v1/events "
                          "(this web process)", registry=REGISTRY)
INGEST_ERRORS = Counter("appliance_ingest_errors", "Ingest requests refused (this web process)", registry=REGISTRY)


def database_metrics(cursor) -> list[GaugeMetricFamily]:
    runs = GaugeMetricFamily("appliance_runs", "Workflow runs by status", labels=["status"])
    cursor.execute(QUERIES["status_counts"])
    for row in cursor.fetchall():
        runs.add_metric([row["status"]], row["runs"])
    tasks = GaugeMetricFamily("appliance_tasks", "Tasks by status", labels=["status"])
    cursor.execute(QUERIES["task_counts"])
    for row in cursor.fetchall():
        tasks.add_metric([row["status"]], row["tasks"])
    cursor.execute(QUERIES["projector_position"])
    position = cursor.fetchone()
    lag = (position["newest"] or 0) - (position["position"] or 0)
    cursor.execute(QUERIES["change_backlog"])
    backlog = cursor.fetchone()["backlog"]
    return [
        runs, tasks,
        GaugeMetricFamily("appliance_projector_lag_events", "Events recorded but not yet projected", value=lag),
        GaugeMetricFamily("appliance_change_backlog", "Changes not yet handled by a monitor", value=backlog),
    ]


class _Snapshot:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def render(cursor) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Snapshot(database_metrics(cursor)))
    return generate_latest(REGISTRY) + generate_latest(registry)
