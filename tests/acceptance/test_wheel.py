"""`pip install .` gives an appliance that starts: the built wheel in a fresh virtualenv, no checkout.

The wheel carries entrypoint.sh, conf/, migrations/ and init-db/ (setup.py
copies them into appliance/_files/); `appliance start` runs the entrypoint
from there. The test starts it from a folder that is not the checkout, with a
PATH that holds nothing of the checkout's virtualenv.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from appliance.localpg import free_port
from tests.support.appliance_process import PROGRAMS, REPO
from tests.support.waiting import wait_for



def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_the_built_wheel_starts_the_appliance_from_a_fresh_virtualenv(tmp_path, empty_database_url):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("appliance-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(REPO / "requirements.lock")], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, timeout=300)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "from appliance.files import app_file; print(app_file('migrations'))"],
                             cwd=elsewhere, capture_output=True, text=True, check=True).stdout.strip()
    assert located.startswith(str(venv)) and (Path(located) / "env.py").exists(), located

    port = free_port()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "DATABASE_URL": empty_database_url, "BACKEND_PORT": str(port),
           "APPLIANCE_RUN_DIR": str(tmp_path / "run")}
    log = tmp_path / "appliance.log"
    with open(log, "ab") as output:
        appliance = subprocess.Popen([str(venv / "bin" / "appliance"), "start"], cwd=elsewhere, env=env,
                                     stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
    try:
        wait_for(lambda: ready(port) or appliance.poll() is not None, 120, interval=0.5, message="/readyz")
        assert appliance.poll() is None, log.read_text()[-3000:]

        def every_program_running() -> str | None:
            # web answers /readyz before supervisord counts it RUNNING (after its startsecs).
            status = subprocess.run([str(venv / "bin" / "appliance"), "status"], cwd=elsewhere, env=env,
                                    capture_output=True, text=True, timeout=60)
            running = all(f"program {program}: RUNNING" in status.stdout for program in PROGRAMS)
            return status.stdout if running else None

        wait_for(every_program_running, 60, interval=1, message="every program RUNNING in appliance status")
        appliance.send_signal(signal.SIGTERM)
        assert appliance.wait(15) == 0, log.read_text()[-3000:]
    finally:
        if appliance.poll() is None:
            subprocess.run(["kill", "-KILL", "--", f"-{appliance.pid}"], check=False)
            appliance.wait(10)
    assert str(venv) in log.read_text()  # migrations and init-db from the installed wheel
