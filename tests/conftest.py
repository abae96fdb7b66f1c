"""Fixtures: a real PostgreSQL for every test that needs one.

The suite starts a throwaway cluster in a temporary folder on a free port
(as the `postgres` user when run as root), or uses the server named by
APPLIANCE_TEST_DATABASE_URL (a URL to a database the user may create
databases from). Each test gets a fresh database copied from a template that
already holds the schema, which takes milliseconds.

The throwaway cluster asks a random password over TCP, so every URL a test
gets carries a real one. That password (or the one in
APPLIANCE_TEST_DATABASE_URL) must never show in a test's captured output,
log or failure text: a run where it does fails, naming the tests
(tests/support/secret_scan.py).
"""

from __future__ import annotations

import os
import secrets

import pytest

from appliance.localpg import LocalPostgres
from tests.support import secret_scan
from tests.support.databases import administer, fresh_database, url_for
from tests.support.schema import prepare_schema

pytest_plugins = ["pytester"]  # tests/acceptance/test_secret_scan.py runs failing tests of its own

_EXTERNAL_URL = os.environ.get("APPLIANCE_TEST_DATABASE_URL")
# Recognisable in a report, random so that nothing prints it by chance.
_PASSWORD = secret_scan.password_of(_EXTERNAL_URL) if _EXTERNAL_URL else f"pw-{secrets.token_urlsafe(16)}"
secret_scan.watch(_PASSWORD)
_leaks: dict[str, set[str]] = {}  # {test id: the parts of its reports that held the password}


def pytest_runtest_logreport(report):
    for password in secret_scan.watched():
        for part in secret_scan.parts_mentioning(report, password):
            _leaks.setdefault(report.nodeid, set()).add(part)


def pytest_sessionfinish(session, exitstatus):
    if _leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _leaks:
        terminalreporter.write_sep("=", "the database password appears in the output of these tests", red=True)
        for nodeid, parts in sorted(_leaks.items()):
            terminalreporter.write_line(f"{nodeid}: {', '.join(sorted(parts))}")


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A URL to a maintenance database of the test server."""
    if _EXTERNAL_URL:
        yield _EXTERNAL_URL
        return
    server = LocalPostgres.temporary(password=_PASSWORD).start()
    try:
        yield server.url("postgres")
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def template_database(postgres_admin_url):
    name = f"appliance_template_{os.getpid()}"
    administer(postgres_admin_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    prepare_schema(url_for(postgres_admin_url, name))
    yield name
    administer(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(postgres_admin_url, template_database):
    """A URL to a fresh database with the appliance's schema, dropped afterwards."""
    yield from fresh_database(postgres_admin_url, "appliance_test", template_database)


@pytest.fixture
def empty_database_url(postgres_admin_url):
    """A URL to a fresh database with nothing in it, dropped afterwards."""
    yield from fresh_database(postgres_admin_url, "appliance_empty")


@pytest.fixture
def own_server():
    """A PostgreSQL of the test's own, to stop, restart or freeze; destroyed afterwards."""
    server = LocalPostgres.temporary().start()
    yield server
    server.destroy()


@pytest.fixture
def tracker(database_url):
    from appliance import WorkflowTracker

    tracker = WorkflowTracker(database_url=database_url)
    yield tracker
    tracker.close()


@pytest.fixture
def client(database_url):
    from tests.support.web_support import make_app

    return make_app(database_url).test_client()


@pytest.fixture
def seeded(tracker):
    """Three runs: one completed with two tasks, one failed, one running (named XSS); projected."""
    from appliance.projection import Projector
    from tests.support.web_support import XSS

    done = tracker.initiate_workflow("rnaseq", "nightly", "alice", "genomics", source="snakemake")
    tracker.start_workflow(done)
    tasks = []
    for name in ("align", "count"):
        task = tracker.add_task_to_workflow(done, name, "1.0", {}, {})
        tracker.start_task(task)
        tracker.add_job_id(task, f"{name}-4711")
        tracker.complete_task(task, "ok")
        tasks.append(task)
    tracker.record_log(done, "all aligned", task_id=tasks[0])
    tracker.record_log(done, "disk nearly full", level="WARNING")
    tracker.complete_workflow(done)
    failed = tracker.initiate_workflow("cellpose", "", "bob", "imaging", source="biomero")
    tracker.start_workflow(failed)
    broken = tracker.add_task_to_workflow(failed, "segment", None, {}, {})
    tracker.start_task(broken)
    tracker.fail_task(broken, "MemoryError: out of memory")
    tracker.fail_workflow(failed, "segment failed")
    running = tracker.initiate_workflow(XSS, "", "carol", "imaging")
    tracker.start_workflow(running)
    tracker.record_log(running, XSS)
    Projector(tracker).catch_up()
    return {"done": str(done), "failed": str(failed), "running": str(running), "tasks": tasks}
