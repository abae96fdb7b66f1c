"""Sample workflow runs that look like a facility's day, so the pages show something real.

Runs are spread over the last hours, their tasks last seconds to minutes, and
the set always holds the cases worth seeing: a failure with a Python
traceback, a task that failed and succeeded on its retry, a stale run (its
source went silent), the rest completed (a few failed). `--seed N` records the
same names, durations and outcomes every time (times are relative to now);
`--live` then keeps one run going, a task every few seconds, until Ctrl-C.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

from appliance.config import Settings
from appliance.tracker import WorkflowTracker

WORKFLOWS = {
    "cellpose-segmentation": ("fetch_images", "segment", "measure", "export_tables"),
    "stardist-nuclei": ("fetch_images", "normalise", "detect", "export_rois"),
    "snakemake-rnaseq": ("fastqc", "trim", "align", "count", "multiqc"),
    "deconvolution": ("fetch_images", "psf", "deconvolve", "save"),
}
USERS = (("alice", "imaging"), ("bob", "genomics"), ("chen", "imaging"), ("dana", "screening"))
TRACEBACK = """Traceback (most recent call last):
  File "/opt/workflows/segment.py", line 88, in <module>
    masks = model.eval(images, diameter=args.diameter)
  File "/opt/venv/lib/python3.11/site-packages/cellpose/models.py", line 231, in eval
    raise ValueError(f"image {name} has {ndim} dimensions; expected 2 or 3")
ValueError: image plate7_C04 has 4 dimensions; expected 2 or 3"""
KINDS = ("traceback", "retry", "stale")  # one of each, then ordinary runs
LIVE_STEP_SECONDS = 5


def run_demo(settings: Settings, *, runs: int = 6, tasks: int | None = None, seed: int | None = None,
             live: bool = False) -> list:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    tracker = WorkflowTracker(settings)
    run_ids = []
    try:
        for number in range(1, runs + 1):
            kind = KINDS[number - 1] if number <= len(KINDS) else ("failed" if rng.random() < 0.15 else "completed")
            started = now - timedelta(seconds=rng.uniform(20 * 60, 12 * 3600))
            if kind == "stale":
                started = now - timedelta(minutes=rng.uniform(40, 90))
            run_ids.append(_record_run(tracker, rng, kind, started, tasks))
            print(f"recorded demo run {number}/{runs} ({kind}): {run_ids[-1]}", flush=True)
        if live:
            _live_run(tracker, rng, tasks)
    finally:
        tracker.close()
    return run_ids


def _record_run(tracker: WorkflowTracker, rng: random.Random, kind: str, at: datetime, tasks: int | None):
    name = rng.choice(sorted(WORKFLOWS))
    steps = WORKFLOWS[name][:tasks] if tasks else WORKFLOWS[name]
    user, group = rng.choice(USERS)
    with tracker.batch() as batch:
        run_id = batch.initiate_workflow(name, f"sample run of {name} (appliance demo)", user, group,
                                         source="demo", params={"seed_case": kind}, at=at)
        batch.start_workflow(run_id, at=at)
        for index, step in enumerate(steps):
            attempts = 2 if kind == "retry" and index == 1 else 1
            for attempt in range(1, attempts + 1):
                at = _task(batch, rng, run_id, step, at, attempt, attempts, kind, last=index == len(steps) - 1)
                if at is None:
                    return run_id
            batch.update_workflow_progress(run_id, index + 1, len(steps), at=at)
            if kind == "stale" and index == len(steps) // 2:
                return run_id  # its source went silent: no heartbeat, no end
        batch.complete_workflow(run_id, at=at)
    return run_id


def _task(batch, rng: random.Random, run_id, step: str, at: datetime, attempt: int, attempts: int, kind: str,
          last: bool) -> datetime | None:
    """One task, seconds to minutes long; the time it ended, or None when the run failed with it."""
    task_id = batch.add_task_to_workflow(run_id, step, "1.4", {"plate": rng.randint(1, 40)}, {"threads": 4}, at=at)
    batch.start_task(task_id, at=at)
    batch.add_job_id(task_id, rng.randint(1_000_000, 9_999_999), at=at)
    batch.record_log(run_id, f"{step}: started (attempt {attempt})", task_id=task_id, at=at)
    at += timedelta(seconds=rng.choice((rng.uniform(2, 30), rng.uniform(30, 240))))
    if attempt < attempts:
        batch.record_log(run_id, f"{step}: node lost; resubmitting", level="WARNING", task_id=task_id, at=at)
        batch.fail_task(task_id, "slurmstepd: error: *** JOB CANCELLED: NODE FAILURE ***", at=at)
        return at + timedelta(seconds=rng.uniform(5, 60))
    if kind == "traceback" and step == "segment" or kind == "traceback" and last or kind == "failed" and last:
        error = TRACEBACK if kind == "traceback" else "exit status 137 (out of memory)"
        batch.record_log(run_id, error, level="ERROR", task_id=task_id, at=at)
        batch.fail_task(task_id, error, at=at)
        batch.fail_workflow(run_id, f"task {step} failed", at=at)
        return None
    batch.update_task_progress(task_id, "100%", at=at)
    batch.complete_task(task_id, "done", at=at)
    return at


def _live_run(tracker: WorkflowTracker, rng: random.Random, tasks: int | None) -> None:
    """A run that goes on now: a task every few seconds, heartbeats between, until Ctrl-C."""
    name = rng.choice(sorted(WORKFLOWS))
    user, group = rng.choice(USERS)
    run_id = tracker.initiate_workflow(name, "a live demo run (appliance demo --live)", user, group, source="demo")
    tracker.start_workflow(run_id)
    print(f"a live run, until Ctrl-C: {run_id}", flush=True)
    step = 0
    try:
        while True:
            step += 1
            task_id = tracker.add_task_to_workflow(run_id, f"tile_{step:04d}", "1.4", {"tile": step}, {})
            tracker.start_task(task_id)
            for percent in (25, 50, 75):
                time.sleep(LIVE_STEP_SECONDS / 4)
                tracker.update_task_progress(task_id, f"{percent}%")
                tracker.record_heartbeat(run_id)
            time.sleep(LIVE_STEP_SECONDS / 4)
            tracker.complete_task(task_id, "done")
            tracker.record_log(run_id, f"tile {step} done")
    except KeyboardInterrupt:
        tracker.complete_workflow(run_id)
        print(f"the live run ended after {step} tasks", flush=True)
