"""What a person sees: the dashboard, run pages, jobs, changes and system in headless Chromium.

Uses Debian's chromium and chromium-driver (no browser download); .ci/run
installs them. The runs arrive as a source would send them: through
POST /api/v1/events, with the times they happened. With UPDATE_SCREENSHOTS=1
the screenshots replace those in docs/screenshots/ (shown in the README);
otherwise they go to a temporary folder.
"""

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from werkzeug.serving import make_server

from appliance.projection import Projector
from tests.support.waiting import wait_for
from tests.support.web_support import TOKEN, XSS, bearer, make_app

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1280,900")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Story:
    """Events of runs as a source sends them, each at a time (minutes before now)."""

    def __init__(self):
        self.events = []

    def add(self, minutes_ago: float, type: str, **fields) -> str:
        at = NOW - timedelta(minutes=minutes_ago)
        self.events.append({"id": str(uuid4()), "type": type, "time": at.isoformat(), **fields})
        return fields.get("task_id") or fields.get("run_id")

    def run(self, minutes_ago, name, user, group, source, description=""):
        return self.add(minutes_ago, "run_started", run_id=str(uuid4()), name=name, user=user, group=group,
                        source=source, description=description)

    def task(self, run, name, start, end=None, job=None, error=None, version=None):
        """A task from `start` to `end` minutes ago (running when end is None)."""
        task = self.add(start, "task_created", run_id=run, task_id=str(uuid4()), name=name, version=version)
        self.add(start, "task_started", task_id=task)
        if job:
            self.add(start, "job_id", task_id=task, job_id=job)
        self.add(start, "log", run_id=run, task_id=task, message=f"rule {name}: submitted"
                 + (f" as Slurm job {job}" if job else ""))
        if error:
            self.add(end, "task_failed", task_id=task, error=error)
            self.add(end, "log", run_id=run, task_id=task, level="ERROR", message=f"rule {name}: {error}")
        elif end is not None:
            self.add(end, "task_finished", task_id=task, message="ok")
        return task


def realistic_history() -> tuple[list[dict], dict]:
    story = Story()
    qc = story.run(1500, "nightly-qc", "alice", "genomics", "snakemake")
    story.task(qc, "fastqc", 1499, 1490)
    story.add(1489, "run_finished", run_id=qc)

    rna = story.run(52, "rnaseq-alignment", "alice", "genomics", "snakemake", "batch 2024-05, 3 samples")
    for n, sample in enumerate(("s1", "s2", "s3")):
        story.task(rna, f"fastqc {sample}", 51.5 - n * 0.5, 48 - n, job=str(88120 + n))
        story.task(rna, f"trim {sample}", 47.5 - n, 43 - n, job=str(88130 + n))
        story.task(rna, f"star_align {sample}", 42.5 - n, 26 - n * 2, job=str(88140 + n))
    story.task(rna, "featurecounts", 21.5, 17, job="88150")
    story.add(17.5, "log", run_id=rna, level="WARNING", message="scratch disk 91% full")
    story.task(rna, "multiqc", 16.8, 15.5)
    story.add(15.4, "run_finished", run_id=rna)

    cell = story.run(34, "cellpose-segmentation", "bob", "imaging", "biomero", "plate 7, 384 wells")
    story.task(cell, "fetch_images", 33.5, 30, job="4710", version="2.1")
    story.task(cell, "segment", 29.5, 12, job="4711", version="2.1",
               error="MemoryError: out of memory on node c12 (64 GiB)")
    story.add(11.9, "run_failed", run_id=cell, error="segment failed: out of memory on node c12")

    variants = story.run(9, "variant-calling", "dana", "genomics", "snakemake")
    story.task(variants, "bwa_mem", 8.5, 4, job="88201")
    story.task(variants, "mark_duplicates", 3.8, 1.5, job="88202")
    story.task(variants, "haplotype_caller", 1.4, job="88203")
    story.task(variants, "haplotype_caller chr2", 1.2, job="88204")

    hostile = story.run(2, XSS, "carol", "imaging", "biomero")
    story.task(hostile, "export", 1.5, job="4799")
    story.add(0.5, "log", run_id=hostile, message=XSS)
    return story.events, {"rna": rna, "cell": cell, "hostile": hostile}


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
    """The app on a free loopback port, fed a realistic history through the ingest endpoint."""
    events, runs = realistic_history()
    yield from serve(database_url, tracker, events, runs)


def serve(database_url, tracker, events, runs):
    """(base URL, runs) of the app on a free loopback port once `events` went through
    ingest and the projector; the server stops when the generator is closed."""
    app = make_app(database_url)
    for start in range(0, len(events), 1000):
        response = app.test_client().post("/api/v1/events", json={"events": events[start:start + 1000]},
                                          headers=bearer(TOKEN))
        assert response.status_code == 200, response.json
    Projector(tracker).catch_up()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", runs
    server.shutdown()


def test_the_dashboard_shows_runs_with_their_status(browser, site, screenshots):
    base, _ = site
    browser.get(base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    names = [row.find_element(By.CSS_SELECTOR, "td a").text for row in rows]
    assert names == [XSS, "variant-calling", "cellpose-segmentation", "rnaseq-alignment", "nightly-qc"]
    badges = [row.find_element(By.CSS_SELECTOR, ".badge").text for row in rows]
    assert badges == ["running", "running", "failed", "completed", "completed"]
    assert "2/4" in rows[1].text and "dana / genomics" in rows[1].text
    # The payload shows as the text it is (names[0] above) and made no element.
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []
    browser.save_screenshot(str(screenshots / "dashboard.png"))


def test_a_failed_run_page_shows_its_error_first_and_a_timeline(browser, site, screenshots):
    base, runs = site
    browser.get(base + "/")
    browser.find_element(By.LINK_TEXT, "cellpose-segmentation").click()
    first = browser.find_element(By.CSS_SELECTOR, "main .error")
    assert "segment failed: out of memory on node c12" in first.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect.bar")) == 2
    tasks = browser.find_element(By.CSS_SELECTOR, "table.tasks").text
    assert "MemoryError" in tasks and "4711" in tasks and "17 min 30 s" in tasks
    browser.save_screenshot(str(screenshots / "run-failed.png"))


def test_a_completed_run_page_shows_its_timeline_and_log(browser, site, screenshots):
    base, runs = site
    browser.set_window_size(1280, 1300)
    browser.get(f"{base}/runs/{runs['rna']}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect.bar")) == 11
    assert "scratch disk 91% full" in browser.find_element(By.CSS_SELECTOR, "pre.log").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main .error")
    browser.save_screenshot(str(screenshots / "run-completed.png"))


def test_a_hostile_run_page_shows_the_payload_as_text(browser, site):
    base, runs = site
    browser.get(f"{base}/runs/{runs['hostile']}")
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text.startswith(XSS)
    assert XSS in browser.find_element(By.CSS_SELECTOR, "pre.log").text.splitlines()[-1]
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []


def test_the_jobs_page_lists_jobs_and_looks_one_up(browser, site, screenshots):
    base, runs = site
    browser.get(base + "/jobs")
    rows = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    jobs = {row.find_element(By.TAG_NAME, "td").text: row.text for row in rows}
    assert len(jobs) == 17  # every Slurm job of the history
    assert "export" in jobs["4799"] and "running" in jobs["4799"] and "carol / imaging" in jobs["4799"]
    assert "star_align s2" in jobs["88141"] and "rnaseq-alignment" in jobs["88141"]
    browser.save_screenshot(str(screenshots / "jobs.png"))
    lookup = browser.find_element(By.NAME, "job_id")
    lookup.send_keys("4711")
    lookup.submit()
    wait_for(lambda: browser.current_url.endswith("/jobs?job_id=4711&user=&group="), 5, message="the lookup")
    [row] = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert "segment" in row.text and "failed" in row.text and "bob / imaging" in row.text
    row.find_element(By.LINK_TEXT, "cellpose-segmentation").click()
    assert browser.current_url == f"{base}/runs/{runs['cell']}"


def test_the_changes_page_shows_the_feed_and_filters_it_by_table(browser, site, screenshots):
    base, _ = site
    browser.get(base + "/changes")
    tables = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "main tbody td:nth-child(3)")]
    assert {"workflow_runs", "job_executions", "log_entries", "job_accounting"} <= set(tables)
    assert set(cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "main tbody td:nth-child(4)")) \
        <= {"INSERT", "UPDATE"}
    browser.save_screenshot(str(screenshots / "changes.png"))
    Select(browser.find_element(By.NAME, "table")).select_by_value("log_entries")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(lambda: browser.current_url.endswith("/changes?table=log_entries"), 5, message="the filter")
    tables = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "main tbody td:nth-child(3)")]
    assert tables and set(tables) == {"log_entries"}


def test_the_system_page_shows_the_state_of_each_part(browser, site, screenshots):
    base, _ = site
    browser.get(base + "/system")
    # Keyed in lower case: the stylesheet shows the headings in capitals.
    rows = {row.find_element(By.TAG_NAME, "th").text.lower(): row.find_element(By.TAG_NAME, "td").text
            for row in browser.find_elements(By.CSS_SELECTOR, "table.system tr")}
    assert rows["database"] == "reachable"
    assert rows["schema"].startswith("at head revision ")
    assert rows["triggers"].startswith("installed ")
    assert rows["projector"].startswith("lag 0 events")
    # No supervisord in this test: health says so rather than "all well" (issue 17).
    assert rows["programs"].startswith("cannot be seen")
    assert browser.find_elements(By.CSS_SELECTOR, "table.system .state.ok")
    browser.save_screenshot(str(screenshots / "system.png"))


def test_the_dashboard_follows_new_runs_without_a_reload(browser, site, tracker):
    base, _ = site
    browser.get(base + "/")
    marker = browser.find_element(By.CSS_SELECTOR, "header")  # outside the part that refreshes
    tracker.start_workflow(tracker.initiate_workflow("arrived-later", "", "erin", "imaging"))
    Projector(tracker).catch_up()
    # The page refreshes every 5 s.
    wait_for(lambda: "arrived-later" in _text(browser, "table.runs"), 15, interval=0.5,
             message="the dashboard to refresh")
    assert browser.execute_script("return arguments[0].isConnected", marker)  # swapped in place, not reloaded


def _text(browser, selector):
    try:
        return browser.find_element(By.CSS_SELECTOR, selector).text
    except StaleElementReferenceException:  # swapped out between finding and reading
        return ""
