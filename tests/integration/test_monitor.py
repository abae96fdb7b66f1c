"""The monitor against a real PostgreSQL: claims, exactly once, webhooks, restarts."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from appliance import db
from appliance.config import ConfigError, MonitorSettings, Settings, parse_database_url
from appliance.localpg import LocalPostgres
from appliance.monitor import Monitor, Webhook, delete_old_changes
from tests.support import waiting
from tests.support.log_lines import messages
from tests.support.schema import prepare_schema


wait_for = partial(waiting.wait_for, timeout=20.0)


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

    def start(database_url, handlers, ping_every=5.0, ping_timeout=10.0, monitor_settings=None, **settings):
        """`handlers` None: those of the settings (webhooks, MONITOR_HANDLERS), as `appliance monitor` has."""
        monitor_settings = monitor_settings or MonitorSettings(**{"poll_interval": 1, **settings})
        monitor = Monitor(parse_database_url(database_url), monitor_settings,
                          handlers=handlers, ping_every=ping_every, ping_timeout=ping_timeout)
        thread = threading.Thread(target=monitor.run, daemon=True)
        thread.start()
        started.append((monitor, thread))
        return monitor

    yield start
    for monitor, _ in started:
        monitor.stop()
    for _, thread in started:
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


def heartbeats(database_url):
    return execute(database_url, "SELECT count(*) FROM monitor_heartbeats")[0][0]


def test_two_monitors_handle_2000_changes_each_exactly_once(database_url, running):
    first, second = Recorder(), Recorder()
    running(database_url, [first])
    running(database_url, [second])
    wait_for(lambda: heartbeats(database_url) == 2, message="both monitors listening")
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'run ' || n FROM generate_series(1, 1000) n")
    execute(database_url, "UPDATE workflow_runs SET status = 'running'")
    wait_for(lambda: unprocessed(database_url) == 0, timeout=60, message="2000 changes handled")
    counts = Counter(first.ids + second.ids)
    assert len(counts) == 2000 and max(counts.values()) == 1
    assert len(first.ids) > 0 and len(second.ids) > 0, (len(first.ids), len(second.ids))


def monitor_settings_from_env(database_url, **env):
    """The monitor's settings as `appliance monitor` reads them, polling every second."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "MONITOR_POLL_INTERVAL": "1", **env}).monitor
    assert settings.poll_interval == 1
    return settings


def test_the_monitor_settings_of_an_empty_environment_are_the_documented_defaults():
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u:p@db/appliance"})
    assert settings.enable_db_monitoring is True
    monitor = settings.monitor
    assert (monitor.poll_interval, monitor.retention_days) == (10, 7)
    assert (monitor.webhook_urls, monitor.webhook_tables, monitor.webhook_statuses) == (
        (), ("workflow_runs",), ("completed", "failed", "cancelled"))
    assert (monitor.webhook_timeout, monitor.webhook_retries, monitor.max_attempts, monitor.handlers) == (5, 3, 5, ())


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver on localhost that keeps the test's output clean."""

    def log_message(self, *args):
        pass


def serve(handler_class):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class FlakyReceiver(Receiver):
    """Fails the first two requests, then accepts; remembers the accepted bodies and keys."""

    requests, accepted = 0, []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests += 1
        if type(self).requests <= 2:
            self.send_response(500)
        else:
            type(self).accepted.append((self.headers["Idempotency-Key"], body))
            self.send_response(200)
        self.end_headers()


def test_a_webhook_that_fails_twice_then_succeeds_gets_each_event_once(database_url, running):
    server = serve(FlakyReceiver)
    try:
        settings = monitor_settings_from_env(database_url,
                                             MONITOR_WEBHOOK_URLS=f"http://127.0.0.1:{server.server_port}/hook")
        running(database_url, None, monitor_settings=settings)
        execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) "
                              "SELECT 'w' || n, 'running' FROM generate_series(1, 6) n")
        execute(database_url, "UPDATE workflow_runs SET status = CASE WHEN workflow_name IN ('w1', 'w2') "
                              "THEN 'failed' ELSE 'completed' END")
        wait_for(lambda: unprocessed(database_url) == 0, message="the twelve changes handled")
    finally:
        server.shutdown()
    # Only the six changes to "completed" or "failed" pass the filter; the first took three tries.
    sent = [id_ for (id_,) in execute(database_url, "SELECT id FROM change_notifications "
                                                    "WHERE operation = 'UPDATE' ORDER BY id")]
    assert FlakyReceiver.requests == 6 + 2
    assert sorted(body["id"] for _, body in FlakyReceiver.accepted) == sent
    assert sorted(key for key, _ in FlakyReceiver.accepted) == sorted(f"change-{id_}" for id_ in sent)
    assert Counter(body["new_values"]["status"] for _, body in FlakyReceiver.accepted) == {"completed": 4, "failed": 2}
    assert execute(database_url, "SELECT count(*) FROM change_notifications WHERE last_error IS NOT NULL") == [(0,)]


def test_a_failing_handler_is_recorded_and_never_blocks_the_rows_behind_it(database_url, running):
    tries = []

    def refuse_the_first(change):
        if change.id == 1:
            tries.append(time.monotonic())
            raise RuntimeError("receiver says no")

    recorder = Recorder()
    running(database_url, [refuse_the_first, recorder], max_attempts=3)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 3)")
    wait_for(lambda: unprocessed(database_url) == 0, message="all rows processed, the failing one given up")
    [(attempts, error)] = execute(database_url, "SELECT attempts, last_error FROM change_notifications WHERE id = 1")
    assert attempts == 3 and "receiver says no" in error
    assert sorted(set(recorder.ids)) == [1, 2, 3]
    # Tried again after the poll interval, then after twice that: not three times at once.
    assert tries[1] - tries[0] >= 0.9 and tries[2] - tries[1] >= 1.9


class Writer:
    """Inserts one run per transaction until stopped, through a database restart: a failed
    connection or commit is retried on a new connection."""

    def __init__(self, url):
        self.url, self.committed, self.failures = url, 0, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self):
        connection = None
        while not self.stopping.is_set():
            try:
                if connection is None or connection.closed:
                    connection = psycopg2.connect(self.url, connect_timeout=2)
                with connection, connection.cursor() as cursor:
                    cursor.execute("INSERT INTO workflow_runs (workflow_name) VALUES ('streamed')")
                self.committed += 1
            except psycopg2.Error:
                self.failures += 1
                if connection is not None:
                    connection.close()
                self.stopping.wait(0.05)  # the server is restarting: a short pause, not a busy loop
            self.stopping.wait(0.005)
        if connection is not None:
            connection.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)


def test_a_database_restart_in_the_middle_of_a_stream_loses_nothing(running):
    from tests.support import fault_handler

    # Durable: the fast settings acknowledge commits that a crash (stop -m immediate) then loses.
    server = LocalPostgres.temporary(durable=True).start()
    writer = None
    try:
        url = server.url()
        prepare_schema(url)
        execute(url, fault_handler.TABLE)
        # The handler counts in the monitor's transaction: a change handled twice shows as times > 1.
        running(url, [fault_handler.record])
        writer = Writer(url)
        wait_for(lambda: writer.committed >= 50, message="50 writes before the restart")
        server.stop(mode="immediate")
        before = writer.committed
        server.start()
        wait_for(lambda: writer.committed >= before + 50, timeout=30, message="50 writes after the restart")
        writer.stop()
        assert writer.failures > 0  # the writer really wrote across the restart
        wait_for(lambda: unprocessed(url) == 0, timeout=30, message="every change handled")
        [(changes, handled, twice)] = execute(
            url, "SELECT (SELECT count(*) FROM change_notifications), count(*), count(*) FILTER (WHERE times > 1) "
                 "FROM fault_handled")
        # Every committed write made one change; a commit lost with the server may or may not be there.
        assert writer.committed <= changes <= writer.committed + writer.failures
        assert (handled, twice) == (changes, 0)
        assert execute(url, "SELECT count(*) FROM fault_handled f LEFT JOIN change_notifications c "
                            "ON c.id = f.change_id WHERE c.id IS NULL") == [(0,)]
    finally:
        if writer is not None:
            writer.stop()
        server.destroy()


class SilencingProxy:
    """A TCP proxy to the database whose `silence()` makes the open connections
    swallow everything without closing, as a network that drops packets does;
    connections opened afterwards work."""

    def __init__(self, database_url):
        self.target = make_url(database_url)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = self.target.set(host="127.0.0.1", port=self.server.getsockname()[1]).render_as_string(False)
        self.silent, self.sockets = [], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.target.host, self.target.port))
            silent = threading.Event()
            self.silent.append(silent)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, silent), daemon=True).start()

    @staticmethod
    def _pump(source, sink, silent):
        try:
            while data := source.recv(65536):
                if not silent.is_set():
                    sink.sendall(data)
        except OSError:
            pass

    def silence(self):
        for silent in self.silent:
            silent.set()

    def close(self):
        for sock in [self.server, *self.sockets]:
            sock.close()


def test_a_silent_listening_connection_is_noticed_and_replaced(database_url, running):
    proxy = SilencingProxy(database_url)
    try:
        recorder = Recorder()
        # No poll for a minute: only a LISTEN that works again can bring the change.
        running(proxy.url, [recorder], poll_interval=60, ping_every=0.2, ping_timeout=0.5)
        wait_for(lambda: execute(database_url, "SELECT count(*) FROM monitor_heartbeats")[0][0] == 1,
                 message="the monitor listening")
        proxy.silence()
        execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('after the network went')")
        wait_for(lambda: recorder.ids == [1], timeout=10, message="the change, through a new connection")
    finally:
        proxy.close()


def test_retention_deletes_old_processed_changes_in_batches(database_url):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 2500)")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() - interval '8 days' "
                          "WHERE id <= 2200")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() WHERE id > 2400")
    with db.connection(parse_database_url(database_url), "test") as connection:
        assert delete_old_changes(connection, days=7) == 2200
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
    lines = [json.loads(message) for message in messages(process.stdout.read()) if message.startswith("{")]
    assert [(line["table"], line["op"]) for line in lines] == [("workflow_runs", "INSERT")]


class RefusingReceiver(Receiver):
    requests = 0

    def do_POST(self):
        type(self).requests += 1
        self.send_response(503)
        self.end_headers()


def test_sigterm_during_webhook_retries_stops_within_2_s_and_keeps_the_change(database_url):
    server = serve(RefusingReceiver)
    url = f"http://127.0.0.1:{server.server_port}/hook?token=s3cret"
    execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'completed')")
    process = monitor_process(database_url, MONITOR_WEBHOOK_URLS=url, MONITOR_WEBHOOK_RETRIES="10")
    try:
        wait_for(lambda: RefusingReceiver.requests >= 2, message="the webhook tried")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 2.0  # supervisord's stopwaitsecs for the monitor
    finally:
        process.kill()
        server.shutdown()
    [(processed, attempts, error)] = execute(database_url, "SELECT processed, attempts, last_error "
                                                           "FROM change_notifications")
    assert (processed, attempts) == (False, 1) and "stopping" in error
    assert "s3cret" not in error + process.stdout.read()


STOP_BUDGET = 3.0  # the monitor's stopwaitsecs in conf/supervisord.conf


def assert_stops_in_budget(process) -> None:
    """SIGTERM, as supervisord sends it: exit 0 within the monitor's stopwaitsecs."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < STOP_BUDGET


def test_sigterm_during_a_slow_handler_finishes_that_change_and_exits_0_in_time(database_url, tmp_path):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 5)")
    process = monitor_process(database_url, MONITOR_HANDLERS="tests.support.slow_handler:slow", SLOW_HANDLER_DIR=str(tmp_path))
    try:
        wait_for(lambda: (tmp_path / "1.started").exists(), message="the first change in hand")
        assert_stops_in_budget(process)
    finally:
        process.kill()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1.started"]
    assert execute(database_url, "SELECT id, processed, last_error FROM change_notifications ORDER BY id") == [
        (1, True, None), (2, False, None), (3, False, None), (4, False, None), (5, False, None)]


class SilentReceiver(Receiver):
    """Reads the request, then answers only when `release` is set (or after 30 s)."""

    requests, release = 0, threading.Event()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests += 1
        type(self).release.wait(30)
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def silent_receiver():
    SilentReceiver.requests, SilentReceiver.release = 0, threading.Event()
    server = serve(SilentReceiver)
    yield f"http://127.0.0.1:{server.server_port}/hook"
    SilentReceiver.release.set()
    server.shutdown()


def test_a_webhook_that_does_not_answer_in_time_is_recorded_and_the_rest_go_on(database_url, running, silent_receiver):
    settings = monitor_settings_from_env(database_url, MONITOR_WEBHOOK_URLS=silent_receiver, MONITOR_WEBHOOK_TIMEOUT="1",
                                         MONITOR_WEBHOOK_RETRIES="2", MONITOR_MAX_ATTEMPTS="1")
    recorder = Recorder()
    monitor = running(database_url, None, monitor_settings=settings)
    monitor.handlers.append(recorder)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('slow', 'completed')")
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('behind')")
    started = time.monotonic()
    wait_for(lambda: unprocessed(database_url) == 0, message="both changes handled")
    assert time.monotonic() - started >= 2.0  # two tries of 1 s each
    assert SilentReceiver.requests == 2 and recorder.ids == [1, 2]
    assert execute(database_url, "SELECT id, processed, last_error FROM change_notifications ORDER BY id") == [
        (1, True, f"Webhook: {silent_receiver}: timed out (after 2 tries)"), (2, True, None)]


def test_sigterm_during_a_webhook_request_without_answer_exits_0_in_time_and_keeps_the_change(
        database_url, silent_receiver):
    execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'completed')")
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('behind')")
    # The webhook's timeout (30 s) is far beyond the stop budget: the request is left behind,
    # and though it was the last attempt allowed, the change is not given up for it.
    process = monitor_process(database_url, MONITOR_WEBHOOK_URLS=silent_receiver, MONITOR_WEBHOOK_TIMEOUT="30",
                              MONITOR_MAX_ATTEMPTS="1")
    try:
        wait_for(lambda: SilentReceiver.requests == 1, message="the request in flight")
        assert_stops_in_budget(process)
    finally:
        process.kill()
    rows = execute(database_url, "SELECT id, processed, attempts, last_error FROM change_notifications ORDER BY id")
    assert rows == [(1, False, 1, f"Webhook: {silent_receiver}: no answer yet when the monitor stopped "
                                  "(sent again at its next start)"),
                    (2, False, 0, None)]


def test_a_monitor_started_explicitly_runs_though_monitoring_is_off(database_url):
    # supervisord leaves it out (autostart); `supervisorctl start monitor` must not crash-loop it.
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('handled anyway')")
    process = monitor_process(database_url, ENABLE_DB_MONITORING="false")
    try:
        wait_for(lambda: unprocessed(database_url) == 0, message="the change handled")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert "ENABLE_DB_MONITORING=false, but started explicitly" in process.stdout.read()


def test_a_custom_handler_that_cannot_be_loaded_is_a_clear_error(database_url):
    process = monitor_process(database_url, MONITOR_HANDLERS="no.such.module:handler")
    assert process.wait(timeout=10) == 2
    assert "cannot load 'no.such.module:handler'" in process.stdout.read()


def test_appliance_config_names_every_custom_handler_that_cannot_be_loaded(database_url):
    handlers = "tests.support.fault_handler:record,no.such.module:handler,tests.support.fault_handler:missing"
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "config"], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": database_url, "MONITOR_HANDLERS": handlers}, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert "MONITOR_HANDLERS: cannot load 'no.such.module:handler'" in result.stderr
    assert "MONITOR_HANDLERS: cannot load 'tests.support.fault_handler:missing'" in result.stderr
    assert "tests.support.fault_handler:record" not in result.stderr  # the good one is not blamed


@pytest.mark.parametrize("command", ["config", "monitor"])
def test_a_handler_path_of_the_wrong_form_is_refused_by_name(database_url, command):
    result = subprocess.run([sys.executable, "-m", "appliance.cli", command], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": database_url,
                                 "MONITOR_HANDLERS": "tests.support.fault_handler:record, my handler.py"}, timeout=30)
    assert result.returncode == 2
    assert "MONITOR_HANDLERS has 'my handler.py', which is not a dotted path like package.module:function" \
        in result.stderr
    assert unprocessed(database_url) == 0 and heartbeats(database_url) == 0  # the monitor never started


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


def test_a_connection_lost_inside_a_handler_is_a_reconnect_not_a_failed_change(database_url, running, caplog):
    """The handler's error is the monitor's lost connection: the change is claimed again and
    succeeds, and the log says why the connection went, not "change failed" or "cursor already closed"."""
    calls = []

    def lose_the_connection_once(change, cursor):
        calls.append(change.id)
        if len(calls) == 1:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    caplog.set_level("INFO", logger="appliance.monitor")
    running(database_url, [lose_the_connection_once], max_attempts=1)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) VALUES ('lost midway')")
    wait_for(lambda: unprocessed(database_url) == 0, message="the change handled after the reconnect")
    assert calls == [1, 1]
    assert execute(database_url, "SELECT attempts, last_error FROM change_notifications") == [(1, None)]
    lost = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(lost) == 1 and "server closed the connection" in lost[0], lost
    assert not [r for r in caplog.records if "failed" in r.getMessage() or "already closed" in r.getMessage()]


def test_bad_monitor_settings_are_all_named_and_webhook_urls_never_shown():
    secret_url = "https://user:s3cret@hooks.example.org/x?token=s3cret"
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({
            "DATABASE_URL": "postgresql://u:p@db/appliance", "MONITOR_POLL_INTERVAL": "0",
            "MONITOR_WEBHOOK_URLS": f"{secret_url},ftp://s3cret@host/", "CHANGE_RETENTION_DAYS": "week",
            "ENABLE_DB_MONITORING": "maybe", "APPLIANCE_INSTALL_TRIGGERS": "2",
        })
    message = str(refused.value)
    for name in ("MONITOR_POLL_INTERVAL", "MONITOR_WEBHOOK_URLS", "CHANGE_RETENTION_DAYS", "ENABLE_DB_MONITORING",
                 "APPLIANCE_INSTALL_TRIGGERS"):
        assert name in message
    assert "s3cret" not in message
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u:p@db/appliance", "MONITOR_WEBHOOK_URLS": secret_url})
    assert settings.monitor.webhook_urls == (secret_url,) and "s3cret" not in repr(settings)


class BasicAuthReceiver(Receiver):
    """Accepts a POST only with the expected `Authorization: Basic` header; remembers what came."""

    expected, authorizations, accepted = None, [], []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).authorizations.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != type(self).expected:
            self.send_response(401)
        else:
            type(self).accepted.append(body)
            self.send_response(200)
        self.end_headers()


def test_a_webhook_url_with_user_and_password_sends_them_as_basic_auth(database_url, running):
    import base64

    BasicAuthReceiver.expected = "Basic " + base64.b64encode(b"hook user:s3cret:pw").decode()
    server = serve(BasicAuthReceiver)
    try:
        url = f"http://hook%20user:s3cret%3Apw@127.0.0.1:{server.server_port}/hook"
        settings = Settings.from_env({"DATABASE_URL": database_url, "MONITOR_WEBHOOK_URLS": url}).monitor
        running(database_url, [Webhook(url, settings, wait=lambda seconds: False)])
        execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'completed')")
        wait_for(lambda: unprocessed(database_url) == 0, message="the change handled")
    finally:
        server.shutdown()
    assert BasicAuthReceiver.authorizations == [BasicAuthReceiver.expected]
    [delivered] = BasicAuthReceiver.accepted
    assert delivered["new_values"]["workflow_name"] == "w"
    [(error,)] = execute(database_url, "SELECT last_error FROM change_notifications")
    assert error is None


def test_an_error_that_repeats_the_url_never_shows_its_password(database_url, running):
    # http.client refuses this port with an error that quotes it: the password, here.
    url = "http://user:s3cretpw@127.0.0.1:s3cretpw/x"
    settings = MonitorSettings(webhook_retries=1)
    running(database_url, [Webhook(url, settings)], max_attempts=1)
    execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'failed')")
    wait_for(lambda: unprocessed(database_url) == 0, message="the change given up")
    [(error,)] = execute(database_url, "SELECT last_error FROM change_notifications")
    assert error.startswith("Webhook: http://127.0.0.1/x: InvalidURL") and "s3cretpw" not in error


def test_a_failing_webhook_with_credentials_leaks_them_nowhere(database_url):
    from tests.support.web_support import make_app

    refused = socket.create_server(("127.0.0.1", 0))
    port = refused.getsockname()[1]
    refused.close()  # nothing listens there now: every try is refused
    url = f"http://hookuser:s3cretpw@127.0.0.1:{port}/hook?token=t0kenvalue"
    execute(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'completed')")
    process = monitor_process(database_url, MONITOR_WEBHOOK_URLS=url, MONITOR_WEBHOOK_RETRIES="2",
                              MONITOR_MAX_ATTEMPTS="1")
    try:
        wait_for(lambda: unprocessed(database_url) == 0, message="the change given up")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    output = process.stdout.read()  # stderr goes there too
    [(error,)] = execute(database_url, "SELECT last_error FROM change_notifications")
    assert f"http://127.0.0.1:{port}/hook: ConnectionRefusedError" in error
    assert f"http://127.0.0.1:{port}/hook" in output
    feed = make_app(database_url).test_client().get("/api/v1/changes")
    assert feed.status_code == 200 and feed.get_json()["changes"][0]["last_error"] == error
    for secret in ("s3cretpw", "t0kenvalue", "hookuser"):
        assert secret not in error and secret not in output and secret not in feed.get_data(as_text=True)


def prune(database_url, *args, **env):
    return subprocess.run([sys.executable, "-m", "appliance.cli", "prune", *args],
                          env={**os.environ, "DATABASE_URL": database_url, **env},
                          capture_output=True, text=True, timeout=60)


def remaining_ids(database_url):
    return [id_ for (id_,) in execute(database_url, "SELECT id FROM change_notifications ORDER BY id")]


@pytest.fixture
def aged_changes(database_url):
    """Ten changes: 1-5 processed 8 days ago, 6 processed now, 7-8 unprocessed from 8 days ago, 9-10 new."""
    execute(database_url, "INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, 10)")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() - interval '8 days' "
                          "WHERE id <= 5")
    execute(database_url, "UPDATE change_notifications SET processed = true, processed_at = now() WHERE id = 6")
    execute(database_url, "UPDATE change_notifications SET \"timestamp\" = now() - interval '8 days' "
                          "WHERE id IN (7, 8)")
    assert remaining_ids(database_url) == list(range(1, 11))
    return database_url


def test_prune_deletes_old_processed_changes_in_batches_and_keeps_the_rest(aged_changes):
    result = prune(aged_changes, "--days", "7", "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    progress = [message for message in messages(result.stdout) if message.endswith("deleted so far")]
    assert progress == ["prune: 2 deleted so far", "prune: 4 deleted so far", "prune: 5 deleted so far"]
    assert messages(result.stdout)[-1] == "prune: deleted 5 processed changes older than 7 days"
    assert remaining_ids(aged_changes) == [6, 7, 8, 9, 10]


def test_prune_include_unprocessed_also_deletes_old_unprocessed_changes(aged_changes):
    result = prune(aged_changes, "--include-unprocessed", "--batch-size", "3", CHANGE_RETENTION_DAYS="7")
    assert result.returncode == 0, result.stderr
    assert "prune: 3 deleted so far" in result.stdout and "prune: deleted 7 changes" in result.stdout
    assert remaining_ids(aged_changes) == [6, 9, 10]


def test_prune_reads_the_retention_days_from_the_environment(aged_changes):
    result = prune(aged_changes, CHANGE_RETENTION_DAYS="9")
    assert result.returncode == 0 and "deleted 0 processed changes older than 9 days" in result.stdout
    assert remaining_ids(aged_changes) == list(range(1, 11))


@pytest.mark.parametrize("days", ["-1", "1.5", "seven", "", "٣"])
def test_prune_with_bad_days_is_a_usage_error_and_deletes_nothing(aged_changes, days):
    result = prune(aged_changes, "--days", days, "--include-unprocessed")
    assert result.returncode == 2 and "argument --days: must be a whole number" in result.stderr
    assert remaining_ids(aged_changes) == list(range(1, 11))


def test_prune_against_an_unreachable_database_is_one_clear_line():
    result = prune("postgresql://app:hunter2@127.0.0.1:1/nowhere")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "database error on postgresql+psycopg2://app:***@127.0.0.1:1/nowhere" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_the_heartbeat_goes_on_while_a_long_backlog_is_drained(database_url, running):
    total = 400
    execute(database_url, f"INSERT INTO workflow_runs (workflow_name) SELECT 'r' FROM generate_series(1, {total})")
    recorder = Recorder()

    def slow(change):  # 10 ms a change: the backlog takes about 4 s, four poll intervals
        time.sleep(0.01)
        recorder(change)

    running(database_url, [slow], poll_interval=1)
    beats = set()

    def drained():
        left = unprocessed(database_url)
        beats.update(execute(database_url, "SELECT last_seen, backlog, handled FROM monitor_heartbeats"))
        return left == 0

    wait_for(drained, timeout=60, message="the backlog drained")
    during = sorted(beat for beat in beats if beat[1] > 0)
    assert len({last_seen for last_seen, _, _ in during}) >= 2, during  # it advanced while draining
    # Each beat came between two claims: what was left plus what was handled is everything.
    assert all(backlog + handled == total for _, backlog, handled in beats), sorted(beats)
    assert len(recorder.ids) == total
