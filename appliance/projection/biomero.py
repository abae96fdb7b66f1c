"""BIOMERO's events, read from its own log without importing BIOMERO.

BIOMERO 2.8's tracker (`biomero.eventsourcing`, an eventsourcing Application
also called WorkflowTracker) stores events with topics such as
`biomero.eventsourcing:WorkflowRun.WorkflowInitiated` in
`workflowtracker_events`. Each topic is registered here to a stand-in class
(`eventsourcing.utils.register_topic`), so the library's Mapper decodes them
as it decodes the appliance's own; `translate` then gives the appliance's
event that means the same, with BIOMERO's values kept (OMERO user and group
ids as ints, Slurm job ids as ints, input data of any JSON shape, progress
None), so the projection rules have one vocabulary. BIOMERO's aggregates
start at version 0; the projector reads the notification log, which has no
versions to skip.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import register_topic

from appliance.domain import Task, WorkflowRun

MODULE = "biomero.eventsourcing"
SOURCE = "biomero"  # the source shown for BIOMERO's runs

# BIOMERO's event (by its qualified name) -> (the appliance's event, BIOMERO's
# field names that the appliance's event calls otherwise, fields BIOMERO's lacks).
MEANINGS: dict[str, tuple[type, dict[str, str], dict[str, Any]]] = {
    "WorkflowRun.WorkflowInitiated": (WorkflowRun.Initiated, {}, {"source": SOURCE, "params": {}}),
    "WorkflowRun.TaskAdded": (WorkflowRun.TaskAdded, {}, {}),
    "WorkflowRun.WorkflowStarted": (WorkflowRun.Started, {}, {}),
    "WorkflowRun.WorkflowCompleted": (WorkflowRun.Completed, {}, {}),
    "WorkflowRun.WorkflowFailed": (WorkflowRun.Failed, {}, {}),
    "Task.TaskCreated": (Task.Created, {"workflow_id": "run_id"}, {}),
    "Task.JobIdAdded": (Task.JobIdAdded, {}, {}),
    "Task.StatusUpdated": (Task.StatusUpdated, {}, {}),
    "Task.ProgressUpdated": (Task.ProgressUpdated, {}, {}),
    "Task.ResultAdded": (Task.ResultAdded, {}, {}),
    "Task.TaskStarted": (Task.Started, {}, {}),
    "Task.TaskCompleted": (Task.Completed, {"result": "message"}, {}),
    "Task.TaskFailed": (Task.Failed, {}, {}),
}


class BiomeroEvent(Aggregate.Event):
    """A BIOMERO event as stored; `translate` gives the appliance's (by its class's `meaning`)."""


def _stand_in(qualname: str) -> type:
    stand_in = type(qualname.replace(".", ""), (BiomeroEvent,), {"__module__": __name__})
    stand_in.meaning = MEANINGS[qualname]
    register_topic(f"{MODULE}:{qualname}", stand_in)
    return stand_in


STAND_INS = {qualname: _stand_in(qualname) for qualname in MEANINGS}


def translate(event: Any) -> Any:
    """The appliance's event meaning what a BIOMERO event means (other events unchanged)."""
    if not isinstance(event, BiomeroEvent):
        return event
    kind, renamed, missing = type(event).meaning
    state = {**missing, **event.__dict__}
    for theirs, ours in renamed.items():
        state[ours] = state.pop(theirs)
    translated = object.__new__(kind)
    object.__setattr__(translated, "__dict__", state)  # as the library's Mapper builds events
    return translated


class BiomeroMapper(Mapper):
    """The library's Mapper, giving BIOMERO's events as the appliance's."""

    def to_domain_event(self, stored_event: Notification) -> Any:
        return translate(super().to_domain_event(stored_event))


def mapper_like(mapper: Mapper) -> BiomeroMapper:
    """A BiomeroMapper with the appliance mapper's transcoder (BIOMERO uses the library's default too)."""
    return BiomeroMapper(transcoder=mapper.transcoder)
