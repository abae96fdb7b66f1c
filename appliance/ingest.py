"""Source-neutral events in, tracker commands out: the core of `POST /api/v1/events`.

A batch is checked whole first, so the error names every bad event; then it
is applied in one tracker batch: all of it or nothing. Every event carries a
client-made `id`; an event applied before is skipped, so a source may resend
freely. The format is documented in docs/ingest.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from appliance import validation as valid
from appliance.tracker import Batch, TrackerError, WorkflowTracker
from appliance.validation import Domain
from appliance.vocabulary import DEFAULT_LOG_LEVEL

COMMON_FIELDS = ("id", "type", "time")
TASK_DETAILS = ("inputs", "outputs", "log_files", "benchmark", "conda_env", "container", "host")


class IngestError(ValueError):
    """Some events of a batch are bad; nothing of the batch was stored."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__(f"{len(problems)} bad event(s); nothing of this batch was stored")


@dataclass(frozen=True)
class Field:
    domain: Domain  # appliance.validation's: the check and its JSON schema
    required: bool = True


@dataclass(frozen=True)
class EventType:
    fields: dict[str, Field]
    apply: Callable[[Batch, dict, datetime | None], Any]
    check: Callable[[dict], None] | None = None  # of fields together, once each is fine: ValueError


@dataclass(frozen=True)
class IngestResult:
    applied: int
    duplicates: int


def _done_of_total(fields: dict) -> None:
    if fields["done"] > fields["total"]:
        raise ValueError(f"done: must not exceed total ({fields['done']} > {fields['total']})")


def _edges_join_rules(fields: dict) -> None:
    valid.edges_within(fields["rules"], fields["edges"])


def _required(domain: Domain) -> Field:
    return Field(domain)


def _optional(domain: Domain) -> Field:
    return Field(domain, required=False)


RUN_FIELDS = {
    "run_id": _required(valid.UUID_DOMAIN), "name": _required(valid.NAME), "description": _optional(valid.ANY_TEXT),
    "user": _optional(valid.NAME), "group": _optional(valid.NAME), "source": _optional(valid.NAME),
    "params": _optional(valid.OBJECT),
}


def _create_run(batch: Batch, e: dict, at: datetime | None) -> None:
    batch.initiate_workflow(
        e["name"], e.get("description") or "", e.get("user"), e.get("group"),
        source=e.get("source"), params=e.get("params"), workflow_id=e["run_id"], at=at,
    )


def _start_run(batch: Batch, e: dict, at: datetime | None) -> None:
    if "name" in e:
        _create_run(batch, e, at)
    batch.start_workflow(e["run_id"], at=at)


EVENT_TYPES: dict[str, EventType] = {
    "run_created": EventType(RUN_FIELDS, _create_run),
    "run_started": EventType({**RUN_FIELDS, "name": _optional(valid.NAME)}, _start_run),
    "run_finished": EventType(
        {"run_id": _required(valid.UUID_DOMAIN)},
        lambda b, e, at: b.complete_workflow(e["run_id"], at=at)),
    "run_failed": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "error": _required(valid.TEXT)},
        lambda b, e, at: b.fail_workflow(e["run_id"], e["error"], at=at)),
    "run_cancelled": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "reason": _optional(valid.ANY_TEXT)},
        lambda b, e, at: b.cancel_workflow(e["run_id"], e.get("reason"), at=at)),
    "run_progress": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "done": _required(valid.COUNT), "total": _required(valid.COUNT)},
        lambda b, e, at: b.update_workflow_progress(e["run_id"], e["done"], e["total"], at=at),
        check=_done_of_total),
    "run_planned": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "jobs": _required(valid.COUNTS), "total": _required(valid.COUNT)},
        lambda b, e, at: b.plan_workflow(e["run_id"], e["jobs"], e["total"], at=at)),
    "rule_graph": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "rules": _required(valid.NAMES), "edges": _required(valid.EDGES)},
        lambda b, e, at: b.record_rule_graph(e["run_id"], e["rules"], e["edges"], at=at),
        check=_edges_join_rules),
    "heartbeat": EventType(
        {"run_id": _required(valid.UUID_DOMAIN)},
        lambda b, e, at: b.record_heartbeat(e["run_id"], at=at)),
    "task_created": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "run_id": _required(valid.UUID_DOMAIN), "name": _required(valid.NAME),
         "version": _optional(valid.NAME), "input": _optional(valid.OBJECT), "params": _optional(valid.OBJECT)},
        lambda b, e, at: b.add_task_to_workflow(
            e["run_id"], e["name"], e.get("version"), e.get("input"), e.get("params"),
            task_id=e["task_id"], at=at)),
    "task_started": EventType(
        {"task_id": _required(valid.UUID_DOMAIN)},
        lambda b, e, at: b.start_task(e["task_id"], at=at)),
    "task_details": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "inputs": _optional(valid.PATHS), "outputs": _optional(valid.PATHS),
         "log_files": _optional(valid.PATHS), "benchmark": _optional(valid.PATH), "conda_env": _optional(valid.NAME),
         "container": _optional(valid.NAME), "host": _optional(valid.NAME)},
        lambda b, e, at: b.record_task_details(e["task_id"], at=at, **{name: e.get(name) for name in TASK_DETAILS})),
    "task_resources": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "usage": _required(valid.MEASUREMENTS)},
        lambda b, e, at: b.record_task_resources(e["task_id"], e["usage"], at=at)),
    "job_id": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "job_id": _required(valid.JOB_ID)},
        lambda b, e, at: b.add_job_id(e["task_id"], e["job_id"], at=at)),
    "task_status": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "status": _required(valid.NAME)},
        lambda b, e, at: b.update_task_status(e["task_id"], e["status"], at=at)),
    "task_progress": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "progress": _required(valid.PROGRESS)},
        lambda b, e, at: b.update_task_progress(e["task_id"], e["progress"], at=at)),
    "task_result": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "result": _required(valid.ANY_JSON)},
        lambda b, e, at: b.add_result(e["task_id"], e["result"], at=at)),
    "task_finished": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "message": _optional(valid.ANY_TEXT)},
        lambda b, e, at: b.complete_task(e["task_id"], e.get("message"), at=at)),
    "task_failed": EventType(
        {"task_id": _required(valid.UUID_DOMAIN), "error": _required(valid.TEXT)},
        lambda b, e, at: b.fail_task(e["task_id"], e["error"], at=at)),
    "log": EventType(
        {"run_id": _required(valid.UUID_DOMAIN), "message": _required(valid.TEXT), "level": _optional(valid.LEVEL),
         "task_id": _optional(valid.UUID_DOMAIN)},
        lambda b, e, at: b.record_log(
            e["run_id"], e["message"], level=e.get("level") or DEFAULT_LOG_LEVEL, task_id=e.get("task_id"),
            log_id=e["id"], at=at)),
}


@dataclass(frozen=True)
class ParsedEvent:
    index: int
    id: UUID
    type: str
    time: datetime | None
    fields: dict


def parse_batch(payload: Any) -> list[ParsedEvent]:
    """Check a request body `{"events": [...]}`; IngestError names every bad event."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise IngestError([{"index": None, "id": None, "error": 'the body must be a JSON object {"events": [...]}'}])
    unknown_keys = sorted(set(payload) - {"events"})
    if unknown_keys:
        raise IngestError([{"index": None, "id": None, "error": f"unknown top-level field(s): {', '.join(map(valid.shown, unknown_keys))}"}])
    parsed, problems, seen = [], [], set()
    for index, raw in enumerate(payload["events"]):
        try:
            event = _parse_event(index, raw)
            if event.id in seen:
                raise ValueError("id: used by an earlier event of this batch")
            seen.add(event.id)
            parsed.append(event)
        except ValueError as error:
            problems.append(_problem(index, raw, str(error)))
    if problems:
        raise IngestError(problems)
    return parsed


def apply_batch(tracker: WorkflowTracker, events: list[ParsedEvent]) -> IngestResult:
    """Apply checked events in one transaction, skipping those applied before.

    IngestError names every event the tracker refused (nothing is stored then);
    an event after a refused one may be refused because of it.
    """

    def apply_all(batch: Batch) -> None:
        # One replayable call: a replay after a conflict checks its own problems.
        problems: list[dict] = []
        batch.apply_once([(event.id, _command(event, problems)) for event in events])
        if problems:
            raise IngestError(problems)  # the batch is not saved

    with tracker.batch() as batch:
        batch.run(apply_all)
    return IngestResult(applied=len(batch.receipts), duplicates=len(events) - len(batch.receipts))


def _command(event: ParsedEvent, problems: list[dict]) -> Callable[[Batch], None]:
    def command(batch: Batch) -> None:
        try:
            EVENT_TYPES[event.type].apply(batch, event.fields, event.time)
        except TrackerError as error:
            # Go on to name the batch's other bad events too; the batch is refused in the end.
            problems.append({"index": event.index, "id": str(event.id), "type": event.type, "error": str(error)})

    return command


def _parse_event(index: int, raw: Any) -> ParsedEvent:
    if not isinstance(raw, dict):
        raise ValueError("an event must be a JSON object")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"type: must be one of {known}")
    spec = EVENT_TYPES[event_type]
    unknown = sorted(set(raw) - set(spec.fields) - set(COMMON_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) for {event_type}: {', '.join(map(valid.shown, unknown))}")
    fields = {"id": _checked(raw, "id", _required(valid.UUID_DOMAIN))}
    for name, field in spec.fields.items():
        if raw.get(name) is not None or field.required:
            fields[name] = _checked(raw, name, field)
    at = _checked(raw, "time", _optional(valid.TIME)) if raw.get("time") is not None else None
    if spec.check is not None:
        spec.check(fields)
    return ParsedEvent(index=index, id=fields["id"], type=event_type, time=at, fields=fields)


def _checked(raw: dict, name: str, field: Field) -> Any:
    if raw.get(name) is None:
        raise ValueError(f"{name}: is required")
    return field.domain.check(raw[name], name)  # InvalidArgumentError (a ValueError) naming the field


def _problem(index: int, raw: Any, error: str) -> dict:
    event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    event_type = raw.get("type") if isinstance(raw, dict) and isinstance(raw.get("type"), str) else None
    return {"index": index, "id": event_id and valid.shown(event_id[:64]),
            "type": event_type and valid.shown(event_type[:64]), "error": error}
