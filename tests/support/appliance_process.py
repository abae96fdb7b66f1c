"""entrypoint.sh run natively, as a container would run it, for the appliance's tests.

It runs in a session of its own, with an environment built from scratch (so
the developer's own DATABASE_URL and the like never leak in), its output
appended to a file. Every process it starts stays in that session (supervisord
gives its programs process groups of their own, not sessions), which is how
the tests find the processes left behind, if any. Client is its HTTP API as
a test calls it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import secret_scan
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "entrypoint.sh"
CONF = REPO / "conf" / "supervisord.conf"
VENV_BIN = Path(sys.executable).parent
PROGRAMS = ("web", "monitor", "projector")  # what supervisord runs (conf/supervisord.conf)
INGEST_TOKEN = "e2e-ingest-token"  # APPLIANCE_INGEST_TOKEN of the appliances Client sends events to


def base_environment(path_prefix: list[Path] = (), **settings: str) -> dict[str, str]:
    path = [str(p) for p in path_prefix] + [str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(path), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update(settings)
    return env


def process_stats() -> dict[int, list[str]]:
    """{pid: the fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...)}."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            stats[int(entry.name)] = stat[stat.rindex(")") + 2:].split()
    return stats


def session_processes(sid: int) -> set[int]:
    """Pids of the live (not zombie) processes in session `sid`."""
    return {pid for pid, fields in process_stats().items() if int(fields[3]) == sid and fields[0] != "Z"}


class Appliance:
    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()):
        self.run_dir = Path(tempfile.mkdtemp(prefix="apl-"))  # short: a socket path has a length limit
        self.env = {"APPLIANCE_RUN_DIR": str(self.run_dir / "run"), **env}
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self) -> "Appliance":
        # Appending matters: supervisord reopens /dev/fd/1 in append mode, and a
        # plain `>` file would have the entrypoint's writes overwrite its lines.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(ENTRYPOINT), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"entrypoint.sh still running after {timeout} s; output:\n{self.output[-3000:]}")

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess:
        # -s: this appliance's socket; the checkout's run/ link names the one started last.
        socket = f"unix://{self.env['APPLIANCE_RUN_DIR']}/supervisor.sock"
        return subprocess.run(["supervisorctl", "-c", str(CONF), "-s", socket, *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def states(self) -> dict[str, str]:
        """{program: state} from `supervisorctl status`, {} while supervisord is not up."""
        states = {}
        for line in self.supervisorctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isupper():
                states[parts[0]] = parts[1]
        return states

    def wait_until_running(self, programs, timeout: float = 30) -> dict[str, str]:
        def running():
            if self.process.poll() is not None:
                raise AssertionError(f"entrypoint.sh exited {self.process.returncode}:\n{self.output[-3000:]}")
            states = self.states()
            return states if all(states.get(p) == "RUNNING" for p in programs) else None
        return wait_for(running, timeout, interval=0.2, message=f"{', '.join(programs)} RUNNING")

    def pid_of(self, program: str) -> int:
        return int(self.supervisorctl("pid", program).stdout.strip())

    def supervisord_pid(self) -> int:
        return int((self.run_dir / "run" / "supervisord.pid").read_text())

    def processes(self) -> set[int]:
        return session_processes(self.process.pid)

    def stop(self) -> None:
        """Whatever happened in the test: nothing of this run survives it.

        Then fails the test if the log holds the database password (the test
        server's, or one given in the environment; tests/support/secret_scan.py).
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(5)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        secret_scan.check_file(self.log_path, secret_scan.given_passwords(self.env))


class Client:
    """The HTTP API of an appliance on a loopback port, as a test calls it."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def get_json(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.load(response)

    def send(self, events: list[dict]) -> dict:
        request = urllib.request.Request(
            self.base + "/api/v1/events", data=json.dumps({"events": events}).encode(), method="POST",
            headers={"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 201, 202)
            return json.load(response)
