"""A workflow-tracking appliance: runs, tasks and log lines of Snakemake and
BIOMERO-style workflows, recorded as events in PostgreSQL."""

__all__ = ["WorkflowTracker"]


def __getattr__(name: str):
    # Imported on first use: small programs (the supervisor listener, the CLI's
    # argument parsing) then do not load eventsourcing and SQLAlchemy at all.
    if name == "WorkflowTracker":
        from appliance.tracker import WorkflowTracker

        return WorkflowTracker
    raise AttributeError(f"module 'appliance' has no attribute {name!r}")
