"""Reading the pages in Chromium: accessibility (axe-core, light and dark), no
horizontal overflow at 400 and 1,400 px with hostile long names, live updates that
keep your place (scroll, focus, selection, typed filters) and cost under 1 KB while
nothing changes, and the rule graph's click that filters the task table."""

import pytest
from selenium.webdriver.common.by import By

from appliance.projection import Projector
from tests.support.axe import dark_mode, violations
from tests.support.story import Story, realistic_history, serve
from tests.support.waiting import wait_for

PATH = "/scratch/" + "very_long_directory_name/" * 30 + "reads.fastq.gz"


def hostile_history(story: Story) -> dict:
    """A running run with names, paths and messages no table was made for, and a task
    whose traceback is long, plus a log long enough to scroll."""
    run = story.run(20, "w" * 200, "u" * 120, "g" * 80, "snakemake", "d" * 500)
    first = story.task(run, "rule_" + "a" * 150, 19, 15, job="9" * 60)
    story.task(run, "align", 14, 10, error="Traceback (most recent call last):\n"
               + f'  File "{PATH}", line 7\n' * 30 + f"OSError: cannot read {PATH}: exit status 137")
    story.task(run, "count", 9)
    for n in range(120):
        story.add(8 - n / 20, "log", run_id=run, message=f"line {n} {PATH if n % 10 == 0 else ''}")
    return {"hostile_long": run, "hostile_task": first}


@pytest.fixture
def site(database_url, tracker):
    events, runs = realistic_history()
    story = Story()
    runs.update(hostile_history(story))
    yield from serve(database_url, tracker, events + story.events, runs)


# The elements that reach past the window's right edge, outermost first (what to fix).
WIDEST = """return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .filter(e => !(e.parentElement.closest('svg')))  // clipped by their drawing
  .slice(0, 5).map(e => e.tagName + '.' + e.className.baseVal + e.className + ' ' +
                        Math.round(e.getBoundingClientRect().right))"""


def pages(runs) -> list[str]:
    long_run = runs["hostile_long"]
    return ["/", "/?user=alice", f"/runs/{runs['rna']}", f"/runs/{runs['cell']}", f"/runs/{long_run}",
            f"/runs/{long_run}?status=failed", f"/runs/{long_run}/logs", f"/runs/{long_run}/tasks/{runs['hostile_task']}",
            "/jobs", "/changes", "/system", "/runs/not-a-uuid"]


def test_every_page_has_no_accessibility_violations_in_light_and_dark(browser, site):
    base, runs = site
    found = {}
    for dark in (False, True):
        dark_mode(browser, dark)
        for path in pages(runs):
            browser.get(base + path)
            problems = violations(browser)
            if problems:
                found[(path, "dark" if dark else "light")] = problems
    assert found == {}


@pytest.mark.parametrize("width", [400, 1400])
def test_no_page_is_wider_than_the_window_even_with_hostile_long_names(browser, site, width):
    base, runs = site
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    wider = {}
    for path in pages(runs):
        browser.get(base + path)
        if browser.execute_script("return document.documentElement.scrollWidth") > width:
            wider[path] = browser.execute_script(WIDEST)
    assert wider == {}


def test_live_updates_keep_scroll_selection_focus_and_typed_filters(browser, site, tracker):
    base, runs = site
    run = runs["hostile_long"]
    browser.get(f"{base}/runs/{run}")
    log = browser.find_element(By.ID, "log-lines")
    browser.execute_script("arguments[0].scrollTop = 300", log)
    selected = browser.execute_script(
        "const range = document.createRange(); range.selectNodeContents(document.querySelector('.facts dd'));"
        "getSelection().removeAllRanges(); getSelection().addRange(range); return getSelection().toString()")
    arrives(browser, tracker, run, "arrived while selecting")
    assert browser.execute_script("return document.getElementById('log-lines').scrollTop") == 300
    assert browser.execute_script("return getSelection().toString()") == selected

    search = browser.find_element(By.NAME, "q")
    search.send_keys("typed, not sent")
    arrives(browser, tracker, run, "arrived while typing")
    assert browser.switch_to.active_element == search and search.get_attribute("value") == "typed, not sent"
    assert browser.execute_script("return document.getElementById('log-lines').scrollTop") == 300
    assert "live · updated" in browser.find_element(By.CSS_SELECTOR, ".live-status").text


def arrives(browser, tracker, run, message):
    """A log line recorded now, and the page's log showing it (live.js refreshes every 5 s)."""
    tracker.record_log(run, message)
    Projector(tracker).catch_up()
    wait_for(lambda: message in browser.execute_script("return document.getElementById('log-lines').textContent"),
             20, interval=0.5, message=f"the log to show {message!r}")


def test_an_unchanged_page_costs_under_a_kilobyte_a_refresh_and_a_finished_run_does_not_refresh(browser, site):
    base, runs = site
    browser.get(f"{base}/runs/{runs['hostile_long']}")
    sizes = "return performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch')" \
            ".map(e => e.transferSize)"
    wait_for(lambda: len(browser.execute_script(sizes)) >= 2, 20, interval=0.5, message="two refreshes")
    assert all(0 < size < 1024 for size in browser.execute_script(sizes)), browser.execute_script(sizes)
    browser.get(f"{base}/runs/{runs['rna']}")  # completed
    assert browser.find_element(By.ID, "live").get_attribute("data-refresh") == "0"
    assert browser.find_elements(By.CSS_SELECTOR, ".live-status") == []


def test_a_click_on_a_rule_in_the_graph_filters_the_task_table(browser, site):
    base, runs = site
    browser.get(f"{base}/runs/{runs['hostile_long']}")
    browser.find_element(By.CSS_SELECTOR, "svg.graph a.failed").click()
    wait_for(lambda: "rule=align" in browser.current_url, 5, message="the filtered page")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.tasks tbody tr")
    assert len(rows) == 1 and rows[0].text.startswith("align")
    assert "exit status 137" in rows[0].text and "clear filters" in browser.page_source


def test_a_run_on_a_phone_and_in_dark_mode(browser, site, screenshots):
    base, runs = site
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 400, "height": 1400, "deviceScaleFactor": 1, "mobile": True})
    browser.get(f"{base}/runs/{runs['hostile_long']}")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
    browser.save_screenshot(str(screenshots / "run-phone.png"))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.set_window_size(1280, 1300)
    dark_mode(browser, True)
    browser.get(f"{base}/runs/{runs['rna']}")
    assert browser.execute_script("return getComputedStyle(document.body).backgroundColor") == "rgb(18, 21, 27)"
    browser.save_screenshot(str(screenshots / "run-dark.png"))
