"""Whether BIOMERO's own views still write the four tables APPLIANCE_BIOMERO_VIEWS keeps.

BIOMERO 2.8's views are eventsourcing ProcessApplications (JobAccounting,
JobProgress, WorkflowProgress, WorkflowAnalytics) that follow its tracker's
log, each with its position in a tracking table of its own
(`jobaccounting_tracking`, ...: the notification id it processed last, for
leader `WorkflowTracker`). BIOMERO runs them in the same thread as its
tracker (a SingleThreadedRunner): a view that is on has processed every
event by the time a tracker call returns, so its position is BIOMERO's newest
event. A view turned off is no longer part of BIOMERO's System: its position
stays where it stopped, and BIOMERO's next event leaves it behind.

So, deciding from BIOMERO's own records:
- at start (`appliance migrate`/`init`, the projector, `appliance reproject`):
  a view whose position is BIOMERO's newest event (and there is one) is
  writing: refuse. A view turned off after BIOMERO's last event looks the
  same until BIOMERO records its next one, unless the operator says where
  they were turned off (APPLIANCE_BIOMERO_VIEWS_OFF_SINCE, `off_since`): a
  view at or before that event is off; one past it processed an event after.
- while the projector runs: a view whose position moves past where it was at
  the start is writing again: stop.
A view whose tracking table does not exist never ran in this database.
"""

from __future__ import annotations

from psycopg2 import sql

from appliance.sql import load_queries

QUERIES = load_queries("biomero_views.sql")
BIOMERO_LOG = "workflowtracker_events"

# BIOMERO's view applications, and the SlurmClient switch (slurm-config.ini, [ANALYTICS]) that turns each off.
SWITCHES = {
    "JobAccounting": "enable_job_accounting",
    "JobProgress": "enable_job_progress",  # JobProgress and WorkflowProgress, both
    "WorkflowProgress": "enable_job_progress",
    "WorkflowAnalytics": "enable_workflow_analytics",
}
HOW_TO_TURN_OFF = (
    "turn them off in BIOMERO (slurm-config.ini, section [ANALYTICS]: enable_job_accounting = False, "
    "enable_job_progress = False, enable_workflow_analytics = False; or SlurmClient(enable_job_accounting=False, "
    "enable_job_progress=False, enable_workflow_analytics=False)) and restart its processes, "
    "or set APPLIANCE_BIOMERO_VIEWS=false"
)


class BiomeroViewsWriting(RuntimeError):
    """BIOMERO's own views write the tables the appliance would keep: two writers."""


def positions(cursor) -> dict[str, int]:
    """The position of each of BIOMERO's views that ever ran here, by application name."""
    tables = {f"{name.lower()}_tracking": name for name in SWITCHES}
    cursor.execute(QUERIES["existing_tables"], {"tables": list(tables)})
    found = {}
    for table, in cursor.fetchall():
        cursor.execute(sql.SQL(QUERIES["view_position"]).format(table=sql.Identifier(table)))
        found[tables[table]] = cursor.fetchone()[0]
    return found


def log_head(cursor) -> int:
    """BIOMERO's newest event (0 when it has none, or no log here)."""
    cursor.execute(QUERIES["existing_tables"], {"tables": [BIOMERO_LOG]})
    if not cursor.fetchall():
        return 0
    cursor.execute(QUERIES["biomero_log_head"])
    return cursor.fetchone()[0]


def check(cursor, off_since: int = 0) -> dict[str, int]:
    """Raise BiomeroViewsWriting if one of BIOMERO's views is at its newest event, past
    `off_since`; else the views' positions, for `check_unmoved` to compare with later."""
    head = log_head(cursor)
    if off_since > head:
        raise BiomeroViewsWriting(
            f"APPLIANCE_BIOMERO_VIEWS_OFF_SINCE={off_since} is past BIOMERO's newest event (notification "
            f"{head}): it must be BIOMERO's newest event when its views were turned off")
    found = positions(cursor)
    writing = [name for name, position in found.items() if head and position >= head and position > off_since]
    if writing:
        raise BiomeroViewsWriting(
            f"BIOMERO's own views still write biomero_job_view and its three siblings: {_named(writing)} "
            f"processed BIOMERO's newest event (notification {head}). Two writers would overwrite each other's "
            f"rows: {HOW_TO_TURN_OFF}. Views turned off already look the same until BIOMERO records its next "
            f"event, which they no longer process: if they are off and BIOMERO has recorded nothing since, "
            f"say so with APPLIANCE_BIOMERO_VIEWS_OFF_SINCE={head}.")
    return found


def check_unmoved(cursor, baseline: dict[str, int]) -> None:
    """Raise BiomeroViewsWriting if one of BIOMERO's views moved past its position in `baseline`."""
    moved = {name: position for name, position in positions(cursor).items() if position > baseline.get(name, 0)}
    if moved:
        raise BiomeroViewsWriting(
            f"BIOMERO's own views write biomero_job_view and its three siblings again: {_named(moved)} moved "
            f"to notification {max(moved.values())} while the appliance keeps those tables; the appliance "
            f"stops writing them: {HOW_TO_TURN_OFF}.")


def _named(names) -> str:
    return ", ".join(f"{name} ({SWITCHES[name]})" for name in names)
