"""Prometheus metrics: counters kept by the web processes, gauges read from the database at scrape.

Under gunicorn every worker counts its own requests, and a scrape reaches one
worker. So `appliance web` runs prometheus-client in multiprocess mode (each
worker writes its counters to a file in a folder the server makes) and a
scrape adds them all up (`metrics_dir`). In one process (tests) it reads them directly.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from appliance.sql import load_queries
from appliance.web.system import optional_query

QUERIES = load_queries("web.sql")
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
        optional_query(cursor, "status_counts", _by_status("appliance_runs", "Workflow runs by status", "runs")),
        optional_query(cursor, "task_counts", _by_status("appliance_tasks", "Tasks by status", "tasks")),
        optional_query(cursor, "projector_position", lambda rows: GaugeMetricFamily(
            "appliance_projector_lag_events", "Events recorded but not yet projected",
            value=(rows[0]["newest"] or 0) - (rows[0]["position"] or 0))),
        optional_query(cursor, "biomero_position", lambda rows: GaugeMetricFamily(
            "appliance_projector_biomero_lag_events", "Events in BIOMERO's log not yet projected",
            value=(rows[0]["newest"] or 0) - (rows[0]["position"] or 0))),
        optional_query(cursor, "skipped_topics", _skipped_events),
        optional_query(cursor, "change_backlog", lambda rows: GaugeMetricFamily(
            "appliance_change_backlog", "Changes not yet handled by a monitor", value=rows[0]["backlog"])),
    ]
    return [family for family in families if family is not None]


def _skipped_events(rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily("appliance_projector_skipped_events",
                               "Events skipped because no mapping knows their topic", labels=["log", "topic"])
    for row in rows:
        family.add_metric([row["application_name"], row["topic"]], row["events"])
    return family


class _Snapshot:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def render(cursor, metrics_dir: str | None = None) -> bytes:
    counters = REGISTRY
    if metrics_dir is not None:
        counters = CollectorRegistry()
        MultiProcessCollector(counters, path=metrics_dir)
    gauges = CollectorRegistry()
    gauges.register(_Snapshot(database_metrics(cursor)))
    return generate_latest(counters) + generate_latest(gauges)
