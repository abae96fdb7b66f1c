"""The checks that keep the database password out of the test run's output (tests/support/secret_scan.py)."""

from __future__ import annotations

import os

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from appliance.localpg import LocalPostgres
from tests.support import secret_scan
from tests.support.appliance_process import Appliance, base_environment

PASSWORD = "pw-only-for-this-test"


def a_report(sections=(), longrepr=None, outcome="passed") -> pytest.TestReport:
    return pytest.TestReport("tests/test_x.py::test_x", ("tests/test_x.py", 1, "test_x"), {}, outcome,
                             longrepr, "call", sections=sections)


def test_the_scan_finds_the_password_in_each_part_of_a_report():
    report = a_report(sections=[
        ("Captured stdout call", f"connecting to postgresql://app:{PASSWORD}@db/x"),
        ("Captured stderr call", "nothing to see"),
        ("Captured log call", f"INFO url={PASSWORD}"),
    ], longrepr=f"AssertionError: assert 'x' in '{PASSWORD}'", outcome="failed")
    assert secret_scan.parts_mentioning(report, PASSWORD) == ["stdout", "log", "failure text"]
    assert secret_scan.parts_mentioning(a_report([("Captured stderr setup", PASSWORD)]), PASSWORD) == ["stderr"]
    clean = a_report(sections=[("Captured stdout call", "postgresql://app:***@db/x")])
    assert secret_scan.parts_mentioning(clean, PASSWORD) == []


def test_the_test_server_checks_the_password():
    server = LocalPostgres.temporary(password="pw- odd/@:%chars").start()
    try:
        url = make_url(server.url())
        assert url.password == "pw- odd/@:%chars"
        psycopg2.connect(server.url()).close()
        without = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        for wrong in (url.set(password="pw-wrong").render_as_string(hide_password=False), without):
            with pytest.raises(psycopg2.OperationalError, match="password"):
                psycopg2.connect(wrong).close()
        assert not list(server.base_dir.glob("pwfile-*"))  # initdb's password file is gone
    finally:
        server.destroy()


def test_the_test_databases_carry_the_watched_password(database_url):
    password = secret_scan.password_of(database_url)
    if not os.environ.get("APPLIANCE_TEST_DATABASE_URL"):  # the suite's own server
        assert password.startswith("pw-")
    assert password is None or password in secret_scan.watched()


def test_stopping_an_appliance_whose_log_holds_the_password_fails(tmp_path):
    env = base_environment(DATABASE_URL=f"postgresql://app:{PASSWORD}@127.0.0.1:9/appliance")
    appliance = Appliance(env, tmp_path / "leaky.log", ("shell", "-c", 'echo "$DATABASE_URL"')).start()
    assert appliance.wait(20) == 0
    with pytest.raises(AssertionError, match="the database password appears in") as raised:
        appliance.stop()
    assert PASSWORD not in str(raised.value)
    assert not appliance.run_dir.exists()  # it cleaned up first


def test_a_failing_tests_own_arguments_are_not_a_finding_but_its_output_is(pytester):
    pytester.makepyfile(f"""
        import pytest

        @pytest.fixture
        def url():
            return "postgresql://app:{PASSWORD}@db/x"

        def test_quiet(url):
            assert False

        def test_loud(url):
            print(url)
            assert False
    """)
    reports = {r.nodeid.split("::")[1]: r for r in pytester.inline_run().getreports("pytest_runtest_logreport")
               if r.when == "call"}
    assert PASSWORD in reports["test_quiet"].longreprtext  # pytest shows the fixture's value...
    assert secret_scan.parts_mentioning(reports["test_quiet"], PASSWORD) == []  # ...which the test gave itself
    assert secret_scan.parts_mentioning(reports["test_loud"], PASSWORD) == ["stdout"]
