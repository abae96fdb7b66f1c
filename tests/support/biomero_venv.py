"""The real BIOMERO (biomero==2.8.3) in a virtualenv of its own, made once and reused.

BIOMERO pins eventsourcing 9.5.4, SQLAlchemy 2.0.50 and psycopg2 (built from
source), so it cannot share the appliance's environment. The suite creates
`.venv-biomero` beside the repository's `.venv` on first use (about a minute
and a half), under a file lock so that two test sessions never build it at
once, and reuses it while BIOMERO_REQUIREMENT stays the same.

`run_driver(...)` runs tests/support/biomero_driver.py with that Python: BIOMERO's
own WorkflowTracker and four views, wired by BIOMERO's own SlurmClient code.
The database URL travels in SQLALCHEMY_URL, as BIOMERO deployments give it,
never on a command line.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

BIOMERO_REQUIREMENT = "biomero==2.8.3"
# BIOMERO's callers pass fabric Results; its core install brings fabric.
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-biomero"
PYTHON = VENV / "bin" / "python"
DRIVER = Path(__file__).with_name("biomero_driver.py")
MARKER = VENV / ".installed"
INSTALL_TIMEOUT = 900  # seconds; psycopg2 is compiled on the first install


def biomero_python() -> Path:
    """The Python of .venv-biomero, created and filled on first use."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".venv-biomero.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            _install()
    return PYTHON


def _installed() -> bool:
    return PYTHON.exists() and MARKER.exists() and MARKER.read_text().strip() == BIOMERO_REQUIREMENT


def _install() -> None:
    print(f"creating {VENV} with {BIOMERO_REQUIREMENT} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", BIOMERO_REQUIREMENT],
        check=True, timeout=INSTALL_TIMEOUT,
    )
    MARKER.write_text(BIOMERO_REQUIREMENT + "\n")


def driver_command(*args: str) -> list[str]:
    return [str(biomero_python()), str(DRIVER), *args]


def driver_env(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["SQLALCHEMY_URL"] = database_url
    return env


def run_driver(database_url: str, *args: str, timeout: float = 300) -> dict:
    """Run the driver to its end; what it printed last, as JSON. Fails with its stderr."""
    completed = subprocess.run(driver_command(*args), env=driver_env(database_url), capture_output=True,
                               text=True, timeout=timeout)
    if completed.returncode != 0:
        raise AssertionError(f"the BIOMERO driver failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def start_driver(database_url: str, *args: str) -> subprocess.Popen:
    """Start the driver in the background (its stdout and stderr piped)."""
    return subprocess.Popen(driver_command(*args), env=driver_env(database_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
