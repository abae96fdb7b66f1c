"""Fixtures of the acceptance ring, shared by its test modules (tests/conftest.py has the database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from appliance.localpg import free_port
from tests.support.appliance_process import INGEST_TOKEN, Appliance, base_environment
from tests.support.biomero_venv import biomero_python

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1280,900")


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


@pytest.fixture
def browser():
    """Debian's chromium, headless, through its chromedriver (scripts/_browser.sh installs both)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path):
    """Where a browser test saves its screenshots: docs/screenshots/ with UPDATE_SCREENSHOTS=1, else tmp_path."""
    return DOCS_SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture(scope="session")
def biomero():
    """The Python of .venv-biomero (created on first use): BIOMERO 2.8.3 in a virtualenv of its own."""
    return biomero_python()
