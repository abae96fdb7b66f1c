"""Start-up time and idle memory of the whole appliance, run natively through entrypoint.sh.

    python -m bench.startup [--idle SECONDS] [--rounds N]

On a private PostgreSQL it prints the seconds from starting entrypoint.sh to
the first 200 from /readyz, on an empty database (the migration and the
triggers included) and then on the same, now migrated, database; then the
memory of all the appliance's processes together (supervisord, which the
entrypoint became, the listener, web with its workers, monitor, projector)
after SECONDS idle: the sum of their resident sets (RSS) and of their
proportional sets (PSS, shared pages counted once, which is what the
container's memory holds). It measures twice: freshly started ("cold"), and
again idle after --warm-events events went through the ingest endpoint
("warm": the caches filled). The database server is not counted. Sizes in
MiB (1,048,576 bytes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from appliance.localpg import LocalPostgres, _create_database, free_port
from tests.support.appliance_process import Appliance, base_environment
from tests.support.loadgen import LoadGenerator
from tests.support.waiting import wait_for

TOKEN = "bench-startup-token"


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_and_time(env: dict[str, str], log: Path, port: int) -> tuple[Appliance, float]:
    started = time.monotonic()
    appliance = Appliance(env, log).start()
    wait_for(lambda: ready(port) or appliance.process.poll() is not None, 60, interval=0.05,
             message="/readyz")
    if appliance.process.poll() is not None:
        raise SystemExit(f"entrypoint.sh exited {appliance.process.returncode}:\n{appliance.output[-3000:]}")
    return appliance, time.monotonic() - started


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=15, help="seconds idle before measuring memory (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="start-ups on a migrated database (default 3)")
    parser.add_argument("--warm-events", type=int, default=20_000,
                        help="events sent through ingest before the warm measure (default 20000)")
    args = parser.parse_args()
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
    for name, rows in (("cold", cold), (f"warm, after {len(load.ledger.acked):,} events", warm)):
        print(f"memory after {args.idle:g} s idle ({name}), {len(rows)} processes:")
        for pid, command, rss, pss in rows:
            print(f"  {rss / 1024:7.1f} MiB RSS {pss / 1024:7.1f} MiB PSS  {command[:90]}")
        print(f"  total: {sum(r[2] for r in rows) / 1024:.1f} MiB RSS, {sum(r[3] for r in rows) / 1024:.1f} MiB PSS")


if __name__ == "__main__":
    main()
