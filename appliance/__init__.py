"""A workflow-tracking appliance: runs, tasks and log lines of Snakemake and
BIOMERO-style workflows, recorded as events in PostgreSQL."""

__all__ = ["ConcurrencyError", "DatabaseUnavailableError", "DuplicateIdError", "InvalidArgumentError",
           "NoOpWorkflowTracker", "TrackerError", "UnknownIdError", "WorkflowTracker"]


def __getattr__(name: str):
    # Imported on first use: small programs (the supervisor listener, the CLI's
    # argument parsing) then do not load eventsourcing and SQLAlchemy at all.
    if name == "WorkflowTracker":
        from appliance.tracker import WorkflowTracker

        return WorkflowTracker
    if name == "NoOpWorkflowTracker":
        from appliance.tracker.noop import NoOpWorkflowTracker

        return NoOpWorkflowTracker
    if name in __all__:
        from appliance import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'appliance' has no attribute {name!r}")
