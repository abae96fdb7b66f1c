"""Start-up time and idle memory of the whole appliance, run natively through entrypoint.sh.

    python -m bench.startup [--idle SECONDS] [--rounds N]

On a private PostgreSQL it prints the seconds from starting entrypoint.sh to
the first 200 from /readyz, on an empty database (the migration and the
triggers included) and then on the same, now migrated, database, with the
seconds from the start to each step's log line (config, wait-for-db, init,
supervisord, web spawned, gunicorn listening, a worker serving, /readyz); then the
memory of all the appliance's processes together (supervisord, which the
entrypoint became, the listener, web with its workers, monitor, projector)
after SECONDS idle: the sum of their resident sets (RSS) and of their
proportional sets (PSS, shared pages counted once, which is what the
container's memory holds). It measures twice: freshly started ("cold"), and
again idle after --warm-events events went through the ingest endpoint
("warm": the caches filled). The database server is not counted. Sizes in
MiB (1,048,576 bytes).

With --docker (as root: ../shared/tools/docker-engine up), the same run also
measures the image: its size and its layers', the build time cold (no cache)
and after a code change (one file of appliance/ changed: only the code layer
is rebuilt), `docker run` to /readyz 200 and to healthy (the HEALTHCHECK's
first probe comes after its 15 s interval), `docker stop`, and the container's
memory after --idle seconds (`docker stats`), next to a postgres:15 container.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from appliance.localpg import LocalPostgres, _create_database, free_port
from tests.support.appliance_process import Appliance, base_environment
from tests.support.loadgen import LoadGenerator
from tests.support.waiting import wait_for

TOKEN = "bench-startup-token"
REPO = Path(__file__).resolve().parents[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_and_time(env: dict[str, str], log: Path, port: int) -> tuple[Appliance, float]:
    started = time.monotonic()
    log.write_text(f"{STARTED} {time.time()}\n")
    appliance = Appliance(env, log).start()
    wait_for(lambda: ready(port) or appliance.process.poll() is not None, 60, interval=0.05,
             message="/readyz")
    if appliance.process.poll() is not None:
        raise SystemExit(f"entrypoint.sh exited {appliance.process.returncode}:\n{appliance.output[-3000:]}")
    return appliance, time.monotonic() - started


STARTED = "bench: started at"
# Where a start's time goes: the first log line that shows each step done (text format).
MILESTONES = (("config", " config INFO config: "), ("wait-for-db", "the database accepts connections"),
              ("init", " init INFO init: installed"), ("supervisord", "supervisord started with pid"),
              ("web spawned", "spawned: 'web'"), ("gunicorn", "gunicorn: Listening at"),
              ("a worker", "ASGI server listening"), ("/readyz", '"GET /readyz HTTP/1.1" 200'))


def breakdown(log: Path) -> str:
    """'config 0.41, wait-for-db 0.52, ...': seconds from the start to each milestone in the log."""
    lines = log.read_text(errors="replace").splitlines()
    started = float(lines[0].removeprefix(STARTED))
    found = {}
    for line in lines[1:]:
        for name, text in MILESTONES:
            if name not in found and text in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                found[name] = stamp.timestamp() - started
    return ", ".join(f"{name} {found[name]:.2f}" for name, _ in MILESTONES if name in found)


def memory(pids) -> list[tuple[int, str, int, int]]:
    """(pid, command, rss kB, pss kB) of each process still alive."""
    rows = []
    for pid in sorted(pids):
        proc = Path(f"/proc/{pid}")
        try:
            command = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            rss = _kb(proc.joinpath("status").read_text(), "VmRSS:")
            pss = _kb(proc.joinpath("smaps_rollup").read_text(), "Pss:")
        except (OSError, ValueError):
            continue
        rows.append((pid, command, rss, pss))
    return rows


def _kb(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise ValueError(key)


def container_figures(idle: float) -> list[str]:
    """The image's figures, built from a copy of the committed checkout."""
    import secrets

    from tests.support.docker import Docker, start_engine

    docker = Docker(start_engine())
    context = Path(tempfile.mkdtemp(prefix="bench-image-"))
    lines = []
    try:
        subprocess.run(f"git -C {REPO} archive HEAD | tar -x -C {context}", shell=True, check=True)
        tag = "appliance-bench:latest"
        started = time.monotonic()
        docker.run("build", "--no-cache", "--network", "host", "-t", tag, str(context), timeout=3600)
        cold = time.monotonic() - started
        with open(context / "appliance" / "__init__.py", "a") as code:
            code.write("# a code change\n")
        started = time.monotonic()
        docker.run("build", "--network", "host", "-t", tag, str(context), timeout=3600)
        changed = time.monotonic() - started
        size = json.loads(docker.run("image", "inspect", tag).stdout)[0]["Size"]
        base = json.loads(docker.run("image", "inspect", "python:3.11-slim").stdout)[0]["Size"]
        lines += [f"image: {size / 2**20:.0f} MiB ({(size - base) / 2**20:.0f} MiB above python:3.11-slim); "
                  f"build {cold:.1f} s cold (no cache), {changed:.1f} s after a code change",
                  "layers (newest first):"]
        for layer in docker.run("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout.splitlines()[:8]:
            lines.append("  " + layer[:150])
        pg_port, web_port, password = free_port(), free_port(), secrets.token_urlsafe(12)
        docker.start("bench-pg", "-e", "POSTGRES_USER=appliance", "-e", f"POSTGRES_PASSWORD={password}",
                     "postgres:15", "-c", f"port={pg_port}")
        wait_for(lambda: docker.exec("bench-pg", "pg_isready", "-h", "127.0.0.1", "-p", str(pg_port),
                                     check=False).returncode == 0, 120, interval=0.5, message="postgres:15")
        env = ["-e", f"DATABASE_URL=postgresql://appliance:{password}@127.0.0.1:{pg_port}/appliance",
               "-e", f"BACKEND_PORT={web_port}"]
        for attempt in ("empty database", "migrated database"):
            started = time.monotonic()
            docker.start("bench-appliance", *env, tag)
            wait_for(lambda: ready(web_port), 300, interval=0.1, message="/readyz")
            to_ready = time.monotonic() - started
            docker.wait_healthy("bench-appliance", timeout=300)
            to_healthy = time.monotonic() - started
            if attempt == "migrated database":
                time.sleep(idle)
                memory_use = docker.run("stats", "--no-stream", "--format", "{{.MemUsage}}",
                                        "bench-appliance").stdout.strip()
            stop = docker.stop("bench-appliance")
            code = docker.inspect("bench-appliance")["State"]["ExitCode"]
            docker.run("rm", "bench-appliance")
            docker.names.remove("bench-appliance")
            lines.append(f"docker run -> /readyz 200, {attempt}: {to_ready:.2f} s; -> healthy {to_healthy:.1f} s; "
                         f"docker stop {stop:.2f} s (exit {code})")
        lines.append(f"container memory after {idle:g} s idle (docker stats): {memory_use}")
    finally:
        docker.remove_all()
        shutil.rmtree(context, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=15, help="seconds idle before measuring memory (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="start-ups on a migrated database (default 3)")
    parser.add_argument("--warm-events", type=int, default=20_000,
                        help="events sent through ingest before the warm measure (default 20000)")
    parser.add_argument("--docker", action="store_true", help="also the image's figures (as root; see above)")
    args = parser.parse_args()
    container = container_figures(args.idle) if args.docker else []
    server = LocalPostgres.temporary(durable=True).start()
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        _create_database(server.url("postgres"), "bench")
        port = free_port()
        env = base_environment(DATABASE_URL=server.url("bench"), BACKEND_PORT=str(port), APPLIANCE_INGEST_TOKEN=TOKEN)
        appliance, empty = start_and_time(env, work / "empty.log", port)
        appliance.stop()
        migrated = []
        for round_number in range(args.rounds):
            appliance, seconds = start_and_time(env, work / f"migrated-{round_number}.log", port)
            migrated.append(seconds)
            if round_number < args.rounds - 1:
                appliance.stop()
        time.sleep(args.idle)
        cold = memory(appliance.processes())
        with LoadGenerator([port], TOKEN) as load:
            load.wait_for_acks(args.warm_events, timeout=600)
        time.sleep(args.idle)
        warm = memory(appliance.processes())
        appliance.stop()
    finally:
        server.destroy()
    print(f"entrypoint start -> /readyz 200, empty database:    {empty:.2f} s")
    print(f"entrypoint start -> /readyz 200, migrated database: {statistics.median(migrated):.2f} s "
          f"(median of {len(migrated)}: {', '.join(f'{s:.2f}' for s in migrated)})")
    print(f"  seconds to each step, empty database:    {breakdown(work / 'empty.log')}")
    median_round = migrated.index(statistics.median_low(migrated))
    print(f"  seconds to each step, migrated (median): {breakdown(work / f'migrated-{median_round}.log')}")
    for name, rows in (("cold", cold), (f"warm, after {len(load.ledger.acked):,} events", warm)):
        print(f"memory after {args.idle:g} s idle ({name}), {len(rows)} processes:")
        for pid, command, rss, pss in rows:
            print(f"  {rss / 1024:7.1f} MiB RSS {pss / 1024:7.1f} MiB PSS  {command[:90]}")
        print(f"  total: {sum(r[2] for r in rows) / 1024:.1f} MiB RSS, {sum(r[3] for r in rows) / 1024:.1f} MiB PSS")
    for line in container:
        print(line)


if __name__ == "__main__":
    main()
