"""BIOMERO's four view tables read row by row, and what the appliance's rows should be next to BIOMERO's.

`expected_from_biomero` applies the differences docs/biomero.md lists (and
only those) to the rows BIOMERO's own views wrote; a test then compares the
appliance's rows with that, row by row. The facts a difference needs (how a
task ended, when it started) are read from the appliance's job_executions.
"""

from __future__ import annotations

import copy
import json

from tests.support.sql import query

# BIOMERO's four tables and each one's key.
KEYS = {
    "biomero_job_view": "slurm_job_id",
    "biomero_job_progress_view": "slurm_job_id",
    "biomero_workflow_progress_view": "workflow_id",
    "biomero_task_execution": "task_id",
}
SLURM_FAILURES = {"FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                  "DEADLINE"}


def four_tables(url: str) -> dict[str, dict]:
    """Each table's rows as dicts, by key (ids as text)."""
    tables = {}
    for table, key in KEYS.items():
        rows = [json.loads(text) for text, in query(url, f"SELECT row_to_json(t)::text FROM {table} AS t")]
        tables[table] = {row[key]: row for row in rows}
    return tables


def expected_from_biomero(theirs: dict[str, dict], appliance_url: str) -> dict[str, dict]:
    """BIOMERO's rows with the documented differences applied (docs/biomero.md):
    a task's status says how it ended, or RUNNING once started; its start_time is its start."""
    expected = copy.deepcopy(theirs)
    ended = {task_id: (status, started) for task_id, status, started in query(
        appliance_url, "SELECT id::text, status, to_json(started_at::timestamp) #>> '{}' FROM job_executions")}
    for task_id, row in expected["biomero_task_execution"].items():
        status, started = ended[task_id]
        if status == "completed":
            row["status"] = "COMPLETED"
        elif status == "failed":
            row["status"] = row["status"] if row["status"] in SLURM_FAILURES else "FAILED"
        elif status == "running" and row["status"] == "CREATED":
            row["status"] = "RUNNING"
        if started is not None:
            row["start_time"] = started
    return expected
