"""The plugin's LogHandler, the object Snakemake creates from its settings: what it
starts (or not) and with which settings, fed records captured from real runs
(plugins/snakemake-logger-plugin-appliance/tests/fixtures)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from snakemake_logger_plugin_appliance import LogHandler, LogHandlerSettings

FIXTURES = Path(__file__).resolve().parents[2] / "plugins/snakemake-logger-plugin-appliance/tests/fixtures"


def handler(fake, tmp_path, *, dryrun: bool = False, **settings) -> LogHandler:
    common = SimpleNamespace(dryrun=dryrun, quiet=None, printshellcmds=False, nocolor=True, debug_dag=False,
                             verbose=False, show_failed_logs=False, stdout=False)
    return LogHandler(common, LogHandlerSettings(url=fake.url, token="t", spool_dir=tmp_path / "spool", **settings))


def records(case: str) -> list[logging.LogRecord]:
    return [logging.makeLogRecord(json.loads(line)) for line in (FIXTURES / f"{case}.jsonl").read_text().splitlines()]


def test_a_dry_run_starts_no_sender_and_leaves_nothing(fake, tmp_path):
    threads = set(threading.enumerate())
    plugin = handler(fake, tmp_path, dryrun=True)
    dry = records("dryrun")
    assert any(record.__dict__.get("event") == "workflow_started" for record in dry)  # a run it could have sent
    for record in dry:
        plugin.emit(record)
    plugin.close()
    assert plugin._sender is None and set(threading.enumerate()) == threads
    assert fake.received == [] and not (tmp_path / "spool").exists()


def test_the_same_records_without_dry_run_are_sent(fake, tmp_path):
    # The positive twin of the dry-run test: these records do make events when the run is real.
    plugin = handler(fake, tmp_path)
    for record in records("dryrun"):
        plugin.emit(record)
    plugin.close()
    assert [event["type"] for event in fake.events][:2] == ["run_started", "log"]
    assert not list((tmp_path / "spool").rglob("*.jsonl"))


@pytest.mark.parametrize("configured, expected", [({}, 5.0), ({"exit_wait": 1.5}, 1.5)])
def test_the_exit_wait_setting_reaches_the_sender(fake, tmp_path, configured, expected):
    plugin = handler(fake, tmp_path, **configured)
    try:
        assert plugin._sender.exit_wait == expected
    finally:
        plugin.close()
