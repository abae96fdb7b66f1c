"""The first hour's first minute: `scripts/run` on a fresh clone, until it says it is ready.

    python -m bench.first_start

Clones this checkout's HEAD into a temporary folder three times over and
times `scripts/run` from its start to its "ready" line: a fresh clone with an
empty pip cache (every package downloaded), a second fresh clone with the
cache the first filled, then that clone started again (its .venv and its
PostgreSQL there already). Each is stopped as a terminal's Ctrl-C would (SIGINT
to its process group), timed too. Also printed: how much of each start went
to installing (until scripts/run starts PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from appliance.localpg import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def start(clone: Path, home: Path, pip_cache: Path, log: Path) -> tuple[subprocess.Popen, float, float]:
    env = {"PATH": DEBIAN_PATH, "HOME": str(home), "LANG": "C.UTF-8", "BACKEND_PORT": str(free_port()),
           "PIP_CACHE_DIR": str(pip_cache)}
    with open(log, "ab") as output:
        started = time.monotonic()
        run = subprocess.Popen(["bash", str(clone / "scripts" / "run")], cwd="/", env=env, stdout=output,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    installed = wait_for(lambda: "run: starting the private PostgreSQL" in log.read_text() and time.monotonic(),
                         900, interval=0.1, message="the install")
    wait_for(lambda: "the appliance is ready" in log.read_text() or run.poll() is not None, 900, interval=0.1,
             message="ready")
    ready = time.monotonic()
    if run.poll() is not None:
        raise SystemExit(f"scripts/run exited {run.returncode}:\n{log.read_text()[-3000:]}")
    return run, installed - started, ready - started


def ctrl_c(run: subprocess.Popen) -> float:
    started = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    run.wait(60)
    return time.monotonic() - started


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-first-"))
    rows = []
    try:
        pip_cache = work / "pip-cache"
        for label, clone in (("fresh clone, empty pip cache", work / "a"), ("fresh clone, warm pip cache", work / "b"),
                             ("second start of that clone", work / "b")):
            if not clone.exists():
                subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
            log = work / (re.sub(r"\W+", "-", label) + ".log")
            run, install, ready = start(clone, work, pip_cache, log)
            rows.append((label, install, ready, ctrl_c(run)))
    finally:
        for data in work.glob("*/.appliance-data/cluster-dir"):
            shutil.rmtree(data.read_text().strip(), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    for label, install, ready, stop in rows:
        print(f"{label:32} ready {ready:6.1f} s (installing {install:5.1f} s); Ctrl-C to all stopped {stop:4.1f} s")


if __name__ == "__main__":
    main()
