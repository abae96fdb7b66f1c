"""The fault suite's faults, for longer, on several appliances at once.

    python -m bench.soak [--minutes 20] [--replicas 2] [--kill-every 30] [--outage-every 240]

On a private PostgreSQL (durable: fsync on), REPLICAS appliances start at the
same moment through entrypoint.sh on one empty database, and
tests/support/loadgen.py sends runs to all of them. Then, until MINUTES pass:

- every KILL_EVERY seconds a `kill -9` of the next program (web, monitor,
  projector) of the next appliance, round robin;
- every OUTAGE_EVERY seconds an outage of PostgreSQL, by turns stopped for
  20 s (with a Snakemake plugin run spooled meanwhile) and frozen with
  SIGSTOP for 15 s.

Once a minute it prints the events acknowledged in that minute and the memory
of each program (a program restarted by a kill starts afresh: use
`--kill-every 0` to watch memory alone). At the end it stops the load and
checks what the fault suite checks: every acknowledged event in the views
exactly once, every change handled by a monitor exactly once. Exit status 1
when that check fails.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from appliance.localpg import LocalPostgres, free_port
from bench.startup import memory
from tests.support.appliance_process import Appliance
from tests.support.fault_kit import (PROGRAMS, TOKEN, appliance_environment, create_database, descendants, error_lines,
                             frozen, handled_by, kill_and_wait, plugin_run, plugin_run_stored,
                             settle_exactly_once, wait_until_serving)
from tests.support.loadgen import LoadGenerator
from tests.support.waiting import wait_for

STOP_SECONDS = 20
FREEZE_SECONDS = 15


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
        self.server = LocalPostgres.temporary(durable=True).start()
        self.database_url = create_database(self.server, "soak")
        self.appliances: list[tuple[Appliance, int]] = []
        self.recoveries: dict[str, list[float]] = {}  # fault -> seconds until load is acknowledged again
        self.minutes: list[int] = []  # events acknowledged in each minute
        self.spooled: list[tuple[str, list[dict]]] = []  # plugin runs sent while PostgreSQL was down
        self.caught_up = 0.0  # seconds from the load's stop to every event and change checked

    def run(self) -> bool:
        from snakemake_logger_plugin_appliance.sender import Sender

        for number in range(self.args.replicas):
            port = free_port()
            env = appliance_environment(self.database_url, port)
            self.appliances.append((Appliance(env, self.work / f"replica-{number}.log").start(), port))
        for appliance, port in self.appliances:
            wait_until_serving(appliance, port)
        first_port = self.appliances[0][1]
        self.sender = Sender(f"http://127.0.0.1:{first_port}", TOKEN, self.work / "spool", exit_wait=1).start()
        print(f"{self.args.replicas} appliances serving on ports "
              f"{', '.join(str(port) for _, port in self.appliances)}; soaking for {self.args.minutes:g} min")
        memory_before = self.memory()
        with LoadGenerator([port for _, port in self.appliances], TOKEN, workers=2 * self.args.replicas) as load:
            self.faults_until_the_end(load)
            load_stops = time.monotonic()
            outcome, changes = settle_exactly_once(load, self.database_url, timeout=600)
            self.caught_up = time.monotonic() - load_stops
        wait_for(lambda: self.sender.spool.count == 0, 120, message="the plugin's spool to drain")
        self.sender.close()
        plugin_ok = all(plugin_run_stored(self.database_url, *run) for run in self.spooled)
        self.report(load, outcome, changes, memory_before, self.memory(), plugin_ok)
        return plugin_ok

    def faults_until_the_end(self, load: LoadGenerator) -> None:
        started = time.monotonic()
        deadline = started + 60 * self.args.minutes
        victims = itertools.cycle([(a, p) for a, _ in self.appliances for p in PROGRAMS])
        outages = itertools.cycle([self.stop_server, self.freeze_server])
        next_kill = started + (self.args.kill_every or float("inf"))
        next_outage = started + (self.args.outage_every or float("inf"))
        next_minute, acked_then = started + 60, 0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_kill:
                appliance, program = next(victims)
                self.recoveries.setdefault(f"kill -9 {program}", []).append(kill_and_wait(appliance, program))
                next_kill = time.monotonic() + self.args.kill_every
            if now >= next_outage:
                next(outages)(load)
                next_outage = time.monotonic() + self.args.outage_every
            if now >= next_minute:
                acked = len(load.ledger.acked)
                self.minutes.append(acked - acked_then)
                acked_then, next_minute = acked, next_minute + 60
                print(f"  minute {len(self.minutes):3d}: {self.minutes[-1]:7,d} events acknowledged; memory "
                      + ", ".join(f"{name} {mb:.0f} MB" for name, mb in self.memory().items()), flush=True)
            time.sleep(0.5)

    def stop_server(self, load: LoadGenerator) -> None:
        self.server.stop()
        run = plugin_run()
        self.sender.put(run[1])
        self.spooled.append(run)
        time.sleep(STOP_SECONDS)  # the fault itself
        self.server.start()
        self.time_recovery(load, f"PostgreSQL stopped {STOP_SECONDS} s")

    def freeze_server(self, load: LoadGenerator) -> None:
        with frozen(self.server):
            time.sleep(FREEZE_SECONDS)  # the fault itself
        self.time_recovery(load, f"PostgreSQL frozen {FREEZE_SECONDS} s")

    def time_recovery(self, load: LoadGenerator, fault: str) -> None:
        back = time.monotonic()
        load.wait_for_acks(50, 120)
        self.recoveries.setdefault(fault, []).append(time.monotonic() - back)
        print(f"  {fault}: load acknowledged again after {self.recoveries[fault][-1]:.1f} s", flush=True)

    def memory(self) -> dict[str, float]:
        """{program: MB RSS} summed over the appliances, web with its workers."""
        totals = {}
        for program in PROGRAMS:
            pids = set()
            for appliance, _ in self.appliances:
                pid = appliance.pid_of(program)  # 0 while supervisor restarts it
                pids |= ({pid} | descendants(pid)) if pid > 0 else set()
            totals[program] = sum(row[2] for row in memory(pids)) / 1024
        return totals

    def report(self, load, outcome, changes, memory_before, memory_after, plugin_ok) -> None:
        total, handled, _, _ = changes
        minutes = self.minutes or [len(load.ledger.acked)]
        print(f"\nSOAK {self.args.minutes:g} min, {self.args.replicas} appliances, durable PostgreSQL")
        print(f"  events: {outcome}; {load.rate:.0f}/s overall; per minute min {min(minutes):,} "
              f"median {statistics.median(minutes):,.0f} max {max(minutes):,}")
        print(f"  answers: {dict(load.ledger.answers)}")
        print(f"  views and monitors caught up {self.caught_up:.1f} s after the load was told to stop "
              "(its runs in flight finished first)")
        print(f"  changes: {total:,}, each handled once: {handled:,}; "
              f"by monitor connection: {sorted(handled_by(self.database_url).values(), reverse=True)}")
        for fault, seconds in self.recoveries.items():
            print(f"  {fault}: {len(seconds)} times, recovery median {statistics.median(seconds):.1f} s, "
                  f"max {max(seconds):.1f} s")
        print(f"  plugin runs spooled during outages: {len(self.spooled)}, all stored: {plugin_ok}")
        print("  memory (MB RSS, all appliances): " + ", ".join(
            f"{program} {memory_before[program]:.0f} -> {memory_after[program]:.0f}" for program in PROGRAMS))
        errors = [line for appliance, _ in self.appliances for line in error_lines(appliance)
                  if "terminated by SIGKILL" not in line]  # the kills' own
        print(f"  error lines in the logs, besides the kills: {len(errors)} (logs in {self.work})")
        for line in errors[:10]:
            print(f"    {line[:160]}")

    def close(self) -> None:
        for appliance, _ in self.appliances:
            appliance.stop()
        self.server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20, help="how long to soak (default 20)")
    parser.add_argument("--replicas", type=int, default=2, help="appliances on the one database (default 2)")
    parser.add_argument("--kill-every", type=float, default=30, help="seconds between kills; 0: none (default 30)")
    parser.add_argument("--outage-every", type=float, default=240,
                        help="seconds between PostgreSQL outages; 0: none (default 240)")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        ok = soak.run()
    except AssertionError as failure:
        print(f"\nSOAK FAILED: {failure}")
        ok = False
    finally:
        soak.close()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
