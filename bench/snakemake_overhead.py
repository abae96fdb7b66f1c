"""What the Snakemake logger plugin costs: wall time of a 1,000-job trivial
workflow with it and without it, and the same for another published
monitoring plugin (snkmt's, which writes to SQLite), measured in one run.

    .venv/bin/python -m bench.snakemake_overhead [--jobs 1000] [--repeats 3] [--cores 2]

Snakemake runs from a virtual environment of its own (made on first use in
--venv: Snakemake, this plugin, snakemake-logger-plugin-snkmt), so the other
plugin's dependencies stay out of the project's. The appliance runs beside it
on this machine, as in production: an ingest endpoint process (appliance.web
when it exists, else a stand-in that serves POST /api/v1/events through
appliance.ingest) and `appliance projector`, on a throwaway PostgreSQL. The
configurations take turns (none, appliance, snkmt, none, ...) so that drift
hits each alike; each figure is the median. The plugin's time includes its
wait at exit for the last events to be sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def serve(database_url: str, port: int) -> None:
    """The ingest endpoint: appliance.web if it is there, else the stand-in."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from appliance.ingest import IngestError, apply_batch, parse_batch
    from appliance.tracker import WorkflowTracker

    tracker = WorkflowTracker(database_url=database_url)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {})
            try:
                result = apply_batch(tracker, parse_batch(json.loads(self.rfile.read(
                    int(self.headers["Content-Length"])))))
                self._answer(200, {"applied": result.applied, "duplicates": result.duplicates})
            except IngestError as error:
                self._answer(400, {"errors": error.problems})

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def start_appliance(database_url: str, port: int) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": database_url, "APPLIANCE_INGEST_TOKEN": TOKEN}
    try:
        import appliance.web  # noqa: F401  (the real app, once it exists)
        web = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "appliance.web:create_app()"]
    except ImportError:
        web = [sys.executable, "-m", "bench.snakemake_overhead", "--serve", database_url, str(port)]
    processes = [subprocess.Popen(web, env=env, cwd=REPO, stderr=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-m", "appliance.cli", "projector"], env=env,
                                  stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 30
    import socket
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the ingest endpoint did not start")
        time.sleep(0.2)
    return processes


def prepare_database(server) -> str:
    from appliance.config import Settings, parse_database_url
    from appliance.localpg import _create_database
    from appliance.migrator import migrate
    from appliance.tracker import WorkflowTracker

    _create_database(server.url(), "bench")
    url = server.url("bench")
    WorkflowTracker(database_url=url).close()  # the event store's tables
    migrate(Settings(database_url=parse_database_url(url)), announce=lambda line: None)
    return url


def one_run(snakemake: Path, workdir: Path, jobs: int, cores: int, extra: list[str], env: dict) -> float:
    for leftover in ("out", ".snakemake"):
        shutil.rmtree(workdir / leftover, ignore_errors=True)
    command = [str(snakemake), "-c", str(cores), *extra, "--config", f"jobs={jobs}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "appliance-bench-snakemake")
    parser.add_argument("--serve", nargs=2, metavar=("DATABASE_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))

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
        configurations = {
            "none": [],
            "appliance": ["--logger", "appliance", "--logger-appliance-url", f"http://127.0.0.1:{port}"],
            "snkmt": ["--logger", "snkmt", "--logger-snkmt-db", str(work / "snkmt.db")],
        }
        times: dict[str, list[float]] = {name: [] for name in configurations}
        one_run(snakemake, workdir, 20, args.cores, [], env)  # warm-up: caches, bytecode
        for repeat in range(args.repeats):
            for name, extra in configurations.items():
                seconds = one_run(snakemake, workdir, args.jobs, args.cores, extra, env)
                times[name].append(seconds)
                print(f"repeat {repeat + 1}: {name:9} {seconds:6.2f} s", file=sys.stderr)
        check_recorded(database_url, args.jobs + 1, args.repeats)
        base = statistics.median(times["none"])
        print(f"{args.jobs} trivial jobs, -c {args.cores}, {args.repeats} runs each, {os.cpu_count()} cores")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:10} median {median:6.2f} s  ratio {median / base:.3f}  "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)


def check_recorded(database_url: str, tasks: int, runs: int) -> None:
    """Every run with the plugin is in the views, complete, before figures are trusted."""
    import psycopg2

    deadline = time.monotonic() + 60
    while True:
        connection = psycopg2.connect(database_url)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT status, tasks_completed FROM workflow_runs")
            rows = cursor.fetchall()
        connection.close()
        if rows == [("completed", tasks)] * runs:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {runs} completed runs of {tasks} tasks in the views, found {rows}")
        time.sleep(1)


if __name__ == "__main__":
    main()
