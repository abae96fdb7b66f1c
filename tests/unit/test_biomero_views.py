"""appliance/projection/biomero_views.py on its own: events in, BIOMERO's four tables' rows out.

Events are made by the domain's commands, with BIOMERO's values (OMERO ids and
Slurm job ids as ints), applied by the appliance's rules and then here, as
the store does, event by event. The rows compared with BIOMERO's own views'
are in tests/integration/test_biomero_views.py and tests/acceptance/test_biomero_views.py.
"""

import json
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from appliance.domain import Task, WorkflowRun
from appliance.projection import biomero_views, rules

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Clock:
    """Each command one minute after the last, so the log's order is the order of the calls."""

    def __init__(self):
        self.minutes = 0

    def __call__(self) -> datetime:
        self.minutes += 1
        return at(self.minutes)


class Column:
    def __init__(self, name):
        self.name = name


class Writes:
    """A cursor that keeps what save() writes, rows by query name, and answers its one read
    (load_jobs: each job id's newest owner and newest report) from the appliance's rows, as the
    database would."""

    COLUMNS = ("kind", "job_id", "task_id", "status", "progress", "created_at", "user_name", "group_name")

    def __init__(self, rows: rules.Rows):
        self.appliance = rows
        self.rows: dict[str, list[dict]] = {}
        self.description, self.found = [Column(column) for column in self.COLUMNS], []

    def execute(self, sql, params):
        name = next(name for name, text in biomero_views.QUERIES.items() if text == sql)
        if name != "load_jobs":
            self.rows[name] = json.loads(params["rows"])
            return
        given = [{**self.appliance.runs[row["run_id"]], **row} for row in self.appliance.accounting.values()
                 if row["job_id"] in params["jobs"]]
        for row in given:
            row["owned"] = all(biomero_views.omero_id(row[name]) is not None for name in ("user_name", "group_name"))
            row["reported"] = row["status"] is not None or row["progress"] is not None \
                or row["updated_at"] > row["created_at"]
        picks = {"owner": lambda row: row["owned"],
                 "reported": lambda row: row["reported"] and (row["owned"] or row["source"] == "biomero")}
        self.found = []
        for kind, wanted in picks.items():
            for job in {row["job_id"] for row in given}:
                candidates = [row for row in given if row["job_id"] == job and wanted(row)]
                if candidates:
                    newest = max(candidates, key=lambda row: (row["created_at"], row["task_id"]))
                    self.found.append(tuple({**newest, "kind": kind}[column] for column in self.COLUMNS))

    def fetchall(self):
        return self.found


def project(*aggregates, events: list | None = None) -> dict[str, list[dict]]:
    """The rows BIOMERO's four tables get from the aggregates' events, in the order of their times
    (or from `events`, in the order given: the logs one after the other, say)."""
    if events is None:
        events = sorted((event for item in aggregates for event in item.collect_events()),
                        key=lambda e: e.timestamp)
    rows, tables = rules.Rows(), biomero_views.Tables()
    for position, event in enumerate(events, start=1):
        rules.apply(rows, position, event)
        biomero_views.apply(tables, rows, event)
    writes = Writes(rows)
    biomero_views.save(writes, tables, rows, lambda found: json.dumps(found, default=str))
    return writes.rows


def biomero_run(clock, name="cellpose", user=52, group=3, source="biomero") -> WorkflowRun:
    return WorkflowRun.initiate(uuid4(), name=name, description="Segment nuclei", user=user, group=group,
                                source=source, at=clock())


def task_of(run: WorkflowRun, clock, name: str) -> Task:
    task = Task.create(uuid4(), run_id=run.id, task_name=name, task_version="v1", input_data={}, params={},
                       at=clock())
    run.add_task(task.id, at=clock())
    return task


def by(rows: list[dict], key: str) -> dict:
    return {row[key]: row for row in rows}


def test_a_script_workflow_gets_biomero_s_rows_with_each_task_s_end_and_start():
    clock = Clock()
    run = biomero_run(clock)
    transfer = task_of(run, clock, "_SLURM_Image_Transfer.py")
    transfer.start(at=clock())
    transfer.update_status("TRANSFERRING", at=clock())
    transfer.complete("Transferred 3 images", at=clock())
    job = task_of(run, clock, "cellpose")
    job.start(at=clock())
    started = at(clock.minutes)
    job.add_job_id(4711, at=clock())
    for status, progress in (("RUNNING", None), ("COMPLETED", "50%")):
        job.update_status(status, at=clock())
        job.update_progress(progress, at=clock())
    job.complete("Job 4711 is COMPLETED.", at=clock())
    results = task_of(run, clock, "SLURM_Get_Results.py")
    results.start(at=clock())
    results.update_status("POSTPROCESSING", at=clock())
    results.complete("imported 3 images", at=clock())
    run.complete(at=clock())
    written = project(run, transfer, job, results)

    assert written["save_workflows"] == [{
        "workflow_id": str(run.id), "status": "DONE", "progress": "100%", "user": 52, "group": 3,
        "name": "cellpose", "task": "SLURM_Get_Results.py", "main_task_name": "cellpose", "start_time": str(at(1))}]
    assert written["save_jobs"] == [{"slurm_job_id": 4711, "user": 52, "group": 3, "task_id": str(job.id)}]
    assert written["save_job_progress"] == [{"slurm_job_id": 4711, "status": "COMPLETED", "progress": "50%"}]
    tasks = by(written["save_task_executions"], "task_name")
    # BIOMERO keeps TRANSFERRING and POSTPROCESSING (the last report) and the creation time.
    assert [tasks[name]["status"] for name in ("_SLURM_Image_Transfer.py", "cellpose", "SLURM_Get_Results.py")] \
        == ["COMPLETED"] * 3
    assert tasks["cellpose"]["start_time"] == str(started) and tasks["cellpose"]["user_id"] == 52


@pytest.mark.parametrize("task_name, status, progress, expected", [
    ("_SLURM_Image_Transfer.py", "TRANSFERRING", None, ("TRANSFERRING", "5%")),
    ("convert_zarr_to_tiff", "RUNNING", None, ("CONVERTING", "25%")),
    ("SLURM_Get_Results.py", "POSTPROCESSING", None, ("POSTPROCESSING", "95%")),
    ("SLURM_Get_Results.py", "RUNNING", None, ("RETRIEVING", "90%")),
    ("SLURM_Import_Results.py", "IMPORTED", None, ("IMPORTED", "90%")),
    ("SLURM_Run_Workflow.py", "anything", None, ("RUNNING", "50%")),
    ("cellpose", "PENDING", None, ("JOB_PENDING", "50%")),
    ("cellpose", "RUNNING", "43%", ("JOB_RUNNING", "67.2%")),  # 50 + 43/100 * 40, as BIOMERO's float prints
    ("cellpose", "RUNNING", "0%", ("JOB_RUNNING", "50.0%")),
    ("cellpose", "RUNNING", "50.5%", ("JOB_RUNNING", "70.2%")),  # BIOMERO's int() fails on it
    ("cellpose", "RUNNING", "half", ("JOB_RUNNING", "50%")),
])
def test_a_workflow_s_status_and_progress_are_reckoned_as_biomero_does(task_name, status, progress, expected):
    assert biomero_views.workflow_status(task_name, status, progress) == expected


def test_the_main_task_is_the_first_that_is_no_infrastructure_else_the_current_one():
    clock = Clock()
    infrastructure, run = biomero_run(clock), biomero_run(clock)
    tasks = [task_of(infrastructure, clock, name) for name in ("_SLURM_Image_Transfer.py", "convert_zarr_to_tiff")]
    tasks += [task_of(run, clock, name) for name in ("_SLURM_Image_Transfer.py", "convert_zarr_to_tiff", "stardist",
                                                     "cellpose", "SLURM_Get_Results.py")]
    rows = by(project(infrastructure, run, *tasks)["save_workflows"], "workflow_id")
    assert [(rows[str(wf.id)]["task"], rows[str(wf.id)]["main_task_name"]) for wf in (infrastructure, run)] == [
        ("convert_zarr_to_tiff", "convert_zarr_to_tiff"), ("SLURM_Get_Results.py", "stardist")]


def test_a_failed_task_keeps_the_slurm_state_it_failed_with_and_a_started_one_runs():
    clock = Clock()
    run = biomero_run(clock)
    timed_out, failed, started, created = (task_of(run, clock, name) for name in "abcd")
    for task in (timed_out, failed, started):
        task.start(at=clock())
    timed_out.update_status("TIMEOUT", at=clock())
    timed_out.fail("Slurm job state TIMEOUT", at=clock())
    failed.update_status("RUNNING", at=clock())
    failed.fail("Slurm job state FAILED", at=clock())
    rows = by(project(run, timed_out, failed, started, created)["save_task_executions"], "task_name")
    assert {name: (row["status"], row["error_type"]) for name, row in rows.items()} == {
        "a": ("TIMEOUT", "Slurm job state TIMEOUT"), "b": ("FAILED", "Slurm job state FAILED"),
        "c": ("RUNNING", None), "d": ("CREATED", None)}
    assert rows["d"]["user_id"] == 52  # BIOMERO's row has no user until the task's next event


def test_a_recycled_slurm_job_id_names_its_newest_task_and_its_progress_starts_afresh():
    clock = Clock()
    run = biomero_run(clock)
    older, newer = task_of(run, clock, "cellpose"), task_of(run, clock, "stardist")
    older.add_job_id(7, at=clock())
    older.update_status("COMPLETED", at=clock())
    older.update_progress("100%", at=clock())
    newer.add_job_id(7, at=clock())
    newer.update_status("RUNNING", at=clock())
    written = project(run, older, newer)
    assert written["save_jobs"] == [{"slurm_job_id": 7, "user": 52, "group": 3, "task_id": str(newer.id)}]
    # BIOMERO's JobProgress carries the older job's "100%" over.
    assert written["save_job_progress"] == [{"slurm_job_id": 7, "status": "RUNNING", "progress": None}]


def test_a_job_id_in_both_logs_names_the_task_it_was_given_to_last_whichever_log_is_applied_first():
    clock = Clock()
    biomero_log, appliance_log = [], []
    for log, source in ((biomero_log, "biomero"), (appliance_log, None)):
        run = biomero_run(clock, source=source)
        task = task_of(run, clock, "CONVERT_ZARR_TO_TIFF")
        task.add_job_id(-1, at=clock())  # BIOMERO's job id for a job sbatch refused
        task.update_status("FAILED", at=clock())
        log.extend([*run.collect_events(), *task.collect_events()])
    last = str(appliance_log[-2].originator_id)
    for events in (biomero_log + appliance_log, appliance_log + biomero_log):
        written = project(events=events)
        assert [row["task_id"] for row in written["save_jobs"]] == [last]
        assert written["save_job_progress"] == [{"slurm_job_id": -1, "status": "FAILED", "progress": None}]


def test_a_recycled_job_id_keeps_the_older_job_s_progress_until_the_newer_reports():
    clock = Clock()
    run = biomero_run(clock)
    older, newer = task_of(run, clock, "cellpose"), task_of(run, clock, "stardist")
    older.add_job_id(7, at=clock())
    older.update_progress("100%", at=clock())
    newer.add_job_id(7, at=clock())
    written = project(run, older, newer)
    assert written["save_jobs"][0]["task_id"] == str(newer.id)
    assert written["save_job_progress"] == [{"slurm_job_id": 7, "status": "UNKNOWN", "progress": "100%"}]


def test_runs_of_other_sources_have_rows_only_when_their_user_and_group_are_omero_ids():
    clock = Clock()
    snakemake = biomero_run(clock, "rnaseq", user="alice", group="genomics", source="snakemake")
    tracker = biomero_run(clock, "cellpose", user=52, group=3, source=None)  # BIOMERO's code on the appliance
    written = project(snakemake, tracker, task_of(snakemake, clock, "align"), task_of(tracker, clock, "cellpose"))
    assert [row["workflow_id"] for row in written["save_workflows"]] == [str(tracker.id)]
    assert [row["task_name"] for row in written["save_task_executions"]] == ["cellpose"]


@pytest.mark.parametrize("value, expected", [
    (52, 52), (-1, -1), ("52", 52), ("-1", -1), (2**31 - 1, 2**31 - 1), (2**31, None), ("4711x", None),
    ("alice", None), (None, None), (True, None), (4.0, None),
])
def test_only_values_biomero_s_integer_columns_hold_are_omero_ids(value, expected):
    assert biomero_views.omero_id(value) == expected
