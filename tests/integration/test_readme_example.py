"""The README's Python example runs as written, and its error classes are where it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import appliance
from tests.support.sql import query

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_python_example_records_what_it_says(database_url, monkeypatch):
    example = re.search(r"```python\n(.*?)```", README, re.S)[1]
    monkeypatch.setenv("DATABASE_URL", database_url)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    namespace["tracker"].close()
    # Two runs, each with the events the example recorded (the views follow once a projector runs).
    runs = {str(namespace["run"]), str(namespace["other"])}
    tables = [row[0] for row in query(database_url, "SELECT table_name FROM information_schema.tables "
                                                    "WHERE table_name = 'appliance_events'")]
    assert tables, "the appliance's event table"
    recorded = {row[0] for row in query(database_url, "SELECT DISTINCT originator_id::text FROM appliance_events")}
    assert runs <= recorded


def test_the_error_classes_it_names_are_importable_and_raised():
    named = set(re.findall(r"`(\w+Error)`", README))
    assert named >= {"UnknownIdError", "InvalidArgumentError", "ConcurrencyError"}
    for name in named:
        assert issubclass(getattr(appliance, name), Exception), name


def test_an_unknown_id_raises_unknown_id_error(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    tracker = appliance.WorkflowTracker()
    try:
        with pytest.raises(appliance.UnknownIdError):
            tracker.start_workflow("00000000-0000-0000-0000-000000000000")
    finally:
        tracker.close()
