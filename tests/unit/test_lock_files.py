"""The lock files pin what pyproject.toml asks for: exact versions with hashes, in step.

requirements.lock (the appliance's dependencies: the image, scripts/run) and
requirements-test.lock (those, the test extras and the Snakemake plugin's:
scripts/test, CI) are made by scripts/lock from the pyproject.toml files. A
dependency added, dropped or given a range its pin no longer meets fails here
until scripts/lock is run again.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "snakemake-logger-plugin-appliance"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match[1])] = match[2]
    return found


def requirements(pyproject: Path, *extras: str) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    listed = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    return [Requirement(text) for text in listed]


def direct_pins(lock: Path) -> set[str]:
    """The packages the lock says were asked for by the appliance's pyproject.toml."""
    names, current = set(), None
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1])
        elif current and re.match(r"^\s+#\s+(via )?appliance \(pyproject\.toml\)$", line):
            names.add(current)
    return names


def unmet(required: list[Requirement], pinned: dict[str, str]) -> list[str]:
    return [f"{req} (pinned: {pinned.get(canonicalize_name(req.name), 'nothing')})" for req in required
            if canonicalize_name(req.name) not in pinned
            or not req.specifier.contains(pinned[canonicalize_name(req.name)], prereleases=True)]


def test_the_runtime_lock_meets_every_dependency_of_pyproject():
    required = requirements(REPO / "pyproject.toml")
    assert unmet(required, pins(REPO / "requirements.lock")) == [], "run scripts/lock"
    assert direct_pins(REPO / "requirements.lock") == {canonicalize_name(r.name) for r in required}, \
        "the lock was made from another pyproject.toml: run scripts/lock"


def test_the_test_lock_meets_the_test_extras_and_the_plugin():
    required = requirements(REPO / "pyproject.toml", "test") + requirements(PLUGIN / "pyproject.toml")
    assert unmet(required, pins(REPO / "requirements-test.lock")) == [], "run scripts/lock"
    appliance_only = {canonicalize_name(r.name) for r in requirements(REPO / "pyproject.toml", "test")}
    assert direct_pins(REPO / "requirements-test.lock") == appliance_only, "run scripts/lock"


def test_the_two_locks_pin_the_same_versions_of_what_they_share():
    runtime, test = pins(REPO / "requirements.lock"), pins(REPO / "requirements-test.lock")
    assert {name: (version, test.get(name)) for name, version in runtime.items() if test.get(name) != version} == {}


def test_the_build_lock_meets_what_the_builds_require():
    for pyproject in (REPO / "pyproject.toml", PLUGIN / "pyproject.toml"):
        required = [Requirement(text) for text in tomllib.loads(pyproject.read_text())["build-system"]["requires"]]
        assert unmet(required, pins(REPO / "requirements-build.lock")) == [], "run scripts/lock"


def test_every_pin_has_a_hash():
    for lock in ("requirements.lock", "requirements-test.lock", "requirements-build.lock"):
        text = (REPO / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
        assert [b.split()[0] for b in blocks if "==" in b.split()[0] and "--hash=sha256:" not in b] == [], lock
