"""The Snakemake logger plugin end to end: real Snakemake, real Snakefiles, a
running appliance (its web app with the ingest endpoint, and its projector
with the stale check, on the test PostgreSQL); the assertions read the view
tables and the API.

The workflows are under plugins/snakemake-logger-plugin-appliance/tests/workflows.
Each test copies one into a folder of its own, whose name is the run's name.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from werkzeug.serving import make_server

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.projection import Projector
from appliance.web import create_app
from tests.support.signals import default_sigint
from tests.support.waiting import wait_for as wait_until

PLUGIN = Path(__file__).resolve().parents[2] / "plugins/snakemake-logger-plugin-appliance"
WORKFLOWS = PLUGIN / "tests/workflows"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
TOKEN = "plugin-test-token"
STALE_AFTER = 5  # seconds, for the projector's stale check: 5 heartbeats, as the defaults (60 s, 300 s)
TERMINAL = ("completed", "failed", "cancelled")

assert SNAKEMAKE.exists(), f"no {SNAKEMAKE}: install the test extras (scripts/test does), which bring Snakemake"


class Endpoint:
    """The appliance's web app (appliance.web, with POST /api/v1/events) served by
    werkzeug in a thread; stoppable and restartable on its port."""

    def __init__(self, database_url: str):
        settings = Settings(database_url=parse_database_url(database_url), web=WebSettings(ingest_token=TOKEN))
        self.app = create_app(settings)
        self.port = 0
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Endpoint":
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)


class Appliance:
    def __init__(self, database_url, endpoint, tmp_path):
        self.database_url = database_url
        self.endpoint = endpoint
        self.spool = tmp_path / "spool"
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return self.endpoint.url

    def env(self, **extra: str) -> dict:
        return {**os.environ, "SNAKEMAKE_LOGGER_APPLIANCE_TOKEN": TOKEN,
                "SNAKEMAKE_LOGGER_APPLIANCE_SPOOL_DIR": str(self.spool),
                "SNAKEMAKE_LOGGER_APPLIANCE_HEARTBEAT": "1", **extra}

    def workflow(self, name: str, folder: str | None = None) -> Path:
        workdir = self.tmp_path / (folder or name)
        shutil.copytree(WORKFLOWS / name, workdir)
        return workdir

    def start(self, workdir: Path, *args: str, url: str | None = None, **env: str) -> subprocess.Popen:
        command = [str(SNAKEMAKE), "--logger", "appliance", "--logger-appliance-url", url or self.url,
                   "--logger-appliance-group", "lab", "--logger-appliance-tags", "ci, plugin", *args]
        process = subprocess.Popen(command, cwd=workdir, env=self.env(**env), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                   preexec_fn=default_sigint)  # as from a terminal, also when the suite is not
        self.processes.append(process)
        return process

    def snakemake(self, workdir: Path, *args: str, **kwargs) -> tuple[int, str]:
        process = self.start(workdir, *args, **kwargs)
        output, _ = process.communicate(timeout=120)
        return process.returncode, output

    def query(self, sql: str, *params) -> list[dict]:
        connection = psycopg2.connect(self.database_url, cursor_factory=psycopg2.extras.RealDictCursor)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, params)
                return [dict(row) for row in cursor.fetchall()]
        finally:
            connection.close()

    def runs(self, name: str | None = None) -> list[dict]:
        rows = self.query("SELECT * FROM workflow_runs ORDER BY created_at")
        return [row for row in rows if name is None or row["workflow_name"] == name]

    def run(self, name: str, status=TERMINAL, timeout: float = 30) -> dict:
        """The run named `name`, once the views show it in one of `status`."""
        return wait_for(lambda: next((r for r in self.runs(name) if r["status"] in status), None),
                        timeout, f"run {name} in {status}")

    def tasks(self, run: dict) -> list[dict]:
        return self.query("SELECT * FROM job_executions WHERE run_id = %s ORDER BY created_at", run["id"])

    def logs(self, run: dict) -> list[str]:
        return [row["message"] for row in
                self.query("SELECT message FROM log_entries WHERE run_id = %s ORDER BY id", run["id"])]

    def progress_reports(self, run: dict) -> int:
        """The run_progress events the tracker applied to the run (its event store)."""
        return self.query("SELECT count(*) AS n FROM appliance_events WHERE originator_id = %s "
                          "AND topic LIKE %s", run["id"], "%ProgressReported")[0]["n"]

    def spooled(self) -> list[Path]:
        return sorted(self.spool.rglob("*.jsonl")) if self.spool.exists() else []


def wait_for(condition, timeout: float, what: str):
    return wait_until(condition, timeout, interval=0.2, message=what)


@pytest.fixture
def appliance(tracker, database_url, tmp_path):
    endpoint = Endpoint(database_url).start()
    projector = Projector(tracker, poll_interval=0.5, stale_after=STALE_AFTER)
    thread = threading.Thread(target=projector.run, daemon=True)
    thread.start()
    appliance = Appliance(database_url, endpoint, tmp_path)
    yield appliance
    for process in appliance.processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    projector.stop()
    thread.join(10)
    endpoint.stop()


def by_rule(tasks: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task["task_name"]] = counts.get(task["task_name"], 0) + 1
    return counts


def test_wildcards_and_a_diamond(appliance):
    code, output = appliance.snakemake(appliance.workflow("diamond", "rnaseq"), "-c2")
    assert code == 0, output
    run = appliance.run("rnaseq")  # the workflow directory's name
    assert (run["status"], run["error_message"]) == ("completed", None)
    # The user Snakemake reports (its getpass.getuser()), as no --logger-appliance-user is given.
    assert (run["user_name"], run["group_name"], run["source"]) == (getpass.getuser(), "lab", "snakemake")
    assert run["params"]["tags"] == ["ci", "plugin"]
    assert run["params"]["snakefile"].endswith("rnaseq/Snakefile")
    tasks = appliance.tasks(run)
    assert by_rule(tasks) == {"make": 2, "left": 2, "right": 2, "merge": 1, "all": 1}
    assert {(t["status"], t["attempts"]) for t in tasks} == {("completed", 1)}
    assert (run["tasks_total"], run["tasks_completed"], run["progress_percent"]) == (8, 8, 100)
    make_a = next(t for t in tasks if t["input_data"]["wildcards"] == {"s": "a"} and t["task_name"] == "make")
    assert make_a["params"]["output"] == ["raw/a.txt"] and make_a["params"]["log"] == ["logs/make_a.log"]
    assert make_a["params"]["resources"]["mem_mb"] == 10 and make_a["params"]["threads"] == 1
    assert make_a["params"]["shellcmd"] == "echo a > raw/a.txt; echo done > logs/make_a.log"
    merge = next(t for t in tasks if t["task_name"] == "merge")
    assert sorted(merge["input_data"]["input"]) == ["left/a.txt", "left/b.txt", "right/a.txt", "right/b.txt"]
    assert (run["steps_done"], run["steps_total"]) == (8, 8)  # Snakemake's own count of steps
    assert not [line for line in appliance.logs(run) if " steps (" in line]  # a run_progress, not a log line
    assert not appliance.spooled()
    shown = appliance.endpoint.get(f"/api/v1/runs/{run['id']}")  # and the API shows it
    assert "rnaseq" in json.dumps(shown) and "completed" in json.dumps(shown)


def test_a_failing_rule_fails_the_run_and_shows_the_failing_task(appliance):
    code, output = appliance.snakemake(appliance.workflow("failing"), "-c1")
    assert code == 1, output
    run = appliance.run("failing")
    assert run["status"] == "failed"
    assert "At least one job did not complete successfully" in run["error_message"]
    assert "Failed jobs: bad" in run["error_message"]
    (bad,) = [t for t in appliance.tasks(run) if t["task_name"] == "bad"]
    assert bad["status"] == "failed" and "exit status 3" in bad["error_message"]
    assert "logs/bad.log" in bad["error_message"]
    assert any(line.startswith("Error in rule bad") for line in appliance.logs(run))


def test_a_job_that_leaves_its_output_missing_fails_its_task_with_that_error(appliance):
    code, output = appliance.snakemake(appliance.workflow("missing"), "-c1", "--latency-wait", "1")
    assert code == 1, output
    run = appliance.run("missing")
    assert run["status"] == "failed"
    assert "some output files are missing" in run["error_message"]  # not only the final WorkflowError
    assert "Failed jobs: forgotten" in run["error_message"]
    tasks = {t["task_name"]: t for t in appliance.tasks(run)}
    # Snakemake picks either job first; after forgotten fails, without --keep-going, nothing else starts.
    assert {name: t["status"] for name, t in tasks.items()} in (
        {"forgotten": "failed"}, {"made": "completed", "forgotten": "failed"})
    assert "completed successfully, but some output files are missing" in tasks["forgotten"]["error_message"]


def test_keep_going_runs_the_other_jobs_and_still_fails_the_run(appliance):
    code, output = appliance.snakemake(appliance.workflow("failing"), "-c1", "--keep-going")
    assert code == 1, output
    run = appliance.run("failing")
    assert run["status"] == "failed"
    assert {t["task_name"]: t["status"] for t in appliance.tasks(run)} == {"bad": "failed", "ok": "completed"}


def test_a_retry_that_succeeds_completes_the_run_with_two_attempts(appliance):
    code, output = appliance.snakemake(appliance.workflow("retry"), "-c1")
    assert code == 0, output
    run = appliance.run("retry")
    assert (run["status"], run["tasks_failed"], run["tasks_completed"]) == ("completed", 0, 1)
    (flaky,) = appliance.tasks(run)
    assert (flaky["status"], flaky["attempts"]) == ("completed", 2)
    assert "exit status 1" in flaky["error_message"]  # why the first attempt failed


def test_a_checkpoint(appliance):
    code, output = appliance.snakemake(appliance.workflow("checkpoint"), "-c2", "all.txt")
    assert code == 0, output
    run = appliance.run("checkpoint")
    assert run["status"] == "completed"
    assert by_rule(appliance.tasks(run)) == {"split": 1, "double": 3, "all_done": 1}
    # Snakemake's total was 2 before the checkpoint ran, 5 after: the run ends at 5 of 5.
    assert (run["steps_done"], run["steps_total"], run["progress_percent"]) == (5, 5, 100)
    assert appliance.progress_reports(run) == 1 + 5  # 0 of the planned total, then one per finished job


def test_a_dry_run_records_nothing(appliance):
    code, output = appliance.snakemake(appliance.workflow("diamond"), "-c1", "-n")
    assert code == 0 and "This was a dry-run" in output, output
    # A real run after it, once in the views, shows the events of both would have arrived.
    assert appliance.snakemake(appliance.workflow("retry", "marker"), "-c1")[0] == 0
    appliance.run("marker")
    assert [run["workflow_name"] for run in appliance.runs()] == ["marker"] and not appliance.spooled()


def test_nothing_to_be_done_is_a_completed_run_without_tasks(appliance):
    workdir = appliance.workflow("diamond")
    assert appliance.snakemake(workdir, "-c2")[0] == 0
    code, output = appliance.snakemake(workdir, "-c2")
    assert code == 0 and "Nothing to be done" in output
    again = wait_for(lambda: [r for r in appliance.runs("diamond") if r["status"] in TERMINAL][1:], 30, "runs")[0]
    assert (again["status"], again["tasks_total"]) == ("completed", 0)
    assert any(line.startswith("Nothing to be done") for line in appliance.logs(again))


def test_500_jobs_all_counted_exactly_once(appliance):
    code, output = appliance.snakemake(appliance.workflow("many"), "-c2")
    assert code == 0, output
    run = appliance.run("many")
    assert (run["status"], run["tasks_total"], run["tasks_completed"]) == ("completed", 501, 501)
    assert appliance.query("SELECT count(*) AS n, sum(attempts) AS a FROM job_executions") == [{"n": 501, "a": 501}]
    assert (run["steps_done"], run["steps_total"], run["progress_percent"]) == (501, 501, 100)
    assert appliance.progress_reports(run) == 1 + 501  # 0 of the planned total, then one per finished job, none twice


def test_the_appliance_stopped_during_a_run_misses_nothing(appliance):
    process = appliance.start(appliance.workflow("many"), "-c1", "--logger-appliance-exit-wait", "30",
                              "--config", "jobs=40", "pause=0.1")
    wait_for(lambda: appliance.runs("many") and appliance.tasks(appliance.runs("many")[0]), 30, "the first tasks")
    appliance.endpoint.stop()
    time.sleep(2)
    appliance.endpoint.start()
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert output.count("cannot reach the appliance") == 1 and "answers again" in output
    run = appliance.run("many")
    assert (run["status"], run["tasks_total"], run["tasks_completed"]) == ("completed", 41, 41)
    assert {t["attempts"] for t in appliance.tasks(run)} == {1}  # no event applied twice
    assert (run["steps_done"], run["steps_total"]) == (41, 41)
    assert appliance.progress_reports(run) == 1 + 41  # none lost, none applied twice
    assert not appliance.spooled()


@pytest.mark.parametrize("sender", ["flush", "next run"])
def test_events_left_in_the_spool_are_sent_later(appliance, sender):
    process = appliance.start(appliance.workflow("many"), "-c1", "--logger-appliance-exit-wait", "1",
                              "--config", "jobs=10", "pause=0.2")
    wait_for(lambda: appliance.runs("many"), 30, "the run")
    appliance.endpoint.stop()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "events not sent yet are kept in" in output, output
    assert appliance.spooled()
    appliance.endpoint.start()
    if sender == "flush":
        flush = subprocess.run([sys.executable, "-m", "snakemake_logger_plugin_appliance", "flush"],
                               env=appliance.env(SNAKEMAKE_LOGGER_APPLIANCE_URL=appliance.url),
                               capture_output=True, text=True, timeout=60)
        assert flush.returncode == 0 and flush.stdout.startswith("sent "), flush.stdout + flush.stderr
    else:
        assert appliance.snakemake(appliance.workflow("retry", "other"), "-c1")[0] == 0
    run = appliance.run("many")
    assert (run["status"], run["tasks_total"], run["tasks_completed"]) == ("completed", 11, 11)
    assert not appliance.spooled()


@pytest.mark.parametrize("problem", ["token", "url", "unreachable"])
def test_a_wrong_token_or_url_is_reported_once_and_snakemake_carries_on(appliance, problem):
    env = {"SNAKEMAKE_LOGGER_APPLIANCE_TOKEN": "bad-token-xyz"} if problem == "token" else {}
    url = {"url": appliance.url + "/not-the-appliance", "unreachable": "http://127.0.0.1:9"}.get(problem)
    code, output = appliance.snakemake(appliance.workflow("diamond"), "-c2", url=url, **env)
    assert code == 0, output
    expected = {"token": "the appliance refused the token (HTTP 401: a valid", "url": "answered HTTP 404",
                "unreachable": "cannot reach the appliance at http://127.0.0.1:9"}[problem]
    assert output.count(expected) == 1, output
    assert TOKEN not in output and "bad-token-xyz" not in output  # no secret in messages
    assert appliance.runs() == [] and appliance.spooled()  # kept for later


def test_a_malformed_url_is_reported_once_as_a_setting_to_fix(appliance):
    url = "bob:s3cret@" + appliance.url.removeprefix("http://")  # no scheme, and a password
    code, output = appliance.snakemake(appliance.workflow("diamond"), "-c2", url=url)
    assert code == 0, output
    assert output.count("--logger-appliance-url '***@127.0.0.1:") == 1 and "cannot be used" in output, output
    assert "s3cret" not in output.replace(url, "")  # only Snakemake's own banner shows the command line
    assert appliance.runs() == [] and not appliance.spooled()  # nothing spooled forever


def test_sigint_cancels_the_run(appliance):
    process = appliance.start(appliance.workflow("slow"), "-c1")
    run = appliance.run("slow", status=("running",))
    wait_for(lambda: appliance.tasks(run), 30, "the task")
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
    process.communicate(timeout=60)
    run = appliance.run("slow")
    assert run["status"] == "cancelled" and "interrupted" in run["error_message"]
    assert [t["status"] for t in appliance.tasks(run)] == ["failed"]


def test_sigterm_cancels_the_run(appliance):
    process = appliance.start(appliance.workflow("slow"), "-c1")
    run = appliance.run("slow", status=("running",))
    wait_for(lambda: appliance.tasks(run), 30, "the task")
    os.killpg(process.pid, signal.SIGTERM)  # as a batch system or `kill -- -PGID`: Snakemake and its job
    output, _ = process.communicate(timeout=60)
    assert "Will exit after finishing currently running jobs" in output  # what the plugin recognises
    run = appliance.run("slow")
    assert run["status"] == "cancelled" and "SIGTERM" in run["error_message"]
    (slow,) = appliance.tasks(run)
    assert slow["status"] == "failed" and "SIGTERM" in slow["error_message"]


def test_a_killed_snakemake_leaves_a_stale_run_not_a_running_one(appliance):
    process = appliance.start(appliance.workflow("slow"), "-c1")
    run = appliance.run("slow", status=("running",))
    time.sleep(STALE_AFTER + 2)  # silent but for heartbeats (every second): still running
    assert appliance.runs("slow")[0]["status"] == "running"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stale = appliance.run("slow", status=("stale",), timeout=STALE_AFTER + 10)
    assert stale["id"] == run["id"] and stale["finished_at"] is None


# Snakemake runs in full: plan, rule graph, files, params, host, benchmark figures.


def rulegraph_of(workdir: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """Rules and edges of Snakemake's own `--rulegraph` (dot: `0[label = "all", ...]`, `1 -> 0`)."""
    dot = subprocess.run([str(SNAKEMAKE), "--rulegraph", "-c1"], cwd=workdir, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    labels = dict(re.findall(r"^\s*(\d+)\[label = \"([^\"]+)\"", dot, re.MULTILINE))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE)}
    return set(labels.values()), edges


def job_stats_in(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table as it printed it on the terminal."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    return {rule: int(count) for rule, count in rows}


def test_a_run_in_full_plan_graph_files_params_host_and_benchmark_figures(appliance):
    workdir = appliance.workflow("full")
    rules, edges = rulegraph_of(workdir)
    code, output = appliance.snakemake(workdir, "-c1")
    assert code == 0, output
    run = appliance.run("full")
    assert run["status"] == "completed" and (run["steps_done"], run["steps_total"]) == (5, 5)
    stats = job_stats_in(output)
    assert run["planned_jobs"] == {rule: n for rule, n in stats.items() if rule != "total"}
    assert stats["total"] == 3  # planned before the checkpoint revealed two more jobs
    assert set(run["rule_graph"]["rules"]) == rules == {"split", "summary", "all"}
    assert {tuple(edge) for edge in run["rule_graph"]["edges"]} == edges
    tasks = {t["task_name"] + t["input_data"]["wildcards"].get("i", ""): t for t in appliance.tasks(run)}
    assert set(tasks) == {"split", "scale1", "scale2", "summary", "all"}
    scale = tasks["scale1"]
    assert (scale["inputs"], scale["outputs"], scale["log_files"], scale["benchmark_file"]) == (
        ["parts/p1.txt"], ["scaled/p1.txt"], ["logs/scale_1.log"], "benchmarks/scale_1.tsv")
    assert scale["params"]["params"] == {"factor": 3, "label": "part-1"}  # from the live workflow
    assert (scale["conda_env"], scale["container_image"]) == (None, None)  # not deployed: not used
    assert {t["host"] for t in tasks.values()} == {platform.node()}
    measured = {name for name, t in tasks.items() if t["resource_usage"]}
    assert measured == {"split", "scale1", "scale2", "summary"}  # every job with a benchmark file
    assert all(tasks[name]["resource_usage"]["wall_seconds"] >= 0 for name in measured)
    page = appliance.endpoint.get(f"/api/v1/runs/{run['id']}")
    assert {r["name"]: (r["planned"], r["completed"]) for r in page["rules"]} == {
        "split": (1, 1), "summary": (1, 1), "all": (1, 1), "scale": (None, 2)}


def test_sigint_before_the_first_job_finishes_cancels_the_run_at_zero_percent(appliance):
    process = appliance.start(appliance.workflow("slow"), "-c1")
    run = appliance.run("slow", status=("running",))
    wait_for(lambda: appliance.tasks(run), 30, "the task")
    running = appliance.runs("slow")[0]
    assert (running["steps_done"], running["steps_total"], running["progress_percent"]) == (0, 2, 0)  # 0 of 2
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
    process.communicate(timeout=60)
    run = appliance.run("slow")
    assert run["status"] == "cancelled" and "interrupted" in run["error_message"]
    assert (run["steps_done"], run["steps_total"], run["progress_percent"]) == (0, 2, 0)


def test_spooled_events_are_sent_at_exit_when_the_appliance_is_back_before_snakemake_ends(appliance):
    # The plugin's retries back off (1, 2, 4, 8 s ...): the appliance comes back between
    # two of them, shortly before Snakemake ends; at exit the spool is tried at once.
    appliance.endpoint.stop()
    process = appliance.start(appliance.workflow("many"), "-c1", "--config", "jobs=16", "pause=0.5")
    time.sleep(7.5)  # attempts at about 0, 1, 3 and 7 s failed; the next is 8 s later
    appliance.endpoint.start()
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "not sent yet" not in output, output
    run = appliance.run("many")
    assert (run["status"], run["tasks_completed"], run["steps_done"]) == ("completed", 17, 17)
    assert not appliance.spooled()


def test_replay_sends_a_captured_run(appliance):
    fixture = PLUGIN / "tests/fixtures/full.jsonl"
    env = appliance.env(SNAKEMAKE_LOGGER_APPLIANCE_URL=appliance.url)
    command = [sys.executable, "-m", "snakemake_logger_plugin_appliance", "replay", str(fixture),
               "--name", "imported", "--new-id"]
    for _ in range(2):  # with --new-id, the same capture imports twice as two runs
        replay = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert replay.returncode == 0 and replay.stdout.startswith("sent "), replay.stdout + replay.stderr
    runs = wait_for(lambda: [r for r in appliance.runs("imported") if r["status"] == "completed"][1:] and
                    appliance.runs("imported"), 30, "two imported runs")
    records = [json.loads(line) for line in fixture.read_text().splitlines()]
    # The run ends at its last record's time, not when it was replayed.
    assert all(abs(run["finished_at"].timestamp() - records[-1]["created"]) < 1e-3 for run in runs)
    assert {run["tasks_completed"] for run in runs} == {5}
    assert runs[0]["planned_jobs"] == {"split": 1, "summary": 1, "all": 1}


def test_an_undecodable_file_name_is_recorded_not_spooled_forever(appliance):
    workdir = appliance.workflow("undecodable")
    (workdir / "in").mkdir()
    with open(os.path.join(os.fsencode(workdir), b"in", b"sample_\xff.fastq"), "w") as fastq:
        fastq.write("ACGT\n")
    code, output = appliance.snakemake(workdir, "-c1", "--nolock")
    assert code == 0, output
    run = appliance.run("undecodable")
    assert (run["status"], run["tasks_completed"], run["steps_done"]) == ("completed", 2, 2)
    count = next(t for t in appliance.tasks(run) if t["task_name"] == "count")
    assert count["inputs"] == ["in/sample_\ufffd.fastq"] and count["attempts"] == 1
    assert "rejected" not in output and not appliance.spooled()
    assert not list(appliance.spool.rglob("rejected/*"))
    acked = appliance.query("SELECT count(*) AS n FROM ingest_receipts")[0]["n"]
    stored = appliance.query("SELECT count(DISTINCT event_id) AS n FROM ingest_receipts")[0]["n"]
    print(f"\nundecodable file name via the plugin: {acked} events acknowledged, {stored} distinct stored")
    assert acked == stored > 0
