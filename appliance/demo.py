"""A small sample of workflow runs recorded through the tracker, so pages are not empty."""

from __future__ import annotations

import random

from appliance.config import Settings
from appliance.tracker import WorkflowTracker

TASK_NAMES = ("fetch_images", "segment", "measure", "export_tables", "make_report")


def run_demo(settings: Settings, *, runs: int = 3, tasks: int = 4, seed: int | None = None) -> list:
    rng = random.Random(seed)
    tracker = WorkflowTracker(settings)
    run_ids = []
    try:
        for number in range(1, runs + 1):
            run_ids.append(_record_run(tracker, rng, number, tasks))
            print(f"recorded demo run {number}/{runs}: {run_ids[-1]}", flush=True)
    finally:
        tracker.close()
    return run_ids


def _record_run(tracker: WorkflowTracker, rng: random.Random, number: int, tasks: int):
    with tracker.batch() as batch:
        run_id = batch.initiate_workflow(
            f"demo-workflow-{number}", "A sample run recorded by `appliance demo`", "demo", "demo-lab",
            source="demo",
        )
        batch.start_workflow(run_id)
        fails = rng.random() < 0.3
        for index in range(tasks):
            task_id = batch.add_task_to_workflow(run_id, TASK_NAMES[index % len(TASK_NAMES)], "1.0",
                                                 {"index": index}, {"threads": 2})
            batch.start_task(task_id)
            batch.add_job_id(task_id, str(rng.randint(100_000, 999_999)))
            batch.record_log(run_id, f"task {index} started", task_id=task_id)
            if fails and index == tasks - 1:
                batch.fail_task(task_id, "exit status 1")
                batch.fail_workflow(run_id, f"task {index} failed")
                return run_id
            batch.update_task_progress(task_id, "100%")
            batch.complete_task(task_id, "done")
        batch.complete_workflow(run_id)
    return run_id
