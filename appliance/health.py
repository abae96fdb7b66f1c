"""Health that tells the truth: what needs an operator, from the parts' state.

One judgement for `appliance status` (exit 1), `/system` (red) and `/metrics`
(`appliance_healthy` and a gauge per cause). /readyz is not it: that says only
that this web can serve. A part needs attention when:

- the schema is not at head, or the change triggers are missing;
- the projector is stuck: its last STUCK_FAILURES batches at one position
  failed, or events wait while it has not moved for HEALTH_STUCK_AFTER
  seconds (frozen, gone, or never started);
- events are set aside by the projector, or changes given up by the monitor
  (`appliance quarantine` lists, retries and discards them);
- the monitor falls behind: a change waits unhandled longer than
  HEALTH_STUCK_AFTER seconds, or no monitor has written a heartbeat lately;
- a program is not RUNNING, or the programs cannot be seen at all.
"""

from __future__ import annotations

from typing import Any

from appliance.config import Settings

STUCK_FAILURES = 3  # failed batches in a row at one position
# A monitor whose heartbeat is older than this many poll intervals is taken as gone.
MONITOR_SILENT_POLLS = 6


def problems(state: dict[str, Any], settings: Settings, *, programs_expected: bool = True) -> list[str]:
    """What an operator should look at, one sentence each; empty when all is well."""
    if state["database"] != "reachable":
        return [f"the database is unreachable: {state['reason']}", *_program_problems(state, programs_expected)]
    found = []
    schema = state["schema"]
    if not schema["at_head"]:
        found.append(f"the schema is at {schema['revision'] or 'nothing'}, not at head {schema['head']}: "
                     "run `appliance init`")
    if settings.install_triggers and not state["triggers"]["complete"]:
        found.append("the change triggers are not all installed: run `appliance init`")
    found.extend(projector_problems(state, settings))
    found.extend(_set_aside_problems(state))
    found.extend(_monitor_problems(state, settings))
    found.extend(_program_problems(state, programs_expected))
    return found


def projector_problems(state: dict[str, Any], settings: Settings) -> list[str]:
    projector, progress = state.get("projector") or {}, (state.get("health") or {}).get("progress")
    lag = projector.get("lag_events")
    lag = projector.get("newest_event") or 0 if lag is None else lag  # never started: every event waits
    if progress is not None and progress["failures"] >= STUCK_FAILURES:
        return [f"the projector is stuck: its last {progress['failures']} batches at event "
                f"{projector.get('position')} failed ({progress['last_error']})"]
    if lag <= 0:
        return []
    if progress is None:
        return [f"the projector is not running: {lag} events wait and no projector has noted progress here"]
    if progress["seconds_since_progress"] > settings.health_stuck_after:
        return [f"the projector is stuck: {lag} events wait and it has not moved for "
                f"{progress['seconds_since_progress']:g} s (HEALTH_STUCK_AFTER is {settings.health_stuck_after} s)"]
    return []


def _set_aside_problems(state: dict[str, Any]) -> list[str]:
    set_aside = (state.get("health") or {}).get("set_aside") or {}
    found = []
    if set_aside.get("events"):
        found.append(f"{set_aside['events']} events are set aside by the projector (quarantined): "
                     "`appliance quarantine` lists, retries and discards them")
    if set_aside.get("changes"):
        found.append(f"{set_aside['changes']} changes were given up by the monitor: "
                     "`appliance quarantine` lists, retries and discards them")
    return found


def _monitor_problems(state: dict[str, Any], settings: Settings) -> list[str]:
    if not settings.enable_db_monitoring:
        return []
    found = []
    waited = (state.get("health") or {}).get("oldest_unhandled_change_seconds")
    if waited is not None and waited > settings.health_stuck_after:
        found.append(f"the monitor falls behind: the oldest of {state.get('change_backlog')} unhandled changes "
                     f"has waited {waited:g} s (HEALTH_STUCK_AFTER is {settings.health_stuck_after} s)")
    silent_after = MONITOR_SILENT_POLLS * settings.monitor.poll_interval
    if state.get("monitors") and min(m["seconds_ago"] for m in state["monitors"]) > silent_after:
        found.append(f"no monitor has written a heartbeat in the last {silent_after:g} s")
    return found


def _program_problems(state: dict[str, Any], programs_expected: bool) -> list[str]:
    programs = state.get("programs")
    if programs is None:
        return ["the programs cannot be seen: no answer on supervisord's socket (run `appliance status` "
                "where the appliance runs, or pass --database-only)"] if programs_expected else []
    # A STOPPED monitor is ENABLE_DB_MONITORING=false; every other program should run.
    return [f"program {p['name']} is {p['state']}" for p in programs
            if p["state"] != "RUNNING" and not (p["state"] == "STOPPED" and p["name"] == "monitor")]


def program_running(programs: list[dict[str, Any]] | None) -> dict[str, bool]:
    """{program: RUNNING?} of the programs seen (empty when none can be seen)."""
    return {p["name"]: p["state"] == "RUNNING" for p in programs or []}
