"""A run captured as JSON lines of Snakemake's log records, turned into the appliance's events.

The format is the plugin's capture fixtures' (tests/capture.py): one record a
line, its attributes as JSON (`msg`, `levelname`, `created`, `event`, ...).
Used by `python -m snakemake_logger_plugin_appliance replay FILE` to import
runs, and by tests.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from snakemake_logger_plugin_appliance.mapping import Metadata, RunMapper


class ReplayError(ValueError):
    """The file is not a capture of log records; the message names the line."""


def read_records(path: Path) -> list[logging.LogRecord]:
    records = []
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
            except ValueError as error:
                raise ReplayError(f"{path}, line {number}: not JSON ({error})") from None
            if not isinstance(fields, dict):
                raise ReplayError(f"{path}, line {number}: not a JSON object (a log record's attributes)")
            records.append(logging.makeLogRecord(fields))
    return records


def replay_events(records: list[logging.LogRecord], metadata: Metadata | None = None, *,
                  new_id: bool = False, warn=lambda text: None) -> list[dict]:
    """The events of the run the records tell, as the plugin would have sent them.
    With `new_id`, the run gets a fresh id (to import one capture again)."""
    mapper = RunMapper(metadata or Metadata(), warn=warn)
    fresh = str(uuid.uuid4())
    events = []
    for record in records:
        if new_id and getattr(record, "event", None) == "workflow_started":
            record.workflow_id = fresh
        events += mapper.map(record)
    return events + mapper.finish()
