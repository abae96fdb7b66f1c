"""What a person sees: the dashboard and a run page in headless Chromium.

Uses Debian's chromium and chromium-driver (no browser download); .ci/run
installs them. With UPDATE_SCREENSHOTS=1 the screenshots replace those in
docs/screenshots/ (shown in the README); otherwise they go to a temporary folder.
"""

import os
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.projection import Projector
from appliance.web import create_app

DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1280,900")


@pytest.fixture
def screenshots(tmp_path):
    return DOCS_SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def site(database_url, tracker):
    """The app on a free loopback port, with a few realistic runs recorded and projected."""
    failed = tracker.initiate_workflow("cellpose-segmentation", "plate 7", "bob", "imaging", source="biomero")
    tracker.start_workflow(failed)
    for name in ("fetch_images", "segment"):
        task = tracker.add_task_to_workflow(failed, name, "2.1", {"plate": 7}, {})
        tracker.start_task(task)
        tracker.add_job_id(task, "4711" if name == "segment" else "4710")
    tracker.fail_task(task, "MemoryError: out of memory on node c12")
    tracker.fail_workflow(failed, "segment failed: out of memory")
    done = tracker.initiate_workflow("rnaseq-alignment", "nightly", "alice", "genomics", source="snakemake")
    tracker.start_workflow(done)
    for name in ("trim", "align", "count", "report"):
        task = tracker.add_task_to_workflow(done, name, None, {}, {})
        tracker.start_task(task)
        tracker.record_log(done, f"rule {name}: started", task_id=task)
        tracker.complete_task(task, "ok")
    tracker.record_log(done, "disk 91% full", level="WARNING")
    tracker.complete_workflow(done)
    running = tracker.initiate_workflow("<script>alert(1)</script>", "", "carol", "imaging")
    tracker.start_workflow(running)
    Projector(tracker).catch_up()
    app = create_app(Settings(database_url=parse_database_url(database_url), web=WebSettings(ingest_token="t")))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", {"failed": str(failed), "done": str(done)}
    server.shutdown()


def test_the_dashboard_shows_runs_with_their_status(browser, site, screenshots):
    base, _ = site
    browser.get(base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    names = [row.find_element(By.CSS_SELECTOR, "td a").text for row in rows]
    assert names == ["<script>alert(1)</script>", "rnaseq-alignment", "cellpose-segmentation"]
    badges = [row.find_element(By.CSS_SELECTOR, ".badge").text for row in rows]
    assert badges == ["running", "completed", "failed"]
    with pytest.raises(NoAlertPresentException):  # the payload stayed text
        browser.switch_to.alert
    browser.save_screenshot(str(screenshots / "dashboard.png"))


def test_a_failed_run_page_shows_its_error_first_and_a_timeline(browser, site, screenshots):
    base, runs = site
    browser.get(base + "/")
    browser.find_element(By.LINK_TEXT, "cellpose-segmentation").click()
    error = browser.find_element(By.CSS_SELECTOR, ".error")
    assert "segment failed: out of memory" in error.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect")) == 2
    tasks = browser.find_element(By.CSS_SELECTOR, "table.tasks").text
    assert "MemoryError" in tasks and "4711" in tasks
    browser.save_screenshot(str(screenshots / "run-failed.png"))
    browser.get(f"{base}/runs/{runs['done']}")
    assert "disk 91% full" in browser.find_element(By.CSS_SELECTOR, "pre.log").text
    browser.save_screenshot(str(screenshots / "run-completed.png"))
