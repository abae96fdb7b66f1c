"""A malformed environment at start: entrypoint.sh exits 2 at once with one message and changes nothing.

These run the real entrypoint (no fake programs) against an empty database,
so a check that let a bad value through would go on to migrate it.
"""

from __future__ import annotations

import time

import pytest

from tests.support.appliance_process import Appliance, base_environment
from tests.support.secret_scan import with_password
from tests.support.sql import query

SECRET = "pw-never-printed-0"

# (settings, the variables the message must name); the database URL is added unless given.
MALFORMED = {
    "port not a number": ({"BACKEND_PORT": "abc"}, ["BACKEND_PORT"]),
    "port out of range": ({"BACKEND_PORT": "70000"}, ["BACKEND_PORT"]),
    "port in other digits": ({"BACKEND_PORT": "８０００"}, ["BACKEND_PORT"]),
    "negative poll interval": ({"MONITOR_POLL_INTERVAL": "-1"}, ["MONITOR_POLL_INTERVAL"]),
    "wait timeout a word": ({"DB_WAIT_TIMEOUT": "x"}, ["DB_WAIT_TIMEOUT"]),
    "workers zero": ({"WEB_WORKERS": "0"}, ["WEB_WORKERS"]),
    "workers absurd": ({"WEB_WORKERS": "99999999999999999999999"}, ["WEB_WORKERS"]),
    "monitoring maybe": ({"ENABLE_DB_MONITORING": "maybe"}, ["ENABLE_DB_MONITORING"]),
    "not a postgres url": ({"DATABASE_URL": f"mysql://app:{SECRET}@db/x"}, ["DATABASE_URL"]),
    "url port out of range": ({"DATABASE_URL": f"postgresql://app:{SECRET}@db:99999/x"}, ["DATABASE_URL"]),
    "url port a word": ({"DATABASE_URL": f"postgresql://app:{SECRET}@db:port/x"}, ["DATABASE_URL"]),
    "url host with a space": ({"DATABASE_URL": f"postgresql://app:{SECRET}@d b/x"}, ["DATABASE_URL"]),
    "bytes that are not UTF-8": ({"APPLIANCE_INGEST_TOKEN": "tok\udcff"}, ["APPLIANCE_INGEST_TOKEN"]),
    "run dir relative": ({"APPLIANCE_RUN_DIR": "run"}, ["APPLIANCE_RUN_DIR"]),
    "run dir too long for a socket": ({"APPLIANCE_RUN_DIR": "/tmp/" + "r" * 100}, ["APPLIANCE_RUN_DIR"]),
    "postgres parts half given": ({"DATABASE_URL": None, "POSTGRES_HOST": "db", "POSTGRES_PASSWORD": SECRET},
                                  ["POSTGRES_DB", "POSTGRES_USER"]),
    "several at once": ({"BACKEND_PORT": "0", "MONITOR_POLL_INTERVAL": "-5", "WEB_WORKERS": "many",
                         "ENABLE_DB_MONITORING": "2"},
                        ["BACKEND_PORT", "MONITOR_POLL_INTERVAL", "WEB_WORKERS", "ENABLE_DB_MONITORING"]),
}


def table_count(database_url: str) -> int:
    return query(database_url, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")[0][0]


@pytest.mark.parametrize("settings, named", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_environment_exits_2_naming_each_variable_and_changes_nothing(
        tmp_path, empty_database_url, settings, named):
    url, password = with_password(empty_database_url, SECRET)
    env = {"DATABASE_URL": url, "APPLIANCE_INGEST_TOKEN": "a-token", **settings}
    env = base_environment(**{name: value for name, value in env.items() if value is not None})
    appliance = Appliance(env, tmp_path / "entrypoint.log").start()
    started = time.monotonic()
    try:
        assert appliance.wait(20) == 2, appliance.output
        took = time.monotonic() - started
        output = appliance.output
        assert took < 10, f"a bad environment took {took:.1f} s to refuse"
        assert output.count("invalid configuration") == 1, output  # one message, every problem in it
        for name in named:
            assert name in output
        for leak in ("Traceback", password, SECRET, "waiting", "migrating", "supervisord"):
            assert leak not in output
        assert appliance.processes() == set()
    finally:
        appliance.stop()
    assert table_count(empty_database_url) == 0


def test_a_run_dir_that_cannot_be_made_exits_2_before_the_database_is_touched(tmp_path, empty_database_url):
    env = base_environment(DATABASE_URL=empty_database_url, APPLIANCE_RUN_DIR="/proc/no-appliance-here")
    appliance = Appliance(env, tmp_path / "entrypoint.log").start()
    try:
        assert appliance.wait(20) == 2, appliance.output
        assert "APPLIANCE_RUN_DIR=/proc/no-appliance-here cannot be created" in appliance.output
        assert "migrating" not in appliance.output
    finally:
        appliance.stop()
    assert table_count(empty_database_url) == 0
