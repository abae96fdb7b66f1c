"""Snakemake's log records in, the appliance's ingest events out (docs/ingest.md).

Built against records captured from real Snakemake 9 runs (tests/fixtures),
which differ from the interface's README and test mocks:

- `job_info` announces a job (and every restart of it); `job_finished` says
  `job_id` where every other record says `jobid`; a `shellcmd` record carries
  no job id and belongs to the `job_info` just before it.
- `resources` is a ResourceList (a list with names), not a dict.
- `snakefile` names Snakemake's own module; the workflow's is `snakefile_main`.
- No record says the workflow finished. A job-level `error` record comes just
  before its `job_error`; an `error` that no `job_error` claims is the
  workflow's own, or names its job in its text: a job that exits 0 without
  its output gets no `job_error`, only "MissingOutputException ... Job 2
  completed successfully, but some output files are missing".
- Ctrl-C (SIGINT) says "Terminating processes on user request" (or raises
  KeyboardInterrupt before the jobs start). SIGTERM makes Snakemake say "Will
  exit after finishing currently running jobs", which only its SIGTERM
  handler makes it say; it then ends with the same "At least one job did not
  complete successfully" as a failed run.
- A job restarted by `retries:` gets `job_error`, then `job_info` again: one
  task, failed, then started again (the appliance counts the attempts).
- The `total` of `progress` grows after a checkpoint; `progress` records
  become `run_progress` events (the run's steps done of its total).
- `run_info` (the "Job stats" table, once, before the first job) says the
  jobs planned per rule and their total: a `run_planned` event, and a
  `run_progress` of 0 of that total, so progress is right before any job ends.
- `rulegraph` (only to a plugin that asks, `needs_rulegraph`) lists one node
  per rule and toposort level (a rule may appear twice) and links between
  node indices: it becomes one `rule_graph` event of rules and rule pairs.
- `job_info` has no params, conda env, container or host: those come from the
  live workflow (live.py) and, for a job run locally, the run's host.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from snakemake_logger_plugin_appliance.benchmark import BenchmarkError, read_usage

MAX_MESSAGE = 100_000  # characters of one log line or error (the appliance takes 1,000,000)
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# External (cluster) job ids are only reported as text, by the executor plugins:
# cluster-generic ("Submitted job 3 with external jobid '104829'.") and slurm.
EXTERNAL_JOBID = re.compile(
    r"Submitted (?:group )?job (?P<jobid>\d+) with external jobid '(?P<external>[^']+)'"
    r"|Job (?P<jobid2>\d+) has been submitted with SLURM jobid (?P<external2>\d+(?:[_+]\d+)?)"
)
INTERRUPTED = ("Terminating processes on user request", "Cancelling snakemake on user request")
TERMINATED = "Will exit after finishing currently running jobs"
# Errors that name their job in the text only (no job_error record follows them).
JOB_IN_ERROR = (re.compile(r"\bJob (\d+) +completed successfully, but some output files are missing"),)
STOP_REASONS = {
    "SIGINT": "Snakemake was interrupted by the user (SIGINT, Ctrl-C)",
    "SIGTERM": "Snakemake was terminated (SIGTERM) and stopped after its running jobs",
}
TOKEN_ARGUMENT = re.compile(r"(--logger-appliance-token[= ])\S+")


@dataclass
class Metadata:
    """What the user tells about the run (the plugin's settings)."""

    name: str | None = None
    user: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class _Task:
    id: str
    rule: str
    status: str = "created"  # created, running, completed, failed
    benchmark: str | None = None  # its benchmark file, relative to the working directory
    external_ids: set[str] = field(default_factory=set)  # cluster job ids recorded


class RunMapper:
    """The events of one Snakemake run, record by record. Not thread-safe:
    Snakemake hands records to its plugins from one thread.

    `job_details(jobid)` gives what records lack (params, conda env, container;
    live.LiveJobs in Snakemake's process, nothing when replaying records);
    `warn(text)` tells the user of a benchmark file that could not be read."""

    def __init__(self, metadata: Metadata, job_details: Callable[[Any], dict | None] = lambda jobid: None,
                 warn: Callable[[str], None] = lambda text: None):
        self.metadata = metadata
        self._job_details = job_details
        self._warn = warn
        self._warned = False
        self._host: str | None = None  # Snakemake's, where local jobs run
        self._workdir: str | None = None  # where relative paths (benchmark files) start
        self._planned = False
        self._graphed = False
        self._last_time: str | None = None  # the latest record's time: the run's end is no later
        self.run_id: str | None = None  # Snakemake's workflow id, once it has started
        self.tasks: dict[Any, _Task] = {}  # by Snakemake job id
        self.ended = False
        self._early: list[Any] = []  # records before the run started
        self._job_info: Any = None  # a job_info waiting for its shellcmd record
        # Error records no job_error claimed, in order, each with the task its text names (or None).
        self._errors: list[tuple[_Task | None, str]] = []
        self._claimable = False  # the last of them may still be claimed by a job_error
        self._stopped_by: str | None = None  # "SIGINT" or "SIGTERM"

    def map(self, record: Any) -> list[dict]:
        """The events for one log record (none for most before the run starts)."""
        kind = str(getattr(record, "event", None) or "")
        if getattr(record, "created", None):
            self._last_time = _time(record.created)
        if self.run_id is None and kind != "workflow_started":
            self._early.append(record)
            del self._early[:-100]  # only the last lines, should the start never come
            return []
        events: list[dict] = []
        if self._job_info is not None and kind != "shellcmd":
            events += self._task_started(self._job_info)
            self._job_info = None
        handler = getattr(self, f"_on_{kind}", None) if kind else None
        events += handler(record) if handler else self._on_message(record)
        return events

    def finish(self) -> list[dict]:
        """The run's end, decided from what was seen (Snakemake sends no such record)."""
        if self.run_id is None or self.ended:
            return []
        self.ended = True
        events = self._task_started(self._job_info) if self._job_info is not None else []
        at = self._last_time or _now()  # Snakemake's last word, not when it closed its loggers
        unfinished = [task for task in self.tasks.values() if task.status in ("created", "running")]
        failed = [task for task in self.tasks.values() if task.status == "failed"]
        if self._stopped_by is not None:
            reason = STOP_REASONS[self._stopped_by]
            events += [self._task_failed(task, f"not finished: {reason}", at) for task in unfinished]
            return events + [self._event("run_cancelled", at, run_id=self.run_id, reason=reason)]
        # A task's own error counts only if the task stayed failed (its retry did not succeed).
        errors = [text for task, text in self._errors if task is None or task.status == "failed"]
        if not errors and not failed:
            # Snakemake ends without an error only when every job finished; under
            # --quiet it does not even create its job_finished records.
            for task in unfinished:
                task.status = "completed"
                events.append(self._event("task_finished", at, task_id=task.id,
                                          message="finished (Snakemake reported no end for this job)"))
            return events + [self._event("run_finished", at, run_id=self.run_id)]
        events += [self._task_failed(task, "not finished: the run failed", at) for task in unfinished]
        return events + [self._event("run_failed", at, run_id=self.run_id, error=self._run_error(errors))]

    def _run_error(self, errors: list[str]) -> str:
        failed = [f"{task.rule} (jobid {jobid})" for jobid, task in self.tasks.items() if task.status == "failed"]
        text = "\n\n".join(errors) or "Snakemake stopped"
        if failed:
            text += "\nFailed jobs: " + ", ".join(failed)
        if len(text) > MAX_MESSAGE:  # the end (the final error, the failed jobs) says most
            text = text[:MAX_MESSAGE // 2] + "\n[...]\n" + text[-(MAX_MESSAGE // 2 - 10):]
        return text

    # One method per kind of record (`event`), named _on_<event>.

    def _on_workflow_started(self, record: Any) -> list[dict]:
        self.run_id = str(getattr(record, "workflow_id", None) or uuid.uuid4())
        self._host = getattr(record, "host", None)
        self._workdir = getattr(record, "cwd", None)
        meta = self.metadata
        snakefile = getattr(record, "snakefile_main", None)
        params = {
            "snakefile": snakefile, "workdir": getattr(record, "cwd", None),
            "command": TOKEN_ARGUMENT.sub(r"\1***", str(getattr(record, "cmd", "") or "")),
            "snakemake_version": getattr(record, "snakemake_version", None), "host": getattr(record, "host", None),
            "configfiles": [str(f) for f in getattr(record, "configfiles", None) or []],
            "config_md5": getattr(record, "config_md5", None), "workflow_id": self.run_id, "tags": meta.tags,
        }
        events = [self._event(
            "run_started", record, run_id=self.run_id, name=meta.name or workflow_name(snakefile),
            user=meta.user or getattr(record, "user", None), group=meta.group, source="snakemake",
            params={key: value for key, value in params.items() if value not in (None, "", [])})]
        early, self._early = self._early, []
        for earlier in early:
            events += self.map(earlier)
        return events

    def _on_job_info(self, record: Any) -> list[dict]:
        self._job_info = record  # completed by the shellcmd record that follows, if any
        return []

    def _on_shellcmd(self, record: Any) -> list[dict]:
        info, self._job_info = self._job_info, None
        if info is None:
            return []
        return self._task_started(info, getattr(record, "shellcmd", None))

    def _on_run_info(self, record: Any) -> list[dict]:
        """Snakemake's job stats: the jobs planned per rule and their total, once a run."""
        stats = getattr(record, "stats", None)
        events = self._on_message(record)  # the table stays in the run's log
        try:
            jobs = {str(rule): int(count) for rule, count in dict(stats).items() if rule != "total"}
            total = int(dict(stats).get("total", sum(jobs.values())))
        except (TypeError, ValueError):
            return events  # not the record we know
        if self._planned or total < 0 or any(count < 0 for count in jobs.values()):
            return events
        self._planned = True
        return [self._event("run_planned", record, run_id=self.run_id, jobs=jobs, total=total),
                self._event("run_progress", record, run_id=self.run_id, done=0, total=total), *events]

    def _on_rulegraph(self, record: Any) -> list[dict]:
        graph = getattr(record, "rulegraph", None) or {}
        if self._graphed or not isinstance(graph, dict):
            return []
        self._graphed = True
        return [self._event("rule_graph", record, run_id=self.run_id, **rule_graph(graph))]

    def _on_job_finished(self, record: Any) -> list[dict]:
        task = self.tasks.get(getattr(record, "job_id", getattr(record, "jobid", None)))
        if task is None:
            return self._on_message(record)
        task.status = "completed"
        return [self._event("task_finished", record, task_id=task.id), *self._resources(task, record)]

    def _resources(self, task: _Task, record: Any) -> list[dict]:
        """The figures of the job's benchmark file, if it has one; one warning a run for any unreadable."""
        if not task.benchmark:
            return []
        path = Path(self._workdir or ".") / task.benchmark
        try:
            usage = read_usage(path)
        except BenchmarkError as error:
            if not self._warned:
                self._warned = True
                self._warn(f"a benchmark file could not be read, its figures are not recorded "
                           f"(and no more such warnings for this run): {error}")
            return []
        return [self._event("task_resources", record, task_id=task.id, usage=usage)]

    def _on_job_error(self, record: Any) -> list[dict]:
        jobid = getattr(record, "jobid", None)
        # A job_info comes first; should it not have, the job_error says enough to create the task.
        events = [] if jobid in self.tasks else self._task_started(record)
        task = self.tasks[jobid]
        external = (getattr(record, "aux", None) or {}).get("external_jobid")
        if external:
            events += self._external_id(task, str(external), record)
        # The error record just before a job_error is that job's (the exception).
        error = self._errors.pop()[1] if self._claimable else None
        self._claimable = False
        logs = getattr(record, "log", None) or []
        line = _message(record) + ("\nLog files: " + ", ".join(str(log) for log in logs) if logs else "")
        # The error line is in the run's log already; the task keeps both together.
        text = line + (f"\n{error}" if error is not None else "")
        events.append(self._task_failed(task, text, record))
        return events + [self._log(record, line, task_id=task.id)]

    def _on_error(self, record: Any) -> list[dict]:
        if getattr(record, "exception", None) == "KeyboardInterrupt":
            self._stopped_by = self._stopped_by or "SIGINT"
        message = _message(record)
        task = self._task_named_in(message)
        self._errors.append((task, message))
        self._claimable = task is None
        events = self._on_message(record)
        if task is not None and task.status in ("created", "running"):
            events.insert(0, self._task_failed(task, message, record))
        return events

    def _task_named_in(self, message: str) -> _Task | None:
        for pattern in JOB_IN_ERROR:
            match = pattern.search(message)
            if match:
                return self.tasks.get(int(match[1]))
        return None

    def _on_progress(self, record: Any) -> list[dict]:
        # The run's own count of steps (its total known before most tasks exist, and
        # growing after a checkpoint). A log line would say no more ("N of M steps done").
        try:
            done, total = int(getattr(record, "done")), int(getattr(record, "total"))
        except (AttributeError, TypeError, ValueError):
            return self._on_message(record)  # not the record we know: keep what it says
        if not 0 <= done <= total:
            return self._on_message(record)
        return [self._event("run_progress", record, run_id=self.run_id, done=done, total=total)]

    def _on_job_started(self, record: Any) -> list[dict]:
        return []  # "Execute 2 jobs...": each job's task_started says it (from its job_info)

    def _on_debug_dag(self, record: Any) -> list[dict]:
        return []  # only under --debug-dag; its record has no message of its own

    def _on_message(self, record: Any) -> list[dict]:
        message = _message(record)
        if message.startswith(INTERRUPTED):
            self._stopped_by = self._stopped_by or "SIGINT"
        elif message.startswith(TERMINATED):
            self._stopped_by = "SIGTERM"
        events = []
        match = EXTERNAL_JOBID.search(message)
        if match:
            task = self.tasks.get(int(match["jobid"] or match["jobid2"]))
            if task is not None:
                events += self._external_id(task, match["external"] or match["external2"], record)
        if message and message != "None":
            events.append(self._log(record, message))
        return events

    # Tasks.

    def _task_started(self, info: Any, shellcmd: str | None = None) -> list[dict]:
        jobid = getattr(info, "jobid", None)
        events = []
        task = self.tasks.get(jobid)
        if task is None:
            # The same id for the same job of the same run, whoever computes it.
            task_id = str(uuid.uuid5(uuid.UUID(self.run_id), f"job {jobid}"))
            task = self.tasks[jobid] = _Task(task_id, getattr(info, "rule_name", None) or "unknown",
                                             benchmark=_text(getattr(info, "benchmark", None)))
            live = self._job_details(jobid) or {}
            events.append(self._event(
                "task_created", info, task_id=task.id, run_id=self.run_id, name=task.rule,
                input={"input": _strings(getattr(info, "input", None)), "wildcards": _wildcards(info)},
                params=_job_params(info, shellcmd, live.get("params"))))
            events.append(self._event("task_details", info, **self._details(task, info, live)))
        if task.status != "running":  # a restart after a failed attempt is a new attempt
            task.status = "running"
            events.append(self._event("task_started", info, task_id=task.id))
        return events

    def _details(self, task: _Task, info: Any, live: dict) -> dict:
        # A job run by Snakemake's own process or its local executor runs on its host;
        # a cluster job's node is not in any record.
        host = self._host if getattr(info, "local", False) else None
        details = {"inputs": _strings(getattr(info, "input", None)),
                   "outputs": _strings(getattr(info, "output", None)),
                   "log_files": _strings(getattr(info, "log", None)), "benchmark": task.benchmark,
                   "conda_env": live.get("conda_env"), "container": live.get("container"), "host": host}
        return {"task_id": task.id, **{key: value for key, value in details.items() if value not in (None, [])}}

    def _external_id(self, task: _Task, external: str, record: Any) -> list[dict]:
        """A cluster's job id of the task, once (a failed Slurm job's job_error repeats it)."""
        if external in task.external_ids:
            return []
        task.external_ids.add(external)
        return [self._event("job_id", record, task_id=task.id, job_id=external)]

    def _task_failed(self, task: _Task, error: str, at: Any) -> dict:
        task.status = "failed"
        return self._event("task_failed", at, task_id=task.id, error=error[:MAX_MESSAGE] or "failed")

    # Events.

    def _log(self, record: Any, message: str, task_id: str | None = None) -> dict:
        level = getattr(record, "levelname", "INFO")
        return self._event("log", record, run_id=self.run_id, message=message[:MAX_MESSAGE],
                           level=level if level in LEVELS else "INFO", task_id=task_id)

    def _event(self, kind: str, at: Any, **fields: Any) -> dict:
        # Every event gets its own id: resending it (a retry, a spool) is harmless.
        time = at if isinstance(at, str) else _time(getattr(at, "created", None))
        return {"id": str(uuid.uuid4()), "type": kind, "time": time, **fields}


def workflow_name(snakefile: str | None) -> str:
    """The name of the workflow's directory: the Snakefile's, or its parent for
    Snakemake's recommended layout (<name>/workflow/Snakefile)."""
    folder = os.path.dirname(os.path.abspath(snakefile or "Snakefile"))
    if os.path.basename(folder) == "workflow":
        folder = os.path.dirname(folder)
    return os.path.basename(folder) or "snakemake"


def rule_graph(graph: dict) -> dict:
    """Snakemake's rulegraph record ({"nodes": [{"rule"}], "links": [{"sourcerule", "targetrule"}]}) as
    rules (each once, in Snakemake's order) and [source, target] rule pairs (each once), as --rulegraph
    draws them: one node per rule, an edge for each rule whose jobs need another's."""
    rules = list(dict.fromkeys(str(node["rule"]) for node in graph.get("nodes") or []))
    edges = list(dict.fromkeys((str(link["sourcerule"]), str(link["targetrule"]))
                               for link in graph.get("links") or []))
    return {"rules": rules, "edges": [list(edge) for edge in edges]}


def _job_params(info: Any, shellcmd: str | None, rule_params: dict | None = None) -> dict:
    params = {
        "jobid": getattr(info, "jobid", None), "output": _strings(getattr(info, "output", None)),
        "log": _strings(getattr(info, "log", None)), "threads": getattr(info, "threads", None),
        "resources": _resources(getattr(info, "resources", None)),
        "shellcmd": getattr(info, "shellcmd", None) or shellcmd, "reason": getattr(info, "reason", None),
        "benchmark": getattr(info, "benchmark", None), "message": getattr(info, "rule_msg", None),
        "priority": getattr(info, "priority", None), "is_checkpoint": getattr(info, "is_checkpoint", None),
        "params": rule_params,
    }
    return {key: as_json(value) for key, value in params.items() if value not in (None, "", [], {})}


def _resources(value: Any) -> dict:
    # A ResourceList: a list of values with names (items()); `_cores`, `_nodes` are Snakemake's own.
    items = value.items() if hasattr(value, "items") else []
    return {str(name): as_json(amount) for name, amount in items if not str(name).startswith("_")}


def _wildcards(info: Any) -> dict:
    wildcards = getattr(info, "wildcards", None) or {}
    return {str(name): str(value) for name, value in dict(wildcards).items()}


def _strings(values: Any) -> list[str]:
    return [str(value) for value in values or []]


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def as_json(value: Any, limit: int | None = None) -> Any:
    """The value as JSON can hold it (Snakemake passes its own str and list subclasses);
    anything else as its text, cut at `limit` characters if given."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): as_json(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [as_json(v, limit) for v in value]
    text = str(value)
    return text if limit is None or len(text) <= limit else text[:limit] + "[...]"


def _message(record: Any) -> str:
    try:
        return str(record.getMessage()).replace("\x00", "")
    except Exception:  # a record whose arguments do not fit its format
        return str(getattr(record, "msg", "")).replace("\x00", "")


def _time(created: float | None) -> str:
    moment = datetime.fromtimestamp(created, timezone.utc) if created else datetime.now(timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _now() -> str:
    return _time(None)
