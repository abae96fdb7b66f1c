"""`appliance status`: the system page's state on the command line, with an exit code.

The same state as `/system` and `/api/v1/system` (appliance.system), read
straight from the database and supervisor's socket, so it answers even when
the web program is down. Exit 0 when every part is as it should be, 1 when
something needs attention (each problem is printed; appliance.health decides),
3 when the database cannot be reached. Programs it cannot see need attention
too, unless --database-only says they are looked after elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from appliance import db
from appliance.config import Settings
from appliance.health import problems
from appliance.system import supervisor_programs, system_state

EXIT_OK, EXIT_ATTENTION, EXIT_UNREACHABLE = 0, 1, 3


def read_status(settings: Settings) -> dict[str, Any]:
    """The parts' state; {"database": "unreachable", ...} when it cannot be read."""
    try:
        connection = db.connect(settings.database_url, "appliance-status")
    except db.DISCONNECTED as error:
        # libpq's message names host and port, never the password.
        return {"database": "unreachable", "reason": db.first_line(error),
                "programs": supervisor_programs(settings.web.run_dir)}
    try:
        with connection.transaction(dict_rows=True) as cursor:
            return system_state(cursor, settings)
    finally:
        connection.close()


def render(state: dict[str, Any], found: list[str]) -> str:
    """A short human-readable report: one line per part, then the problems."""
    if state["database"] != "reachable":
        lines = ["database: unreachable", *_program_lines(state["programs"])]
        return "\n".join(lines + [f"problem: {p}" for p in found]) + "\n"
    schema, triggers, projector = state["schema"], state["triggers"], state["projector"]
    lines = [
        "database: reachable",
        f"schema: {schema['revision'] or 'not installed'} (head {schema['head']})",
        f"triggers: {len(triggers['installed'])} installed",
        "projector: " + ("not started" if projector is None or projector["position"] is None else
                         f"at event {projector['position']} of {projector['newest_event']} "
                         f"({projector['lag_events']} behind)"),
        f"change backlog: {_or_none(state['change_backlog'])}",
        f"set aside: {_set_aside(state['health']['set_aside'])}",
    ]
    biomero_log = state.get("biomero_log")
    if biomero_log is not None:
        lines.append("BIOMERO's log (read only): " + (
            "not followed yet" if biomero_log["position"] is None else
            f"at event {biomero_log['position']} of {biomero_log['newest_event']} ({biomero_log['lag_events']} behind)"))
    lines += [f"skipped: {s['events']} events of unknown topic {s['topic']} in {s['log']}'s log"
              for s in state.get("skipped_topics") or []]
    lines += [f"monitor {m['host']}:{m['pid']}: last seen {m['seconds_ago']} s ago, backlog {m['backlog']}, "
              f"handled {m['handled']}" for m in state["monitors"] or []]
    lines += _program_lines(state["programs"])
    lines += [f"problem: {p}" for p in found] or ["all parts are as they should be"]
    return "\n".join(lines) + "\n"


def _program_lines(programs: list[dict[str, Any]] | None) -> list[str]:
    if programs is None:
        return ["programs: cannot be seen (no answer on supervisord's socket)"]
    return [f"program {p['name']}: {p['state']} {p['description']}".rstrip() for p in programs]


def _set_aside(set_aside: dict[str, int] | None) -> str:
    if set_aside is None:
        return "unknown (the views are not installed)"
    return f"{set_aside['events']} events by the projector, {set_aside['changes']} changes by the monitor"


def _or_none(value: Any) -> str:
    return "unknown (the views are not installed)" if value is None else str(value)


def status_command(settings: Settings, *, as_json: bool, database_only: bool = False) -> int:
    state = read_status(settings)
    found = problems(state, settings, programs_expected=not database_only)
    if as_json:
        print(json.dumps({**state, "problems": found}, indent=2, default=str))
    else:
        print(render(state, found), end="")
    if state["database"] != "reachable":
        return EXIT_UNREACHABLE
    return EXIT_ATTENTION if found else EXIT_OK
