"""The tracker's in-process aggregate cache: what it holds and how a stale copy is refreshed.

Aggregates come from the cache without a read per command (concurrency is
optimistic: a stale copy shows up as a version conflict at save). The cache
holds saved states only, never a failed batch's changes.
"""

from __future__ import annotations

from typing import Any, Iterable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate

from appliance.domain import LogLine, TrackedAggregate
from appliance.errors import UnknownIdError


def cache_env(size: int) -> dict[str, str]:
    """The library's settings for a cache of `size` runs and tasks (0: none)."""
    env = {"AGGREGATE_CACHE_FASTFORWARD": "n"}
    if size > 0:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(size)
    return env


def load(application: Application, aggregate_id: UUID, *, refresh: bool = False) -> TrackedAggregate:
    """A copy of the aggregate to change; with `refresh`, brought up to date from the store.

    A stale aggregate is brought up to date by applying the events stored after
    its version: a replay on a run of 10,000 tasks reads a few events, not all.
    """
    try:
        aggregate = application.repository.get(aggregate_id)
    except AggregateNotFoundError:
        raise UnknownIdError(f"no workflow run or task has the id {aggregate_id}") from None
    if refresh and application.repository.cache is not None:
        aggregate = project_aggregate(aggregate, application.events.get(aggregate_id, gt=aggregate.version))
    return aggregate


def to_save(aggregates: Iterable[TrackedAggregate]) -> list[Any]:
    """The aggregates to save, but log lines as their events only.

    Every aggregate saved goes into the library's cache, which is capped by
    count, not size: log lines (up to 1,000,000 characters, written once,
    never read by a command) would push out the runs and tasks it is for.
    Saved as events, a log line is stored the same and not cached.
    """
    saved: list[Any] = []
    for aggregate in aggregates:
        if isinstance(aggregate, LogLine):
            saved.extend(aggregate.collect_events())
        else:
            saved.append(aggregate)
    return saved
