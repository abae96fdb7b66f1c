"""appliance.WorkflowTracker takes BIOMERO's call shapes and reads back with BIOMERO's names.

The shapes come from BIOMERO 2.8.3's slurm_client.py and the biomero-scripts
(tests/support/biomero_calls.py runs them all, against BIOMERO itself too:
tests/acceptance/test_biomero.py).
"""

from __future__ import annotations

import pytest
from eventsourcing.system import SingleThreadedRunner, System
from fabric import Connection, Result
from invoke.exceptions import UnexpectedExit

from appliance import InvalidArgumentError, NoOpWorkflowTracker, WorkflowTracker
from appliance.projection import Projector
from tests.support.sql import query


@pytest.fixture
def run_id(tracker):
    return tracker.initiate_workflow("cellpose", "Segment nuclei\n2.8.2", 52, 3)


@pytest.fixture
def task_id(tracker, run_id):
    return tracker.add_task_to_workflow(run_id, "cellpose", "v1.2.7", [1201, 1202], {"diameter": 30})


def test_omero_ids_stay_ints_in_the_aggregate_and_are_shown_as_text(tracker, database_url):
    run = tracker.initiate_workflow("conversion", -1, -1, -1)
    workflow = tracker.repository.get(run)
    assert (workflow.description, workflow.user, workflow.group, workflow.tasks) == (-1, -1, -1, ())
    task = tracker.add_task_to_workflow(run, "CONVERT_ZARR_TO_TIFF", "v1", "/data/in", {"A": "1"})
    tracker.add_job_id(task, 4711)
    assert tracker.repository.get(run).tasks == (task,)
    read = tracker.repository.get(task)
    assert (read.workflow_id, read.input_data, read.job_ids) == (run, "/data/in", (4711,))
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT description, user_name, group_name FROM workflow_runs") == [("-1", "-1", "-1")]
    assert query(database_url, "SELECT job_ids, input_data FROM job_executions") == [(["4711"], "/data/in")]


def test_a_fabric_result_is_stored_as_biomeros_result_dict(tracker, task_id):
    refused = Result(connection=Connection("slurm"), stdout="", stderr="sbatch: error\n", command="sbatch x.sh",
                     env={"DATA_PATH": "/data"}, exited=1)
    try:
        raise UnexpectedExit(refused)
    except UnexpectedExit as error:
        tracker.add_result(task_id, error.result)
    assert tracker.get_task(task_id).results == ({"command": "sbatch x.sh", "env": {"DATA_PATH": "/data"},
                                                 "stdout": "", "stderr": "sbatch: error\n", "exited": 1},)


def test_no_percentage_yet_and_an_empty_error_are_kept_as_such(tracker, run_id, task_id):
    tracker.update_task_status(task_id, "PENDING")
    tracker.update_task_progress(task_id, None)
    tracker.fail_task(task_id, "")
    tracker.fail_workflow(run_id, "")
    task = tracker.get_task(task_id)
    assert (task.status, task.progress, task.result_message, task.lifecycle_status) == ("PENDING", None, "", "failed")
    assert tracker.get_workflow(run_id).error_message == ""


def test_a_value_that_cannot_be_stored_names_the_argument_and_records_nothing(tracker, run_id, database_url):
    before = query(database_url, "SELECT count(*) FROM appliance_events")
    with pytest.raises(InvalidArgumentError, match="^input_data: cannot be stored as JSON"):
        tracker.add_task_to_workflow(run_id, "cellpose", "v1", object(), {})
    with pytest.raises(InvalidArgumentError, match="^user: must lie between"):
        tracker.initiate_workflow("cellpose", "", 2**70, 3)
    assert query(database_url, "SELECT count(*) FROM appliance_events") == before


def test_built_as_biomero_builds_its_tracker_through_a_runner_with_env(database_url):
    runner = SingleThreadedRunner(System(pipes=[[WorkflowTracker]]), env={
        "SQLALCHEMY_URL": database_url, "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy"})
    runner.start()
    try:
        tracker = runner.get(WorkflowTracker)
        run = tracker.initiate_workflow("cellpose", "Segment\n2.8.2", 52, 3)
        assert tracker.repository.get(run).user == 52
        assert tracker.env.get("PERSISTENCE_MODULE") == "eventsourcing_sqlalchemy"
    finally:
        runner.stop()
    assert query(database_url, "SELECT count(*) FROM appliance_events") == [(1,)]


def test_the_no_op_tracker_takes_any_call_and_records_nothing():
    tracker = NoOpWorkflowTracker()
    assert tracker.initiate_workflow("cellpose", "", 52, 3) is None
    assert tracker.update_task_progress(None, None) is None
