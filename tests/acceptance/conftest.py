"""Fixtures of the acceptance ring, shared by its test modules (tests/conftest.py has the database)."""

from __future__ import annotations

import pytest

from appliance.localpg import free_port
from tests.support.appliance_process import INGEST_TOKEN, Appliance, base_environment


@pytest.fixture
def appliance_env(empty_database_url):
    """(environment, port) of an appliance run natively on an empty database, polling every second."""
    port = free_port()
    env = base_environment(
        DATABASE_URL=empty_database_url, BACKEND_PORT=str(port), APPLIANCE_INGEST_TOKEN=INGEST_TOKEN,
        MONITOR_POLL_INTERVAL="1", PROJECTOR_POLL_INTERVAL="1",
    )
    return env, port


@pytest.fixture
def started(tmp_path):
    """start(env, name="appliance") -> a started Appliance, its log in tmp_path; each stopped after the test."""
    appliances = []

    def start(env, name="appliance"):
        appliance = Appliance(env, tmp_path / f"{name}.log").start()
        appliances.append(appliance)
        return appliance

    yield start
    for appliance in appliances:
        appliance.stop()
