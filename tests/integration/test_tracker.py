"""The write side against a real PostgreSQL."""

import socket
import threading
import traceback
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import psycopg2
import pytest

from appliance import WorkflowTracker
from appliance.config import Settings, parse_database_url
from appliance.domain import RunStatus, TaskStatus, WorkflowRun
from appliance.tracker import (
    Batch,
    ConcurrencyError,
    DatabaseUnavailableError,
    DuplicateIdError,
    InvalidArgumentError,
    TrackerError,
    UnknownIdError,
)
from sqlalchemy.engine import make_url

from tests.support.sql import query


def fresh_tracker(database_url, **settings) -> WorkflowTracker:
    return WorkflowTracker(Settings(database_url=parse_database_url(database_url), **settings))


def transaction_ids(database_url, *originator_ids):
    rows = query(
        database_url,
        "SELECT DISTINCT xmin::text FROM appliance_events WHERE originator_id = ANY(%s::uuid[])",
        [str(i) for i in originator_ids],
    )
    return {row[0] for row in rows}


@pytest.fixture
def run_id(tracker):
    return tracker.initiate_workflow("align-reads", "nightly alignment", "alice", "genomics")


@pytest.fixture
def task_id(tracker, run_id):
    return tracker.add_task_to_workflow(run_id, "bwa_mem", "0.7.17", {"sample": "S1"}, {"threads": 4})


def test_initiate_workflow_returns_the_id_of_a_stored_run(tracker, database_url):
    run_id = tracker.initiate_workflow("align-reads", "nightly alignment", "alice", "genomics")
    assert isinstance(run_id, UUID)
    run = fresh_tracker(database_url).get_workflow(run_id)
    assert (run.name, run.user, run.group, run.status) == ("align-reads", "alice", "genomics", RunStatus.CREATED)


def test_run_lifecycle(tracker, run_id, database_url):
    tracker.start_workflow(run_id)
    assert tracker.get_workflow(run_id).status == RunStatus.RUNNING
    tracker.complete_workflow(run_id)
    assert fresh_tracker(database_url).get_workflow(run_id).status == RunStatus.COMPLETED


def test_failed_and_cancelled_runs(tracker, database_url):
    failed = tracker.initiate_workflow("a", "", None, None)
    tracker.fail_workflow(failed, "rule bwa_mem failed")
    cancelled = tracker.initiate_workflow("b", "", None, None)
    tracker.cancel_workflow(cancelled, "user interrupt")
    reader = fresh_tracker(database_url)
    assert reader.get_workflow(failed).status == RunStatus.FAILED
    assert reader.get_workflow(failed).error_message == "rule bwa_mem failed"
    assert reader.get_workflow(cancelled).status == RunStatus.CANCELLED


def test_task_lifecycle_with_every_task_command(tracker, run_id, task_id, database_url):
    tracker.start_task(task_id)
    tracker.add_job_id(task_id, 4242)
    tracker.update_task_status(task_id, "RUNNING")
    tracker.update_task_progress(task_id, "50%")
    tracker.add_result(task_id, {"file": "out.bam"})
    tracker.complete_task(task_id, "all good")
    task = fresh_tracker(database_url).get_task(task_id)
    assert task.run_id == run_id
    assert (task.task_name, task.task_version) == ("bwa_mem", "0.7.17")
    assert (task.input_data, task.params) == ({"sample": "S1"}, {"threads": 4})
    assert task.job_ids == (4242,)  # as given (BIOMERO's are ints); the views show text
    assert (task.status, task.external_status, task.progress) == ("RUNNING", "RUNNING", "50%")
    assert task.results == ({"file": "out.bam"},)
    assert (task.lifecycle_status, task.result_message) == (TaskStatus.COMPLETED, "all good")


def test_run_progress_as_its_source_counts_steps(tracker, run_id, database_url):
    assert tracker.get_workflow(run_id).steps_done is None
    tracker.update_workflow_progress(run_id, 0, 12)
    with tracker.batch() as batch:
        batch.update_workflow_progress(run_id, 3, 12)
    tracker.update_workflow_progress(run_id, 12, 12)  # done may equal total
    tracker.update_workflow_progress(run_id, 0, 0)  # a source may recount: the last report stands
    run = fresh_tracker(database_url).get_workflow(run_id)
    assert (run.steps_done, run.steps_total, run.version) == (0, 0, 5)
    reported = [e for e in tracker.events.get(run_id) if isinstance(e, WorkflowRun.ProgressReported)]
    assert [(e.done, e.total) for e in reported] == [(0, 12), (3, 12), (12, 12), (0, 0)]


def test_run_progress_of_a_task_id_is_refused(tracker, task_id):
    with pytest.raises(UnknownIdError, match="no workflow run has the id"):
        tracker.update_workflow_progress(task_id, 1, 2)


def test_fail_task(tracker, task_id):
    tracker.fail_task(task_id, "MemoryError: out of memory")
    task = tracker.get_task(task_id)
    assert (task.lifecycle_status, task.error_message) == (TaskStatus.FAILED, "MemoryError: out of memory")
    assert task.result_message == "MemoryError: out of memory"  # as BIOMERO keeps it


def test_biomero_positional_argument_order(tracker):
    run_id = tracker.initiate_workflow("cellpose", "segmentation", "bob", "imaging")
    task_id = tracker.add_task_to_workflow(run_id, "cellpose", "v1.2", {"image": 1}, {"diameter": 30})
    tracker.add_job_id(task_id, "98765")
    tracker.complete_task(task_id, "segmented")
    tracker.fail_workflow(run_id, "later step failed")
    assert tracker.get_task(task_id).job_ids == ("98765",)


def test_adding_a_task_saves_task_and_run_in_one_transaction(tracker, database_url, run_id):
    task_id = tracker.add_task_to_workflow(run_id, "sort", None, None, None)
    run_events = query(
        database_url,
        "SELECT xmin::text FROM appliance_events WHERE originator_id = %s AND originator_version = 2",
        str(run_id),
    )
    task_events = query(
        database_url, "SELECT xmin::text FROM appliance_events WHERE originator_id = %s", str(task_id),
    )
    assert run_events == task_events
    assert tracker.get_workflow(run_id).task_count == 1


def test_event_times_given_by_a_source_are_kept(tracker, run_id):
    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    tracker.start_workflow(run_id, at=at)
    assert tracker.get_workflow(run_id).modified_on == at


def test_batch_applies_many_commands_in_one_transaction(tracker, database_url):
    with tracker.batch() as batch:
        run_id = batch.initiate_workflow("batch", "", "u", "g")
        batch.start_workflow(run_id)
        task_ids = [batch.add_task_to_workflow(run_id, f"job{i}", None, {}, {}) for i in range(5)]
        for task_id in task_ids:
            batch.start_task(task_id)
            batch.complete_task(task_id, "ok")
        batch.record_log(run_id, "five jobs done")
        batch.complete_workflow(run_id)
    assert len(transaction_ids(database_url, run_id, *task_ids)) == 1
    assert fresh_tracker(database_url).get_workflow(run_id).task_count == 5


def test_a_batch_that_raises_records_nothing(tracker, run_id):
    before = tracker.recorder.max_notification_id()
    with pytest.raises(UnknownIdError):
        with tracker.batch() as batch:
            batch.start_workflow(run_id)
            batch.start_task(uuid4())
    assert tracker.recorder.max_notification_id() == before
    assert tracker.get_workflow(run_id).status == RunStatus.CREATED


def test_log_lines_are_recorded_without_growing_the_run(tracker, run_id, task_id):
    version = tracker.get_workflow(run_id).version
    ids = [tracker.record_log(run_id, f"line {n}", level="debug", task_id=task_id) for n in range(50)]
    assert len(set(ids)) == 50
    assert tracker.get_workflow(run_id).version == version
    stored = [tracker.repository.get(i) for i in ids[-2:]]
    assert [(s.message, s.level, s.task_id) for s in stored] == [("line 48", "DEBUG", task_id), ("line 49", "DEBUG", task_id)]


def cached(tracker, aggregate_id) -> bool:
    try:
        tracker.repository.cache.get(aggregate_id)
    except KeyError:
        return False
    return True


def test_log_lines_stay_out_of_the_aggregate_cache(tracker, run_id, task_id):
    """The cache is capped by count: a line of a million characters must not push out runs and tasks."""
    line_id = tracker.record_log(run_id, "x" * 1_000_000, task_id=task_id)
    with tracker.batch() as batch:
        other_line = batch.record_log(run_id, "in a batch")
        batch.start_task(task_id)
    assert not cached(tracker, line_id) and not cached(tracker, other_line)
    assert cached(tracker, run_id) and cached(tracker, task_id)
    assert len(tracker.repository.get(line_id).message) == 1_000_000  # stored all the same


def test_log_line_of_a_task_of_another_run_is_refused(tracker, task_id):
    other_run = tracker.initiate_workflow("other", "", None, None)
    with pytest.raises(InvalidArgumentError, match="belongs to run"):
        tracker.record_log(other_run, "hello", task_id=task_id)


def test_optimistic_concurrency_race_between_two_trackers(database_url, task_id):
    first, second = fresh_tracker(database_url), fresh_tracker(database_url)
    first.get_task(task_id), second.get_task(task_id)  # both cache version 1
    first.update_task_progress(task_id, "10%")
    second.update_task_progress(task_id, "20%")  # stale cache: conflict, then replayed
    assert (first.conflicts_retried, second.conflicts_retried) == (0, 1)
    task = fresh_tracker(database_url).get_task(task_id)
    assert (task.version, task.progress) == (3, "20%")


def add_tasks_at_once(database_url, run_id, *, writers: int, tasks: int, **settings) -> tuple[list, list]:
    """`writers` trackers (each with its own cache, as processes have) add `tasks` tasks each to one run."""
    trackers = [fresh_tracker(database_url, **settings) for _ in range(writers)]
    errors = []
    start = threading.Barrier(writers)

    def add_tasks(tracker):
        try:
            start.wait(timeout=30)
            for n in range(tasks):
                tracker.add_task_to_workflow(run_id, f"task{n}", None, {}, {})
        except Exception as error:  # reported by the caller, with the thread's context lost otherwise
            errors.append(error)

    threads = [threading.Thread(target=add_tasks, args=(t,)) for t in trackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    for tracker in trackers:
        tracker.close()
    return trackers, errors


def test_concurrent_writers_on_one_run_lose_no_update(database_url, run_id):
    trackers, errors = add_tasks_at_once(database_url, run_id, writers=4, tasks=25, tracker_max_retries=50)
    assert errors == []
    assert sum(t.conflicts_retried for t in trackers) > 0  # they did race
    run = fresh_tracker(database_url).get_workflow(run_id)
    assert (run.task_count, run.version) == (100, 101)


def test_concurrent_writers_on_one_run_succeed_with_the_default_retries(database_url, run_id):
    trackers, errors = add_tasks_at_once(database_url, run_id, writers=4, tasks=25)
    assert trackers[0].settings.tracker_max_retries == 5  # the default
    assert errors == []
    assert sum(t.conflicts_given_up for t in trackers) == 0
    run = fresh_tracker(database_url).get_workflow(run_id)
    assert (run.task_count, run.version) == (100, 101)
    stored = query(database_url, "SELECT count(*) FROM appliance_events WHERE topic LIKE '%%Task.Created'")
    assert stored == [(100,)]


def test_retries_are_bounded_with_a_clear_error(database_url, task_id):
    stale = fresh_tracker(database_url, tracker_max_retries=0)
    stale.get_task(task_id)
    fresh_tracker(database_url).start_task(task_id)
    with pytest.raises(ConcurrencyError, match="gave up after 1 attempts.*nothing of this batch was recorded"):
        stale.update_task_progress(task_id, "1%")
    assert (stale.conflicts_retried, stale.conflicts_given_up) == (0, 1)


def test_the_last_replay_holds_the_write_lock_and_succeeds(database_url, task_id):
    stale = fresh_tracker(database_url, tracker_max_retries=1)  # its one replay is the last
    stale.get_task(task_id)
    fresh_tracker(database_url).start_task(task_id)
    stale.update_task_progress(task_id, "1%")
    assert (stale.conflicts_retried, stale.conflicts_given_up) == (1, 0)
    task = fresh_tracker(database_url).get_task(task_id)
    assert (task.version, task.lifecycle_status, task.progress) == (3, TaskStatus.RUNNING, "1%")


def test_no_replay_after_the_last_attempt(database_url, run_id):
    """A replay would meet the task the other writer stored and say its id is taken: the error is the conflict."""
    stale, other = fresh_tracker(database_url, tracker_max_retries=0), fresh_tracker(database_url)
    stale.get_workflow(run_id)
    task_id = other.add_task_to_workflow(run_id, "first", None, {}, {})
    with pytest.raises(ConcurrencyError):
        stale.add_task_to_workflow(run_id, "same id", None, {}, {}, task_id=task_id)
    assert stale.conflicts_retried == 0
    assert fresh_tracker(database_url).get_workflow(run_id).task_count == 1


def test_a_retried_batch_reuses_its_new_ids(database_url, run_id):
    stale, other = fresh_tracker(database_url), fresh_tracker(database_url)
    stale.get_workflow(run_id)
    other.start_workflow(run_id)
    task_id = stale.add_task_to_workflow(run_id, "late", None, {}, {})
    assert stale.conflicts_retried == 1
    assert fresh_tracker(database_url).get_task(task_id).run_id == run_id


def test_upcaster_rehydrates_an_old_version_1_event(tracker, database_url):
    run_id = uuid4()
    old_state = (
        '{"timestamp":{"_type_":"datetime_iso","_data_":"2023-01-01T00:00:00+00:00"},'
        '"originator_topic":"appliance.domain:WorkflowRun","name":"legacy","description":"from v1",'
        '"user":"carol","group":"omero"}'
    )
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO appliance_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, 'appliance.domain:WorkflowRun.Initiated', %s)",
            (str(run_id), old_state.encode()),
        )
    run = tracker.get_workflow(run_id)
    assert (run.name, run.user, run.source) == ("legacy", "carol", None)
    initiated = tracker.events.get(run_id)
    assert next(iter(initiated)).params == {}
    assert WorkflowRun.Initiated.class_version == 2


def test_unknown_ids_give_a_clear_error(tracker, run_id, task_id):
    missing = uuid4()
    with pytest.raises(UnknownIdError, match=str(missing)):
        tracker.start_workflow(missing)
    with pytest.raises(UnknownIdError, match="no workflow run has the id"):
        tracker.start_workflow(task_id)
    with pytest.raises(UnknownIdError, match="no task has the id"):
        tracker.start_task(run_id)
    with pytest.raises(UnknownIdError):
        tracker.add_task_to_workflow(missing, "x", None, {}, {})


FAR_EAST = timezone(timedelta(hours=20))  # Python takes it, PostgreSQL does not


# Every public command has at least one bad argument here, by case id: the command's name, what is bad.
# t: the tracker, r: a run's id, k: a task's id of that run. Each error message starts with the argument's name.
BAD_CALLS = [
    ("initiate_workflow empty name",
     lambda t, r, k: t.initiate_workflow("", "", None, None),
     "name: must not be empty"),
    ("initiate_workflow name not str",
     lambda t, r, k: t.initiate_workflow(42, "", None, None),
     "name: must be a string"),
    ("initiate_workflow long name",
     lambda t, r, k: t.initiate_workflow("n" * 2000, "", None, None),
     "name: is 2000"),
    ("initiate_workflow description",
     lambda t, r, k: t.initiate_workflow("n", 7.5, None, None),
     "description: must be a string"),
    ("initiate_workflow user",
     lambda t, r, k: t.initiate_workflow("n", "", ["alice"], None),
     "user: must be a string"),
    ("initiate_workflow group",
     lambda t, r, k: t.initiate_workflow("n", "", None, 3.0),
     "group: must be a string"),
    ("initiate_workflow group beyond 64 bits",
     lambda t, r, k: t.initiate_workflow("n", "", None, 2**64),
     "group: must lie between"),
    ("initiate_workflow source",
     lambda t, r, k: t.initiate_workflow("n", "", None, None, source=1),
     "source: must be a string"),
    ("initiate_workflow params list",
     lambda t, r, k: t.initiate_workflow("n", "", None, None, params=[1]),
     "params: must be a dict"),
    ("initiate_workflow params str",
     lambda t, r, k: t.initiate_workflow("n", "", None, None, params="a=1"),
     "params: must be a dict"),
    ("initiate_workflow workflow_id",
     lambda t, r, k: t.initiate_workflow("n", "", None, None, workflow_id="x"),
     "workflow_id: must be a UUID"),
    ("add_task_to_workflow input_data not JSON",
     lambda t, r, k: t.add_task_to_workflow(r, "x", None, {"when": object()}, {}),
     "input_data: cannot be stored"),
    ("add_task_to_workflow input_data NUL",
     lambda t, r, k: t.add_task_to_workflow(r, "x", None, {"nul": "a\x00b"}, {}),
     "input_data: must not contain NUL"),
    ("add_task_to_workflow input_data NaN",
     lambda t, r, k: t.add_task_to_workflow(r, "x", None, {"score": float("nan")}, {}),
     "input_data: must not contain NaN or Infinity"),
    ("add_task_to_workflow input_data set",
     lambda t, r, k: t.add_task_to_workflow(r, "n", "v", {1, 2}, {}),
     "input_data: cannot be stored"),
    ("add_task_to_workflow kwargs str",
     lambda t, r, k: t.add_task_to_workflow(r, "n", "v", {}, "notadict"),
     "kwargs: must be a dict"),
    ("add_task_to_workflow kwargs Infinity",
     lambda t, r, k: t.add_task_to_workflow(r, "n", "v", {}, {"x": float("-inf")}),
     "kwargs: must not contain NaN"),
    ("add_task_to_workflow task_name",
     lambda t, r, k: t.add_task_to_workflow(r, None, "v", {}, {}),
     "task_name: must be a string"),
    ("add_task_to_workflow task_version",
     lambda t, r, k: t.add_task_to_workflow(r, "n", 2, {}, {}),
     "task_version: must be a string"),
    ("add_task_to_workflow workflow_id",
     lambda t, r, k: t.add_task_to_workflow("run", "n", "v", {}, {}),
     "workflow_id: must be a UUID"),
    ("add_task_to_workflow task_id",
     lambda t, r, k: t.add_task_to_workflow(r, "n", "v", {}, {}, task_id=5),
     "task_id: must be a UUID"),
    ("start_workflow workflow_id",
     lambda t, r, k: t.start_workflow("not-a-uuid"),
     "workflow_id: must be a UUID"),
    ("start_workflow naive at",
     lambda t, r, k: t.start_workflow(r, at=datetime(2024, 1, 1)),
     "at: must be a timezone-aware"),
    ("complete_workflow at str",
     lambda t, r, k: t.complete_workflow(r, at="2024-01-01T00:00:00Z"),
     "at: must be a timezone-aware"),
    ("complete_workflow at before 1970",
     lambda t, r, k: t.complete_workflow(r, at=datetime(1969, 12, 31, tzinfo=FAR_EAST)),
     "at: must lie between 1970-01-01 and one day after now"),
    ("complete_workflow at in 9999",
     lambda t, r, k: t.complete_workflow(r, at=datetime(9999, 1, 1, tzinfo=timezone.utc)),
     "at: must lie between 1970-01-01 and one day after now"),
    ("fail_workflow error_message",
     lambda t, r, k: t.fail_workflow(r, None),
     "error_message: must be a string"),
    ("cancel_workflow reason",
     lambda t, r, k: t.cancel_workflow(r, 5),
     "reason: must be a string"),
       ("update_workflow_progress done > total",
     lambda t, r, k: t.update_workflow_progress(r, 5, 3),
     "done: must not exceed total (5 > 3)"),
    ("update_workflow_progress negative done",
     lambda t, r, k: t.update_workflow_progress(r, -1, 3),
     "done: must not be negative"),
    ("update_workflow_progress negative total",
     lambda t, r, k: t.update_workflow_progress(r, 0, -2),
     "total: must not be negative"),
    ("update_workflow_progress float done",
     lambda t, r, k: t.update_workflow_progress(r, 1.0, 3),
     "done: must be a whole number"),
    ("update_workflow_progress bool total",
     lambda t, r, k: t.update_workflow_progress(r, 0, True),
     "total: must be a whole number"),
    ("update_workflow_progress str total",
     lambda t, r, k: t.update_workflow_progress(r, 0, "3"),
     "total: must be a whole number"),
 ("record_heartbeat workflow_id",
     lambda t, r, k: t.record_heartbeat(12),
     "workflow_id: must be a UUID"),
    ("start_task task_id",
     lambda t, r, k: t.start_task("nope"),
     "task_id: must be a UUID"),
    ("complete_task message",
     lambda t, r, k: t.complete_task(k, 3),
     "message: must be a string"),
    ("fail_task error_message",
     lambda t, r, k: t.fail_task(k, None),
     "error_message: must be a string"),
    ("add_job_id float",
     lambda t, r, k: t.add_job_id(k, 1.5),
     "slurm_job_id: must be a string"),
    ("add_job_id bool",
     lambda t, r, k: t.add_job_id(k, True),
     "slurm_job_id: must be a string"),
    ("add_result",
     lambda t, r, k: t.add_result(k, {"x": object()}),
     "result: cannot be stored"),
    ("update_task_status",
     lambda t, r, k: t.update_task_status(k, None),
     "status: must be a string"),
    ("update_task_progress bool",
     lambda t, r, k: t.update_task_progress(k, True),
     "progress: must be a string or a number"),
    ("update_task_progress inf",
     lambda t, r, k: t.update_task_progress(k, float("inf")),
     "progress: must be a finite"),
    ("record_log level",
     lambda t, r, k: t.record_log(r, "x", level="LOUD"),
     "level: must be one of"),
    ("record_log message",
     lambda t, r, k: t.record_log(r, b"bytes"),
     "message: must be a string"),
    ("record_log task_id",
     lambda t, r, k: t.record_log(r, "x", task_id="zzz"),
     "task_id: must be a UUID"),
    ("record_log log_id",
     lambda t, r, k: t.record_log(r, "x", log_id="zzz"),
     "log_id: must be a UUID"),
    ("plan_workflow negative",
     lambda t, r, k: t.plan_workflow(r, {"align": -1}, 1),
     "jobs['align']: must not be negative"),
    ("plan_workflow jobs list",
     lambda t, r, k: t.plan_workflow(r, ["align"], 1),
     "jobs: must be a dict"),
    ("plan_workflow total",
     lambda t, r, k: t.plan_workflow(r, {}, "2"),
     "total: must be a whole number"),
    ("record_rule_graph unknown rule",
     lambda t, r, k: t.record_rule_graph(r, ["a"], [["a", "b"]]),
     "edges: 'b' is not one of the rules"),
    ("record_rule_graph edge not a pair",
     lambda t, r, k: t.record_rule_graph(r, ["a"], [["a"]]),
     "edges[0]: must be a [source, target] pair"),
    ("record_rule_graph rules str",
     lambda t, r, k: t.record_rule_graph(r, "a", []),
     "rules: must be a list"),
    ("record_task_details inputs str",
     lambda t, r, k: t.record_task_details(k, inputs="a.fq"),
     "inputs: must be a list"),
    ("record_task_details surrogate",
     lambda t, r, k: t.record_task_details(k, inputs=["sample_\udcff.fastq"]),
     "inputs[0]: is not valid Unicode"),
    ("record_task_details long path",
     lambda t, r, k: t.record_task_details(k, benchmark="b" * 5000),
     "benchmark: is 5000 characters long"),
    ("record_task_details host",
     lambda t, r, k: t.record_task_details(k, host=7),
     "host: must be a string"),
    ("record_task_resources text",
     lambda t, r, k: t.record_task_resources(k, {"max_rss_mb": "1 GB"}),
     "usage['max_rss_mb']: must be a number"),
    ("record_task_resources nan",
     lambda t, r, k: t.record_task_resources(k, {"wall_seconds": float("nan")}),
     "usage['wall_seconds']: must be a finite number"),
]


@pytest.mark.parametrize("call, message", [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS])
def test_bad_arguments_are_refused_and_record_nothing(tracker, run_id, task_id, call, message):
    before = tracker.recorder.max_notification_id()
    with pytest.raises(InvalidArgumentError) as caught:
        call(tracker, run_id, task_id)
    assert str(caught.value).startswith(message)
    assert tracker.recorder.max_notification_id() == before


def test_every_public_command_has_a_bad_argument_case():
    commands = {name for name, method in vars(WorkflowTracker).items()
                if getattr(method, "__wrapped__", "not a command") is getattr(Batch, name, None)}
    assert "add_job_id" in commands
    assert commands - {case[0].split()[0] for case in BAD_CALLS} == set()


def test_a_time_with_an_offset_postgresql_refuses_is_stored_as_the_same_instant_in_utc(tracker, run_id):
    tracker.start_workflow(run_id, at=datetime(2024, 1, 1, tzinfo=FAR_EAST))
    started = tracker.events.get(run_id, gt=1)
    [event] = list(started)
    assert event.timestamp == datetime(2023, 12, 31, 4, 0, tzinfo=timezone.utc)
    assert event.timestamp.utcoffset() == timedelta(0)


def test_nan_as_text_is_fine(tracker, run_id):
    task_id = tracker.add_task_to_workflow(run_id, "x", None, {"note": "NaN and Infinity"}, {})
    assert tracker.get_task(task_id).input_data == {"note": "NaN and Infinity"}


def test_a_taken_id_is_refused(tracker, run_id):
    with pytest.raises(DuplicateIdError, match=str(run_id)):
        tracker.initiate_workflow("again", "", None, None, workflow_id=run_id)


def test_no_argument_tracker_reads_the_environment(monkeypatch, database_url, run_id):
    monkeypatch.setenv("DATABASE_URL", database_url)
    tracker = WorkflowTracker()
    try:
        assert tracker.get_workflow(run_id).name == "align-reads"
    finally:
        tracker.close()


def test_notification_log_is_ordered_and_gapless(tracker, run_id, task_id):
    notifications = tracker.notification_log.select(start=1, limit=10)
    assert [n.id for n in notifications] == [1, 2, 3]
    assert [n.originator_id for n in notifications] == [run_id, run_id, task_id]
    topics = [n.topic.split(":")[1] for n in notifications]
    assert topics == ["WorkflowRun.Initiated", "WorkflowRun.TaskAdded", "Task.Created"]


def test_commands_of_client_events_apply_once(tracker, run_id):
    first, second = uuid4(), uuid4()
    start = (first, lambda batch: batch.start_workflow(run_id))
    log = (second, lambda batch: batch.record_log(run_id, "second"))
    with tracker.batch() as batch:
        assert batch.apply_once([start]) == set()
    with tracker.batch() as batch:
        assert batch.apply_once([start, log]) == {first}
    assert tracker.get_workflow(run_id).version == 2  # started once
    assert tracker.recorder.select_receipts([first, second]) == {first, second}


def test_a_batch_that_raises_stores_no_receipt(tracker, run_id):
    event_id = uuid4()
    with pytest.raises(UnknownIdError):
        with tracker.batch() as batch:
            batch.apply_once([(event_id, lambda b: b.start_task(uuid4()))])
    assert tracker.recorder.select_receipts([event_id]) == set()


def test_a_resend_racing_the_original_is_applied_once(database_url, run_id):
    event_id = uuid4()
    log_once = [(event_id, lambda batch: batch.record_log(run_id, "once"))]
    slow, fast = fresh_tracker(database_url), fresh_tracker(database_url)
    with slow.batch() as batch:
        assert batch.apply_once(log_once) == set()  # not applied yet when checked...
        with fast.batch() as other:  # ...but the resend commits first
            other.apply_once(log_once)
    assert slow.conflicts_retried == 1
    assert len(query(database_url, "SELECT 1 FROM appliance_events WHERE topic LIKE '%%LogLine%%'")) == 1


def test_a_resend_of_a_new_run_racing_its_original_is_a_duplicate_not_an_error(database_url):
    """Found by bench/soak.py: the original, cut off by the web's deadline, committed when the server thawed,
    while its resend was between reading the receipts and saving; the resend must then skip it all."""
    run_id, event_id = uuid4(), uuid4()
    start_run = [(event_id, lambda batch: batch.initiate_workflow("raced", "", "u", "g", workflow_id=run_id))]
    resend, original = fresh_tracker(database_url), fresh_tracker(database_url)
    with resend.batch() as batch:
        assert batch.apply_once(start_run) == set()  # not applied yet when checked...
        with original.batch() as other:  # ...but the original commits first
            other.apply_once(start_run)
    assert batch.receipts == ()  # nothing of it applied by the resend
    assert resend.conflicts_retried == 1
    assert resend.get_workflow(run_id).name == "raced"
    assert len(query(database_url, "SELECT 1 FROM appliance_events WHERE topic LIKE '%%Initiated%%'")) == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def refusal(url: str) -> DatabaseUnavailableError:
    with pytest.raises(DatabaseUnavailableError) as caught:
        WorkflowTracker(database_url=url)
    return caught.value


def test_an_unreachable_database_is_a_tracker_error_that_shows_no_password():
    port, password = closed_port(), "pw-not-to-be-shown-7f3a"
    error = refusal(f"postgresql://alice:{password}@127.0.0.1:{port}/tracker")
    assert isinstance(error, TrackerError)
    assert str(error) == (f"cannot use the database at postgresql+psycopg2://alice:***@127.0.0.1:{port}/tracker: "
                          f'connection to server at "127.0.0.1", port {port} failed: Connection refused')
    assert password not in "".join(traceback.format_exception(error))
    assert isinstance(error, psycopg2.OperationalError)  # what the projector and the web wait and retry on


def test_a_wrong_password_is_a_tracker_error_that_shows_neither_password(database_url):
    wrong = "wrong-pw-not-to-be-shown-9c1d"
    error = refusal(make_url(database_url).set(password=wrong).render_as_string(hide_password=False))
    assert "password authentication failed" in str(error)
    shown = "".join(traceback.format_exception(error))
    assert wrong not in shown and make_url(database_url).password not in shown
