"""The write side: `WorkflowTracker`, an eventsourcing application, split by job.

- `application`: the WorkflowTracker itself, thin (load, call, save), with
  BIOMERO's method names and argument order;
- `batch`: the commands, recorded together and saved in ONE transaction
  (adding a task saves the task and its run together; `tracker.batch()` applies
  many at once, the ingest endpoint's entry point);
- `replay`: what happens after a version conflict (the batch is replayed on
  fresh state, a bounded number of times, the last under the write lock);
- `noop`: `NoOpWorkflowTracker`, BIOMERO's stand-in when tracking is off;
- `cache`: the in-process aggregate cache (what it holds, how a stale
  aggregate is brought up to date);
- arguments are checked by `appliance.validation`, the one domain of every
  value ingest and the tracker accept; the errors are `appliance.errors`.
"""

from appliance.errors import (
    ConcurrencyError,
    DatabaseUnavailableError,
    DuplicateIdError,
    InvalidArgumentError,
    TrackerError,
    UnknownIdError,
)
from appliance.tracker.batch import Batch
from appliance.tracker.application import WorkflowTracker
from appliance.tracker.noop import NoOpWorkflowTracker

__all__ = [
    "Batch", "ConcurrencyError", "DatabaseUnavailableError", "DuplicateIdError", "InvalidArgumentError",
    "NoOpWorkflowTracker", "TrackerError", "UnknownIdError", "WorkflowTracker",
]
