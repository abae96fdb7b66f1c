"""The suite's own layout: helpers come from tests/support and fixtures from a
conftest.py, never from another test module. Importing a test module runs it
and ties one ring's file to another's, and a `test_*` name imported into a
module is collected there as a test of its own. Nor is a conftest.py imported:
pytest loads it itself, and an import makes a second copy of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("tests", "bench")


def is_test_name(dotted: str) -> bool:
    """A module pytest collects (test_*.py, *_test.py) or loads (conftest.py), or a test function or class."""
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith(("test_", "Test")) or last.endswith("_test") or last == "conftest"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every dotted name `source` (the text of `module`) imports: each module, and for
    `from m import n` m.n too (n may be a module); relative imports made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            names += [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module
    parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imports_of_tests(path: Path) -> list[str]:
    module = module_name(path)
    names = imported_names(path.read_text(), module, path.name == "__init__.py")
    return [name for name in names if name.startswith("tests.") and is_test_name(name)]


def python_files() -> list[Path]:
    return sorted(path for folder in CHECKED for path in (REPO / folder).rglob("*.py"))


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest():
    found = {str(path.relative_to(REPO)): names for path in python_files() if (names := imports_of_tests(path))}
    assert found == {}, "move what they share to tests/support (helpers) or a conftest.py (fixtures)"


def test_the_check_reads_every_ring():
    checked = {path.relative_to(REPO).parts[:2] for path in python_files()}
    assert {("tests", "unit"), ("tests", "integration"), ("tests", "acceptance"), ("tests", "support")} <= checked


@pytest.mark.parametrize("line, module", [
    ("from tests.integration.test_projector import running", "tests.integration.test_health"),
    ("from tests.acceptance.test_web_browser import (\n    browser, serve)", "tests.acceptance.test_other"),
    ("import tests.integration.test_status", "tests.integration.test_health"),
    ("from tests.integration import test_status", "tests.acceptance.test_frozen_projector"),
    ("from .test_projector import max_position", "tests.integration.test_quarantine"),
    ("from ..integration.test_projector import snapshot", "tests.acceptance.test_frozen_projector"),
    ("from . import test_projector", "tests.integration.conftest"),
    ("from tests.support.story import test_looks_like_a_test", "tests.acceptance.test_web_browser"),
    ("from tests.conftest import _fresh_database", "tests.integration.test_analytics"),
    ("from .. import conftest", "tests.integration.test_analytics"),
])
def test_the_check_finds_a_test_module_imported_in_any_form(line, module):
    found = [name for name in imported_names(line, module) if is_test_name(name)]
    assert found and all(name.startswith("tests.") for name in found), found


@pytest.mark.parametrize("line, module", [
    ("from tests.support.projecting import running, snapshot", "tests.integration.test_health"),
    ("from tests.support import waiting", "tests.integration.test_projector"),
    ("from . import waiting", "tests.support.fault_kit"),
    ("import pytest", "tests.unit.test_db"),
])
def test_the_check_passes_helpers_from_tests_support(line, module):
    assert [name for name in imported_names(line, module) if is_test_name(name)] == []
