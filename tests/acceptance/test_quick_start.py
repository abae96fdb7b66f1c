"""The README's quick start on a fresh clone, as a new user would run it, as root and not.

The clone is in a folder only its owner may enter (mode 700, like /root), so
the postgres user cannot reach it. `scripts/run` is started from another
folder; it must get ready, print the lines that record a Snakemake run, and
those lines, run as printed, must record one. Then a Ctrl-C (SIGINT to its
process group, as a terminal sends it) must stop everything it started,
PostgreSQL included, and say so.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from appliance.localpg import RUNUSER, free_port
from tests.support.appliance_process import REPO, VENV_BIN
from tests.support.waiting import wait_for

SNAKEFILE = """
rule all:
    input: "greeting.txt"

rule greet:
    output: "greeting.txt"
    shell: "echo hello > {output}"
"""


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command:
                found.append(f"{entry.name}: {command}")
    return found


@pytest.fixture(params=["root", "unprivileged"])
def user(request) -> pwd.struct_passwd:
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the root variant needs the suite to run as root (as CI does)")
        return pwd.getpwuid(0)
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    return pwd.getpwnam("nobody")


def as_user(user: pwd.struct_passwd, command: list[str]) -> list[str]:
    return command if user.pw_uid == os.geteuid() else [RUNUSER, "-u", user.pw_name, "--", *command]


def test_the_quick_start_on_a_fresh_clone(user, tmp_path):
    home = Path(tempfile.mkdtemp(prefix="apl-home-"))  # mode 700: postgres cannot enter it
    clone, workflow = home / "appliance", home / "workflow"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    workflow.mkdir()
    (workflow / "Snakefile").write_text(SNAKEFILE)
    os.chown(home, user.pw_uid, user.pw_gid)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(home)], check=True)
    port = free_port()
    path = "/usr/sbin:/usr/bin:/sbin:/bin" if user.pw_uid == 0 else "/usr/bin:/bin"  # Debian's, less /usr/local
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "BACKEND_PORT": str(port)}
    log = tmp_path / "run.log"
    log.touch()
    os.chown(log, user.pw_uid, user.pw_gid)  # the user's own file: supervisord opens /dev/fd/1 again
    with open(log, "ab") as output:
        run = subprocess.Popen(as_user(user, ["bash", str(clone / "scripts" / "run")]), cwd="/", env=env,
                               stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    started = time.monotonic()
    try:
        wait_for(lambda: "snakemake --logger appliance" in log.read_text() or run.poll() is not None, 600,
                 interval=0.5, message="scripts/run ready, with the Snakemake lines")
        text = log.read_text()
        assert run.poll() is None, text[-3000:]
        print(f"fresh clone to ready: {time.monotonic() - started:.1f} s")
        assert f"the appliance is ready at http://127.0.0.1:{port}/" in text
        lines = text[text.index("to record a Snakemake run"):].splitlines()[1:4]
        pip_line, token_line, snakemake_line = (line.strip() for line in lines)
        assert re.fullmatch(r"pip install \S+/plugins/snakemake-logger-plugin-appliance", pip_line), lines
        assert token_line.startswith("export SNAKEMAKE_LOGGER_APPLIANCE_TOKEN="), lines
        # The suite's own virtualenv has Snakemake and that very plugin: the install line is
        # checked for what it names, the other two are run as printed, by the suite's user
        # (Snakemake often runs as someone else; only its Python must be reachable).
        assert Path(pip_line.split()[-1], "pyproject.toml").exists()
        recorded = subprocess.run(
            ["bash", "-c", f"set -e; {token_line}; {snakemake_line}"], cwd=workflow,
            env={**env, "PATH": f"{VENV_BIN}:{path}"}, capture_output=True, text=True, timeout=300)
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr

        def completed_run():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/runs", timeout=10) as response:
                runs = json.load(response)["runs"]
            return [r for r in runs if r.get("source") == "snakemake" and r.get("status") == "completed"]
        wait_for(completed_run, 60, interval=0.5, message="the Snakemake run recorded")
        # The README's status commands, from another shell. web answers /readyz before supervisord
        # counts it RUNNING (its startsecs), and a quick run can end in between: status then says
        # "program web is STARTING" (exit 1), truthfully; it is asked again until RUNNING.
        for command, expected in ((["status"], "program web: RUNNING"), (["supervisorctl", "status"], "RUNNING")):
            def shown(command=command):
                return subprocess.run(as_user(user, ["bash", str(clone / "scripts" / "run"), *command]), cwd="/",
                                      env=env, capture_output=True, text=True, timeout=120)
            wait_for(lambda: expected in shown().stdout, 60, interval=1, message=f"scripts/run {command[0]}: {expected}")
            assert shown().returncode == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            code = run.wait(60)
        finally:
            leftovers = processes_mentioning(str(home)) + processes_mentioning("appliance-clusters")
            for pid in [int(line.split(":")[0]) for line in leftovers]:
                os.kill(pid, signal.SIGKILL)
            cluster_dir = (clone / ".appliance-data" / "cluster-dir")
            if cluster_dir.exists() and str(home) not in cluster_dir.read_text():
                shutil.rmtree(Path(cluster_dir.read_text().strip()), ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "run: stopped: the appliance and its PostgreSQL" in text
    assert leftovers == []
    assert "Traceback" not in text
