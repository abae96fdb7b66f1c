"""What a person sees: the dashboard, run pages, jobs, changes and system in headless Chromium.

Uses Debian's chromium and chromium-driver (no browser download); .ci/run
installs them. The runs arrive as a source would send them: through
POST /api/v1/events, with the times they happened. With UPDATE_SCREENSHOTS=1
the screenshots replace those in docs/screenshots/ (shown in the README);
otherwise they go to a temporary folder.
"""

from datetime import timedelta

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from appliance.projection import Projector
from tests.support.axe import dark_mode, violations
from tests.support.many_jobs import add_jobs
from tests.support.story import NOW, realistic_history, serve
from tests.support.waiting import wait_for
from tests.support.web_support import XSS


@pytest.fixture
def site(database_url, tracker):
    """The app on a free loopback port, fed a realistic history through the ingest endpoint."""
    events, runs = realistic_history()
    yield from serve(database_url, tracker, events, runs)


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


@pytest.fixture
def site_with_many_jobs(database_url, tracker):
    """The realistic history behind 10,001 newer jobs: its own jobs lie past the numbered pages."""
    add_jobs(database_url, 10_001, NOW + timedelta(days=1), prefix="gen-")
    events, runs = realistic_history()
    yield from serve(database_url, tracker, events, runs)


def job_ids(browser) -> list[str]:
    return [row.find_element(By.TAG_NAME, "td").text for row in browser.find_elements(By.CSS_SELECTOR, "main tbody tr")]


def test_the_jobs_page_goes_on_past_the_numbered_pages_to_the_oldest_job(browser, site_with_many_jobs):
    base, _ = site_with_many_jobs
    browser.get(base + "/jobs?page=100")
    assert "page 100 of 100+" in browser.find_element(By.CSS_SELECTOR, "nav.pager").text
    last_numbered = job_ids(browser)
    browser.find_element(By.PARTIAL_LINK_TEXT, "Older jobs").click()
    wait_for(lambda: "before=" in browser.current_url, 5, message="the page past the numbered ones")
    oldest = job_ids(browser)
    # The last of the 10,001 (which of three sharing its time is the task ids' order), then the history's 17.
    assert len(oldest) == 18 and oldest[0].startswith("gen-") and oldest[-1] == "88120"
    assert not any(job.startswith("gen-") for job in oldest[1:])
    assert "fastqc s1" in browser.find_elements(By.CSS_SELECTOR, "main tbody tr")[-1].text
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "Older jobs") == []
    assert browser.find_element(By.LINK_TEXT, "Newest jobs").get_attribute("href") == base + "/jobs"
    deep = browser.current_url
    for dark in (False, True):
        dark_mode(browser, dark)
        browser.get(deep)
        assert violations(browser) == [], "dark" if dark else "light"
    dark_mode(browser, False)
    browser.find_element(By.PARTIAL_LINK_TEXT, "Newer jobs").click()
    wait_for(lambda: "after=" in browser.current_url, 5, message="the newer page")
    assert job_ids(browser) == last_numbered


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
