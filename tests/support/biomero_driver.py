"""Run by .venv-biomero's Python: the real BIOMERO 2.8.3 recording workflows.

The tracker is wired by BIOMERO's own code: SlurmClient.initialize_analytics_system
(a System with WorkflowTracker and its four views, JobAccounting, JobProgress,
WorkflowProgress, WorkflowAnalytics, run by a SingleThreadedRunner with the env
SlurmClient gives it), executed on a stand-in object that carries only the
settings SlurmClient would have (a real SlurmClient validates its SSH
connection to Slurm on construction). The database URL comes from
SQLALCHEMY_URL, as in a BIOMERO deployment.

    python biomero_driver.py facility-day FIRST_JOB_ID [VIEWS]
        tests/support/biomero_calls.facility_day once; prints the ids and what
        SLURM_Get_Results.py would read back, as one JSON line
    python biomero_driver.py record SECONDS FIRST_JOB_ID [VIEWS]
        facility days back to back until SECONDS pass (or stdin closes); prints
        every id recorded and the number of calls, as one JSON line
    python biomero_driver.py init [VIEWS]
        only SlurmClient's set-up: BIOMERO's tables made, nothing recorded
    python biomero_driver.py catch-up
        BIOMERO's four views process every event of the log they have not
        processed yet (pull_and_process from their own positions, as the
        runner prompts them)
    python biomero_driver.py rebuild
        BIOMERO's own rebuild of its views, as SlurmClient(init_slurm=True)
        does it: their tables dropped and made again, the log replayed

VIEWS is `on` (the default: SlurmClient's enable_job_accounting,
enable_job_progress and enable_workflow_analytics, as BIOMERO ships) or `off`
(all three False: a facility whose views the appliance keeps).

It imports nothing of the appliance (another virtualenv).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from biomero.slurm_client import SlurmClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import biomero_calls  # noqa: E402  (beside this file, not a package here)

WIRING = ("initialize_analytics_system", "setup_listeners", "get_listeners", "_get_config_value",
          "_CONFIG_ENV_VARS", "_find_analytics_start_id", "bring_listener_uptodate")


def biomero_tracker(views: str = "on", *, reset_tables: bool = False):
    """BIOMERO's WorkflowTracker and views, as SlurmClient(track_workflows=True, ...) sets them up."""
    wiring = type("SlurmClientAnalytics", (), {name: SlurmClient.__dict__[name] for name in WIRING})()
    wiring.track_workflows = True
    on = {"on": True, "off": False}[views]
    wiring.enable_job_accounting = wiring.enable_job_progress = wiring.enable_workflow_analytics = on
    wiring.sqlalchemy_url = None  # SQLALCHEMY_URL from the environment, as deployments give it
    wiring.analytics_rebuild_start_time = wiring.analytics_rebuild_days_ago = None
    wiring.initialize_analytics_system(reset_tables=reset_tables)
    return wiring


def facility_day(first_job_id: int, views: str = "on") -> dict:
    wiring = biomero_tracker(views)
    tracker = wiring.workflowTracker
    ids = biomero_calls.facility_day(tracker, first_job_id)
    read = {kind: biomero_calls.read_back(tracker, wf_id) for kind, (wf_id, _) in ids.items()}
    return {"ids": ids, "read_back": read, "tracker": type(tracker).__module__ + "." + type(tracker).__qualname__}


def record(seconds: float, first_job_id: int, views: str = "on") -> dict:
    tracker = biomero_tracker(views).workflowTracker
    deadline = time.monotonic() + seconds
    days = []
    job_id = first_job_id
    while time.monotonic() < deadline:
        days.append(biomero_calls.facility_day(tracker, job_id))
        job_id += 10
    return {"days": days}


def catch_up() -> dict:
    wiring = biomero_tracker("on")
    for listener in (wiring.jobAccounting, wiring.jobProgress, wiring.wfProgress, wiring.workflowAnalytics):
        listener.pull_and_process(leader_name="WorkflowTracker")  # from its own position: nothing dropped
    return {}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    mode = argv[0]
    if mode == "facility-day":
        out = facility_day(int(argv[1]), *argv[2:])
    elif mode == "record":
        out = record(float(argv[1]), int(argv[2]), *argv[3:])
    elif mode == "init":
        biomero_tracker(*argv[1:])
        out = {}
    elif mode == "catch-up":
        out = catch_up()
    elif mode == "rebuild":
        biomero_tracker("on", reset_tables=True)
        out = {}
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
