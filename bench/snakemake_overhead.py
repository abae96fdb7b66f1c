"""What the Snakemake logger plugin costs: wall time of a 1,000-job trivial
workflow with it and without it, and the same for another published
monitoring plugin (snkmt's, which writes to SQLite), measured in one run;
then the same workflow with a benchmark file on every job (`benchmark:`,
which the plugin reads after each job and sends as its measured resources),
with the plugin and without, its own baseline.

    .venv/bin/python -m bench.snakemake_overhead [--jobs 1000] [--repeats 3] [--cores 2]

Snakemake runs from a virtual environment of its own (made on first use in
--venv: Snakemake, this plugin, snakemake-logger-plugin-snkmt), so the other
plugin's dependencies stay out of the project's. The whole appliance runs
beside it on this machine, as in the container: `appliance init` (views and
change triggers), then `appliance web` (gunicorn), `appliance projector` and
`appliance monitor`, on a throwaway PostgreSQL. The configurations take turns
(none, appliance, snkmt, none, ...) so that drift hits each alike; each
figure is the median. The plugin's time includes its wait at exit for the
last events to be sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugins/snakemake-logger-plugin-appliance"
WORKFLOW = PLUGIN / "tests/workflows/many"
TOKEN = "bench-token"
OTHER = "snakemake-logger-plugin-snkmt==0.1.9"


def bench_venv(path: Path) -> Path:
    """Snakemake with both plugins, made once and reused."""
    python = path / "bin/python"
    if not (path / ".ready").exists():
        print(f"making {path} (Snakemake, this plugin, {OTHER})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "snakemake>=9,<10", "-e", str(PLUGIN), OTHER], check=True)
        (path / ".ready").touch()
    return path / "bin/snakemake"


def start_appliance(database_url: str, port: int) -> list[subprocess.Popen]:
    """The appliance's programs, as supervisord runs them in the container."""
    env = {**os.environ, "DATABASE_URL": database_url, "APPLIANCE_INGEST_TOKEN": TOKEN,
           "APPLIANCE_BIND": "127.0.0.1", "BACKEND_PORT": str(port)}
    subprocess.run([sys.executable, "-m", "appliance.cli", "init"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes = [subprocess.Popen([sys.executable, "-m", "appliance.cli", program], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for program in ("web", "projector", "monitor")]
    deadline = time.monotonic() + 60
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.2)
    return processes


def prepare_database(server) -> str:
    from appliance.localpg import _create_database
    from appliance.tracker import WorkflowTracker

    _create_database(server.url(), "bench")
    url = server.url("bench")
    WorkflowTracker(database_url=url).close()  # the event store's tables
    return url


def one_run(snakemake: Path, workdir: Path, jobs: int, cores: int, options: list[str], config: list[str],
            env: dict) -> float:
    for leftover in ("out", "benchmarks", ".snakemake"):
        shutil.rmtree(workdir / leftover, ignore_errors=True)
    command = [str(snakemake), "-c", str(cores), *options, "--config", f"jobs={jobs}", *config]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "appliance-bench-snakemake")
    args = parser.parse_args()

    from appliance.localpg import LocalPostgres, free_port

    snakemake = bench_venv(args.venv)
    server = LocalPostgres.temporary().start()
    work = Path(tempfile.mkdtemp(prefix="snakemake-overhead-"))
    processes = []
    try:
        database_url = prepare_database(server)
        port = free_port()
        processes = start_appliance(database_url, port)
        workdir = work / "many"
        shutil.copytree(WORKFLOW, workdir)
        env = {**os.environ, "SNAKEMAKE_LOGGER_APPLIANCE_TOKEN": TOKEN,
               "SNAKEMAKE_LOGGER_APPLIANCE_SPOOL_DIR": str(work / "spool")}
        appliance = ["--logger", "appliance", "--logger-appliance-url", f"http://127.0.0.1:{port}"]
        configurations = {  # name: (Snakemake's options, the workflow's config)
            "none": ([], []),
            "appliance": (appliance, []),
            "snkmt": (["--logger", "snkmt", "--logger-snkmt-db", str(work / "snkmt.db")], []),
            "none+benchmark": ([], ["benchmark=1"]),
            "appliance+benchmark": (appliance, ["benchmark=1"]),
        }
        times: dict[str, list[float]] = {name: [] for name in configurations}
        one_run(snakemake, workdir, 20, args.cores, [], [], env)  # warm-up: caches, bytecode
        for repeat in range(args.repeats):
            for name, (options, config) in configurations.items():
                seconds = one_run(snakemake, workdir, args.jobs, args.cores, options, config, env)
                times[name].append(seconds)
                print(f"repeat {repeat + 1}: {name:9} {seconds:6.2f} s", file=sys.stderr)
        check_recorded(database_url, args.jobs + 1, 2 * args.repeats, measured=args.jobs * args.repeats)
        print(f"{args.jobs} trivial jobs, -c {args.cores}, {args.repeats} runs each, {os.cpu_count()} cores")
        for name, values in times.items():
            base = statistics.median(times["none+benchmark" if name.endswith("+benchmark") else "none"])
            median = statistics.median(values)
            print(f"{name:20} median {median:6.2f} s  ratio {median / base:.3f}  "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)


def check_recorded(database_url: str, tasks: int, runs: int, measured: int) -> None:
    """Every run with the plugin is in the views, complete, and every job with a benchmark
    file has its measured resources, before figures are trusted."""
    import psycopg2

    deadline = time.monotonic() + 60
    while True:
        connection = psycopg2.connect(database_url)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT status, tasks_completed FROM workflow_runs")
            rows = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM job_executions WHERE resource_usage IS NOT NULL")
            (with_usage,) = cursor.fetchone()
        connection.close()
        if rows == [("completed", tasks)] * runs and with_usage == measured:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {runs} completed runs of {tasks} tasks in the views and {measured} tasks "
                               f"measured, found {rows} and {with_usage}")
        time.sleep(1)


if __name__ == "__main__":
    main()
