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
(tests/secret_scan.py).
"""

from __future__ import annotations

import itertools
import os
import secrets

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from appliance.localpg import LocalPostgres
from tests import secret_scan
from tests.schema import prepare_schema

pytest_plugins = ["pytester"]  # tests/test_secret_scan.py runs failing tests of its own

_database_numbers = itertools.count()
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


def _admin(admin_url: str, *statements: str) -> None:
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def _url_for(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_database(postgres_admin_url):
    name = f"appliance_template_{os.getpid()}"
    _admin(postgres_admin_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    prepare_schema(_url_for(postgres_admin_url, name))
    yield name
    _admin(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fresh_database(admin_url: str, prefix: str, template: str | None = None):
    name = f"{prefix}_{os.getpid()}_{next(_database_numbers)}"
    _admin(admin_url, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    yield _url_for(admin_url, name)
    _admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(postgres_admin_url, template_database):
    """A URL to a fresh database with the appliance's schema, dropped afterwards."""
    yield from _fresh_database(postgres_admin_url, "appliance_test", template_database)


@pytest.fixture
def empty_database_url(postgres_admin_url):
    """A URL to a fresh database with nothing in it, dropped afterwards."""
    yield from _fresh_database(postgres_admin_url, "appliance_empty")


@pytest.fixture
def tracker(database_url):
    from appliance import WorkflowTracker

    tracker = WorkflowTracker(database_url=database_url)
    yield tracker
    tracker.close()
