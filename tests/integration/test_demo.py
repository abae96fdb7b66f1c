"""appliance demo: realistic runs (seconds to minutes, a traceback, a retry, a stale run), the same with --seed."""

from __future__ import annotations

from appliance.config import Settings
from appliance.demo import run_demo
from appliance.projection import Projector
from tests.support.sql import query


def recorded(database_url: str, seed: int) -> list[tuple]:
    settings = Settings.from_env({"DATABASE_URL": database_url})
    run_demo(settings, runs=6, seed=seed)
    from appliance import WorkflowTracker

    tracker = WorkflowTracker(database_url=database_url)
    try:
        Projector(tracker).catch_up()
    finally:
        tracker.close()
    return query(database_url, "SELECT params->>'seed_case', workflow_name, status, user_name, tasks_total, "
                               "round(duration_seconds), error_message, now() - last_event_at "
                               "FROM workflow_runs ORDER BY started_at")


def test_the_demo_shows_the_cases_worth_seeing(database_url):
    runs = {row[0]: row for row in recorded(database_url, seed=7)}
    assert set(runs) >= {"traceback", "retry", "stale"}
    assert runs["traceback"][2] == "failed"
    failures = query(database_url, "SELECT error_message FROM job_executions WHERE status = 'failed'")
    assert any("Traceback (most recent call last)" in row[0] for row in failures)
    retried = query(database_url, "SELECT run_id, task_name FROM job_executions GROUP BY 1, 2 HAVING count(*) = 2")
    assert retried, "a task tried twice"
    assert runs["retry"][2] == "completed"
    assert runs["stale"][2] in ("running", "stale") and runs["stale"][7].total_seconds() > 300
    durations = [row[5] for row in runs.values() if row[5] is not None]
    assert min(durations) >= 2 and max(durations) >= 60  # seconds to minutes, not a flat timeline


def test_the_same_seed_records_the_same_runs(database_url, empty_database_url):
    from tests.support.schema import prepare_schema

    prepare_schema(empty_database_url)
    first = [row[:7] for row in recorded(database_url, seed=42)]
    second = [row[:7] for row in recorded(empty_database_url, seed=42)]
    assert first == second


def test_live_keeps_a_run_going_until_ctrl_c(database_url, tmp_path):
    import os
    import signal
    import subprocess

    from tests.support.appliance_process import VENV_BIN
    from tests.support.signals import default_sigint
    from tests.support.waiting import wait_for

    log = tmp_path / "demo.log"
    with open(log, "w") as output:
        demo = subprocess.Popen([str(VENV_BIN / "appliance"), "demo", "--runs", "1", "--seed", "1", "--live"],
                                env={**os.environ, "DATABASE_URL": database_url}, stdout=output,
                                stderr=subprocess.STDOUT, preexec_fn=default_sigint)
    try:
        wait_for(lambda: "a live run" in log.read_text() or demo.poll() is not None, 60, interval=0.2,
                 message="the live run")
        wait_for(lambda: query(database_url, "SELECT count(*) FROM appliance_events")[0][0] > 40, 60,
                 interval=0.5, message="the live run's tasks")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "the live run ended after" in log.read_text()
