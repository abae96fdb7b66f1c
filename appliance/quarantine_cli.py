"""`appliance quarantine`: what projection and the monitor set aside, to list, retry or discard.

    appliance quarantine [list]                      both kinds, oldest first
    appliance quarantine retry event ID... | all     apply the events again (after a fix);
                                                     BIOMERO's log's events are named WorkflowTracker:ID
    appliance quarantine retry change ID... | all    give the changes back to the monitor
    appliance quarantine discard event|change ID... | all

Exit 0 when every retry applied (or nothing was asked), 1 when something is
still set aside after a retry or an id was not found.
"""

from __future__ import annotations

import argparse
from typing import Any

from appliance import db
from appliance.config import Settings
from appliance.projection import quarantine, store

EXIT_OK, EXIT_LEFT = 0, 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action != "list" and (args.kind is None or not args.ids):
        print(f"appliance quarantine {args.action}: name `event` or `change`, then ids or `all`")
        return 2
    ids = None if args.ids == ["all"] else _ids(args.ids, args.kind)
    if args.action != "list" and ids == []:
        return 2
    connection = db.connect(settings.database_url, "appliance-quarantine")
    try:
        if args.action == "list":
            _print_list(connection)
            return EXIT_OK
        if args.kind == "event":
            return _events(args.action, connection, settings, ids)
        return _changes(args.action, connection, ids)
    finally:
        connection.close()


def _ids(texts: list[str], kind: str | None) -> list:
    """Change ids are numbers; event ids are (log, number), the appliance's log unless named."""
    parsed = []
    for text in texts:
        log_name, _, number = text.rpartition(":") if kind == "event" else ("", "", text)
        if not (number.isascii() and number.isdigit()) or log_name not in ("", store.BIOMERO.name):
            print(f"appliance quarantine: ids are whole numbers (as listed) or `all`, not {text!r}")
            return []
        parsed.append((log_name or store.APPLIANCE.name, int(number)) if kind == "event" else int(number))
    return parsed


def _event_name(application: str, notification_id: int) -> str:
    return str(notification_id) if application == store.APPLIANCE.name else f"{application}:{notification_id}"


def _print_list(connection: Any) -> None:
    events, changes = quarantine.quarantined_events(connection), quarantine.given_up_changes(connection)
    print(f"events set aside by the projector: {len(events)}")
    for e in events:
        print(f"  event {_event_name(e['application_name'], e['notification_id'])}: "
              f"{e['topic'].rpartition('.')[2]} of {e['originator_id']} "
              f"(version {e['originator_version']}), since {e['quarantined_at']:%Y-%m-%d %H:%M:%S %Z}, "
              f"retried {e['retries']} times: {e['error']}")
    print(f"changes the monitor gave up on: {len(changes)}")
    for c in changes:
        print(f"  change {c['id']}: {c['operation']} {c['table_name']} {c['row_key']}, "
              f"after {c['attempts']} attempts: {c['last_error']}")


def _events(action: str, connection: Any, settings: Settings, ids: list[tuple[str, int]] | None) -> int:
    if ids is None:
        ids = [(e["application_name"], e["notification_id"]) for e in quarantine.quarantined_events(connection)]
    names = [_event_name(*i) for i in ids]
    if action == "discard":
        found = [_event_name(*i) for i in ids if quarantine.discard_event(connection, *i)]
        return _report("discarded", "event", names, found)
    from appliance.projection import biomero
    from appliance.tracker import WorkflowTracker  # the mappers that decode events

    tracker = WorkflowTracker(settings)
    try:
        mappers = {store.APPLIANCE.name: tracker.mapper, store.BIOMERO.name: biomero.mapper_like(tracker.mapper)}
        results = [quarantine.retry_event(connection, mappers, *i, biomero_views=settings.biomero_views) for i in ids]
    finally:
        tracker.close()
    for name, result in zip(names, results):
        print(f"event {name}: " + ("applied" if result.applied else f"still set aside: {result.error}"))
    return EXIT_OK if all(result.applied for result in results) else EXIT_LEFT


def _changes(action: str, connection: Any, ids: list[int] | None) -> int:
    if ids is None:
        ids = [c["id"] for c in quarantine.given_up_changes(connection)]
    if action == "retry":
        return _report("given back to the monitor", "change", ids, quarantine.retry_changes(connection, ids))
    return _report("discarded", "change", ids, quarantine.discard_changes(connection, ids))


def _report(done: str, kind: str, asked: list, found: list) -> int:
    for i in asked:
        print(f"{kind} {i}: {done}" if i in found else f"{kind} {i}: not set aside (no such {kind} in the list)")
    return EXIT_OK if set(asked) <= set(found) else EXIT_LEFT
