"""The run page's drawings, as geometry the templates turn into SVG: a timeline of
the tasks grouped and coloured by rule, and the rule graph (the DAG).

Sizes are bounded whatever the run: the timeline draws one row per task (one
bar per attempt) up to TIMELINE_TASKS started tasks and one lane per rule
beyond, at most TIMELINE_RULES rules, at most AXIS_TICKS grid lines (a run
from 1970 to 9999 included); the graph at most GRAPH_RULES rules. Positions
across are percentages of the drawing's width, so an SVG without a viewBox
scales to any screen while its text keeps its size (readable at 400 px).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

TIMELINE_TASKS = 200
TIMELINE_RULES = 40
TIMELINE_BUCKETS = 400  # columns of the lane grid: a lane has at most half as many bars
AXIS_TICKS = 7
GRAPH_RULES = 60
RULE_COLOURS = 12  # classes rule0..rule11 in style.css
ROW = 10  # px of one task's row
LANE = 14  # px of one rule's lane
HEADING = 16  # px of a rule's name above its rows

MINUTE, HOUR, DAY = 60, 3600, 86400
YEAR = 365 * DAY
STEPS = (1, 2, 5, 10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
         HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
         90 * DAY, 180 * DAY, YEAR)


def rule_colours(names: Iterable[str]) -> dict[str, int]:
    """Each rule's colour class, in the order the rules first appeared."""
    return {name: index % RULE_COLOURS for index, name in enumerate(dict.fromkeys(names))}


def axis(begin: datetime, end: datetime) -> tuple[float, list[dict[str, Any]]]:
    """The span in seconds (at least 1) and at most AXIS_TICKS ticks at a round step."""
    seconds = max((end - begin).total_seconds(), 1.0)
    step = next((s for s in STEPS if seconds / s <= AXIS_TICKS - 1), None)
    if step is None:  # longer than years: whole years, 1, 2, 5, 10, 20, 50 ... of them
        years, scale = seconds / YEAR / (AXIS_TICKS - 1), 1
        while not any(years <= factor * scale for factor in (1, 2, 5)):
            scale *= 10
        step = YEAR * scale * next(factor for factor in (1, 2, 5) if years <= factor * scale)
    count = min(int(seconds // step), AXIS_TICKS - 1) + 1
    ticks = [{"x": _percent(k * step, seconds), "label": human_duration(k * step)} for k in range(count)]
    for tick in ticks:  # the first and last labels inside the drawing
        tick["anchor"] = "start" if tick["x"] < 4 else "end" if tick["x"] > 92 else "middle"
    return seconds, ticks


def task_timeline(tasks: list[Mapping[str, Any]], begin: datetime, end: datetime,
                  colours: Mapping[str, int]) -> dict[str, Any]:
    """One row per started task, grouped by rule, one bar per attempt (`attempt_spans`)."""
    seconds, ticks = axis(begin, end)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        groups.setdefault(task["task_name"], []).append(task)
    rows, y = [], 0
    for name, members in list(groups.items())[:TIMELINE_RULES]:
        rows.append({"heading": name, "y": y + 12, "count": len(members), "colour": colours.get(name, 0)})
        y += HEADING
        for task in members:
            bars = [_bar(span, begin, end, seconds, y, ROW - 2, colours.get(name, 0),
                         f"{_label(task)}: {span['status']}") for span in attempt_spans(task)]
            rows.append({"bars": bars, "y": y})
            y += ROW
    return {"mode": "tasks", "rows": rows, "ticks": ticks, "height": y,
            "rules_left_out": max(len(groups) - TIMELINE_RULES, 0)}


def lane_timeline(lanes: list[Mapping[str, Any]], names: list[str], begin: datetime, end: datetime,
                  buckets: int, colours: Mapping[str, int]) -> dict[str, Any]:
    """One lane per rule: its busy spans on a grid of `buckets` columns (timeline_lanes)."""
    seconds, ticks = axis(begin, end)
    bucket = seconds / buckets
    by_name: dict[str, list[Mapping[str, Any]]] = {name: [] for name in names}
    for lane in lanes:
        by_name.setdefault(lane["task_name"], []).append(lane)
    rows, y = [], 0
    for name in names:
        rows.append({"heading": name, "y": y + 12, "count": None, "colour": colours.get(name, 0)})
        y += HEADING
        bars = []
        for span in by_name[name]:
            start = begin + timedelta(seconds=span["b0"] * bucket)
            stop = begin + timedelta(seconds=(span["b1"] + 1) * bucket)
            status = "failed" if span["failed"] else "running" if span["running"] else "completed"
            title = (f"{name}: {span['tasks']:,} task{'s' if span['tasks'] != 1 else ''}"
                     + (f", {span['failed']:,} failed" if span["failed"] else ""))
            bars.append(_bar({"start": start, "end": stop, "status": status}, begin, end, seconds, y,
                             LANE - 2, colours.get(name, 0), title))
        rows.append({"bars": bars, "y": y})
        y += LANE
    return {"mode": "lanes", "rows": rows, "ticks": ticks, "height": y, "rules_left_out": 0}


def attempt_spans(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task's attempts as (start, end, status) from its attempt history, else its one span."""
    history = [a for a in task.get("attempt_history") or [] if a.get("started_at")]
    if history:
        return [{"start": _time(a["started_at"]), "end": _time(a.get("finished_at")),
                 "status": a.get("status") or "running"} for a in history]
    return [{"start": task["started_at"], "end": task["finished_at"], "status": task["status"]}]


def _bar(span: Mapping[str, Any], begin: datetime, end: datetime, seconds: float, y: int, height: int,
         colour: int, title: str) -> dict[str, Any]:
    stop = span["end"] or end
    x = _percent((span["start"] - begin).total_seconds(), seconds)
    width = max(_percent((stop - span["start"]).total_seconds(), seconds), 0.2)
    return {"x": x, "width": min(width, 100 - x) if x < 100 else 0.2, "y": y, "height": height,
            "status": span["status"], "colour": colour,
            "title": f"{title}, {human_duration((stop - span['start']).total_seconds())}"}


def _percent(part: float, whole: float) -> float:
    return round(min(max(100.0 * part / whole, 0.0), 100.0), 2)


def _label(task: Mapping[str, Any]) -> str:
    input_data = task.get("input_data")
    return task_label(task["task_name"], input_data.get("wildcards") if isinstance(input_data, dict) else None)


def task_label(name: str, wildcards: Any) -> str:
    """A task's name with its wildcards (`bwa_mem (sample=s1)`): what tells jobs of one rule apart."""
    if isinstance(wildcards, dict) and wildcards:
        return f"{name} ({', '.join(f'{key}={value}' for key, value in wildcards.items())})"
    return name


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


# The rule graph.


NODE_HEIGHT = 26
LAYER_GAP = 22


def rule_graph(rules: list[str], edges: Iterable[tuple[str, str]], states: Mapping[str, str]) -> dict[str, Any]:
    """A layered drawing of a graph of rules: `edges` (upstream, downstream) between
    `rules`, each rule's box coloured by its state (failed, running, completed, created).

    Layers by longest path from the rules with no upstream; each layer a row, its
    rules side by side. Rules beyond GRAPH_RULES are left out (and said so).
    """
    shown = rules[:GRAPH_RULES]
    known = set(shown)
    upstream: dict[str, list[str]] = {rule: [] for rule in shown}
    links = [(a, b) for a, b in dict.fromkeys(edges) if a in known and b in known and a != b]
    for a, b in links:
        upstream[b].append(a)
    layer: dict[str, int] = {}

    def depth(rule: str, seen: frozenset = frozenset()) -> int:
        if rule not in layer:
            parents = [p for p in upstream[rule] if p not in seen]  # a cycle is cut, not followed
            layer[rule] = 1 + max((depth(p, seen | {rule}) for p in parents), default=-1)
        return layer[rule]

    rows: dict[int, list[str]] = {}
    for rule in shown:
        rows.setdefault(depth(rule), []).append(rule)
    nodes: dict[str, dict[str, Any]] = {}
    for index, members in sorted(rows.items()):
        width = 100 / len(members)
        for position, rule in enumerate(members):
            nodes[rule] = {"name": rule, "state": states.get(rule, "created"),
                           "x": round(position * width + 1, 2), "width": round(width - 2, 2),
                           "cx": round((position + 0.5) * width, 2), "y": index * (NODE_HEIGHT + LAYER_GAP)}
    lines = [{"x1": nodes[a]["cx"], "y1": nodes[a]["y"] + NODE_HEIGHT,
              "x2": nodes[b]["cx"], "y2": nodes[b]["y"]} for a, b in links]
    height = (max(rows) + 1) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP if rows else 0
    return {"nodes": list(nodes.values()), "edges": lines, "height": height, "node_height": NODE_HEIGHT,
            "left_out": max(len(rules) - GRAPH_RULES, 0)}


def chain(names: list[str]) -> list[tuple[str, str]]:
    """Edges that run through rules in order: the graph when no rule graph was sent."""
    return list(zip(names, names[1:]))


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    if seconds < 2 * DAY:
        hours, rest = divmod(int(seconds) // 60, 60)
        return f"{hours} h" + (f" {rest} min" if rest else "")
    if seconds < 2 * YEAR:
        days, rest = divmod(int(seconds) // 3600, 24)
        return f"{days} d" + (f" {rest} h" if rest else "")
    return f"{seconds / YEAR:,.0f} y"
