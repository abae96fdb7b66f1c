"""A workflow-tracking appliance: runs, tasks and log lines of Snakemake and
BIOMERO-style workflows, recorded as events in PostgreSQL."""

from appliance.tracker import WorkflowTracker

__all__ = ["WorkflowTracker"]
