"""The image, built from this checkout and run as a user would, on a real Docker engine.

docs/deploy.md's ways: `docker run --env-file` next to a postgres:15
container, supervisorctl and status through `docker exec`, the health check,
`docker stop`, a program killed with -9, a bad environment, a read-only root
file system, the one-off commands, and compose.yaml under the docker-compose
this machine has (Debian 12's 1.29; the engine has no bridge network, so an
override file puts both services on the host's). The engine comes from
../shared/tools/docker-engine (tests/support/docker.py). Where it cannot start,
these tests are skipped with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from appliance.localpg import free_port
from tests.support.appliance_process import PROGRAMS
from tests.support.docker import REPO, Docker, EngineUnavailable, start_engine
from tests.support.waiting import wait_for

IMAGE = "appliance-suite:latest"
TOKEN = "docker-ingest-token"
STOP_BUDGET = 10  # Docker's default stop time-out


@pytest.fixture(scope="module")
def docker():
    try:
        engine = Docker(start_engine())
    except EngineUnavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Docker tests, and the engine cannot start: {why}")
        pytest.skip(f"NOT RUN: no Docker engine here: {why}")
    yield engine
    engine.remove_all()


@pytest.fixture(scope="module")
def image(docker):
    docker.run("build", "--network", "host", "-t", IMAGE, str(REPO), timeout=1800)
    return IMAGE


@pytest.fixture(scope="module")
def database(docker):
    """postgres:15 in a container: (the URL the appliance's containers use, its password)."""
    port, password = free_port(), f"pw-{secrets.token_urlsafe(12)}"
    name = docker.start(f"apl-pg-{uuid.uuid4().hex[:8]}", "-e", "POSTGRES_USER=appliance",
                        "-e", f"POSTGRES_PASSWORD={password}", "-e", "POSTGRES_DB=appliance",
                        "postgres:15", "-c", f"port={port}")
    wait_for(lambda: docker.exec(name, "pg_isready", "-h", "127.0.0.1", "-p", str(port), check=False).returncode == 0,
             120, interval=0.5, message="postgres:15 accepting connections")
    return f"postgresql://appliance:{password}@127.0.0.1:{port}/appliance", password


@pytest.fixture
def env_file(tmp_path, database):
    """An .env as docs/deploy.md has the user write, and the port the web listens on."""
    port = free_port()
    path = tmp_path / ".env"
    path.write_text(f"DATABASE_URL={database[0]}\nBACKEND_PORT={port}\nAPPLIANCE_INGEST_TOKEN={TOKEN}\n"
                    "PROJECTOR_POLL_INTERVAL=1\n")
    return path, port


def get(port: int, path: str, **kwargs) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def ingest_a_run(port: int, name: str) -> str:
    run_id = str(uuid.uuid4())
    events = [{"id": str(uuid.uuid4()), "type": "run_started", "run_id": run_id, "name": name, "source": "docker"},
              {"id": str(uuid.uuid4()), "type": "run_finished", "run_id": run_id}]
    status, body = get(port, "/api/v1/events", data=json.dumps({"events": events}).encode(), method="POST",
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert status in (200, 201, 202), body
    return run_id


def states(docker: Docker, name: str) -> dict[str, tuple[str, str]]:
    """{program: (state, pid)} from supervisorctl in the container, as docs/deploy.md runs it."""
    out = docker.exec(name, "supervisorctl", "-c", "conf/supervisord.conf", "status", check=False).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found[parts[0]] = (parts[1], parts[3].rstrip(",") if len(parts) > 3 and parts[2] == "pid" else "")
    return found


def assert_clean_log(log: str, password: str) -> None:
    assert password not in log
    assert [line for line in log.splitlines() if re.search(r" CRIT|with SIGKILL|was sent SIGKILL", line)] == [], \
        "\n".join(log.splitlines()[-25:])


def test_the_image_runs_as_docs_deploy_md_says(docker, image, env_file, database):
    path, port = env_file
    name = docker.start(f"apl-{uuid.uuid4().hex[:8]}", "--env-file", str(path), image)
    docker.wait_healthy(name)  # the image's HEALTHCHECK
    assert docker.exec(name, "id", "-u").stdout.strip() == "10001"
    assert all(states(docker, name)[program][0] == "RUNNING" for program in PROGRAMS), states(docker, name)
    status = docker.exec(name, "/app/entrypoint.sh", "status", check=False)
    assert status.returncode == 0, status.stdout + status.stderr

    run_id = ingest_a_run(port, "in a container")
    wait_for(lambda: run_id.encode() in get(port, "/api/v1/runs")[1], 30, interval=0.5, message="the run projected")
    for page in ("/", f"/runs/{run_id}", "/system", "/metrics"):
        assert get(port, page)[0] == 200, page

    for program in PROGRAMS:  # kill -9: supervisord starts it again
        killed = states(docker, name)[program][1]
        docker.exec(name, "bash", "-c", f"kill -9 {killed}")
        wait_for(lambda: (lambda s: s[0] == "RUNNING" and s[1] != killed)(states(docker, name).get(program, ("", ""))),
                 60, interval=0.5, message=f"{program} restarted")
    wait_for(lambda: get(port, "/readyz")[0] == 200, 60, interval=0.5, message="/readyz after the kills")

    took = docker.stop(name, STOP_BUDGET)
    assert took < STOP_BUDGET, took
    assert docker.inspect(name)["State"]["ExitCode"] == 0
    assert_clean_log(docker.logs(name), database[1])


def test_a_bad_environment_exits_2_with_its_message(docker, image):
    result = docker.run("run", "--rm", "--network", "host", "-e", "BACKEND_PORT=eighty", image, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "DATABASE_URL is not set" in output and "BACKEND_PORT" in output


def test_a_read_only_root_filesystem_with_a_tmpfs(docker, image, env_file, database):
    path, port = env_file
    name = docker.start(f"apl-ro-{uuid.uuid4().hex[:8]}", "--read-only", "--tmpfs", "/tmp", "--env-file", str(path),
                        image)
    wait_for(lambda: get(port, "/readyz")[0] == 200 or not docker.inspect(name)["State"]["Running"], 120,
             interval=0.5, message="/readyz")
    assert docker.inspect(name)["State"]["Running"], docker.logs(name)[-3000:]
    wait_for(lambda: all(states(docker, name).get(p, ("",))[0] == "RUNNING" for p in PROGRAMS), 60, interval=0.5,
             message="every program RUNNING")  # web counts as started after its startsecs
    assert docker.stop(name, STOP_BUDGET) < STOP_BUDGET
    assert docker.inspect(name)["State"]["ExitCode"] == 0
    assert_clean_log(docker.logs(name), database[1])


@pytest.mark.parametrize("command, expected", [
    (["migrate"], "schema at head"),
    (["init"], "installed"),
    (["config"], "Settings("),
    (["status"], "program"),  # no supervisord in a one-off container: its programs are named as unseen
    (["prune"], "deleted"),
    (["reproject"], "events/s"),
    (["shell", "-c", "appliance --help"], "reproject"),
])
def test_the_one_off_commands_of_docs_deploy_md(docker, image, env_file, database, command, expected):
    path, _ = env_file
    result = docker.run("run", "--rm", "--network", "host", "--env-file", str(path), image, *command, check=False)
    output = result.stdout + result.stderr
    assert expected in output, output
    if command != ["status"]:
        assert result.returncode == 0, output
    assert database[1] not in output


def test_compose_brings_up_postgres_and_the_appliance(docker, tmp_path):
    """compose.yaml with Debian 12's docker-compose 1.29, on the host's network: an override file
    moves both services there, and the one change to compose.yaml itself is its port mapping
    left out, which host networking cannot have (docker-py refuses the two together)."""
    pg_port, web_port, password = free_port(), free_port(), f"pw-{secrets.token_urlsafe(12)}"
    definition = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert definition["services"]["appliance"].pop("ports")
    base = tmp_path / "compose.yaml"
    base.write_text(yaml.safe_dump(definition))
    override = tmp_path / "host-network.yaml"
    override.write_text(f"""
services:
  db:
    network_mode: host
    command: ["postgres", "-c", "port={pg_port}"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -p {pg_port} -U appliance -d appliance"]
  appliance:
    network_mode: host
    image: appliance-compose-suite
    build:
      context: {REPO}
      network: host
    environment:
      DATABASE_URL: postgresql://appliance:{password}@127.0.0.1:{pg_port}/appliance
""")
    settings = tmp_path / "compose.env"  # in place of the checkout's ./.env
    settings.write_text(f"POSTGRES_PASSWORD={password}\nBACKEND_PORT={web_port}\nAPPLIANCE_INGEST_TOKEN={TOKEN}\n")
    project = f"apl{uuid.uuid4().hex[:8]}"
    compose = ["-p", project, "--env-file", str(settings), "-f", str(base), "-f", str(override)]
    try:
        docker.compose(tmp_path, *compose, "up", "-d", "--build", timeout=1800)
        appliance = f"{project}_appliance_1"
        docker.wait_healthy(appliance)
        assert get(web_port, "/readyz")[0] == 200
        run_id = ingest_a_run(web_port, "through compose")
        wait_for(lambda: run_id.encode() in get(web_port, "/api/v1/runs")[1], 30, interval=0.5,
                 message="the run projected")
        supervisorctl = docker.compose(tmp_path, *compose, "exec", "-T", "appliance",
                                       "supervisorctl", "-c", "conf/supervisord.conf", "status").stdout
        assert all(re.search(rf"^{program}\s+RUNNING", supervisorctl, re.M) for program in PROGRAMS), supervisorctl
        docker.compose(tmp_path, *compose, "stop", timeout=120)
        assert docker.inspect(appliance)["State"]["ExitCode"] == 0
        assert_clean_log(docker.logs(appliance), password)
    finally:
        docker.compose(tmp_path, *compose, "down", "-v", "--rmi", "local", timeout=300)
