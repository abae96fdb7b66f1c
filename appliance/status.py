"""`appliance status`: the system page's state on the command line, with an exit code.

The same state as `/system` and `/api/v1/system` (appliance.web.system), read
straight from the database and supervisor's socket, so it answers even when
the web program is down. Exit 0 when every part is as it should be, 1 when
something needs attention (each problem is printed), 3 when the database
cannot be reached.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import psycopg2.extras

from appliance.config import Settings
from appliance.db import KEEPALIVE_ARGS, error_summary, libpq_dsn
from appliance.web.system import supervisor_programs, system_state

EXIT_OK, EXIT_ATTENTION, EXIT_UNREACHABLE = 0, 1, 3
# A monitor whose heartbeat is older than this many poll intervals is taken as gone.
MONITOR_SILENT_POLLS = 6


def read_status(settings: Settings) -> dict[str, Any]:
    """The parts' state; {"database": "unreachable", ...} when it cannot be read."""
    try:
        connection = psycopg2.connect(libpq_dsn(settings.database_url), application_name="appliance-status",
                                      **KEEPALIVE_ARGS)
    except psycopg2.OperationalError as error:
        # libpq's message names host and port, never the password.
        return {"database": "unreachable", "reason": error_summary(error),
                "programs": supervisor_programs(settings.web.run_dir)}
    try:
        with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            return system_state(cursor, settings)
    finally:
        connection.close()


def problems(state: dict[str, Any], settings: Settings) -> list[str]:
    """What an operator should look at, one sentence each; empty when all is well."""
    if state["database"] != "reachable":
        return [f"the database is unreachable: {state['reason']}", *_program_problems(state["programs"])]
    found = []
    schema = state["schema"]
    if not schema["at_head"]:
        found.append(f"the schema is at {schema['revision'] or 'nothing'}, not at head {schema['head']}: "
                     "run `appliance init`")
    if settings.install_triggers and not state["triggers"]["complete"]:
        found.append("the change triggers are not all installed: run `appliance init`")
    found.extend(_program_problems(state["programs"]))
    found.extend(_monitor_problems(state, settings))
    return found


def _program_problems(programs: list[dict[str, Any]] | None) -> list[str]:
    # A STOPPED monitor is ENABLE_DB_MONITORING=false; every other program should run.
    return [f"program {p['name']} is {p['state']}" for p in programs or []
            if p["state"] != "RUNNING" and not (p["state"] == "STOPPED" and p["name"] == "monitor")]


def _monitor_problems(state: dict[str, Any], settings: Settings) -> list[str]:
    if not settings.enable_db_monitoring or not state["monitors"]:
        return []
    silent_after = MONITOR_SILENT_POLLS * settings.monitor.poll_interval
    if min(m["seconds_ago"] for m in state["monitors"]) > silent_after:
        return [f"no monitor has written a heartbeat in the last {silent_after:g} s"]
    return []


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
        return ["programs: not under supervisor (no socket)"]
    return [f"program {p['name']}: {p['state']} {p['description']}".rstrip() for p in programs]


def _or_none(value: Any) -> str:
    return "unknown (the views are not installed)" if value is None else str(value)


def status_command(settings: Settings, *, as_json: bool) -> int:
    state = read_status(settings)
    found = problems(state, settings)
    if as_json:
        print(json.dumps({**state, "problems": found}, indent=2, default=str))
    else:
        print(render(state, found), end="")
    if state["database"] != "reachable":
        return EXIT_UNREACHABLE
    return EXIT_ATTENTION if found else EXIT_OK
