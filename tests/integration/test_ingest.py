"""Source-neutral ingest events applied through the tracker (no HTTP here)."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from appliance.ingest import IngestError, apply_batch, parse_batch
from appliance.projection import Projector
from tests.support.sql import query


def event(type_, **fields):
    return {"id": str(uuid4()), "type": type_, **fields}


def snakemake_run(run_id, task_id):
    return [
        event("run_started", run_id=run_id, name="rnaseq", user="alice", group="genomics", source="snakemake",
              time="2024-05-01T12:00:00Z"),
        event("task_created", run_id=run_id, task_id=task_id, name="align", input={"reads": "a.fq"},
              params={"threads": 4}),
        event("task_started", task_id=task_id),
        event("job_id", task_id=task_id, job_id=4711),
        event("task_status", task_id=task_id, status="RUNNING"),
        event("task_progress", task_id=task_id, progress=0.5),
        event("log", run_id=run_id, task_id=task_id, level="warning", message="slow disk"),
        event("task_result", task_id=task_id, result={"bam": "a.bam"}),
        event("task_finished", task_id=task_id, message="ok"),
        event("run_finished", run_id=run_id, time="2024-05-01T12:30:00+00:00"),
    ]


def ingest(tracker, events):
    return apply_batch(tracker, parse_batch({"events": events}))


def test_a_whole_run_arrives_as_one_batch(tracker):
    run_id, task_id = str(uuid4()), str(uuid4())
    result = ingest(tracker, snakemake_run(run_id, task_id))
    assert (result.applied, result.duplicates) == (10, 0)
    run, task = tracker.get_workflow(run_id), tracker.get_task(task_id)
    assert (run.name, run.user, run.source, run.status) == ("rnaseq", "alice", "snakemake", "completed")
    assert run.created_on == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert (task.task_name, task.job_ids, task.progress, task.lifecycle_status) == ("align", (4711,), 0.5, "completed")


def test_resending_a_batch_changes_nothing(tracker):
    events = snakemake_run(str(uuid4()), str(uuid4()))
    ingest(tracker, events)
    position = tracker.recorder.max_notification_id()
    result = ingest(tracker, events)
    assert (result.applied, result.duplicates) == (0, 10)
    assert tracker.recorder.max_notification_id() == position


def test_a_partly_resent_batch_applies_only_what_is_new(tracker):
    run_id = str(uuid4())
    first = [event("run_created", run_id=run_id, name="biomero")]
    ingest(tracker, first)
    result = ingest(tracker, first + [event("run_started", run_id=run_id)])
    assert (result.applied, result.duplicates) == (1, 1)
    assert tracker.get_workflow(run_id).status == "running"


def test_every_bad_event_is_named_and_nothing_is_stored(tracker):
    run_id = str(uuid4())
    events = [
        event("run_created", run_id=run_id, name="ok"),
        event("task_started", task_id="not-a-uuid"),
        {"id": str(uuid4()), "type": "teleported"},
        event("log", run_id=run_id, message="x", colour="red"),
        event("run_finished", run_id=run_id, time="yesterday"),
        event("run_finished", run_id=run_id, time="2024-05-01T12:00:00"),
        "not an object",
    ]
    with pytest.raises(IngestError) as caught:
        parse_batch({"events": events})
    problems = {p["index"]: p["error"] for p in caught.value.problems}
    assert problems == {
        1: "task_id: must be a UUID",
        2: problems[2],
        3: "unknown field(s) for log: colour",
        4: "time: must be an ISO 8601 time such as 2024-05-01T12:00:00Z",
        5: "time: must name its time zone (end it with Z or +00:00)",
        6: "an event must be a JSON object",
    }
    assert problems[2].startswith("type: must be one of")
    assert tracker.recorder.max_notification_id() is None


def test_a_task_of_an_unknown_run_fails_the_whole_batch(tracker):
    run_id = str(uuid4())
    events = [event("run_created", run_id=run_id, name="fine"),
              event("task_created", run_id=str(uuid4()), task_id=str(uuid4()), name="orphan")]
    with pytest.raises(IngestError) as caught:
        ingest(tracker, events)
    [problem] = caught.value.problems
    assert problem["index"] == 1 and "no workflow run" in problem["error"]
    assert tracker.recorder.max_notification_id() is None


def test_every_event_the_tracker_refuses_is_named(tracker):
    run_id, other_run, other_task = str(uuid4()), str(uuid4()), str(uuid4())
    ingest(tracker, [event("run_created", run_id=other_run, name="other"),
                     event("task_created", run_id=other_run, task_id=other_task, name="theirs")])
    before = tracker.recorder.max_notification_id()
    orphan, lost_task = str(uuid4()), str(uuid4())
    events = [
        event("run_created", run_id=run_id, name="fine"),
        event("task_created", run_id=orphan, task_id=lost_task, name="orphan"),
        event("log", run_id=run_id, task_id=other_task, message="wrong run"),
        event("run_started", run_id=run_id),
        event("task_started", task_id=lost_task),  # refused because its task was
    ]
    with pytest.raises(IngestError) as caught:
        ingest(tracker, events)
    assert [(p["index"], p["id"], p["type"]) for p in caught.value.problems] == [
        (1, events[1]["id"], "task_created"), (2, events[2]["id"], "log"), (4, events[4]["id"], "task_started")]
    errors = [p["error"] for p in caught.value.problems]
    assert orphan in errors[0] and "belongs to run" in errors[1] and lost_task in errors[2]
    assert tracker.recorder.max_notification_id() == before
    assert tracker.recorder.select_receipts([e["id"] for e in events]) == set()


def test_duplicate_ids_inside_one_batch_are_refused(tracker):
    first = event("run_created", run_id=str(uuid4()), name="a")
    again = {**first, "run_id": str(uuid4())}
    with pytest.raises(IngestError) as caught:
        parse_batch({"events": [first, again]})
    assert caught.value.problems[0]["index"] == 1
    assert "used by an earlier event" in caught.value.problems[0]["error"]


@pytest.mark.parametrize("body", [[], {"events": {}}, {"events": [], "extra": 1}, "events", None])
def test_a_malformed_body_is_refused(body):
    with pytest.raises(IngestError):
        parse_batch(body)


def test_nul_bytes_and_odd_unicode(tracker):
    run_id = str(uuid4())
    ingest(tracker, [event("run_created", run_id=run_id, name="ünïcødé ✓ \u202e")])
    assert tracker.get_workflow(run_id).name == "ünïcødé ✓ \u202e"
    with pytest.raises(IngestError, match="bad event"):
        ingest(tracker, [event("log", run_id=run_id, message="a\x00b")])


def test_times_with_any_offset_python_takes_are_stored_in_utc_and_projected(tracker, database_url):
    """PostgreSQL refuses offsets beyond 15:59: stored as given, +20:00 stopped the projector for good."""
    far_east, far_west, next_one = str(uuid4()), str(uuid4()), str(uuid4())
    ingest(tracker, [event("run_created", run_id=far_east, name="a", time="2024-01-01T00:00:00+20:00"),
                     event("run_created", run_id=far_west, name="b", time="2024-01-01T00:00:00+14:00")])
    run = tracker.get_workflow(far_west)
    assert run.created_on == datetime(2023, 12, 31, 10, 0, tzinfo=timezone.utc)
    assert run.created_on.utcoffset() == timedelta(0)
    assert Projector(tracker).catch_up() == 2
    ingest(tracker, [event("run_created", run_id=next_one, name="c", time="2024-01-01T00:00:00Z")])
    assert Projector(tracker).catch_up() == 1  # the projector goes on past them
    created = dict(query(database_url, "SELECT id::text, created_at FROM workflow_runs"))
    assert created == {far_east: datetime(2023, 12, 31, 4, 0, tzinfo=timezone.utc),
                       far_west: datetime(2023, 12, 31, 10, 0, tzinfo=timezone.utc),
                       next_one: datetime(2024, 1, 1, tzinfo=timezone.utc)}


@pytest.mark.parametrize("time", [
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: Python cannot even convert it
    "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
    "9999-01-01T00:00:00Z",  # would keep its run from ever becoming stale
    (datetime.now(timezone.utc) + timedelta(days=2)).isoformat(),
    "1969-12-31T23:59:59Z",
])
def test_times_outside_the_window_are_refused_by_name(tracker, time):
    bad = event("run_created", run_id=str(uuid4()), name="x", time=time)
    with pytest.raises(IngestError) as caught:
        parse_batch({"events": [event("run_created", run_id=str(uuid4()), name="ok"), bad]})
    assert caught.value.problems == [{"index": 1, "id": bad["id"], "type": "run_created",
                                      "error": "time: must lie between 1970-01-01 and one day after now (UTC)"}]
    assert tracker.recorder.max_notification_id() is None


def test_run_progress_reports_done_of_total_steps(tracker):
    run_id = str(uuid4())
    result = ingest(tracker, [event("run_started", run_id=run_id, name="rnaseq"),
                              event("run_progress", run_id=run_id, done=0, total=40),
                              event("run_progress", run_id=run_id, done=7, total=40, time="2024-05-01T12:05:00Z")])
    assert result.applied == 3
    run = tracker.get_workflow(run_id)
    assert (run.steps_done, run.steps_total) == (7, 40)
    assert run.modified_on == datetime(2024, 5, 1, 12, 5, tzinfo=timezone.utc)


def test_bad_run_progress_events_are_each_named(tracker):
    run_id = str(uuid4())
    events = [
        event("run_progress", run_id=run_id, done=5, total=3),
        event("run_progress", run_id=run_id, done=-1, total=3),
        event("run_progress", run_id=run_id, done=1, total=2.5),
        event("run_progress", run_id=run_id, done=True, total=3),
        event("run_progress", run_id=run_id, done=1),
        event("run_progress", run_id="run-1", done=1, total=3),
        event("run_progress", run_id=run_id, done=1, total=3, percent=33),
    ]
    with pytest.raises(IngestError) as caught:
        parse_batch({"events": events})
    assert [(p["index"], p["id"], p["type"], p["error"]) for p in caught.value.problems] == [
        (0, events[0]["id"], "run_progress", "done: must not exceed total (5 > 3)"),
        (1, events[1]["id"], "run_progress", "done: must not be negative"),
        (2, events[2]["id"], "run_progress", "total: must be a whole number, not float"),
        (3, events[3]["id"], "run_progress", "done: must be a whole number, not bool"),
        (4, events[4]["id"], "run_progress", "total: is required"),
        (5, events[5]["id"], "run_progress", "run_id: must be a UUID"),
        (6, events[6]["id"], "run_progress", "unknown field(s) for run_progress: percent"),
    ]
    assert tracker.recorder.max_notification_id() is None


def test_run_progress_of_an_unknown_run_is_refused(tracker):
    bad = event("run_progress", run_id=str(uuid4()), done=1, total=2)
    with pytest.raises(IngestError) as caught:
        ingest(tracker, [bad])
    assert caught.value.problems == [{"index": 0, "id": bad["id"], "type": "run_progress",
                                      "error": f"no workflow run or task has the id {bad['run_id']}"}]


@pytest.mark.parametrize("ending", [event("run_finished"), event("run_failed", error="first"),
                                    event("run_cancelled", reason="first")], ids=lambda e: e["type"])
def test_an_ended_run_is_not_reopened_by_late_events(tracker, database_url, ending):
    """Today's bug: a completed run took run_started then run_failed and ended failed."""
    run_id, task_id = str(uuid4()), str(uuid4())
    ingest(tracker, [event("run_started", run_id=run_id, name="r", time="2024-05-01T12:00:00Z"),
                     event("task_created", run_id=run_id, task_id=task_id, name="t"),
                     {**ending, "id": str(uuid4()), "run_id": run_id, "time": "2024-05-01T12:30:00Z"}])
    Projector(tracker).catch_up()
    ended = query(database_url, "SELECT status, finished_at, error_message FROM workflow_runs")
    late = [event("run_started", run_id=run_id, time="2024-05-01T13:00:00Z"),
            event("run_failed", run_id=run_id, error="late", time="2024-05-01T13:01:00Z"),
            event("run_finished", run_id=run_id),
            event("run_cancelled", run_id=run_id, reason="late")]
    assert ingest(tracker, late).applied == 4  # accepted (a resend is a duplicate), and changes nothing
    assert ingest(tracker, late).duplicates == 4
    assert tracker.get_workflow(run_id).status == ending["type"].removeprefix("run_").replace("finished", "completed")
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT status, finished_at, error_message FROM workflow_runs") == ended
    # What a late event may still change: its tasks, progress, log lines and last event time.
    ingest(tracker, [event("task_started", task_id=task_id, time="2024-05-01T13:05:00Z"),
                     event("task_finished", task_id=task_id, time="2024-05-01T13:06:00Z"),
                     event("run_progress", run_id=run_id, done=1, total=1),
                     event("log", run_id=run_id, message="late line")])
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT status, finished_at, error_message FROM workflow_runs") == ended
    assert query(database_url, "SELECT tasks_completed, steps_done FROM workflow_runs") == [(1, 1)]
    assert query(database_url, "SELECT message FROM log_entries") == [("late line",)]
