"""A real Docker engine for the suite: ../shared/tools/docker-engine up, then the docker CLI.

That script installs Debian's engine when missing, starts it without touching
the host's network set-up (no bridge: every build and container uses
--network host) and builds local stand-ins for python:3.11-slim and
postgres:15. It is idempotent and prints `export DOCKER_HOST=...` last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = Path(os.environ.get("APPLIANCE_DOCKER_ENGINE", REPO.parent / "shared" / "tools" / "docker-engine"))


class EngineUnavailable(RuntimeError):
    pass


def start_engine() -> str:
    """DOCKER_HOST of a running engine; EngineUnavailable saying why there is none."""
    if not ENGINE_SCRIPT.exists():
        raise EngineUnavailable(f"no {ENGINE_SCRIPT} (set APPLIANCE_DOCKER_ENGINE to the docker-engine script)")
    if os.geteuid() != 0:
        raise EngineUnavailable("docker-engine must run as root (it installs and starts dockerd)")
    result = subprocess.run([str(ENGINE_SCRIPT), "up"], capture_output=True, text=True, timeout=1800)
    last = result.stdout.strip().splitlines()[-1:] or [""]
    if result.returncode != 0 or not last[0].startswith("export DOCKER_HOST="):
        raise EngineUnavailable(f"docker-engine up failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return last[0].removeprefix("export DOCKER_HOST=").strip("'\"")


@dataclass
class Docker:
    host: str
    names: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def compose(self, project_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [shutil.which("docker-compose") or "docker-compose", *args]
        result = subprocess.run(command, cwd=project_dir, capture_output=True, text=True, env=self.env(),
                                timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def start(self, name: str, *args: str) -> str:
        """`docker run -d --network host --name NAME ...`, removed when the test ends."""
        self.names.append(name)
        self.run("run", "-d", "--network", "host", "--name", name, *args)
        return name

    def inspect(self, name: str) -> dict:
        return json.loads(self.run("inspect", name).stdout)[0]

    def health(self, name: str) -> str:
        return self.inspect(name)["State"].get("Health", {}).get("Status", "none")

    def logs(self, name: str) -> str:
        result = self.run("logs", name, check=False)
        return result.stdout + result.stderr

    def exec(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("exec", name, *args, timeout=120, check=check)

    def wait_healthy(self, name: str, timeout: float = 120) -> None:
        def healthy():
            state = self.inspect(name)["State"]
            if not state["Running"]:
                raise AssertionError(f"{name} exited {state['ExitCode']}:\n{self.logs(name)[-3000:]}")
            return state.get("Health", {}).get("Status") == "healthy"
        wait_for(healthy, timeout, interval=1, message=f"{name} healthy")

    def stop(self, name: str, seconds: int = 10) -> float:
        started = time.monotonic()
        self.run("stop", "-t", str(seconds), name, timeout=seconds + 60)
        return time.monotonic() - started

    def remove_all(self) -> None:
        for name in reversed(self.names):
            self.run("rm", "-f", "-v", name, check=False)
        self.names.clear()
