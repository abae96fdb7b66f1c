"""The monitor against a real PostgreSQL: claims, exactly once, webhooks, restarts."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest

from appliance.config import MonitorSettings, parse_database_url
from appliance.localpg import LocalPostgres
from appliance.monitor import Monitor, Webhook, delete_old_changes
from tests.schema import prepare_schema


def wait_for(condition, timeout=20.0, message="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.02)


def execute(database_url, sql, *params):
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def unprocessed(database_url):
    return execute(database_url, "SELECT count(*) FROM change_notifications WHERE NOT processed")[0][0]


class Recorder:
    """A custom handler that remembers what it was given."""

    def __init__(self):
        self.ids, self.lock = [], threading.Lock()

    def __call__(self, change):
        with self.lock:
            self.ids.append(change.id)


@pytest.fixture
def running():
    """Start monitors in threads; stop and join them at the end."""
    started = []

    def start(database_url, handlers, **settings):
        monitor = Monitor(parse_database_url(database_url), MonitorSettings(**{"poll_interval": 1, **settings}),
                          handlers=handlers)
        thread = threading.Thread(target=monitor.run, daemon=True)
        thread.start()
        started.append((monitor, thread))
        return monitor

    yield start
    for monitor, thread in started:
        monitor.stop()
        thread.join(timeout=10)


def test_a_change_made_while_the_monitor_was_down_is_handled_when_it_starts(database_url, running):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('while down')")
    recorder = Recorder()
    running(database_url, [recorder])
    wait_for(lambda: recorder.ids == [1], message="the change made before start")
    wait_for(lambda: unprocessed(database_url) == 0, message="the change marked processed")


def test_a_new_change_is_handled_as_it_arrives(database_url, running):
    recorder = Recorder()
    running(database_url, [recorder], poll_interval=60)  # no poll will come: only LISTEN can wake it
    # NOTIFY reaches only sessions already listening: the heartbeat comes after LISTEN.
    wait_for(lambda: execute(database_url, "SELECT count(*) FROM monitor_heartbeats")[0][0] == 1,
             message="the monitor listening")
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('live')")
    wait_for(lambda: len(recorder.ids) == 1, timeout=5, message="the notified change")


def test_two_monitors_handle_2000_changes_each_exactly_once(database_url, running):
    recorder = Recorder()
    running(database_url, [recorder])
    running(database_url, [recorder])
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'run ' || n FROM generate_series(1, 1000) n")
    execute(database_url, "UPDATE workflow_runs SET status = 'running'")
    wait_for(lambda: unprocessed(database_url) == 0, timeout=60, message="2000 changes handled")
    counts = Counter(recorder.ids)
    assert len(counts) == 2000 and max(counts.values()) == 1


class FlakyReceiver(BaseHTTPRequestHandler):
    """Fails the first two requests, then accepts; remembers the accepted bodies."""

    requests, accepted = 0, []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests += 1
        if type(self).requests <= 2:
            self.send_response(500)
        else:
            type(self).accepted.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_that_fails_twice_then_succeeds_gets_each_event_once(database_url, running):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = MonitorSettings(webhook_urls=(f"http://127.0.0.1:{server.server_port}/hook",))
        running(database_url, [Webhook(settings.webhook_urls[0], settings, sleep=lambda s: None)])
        execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'running')")
        execute(database_url, "UPDATE workflow_runs SET status = 'completed'")
        wait_for(lambda: unprocessed(database_url) == 0, message="both changes handled")
        assert FlakyReceiver.requests == 3  # only the change to "completed" passes the filter
        [delivered] = FlakyReceiver.accepted
        assert (delivered["operation"], delivered["new_values"]) == ("UPDATE", {"status": "completed"})
    finally:
        server.shutdown()


def test_a_failing_handler_is_recorded_and_never_blocks_the_rows_behind_it(database_url, running):
    def refuse_the_first(change):
        if change.id == 1:
            raise RuntimeError("receiver says no")

    recorder = Recorder()
    running(database_url, [refuse_the_first, recorder], max_attempts=3)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 3)")
    wait_for(lambda: unprocessed(database_url) == 0, message="all rows processed, the failing one given up")
    [(attempts, error)] = execute(database_url, "SELECT attempts, last_error FROM change_notifications WHERE id = 1")
    assert attempts == 3 and "receiver says no" in error
    assert sorted(set(recorder.ids)) == [1, 2, 3]


def test_a_database_restart_in_the_middle_of_a_stream_loses_nothing(running):
    server = LocalPostgres.temporary().start()
    try:
        url = server.url()
        prepare_schema(url)
        recorder = Recorder()
        running(url, [recorder])
        execute(url, "INSERT INTO workflow_runs (workflow_name) SELECT 'before' FROM generate_series(1, 50)")
        wait_for(lambda: len(recorder.ids) == 50, message="the first 50")
        server.stop(mode="immediate")
        server.start()
        execute(url, "INSERT INTO workflow_runs (workflow_name) SELECT 'after' FROM generate_series(1, 50)")
        wait_for(lambda: unprocessed(url) == 0 and len(set(recorder.ids)) == 100, timeout=30,
                 message="the 50 written after the restart")
    finally:
        server.destroy()


def test_retention_deletes_old_processed_changes_in_batches(database_url):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 2500)")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() - interval '8 days' "
                          "WHERE id <= 2200")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() WHERE id > 2400")
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    try:
        assert delete_old_changes(connection, days=7) == 2200
    finally:
        connection.close()
    assert execute(database_url, "SELECT count(*) FROM change_notifications")[0][0] == 300


def monitor_process(database_url, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "monitor"],
        env={**os.environ, "DATABASE_URL": database_url, "MONITOR_POLL_INTERVAL": "1", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_sigterm_stops_the_monitor_with_exit_0_and_it_logs_each_change(database_url):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('logged')")
    process = monitor_process(database_url)
    try:
        wait_for(lambda: unprocessed(database_url) == 0, message="the change handled by the process")
        wait_for(lambda: execute(database_url, "SELECT count(*) FROM monitor_heartbeats")[0][0] == 1,
                 message="a heartbeat")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    lines = [json.loads(line) for line in process.stdout.read().splitlines() if line.startswith("{")]
    assert [(line["table"], line["op"]) for line in lines] == [("workflow_runs", "INSERT")]


def test_disabled_monitoring_exits_0_at_once(database_url):
    process = monitor_process(database_url, ENABLE_DB_MONITORING="false")
    assert process.wait(timeout=10) == 0
    assert "disabled" in process.stdout.read()


def test_a_custom_handler_that_cannot_be_loaded_is_a_clear_error(database_url):
    process = monitor_process(database_url, MONITOR_HANDLERS="no.such.module:handler")
    assert process.wait(timeout=10) == 2
    assert "cannot load 'no.such.module:handler'" in process.stdout.read()


def test_a_handler_taking_a_cursor_writes_in_the_monitors_transaction(database_url, running):
    execute(database_url, "CREATE TABLE handled (change_id bigint PRIMARY KEY)")

    def remember(change, cursor):
        cursor.execute("INSERT INTO handled VALUES (%s)", (change.id,))
        if change.id == 2:
            raise RuntimeError("after writing")  # its write is rolled back with it

    running(database_url, [remember], max_attempts=1)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 3)")
    wait_for(lambda: unprocessed(database_url) == 0, message="three changes")
    assert execute(database_url, "SELECT change_id FROM handled ORDER BY 1") == [(1,), (3,)]
