"""The event recorder (appliance/eventstore.py) against a real PostgreSQL: the log's order under concurrent writers."""

import threading

import pytest
from eventsourcing.persistence import ProgrammingError

from appliance.config import Settings, parse_database_url
from appliance.tracker import WorkflowTracker
from tests.support.sql import query
from tests.support.waiting import wait_for

WRITERS = 3
COMMANDS = 40  # per writer


def fresh_tracker(database_url) -> WorkflowTracker:
    return WorkflowTracker(Settings(database_url=parse_database_url(database_url)))


def write(tracker, run_id, errors: list) -> None:
    """Commands of 1 or 3 events: a log line, or a task added (task and run) and started."""
    try:
        for n in range(COMMANDS):
            if n % 2:
                tracker.record_log(run_id, f"line {n}")
            else:
                with tracker.batch() as batch:
                    task_id = batch.add_task_to_workflow(run_id, f"job {n}", None, None, None)
                    batch.start_task(task_id)
    except Exception as error:  # reported by the test, with the thread's context lost otherwise
        errors.append(error)


def test_a_reader_never_sees_a_gap_nor_an_id_arriving_late(database_url):
    """Polled while 3 writers append, the log grows only at its end: every id once, in order, none skipped."""
    writers = [fresh_tracker(database_url) for _ in range(WRITERS)]
    runs = [w.initiate_workflow(f"run {i}", "", None, None) for i, w in enumerate(writers)]
    reader = fresh_tracker(database_url).recorder
    errors: list = []
    threads = [threading.Thread(target=write, args=(w, r, errors)) for w, r in zip(writers, runs)]
    seen: list[int] = []
    polls_that_saw_new_ids = 0

    def poll() -> None:
        nonlocal polls_that_saw_new_ids
        last = seen[-1] if seen else 0
        # Read again from a little before the end: an id committed late below it would show here.
        ids = [n.id for n in reader.select_notifications(start=max(1, last - 20), limit=10_000)]
        old, new = [i for i in ids if i <= last], [i for i in ids if i > last]
        assert old == seen[len(seen) - len(old):], f"ids {sorted(set(old) - set(seen))} appeared below {last}"
        assert new == list(range(last + 1, last + 1 + len(new))), f"a gap after {last}: {new[:10]}"
        seen.extend(new)
        polls_that_saw_new_ids += bool(new)

    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        poll()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    assert errors == []
    poll()
    stored = [row[0] for row in query(database_url, "SELECT id FROM appliance_events ORDER BY id")]
    assert seen == stored == list(range(1, len(stored) + 1))
    assert len(stored) == WRITERS * (1 + COMMANDS // 2 * 3 + COMMANDS // 2)
    assert polls_that_saw_new_ids > 1  # the reader did read while the writers wrote


@pytest.fixture
def log(tracker):
    """A log of 6 events: a run (1, 2: created, task added), its task (3), two log lines (4, 5), run started (6)."""
    run_id = tracker.initiate_workflow("r", "", None, None)
    tracker.add_task_to_workflow(run_id, "t", None, None, None)
    tracker.record_log(run_id, "one")
    tracker.record_log(run_id, "two")
    tracker.start_workflow(run_id)
    return tracker.recorder


def ids(notifications) -> list[int]:
    return [n.id for n in notifications]


def test_select_notifications_from_a_start_up_to_a_stop(log):
    assert ids(log.select_notifications(start=2, limit=10)) == [2, 3, 4, 5, 6]
    assert ids(log.select_notifications(start=2, limit=10, stop=4)) == [2, 3, 4]
    assert ids(log.select_notifications(start=2, limit=2, stop=5)) == [2, 3]
    assert ids(log.select_notifications(start=None, limit=3)) == [1, 2, 3]
    assert ids(log.select_notifications(start=7, limit=10)) == []


def test_select_notifications_after_a_start(log):
    assert ids(log.select_notifications(start=2, limit=10, inclusive_of_start=False)) == [3, 4, 5, 6]
    assert ids(log.select_notifications(start=2, limit=10, stop=4, inclusive_of_start=False)) == [3, 4]
    assert ids(log.select_notifications(start=6, limit=10, inclusive_of_start=False)) == []


def test_select_notifications_of_some_topics(log):
    log_lines = ["appliance.domain:LogLine.Recorded"]
    assert ids(log.select_notifications(start=1, limit=10, topics=log_lines)) == [4, 5]
    assert ids(log.select_notifications(start=5, limit=10, topics=log_lines, inclusive_of_start=False)) == []
    runs = ["appliance.domain:WorkflowRun.Initiated", "appliance.domain:WorkflowRun.Started"]
    assert ids(log.select_notifications(start=1, limit=10, topics=runs)) == [1, 6]
    assert ids(log.select_notifications(start=1, limit=1, topics=runs)) == [1]
    assert ids(log.select_notifications(start=1, limit=10, topics=runs, stop=5)) == [1]


def test_an_exclusive_block_holds_off_every_other_writer_until_it_ends(database_url, tracker):
    run_id = tracker.initiate_workflow("r", "", None, None)
    other = fresh_tracker(database_url)
    done = threading.Event()

    def append() -> None:
        other.record_log(run_id, "waited")
        done.set()

    with tracker.recorder.exclusive():
        before = tracker.recorder.max_notification_id()  # read in the block's transaction
        writer = threading.Thread(target=append)
        writer.start()
        wait_for(lambda: query(database_url, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                             "AND query LIKE '%%LOCK TABLE appliance_events%%'"),
                 timeout=10, message="the other writer to wait for the lock")
        assert not done.is_set()
        tracker.record_log(run_id, "first")
    writer.join(timeout=10)
    assert done.is_set()
    lines = query(database_url, "SELECT id FROM appliance_events WHERE topic LIKE '%%LogLine%%' ORDER BY id")
    assert lines == [(before + 1,), (before + 2,)]
    [(first_message,)] = query(database_url, "SELECT convert_from(state, 'UTF8')::json->>'message' "
                                             "FROM appliance_events WHERE id = %s", before + 1)
    assert first_message == "first"


def test_an_exclusive_block_that_raises_stores_nothing_and_frees_the_lock(database_url, tracker):
    run_id = tracker.initiate_workflow("r", "", None, None)
    before = tracker.recorder.max_notification_id()
    with pytest.raises(RuntimeError, match="changed my mind"):
        with tracker.recorder.exclusive():
            tracker.record_log(run_id, "never")
            raise RuntimeError("changed my mind")
    assert tracker.recorder.max_notification_id() == before
    fresh_tracker(database_url).record_log(run_id, "after")  # would wait 10 s and fail if the lock were held
    with pytest.raises(ProgrammingError, match="do not nest"):
        with tracker.recorder.exclusive(), tracker.recorder.exclusive():
            pass
