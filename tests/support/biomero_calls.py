"""BIOMERO's calls on its workflow tracker, in the shapes its real callers use.

Taken from BIOMERO 2.8.3's `biomero/slurm_client.py` (run_workflow,
run_conversion_workflow_job, SlurmJob.wait_for_completion) and the
biomero-scripts (SLURM_Run_Workflow.py, SLURM_Get_Results.py): OMERO user and
group ids as ints (-1 when unknown), an int description once, input data as a
folder name, a list of image ids or an int, fabric Results (also the one an
UnexpectedExit carries), progress None before the Slurm log has a
percentage, Slurm job ids as ints, an empty error message.

The same functions run against BIOMERO's own WorkflowTracker (in
.venv-biomero, tests/support/biomero_driver.py) and against
appliance.WorkflowTracker; they import neither, only fabric and invoke, which
BIOMERO's callers use too.
"""

from __future__ import annotations

from fabric import Connection, Result
from invoke.exceptions import UnexpectedExit

SCRIPT_VERSION = "2.8.2"
SLURM = Connection("slurm.example.org")  # never connected: a Result names its connection


def sbatch_result(job_id: int, command: str = "sbatch job.sh") -> Result:
    """What SlurmClient.run_commands returns for an sbatch submission."""
    return Result(connection=SLURM, stdout=f"Submitted batch job {job_id}\n", stderr="", command=command,
                  env={"DATA_PATH": "/data/my-scratch/data"}, exited=0)


def run_workflow(tracker, name: str, version: str, job_id: int, *, wf_id=None, states=("RUNNING", "COMPLETED"),
                 progress=(None, "50%")):
    """SlurmClient.run_workflow, then SlurmJob.wait_for_completion's polling; (wf_id, task_id)."""
    if not wf_id:
        wf_id = tracker.initiate_workflow(name, version, -1, -1)
    task_id = tracker.add_task_to_workflow(wf_id, name, version, "230412_120000_images",
                                           {"nuc_channel": 1, "diameter": 30, "use_gpu": True})
    if task_id:
        tracker.start_task(task_id)
        tracker.add_job_id(task_id, job_id)
        tracker.add_result(task_id, sbatch_result(job_id))
    for state, percent in zip(states, progress):
        tracker.update_task_status(task_id, state)
        tracker.update_task_progress(task_id, percent)
    return wf_id, task_id


def failed_conversion(tracker):
    """SlurmClient.run_conversion_workflow_job when sbatch refuses the job (UnexpectedExit)."""
    wf_id = tracker.initiate_workflow("conversion", -1, -1, -1)
    task_id = tracker.add_task_to_workflow(wf_id, "CONVERT_ZARR_TO_TIFF", "v1.0.0", "/data/in/230412",
                                           {"DATA_PATH": "/data/in/230412", "CONFIG_FILE": "files.txt"})
    refused = Result(connection=SLURM, stdout="", stderr="sbatch: error: invalid reservation\n",
                     command="sbatch convert.sh", env={}, exited=1)
    try:
        raise UnexpectedExit(refused)
    except UnexpectedExit as error:
        result = error.result
    tracker.start_task(task_id)
    tracker.add_job_id(task_id, -1)
    tracker.add_result(task_id, result)
    tracker.fail_task(task_id, "Slurm job state FAILED")
    tracker.fail_workflow(wf_id, "")  # str(e) of an exception without a message
    return wf_id, task_id


def script_workflow(tracker, user: int, group: int, job_id: int):
    """SLURM_Run_Workflow.py: transfer, convert, run on Slurm, get and import results."""
    wf_id = tracker.initiate_workflow("cellpose", "\n".join(["Segment nuclei", SCRIPT_VERSION]), user, group)
    transfer = tracker.add_task_to_workflow(wf_id, "_SLURM_Image_Transfer.py", SCRIPT_VERSION, [1201, 1202, 1203],
                                            {"Data_Type": "Image", "IDs": [1201, 1202, 1203]})
    tracker.start_task(transfer)
    tracker.update_task_status(transfer, "TRANSFERRING")
    tracker.complete_task(transfer, "Transferred 3 images to 230412_120000_images.zip")
    convert = tracker.add_task_to_workflow(wf_id, "convert_zarr_to_tiff", SCRIPT_VERSION, 5511,
                                           {"Folder_Name": "230412_120000_images"})
    tracker.start_task(convert)
    tracker.complete_task(convert, "converted")
    _, task_id = run_workflow(tracker, "cellpose", "v1.2.7", job_id, wf_id=wf_id)
    tracker.complete_task(task_id, "Job %d is COMPLETED." % job_id)
    results = tracker.add_task_to_workflow(wf_id, "SLURM_Get_Results.py", SCRIPT_VERSION,
                                           {"IDs": [1201, 1202, 1203]}, {"Completed_Job": str(job_id)})
    tracker.start_task(results)
    tracker.update_task_status(results, "POSTPROCESSING")
    tracker.complete_task(results, "imported 3 images")
    tracker.complete_workflow(wf_id)
    return wf_id, task_id


def timed_out_workflow(tracker, user: int, group: int, job_id: int):
    """SLURM_Run_Workflow.py when the Slurm job times out."""
    wf_id = tracker.initiate_workflow("stardist", "\n".join(["", SCRIPT_VERSION]), user, group)
    _, task_id = run_workflow(tracker, "stardist", "v0.9.1", job_id, wf_id=wf_id, states=("PENDING", "TIMEOUT"),
                              progress=(None, None))
    tracker.fail_task(task_id, "Slurm job state TIMEOUT")
    try:
        raise RuntimeError()
    except RuntimeError as error:
        tracker.fail_workflow(wf_id, str(error))
    return wf_id, task_id


def facility_day(tracker, first_job_id: int = 4711, user: int = 52, group: int = 3) -> dict:
    """Every shape above once; the ids recorded, by what they are."""
    done_wf, done_task = script_workflow(tracker, user, group, first_job_id)
    timeout_wf, timeout_task = timed_out_workflow(tracker, user, group, first_job_id + 1)
    plain_wf, plain_task = run_workflow(tracker, "cellexpansion", "v1.0.1", first_job_id + 2)
    conversion_wf, conversion_task = failed_conversion(tracker)
    return {
        "completed": [str(done_wf), str(done_task)],
        "timed_out": [str(timeout_wf), str(timeout_task)],
        "running": [str(plain_wf), str(plain_task)],
        "conversion": [str(conversion_wf), str(conversion_task)],
    }


def read_back(tracker, wf_id) -> dict:
    """SLURM_Get_Results.py's add_image_annotations: a run and its tasks read from the repository."""
    wf = tracker.repository.get(wf_id)
    tasks = []
    for tid in wf.tasks:
        task = tracker.repository.get(tid)
        tasks.append({
            "Task_ID": str(task._id), "Workflow_ID": str(task.workflow_id), "Name": task.task_name,
            "Version": task.task_version, "Status": task.status, "Input_Data": task.input_data,
            "Job_IDs": list(task.job_ids), "Result_Message": task.result_message,
            "Command": task.results[0]["command"] if task.results and "command" in task.results[0] else None,
            "Params": {f"Param_{key}": str(value) for key, value in task.params.items()},
            "Created_On": task._created_on.isoformat(), "Modified_On": task._modified_on.isoformat(),
        })
    return {"Name": wf.name, "Description": wf.description, "User": wf.user, "Group": wf.group,
            "Created_On": wf._created_on.isoformat(), "Task_IDs": [str(tid) for tid in wf.tasks], "Tasks": tasks}
